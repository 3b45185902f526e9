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
