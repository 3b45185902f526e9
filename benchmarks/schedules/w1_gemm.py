"""W1, GEMM: B packed into panels, a register tile of accumulators sized for the target.

The lesson of PERF_TARGETS.md: keep a block of C in vector registers for the whole
k loop. `cache_write(C, "local")` computed at C's (i_outer, j_outer) tile, with the
tile's rows unrolled and its columns vectorized (2 vectors per row), gives the
accumulators that gcc keeps in registers: 6 x 16 (12 ymm) on AVX2, 8 x 32 (16 zmm) on
AVX-512. B is re-laid out as panels `Bp[j // tile_j, k, j % tile_j]` so each k step
reads one contiguous row of the panel.
"""

from __future__ import annotations

import tdsl as td

from ._common import packed_panels, prepare_kernel

def gemm(n: int, m: int, l: int, tile_i: int, tile_j: int, pack: bool = True):
    """(schedule, args) of C = A @ B for A (n, l), B (l, m). Where tile_j does not divide
    m, the last panel is zero-padded (TVM's packedB) and the last column tile is ragged."""
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    if pack:
        Bp = packed_panels(B, tile_j)
        C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * Bp[j // tile_j, k, j % tile_j],
                                                   axis=k), name="C")
    else:
        C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    td.examples.register_tile(s, C, tile_i, tile_j)
    if pack:
        po, pk, pi = Bp.op.axis
        s[Bp].parallel(po)
        s[Bp].vectorize(pi)
    return s, [A, B, C]


def _prepare(inputs, pack: bool, tile_i: int, tile_j: int):
    a, b = inputs["A"], inputs["B"]
    s, args = gemm(a.shape[0], b.shape[1], a.shape[1], tile_i, tile_j, pack=pack)
    return prepare_kernel(s, args, [a, b], (a.shape[0], b.shape[1]))


def _variants():
    """The register tiles for the target: the default shape of td.examples (2 vectors per
    row), two other shapes, and the default without packing. The three-vector tile is
    TVM's x86 tile (4 x 24 on AVX2, 8 x 48 on AVX-512): 1024 is not a multiple of its
    columns, so its last panel is zero-padded as in TVM's schedule."""
    rows, cols = td.examples.register_tile_shape()
    lanes = td.target().lanes()
    narrow = (4, 2 * lanes) if td.target().vector_registers < 32 else (6, 4 * lanes)
    wide = (4, 3 * lanes) if td.target().vector_registers < 32 else (8, 3 * lanes)
    return {
        f"packed-{rows}x{cols}": lambda inputs: _prepare(inputs, True, rows, cols),
        f"unpacked-{rows}x{cols}": lambda inputs: _prepare(inputs, False, rows, cols),
        f"packed-{narrow[0]}x{narrow[1]}": lambda inputs: _prepare(inputs, True, *narrow),
        f"packed-{wide[0]}x{wide[1]}": lambda inputs: _prepare(inputs, True, *wide),
    }


VARIANTS = _variants()
