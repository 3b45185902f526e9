"""td.compile on small networks: outputs equal NumPy's, the fusion decisions and the
folding are the ones the rules say, the memory plan shares buffers, and a second compile
comes from the cache."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td

from . import common


# the fusion and layout decisions below depend on the vector width (channel blocks of 8
# or 16 floats): the tests name AVX2's, so the networks are compiled for AVX2 on every
# machine, AVX-512 ones included (test_layout.py checks the rules' widths)
TARGET = "c -mcpu=x86-64-v3"


def _compile(build):
    outputs, inputs, params, oracle = build()
    return td.compile(outputs, inputs=inputs, params=params, target=TARGET), inputs, oracle


@pytest.fixture(scope="module")
def nets(private_cache):              # the tests below check which compiles were hits
    return {b.__name__: _compile(b) for b in (common.mlp, common.cnn, common.residual,
                                               common.transformer, common.inverted_residual)}


def _inputs(inputs, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal([int(d.value) for d in t.shape]).astype("float32")
            for t in inputs]


@pytest.mark.parametrize("name", ["mlp", "cnn", "residual", "transformer",
                                  "inverted_residual"])
def test_outputs_equal_numpy(nets, name):
    net, inputs, oracle = nets[name]
    for seed in (0, 1):
        arrays = _inputs(inputs, seed)
        out = net(*arrays)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
        np.testing.assert_allclose(out, oracle(*arrays), rtol=2e-4, atol=2e-4)


def _kernel_of(net, stage):
    return next(k for k in net.kernels if stage in k.stages)


def test_mlp_fuses_bias_and_relu_into_the_dense(nets):
    net = nets["mlp"][0]
    assert [k.stages for k in net.kernels] == [
        ("dense_matmul", "dense", "relu"),
        ("dense_matmul_1", "dense_1"),
        ("softmax_max", "softmax_exp", "softmax_sum", "softmax")]
    assert net.kernels[0].patterns == ("out_fusable", "broadcast", "elementwise")
    assert not net.folded                  # nothing depends on the weights alone


def test_cnn_folds_batch_norm_into_the_conv(nets):
    net = nets["cnn"][0]
    assert [f.what for f in net.folded] == ["constant", "batch_norm"]
    assert str(net.folded[1]) == "batch_norm batch_norm folded into conv2d (weights and bias)"
    conv = _kernel_of(net, "conv2d")
    # the batch_norm stage became a bias add on new weights: no mean, var, gamma read
    assert conv.stages == ("conv2d_pad", "conv2d", "batch_norm", "relu")
    assert conv.inputs == ("x", "w_bn", "batch_norm_bias")
    assert "w" not in net.constants and "mean" not in net.constants
    assert set(net.constants) == {"w_bn", "batch_norm_bias", "wd", "bd"}
    # pooling reductions go together; the flatten goes into the dense as its prologue
    assert _kernel_of(net, "max_pool2d").stages == ("max_pool2d", "global_avg_pool2d_sum")
    assert _kernel_of(net, "dense_matmul").stages == ("global_avg_pool2d", "flatten",
                                                      "dense_matmul", "dense")


def test_residual_block_materializes_the_shared_producer(nets):
    net = nets["residual"][0]
    first, second = net.kernels
    # both convolutions in blocks of 8 channels (layout.py): the first writes its relu in
    # blocks, which the second convolution sums over; a row of 8 is at most two register
    # strips, so both skip every tap on their padding and read their input in place
    assert first.stages == ("conv2d_blk", "batch_norm_blk", "relu_blk")
    # relu is read by the second conv and by the add: written once, read by one kernel
    assert first.outputs == ("relu_blk",)
    assert second.stages == ("conv2d_1_blk", "conv2d_1", "relu_1", "relu", "add", "relu_2")
    assert second.inputs == ("relu_blk", "w2_blk8x8")
    assert [s.name for s in net.plan.slots] == ["relu_blk"]


def test_transformer_choices_by_cost(nets):
    net = nets["transformer"][0]
    choices = {c.split(":")[0]: c for c in net.choices}
    # layer_norm feeds two kernels, one of them a dense that reads each element 32 times:
    # recomputing it there costs more than writing it once
    assert "materialize" in choices["layer_norm"]
    # the transposed K is read once per element: copied into its reader
    assert "recompute" in choices["transpose"]
    assert _kernel_of(net, "matmul").stages == ("transpose", "matmul", "mul")
    assert _kernel_of(net, "softmax").stages == ("softmax_max", "softmax_exp", "softmax_sum",
                                                 "softmax")
    assert _kernel_of(net, "gelu").stages == ("dense_4", "gelu")
    assert _kernel_of(net, "layer_norm").stages == ("layer_norm_sum", "layer_norm_sqsum",
                                                    "layer_norm")


def test_depthwise_block_keeps_its_epilogue(nets):
    """The depthwise conv (a reduction without reuse) takes its bias and relu6 (fusion
    rule 1: a reduction read at its own index by an elementwise chain)."""
    net = nets["inverted_residual"][0]
    assert len([f for f in net.folded if f.what == "batch_norm"]) == 3
    # (in channel blocks, layout.py: the expansion and the depthwise convolution in
    # blocks of 16, the projection sums over them)
    assert [k.stages for k in net.kernels] == [
        ("conv2d_blk", "batch_norm_blk", "maximum_blk", "minimum_blk"),
        ("conv2d_pad_blk", "conv2d_1_blk", "batch_norm_1_blk", "maximum_1_blk",
         "minimum_1_blk"),
        ("conv2d_2_blk", "conv2d_2", "batch_norm_2", "add")]
    assert net.kernels[1].patterns[1] == "reduction"
    assert net.kernels[2].inputs[0] == "minimum_1_blk"


def test_memory_plan_shares_buffers(nets):
    net = nets["transformer"][0]
    plan = net.plan
    assert len(plan.slots) == 10
    assert plan.peak < plan.total
    for a in plan.slots:                  # tensors alive at once never overlap
        for b in plan.slots:
            if a is not b and a.first <= b.last and b.first <= a.last:
                assert a.offset + a.nbytes <= b.offset or b.offset + b.nbytes <= a.offset


def test_print_shows_kernels_schedules_shares_and_plan(nets):
    net, inputs, _ = nets["residual"]
    net(*_inputs(inputs, 3))
    text = str(net)
    assert text.startswith("network network: (x) -> (relu_2), 2 kernels, 3 weights embedded")
    assert "kernel 0: network_conv2d_blk  [" in text and "% of the time]" in text
    # the conv is computed at its epilogue's register tile (the relu's tile loop)
    assert "schedule (td.auto_schedule):" in text and \
        "s[conv2d_blk].compute_at(s[relu_blk]" in text
    assert "memory plan: 1 intermediates in one arena of 2.0 KiB" in text
    assert sum(net.kernel_seconds()) > 0


def test_second_compile_comes_from_the_cache(nets):
    first = nets["mlp"][0]
    again, inputs, oracle = _compile(common.mlp)
    assert not first.cached and again.cached
    assert again.library_path == first.library_path
    assert str(again).splitlines()[1:4] == str(first).splitlines()[1:4]
    arrays = _inputs(inputs, 5)
    np.testing.assert_allclose(again(*arrays), oracle(*arrays), rtol=2e-4, atol=2e-4)


def test_other_weights_compile_another_library(nets):
    outputs, inputs, params, _ = common.mlp()
    params = {t: a + 1 for t, a in params.items()}
    net = td.compile(outputs, inputs=inputs, params=params)
    assert not net.cached and net.library_path != nets["mlp"][0].library_path


def test_several_outputs_come_back_as_a_list(monkeypatch):
    from tdsl import nn
    monkeypatch.setenv("TDSL_COMPILE_JOBS", "1")          # the kernels one after another
    x = td.placeholder((3, 4), name="x")
    w = td.placeholder((5, 4), name="w")
    h = nn.dense(x, w)
    net = td.compile([nn.relu(h), nn.sigmoid(h)], inputs=[x],
                     params={w: np.ones((5, 4), "float32")})
    xa = np.arange(12, dtype="float32").reshape(3, 4) - 6
    assert [k.stages for k in net.kernels] == [("dense",), ("relu",), ("sigmoid",)]
    relu, sig = net(xa)
    ref = xa @ np.ones((4, 5), "float32")
    np.testing.assert_allclose(relu, np.maximum(ref, 0), rtol=1e-6)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-ref)), rtol=1e-5)


def test_a_log_without_records_falls_back_to_auto_schedule(nets, tmp_path):
    log = tmp_path / "tune.jsonl"
    log.write_text("")
    outputs, inputs, params, oracle = common.mlp()
    net = td.compile(outputs, inputs=inputs, params=params, log=log, target=TARGET)
    assert not net.cached                         # the log is part of the key
    assert not any(k.tuned for k in net.kernels)
    assert [k.schedule for k in net.kernels] == [k.schedule for k in nets["mlp"][0].kernels]
    arrays = _inputs(inputs, 6)
    np.testing.assert_allclose(net(*arrays), oracle(*arrays), rtol=2e-4, atol=2e-4)


def test_an_update_stage_and_an_output_read_by_another_output():
    """A recurrence (opaque: a kernel of its own, with its initial stage) whose result is
    both an output and the input of the next kernel."""
    x = td.placeholder((8,), name="x")
    r = td.reduce_axis((1, 8), name="r")
    y = td.compute((8,), lambda i: x[i] * 2, name="y")
    y = td.update(y, lambda: (r,), lambda: y[r - 1] + y[r])
    from tdsl import nn
    net = td.compile([nn.relu(y), y], inputs=[x])
    assert [k.stages for k in net.kernels] == [("y", "y_update"), ("relu",)]
    assert net.kernels[0].patterns == ("elementwise", "opaque")
    xa = np.arange(8, dtype="float32") - 2
    relu, prefix = net(xa)
    np.testing.assert_array_equal(prefix, np.cumsum(2 * xa))
    np.testing.assert_array_equal(relu, np.maximum(np.cumsum(2 * xa), 0))
    assert net.plan.peak == 0
    with pytest.raises(td.TdslValueError, match="the output relu is listed twice"):
        out = nn.relu(y)
        td.compile([out, out], inputs=[x])


def test_batch_norm_folds_into_a_conv_computed_wider_than_its_rows():
    """On a 7 x 7 map nn.conv2d computes rows 8 wide and reads 7 of them back (a crop
    stage); batch_norm still folds into the convolution, and the crop disappears."""
    from tdsl import nn
    rng = np.random.default_rng(7)
    x = td.placeholder((1, 3, 7, 7), name="x")
    w = td.placeholder((5, 3, 3, 3), name="w")
    g, b, m, v = (td.placeholder((5,), name=n) for n in ("gamma", "beta", "mean", "var"))
    conv = nn.conv2d(x, w, padding=1)
    assert conv.op.input_tensors[0].name == "conv2d_sum"
    assert int(conv.op.input_tensors[0].shape[3].value) == 8
    y = nn.relu(nn.batch_norm(conv, g, b, m, v))
    P = {w: common.rand(rng, 5, 3, 3, 3), g: common.rand(rng, 5), b: common.rand(rng, 5),
         m: common.rand(rng, 5), v: common.rand(rng, 5, positive=True)}
    net = td.compile([y], inputs=[x], params=P)
    assert [f.what for f in net.folded] == ["constant", "batch_norm"]
    kernel = _kernel_of(net, "conv2d_sum")
    assert "conv2d" not in kernel.stages and "w" not in net.constants
    xa = rng.standard_normal((1, 3, 7, 7)).astype(np.float32)
    want = np.maximum(common.np_batch_norm(common.np_conv2d(xa, P[w], 1), P[g], P[b], P[m],
                                           P[v]), 0)
    np.testing.assert_allclose(net(xa), want, rtol=2e-4, atol=2e-4)
