"""From one lowered loop nest to CUDA kernels: the mapping, the storage, the launch size.

Takes `lowered.kernel` (tdsl.ir) and returns one `GpuKernel` per root-level loop nest, in
launch order. The execution model (Halide's):

- A kernel's outermost loops are bound to blockIdx; each block runs their body once.
- Inside a block, a loop bound to threadIdx starts a *thread region*: each thread takes
  one value of each bound loop (`v = start + threadIdx.x`, guarded by `v < stop`).
- Everything else in a block (serial loops, statements between regions) is run by all
  threads in step; a store there to memory other threads see is made by thread 0 only.
- Storage allocated inside a block: "shared" scope, or the default scope outside the
  thread loops, is one `__shared__` array per block; "local" scope, or any buffer inside
  the thread loops, is private to each thread. A private buffer allocated outside the
  thread loops must be used so that each element belongs to one thread: the dimensions
  indexed by a thread loop are dropped (a register tile), the rest is kept per thread.

Barriers are placed afterwards by `sync.insert_barriers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ScheduleError
from ...ir import nodes as ir
from ...ir.simplify import simplify_index
from ...lang.expr import Const, Expr, Var
from ...lang.visit import substitute, transform, walk
from . import bounds

MAX_THREADS = 1024
MAX_BLOCK = {"x": 1024, "y": 1024, "z": 64}
MAX_GRID = {"x": 2**31 - 1, "y": 65535, "z": 65535}
MAX_SHARED = 48 * 1024           # static __shared__ per block
MAX_PRIVATE = 16 * 1024          # bytes of private arrays per thread (the emulator's stacks)
DIMS = ("x", "y", "z")
# threadIdx.x etc. as variables, for the register-tile test and the renderer's guards.
THREAD_VARS = {d: Var(f"threadIdx.{d}", "int64") for d in DIMS}


@dataclass(frozen=True)
class Bound:
    """A loop bound to a GPU dimension: `tag` ("blockIdx.x"), its range, and the loops
    around it as (var, start, stop), outermost first, to size the launch."""

    tag: str
    start: Expr
    stop: Expr
    outer: tuple[tuple[Var, Expr, Expr], ...]

    @property
    def dim(self) -> str:
        return self.tag[-1]


@dataclass(repr=False)
class GpuKernel:
    """One `__global__` function: its body in tdsl IR (Allocs removed, Syncs added by
    sync.py), the global buffers it takes, and its private and shared storage."""

    name: str
    stage: str
    body: ir.Stmt
    buffers: tuple[ir.Buffer, ...]         # global buffers it takes, in argument order
    shared: tuple[ir.Buffer, ...]
    private: tuple[ir.Buffer, ...]
    blocks: tuple[Bound, ...]
    threads: tuple[Bound, ...]
    checked: bool                          # has run-time index checks: takes the error flag
    uses_barrier: bool = False
    static_block: tuple[int, int, int] | None = None   # when known at build time
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<GpuKernel {self.name}: stage {self.stage}, block {self.static_block}>"

    @property
    def thread_dims(self) -> frozenset[str]:
        return frozenset(b.dim for b in self.threads)

    @property
    def shared_bytes(self) -> int:
        return sum(_elements(b) * _itemsize(b) for b in self.shared)

    def launch(self, sizes: dict[int, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(grid, block) for sizes {id(Var): value}; a zero in grid means nothing to run."""
        env = {k: (float(v), float(v)) for k, v in sizes.items()}
        grid = tuple(_extent(self.blocks, d, env) for d in DIMS)
        block = self.static_block or tuple(max(1, _extent(self.threads, d, env)) for d in DIMS)
        check_block(self, block, sizes)
        for d, n in zip(DIMS, grid):
            if n > MAX_GRID[d]:
                raise ScheduleError(
                    f"kernel {self.name} (stage {self.stage}) needs {n} blocks in "
                    f"gridDim.{d} at these sizes; CUDA allows at most {MAX_GRID[d]}. Bind a "
                    "larger tile to blockIdx or use another grid dimension")
        return grid, block


