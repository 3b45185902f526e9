"""Errors a user meets: one test per illegal schedule or bad input, each checking the
message (the call as written, why, one concrete witness, the way out).

After every refused primitive the schedule must be unchanged (history, printed
schedule and lowered loops identical), and a legal primitive afterwards must still
work and compute the right thing.
"""

from __future__ import annotations

import pytest

import tdsl as td
from tests.schedule.test_primitives import (
    blur,
    iir,
    matmul,
    prefix_sum,
    row_sum,
    stencil_chain,
    two_consumers,
)

# =======================================================================================
# Schedule errors (issue 3): illegal primitives and bad arguments to primitives
# =======================================================================================

def snapshot(s: td.Schedule, args) -> tuple:
    return list(s.history), str(s), str(td.lower(s, args))


def refuse(s: td.Schedule, args, primitive, *phrases: str) -> str:
    """Call `primitive()`; it must raise ScheduleError whose message holds every phrase
    and leave `s` exactly as it was. Returns the message."""
    before = snapshot(s, args)
    with pytest.raises(td.ScheduleError) as info:
        primitive()
    message = str(info.value)
    missing = [p for p in phrases if p not in message]
    assert not missing, f"missing {missing} in the message:\n{message}"
    assert snapshot(s, args) == before, "a refused primitive changed the schedule"
    return message


def still_works(p, s: td.Schedule) -> None:
    """The schedule (with a legal primitive applied after the refusal) builds and is right."""
    td.testing.assert_equivalent(s, p.args, p.sizes[0])


# -- loops that carry a dependence: parallel / vectorize ------------------------------------

def test_parallel_reduction_axis():
    p = matmul()
    s = p.schedule()
    message = refuse(s, p.args, lambda: s[p.C].parallel(p.k),
                     "s[C].parallel(k) is illegal.",
                     "Loop k carries a dependence of C on itself",
                     "iterations of the sum over k update the same element",
                     "cannot run in parallel",
                     "C.update[i=0, j=0, k=0] and C.update[i=0, j=0, k=1] both update C[0, 0]",
                     "<-- parallel(k)",
                     "Loops of C that can run in parallel: i, j.",
                     "rfactor C over k first")
    assert message.splitlines()[0] == "s[C].parallel(k) is illegal."
    s[p.C].parallel(p.C.op.axis[0])
    still_works(p, s)


def test_vectorized_reduction_axis():
    p = matmul()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.C].vectorize(p.k),
           "s[C].vectorize(k) is illegal.", "cannot run as vector lanes",
           "C.update[i=0, j=0, k=0] and C.update[i=0, j=0, k=1] both update C[0, 0]",
           "<-- vectorize(k)", "rfactor C over k first")
    s[p.C].vectorize(p.C.op.axis[1])
    still_works(p, s)


def test_parallel_split_piece_of_reduction_axis():
    p = row_sum()
    s = p.schedule()
    ko, ki = s[p.S].split(p.k, factor=16)
    refuse(s, p.args, lambda: s[p.S].parallel(ki),
           "s[S].parallel(k_inner) is illegal.", "iterations of the sum over k_inner",
           "S.update[i=0, k=0] and S.update[i=0, k=1] both update S[0]",
           "Loops of S that can run in parallel: i.", "rfactor S over k_inner first")
    SF = s.rfactor(p.S, ki)                   # the way out the message names
    s[SF].parallel(SF.op.axis[0])
    still_works(p, s)


def test_parallel_max_reduction_names_the_reducer():
    from tests.schedule.test_primitives import softmax
    p = softmax()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.mx].parallel(p.k),
           "s[mx].parallel(k) is illegal.", "iterations of the max over k",
           "mx.update[i=0, k=0] and mx.update[i=0, k=1] both update mx[0]",
           "rfactor mx over k first")
    s[p.mx].parallel(p.mx.op.axis[0])
    still_works(p, s)


