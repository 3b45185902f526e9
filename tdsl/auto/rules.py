"""`td.auto_schedule`: a good schedule from rules, with no search.

In the spirit of Mullapudi2016 and Ansor's sketch rules, the rules look at each stage's
definition (analysis.py) and apply only public primitives, so isl checks every decision
as it checks a user's. A rule is a transaction: if isl refuses any of its primitives, the
schedule goes back to where the rule started and the next rule is tried. Consumers are
placed first (compute_at's rule), then producers:

1. inline cheap injective stages read at one index per consumer iteration (padding stays
   a stage when its reader is a reduction: tests in a reduction's inner loop are slow);
2. row pipelines: the producers an output reads row by row (softmax, layernorm) are
   computed at the output's row loop; their row reductions are factored into vector lanes;
3. stencils: an output that reads a producer at several offsets (a blur) is tiled and
   the producer computed per tile;
4. epilogues: a reduction with reuse read at its own index by one elementwise stage
   (bias, batch_norm, residual add, relu inlined into it) is computed per register tile
   of that stage, so the output is finished while it is in registers;
5. the loops of every stage left at the root: a register tile (cache_write, unrolled
   rows, vectorized columns) for reductions with reuse (matmul, convolution), a tile of
   dot products factored into lanes when every operand runs along the reduction (dense,
   `x[i, k] * w[j, k]`), lanes for row reductions, vectorized columns for column
   reductions, vector tiles for transposes, vectorized innermost loops otherwise; outer
   loops fused and parallel.

Sizes unknown at schedule time get choices that stay correct for any size (constant
splits; ragged tiles are separated by the code generator).
"""

from __future__ import annotations

from ..errors import ScheduleError
from ..examples import register_tile_shape
from ..lang.expr import Const
from ..lang.graph import as_tensor_list
from ..lang.tensor import ComputeOp, UpdateOp
from ..schedule import create_schedule
from ..target import target as parse_target
from .analysis import StageInfo, analyze, innermost_stride_ok
from .knobs import Knobs

REDUCTIONS = ("reuse", "row", "reduction")


class _NotApplicable(ScheduleError):
    """A rule that does not fit a stage (not a refusal by isl)."""


def auto_schedule(outputs, target=None):
    """A schedule for `outputs` (a tensor or a list) chosen by rules for `target` ("c", a
    "c -mcpu=..." string, or "cuda"); every primitive it applies is proven legal by isl.

    >>> s = td.auto_schedule(C)
    >>> print(s)                 # the primitives chosen
    >>> mod = td.build(s, [A, B, C])
    """
    return apply_rules(outputs, target, Knobs())


def apply_rules(outputs, target=None, knobs: Knobs | None = None, checked: bool = True):
    """The schedule the rules make for `outputs` with the choices of `knobs` (defaults
    where it names none); `knobs` records the space offered and isl's refusals.

    Each rule is proven legal as a whole when it ends (`Schedule.deferred_checks`), and
    undone alone if isl refuses it. `checked=False` proves the schedule once, at the end
    (faster still): a refusal then refuses the whole schedule (recorded in
    `knobs.refused`; the schedule returned has no primitives)."""
    outputs = as_tensor_list(outputs, "outputs")
    t = parse_target(target)
    s = create_schedule(outputs)
    order = list(s.data.order)
    infos = analyze(order, [o.op for o in outputs])
    knobs = knobs if knobs is not None else Knobs()
    rules = _GpuRules(s, t, infos, outputs, knobs) if t.kind == "cuda" else \
        _CpuRules(s, t, infos, outputs, knobs)
    if checked:
        rules.run()
        return s
    try:
        with s.deferred_checks():
            rules.run()
    except ScheduleError as exc:
        knobs.refused.append(f"the whole schedule: {exc}")
    return s


