"""td.grad through affine index maps: each read A[f(v)] becomes a gather over A's index
space (matmul, stencils, strided reads, a transpose, a diagonal, a constant index), built
with the default schedule and with td.auto_schedule."""

from __future__ import annotations

import numpy as np

import tdsl as td

from .common import gradcheck, random

N, L, M = td.var("n"), td.var("l"), td.var("m")


def _matmul(n, l, m):
    X = td.placeholder((n, l), "float64", name="X")
    W = td.placeholder((l, m), "float64", name="W")
    k = td.reduce_axis(l, name="k")
    return X, W, td.compute((n, m), lambda i, j: td.sum(X[i, k] * W[k, j], axis=k), name="Y")


def test_pinned_api():
    """The issue's example, line for line: adjoints of a matmul with a head placeholder."""
    X, W, Y = _matmul(N, L, M)
    dY = td.placeholder((N, M), "float64", name="dY")
    dW, dX = td.grad(Y, [W, X], head=dY)
    s = td.create_schedule([dW, dX])
    mod = td.build(s, [X, W, dY, dW, dX])
    x, w, dy = random((7, 13), 1), random((13, 5), 2), random((7, 5), 3)
    dw, dx = np.empty((13, 5)), np.empty((7, 13))
    mod(x, w, dy, dw, dx)
    np.testing.assert_allclose(dw, x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(dx, dy @ w.T, rtol=1e-12)


def test_flatten_and_linear_inputs():
    """nn.flatten's reads (// and % by constants) and an input the adjoints never read
    (x: the output is linear in it)."""
    from tdsl import nn
    x = td.placeholder((2, 3, 2, 4), "float64", name="x")
    w = td.placeholder((5, 24), "float64", name="w")
    y = nn.dense(nn.flatten(x), w)
    gradcheck(y, [x, w], {x: random((2, 3, 2, 4), 1), w: random((5, 24), 2)})


def test_flatten_adjoint_is_a_gather():
    """nn.flatten reads x[n, i // 8, i // 4 % 2, i % 4]: the digits of one flat index,
    recomposed into i == 8 c + 4 y + x and solved for i, so each element of the adjoint
    reads one element of the head (it was a sum over all 24 flat positions, which made a
    CNN's training step 10 times slower). A reshape whose flat index mixes two axes is
    checked too."""
    from tdsl import nn
    x = td.placeholder((2, 3, 2, 4), "float64", name="x")
    flat = nn.flatten(x)
    head = td.placeholder(flat.shape, "float64", name="head")
    (dx,) = td.grad(flat, [x], head=head)
    assert not dx.op.reduce_axis, td.lower(td.create_schedule(dx), [head, dx])
    gradcheck(flat, [x], {x: random((2, 3, 2, 4), 1)})
    v = td.placeholder((6, 4), "float64", name="v")
    gradcheck(nn.reshape(v, (3, 8)), [v], {v: random((6, 4), 2)})
    # i // 2 and i % 3 are not the digits of one index (2 != 1 * 3): two equations, as before.
    a = td.placeholder((4, 3), "float64", name="a")
    gradcheck(td.compute((8,), lambda i: a[i // 2, i % 3] * a[i // 2, i % 3], name="y"), [a],
              {a: random((4, 3), 3)})


def test_matmul_constant_sizes():
    X, W, Y = _matmul(5, 6, 4)
    gradcheck(Y, [W, X], {X: random((5, 6), 1), W: random((6, 4), 2)})


def test_matmul_symbolic_sizes():
    X, W, Y = _matmul(N, L, M)
    gradcheck(Y, [W, X], {X: random((7, 13), 1), W: random((13, 5), 2)},
              more=[{X: random((1, 2), 3), W: random((2, 9), 4)}])


def test_stencil_1d():
    """y[i] = sum_r a[i + r] * w[r]: each a[x] gathers from the outputs i = x - r."""
    A = td.placeholder((N + 2,), "float64", name="A")
    K = td.placeholder((3,), "float64", name="K")
    r = td.reduce_axis(3, name="r")
    Y = td.compute((N,), lambda i: td.sum(A[i + r] * K[r], axis=r), name="Y")
    gradcheck(Y, [A, K], {A: random(15, 1), K: random(3, 2)},
              more=[{A: random(3, 3), K: random(3, 4)}])


def test_stencil_2d_shifted_reads():
    """A blur written with explicit shifts, then a reduction over a window with where=."""
    A = td.placeholder((N + 2, M + 2), "float64", name="A")
    B = td.compute((N, M), lambda i, j: A[i, j + 1] + A[i + 1, j] * 2 + A[i + 2, j + 1]
                   - A[i + 1, j + 2] * A[i + 1, j + 1], name="B")
    ry, rx = td.reduce_axis(3, name="ry"), td.reduce_axis(3, name="rx")
    C = td.compute((N - 2, M - 2), lambda i, j: td.sum(B[i + ry, j + rx] * (ry + 1),
                                                       axis=[ry, rx], where=ry != rx), name="C")
    gradcheck(C, [A], {A: random((9, 15), 1)}, more=[{A: random((5, 6), 2)}])


def test_strided_reads():
    """A[i * 2] and B[i, j * 2 + 1]: injective maps, a gather guarded by the stride."""
    A = td.placeholder((N * 2,), "float64", name="A")
    B = td.placeholder((N, M * 2 + 1), "float64", name="B")
    Y = td.compute((N, M), lambda i, j: A[i * 2] * B[i, j * 2 + 1] + A[i * 2 + 1]
                   - B[i, j * 2] * B[i, j * 2], name="Y")
    gradcheck(Y, [A, B], {A: random(14, 1), B: random((7, 27), 2)},
              more=[{A: random(4, 3), B: random((2, 3), 4)}])


def test_transpose_diagonal_and_constant_index():
    A = td.placeholder((N, M), "float64", name="A")
    S = td.placeholder((N, N), "float64", name="S")
    Y = td.compute((M, N), lambda i, j: A[j, i] * S[j, j] + A[0, i] * S[N - 1, j], name="Y")
    gradcheck(Y, [A, S], {A: random((7, 13), 1), S: random((7, 7), 2)},
              more=[{A: random((1, 1), 3), S: random((1, 1), 4)}])
