"""Softmax, layernorm and reductions: rfactor into vector lanes, stages at the row.

Softmax and layernorm follow Halide's apps and TVM's x86 schedules: every stage is
computed at the final consumer's row loop (one row per task, or strips of 64 rows), the
row reductions are factored into one vector of lanes (`rfactor`, lesson 18), and the
row is written as vectors. Column sums keep a block of vector accumulators over all rows
(a local Func / `cache_write` computed at the column block), or factor the rows into
blocks summed in parallel.
"""

from __future__ import annotations

import numpy as np

import tdsl as td

from .common import (Pair, Target, bytes_moved, halide_row_reduce, hl, hvars, image,
                     random_inputs, tdsl_row_reduce)

STRIP = 64          # rows per parallel task in the "strips" pairs
EPS = 1e-5


def _rows(s, out, strips: bool):
    """Parallel rows (or strips of rows) of `out`; returns the row loop stages go to."""
    i = out.op.axis[0]
    if not strips:
        s[out].parallel(i)
        return i
    io, ii = s[out].split(i, factor=STRIP)
    s[out].parallel(io)
    return ii


def _halide_rows(out, y, yo, yi, strips: bool):
    if not strips:
        out.parallel(y)
        return y
    out.split(y, yo, yi, STRIP).parallel(yo)
    return yi


def _vectorize_row(s, stage, lanes: int):
    _, jj = s[stage].split(stage.op.axis[-1], factor=lanes)
    s[stage].vectorize(jj)


# --- softmax -------------------------------------------------------------------------------

def _softmax_tdsl(t: Target, sz: dict, strips: bool):
    n, m = sz["n"], sz["m"]
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    mx = td.compute((n,), lambda i: td.max(x[i, k1], axis=k1), name="mx")
    e = td.compute((n, m), lambda i, j: td.exp(x[i, j] - mx[i]), name="e")
    sm = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="sm")
    y = td.compute((n, m), lambda i, j: e[i, j] / sm[i], name="y")
    s = td.create_schedule(y)
    row = _rows(s, y, strips)
    _vectorize_row(s, y, t.lanes)
    tdsl_row_reduce(s, sm, y, row, t.lanes)
    s[e].compute_at(s[y], row)
    _vectorize_row(s, e, t.lanes)
    tdsl_row_reduce(s, mx, y, row, t.lanes)
    return s, [x, y]


def _softmax_halide(t: Target, sz: dict, strips: bool):
    h = hl()
    n, m = sz["n"], sz["m"]
    X = image("x", (n, m))
    x, y, yo, yi = hvars("x y yo yi")
    r = h.RDom([(0, m)], "r")
    mx, e, sm, out = h.Func("mx"), h.Func("e"), h.Func("sm"), h.Func("y")
    mx[y] = h.f32(float("-inf"))
    mx[y] = h.max(mx[y], X[r.x, y])
    e[x, y] = h.exp(X[x, y] - mx[y])
    sm[y] = 0.0
    sm[y] += e[r.x, y]
    out[x, y] = e[x, y] / sm[y]
    row = _halide_rows(out, y, yo, yi, strips)
    out.vectorize(x, t.lanes)
    halide_row_reduce(sm, r.x, out, row, t.lanes)
    e.compute_at(out, row).vectorize(x, t.lanes)
    halide_row_reduce(mx, r.x, out, row, t.lanes)
    return out, [X]


def _softmax_reference(x):
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- layernorm -----------------------------------------------------------------------------

def _layernorm_tdsl(t: Target, sz: dict, strips: bool):
    n, m = sz["n"], sz["m"]
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    s1 = td.compute((n,), lambda i: td.sum(x[i, k1], axis=k1), name="s1")
    s2 = td.compute((n,), lambda i: td.sum(x[i, k2] * x[i, k2], axis=k2), name="s2")

    def normalize(i, j):
        mean = s1[i] * (1.0 / m)
        var = s2[i] * (1.0 / m) - mean * mean
        return (x[i, j] - mean) / td.sqrt(var + EPS)
    out = td.compute((n, m), normalize, name="out")
    s = td.create_schedule(out)
    row = _rows(s, out, strips)
    _vectorize_row(s, out, t.lanes)
    tdsl_row_reduce(s, s1, out, row, t.lanes)
    tdsl_row_reduce(s, s2, out, row, t.lanes)
    return s, [x, out]


def _layernorm_halide(t: Target, sz: dict, strips: bool):
    h = hl()
    n, m = sz["n"], sz["m"]
    X = image("x", (n, m))
    x, y, yo, yi = hvars("x y yo yi")
    r = h.RDom([(0, m)], "r")
    s1, s2, out = h.Func("s1"), h.Func("s2"), h.Func("out")
    s1[y] = 0.0
    s1[y] += X[r.x, y]
    s2[y] = 0.0
    s2[y] += X[r.x, y] * X[r.x, y]
    mean = s1[y] * (1.0 / m)
    var = s2[y] * (1.0 / m) - mean * mean
    out[x, y] = (X[x, y] - mean) / h.sqrt(var + h.f32(EPS))
    row = _halide_rows(out, y, yo, yi, strips)
    out.vectorize(x, t.lanes)
    halide_row_reduce(s1, r.x, out, row, t.lanes)
    halide_row_reduce(s2, r.x, out, row, t.lanes)
    return out, [X]


