"""Lowered loops -> C with OpenMP, through a cgen tree.

Parallel loops become `#pragma omp parallel for`, vector loops `#pragma omp simd`,
unrolled loops with constant trip counts are unrolled in the source. Buffers are
`restrict` pointers; intermediates are 64-byte aligned and freed on every path;
small private buffers live on the stack. The function returns 0, 1 (allocation
failed) or 2 (an index that isl could not prove in bounds was out of bounds).
"""

from __future__ import annotations

import math

import cgen as c

from ...ir import nodes as ir
from ...ir.passes import unroll_loop
from ...ir.simplify import simplify_index
from ...lang import dtypes
from ...lang.expr import (BinOp, Call, Cast, Const, Expr, IterVar, Select, UnaryOp, Var)
from ...lang.visit import free_vars
from .prelude import PRELUDE, prefetch_call
from .vector import (NotVectorizable, VectorLoop, straight_line, transposed_tiles,
                     vector_prelude)

C_TYPES = {
    "bool": "bool", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t",
    "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t",
    "uint64": "uint64_t", "float16": "_Float16", "float32": "float", "float64": "double",
}
NARROW = ("int8", "int16", "uint8", "uint16", "float16")   # C computes these in int/float
STACK_LIMIT = 64 * 1024        # private buffers up to this many bytes live on the stack
UNROLL_LIMIT = 64              # constant trip counts up to this are unrolled in the source
SCALAR_TAIL = 3               # vectorized loops this short are unrolled as scalars
UNROLL_TOTAL = 512             # ... while nested unrolling makes at most this many copies
GUARDED_UNROLL = 4             # a loop around a register tile with versions by its value

ERR_ALLOC = 1                  # the kernel's return codes; 2 (an index out of bounds) is
                               # set by tdsl_check in the prelude; module.py maps both


def c_type(dtype: str) -> str:
    return C_TYPES[dtype]


# The OpenMP schedule of a parallel loop: guided, not static. A static partition gives each
# thread a fixed half of the iterations, so a call lasts as long as its slowest thread; on
# a shared machine a thread that loses its core for a time slice stalls the whole call.
# Guided hands out large chunks first and smaller ones at the end, so a thread that is on
# its core takes over the work of one that is not (what Halide's task pool does), and a
# thread's first chunk is still one contiguous block. Measured on a 2-core Zen 3 shared
# with other jobs (load average 1.4-2.7), 8 parity pairs in two interleaved rounds each:
# geometric mean against Halide 0.99x and 0.91x static, 1.03x and 1.13x guided; ResNet-18's
# fastest call 76 ms static, 58 ms guided (tdsl/graph helper's measurement).
PARALLEL_FOR = "omp parallel for schedule(guided)"


