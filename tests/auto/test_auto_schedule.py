"""td.auto_schedule: legal, correct, and the schedule the rules promise, per program.

Every program of the schedule tests (symbolic sizes, ragged and dividing) against NumPy
with canaries around every array; constant-size workloads with checks of what the rules
chose (a register tile in registers, reductions in lanes at the row, stencil tiles);
the CUDA rules through the emulator.
"""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tests.schedule import test_primitives as programs
from tests.schedule.test_idioms import full_tile_reduction_loops

PROGRAMS = {
    "matmul": programs.matmul, "conv2d": programs.conv2d, "blur": programs.blur,
    "softmax": programs.softmax, "prefix_sum": programs.prefix_sum, "iir": programs.iir,
    "row_sum": programs.row_sum, "stencil_chain": programs.stencil_chain,
    "two_consumers": programs.two_consumers,
    "two_outputs": lambda: programs.two_consumers(both_outputs=True), "pad1d": programs.pad1d,
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_auto_schedule_of_every_schedule_test_program(name):
    p = PROGRAMS[name]()
    s = td.auto_schedule(p.outputs)
    programs.verify(p, s)


@pytest.mark.parametrize("target", ["c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4"],
                         ids=["avx2", "avx512"])
@pytest.mark.parametrize("n,m,l", [(64, 96, 32), (37, 50, 19)], ids=["dividing", "ragged"])
def test_matmul_gets_a_register_tile(n, m, l, target, monkeypatch):
    from tdsl.auto import rules
    monkeypatch.setattr(rules, "MIN_PARALLEL_WORK", 0)   # threads at any size (grain rule)
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.auto_schedule(C, target=target)
    text = "\n".join(s.history)
    assert "cache_write(C, 'local')" in text and "unroll" in text and "parallel" in text
    mod = td.build(s, [A, B, C], target=target)
    rows, cols = td.examples.register_tile_shape(target)
    loops = full_tile_reduction_loops(mod.source)
    assert loops and loops[0].count("C_local[") == 2 * rows * (cols // td.target(target).lanes())
    if td.target(target).runs_here():
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((n, l), np.float32), rng.standard_normal((l, m), np.float32)
        c = np.empty((n, m), np.float32)
        mod(a, b, c)
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_softmax_reductions_in_lanes_at_the_row():
    p = programs.softmax()
    s = td.auto_schedule(p.outputs)
    text = "\n".join(s.history)
    assert "rfactor" in text and "compute_at" in text and "parallel" in text
    for stage in s.stages:
        if stage.name != p.outputs[0].name:
            assert "computed at" in s.show().split(f"Stage {stage.name}")[1].split("\n")[0]
    programs.verify(p, s)


def test_conv2d_keeps_padding_as_a_stage_and_tiles_channels():
    p = programs.conv2d()
    s = td.auto_schedule(p.outputs)
    text = "\n".join(s.history)
    assert "s[Apad].compute_inline" not in text and "s[Apad].compute_at" not in text
    assert "cache_write(O, 'local')" in text
    programs.verify(p, s)


@pytest.mark.parametrize("shape,stride", [((1, 16, 20, 20), 2), ((2, 5, 13, 11), 1)], ids=str)
def test_pool_reads_its_padding_inline(shape, stride):
    """A pool reads each padded pixel (kernel / stride)^2 times: the padding is inlined
    (a test per read) rather than copied, unlike a convolution's; -inf never wins at the
    borders."""
    from tdsl import nn
    x = td.placeholder(shape, name="x")
    y = nn.max_pool2d(x, 3, stride=stride, padding=1, name="pool")
    s = td.auto_schedule(y)
    text = "\n".join(s.history)
    assert "s[pool_pad].compute_inline()" in text
    mod = td.build(s, [x, y])
    a = np.random.default_rng(stride).standard_normal(shape).astype(np.float32)
    want = td.reference(y, {x: a})
    got = np.empty(want.shape, np.float32)
    mod(a, got)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("channels,size,parallel", [(64, 56, True), (16, 8, False)])
def test_a_copy_that_moves_a_megabyte_runs_on_the_threads(channels, size, parallel):
    """Parallel loops by the data a nest moves as well as by its operations: a padding
    copy of 64 x 58 x 58 floats (1.7 MB moved, ~0.4M operations) runs on the threads, one
    of 16 x 10 x 10 floats stays serial."""
    x = td.placeholder((1, channels, size, size), name="x")
    y = td.compute((1, channels, size + 2, size + 2), lambda n, c, i, j: td.select(
        (i >= 1) & (i <= size) & (j >= 1) & (j <= size), x[n, c, i - 1, j - 1], 0.0),
        name="y")
    s = td.auto_schedule(y)
    assert ("parallel" in "\n".join(s.history)) == parallel


@pytest.mark.parametrize("rows,cols,parallel", [(512, 1000, True), (64, 100, False)],
                         ids=["2MB-of-weights", "25KB"])
def test_a_dense_layer_that_reads_a_megabyte_of_weights_runs_on_the_threads(rows, cols,
                                                                           parallel):
    """A dense layer at batch 1 (ResNet-18's last, 512 -> 1000: 1M operations) is computed
    in its bias add's tile; the bytes of the nest count the weights the product reads
    there, so its 2 MB run on the threads (a small one stays serial); output vs NumPy."""
    from tdsl import nn
    x, w = td.placeholder((1, rows), name="x"), td.placeholder((cols, rows), name="w")
    b = td.placeholder((cols,), name="b")
    y = nn.dense(x, w, b)
    s = td.auto_schedule(y)
    assert ("parallel" in "\n".join(s.history)) == parallel
    rng = np.random.default_rng(0)
    xa, wa, ba = (rng.standard_normal(t).astype("float32") for t in ((1, rows), (cols, rows), cols))
    got = np.empty((1, cols), np.float32)
    td.build(s, [x, w, b, y])(xa, wa, ba, got)
    np.testing.assert_allclose(got, xa @ wa.T + ba, rtol=1e-4, atol=1e-4)


def test_blur_computes_the_producer_per_tile():
    """blur_x divides by 3: recomputed at 3 offsets it would cost 39 operations per
    output (a division counts DIVISION_COST), so it is computed once per tile."""
    p = programs.blur()
    s = td.auto_schedule(p.outputs)
    assert any(line.startswith(f"s[{p.bx.name}].compute_at") for line in s.history)
    programs.verify(p, s)


@pytest.mark.parametrize("shape", [(37, 70), (32, 64), (1, 1)], ids=str)
def test_a_cheap_blur_inlines_its_producer(shape):
    """blur_x times a third (3 loads, 2 adds, a multiply) at 3 offsets is 18 operations
    per output, within STENCIL_RECOMPUTE_OPS: recomputed inside blur_y, no tiles; a
    stencil reading a computed stage is not (its recomputation would multiply)."""
    h, w = td.var("h"), td.var("w")
    inp = td.placeholder((h + 2, w + 2), name="inp")
    third = 1.0 / 3.0
    bx = td.compute((h + 2, w), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2])
                    * third, name="bx")
    by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) * third,
                    name="by")
    s = td.auto_schedule(by)
    assert "s[bx].compute_inline()" in s.history and not any(".tile(" in h for h in s.history)
    a = np.random.default_rng(3).standard_normal((shape[0] + 2, shape[1] + 2)).astype("f4")
    got = np.empty(shape, np.float32)
    td.build(s, [inp, by])(a, got)
    x = (a[:, :-2] + a[:, 1:-1] + a[:, 2:]) * np.float32(third)
    np.testing.assert_allclose(got, (x[:-2] + x[1:-1] + x[2:]) * np.float32(third),
                               rtol=1e-5, atol=1e-6)
    chain = programs.stencil_chain()
    s = td.auto_schedule(chain.outputs)
    p1, p2, p3 = (t.name for t in chain.chain)
    assert f"s[{p1}].compute_inline()" in s.history
    assert f"s[{p2}].compute_inline()" not in s.history
    programs.verify(chain, s)


