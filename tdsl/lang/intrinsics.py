"""Intrinsic functions for compute bodies (`td.exp`, `td.maximum`, ...).

Each follows the typing of the NumPy ufunc of the same name (`td.exp` of an
int32 expression is float64, as `np.exp` gives).
"""

from __future__ import annotations

from .expr import Expr, call
from .expr import cast as _cast


def exp(x) -> Expr: return call("exp", x)
def log(x) -> Expr: return call("log", x)
def sqrt(x) -> Expr: return call("sqrt", x)
def abs(x) -> Expr: return call("abs", x)                       # noqa: A001
def tanh(x) -> Expr: return call("tanh", x)
def sigmoid(x) -> Expr: return call("sigmoid", x)
def floor(x) -> Expr: return call("floor", x)
def ceil(x) -> Expr: return call("ceil", x)
def sin(x) -> Expr: return call("sin", x)
def cos(x) -> Expr: return call("cos", x)
def power(x, y) -> Expr: return call("power", x, y)
def maximum(x, y) -> Expr: return call("max", x, y)
def minimum(x, y) -> Expr: return call("min", x, y)


def cast(value, dtype) -> Expr:
    """`value` converted to `dtype` (as `value.astype(dtype)`; floats to ints truncate)."""
    return _cast(dtype, value)
