"""CUDA source from the kernels of kernels.py: `extern "C" __global__` functions via cgen.

Expressions are rendered by the C backend's ExprRenderer; the C prelude's integer and
float helpers are reused as `__device__` functions. Loops bound to blockIdx/threadIdx
become index variables guarded by their upper bound (never an early return, which
would leave threads out of a later `__syncthreads()`); a store other threads can see
that is reached by threads that should not all make it (uniform code, or a thread region
that binds fewer dimensions than the block has) is guarded to threadIdx == 0 in those
dimensions.

>>> source = render(split_and_sync(lowered.kernel))                    # doctest: +SKIP
"""

from __future__ import annotations

import re

import cgen as c

from ...errors import ScheduleError
from ...ir import nodes as ir
from ...ir.simplify import simplify_index
from ...lang.expr import Const
from ..c.prelude import PRELUDE as C_PRELUDE
from ..c.render import C_TYPES, ExprRenderer, _strip
from .kernels import DIMS, GpuKernel

# The C prelude's pure helpers, reused on the device (the allocation, error and exp
# helpers are host-only there and replaced below).
_REUSED = re.compile(r"tdsl_(floordiv|mod|fmod|min|max|abs)_\w+|tdsl_ipow|tdsl_check")


def _device_prelude() -> str:
    parts = []
    for m in re.finditer(r"^static inline [^\n]*?\b(tdsl_\w+)\(.*?(?=^static |^#|^/\*|\Z)",
                         C_PRELUDE, flags=re.DOTALL | re.MULTILINE):
        if _REUSED.fullmatch(m.group(1)):
            parts.append(m.group(0).replace("static inline", "static __device__ __forceinline__",
                                            1).rstrip() + "\n")
    return "".join(parts)


PRELUDE = (
    "#include <stdint.h>\n#include <math.h>\n\n"
    "static __device__ __forceinline__ void tdsl_fail(int* err, int code) "
    "{ *(volatile int*)err = code; }\n"
    + _device_prelude()
    + "#define tdsl_expf expf\n"
    + "#define tdsl_round_f32(x) ((float)(x))\n"     # the C barrier is for gcc's vectorizer
)


def cuda_type(dtype: str) -> str:
    if dtype == "float16":
        raise ScheduleError("float16 is not supported by the CUDA backend yet; compute in "
                            "float32 (.astype('float32'))")
    return C_TYPES[dtype]


def render(kernels: list[GpuKernel], size_vars) -> str:
    """The CUDA source of all kernels: the prelude, then one __global__ function each."""
    for k in kernels:
        for b in (*k.buffers, *k.shared, *k.private):
            cuda_type(b.dtype)
    return PRELUDE + "\n" + "\n\n".join(str(_KernelRenderer(k).function(size_vars))
                                        for k in kernels) + "\n"