@pytest.mark.parametrize("shape", [(40, 24), (33, 17)], ids=str)
def test_transpose_and_column_sum(shape):
    n, m = shape
    x = td.placeholder((n, m), name="x")
    t = td.compute((m, n), lambda i, j: x[j, i], name="t")
    s = td.auto_schedule(t)
    assert any(".tile(" in h for h in s.history)
    mod = td.build(s, [x, t])
    a = np.random.default_rng(1).standard_normal((n, m), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    mod(a, out)
    np.testing.assert_array_equal(out, a.T)

    r = td.reduce_axis(n, name="r")
    col = td.compute((m,), lambda j: td.sum(x[r, j], axis=r), name="col")
    s = td.auto_schedule(col)
    assert any("vectorize" in h for h in s.history)
    mod = td.build(s, [x, col])
    got = np.empty(m, np.float32)
    mod(a, got)
    np.testing.assert_allclose(got, a.sum(0), rtol=1e-5, atol=1e-5)


def test_every_choice_is_a_legal_public_primitive():
    """The schedule carries the calls the rules made, as for a user; relowering checks
    the whole schedule again."""
    p = programs.softmax()
    s = td.auto_schedule(p.outputs)
    assert s.history and all(h.startswith("s") for h in s.history)
    td.lower(s, p.args)


@pytest.mark.needs_nvcc
@pytest.mark.parametrize("name", ["matmul", "softmax", "blur"])
def test_cuda_auto_schedule_on_the_emulator(name):
    p = PROGRAMS[name]()
    s = td.auto_schedule(p.outputs, target="cuda")
    assert any("blockIdx.x" in h for h in s.history)
    mod = td.build(s, p.args, target="cuda", emulate=True)
    combo = p.sizes[0]
    rng = np.random.default_rng(0)
    feeds = {t: programs.random_array(t, combo, rng) for t in p.args
             if isinstance(t.op, td.lang.PlaceholderOp)}
    want = p.numpy({t.name: a for t, a in feeds.items()}, {v.name: k for v, k in combo.items()})
    outs = [np.empty(w.shape, np.float32) for w in want]
    mod(*feeds.values(), *outs)
    for got, exp in zip(outs, want):
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["matmul", "softmax", "conv2d", "blur"])
def test_printed_schedule_is_code_that_rebuilds_it(name):
    """print(s) shows the primitives as Python: pasted after the compute definitions, it
    makes the same schedule."""
    p = PROGRAMS[name]()
    s = td.auto_schedule(p.outputs)
    code = s.script()
    assert "\n".join("  " + line for line in code.splitlines()) in str(s)
    fresh = td.create_schedule(p.outputs)
    scope = {"s": fresh, **{t.name: t for t in p.t.values() if isinstance(t, td.Tensor)}}
    exec(code, scope)
    assert fresh.history == s.history


