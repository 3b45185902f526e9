"""The polyhedral layer (tdsl.poly) as the schedule sees it.

`tdsl.schedule.legality.analyze(s.data)` gives the program, its isl `Model`
(domains, accesses, reference order, scheduled time, compute_at layouts) and its
dependences. These tests pin the isl objects of small programs exactly, the
tagging of reduction dependences, `carried` and `order_violations` with their
witnesses, the sizes isl gives the private buffers of compute_at, and the
teaching view `td.poly.domains / accesses / dependences / schedule_map / explain`.

Lowering time as the number of stages grows is measured (not asserted) by
benchmarks/isl_scaling.py.
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl
import pytest

import tdsl as td
from tdsl.poly import carried, compute_dependences, order_violations
from tdsl.poly.program import loops
from tdsl.schedule.legality import analyze
from tests.schedule.test_primitives import (
    blur,
    conv2d,
    iir,
    matmul,
    prefix_sum,
    softmax,
    stencil_chain,
)


def loop_named(analysis, stage: str, name: str):
    found = [lp for lp, _ in loops(analysis.program.body)
             if lp.stage == stage and lp.var.name == name]
    assert len(found) == 1, f"no single loop {stage}.{name}"
    return found[0]


def shape_of(layout) -> list:
    return [int(d.value) if isinstance(d, td.lang.Const) else str(d) for d in layout.shape]


# ---------------------------------------------------------------------------------------
# domains and accesses
# ---------------------------------------------------------------------------------------

def test_matmul_domains():
    p = matmul()
    model = analyze(p.schedule().data).model
    assert model.param_names == ["n", "l", "m"]
    assert set(model.stmts) == {"C_init", "C_update"}
    assert str(model.domain("C_init")) == \
        "[n, l, m] -> { C_init[i, j] : 0 <= i < n and 0 <= j < m }"
    assert str(model.domain("C_update")) == \
        "[n, l, m] -> { C_update[i, j, k] : 0 <= i < n and 0 <= j < m and 0 <= k < l }"
    assert str(model.context) == "[n, l, m] -> {  : n > 0 and l > 0 and m > 0 }"


def test_matmul_access_relations():
    p = matmul()
    model = analyze(p.schedule().data).model
    ctx = "n > 0 and l > 0 and m > 0 and "
    upd = "0 <= i < n and 0 <= j < m and 0 <= k < l }"
    init, update = model.stmts["C_init"], model.stmts["C_update"]
    assert [str(a.relation) for a in init.writes] == [
        f"[n, l, m] -> {{ C_init[i, j] -> C[i, j] : {ctx}0 <= i < n and 0 <= j < m }}"]
    assert init.reads == []
    assert [str(a.relation) for a in update.writes] == [
        f"[n, l, m] -> {{ C_update[i, j, k] -> C[i, j] : {ctx}{upd}"]
    assert sorted(str(a.relation) for a in update.reads) == sorted([
        f"[n, l, m] -> {{ C_update[i, j, k] -> C[i, j] : {ctx}{upd}",
        f"[n, l, m] -> {{ C_update[i, j, k] -> A[i, k] : {ctx}{upd}",
        f"[n, l, m] -> {{ C_update[i, j, k] -> B[k, j] : {ctx}{upd}"])
    assert all(a.exact and a.proven_in_bounds for a in update.reads + update.writes)


def test_stencil_access_is_affine_in_sizes():
    p = blur()
    model = analyze(p.schedule().data).model
    (sm,) = [s for s in model.stmts.values() if s.stmt.stage == "by"]
    assert sorted(str(a.relation.range().get_tuple_name()) for a in sm.reads) == ["bx"] * 3
    union = None
    for a in sm.reads:
        r = a.relation.range()
        union = r if union is None else union.union(r)
    expected = isl.Set("[h, w] -> { bx[y, x] : 0 <= y < h + 2 and 0 <= x < w }").intersect_params(
        model.context)
    assert union.is_equal(expected)            # by reads every row of bx, halo included


def test_reference_and_time_maps_of_default_matmul():
    p = matmul()
    model = analyze(p.schedule().data).model
    assert str(model.reference) == (
        "[n, l, m] -> { C_update[i, j, k] -> R[0, i, j, 1, k] : 0 <= i < n and 0 <= j < m and "
        "0 <= k < l; C_init[i, j] -> R[0, i, j, 0, 0] : 0 <= i < n and 0 <= j < m }")
    # default schedule: the scheduled order is the reference order
    time_order = model.time.lex_lt_union_map(model.time)
    ref_order = model.reference.lex_lt_union_map(model.reference)
    assert time_order.is_equal(ref_order)


def test_split_time_map():
    p = matmul()
    s = p.schedule()
    io, ii = s[p.C].split(p.C.op.axis[0], factor=16)
    model = analyze(s.data).model
    expected = isl.UnionMap(
        "[n, l, m] -> { C_init[i, j] -> T[0, io, 0, ii, 0, j, 0, 0, 0] : i = 16io + ii and "
        "0 <= ii < 16 and 0 <= i < n and 0 <= j < m; C_update[i, j, k] -> "
        "T[0, io, 0, ii, 0, j, 1, k, 0] : i = 16io + ii and 0 <= ii < 16 and 0 <= i < n and "
        "0 <= j < m and 0 <= k < l }")
    assert model.time.is_equal(expected)


# ---------------------------------------------------------------------------------------
# dependences
# ---------------------------------------------------------------------------------------

def test_reduction_dependences_are_tagged():
    p = matmul()
    deps = analyze(p.schedule().data).deps
    summary = {(d.kind, d.source, d.sink, d.reduction) for d in deps}
    assert summary == {("WAW", "C_update", "C_update", True),
                       ("RAW", "C_update", "C_update", True),
                       ("WAR", "C_update", "C_update", True),
                       ("WAW", "C_init", "C_update", False),
                       ("RAW", "C_init", "C_update", False)}
    self_dep = isl.Map("[n, l, m] -> { C_update[i, j, k] -> C_update[i, j, k2] : 0 <= i < n "
                       "and 0 <= j < m and 0 <= k < k2 < l }")
    for d in deps:
        if d.reduction:
            assert d.relation.is_equal(self_dep), str(d)
    assert str([d for d in deps if d.reduction][0]).startswith("reduction ")


def test_dependences_are_computed_from_the_model():
    p = matmul()
    analysis = analyze(p.schedule().data)
    again = compute_dependences(analysis.model)
    assert [(d.kind, d.source, d.sink) for d in again] == \
        [(d.kind, d.source, d.sink) for d in analysis.deps]


def test_recurrence_dependences_are_not_tagged():
    p = prefix_sum()
    deps = analyze(p.schedule().data).deps
    (rec,) = [d for d in deps if d.source == d.sink]
    assert (rec.kind, rec.array, rec.reduction) == ("RAW", "Y", False)
    assert rec.relation.is_equal(isl.Map(
        "[n] -> { Y_update[r] -> Y_update[r + 1] : 1 <= r and r + 1 < n }"))


def test_iir_dependence_is_along_the_recurrence_axis_only():
    p = iir()
    deps = analyze(p.schedule().data).deps
    (rec,) = [d for d in deps if d.source == d.sink]
    assert rec.relation.is_equal(isl.Map(
        "[h, w] -> { Y_update[i, r] -> Y_update[i, r + 1] : 0 <= i < h and 1 <= r and "
        "r + 1 < w }"))


# ---------------------------------------------------------------------------------------
# legality: carried dependences and order violations, with witnesses
# ---------------------------------------------------------------------------------------

def test_carried_by_reduction_loop_only():
    p = matmul()
    a = analyze(p.schedule().data)
    assert carried(a.model, a.deps, loop_named(a, "C", "i")) == []
    assert carried(a.model, a.deps, loop_named(a, "C", "j")) == []
    (v,) = carried(a.model, a.deps, loop_named(a, "C", "k"))
    assert v.dependence.reduction and v.race
    assert (v.source, v.sink, v.element) == ("C.update[i=0, j=0, k=0]",
                                             "C.update[i=0, j=0, k=1]", "C[0, 0]")
    assert v.sizes == {"n": 1, "l": 2, "m": 1}            # the smallest sizes that show it


def test_carried_by_recurrence_axis_not_pure_axis():
    p = iir()
    a = analyze(p.schedule().data)
    assert carried(a.model, a.deps, loop_named(a, "Y_update", "i")) == []
    (v,) = carried(a.model, a.deps, loop_named(a, "Y_update", "r"))
    assert not v.dependence.reduction
    assert (v.dependence.kind, v.source, v.sink, v.element) == (
        "RAW", "Y_update[i=0, r=1]", "Y_update[i=0, r=2]", "Y[0, 1]")


def test_reordering_a_reduction_violates_nothing():
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    s[p.C].reorder(p.k, j, i)
    a = analyze(s.data)
    assert order_violations(a.model, a.deps) == []


def _force_leaves(s, tensor, leaves):
    """Schedule data with the stage's loops in the given order, bypassing the check."""
    key = s.data.key_of(tensor.op)
    return s.data.with_state(key, replace(s.data.states[key], leaves=tuple(leaves)))