def _extent(loops, dim: str, env: dict, empty: int = 1) -> int:
    """The most iterations any loop bound to `dim` runs, or `empty` if none is bound."""
    best = None
    for b in loops:
        if b.dim != dim:
            continue
        inner = dict(env)
        reachable = True
        for var, start, stop in b.outer:
            lo = bounds.interval(start, inner)[0]
            hi = bounds.interval(stop, inner)[1] - 1
            if lo > hi:
                reachable = False
                break
            inner[id(var)] = (lo, hi)
        n = bounds.upper_bound(simplify_index(b.stop - b.start), inner) if reachable else 0
        if n == bounds.INF:
            raise ScheduleError(f"cannot bound the extent of the loop bound to {b.tag} "
                                f"(from {b.start} to {b.stop})")
        best = max(best or 0, int(n))
    return empty if best is None else max(best, 0)


def check_block(k: GpuKernel, block, sizes=None) -> None:
    """Threads per block within CUDA's limits, else a ScheduleError naming the numbers."""
    at = " at these sizes" if sizes else ""
    for d, n in zip(DIMS, block):
        if n > MAX_BLOCK[d]:
            raise ScheduleError(
                f"kernel {k.name} (stage {k.stage}) needs blockDim.{d} = {n}{at}; CUDA allows "
                f"at most {MAX_BLOCK[d]}. Split the loop bound to threadIdx.{d} by a smaller "
                "factor")
    total = block[0] * block[1] * block[2]
    if total > MAX_THREADS:
        raise ScheduleError(
            f"kernel {k.name} (stage {k.stage}) needs {block[0]} x {block[1]} x {block[2]} = "
            f"{total} threads per block{at}; CUDA allows at most {MAX_THREADS}. Bind smaller "
            "tiles to threadIdx (split by smaller factors)")


# --------------------------------------------------------------------------- splitting


def split_kernels(kernel: ir.Kernel) -> list[GpuKernel]:
    """One GpuKernel per root-level loop nest of `kernel`, in order (without barriers)."""
    nests = list(kernel.body.stmts) if isinstance(kernel.body, ir.Seq) else [kernel.body]
    globals_ = {id(b): b for b in (*kernel.params, *kernel.temps)}
    for t in kernel.temps:
        if t.scope != "global":
            raise ScheduleError(
                f"{t.name} has scope {t.scope!r} but is computed at the root, in its own "
                f"kernel; {t.scope} memory lives only inside a kernel. compute_at {t.name} "
                "inside the blockIdx loops of its consumer")
    names: set[str] = set()
    result = []
    for nest in nests:
        stage = stage_of(nest, last=True)
        name = _unique(f"{kernel.name}_{stage}", names)
        analysis = _Analysis(stage, globals_, kernel.sizes)
        result.append(analysis.kernel(name, merge_allocs(nest)))
    return result


def _unique(name: str, taken: set[str]) -> str:
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def stage_of(s: ir.Stmt, last: bool = False) -> str:
    """The name of the buffer the first (or last) store under `s` writes: its stage. The
    last store of a root nest is the stage whose loops the nest is."""
    match s:
        case ir.Store(buffer=b):
            return b.name
        case ir.For(body=body) | ir.Alloc(body=body):
            return stage_of(body, last)
        case ir.If(then=then):
            return stage_of(then, last)
        case ir.Seq(stmts=stmts):
            for child in reversed(stmts) if last else stmts:
                name = stage_of(child, last)
                if name != "?":
                    return name
    return "?"


