"""Vector code for `vectorize`d loops: GCC vector extensions instead of hoping.

A vectorized loop with a constant trip count and a straight-line body is
emitted in chunks of the target's native vector (`td.target(...).vector_bytes`: 16
floats with AVX-512, 8 with AVX2): the loop variable becomes `v + lane`,
loads whose address moves by one element per lane become vector loads, loads
that do not move become scalars (broadcast by GCC), anything else is built lane
by lane. A remainder shorter than a vector runs as a scalar `omp simd` loop.
This is TVM's Ramp/Broadcast lowering, written for a C compiler: the result no
longer depends on whether gcc's auto-vectorizer recognizes the loop.
"""

from __future__ import annotations

import cgen as c

from ...ir import nodes as ir
from ...ir.passes import map_exprs
from ...ir.simplify import linear_terms, simplify_index, step_along
from ...lang import dtypes
from ...lang.expr import BinOp, Call, Cast, Const, Expr, Select, UnaryOp
from ...lang.visit import children, free_vars, substitute, walk
from .prelude import EXP_LIMITS, exp_body, prefetch_call

UNROLL_CHUNKS = 8
MIN_VECTOR_BYTES = 16          # the narrowest vector used (one SSE/NEON register)
VECTOR_TYPES = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64"}

# Stores that bypass the cache (movnt). A normal store first reads the line it writes
# (write-allocate), so a kernel writing a large output moves it twice. An output the kernel
# never reads, larger than the last-level cache, cannot wait in the cache for its next
# reader anyway: its full vector stores go straight to memory, where a loop writes at least
# STREAM_RUN_BYTES in a row. Measured on Zen 3 (AVX2, 2 threads, L3 flushed, 2026-12-03):
# the 3x3 blur with blur_x inlined, 4096^2, 4.83 -> 4.02 ms; with numpy's 16-byte-aligned
# output (two 16-byte stores per vector), 4.53 -> 3.85 ms. TVM, Halide and gcc do not do
# this; Intel's compilers do (-qopt-streaming-stores). A run of one cache line is not
# enough: a 16 x 16 transposing tile on AVX-512 writes one line to each of 16 rows, and
# streamed took 15.3 ms where cached stores take 8.3 ms (4096^2, Zen 4, 2 threads):
# streamed writes go to DRAM in the order they are made, 16 pages apart, where the
# cache's write-backs leave later and in a better order; rows of 8 lines stream well.
STREAM_RUN_BYTES = 512
CACHE_LINE_BYTES = 64           # x86-64 and most aarch64: what one prefetch fetches


class NotVectorizable(Exception):
    """The body has a construct the vector emitter does not handle; use `omp simd`."""


def lanes_for(stores: list[ir.Store], vector_bytes: int) -> int:
    """Lanes per vector: one native vector of the stored type (all stores must agree)."""
    widths = set()
    for st in stores:
        if st.buffer.dtype not in VECTOR_TYPES:
            raise NotVectorizable(st.buffer.dtype)
        widths.add(_width(st.buffer.dtype))
    if len(widths) != 1:
        raise NotVectorizable("stores of different widths")
    return vector_bytes // widths.pop()


def _stores(s: ir.Stmt, var=None):
    """The stores of a body, in order: straight-line code, or with serial loops inside
    whose bounds do not depend on the vector loop's variable `var` (a reduction under a
    vectorized pure loop: `for j in vector: C[j] = 0; for i: C[j] += A[i, j]`)."""
    match s:
        case ir.Seq(stmts=stmts):
            for x in stmts:
                yield from _stores(x, var)
        case ir.Store():
            yield s
        case ir.Prefetch():
            return
        case ir.For(kind="serial", start=start, stop=stop, step=1, body=body) \
                if var is not None and not any(v is var for e in (start, stop)
                                               for v in free_vars(e)):
            yield from _stores(body, var)
        case _:
            raise NotVectorizable(type(s).__name__)


def straight_line(s: ir.Stmt) -> bool:
    """A body of stores (and prefetch hints) only: no loops, tests or allocations."""
    return isinstance(s, (ir.Store, ir.Prefetch)) or \
        (isinstance(s, ir.Seq) and all(map(straight_line, s.stmts)))