def _layernorm_reference(x):
    a = x.astype(np.float64)
    mu = a.mean(axis=1, keepdims=True)
    return (a - mu) / np.sqrt(((a - mu) ** 2).mean(axis=1, keepdims=True) + EPS)


# --- row reductions: a copy stage `out` is the final consumer, as in Halide's apps --------

def _rowreduce_tdsl(t: Target, sz: dict, op: str, strips: bool):
    n, m = sz["n"], sz["m"]
    x = td.placeholder((n, m), name="x")
    k = td.reduce_axis(m, name="k")
    reducer = td.sum if op == "sum" else td.max
    total = td.compute((n,), lambda i: reducer(x[i, k], axis=k), name="total")
    out = td.compute((n,), lambda i: total[i], name="out")
    s = td.create_schedule(out)
    row = _rows(s, out, strips)
    tdsl_row_reduce(s, total, out, row, t.lanes)
    return s, [x, out]


def _rowreduce_halide(t: Target, sz: dict, op: str, strips: bool):
    h = hl()
    n, m = sz["n"], sz["m"]
    X = image("x", (n, m))
    y, yo, yi = hvars("y yo yi")
    r = h.RDom([(0, m)], "r")
    total, out = h.Func("total"), h.Func("out")
    if op == "sum":
        total[y] = 0.0
        total[y] += X[r.x, y]
    else:
        total[y] = h.f32(float("-inf"))
        total[y] = h.max(total[y], X[r.x, y])
    out[y] = total[y]
    row = _halide_rows(out, y, yo, yi, strips)
    halide_row_reduce(total, r.x, out, row, t.lanes)
    return out, [X]


# --- column sums -----------------------------------------------------------------------------

COL_VECTORS = 4        # vectors of columns per block of accumulators
ROW_BLOCK = 128        # rows per partial sum in colsum_rfactor


def _colsum_tile_tdsl(t: Target, sz: dict):
    n, m = sz["n"], sz["m"]
    cols = COL_VECTORS * t.lanes
    x = td.placeholder((n, m), name="x")
    k = td.reduce_axis(n, name="k")
    out = td.compute((m,), lambda j: td.sum(x[k, j], axis=k), name="out")
    s = td.create_schedule(out)
    acc = s.cache_write(out, "local")
    (j,) = out.op.axis
    jo, ji = s[out].split(j, factor=cols)
    s[out].parallel(jo)
    _, jii = s[out].split(ji, factor=t.lanes)
    s[out].vectorize(jii)
    s[acc].compute_at(s[out], jo)
    (jc,) = acc.op.axis
    (kc,) = acc.op.reduce_axis
    jco, jci = s[acc].split(jc, factor=t.lanes)
    s[acc].reorder(kc, jco, jci)
    s[acc].unroll(jco)
    s[acc].vectorize(jci)
    return s, [x, out]


def _colsum_tile_halide(t: Target, sz: dict):
    h = hl()
    n, m = sz["n"], sz["m"]
    cols = COL_VECTORS * t.lanes
    X = image("x", (n, m))
    x, xo, xi = hvars("x xo xi")
    r = h.RDom([(0, n)], "r")
    acc, out = h.Func("acc"), h.Func("out")
    acc[x] = 0.0
    acc[x] += X[x, r.x]
    out[x] = acc[x]
    out.split(x, xo, xi, cols).parallel(xo).vectorize(xi, t.lanes)
    acc.compute_at(out, xo).vectorize(x, t.lanes).unroll(x)
    acc.update().reorder(x, r.x).vectorize(x, t.lanes).unroll(x)
    return out, [X]


def _colsum_rfactor_tdsl(t: Target, sz: dict):
    n, m = sz["n"], sz["m"]
    x = td.placeholder((n, m), name="x")
    k = td.reduce_axis(n, name="k")
    out = td.compute((m,), lambda j: td.sum(x[k, j], axis=k), name="out")
    s = td.create_schedule(out)
    ko, _ = s[out].split(k, factor=ROW_BLOCK)
    partial = s.rfactor(out, ko)                       # partial[ko, j]: one row block
    block, j = partial.op.axis
    (ki,) = partial.op.reduce_axis
    s[partial].reorder(block, ki, j)
    s[partial].parallel(block)
    _vectorize_row(s, partial, t.lanes)
    return s, [x, out]              # the final add-up stays scalar: see the Halide half