def test_parallel_carrying_axis_of_recurrence():
    p = prefix_sum()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.Y].parallel(p.r),
           "s[Y_update].parallel(r) is illegal.",
           "Loop r carries a read-after-write dependence on Y",
           "one iteration must finish before the next, so they cannot run in parallel",
           "Y_update[r=1] writes Y[1], which Y_update[r=2] reads",
           "<-- parallel(r)", "Loops of Y_update that can run in parallel: none.")
    s[p.Y0].parallel(p.Y0.op.axis[0])          # the pure initialization is parallel
    still_works(p, s)


def test_parallel_carrying_axis_of_iir():
    p = iir()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.Y].parallel(p.r),
           "s[Y_update].parallel(r) is illegal.", "read-after-write dependence on Y",
           "Y_update[i=0, r=1] writes Y[0, 1], which Y_update[i=0, r=2] reads",
           "Loops of Y_update that can run in parallel: i.")
    s[p.Y].parallel(p.Y.op.axis[0])            # the independent axis is fine
    still_works(p, s)


def test_vectorized_carrying_axis_of_iir():
    p = iir()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.Y].vectorize(p.r),
           "s[Y_update].vectorize(r) is illegal.", "cannot run as vector lanes",
           "Y_update[i=0, r=1] writes Y[0, 1], which Y_update[i=0, r=2] reads")
    s[p.Y].reorder(p.r, p.Y.op.axis[0])
    s[p.Y].vectorize(p.Y.op.axis[0])
    still_works(p, s)


# -- reorder against a dependence ------------------------------------------------------------

def test_reorder_recurrence_against_its_dependence():
    p = prefix_sum()
    s = p.schedule()
    ro, ri = s[p.Y].split(p.r, factor=4)
    refuse(s, p.args, lambda: s[p.Y].reorder(ri, ro),
           "s[Y_update].reorder(r_inner, r_outer) is illegal.",
           "It breaks a read-after-write dependence on Y",
           "Y_update[r=4] writes Y[4], which Y_update[r=5] reads",
           "must run after Y_update[r=4]",
           "Keep the loop that carries this dependence outside the loops you moved")
    s[p.Y].unroll(ri)
    still_works(p, s)


def test_reorder_iir_recurrence_pieces():
    p = iir()
    s = p.schedule()
    i = p.Y.op.axis[0]
    ro, ri = s[p.Y].split(p.r, factor=4)
    refuse(s, p.args, lambda: s[p.Y].reorder(i, ri, ro),
           "s[Y_update].reorder(i, r_inner, r_outer) is illegal.",
           "read-after-write dependence on Y",
           "Y_update[i=0, r=4] writes Y[0, 4], which Y_update[i=0, r=5] reads",
           "Loop nest of Y_update with this change:")
    s[p.Y].reorder(ro, ri, i)                  # recurrence loops outside, in order: legal
    s[p.Y].unroll(ri)
    s[p.Y].vectorize(i)
    still_works(p, s)


# -- placement ------------------------------------------------------------------------------

def test_inline_reduction():
    p = row_sum()
    h = p.n
    T = td.compute((h,), lambda i: p.S[i] * 2.0, name="T")
    s = td.create_schedule(T)
    args = [p.A, T]
    refuse(s, args, lambda: s[p.S].compute_inline(),
           "s[S].compute_inline() is illegal: S is a reduction (sum over k)",
           "recompute the whole reduction at every use",
           "compute_root() or compute_at() it")
    s[p.S].compute_at(s[T], T.op.axis[0])
    td.testing.assert_equivalent(s, args, {p.n: 7, p.l: 5})


def test_inline_update_definition():
    p = prefix_sum()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.Y].compute_inline(),
           "s[Y_update].compute_inline() is illegal", "update definition (a recurrence)",
           "only pure computes can be inlined")
    refuse(s, p.args, lambda: s[p.Y0].compute_inline(),
           "s[Y].compute_inline()", "Y has update definitions (a recurrence)",
           "stay at the root")
    ro, ri = s[p.Y].split(p.r, factor=1)
    still_works(p, s)


