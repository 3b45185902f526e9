"""Schedules written the way TVM's and Halide's tutorials write them, for both x86 targets.

Each idiom is built for AVX2 (x86-64-v3) and AVX-512 (x86-64-v4); the code runs (and is
checked against NumPy) where this CPU can execute it, and is always compiled. The GEMM
idioms also check the generated C: in the version for full tiles, the register tile's
reduction loop touches its accumulators only at constant offsets, with no loop left
inside it (so gcc keeps the tile in registers).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tdsl as td
from benchmarks.schedules._common import reduce_in_lanes

TARGETS = ["c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4"]


def run_or_compile(s, args, target, inputs, expected, rtol=1e-4, atol=1e-5):
    """Build for `target`; where this CPU runs it, call it and compare with `expected`."""
    mod = td.build(s, args, target=target)
    if not td.target(target).runs_here():
        return mod
    out = np.empty(expected.shape, np.float32)
    mod(*inputs, out)
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)
    return mod


# ---------------------------------------------------------------------------------------
# GEMM register tiles
# ---------------------------------------------------------------------------------------

def gemm_tvm_style(n, m, l, tile_i, tile_j, lanes, fuse=True, pack=False):
    """TVM's x86 matmul tutorial, step "cache_write": a tile of C accumulated in a local
    buffer computed at the (fused, parallel) tile loop, its columns split into vectors."""
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    if pack:
        Bp = td.compute((m // tile_j, l, tile_j), lambda jo, kk, ji: B[kk, jo * tile_j + ji],
                        name="Bp")
        C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * Bp[j // tile_j, k, j % tile_j],
                                                   axis=k), name="C")
    else:
        C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    CL = s.cache_write(C, "local")
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, tile_i, tile_j)
    outer = s[C].fuse(io, jo) if fuse else io
    s[C].parallel(outer)
    s[CL].compute_at(s[C], outer if fuse else jo)
    ic, jc = CL.op.axis
    (kc,) = CL.op.reduce_axis
    jco, jci = s[CL].split(jc, factor=lanes)
    s[CL].reorder(kc, ic, jco, jci)
    s[CL].unroll(ic)
    s[CL].unroll(jco)
    s[CL].vectorize(jci)
    s[C].vectorize(ji)
    if pack:
        po, _, pi = Bp.op.axis
        s[Bp].parallel(po)
        s[Bp].vectorize(pi)
    return s, [A, B, C]


def full_tile_reduction_loops(source: str) -> list[str]:
    """Bodies of the `k` loops of the C source that contain no loop and index C_local
    only at constant offsets."""
    found = []
    for match in re.finditer(r"for \(int64_t k = [^)]*\)\s*\{", source):
        depth, start = 1, match.end()
        pos = start
        while depth:
            depth += {"{": 1, "}": -1}.get(source[pos], 0)
            pos += 1
        body = source[start:pos - 1]
        offsets = re.findall(r"C_local\[([^\]]*)\]", body)
        if offsets and "for (" not in body and all(re.fullmatch(r"\d+L", o) for o in offsets):
            found.append(body)
    return found


GEMM_IDIOMS = {
    # name: (n, m, l, rows, vectors per row, fuse, pack)
    "fused-dividing": (96, 64, 33, 4, 2, True, False),
    "fused-ragged": (50, 70, 19, 6, 2, True, False),       # 50 % 6, 70 % 16 (AVX2) != 0
    "fused-3vec-ragged": (37, 100, 8, 8, 3, True, False),  # TVM's 8 x 48 on AVX-512
    "unfused-ragged": (45, 90, 21, 4, 3, False, False),
    "fused-packed": (40, 96, 17, 6, 2, True, True),
}


@pytest.mark.parametrize("target", TARGETS, ids=["avx2", "avx512"])
@pytest.mark.parametrize("idiom", list(GEMM_IDIOMS))
def test_gemm_register_tile_idioms(idiom, target):
    n, m, l, rows, vectors, fuse, pack = GEMM_IDIOMS[idiom]
    lanes = td.target(target).lanes("float32")
    tile_j = vectors * lanes
    if pack and m % tile_j:
        m = tile_j * (m // tile_j + 1)
    s, args = gemm_tvm_style(n, m, l, rows, tile_j, lanes, fuse=fuse, pack=pack)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, l), dtype=np.float32)
    b = rng.standard_normal((l, m), dtype=np.float32)
    mod = run_or_compile(s, args, target, [a, b], a.astype(np.float64) @ b, rtol=1e-4,
                         atol=1e-4)
    loops = full_tile_reduction_loops(mod.source)
    assert loops, f"no full-tile version of the register tile in:\n{mod.source[-3000:]}"
    # one FMA per accumulator vector: rows x vectors constant-offset updates
    assert loops[0].count("C_local[") == 2 * rows * vectors


def test_gemm_idiom_with_symbolic_sizes():
    n, m, l = td.var("n"), td.var("m"), td.var("l")
    s, args = gemm_tvm_style(n, m, l, 4, 16, 8, fuse=False)
    mod = td.build(s, args, target="c -mcpu=x86-64-v3")
    assert full_tile_reduction_loops(mod.source)
    if td.target("c -mcpu=x86-64-v3").runs_here():
        for shape in ((9, 31, 5), (16, 48, 3), (1, 1, 1)):
            rng = np.random.default_rng(1)
            a = rng.standard_normal((shape[0], shape[2]), dtype=np.float32)
            b = rng.standard_normal((shape[2], shape[1]), dtype=np.float32)
            c = np.empty((shape[0], shape[1]), np.float32)
            mod(a, b, c)
            np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------
# Row reductions factored into lanes, computed at the final consumer's row loop
# ---------------------------------------------------------------------------------------

def softmax_schedule(n, m, lanes):
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    mx = td.compute((n,), lambda i: td.max(x[i, k1], axis=k1), name="mx")
    e = td.compute((n, m), lambda i, j: td.exp(x[i, j] - mx[i]), name="e")
    total = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
    y = td.compute((n, m), lambda i, j: e[i, j] / total[i], name="y")
    s = td.create_schedule(y)
    i, j = y.op.axis
    s[y].parallel(i)
    _, ji = s[y].split(j, factor=lanes)
    s[y].vectorize(ji)
    mx_rf = reduce_in_lanes(s, mx, lanes)
    total_rf = reduce_in_lanes(s, total, lanes)
    # every stage at y's row loop, the factored ones included (y needs them through
    # total and mx): consumers first
    for stage in (total, total_rf, e, mx, mx_rf):
        s[stage].compute_at(s[y], i)
    s[e].vectorize(e.op.axis[1])
    return s, [x, y]


def layernorm_schedule(n, m, lanes, eps=1e-5):
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    total = td.compute((n,), lambda i: td.sum(x[i, k1], axis=k1), name="total")
    squares = td.compute((n,), lambda i: td.sum(x[i, k2] * x[i, k2], axis=k2), name="squares")
    width = m if isinstance(m, int) else td.cast(m, "float32")    # keep float32 math
    mean = td.compute((n,), lambda i: total[i] / width, name="mean")
    var = td.compute((n,), lambda i: squares[i] / width - mean[i] * mean[i], name="var")
    y = td.compute((n, m), lambda i, j: (x[i, j] - mean[i]) / td.sqrt(var[i] + eps), name="y")
    s = td.create_schedule(y)
    i, j = y.op.axis
    s[y].parallel(i)
    _, ji = s[y].split(j, factor=lanes)
    s[y].vectorize(ji)
    total_rf = reduce_in_lanes(s, total, lanes)
    squares_rf = reduce_in_lanes(s, squares, lanes)
    for stage in (var, mean, total, squares, total_rf, squares_rf):
        s[stage].compute_at(s[y], i)
    return s, [x, y]


@pytest.mark.parametrize("target", TARGETS, ids=["avx2", "avx512"])
@pytest.mark.parametrize("shape", [(37, 45), (8, 64), (3, 5)], ids=str)
@pytest.mark.parametrize("symbolic", [False, True], ids=["const", "sym"])
def test_softmax_rfactor_at_final_consumer(shape, symbolic, target):
    n, m = (td.var("n"), td.var("m")) if symbolic else shape
    s, args = softmax_schedule(n, m, td.target(target).lanes())
    a = np.random.default_rng(2).standard_normal(shape, dtype=np.float32)
    ref = np.exp(a - a.max(1, keepdims=True))
    run_or_compile(s, args, target, [a], ref / ref.sum(1, keepdims=True))


@pytest.mark.parametrize("target", TARGETS, ids=["avx2", "avx512"])
@pytest.mark.parametrize("shape", [(37, 45), (8, 64), (3, 5)], ids=str)
@pytest.mark.parametrize("symbolic", [False, True], ids=["const", "sym"])
def test_layernorm_rfactor_at_final_consumer(shape, symbolic, target):
    n, m = (td.var("n"), td.var("m")) if symbolic else shape
    s, args = layernorm_schedule(n, m, td.target(target).lanes())
    a = np.random.default_rng(3).standard_normal(shape, dtype=np.float32)
    mu = a.mean(1, keepdims=True, dtype=np.float64)
    ref = (a - mu) / np.sqrt(a.var(1, keepdims=True, dtype=np.float64) + 1e-5)
    run_or_compile(s, args, target, [a], ref, rtol=1e-3, atol=1e-4)


def test_factored_stage_before_its_consumer_names_the_call_to_make_first():
    x = td.placeholder((16, 32), name="x")
    k = td.reduce_axis(32, name="k")
    mx = td.compute((16,), lambda i: td.max(x[i, k], axis=k), name="mx")
    y = td.compute((16, 32), lambda i, j: x[i, j] - mx[i], name="y")
    s = td.create_schedule(y)
    mx_rf = reduce_in_lanes(s, mx, 8)
    with pytest.raises(td.ScheduleError) as info:
        s[mx_rf].compute_at(s[y], y.op.axis[0])
    message = str(info.value)
    assert "but mx also reads it, outside that loop" in message
    assert "s[mx].compute_at(s[y], i)" in message
    s[mx].compute_at(s[y], y.op.axis[0])
    s[mx_rf].compute_at(s[y], y.op.axis[0])             # now legal


def test_fused_four_deep_ragged_conv_tests_fullness_once_outside_the_reduction():
    """TVM's idiom on a convolution: fuse(n, f_outer, y, x_outer) and parallel, the
    register tile at the fused loop, ragged in channels and pixels. The iterations with a
    full tile are one test outside the reduction loops (isl describes them as several
    pieces; the largest one is the full version), never a branch inside them."""
    batch, c, h, w, kk = 1, 2, 56, 56, 64         # 64 = 10 x 6 + 4, 56 = 3 x 16 + 8
    x = td.placeholder((batch, c, h, w), name="x")
    wt = td.placeholder((kk, c, 3, 3), name="w")
    pad = td.compute((batch, c, h + 2, w + 2), lambda n, ci, y, xx: td.select(
        td.all(y >= 1, y <= h, xx >= 1, xx <= w), x[n, ci, y - 1, xx - 1], 0.0), name="pad")
    rc, ry, rx = (td.reduce_axis(c, name="rc"), td.reduce_axis(3, name="ry"),
                  td.reduce_axis(3, name="rx"))
    out = td.compute((batch, kk, h, w), lambda n, f, y, xx: td.sum(
        pad[n, rc, y + ry, xx + rx] * wt[f, rc, ry, rx], axis=[rc, ry, rx]), name="out")
    s = td.create_schedule(out)
    local = s.cache_write(out, "local")
    n, f, y, xx = out.op.axis
    fo, fi = s[out].split(f, factor=6)
    xo, xi = s[out].split(xx, factor=16)
    s[out].reorder(n, fo, y, xo, fi, xi)
    fused = s[out].fuse(n, fo, y, xo)
    s[out].parallel(fused)
    s[out].vectorize(xi)
    s[local].compute_at(s[out], fused)
    nc, fc, yc, xc = local.op.axis
    xco, xci = s[local].split(xc, factor=8)
    s[local].reorder(nc, yc, rc, ry, rx, fc, xco, xci)
    s[local].unroll(fc)
    s[local].unroll(xco)
    s[local].vectorize(xci)
    text = str(td.lower(s, [x, wt, out]))
    first_rc = text.index("for rc in range")
    body = text[first_rc:text.index("\n", text.index("out[", first_rc))]
    assert " if " not in body and "\n" in body      # the full version's reduction: no tests
    rng = np.random.default_rng(4)
    a = rng.standard_normal((batch, c, h, w), dtype=np.float32)
    b = rng.standard_normal((kk, c, 3, 3), dtype=np.float32)
    got = np.empty((batch, kk, h, w), np.float32)
    td.build(s, [x, wt, out])(a, b, got)
    ap = np.pad(a.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = sum(np.einsum("nchw,kc->nkhw", ap[:, :, r:r + h, q:q + w], b[:, :, r, q])
               for r in range(3) for q in range(3))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
