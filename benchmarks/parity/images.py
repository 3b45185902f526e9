"""Blur, transpose and elementwise chains: memory-bound pairs on 2-D images.

Blur is Halide's blur app (blur_x computed at tiles of blur_y, or at strips of rows);
transpose uses two levels of tiles (blocks for the TLB, vector-sized tiles inside, the
tile's rows unrolled), optionally loading the input tile with vector loads first
(Halide's `in()` wrapper, tdsl's `cache_read`); the elementwise chains are inlined into
one vectorized loop, or keep one stage computed per row.
"""

from __future__ import annotations

import numpy as np

import tdsl as td

from .common import Pair, Target, bytes_moved, hl, hvars, image, random_inputs

THIRD = 1.0 / 3.0


def _split_vectorize(s, stage, axis, lanes: int):
    _, inner = s[stage].split(axis, factor=lanes)
    s[stage].vectorize(inner)


# --- blur ------------------------------------------------------------------------------------

BLUR_TILE = (32, 256)       # rows x columns of blur_y per tile (the blur app's)
BLUR_STRIP = 8              # rows of blur_y per strip


def _blur_tdsl(t: Target, sz: dict, tiled: bool):
    h, w = sz["h"], sz["w"]
    inp = td.placeholder((h + 2, w + 2), name="inp")
    bx = td.compute((h + 2, w), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2])
                    * THIRD, name="blur_x")
    by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) * THIRD,
                    name="blur_y")
    s = td.create_schedule(by)
    y, x = by.op.axis
    if tiled:
        yo, xo, _, xi = s[by].tile(y, x, *BLUR_TILE)
        _split_vectorize(s, by, xi, t.lanes)
        s[by].parallel(yo)
        s[bx].compute_at(s[by], xo)
    else:
        yo, _ = s[by].split(y, factor=BLUR_STRIP)
        s[by].parallel(yo)
        _split_vectorize(s, by, x, t.lanes)
        s[bx].compute_at(s[by], yo)
    _split_vectorize(s, bx, bx.op.axis[1], t.lanes)
    return s, [inp, by]


def _blur_halide(t: Target, sz: dict, tiled: bool):
    h_ = hl()
    h, w = sz["h"], sz["w"]
    X = image("inp", (h + 2, w + 2))
    x, y, xi, yi = hvars("x y xi yi")
    bx, by = h_.Func("blur_x"), h_.Func("blur_y")
    third = h_.f32(THIRD)
    bx[x, y] = (X[x, y] + X[x + 1, y] + X[x + 2, y]) * third
    by[x, y] = (bx[x, y] + bx[x, y + 1] + bx[x, y + 2]) * third
    if tiled:
        by.tile(x, y, xi, yi, BLUR_TILE[1], BLUR_TILE[0]).vectorize(xi, t.lanes).parallel(y)
        bx.compute_at(by, x)
    else:
        by.split(y, y, yi, BLUR_STRIP).parallel(y).vectorize(x, t.lanes)
        bx.compute_at(by, y)
    bx.vectorize(x, t.lanes)
    return by, [X]


def _blur_reference(a):
    a = a.astype(np.float64)
    bx = (a[:, :-2] + a[:, 1:-1] + a[:, 2:]) * THIRD
    return (bx[:-2] + bx[1:-1] + bx[2:]) * THIRD


# --- transpose -------------------------------------------------------------------------------

BLOCK = 128                 # outer tiles: rows and columns of a block


def _transpose_tdsl(t: Target, sz: dict, staged: bool):
    n, m = sz["n"], sz["m"]
    tile = t.lanes
    x = td.placeholder((n, m), name="x")
    out = td.compute((m, n), lambda i, j: x[j, i], name="out")
    s = td.create_schedule(out)
    if staged:
        xl = s.cache_read(x, "local", [out])
    i, j = out.op.axis
    io, jo, ii, ji = s[out].tile(i, j, BLOCK, BLOCK)
    iio, jio, iii, jii = s[out].tile(ii, ji, tile, tile)
    s[out].parallel(io)
    s[out].unroll(iii)
    s[out].vectorize(jii)
    if staged:
        s[xl].compute_at(s[out], jio)
        r, c = xl.op.axis
        s[xl].unroll(r)
        s[xl].vectorize(c)
    return s, [x, out]


