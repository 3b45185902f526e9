"""The algorithm language: dtypes, expressions, tensors, reductions, intrinsics.

Imports nothing of tdsl but `tdsl.errors`.
"""

from .expr import (BinOp, Call, Cast, Const, Expr, IterVar, Load, Reduce, Select, UnaryOp, Var,
                   all_of, any_of, call, cast, const, select)
from .graph import topo_order
from .reduce import Reducer, comm_reducer
from .reduce import max as max_reducer
from .reduce import min as min_reducer
from .reduce import sum as sum_reducer
from .reference import reference
from .tensor import (ComputeOp, Operation, PlaceholderOp, Tensor, UpdateOp, compute, placeholder,
                     reduce_axis, update, var)
