"""A plain schedule for small training kernels, written by hand as a few rules.

td.auto_schedule targets large kernels (register tiles of 6 x 16, packed panels, lanes of
16): on the digits CNN's training step, whose tensors are 8 x 8 images, it gave a slower
kernel than the default loops (and took minutes to schedule, seconds since it proves the
whole schedule once), because its tiles do not fit axes of extent 3 or 8. This schedule
applies these rules per stage, each a public primitive, proven legal by isl like any
other:

1. a reduction whose last data axis is short (a 3 x 3 filter's gradient, a bias
   gradient) but whose last reduction axis spans whole vectors is factored (`rfactor`)
   over that axis, so the sum runs in vector lanes; when the short trailing data axes
   hold few enough sums (the 9 taps of a 3 x 3 filter, at most TILE_VECTORS), they are a
   register tile: per filter pair the 9 vectors of partial sums stay in registers
   (`cache_write`, taps unrolled) over the whole batch, 9 independent FMA chains that
   share one load of the head, instead of one chain per tap that waits on the FMA's
   latency at every step;
2. a 4-D reduction whose rows are one or two vectors wide (a convolution on 8 x 8 or
   16 x 16 maps, forward or input gradient) and whose row count fits the registers gets
   a register tile of one output channel: its rows x vectors accumulators held over the
   whole reduction (`cache_write` at the channel, rows unrolled, columns vectorized);
   each filter tap is one broadcast and one load per row;
3. otherwise the reduction axes move outside the innermost data axes (after the first
   two of a 4-D stage: batch and channel), so the inner loop walks a row of the output;
4. the innermost data axis is vectorized (split into vectors of LANES when longer) and
   the outermost runs in parallel if the stage has enough work (MIN_PARALLEL_WORK).

The whole schedule is proven legal at once (`deferred_checks`).
"""

from __future__ import annotations

import tdsl as td
from tdsl.lang.expr import Const
from tdsl.lang.tensor import ComputeOp

LANES = 8              # float32 lanes of an AVX2 vector
# A stage runs in parallel only with at least this many loop iterations (data and
# reduction axes): below, waking the other threads costs about what they would save, and
# a training step has some forty stages, each a barrier when a core is busy elsewhere.
MIN_PARALLEL_WORK = 1 << 18
# Accumulator vectors of a register tile: AVX2 has 16 vector registers, and a tile needs
# a few more for the operands it loads.
TILE_VECTORS = 12


def _extent(axis) -> int | None:
    return int(axis.extent.value) if isinstance(axis.extent, Const) else None


def _work(op) -> int:
    """The iterations of a stage (data and reduction axes); a symbolic extent counts as large."""
    total = 1
    for axis in (*op.axis, *op.reduce_axis):
        total *= _extent(axis) or MIN_PARALLEL_WORK
    return total


def _vectorize(stage, axis) -> None:
    extent = _extent(axis)
    if extent is None or extent < LANES:
        return
    if extent > LANES and extent % LANES == 0:
        _, axis = stage.split(axis, factor=LANES)
    stage.vectorize(axis)


