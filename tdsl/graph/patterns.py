"""The operator pattern of each stage, as TVM's FuseOps and XLA classify operations.

    elementwise   out[i] = f(a[i], b[i], ...): every read at the stage's own index
    broadcast     reads at a subsequence of the stage's axes (bias[j] of out[i, j])
    injective     any other one-to-one index map (pad, transpose, reshape, slice, concat)
    reduction     a reduction without reuse (a row sum, a max, a pooling window)
    out_fusable   a reduction with reuse (conv2d, dense, matmul): "output-elementwise
                  fusable", it takes elementwise and broadcast epilogues
    opaque        anything else (an update definition, a gather from data)

The order matters: a pattern at most `injective` may be fused into any consumer. Pure
functions of the definitions (tdsl/auto/analysis.py says which reductions have reuse).
"""

from __future__ import annotations

import enum

from ..auto.analysis import analyze, blocked_index
from ..lang.expr import Const, IterVar, Load, Reduce
from ..lang.tensor import ComputeOp, Operation, PlaceholderOp
from ..lang.visit import loads, walk


class Pattern(enum.IntEnum):
    ELEMENTWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    OUT_FUSABLE = 4
    OPAQUE = 5

    def __str__(self) -> str:
        return self.name.lower()


def pattern(op: Operation) -> Pattern:
    """The fusion pattern of one stage (see the module docstring).

    >>> pattern(nn.relu(x).op)
    <Pattern.ELEMENTWISE: 0>
    """
    if not isinstance(op, ComputeOp):
        return Pattern.OPAQUE if not isinstance(op, PlaceholderOp) else Pattern.INJECTIVE
    body = op.body
    reads = loads(body.body if isinstance(body, Reduce) else body)
    if any(_data_dependent(ld) for ld in reads):
        return Pattern.OPAQUE                 # a gather: its reads are not known statically
    if isinstance(body, Reduce):
        reuse = analyze([op], [op])[op].kind == "reuse"        # a register tile fits
        return Pattern.OUT_FUSABLE if reuse else Pattern.REDUCTION
    axes = list(op.axis)
    if all(_elementwise(ld, axes) for ld in reads):
        return Pattern.ELEMENTWISE
    if all(_bare(ld) is not None and _subsequence(_bare(ld), axes) for ld in reads):
        return Pattern.BROADCAST
    return Pattern.INJECTIVE


def _elementwise(ld: Load, axes: list) -> bool:
    """Read at the stage's own index (a size-1 axis read at 0 counts: nn's broadcasting
    reads a batch of one at 0)."""
    return len(ld.indices) == len(axes) and all(
        i is a or (_zero(i) and _one(a.extent)) for i, a in zip(ld.indices, axes))


def _bare(ld: Load) -> list | None:
    """The axes the load reads at, if each index is one bare axis or 0 on a dimension
    of size 1 (a broadcast dimension, dropped); else None."""
    kept = []
    for i, d in zip(ld.indices, ld.tensor.shape):
        if isinstance(i, IterVar):
            kept.append(i)
        elif not (_zero(i) and _one(d)):
            return None
    return kept


def _zero(e) -> bool:
    return isinstance(e, Const) and e.value == 0


def _one(e) -> bool:
    return isinstance(e, Const) and e.value == 1


def _subsequence(items: list, of: list) -> bool:
    position = 0
    for item in items:
        while position < len(of) and of[position] is not item:
            position += 1
        if position == len(of):
            return False
        position += 1
    return True


def _data_dependent(ld: Load) -> bool:
    return any(isinstance(n, Load) for i in ld.indices for n in walk(i))


def blocked_view(op: Operation):
    """The operation `op` views in blocks, for `out[n, f, y, x] = blk[n, f // L, y, x, f % L]`
    (a convolution computed in blocks of L channels, graph/layout.py), else None: the
    view belongs to the convolution's epilogue."""
    if not isinstance(op, ComputeOp) or not isinstance(op.body, Load) or \
            blocked_index(op.body.indices, list(op.axis)) is None:
        return None
    return op.body.tensor.op


def work(op: Operation) -> int:
    """Points of the stage's iteration domain (data axes x reduction axes) at constant
    sizes: the count isl gives for a rectangular domain, the unit of the cost model."""
    if not isinstance(op, ComputeOp):
        return 0
    count = 1
    for axis in (*op.axis, *op.reduce_axis):
        extent = axis.extent
        count *= int(extent.value) if hasattr(extent, "value") else 1
    return count


__all__ = ["Pattern", "pattern", "work", "blocked_view"]
