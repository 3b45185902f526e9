"""td.grad of reductions: sum (a broadcast), max and min (the first extremum takes the
adjoint), with where=; the tie rules, checked exactly."""

from __future__ import annotations

import numpy as np
import tdsl as td

from .common import Adjoints, gradcheck, random

N, M = td.var("n"), td.var("m")


def test_sum_max_min_with_where():
    """Row sums over a triangle (where=), row maxima over the even columns, column minima
    of a product, and a scalar sum of everything."""
    A = td.placeholder((N, M), "float64", name="A")
    B = td.placeholder((N, M), "float64", name="B")
    k, c, r = td.reduce_axis(M, name="k"), td.reduce_axis(M, name="c"), td.reduce_axis(N, "r")
    tri = td.compute((N,), lambda i: td.sum(A[i, k] * B[i, k], axis=k, where=k <= i), name="tri")
    top = td.compute((N,), lambda i: td.max(td.exp(A[i, c]) - B[i, c], axis=c,
                                            where=c % 2 == 0), name="top")
    low = td.compute((M,), lambda j: td.min(A[r, j] * B[r, j], axis=r), name="low")
    kn, km = td.reduce_axis(N, name="kn"), td.reduce_axis(M, name="km")
    loss = td.compute((), lambda: td.sum(tri[kn] * top[kn] + low[km] * (kn + 1), axis=[kn, km]),
                      name="loss")
    gradcheck(loss, [A, B], {A: random((7, 13), 1), B: random((7, 13), 2)},
              more=[{A: random((3, 1), 3), B: random((3, 1), 4)}])


def test_reductions_of_nn():
    """nn.sum / nn.mean / nn.max over several axes, keepdims, at constant sizes. (At this
    shape, an earlier form of the max's adjoint, `g[i, j, c] = (j == am[i, c]) ? h : 0.0`
    in three loops, was miscompiled by gcc 12.2 -O3 -mavx2: if-conversion after complete
    unrolling of the 5-iteration loop; reproduced in plain C, reported.)"""
    from tdsl import nn
    X = td.placeholder((3, 4, 5), "float64", name="X")
    total = nn.sum(nn.mul(nn.mean(X, axis=(0, 2), keepdims=True), nn.max(X, axis=1, keepdims=True)))
    gradcheck(total, [X], {X: random((3, 4, 5), 3)})


def test_max_tie_rule_first_position():
    """A tie in a max (or min) reduction: only the first position in the order of the
    reduction axes gets the adjoint; positions the where= excludes never do."""
    A = td.placeholder((2, 2, 3), "float64", name="A")
    ka, kb = td.reduce_axis(2, name="ka"), td.reduce_axis(3, name="kb")
    top = td.compute((2,), lambda i: td.max(A[i, ka, kb], axis=[ka, kb], where=kb >= 1),
                     name="top")
    low = td.compute((2,), lambda i: td.min(A[i, ka, kb], axis=[ka, kb]), name="low")
    loss = td.compute((), lambda: td.sum(top[ka] * 3 + low[ka], axis=ka), name="loss")
    a = np.array([[[9, 5, 5], [1, 5, 1]],        # max over kb >= 1: 5 at (0,1) (0,2) (1,1)
                  [[2, 2, 7], [7, 7, 2]]], float)  # max 7 at (0,2) (1,0)->excluded, (1,1)
    (grad,), _ = Adjoints(loss, [A], [A]).run({A: a})      # each build == td.reference
    want = np.zeros_like(a)
    want[0, 0, 1] += 3                              # first 5 with kb >= 1
    want[1, 0, 2] += 3                              # first 7 with kb >= 1
    want[0, 0, 2] = 0
    want[0, 1, 0] += 1                              # first minimum 1 (of (1,0) and (1,2))
    want[1, 0, 0] += 1                              # first minimum 2 (of (0,0) (0,1) (1,2))
    np.testing.assert_array_equal(grad, want)


def test_maximum_tie_rule_first_argument():
    """td.maximum(a, b) gives the adjoint to a where a >= b, td.minimum to a where a <= b;
    so nn.relu(x) = maximum(x, 0) passes it at x == 0."""
    A = td.placeholder((N,), "float64", name="A")
    B = td.placeholder((N,), "float64", name="B")
    Y = td.compute((N,), lambda i: td.maximum(A[i], B[i]) * 2 + td.minimum(A[i], B[i]) * 5
                   + td.maximum(A[i], 0.0) * 100, name="Y")
    a, b = np.array([1.0, 2.0, 0.0, -1.0]), np.array([1.0, 3.0, 0.0, -2.0])
    (da, db), _ = Adjoints(Y, [A, B], [A, B]).run({A: a, B: b}, head=np.ones(4))
    np.testing.assert_array_equal(da, [2 + 5 + 100, 5 + 100, 2 + 5 + 100, 2])
    np.testing.assert_array_equal(db, [0, 2, 0, 5])
