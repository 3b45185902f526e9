"""td.grad through affine index maps: each read A[f(v)] becomes a gather over A's index
space (matmul, stencils, strided reads, a transpose, a diagonal, a constant index)."""

from __future__ import annotations

import pytest

import tdsl as td

from .common import gradcheck, random

N, L, M = td.var("n"), td.var("l"), td.var("m")
SCHEDULES = [pytest.param(False, id="default"), pytest.param(True, id="auto")]


def _matmul(n, l, m):
    X = td.placeholder((n, l), "float64", name="X")
    W = td.placeholder((l, m), "float64", name="W")
    k = td.reduce_axis(l, name="k")
    return X, W, td.compute((n, m), lambda i, j: td.sum(X[i, k] * W[k, j], axis=k), name="Y")


@pytest.mark.parametrize("auto", SCHEDULES)
def test_matmul_constant_sizes(auto):
    X, W, Y = _matmul(5, 6, 4)
    gradcheck(Y, [W, X], {X: random((5, 6), 1), W: random((6, 4), 2)}, auto=auto)


@pytest.mark.parametrize("auto", SCHEDULES)
def test_matmul_symbolic_sizes(auto):
    X, W, Y = _matmul(N, L, M)
    for n, l, m in ((7, 13, 5), (1, 2, 9)):
        gradcheck(Y, [W, X], {X: random((n, l), n), W: random((l, m), m)}, auto=auto)


@pytest.mark.parametrize("auto", SCHEDULES)
def test_stencil_1d(auto):
    """y[i] = sum_r a[i + r] * w[r]: each a[x] gathers from the outputs i = x - r."""
    A = td.placeholder((N + 2,), "float64", name="A")
    K = td.placeholder((3,), "float64", name="K")
    r = td.reduce_axis(3, name="r")
    Y = td.compute((N,), lambda i: td.sum(A[i + r] * K[r], axis=r), name="Y")
    for n in (7, 13, 1):
        gradcheck(Y, [A, K], {A: random(n + 2, n), K: random(3, 3)}, auto=auto)


@pytest.mark.parametrize("auto", SCHEDULES)
def test_stencil_2d_shifted_reads(auto):
    """A blur written with explicit shifts, then a reduction over a window with where=."""
    A = td.placeholder((N + 2, M + 2), "float64", name="A")
    B = td.compute((N, M), lambda i, j: A[i, j + 1] + A[i + 1, j] * 2 + A[i + 2, j + 1]
                   - A[i + 1, j + 2] * A[i + 1, j + 1], name="B")
    ry, rx = td.reduce_axis(3, name="ry"), td.reduce_axis(3, name="rx")
    C = td.compute((N - 2, M - 2), lambda i, j: td.sum(B[i + ry, j + rx] * (ry + 1),
                                                       axis=[ry, rx], where=ry != rx), name="C")
    for n, m in ((7, 13), (3, 4)):
        gradcheck(C, [A], {A: random((n + 2, m + 2), n)}, auto=auto)


@pytest.mark.parametrize("auto", SCHEDULES)
def test_strided_reads(auto):
    """A[i * 2] and B[i, j * 2 + 1]: injective maps, a gather guarded by the stride."""
    A = td.placeholder((N * 2,), "float64", name="A")
    B = td.placeholder((N, M * 2 + 1), "float64", name="B")
    Y = td.compute((N, M), lambda i, j: A[i * 2] * B[i, j * 2 + 1] + A[i * 2 + 1]
                   - B[i, j * 2] * B[i, j * 2], name="Y")
    for n, m in ((7, 13), (2, 1)):
        gradcheck(Y, [A, B], {A: random(2 * n, n), B: random((n, 2 * m + 1), m)}, auto=auto)


@pytest.mark.parametrize("auto", SCHEDULES)
def test_transpose_diagonal_and_constant_index(auto):
    A = td.placeholder((N, M), "float64", name="A")
    S = td.placeholder((N, N), "float64", name="S")
    Y = td.compute((M, N), lambda i, j: A[j, i] * S[j, j] + A[0, i] * S[N - 1, j], name="Y")
    for n, m in ((7, 13), (1, 1)):
        gradcheck(Y, [A, S], {A: random((n, m), n), S: random((n, n), m)}, auto=auto)
