"""nn.dense, matmul, batch_matmul and conv2d against NumPy, with the default schedule and
td.auto_schedule, at sizes that do (8, 16, 32) and do not (7, 13, 33) divide tiles."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import nn

from .common import build_run, close, conv2d, random

SCHEDULES = [pytest.param(False, id="default"), pytest.param(True, id="auto")]


@pytest.mark.parametrize("auto", SCHEDULES)
def test_linear_layers(auto):
    x, w, b = (td.placeholder((13, 33), name="x"), td.placeholder((7, 33), name="w"),
               td.placeholder((7,), name="b"))
    a, bm = td.placeholder((16, 32), name="a"), td.placeholder((32, 8), name="bm")
    p, q = td.placeholder((3, 7, 13), name="p"), td.placeholder((3, 13, 5), name="q")
    outs = [nn.dense(x, w, b), nn.dense(x, w, name="fc"), nn.matmul(a, bm),
            nn.batch_matmul(p, q)]
    assert [t.name for t in outs] == ["dense", "fc", "matmul", "batch_matmul"]
    feeds = {t: random(tuple(int(d.value) for d in t.shape), seed)
             for seed, t in enumerate([x, w, b, a, bm, p, q])}
    got = build_run(outs, feeds, auto)
    xv, wv, bv = feeds[x], feeds[w], feeds[b]
    close(got[0], xv @ wv.T + bv)
    close(got[1], xv @ wv.T)
    close(got[2], feeds[a] @ feeds[bm])
    close(got[3], feeds[p] @ feeds[q])


def test_dense_symbolic_batch():
    n = td.var("n")
    x, w, b = (td.placeholder((n, 33), name="x"), td.placeholder((7, 33), name="w"),
               td.placeholder((7,), name="b"))
    y = nn.dense(x, w, b)
    wv, bv = random((7, 33), 1), random((7,), 2)
    for batch in (1, 13):
        xv = random((batch, 33), 3)
        (got,) = build_run(y, {x: xv, w: wv, b: bv}, sizes={n: batch})
        close(got, xv @ wv.T + bv)


# name, x shape, w shape, keyword arguments of conv2d (and of the oracle)
CONVS = [
    ("s2p1bias", (4, 3, 3, 3), dict(stride=2, padding=1), True),
    ("dilated", (5, 3, 3, 3), dict(padding=2, dilation=2), False),
    ("pairs", (4, 3, 3, 2), dict(stride=(1, 2), padding=(0, 1), dilation=(2, 1)), True),
    ("pointwise", (8, 3, 1, 1), dict(), False),
]
GROUPED = [   # on a 4-channel input
    ("groups2", (6, 2, 3, 3), dict(padding=1, groups=2), True),
    ("depthwise", (4, 1, 3, 3), dict(stride=2, padding=1, groups=4), True),
    ("depthwise_x2", (8, 1, 3, 3), dict(padding=1, groups=4), False),
]


def _pairs(kwargs):
    out = {}
    for key, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
        v = kwargs.get(key, default)
        out[key] = v if isinstance(v, tuple) else (v, v)
    out["groups"] = kwargs.get("groups", 1)
    return out


def _conv_case(x, name, wshape, kwargs, with_bias, feeds, seed):
    """One conv2d of the table on x, with its weights (and bias) added to feeds; the
    output and its NumPy oracle."""
    w = td.placeholder(wshape, name=f"w_{name}")
    feeds[w] = random(wshape, seed)
    b = None
    if with_bias:
        b = td.placeholder((wshape[0],), name=f"b_{name}")
        feeds[b] = random((wshape[0],), seed + 1)
    out = nn.conv2d(x, w, b, **kwargs, name=name)
    return out, conv2d(feeds[x], feeds[w], None if b is None else feeds[b], **_pairs(kwargs))


def test_conv2d_default_schedule():
    """Seven convolutions in one kernel: stride, padding, dilation, pairs, 1x1, groups,
    depthwise (with a channel multiplier), on 13 x 13 and 7 x 9 images."""
    x3 = td.placeholder((2, 3, 13, 13), name="x3")
    x4 = td.placeholder((1, 4, 7, 9), name="x4")
    feeds = {x3: random((2, 3, 13, 13), 1), x4: random((1, 4, 7, 9), 2)}
    cases = [(x3, *c) for c in CONVS] + [(x4, *c) for c in GROUPED]
    outs, oracles = zip(*(_conv_case(*c, feeds, 10 + 2 * p) for p, c in enumerate(cases)))
    for case, got, want in zip(cases, build_run(list(outs), feeds), oracles):
        assert got.shape == want.shape, case[1]
        close(got, want)


# td.auto_schedule: one kernel per convolution (auto_schedule of several independent
# outputs at once costs far more than of each alone). Batch 1, as in inference:
# with batch 1 auto_schedule's compute_at lands on a loop of one iteration, where isl
# splits the iteration and the private buffers must still be shared (merge_allocs).
AUTO_CONVS = [pytest.param(c, id=c[0]) for c in CONVS if c[0] != "pointwise"] + \
             [pytest.param(c, id=c[0]) for c in GROUPED if c[0] != "depthwise_x2"]


@pytest.mark.parametrize("batch", [1])
@pytest.mark.parametrize("case", AUTO_CONVS)
def test_conv2d_auto_schedule(case, batch):
    channels = case[1][1] * case[2].get("groups", 1)
    x = td.placeholder((batch, channels, 13, 9), name="x")
    feeds = {x: random((batch, channels, 13, 9), 1)}
    out, want = _conv_case(x, *case, feeds, 2)
    (got,) = build_run(out, feeds, auto=True)
    close(got, want)


def test_conv2d_stages_and_symbolic_sizes():
    """The padding stage is a select; symbolic batch and image sizes give symbolic output
    sizes ((h + 2 - 3) // 2 + 1) that bind at the call."""
    n, h, w_ = td.var("n"), td.var("h"), td.var("wd")
    x = td.placeholder((n, 3, h, w_), name="x")
    w = td.placeholder((4, 3, 3, 3), name="w")
    same = nn.conv2d(x, w, padding=1)
    assert [str(d) for d in same.shape] == ["n", "4", "h", "wd"]
    pad = same.op.input_tensors[0]
    assert pad.name == "conv2d_pad" and "select" in str(pad.op.body)
    strided = nn.conv2d(x, w, stride=2, padding=1, name="strided")
    wv = random((4, 3, 3, 3), 5)
    for size in ((1, 7, 8), (2, 13, 5)):
        xv = random((size[0], 3, size[1], size[2]), 6)
        got = build_run([same, strided], {x: xv, w: wv},
                        sizes={n: size[0], h: size[1], w_: size[2]})
        close(got[0], conv2d(xv, wv, padding=(1, 1)))
        close(got[1], conv2d(xv, wv, stride=(2, 2), padding=(1, 1)))


def test_conv2d_no_padding_reads_input_directly():
    x = td.placeholder((1, 3, 8, 8), name="x")
    w = td.placeholder((2, 3, 3, 3), name="w")
    y = nn.conv2d(x, w)
    assert y.op.input_tensors == [x, w] and tuple(d.value for d in y.shape) == (1, 2, 6, 6)


def _network(x, w, stats):
    """conv (padding 1) -> batch_norm -> relu -> max_pool 2: a block of a small CNN."""
    return nn.max_pool2d(nn.relu(nn.batch_norm(nn.conv2d(x, w, padding=1), *stats)), 2)


def _network_oracle(feeds, x, w, stats):
    gamma, beta, mean, var = (feeds[t][None, :, None, None] for t in stats)
    a = conv2d(feeds[x], feeds[w], padding=(1, 1))
    a = np.maximum((a - mean) / np.sqrt(var + 1e-5) * gamma + beta, 0)
    return a[:, :, :8, :8].reshape(2, 4, 4, 2, 4, 2).max(axis=(3, 5))


@pytest.mark.parametrize("auto", SCHEDULES)
def test_small_network(auto):
    """Operators chained on computed tensors. The default schedule builds a whole
    classifier (block, flatten, dense, softmax); td.auto_schedule the conv block only (on
    the whole graph it takes ~16 s, in choosing the schedule)."""
    x = td.placeholder((2, 3, 9, 9), name="x")
    w = td.placeholder((4, 3, 3, 3), name="w")
    stats = [td.placeholder((4,), name=f"bn_{k}") for k in ("gamma", "beta", "mean", "var")]
    fc, fb = td.placeholder((5, 64), name="fc"), td.placeholder((5,), name="fb")
    feeds = {x: random((2, 3, 9, 9), 1), w: random((4, 3, 3, 3), 2)}
    feeds.update({t: random((4,), 5 + k, 0.5, 1.5) for k, t in enumerate(stats)})
    block = _network(x, w, stats)
    want = _network_oracle(feeds, x, w, stats)
    if auto:
        (got,) = build_run(block, feeds, auto=True)
        close(got, want)
        return
    feeds.update({fc: random((5, 64), 3), fb: random((5,), 4)})
    (got,) = build_run(nn.softmax(nn.dense(nn.flatten(block), fc, fb)), feeds)
    logits = want.reshape(2, -1) @ feeds[fc].T + feeds[fb]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    close(got, e / e.sum(axis=1, keepdims=True))
