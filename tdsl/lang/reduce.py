"""Reducers: `td.sum`, `td.max`, `td.min`, and `td.comm_reducer` for custom ones.

A reducer is a commutative, associative `combine(acc, value)` with an identity.
Those two properties are what lets the schedule reorder and tile a reduction
(see DESIGN.md: updates of one element may run in any order, never at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import TdslTypeError, TdslValueError
from . import dtypes
from .expr import Const, Expr, IterVar, Reduce, Var, as_expr, const


@dataclass(frozen=True, eq=False)
class Reducer:
    """`combine(acc, value) -> Expr` with `identity(dtype) -> Const`."""

    name: str
    combine: Callable[[Expr, Expr], Expr]
    identity: Callable[[str], Const]
    numpy_reduce: Callable | None = None       # a NumPy ufunc.reduce, when there is one

    def __call__(self, expr, axis, where=None) -> Reduce:
        """Reduce `expr` over `axis` (one reduce axis or a list), where `where` holds.

        >>> td.sum(A[i, k] * B[k, j], axis=k)
        """
        body = as_expr(expr, f"td.{self.name}'s argument")
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        if not axes:
            raise TdslValueError(f"td.{self.name} needs at least one axis")
        for a in axes:
            if not isinstance(a, IterVar) or a.kind != "reduce":
                raise TdslTypeError(
                    f"td.{self.name}(..., axis=...) takes reduction axes made with "
                    f"td.reduce_axis; got {a!r}" +
                    (" (a data axis of the compute)" if isinstance(a, IterVar) else ""))
        if len(set(map(id, axes))) != len(axes):
            raise TdslValueError(f"td.{self.name}: an axis is listed twice in axis=")
        cond = None
        if where is not None:
            cond = as_expr(where, f"td.{self.name}'s where=")
            if cond.dtype != "bool":
                raise TdslTypeError(f"td.{self.name}'s where= must be boolean; `{cond}` is "
                                    f"{cond.dtype}")
        return Reduce(self, body, axes, cond)

    def combine_expr(self, dtype: str) -> tuple[Var, Var, Expr]:
        """The combine function as an expression of two fresh variables (acc, value)."""
        acc, value = Var("acc", dtype), Var("value", dtype)
        result = as_expr(self.combine(acc, value), f"{self.name}'s combine")
        if result.dtype != dtype:
            from .expr import cast
            result = cast(dtype, result)
        return acc, value, result


def _lowest(dtype: str) -> Const:
    if dtypes.is_float(dtype):
        return Const(float("-inf"), dtype)
    if dtype == "bool":
        return Const(False, dtype)
    return Const(int(np.iinfo(dtype).min), dtype)


def _highest(dtype: str) -> Const:
    if dtypes.is_float(dtype):
        return Const(float("inf"), dtype)
    if dtype == "bool":
        return Const(True, dtype)
    return Const(int(np.iinfo(dtype).max), dtype)


def _max(a: Expr, b: Expr) -> Expr:
    from .expr import binary
    return binary("max", a, b)


def _min(a: Expr, b: Expr) -> Expr:
    from .expr import binary
    return binary("min", a, b)


sum = Reducer("sum", lambda a, b: a + b, lambda dt: const(0, dt), np.add.reduce)  # noqa: A001
max = Reducer("max", _max, _lowest, np.maximum.reduce)                            # noqa: A001
min = Reducer("min", _min, _highest, np.minimum.reduce)                           # noqa: A001


def comm_reducer(combine: Callable[[Expr, Expr], Expr], identity, name: str = "reduce") -> Reducer:
    """A custom commutative, associative reducer.

    `identity` is a number or a function `dtype -> number`.

    >>> product = td.comm_reducer(lambda a, b: a * b, 1, name="product")
    >>> P = td.compute((n,), lambda i: product(A[i, k], axis=k))
    """
    if not callable(combine):
        raise TdslTypeError(f"comm_reducer's combine must be a function (a, b) -> expr; "
                            f"got {combine!r}")

    def make_identity(dtype: str) -> Const:
        value = identity(dtype) if callable(identity) else identity
        value = value.value if isinstance(value, Const) else value
        return const(value, dtype)

    return Reducer(name, combine, make_identity)