def test_compute_at_into_stage_that_does_not_consume():
    p = two_consumers()
    s = p.schedule()
    i = p.Z.op.axis[0]
    # Z needs P through Q and R, which are still at the root: the lesson names the call
    # to make first (consumers before producers)
    refuse(s, p.args, lambda: s[p.P].compute_at(s[p.Z], i),
           "s[P].compute_at(s[Z], i) is illegal", "but Q also reads it, outside that loop",
           "s[Q].compute_at(s[Z], i)")
    s[p.Q].compute_at(s[p.Z], i)
    s[p.R].compute_at(s[p.Z], i)
    s[p.P].compute_at(s[p.Z], i)               # now every reader of P is inside loop i
    still_works(p, s)


def test_compute_at_skipping_a_stage_of_a_chain():
    p = stencil_chain(3)
    s = p.schedule()
    P1, P2, P3 = p.chain
    refuse(s, p.args, lambda: s[P1].compute_at(s[P3], P3.op.axis[0]),
           "s[P1].compute_at(s[P3], i) is illegal", "but P2 also reads it, outside that loop",
           "s[P2].compute_at(s[P3], i)")
    s[P1].compute_at(s[P2], P2.op.axis[0])
    still_works(p, s)


def test_compute_at_a_stage_that_needs_it_through_another():
    """Halide and TVM compute a producer at a loop of any stage that needs it, also
    through other stages: P1 at P3's row loop, next to P2 (which reads it) there."""
    p = stencil_chain(3)
    s = p.schedule()
    P1, P2, P3 = p.chain
    i = P3.op.axis[0]
    s[P2].compute_at(s[P3], i)
    s[P1].compute_at(s[P3], i)
    still_works(p, s)


def test_compute_at_a_stage_that_does_not_need_it():
    p = two_consumers()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.Q].compute_at(s[p.R], p.R.op.axis[0]),
           "s[Q].compute_at(s[R], i)", "R does not need Q, neither directly nor through "
           "other stages", "compute_at places a producer inside a loop of a stage that uses")


def test_compute_at_with_a_consumer_left_outside():
    p = two_consumers(both_outputs=True)
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.P].compute_at(s[p.Q], p.Q.op.axis[0]),
           "s[P].compute_at(s[Q], i) is illegal.", "P would be computed inside loop i of Q",
           "R also reads it, outside that loop", "keep P at the root")
    s[p.P].compute_inline()
    still_works(p, s)


def test_compute_at_of_an_output():
    p = blur()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.by].compute_at(s[p.bx], p.bx.op.axis[0]),
           "s[by].compute_at(s[bx], y)", "by is an output of the schedule",
           "it stays at the root")
    refuse(s, p.args, lambda: s[p.by].compute_inline(),
           "s[by].compute_inline()", "by is an output of the schedule")
    s[p.bx].compute_at(s[p.by], p.by.op.axis[0])
    still_works(p, s)


def test_compute_at_itself():
    p = blur()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.bx].compute_at(s[p.bx], p.bx.op.axis[0]),
           "s[bx].compute_at(s[bx], y)", "a stage cannot be computed inside itself")
    s[p.bx].compute_root()
    still_works(p, s)


def test_compute_at_loop_of_inlined_stage():
    p = stencil_chain(2)
    s = p.schedule()
    P1, P2 = p.chain
    s[P2].compute_inline()
    refuse(s, p.args, lambda: s[P1].compute_at(s[P2], P2.op.axis[0]),
           "compute_at(s[P2], i)", "P2 is inlined (compute_inline) and has no loops",
           "compute_root() it first")
    s[P1].compute_at(s[p.Z], p.Z.op.axis[0])   # P1 is read (through P2) by Z
    still_works(p, s)


def test_compute_at_not_a_stage():
    p = blur()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.bx].compute_at(p.by, p.by.op.axis[0]),
           "s[bx].compute_at", "the first argument must be a stage of this schedule, e.g. s[C]")
    s[p.bx].compute_at(s[p.by], p.by.op.axis[1])
    still_works(p, s)