def merge_allocs(s: ir.Stmt) -> ir.Stmt:
    """Adjacent Allocs of one buffer in a sequence become one (isl may split the body of a
    loop with a single iteration into pieces, each under its own copy of the Alloc)."""
    match s:
        case ir.Seq(stmts=stmts):
            out: list[ir.Stmt] = []
            for child in (merge_allocs(c) for c in stmts):
                if isinstance(child, ir.Alloc) and out and isinstance(out[-1], ir.Alloc) \
                        and out[-1].buffer is child.buffer:
                    out[-1] = ir.Alloc(child.buffer, merge_allocs(ir.seq(out[-1].body,
                                                                         child.body)))
                else:
                    out.append(child)
            return ir.seq(*out)
        case ir.For(var=v, start=start, stop=stop, body=body, kind=kind):
            return ir.For(v, start, stop, merge_allocs(body), kind)
        case ir.If(cond=cond, then=then, otherwise=other):
            return ir.If(cond, merge_allocs(then),
                         merge_allocs(other) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            return ir.Alloc(b, merge_allocs(body))
    return s


# --------------------------------------------------------------------------- analysis

ThreadVars = tuple[tuple[str, Var, Expr], ...]        # (dim, loop var, loop start)


@dataclass
class _Alloc:
    buffer: ir.Buffer
    uniform: bool                   # outside every thread loop
    tvars: ThreadVars               # thread loops around the Alloc
    where: str                      # the stage and loop it is computed at, for messages


class _Analysis:
    """Walks one root nest: checks the GPU mapping, records bound loops, allocations and
    accesses; then decides storage and rewrites the body."""

    def __init__(self, stage: str, globals_: dict[int, ir.Buffer], sizes):
        self.stage = stage
        self.size_env = {id(v): (1.0, bounds.INF) for v in sizes}     # sizes are >= 1
        self.globals = globals_
        self.blocks: list[Bound] = []
        self.threads: list[Bound] = []
        self.allocs: dict[int, _Alloc] = {}
        self.accesses: dict[int, list[tuple[tuple[Expr, ...], ThreadVars]]] = {}
        self.used: dict[int, ir.Buffer] = {}
        self.block_tags: dict[int, str] = {}      # id(loop var) -> "blockIdx.x"
        self.loop_stage: dict[int, str] = {}      # id(loop var) -> the stage it is a loop of
        self.checked = False

    # -- walking ---------------------------------------------------------------------
    def kernel(self, name: str, nest: ir.Stmt) -> GpuKernel:
        self.walk(nest, "root", (), ())
        shared, private, mapping = self.storage()
        body = rebuffer(nest, mapping)
        order = [b for b in self.globals.values() if id(b) in self.used]
        k = GpuKernel(name, self.stage, body, tuple(order), tuple(shared), tuple(private),
                      tuple(self.blocks), tuple(self.threads), self.checked)
        if k.shared_bytes > MAX_SHARED:
            parts = ", ".join(f"{b.name} {_elements(b) * _itemsize(b)} B" for b in shared)
            raise ScheduleError(
                f"kernel {name} (stage {self.stage}) needs {k.shared_bytes} bytes of shared "
                f"memory per block ({parts}); CUDA allows {MAX_SHARED} bytes (48 KiB) of static "
                "shared memory. Use smaller tiles for the stages computed at the block loops")
        per_thread = sum(_elements(b) * _itemsize(b) for b in private)
        if per_thread > MAX_PRIVATE:
            raise ScheduleError(
                f"kernel {name} (stage {self.stage}) needs {per_thread} bytes of private arrays "
                f"per thread ({', '.join(b.name for b in private)}); the limit is "
                f"{MAX_PRIVATE}. Compute them at an inner loop, or over smaller tiles")
        try:            # constant when the tile sizes are: sizes range over [1, inf) here
            k.static_block = tuple(max(1, _extent(self.threads, d, self.size_env))
                                   for d in DIMS)
        except ScheduleError:
            k.static_block = None       # computed at each call from the sizes
        if k.static_block is not None:
            check_block(k, k.static_block)
        return k

    def walk(self, s: ir.Stmt, level: str, loops: tuple, tvars: ThreadVars) -> None:
        match s:
            case ir.Seq(stmts=stmts):
                for child in stmts:
                    self.walk(child, level, loops, tvars)
            case ir.For():
                self.loop(s, level, loops, tvars)
            case ir.Store(buffer=b, indices=idx, value=value, checked=checked):
                if level == "root":
                    self.unbound(s)
                self.access(b, idx, tvars)
                self.exprs((*idx, value), tvars)
                self.checked |= any(checked)
            case ir.If(cond=cond, then=then, otherwise=other):
                self.exprs((cond,), tvars)
                self.walk(then, level, loops, tvars)
                if other is not None:
                    self.walk(other, level, loops, tvars)
            case ir.Alloc(buffer=b, body=body):
                where = f"{self.loop_stage[id(loops[-1][0])]}'s loop {loops[-1][0].name}" \
                    if loops else "the root"
                if b.scope == "shared" and level == "thread":
                    raise ScheduleError(
                        f"{b.name} is allocated in shared memory inside the threadIdx loop "
                        f"{tvars[-1][1].name} (it is computed at {where}), where each thread "
                        f"would get its own copy: compute {b.name} at a loop outside the "
                        "threadIdx loops")
                self.allocs.setdefault(id(b), _Alloc(b, level != "thread", tvars, where))
                self.walk(body, level, loops, tvars)
            case ir.Sync():
                pass
            case _:
                raise NotImplementedError(f"the CUDA backend cannot handle {s!r}")

    def loop(self, s: ir.For, level: str, loops: tuple, tvars: ThreadVars) -> None:
        kind = s.kind
        self.exprs((s.start, s.stop), tvars)
        inner = loops + ((s.var, s.start, s.stop),)
        stage = stage_of(s, last=True)
        self.loop_stage[id(s.var)] = stage
        if kind.startswith("blockIdx."):
            if level == "thread":
                raise ScheduleError(
                    f"loop {s.var.name} of {stage} is bound to {kind} inside a threadIdx loop; "
                    "blockIdx loops must enclose the threadIdx loops")
            if any(id(v) not in self.block_tags for v, *_ in loops):
                raise ScheduleError(
                    f"loop {s.var.name} of {stage} is bound to {kind} inside a loop that is not "
                    "bound to blockIdx; the blockIdx loops must be the outermost loops of a "
                    "kernel. Reorder them outward, or bind the outer loop too")
            for v, *_ in loops:
                if self.block_tags[id(v)] == kind:
                    raise ScheduleError(f"{kind} is bound to two nested loops of {stage} "
                                        f"({v.name} and {s.var.name}); use another dimension")
            self.blocks.append(Bound(kind, s.start, s.stop, loops))
            self.block_tags[id(s.var)] = kind
            self.walk(s.body, "uniform", inner, tvars)
            return
        if level == "root":
            self.unbound(s)
        if kind.startswith("threadIdx."):
            dim = kind[-1]
            if any(d == dim for d, _, _ in tvars):
                outer = next(v.name for d, v, _ in tvars if d == dim)
                raise ScheduleError(f"{kind} is bound to two nested loops of {stage} ({outer} "
                                    f"and {s.var.name}); use another thread dimension")
            self.threads.append(Bound(kind, s.start, s.stop, loops))
            self.walk(s.body, "thread", inner, tvars + ((dim, s.var, s.start),))
            return
        if kind == "parallel":
            raise ScheduleError(
                f"loop {s.var.name} of {stage} is marked parallel inside a CUDA kernel, where "
                "it has no meaning; bind it to a threadIdx or blockIdx dimension instead")
        self.walk(s.body, level, inner, tvars)

    def unbound(self, s: ir.Stmt) -> None:
        stage = stage_of(s)
        x = s.var.name if isinstance(s, ir.For) else "x"
        raise ScheduleError(
            f"the loop nest of {stage} is not mapped to the GPU: bind a loop of {stage} to "
            f"blockIdx/threadIdx. Its outermost loops must be bound to blockIdx, e.g. "
            f"{x}o, {x}i = s[{stage}].split({x}, factor=128); s[{stage}].bind({x}o, "
            f"\"blockIdx.x\"); s[{stage}].bind({x}i, \"threadIdx.x\")")

    def exprs(self, exprs, tvars: ThreadVars) -> None:
        for e in exprs:
            for node in walk(e):
                if isinstance(node, ir.BufferLoad):
                    self.access(node.buffer, node.indices, tvars)
                    self.checked |= any(node.checked)

    def access(self, b: ir.Buffer, indices, tvars: ThreadVars) -> None:
        if id(b) in self.globals:
            self.used[id(b)] = b
        self.accesses.setdefault(id(b), []).append((tuple(indices), tvars))

    # -- storage ---------------------------------------------------------------------
    def storage(self):
        """(shared buffers, private buffers, {id(old buffer): (new buffer, kept dims)})."""
        shared, private, mapping = [], [], {}
        for a in self.allocs.values():
            b = a.buffer
            if a.uniform and b.scope in ("shared", "global"):
                new = _static(b, range(len(b.shape)), "shared memory", self.size_env)
                shared.append(new)
                mapping[id(b)] = (new, tuple(range(len(b.shape))))
                continue
            kept = self.private_dims(a)
            new = _static(b, kept, "a private (per-thread) array", self.size_env)
            private.append(new)
            mapping[id(b)] = (new, kept)
        return shared, private, mapping

    def private_dims(self, a: _Alloc) -> tuple[int, ...]:
        """The dimensions of a private buffer each thread keeps: those not indexed by a
        thread loop entered after the Alloc; refuses if elements are shared by threads."""
        b = a.buffer
        outer_dims = {d for d, _, _ in a.tvars}
        promoted: dict[int, str | None] = {}
        uses = self.accesses.get(id(b), [])
        for indices, tvars in uses:
            extra = [(d, v, start) for d, v, start in tvars if d not in outer_dims]
            env = {v: start + THREAD_VARS[d] for d, v, start in extra}
            for k, index in enumerate(indices):
                pure = simplify_index(substitute(index, env)) if env else index
                dim = next((d for d, _, _ in extra if pure is THREAD_VARS[d]), None)
                promoted[k] = dim if promoted.get(k, dim) == dim else None
        promoted = {k: d for k, d in promoted.items() if d is not None}
        dims = sorted(promoted.values())
        ok = len(set(dims)) == len(dims)
        for indices, tvars in uses:
            extra = sorted(d for d, _, _ in tvars if d not in outer_dims)
            ok = ok and extra == dims
        if not ok:
            raise ScheduleError(
                f"{b.name} (scope {b.scope!r}) is computed at {a.where}, outside the threadIdx "
                f"loops that use it, so it is private to each thread, but its elements are not "
                f"each used by one thread: every access must index one dimension of "
                f"{b.name} by each threadIdx loop around it (as a register tile indexed by "
                f"(threadIdx.y, threadIdx.x)). Bind its own loops to the same threads, compute "
                f"it inside the threadIdx loops, or make it 'shared'")
        return tuple(k for k in range(len(b.shape)) if k not in promoted)


def _static(b: ir.Buffer, kept, what: str, env: dict) -> ir.Buffer:
    """`b` restricted to dimensions `kept`, with constant shape and row-major strides
    (the largest size over all iterations); refuses sizes that depend on the input sizes."""
    shape = []
    for k in kept:
        n = bounds.upper_bound(b.shape[k], env)
        if n == bounds.INF:
            raise ScheduleError(
                f"{b.name} would be {what} of shape [{', '.join(map(str, b.shape))}], which "
                "depends on the input sizes; CUDA needs its size at compile time. Compute it "
                "over constant tiles (split by a constant factor and compute_at the tile loop)")
        shape.append(Const(max(int(n), 1), "int64"))
    same = tuple(kept) == tuple(range(len(b.shape))) and all(
        isinstance(x, Const) for x in (*b.shape, *(b.strides or ())))
    if same and b.strides is not None:
        return b
    strides, stride = [], 1
    for n in reversed(shape):
        strides.append(Const(stride, "int64"))
        stride *= n.value
    return ir.Buffer(b.name, b.dtype, tuple(shape), b.role, b.scope, tuple(reversed(strides)))


def _elements(b: ir.Buffer) -> int:
    if not b.shape:
        return 1
    return int(b.strides[0].value) * int(b.shape[0].value)


def _itemsize(b: ir.Buffer) -> int:
    return np.dtype(b.dtype).itemsize


# --------------------------------------------------------------------------- rewriting


def rebuffer(s: ir.Stmt, mapping: dict) -> ir.Stmt:
    """`s` without Allocs, every access to a buffer in `mapping` redirected to its new
    buffer with only the kept dimensions."""

    def fix_expr(e: Expr) -> Expr:
        def fn(node):
            if isinstance(node, ir.BufferLoad) and id(node.buffer) in mapping:
                new, kept = mapping[id(node.buffer)]
                return ir.BufferLoad(new, tuple(node.indices[k] for k in kept),
                                     tuple(node.checked[k] for k in kept) if node.checked
                                     else ())
            return None
        return transform(e, fn)

    def go(s: ir.Stmt) -> ir.Stmt:
        match s:
            case ir.Seq(stmts=stmts):
                return ir.seq(*(go(c) for c in stmts))
            case ir.For(var=v, start=start, stop=stop, body=body, kind=kind):
                return ir.For(v, fix_expr(start), fix_expr(stop), go(body), kind)
            case ir.Store(buffer=b, indices=idx, value=value, checked=checked):
                idx = tuple(fix_expr(i) for i in idx)
                if id(b) in mapping:
                    b, kept = mapping[id(b)]
                    idx = tuple(idx[k] for k in kept)
                    checked = tuple(checked[k] for k in kept) if checked else ()
                return ir.Store(b, idx, fix_expr(value), checked)
            case ir.If(cond=cond, then=then, otherwise=other):
                return ir.If(fix_expr(cond), go(then), go(other) if other is not None else None)
            case ir.Alloc(body=body):
                return go(body)
        return s

    return go(s)