def test_order_violation_of_reordered_recurrence():
    p = prefix_sum()
    s = p.schedule()
    ro, ri = s[p.Y].split(p.r, factor=4)
    a = analyze(_force_leaves(s, p.Y, [ri, ro]))
    (v,) = order_violations(a.model, a.deps)
    assert (v.dependence.kind, v.source, v.sink, v.element, v.sizes) == (
        "RAW", "Y_update[r=4]", "Y_update[r=5]", "Y[4]", {"n": 6})


def test_order_violation_of_iir_with_recurrence_split_inside_out():
    p = iir()
    s = p.schedule()
    ro, ri = s[p.Y].split(p.r, factor=2)
    a = analyze(_force_leaves(s, p.Y, [p.Y.op.axis[0], ri, ro]))
    violations = order_violations(a.model, a.deps, limit=5)
    assert violations and all(v.dependence.kind == "RAW" for v in violations)
    assert violations[0].source == "Y_update[i=0, r=2]"


def test_reduction_updates_may_not_run_at_the_same_time():
    """Fusing two pieces of k keeps their order distinct; making two updates share a time
    is the only order violation a reduction can have."""
    p = matmul()
    s = p.schedule()
    ko, ki = s[p.C].split(p.k, factor=4)
    a = analyze(_force_leaves(s, p.C, [*p.C.op.axis, ko]))   # k_inner dropped: same time
    (v,) = order_violations(a.model, a.deps)
    assert v.dependence.reduction