class ExprRenderer:
    """C text of one expression."""

    def __init__(self, checked_index: bool = True):
        self.checked_index = checked_index

    def __call__(self, e: Expr) -> str:
        return self.expr(e)

    def expr(self, e: Expr) -> str:
        match e:
            case Const(value=v, dtype=dt):
                return _const(v, dt)
            case Var(name=name) | IterVar(name=name):
                return name
            case ir.BufferLoad(buffer=b, indices=idx, checked=checked):
                return f"{b.name}[{self.offset(b, idx, checked)}]"
            case BinOp(op=op, a=a, b=b, dtype=dt):
                return self.binop(op, a, b, dt)
            case UnaryOp(op="neg", value=v, dtype=dt):
                return self.narrow(f"(-{self.expr(v)})", dt)
            case UnaryOp(op="invert", value=v, dtype=dt):
                return f"(!{self.expr(v)})" if dt == "bool" else self.narrow(f"(~{self.expr(v)})",
                                                                            dt)
            case Call(name=name, args=args, dtype=dt):
                return self.call(name, args, dt)
            case Cast(dtype=dt, value=v):
                if dt == "bool":
                    return f"({self.expr(v)} != 0)"
                if dt == "float32" and v.dtype == "float64":
                    return f"tdsl_round_f32({self.expr(v)})"
                return f"(({c_type(dt)}){self.expr(v)})"
            case Select(cond=cond, true_value=t, false_value=f):
                return f"({self.expr(cond)} ? {self.expr(t)} : {self.expr(f)})"
        raise NotImplementedError(f"cannot render {e!r} in C")

    def offset(self, b: ir.Buffer, indices, checked=()) -> str:
        if not any(checked):
            flat: Expr = Const(0, "int64")
            for i, stride in zip(indices, b.strides):
                flat = flat + i * stride
            return _strip(self.expr(simplify_index(flat)))
        terms = []
        for d, (i, stride) in enumerate(zip(indices, b.strides)):
            text = self.expr(simplify_index(i))
            if checked[d] and self.checked_index:
                text = f"tdsl_check({text}, {self.expr(b.shape[d])}, &tdsl_err)"
            terms.append(text if isinstance(stride, Const) and stride.value == 1 else
                         f"({text}) * {self.expr(stride)}")
        return " + ".join(terms) if terms else "0"

    def narrow(self, text: str, dtype: str) -> str:
        # C promotes int8/int16/half arithmetic to int/float; round each op back like NumPy.
        return f"(({c_type(dtype)}){text})" if dtype in NARROW else text

    def binop(self, op: str, a: Expr, b: Expr, dt: str) -> str:
        x, y = self.expr(a), self.expr(b)
        operand = a.dtype
        symbol = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "lt": "<", "le": "<=",
                  "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "truncdiv": "/",
                  "truncmod": "%"}.get(op)
        if symbol is not None:
            return self.narrow(f"({x} {symbol} {y})", dt)
        if op in ("and", "or", "xor"):
            if dt == "bool":
                return f"({x} {'&&' if op == 'and' else '||' if op == 'or' else '!='} {y})"
            return self.narrow(f"({x} {'&' if op == 'and' else '|' if op == 'or' else '^'} {y})",
                               dt)
        if op in ("min", "max"):
            return f"(({c_type(dt)})tdsl_{op}_{_suffix(dt)}({x}, {y}))"
        if op in ("floordiv", "mod"):
            if dtypes.is_float(operand):
                if op == "floordiv":
                    return self.narrow(f"{_math('floor', dt)}({x} / {y})", dt)
                return self.narrow(f"tdsl_fmod_{_suffix(dt)}({x}, {y})", dt)
            signed = "u" if operand.startswith("uint") else "i"
            return f"(({c_type(dt)})tdsl_{op}_{signed}64({x}, {y}))"
        if op == "power":
            if dtypes.is_float(dt):
                return self.narrow(f"{_math('pow', dt)}({x}, {y})", dt)
            return f"(({c_type(dt)})tdsl_ipow({x}, {y}))"
        raise NotImplementedError(op)

    def call(self, name: str, args, dt: str) -> str:
        (arg,) = args
        x = self.expr(arg)
        if name == "abs":
            if dtypes.is_float(dt):
                return self.narrow(f"{_math('fabs', dt)}({x})", dt)
            return f"(({c_type(dt)})tdsl_abs_{_suffix(dt)}({x}))"
        if name == "sigmoid":
            one = _const(1.0, dt)
            return self.narrow(f"({one} / ({one} + {_math('exp', dt)}(-{x})))", dt)
        fn = {"round": "rint"}.get(name, name)
        return self.narrow(f"{_math(fn, dt)}({x})", dt)


def _suffix(dtype: str) -> str:
    return {"float16": "f32", "float32": "f32", "float64": "f64"}.get(dtype, "i64" if not
                                                                        dtype.startswith("uint")
                                                                        else "u64")


def _math(fn: str, dtype: str) -> str:
    """The libm function for `dtype`: expf for float32 (and half, computed in float)."""
    if fn == "exp" and dtype in ("float32", "float16"):
        return "tdsl_expf"
    return fn + ("f" if dtype in ("float32", "float16") else "")


def _const(v, dt: str) -> str:
    if dt == "bool":
        return "true" if v else "false"
    if dtypes.is_float(dt):
        if math.isinf(v):
            text = "INFINITY" if v > 0 else "(-INFINITY)"
        elif math.isnan(v):
            text = "NAN"
        else:
            text = repr(float(v))
            if "e" not in text and "." not in text:
                text += ".0"
            if dt in ("float32", "float16"):
                text += "f"
        return text if dt != "float16" else f"((_Float16){text})"
    if dt == "int64":
        return f"INT64_C({v})" if abs(v) >= 2**31 else (f"{v}L" if v >= 0 else f"({v}L)")
    if dt == "uint64":
        return f"UINT64_C({v})"
    return str(v) if v >= 0 else f"({v})"


