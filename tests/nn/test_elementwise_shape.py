"""Broadcasting arithmetic, the data-movement operators and the reductions against NumPy."""

from __future__ import annotations

import numpy as np

import tdsl as td
from tdsl import nn

from .common import build_run, close, random


def test_broadcasting_arithmetic():
    a = td.placeholder((4, 7, 13), name="a")
    row = td.placeholder((13,), name="row")
    col = td.placeholder((7, 1), name="col")
    mid = td.placeholder((4, 1, 13), name="mid")
    ints = td.placeholder((7, 1), dtype="int32", name="ints")
    outs = [nn.add(a, row), nn.sub(col, a), nn.mul(a, 0.5), nn.div(2.0, mid),
            nn.maximum(a, col), nn.minimum(mid, col), nn.add(col, row, name="outer"),
            nn.div(ints, 2, name="int_div"), nn.mul(ints, 3, name="int_mul"),
            nn.elementwise(lambda u, v, w: u * v + w, a, row, 1.0, name="fma")]
    assert [tuple(int(d.value) for d in t.shape) for t in outs[5:7]] == [(4, 7, 13), (7, 13)]
    assert [t.dtype for t in outs[7:9]] == ["float64", "int32"]     # NumPy's types
    feeds = {a: random((4, 7, 13), 1), row: random((13,), 2), col: random((7, 1), 3),
             mid: random((4, 1, 13), 4, 0.5, 2),
             ints: np.arange(-3, 4, dtype=np.int32).reshape(7, 1)}
    av, rv, cv, mv, iv = feeds.values()
    wants = [av + rv, cv - av, av * 0.5, 2.0 / mv, np.maximum(av, cv), np.minimum(mv, cv),
             cv + rv, iv / 2, iv * 3, av * rv + 1.0]
    for got, want in zip(build_run(outs, feeds), wants):
        close(got, want)


def test_broadcasting_symbolic_sizes():
    n, m = td.var("n"), td.var("m")
    a, row = td.placeholder((n, m), name="a"), td.placeholder((1, m), name="row")
    scale = td.placeholder((n, 1), name="scale")
    y = nn.mul(nn.add(a, row), scale, name="y")
    assert [str(d) for d in y.shape] == ["n", "m"]
    for rows, cols in ((1, 1), (7, 33)):
        feeds = {a: random((rows, cols), 1), row: random((1, cols), 2),
                 scale: random((rows, 1), 3)}
        (got,) = build_run(y, feeds, sizes={n: rows, m: cols})
        close(got, (feeds[a] + feeds[row]) * feeds[scale])


def test_shape_operators():
    x = td.placeholder((2, 3, 4, 5), name="x")
    y = td.placeholder((2, 2, 4, 5), name="y")
    outs = [nn.reshape(x, (6, -1)), nn.reshape(x, (2, 12, 5), name="merge_mid"),
            nn.reshape(x, (5, 4, 6), name="scramble"), nn.flatten(x),
            nn.flatten(x, 0, 1, name="flat01"), nn.transpose(x, (0, 2, 3, 1)),
            nn.transpose(x, name="reverse"), nn.concat([x, y, x], axis=1),
            nn.concat([x, x], axis=-1, name="cat_last"),
            nn.pad(x, [(0, 0), (1, 2), (0, 0), (3, 1)], value=-1.5),
            nn.slice(x, [1, -4], [100, -1], axes=[1, 3]),
            nn.slice(x, [0, 1], [4, 5], axes=[2, 3], steps=[3, 2], name="strided")]
    assert [t.name for t in outs[:4]] == ["reshape", "merge_mid", "scramble", "flatten"]
    feeds = {x: random((2, 3, 4, 5), 1), y: random((2, 2, 4, 5), 2)}
    xv, yv = feeds[x], feeds[y]
    wants = [xv.reshape(6, -1), xv.reshape(2, 12, 5), xv.reshape(5, 4, 6), xv.reshape(2, -1),
             xv.reshape(6, 4, 5), xv.transpose(0, 2, 3, 1), xv.transpose(),
             np.concatenate([xv, yv, xv], axis=1), np.concatenate([xv, xv], axis=-1),
             np.pad(xv, [(0, 0), (1, 2), (0, 0), (3, 1)], constant_values=-1.5),
             xv[:, 1:, :, -4:-1], xv[:, :, 0:4:3, 1:5:2]]
    for got, want in zip(build_run(outs, feeds), wants):
        np.testing.assert_array_equal(got, want)      # data movement: exact


def test_shape_operators_symbolic_batch():
    n = td.var("n")
    x = td.placeholder((n, 3, 4), name="x")
    outs = [nn.flatten(x), nn.reshape(x, (n, 2, 6), name="split"),
            nn.reshape(x, (-1, 4), name="rows"), nn.concat([x, x], axis=0),
            nn.slice(x, [1], [2**31 - 1], axes=[0], name="tail"), nn.transpose(x, (2, 0, 1)),
            nn.pad(x, [(1, 1), (0, 0), (0, 0)]), nn.reshape(x, (n * 3, 4), name="explicit")]
    assert [str(d) for d in outs[0].shape] == ["n", "12"]
    assert [str(d) for d in outs[2].shape] == ["n * 3", "4"]
    for rows in (2, 5):
        xv = random((rows, 3, 4), rows)
        got = build_run(outs, {x: xv}, sizes={n: rows})
        wants = [xv.reshape(rows, -1), xv.reshape(rows, 2, 6), xv.reshape(-1, 4),
                 np.concatenate([xv, xv]), xv[1:], xv.transpose(2, 0, 1),
                 np.pad(xv, [(1, 1), (0, 0), (0, 0)]), xv.reshape(-1, 4)]
        for g, want in zip(got, wants):
            np.testing.assert_array_equal(g, want)


def test_reductions():
    x = td.placeholder((3, 7, 13), name="x")
    outs = [nn.sum(x), nn.sum(x, axis=1, name="sum1"), nn.mean(x, axis=(0, 2), keepdims=True),
            nn.mean(x, name="mean_all"), nn.max(x, axis=-1), nn.min(x, axis=0, keepdims=True),
            nn.max(x, axis=(1, 2), name="max12"), nn.sum(x, axis=(), name="sum_none")]
    assert outs[0].shape == () and outs[2].name == "mean"
    xv = random((3, 7, 13), 1)
    wants = [xv.sum(), xv.sum(axis=1), xv.mean(axis=(0, 2), keepdims=True), xv.mean(),
             xv.max(axis=-1), xv.min(axis=0, keepdims=True), xv.max(axis=(1, 2)),
             xv.sum(axis=())]
    for got, want in zip(build_run(outs, {x: xv}), wants):
        close(got, np.asarray(want, np.float64))


def test_reductions_auto_schedule_symbolic():
    n = td.var("n")
    x = td.placeholder((n, 33), name="x")
    y = nn.mean(x, axis=-1)
    for rows in (2, 7):
        xv = random((rows, 33), rows)
        (got,) = build_run(y, {x: xv}, auto=True, sizes={n: rows})
        close(got, xv.mean(axis=-1))
