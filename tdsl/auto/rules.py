"""`td.auto_schedule`: a good schedule from rules, with no search.

In the spirit of Mullapudi2016 and Ansor's sketch rules, the rules look at each stage's
definition (analysis.py) and apply only public primitives, so isl checks every decision
as it checks a user's. A rule is a transaction: if isl refuses any of its primitives, the
schedule goes back to where the rule started and the next rule is tried. Consumers are
placed first (compute_at's rule), then producers:

1. inline cheap injective stages read at one index per consumer iteration (padding stays
   a stage when its reader is a reduction with reuse: a convolution would test each read),
   and stencil producers whose recomputation at every offset is cheap
   (STENCIL_RECOMPUTE_OPS: a blur past the cache is bound by memory, not arithmetic);
2. row pipelines: the producers an output reads row by row (softmax, layernorm; also
   through stages inlined into it) are computed at the output's row loop; their row
   reductions are factored into vector lanes; an input read in more than one pass is
   prefetched a row ahead by its last pass;
3. stencils: an output that reads a producer at several offsets, too costly to inline
   (a blur dividing by 3), is tiled and the producer computed per tile;
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

import numpy as np

from ..errors import ScheduleError
from ..lang.expr import BinOp, Call, Cast, Const, Load, Reduce, Select, UnaryOp
from ..lang.graph import as_tensor_list
from ..lang.visit import children, walk
from ..lang.tensor import ComputeOp, PlaceholderOp, UpdateOp
from ..schedule import create_schedule
from ..target import target as parse_target
from .analysis import StageInfo, analyze, innermost_stride_ok
from .knobs import Knobs
from .tiles import NotApplicable as _NotApplicable
from .tiles import TileRules, _without

# The grain of a parallel loop (TVM and Halide's autoschedulers parallelize only loops
# with enough work per task; ONNX Runtime sizes a loop's team with Eigen's cost model,
# one thread below ~100,000 cycles of work): a loop nest runs on the threads only when it
# does at least this much work (iterations x operations per iteration, `nest_work`),
# since a parallel region costs a wake-up and a barrier whatever it holds. Measured on a
# shared 2-core Zen 3 (AMD EPYC, AVX2; 2026-12-02), GOMP_SPINCOUNT=5000 (the runtime's
# default): a parallel region of a small kernel costs 2-3 us more than serial code when
# the other core is free, ~300 us when another process holds it (the region waits for
# its time slice; load average 3 on 2 cores); the rules' vector tiles run 0.015-0.05 ns
# per operation (the MLP training step at batch 64, 5.8M operations, in 0.07-0.11 ms on
# one thread; naive loops 0.1-0.35 ns). A team of two pays when half the work exceeds the
# region's cost: from ~250,000 operations on a free core to ~30M under load; 2^22 is near
# their geometric middle, and measured best of 2^18, 2^20, 2^22 and no threshold
# (benchmarks/training.py, same run, two threads: MLP step at batch 64 0.61 ms with every
# nest parallel, 0.20, 0.17, 0.09 ms; at 256 0.60, 0.50, 0.51, 0.50 ms). The
# `<stage>.parallel` knob lets td.tune overrule it where it is wrong.
MIN_PARALLEL_WORK = 1 << 22
# The same for a nest that mostly moves data (a padding copy, a pool): bytes it writes
# and reads (`nest_bytes`). One core streams 10-20 GB/s out of L2 and L3 on that machine,
# so 1 MiB is 50-100 us of serial copying, the serial time of MIN_PARALLEL_WORK's vector
# operations (ResNet-18's padding copies of 56 x 56 x 64 floats, 1.7 MB moved, ran serial
# by the operation count; on the threads the network was 1.3% faster, same run).
MIN_PARALLEL_BYTES = 1 << 20
# Iterations of a parallel loop: enough for schedule(guided) to balance two threads (and
# a few more cores) when one of them loses its core for a while; outer loops are fused
# up to this many, not further (`_parallel_outer`).
MIN_PARALLEL_TASKS = 64
# A stencil's producer is inlined into its reader when recomputing it at every offset the
# reader reads costs at most this many operations per output element (`_recompute_cost`:
# loads and arithmetic 1, a division DIVISION_COST). Past the cache, a blur is bound by
# memory, not arithmetic: the 3x3 blur's blur_x (3 loads, 2 adds, a multiply) at 3 offsets
# is 18, and inlined it ran in 3.5 ms against 5.4 ms for tiles of 8 x 512 with blur_x
# computed per tile and 4.6 ms for strips of 16 full rows (4096^2, Zen 3, AVX2, 2 threads,
# L3 flushed, 2026-12-03; TVM's MetaSchedule inlines it too). With a division by 3 instead
# (four vdivps per output vector) inlined it took 4.7 ms: the tiles' fewer divisions win.
STENCIL_RECOMPUTE_OPS = 24
DIVISION_COST = 8
DIVISIONS = ("truediv", "floordiv", "mod", "truncdiv", "truncmod")


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

    Every rule is first applied with the whole schedule proven once, at the end (one
    isl analysis of the whole program: a check costs about as much as the program is
    large, so a check per rule made a training step of ~40 stages take minutes); if isl
    refuses that schedule, the rules run again from the start, each proven legal when it
    ends (`Schedule.deferred_checks`) and undone alone if isl refuses it. Either way the
    schedule returned is proven legal. `checked=False` proves the schedule once, at the
    end, with no second attempt (the rules still ask isl at once where they have a
    fallback, `_parallel_outer`): a refusal then refuses the whole schedule (recorded in
    `knobs.refused`; the schedule returned has no primitives)."""
    outputs = as_tensor_list(outputs, "outputs")
    t = parse_target(target)
    s = create_schedule(outputs)
    order = list(s.data.order)
    infos = analyze(order, [o.op for o in outputs])
    knobs = knobs if knobs is not None else Knobs()

    def rules(speculative: bool) -> _Rules:
        kind = _GpuRules if t.kind == "cuda" else _CpuRules
        return kind(s, t, infos, outputs, knobs, speculative)

    if not checked:
        try:
            with s.deferred_checks():
                rules(speculative=False).run()
        except ScheduleError as exc:
            knobs.refused.append(f"the whole schedule: {exc}")
        return s
    saved = (dict(knobs.space), dict(knobs.chosen), list(knobs.refused))
    try:
        with s.deferred_checks():
            rules(speculative=True).run()
        return s
    except ScheduleError:
        pass                # deferred_checks restored the schedule the rules started from
    knobs.space, knobs.chosen, knobs.refused = saved
    rules(speculative=False).run()
    return s