class StmtRenderer:
    """cgen statements of the loop IR."""

    def __init__(self, vector_bytes: int = 32, streamed: dict | None = None):
        self.e = ExprRenderer()
        self.vector_bytes = vector_bytes          # the target's native vector width
        self.streamed = streamed or {}            # buffer name -> C flag (streamed_outputs)
        self.streamed_stores = 0                  # stores rendered as tdsl_stream_*
        self.parallel_depth = 0        # inside an omp parallel loop: no nested parallel
        self.simd_depth = 0            # inside an omp simd loop: no omp constructs at all
        self.copies = 1                # copies of the body made by enclosing unrolled loops
        self.transposed: dict = {}     # gathers a register transpose made (transposed_tiles)
        self.names = 0                 # C variables made so far (fresh)

    def fresh(self, prefix: str) -> str:
        """A new C variable name."""
        self.names += 1
        return f"{prefix}{self.names}"

    def stmts(self, s: ir.Stmt) -> list:
        match s:
            case ir.Seq(stmts=children):
                return [line for child in children for line in self.stmts(child)]
            case ir.For():
                return self.loop(s)
            case ir.Store(buffer=b, indices=idx, value=value, checked=checked):
                return [c.Statement(f"{b.name}[{self.e.offset(b, idx, checked)}] = "
                                    f"{self.e(value)}")]
            case ir.Prefetch(buffer=b, indices=idx, write=write):
                return [c.Statement(prefetch_call(b.name, self.e.offset(b, idx), write))]
            case ir.If(cond=cond, then=then, otherwise=other):
                then_block = c.Block(self.stmts(then))
                other_block = c.Block(self.stmts(other)) if other is not None else None
                return [c.If(_strip(self.e(cond)), then_block, other_block)]
            case ir.Alloc(buffer=b, body=body):
                return [self.alloc(b, body)]
            case ir.Sync():
                return [c.Statement("tdsl_sync_threads()")]
        raise NotImplementedError(f"cannot render {s!r} in C")

    def loop(self, s: ir.For) -> list:
        trip = _const_trip(s)
        if s.step != 1:          # strided (rare): a plain loop, kinds other than parallel dropped
            body = c.Block(self.stmts(s.body))
            head = c.For(f"int64_t {s.var.name} = {_strip(self.e(s.start))}",
                         f"{s.var.name} < {_strip(self.e(s.stop))}", f"{s.var.name} += {s.step}",
                         body)
            return ([c.Pragma(PARALLEL_FOR)] if s.kind == "parallel" and
                    self.parallel_depth == 0 and self.simd_depth == 0 else []) + [head]
        if s.kind == "unroll" and trip is not None and trip <= UNROLL_LIMIT and \
                self.copies * trip <= UNROLL_TOTAL:
            self.copies *= trip
            outer = self.transposed
            try:
                # a transposing block's gathers: loaded as rows and transposed in registers
                pre, columns = transposed_tiles(s, trip, self.e, self.vector_bytes, self.fresh)
                self.transposed = {**outer, **columns}
                return pre + self.stmts(unroll_loop(s, trip))
            finally:
                self.copies //= trip
                self.transposed = outer
        var = s.var.name
        header = (f"int64_t {var} = {_strip(self.e(s.start))}", f"{var} < {_strip(self.e(s.stop))}",
                  f"++{var}")
        pragmas = []
        if s.kind == "parallel" and self.parallel_depth == 0 and self.simd_depth == 0:
            pragmas.append(c.Pragma(PARALLEL_FOR))
            self.parallel_depth += 1
            streamed = self.streamed_stores
            inner = self.stmts(s.body)
            if self.streamed_stores > streamed:
                # streamed stores are weakly ordered: each thread fences its own before
                # the region's barrier hands the output to another thread
                inner.append(c.Statement("tdsl_sfence()"))
            self.parallel_depth -= 1
            return pragmas + [c.For(*header, c.Block(inner))]
        if s.kind == "vectorize":
            if trip is not None:
                try:
                    emitter = VectorLoop(s, trip, self.e, self.vector_bytes, self.streamed,
                                         self.transposed)
                    vector, covered = emitter.render()
                except NotVectorizable:
                    pass
                else:
                    self.streamed_stores += emitter.streamed_stores
                    if covered == trip:
                        return vector
                    # the rest: narrower vectors while it fills one, then scalar (omp simd)
                    rest = ir.For(s.var, simplify_index(s.start + covered), s.stop, s.body,
                                  "vectorize")
                    return vector + self.loop(rest)
                if trip <= SCALAR_TAIL and straight_line(s.body):
                    # a few lanes left over (a 14-wide tile: 8 + 4 + 2): scalar statements
                    # at constant offsets, so a register tile stays in registers (a loop
                    # would keep it in memory)
                    return self.stmts(unroll_loop(s, trip))
            if self.simd_depth == 0:
                pragmas.append(c.Pragma("omp simd"))
            self.simd_depth += 1
            body = c.Block(self.stmts(s.body))
            self.simd_depth -= 1
            return pragmas + [c.For(*header, body)]
        elif s.kind == "unroll" and not straight_line(s.body):
            # an unrolled loop of unknown trip count (a ragged tile's rows) around loops:
            # gcc would copy the loops inside 8 times, vectorized remainders and all; a
            # tuning candidate (a symbolic-size 8 x 32 matmul tile on AVX-512) took gcc
            # 37 s, 2.4 s without (its full tiles are unrolled in the source anyway)
            pragmas.append(c.Pragma("GCC unroll 1"))
        elif s.kind == "unroll":
            pragmas.append(c.Pragma("GCC unroll 8"))
        elif s.kind == "serial" and trip is not None and trip <= GUARDED_UNROLL and \
                _has_unrolled(s.body) and _guarded_by(s.body, s.var):
            # A short loop around a register tile whose versions isl chose by its value (a
            # convolution's rx loop, where the border pixels skip a padding's taps: `if
            # (rx >= 1) {7 pixels} else {6 pixels}`): one copy per value, each keeping
            # only its version, so gcc sees one straight line of tiles; in the loop gcc
            # kept an accumulator in memory across the versions (14% slower)
            return self.stmts(unroll_loop(s, trip))
        elif s.kind == "serial" and _has_unrolled(s.body):
            # A loop around a register tile the schedule unrolled (a convolution's 3-step
            # rx loop): gcc would unroll it too and keep values across its copies, which
            # takes the registers the tile's accumulators need (they spill).
            pragmas.append(c.Pragma("GCC unroll 1"))
        return pragmas + [c.For(*header, c.Block(self.stmts(s.body)))]

    def alloc(self, b: ir.Buffer, body: ir.Stmt):
        size = b.elements
        ctype = c_type(b.dtype)
        nbytes = size.value * _itemsize(b.dtype) if isinstance(size, Const) else None
        inner = self.stmts(body)
        if nbytes is not None and nbytes <= STACK_LIMIT:
            decl = c.Statement(f"{ctype} {b.name}[{size.value}] __attribute__((aligned(64)))")
            return c.Block([decl] + inner)
        count = _count(b, self.e)
        return c.Block([
            c.Statement(f"{ctype}* restrict {b.name} = ({ctype}*)tdsl_alloc({count}, "
                        f"sizeof({ctype}))"),
            c.If(f"{b.name} == NULL", c.Statement(f"tdsl_fail(&tdsl_err, {ERR_ALLOC})"),
                 c.Block(inner + [c.Statement(f"tdsl_free({b.name})")])),
        ])