class _Rules:
    def __init__(self, s, t, infos: dict, outputs, knobs: Knobs):
        self.s, self.t, self.infos, self.knobs = s, t, infos, knobs
        self.outputs = {o.op for o in outputs}
        self.lanes = t.lanes("float32") if t.kind == "c" else 32
        self.placed: set = set()              # ops already given a place (inline / at)
        self.inlined: set = set()

    def attempt(self, rule, *args) -> bool:
        """Apply `rule` as one transaction: all of it, or (if isl refuses a step) none."""
        token = self.s.checkpoint()
        try:
            with self.s.deferred_checks():      # one proof per rule, not per primitive
                rule(*args)
            return True
        except _NotApplicable:
            self.s.restore(token)
            return False
        except ScheduleError as exc:
            self.knobs.refused.append(f"{getattr(rule, '__name__', rule)}: {exc}")
            self.s.restore(token)
            return False

    def choose(self, op, knob: str, options, default):
        return self.knobs.choose(f"{op.name}.{knob}", options, default)

    def stage(self, op):
        return self.s[op.output(0)]

    def consumers_first(self):
        return [op for op in reversed(list(self.infos)) if isinstance(op, (ComputeOp, UpdateOp))]


class _CpuRules(_Rules):
    def run(self) -> None:
        for op in self.consumers_first():
            if self._may_inline(self.infos[op]) and \
                    self.choose(op, "inline", (True, False), self._inlinable(self.infos[op])):
                if self.attempt(self.stage(op).compute_inline):
                    self.placed.add(op)
                    self.inlined.add(op)
        for op in self.consumers_first():
            if op in self.outputs and op not in self.placed:
                if self.attempt(self._row_pipeline, op) or self.attempt(self._stencil, op):
                    self.placed.add(op)             # its loops are scheduled
        for op in self.consumers_first():
            info = self.infos[op]
            if op in self.placed or info.kind != "reuse":
                continue
            host = self._epilogue_host(op)
            if host is None or not self.choose(op, "epilogue_in_tile", (True, False), True):
                continue
            if (info.dot_axis is not None and self.attempt(self._dot_tile, op, info, host)) \
                    or self.attempt(self._register_tile, op, info, host):
                self.placed.update((op, host))
        for op in self.consumers_first():
            if op not in self.placed:
                info = self.infos[op]
                if info.kind == "reuse" and info.dot_axis is not None and \
                        self.attempt(self._dot_tile, op, info):
                    continue
                self.attempt(self._root_loops, op)

    # -- 1. inlining ---------------------------------------------------------------
    def _may_inline(self, info: StageInfo) -> bool:
        """Inlining is a choice at all (it may not pay, see `_inlinable`)."""
        return info.kind == "injective" and info.op not in self.outputs and \
            bool(info.readers) and not any(isinstance(r, UpdateOp) for r in info.readers)

    def _inlinable(self, info: StageInfo) -> bool:
        if not self._may_inline(info):
            return False
        if any(len(info.reads_at.get(r, ())) > 1 for r in info.readers):
            return False                    # a stencil: inlining recomputes per offset
        if info.guarded and any(self.infos[r].kind in REDUCTIONS for r in info.readers):
            return False                    # padding stays a stage before a reduction
        if info.expensive and len(info.readers) > 1:
            return False                    # exp for two consumers: compute it once
        return True

    # -- 2. row pipelines ----------------------------------------------------------
    def _row_local(self, out) -> list:
        """Producers of `out` read row by row: each reader reads them at its own first
        axis (identity), transitively from `out`; consumers first."""
        local: list = []
        for op in self.consumers_first():
            info = self.infos[op]
            if op is out or op in self.placed or info.kind not in ("injective", "row",
                                                                   "reduction"):
                continue
            if op in self.outputs or not info.readers or not op.axis:
                continue
            ok = True
            for reader in info.readers:
                if reader is not out and reader not in local:
                    ok = False
                    break
                first = reader.axis[0] if reader.axis else None
                for index in info.reads_at[reader]:
                    if first is None or index[0] is not first:
                        ok = False
            if ok:
                local.append(op)
        return local

    def _row_pipeline(self, out) -> None:
        if self.infos[out].kind in ("reuse", "update"):
            raise _NotApplicable("a register tile or a recurrence, not a row pipeline")
        local = self._row_local(out)
        if not local or len(out.axis) < 2 or \
                not any(self.infos[op].kind in ("row", "reduction") for op in local):
            # (a padding stage read row by row is not a pipeline of per-row reductions)
            raise _NotApplicable("not a row pipeline")
        if not self.choose(out, "row_pipeline", (True, False), True):
            raise _NotApplicable("row pipeline not chosen")
        stage = self.stage(out)
        row = out.axis[0]
        self._vector_inner(stage, out.axis[-1])
        stage.parallel(row)
        # factor first (a factored stage starts at the root), then place consumers first:
        # each reduction, then its partial results, then what they read
        placing = []
        for op in local:
            placing.append(op.output(0))
            if self.infos[op].kind == "row":
                placing.append(self._factor_into_lanes(op))
        for tensor in placing:
            self.s[tensor].compute_at(stage, row)
        for op in local:
            self.placed.add(op)
            if self.infos[op].kind == "injective" and len(op.axis) > 1:
                self._vector_inner(self.stage(op), op.axis[-1])

    def _factor_into_lanes(self, op):
        """rfactor the row reduction `op` into 2 vectors of lanes (two independent chains
        hide the adds' latency); the partial results are one vectorized loop."""
        stage = self.stage(op)
        k = op.reduce_axis[-1]
        vectors = self.choose(op, "lane_vectors", (1, 2, 4), 2)
        _, k_inner = stage.split(k, factor=vectors * self.lanes)
        partial = self.s.rfactor(op.output(0), k_inner)
        lane = partial.op.axis[0]
        ps = self.s[partial]
        ps.reorder(*_without(ps.leaf_iter_vars, lane), lane)
        ps.vectorize(lane)
        return partial

    # -- 3. stencils ---------------------------------------------------------------
    def _stencil(self, out) -> None:
        info = self.infos[out]
        if info.kind != "injective" or len(out.axis) < 2:
            raise _NotApplicable("not a stencil consumer")
        producers = [op for op, p in self.infos.items()
                     if out in p.readers and len(p.reads_at[out]) > 1 and op not in self.placed
                     and p.kind == "injective" and len(op.axis) == len(out.axis)]
        if not producers:
            raise _NotApplicable("no stencil producer")
        if not self.choose(out, "stencil", (True, False), True):
            raise _NotApplicable("stencil tiles not chosen")
        stage = self.stage(out)
        y, x = out.axis[-2], out.axis[-1]
        # strips of 8 rows, long enough to stream (a taller tile recomputes less halo,
        # a shorter one keeps the producer's rows in L1)
        rows = self.choose(out, "tile_rows", (4, 8, 16, 32), 8)
        cols = self.choose(out, "tile_vectors", (16, 32, 64, 128), 64)
        yo, xo, yi, xi = stage.tile(y, x, rows, cols * self.lanes)
        stage.vectorize(xi)
        self._parallel_outer(stage, _without(stage.leaf_iter_vars, xo, yi, xi))
        for op in producers:
            self.stage(op).compute_at(stage, xo)
            self.placed.add(op)
            self._vector_inner(self.stage(op), op.axis[-1])

    # -- 4. epilogues in the register tile ---------------------------------------------
    def _epilogue_host(self, op):
        """The stage that applies `op`'s epilogue (bias, batch_norm, relu, a residual add,
        inlined into it), when it reads `op` at its own index and nothing else reads `op`:
        its loops are tiled as `op`'s would be and `op` is computed per tile (TVM's
        cache_write stage is then the epilogue itself), so each tile of the output is
        finished while it is in registers, with no second pass over the output."""
        cur = op
        while True:
            info = self.infos[cur]
            if len(info.readers) != 1 or cur in self.outputs:
                return None
            reader = info.readers[0]
            at = info.reads_at.get(reader, ())
            if isinstance(reader, UpdateOp) or len(at) != 1 or \
                    len(reader.axis) != len(op.axis) or \
                    not all(_at_axis(i, a) for i, a in zip(at[0], reader.axis)) or \
                    not all(_same_extent(a, b) for a, b in zip(reader.axis, op.axis)):
                return None
            if reader in self.inlined:
                cur = reader
                continue
            if reader in self.placed or self.infos[reader].kind != "injective":
                return None
            return reader

    # -- 5. loops of root stages -----------------------------------------------------
    def _root_loops(self, op) -> None:
        info = self.infos[op]
        stage = self.stage(op)
        if info.kind == "update":
            return
        if not op.axis:                      # a reduction to one value: lanes, no loops
            if info.kind == "row":
                self._factor_into_lanes(op)
            return
        if info.kind == "reuse":
            self._register_tile(op, info)
        elif info.kind == "row":
            partial = self._factor_into_lanes(op)
            row = op.axis[0]
            self.s[partial].compute_at(stage, row)
            self._parallel_outer(stage, list(stage.leaf_iter_vars))
        elif info.kind == "reduction":
            self._column_reduction(op)
        elif not innermost_stride_ok(op) and len(op.axis) >= 2:
            self._transpose_tiles(op)
        else:
            self._elementwise(op)

    def _elementwise(self, op) -> None:
        stage = self.stage(op)
        if len(op.axis) == 1:
            vectors = self.choose(op, "chunk_vectors", (16, 64, 256), 64)
            outer, inner = stage.split(op.axis[0], factor=vectors * self.lanes)
            stage.parallel(outer)
            self._vector_inner(stage, inner)
            return
        self._vector_inner(stage, op.axis[-1])
        self._parallel_outer(stage, list(op.axis[:-1]))

    def _column_reduction(self, op) -> None:
        """A reduction whose innermost data axis is contiguous: the reduction loops go
        outside it, so the innermost loop is a vector of independent sums."""
        stage = self.stage(op)
        inner = op.axis[-1]
        vectors = self.choose(op, "column_vectors", (1, 2, 4, 8), 4)
        jo, ji = stage.split(inner, factor=vectors * self.lanes)
        data = _without(stage.leaf_iter_vars, *op.reduce_axis, ji)
        stage.reorder(*data, *op.reduce_axis, ji)
        stage.vectorize(ji)
        self._parallel_outer(stage, data)

    def _transpose_tiles(self, op) -> None:
        """Two levels of tiles: blocks of 128 x 128 (a block's pages stay in the TLB),
        and inside them tiles of one vector by one vector, rows unrolled."""
        stage = self.stage(op)
        y, x = op.axis[-2], op.axis[-1]
        block = self.choose(op, "block", (32, 64, 128, 256), 128)
        yo, xo, yi, xi = stage.tile(y, x, block, block)
        yio, yii = stage.split(yi, factor=self.lanes)
        xio, xii = stage.split(xi, factor=self.lanes)
        stage.reorder(yo, xo, xio, yio, yii, xii)
        stage.unroll(yii)
        stage.vectorize(xii)
        self._parallel_outer(stage, _without(stage.leaf_iter_vars, xo, xio, yio, yii, xii))

    def _register_tile(self, op, info: StageInfo, host=None) -> None:
        """A register tile of `op` (cache_write: rows unrolled, columns vectorized, held
        over the whole reduction); with `host` (its epilogue, `_epilogue_host`), the
        host's loops are tiled and `op` itself is the tile computed at them."""
        rows, cols = register_tile_shape(self.t)
        width = info.col_axis.extent
        if isinstance(width, Const) and width.value < cols:
            if width.value % self.lanes == 0:
                # whole vectors, fewer of them per row: more rows, as many accumulators
                budget = rows * cols // self.lanes
                cols = width.value
                rows = budget // (cols // self.lanes)
            else:
                # a row narrower than the tile (a 14 x 14 or 7 x 7 feature map): each row
                # of accumulators is a vector, narrower ones and scalars (14 = 8 + 4 + 1 +
                # 1); fewer rows keep them all in registers
                rows = max(1, min(rows, self.t.vector_registers // _registers(width.value,
                                                                              self.lanes)))
        rows = self.choose(op, "tile_rows", (2, 3, 4, 6, 8, 12), rows)
        cols = self.lanes * self.choose(op, "tile_vectors", (1, 2, 3, 4), cols // self.lanes)
        if host is None:
            stage, local = self.stage(op), self.s.cache_write(op.output(0), "local")
            row, col, axes = info.row_axis, info.col_axis, op.axis
        else:
            stage, local, axes = self.stage(host), op.output(0), host.axis
            row, col = _same_position(host.axis, op.axis, info.row_axis, info.col_axis)
        ro, ri = stage.split(row, factor=rows)
        co, ci = stage.split(col, factor=cols)
        outer = [ro if a is row else co if a is col else a for a in axes]
        panel = _panel_operand(op, info)
        if panel is not None and not self.choose(op, "pack", (True, False), True):
            panel = None
        if panel is not None:
            # B of a matmul walks down its columns: copy the tile's panel of columns into
            # contiguous local storage once per column tile (cache_read), and run the row
            # tiles inside, reusing it from L2 (GotoBLAS's packed panel, TVM's tutorial)
            outer = [a for a in outer if a is not ro]
            outer.insert(next(k for k, a in enumerate(outer) if a is co) + 1, ro)
        stage.reorder(*outer, ri, ci)
        stage.vectorize(ci)
        # the innermost tile loop stays a loop of its own (its ragged last tile is a range
        # isl splits off); the loops outside it are fused for the threads
        last = outer[-1]
        self._parallel_outer(stage, outer[:-1])
        ls = self.s[local]
        ls.compute_at(stage, last)
        lrow, lcol = _same_position(local.op.axis, op.axis, info.row_axis, info.col_axis)
        others = [a for a in local.op.axis if a is not lrow and a is not lcol]
        col_outer, col_inner = ls.split(lcol, factor=self.lanes)
        ls.reorder(*others, *local.op.reduce_axis, lrow, col_outer, col_inner)
        ls.unroll(lrow)
        ls.unroll(col_outer)
        ls.vectorize(col_inner)
        if panel is not None:
            copy = self.s.cache_read(panel.tensor, "local", [local])
            cs = self.s[copy]
            cs.compute_at(stage, co)
            self._vector_inner(cs, copy.op.axis[-1])

    def _dot_tile(self, op, info: StageInfo, host=None) -> None:
        """A register tile of dot products for `C[i, j] = sum_k x[i, k] * w[j, k]` (a
        dense layer): the reduction is factored into vector lanes along k (rfactor), so
        every operand is a contiguous vector load; a tile of rows x columns of C keeps
        one vector of partial sums each in registers over the whole k loop (4 x 3: 12
        accumulators fed by 7 loads per step), and C sums each vector's lanes at the
        end. At batch 1 (a matrix-vector product) the tile is one row of 8 columns:
        w streams once, in parallel over the column tiles."""
        k = info.dot_axis
        if not isinstance(k.extent, Const) or k.extent.value % self.lanes or \
                not self.choose(op, "dot", (True, False), True):
            raise _NotApplicable("not a dot-product tile")
        row, col = info.row_axis, info.col_axis
        nrows = row.extent.value if isinstance(row.extent, Const) else None
        rows = self.choose(op, "dot_rows", (1, 2, 3, 4, 6), 1 if nrows == 1 else 4)
        cols = self.choose(op, "dot_cols", (2, 3, 4, 6, 8), 8 if rows == 1 else 12 // rows)
        _, k_inner = self.stage(op).split(k, factor=self.lanes)
        partial = self.s.rfactor(op.output(0), k_inner, factor_axis=len(op.axis))
        stage = self.stage(op if host is None else host)
        prow, pcol = _same_position(partial.op.axis, op.axis, row, col)
        if host is not None:
            row, col = _same_position(host.axis, op.axis, row, col)
        ro, ri = stage.split(row, factor=rows)
        co, ci = stage.split(col, factor=cols)
        # column tiles outside row tiles: a tile's rows of w stay in L1 while the rows of
        # x (the smaller operand) stream past them
        outer = [co if a is row else ro if a is col else a
                 for a in (op.axis if host is None else host.axis)]
        stage.reorder(*outer, ri, ci)
        last = self._parallel_outer(stage, outer)
        if host is not None:
            self._vector_inner(stage, ci)
            self.stage(op).compute_at(stage, last)
        ps = self.s[partial]
        ps.compute_at(stage, last)
        lane = partial.op.axis[-1]
        others = [a for a in partial.op.axis[:-1] if a is not prow and a is not pcol]
        ps.reorder(*others, *partial.op.reduce_axis, prow, pcol, lane)
        ps.unroll(prow)
        ps.unroll(pcol)
        ps.vectorize(lane)

    # -- helpers -------------------------------------------------------------------
    def _vector_inner(self, stage, axis) -> None:
        """Vectorize `axis`: directly when its extent is a constant, else split by two
        vectors first (a constant trip count is what the vector emitter needs)."""
        if isinstance(axis.extent, Const):
            stage.vectorize(axis)
        else:
            _, inner = stage.split(axis, factor=2 * self.lanes)
            stage.vectorize(inner)

    def _parallel_outer(self, stage, loops: list):
        """Parallelize the outer loops: fused into one when their extents allow (enough
        work for every thread), else the outermost. Returns the loop that runs last among
        them (for compute_at)."""
        if not loops:
            return None
        if len(loops) > 1 and self.choose(stage.op, "fuse_parallel", (True, False), True):
            token = self.s.checkpoint()
            try:
                fused = stage.fuse(*loops)
                stage.parallel(fused)
                self.s.check()                  # now, so that the fallback below can run
                return fused
            except ScheduleError:
                self.s.restore(token)
        stage.parallel(loops[0])
        return loops[-1]


class _GpuRules(_Rules):
    """CUDA: injective stages inlined; every root stage's innermost data loops mapped to a
    grid of blocks of 8 x 32 threads (a reduction keeps its reduction loops serial in
    each thread), outer data loops fused onto blockIdx.z."""

    def run(self) -> None:
        for op in self.consumers_first():
            info = self.infos[op]
            if info.kind == "injective" and op not in self.outputs and info.readers and \
                    not any(len(info.reads_at.get(r, ())) > 1 for r in info.readers) and \
                    not any(isinstance(r, UpdateOp) for r in info.readers):
                if self.attempt(self.stage(op).compute_inline):
                    self.placed.add(op)
        for op in self.consumers_first():
            if op not in self.placed and self.infos[op].kind != "update" and op.axis:
                self.attempt(self._bind, op)

    def _bind(self, op) -> None:
        stage = self.stage(op)
        axes = list(op.axis)
        if len(axes) == 1:
            threads = self.choose(op, "threads", (64, 128, 256, 512), 256)
            blocks, threads = stage.split(axes[0], factor=threads)
            stage.bind(blocks, "blockIdx.x")
            stage.bind(threads, "threadIdx.x")
            return
        *outer, y, x = axes
        rows = self.choose(op, "block_rows", (1, 2, 4, 8, 16), 8)
        cols = self.choose(op, "block_cols", (32, 64, 128), 32)
        yo, xo, yi, xi = stage.tile(y, x, rows, cols)
        if outer:
            z = stage.fuse(*outer) if len(outer) > 1 else outer[0]
            stage.bind(z, "blockIdx.z")
        stage.bind(yo, "blockIdx.y")
        stage.bind(xo, "blockIdx.x")
        stage.bind(yi, "threadIdx.y")
        stage.bind(xi, "threadIdx.x")


def _panel_operand(op, info: StageInfo):
    """The load of a reduction with reuse whose vectors are read down a reduction axis
    (`B[k, j]`: the last index runs with the column alone, an earlier one with a reduction
    axis) from an input of the kernel; None if there is none (a convolution's input moves
    with its reduction in the last index too)."""
    from ..lang.tensor import PlaceholderOp
    from ..lang.visit import free_vars, loads
    reduce_axes = op.reduce_axis
    for ld in loads(op.body.body):
        if not isinstance(ld.tensor.op, PlaceholderOp) or len(ld.indices) < 2:
            continue
        last = free_vars(ld.indices[-1])
        if len(last) != 1 or last[0] is not info.col_axis:
            continue
        if any(v is r for i in ld.indices[:-1] for v in free_vars(i) for r in reduce_axes):
            return ld
    return None


def _at_axis(index, axis) -> bool:
    """`index` is `axis`, or 0 on an axis of extent 1 (NumPy broadcasting's read)."""
    return index is axis or (isinstance(index, Const) and index.value == 0 and
                             isinstance(axis.extent, Const) and axis.extent.value == 1)


def _same_extent(a, b) -> bool:
    return a.extent is b.extent or (isinstance(a.extent, Const) and
                                    isinstance(b.extent, Const) and
                                    a.extent.value == b.extent.value)


def _registers(width: int, lanes: int) -> int:
    """Registers one row of `width` accumulators takes: whole vectors, then halves down
    to 4 lanes, then scalars (as the C backend emits them)."""
    count, rest = width // lanes, width % lanes
    while lanes > 4:
        lanes //= 2
        count, rest = count + rest // lanes, rest % lanes
    return count + rest


def _without(loops, *excluded) -> list:
    """`loops` less `excluded`, by identity (axes compare as expressions)."""
    return [a for a in loops if not any(a is x for x in excluded)]


def _same_position(new_axes, old_axes, *wanted):
    """The axes of `new_axes` at the positions of `wanted` among `old_axes`."""
    positions = [next(k for k, a in enumerate(old_axes) if a is w) for w in wanted]
    return [new_axes[p] for p in positions]