# ---------------------------------------------------------------------------------------
# compute_at: footprints and private buffers sized by isl
# ---------------------------------------------------------------------------------------

def test_blur_32x32_tiles_private_buffer_is_34x32():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, xo, yi, xi = s[p.by].tile(y, x, 32, 32)
    s[p.bx].compute_at(s[p.by], xo)
    model = analyze(s.data).model
    layout = model.layouts["bx"]
    assert shape_of(layout) == [34, 32]
    assert [str(o) for o in layout.offset] == ["32 * y_outer", "32 * x_outer"]
    expected = isl.Map("[h, w] -> { [yo, xo] -> [y, x] : 0 <= yo and 32yo < h and 0 <= xo and "
                       "32xo < w and 32yo <= y < 32yo + 34 and y < h + 2 and 32xo <= x < "
                       "32xo + 32 and x < w }")
    fp = layout.footprint.intersect_params(model.context)
    assert fp.is_equal(expected.intersect_params(model.context))
    (bx,) = [sm for sm in model.stmts.values() if sm.stmt.stage == "bx"]
    assert [bx.space.get_dim_name(isl.dim_type.set, k) for k in range(4)] == \
        ["o_by_y_outer", "o_by_x_outer", "y", "x"]
    buf = [b for b in td.lower(s, p.args).kernel.temps if b.name == "bx"]
    assert buf == []                            # no global bx: it is private per tile


@pytest.mark.parametrize("at,shape", [("x", [3, 1]), ("y", [3, "w"]), ("y_outer", [10, "w"])])
def test_blur_footprint_at_other_loops(at, shape):
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    loop = {"x": x, "y": y}.get(at)
    if loop is None:
        loop, _ = s[p.by].split(y, factor=8)
    s[p.bx].compute_at(s[p.by], loop)
    assert shape_of(analyze(s.data).model.layouts["bx"]) == shape


def test_chain_footprints_grow_by_the_halo():
    p = stencil_chain(3)
    s = p.schedule()
    P1, P2, P3 = p.chain
    i, j = p.Z.op.axis
    io, jo, ii, ji = s[p.Z].tile(i, j, 16, 4)
    for stage in (P3, P2, P1):
        s[stage].compute_at(s[p.Z], jo)
    layouts = analyze(s.data).model.layouts
    assert {k: shape_of(v) for k, v in layouts.items()} == \
        {"P3": [16, 4], "P2": [17, 4], "P1": [18, 4]}


