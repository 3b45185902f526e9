"""Pools, softmax, log_softmax, layer_norm, batch_norm and the activations against NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tdsl as td
from tdsl import nn

from .common import build_run, close, gelu, pool2d, random, softmax

# name, nn call, NumPy oracle of x (float64), on a (2, 3, 13, 9) input
POOLS = [
    ("max_k3s2p1", lambda x: nn.max_pool2d(x, 3, stride=2, padding=1, name="max_k3s2p1"),
     lambda x: pool2d(x, (3, 3), (2, 2), (1, 1), "max")),
    ("max_k2", lambda x: nn.max_pool2d(x, 2, name="max_k2"),
     lambda x: pool2d(x, (2, 2), (2, 2), (0, 0), "max")),
    ("max_pairs_dilated", lambda x: nn.max_pool2d(x, (3, 2), stride=(1, 2), padding=(2, 1),
                                                  dilation=2, name="max_pairs_dilated"),
     lambda x: pool2d(x, (3, 2), (1, 2), (2, 1), "max", dilation=(2, 2))),
    ("avg_k3s2p1", lambda x: nn.avg_pool2d(x, 3, stride=2, padding=1, name="avg_k3s2p1"),
     lambda x: pool2d(x, (3, 3), (2, 2), (1, 1), "avg")),
    ("avg_k2s1", lambda x: nn.avg_pool2d(x, (2, 3), stride=1, name="avg_k2s1"),
     lambda x: pool2d(x, (2, 3), (1, 1), (0, 0), "avg")),
    ("global_avg", lambda x: nn.global_avg_pool2d(x, name="global_avg"),
     lambda x: x.mean(axis=(2, 3), keepdims=True)),
]


def test_pools_default_schedule():
    x = td.placeholder((2, 3, 13, 9), name="x")
    xv = random((2, 3, 13, 9), 1, -3, 3)
    outs = [make(x) for _, make, _ in POOLS]
    assert [t.name for t in outs] == [name for name, _, _ in POOLS]
    for (_, _, oracle), got in zip(POOLS, build_run(outs, {x: xv})):
        close(got, oracle(xv))


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in POOLS
                                  if c[0] in ("max_k3s2p1", "avg_k3s2p1", "global_avg")])
def test_pools_auto_schedule(case):
    _, make, oracle = case
    x = td.placeholder((2, 3, 13, 9), name="x")
    xv = random((2, 3, 13, 9), 2, -3, 3)
    (got,) = build_run(make(x), {x: xv}, auto=True)
    close(got, oracle(xv))


def test_max_pool_padding_never_wins():
    """All-negative input: a -inf border, not 0, so the border windows keep x's values."""
    x = td.placeholder((2, 1, 4, 4), name="x")
    xv = random((2, 1, 4, 4), 3, -2, -1)
    (got,) = build_run(nn.max_pool2d(x, 3, stride=1, padding=1), {x: xv})
    assert got.max() < 0
    close(got, pool2d(xv, (3, 3), (1, 1), (1, 1), "max"))


def _layer_norm(x, gamma, beta, axis, eps=1e-5):
    axes = tuple(range(axis % x.ndim, x.ndim))
    x = x.astype(np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1 if gamma is None else gamma) + (0 if beta is None else beta)


def test_normalizations_default_schedule():
    x = td.placeholder((3, 7, 33), name="x")
    g, b = td.placeholder((33,), name="g"), td.placeholder((33,), name="b")
    g2 = td.placeholder((7, 33), name="g2")
    c = td.placeholder((4, 5, 6, 7), name="c")
    stats = {k: td.placeholder((5,), name=k) for k in ("gamma", "beta", "mean", "var")}
    outs = [nn.softmax(x), nn.softmax(x, axis=1, name="softmax1"), nn.log_softmax(x),
            nn.log_softmax(x, axis=0, name="log_softmax0"), nn.layer_norm(x, g, b),
            nn.layer_norm(x, g2, None, axis=1, eps=1e-3, name="ln2"),
            nn.batch_norm(c, *stats.values())]
    # Large logits: the max subtraction keeps exp finite.
    feeds = {x: random((3, 7, 33), 1, -40, 40), g: random((33,), 2), b: random((33,), 3),
             g2: random((7, 33), 4), c: random((4, 5, 6, 7), 5, -3, 3)}
    feeds.update({t: random((5,), 6 + k, 0.5, 2) for k, t in enumerate(stats.values())})
    got = build_run(outs, feeds)
    xv = feeds[x].astype(np.float64)
    close(got[0], softmax(xv, -1))
    close(got[1], softmax(xv, 1))
    close(got[2], np.log(softmax(xv, -1)))
    close(got[3], xv - xv.max(0) - np.log(np.exp(xv - xv.max(0)).sum(0)))
    close(got[4], _layer_norm(xv, feeds[g], feeds[b], -1))
    close(got[5], _layer_norm(xv, feeds[g2], None, 1, eps=1e-3))
    gamma, beta, mean, var = (feeds[t][None, :, None, None] for t in stats.values())
    close(got[6], (feeds[c] - mean) / np.sqrt(var + 1e-5) * gamma + beta)
    assert np.isfinite(got[2]).all()


