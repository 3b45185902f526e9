"""The loop-nest IR: what `td.lower` prints and what backends read.

Expressions are tdsl.lang expressions plus `BufferLoad`; statements are the
few node kinds below. Nodes are frozen; passes build new trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..lang.expr import Const, Expr, Var


@dataclass(frozen=True, eq=False)
class Buffer:
    """Storage for one tensor. `strides` are in elements: row-major unless
    storage_align padded a dimension. A buffer private to a loop iteration
    (compute_at) is indexed relative to its region, so its shape is the region's."""

    name: str
    dtype: str
    shape: tuple[Expr, ...]
    role: str = "temp"             # "input" | "output" | "temp"
    scope: str = "global"          # "global" | "local" | "shared"
    strides: tuple[Expr, ...] | None = None
    padded: bool = False           # storage_align padded a stride
    order: tuple[int, ...] = ()    # dims outermost first when not row-major (reorder_storage)

    @property
    def outer_dim(self) -> int:
        """The outermost dimension in storage: the first of `order`, else 0."""
        return self.order[0] if self.order else 0

    @property
    def elements(self) -> Expr:
        """Elements to allocate (padding included): the outermost dimension's stride
        times its extent."""
        if not self.shape:
            return Const(1, "int64")
        return self.strides[self.outer_dim] * self.shape[self.outer_dim]

    def __repr__(self) -> str:
        return f"Buffer({self.name}, {self.dtype}, scope={self.scope})"


def layout_strides(shape: tuple[Expr, ...], align=(), order: tuple[int, ...] = ()) \
        -> tuple[Expr, ...]:
    """Strides in elements: row-major, or dims laid out in `order` (outermost first,
    reorder_storage), with storage_align's `(dim, factor, offset)` padding applied."""
    padded = {dim: (factor, offset) for dim, factor, offset in align}
    result: dict[int, Expr] = {}
    stride: Expr = Const(1, "int64")
    for d in reversed(order or range(len(shape))):
        if d in padded:
            factor, offset = padded[d]
            # the smallest stride >= the natural one with stride % factor == offset
            stride = stride + ((offset - stride) % factor)
        result[d] = stride
        stride = stride * shape[d]
    return tuple(result[d] for d in range(len(shape)))


@dataclass(frozen=True, eq=False, repr=False)
class BufferLoad(Expr):
    """`buffer[indices]`; `checked[d]` asks for a run-time bounds check of index d
    (set where isl could not prove the index in bounds, e.g. a gather)."""

    buffer: Buffer
    indices: tuple[Expr, ...]
    checked: tuple[bool, ...] = ()

    @property
    def dtype(self) -> str:
        return self.buffer.dtype

    def child_exprs(self) -> tuple[Expr, ...]:
        return self.indices

    def with_children(self, kids) -> "BufferLoad":
        return BufferLoad(self.buffer, tuple(kids), self.checked)

    def format_with(self, fmt) -> str:
        return f"{self.buffer.name}[{', '.join(fmt(i) for i in self.indices) or '()'}]"


class Stmt:
    """Base of statements."""

    def __str__(self) -> str:
        from .printer import stmt_str
        return stmt_str(self)


@dataclass(frozen=True, eq=False)
class For(Stmt):
    """`for var in range(start, stop)`, run as `kind` says."""

    var: Var
    start: Expr
    stop: Expr
    body: Stmt
    kind: str = "serial"           # serial | parallel | vectorize | unroll | blockIdx.x ...
    step: int = 1                  # isl emits strided loops for strided domains


@dataclass(frozen=True, eq=False)
class Store(Stmt):
    buffer: Buffer
    indices: tuple[Expr, ...]
    value: Expr
    checked: tuple[bool, ...] = ()


@dataclass(frozen=True, eq=False)
class Prefetch(Stmt):
    """A hint: bring the cache line holding `buffer[indices]` into the cache for a read
    soon, or with `write` for a write soon (Stage.prefetch). It reads nothing and may
    name an address past the buffer's end: CPU prefetch instructions do not fault.
    Backends without one drop it."""

    buffer: Buffer
    indices: tuple[Expr, ...]
    write: bool = False


@dataclass(frozen=True, eq=False)
class If(Stmt):
    cond: Expr
    then: Stmt
    otherwise: Stmt | None = None


@dataclass(frozen=True, eq=False)
class Seq(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, eq=False)
class Alloc(Stmt):
    """`buffer` exists for the duration of `body` (heap or stack, by the backend)."""

    buffer: Buffer
    body: Stmt


@dataclass(frozen=True, eq=False)
class Sync(Stmt):
    """A barrier among the threads of a GPU block (`__syncthreads()`)."""


@dataclass(frozen=True)
class Kernel:
    """A lowered function: its parameters (buffers, then size variables) and body."""

    name: str
    params: tuple[Buffer, ...]
    sizes: tuple[Var, ...]
    body: Stmt
    temps: tuple[Buffer, ...] = field(default=())   # allocated at entry, freed at exit

    def __str__(self) -> str:
        from .printer import kernel_str
        return kernel_str(self)


def seq(*stmts: Stmt | None) -> Stmt:
    """A sequence, flattening nested sequences and dropping Nones."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))