@pytest.mark.parametrize("batch,k,out", [(1, 24, 13), (6, 40, 24), (7, 16, 11), (5, 20, 9)],
                         ids=["gemv", "dividing", "ragged", "k-not-lanes"])
def test_dense_gets_a_dot_product_tile(batch, k, out):
    """x[i, k] * w[j, k]: the sum is factored into lanes along k (contiguous in both
    operands, no gathers down w's columns), the partial sums computed per tile of the
    output; a k that is not a whole number of vectors keeps the column register tile."""
    from tdsl import nn
    x = td.placeholder((batch, k), name="x")
    w = td.placeholder((out, k), name="w")
    b = td.placeholder((out,), name="b")
    y = nn.relu(nn.dense(x, w, b))
    s = td.auto_schedule(y, target="c -mcpu=x86-64-v3")
    text = "\n".join(s.history)
    shown = s.show()
    assert "Stage dense_matmul (computed at relu." in shown      # the epilogue in the tile
    if k % 8:
        assert "rfactor" not in text and "s[dense_matmul].unroll(i)" in text
    else:
        assert "s.rfactor(dense_matmul, k_inner)" in text
        assert "Stage dense_matmul_rf (computed at relu." in shown
        assert "s[dense_matmul_rf].vectorize(k_inner)" in text
        assert "s[dense_matmul_rf].unroll(i)" in text and "s[dense_matmul_rf].unroll(j)" in text
    mod = td.build(s, [x, w, b, y], target="c -mcpu=x86-64-v3")
    if td.target("c -mcpu=x86-64-v3").runs_here():
        rng = np.random.default_rng(3)
        xa, wa = rng.standard_normal((batch, k), np.float32), rng.standard_normal((out, k),
                                                                                  np.float32)
        ba = rng.standard_normal(out, np.float32)
        got = np.empty((batch, out), np.float32)
        mod(xa, wa, ba, got)
        want = np.maximum(xa.astype(np.float64) @ wa.T + ba, 0)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("width,wide,rows", [(7, 8, 12), (14, 16, 6), (11, 11, 4), (20, 24, 6)],
                         ids=lambda v: str(v))
