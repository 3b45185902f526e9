"""Making the adjoint's stages: computes with readable axis names, fresh reduction axes.

Adjoints are ordinary `td.compute` stages; these helpers only choose names, so that
`td.lower` and `print(td.auto_schedule(...))` read like hand-written code (no two axes of
one stage share a name).
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

from ..lang.expr import Const, Expr, IterVar
from ..lang.names import unique_name
from ..lang.tensor import ComputeOp, Tensor, compute, reduce_axis

_DEFAULT_AXES = ("i", "j", "k", "l")


def axis_names(t: Tensor) -> list[str]:
    """The names of t's axes: a compute's own, else i, j, k, l, i4, i5..."""
    if isinstance(t.op, ComputeOp):
        return [a.name for a in t.op.axis]
    return [_DEFAULT_AXES[d] if d < len(_DEFAULT_AXES) else f"i{d}" for d in range(t.ndim)]


def named_compute(shape: Sequence[Expr], fn: Callable[..., Expr], names: Sequence[str],
                  name: str) -> Tensor:
    """td.compute(shape, fn) with the axes named `names` (td.compute names axes after the
    lambda's parameters)."""
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in names]
    wrapper = lambda *axes: fn(*axes)  # noqa: E731
    wrapper.__signature__ = inspect.Signature(params)   # type: ignore[attr-defined]
    return compute(tuple(shape), wrapper, name=name)


def fresh_reduce_axis(v: IterVar, taken: set[str]) -> IterVar:
    """A new reduction axis over v's range, named after v unless the name is taken."""
    label = unique_name(v.name, taken)
    if isinstance(v.start, Const) and v.start.value == 0:
        return reduce_axis(v.extent, name=label)
    return reduce_axis((v.start, v.start + v.extent), name=label)
