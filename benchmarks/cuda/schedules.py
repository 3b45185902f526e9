"""tdsl's CUDA schedules, written once for the tests and the GPU benchmark.

tests/backends/cuda/test_codegen.py builds each one, runs it on the CPU emulator against
NumPy (ragged sizes, so the guards of partial tiles are exercised) and checks nvcc's report;
benchmarks/cuda/run_cuda.py times some of them on a GPU. Every builder returns
`(schedule, args)` for symbolic sizes.
"""

from __future__ import annotations

import tdsl as td


def _matmul():
    """C = A @ B for symbolic M, N, K: (schedule, A, B, C)."""
    M, N, K = td.var("M"), td.var("N"), td.var("K")
    A = td.placeholder((M, K), name="A")
    B = td.placeholder((K, N), name="B")
    k = td.reduce_axis((0, K), name="k")
    C = td.compute((M, N), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return td.create_schedule(C), A, B, C


def elementwise():
    """B = A * 2 + 1, blocks of 128 threads, one element per thread."""
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    B = td.compute((n,), lambda i: A[i] * 2 + 1, name="B")
    s = td.create_schedule(B)
    bx, tx = s[B].split(B.op.axis[0], factor=128)
    s[B].bind(bx, "blockIdx.x")
    s[B].bind(tx, "threadIdx.x")
    return s, [A, B]


def row_sum():
    """One block per row: 64 threads each sum a strided part of the row (rfactor), then
    thread 0 adds the 64 partial sums (the second stage)."""
    n, m = td.var("n"), td.var("m")
    A = td.placeholder((n, m), name="A")
    k = td.reduce_axis((0, m), name="k")
    S = td.compute((n,), lambda i: td.sum(A[i, k], axis=k), name="S")
    s = td.create_schedule(S)
    _, ki = s[S].split(k, factor=64)
    SF = s.rfactor(S, ki)
    s[S].bind(S.op.axis[0], "blockIdx.x")
    s[SF].compute_at(s[S], S.op.axis[0])
    s[SF].bind(SF.op.axis[0], "threadIdx.x")
    return s, [A, S]


def tiled_matmul(tile=16, unroll=False):
    """Halide's GPU matmul: tile x tile output tiles per block, one accumulator per thread
    in registers (C_local), tile x tile tiles of A and B staged in shared memory per step
    of k. With `unroll`, the inner k loop (over the shared tiles) is unrolled, as the GPU
    benchmark runs it."""
    s, A, B, C = _matmul()
    CC = s.cache_write(C, "local")
    AS = s.cache_read(A, "shared", [CC])
    BS = s.cache_read(B, "shared", [CC])
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, tile, tile)
    s[C].bind(io, "blockIdx.y")
    s[C].bind(jo, "blockIdx.x")
    s[C].bind(ii, "threadIdx.y")
    s[C].bind(ji, "threadIdx.x")
    s[CC].compute_at(s[C], jo)
    ic, jc = CC.op.axis
    ko, ki = s[CC].split(CC.op.reduce_axis[0], factor=tile)
    s[CC].reorder(ko, ic, jc, ki)
    s[CC].bind(ic, "threadIdx.y")
    s[CC].bind(jc, "threadIdx.x")
    if unroll:
        s[CC].unroll(ki)
    for stage in (AS, BS):
        s[stage].compute_at(s[CC], ko)
        s[stage].bind(stage.op.axis[0], "threadIdx.y")
        s[stage].bind(stage.op.axis[1], "threadIdx.x")
    return s, [A, B, C]


def register_tiled_matmul():
    """64x64 tiles per block of 16x16 threads, each thread accumulating a 4x4 tile of C in
    registers (C_local indexed 4 * threadIdx + 0..3), A and B tiles of 64x16 and 16x64
    staged in shared memory, the 4x4 loops unrolled."""
    s, A, B, C = _matmul()
    CC = s.cache_write(C, "local")
    AS = s.cache_read(A, "shared", [CC])
    BS = s.cache_read(B, "shared", [CC])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 64, 64)
    iio, iii = s[C].split(ii, factor=4)
    jio, jii = s[C].split(ji, factor=4)
    s[C].reorder(io, jo, iio, jio, iii, jii)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (iio, "threadIdx.y"),
                      (jio, "threadIdx.x")):
        s[C].bind(axis, tag)
    s[CC].compute_at(s[C], jo)
    ko, ki = s[CC].split(CC.op.reduce_axis[0], factor=16)
    ico, ici = s[CC].split(CC.op.axis[0], factor=4)
    jco, jci = s[CC].split(CC.op.axis[1], factor=4)
    s[CC].reorder(ko, ico, jco, ki, ici, jci)
    s[CC].bind(ico, "threadIdx.y")
    s[CC].bind(jco, "threadIdx.x")
    s[CC].unroll(ici)
    s[CC].unroll(jci)
    for stage in (AS, BS):
        s[stage].compute_at(s[CC], ko)
        rows, cols = stage.op.axis
        ro, ri = s[stage].split(rows, factor=16)
        co, ci = s[stage].split(cols, factor=16)
        s[stage].reorder(ro, co, ri, ci)
        s[stage].bind(ri, "threadIdx.y")
        s[stage].bind(ci, "threadIdx.x")
    return s, [A, B, C]