def _count(b: ir.Buffer, render) -> str:
    """The element count of a buffer as C, every product checked for overflow (a padded
    buffer's stride is checked as one factor)."""
    if not b.shape:
        return "1L"
    if b.padded:
        outer = b.outer_dim
        return f"tdsl_cmul({render(b.strides[outer])}, {render(b.shape[outer])})"
    text = render(b.shape[-1])
    for d in reversed(range(len(b.shape) - 1)):
        text = f"tdsl_cmul({text}, {render(b.shape[d])})"
    return text


def _itemsize(dtype: str) -> int:
    import numpy as np
    return np.dtype(dtype).itemsize


def _guarded_by(s: ir.Stmt, var) -> bool:
    """Does `s` hold an If whose condition reads `var`, or a loop the schedule unrolled
    whose bounds read it (a ragged strip's `xx < min(4, 5 - rx)`)?"""
    def reads(e) -> bool:
        return any(v is var for v in free_vars(e))
    match s:
        case ir.If(cond=cond, then=then, otherwise=other):
            return reads(cond) or _guarded_by(then, var) or \
                (other is not None and _guarded_by(other, var))
        case ir.For(kind=kind, start=start, stop=stop, body=body):
            return (kind == "unroll" and (reads(start) or reads(stop))) or \
                _guarded_by(body, var)
        case ir.Alloc(body=body):
            return _guarded_by(body, var)
        case ir.Seq(stmts=stmts):
            return any(_guarded_by(x, var) for x in stmts)
    return False


def _has_unrolled(s: ir.Stmt) -> bool:
    """Does `s` contain a loop the schedule unrolled?"""
    match s:
        case ir.For(kind="unroll"):
            return True
        case ir.For(body=body) | ir.Alloc(body=body):
            return _has_unrolled(body)
        case ir.Seq(stmts=stmts):
            return any(_has_unrolled(x) for x in stmts)
        case ir.If(then=then, otherwise=other):
            return _has_unrolled(then) or (other is not None and _has_unrolled(other))
    return False