class _Rules:
    def __init__(self, s, t, infos: dict, outputs, knobs: Knobs, speculative: bool = False):
        self.s, self.t, self.infos, self.knobs = s, t, infos, knobs
        # inside one proof of the whole schedule (`apply_rules`): no rule needs an answer
        # from isl at once, a refusal anywhere runs every rule again one by one
        self.speculative = speculative
        self.outputs = {o.op for o in outputs}
        self.lanes = t.lanes("float32") if t.kind == "c" else 32
        self.placed: set = set()              # ops already given a place (inline / at)
        self.inlined: set = set()
        self.inside: dict = {}                # op -> ops a rule computes in its loops

    def nest_work(self, op) -> int | None:
        """The work of `op`'s loop nest: its iterations times its operations per
        iteration (inlined producers' included), plus the same for the ops a rule
        computes inside its loops (`self.inside`: an epilogue's reduction, a row
        pipeline's producers); None when a size is unknown at schedule time."""
        total = 0
        for one in (op, *self.inside.get(op, ())):
            if not isinstance(one, ComputeOp):
                return None
            count = 1
            for axis in (*one.axis, *one.reduce_axis):
                if not isinstance(axis.extent, Const):
                    return None
                count *= int(axis.extent.value)
            total += count * self._operations(one)
        return total

    def nest_bytes(self, op) -> int | None:
        """The bytes `op`'s loop nest writes (its output) and reads (each tensor it
        loads, once; through inlined producers, theirs, and through the ops a rule
        computes inside its loops, `self.inside`, theirs: a dense layer's weights, read
        by the product its bias add computes in its tile); None when a size is unknown."""
        inside = self.inside.get(op, ())
        read, stack, seen = {}, [op, *inside], set()
        while stack:
            one = stack.pop()
            if one in seen or not isinstance(one, ComputeOp):
                continue
            seen.add(one)
            for e in walk(one.body):
                if isinstance(e, Load):
                    producer = e.tensor.op
                    if producer in self.inlined:
                        stack.append(producer)
                    else:
                        read[e.tensor] = True
        total = 0
        local = {one.output(0) for one in inside}        # tile-local buffers, not memory
        for tensor in (op.output(0), *(t for t in read if t not in local)):
            size = np.dtype(tensor.dtype).itemsize
            for extent in tensor.shape:
                if not isinstance(extent, Const):
                    return None
                size *= int(extent.value)
            total += size
        return total

    def _operations(self, op) -> int:
        """Operations per iteration of `op`: arithmetic, calls, selects and loads of its
        value (index arithmetic excluded), an inlined producer's own where it is read;
        a reduction's combine is one more."""
        body = op.body
        count = 1 if isinstance(body, Reduce) else 0
        stack = [body.body if isinstance(body, Reduce) else body]
        while stack:
            e = stack.pop()
            if isinstance(e, Load):
                producer = e.tensor.op
                count += self._operations(producer) if producer in self.inlined else 1
            elif isinstance(e, (BinOp, UnaryOp, Call, Cast, Select)):
                count += 1
                stack.extend(children(e))
        return max(count, 1)

    def threads_pay(self, stage) -> bool:
        """The `<stage>.parallel` knob: run `stage`'s outer loops on the threads? By
        default yes when its nest's work (`nest_work`) reaches MIN_PARALLEL_WORK, or the
        data it moves (`nest_bytes`) MIN_PARALLEL_BYTES, or either is unknown at schedule
        time (symbolic sizes keep their parallel loops)."""
        key = self.s.data.key_of(stage.op)
        op = key if key in self.infos else stage.op
        work, moved = self.nest_work(op), self.nest_bytes(op)
        return self.choose(op, "parallel", (True, False),
                           work is None or work >= MIN_PARALLEL_WORK or
                           moved is None or moved >= MIN_PARALLEL_BYTES)

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


