"""W1, GEMM: B packed into panels, an 8 x 32 register tile of accumulators.

The lesson of PERF_TARGETS.md: keep a block of C in vector registers for the whole
k loop. `cache_write(C, "local")` computed at C's (i_outer, j_outer) tile, with the
tile's rows unrolled and its 32 columns vectorized (2 zmm registers per row),
gives 16 accumulators that gcc keeps in registers; B is re-laid out as panels
`Bp[j // 32, k, j % 32]` so each k step reads 32 contiguous floats.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel

TILE_I, TILE_J = 8, 32


def gemm(n: int, m: int, l: int, tile_i: int = TILE_I, tile_j: int = TILE_J, pack: bool = True):
    """(schedule, args) of C = A @ B for A (n, l), B (l, m); m must divide by tile_j."""
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
    td.examples.register_tile(s, C, tile_i, tile_j)
    if pack:
        po, pk, pi = Bp.op.axis
        s[Bp].parallel(po)
        s[Bp].vectorize(pi)
    return s, [A, B, C]


def _prepare(inputs, pack: bool, tile_i: int = TILE_I, tile_j: int = TILE_J):
    a, b = inputs["A"], inputs["B"]
    s, args = gemm(a.shape[0], b.shape[1], a.shape[1], tile_i, tile_j, pack=pack)
    return prepare_kernel(s, args, [a, b], (a.shape[0], b.shape[1]))


# 8 x 32: 16 accumulators (2 vectors per row); 6 x 64: 24 accumulators (4 per row), which
# loads fewer B vectors per FMA but leaves 1024 % 6 = 4 rows as a partial tile.
VARIANTS = {
    "packed-8x32": lambda inputs: _prepare(inputs, True),
    "unpacked-8x32": lambda inputs: _prepare(inputs, False),
    "packed-6x64": lambda inputs: _prepare(inputs, True, 6, 64),
}
