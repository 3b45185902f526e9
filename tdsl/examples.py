"""Ready algorithms with good schedules, to run, read and copy.

`python -m tdsl` runs them; the tutorials copy them. Each returns `(schedule, args)` for
symbolic sizes. (The machine's peak is measured by `td.machine`'s FMA probe, not by
these kernels: a better kernel could beat them.)
"""

from __future__ import annotations

from .lang import compute, max_reducer, placeholder, reduce_axis, sum_reducer, var
from .lang.intrinsics import exp
from .schedule import create_schedule


def register_tile_shape(target=None) -> tuple[int, int]:
    """(rows, columns) of a float32 matmul register tile that fits the target's vector
    registers with room for the B vectors and the broadcast A element: 6 x 16 (12 of 16
    ymm registers) on AVX2, as OpenBLAS and BLIS do; 8 x 32 (16 of 32 zmm) on AVX-512."""
    from .target import target as parse_target
    t = parse_target(target)
    lanes = t.lanes("float32")
    if t.vector_registers >= 32:
        return 8, 2 * lanes
    return 6, 2 * lanes


def matmul(tile_i: int | None = None, tile_j: int | None = None, target=None):
    """C = A @ B with a `tile_i x tile_j` block of C accumulated in registers.

    The block is computed in a local buffer (cache_write) per tile of C, its rows
    unrolled and its columns vectorized, over the whole k loop; tiles of rows run in
    parallel. The default tile fits the target's registers (`register_tile_shape`).
    """
    rows, cols = register_tile_shape(target)
    tile_i, tile_j = tile_i or rows, tile_j or cols
    n, l, m = var("n"), var("l"), var("m")
    A = placeholder((n, l), name="A")
    B = placeholder((l, m), name="B")
    k = reduce_axis(l, name="k")
    C = compute((n, m), lambda i, j: sum_reducer(A[i, k] * B[k, j], axis=k), name="C")
    s = create_schedule(C)
    register_tile(s, C, tile_i, tile_j)
    return s, [A, B, C]


def register_tile(s, C, tile_i: int, tile_j: int, parallel: bool = True):
    """Schedule the 2-D reduction C (a matmul) as a `tile_i x tile_j` register tile: C is
    computed into a local tile (cache_write) per tile of C, the tile's rows unrolled, its
    columns vectorized, over the whole reduction; tiles of rows in parallel (unless
    `parallel=False`: the single-thread schedule of notebook 2, section 7)."""
    CL = s.cache_write(C, "local")
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, tile_i, tile_j)
    s[CL].compute_at(s[C], jo)
    ic, jc = CL.op.axis
    s[CL].reorder(CL.op.reduce_axis[0], ic, jc)
    s[CL].unroll(ic)
    s[CL].vectorize(jc)
    s[C].vectorize(ji)
    if parallel:
        s[C].parallel(io)


def softmax():
    """Row softmax in four stages (max, exp, sum, divide), all computed per row, rows
    in parallel."""
    n, m = var("n"), var("m")
    X = placeholder((n, m), name="X")
    k1, k2 = reduce_axis(m, name="k1"), reduce_axis(m, name="k2")
    row_max = compute((n,), lambda i: max_reducer(X[i, k1], axis=k1), name="row_max")
    e = compute((n, m), lambda i, j: exp(X[i, j] - row_max[i]), name="e")
    total = compute((n,), lambda i: sum_reducer(e[i, k2], axis=k2), name="total")
    Y = compute((n, m), lambda i, j: e[i, j] / total[i], name="Y")
    s = create_schedule(Y)
    row = Y.op.axis[0]
    # Consumers first: total reads e, e reads row_max, and all of them live in one row.
    s[total].compute_at(s[Y], row)
    s[e].compute_at(s[Y], row)
    s[row_max].compute_at(s[Y], row)
    s[Y].parallel(row)
    return s, [X, Y]
