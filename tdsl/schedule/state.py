"""The state of one stage's schedule: frozen records that primitives replace.

A stage starts with one loop per axis (data axes, then reduction axes). Split
and fuse record relations between axes; the loops are the current leaves in
order. Every loop's value is an expression of the root axes:

    split:  outer = (parent - start) // f,   inner = (parent - start) % f
    fuse:   fused = outer * extent(inner) + inner

which the polyhedral layer turns into isl maps (ISL_NOTES §2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..lang import dtypes
from ..lang.expr import Const, Expr, IterVar
from ..lang.tensor import ComputeOp, Operation, UpdateOp


@dataclass(frozen=True)
class Split:
    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: int


@dataclass(frozen=True)
class Fuse:
    outer: IterVar
    inner: IterVar
    fused: IterVar


Relation = Split | Fuse


@dataclass(frozen=True)
class Prefetch:
    """s[X].prefetch(tensor, ...): X's reads of `tensor` (with `write`: X's writes of its
    own output, whatever later rewrites of X compute it from) are also made `shift`
    steps ahead along the root axis `axis`, as cache hints (the loop and distance the
    user named, turned into a root axis when the call was made)."""

    tensor: object                                 # the Tensor read, or X's output
    axis: IterVar
    shift: int
    write: bool = False


@dataclass(frozen=True)
class StageState:
    """Everything a schedule says about one stage."""

    op: Operation                                  # current op (cache/rfactor rewrite it)
    leaves: tuple[IterVar, ...]                    # loops, outermost first
    relations: tuple[Relation, ...] = ()
    kinds: tuple[tuple[IterVar, str], ...] = ()    # loop annotations (parallel, ...)
    attach: tuple | None = None                    # None: root; (stage key, leaf); "inline"
    scope: str = "global"
    align: tuple[tuple[int, int, int], ...] = ()   # storage_align (dim, factor, offset)
    storage_order: tuple[int, ...] = ()            # reorder_storage: dims, outermost first
    prefetches: tuple["Prefetch", ...] = ()        # prefetch: reads fetched ahead

    @property
    def inlined(self) -> bool:
        return self.attach == "inline"

    def kind_of(self, leaf: IterVar) -> str:
        for iv, kind in self.kinds:
            if iv is leaf:
                return kind
        return "serial"

    def with_kind(self, leaf: IterVar, kind: str) -> "StageState":
        kinds = tuple((iv, k) for iv, k in self.kinds if iv is not leaf)
        return replace(self, kinds=kinds + ((leaf, kind),))


def root_axes(op: Operation) -> tuple[IterVar, ...]:
    if isinstance(op, ComputeOp):
        return op.axis + op.reduce_axis
    if isinstance(op, UpdateOp):
        return op.axis + op.reduce_axis
    return ()


def initial_state(op: Operation) -> StageState:
    return StageState(op=op, leaves=root_axes(op))


def leaf_values(state: StageState) -> dict[IterVar, Expr]:
    """Every axis of the stage (root and derived) as an expression of the root axes."""
    values: dict[IterVar, Expr] = {a: a for a in root_axes(state.op)}
    for rel in state.relations:
        if isinstance(rel, Split):
            rel_value = values[rel.parent] - rel.parent.start
            values[rel.outer] = rel_value // rel.factor
            values[rel.inner] = rel_value % rel.factor
        else:
            inner_extent = rel.inner.extent
            values[rel.fused] = (values[rel.outer] - rel.outer.start) * inner_extent + \
                (values[rel.inner] - rel.inner.start)
    return values


def derived_from(state: StageState) -> dict[IterVar, frozenset[IterVar]]:
    """The root axes each axis depends on."""
    roots: dict[IterVar, frozenset[IterVar]] = {a: frozenset([a]) for a in root_axes(state.op)}
    for rel in state.relations:
        if isinstance(rel, Split):
            roots[rel.outer] = roots[rel.inner] = roots[rel.parent]
        else:
            roots[rel.fused] = roots[rel.outer] | roots[rel.inner]
    return roots


def root_step(state: StageState, leaf: IterVar) -> tuple[IterVar, int] | Fuse:
    """The root axis a loop moves along and how far one of its iterations moves it (a
    split's outer loop moves its parent by the factor, the inner by 1); for a loop made
    by fusing (no single step along one axis), the Fuse that made it."""
    axis, step = leaf, 1
    while True:
        rel = next((r for r in state.relations
                    if any(axis is a for a in ((r.outer, r.inner) if isinstance(r, Split)
                                               else (r.fused,)))), None)
        if rel is None:
            return axis, step
        if isinstance(rel, Fuse):
            return rel
        step *= rel.factor if axis is rel.outer else 1
        axis = rel.parent


def is_reduce_leaf(state: StageState, leaf: IterVar) -> bool:
    return any(r.kind == "reduce" for r in derived_from(state)[leaf])


def new_axis(name: str, extent: Expr, kind: str) -> IterVar:
    return IterVar(name, Const(0, dtypes.INDEX), extent, kind)


def ceil_div(extent: Expr, factor: int) -> Expr:
    from ..ir.simplify import simplify_index
    return simplify_index(extent + (factor - 1)) // factor

