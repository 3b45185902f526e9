"""From one lowered loop nest to CUDA kernels: the mapping, the checks, the launch size.

Takes `lowered.kernel` (tdsl.ir) and returns one `GpuKernel` per root-level loop nest, in
launch order. The execution model (Halide's):

- A kernel's outermost loops are bound to blockIdx; each block runs their body once.
- Inside a block, a loop bound to threadIdx starts a *thread region*: each thread takes
  one value of each bound loop (`v = start + threadIdx.x`, guarded by `v < stop`).
- Everything else in a block (serial loops, statements between regions) is run by all
  threads in step; a store there to memory other threads see is made by thread 0 only.
- Where each buffer allocated in a kernel lives is storage.py's job; barriers are placed
  afterwards by sync.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...lang.names import unique_name
from ...errors import ScheduleError
from ...ir import nodes as ir
from ...ir.simplify import simplify_index
from ...lang.expr import Expr, Var
from ...lang.visit import walk
from . import bounds
from .storage import Access, Allocation, elements, itemsize, place, rebuffer

MAX_THREADS = 1024
MAX_BLOCK = {"x": 1024, "y": 1024, "z": 64}
MAX_GRID = {"x": 2**31 - 1, "y": 65535, "z": 65535}
MAX_SHARED = 48 * 1024           # static __shared__ per block
MAX_PRIVATE = 16 * 1024          # bytes of private arrays per thread (the emulator's stacks)
MAX_UNROLL = 64                  # unrolled loops up to this many iterations become guarded
DIMS = ("x", "y", "z")


@dataclass(frozen=True)
class Where:
    """Where a statement sits: "root" (outside every block loop), "uniform" (in a block,
    outside thread loops) or "thread"; its loops as (var, start, stop), outermost first;
    the thread loops among them as (dim, var, start); the conditions of the enclosing
    ifs as expressions known to be <= 0."""

    level: str = "root"
    loops: tuple[tuple[Var, Expr, Expr], ...] = ()
    tvars: tuple[tuple[str, Var, Expr], ...] = ()
    facts: tuple[Expr, ...] = ()

    def env(self, sizes: dict) -> dict | None:
        """Intervals of the sizes and loop variables here (None: the point is unreachable)."""
        env = dict(sizes)
        for var, start, stop in self.loops:
            lo = bounds.lower_bound(start, env, self.facts)
            hi = bounds.upper_bound(stop, env, self.facts) - 1
            if lo > hi:
                return None
            env[id(var)] = (lo, hi)
        return env

    def most(self, e: Expr, sizes: dict) -> float:
        """The largest value of `e` here (0 where unreachable)."""
        env = self.env(sizes)
        return 0 if env is None else bounds.upper_bound(simplify_index(e), env, self.facts)


@dataclass(frozen=True)
class Bound:
    """A loop bound to a GPU dimension: `tag` ("blockIdx.x"), its range, where it sits."""

    tag: str
    start: Expr
    stop: Expr
    where: Where

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
    unroll: dict[int, int] = field(default_factory=dict)   # id(loop var) -> most iterations
    uses_barrier: bool = False
    static_block: tuple[int, int, int] | None = None       # when known at build time

    def __repr__(self) -> str:
        return f"<GpuKernel {self.name}: stage {self.stage}, block {self.static_block}>"

    @property
    def thread_dims(self) -> frozenset[str]:
        return frozenset(b.dim for b in self.threads)

    @property
    def shared_bytes(self) -> int:
        return sum(elements(b) * itemsize(b) for b in self.shared)

    def launch(self, sizes: dict[int, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(grid, block) for sizes {id(Var): value}; a zero in grid means nothing to run."""
        env = {k: (float(v), float(v)) for k, v in sizes.items()}
        grid = tuple(_extent(self.blocks, d, env) for d in DIMS)
        block = self.static_block or tuple(max(1, _extent(self.threads, d, env)) for d in DIMS)
        check_block(self, block, at=" at these sizes")
        for d, n in zip(DIMS, grid):
            if n > MAX_GRID[d]:
                raise ScheduleError(
                    f"kernel {self.name} (stage {self.stage}) needs {n} blocks in "
                    f"gridDim.{d} at these sizes; CUDA allows at most {MAX_GRID[d]}. Bind a "
                    "larger tile to blockIdx or use another grid dimension")
        return grid, block