class _KernelRenderer:
    def __init__(self, k: GpuKernel):
        self.k = k
        self.e = ExprRenderer(checked_index=True)
        self.private = {b.name for b in k.private}
        self.thread_dims = [d for d in DIMS if d in k.thread_dims]

    def function(self, size_vars) -> c.FunctionBody:
        k = self.k
        params = []
        for b in k.buffers:
            const = "const " if b.role == "input" else ""
            params.append(c.Value(f"{const}{cuda_type(b.dtype)}* __restrict__", b.name))
        params += [c.Value("int64_t", v.name) for v in size_vars]
        body: list = []
        if k.checked:
            params.append(c.Value("int* __restrict__", "tdsl_err_flag"))
            body.append(c.Statement("int& tdsl_err = *tdsl_err_flag"))
        for b in k.shared:
            body.append(c.Statement(f"__shared__ {cuda_type(b.dtype)} {b.name}[{_count(b)}]"))
        for b in k.private:
            body.append(c.Statement(f"{cuda_type(b.dtype)} {b.name}[{_count(b)}]"))
        body += self.stmts(k.body, bound=frozenset(), single=False)
        bounds = ""
        if k.static_block is not None:
            threads = k.static_block[0] * k.static_block[1] * k.static_block[2]
            bounds = f"__launch_bounds__({threads}) "
        decl = c.FunctionDeclaration(c.Value(f'extern "C" __global__ void {bounds}'.rstrip(),
                                             k.name), params)
        return c.FunctionBody(decl, c.Block(body))

    # -- statements ------------------------------------------------------------------
    def stmts(self, s: ir.Stmt, bound: frozenset, single: bool) -> list:
        """cgen lines of `s`; `bound` are the thread dimensions bound by enclosing thread
        loops, `single` is True inside a block already guarded to thread 0."""
        match s:
            case ir.Seq(stmts=children):
                return [line for child in children for line in self.stmts(child, bound, single)]
            case ir.For(kind=kind) if "Idx." in kind:
                return [self.bound_loop(s, bound, single)]
            case ir.For():
                if not single and self.only_thread0(s, bound):
                    return [self.guard_thread0(s, bound)]
                return self.loop(s, bound, single)
            case ir.Store(buffer=b, indices=idx, value=value, checked=checked):
                line = c.Statement(f"{b.name}[{self.e.offset(b, idx, checked)}] = "
                                   f"{self.e(value)}")
                missing = self.missing(bound)
                if b.name in self.private or single or not missing:
                    return [line]
                return [c.If(_all_zero(missing), line)]
            case ir.If(cond=cond, then=then, otherwise=other):
                if not single and self.only_thread0(s, bound):
                    return [self.guard_thread0(s, bound)]
                then_block = c.Block(self.stmts(then, bound, single))
                other_block = c.Block(self.stmts(other, bound, single)) \
                    if other is not None else None
                return [c.If(_strip(self.e(cond)), then_block, other_block)]
            case ir.Sync():
                return [c.Statement("__syncthreads()")]
        raise NotImplementedError(f"cannot render {s!r} in CUDA")

    def bound_loop(self, s: ir.For, bound: frozenset, single: bool):
        """`v = start + blockIdx.x` (or threadIdx), the body guarded by `v < stop`."""
        var = s.var.name
        inner = bound | {s.kind[-1]} if s.kind.startswith("threadIdx.") else bound
        start = _strip(self.e(s.start))
        first = f"(int64_t){s.kind}" if start in ("0", "0L") else f"{start} + (int64_t){s.kind}"
        return c.Block([
            c.Statement(f"const int64_t {var} = {first}"),
            c.If(f"{var} < {_strip(self.e(s.stop))}",
                 c.Block(self.stmts(s.body, inner, single))),
        ])

    def loop(self, s: ir.For, bound: frozenset, single: bool) -> list:
        var = s.var.name
        body = c.Block(self.stmts(s.body, bound, single))
        stop = _strip(self.e(s.stop))
        most = self.k.unroll.get(id(s.var)) if s.kind == "unroll" else None
        if most is not None and not _is_const(simplify_index(s.stop - s.start), most):
            # a partial tile: run the full tile's iterations, guarded, so that nvcc unrolls
            # it completely and private arrays keep constant indices (registers)
            body = c.Block([c.If(f"{var} < {stop}", body)])
            stop = _strip(self.e(simplify_index(s.start + most)))
        step = f"++{var}" if s.step == 1 else f"{var} += {s.step}"
        head = c.For(f"int64_t {var} = {_strip(self.e(s.start))}", f"{var} < {stop}", step, body)
        return [c.Pragma("unroll"), head] if s.kind == "unroll" else [head]

    def missing(self, bound: frozenset) -> list[str]:
        return [d for d in self.thread_dims if d not in bound]

    def guard_thread0(self, s: ir.Stmt, bound: frozenset):
        return c.If(_all_zero(self.missing(bound)), c.Block(self.stmts(s, bound, True)))

    def only_thread0(self, s: ir.Stmt, bound: frozenset) -> bool:
        """True if every statement under `s` is a store that only thread 0 makes (and no
        thread loop or barrier is inside), so one guard can cover all of `s`."""
        if not self.missing(bound):
            return False
        match s:
            case ir.Seq(stmts=children):
                return all(self.only_thread0(x, bound) for x in children)
            case ir.For(kind=kind):
                return "Idx." not in kind and self.only_thread0(s.body, bound)
            case ir.If(then=then, otherwise=other):
                return self.only_thread0(then, bound) and (
                    other is None or self.only_thread0(other, bound))
            case ir.Store(buffer=b):
                return b.name not in self.private
        return False


def _is_const(e, value: int) -> bool:
    return isinstance(e, Const) and e.value == value


def _all_zero(dims) -> str:
    return " && ".join(f"threadIdx.{d} == 0" for d in dims)


def _count(b: ir.Buffer) -> int:
    return int(simplify_index(b.elements).value)
