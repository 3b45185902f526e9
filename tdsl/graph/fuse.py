"""Fusion: the stages of a network partitioned into kernels, by the rules of TVM's
FuseOps and XLA, with SystemML's recompute-or-materialize choice where they conflict.

1. Epilogues (XLA's output fusion): a conv/dense/matmul (`out_fusable`) takes the
   elementwise and broadcast stages after it that end in one stage read elsewhere: a
   chain (bias, relu) or a diamond that meets again (gelu reads its input twice); a
   convolution computed in channel blocks (layout.py) first its view in NCHW. So does a
   reduction read by one elementwise stage at its own index (a depthwise convolution's
   bias and activation).
2. Producers, consumers first: a stage whose readers all lie in one kernel joins it if
   its pattern allows (injective chains into any consumer, elementwise prologues into
   reductions, reductions into kernels without a conv/dense); a cheap injective stage
   read by several kernels is copied into each when recomputing costs less than
   writing it once and reading it back (`cost.py`); everything else starts a kernel.

Kernel membership says which stages share one C function; inside it, `td.auto_schedule`
still decides what is inlined and what gets a buffer of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TdslError
from ..lang.tensor import Operation, PlaceholderOp, Tensor
from ..lang.visit import loads
from .cost import Choice, recompute_or_materialize
from .patterns import Pattern, blocked_view, pattern
from .rewrite import consumers

MAX_STAGES = 256          # TVM's limit on a fused group
MAX_EPILOGUE = 32         # stages an epilogue may take (gelu's diamond is 5)


@dataclass(frozen=True)
class Group:
    """The stages of one kernel (producers first) and what crosses its boundary."""

    ops: tuple[Operation, ...]
    inputs: tuple[Tensor, ...]        # read here, computed elsewhere (or placeholders)
    outputs: tuple[Tensor, ...]       # computed here, read elsewhere or network outputs
    anchor: Operation                 # the stage the kernel is named after

    @property
    def patterns(self) -> tuple[Pattern, ...]:
        return tuple(pattern(op) for op in self.ops)


@dataclass(frozen=True)
class Partition:
    groups: tuple[Group, ...]         # in an order that runs producers first
    choices: tuple[Choice, ...]       # the recompute-or-materialize decisions made


def partition(outputs: list[Tensor], order: list[Operation]) -> Partition:
    """Kernels for the stages of `order` (topological) computing `outputs`."""
    readers = consumers(order)
    outs = {id(t.op) for t in outputs}
    pat = {op: pattern(op) for op in order}
    position = {op: k for k, op in enumerate(order)}
    member: dict[Operation, list[int]] = {}          # op -> the groups holding it
    groups: list[list[Operation]] = []
    choices: list[Choice] = []

    def start(op: Operation) -> int:
        groups.append([op])
        member[op] = [len(groups) - 1]
        return len(groups) - 1

    def join(op: Operation, g: int) -> None:
        groups[g].append(op)
        member.setdefault(op, []).append(g)

    # 1. epilogues of conv / dense / matmul, and of a reduction read at its own index
    for op in order:
        if op in member or not (pat[op] is Pattern.OUT_FUSABLE or
                                _has_epilogue(op, pat, readers)):
            continue
        g = start(op)
        for nxt in _epilogue(op, order[position[op] + 1:], readers, pat, member, outs):
            join(nxt, g)
    # 2. producers, consumers first
    for op in reversed(order):
        if isinstance(op, PlaceholderOp) or op in member:
            continue
        reading = sorted({g for r in readers[op] for g in member[r]})
        if id(op) in outs or not reading:
            start(op)
        elif len(reading) == 1 and _may_join(op, pat, groups[reading[0]]):
            choice = recompute_or_materialize(op, readers[op], pat, readers)
            if choice is not None:
                choices.append(choice)
            if choice is None or choice.recompute:
                join(op, reading[0])
            else:
                start(op)
        elif len(reading) > 1 and pat[op] <= Pattern.INJECTIVE:
            choice = recompute_or_materialize(op, readers[op], pat, readers,
                                              copies=len(reading))
            choices.append(choice)
            if choice.recompute:
                for g in reading:
                    join(op, g)
            else:
                start(op)
        else:
            start(op)
    return Partition(_ordered(groups, order, readers, outs), tuple(choices))


def _epilogue(op: Operation, after, readers, pat, member, outs) -> list[Operation]:
    """The elementwise and broadcast stages after `op` that form its epilogue: the
    longest run of them, in topological order, in which one stage (the last) is read
    outside the run and every other one, `op` included, only inside it. A chain (bias,
    relu) is such a run, and so is a diamond that meets again (gelu's `x * (1 + erf(x /
    sqrt 2)) / 2` reads x twice); a blocked convolution's first link is its NCHW view."""
    if id(op) in outs:
        return []
    inside, run, best = {id(op)}, [], []
    frontier = {id(r) for r in readers[op]}
    for nxt in after:                      # the stages after op, in topological order
        if not frontier or len(run) >= MAX_EPILOGUE:
            break
        if id(nxt) not in frontier:
            continue
        if nxt in member or (pat[nxt] > Pattern.BROADCAST and
                             id(blocked_view(nxt)) not in inside):
            break
        run.append(nxt)
        inside.add(id(nxt))
        frontier.discard(id(nxt))
        frontier |= {id(r) for r in readers[nxt]} - inside
        exits = [m for m in (op, *run) if id(m) in outs or
                 any(id(r) not in inside for r in readers[m])]
        if exits == [nxt]:
            best = list(run)
        if id(nxt) in outs:
            break
    return best


def _has_epilogue(op: Operation, pat: dict, readers) -> bool:
    """A reduction (a depthwise convolution, a pooling window) whose one reader is
    elementwise on it, reading it at its own index: its bias and activation are applied
    in the reduction's loops (`TileRules._column_reduction` with a host) instead of being
    pulled into the next kernel as a prologue, so the reduction is written out once,
    finished."""
    if pat[op] is not Pattern.REDUCTION or len(readers[op]) != 1:
        return False
    reader = readers[op][0]
    if pat[reader] > Pattern.BROADCAST or len(reader.axis) != len(op.axis):
        return False
    return all(len(ld.indices) == len(op.axis) and
               all(i is a for i, a in zip(ld.indices, reader.axis))
               for ld in loads(reader.body) if ld.tensor.op is op) and \
        all(_extent(a) == _extent(b) for a, b in zip(reader.axis, op.axis))


def _extent(axis):
    return getattr(axis.extent, "value", axis.extent)


def _may_join(op: Operation, pat: dict, group: list[Operation]) -> bool:
    if len(group) >= MAX_STAGES:
        return False
    if pat[op] <= Pattern.INJECTIVE:
        return True                    # injective chains, elementwise prologues
    if pat[op] is Pattern.REDUCTION:   # softmax, layer_norm: reductions and their epilogue
        return all(pat[m] <= Pattern.REDUCTION for m in group)
    return False


def _ordered(groups, order, readers, outs) -> tuple[Group, ...]:
    """Groups with their boundaries, sorted so that every kernel runs after the kernels
    whose outputs it reads."""
    position = {op: k for k, op in enumerate(order)}
    built = []
    for ops in groups:
        inside = set(map(id, ops))
        ops = sorted(ops, key=position.__getitem__)
        inputs: list[Tensor] = []
        for op in ops:
            for t in op.input_tensors:
                if id(t.op) not in inside and t not in inputs:
                    inputs.append(t)
        outputs = [op.output(0) for op in ops
                   if id(op) in outs or any(id(r) not in inside and
                                            not _has_copy(r, op, groups) for r in readers[op])]
        anchor = next((op for op in ops if pattern(op) is Pattern.OUT_FUSABLE), ops[-1])
        built.append(Group(tuple(ops), tuple(inputs), tuple(outputs), anchor))
    # Kahn's algorithm, ties by the position of the group's last stage
    producer = {id(t.op): k for k, g in enumerate(built) for t in g.outputs}
    needs = {k: {producer[id(t.op)] for t in g.inputs if id(t.op) in producer} - {k}
             for k, g in enumerate(built)}
    done: list[int] = []
    while len(done) < len(built):
        ready = [k for k in range(len(built)) if k not in done and needs[k] <= set(done)]
        if not ready:
            raise TdslError("internal error: the fused kernels depend on each other in a "
                            "cycle; please report the network")
        done.append(min(ready, key=lambda k: position[built[k].ops[-1]]))
    return tuple(built[k] for k in done)


def _has_copy(reader: Operation, op: Operation, groups) -> bool:
    """Does the kernel of `reader` hold its own copy of `op` (a recomputed stage)?"""
    return any(reader in g and op in g for g in groups)
