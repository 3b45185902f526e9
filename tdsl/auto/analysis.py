"""What the automatic scheduler needs to know about each stage, read from its definition.

Pure functions over the compute definitions (no isl, no schedule state): the kind of a
stage (injective, a reduction with reuse like a matmul or a convolution, a reduction
along the contiguous dimension like a row sum, a recurrence), who reads whom and at how
many distinct indices (one: inlinable; several: a stencil), and which data axis of a
reduction with reuse is the row of its register tile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..lang.expr import Call, Expr, IterVar, Load, Reduce, Select
from ..lang.tensor import ComputeOp, Operation, PlaceholderOp, UpdateOp
from ..lang.visit import free_vars, loads, same, walk

EXPENSIVE_CALLS = ("exp", "log", "sigmoid", "tanh", "sin", "cos", "power", "sqrt")


@dataclass
class StageInfo:
    """One stage as the rules see it."""

    op: Operation
    kind: str                                  # injective | reuse | row | reduction | update
    readers: list = field(default_factory=list)            # ops that read this stage
    reads_at: dict = field(default_factory=dict)           # reader op -> distinct index tuples
    guarded: bool = False                      # its body tests indices (select, where)
    expensive: bool = False                    # transcendental calls in its body
    row_axis: IterVar | None = None            # reuse: the register tile's unrolled axis
    col_axis: IterVar | None = None            # reuse: the register tile's vector axis
    dot_axis: IterVar | None = None            # reuse: the reduction axis every operand
    #                                            reads contiguously (x[i, k] * w[j, k])

    @property
    def name(self) -> str:
        return self.op.name


def analyze(order: list[Operation], outputs: list[Operation]) -> dict[Operation, StageInfo]:
    """A StageInfo for every compute stage of `order` (producers first)."""
    infos = {op: _info(op) for op in order if not isinstance(op, PlaceholderOp)}
    for op in order:
        if op not in infos:
            continue
        body = _body(op)
        for load in loads(body) if body is not None else ():
            producer = load.tensor.op
            if producer in infos and producer is not op:
                info = infos[producer]
                if op not in info.readers:
                    info.readers.append(op)
                seen = info.reads_at.setdefault(op, [])
                if not any(all(same(a, b) for a, b in zip(load.indices, s)) for s in seen):
                    seen.append(load.indices)
    return infos


def _body(op: Operation) -> Expr | None:
    if isinstance(op, ComputeOp):
        return op.body
    if isinstance(op, UpdateOp):
        return op.value
    return None


def _info(op: Operation) -> StageInfo:
    if isinstance(op, UpdateOp):
        return StageInfo(op, "update")
    body = op.body
    guarded = any(isinstance(e, Select) for e in walk(body)) or \
        (isinstance(body, Reduce) and body.where is not None)
    expensive = any(isinstance(e, Call) and e.name in EXPENSIVE_CALLS for e in walk(body))
    if not isinstance(body, Reduce):
        return StageInfo(op, "injective", guarded=guarded, expensive=expensive)
    info = StageInfo(op, "reduction", guarded=guarded, expensive=expensive)
    data = list(op.axis)
    if len(data) >= 2:
        row, col = _register_tile_axes(op, body)
        if row is not None:
            info.kind, info.row_axis, info.col_axis = "reuse", row, col
            info.dot_axis = _dot_axis(body, col)
            return info
    if _contiguous_reduction(body, op.axis[-1] if op.axis else None):
        info.kind = "row"
    return info


def _register_tile_axes(op: ComputeOp, body: Reduce):
    """(row, column) of a register tile for a reduction with reuse, or (None, None).

    The column is the innermost data axis (vectorized: unit stride in the output). The
    row is the innermost other data axis that every operand moving with the column does
    not depend on: those vector loads are then reused by every row of the tile, while the
    other operands are broadcast scalars (B's row of a matmul reused across rows of A; a
    convolution's input pixels reused across output channels, the weights broadcast)."""
    col = op.axis[-1]
    operands = list(loads(body.body))
    vectors = [ld for ld in operands if uses_axis(ld, col)]
    if not vectors or len(vectors) == len(operands):
        return None, None
    for row in reversed(op.axis[:-1]):
        if not any(uses_axis(ld, row) for ld in vectors) and \
                any(uses_axis(ld, row) for ld in operands):
            return row, col
    return None, None


def _dot_axis(body: Reduce, col: IterVar) -> IterVar | None:
    """The reduction axis that is the whole last index of every operand, when the column
    is in no operand's last index: a dense layer `x[i, k] * w[j, k]`, whose column
    vectors (w down j) would be gathered while every operand runs contiguously along k."""
    last = set()
    for ld in loads(body.body):
        if not ld.indices:
            return None
        vs = free_vars(ld.indices[-1])
        if len(vs) != 1 or not same(ld.indices[-1], vs[0]):
            return None
        last.add(vs[0])
    if len(last) != 1:
        return None
    (k,) = last
    if k is col or not any(k is a for a in body.axes):
        return None
    return k


def uses_axis(ld: Load, axis: IterVar) -> bool:
    """Does some index of the load move with `axis`?"""
    return any(v is axis for i in ld.indices for v in free_vars(i))


def _contiguous_reduction(body: Reduce, inner: IterVar | None) -> bool:
    """Does some operand's innermost index run along a reduction axis (a row sum), and no
    operand's along the stage's innermost data axis? A window that slides with the
    output (a depthwise convolution's `x[.., xx + rx]`) is a column reduction: vectors
    along xx, the short window loops outside them."""
    found = False
    for ld in loads(body.body):
        if not ld.indices:
            continue
        last = free_vars(ld.indices[-1])
        if inner is not None and any(v is inner for v in last):
            return False
        found = found or any(v is a for a in body.axes for v in last)
    return found


def innermost_stride_ok(op: ComputeOp) -> bool:
    """Do the stage's loads move along their innermost dimension with its innermost axis?
    False for a transpose (`x[j, i]`), which wants tiles instead of long vectors."""
    inner = op.axis[-1]
    found = False
    for ld in loads(op.body if not isinstance(op.body, Reduce) else op.body.body):
        if not ld.indices or isinstance(ld.tensor.op, UpdateOp):
            continue
        uses = [k for k, i in enumerate(ld.indices) if any(v is inner for v in free_vars(i))]
        if uses and uses[-1] != len(ld.indices) - 1:
            return False
        found = found or bool(uses)
    return True


def blocked_index(indices, axes) -> tuple[int, int] | None:
    """(position, L) when `indices` read a blocked layout at `axes`:
    `(a0, .., a_p // L, .., a_last, a_p % L)`, each other index its own axis (a
    convolution computed in blocks of L output channels, read back in NCHW); else None."""
    from ..lang.expr import BinOp, Const
    if len(indices) != len(axes) + 1:
        return None
    last = indices[-1]
    if not (isinstance(last, BinOp) and last.op == "mod" and isinstance(last.a, IterVar) and
            isinstance(last.b, Const)):
        return None
    split, block, position = last.a, last.b.value, None
    for k, (i, a) in enumerate(zip(indices[:-1], axes)):
        if a is split:
            if not (isinstance(i, BinOp) and i.op == "floordiv" and i.a is split and
                    isinstance(i.b, Const) and i.b.value == block):
                return None
            position = k
        elif i is not a:
            return None
    return None if position is None else (position, block)


def is_load_of(e: Expr, op: Operation) -> bool:
    return isinstance(e, Load) and e.tensor.op is op