def test_softmax_row_reductions_are_scalars_per_row():
    p = softmax()
    s = p.schedule()
    i = p.sm.op.axis[0]
    s[p.e].compute_inline()
    s[p.ssum].compute_at(s[p.sm], i)
    s[p.mx].compute_at(s[p.sm], i)
    layouts = analyze(s.data).model.layouts
    assert {k: shape_of(v) for k, v in layouts.items()} == {"ssum": [1], "mx": [1]}


def test_conv_padding_at_output_row_is_three_rows():
    p = conv2d()
    s = p.schedule()
    b, f, y, x = p.O.op.axis
    s[p.Apad].compute_at(s[p.O], y)
    layout = analyze(s.data).model.layouts["Apad"]
    assert shape_of(layout) == [1, "Ci", 3, "W + 2"]


# ---------------------------------------------------------------------------------------
# lowering through isl for growing numbers of stages (no timing asserted here)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("stages", [1, 4, 8])
def test_chain_of_stages_lowers_with_private_tiles(stages):
    p = stencil_chain(stages)
    s = p.schedule()
    i, j = p.Z.op.axis
    io, jo, ii, ji = s[p.Z].tile(i, j, 8, 8)
    for stage in reversed(p.chain):
        s[stage].compute_at(s[p.Z], jo)
    lowered = td.lower(s, p.args)
    assert set(lowered.timings) >= {"build_program", "model", "isl_ast", "ir"}
    layouts = analyze(s.data).model.layouts
    assert {k: shape_of(v) for k, v in layouts.items()} == \
        {f"P{k + 1}": [8 + stages - 1 - k, 8] for k in range(stages)}
    assert lowered.kernel.temps == ()


# ---------------------------------------------------------------------------------------
# the teaching view: td.poly.domains, accesses, dependences, schedule_map, explain
# ---------------------------------------------------------------------------------------

def test_teaching_domains_and_accesses_of_matmul():
    p = matmul()
    s = p.schedule()
    assert {k: str(v) for k, v in td.poly.domains(s).items()} == {
        "C_init": "[n, l, m] -> { C_init[i, j] : 0 <= i < n and 0 <= j < m }",
        "C_update": "[n, l, m] -> { C_update[i, j, k] : 0 <= i < n and 0 <= j < m and "
                    "0 <= k < l }"}
    upd = "0 <= i < n and 0 <= j < m and 0 <= k < l }"
    acc = td.poly.accesses(s)
    assert [str(m) for m in acc["C_update"]["writes"]] == [
        f"[n, l, m] -> {{ C_update[i, j, k] -> C[i, j] : {upd}"]
    assert sorted(str(m) for m in acc["C_update"]["reads"]) == sorted([
        f"[n, l, m] -> {{ C_update[i, j, k] -> C[i, j] : {upd}",
        f"[n, l, m] -> {{ C_update[i, j, k] -> A[i, k] : {upd}",
        f"[n, l, m] -> {{ C_update[i, j, k] -> B[k, j] : {upd}"])
    assert acc["C_init"]["reads"] == []


def test_teaching_dependences_and_schedule_map_follow_the_schedule():
    p = matmul()
    s = p.schedule()
    assert {(d.kind, d.reduction) for d in td.poly.dependences(s, "C")} == {
        ("WAW", True), ("RAW", True), ("WAR", True), ("WAW", False), ("RAW", False)}
    io, ii = s[p.C].split(p.C.op.axis[0], factor=16)
    assert td.poly.schedule_map(s).is_equal(analyze(s.data).model.time)


def test_teaching_explain_parallel_loops():
    p = matmul()
    s = p.schedule()
    text = td.poly.explain(s[p.C], p.k)
    assert text.startswith("Loop k of C cannot run in parallel")
    assert "reduction WAW dependence on C" in text
    assert "C.update[i=0, j=0, k=0] and C.update[i=0, j=0, k=1]" in text
    assert td.poly.explain(s[p.C], p.C.op.axis[0]).startswith("Loop i of C can run in parallel")
    q = iir()
    t = q.schedule()
    text = td.poly.explain(t[q.Y], q.r)
    assert "cannot run in parallel" in text and "RAW dependence on Y" in text
    assert "Y_update[i=0, r=1] and Y_update[i=0, r=2]" in text
    assert "can run in parallel" in td.poly.explain(t[q.Y], q.Y.op.axis[0])