def _extent(loops, dim: str, sizes: dict) -> int:
    """The most iterations any loop bound to `dim` runs (1 if none is bound)."""
    found = [b.where.most(b.stop - b.start, sizes) for b in loops if b.dim == dim]
    if not found:
        return 1
    if max(found) == bounds.INF:
        raise ScheduleError(f"cannot bound the number of iterations of the loops bound to "
                            f"{loops[0].tag[:-2]}.{dim}")
    return max(0, int(max(found)))


def check_block(k: GpuKernel, block, at: str = "") -> None:
    """Threads per block within CUDA's limits, else a ScheduleError naming the numbers."""
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
        name = unique_name(f"{kernel.name}_{stage}", names)
        result.append(_Walk(stage, globals_, kernel.sizes).kernel(name, nest))
    return result


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


# --------------------------------------------------------------------------- the walk


class _Walk:
    """Walks one root nest: checks the GPU mapping, records bound loops, allocations and
    accesses; then places the buffers (storage.py) and checks the limits."""

    def __init__(self, stage: str, globals_: dict[int, ir.Buffer], sizes):
        self.stage = stage
        self.sizes = {id(v): (1.0, bounds.INF) for v in sizes}     # sizes are >= 1
        self.globals = globals_
        self.blocks: list[Bound] = []
        self.threads: list[Bound] = []
        self.allocs: dict[int, Allocation] = {}
        self.accesses: dict[int, list[Access]] = {}
        self.used: dict[int, ir.Buffer] = {}
        self.block_tags: dict[int, str] = {}      # id(loop var) -> "blockIdx.x"
        self.loop_stage: dict[int, str] = {}      # id(loop var) -> the stage it is a loop of
        self.unroll: dict[int, int] = {}
        self.checked = False

    def kernel(self, name: str, nest: ir.Stmt) -> GpuKernel:
        self.walk(nest, Where())
        shared, private, mapping, overrides = place(self.allocs, self.accesses, self.sizes)
        order = [b for b in self.globals.values() if id(b) in self.used]
        k = GpuKernel(name, self.stage, rebuffer(nest, mapping, overrides), tuple(order),
                      tuple(shared), tuple(private), tuple(self.blocks), tuple(self.threads),
                      self.checked, self.unroll)
        if k.shared_bytes > MAX_SHARED:
            parts = ", ".join(f"{b.name} {elements(b) * itemsize(b)} B" for b in shared)
            raise ScheduleError(
                f"kernel {name} (stage {self.stage}) needs {k.shared_bytes} bytes of shared "
                f"memory per block ({parts}); CUDA allows {MAX_SHARED} bytes (48 KiB) of static "
                "shared memory. Use smaller tiles for the stages computed at the block loops")
        per_thread = sum(elements(b) * itemsize(b) for b in private)
        if per_thread > MAX_PRIVATE:
            raise ScheduleError(
                f"kernel {name} (stage {self.stage}) needs {per_thread} bytes of private arrays "
                f"per thread ({', '.join(b.name for b in private)}); the limit is "
                f"{MAX_PRIVATE}. Compute them at an inner loop, or over smaller tiles")
        try:            # constant when the tile sizes are: sizes range over [1, inf) here
            k.static_block = tuple(max(1, _extent(self.threads, d, self.sizes)) for d in DIMS)
        except ScheduleError:
            k.static_block = None       # computed at each call from the sizes
        if k.static_block is not None:
            check_block(k, k.static_block)
        return k

    def walk(self, s: ir.Stmt, where: Where) -> None:
        match s:
            case ir.Seq(stmts=stmts):
                for child in stmts:
                    self.walk(child, where)
            case ir.For():
                self.loop(s, where)
            case ir.Store(buffer=b, indices=idx, value=value, checked=checked):
                if where.level == "root":
                    self.unbound(s)
                self.access(s, b, idx, where)
                self.exprs((*idx, value), where)
                self.checked |= any(checked)
            case ir.If(cond=cond, then=then, otherwise=other):
                self.exprs((cond,), where)
                for branch, holds in ((then, True), (other, False)):
                    if branch is not None:
                        facts = where.facts + tuple(bounds.facts_of(cond, holds))
                        self.walk(branch, Where(where.level, where.loops, where.tvars, facts))
            case ir.Alloc(buffer=b, body=body):
                self.alloc(b, where)
                self.walk(body, where)
            case ir.Sync():
                pass
            case _:
                raise NotImplementedError(f"the CUDA backend cannot handle {s!r}")

    def alloc(self, b: ir.Buffer, where: Where) -> None:
        last = where.loops[-1][0] if where.loops else None
        at = f"{self.loop_stage[id(last)]}'s loop {last.name}" if last is not None else "the root"
        if b.scope == "shared" and where.level == "thread":
            raise ScheduleError(
                f"{b.name} is allocated in shared memory inside the threadIdx loop "
                f"{where.tvars[-1][1].name} (it is computed at {at}), where each thread "
                f"would get its own copy: compute {b.name} at a loop outside the threadIdx "
                "loops")
        self.allocs.setdefault(id(b), Allocation(b, where.level != "thread", where.tvars, at))

    def loop(self, s: ir.For, where: Where) -> None:
        kind = s.kind
        if s.step != 1 and "Idx." in kind:
            raise ScheduleError(f"the loop {s.var.name} bound to {kind} has stride {s.step} "
                                "(its domain is strided); bind a loop of unit stride")
        self.exprs((s.start, s.stop), where)
        stage = stage_of(s, last=True)
        self.loop_stage[id(s.var)] = stage
        loops = where.loops + ((s.var, s.start, s.stop),)
        if kind.startswith("blockIdx."):
            self.block_loop(s, stage, where)
            self.walk(s.body, Where("uniform", loops, where.tvars, where.facts))
            return
        if where.level == "root":
            self.unbound(s)
        if kind.startswith("threadIdx."):
            dim = kind[-1]
            for d, v, _ in where.tvars:
                if d == dim:
                    raise ScheduleError(f"{kind} is bound to two nested loops of {stage} "
                                        f"({v.name} and {s.var.name}); use another thread "
                                        "dimension")
            self.threads.append(Bound(kind, s.start, s.stop, where))
            tvars = where.tvars + ((dim, s.var, s.start),)
            self.walk(s.body, Where("thread", loops, tvars, where.facts))
            return
        if kind == "parallel":
            raise ScheduleError(
                f"loop {s.var.name} of {stage} is marked parallel inside a CUDA kernel, where "
                "it has no meaning; bind it to a threadIdx or blockIdx dimension instead")
        if kind == "unroll":
            most = where.most(s.stop - s.start, self.sizes)
            if most <= MAX_UNROLL:
                self.unroll[id(s.var)] = max(0, int(most))
        self.walk(s.body, Where(where.level, loops, where.tvars, where.facts))

    def block_loop(self, s: ir.For, stage: str, where: Where) -> None:
        kind = s.kind
        if where.level == "thread":
            raise ScheduleError(f"loop {s.var.name} of {stage} is bound to {kind} inside a "
                                "threadIdx loop; blockIdx loops must enclose the threadIdx loops")
        if any(id(v) not in self.block_tags for v, *_ in where.loops):
            raise ScheduleError(
                f"loop {s.var.name} of {stage} is bound to {kind} inside a loop that is not "
                "bound to blockIdx; the blockIdx loops must be the outermost loops of a "
                "kernel. Reorder them outward, or bind the outer loop too")
        for v, *_ in where.loops:
            if self.block_tags[id(v)] == kind:
                raise ScheduleError(f"{kind} is bound to two nested loops of {stage} "
                                    f"({v.name} and {s.var.name}); use another dimension")
        self.blocks.append(Bound(kind, s.start, s.stop, where))
        self.block_tags[id(s.var)] = kind

    def unbound(self, s: ir.Stmt) -> None:
        stage = stage_of(s)
        x = s.var.name if isinstance(s, ir.For) else "x"
        raise ScheduleError(
            f"the loop nest of {stage} is not mapped to the GPU: bind a loop of {stage} to "
            f"blockIdx/threadIdx. Its outermost loops must be bound to blockIdx, e.g. "
            f"{x}o, {x}i = s[{stage}].split({x}, factor=128); s[{stage}].bind({x}o, "
            f"\"blockIdx.x\"); s[{stage}].bind({x}i, \"threadIdx.x\")")

    def exprs(self, exprs, where: Where) -> None:
        for e in exprs:
            for node in walk(e):
                if isinstance(node, ir.BufferLoad):
                    self.access(node, node.buffer, node.indices, where)
                    self.checked |= any(node.checked)

    def access(self, node, b: ir.Buffer, indices, where: Where) -> None:
        if id(b) in self.globals:
            self.used[id(b)] = b
        self.accesses.setdefault(id(b), []).append(Access(node, tuple(indices), where))
