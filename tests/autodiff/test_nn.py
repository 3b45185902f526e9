"""td.grad of networks built from tdsl.nn: a softmax cross-entropy loss, a two-layer MLP,
and conv2d (backward data and weights) with stride 2, padding 1 and groups."""

from __future__ import annotations

import numpy as np

import tdsl as td
from tdsl import nn

from .common import gradcheck, random

# To keep the folder fast, td.auto_schedule is checked on the softmax, the constant-size
# MLP and the grouped convolution (~8 s for the MLP's 23 adjoint stages alone); the other
# networks are built with the default schedule only.
DEFAULT_ONLY = ("default",)

N = td.var("n")


def _one_hot(rows: int, classes: int, seed: int) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, classes, rows)
    return np.eye(classes)[labels]


def _cross_entropy(probabilities, target, rows):
    """-sum(target * log(p)) / rows, a scalar."""
    i, c = td.reduce_axis(probabilities.shape[0], "i"), td.reduce_axis(probabilities.shape[1], "c")
    count = rows if isinstance(rows, int) else td.cast(rows, "float64")
    return td.compute((), lambda: td.sum(-target[i, c] * td.log(probabilities[i, c]) / count,
                                         axis=[i, c]), name="loss")


def test_softmax_cross_entropy():
    """The adjoint of the logits is (softmax - target) / rows, also checked in NumPy."""
    logits = td.placeholder((N, 5), "float64", name="logits")
    target = td.placeholder((N, 5), "float64", name="target")
    loss = _cross_entropy(nn.softmax(logits), target, N)
    feeds = {logits: random((13, 5), 1, -3, 3), target: _one_hot(13, 5, 2)}
    (grad,) = gradcheck(loss, [logits], feeds,
                        more=[{logits: random((7, 5), 3, -3, 3), target: _one_hot(7, 5, 4)}])
    x = feeds[logits]
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(grad, (p - feeds[target]) / 13, rtol=1e-9, atol=1e-12)


def _mlp(rows):
    x = td.placeholder((rows, 6), "float64", name="x")
    w1, b1 = td.placeholder((8, 6), "float64", name="w1"), td.placeholder((8,), "float64", "b1")
    w2, b2 = td.placeholder((3, 8), "float64", name="w2"), td.placeholder((3,), "float64", "b2")
    target = td.placeholder((rows, 3), "float64", name="target")
    hidden = nn.relu(nn.dense(x, w1, b1, name="fc1"))
    loss = _cross_entropy(nn.softmax(nn.dense(hidden, w2, b2, name="fc2")), target, rows)
    return loss, [w1, b1, w2, b2, x], target


def _mlp_feeds(params, target, rows: int) -> dict:
    shapes = [(8, 6), (8,), (3, 8), (3,), (rows, 6)]
    feeds = {t: random(s, 10 * rows + k) for k, (t, s) in enumerate(zip(params, shapes))}
    return feeds | {target: _one_hot(rows, 3, rows)}


def test_two_layer_mlp_constant_batch():
    loss, params, target = _mlp(5)
    gradcheck(loss, params, _mlp_feeds(params, target, 5))


def test_two_layer_mlp_symbolic_batch():
    loss, params, target = _mlp(N)
    gradcheck(loss, params, _mlp_feeds(params, target, 13), schedules=DEFAULT_ONLY,
              more=[_mlp_feeds(params, target, 7)])


def _conv(height, width):
    """Grouped (2 groups), stride 2, padding 1, 3 x 3, then a tanh so the head matters."""
    x = td.placeholder((2, 4, height, width), "float64", name="x")
    w = td.placeholder((6, 2, 3, 3), "float64", name="w")
    b = td.placeholder((6,), "float64", name="b")
    # Named: a stage called "tanh" would be a C buffer hiding the C function tanh.
    y = nn.tanh(nn.conv2d(x, w, b, stride=2, padding=1, groups=2), name="act")
    return x, w, b, y


def test_conv2d_stride_padding_groups_constant_sizes():
    x, w, b, y = _conv(7, 6)
    feeds = {x: random((2, 4, 7, 6), 1), w: random((6, 2, 3, 3), 2), b: random(6, 3)}
    gradcheck(y, [x, w, b], feeds)


def test_conv2d_symbolic_sizes():
    H, W = td.var("height"), td.var("width")
    x, w, b, y = _conv(H, W)
    feeds = {x: random((2, 4, 7, 13), 1), w: random((6, 2, 3, 3), 2), b: random(6, 3)}
    gradcheck(y, [x, w, b], feeds, schedules=DEFAULT_ONLY,
              more=[{x: random((2, 4, 3, 4), 4), w: random((6, 2, 3, 3), 5), b: random(6, 6)}])


def test_depthwise_conv_and_max_pool():
    """groups = channels (one input channel per group) and a padded max pool (-inf border:
    the adjoint never reaches the padding)."""
    x = td.placeholder((1, 3, 6, 7), "float64", name="x")
    w = td.placeholder((6, 1, 3, 3), "float64", name="w")
    y = nn.max_pool2d(nn.conv2d(x, w, padding=1, groups=3), 3, stride=2, padding=1)
    feeds = {x: random((1, 3, 6, 7), 4), w: random((6, 1, 3, 3), 5)}
    gradcheck(y, [x, w], feeds, schedules=DEFAULT_ONLY)
