"""tdsl.viz renders real pictures: each figure is drawn to PNG and checked to hold
what it should (points, arrows, colors), not just to exist."""

import io

import numpy as np
import pytest

import tdsl as td
from tdsl import viz

matplotlib = pytest.importorskip("matplotlib")


def _matmul():
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return (n, l, m), C, k


def _png(fig) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    image = matplotlib.image.imread(buf)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05            # not a blank canvas
    return image


def _red_pixels(image) -> int:
    rgb = image[..., :3]
    return int(((rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.2) & (rgb[..., 2] < 0.2)).sum())


def test_domain_marks_the_dependences_a_parallel_loop_would_break():
    (n, l, m), C, k = _matmul()
    s = td.create_schedule(C)
    fig = viz.domain(s, C, {n: 3, m: 1, l: 4}, dims=("i", "k"), carried_by=k)
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == 3 * 4        # the i x k slice
    arrows = [a for a in ax.texts if a.arrow_patch is not None] if ax.texts else \
        [c for c in ax.get_children() if type(c).__name__ == "Annotation"]
    # k -> k + 1 for each i (a reduction: dashed, no head), and C_init -> the first update
    reduction = [a for a in arrows if a.arrow_patch.get_arrowstyle().__class__.__name__ ==
                 "Curve"]
    assert len(reduction) == 3 * 3
    assert all(a.arrow_patch.get_linestyle() == "--" for a in reduction)
    assert len(arrows) - len(reduction) == 3                   # one init arrow per i
    assert len(ax.collections) == 2                            # updates, init squares
    assert [tuple(p) for p in ax.collections[1].get_offsets()] == [(0, -1), (1, -1), (2, -1)]
    assert all(float(t).is_integer() for t in ax.get_xticks())
    assert _red_pixels(_png(fig)) > 50


def _arrows(ax):
    return [c for c in ax.get_children() if type(c).__name__ == "Annotation"]


def test_a_recurrence_is_drawn_with_solid_arrows_not_reduction_lines():
    H, W = td.var("H"), td.var("W")
    X = td.placeholder((H, W), name="X")
    r = td.reduce_axis((1, H), name="r")
    Y0 = td.compute((H, W), lambda t, c: X[t, c], name="Y")
    Y = td.update(Y0, lambda c: (r, c), lambda c: 0.5 * Y0[r - 1, c] + X[r, c])
    fig = viz.domain(td.create_schedule(Y), Y, {H: 4, W: 3}, dims=("c", "r"), carried_by=r)
    arrows = _arrows(fig.axes[0])
    assert len(arrows) == 3 * 2
    assert all(a.arrow_patch.get_linestyle() == "-" for a in arrows)
    assert all(a.arrow_patch.get_arrowstyle().__class__.__name__ != "Curve" for a in arrows)
    assert _red_pixels(_png(fig)) > 50


def _blur():
    h, w = td.var("h"), td.var("w")
    inp = td.placeholder((h + 2, w + 2), name="inp")
    bx = td.compute((h + 2, w), lambda y, x: inp[y, x] + inp[y, x + 1] + inp[y, x + 2],
                    name="bx")
    by = td.compute((h, w), lambda y, x: bx[y, x] + bx[y + 1, x] + bx[y + 2, x], name="by")
    return (h, w), bx, by


def test_regions_outline_each_tiles_producer_region_and_shade_the_halo():
    (h, w), bx, by = _blur()
    s = td.create_schedule(by)
    _, xo, _, _ = s[by].tile(*by.op.axis, 4, 4)
    s[bx].compute_at(s[by], xo)
    fig = viz.regions(s, bx, {h: 8, w: 8})
    ax = fig.axes[0]
    outlines = [p for p in ax.patches if not p.get_fill()]
    assert len(outlines) == 4                                  # 2 x 2 tiles
    # 4 columns x 6 rows of bx each (outlines are inset a little, to show overlaps)
    assert all(2.5 < p.get_width() <= 4 and 4.5 < p.get_height() <= 6 for p in outlines)
    twice = [t for t in ax.texts if t.get_text() == "2"]
    assert len(twice) == 2 * 8                                 # rows 4 and 5, every column
    _png(fig)


def test_order_draws_one_path_per_thread():
    (n, l, m), C, k = _matmul()
    s = td.create_schedule(C)
    io, jo, ii, ji = s[C].tile(*C.op.axis, 4, 4)
    s[C].parallel(io)
    ax = viz.order(s, C, {n: 8, m: 8, l: 1}).axes[0]
    assert len(ax.lines) == 2
    assert all(len(line.get_xdata()) == 32 for line in ax.lines)


