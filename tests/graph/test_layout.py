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


def test_packed_weights_are_the_blocks():
    outs, inputs, params, _ = _conv_net(16, 32, 6, 3, 1, 1, "none")
    from tdsl.graph.layout import block_convolutions
    folded: list = []
    outputs, packed = block_convolutions(outs, params, folded, td.target("c -mcpu=x86-64-v3"))
    (wb,) = [t for t in packed if t.name == "w_blk16"]
    w = next(v for t, v in params.items() if t.name == "w")
    assert packed[wb].shape == (2, 16, 3, 3, 16)
    np.testing.assert_array_equal(packed[wb][1, 5, 2, 0, 3], w[16 + 3, 5, 2, 0])
