"""What the schedule hands to the polyhedral layer: arrays, statements, a loop tree.

This is plain data in tdsl.lang terms; `tdsl.poly.model` turns it into isl
objects. A statement is one store, `target[index] = value`, executed for every
point of its domain (its root axes, restricted by `conditions`). The loop tree
says which loops enclose which statements, in which order, and how each loop's
value is computed from the statements it encloses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..lang.expr import Expr, IterVar, Var


@dataclass(frozen=True, eq=False)
class Array:
    """Storage of one tensor. `Program.attach` may make it private to one iteration of a
    loop (compute_at): isl then sizes it from the region read in one iteration."""

    name: str
    dtype: str
    shape: tuple[Expr, ...]
    role: str = "temp"                     # "input" | "output" | "temp"
    scope: str = "global"                  # "global" | "local" | "shared"
    align: tuple[tuple[int, int, int], ...] = ()   # storage_align: (dim, factor, offset)
    storage_order: tuple[int, ...] = ()    # reorder_storage: dims, outermost first

    def __repr__(self) -> str:
        return f"Array({self.name})"


@dataclass(frozen=True, eq=False)
class Statement:
    """`target[index] = value` for every point of its domain where `where` holds (an
    affine `where` narrows the domain; any other is tested in the loop body)."""

    name: str                              # unique, the isl tuple name ("C_update")
    stage: str                             # the stage as the user knows it ("C")
    kind: str                              # "compute" | "init" | "update" | "recurrence"
    dims: tuple[IterVar, ...]              # root axes, outermost first
    target: Array
    index: tuple[Expr, ...]
    value: Expr
    where: Expr | None = None
    reduction: bool = False                # commutative reduction update: self-deps reorderable
    ref_order: tuple[Expr | int, ...] = () # position in the reference order
    prefetches: tuple["Prefetch", ...] = ()  # cache hints (Stage.prefetch): not accesses

    def __repr__(self) -> str:
        return f"Statement({self.name})"


@dataclass(frozen=True, eq=False)
class Prefetch:
    """Each instance of a statement also asks for what it reads from `array` (with
    `write`: what it writes to `array`, its own output) with its root axis `dim` moved
    `shift` ahead (Stage.prefetch). A hint, not an access: isl's analyses ignore it."""

    array: Array
    dim: IterVar
    shift: int
    write: bool = False


@dataclass(frozen=True, eq=False)
class Loop:
    """A loop over the leaf axis `var` of `stage`. `values[s]` is this loop's value for
    each statement `s` of its own stage, in that statement's dims."""

    var: IterVar
    stage: str
    kind: str
    values: dict[str, Expr]
    body: tuple["Node", ...]
    allocs: tuple[Array, ...] = ()

    def __repr__(self) -> str:
        return f"Loop({self.stage}.{self.var.name})"


Node = Union[Loop, Statement]


@dataclass(frozen=True, eq=False)
class Program:
    """A whole kernel: its arrays (by tensor), the root sequence and the size parameters."""

    name: str
    arrays: tuple[Array, ...]
    array_of: dict[int, Array]             # id(tensor.op) -> Array (updates share their base)
    body: tuple[Node, ...]
    params: tuple[Var, ...]
    attach: dict[str, Loop] = field(default_factory=dict)   # array name -> loop it is private to
    context: dict[str, int] = field(default_factory=dict)   # sizes known at build time

    def statements(self) -> list[Statement]:
        return [s for s, _ in walk(self.body)]


def walk(nodes: tuple[Node, ...], path: tuple[Loop, ...] = ()):
    """Yield (statement, enclosing loops outermost first) in program order."""
    for node in nodes:
        if isinstance(node, Statement):
            yield node, path
        else:
            yield from walk(node.body, path + (node,))


def loops(nodes: tuple[Node, ...], path: tuple[Loop, ...] = ()):
    """Yield (loop, enclosing loops) in program order."""
    for node in nodes:
        if isinstance(node, Loop):
            yield node, path
            yield from loops(node.body, path + (node,))