def test_domain_of_a_parallel_data_axis_has_no_red():
    (n, l, m), C, k = _matmul()
    s = td.create_schedule(C)
    fig = viz.domain(s, C, {n: 3, m: 1, l: 4}, dims=("i", "k"), carried_by=C.op.axis[0])
    assert _red_pixels(_png(fig)) == 0


def test_order_numbers_every_point_and_colors_parallel_lanes():
    (n, l, m), C, k = _matmul()
    s = td.create_schedule(C)
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, 4, 4)
    s[C].parallel(io)
    fig = viz.order(s, C, {n: 8, m: 8, l: 1})
    ax = fig.axes[0]
    numbers = sorted(int(t.get_text()) for t in ax.texts)
    assert numbers == list(range(64))
    colors = {tuple(c.get_facecolor()[0]) for c in ax.collections}
    assert len(colors) == 2                                     # two iterations of i_outer
    _png(fig)


def test_roofline_and_bars_render():
    _png(viz.roofline([("gemm", 2e9, 1.2e7, 0.02), ("copy", 1e6, 8e6, 0.001)], 230, 30))
    fig = viz.bars({"naive": 3.0, "tiled": 40.0, "register tile": 180.0}, peak=230)
    assert [round(p.get_height()) for p in fig.axes[0].patches] == [3, 40, 180]
    _png(fig)


def test_unknown_stage_and_axis_are_clear_errors():
    (n, l, m), C, k = _matmul()
    s = td.create_schedule(C)
    with pytest.raises(td.TdslValueError, match="is not an axis of C"):
        viz.domain(s, C, {n: 2, m: 2, l: 2}, dims=("i", "q"))
    with pytest.raises(td.TdslValueError, match="not a stage"):
        viz.order(s, "D", {n: 2, m: 2, l: 2})


def test_order_colours_one_vector_instruction_per_colour():
    (n, l, m), C, k = _matmul()
    s = td.create_schedule(C)
    i, j = C.op.axis
    jo, ji = s[C].split(j, factor=4)
    s[C].vectorize(ji)
    ax = viz.order(s, C, {n: 2, m: 8, l: 1}).axes[0]
    colors = {tuple(c.get_facecolor()[0]) for c in ax.collections}
    assert len(colors) == 2 * 2                                 # 2 rows x 2 vectors of 4
    assert "vector" in ax.get_title()


def test_traffic_per_array_for_two_schedules():
    (n, l, m), C, k = _matmul()
    args = [*C.op.input_tensors, C]
    plain = td.create_schedule(C)
    tiled = td.create_schedule(C)
    i, j = C.op.axis
    io, jo, ii, ji = tiled[C].tile(i, j, 16, 16)
    sizes = {"n": 64, "l": 64, "m": 64}
    counts = {"naive": td.counts(plain, args, sizes), "tiled": td.counts(tiled, args, sizes)}
    fig = viz.traffic(counts, caches=[1024, 4096, 16384, 65536])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 * 3                                   # A, B, C per schedule
    b_naive = [ln for ln in lines if ln.get_label() == "B (naive)"][0]
    assert list(b_naive.get_ydata()) == [counts["naive"].traffic(c)["B"]
                                         for c in (1024, 4096, 16384, 65536)]
    _png(fig)


def test_counts_roofline_puts_prediction_next_to_measurement():
    from tdsl.analysis import Machine
    (n, l, m), C, k = _matmul()
    args = [*C.op.input_tensors, C]
    c = td.counts(td.create_schedule(C), args, {"n": 64, "l": 64, "m": 64})
    machine = Machine(100.0, {32 * 1024: 50.0, 1 << 20: 10.0}, threads=2, lanes=8)
    fig = viz.counts_roofline({"naive": (c, 0.01)}, machine)
    ax = fig.axes[0]
    hollow, filled = ax.collections[0], ax.collections[1]
    x = c.flops / c.total_traffic(1 << 20)
    assert tuple(filled.get_offsets()[0]) == pytest.approx((x, c.flops / 0.01 / 1e9))
    predicted = c.flops / c.roofline_time(machine, warm=True) / 1e9
    assert tuple(hollow.get_offsets()[0]) == pytest.approx((x, predicted))
    _png(fig)
    with pytest.raises(td.TdslValueError, match="no bandwidth for a 4096-byte cache"):
        viz.counts_roofline({"naive": (c, 0.01)}, machine, cache_bytes=4096)
