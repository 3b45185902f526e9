"""Convolutions computed in blocks of output channels (graph/layout.py): the weights packed
once at compile time, the block computed at its epilogue's tile, the outputs equal to
NumPy's for the shapes that take each path (a row a multiple of 7 or not, stride 2, a
narrow row nn.conv2d computes wider, 1x1, a conv that is itself an output, a conv read
by two stages, channels in blocks of 8 or 16)."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import nn

from .common import np_conv2d, rand


def _conv_net(c, f, h, k, stride, pad, epilogue, seed=0):
    rng = np.random.default_rng(seed)
    x = td.placeholder((1, c, h, h), name="x")
    w = td.placeholder((f, c, k, k), name="w")
    b = td.placeholder((f,), name="b")
    params = {w: (rand(rng, f, c, k, k) / np.sqrt(c * k * k)).astype("float32"),
              b: rand(rng, f)}
    if epilogue == "none":
        y = nn.conv2d(x, w, stride=stride, padding=pad)
        outs = [y]

        def oracle(xa):
            return [np_conv2d(xa, params[w], pad, stride)]
    elif epilogue == "bias_relu":
        y = nn.relu(nn.conv2d(x, w, b, stride=stride, padding=pad))
        outs = [y]

        def oracle(xa):
            return [np.maximum(np_conv2d(xa, params[w], pad, stride) +
                               params[b][None, :, None, None], 0)]
    else:                                    # the conv read by two stages
        z = nn.conv2d(x, w, stride=stride, padding=pad)
        outs = [nn.relu(z), nn.add(z, 1.0)]

        def oracle(xa):
            r = np_conv2d(xa, params[w], pad, stride)
            return [np.maximum(r, 0), r + 1.0]
    return outs, [x], params, oracle


CASES = [
    # c, f, h, k, stride, pad, epilogue, block
    (16, 32, 14, 3, 1, 1, "bias_relu", 16),     # strips of 7, no ragged strip
    (16, 24, 10, 3, 1, 1, "bias_relu", 8),      # 24 channels: blocks of 8; 10 = 6 + 4
    (16, 16, 7, 3, 1, 1, "none", 16),           # 7 wide (nn.conv2d computes it 8 wide)
    (16, 32, 15, 3, 2, 1, "bias_relu", 16),     # stride 2: column phases, 8 wide out
    (128, 32, 9, 1, 1, 0, "none", 16),          # 1x1
    (16, 16, 12, 3, 1, 1, "two_readers", 16),   # the block's tile without its epilogue
]


@pytest.mark.parametrize("c, f, h, k, stride, pad, epilogue, block", CASES)
def test_blocked_convolution_equals_numpy(c, f, h, k, stride, pad, epilogue, block):
    outs, inputs, params, oracle = _conv_net(c, f, h, k, stride, pad, epilogue)
    net = td.compile(outs, inputs=inputs, params=params, target="c -mcpu=x86-64-v3")
    layouts = [fo for fo in net.folded if fo.what == "layout"]
    assert len(layouts) == 1 and f"in blocks of {block} output channels" in layouts[0].into
    assert f"w_blk{block}" in net.constants and "w" not in net.constants
    rng = np.random.default_rng(1)
    xa = rand(rng, 1, c, h, h)
    got = net(xa)
    got = got if isinstance(got, list) else [got]
    for g, want in zip(got, oracle(xa)):
        np.testing.assert_allclose(g, want, rtol=2e-4, atol=2e-4)


def test_short_reductions_and_depthwise_stay_as_they_are():
    rng = np.random.default_rng(0)
    x = td.placeholder((1, 4, 8, 8), name="x")
    w = td.placeholder((16, 4, 1, 1), name="w")           # a sum of 4: not worth a block
    wd = td.placeholder((16, 1, 3, 3), name="wd")         # depthwise: x is read at f
    y = nn.conv2d(nn.conv2d(x, w), wd, padding=1, groups=16)
    params = {w: rand(rng, 16, 4, 1, 1), wd: rand(rng, 16, 1, 3, 3)}
    net = td.compile([y], inputs=[x], params=params)
    assert not [fo for fo in net.folded if fo.what == "layout"]
    xa = rand(rng, 1, 4, 8, 8)
    want = np_conv2d(xa, params[w])
    want = np.stack([np_conv2d(want[:, i:i + 1], params[wd][i:i + 1], 1)[:, 0]
                     for i in range(16)], 1)
    np.testing.assert_allclose(net(xa), want, rtol=2e-4, atol=2e-4)


def _blocked_sum(outs, params):
    """(the blocked convolution's sum, its packed weight array) for one convolution."""
    from tdsl.graph.layout import block_convolutions
    from tdsl.lang.graph import topo_order
    outputs, packed = block_convolutions(outs, params, [], td.target("c -mcpu=x86-64-v3"))
    (op,) = [op for op in topo_order(outputs) if op.name.endswith("_blk")]
    (wb,) = [t for t in packed if t.name == "w_blk16"]
    return op.body, packed[wb]


def test_packed_weights_are_the_blocks():
    """Without padding the weight is (F / 16, C, KH, KW, 16) and the sum runs over the
    channels first; with zero padding the window's rows come first in both, and the sum
    skips the padding's taps (a `where`: the padding's tests at the convolution's
    indices, 1 <= y + ry < 7 and the same for the columns) and reads its input in place,
    not the padding."""
    outs, inputs, params, _ = _conv_net(16, 32, 6, 3, 1, 0, "none")
    w = next(v for t, v in params.items() if t.name == "w")
    body, packed = _blocked_sum(outs, params)
    assert packed.shape == (2, 16, 3, 3, 16) and body.where is None
    assert [a.name for a in body.axes] == ["rc", "ry", "rx"]
    np.testing.assert_array_equal(packed[1, 5, 2, 0, 3], w[16 + 3, 5, 2, 0])

    outs, inputs, params, _ = _conv_net(16, 32, 6, 3, 1, 1, "none")
    w = next(v for t, v in params.items() if t.name == "w")
    body, packed = _blocked_sum(outs, params)
    assert packed.shape == (2, 3, 16, 3, 16)
    assert [a.name for a in body.axes] == ["ry", "rc", "rx"]
    np.testing.assert_array_equal(packed[1, 2, 5, 0, 3], w[16 + 3, 5, 2, 0])
    assert str(body.where) == \
        "(y + ry >= 1) & (y + ry < 7) & (xx + rx >= 1) & (xx + rx < 7)"


@pytest.mark.parametrize("rows, cols, fill", [((2, 0), (1, 1), 0.0), ((0, 3), (2, 0), 0.0),
                                             ((1, 1), (1, 1), 1.5)],
                         ids=["top-only", "bottom-only-left-only", "non-zero-fill"])
def test_padding_taps_skipped_only_where_they_are_zeros(rows, cols, fill):
    """nn.pad then a convolution of a blocked input: the sum skips the window's taps on
    the padding when it pads with zeros (top or bottom alone, left alone), and reads
    the source in place; never when it pads with another value. Outputs against NumPy."""
    rng = np.random.default_rng(4)
    x = td.placeholder((1, 16, 9, 8), name="x")
    w1, w2 = td.placeholder((16, 16, 1, 1), name="w1"), td.placeholder((16, 16, 3, 3), name="w2")
    params = {w1: rand(rng, 16, 16, 1, 1) / 4, w2: rand(rng, 16, 16, 3, 3) / 12}
    pads = [(0, 0), (0, 0), rows, cols]
    y = nn.conv2d(nn.pad(nn.conv2d(x, w1), pads, value=fill), w2)
    net = td.compile([y], inputs=[x], params=params, target="c -mcpu=x86-64-v3")
    xa = rand(rng, 1, 16, 9, 8)
    h = np.pad(np_conv2d(xa, params[w1]), pads, constant_values=fill)
    np.testing.assert_allclose(net(xa), np_conv2d(h, params[w2]), rtol=2e-4, atol=2e-4)
    from tdsl.graph.layout import _through_padding
    from tdsl.lang.visit import loads
    data, weight = sorted(loads(y.op.body.body), key=lambda ld: ld.tensor is w2)
    through = _through_padding(y.op, data)
    assert (through is None) == bool(fill)
    if through is not None:
        where = str(through[1])
        assert f"y + ry >= {rows[0]}" in where and f"y + ry < {9 + rows[0]}" in where, where
        assert f"xx + rx >= {cols[0]}" in where and f"xx + rx < {8 + cols[0]}" in where, where


@pytest.mark.parametrize("h", [7, 14, 28, 30], ids=["one-strip", "two-strips",
                                                 "five-strips-ragged", "five-strips"])
def test_border_taps_skipped_in_versions_without_guards(h):
    """On AVX2 a row of 7 is one register strip, 14 two (7 + 7), 28 five (6 x 4 + 4) and
    30 five (6 x 5). The sum skips the padding's rows and columns; each border strip is
    a version of its own (two strips: the strip loop unrolled; more: the strips inside
    isolated by isl, `codegen._wholly_full`) and the window's rx loop is unrolled around
    isl's versions, so no guard is left in the kernel; no tap reads the padding, so no
    padded copy is made. Outputs against NumPy."""
    outs, inputs, params, oracle = _conv_net(16, 32, h, 3, 1, 1, "bias_relu")
    body, _ = _blocked_sum(outs, params)
    tests = str(body.where)
    assert "y + ry" in tests and "xx + rx" in tests, tests
    net = td.compile(outs, inputs=inputs, params=params, target="c -mcpu=x86-64-v3")
    src = net.source
    start = src.index("\nint network_conv")
    kernel = src[start:src.index("\n}\n", start)]
    guards = [line for line in kernel.splitlines()
              if line.strip().startswith("if (") and "tdsl_alloc" not in line]
    assert not guards, guards
    assert "_pad" not in kernel
    xa = rand(np.random.default_rng(h), 1, 16, h, h)
    np.testing.assert_allclose(net(xa), oracle(xa)[0], rtol=2e-4, atol=2e-4)


def test_a_padding_of_the_channels_too_is_skipped_and_read_in_place():
    """Zeros on the channels as well as around the image (nn.pad of 16 channels to 32):
    the padding's channel test joins the sum's `where` like its row and column tests,
    so the padded channels' taps are skipped too and the source is read in place."""
    rng = np.random.default_rng(5)
    x = td.placeholder((1, 16, 8, 8), name="x")
    w1, w2 = td.placeholder((16, 16, 1, 1), name="w1"), td.placeholder((16, 32, 3, 3), name="w2")
    params = {w1: rand(rng, 16, 16, 1, 1) / 4, w2: rand(rng, 16, 32, 3, 3) / 12}
    pads = [(0, 0), (0, 16), (1, 1), (1, 1)]
    y = nn.conv2d(nn.pad(nn.conv2d(x, w1), pads), w2)
    from tdsl.graph.layout import _through_padding
    from tdsl.lang.visit import loads
    data, weight = sorted(loads(y.op.body.body), key=lambda ld: ld.tensor is w2)
    assert "rc < 16" in str(_through_padding(y.op, data)[1])
    net = td.compile([y], inputs=[x], params=params, target="c -mcpu=x86-64-v3")
    assert "_pad" not in net.source
    xa = rand(rng, 1, 16, 8, 8)
    h = np.pad(np_conv2d(xa, params[w1]), pads)
    np.testing.assert_allclose(net(xa), np_conv2d(h, params[w2]), rtol=2e-4, atol=2e-4)
