"""SystemML's recompute-or-materialize choice for one producer, by counts of the work.

A stage fused into its readers' kernel is recomputed wherever `td.auto_schedule` inlines
it: once per read. A matmul reads each element of its left operand once per output
column, so an elementwise prologue inlined there runs `columns` times. Materializing
instead costs one evaluation, one write and one read per reading kernel. The units:
one arithmetic operation per point, `MEMORY` per element moved, `EXPENSIVE` per
transcendental call (exp, tanh, ...); a stage that only moves data (a reshape, a
squeeze) costs nothing to recompute. Counts are points of the iteration domains at
the network's constant sizes (`patterns.work`; every nn domain is a box, so the product
of the extents is the count isl would give).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auto.analysis import EXPENSIVE_CALLS
from ..lang.expr import BinOp, Call, Reduce, Select, UnaryOp
from ..lang.tensor import ComputeOp, Operation
from ..lang.visit import walk
from .patterns import Pattern, work

MEMORY = 4            # one element written or read back, in arithmetic operations
EXPENSIVE = 20        # one exp / tanh / sqrt ..., in arithmetic operations


@dataclass(frozen=True)
class Choice:
    """One decision: recompute `stage` in its readers' kernels, or give it a buffer."""

    stage: str
    recompute_cost: int
    materialize_cost: int

    @property
    def recompute(self) -> bool:
        return self.recompute_cost <= self.materialize_cost

    def __str__(self) -> str:
        verdict = "recompute" if self.recompute else "materialize"
        return (f"{self.stage}: {verdict} (recompute {self.recompute_cost:,} vs "
                f"materialize {self.materialize_cost:,})")


def body_cost(op: Operation) -> int:
    """Operations per point of the stage's domain."""
    if not isinstance(op, ComputeOp):
        return 1
    body = op.body.body if isinstance(op.body, Reduce) else op.body
    cost = 0
    for node in walk(body):
        if isinstance(node, Call):
            cost += EXPENSIVE if node.name in EXPENSIVE_CALLS else 1
        elif isinstance(node, (BinOp, UnaryOp, Select)):
            cost += 1
    return cost                # a copy (a reshape, a squeeze) recomputes for free


def reads_per_element(producer: Operation, reader: Operation, pat: dict) -> int:
    """How often `reader` reads each element of `producer` (its reuse): the reader's
    points per producer element for a reduction, one for an injective reader."""
    if pat.get(reader, Pattern.OPAQUE) < Pattern.REDUCTION:
        return 1
    size = max(work(producer), 1)
    return max(work(reader) // size, 1)


def chain_cost(op: Operation, pat: dict, all_readers: dict) -> int:
    """Operations per point of `op` with the producers that would be inlined into it
    along (elementwise, broadcast and injective stages that only it reads): recomputing
    `op` recomputes them too."""
    cost = body_cost(op)
    for t in op.input_tensors if isinstance(op, ComputeOp) else ():
        producer = t.op
        if isinstance(producer, ComputeOp) and pat.get(producer, Pattern.OPAQUE) <= \
                Pattern.INJECTIVE and all_readers.get(producer) == [op] and \
                not any(isinstance(n, Select) for n in walk(producer.body)):
            cost += chain_cost(producer, pat, all_readers)
    return cost


def recompute_or_materialize(op: Operation, readers: list[Operation], pat: dict,
                             all_readers: dict, copies: int = 1) -> Choice | None:
    """The choice for `op` read by `readers` in `copies` kernels; None when there is
    nothing to choose (one kernel, read once per element, or kept as a stage inside
    the kernel, like a padding stage before a reduction).
    `all_readers` maps every stage to its readers (for the chain inlined along)."""
    per_point = chain_cost(op, pat, all_readers)
    reuse = [reads_per_element(op, r, pat) for r in readers]
    if copies == 1 and (max(reuse) == 1 or not _a_choice(op, readers, pat)):
        return None
    evaluations = work(op) * per_point
    recompute = sum(evaluations * k for k in reuse)
    materialize = evaluations + MEMORY * work(op) * (1 + copies)
    return Choice(op.name, recompute, materialize)


def _a_choice(op: Operation, readers: list[Operation], pat: dict) -> bool:
    """Is giving `op` a buffer between kernels a choice at all? Not for a guarded stage
    (padding) read by a reduction: it joins its reader's kernel, where td.auto_schedule
    keeps it a stage (before a convolution, auto/rules.py `_inlinable`) or reads it in
    place (a pool, a depthwise convolution). Counting operations, as the choice does,
    would give a depthwise convolution's padding (9 reads per element) a buffer of its
    own: measured slower (MobileNetV2 6.5 against 6.1 ms, Zen 3, same run), a test per
    read costs less than a pass over memory."""
    guarded = any(isinstance(n, Select) for n in walk(op.body)) \
        if isinstance(op, ComputeOp) else True
    return not (guarded and any(pat.get(r) >= Pattern.REDUCTION for r in readers))
