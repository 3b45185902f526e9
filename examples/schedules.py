"""A plain schedule for small training kernels, written by hand as three rules.

td.auto_schedule targets large kernels (register tiles of 6 x 16, packed panels, lanes of
16): on the digits CNN's training step, whose tensors are 8 x 8 images, it took minutes
to schedule and gave a slower kernel than the default loops, because its tiles do not fit
axes of extent 3 or 8. This schedule applies three rules per stage, each a public
primitive, proven legal by isl like any other:

1. a reduction whose last data axis is short (a 3 x 3 filter's gradient, a bias
   gradient) but whose last reduction axis spans whole vectors is factored (`rfactor`)
   over that axis, so the sum runs in vector lanes;
2. otherwise the reduction axes move outside the innermost data axes (after the first
   two of a 4-D stage: batch and channel), so the inner loop walks a row of the output:
   a convolution's input gradient then updates a row of 8 in vector registers instead of
   one element through memory;
3. the innermost data axis is vectorized (split into vectors of LANES when longer) and
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
    """Rule 1: rfactor over the last reduction axis, its lanes innermost and vectorized."""
    op = stage.op
    axes, raxes = list(op.axis), list(op.reduce_axis)
    lanes = _extent(raxes[-1]) if raxes else None
    if not raxes or (_extent(axes[-1]) or 0) >= LANES or not lanes or lanes % LANES:
        return False
    factored = s[s.rfactor(op.output(0), raxes[-1], factor_axis=len(axes))]
    faxes, fraxes = list(factored.op.axis), list(factored.op.reduce_axis)
    factored.reorder(*faxes[:-1], *fraxes, faxes[-1])
    factored.vectorize(faxes[-1])
    if len(faxes) > 2 and _work(factored.op) >= MIN_PARALLEL_WORK:
        factored.parallel(faxes[0])
    return True


def plain_schedule(outputs) -> td.Schedule:
    """The schedule of `outputs` by the three rules above, proven legal once as a whole
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
    if not isinstance(op, ComputeOp) or not op.axis or _factor_in_lanes(s, stage):
        return
    axes, raxes = list(op.axis), list(op.reduce_axis)
    if raxes:
        keep = 2 if len(axes) >= 4 else len(axes) - 1
        stage.reorder(*axes[:keep], *raxes, *axes[keep:])
    _vectorize(stage, axes[-1])
    if len(axes) >= 2 and _work(op) >= MIN_PARALLEL_WORK:
        stage.parallel(axes[0])