def _transpose_halide(t: Target, sz: dict, staged: bool):
    n, m = sz["n"], sz["m"]
    tile = t.lanes
    X = image("x", (n, m))
    x, y, xo, yo, xi, yi, xio, yio, xii, yii = hvars("x y xo yo xi yi xio yio xii yii")
    out = hl().Func("out")
    out[x, y] = X[y, x]
    out.tile(x, y, xo, yo, xi, yi, BLOCK, BLOCK) \
       .tile(xi, yi, xio, yio, xii, yii, tile, tile).parallel(yo).unroll(yii).vectorize(xii)
    if staged:
        block = X.in_()
        bx, by = block.args()
        block.compute_at(out, xio).unroll(by).vectorize(bx)
    return out, [X]


# --- elementwise chains ----------------------------------------------------------------------

ROWS_PER_TASK = 64


def _ew_tdsl(t: Target, sz: dict, kind: str):
    n, m = sz["n"], sz["m"]
    a, b, c = (td.placeholder((n, m), name=nm) for nm in "abc")
    inline = []
    at_row = None
    if kind == "fma_relu":
        out = td.compute((n, m), lambda i, j: td.maximum(a[i, j] * b[i, j] + c[i, j], 0.0),
                         name="out")
    elif kind == "chain":
        t1 = td.compute((n, m), lambda i, j: a[i, j] * b[i, j], name="t1")
        t2 = td.compute((n, m), lambda i, j: t1[i, j] + c[i, j], name="t2")
        t3 = td.compute((n, m), lambda i, j: td.maximum(t2[i, j], 0.0), name="t3")
        out = td.compute((n, m), lambda i, j: t3[i, j] * t3[i, j] + a[i, j], name="out")
        inline = [t3, t2, t1]
    else:                   # silu: the exp stage computed at each row of the output
        g = td.compute((n, m), lambda i, j: td.exp(-a[i, j]), name="g")
        out = td.compute((n, m), lambda i, j: a[i, j] / (1.0 + g[i, j]) * b[i, j] + c[i, j],
                         name="out")
        at_row = g
    s = td.create_schedule(out)
    for stage in inline:
        s[stage].compute_inline()
    i, j = out.op.axis
    io, ii = s[out].split(i, factor=ROWS_PER_TASK)
    s[out].parallel(io)
    _split_vectorize(s, out, j, t.lanes)
    if at_row is not None:
        s[at_row].compute_at(s[out], ii)
        _split_vectorize(s, at_row, at_row.op.axis[1], t.lanes)
    return s, [a, b, c, out]


def _ew_halide(t: Target, sz: dict, kind: str):
    h = hl()
    n, m = sz["n"], sz["m"]
    a, b, c = (image(nm, (n, m)) for nm in "abc")
    x, y, yo, yi = hvars("x y yo yi")
    out = h.Func("out")
    at_row = None
    if kind == "fma_relu":
        out[x, y] = h.max(a[x, y] * b[x, y] + c[x, y], 0.0)
    elif kind == "chain":           # Halide inlines t1..t3 by default
        t1, t2, t3 = h.Func("t1"), h.Func("t2"), h.Func("t3")
        t1[x, y] = a[x, y] * b[x, y]
        t2[x, y] = t1[x, y] + c[x, y]
        t3[x, y] = h.max(t2[x, y], 0.0)
        out[x, y] = t3[x, y] * t3[x, y] + a[x, y]
    else:
        g = h.Func("g")
        g[x, y] = h.exp(-a[x, y])
        out[x, y] = a[x, y] / (1.0 + g[x, y]) * b[x, y] + c[x, y]
        at_row = g
    out.split(y, yo, yi, ROWS_PER_TASK).parallel(yo).vectorize(x, t.lanes)
    if at_row is not None:
        at_row.compute_at(out, yi).vectorize(x, t.lanes)
    return out, [a, b, c]