@pytest.mark.parametrize("rows", [pytest.param(7, id="7x33"), pytest.param(16, id="16x64")])
def test_softmax_layer_norm_auto_schedule(rows):
    cols = 33 if rows == 7 else 64
    x = td.placeholder((rows, cols), name="x")
    g, b = td.placeholder((cols,), name="g"), td.placeholder((cols,), name="b")
    feeds = {x: random((rows, cols), 1, -20, 20), g: random((cols,), 2), b: random((cols,), 3)}
    xv = feeds[x].astype(np.float64)
    (p,) = build_run(nn.softmax(x), {x: feeds[x]}, auto=True)
    close(p, softmax(xv, -1))
    (y,) = build_run(nn.layer_norm(x, g, b), feeds, auto=True)
    close(y, _layer_norm(xv, feeds[g], feeds[b], -1))


def test_softmax_symbolic_rows():
    n = td.var("n")
    x = td.placeholder((n, 13), name="x")
    y = nn.softmax(x)
    for rows in (1, 5):
        xv = random((rows, 13), rows)
        (got,) = build_run(y, {x: xv}, sizes={n: rows})
        close(got, softmax(xv.astype(np.float64), -1))


def test_activations():
    x = td.placeholder((5, 33), name="x")
    xv = random((5, 33), 1, -6, 6)
    xd = xv.astype(np.float64)
    outs = [nn.relu(x), nn.leaky_relu(x), nn.leaky_relu(x, alpha=0.2, name="leaky2"),
            nn.gelu(x), nn.gelu(x, approximate="tanh", name="gelu_tanh"), nn.sigmoid(x),
            nn.tanh(x), nn.silu(x), nn.erf(x)]
    assert [t.name for t in outs] == ["relu", "leaky_relu", "leaky2", "gelu", "gelu_tanh",
                                      "sigmoid", "tanh", "silu", "erf"]
    assert all(t.dtype == "float32" for t in outs)
    got = build_run(outs, {x: xv})
    sig = 1 / (1 + np.exp(-xd))
    wants = [np.maximum(xd, 0), np.where(xd > 0, xd, 0.01 * xd), np.where(xd > 0, xd, 0.2 * xd),
             gelu(xd),
             0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3))),
             sig, np.tanh(xd), xd * sig, np.vectorize(math.erf)(xd)]
    for g, want in zip(got, wants):
        close(g, want, atol=2e-6)


def test_erf_and_gelu_accuracy():
    """erf within 1e-7 of math.erf on [-6, 6] (float32 rounding of the result included:
    the approximation alone is off by at most 6.5e-8); gelu within one float32 spacing of
    its value plus erf's error scaled by x / 2."""
    n = 20001
    x = td.placeholder((n,), name="x")
    xv = np.linspace(-6, 6, n).astype(np.float32)
    erf_out, gelu_out = nn.erf(x), nn.gelu(x)
    mod = td.build(td.create_schedule([erf_out, gelu_out]), [x, erf_out, gelu_out])
    e, g = np.empty(n, np.float32), np.empty(n, np.float32)
    mod(xv, e, g)
    xd = xv.astype(np.float64)
    assert np.abs(e - np.vectorize(math.erf)(xd)).max() < 1e-7
    exact = gelu(xd)
    bound = 0.5 * np.abs(xd) * 6.5e-8 + np.spacing(np.abs(exact).astype(np.float32))
    assert (np.abs(g - exact) <= bound).all()


def test_relu_keeps_integers():
    x = td.placeholder((7,), dtype="int32", name="x")
    xv = np.arange(-3, 4, dtype=np.int32)
    (got,) = build_run(nn.relu(x), {x: xv})
    assert got.dtype == np.int32 and (got == np.maximum(xv, 0)).all()