def test_schedule_of_a_placeholder():
    p = matmul()
    s = p.schedule()
    with pytest.raises(td.ScheduleError, match=r"A is an input \(placeholder\): it has no stage "
                                               r"to schedule\. To stage a copy of it, use "
                                               r"s\.cache_read"):
        s[p.A]


# -- axes: stale, foreign, wrong type ------------------------------------------------------

def test_stale_axis_split_away():
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    io, ii = s[p.C].split(i, factor=8)
    for primitive in (lambda: s[p.C].split(i, factor=2), lambda: s[p.C].parallel(i),
                      lambda: s[p.C].reorder(j, i)):
        refuse(s, p.args, primitive, "i was already split into i_outer and i_inner; "
                                     "use those loops")
    s[p.C].parallel(io)
    still_works(p, s)


def test_stale_axis_fused_away_outer():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, xo, yi, xi = s[p.by].tile(y, x, 4, 4)
    f = s[p.by].fuse(yi, xi)
    refuse(s, p.args, lambda: s[p.by].unroll(yi),
           "s[by].unroll(y_inner): y_inner was fused into y_inner_x_inner_fused; use that loop")
    s[p.by].unroll(f)
    still_works(p, s)


def test_stale_axis_fused_away_inner():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, xo, yi, xi = s[p.by].tile(y, x, 4, 4)
    f = s[p.by].fuse(yi, xi)
    refuse(s, p.args, lambda: s[p.by].vectorize(xi),
           "s[by].vectorize(x_inner): x_inner was fused into y_inner_x_inner_fused")
    s[p.by].vectorize(f)
    still_works(p, s)


def test_foreign_axis_of_another_stage():
    p = blur()
    s = p.schedule()
    bx_y = p.bx.op.axis[0]
    refuse(s, p.args, lambda: s[p.by].split(bx_y, factor=2),
           "s[by].split(y, factor=2): y is an axis of bx, not of by; use s[bx] or by's own "
           "axes (y, x)")
    refuse(s, p.args, lambda: s[p.by].parallel(bx_y), "y is an axis of bx, not of by")
    s[p.bx].parallel(bx_y)
    still_works(p, s)


def test_foreign_axis_of_another_program():
    p, other = matmul(), row_sum()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.C].parallel(other.S.op.axis[0]),
           "s[C].parallel(i): i is not an axis of C; its loops are i, j, k")
    s[p.C].parallel(p.C.op.axis[0])
    still_works(p, s)


def test_compute_at_stale_axis_names_the_call():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, yi = s[p.by].split(y, factor=4)
    refuse(s, p.args, lambda: s[p.bx].compute_at(s[p.by], y),
           "s[bx].compute_at(s[by], y): y was already split into y_outer and y_inner")


def test_compute_at_axis_of_the_producer():
    p = blur()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.bx].compute_at(s[p.by], p.bx.op.axis[0]),
           "compute_at(s[by], y)", "y is an axis of bx, not of by")
    s[p.bx].compute_at(s[p.by], p.by.op.axis[0])
    still_works(p, s)


def test_axis_that_is_not_an_itervar():
    p = matmul()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.C].split("i", factor=2),
           "s[C].split(i, factor=2): expected an axis (an IterVar from C.op.axis, "
           ".op.reduce_axis or a primitive); got str 'i'")
    refuse(s, p.args, lambda: s[p.C].parallel(0), "expected an axis", "got int 0")
    s[p.C].split(p.C.op.axis[0], factor=2)
    still_works(p, s)


# -- split / fuse / reorder arguments ---------------------------------------------------------

@pytest.mark.parametrize("factor", [0, -3, 2.5, "4", True, None],
                         ids=["zero", "negative", "float", "str", "bool", "var"])
def test_split_factor_not_positive_int(factor):
    p = matmul()
    s = p.schedule()
    factor = p.n if factor is None else factor
    refuse(s, p.args, lambda: s[p.C].split(p.C.op.axis[0], factor=factor),
           "s[C].split(i, factor=", "factor must be a positive integer constant; got "
           f"{factor!r}")
    s[p.C].split(p.C.op.axis[0], factor=3)
    still_works(p, s)


