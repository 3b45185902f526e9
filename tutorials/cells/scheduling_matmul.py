"""Notebook 2, scheduling a matrix multiply step by step: loop order, tiling, vectors,
a register tile (cache_write + compute_at + unroll), packing, threads; a GFLOP/s chart."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 2. Scheduling a matrix multiply, step by step

    This is the classic lesson of schedule languages (Halide, TVM): one algorithm,
    `C = A @ B`, and a sequence of schedules, each changing one thing about *how*
    it runs. After each step we look at the loops, check the result, and measure
    GFLOP/s (a multiply and an add per `(i, j, k)`: `2 N^3` operations per call).

    The steps: naive loops; a better loop order; tiling; vectors; accumulating a
    tile of `C` in registers (`cache_write` + `compute_at` + `unroll`); packing `B`;
    parallel threads. At the end, a bar chart puts every step next to NumPy (which
    calls an optimized BLAS library) and next to the machine's peak, measured here.
    """),
    code("""
    %matplotlib inline
    import os
    import statistics
    import time

    import numpy as np

    import tdsl as td
    import tdsl.viz  # pictures (matplotlib)

    print("CPU cores:", os.cpu_count())
    """),
    md("""
    ## 1. The machine's peak

    Before optimizing, find the ceiling. `td.viz.measure_machine()` measures it with
    two tdsl kernels: a register-tiled matrix multiply small enough to stay in cache,
    on all cores (the attainable GFLOP/s), and a STREAM-like `x + 3 y` on arrays much
    larger than the caches (the memory bandwidth). A matrix multiply does `2 N^3`
    operations on `3 N^2` numbers, hundreds per number, so its ceiling is the GFLOP/s.
    """),
    code("""
    machine = td.viz.measure_machine()
    peak = machine["peak_gflops"]
    print(f"peak: {peak:.0f} GFLOP/s on {os.cpu_count()} cores,  "
          f"memory bandwidth: {machine['bandwidth_gbs']:.0f} GB/s")
    """),
    md("""
    ## 2. The algorithm, and a way to measure

    The matrices are `N x N` float32 with `N = 1024` (4 MiB each: more than the L2
    cache of one core, less than a typical L3). The sizes are constants here, so the
    compiler knows every trip count. `measure` builds a schedule, checks the result
    against NumPy and records GFLOP/s under a name for the chart at the end.
    """),
    code("""
    N = 1024
    A = td.placeholder((N, N), name="A")
    B = td.placeholder((N, N), name="B")
    k = td.reduce_axis(N, name="k")
    C = td.compute((N, N), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")

    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, N), dtype=np.float32)
    b = rng.standard_normal((N, N), dtype=np.float32)
    c = np.empty((N, N), dtype=np.float32)
    expected = a @ b
    FLOPS = 2 * N ** 3
    results, seconds, modules = {}, {}, {}


    def measure(name, schedule, args, repeat=3):
        mod = modules[name] = td.build(schedule, args)
        c.fill(np.nan)
        mod(a, b, c)
        assert np.allclose(c, expected, rtol=1e-3, atol=1e-3), f"{name}: wrong result"
        t = mod.time(a, b, c, repeat=repeat).median
        seconds[name], results[name] = t, FLOPS / t / 1e9
        print(f"{name}: {t * 1e3:.1f} ms, {results[name]:.1f} GFLOP/s")
    """),
    md("""
    ## 3. Naive: the loops as the algorithm reads

    The default schedule runs `i`, then `j`, then the reduction `k` innermost. The
    innermost loop reads `B[k, j]` down a *column*: consecutive iterations are
    `N` floats (4 KiB) apart, so each one touches a new cache line and uses 4 of its
    64 bytes, and a single `C[i, j]` accumulates in a chain of dependent additions.
    """),
    code("""
    s = td.create_schedule(C)
    print(td.lower(s, [A, B, C]))
    measure("naive (i, j, k)", s, [A, B, C], repeat=1)
    """),
    md("""
    ## 4. Loop order: `i, k, j`

    Swap `j` and `k`. The innermost loop now runs along a *row* of `B` and a row of
    `C`: unit stride, every byte of every cache line used, and independent iterations
    that gcc can vectorize on its own. The schedule is legal because the updates of
    each `C[i, j]` still happen in the order of `k`; tdsl proved it with isl before
    accepting `reorder` (notebook 3 shows what happens when a reorder is not legal).
    """),
    code("""
    s = td.create_schedule(C)
    i, j = C.op.axis
    s[C].reorder(i, k, j)
    print(td.lower(s, [A, B, C]))
    measure("loop order (i, k, j)", s, [A, B, C])
    """),
    md("""
    ## 5. Tiling

    Tiling computes `C` one block at a time so that the data a block needs stays in
    cache while it is reused. `tile(i, j, 16, 256)` splits `i` and `j` and puts the
    two outer loops first; splitting `k` by 64 makes each step read a 64 x 256 block
    of `B` (64 KiB, which fits in L2) that all 16 rows of the tile reuse.

    Compare the bar with the previous one. If tiling alone changes little, memory is
    not what limits this loop: every multiply-add also *loads* `C[i, j]` and *stores*
    it back, and the core can only do so many loads and stores per cycle. Removing
    that traffic (step 7) needs a tile, which is why we tile first.
    """),
    code("""
    s = td.create_schedule(C)
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, 16, 256)
    ko, ki = s[C].split(k, factor=64)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    print(td.lower(s, [A, B, C]))
    measure("tiled 16x256, k by 64", s, [A, B, C])
    """),
    md("""
    ## 6. Vectorizing

    `vectorize(ji)` makes the innermost loop SIMD lanes explicitly. The C backend
    writes it with the CPU's vector types (8 floats per instruction with AVX2, 16 with
    AVX-512), visible in the source below as `tdsl_f32x8` or `tdsl_f32x16`. gcc often vectorizes a loop this
    simple by itself, so the change may be small; `vectorize` makes it certain and
    is what the register tile of the next step is built from.
    """),
    code("""
    s[C].vectorize(ji)
    measure("+ vectorize j", s, [A, B, C])
    source = modules["+ vectorize j"].source
    print(next(line.strip() for line in source[source.index("int kernel("):].splitlines()
               if f"tdsl_f32x{td.target().lanes()}" in line and "B[" in line))
    """),
    md("""
    ## 7. Local accumulation: a tile of `C` in registers

    `cache_write(C, "local")` makes a new stage `C_local` that does the reduction
    into a local buffer; `C` itself becomes a copy of it. Computing
    `C_local` at `jo` (`compute_at`) gives each 8 x 32 tile of `C` its own private
    8 x 32 accumulator. Inside, `k` goes outermost, the 8 rows are unrolled and the 32
    columns vectorized: 16 vector registers of accumulators. Each step of `k` now
    loads two vectors of `B` and 8 numbers of `A` and does 16 vector multiply-adds,
    and `C` is written once, at the end, instead of `N` times.
    """),
    code("""
    s = td.create_schedule(C)
    CL = s.cache_write(C, "local")
    i, j = C.op.axis
    io, jo, _, ji = s[C].tile(i, j, 8, 32)
    s[CL].compute_at(s[C], jo)
    ic, jc = CL.op.axis
    (kc,) = CL.op.reduce_axis
    s[CL].reorder(kc, ic, jc)
    s[CL].unroll(ic)
    s[CL].vectorize(jc)
    s[C].vectorize(ji)
    print(td.lower(s, [A, B, C]))
    measure("+ register tile 8x32", s, [A, B, C])
    """),
    md("""
    ## 8. Packing `B`

    Each step of `k` reads 32 consecutive floats of a row of `B`, then jumps `N`
    floats to the next row: with `N` a power of two, those rows fall in the same few
    cache sets and on different memory pages. Packing re-lays `B` out as panels,
    `Bp[j // 32, k, j % 32]`, so a tile's whole `k` loop reads one contiguous stream.
    Packing is a change of the *algorithm* (a new stage, `Bp`); the schedule of `C`
    is the same as before, and `Bp` gets vectorized too.
    """),
    code("""
    def packed_matmul():
        A = td.placeholder((N, N), name="A")
        B = td.placeholder((N, N), name="B")
        k = td.reduce_axis(N, name="k")
        Bp = td.compute((N // 32, N, 32), lambda jo, kk, ji: B[kk, jo * 32 + ji], name="Bp")
        C = td.compute((N, N), lambda i, j: td.sum(A[i, k] * Bp[j // 32, k, j % 32], axis=k),
                       name="C")
        s = td.create_schedule(C)
        CL = s.cache_write(C, "local")
        i, j = C.op.axis
        io, jo, _, ji = s[C].tile(i, j, 8, 32)
        s[CL].compute_at(s[C], jo)
        ic, jc = CL.op.axis
        (kc,) = CL.op.reduce_axis
        s[CL].reorder(kc, ic, jc)
        s[CL].unroll(ic)
        s[CL].vectorize(jc)
        s[C].vectorize(ji)
        s[Bp].vectorize(Bp.op.axis[2])
        return s, [A, B, C], (C, Bp, io)


    s, args, (C2, Bp, io) = packed_matmul()
    measure("+ pack B", s, args)
    """),
    md("""
    ## 9. Parallel

    Finally, use every core: the tiles of `C` are independent, so the outer loop
    over rows of tiles (`io`) can run on parallel threads (OpenMP), and so can the
    packing. isl checks that `io` carries no dependence before accepting it. With
    `P` cores the best hope is a `P`-fold speed-up; if another program is busy on
    one of the cores, every parallel loop waits for the slowest thread and the gain
    can vanish.
    """),
    code("""
    s[C2].parallel(io)
    s[Bp].parallel(Bp.op.axis[0])
    print(s)
    measure(f"+ parallel ({os.cpu_count()} cores)", s, args, repeat=5)
    """),
    md("""
    ## 10. Every step, next to NumPy and the peak

    NumPy's `a @ b` calls an optimized BLAS (OpenBLAS or MKL), which packs both
    matrices, tiles for every cache level and uses all cores. The dashed line is
    the peak measured in section 1. Each bar is one of the schedules above,
    measured in this notebook on this machine.
    """),
    code(NP_TIME),
    code("""
    t_numpy = np_time(lambda: a @ b, repeat=5)
    seconds["NumPy (BLAS)"], results["NumPy (BLAS)"] = t_numpy, FLOPS / t_numpy / 1e9
    if max(results.values()) > 1.1 * peak:
        print(f"Note: a kernel beat the peak measured in section 1 ({peak:.0f} GFLOP/s): the "
              "machine was busier then (another program on a core). Rerun section 1.")
    td.viz.bars(results, unit="GFLOP/s", peak=peak,
                title=f"C = A @ B, N = {N}, float32: each schedule step")
    """),
    md("""
    ## 11. Check against NumPy, and the timing table

    The final schedule, once more against NumPy, then the numbers behind the chart.
    Where did the time go? Read the table from the top: the loop order fixed the
    memory access pattern, the register tile removed the loads and stores of `C`,
    packing made the reads of `B` contiguous, and threads shared the rest among the
    cores.
    """),
    code("""
    c.fill(np.nan)
    modules[f"+ parallel ({os.cpu_count()} cores)"](a, b, c)
    print("max |C - A @ B| =", float(np.abs(c - expected).max()))
    assert np.allclose(c, expected, rtol=1e-3, atol=1e-3)
    naive = seconds["naive (i, j, k)"]
    print_table(("schedule", "ms", "GFLOP/s", "% of peak", "x naive"), [
        (name, f"{seconds[name] * 1e3:.1f}", f"{g:.1f}", f"{100 * g / peak:.0f}",
         f"{naive / seconds[name]:.1f}") for name, g in results.items()])
    """),
    md("""
    **Try it.** Change the register tile: 4 x 32, 8 x 16, 12 x 32. How many vector
    registers does each need (rows x columns / 16), and what happens when they no
    longer fit in the register file (32 vector registers with AVX-512, 16 with AVX2)?
    Then split `kc` by 4 and unroll it, and see whether the unrolled `k` helps.
    """),
]
