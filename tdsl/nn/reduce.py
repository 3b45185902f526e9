"""Reductions over axes: sum, mean, max, min (NumPy's, with axis= and keepdims=).

One reduction stage with one `td.reduce_axis` per reduced axis; mean divides the sum in a
second stage, since a reduction must be the whole body of a compute.
"""

from __future__ import annotations

import tdsl as td
from tdsl.lang.reduce import Reducer
from tdsl.lang.tensor import Tensor

from . import _checks as check


def sum(x: Tensor, axis=None, keepdims: bool = False, *,   # noqa: A001
        name: str | None = None) -> Tensor:
    """The sum over `axis` (None: all axes; an int; a tuple):

        out[i...] = sum_{k over the reduced axes} x[i..., k...]

    >>> s = nn.sum(x, axis=1)          # (n, m) -> (n,)
    """
    return _reduce("nn.sum", td.sum, x, axis, keepdims, check.name(name, "sum"))


def max(x: Tensor, axis=None, keepdims: bool = False, *,   # noqa: A001
        name: str | None = None) -> Tensor:
    """The maximum over `axis` (None: all axes; an int; a tuple).

    >>> m = nn.max(x, axis=(2, 3), keepdims=True)
    """
    return _reduce("nn.max", td.max, x, axis, keepdims, check.name(name, "max"))


def min(x: Tensor, axis=None, keepdims: bool = False, *,   # noqa: A001
        name: str | None = None) -> Tensor:
    """The minimum over `axis` (None: all axes; an int; a tuple).

    >>> m = nn.min(x, axis=0)
    """
    return _reduce("nn.min", td.min, x, axis, keepdims, check.name(name, "min"))


def mean(x: Tensor, axis=None, keepdims: bool = False, *, name: str | None = None
         ) -> Tensor:
    """The mean over `axis`: the sum (stage `mean_sum`) divided by the number of reduced
    elements (stage `mean`); integers give float64, as in NumPy.

        out[i...] = sum_k x[i..., k...] / K

    >>> m = nn.mean(x, axis=-1, keepdims=True)
    """
    op, name = "nn.mean", check.name(name, "mean")
    x = check.tensor(x, op, "x")
    reduced = check.axes(axis, x.ndim, op)
    total = _reduce(op, td.sum, x, axis, keepdims, f"{name}_sum")
    count = check.count(check.product([x.shape[a] for a in reduced]), x.dtype)
    return td.compute(total.shape, lambda *i: total[i] / count, name=name)


def _reduce(op: str, reducer: Reducer, x: Tensor, axis, keepdims: bool, name: str) -> Tensor:
    """One stage reducing x over `axis` with `reducer`."""
    x = check.tensor(x, op, "x")
    reduced = check.axes(axis, x.ndim, op)
    if not reduced:
        # axis=() (or a 0-d x): nothing to reduce; NumPy returns the values unchanged.
        return td.compute(x.shape, lambda *i: x[i], name=name)
    ks = {a: td.reduce_axis(x.shape[a], name=f"k{a}") for a in reduced}
    # keepdims leaves a size-1 axis where each reduced one was.
    shape = tuple(1 if a in ks else x.shape[a] for a in range(x.ndim) if keepdims or a not in ks)

    def body(*i):
        kept = iter(i)
        index = []
        for a in range(x.ndim):
            if a in ks:
                index.append(ks[a])
                if keepdims:
                    next(kept)              # the size-1 output axis stands in for a
            else:
                index.append(next(kept))
        return reducer(x[tuple(index)], axis=list(ks.values()))

    return td.compute(shape, body, name=name)
