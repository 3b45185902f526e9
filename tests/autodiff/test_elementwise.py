"""td.grad of elementwise stages: every arithmetic operator and float intrinsic, broadcasts,
select, casts; checked against central differences (common.gradcheck), each built with the
default schedule and with td.auto_schedule."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl.lang.expr import call

from .common import BOTH, gradcheck, random

N, M = td.var("n"), td.var("m")


def _chain(shape):
    """Two inputs through every operator and intrinsic, in two stages."""
    A = td.placeholder(shape, "float64", name="A")
    B = td.placeholder(shape, "float64", name="B")

    def first(i, j):
        a, b = A[i, j], B[i, j]
        smooth = td.exp(a) * td.log(b * b + 1) + td.sqrt(a * a + 2) / (b + 3) - td.tanh(a * b)
        waves = td.sin(a) * td.cos(b) + td.sigmoid(a - b) + td.abs(a + 0.5) - (-b)
        powers = td.power(b * b + 1, a) + a ** 3 + call("exp2", a) + call("log2", b + 2)
        extremes = td.maximum(a, b) * 2 + td.minimum(a * 3, b) + td.floor(a * 4) + td.ceil(b)
        return smooth + waves + powers + extremes - a % 0.75

    T = td.compute(shape, first, name="T")
    return A, B, td.compute(shape, lambda i, j: T[i, j] * T[i, j]
                            - A[i, j] / (T[i, j] * T[i, j] + 1), name="Y")


def test_every_intrinsic_constant_sizes():
    """(The symbolic-size version below checks td.auto_schedule.)"""
    A, B, Y = _chain((3, 5))
    gradcheck(Y, [A, B], {A: random((3, 5), 1), B: random((3, 5), 2)}, schedules=("default",))


def test_every_intrinsic_symbolic_sizes():
    A, B, Y = _chain((N, M))
    gradcheck(Y, [A, B], {A: random((7, 13), 1), B: random((7, 13), 2)},
              more=[{A: random((1, 3), 3), B: random((1, 3), 4)}])


def test_broadcast_and_scalars():
    A = td.placeholder((N, M), "float64", name="A")
    row = td.placeholder((M,), "float64", name="row")
    col = td.placeholder((N,), "float64", name="col")
    s = td.placeholder((), "float64", name="s")
    Y = td.compute((N, M), lambda i, j: (A[i, j] - row[j]) * col[i] + s[()] * row[j] * row[j],
                   name="Y")
    kn, km = td.reduce_axis(N, name="kn"), td.reduce_axis(M, name="km")
    loss = td.compute((), lambda: td.sum(Y[kn, km] * Y[kn, km], axis=[kn, km]), name="loss")
    feeds = {A: random((7, 13), 1), row: random(13, 2), col: random(7, 3), s: random((), 4)}
    gradcheck(loss, [A, row, col, s], feeds)


def test_select():
    A = td.placeholder((N,), "float64", name="A")
    B = td.placeholder((N,), "float64", name="B")
    Y = td.compute((N,), lambda i: td.select(A[i] > B[i], A[i] * B[i], B[i] * 3)
                   + td.select(i % 3 == 0, td.exp(A[i]), 0.0), name="Y")
    gradcheck(Y, [A, B], {A: random(13, 1), B: random(13, 2)})


@pytest.mark.parametrize("kind", BOTH)
def test_casts_between_floats_and_from_integers(kind):
    """float64 -> float32 -> float64 keeps the gradient (checked in float32 against the
    chain rule by hand); casts to integers stop it; the index i is a constant."""
    X = td.placeholder((N,), "float64", name="X")
    W = td.placeholder((N,), "float32", name="W")
    Y = td.compute((N,), lambda i: td.cast(td.cast(X[i], "float32") * W[i], "float64")
                   * td.cast(i, "float64") + td.cast(td.cast(X[i] * 8, "int32"), "float64"),
                   name="Y")
    dY = td.placeholder((N,), "float64", name="dY")
    dX, dW = td.grad(Y, [X, W], head=dY)
    assert (dX.dtype, dW.dtype) == ("float64", "float32")
    schedule = td.auto_schedule([dX, dW]) if kind == "auto" else td.create_schedule([dX, dW])
    mod = td.build(schedule, [X, W, dY, dX, dW])
    x, w, dy = random(7, 1), random(7, 2).astype("float32"), random(7, 3)
    dx, dw = np.empty(7), np.empty(7, "float32")
    mod(x, w, dy, dx, dw)
    i = np.arange(7)
    np.testing.assert_allclose(dx, (dy * i).astype("float32") * w, rtol=1e-6)
    np.testing.assert_allclose(dw, (dy * i).astype("float32") * x.astype("float32"), rtol=1e-6)