@pytest.mark.parametrize("nparts", [0, -1, 1.5])
def test_split_nparts_not_positive_int(nparts):
    h = td.var("h")
    X = td.placeholder((h, 30), name="X")
    Y = td.compute((h, 30), lambda i, j: X[i, j] + 1.0, name="Y")
    s = td.create_schedule(Y)
    refuse(s, [X, Y], lambda: s[Y].split(Y.op.axis[1], nparts=nparts),
           f"s[Y].split(j, nparts={nparts})", "nparts must be a positive integer constant")
    s[Y].split(Y.op.axis[1], nparts=4)
    td.testing.assert_equivalent(s, [X, Y], {h: 3})


def test_split_nparts_of_symbolic_extent():
    p = matmul()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.C].split(p.C.op.axis[0], nparts=4),
           "s[C].split(i, nparts=4): nparts= needs a constant extent, and i runs over n; "
           "use factor= instead")
    s[p.C].split(p.C.op.axis[0], factor=4)
    still_works(p, s)


def test_split_needs_exactly_one_of_factor_and_nparts():
    p = matmul()
    s = p.schedule()
    i = p.C.op.axis[0]
    refuse(s, p.args, lambda: s[p.C].split(i), "give exactly one of factor= and nparts=")
    refuse(s, p.args, lambda: s[p.C].split(i, factor=2, nparts=2),
           "give exactly one of factor= and nparts=")


def test_tile_with_bad_factor():
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    refuse(s, p.args, lambda: s[p.C].tile(i, j, 8, 0),
           "factor must be a positive integer constant; got 0")
    s[p.C].tile(i, j, 8, 4)
    still_works(p, s)


def test_tile_refused_as_a_whole():
    """tile is one primitive: a refused reorder inside it leaves no split behind."""
    p = prefix_sum()
    s = p.schedule()
    ro, ri = s[p.Y].split(p.r, factor=2)
    message = refuse(s, p.args, lambda: s[p.Y].tile(ro, ri, 2, 1),
                     "It breaks a read-after-write dependence on Y",
                     "Y_update[r=2] writes Y[2], which Y_update[r=3] reads")
    assert message.splitlines()[0] == "s[Y_update].tile(r_outer, r_inner, 2, 1) is illegal."
    s[p.Y].unroll(ri)
    still_works(p, s)


def test_fuse_non_adjacent_loops():
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    io, jo, ii, ji = s[p.C].tile(i, j, 4, 4)
    refuse(s, p.args, lambda: s[p.C].fuse(io, ii),
           "s[C].fuse(i_outer, i_inner): fused loops must be adjacent and in order (outermost "
           "first); the loops of C are i_outer, j_outer, i_inner, j_inner, k. Reorder first")
    refuse(s, p.args, lambda: s[p.C].fuse(ji, ii), "must be adjacent and in order")
    f = s[p.C].fuse(ii, ji)
    s[p.C].parallel(io)
    assert f.name == "i_inner_j_inner_fused"
    still_works(p, s)


def test_fuse_symbolic_inner_extent():
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    refuse(s, p.args, lambda: s[p.C].fuse(i, j),
           "s[C].fuse(i, j): the inner loop j runs over m, which is not a constant",
           "Split j by a constant first")
    jo, ji = s[p.C].split(j, factor=4)
    s[p.C].reorder(jo, i, ji)
    s[p.C].fuse(i, ji)
    still_works(p, s)


def test_fuse_data_with_reduction_loop():
    p = row_sum()
    s = p.schedule()
    ko, ki = s[p.S].split(p.k, factor=4)
    io, ii = s[p.S].split(p.S.op.axis[0], factor=4)
    s[p.S].reorder(io, ko, ii, ki)
    refuse(s, p.args, lambda: s[p.S].fuse(ii, ki), "cannot fuse data loops with reduction loops")
    s[p.S].parallel(io)
    still_works(p, s)


