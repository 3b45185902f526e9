"""Where a compute's adjoint enters its body: the seed of the reverse sweep.

A pure compute `C[i] = body` seeds `body` with dC[i]. A sum seeds its body with dC[i] at
every point of the reduction (a broadcast) where `where=` holds. A max or min seeds only
the first position that attains it, in the lexicographic order of the reduction axes (the
order td.reference and an unscheduled kernel visit them): a stage `<C>_argmax` (or
`_argmin`) finds that position as the smallest linear position where the body equals C:

    C_argmax[i] = min_k select(body(i, k) == C[i], k, BIG)      (where= as C's)
    seed(i, k)  = select(k == C_argmax[i], dC[i], 0)

The comparison recomputes the body; it finds C's value again because both are the same
expression of the same loads (a body that gcc contracts differently in two loops, a*b + c
into an FMA in one of them, could miss; loads, sums and maxima of loads are exact).
Other reducers (`td.comm_reducer`) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import TdslError
from ..lang import dtypes
from ..lang import reduce as reducers
from ..lang.expr import Expr, IterVar, Reduce, select
from ..lang.tensor import ComputeOp
from ..lang.visit import substitute
from .stages import fresh_reduce_axis, named_compute

_NEVER = int(np.iinfo(dtypes.INDEX).max)      # td.min's identity: no position attains it


@dataclass(frozen=True)
class Seed:
    """The body to sweep, its adjoint, and the condition (C's where=) it holds under."""

    root: Expr
    adjoint: Expr
    where: Expr | None


def seed(op: ComputeOp, adjoint_at: Callable[[tuple], Expr]) -> Seed:
    """The seed of `op`'s body, given `adjoint_at(indices)`, the reader of op's adjoint."""
    here = adjoint_at(tuple(op.axis))
    body = op.body
    if not isinstance(body, Reduce):
        return Seed(body, here, None)
    if body.reducer is reducers.sum:
        return Seed(body.body, here, body.where)
    if body.reducer is reducers.max or body.reducer is reducers.min:
        first = _first_extremum(op)
        position = _linear_position(body.axes)
        return Seed(body.body, select(position == first[tuple(op.axis)], here, 0), body.where)
    raise TdslError(
        f"td.grad: {op.name} reduces with the custom reducer {body.reducer.name!r}; only "
        "td.sum, td.max and td.min reductions are differentiable. Write it with those "
        "(a product as exp of a sum of logs, for positive values)")


def _first_extremum(op: ComputeOp):
    """The stage `<C>_argmax`: the linear position of the first extremum of each row."""
    body = op.body
    kind = "argmax" if body.reducer is reducers.max else "argmin"
    names = [a.name for a in op.axis]

    def row(*axes):
        taken = set(names)
        fresh = [fresh_reduce_axis(k, taken) for k in body.axes]
        mapping = dict(zip(op.axis, axes)) | dict(zip(body.axes, fresh))
        value = substitute(body.body, mapping)
        hit = value == op.output(0)[tuple(axes)]
        where = substitute(body.where, mapping) if body.where is not None else None
        position = _linear_position(tuple(fresh))
        return reducers.min(select(hit, position, _NEVER), axis=fresh, where=where)

    return named_compute(op.shape, row, names, f"{op.name}_{kind}")


def _linear_position(axes: tuple[IterVar, ...]) -> Expr:
    """The position of a point of the reduction domain in lexicographic order."""
    position: Expr | None = None
    for k in axes:
        offset = k - k.start
        position = offset if position is None else position * k.extent + offset
    return position