def _factor_in_lanes(s, stage) -> bool:
    """Rule 1: rfactor over the last reduction axis, its lanes innermost and vectorized;
    short trailing data axes (filter taps) as a register tile of partial sums."""
    op = stage.op
    axes, raxes = list(op.axis), list(op.reduce_axis)
    lanes = _extent(raxes[-1]) if raxes else None
    if not raxes or (_extent(axes[-1]) or 0) >= LANES or not lanes or lanes % LANES:
        return False
    factored_t = s.rfactor(op.output(0), raxes[-1], factor_axis=len(axes))
    factored = s[factored_t]
    faxes, fraxes = list(factored.op.axis), list(factored.op.reduce_axis)
    taps = _tap_axes(faxes[:-1])
    if taps and len(fraxes) and lanes == LANES:
        outer = faxes[:-1 - len(taps)]
        work = _work(factored.op)
        local = s.cache_write(factored_t, "local")
        factored.reorder(*faxes)
        factored.vectorize(faxes[-1])
        ls = s[local]
        ls.compute_at(factored, outer[-1])
        laxes, lraxes = list(ls.op.axis), list(ls.op.reduce_axis)
        ltaps = laxes[len(outer):-1]
        ls.reorder(*laxes[:len(outer)], *lraxes, *ltaps, laxes[-1])
        for a in ltaps:
            ls.unroll(a)
        ls.vectorize(laxes[-1])
        if len(outer) > 1 and work >= MIN_PARALLEL_WORK:
            factored.parallel(outer[0])
        return True
    factored.reorder(*faxes[:-1], *fraxes, faxes[-1])
    factored.vectorize(faxes[-1])
    if len(faxes) > 2 and _work(factored.op) >= MIN_PARALLEL_WORK:
        factored.parallel(faxes[0])
    return True


def _tap_axes(axes) -> list:
    """The trailing constant data axes whose sums fit a register tile (at most
    TILE_VECTORS of them, at least two), with at least one data axis left in front."""
    taps, count = [], 1
    for a in reversed(axes):
        e = _extent(a)
        if e is None or count * e > TILE_VECTORS:
            break
        taps.insert(0, a)
        count *= e
    if count < 2 or len(taps) == len(axes):
        return []
    return taps


def _register_tile(s, stage) -> bool:
    """Rule 2: a 4-D reduction with rows of one or two vectors and few enough rows: each
    output channel's rows x vectors sums in registers over the whole reduction."""
    op = stage.op
    axes, raxes = list(op.axis), list(op.reduce_axis)
    if len(axes) != 4 or not raxes:
        return False
    rows, width = _extent(axes[2]), _extent(axes[3])
    if rows is None or width is None or width % LANES or \
            rows * (width // LANES) > TILE_VECTORS:
        return False
    local = s.cache_write(op.output(0), "local")
    _vectorize(stage, axes[3])
    ls = s[local]
    ls.compute_at(stage, axes[1])
    laxes, lraxes = list(ls.op.axis), list(ls.op.reduce_axis)
    ls.reorder(*laxes[:2], *lraxes, laxes[2], laxes[3])
    ls.unroll(laxes[2])
    if width > LANES:
        vo, vi = ls.split(laxes[3], factor=LANES)
        ls.unroll(vo)
        ls.vectorize(vi)
    else:
        ls.vectorize(laxes[3])
    if _work(op) >= MIN_PARALLEL_WORK:
        stage.parallel(axes[0])
    return True


def plain_schedule(outputs) -> td.Schedule:
    """The schedule of `outputs` by the rules above, proven legal once as a whole
    (one isl analysis); if isl refuses it, stage by stage, a refused stage keeping its
    loops.

    >>> s = plain_schedule([loss, *grads])
    """
    s = td.create_schedule(outputs)
    try:
        with s.deferred_checks():
            for stage in list(s.stages):
                _schedule_stage(s, stage)
        return s
    except td.ScheduleError:
        pass                      # deferred_checks restored the unscheduled schedule
    for stage in list(s.stages):
        try:
            with s.deferred_checks():
                _schedule_stage(s, stage)
        except td.ScheduleError:
            pass
    return s


def _schedule_stage(s, stage) -> None:
    op = stage.op
    if not isinstance(op, ComputeOp) or not op.axis or _factor_in_lanes(s, stage) or \
            _register_tile(s, stage):
        return
    axes, raxes = list(op.axis), list(op.reduce_axis)
    if raxes:
        keep = 2 if len(axes) >= 4 else len(axes) - 1
        stage.reorder(*axes[:keep], *raxes, *axes[keep:])
    _vectorize(stage, axes[-1])
    if len(axes) >= 2 and _work(op) >= MIN_PARALLEL_WORK:
        stage.parallel(axes[0])
