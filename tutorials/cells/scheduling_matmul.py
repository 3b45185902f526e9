"""Notebook 2, scheduling a matrix multiply step by step: loop order, tiling, vectors,
a register tile (cache_write + compute_at + unroll), packing, threads; a GFLOP/s chart."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 2. Scheduling a matrix multiply, step by step

    *Builds on notebook 1 (algorithms, `td.lower`, `td.build`) and notebook 1b (each
    primitive on its own: split, reorder, tile, unroll, vectorize, parallel).*

    This is the classic lesson of schedule languages (Halide, TVM): one algorithm,
    `C = A @ B`, and a sequence of schedules, each changing one thing about *how*
    it runs. After each step we look at the loops, check the result, and measure
    GFLOP/s (a multiply and an add per `(i, j, k)`: `2 N^3` operations per call).

    The steps: naive loops; a better loop order; tiling; vectors; accumulating a
    tile of `C` in registers (`cache_write` + `compute_at` + `unroll`); packing `B`;
    parallel threads. At the end, a bar chart puts every step next to NumPy (which
    calls an optimized BLAS library) and next to the machine's peak, measured here.

    Every number below is measured on the machine that runs the notebook, and the
    shapes that depend on the CPU (the width of a vector, the size of the register
    tile) are read from `td.target()`: the notebook is true on an AVX2 laptop and on
    an AVX-512 server alike. The next cell says which CPU this copy ran on.
    """),
    code("""
    %matplotlib inline
    import os
    import statistics
    import time

    import numpy as np

    import tdsl as td
    import tdsl.viz  # pictures (matplotlib)

    target = td.target()
    LANES = target.lanes("float32")            # floats per vector: 8 on AVX2, 16 on AVX-512
    print("CPU:", td.machine.describe())
    print(f"{LANES} float32 lanes per vector, {target.vector_registers} vector registers")
    """),
    md("""
    ## 1. The machine's peak

    Before optimizing, find the ceiling. `td.viz.measure_machine()` measures it with
    two small probes written in C, not with tdsl kernels (a tdsl kernel used as the
    "peak" could be beaten by a better tdsl kernel): every core runs independent
    chains of fused multiply-adds (FMA) on full vectors of this CPU, as many chains as
    it takes to hide the FMA latency, which is the most floating-point work the cores
    can do; and a STREAM-like `a = b + 3 c` on arrays much larger than the caches
    measures the memory bandwidth. A matrix multiply does `2 N^3` operations on
    `3 N^2` numbers, hundreds per number, so its ceiling is the GFLOP/s.
    """),
    code("""
    machine = td.viz.measure_machine()
    peak = machine["peak_gflops"]
    print(f"peak: {peak:.0f} GFLOP/s ({machine['threads']} threads x {machine['lanes']}-lane "
          f"FMAs), memory bandwidth: {machine['bandwidth_gbs']:.0f} GB/s")
    """),
    md("""
    ## 2. The algorithm, and a way to measure

    The matrices are `N x N` float32 with `N = 1024` (4 MiB each: more than the L2
    cache of one core, less than a typical L3). The sizes are constants here, so the
    compiler knows every trip count. `matmul(n)` writes the algorithm for any `n`, so
    that each schedule below can also be applied to a small copy and *counted* with
    isl (section 7). `measure` builds a schedule, checks the result against NumPy
    and records GFLOP/s under a name for the chart at the end.
    """),
    code("""
    N = 1024


    def matmul(n):
        A = td.placeholder((n, n), name="A")
        B = td.placeholder((n, n), name="B")
        k = td.reduce_axis(n, name="k")
        C = td.compute((n, n), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
        return A, B, C, k


    A, B, C, k = matmul(N)
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
        before = list(seconds.values())[-1] if seconds else None
        seconds[name], results[name] = t, FLOPS / t / 1e9
        print(f"{name}: {t * 1e3:.1f} ms, {results[name]:.1f} GFLOP/s" +
              (f", {before / t:.2f}x the previous step" if before else ""))
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
    each `C[i, j]` still happen one after another, only in a different order of the
    other loops; tdsl proved it with isl before accepting `reorder` (notebook 3 shows
    what happens when a reorder is not legal). Expect this step to be many times
    faster than the naive loops.
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

    Compare the time with the previous step's. If tiling alone changes little, memory
    is not what limits this loop: every multiply-add also *loads* `C[i, j]` and
    *stores* it back, and the core can only do so many loads and stores per cycle.
    Removing that traffic (step 7) needs a tile, which is why we tile first.
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
    writes it with the CPU's vector types, 8 floats per instruction with AVX2
    (`tdsl_f32x8`) and 16 with AVX-512 (`tdsl_f32x16`); the line printed below is from
    this machine's code. gcc often vectorizes a loop this simple by itself, so the
    change may be small; `vectorize` makes it certain and is what the register tile
    of the next step is built from.
    """),
    code("""
    s[C].vectorize(ji)
    measure("+ vectorize j", s, [A, B, C])
    source = modules["+ vectorize j"].source
    print(next(line.strip() for line in source[source.index("int kernel("):].splitlines()
               if f"tdsl_f32x{LANES}" in line and "B[" in line))
    """),
    md("""
    ## 7. Local accumulation: a tile of `C` in registers

    Two primitives you have not used yet. `cache_write(C, "local")` makes a new stage
    `C_local` that does the reduction into a small local buffer; `C` itself becomes
    a copy of it. `compute_at(s[C], jo)` says *where* that stage runs: inside loop `jo`
    of `C`, once per tile, computing just the part that tile needs, so each
    `ROWS x COLS` tile of `C` gets its own private accumulator (notebook 4 is about
    `compute_at` and the other placements of a stage).

    Inside, `k` goes outermost, the rows are unrolled and the columns vectorized. The
    tile is chosen to fit the vector registers (`td.examples.register_tile_shape`):
    `COLS` is two vectors and `ROWS` as many rows as leave room for the two vectors of
    `B` and the broadcast element of `A`: 6 x 16 on AVX2 (12 accumulators of 16 `ymm`
    registers), 8 x 32 on AVX-512 (16 of 32 `zmm`). Each step of `k` then loads two
    vectors of `B` and `ROWS` numbers of `A` and does `2 ROWS` vector FMAs without
    touching memory for `C`, which is written once, at the end, instead of `N` times.
    (`N = 1024` is not a multiple of 6: on AVX2 the last tile of rows has 4, handled by
    leftover loops as in notebook 1b.)
    """),
    code("""
    ROWS, COLS = td.examples.register_tile_shape()
    registers = ROWS * COLS // LANES + COLS // LANES + 1     # accumulators, B, broadcast A
    print(f"register tile {ROWS} x {COLS}: {registers} of {target.vector_registers} "
          "vector registers")
    assert registers <= target.vector_registers, "the tile would spill to the stack"


    def register_tile(A, B, C, k, rows=ROWS, cols=COLS):
        s = td.create_schedule(C)
        CL = s.cache_write(C, "local")
        i, j = C.op.axis
        io, jo, _, ji = s[C].tile(i, j, rows, cols)
        s[CL].compute_at(s[C], jo)
        ic, jc = CL.op.axis
        (kc,) = CL.op.reduce_axis
        s[CL].reorder(kc, ic, jc)
        s[CL].unroll(ic)
        s[CL].vectorize(jc)
        s[C].vectorize(ji)
        return s


    s = register_tile(A, B, C, k)
    print(td.lower(s, [A, B, C]))
    measure(f"+ register tile {ROWS}x{COLS}", s, [A, B, C])
    """),
    md("""
    The claim "C is written once instead of `N` times" can be *counted* rather than
    believed: `td.poly.count(s, sizes, writes="C")` enumerates with isl the instances
    of every statement that stores to `C`, here on a 48 x 48 copy of the problem. The
    loop-order schedule stores `C` at every update (`n^3`, plus the `n^2` zeros of
    its init); the register tile stores it `n^2` times, in the final copy.
    """),
    code("""
    n = 48
    small = matmul(n)
    s_order = td.create_schedule(small[2])
    s_order[small[2]].reorder(small[2].op.axis[0], small[3], small[2].op.axis[1])
    stores_order = td.poly.count(s_order, {}, writes="C")
    stores_tile = td.poly.count(register_tile(*small), {}, writes="C")
    print(f"stores to C at n = {n}: loop order {stores_order}, register tile {stores_tile}")
    assert stores_order == n ** 3 + n ** 2 and stores_tile == n ** 2
    """),
    md("""
    ## 8. Packing `B`

    Each step of `k` reads `COLS` consecutive floats of a row of `B`, then jumps `N`
    floats to the next row: with `N` a power of two, those rows fall in the same few
    cache sets and on different memory pages. Packing re-lays `B` out as panels,
    `Bp[j // COLS, k, j % COLS]`, so a tile's whole `k` loop reads one contiguous
    stream. Packing is a change of the *algorithm* (a new stage, `Bp`); the schedule
    of `C` is the same as before, and `Bp` gets vectorized too.
    """),
    code("""
    def packed_matmul():
        A = td.placeholder((N, N), name="A")
        B = td.placeholder((N, N), name="B")
        k = td.reduce_axis(N, name="k")
        Bp = td.compute((N // COLS, N, COLS), lambda jo, kk, ji: B[kk, jo * COLS + ji],
                        name="Bp")
        C = td.compute((N, N), lambda i, j: td.sum(A[i, k] * Bp[j // COLS, k, j % COLS],
                                                   axis=k), name="C")
        s = register_tile(A, B, C, k)
        s[Bp].vectorize(Bp.op.axis[2])
        io = s[C].loops[0]                   # the loop over rows of tiles
        return s, [A, B, C], (C, Bp, io)


    s, args, (C2, Bp, io) = packed_matmul()
    measure("+ pack B", s, args)
    """),
    md("""
    ## 9. Parallel

    Finally, use every core: the tiles of `C` are independent, so the outer loop
    over rows of tiles (`io`) can run on parallel threads (OpenMP), and so can the
    packing. As notebook 1b said, `parallel` is accepted only for a loop that carries
    no dependence (no iteration uses what another writes); `td.poly.explain` says so
    for `io`, and notebook 3 shows how it is decided. With `P` cores the best hope is a
    `P`-fold speed-up; if another program is busy on one of the cores, every parallel
    loop waits for the slowest thread and the gain can vanish.
    """),
    code("""
    explanation = td.poly.explain(s[C2], io)
    print(explanation)
    assert "can run in parallel" in explanation
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
                title=f"C = A @ B, N = {N}, float32: each schedule step\\n{td.machine.describe()}")
    """),
    md("""
    ## 11. Check against NumPy, and the timing table

    The final schedule, once more against NumPy, then the numbers behind the chart,
    with each step's speed-up over the one before it. Read the table from the top:
    the loop order fixed the memory access pattern, the register tile removed the
    loads and stores of `C` (counted in section 7), packing made the reads of `B`
    contiguous, and threads shared the rest among the cores. Timings are noisy, and a
    step that does not pay on this machine is listed below the table rather than
    hidden: the counts are the claims, the times are what they bought here.
    """),
    code("""
    c.fill(np.nan)
    modules[f"+ parallel ({os.cpu_count()} cores)"](a, b, c)
    print("max |C - A @ B| =", float(np.abs(c - expected).max()))
    assert np.allclose(c, expected, rtol=1e-3, atol=1e-3)
    print(td.machine.describe(), "| load average:", os.getloadavg()[0])
    names = list(results)
    naive = seconds[names[0]]
    print_table(("schedule", "ms", "GFLOP/s", "% of peak", "x naive", "x previous"), [
        (name, f"{seconds[name] * 1e3:.1f}", f"{results[name]:.1f}",
         f"{100 * results[name] / peak:.0f}", f"{naive / seconds[name]:.1f}",
         f"{seconds[names[n - 1]] / seconds[name]:.2f}" if 0 < n < len(names) - 1 else "")
        for n, name in enumerate(names)])
    slower = [name for n, name in enumerate(names[1:-1], 1)
              if seconds[name] > 1.1 * seconds[names[n - 1]]]
    if slower:
        print("slower than the step before it here:", ", ".join(slower))
    """),
    md("""
    **Try it.** Change the register tile: for instance `ROWS` = 4, 8 and 12 with `COLS`
    = two vectors, and 4 x `4 * LANES`. Each needs `ROWS * COLS / LANES` accumulator
    registers, plus `COLS / LANES` for the vectors of `B` and 1 for the broadcast
    element of `A` (`LANES` = 8 with AVX2, 16 with AVX-512). Predict which fit in
    `target.vector_registers` (16 with AVX2, 32 with AVX-512), then measure them with
    `measure(name, register_tile(A, B, C, k, rows, cols), [A, B, C])` and look at what
    happens when they do not fit (gcc spills accumulators to the stack). Check each
    tile with `td.testing.assert_equivalent(register_tile(*small, rows, cols),
    list(small[:3]))` before timing it.
    Solution: `tutorials/solutions/02_scheduling_matmul.py`.
    """),
]