def conv2d(shared: bool):
    """NCHW 3x3 convolution with zero padding (3 input channels, 4 filters; N, H, W
    symbolic); the padded input is inlined, or staged per block in shared memory (a
    (1, C, 10, 18) halo tile)."""
    N, H, W = td.var("N"), td.var("H"), td.var("W")
    C, F = 3, 4
    X = td.placeholder((N, C, H, W), name="X")
    Wt = td.placeholder((F, C, 3, 3), name="Wt")
    P = td.compute((N, C, H + 2, W + 2), lambda n, c, y, x: td.select(
        td.all(y >= 1, y <= H, x >= 1, x <= W), X[n, c, y - 1, x - 1], 0.0), name="P")
    rc, ry, rx = (td.reduce_axis((0, e), name=nm) for e, nm in ((C, "rc"), (3, "ry"), (3, "rx")))
    Y = td.compute((N, F, H, W), lambda n, f, y, x: td.sum(
        P[n, rc, y + ry, x + rx] * Wt[f, rc, ry, rx], axis=[rc, ry, rx]), name="Y")
    s = td.create_schedule(Y)
    n, f, y, x = Y.op.axis
    yo, xo, yi, xi = s[Y].tile(y, x, 8, 16)
    s[Y].bind(s[Y].fuse(n, f), "blockIdx.z")
    s[Y].bind(yo, "blockIdx.y")
    s[Y].bind(xo, "blockIdx.x")
    s[Y].bind(yi, "threadIdx.y")
    s[Y].bind(xi, "threadIdx.x")
    s[P].compute_inline()
    if shared:
        PS = s.cache_read(P, "shared", [Y])
        s[PS].compute_at(s[Y], xo)
        s[PS].bind(PS.op.axis[2], "threadIdx.y")
        s[PS].bind(PS.op.axis[3], "threadIdx.x")
    return s, [X, Wt, Y]


def blur(explicit_shared: bool):
    """Two-stage 3x3 box blur; blur_x is computed per 16x32 block tile (18 rows with the
    halo) by the block's threads, in shared memory: by cache_read(..., "shared") of the
    inlined stage, or by Halide's rule (a stage computed at a block loop is shared)."""
    H, W = td.var("H"), td.var("W")
    I = td.placeholder((H, W), name="I")
    BX = td.compute((H, W - 2), lambda y, x: (I[y, x] + I[y, x + 1] + I[y, x + 2]) / 3,
                    name="BX")
    BY = td.compute((H - 2, W - 2), lambda y, x: (BX[y, x] + BX[y + 1, x] + BX[y + 2, x]) / 3,
                    name="BY")
    s = td.create_schedule(BY)
    yo, xo, yi, xi = s[BY].tile(*BY.op.axis, 16, 32)
    s[BY].bind(yo, "blockIdx.y")
    s[BY].bind(xo, "blockIdx.x")
    s[BY].bind(yi, "threadIdx.y")
    s[BY].bind(xi, "threadIdx.x")
    if explicit_shared:
        s[BX].compute_inline()
        stage = s.cache_read(BX, "shared", [BY])
    else:
        stage = BX
    s[stage].compute_at(s[BY], xo)
    rows, cols = stage.op.axis
    _, rows_inner = s[stage].split(rows, factor=16)
    s[stage].bind(rows_inner, "threadIdx.y")
    s[stage].bind(cols, "threadIdx.x")
    return s, [I, BY]


def softmax():
    """One block per row; max and sum reduced by 128 threads each (rfactor) in shared
    memory, exp inlined."""
    n, m = td.var("n"), td.var("m")
    A = td.placeholder((n, m), name="A")
    k = td.reduce_axis((0, m), name="k")
    MX = td.compute((n,), lambda i: td.max(A[i, k], axis=k), name="MX")
    E = td.compute((n, m), lambda i, j: td.exp(A[i, j] - MX[i]), name="E")
    k2 = td.reduce_axis((0, m), name="k2")
    SM = td.compute((n,), lambda i: td.sum(E[i, k2], axis=k2), name="SM")
    O = td.compute((n, m), lambda i, j: E[i, j] / SM[i], name="O")
    s = td.create_schedule(O)
    s[E].compute_inline()
    _, ki = s[MX].split(MX.op.reduce_axis[0], factor=128)
    MF = s.rfactor(MX, ki)
    _, ki2 = s[SM].split(SM.op.reduce_axis[0], factor=128)
    SF = s.rfactor(SM, ki2)
    i, j = O.op.axis
    _, ji = s[O].split(j, factor=128)
    s[O].bind(i, "blockIdx.x")
    s[O].bind(ji, "threadIdx.x")
    for reduced, partial in ((SM, SF), (MX, MF)):       # consumers before producers
        s[reduced].compute_at(s[O], i)
        s[partial].compute_at(s[reduced], reduced.op.axis[0])
        s[partial].bind(partial.op.axis[0], "threadIdx.x")
    return s, [A, O]
