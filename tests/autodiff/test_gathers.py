"""Reads at data-dependent indices. `logp[i, label[i]]` is still a gather (i is solved from
the first index; `a1 == label[a0]` is a guard). `E[idx[i], j]` (an embedding lookup) has to
search for its preimage: its adjoint is a scatter-add, a td.update over the reader's domain
(repeated indices accumulate)."""

from __future__ import annotations

import numpy as np

import tdsl as td

from .common import gradcheck, random

N, V = td.var("n"), td.var("v")


def test_label_gather_is_a_gather():
    logp = td.placeholder((N, 5), "float64", name="logp")
    label = td.placeholder((N,), "int32", name="label")
    k = td.reduce_axis(N, name="k")
    loss = td.compute((), lambda: td.sum(-logp[k, label[k]] * logp[k, label[k]], axis=k),
                      name="loss")
    (dlogp,) = td.grad(loss, [logp])
    assert isinstance(dlogp.op, td.lang.ComputeOp)
    labels = np.array([0, 4, 4, 2, 1, 3, 0], "int32")
    gradcheck(loss, [logp], {logp: random((7, 5), 1), label: labels})


def test_embedding_lookup_is_a_scatter_add():
    E = td.placeholder((V, 3), "float64", name="E")
    idx = td.placeholder((N,), "int64", name="idx")
    W = td.placeholder((N, 3), "float64", name="W")
    Y = td.compute((N, 3), lambda i, j: td.tanh(E[idx[i], j]) * W[i, j], name="Y")
    indices = np.array([2, 0, 2, 5, 2, 1, 0], "int64")           # rows 3 and 4 unread
    gradcheck(Y, [E, W], {E: random((6, 3), 1), idx: indices, W: random((7, 3), 2)})


def test_data_dependent_conditions_read_only_inside_the_bounds():
    """A label read at a shifted row, and a where= reading a mask at the output's index:
    read back at a solved index (a0 - 1, a - r), each is tested only where that index is in
    range (td.reference and the kernel would otherwise read label[-1])."""
    A = td.placeholder((N + 1, 4), "float64", name="A")
    label = td.placeholder((N,), "int32", name="label")
    X = td.placeholder((N + 2,), "float64", name="X")
    mask = td.placeholder((N,), "float64", name="mask")
    r = td.reduce_axis(3, name="r")
    S = td.compute((N,), lambda i: td.sum(X[i + r] * (r + 1), axis=r, where=mask[i] > 0),
                   name="S")
    Y = td.compute((N,), lambda i: A[i + 1, label[i]] * S[i], name="Y")
    feeds = {A: random((7, 4), 1), label: np.array([3, 0, 0, 2, 1, 3], "int32"),
             X: random(8, 2), mask: random(6, 3)}
    gradcheck(Y, [A, X], feeds)