def test_narrow_rows_get_a_register_tile_that_fits(width, wide, rows):
    """A feature map narrower than the tile's 16 columns is computed a whole number of
    vectors wide when that costs at most a quarter more (7 -> 8: a 12 x 8 tile of whole
    vectors) and read back at its width; else it gets fewer rows (11 = 8 + 1 + 1 + 1
    registers per row of accumulators: 4 rows), so the tile stays in 16 ymm registers,
    and the columns left over after the vectors are scalar statements, not an `omp simd`
    loop. (The column tile: the `vectors` knob's "columns"; a convolution's default is
    vectors of output channels, test below.)"""
    from tdsl import nn
    from tdsl.auto.knobs import Knobs
    from tdsl.auto.rules import apply_rules
    t = "c -mcpu=x86-64-v3"
    x = td.placeholder((1, 5, width, width), name="x")
    w = td.placeholder((13, 5, 3, 3), name="w")
    y = nn.conv2d(x, w, padding=1)
    reduction = y if wide == width else y.op.input_tensors[0]
    assert [int(d.value) for d in reduction.shape] == [1, 13, width, wide]
    knobs = Knobs({f"{reduction.name}.vectors": "columns"})
    s = apply_rules(y, t, knobs)
    assert knobs.chosen[f"{reduction.name}.tile_rows"] == rows
    mod = td.build(s, [x, w, y], target=t)
    assert "omp simd" not in mod.source.split("tdsl_entry")[0].split("int kernel(")[1]
    if td.target(t).runs_here():
        from tests.graph.common import np_conv2d
        rng = np.random.default_rng(4)
        xa = rng.standard_normal((1, 5, width, width), np.float32)
        wa = rng.standard_normal((13, 5, 3, 3), np.float32)
        got = np.empty((1, 13, width, width), np.float32)
        mod(xa, wa, got)
        np.testing.assert_allclose(got, np_conv2d(xa, wa, 1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("target", ["c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4"])
@pytest.mark.parametrize("channels,width", [(13, 7), (32, 11), (64, 14)], ids=str)
def test_convolution_gets_vectors_of_output_channels(target, channels, width):
    """A convolution's pixel vectors would start at every offset of its window; its
    register tile holds vectors of output channels instead, the weights copied once with
    the channels innermost (reorder_storage), their taps an odd number of cache lines
    apart (storage_align), and the pixels unrolled: right at ragged channel counts. Fewer
    channels than a vector (13 on AVX-512) keep the column tile."""
    from tests.graph.common import np_conv2d
    x = td.placeholder((1, 6, width, width), name="x")
    w = td.placeholder((channels, 6, 3, 3), name="w")
    k = [td.reduce_axis(6, name="rc"), td.reduce_axis(3, name="ry"),
         td.reduce_axis(3, name="rx")]
    pad = td.compute((1, 6, width + 2, width + 2), lambda n, c, y, xx: td.select(
        td.all(y >= 1, y <= width, xx >= 1, xx <= width), x[n, c, y - 1, xx - 1], 0.0),
        name="pad")
    out = td.compute((1, channels, width, width), lambda n, f, y, xx: td.sum(
        pad[n, k[0], y + k[1], xx + k[2]] * w[f, k[0], k[1], k[2]], axis=k), name="out")
    s = td.auto_schedule(out, target=target)
    lanes = td.target(target).lanes()
    rows = channels >= lanes
    assert ("s[w_local].reorder_storage(ax1, ax2, ax3, ax0)" in s.history) == rows
    assert any(h.startswith("s[w_local].storage_align(ax3") for h in s.history) == rows
    mod = td.build(s, [x, w, out], target=target)
    assert (f"*(tdsl_f32x{lanes}_u*)&w_local[" in mod.source) == rows
    if not td.target(target).runs_here():
        pytest.skip(f"{target} compiled; this CPU cannot run it")
    rng = np.random.default_rng(channels)
    xa = rng.standard_normal((1, 6, width, width), np.float32)
    wa = rng.standard_normal((channels, 6, 3, 3), np.float32)
    got = np.empty((1, channels, width, width), np.float32)
    mod(xa, wa, got)
    np.testing.assert_allclose(got, np_conv2d(xa, wa, 1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride,size", [(1, 11), (2, 15)], ids=["stride1", "stride2"])
def test_conv_epilogue_is_computed_in_the_register_tile(stride, size):
    """bias + residual add + relu after a convolution: the epilogue's loops are tiled and
    the convolution is computed per tile (no second loop nest over the output); the
    convolution reads its input with unit stride (stride 2 splits the padded columns by
    phase), so its tile is the same register tile."""
    from tdsl import nn
    x = td.placeholder((1, 6, size, size), name="x")
    w = td.placeholder((10, 6, 3, 3), name="w")
    b = td.placeholder((10,), name="b")
    out = (size + 2 - 3) // stride + 1
    r = td.placeholder((1, 10, out, out), name="r")
    y = nn.relu(nn.add(nn.conv2d(x, w, b, stride=stride, padding=1), r))
    s = td.auto_schedule(y, target="c -mcpu=x86-64-v3")
    shown = s.show()
    assert "Stage conv2d_sum (computed at relu." in shown
    assert "cache_write" not in "\n".join(s.history)
    assert "s[conv2d_sum].unroll(f)" in s.history and "s[relu].vectorize(i3_inner)" in s.history
    if stride == 2:
        pad = y.op.input_tensors[0].op.input_tensors[0].op.input_tensors[0].op.input_tensors[0]
        assert pad.name == "conv2d_pad" and len(pad.shape) == 5
    mod = td.build(s, [x, w, b, r, y], target="c -mcpu=x86-64-v3")
    # the convolution's result never goes to memory: a tile on the stack, no buffer
    assert "conv2d_sum = (float*)tdsl_alloc" not in mod.source
    assert "float conv2d_sum[" in mod.source
    if td.target("c -mcpu=x86-64-v3").runs_here():
        from tests.graph.common import np_conv2d
        rng = np.random.default_rng(5)
        arrays = [rng.standard_normal([int(d.value) for d in t.shape]).astype(np.float32)
                  for t in (x, w, b, r)]
        got = np.empty((1, 10, out, out), np.float32)
        mod(*arrays, got)
        want = np_conv2d(arrays[0], arrays[1], 1, stride) + arrays[2][None, :, None, None]
        np.testing.assert_allclose(got, np.maximum(want + arrays[3], 0), rtol=1e-4, atol=1e-4)


def test_depthwise_conv_is_a_column_reduction(monkeypatch):
    """A window sliding with the output (`x[.., xx + rx]`) is not a row reduction: the
    output's columns are the vectors, the 3 x 3 window loops outside them, and the
    output's other loops run in parallel (not factored into lanes of a 3-wide axis)."""
    from tdsl import nn
    from tdsl.auto import rules
    from tdsl.auto.analysis import analyze
    monkeypatch.setattr(rules, "MIN_PARALLEL_WORK", 0)   # threads at any size (grain rule)
    x = td.placeholder((1, 8, 12, 19), name="x")
    w = td.placeholder((8, 1, 3, 3), name="w")
    y = nn.conv2d(x, w, padding=1, groups=8)
    s = td.auto_schedule(y)
    kinds = {op.name: i.kind for op, i in analyze(list(s.data.order), [y.op]).items()}
    assert kinds["conv2d"] == "reduction"
    text = "\n".join(s.history)
    assert "rfactor" not in text and "s[conv2d].reorder(n, f, y, xx_outer, ry, rx, xx_inner)" \
        in text and "parallel" in text
    mod = td.build(s, [x, w, y])
    rng = np.random.default_rng(6)
    xa = rng.standard_normal((1, 8, 12, 19)).astype(np.float32)
    wa = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    got = np.empty((1, 8, 12, 19), np.float32)
    mod(xa, wa, got)
    from tests.graph.common import np_conv2d
    want = np.concatenate([np_conv2d(xa[:, c:c + 1], wa[c:c + 1], 1) for c in range(8)], 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_depthwise_epilogue_is_computed_per_piece_of_row():
    """relu6 after a depthwise convolution: the epilogue's rows are cut in pieces of 4
    vectors, and the convolution is computed per piece (its sums in registers, no buffer
    for the whole output)."""
    from tdsl import nn
    x = td.placeholder((1, 6, 9, 37), name="x")
    w = td.placeholder((6, 1, 3, 3), name="w")
    b = td.placeholder((6,), name="b")
    y = nn.minimum(nn.maximum(nn.conv2d(x, w, b, padding=1, groups=6), 0.0), 6.0)
    s = td.auto_schedule(y, target="c -mcpu=x86-64-v3")
    assert "Stage conv2d_sum (computed at minimum." in s.show()
    assert "s[conv2d_sum].reorder(n, f, y, ry, rx, xx)" in s.history
    mod = td.build(s, [x, w, b, y], target="c -mcpu=x86-64-v3")
    assert "conv2d_sum = (float*)tdsl_alloc" not in mod.source
    if td.target("c -mcpu=x86-64-v3").runs_here():
        from tests.graph.common import np_conv2d
        rng = np.random.default_rng(8)
        xa = rng.standard_normal((1, 6, 9, 37)).astype(np.float32)
        wa = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
        ba = rng.standard_normal(6).astype(np.float32)
        got = np.empty((1, 6, 9, 37), np.float32)
        mod(xa, wa, ba, got)
        dw = np.concatenate([np_conv2d(xa[:, c:c + 1], wa[c:c + 1], 1) for c in range(6)], 1)
        np.testing.assert_allclose(got, np.clip(dw + ba[None, :, None, None], 0, 6),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("epilogue", [False, True], ids=["alone", "scaled"])
def test_batch_matmul_gets_a_register_tile_and_a_panel(epilogue):
    """A batch axis in front of the tile: the batch and column-tile loops are fused for
    the threads, and the panel of B is copied at that fused loop (it was refused, which
    left the stage with no schedule at all)."""
    from tdsl import nn
    from tdsl.auto.knobs import Knobs
    from tdsl.auto.rules import apply_rules
    a = td.placeholder((3, 13, 24), name="a")
    b = td.placeholder((3, 24, 37), name="b")
    y = nn.batch_matmul(a, b)
    if epilogue:
        y = nn.mul(y, 0.5)
    knobs = Knobs()
    s = apply_rules(y, None, knobs)
    assert not knobs.refused
    text = "\n".join(s.history)
    assert "s.cache_read(b, 'local', [" in text and ".unroll(" in text
    mod = td.build(s, [a, b, y])
    rng = np.random.default_rng(9)
    av = rng.standard_normal((3, 13, 24)).astype(np.float32)
    bv = rng.standard_normal((3, 24, 37)).astype(np.float32)
    got = np.empty((3, 13, 37), np.float32)
    mod(av, bv, got)
    want = av.astype(np.float64) @ bv * (0.5 if epilogue else 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(3, 10, 37), (2, 3, 5, 19)], ids=str)
def test_softmax_over_the_last_axis_computes_per_fused_row(shape):
    """Softmax over the last axis of (heads, rows, columns): the leading axes are fused
    into one parallel row loop and the reductions computed per row (not per head)."""
    from tdsl import nn
    x = td.placeholder(shape, name="x")
    y = nn.softmax(x)
    s = td.auto_schedule(y)
    assert any(h.startswith("s[softmax].fuse(") for h in s.history)
    at = [h for h in s.history if h.startswith("s[softmax_max].compute_at")]
    assert at and at[0].endswith("_fused)")
    # exp, the last pass over x, fetches the next row: along the rows axis, whose row
    # after a head's last is the next head's first in memory
    assert f"s[softmax_exp].prefetch(x, i{len(shape) - 2}, 1)" in s.history
    mod = td.build(s, [x, y])
    a = np.random.default_rng(10).standard_normal(shape).astype(np.float32)
    got = np.empty(shape, np.float32)
    mod(a, got)
    e = np.exp(a.astype(np.float64) - a.max(-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", ["rows", "columns"])
def test_register_tile_order_is_a_knob(order):
    """Without a panel the order of the tile loops is the search's choice (a knob with
    the rows outside by default); either order computes the same matmul, ragged tiles
    included."""
    from tdsl.auto.knobs import Knobs
    from tdsl.auto.rules import apply_rules
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    knobs = Knobs({"C.pack": False, "C.tile_order": order})
    s = apply_rules(C, None, knobs)
    assert not knobs.refused and knobs.chosen["C.tile_order"] == order
    assert knobs.space["C.tile_order"] == (("rows", "columns"), "rows")
    loops = [line.split()[1] for line in str(td.lower(s, [A, B, C])).splitlines()
             if line.lstrip().startswith("for ") and "_outer" in line]
    assert loops[:2] == (["i_outer", "j_outer"] if order == "rows" else ["j_outer", "i_outer"])
    mod = td.build(s, [A, B, C])
    rng = np.random.default_rng(4)
    for shape in [(29, 13, 70), (6, 5, 16)]:
        a = rng.standard_normal(shape[:2]).astype(np.float32)
        b = rng.standard_normal(shape[1:]).astype(np.float32)
        c = np.empty((shape[0], shape[2]), np.float32)
        mod(a, b, c)
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rows", [1, 4, 16])
def test_elementwise_rows_per_task_is_a_knob(rows):
    """The threads' grain of an elementwise stage: a row per task by default, strips of
    rows as a knob; every choice computes the same result at ragged symbolic sizes."""
    from tdsl.auto.knobs import Knobs
    from tdsl.auto.rules import apply_rules
    n, m = td.var("n"), td.var("m")
    a = td.placeholder((n, m), name="a")
    b = td.placeholder((n, m), name="b")
    y = td.compute((n, m), lambda i, j: td.maximum(a[i, j] * b[i, j] + 1.0, 0.0), name="y")
    knobs = Knobs({"y.rows_per_task": rows})
    s = apply_rules(y, None, knobs)
    assert not knobs.refused and knobs.space["y.rows_per_task"] == ((1, 4, 16, 64), 1)
    text = "\n".join(s.history)
    assert (f"s[y].split(i, factor={rows})" in text) == (rows > 1)
    mod = td.build(s, [a, b, y])
    rng = np.random.default_rng(rows)
    for shape in [(37, 29), (3, 70)]:
        av, bv = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
        got = np.empty(shape, np.float32)
        mod(av, bv, got)
        np.testing.assert_allclose(got, np.maximum(av * bv + 1.0, 0.0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width,rows,registers,want", [
    (56, 6, 16, 6), (28, 6, 16, 6), (14, 6, 16, 7), (7, 6, 16, 7), (5, 6, 16, 5),
    (36, 8, 32, 9), (56, 8, 32, 8), (7, 8, 32, 7)])
def test_strips_of_a_register_tile_fit_the_registers(width, rows, registers, want):
    """A strip one row longer than the register budget is taken only to avoid a ragged
    last strip, and only while it fits or the row holds two of them: 7 pixels x 2
    vectors, 2 operand vectors and a broadcast are 17 of AVX2's 16 registers (gcc
    spills one), 9 x 2 + 3 fit AVX-512's 32."""
    from tdsl.auto.tiles import _rows_without_ragged_tile
    assert _rows_without_ragged_tile(width, rows, 2, registers) == want


@pytest.mark.parametrize("rows", [td.var("n"), 40], ids=["symbolic", "constant"])
def test_layernorm_through_inlined_mean_and_var_is_a_row_pipeline(rows):
    """mean and var as stages of their own, inlined into `out`: the sums they read are
    still read row by row by `out` through them, so they are computed at its row."""
    m = 96
    x = td.placeholder((rows, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    total = td.compute((rows,), lambda i: td.sum(x[i, k1], axis=k1), name="total")
    squares = td.compute((rows,), lambda i: td.sum(x[i, k2] * x[i, k2], axis=k2),
                         name="squares")
    mean = td.compute((rows,), lambda i: total[i] / m, name="mean")
    var = td.compute((rows,), lambda i: squares[i] / m - mean[i] * mean[i], name="var")
    out = td.compute((rows, m), lambda i, j: (x[i, j] - mean[i]) / td.sqrt(var[i] + 1e-5),
                     name="out")
    s = td.auto_schedule(out)
    for stage in ("total", "squares", "total_rf", "squares_rf"):
        assert f"s[{stage}].compute_at(s[out], i)" in s.history, s.history
    assert "s[out].prefetch(x, i, 1)" in s.history
    mod = td.build(s, [x, out])
    a = np.random.default_rng(11).standard_normal((40, m)).astype(np.float32)
    got = np.empty_like(a)
    mod(a, got)
    ref = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