def _flatten(s: ir.Stmt) -> list[ir.Stmt]:
    """The stores and prefetches of straight-line code, in order."""
    return [x for y in s.stmts for x in _flatten(y)] if isinstance(s, ir.Seq) else [s]


class VectorLoop:
    """Renders one vectorized loop; `render()` raises NotVectorizable to fall back."""

    def __init__(self, loop: ir.For, trip: int, scalar, vector_bytes: int,
                 streamed: dict | None = None, transposed: dict | None = None):
        self.loop, self.trip, self.scalar = loop, trip, scalar
        self.streamed = streamed or {}        # buffer name -> C flag (render.streamed_outputs)
        # (buffer, lane 0's offset in C) -> the vector a register transpose made of a
        # gather (`transposed_tiles`)
        self.transposed = transposed or {}
        self.streamed_stores = 0
        self.stream_run = False               # does the loop write STREAM_RUN_BYTES in a row?
        self.var = loop.var
        self.stores = list(_stores(loop.body, self.var))
        self.vector_bytes = vector_bytes
        self.lanes = lanes_for(self.stores, vector_bytes)
        width = self.width = vector_bytes // self.lanes
        # a loop narrower than the native vector uses a narrower vector (not below 16 bytes)
        while self.lanes > trip and self.lanes * width > MIN_VECTOR_BYTES:
            self.lanes //= 2
        if trip < self.lanes:
            raise NotVectorizable("short loop")

    def render(self) -> tuple[list, int]:
        """The vector loop, and how many iterations it covers (the rest is scalar).
        Up to UNROLL_CHUNKS vectors are unrolled, so a register tile's offsets are
        constants and gcc keeps it in registers."""
        chunks = self.trip // self.lanes
        self.stream_run = chunks * self.lanes * self.width >= STREAM_RUN_BYTES
        if chunks <= UNROLL_CHUNKS:
            bases = [simplify_index(self.loop.start + k * self.lanes) for k in range(chunks)]
            if straight_line(self.loop.body):
                body = []
                for base in bases:
                    self.base = base
                    body += [line for st in _flatten(self.loop.body) for line in self.emit(st)]
            else:
                body = self.nest(self.loop.body, bases)
            return [c.Block(body)], chunks * self.lanes
        self.base = self.var
        body = self.nest(self.loop.body, [self.var])
        v = self.var.name
        start = self.scalar(self.loop.start)
        return [c.For(f"int64_t {v} = {start}", f"{v} < {start} + {chunks * self.lanes}L",
                      f"{v} += {self.lanes}", c.Block(body))], chunks * self.lanes

    def nest(self, s: ir.Stmt, bases: list) -> list:
        """`s` with its serial loops kept as loops and each store done for every vector
        (`bases`) in turn inside them: the lanes' iterations are independent (isl proved
        the vectorized loop parallel), so running them in lockstep through the inner
        loop is the same computation, with the accumulators in vectors."""
        match s:
            case ir.Seq(stmts=stmts):
                return [line for x in stmts for line in self.nest(x, bases)]
            case ir.Store() | ir.Prefetch():
                lines = []
                for base in bases:
                    self.base = base
                    lines += self.emit(s)
                return lines
            case ir.For(var=v, start=start, stop=stop, body=body):
                name = v.name
                return [c.For(f"int64_t {name} = {self.scalar(start)}",
                              f"{name} < {self.scalar(stop)}", f"++{name}",
                              c.Block(self.nest(body, bases)))]
        raise NotVectorizable(type(s).__name__)

    # -- stores and expressions ------------------------------------------------------
    def emit(self, s: ir.Store | ir.Prefetch) -> list:
        return self.store(s) if isinstance(s, ir.Store) else self.prefetch(s)

    def prefetch(self, s: ir.Prefetch) -> list:
        """One prefetch per cache line the vector's lanes read: lane 0 of contiguous
        lanes (a vector of at most a line; of one that straddles two, the next vector's
        hint fetches the second), a lane per line of strided ones."""
        offset = self._flat(s.buffer, s.indices, ())
        step = self._stride(offset)
        every = 1 if step is None else \
            max(1, CACHE_LINE_BYTES // max(1, abs(step) * self.width))
        lanes = range(0, self.lanes, every)
        return [c.Statement(prefetch_call(s.buffer.name,
                                          self.scalar(self._at_lane(offset, lane)), s.write))
                for lane in lanes]

    def store(self, s: ir.Store) -> list:
        value = self.expr(s.value, s.buffer.dtype)
        offset = self._flat(s.buffer, s.indices, s.checked)
        step = self._stride(offset)
        if step == 1 and not s.checked:
            vt = _vtype(s.buffer.dtype, self.lanes)
            address = f"&{s.buffer.name}[{self.scalar(self._at(offset))}]"
            vector = self._as_vector(value, s.buffer.dtype)
            flag = self.streamed.get(s.buffer.name)
            if flag is not None and self.stream_run:
                self.streamed_stores += 1
                return [c.Statement(f"tdsl_stream_{vt[len('tdsl_'):]}({address}, {vector}, "
                                    f"{flag})")]
            return [c.Statement(f"*({vt}_u*){address} = {vector}")]
        if step == 0:
            raise NotVectorizable("store to one address from every lane")
        lines = []
        for lane in range(self.lanes):
            lane_offset = self.scalar(self._at_lane(offset, lane))
            lines.append(c.Statement(f"{s.buffer.name}[{lane_offset}] = "
                                     f"{self._lane(value, lane)}"))
        return lines

    def expr(self, e: Expr, dtype: str) -> tuple[str, bool]:
        """(C text, is it a vector?) of `e` with the loop variable as `v + lane`."""
        if not any(x is self.var for x in free_vars(e)):
            return self.scalar(self._at(e) if dtypes.is_int(e.dtype) else e), False
        match e:
            case ir.BufferLoad(buffer=b, indices=idx, checked=checked):
                offset = self._flat(b, idx, checked)
                step = self._stride(offset)
                vt = _vtype(b.dtype, self.lanes)
                if step == 1 and not any(checked):
                    return f"(*({vt}_u*)&{b.name}[{self.scalar(self._at(offset))}])", True
                if step == 0:
                    return self.scalar(e), False
                name = self.transposed.get((b.name, self.scalar(self._at(offset))))
                if name is not None:
                    return name, True
                return self._by_lane(e), True
            case BinOp(op=op, a=a, b=b) if op in _VECTOR_OPS and e.dtype in VECTOR_TYPES:
                (x, xv), (y, yv) = self.expr(a, a.dtype), self.expr(b, b.dtype)
                return f"({x} {_VECTOR_OPS[op]} {y})", xv or yv
            case BinOp(op=op, a=a, b=b) if op in ("min", "max") and e.dtype in VECTOR_TYPES:
                x, y = self._as_vector(self.expr(a, a.dtype), a.dtype), \
                    self._as_vector(self.expr(b, b.dtype), b.dtype)
                fn = f"tdsl_v{op}_{VECTOR_TYPES[e.dtype]}x{self.lanes}"
                return f"{fn}({x}, {y})", True
            case UnaryOp(op="neg", value=v) if e.dtype in VECTOR_TYPES:
                x, xv = self.expr(v, v.dtype)
                return f"(-{x})", xv
            case Call(name="exp", args=(arg,)) if e.dtype == "float32":
                x = self._as_vector(self.expr(arg, arg.dtype), arg.dtype)
                return f"tdsl_vexpf_x{self.lanes}({x})", True
            case Select(cond=cond, true_value=t, false_value=f) if e.dtype in VECTOR_TYPES \
                    and _monotone_in_lanes(cond, self.var):
                return self._index_select(e), True
            case Select(cond=cond, true_value=t, false_value=f) if e.dtype in ("float32",
                                                                              "int32"):
                mask = self._mask(cond)
                if mask is None:
                    return self._by_lane(e), True
                x = self._as_vector(self.expr(t, t.dtype), t.dtype)
                y = self._as_vector(self.expr(f, f.dtype), f.dtype)
                return f"tdsl_vselect_{VECTOR_TYPES[e.dtype]}x{self.lanes}({mask}, {x}, {y})", \
                    True
            case Cast(dtype=dt, value=v) if dt in VECTOR_TYPES and v.dtype in VECTOR_TYPES and \
                    (_width(dt) == _width(v.dtype) or
                     {dt, v.dtype} == {"float32", "float64"} and
                     all(self.lanes in declared_lanes(d, self.vector_bytes)
                         for d in (dt, v.dtype))):
                x = self._as_vector(self.expr(v, v.dtype), v.dtype)
                return f"__builtin_convertvector({x}, {_vtype(dt, self.lanes)})", True
        return self._by_lane(e), True

    def _index_select(self, e: Select) -> str:
        """A select on loop indices (a pad stage's `yy >= 1 && xx <= 56`, a packed panel's
        `j < m`): true at the first and the last lane means true at every lane, since each
        comparison is monotone in the lane, so the vector takes the true value whole (its
        loads are vector loads and run only then: C evaluates one arm of `?:`); a vector at
        a border is built lane by lane. Halide gets the same from `likely` and loop
        partitioning; here the test costs two scalar comparisons per vector."""
        vt = _vtype(e.dtype, self.lanes)     # both arms of ?: of one type (not the _u one)
        x = f"({vt})({self._as_vector(self.expr(e.true_value, e.dtype), e.dtype)})"
        first = self.scalar(_subst_lane(e.cond, self.var, self.base))
        if not any(v is self.var for v in free_vars(e.cond)):
            y = f"({vt})({self._as_vector(self.expr(e.false_value, e.dtype), e.dtype)})"
            return f"(({first}) ? {x} : {y})"
        last = self.scalar(_subst_lane(e.cond, self.var, self.base + (self.lanes - 1)))
        return f"((({first}) && ({last})) ? {x} : {self._by_lane(e)})"

    def _mask(self, cond: Expr) -> str | None:
        """A 32-bit lane mask for a comparison of 32-bit values, or None."""
        if isinstance(cond, BinOp) and cond.op in _COMPARE and cond.a.dtype in ("float32",
                                                                                 "int32"):
            x = self._as_vector(self.expr(cond.a, cond.a.dtype), cond.a.dtype)
            y = self._as_vector(self.expr(cond.b, cond.b.dtype), cond.b.dtype)
            return f"({x} {_COMPARE[cond.op]} {y})"
        if isinstance(cond, BinOp) and cond.op in ("and", "or"):
            x, y = self._mask(cond.a), self._mask(cond.b)
            if x is None or y is None:
                return None
            return f"({x} {'&' if cond.op == 'and' else '|'} {y})"
        return None

    def _as_vector(self, rendered: tuple[str, bool], dtype: str) -> str:
        text, is_vector = rendered
        if is_vector:
            return text
        return f"(({_vtype(dtype, self.lanes)}){{}} + ({text}))"

    def _lane(self, rendered: tuple[str, bool], lane: int) -> str:
        text, is_vector = rendered
        return f"({text})[{lane}]" if is_vector else text

    def _by_lane(self, e: Expr) -> str:
        if e.dtype not in VECTOR_TYPES:
            raise NotVectorizable(e.dtype)
        items = ", ".join(self.scalar(self._at_lane(e, lane)) for lane in range(self.lanes))
        return f"(({_vtype(e.dtype, self.lanes)}){{{items}}})"

    def _at(self, e: Expr) -> Expr:
        """`e` at lane 0 of the current vector."""
        return simplify_index(substitute(e, {self.var: self.base}))

    def _at_lane(self, e: Expr, lane: int) -> Expr:
        return simplify_index(substitute(e, {self.var: self.base + lane})) \
            if dtypes.is_int(e.dtype) else _subst_lane(e, self.var, self.base + lane)

    def _flat(self, b: ir.Buffer, indices, checked) -> Expr:
        if any(checked):
            raise NotVectorizable("checked index")
        total: Expr = Const(0, "int64")
        for i, stride in zip(indices, b.strides):
            total = total + i * stride
        return simplify_index(total)

    def _stride(self, offset: Expr) -> int | None:
        step = simplify_index(substitute(offset, {self.var: self.var + 1}) - offset)
        if isinstance(step, Const):
            return step.value
        return None


def transposed_tiles(loop: ir.For, trip: int, scalar, vector_bytes: int,
                     fresh) -> tuple[list, dict]:
    """Register transposes for an unrolled loop (`loop`, `trip` copies) around a vector
    loop whose loads step across the rows of a square block: `out[i, j] = x[j, i]` with i
    unrolled and j vectorized reads, in copy t, lanes x[j0 + l, i0 + t], one column of
    the block x[j0 .. j0 + L, i0 .. i0 + L]. Built lane by lane that is L scalar loads and
    L inserts per vector; instead the block's L rows are loaded as vectors and transposed
    in registers by log2(L) rounds of interleaves (`_transpose`) before the copies, and
    each copy's gather becomes a column. Halide gets the same from LLVM's shuffles of
    dense loads.

    Returns (C lines to put before the copies, {(buffer, lane 0's offset in C): the
    column's C name} for `VectorLoop`); nothing where the pattern does not hold: trip ==
    lanes, a straight-line vector loop of constant trip under the unrolled one, and only
    gathers of a buffer the loop does not write (the rows are read before the copies),
    outside a select (a select's arm may read only where its condition holds).
    `fresh(prefix)` names the C variables."""
    inner = loop.body
    if not (isinstance(inner, ir.For) and inner.kind == "vectorize" and inner.step == 1
            and straight_line(inner.body)) or any(
                v is loop.var for e in (inner.start, inner.stop) for v in free_vars(e)):
        return [], {}
    inner_trip = simplify_index(inner.stop - inner.start)
    if not isinstance(inner_trip, Const):
        return [], {}
    written = {st.buffer.name for st in _flatten(inner.body) if isinstance(st, ir.Store)}
    copies = []                 # per copy: its VectorLoop and its gathers, in order
    for k in range(trip):
        value = loop.start + Const(k * loop.step, loop.var.dtype)    # as unroll_loop
        copy = ir.For(inner.var, inner.start, inner.stop,
                      _substitute_stmt(inner.body, loop.var, value), "vectorize")
        try:
            vl = VectorLoop(copy, inner_trip.value, scalar, vector_bytes)
        except NotVectorizable:
            return [], {}
        if vl.lanes != trip or inner_trip.value // vl.lanes > UNROLL_CHUNKS:
            return [], {}
        gathers = [g for st in _flatten(copy.body) if isinstance(st, ir.Store)
                   for g in _gathers(vl, st.value, written)]
        copies.append((vl, gathers))
    if not copies[0][1] or any(len(g) != len(copies[0][1]) for _, g in copies):
        return [], {}
    lines, names = [], {}
    for chunk in range(inner_trip.value // trip):
        for slot in range(len(copies[0][1])):
            columns = []
            for vl, gathers in copies:
                vl.base = simplify_index(inner.start + chunk * trip)
                buffer, offset, stride, step = gathers[slot]
                columns.append((buffer, vl._at(offset), stride, step))
            if not _square_block(columns):
                continue
            buffer, top, _, step = columns[0]
            vt = _vtype(buffer.dtype, trip)
            rows = [f"*({vt}_u*)&{buffer.name}[{scalar(simplify_index(top + r * step))}]"
                    for r in range(trip)]
            made, cols = _transpose(fresh("tdsl_tr"), rows, buffer.dtype)
            lines += made
            for (_, offset, _, _), col in zip(columns, cols):
                names[(buffer.name, scalar(offset))] = col
    return lines, names


def _gathers(vl: VectorLoop, e: Expr, written: set) -> list:
    """(buffer, flat offset, lane stride in C, lane stride) of the loads in `e` that `vl`
    would build lane by lane at a stride the same for every lane (a constant or a size),
    outside any select, of buffers not in `written`."""
    found = []

    def visit(x: Expr):
        if isinstance(x, Select):
            return
        if isinstance(x, ir.BufferLoad):
            if not any(x.checked) and x.buffer.name not in written and \
                    x.buffer.dtype in VECTOR_TYPES and any(v is vl.var for v in free_vars(x)):
                offset = vl._flat(x.buffer, x.indices, x.checked)
                step = step_along(offset, vl.var)
                # a constant stride other than 0 and 1, or a symbolic one (a row of m)
                if step is not None and not (isinstance(step, Const) and step.value in (0, 1)):
                    found.append((x.buffer, offset, vl.scalar(step), step))
            return           # (a load in an index is a scalar of the copy, not a lane)
        for child in children(x):
            visit(child)
    visit(e)
    return found


def _square_block(columns) -> bool:
    """Does copy t's gather read lane l at top + t + l * stride, one buffer and stride for
    all (columns: (buffer, lane 0's offset, lane stride in C, lane stride) per copy, top =
    copy 0's)?"""
    buffer0, top, step0, _ = columns[0]
    for t, (buffer, offset, step, _) in enumerate(columns):
        shift = simplify_index(offset - top)
        if buffer is not buffer0 or step != step0 or \
                not (isinstance(shift, Const) and shift.value == t):
            return False
    return True


def _transpose(prefix: str, rows: list[str], dtype: str) -> tuple[list, list[str]]:
    """(C statements, the names of the columns) transposing the square block whose rows
    are the C vector expressions `rows`: log2(n) rounds, each pairing row i with row
    i + n/2 and interleaving their first halves into new row 2i and their second halves
    into new row 2i + 1 (after the last round row t holds column t)."""
    n = len(rows)
    vt, mask = _vtype(dtype, n), f"tdsl_m{_width(dtype) * 8}x{n}_{VECTOR_TYPES[dtype]}"
    half = n // 2
    low = ", ".join(str(x) for i in range(half) for x in (i, n + i))
    high = ", ".join(str(x) for i in range(half, n) for x in (i, n + i))
    lines = [c.Statement(f"const {vt} {prefix}_0_{r} = {row}") for r, row in enumerate(rows)]
    rounds = n.bit_length() - 1
    for k in range(rounds):
        for i in range(half):
            a, b = f"{prefix}_{k}_{i}", f"{prefix}_{k}_{i + half}"
            lines.append(c.Statement(f"const {vt} {prefix}_{k + 1}_{2 * i} = "
                                     f"__builtin_shuffle({a}, {b}, ({mask}){{{low}}})"))
            lines.append(c.Statement(f"const {vt} {prefix}_{k + 1}_{2 * i + 1} = "
                                     f"__builtin_shuffle({a}, {b}, ({mask}){{{high}}})"))
    return lines, [f"{prefix}_{rounds}_{t}" for t in range(n)]


def _substitute_stmt(s: ir.Stmt, var, value: Expr) -> ir.Stmt:
    """`s` with `var` replaced by `value` in every expression."""
    return map_exprs(s, lambda e: substitute(e, {var: value}))


def _subst_lane(e: Expr, var, value: Expr) -> Expr:
    """`e` with `value` for `var`, index expressions simplified."""
    from ...lang.visit import transform

    def fix(node):
        if isinstance(node, ir.BufferLoad):
            return ir.BufferLoad(node.buffer, tuple(simplify_index(i) for i in node.indices),
                                 node.checked)
        return None
    return transform(substitute(e, {var: value}), fix)


def _monotone_in_lanes(cond: Expr, var) -> bool:
    """Is `cond` a conjunction of comparisons of integer expressions linear in `var`, with
    no loads? Each such comparison is monotone in the lane (true at both ends of a vector:
    true in between), and so is their conjunction (not a disjunction, nor `!=`)."""
    match cond:
        case BinOp(op="and", a=a, b=b):
            return _monotone_in_lanes(a, var) and _monotone_in_lanes(b, var)
        case BinOp(op="lt" | "le" | "gt" | "ge" | "eq", a=a, b=b) if \
                dtypes.is_int(a.dtype) and dtypes.is_int(b.dtype):
            terms, _ = linear_terms(a - b)
            for key, (_, atom) in terms.items():
                if key.startswith("var:"):
                    continue
                if any(v is var for v in free_vars(atom)) or \
                        any(isinstance(n, ir.BufferLoad) for n in walk(atom)):
                    return False
            return True
    return False


_VECTOR_OPS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/"}
_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def _width(dtype: str) -> int:
    return 8 if dtype.endswith("64") else 4


def _vtype(dtype: str, lanes: int) -> str:
    return f"tdsl_{VECTOR_TYPES[dtype]}x{lanes}"


_NATIVE_MINMAX = {
    ("float32", 16): ("defined(__AVX512F__)", "__m512", "_mm512_{op}_ps"),
    ("float32", 8): ("defined(__AVX__)", "__m256", "_mm256_{op}_ps"),
    ("float32", 4): ("defined(__SSE__)", "__m128", "_mm_{op}_ps"),
    ("float64", 2): ("defined(__SSE2__)", "__m128d", "_mm_{op}_pd"),
    ("float64", 8): ("defined(__AVX512F__)", "__m512d", "_mm512_{op}_pd"),
    ("float64", 4): ("defined(__AVX__)", "__m256d", "_mm256_{op}_pd"),
}


def vector_lanes(dtype: str, vector_bytes: int) -> list[int]:
    """The vector lengths of `dtype` declared for a target: 16 bytes up to its native width
    (wider types would need instructions the target may lack, and gcc warns about them)."""
    width = _width(dtype)
    return [n for n in (2, 4, 8, 16) if MIN_VECTOR_BYTES <= n * width <= vector_bytes]


def declared_lanes(dtype: str, vector_bytes: int) -> list[int]:
    """The vector lengths of `dtype` the prelude declares: `vector_lanes`, and for the
    64-bit types also as many lanes as a native float32 vector has (two native vectors,
    which GCC splits), so that a float32 loop computing in float64 (gelu's erf) converts
    its lanes with `__builtin_convertvector` instead of building them one by one."""
    lanes = vector_lanes(dtype, vector_bytes)
    if _width(dtype) == 8:
        wide = vector_bytes // 4
        if wide not in lanes:
            lanes = [*lanes, wide]
    return lanes


def vector_prelude(native: bool = False, vector_bytes: int = 32, stream: bool = False) -> str:
    """Vector typedefs and helpers for the vector lengths the target has; `native` min/max
    use the x86 instructions, `stream` adds the stores that bypass the cache
    (STREAM_RUN_BYTES); immintrin.h costs ~0.1 s of compile time, so only kernels that
    use one of them include it."""
    lines = ["#if defined(__x86_64__)", "#include <immintrin.h>", "#endif"] \
        if native or stream else []
    # (the float64 vectors twice the native width, `declared_lanes`, are passed to static
    # inline helpers only: GCC's note that their ABI differs is about nothing here)
    lines.append('#pragma GCC diagnostic ignored "-Wpsabi"')
    for dtype, short in VECTOR_TYPES.items():
        ctype = {"float32": "float", "float64": "double", "int32": "int32_t",
                 "int64": "int64_t"}[dtype]
        mask = "int32_t" if _width(dtype) == 4 else "int64_t"
        for lanes in declared_lanes(dtype, vector_bytes):
            size = lanes * _width(dtype)
            t = f"tdsl_{short}x{lanes}"
            m = f"tdsl_m{_width(dtype) * 8}x{lanes}"
            lines.append(f"typedef {ctype} {t} __attribute__((vector_size({size})));")
            lines.append(f"typedef {ctype} {t}_u __attribute__((vector_size({size}), "
                         f"aligned({_width(dtype)}), may_alias));")
            lines.append(f"typedef {mask} {m}_{short} __attribute__((vector_size({size})));")
            mt = f"{m}_{short}"
            if lanes not in vector_lanes(dtype, vector_bytes):
                # wider than the target: lane by lane, which GCC turns into native vector
                # instructions (gcc 12 crashes on the masks below at this width)
                lines += _wide_helpers(t, mt, short, lanes)
                continue
            lines.append(f"static inline {t} tdsl_vselect_{short}x{lanes}({mt} k, {t} a, {t} b) "
                         f"{{ return ({t})((k & ({mt})a) | (~k & ({mt})b)); }}")
            native_op = _NATIVE_MINMAX.get((dtype, lanes)) if native else None
            for op, cmp in (("min", "<"), ("max", ">")):
                generic = f"return tdsl_vselect_{short}x{lanes}(a {cmp} b, a, b);"
                if native_op is None:
                    body = generic
                else:
                    # one minps/maxps instead of a compare and a blend (same NaN rule:
                    # the second operand when either is NaN)
                    guard, cast, fn = native_op
                    body = (f"\n#if {guard}\n  return ({t}){fn.format(op=op)}(({cast})a, "
                            f"({cast})b);\n#else\n  {generic}\n#endif\n")
                lines.append(f"static inline {t} tdsl_v{op}_{short}x{lanes}({t} a, {t} b) "
                             f"{{ {body} }}")
    for lanes in vector_lanes("float32", vector_bytes):
        lines.append(_exp_template().replace("LANES", str(lanes)))
    if stream:
        lines += _stream_helpers(vector_bytes)
    return "\n".join(lines) + "\n"


# the non-temporal store of each x86 vector width: (guard, integer type, store)
_STREAM_STORES = {64: ("__AVX512F__", "__m512i", "_mm512_stream_si512((void*)(q), (v))"),
                  32: ("__AVX__", "__m256i", "_mm256_stream_si256((__m256i*)(q), (v))"),
                  16: ("__SSE2__", "__m128i", "_mm_stream_si128((__m128i*)(q), (v))")}


def _stream_helpers(vector_bytes: int) -> list[str]:
    """`tdsl_stream_<type>(p, v, on)`: store the vector `v` at `p` past the cache when `on`
    and `p` is at least 16-byte aligned (NumPy's large arrays are 16 bytes past a page),
    in the widest aligned pieces; a plain store otherwise. `tdsl_sfence()` orders them."""
    lines = ["static inline void tdsl_sfence(void) {",
             "#if defined(__SSE__)", "  _mm_sfence();", "#endif", "}"]
    for dtype, short in VECTOR_TYPES.items():
        ctype = {"float32": "float", "float64": "double", "int32": "int32_t",
                 "int64": "int64_t"}[dtype]
        for lanes in vector_lanes(dtype, vector_bytes):
            size = lanes * _width(dtype)
            t = f"tdsl_{short}x{lanes}"
            widths = [w for w in (64, 32, 16) if w <= size]
            members = []
            for w in widths:       # (the 16-byte pieces are within the SSE2 test below)
                guard, itype, _ = _STREAM_STORES[w]
                member = [f"    {itype} b{w}[{size // w}];"]
                members += member if w == 16 else [f"#if defined({guard})", *member, "#endif"]
            lines += [f"static inline void tdsl_stream_{short}x{lanes}({ctype}* p, {t} v, "
                      "int on) {", "#if defined(__SSE2__)",
                      "  const uintptr_t a = (uintptr_t)p;",
                      "  if (on && (a & 15) == 0) {",
                      f"    union {{ {t} v;", *members, "    } u = {v};"]
            for w in widths:
                guard, _, store = _STREAM_STORES[w]
                pieces = store.replace("(q)", f"((char*)p + {w} * k)").replace("(v)", f"u.b{w}[k]")
                line = f"    for (int k = 0; k < {size // w}; ++k) {pieces};"
                if w == 16:
                    lines += [line, "    return;"]
                else:
                    lines += [f"#if defined({guard})", f"    if ((a & {w - 1}) == 0) {{",
                              "  " + line, "      return;", "    }", "#endif"]
            lines += ["  }", "#endif", f"  *({t}_u*)p = v;", "}"]
    return lines


def _wide_helpers(t: str, mt: str, short: str, lanes: int) -> list[str]:
    """select, min and max of a vector type wider than the target's (`declared_lanes`),
    one lane at a time (the same values as the masked forms: NaN gives the second)."""
    loop = f"{t} r; for (int i = 0; i < {lanes}; ++i) r[i] = "
    return [f"static inline {t} tdsl_vselect_{short}x{lanes}({mt} k, {t} a, {t} b) "
            f"{{ {loop}k[i] ? a[i] : b[i]; return r; }}",
            f"static inline {t} tdsl_vmin_{short}x{lanes}({t} a, {t} b) "
            f"{{ {loop}a[i] < b[i] ? a[i] : b[i]; return r; }}",
            f"static inline {t} tdsl_vmax_{short}x{lanes}({t} a, {t} b) "
            f"{{ {loop}a[i] > b[i] ? a[i] : b[i]; return r; }}"]


def _exp_template() -> str:
    """The vector exp for LANES lanes (same numbers as the scalar tdsl_expf)."""
    return f"""
static inline tdsl_f32xLANES tdsl_vexpf_xLANES(tdsl_f32xLANES x) {{
{exp_body("tdsl_f32xLANES")}
  const tdsl_i32xLANES e = (__builtin_convertvector(n, tdsl_i32xLANES) + 127) << 23;
  tdsl_f32xLANES y = p * (tdsl_f32xLANES)e;
  y = tdsl_vselect_f32xLANES(x < {EXP_LIMITS[0]}, (tdsl_f32xLANES){{}}, y);
  return tdsl_vselect_f32xLANES(x > {EXP_LIMITS[1]}, (tdsl_f32xLANES){{}} + __builtin_inff(), y);
}}
"""
