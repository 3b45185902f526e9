"""Small networks built with tdsl.nn, their weights (fixed seeds) and NumPy oracles."""

from __future__ import annotations

import math

import numpy as np

import tdsl as td
from tdsl import nn


def rand(rng, *shape, positive=False):
    a = rng.standard_normal(shape).astype("float32")
    return np.abs(a) + 0.5 if positive else a


# -- NumPy oracles ---------------------------------------------------------------------

def np_conv2d(x, w, padding=0, stride=1):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, f, oh, ow), np.float64)
    for dy in range(kh):
        for dx in range(kw):
            patch = x[:, :, dy:dy + stride * oh:stride, dx:dx + stride * ow:stride]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, dy, dx])
    return out


def np_batch_norm(x, g, b, m, v, eps=1e-5):
    s = (slice(None),) + (None,) * (x.ndim - 2)
    return (x - m[s]) / np.sqrt(v[s] + eps) * g[s] + b[s]


def np_max_pool(x, k):
    n, c, h, w = x.shape
    return x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k).max((3, 5))


def np_softmax(z, axis=-1):
    e = np.exp(z - z.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_layer_norm(x, g, b, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def np_gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


# -- networks: (outputs, inputs, params, oracle(inputs) -> outputs) --------------------

def mlp(seed=0, batch=4, sizes=(16, 32, 10)):
    rng = np.random.default_rng(seed)
    x = td.placeholder((batch, sizes[0]), name="x")
    w1, b1 = td.placeholder((sizes[1], sizes[0]), name="w1"), td.placeholder((sizes[1],), name="b1")
    w2, b2 = td.placeholder((sizes[2], sizes[1]), name="w2"), td.placeholder((sizes[2],), name="b2")
    y = nn.softmax(nn.dense(nn.relu(nn.dense(x, w1, b1)), w2, b2))
    P = {w1: rand(rng, sizes[1], sizes[0]), b1: rand(rng, sizes[1]),
         w2: rand(rng, sizes[2], sizes[1]), b2: rand(rng, sizes[2])}

    def oracle(xa):
        h = np.maximum(xa @ P[w1].T + P[b1], 0)
        return np_softmax(h @ P[w2].T + P[b2])
    return [y], [x], P, oracle


def cnn(seed=1):
    """conv + batch_norm + relu + max_pool + global_avg_pool + dense."""
    rng = np.random.default_rng(seed)
    x = td.placeholder((1, 3, 12, 12), name="x")
    w = td.placeholder((8, 3, 3, 3), name="w")
    g, b, m, v = (td.placeholder((8,), name=n) for n in ("gamma", "beta", "mean", "var"))
    wd, bd = td.placeholder((5, 8), name="wd"), td.placeholder((5,), name="bd")
    h = nn.relu(nn.batch_norm(nn.conv2d(x, w, padding=1), g, b, m, v))
    h = nn.flatten(nn.global_avg_pool2d(nn.max_pool2d(h, 2)))
    y = nn.dense(h, wd, bd)
    P = {w: rand(rng, 8, 3, 3, 3), g: rand(rng, 8), b: rand(rng, 8), m: rand(rng, 8),
         v: rand(rng, 8, positive=True), wd: rand(rng, 5, 8), bd: rand(rng, 5)}

    def oracle(xa):
        h = np.maximum(np_batch_norm(np_conv2d(xa, P[w], 1), P[g], P[b], P[m], P[v]), 0)
        h = np_max_pool(h, 2).mean((2, 3))
        return h @ P[wd].T + P[bd]
    return [y], [x], P, oracle


def residual(seed=2, c=8, hw=8):
    """relu(x + conv(relu(bn(conv(x))))): x and the first relu each read by two kernels."""
    rng = np.random.default_rng(seed)
    x = td.placeholder((1, c, hw, hw), name="x")
    w1, w2 = td.placeholder((c, c, 3, 3), name="w1"), td.placeholder((c, c, 3, 3), name="w2")
    g, b, m, v = (td.placeholder((c,), name=n) for n in ("gamma", "beta", "mean", "var"))
    h = nn.relu(nn.batch_norm(nn.conv2d(x, w1, padding=1), g, b, m, v))
    branch = nn.relu(nn.conv2d(h, w2, padding=1))
    y = nn.relu(nn.add(branch, h))
    P = {w1: rand(rng, c, c, 3, 3), w2: rand(rng, c, c, 3, 3), g: rand(rng, c),
         b: rand(rng, c), m: rand(rng, c), v: rand(rng, c, positive=True)}

    def oracle(xa):
        h = np.maximum(np_batch_norm(np_conv2d(xa, P[w1], 1), P[g], P[b], P[m], P[v]), 0)
        return np.maximum(np.maximum(np_conv2d(h, P[w2], 1), 0) + h, 0)
    return [y], [x], P, oracle


def transformer(seed=3, seq=8, width=16, hidden=32):
    """A single-head encoder block: attention (matmul, softmax), layer_norm, gelu MLP."""
    rng = np.random.default_rng(seed)
    x = td.placeholder((seq, width), name="x")
    names = ("wq", "wk", "wv", "wo")
    wq, wk, wv, wo = (td.placeholder((width, width), name=n) for n in names)
    w1, w2 = td.placeholder((hidden, width), name="w1"), td.placeholder((width, hidden), name="w2")
    g1, b1 = td.placeholder((width,), name="g1"), td.placeholder((width,), name="be1")
    g2, b2 = td.placeholder((width,), name="g2"), td.placeholder((width,), name="be2")
    scale = 1.0 / math.sqrt(width)
    q, k, v = nn.dense(x, wq), nn.dense(x, wk), nn.dense(x, wv)
    scores = nn.mul(nn.matmul(q, nn.transpose(k, (1, 0))), scale)
    attn = nn.dense(nn.matmul(nn.softmax(scores), v), wo)
    h = nn.layer_norm(nn.add(x, attn), g1, b1)
    y = nn.layer_norm(nn.add(h, nn.dense(nn.gelu(nn.dense(h, w1)), w2)), g2, b2)
    P = {t: rand(rng, *[int(d.value) for d in t.shape]) * 0.3
         for t in (wq, wk, wv, wo, w1, w2)}
    P.update({g1: rand(rng, width), b1: rand(rng, width), g2: rand(rng, width),
              b2: rand(rng, width)})
    P = {t: a.astype("float32") for t, a in P.items()}

    def oracle(xa):
        xa = xa.astype(np.float64)
        q, k, v = xa @ P[wq].T, xa @ P[wk].T, xa @ P[wv].T
        attn = np_softmax(q @ k.T * scale) @ v @ P[wo].T
        h = np_layer_norm(xa + attn, P[g1], P[b1])
        return np_layer_norm(h + np_gelu(h @ P[w1].T) @ P[w2].T, P[g2], P[b2])
    return [y], [x], P, oracle


def inverted_residual(seed=4):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 project, each with
    batch_norm, relu6 as ONNX writes it (Clip = min(max(x, 0), 6)), and the skip add."""
    rng = np.random.default_rng(seed)
    params = {}

    def param(shape, name, positive=False):
        t = td.placeholder(shape, name=name)
        params[t] = rand(rng, *shape, positive=positive)
        return t

    def bn(h, c, i):
        stats = [param((c,), f"{n}{i}", positive=(n == "v")) for n in "gbmv"]
        return nn.batch_norm(h, *stats)

    def relu6(h):
        return nn.minimum(nn.maximum(h, 0.0), 6.0)

    x = td.placeholder((1, 8, 10, 10), name="x")
    w1, wd, w2 = param((32, 8, 1, 1), "w1"), param((32, 1, 3, 3), "wd"), \
        param((8, 32, 1, 1), "w2")
    h = relu6(bn(nn.conv2d(x, w1), 32, 1))
    h = relu6(bn(nn.conv2d(h, wd, padding=1, groups=32), 32, 2))
    y = nn.add(x, bn(nn.conv2d(h, w2), 8, 3))
    p = {t.name: a for t, a in params.items()}

    def oracle(xa):
        def stats(i):
            return [p[f"{n}{i}"] for n in "gbmv"]
        h = np.clip(np_batch_norm(np_conv2d(xa, p["w1"]), *stats(1)), 0, 6)
        dw = np.concatenate([np_conv2d(h[:, c:c + 1], p["wd"][c:c + 1], 1)
                             for c in range(32)], axis=1)
        h = np.clip(np_batch_norm(dw, *stats(2)), 0, 6)
        return xa + np_batch_norm(np_conv2d(h, p["w2"]), *stats(3))
    return [y], [x], params, oracle