def _ew_reference(kind):
    def ref(a, b, c):
        a, b, c = (v.astype(np.float64) for v in (a, b, c))
        if kind == "fma_relu":
            return np.maximum(a * b + c, 0)
        if kind == "chain":
            t3 = np.maximum(a * b + c, 0)
            return t3 * t3 + a
        return a / (1 + np.exp(-a)) * b + c
    return ref


# --- the pairs -------------------------------------------------------------------------------

def _matrix(s):
    return (s["n"], s["m"])


IMAGE_PAIRS = [
    Pair("blur_tiled", "blur", "blur app: blur_y in 32x256 tiles, blur_x computed at the tile, "
         "both vectorized, rows of tiles parallel", {"h": 2048, "w": 2048},
         ({"h": 37, "w": 300}, {"h": 9, "w": 45}, {"h": 1, "w": 3}),
         random_inputs(lambda s: (s["h"] + 2, s["w"] + 2)), lambda s: (s["h"], s["w"]),
         _blur_reference, lambda t, s: _blur_tdsl(t, s, True),
         lambda t, s: _blur_halide(t, s, True), "GB/s",
         bytes_moved(lambda s: [(s["h"] + 2, s["w"] + 2), (s["h"], s["w"])])),
    Pair("blur_strips", "blur", "strips of 8 full rows of blur_y parallel, blur_x computed at "
         "the strip, both vectorized", {"h": 2048, "w": 2048},
         ({"h": 37, "w": 300}, {"h": 9, "w": 45}, {"h": 1, "w": 3}),
         random_inputs(lambda s: (s["h"] + 2, s["w"] + 2)), lambda s: (s["h"], s["w"]),
         _blur_reference, lambda t, s: _blur_tdsl(t, s, False),
         lambda t, s: _blur_halide(t, s, False), "GB/s",
         bytes_moved(lambda s: [(s["h"] + 2, s["w"] + 2), (s["h"], s["w"])])),
    Pair("transpose_tiled", "transpose", "two-level tiles: 128x128 blocks, lanes x lanes tiles "
         "inside (rows unrolled, columns vectorized), rows of blocks parallel",
         {"n": 4096, "m": 4096}, ({"n": 37, "m": 45}, {"n": 130, "m": 64}, {"n": 3, "m": 5}),
         random_inputs(_matrix), lambda s: (s["m"], s["n"]), lambda x: x.T.astype(np.float64),
         lambda t, s: _transpose_tdsl(t, s, False), lambda t, s: _transpose_halide(t, s, False),
         "GB/s", bytes_moved(lambda s: [_matrix(s)] * 2)),
    Pair("transpose_staged", "transpose", "transpose_tiled with the input tile loaded first "
         "with vector loads (Halide in(), tdsl cache_read) at the tile",
         {"n": 4096, "m": 4096}, ({"n": 37, "m": 45}, {"n": 130, "m": 64}, {"n": 3, "m": 5}),
         random_inputs(_matrix), lambda s: (s["m"], s["n"]), lambda x: x.T.astype(np.float64),
         lambda t, s: _transpose_tdsl(t, s, True), lambda t, s: _transpose_halide(t, s, True),
         "GB/s", bytes_moved(lambda s: [_matrix(s)] * 2)),
] + [
    Pair(f"ew_{kind}", "elementwise", idea, {"n": 2048, "m": 2048},
         ({"n": 37, "m": 50}, {"n": 70, "m": 9}, {"n": 1, "m": 3}),
         random_inputs(_matrix, _matrix, _matrix), _matrix, _ew_reference(kind),
         lambda t, s, kind=kind: _ew_tdsl(t, s, kind),
         lambda t, s, kind=kind: _ew_halide(t, s, kind), "GB/s",
         bytes_moved(lambda s: [_matrix(s)] * 4))
    for kind, idea in (
        ("fma_relu", "max(a * b + c, 0): strips of 64 rows parallel, rows vectorized"),
        ("chain", "four stages (a*b, +c, relu, t*t + a) inlined into one loop as ew_fma_relu"),
        ("silu", "a / (1 + exp(-a)) * b + c with the exp stage computed at the row, both "
                 "vectorized; strips of 64 rows parallel"))
]