def _colsum_rfactor_halide(t: Target, sz: dict):
    h = hl()
    n, m = sz["n"], sz["m"]
    X = image("x", (n, m))
    x, v = hvars("x v")
    r = h.RDom([(0, n)], "r")
    out = h.Func("out")
    out[x] = 0.0
    out[x] += X[x, r.x]
    rro, rri = h.RVar("rro"), h.RVar("rri")
    out.update().split(r.x, rro, rri, ROW_BLOCK)
    partial = out.update().rfactor(rro, v)            # partial[x, v]: one row block
    partial.compute_root().parallel(v).vectorize(x, t.lanes)
    partial.update().reorder(x, rri, v).parallel(v).vectorize(x, t.lanes)
    # out.update().vectorize(x, lanes) here makes halide 21's code crash (segfault, with
    # or without assertions) once the input's bounds are known, so the final add-up of
    # the 32 partial sums stays scalar, in tdsl too
    return out, [X]


# --- the pairs -------------------------------------------------------------------------------

ROW_TESTS = ({"n": 7, "m": 64}, {"n": 70, "m": 45}, {"n": 3, "m": 5})


def _row_pair(name, idea, tdsl, halide, reference, sizes, out_shape, tests=ROW_TESTS,
              **kw) -> Pair:
    return Pair(name=name, family=name.split("_")[0], idea=idea, sizes=sizes,
                test_sizes=tests, inputs=random_inputs(lambda s: (s["n"], s["m"])),
                out_shape=out_shape, reference=reference, tdsl=tdsl, halide=halide,
                unit="GB/s",
                amount=bytes_moved(lambda s: [(s["n"], s["m"]), out_shape(s)]), **kw)


def _matrix(s):
    return (s["n"], s["m"])


ROW_PAIRS = [
    _row_pair("softmax_rows", "rows parallel; max and sum rfactored into one vector of lanes, "
              "exp stage, both reductions and their factored stages at the final consumer's "
              "row; rows as vectors", lambda t, s: _softmax_tdsl(t, s, False),
              lambda t, s: _softmax_halide(t, s, False), _softmax_reference,
              {"n": 4096, "m": 1024}, _matrix),
    _row_pair("softmax_strips", "softmax_rows with strips of 64 rows parallel, every stage at "
              "the inner row loop", lambda t, s: _softmax_tdsl(t, s, True),
              lambda t, s: _softmax_halide(t, s, True), _softmax_reference,
              {"n": 4096, "m": 1024}, _matrix),
    _row_pair("layernorm_rows", "rows parallel; sum and sum of squares rfactored into lanes at "
              "the row; mean and variance inline; rows as vectors",
              lambda t, s: _layernorm_tdsl(t, s, False),
              lambda t, s: _layernorm_halide(t, s, False), _layernorm_reference,
              {"n": 4096, "m": 1024}, _matrix, rtol=1e-3, atol=1e-3),
    _row_pair("layernorm_strips", "layernorm_rows with strips of 64 rows parallel",
              lambda t, s: _layernorm_tdsl(t, s, True),
              lambda t, s: _layernorm_halide(t, s, True), _layernorm_reference,
              {"n": 4096, "m": 1024}, _matrix, rtol=1e-3, atol=1e-3),
    _row_pair("rowsum_strips", "strips of 64 rows parallel; the sum rfactored into lanes at "
              "the copy stage's row", lambda t, s: _rowreduce_tdsl(t, s, "sum", True),
              lambda t, s: _rowreduce_halide(t, s, "sum", True),
              lambda x: x.astype(np.float64).sum(axis=1), {"n": 4096, "m": 2048},
              lambda s: (s["n"],), rtol=1e-3, atol=1e-3),
    _row_pair("rowmax_rows", "rows parallel; the max rfactored into lanes at the row",
              lambda t, s: _rowreduce_tdsl(t, s, "max", False),
              lambda t, s: _rowreduce_halide(t, s, "max", False),
              lambda x: x.astype(np.float64).max(axis=1), {"n": 4096, "m": 2048},
              lambda s: (s["n"],)),
    _row_pair("colsum_tile", "column blocks of 4 vectors parallel; their accumulators (local, "
              "computed at the block) held over all rows", _colsum_tile_tdsl,
              _colsum_tile_halide, lambda x: x.astype(np.float64).sum(axis=0),
              {"n": 4096, "m": 2048}, lambda s: (s["m"],), rtol=1e-3, atol=1e-3),
    _row_pair("colsum_rfactor", "rows rfactored into blocks of 128 summed in parallel (rows "
              "streamed as vectors), then the partial sums added (scalar)",
              _colsum_rfactor_tdsl, _colsum_rfactor_halide,
              lambda x: x.astype(np.float64).sum(axis=0), {"n": 4096, "m": 2048},
              lambda s: (s["m"],), tests=({"n": 256, "m": 64}, {"n": 300, "m": 45},
                                          {"n": 3, "m": 5}), rtol=1e-3, atol=1e-3),
]
