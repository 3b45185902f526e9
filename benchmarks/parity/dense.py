"""GEMM and conv2d pairs: register tiles of accumulators held over the whole reduction.

The GEMM tile is the one of Halide's matrix-multiply tests and TVM's x86 tutorials: a
`rows x cols` block of C accumulated in a local Func/buffer (`compute_at` the tile,
`cache_write(C, "local")`), the reduction outermost in it, its rows and its column
vectors unrolled, the lanes vectorized. Shapes per target: 12 accumulators of 16 on
AVX2 (6 x 16 floats, 4 x 24), 16-24 of 32 on AVX-512 (8 x 32, 6 x 64, 8 x 48).
"""

from __future__ import annotations

import numpy as np

import tdsl as td

from ..schedules._common import packed_panels
from .common import Pair, Target, hl, hvars, image, random_inputs

# (rows, vectors per row) of each GEMM pair's register tile, per target
TILES = {
    "dividing": {"avx2": (6, 2), "avx512": (8, 2)},
    "ragged": {"avx2": (4, 3), "avx512": (6, 4)},
    "fused": {"avx2": (4, 3), "avx512": (8, 3)},
}


def _gemm_tdsl(t: Target, sz: dict, tile: str, pack: bool, fused: bool):
    n, m, l = sz["n"], sz["m"], sz["l"]
    rows, vecs = TILES[tile][t.name]
    cols, lanes = vecs * t.lanes, t.lanes
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    if pack:                      # panels Bp[j // cols, k, j % cols], zero past the edge
        Bp = packed_panels(B, cols)
        C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * Bp[j // cols, k, j % cols],
                                                   axis=k), name="C")
    else:
        C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    CL = s.cache_write(C, "local")
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, rows, cols)
    _, jii = s[C].split(ji, factor=lanes)
    s[C].vectorize(jii)
    if fused:
        tile_loop = s[C].fuse(io, jo)
        s[C].parallel(tile_loop)
    else:
        tile_loop = jo
        s[C].parallel(io)
    s[CL].compute_at(s[C], tile_loop)
    ic, jc = CL.op.axis
    (kc,) = CL.op.reduce_axis
    jco, jci = s[CL].split(jc, factor=lanes)
    s[CL].reorder(kc, ic, jco, jci)
    s[CL].unroll(ic)
    s[CL].unroll(jco)
    s[CL].vectorize(jci)
    if pack:
        po, _, pi = Bp.op.axis
        s[Bp].parallel(po)
        _, pii = s[Bp].split(pi, factor=lanes)
        s[Bp].vectorize(pii)
    return s, [A, B, C]