def _const_trip(s: ir.For) -> int | None:
    trip = simplify_index(s.stop - s.start)
    return trip.value if isinstance(trip, Const) else None


def _strip(text: str) -> str:
    """Drop one pair of outer parentheses (OpenMP rejects `i < (n)`-style conditions)."""
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for k, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(text) - 1:
                return text
        return text[1:-1]
    return text


def render(kernel: ir.Kernel, target=None) -> str:
    """The C source of a lowered kernel for `target` (a `td.Target`; the native CPU by
    default): `int <name>(buffers..., sizes...)`."""
    from ...target import target as parse_target
    text = render_function(kernel, target)
    return prelude([text], parse_target(target).vector_bytes) + "\n" + text + "\n"


def prelude(functions: list[str], vector_bytes: int) -> str:
    """The helpers the rendered `functions` need, once for all of them (a network's
    library holds several kernels)."""
    native = any("tdsl_vmax_" in f or "tdsl_vmin_" in f for f in functions)
    stream = any("tdsl_stream_" in f for f in functions)
    return PRELUDE + vector_prelude(native, vector_bytes, stream)


def render_function(kernel: ir.Kernel, target=None) -> str:
    """The C function of a lowered kernel alone, without the prelude it needs."""
    from ...target import target as parse_target
    vector_bytes = parse_target(target).vector_bytes
    streamed, flags = streamed_outputs(kernel)
    r = StmtRenderer(vector_bytes, streamed)
    params = []
    for b in kernel.params:
        qualifier = "const " if b.role == "input" else ""
        params.append(c.Value(f"{qualifier}{c_type(b.dtype)}* restrict", b.name))
    params += [c.Value("int64_t", v.name) for v in kernel.sizes]
    body: list = [c.Statement("int tdsl_err = 0")]
    for t in kernel.temps:
        body.append(c.Statement(f"{c_type(t.dtype)}* restrict {t.name} = NULL"))
    if kernel.temps:
        allocs = " || ".join(
            f"!({t.name} = ({c_type(t.dtype)}*)tdsl_alloc({_count(t, r.e)}, "
            f"sizeof({c_type(t.dtype)})))" for t in kernel.temps)
        frees = [c.Statement(f"tdsl_free({t.name})") for t in kernel.temps]
        body.append(c.If(allocs, c.Block(frees + [c.Statement(f"return {ERR_ALLOC}")])))
    body += flags
    body += r.stmts(kernel.body)
    if r.streamed_stores:
        body.append(c.Statement("tdsl_sfence()"))
    body += [c.Statement(f"tdsl_free({t.name})") for t in kernel.temps]
    body.append(c.Statement("return tdsl_err"))
    fn = c.FunctionBody(c.FunctionDeclaration(c.Value("int", kernel.name), params), c.Block(body))
    return str(fn)


def streamed_outputs(kernel: ir.Kernel) -> tuple[dict[str, str], list]:
    """The outputs whose vector stores bypass the cache (STREAM_RUN_BYTES): name -> the C
    condition, "1" for a constant size, else a flag computed once per call from the sizes
    (declared by the returned statements). An output qualifies when the kernel never reads
    it and it is larger than the last-level cache (`td.target.last_level_cache_bytes`)."""
    from ...target import last_level_cache_bytes
    from .vector import VECTOR_TYPES
    read = _buffers_read(kernel.body)
    streamed, flags = {}, []
    for b in kernel.params:
        if b.role != "output" or b.dtype not in VECTOR_TYPES or b in read or not b.shape:
            continue
        threshold = last_level_cache_bytes() // _itemsize(b.dtype)
        size = simplify_index(b.elements)
        if isinstance(size, Const):
            if size.value > threshold:
                streamed[b.name] = "1"
            continue
        flag = f"tdsl_stream_{b.name}"
        # an overflowing size is -1 (tdsl_cmul): not streamed, and the entry checks refuse it
        flags.append(c.Statement(f"const int {flag} = "
                                 f"{_count(b, ExprRenderer())} > {threshold}L"))
        streamed[b.name] = flag
    return streamed, flags


def _buffers_read(s: ir.Stmt) -> set:
    """The buffers `s` loads from anywhere (values, indices, bounds, conditions)."""
    from ...ir.passes import map_exprs
    from ...lang.visit import walk
    read: set = set()

    def note(e: Expr) -> Expr:
        read.update(n.buffer for n in walk(e) if isinstance(n, ir.BufferLoad))
        return e
    map_exprs(s, note)
    return read