class _CpuRules(TileRules, _Rules):
    def run(self) -> None:
        for op in self.consumers_first():
            if self._may_inline(self.infos[op]) and \
                    self.choose(op, "inline", (True, False), self._inlinable(self.infos[op])):
                if self.attempt(self.stage(op).compute_inline):
                    self.placed.add(op)
                    self.inlined.add(op)
        for op in self.consumers_first():
            if op in self.outputs and op not in self.placed:
                if self.attempt(self._row_pipeline, op, True) or \
                        self.attempt(self._row_pipeline, op, False) or \
                        self.attempt(self._stencil, op):
                    self.placed.add(op)             # its loops are scheduled
        for op in self.consumers_first():
            info = self.infos[op]
            if op in self.placed or info.kind not in ("reuse", "reduction") or \
                    len(op.axis) < 2:
                continue
            found = self._epilogue_host(op)
            host, host_axes = found if found is not None else (None, None)
            blocked = self._blocked_host(op) if host is None and info.kind == "reuse" \
                else None
            if (host is None and blocked is None) or \
                    not self.choose(op, "epilogue_in_tile", (True, False), True):
                continue
            if blocked is not None:
                host = blocked[0]
            self.inside[host] = [op]                # for `threads_pay`
            if blocked is not None:
                done = self.attempt(self._blocked_tile, op, info, *blocked)
            elif info.kind == "reduction":
                done = self.attempt(self._column_reduction, op, host)
            else:
                done = (info.dot_axis is not None and
                        self.attempt(self._dot_tile, op, info, host, host_axes)) or \
                    self.attempt(self._register_tile, op, info, host, host_axes)
            if done:
                self.placed.update((op, host))
            else:
                del self.inside[host]
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
            # a stencil: inlining recomputes it per offset, which pays where that is cheap
            return self._recompute_cost(info) <= STENCIL_RECOMPUTE_OPS
        if info.guarded and any(self.infos[r].kind == "reuse" for r in info.readers):
            # padding stays a stage before a convolution, which reads each padded pixel
            # once per output channel and tap (a test per read would cost more than the
            # copy); a pool or a depthwise convolution reads it (kernel / stride)^2 times,
            # where a test per read is cheaper than copying the whole input (Zen 3, same
            # run: ResNet-18's max pool 0.40 -> 0.12 ms, MobileNetV2's depthwise
            # convolutions 1.3-5x faster, with the grain rule's bytes below)
            return False
        if info.expensive and len(info.readers) > 1:
            return False                    # exp for two consumers: compute it once
        return True

    def _recompute_cost(self, info: StageInfo) -> float:
        """Operations per element of its most demanding reader to compute a stencil's
        producer at every offset that reader reads (infinite for a producer with tests,
        transcendental calls, or loads of other computed stages, whose own recomputation
        would multiply)."""
        if info.guarded or info.expensive:
            return float("inf")
        ops, stack = 0, [info.op.body]
        while stack:
            e = stack.pop()
            if isinstance(e, Load):
                if not isinstance(e.tensor.op, PlaceholderOp):
                    return float("inf")
                ops += 1
            elif isinstance(e, (BinOp, UnaryOp, Cast)):
                ops += DIVISION_COST if isinstance(e, BinOp) and e.op in DIVISIONS else 1
                stack.extend(children(e))
            elif not isinstance(e, Const):
                return float("inf")
        return ops * max(len(info.reads_at.get(r, ())) for r in info.readers)

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
            if self._read_by_rows(op, out, local):
                local.append(op)
        return local

    def _read_by_rows(self, op, out, local) -> bool:
        """Does every reader of `op` read it at the reader's own first axis, and is every
        reader `out`, a producer in `local`, or a stage inlined into them that is itself
        read so (a layernorm's `mean = total / m`, inlined, between the sum and `out`)?"""
        info = self.infos[op]
        for reader in info.readers:
            first = reader.axis[0] if reader.axis else None
            if first is None or any(index[0] is not first for index in info.reads_at[reader]):
                return False
            if reader is not out and reader not in local and \
                    not (reader in self.inlined and self._read_by_rows(reader, out, local)):
                return False
        return True

    def _row_pipeline(self, out, fuse_rows: bool) -> None:
        """The producers read row by row computed at the output's row loop: its first
        axis, or (`fuse_rows`, when every producer is read at the reader's own leading
        axes: a softmax over the last axis of (heads, rows, columns)) all its axes but the
        last fused into one row loop, so a row's reductions stay in L1."""
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
        if fuse_rows:
            if len(out.axis) < 3 or not self._rows_at_leading_axes(out, local) or \
                    not self.choose(out, "fuse_rows", (True, False), True):
                raise _NotApplicable("the rows are the first axis")
            self._vector_inner(stage, out.axis[-1])
            row = stage.fuse(*out.axis[:-1])
        else:
            row = out.axis[0]
            self._vector_inner(stage, out.axis[-1])
        self.inside[out] = local
        if self.threads_pay(stage):
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
        self._prefetch_next_row(out, [self.s[t] for t in placing] + [stage],
                                len(out.axis) - 1 if fuse_rows else 1)

    def _prefetch_next_row(self, out, row_stages, lead: int) -> None:
        """An input a row pipeline reads in more than one pass (softmax: the max, then
        exp; layernorm: the sums, then the normalized row) is fetched a row ahead by its
        last pass (the `<out>.prefetch` knob): the first pass then finds the row in the
        cache instead of stalling on memory while the core has nothing else to do. The
        row is the axis each read of that pass indexes at the row position (`lead`
        leading axes; the rows of a fused (heads, rows) loop follow each other in memory,
        so the row after a head's last is the next head's first). The output, written by
        the last pass after the work on the row (softmax: exp), is also fetched a row ahead
        for the write: hardware prefetchers follow loads, and a store miss waits for its
        line (W4 at 2 threads on Zen 3, L3 flushed: 2.35 -> 2.18 ms median, 2.17 -> 1.85
        ms p10; layernorm, whose last pass is only loads and stores, is unchanged)."""
        order = {st.op: k for k, st in enumerate(self.s.stages)}
        passes: dict = {}                          # input op -> {stage op: its loads}
        for st in row_stages:
            for node in walk(st.op.body):
                if isinstance(node, Load) and isinstance(node.tensor.op, PlaceholderOp):
                    passes.setdefault(node.tensor.op, {}).setdefault(st.op, []).append(node)
        multi = {op: by_stage for op, by_stage in passes.items() if len(by_stage) > 1}
        if not multi or not self.choose(out, "prefetch", (True, False), True):
            return
        for by_stage in multi.values():
            last = max(by_stage, key=order.__getitem__)
            rows = {id(load.indices[lead - 1]) for load in by_stage[last]
                    if len(load.indices) >= lead}
            axis = next((a for a in last.axis if {id(a)} == rows), None)
            if axis is not None:
                self.attempt(self.stage(last).prefetch, by_stage[last][0].tensor, axis)
        row = out.axis[lead - 1] if len(out.axis) >= lead else None
        if out in self.outputs and any(a is row for a in self.stage(out).leaf_iter_vars):
            # (an output stays at the root; a row axis fused with its heads has no step)
            self.attempt(self.stage(out).prefetch, out.output(0), row)

    def _rows_at_leading_axes(self, out, local) -> bool:
        """Is every producer in `local` read at its reader's leading len(out.axis) - 1
        axes (identity), the reader being `out` or another producer in `local`?"""
        lead = len(out.axis) - 1
        for op in local:
            for reader in self.infos[op].readers:
                if len(reader.axis) < lead:
                    return False
                for index in self.infos[op].reads_at[reader]:
                    if len(index) < lead or \
                            not all(i is a for i, a in zip(index[:lead], reader.axis[:lead])):
                        return False
        return True

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
        self.inside[out] = producers
        self._parallel_outer(stage, _without(stage.leaf_iter_vars, xo, yi, xi))
        for op in producers:
            self.stage(op).compute_at(stage, xo)
            self.placed.add(op)
            self._vector_inner(self.stage(op), op.axis[-1])

    # -- 4, 5. epilogues (tiles.py), the loops of root stages ----------------------------
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
            if self.threads_pay(stage):
                stage.parallel(outer)
            self._vector_inner(stage, inner)
            return
        self._vector_inner(stage, op.axis[-1])
        outer = list(op.axis[:-1])
        # the grain of the threads' work: every row a task (the default), or strips of
        # rows (a hand schedule's `split(i, 16)` + `parallel`: fewer, longer streams)
        rows = self.choose(op, "rows_per_task", (1, 4, 16, 64), 1)
        if rows > 1:
            strip, _ = stage.split(outer[0], factor=rows)
            outer = [strip]
        self._parallel_outer(stage, outer)

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
        work for every thread), else the outermost; none when the nest has too little
        work to pay for waking the threads (`threads_pay`). Returns the loop that runs
        last among them (for compute_at)."""
        if not loops:
            return None
        if not self.threads_pay(stage):
            return loops[-1]
        # fuse only as many outer loops as the threads need tasks: the loops inside keep
        # their own indices (a fused index is taken apart with divisions and remainders
        # in every iteration, which a small body such as a padding copy pays for)
        count = _loops_for_tasks(loops, MIN_PARALLEL_TASKS)
        fuse = loops[:count]
        if len(fuse) > 1 and self.choose(stage.op, "fuse_parallel", (True, False), True):
            token = self.s.checkpoint()
            try:
                fused = stage.fuse(*fuse)
                stage.parallel(fused)
                if not self.speculative:
                    self.s.check()              # now, so that the fallback below can run
                return fused if count == len(loops) else loops[-1]
            except ScheduleError:
                self.s.restore(token)
        stage.parallel(loops[0])
        return loops[-1]


def _loops_for_tasks(loops, tasks: int) -> int:
    """How many of the outer `loops` make at least `tasks` iterations together (all of
    them when an extent is unknown at schedule time)."""
    product = 1
    for k, loop in enumerate(loops):
        if not isinstance(loop.extent, Const):
            return len(loops)
        product *= int(loop.extent.value)
        if product >= tasks:
            return k + 1
    return len(loops)


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