def _gemm_halide(t: Target, sz: dict, tile: str, pack: bool, fused: bool):
    h = hl()
    n, m, l = sz["n"], sz["m"], sz["l"]
    rows, vecs = TILES[tile][t.name]
    cols, lanes = vecs * t.lanes, t.lanes
    A, B = image("A", (n, l)), image("B", (l, m))
    x, y, xo, yo, xi, yi, t_, ji, ko, kv = hvars("x y xo yo xi yi t ji ko kv")
    k = h.RDom([(0, l)], "k")
    acc, out = h.Func("acc"), h.Func("out")
    acc[x, y] = 0.0
    if pack:
        Bp = h.Func("Bp")
        Bc = h.BoundaryConditions.constant_exterior(B, 0.0) if m % cols else B
        Bp[ji, kv, ko] = Bc[ko * cols + ji, kv]
        acc[x, y] += A[k.x, y] * Bp[x % cols, k.x, x // cols]
    else:
        acc[x, y] += A[k.x, y] * B[x, k.x]
    out[x, y] = acc[x, y]
    out.tile(x, y, xo, yo, xi, yi, cols, rows).vectorize(xi, lanes)
    if fused:
        out.fuse(xo, yo, t_).parallel(t_)
        acc.compute_at(out, t_)
    else:
        out.parallel(yo)
        acc.compute_at(out, xo)
    acc.vectorize(x, lanes).unroll(x).unroll(y)
    acc.update().reorder(x, y, k.x).vectorize(x, lanes).unroll(x).unroll(y)
    if pack:
        Bp.compute_root().parallel(ko).vectorize(ji, lanes)
    return out, [A, B]


def _gemm_pair(name: str, tile: str, pack: bool, fused: bool, size: int, idea: str) -> Pair:
    def sizes(n):
        return {"n": n, "m": n, "l": n}
    return Pair(
        name=name, family="gemm", idea=idea, sizes=sizes(size),
        test_sizes=({"n": 24, "m": 64, "l": 17}, {"n": 37, "m": 75, "l": 29},
                    {"n": 3, "m": 5, "l": 4}),
        inputs=random_inputs(lambda s: (s["n"], s["l"]), lambda s: (s["l"], s["m"])),
        out_shape=lambda s: (s["n"], s["m"]),
        reference=lambda a, b: a.astype(np.float64) @ b,
        tdsl=lambda t, s: _gemm_tdsl(t, s, tile, pack, fused),
        halide=lambda t, s: _gemm_halide(t, s, tile, pack, fused),
        unit="GFLOP/s", amount=lambda s: 2.0 * s["n"] * s["m"] * s["l"],
        notes={"tiles": {tn: f"{r} x {v} vectors" for tn, (r, v) in TILES[tile].items()}})


GEMM_PAIRS = [
    _gemm_pair("gemm_tile", "dividing", False, False, 768,
               "register tile (6x16 | 8x32) at each tile, k outside the unrolled tile; "
               "rows of tiles parallel; tiles divide 768"),
    _gemm_pair("gemm_tile_ragged", "ragged", False, False, 777,
               "register tile (4x24 | 6x64) as gemm_tile, on 777: partial tiles in both "
               "dimensions"),
    _gemm_pair("gemm_packed", "dividing", True, False, 768,
               "gemm_tile with B packed into column panels Bp[j / cols, k, j % cols] "
               "(computed at the root, panels parallel)"),
    _gemm_pair("gemm_packed_ragged", "ragged", True, False, 777,
               "gemm_tile_ragged with packed panels, the last one zero-padded"),
    _gemm_pair("gemm_fused", "fused", False, True, 768,
               "TVM's idiom: tile (4x24 | 8x48), fuse(i_outer, j_outer) parallel, "
               "cache_write local at the fused loop, columns split by lanes, unrolled"),
    _gemm_pair("gemm_fused_ragged", "fused", False, True, 777,
               "gemm_fused on 777: partial tiles in both dimensions"),
    _gemm_pair("gemm_fused_packed", "fused", True, True, 768,
               "gemm_fused with B packed into column panels (computed at the root)"),
]


# --- conv2d NCHW, 3x3, pad 1 ---------------------------------------------------------------

# (output channels per block in vectors, pixels per strip) of each conv pair, per target
CONV_TILES = {
    "conv2d_tile": {"avx2": (2, 7), "avx512": (2, 7)},
    "conv2d_tile_ragged": {"avx2": (1, 12), "avx512": (1, 12)},
}


def _conv_tdsl(t: Target, sz: dict, which: str):
    batch, c, h, w, kk = sz["n"], sz["c"], sz["h"], sz["w"], sz["k"]
    vecs, strip = CONV_TILES[which][t.name]
    kb, lanes = vecs * t.lanes, t.lanes
    x = td.placeholder((batch, c, h, w), name="x")
    wts = td.placeholder((kk, c, 3, 3), name="w")
    pad = td.compute((batch, c, h + 2, w + 2), lambda n, ci, yy, xx: td.select(
        td.all(yy >= 1, yy <= h, xx >= 1, xx <= w),
        x[n, ci, yy - 1, xx - 1], 0.0), name="pad")
    wt = td.compute((kk // kb, c, 3, 3, kb),
                    lambda ko, ci, r, s_, ki: wts[ko * kb + ki, ci, r, s_], name="wt")
    rc, ry, rx = (td.reduce_axis(c, name="rc"), td.reduce_axis(3, name="ry"),
                  td.reduce_axis(3, name="rx"))
    block = td.compute((batch, kk // kb, h, w, kb), lambda n, ko, yy, xx, ki: td.sum(
        pad[n, rc, yy + ry, xx + rx] * wt[ko, rc, ry, rx, ki], axis=[rc, ry, rx]), name="block")
    out = td.compute((batch, kk, h, w),
                     lambda n, k_, yy, xx: block[n, k_ // kb, yy, xx, k_ % kb], name="out")

    s = td.create_schedule(out)
    n, k_, yy, xx = out.op.axis
    ko, ki = s[out].split(k_, factor=kb)
    xo, xi = s[out].split(xx, factor=strip)
    s[out].reorder(n, ko, yy, xo, ki, xi)
    s[out].parallel(s[out].fuse(ko, yy))
    s[block].compute_at(s[out], xo)
    bn, bko, by, bx, bki = block.op.axis
    bkio, bkii = s[block].split(bki, factor=lanes)
    s[block].reorder(bn, bko, by, rc, ry, rx, bx, bkio, bkii)
    s[block].unroll(bx)
    s[block].unroll(bkio)
    s[block].vectorize(bkii)
    _, pc, _, px = pad.op.axis
    s[pad].parallel(pc)
    _, pxi = s[pad].split(px, factor=lanes)
    s[pad].vectorize(pxi)
    wko, wc, _, _, wki = wt.op.axis
    s[wt].parallel(s[wt].fuse(wko, wc))
    _, wkii = s[wt].split(wki, factor=lanes)
    s[wt].vectorize(wkii)
    return s, [x, wts, out]


def _conv_halide(t: Target, sz: dict, which: str):
    h_ = hl()
    batch, c, h, w, kk = sz["n"], sz["c"], sz["h"], sz["w"], sz["k"]
    vecs, strip = CONV_TILES[which][t.name]
    kb, lanes = vecs * t.lanes, t.lanes
    X = image("x", (batch, c, h, w))                   # X[x, y, c, n]
    Wt = image("w", (kk, c, 3, 3))                     # Wt[s, r, c, k]
    xx, yy, ci, n, k_, ki, ko, xo, xi, fused = hvars("xx yy ci n k ki ko xo xi fused")
    sv, rv = hvars("sv rv")
    padded = h_.BoundaryConditions.constant_exterior(X, 0.0)
    pad, wt = h_.Func("pad"), h_.Func("wt")
    pad[xx, yy, ci, n] = padded[xx - 1, yy - 1, ci, n]
    wt[ki, sv, rv, ci, ko] = Wt[sv, rv, ci, ko * kb + ki]
    r = h_.RDom([(0, 3), (0, 3), (0, c)], "r")          # r.x = s, r.y = r, r.z = c
    block, out = h_.Func("block"), h_.Func("out")
    block[ki, xx, yy, ko, n] = 0.0
    block[ki, xx, yy, ko, n] += pad[xx + r.x, yy + r.y, r.z, n] * wt[ki, r.x, r.y, r.z, ko]
    out[xx, yy, k_, n] = block[k_ % kb, xx, yy, k_ // kb, n]

    out.split(k_, ko, ki, kb).split(xx, xo, xi, strip).reorder(xi, ki, xo, yy, ko, n) \
       .fuse(yy, ko, fused).parallel(fused)
    block.compute_at(out, xo).vectorize(ki, lanes).unroll(ki).unroll(xx)
    block.update().reorder(ki, xx, r.x, r.y, r.z, yy, ko, n) \
        .vectorize(ki, lanes).unroll(ki).unroll(xx)
    pad.compute_root().parallel(ci).vectorize(xx, lanes)
    wt.compute_root().fuse(ci, ko, fused).parallel(fused).vectorize(ki, lanes)
    return out, [X, Wt]


def _conv_reference(x, w):
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    _, _, h, wd = x.shape
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for r in range(3):
        for s in range(3):
            out += np.einsum("nchw,kc->nkhw", xp[:, :, r:r + h, s:s + wd], w[:, :, r, s])
    return out


def _conv_pair(which: str, idea: str) -> Pair:
    return Pair(
        name=which, family="conv2d", idea=idea,
        sizes={"n": 1, "c": 64, "h": 56, "w": 56, "k": 64},
        test_sizes=({"n": 1, "c": 5, "h": 9, "w": 28, "k": 32},
                    {"n": 2, "c": 3, "h": 7, "w": 30, "k": 32}),
        inputs=random_inputs(lambda s: (s["n"], s["c"], s["h"], s["w"]),
                             lambda s: (s["k"], s["c"], 3, 3)),
        out_shape=lambda s: (s["n"], s["k"], s["h"], s["w"]),
        reference=_conv_reference,
        tdsl=lambda t, s: _conv_tdsl(t, s, which),
        halide=lambda t, s: _conv_halide(t, s, which),
        unit="GFLOP/s",
        amount=lambda s: 2.0 * s["n"] * s["k"] * s["c"] * s["h"] * s["w"] * 9,
        rtol=1e-3, atol=1e-3,
        notes={"tiles": {tn: f"{v} vectors of channels x {p} pixels"
                         for tn, (v, p) in CONV_TILES[which].items()}})


CONV_PAIRS = [
    _conv_pair("conv2d_tile", "pad stage; weights blocked [k/kb, c, r, s, kb]; a register "
               "tile of 2 vectors of channels x 7 pixels computed at each (channel block, row, "
               "strip), reduction outside it; (block, row) fused and parallel"),
    _conv_pair("conv2d_tile_ragged", "conv2d_tile with 1 vector of channels x 12 pixels: "
               "56 = 4 x 12 + 8, a partial strip per row"),
]