def test_fuse_a_single_loop():
    p = matmul()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.C].fuse(p.C.op.axis[0]), "fuse needs at least two loops")


def test_reorder_a_loop_twice():
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    refuse(s, p.args, lambda: s[p.C].reorder(j, i, j), "s[C].reorder(j, i, j): a loop is "
                                                       "listed twice")
    s[p.C].reorder(j, i)
    still_works(p, s)


# -- graph rewrites: cache_read, cache_write, rfactor -----------------------------------------

@pytest.mark.parametrize("which", ["cache_read", "cache_write"])
def test_bad_scope(which):
    p = matmul()
    s = p.schedule()
    if which == "cache_read":
        refuse(s, p.args, lambda: s.cache_read(p.A, "register", [p.C]),
               "s.cache_read(A, 'register', [C]): scope must be one of global, local, shared; "
               "got 'register'")
        AA = s.cache_read(p.A, "local", [p.C])
        s[AA].compute_at(s[p.C], p.C.op.axis[0])
    else:
        refuse(s, p.args, lambda: s.cache_write(p.C, "texture"),
               "s.cache_write(C, 'texture'): scope must be one of global, local, shared")
        s.cache_write(p.C, "local")
    still_works(p, s)


def test_cache_write_after_split():
    p = matmul()
    s = p.schedule()
    io, ii = s[p.C].split(p.C.op.axis[0], factor=4)
    refuse(s, p.args, lambda: s.cache_write(p.C, "local"),
           "s.cache_write(C, 'local'): call cache_write before transforming C's loops")
    s[p.C].parallel(io)
    still_works(p, s)


def test_cache_read_by_a_stage_that_does_not_read_it():
    p = blur()
    s = p.schedule()
    refuse(s, p.args, lambda: s.cache_read(p.I, "local", [p.by]), "by does not read I")
    II = s.cache_read(p.I, "local", [p.bx])
    s[II].compute_at(s[p.bx], p.bx.op.axis[0])
    still_works(p, s)


def test_rfactor_of_a_data_axis():
    p = row_sum()
    s = p.schedule()
    refuse(s, p.args, lambda: s.rfactor(p.S, p.S.op.axis[0]),
           "s.rfactor(S, i): i must be a reduction loop")
    s.rfactor(p.S, p.k)
    still_works(p, s)


def test_rfactor_of_a_non_reduction():
    p = blur()
    s = p.schedule()
    refuse(s, p.args, lambda: s.rfactor(p.bx, p.bx.op.axis[0]), "s.rfactor(bx, y)",
           "bx is not a reduction")


# -- annotations ----------------------------------------------------------------------------

def test_storage_align_bad_arguments():
    p = blur()
    s = p.schedule()
    y = p.bx.op.axis[0]
    refuse(s, p.args, lambda: s[p.bx].storage_align(y, 4, 4), "offset must be in 0..3")
    refuse(s, p.args, lambda: s[p.bx].storage_align(y, 0, 0), "factor must be a positive")
    refuse(s, p.args, lambda: s[p.bx].storage_align(p.by.op.axis[0], 4, 1),
           "the axis must be a data axis of bx (y, x)")
    s[p.bx].storage_align(y, 4, 1)
    still_works(p, s)


def test_bind_unknown_thread_tag():
    p = matmul()
    s = p.schedule()
    refuse(s, p.args, lambda: s[p.C].bind(p.C.op.axis[0], "warp.x"),
           "the thread tag must be one of blockIdx.x", "got 'warp.x'")


def test_a_size_named_like_a_tensor_is_a_clear_error():
    """Found by the nn work: gcc failed on 'conflicting type qualifiers for w'."""
    w = td.var("w")
    x = td.placeholder((w,), name="x")
    y = td.placeholder((3,), name="w")
    out = td.compute((w,), lambda i: x[i] + y[0], name="out")
    with pytest.raises(td.TdslValueError, match=r"the size w \(td.var\('w'\)\) and the tensor w "
                                                r"have the same name"):
        td.build(td.create_schedule(out), [x, y, out])
