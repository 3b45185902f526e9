"""Activations kept in channel blocks between convolutions (graph/layout.py, blocks.py):
a residual block, a pooling layer and an inverted-residual block (1x1, depthwise 3x3 with
stride 1 or 2, 1x1) computed in NCHWc, their outputs equal to NumPy's at sizes a strip of
7 pixels divides and does not, with channels in blocks of 16 and of 8."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import nn

from .common import np_conv2d, np_max_pool, rand

TARGET = "c -mcpu=x86-64-v3"


def _np_depthwise(x, w, pad, stride):
    return np.stack([np_conv2d(x[:, i:i + 1], w[i:i + 1], pad, stride)[:, 0]
                     for i in range(x.shape[1])], 1)


def _blocked(net) -> list[str]:
    return [name for fo in net.folded if fo.what == "blocks" for name in fo.stages]


@pytest.mark.parametrize("c, h", [(16, 14), (32, 9), (24, 10)],
                         ids=["16ch-14px", "32ch-9px", "24ch-blocks-of-8"])
def test_residual_block_in_blocks_equals_numpy(c, h):
    """conv-bias-relu, conv-bias, + skip, relu, then a 2x2 max pool and a 1x1 conv: the
    second convolution sums over the first one's blocks, the pool reads them too."""
    rng = np.random.default_rng(0)
    x = td.placeholder((1, c, h, h), name="x")
    w1, w2 = (td.placeholder((c, c, 3, 3), name=n) for n in ("w1", "w2"))
    b1, b2 = (td.placeholder((c,), name=n) for n in ("b1", "b2"))
    w3 = td.placeholder((c, c, 1, 1), name="w3")
    p = {w1: rand(rng, c, c, 3, 3) / c, w2: rand(rng, c, c, 3, 3) / c, b1: rand(rng, c),
         b2: rand(rng, c), w3: rand(rng, c, c, 1, 1) / 4}
    h1 = nn.relu(nn.conv2d(x, w1, b1, padding=1))
    h2 = nn.relu(nn.add(nn.conv2d(h1, w2, b2, padding=1), h1))
    y = nn.conv2d(nn.max_pool2d(h2, 2), w3)
    net = td.compile([y], inputs=[x], params=p, target=TARGET)
    assert "relu" in _blocked(net) and "max_pool2d" in _blocked(net)
    assert any("input channels" in fo.into for fo in net.folded if fo.what == "layout")
    xa = rand(rng, 1, c, h, h)
    r1 = np.maximum(np_conv2d(xa, p[w1], 1) + p[b1][None, :, None, None], 0)
    r2 = np.maximum(np_conv2d(r1, p[w2], 1) + p[b2][None, :, None, None] + r1, 0)
    want = np_conv2d(np_max_pool(r2, 2), p[w3])
    np.testing.assert_allclose(net(xa), want, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("c, f, h, stride", [(16, 96, 14, 2), (24, 144, 13, 1),
                                             (32, 64, 9, 2), (32, 64, 7, 1)],
                         ids=["s2-14px", "s1-13px-24ch", "s2-9px", "s1-7px"])
@pytest.mark.parametrize("target", [TARGET, "c -mcpu=x86-64-v4"], ids=["avx2", "avx512"])
def test_inverted_residual_in_blocks_equals_numpy(c, f, h, stride, target):
    """1x1 expand + relu6, depthwise 3x3 + bias + relu (its strip tile), 1x1 project:
    a short first sum is blocked because its readers take blocks. Compiled for both
    vector widths (blocks of 16 channels: two AVX2 vectors, one AVX-512 vector); run
    where this CPU can."""
    rng = np.random.default_rng(1)
    x = td.placeholder((1, c, h, h), name="x")
    w1, b1 = td.placeholder((f, c, 1, 1), name="w1"), td.placeholder((f,), name="b1")
    wd, bd = td.placeholder((f, 1, 3, 3), name="wd"), td.placeholder((f,), name="bd")
    w2 = td.placeholder((c, f, 1, 1), name="w2")
    p = {w1: rand(rng, f, c, 1, 1) / 3, b1: rand(rng, f), wd: rand(rng, f, 1, 3, 3) / 3,
         bd: rand(rng, f), w2: rand(rng, c, f, 1, 1) / 5}
    e = nn.minimum(nn.maximum(nn.conv2d(x, w1, b1), 0.0), 6.0)
    d = nn.relu(nn.conv2d(e, wd, bd, stride=stride, padding=1, groups=f))
    y = nn.conv2d(d, w2)
    net = td.compile([y], inputs=[x], params=p, target=target)
    # the depthwise convolution, in blocks of at least one vector of channels (24 channels
    # are blocks of 8 on AVX2 and stay NCHW on AVX-512)
    assert ("conv2d_1" in _blocked(net)) == (c % td.target(target).lanes() == 0)
    if not td.target(target).runs_here():
        pytest.skip(f"compiled only: this CPU cannot run {target}")
    xa = rand(rng, 1, c, h, h)
    ee = np.clip(np_conv2d(xa, p[w1]) + p[b1][None, :, None, None], 0, 6)
    dd = np.maximum(_np_depthwise(ee, p[wd], 1, stride) + p[bd][None, :, None, None], 0)
    np.testing.assert_allclose(net(xa), np_conv2d(dd, p[w2]), rtol=2e-4, atol=2e-4)


def test_global_pool_and_dense_read_blocks_back():
    """The last blocked stage is read in NCHW by a global average pool and a dense
    layer (its view), and a channel count 16 does not divide stays as it was."""
    rng = np.random.default_rng(2)
    x = td.placeholder((1, 16, 8, 8), name="x")
    w1, w2 = td.placeholder((32, 16, 3, 3), name="w1"), td.placeholder((32, 32, 3, 3), name="w2")
    wf = td.placeholder((10, 32), name="wf")
    p = {w1: rand(rng, 32, 16, 3, 3) / 12, w2: rand(rng, 32, 32, 3, 3) / 17,
         wf: rand(rng, 10, 32)}
    h = nn.relu(nn.conv2d(nn.relu(nn.conv2d(x, w1, padding=1)), w2, padding=1))
    y = nn.dense(nn.flatten(nn.global_avg_pool2d(h)), wf)
    net = td.compile([y], inputs=[x], params=p, target=TARGET)
    xa = rand(rng, 1, 16, 8, 8)
    hh = np.maximum(np_conv2d(np.maximum(np_conv2d(xa, p[w1], 1), 0), p[w2], 1), 0)
    want = hh.mean((2, 3)) @ p[wf].T
    np.testing.assert_allclose(net(xa), want, rtol=2e-4, atol=2e-4)


def test_packed_weights_of_blocked_inputs():
    from tdsl.graph.blocks import Packer
    rng = np.random.default_rng(3)
    w = td.placeholder((32, 24, 3, 3), name="w")
    b = td.placeholder((32,), name="b")
    params = {w: rand(rng, 32, 24, 3, 3), b: rand(rng, 32)}
    packer = Packer(dict(params), {"w", "b"})
    wb = packer.filters(w, 16, 8)
    a = packer.params[wb]
    assert a.shape == (2, 3, 3, 3, 8, 16)
    assert a[1, 2, 0, 1, 5, 3] == params[w][16 + 3, 2 * 8 + 5, 0, 1]
    bb = packer.channel(b, 0, 16)
    assert packer.channel(b, 0, 16) is bb                # packed once
    np.testing.assert_array_equal(packer.params[bb], params[b].reshape(2, 16))
