"""Notebook 5, CUDA schedules: blocks and threads, shared-memory tiles and barriers,
local accumulators; on the CPU emulator when there is no GPU."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 5. CUDA schedules: blocks, threads, shared memory

    *Builds on notebook 2 (tiles, `cache_write` + `compute_at` register tiles) and
    notebook 3 (why a loop that carries a dependence cannot be parallel). No GPU
    needed.*

    The same algorithms compile to CUDA when their loops are mapped to the GPU's
    grid: `bind(loop, "blockIdx.x")` makes each iteration a *thread block*,
    `bind(loop, "threadIdx.x")` a *thread* within the block. On top of that, a
    stage can be staged in the block's fast **shared memory** (`cache_read(...,
    "shared")`), and tdsl inserts the `__syncthreads()` barriers that shared data
    needs. Each thread can keep **local** accumulators in registers
    (`cache_write(..., "local")`).

    **No GPU needed.** Where there is no usable GPU, `td.build(...,
    target="cuda", emulate=True)` runs the very same CUDA source on a CPU emulator
    (each block's threads in turn, up to each barrier). The emulator is for
    *correctness*, not speed: its timings say nothing about a GPU. The next cell
    says which one this notebook is using.
    """),
    code("""
    import statistics
    import time
    import warnings

    import numpy as np

    import tdsl as td

    GPU, why, NVCC = td.cuda_status()       # a GPU here? why not? where is nvcc?
    EMULATE = not GPU
    if GPU:
        print("Running on the GPU:", why)
    else:
        print("No usable GPU here (" + why + ").")
        print("Every kernel below runs on the CPU EMULATOR: results are checked, "
              "timings are not GPU timings.")
    print("CPU (the emulator's, and NumPy's):", td.machine.describe())
    print("nvcc:", NVCC or "not found (the CUDA source is still generated and emulated; "
                            "register and shared-memory reports need nvcc)")


    def build(schedule, args):
        \"\"\"A CUDA module: on the GPU if there is one, else on the emulator.\"\"\"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # "nvcc not found" was said above
            return td.build(schedule, args, target="cuda", emulate=EMULATE)


    def kernel_source(mod):
        \"\"\"The CUDA source without the prelude of helper functions.\"\"\"
        return mod.source[mod.source.index("__global__"):]
    """),
    md("""
    ## 1. Blocks and threads

    A GPU kernel is a grid of blocks of threads. Split the loop of an element-wise
    operation by 128 and bind the outer part to `blockIdx.x`, the inner to
    `threadIdx.x`: 128 threads per block, one element each, as many blocks as
    needed. In the lowered code, the bound loops are marked; in the CUDA source
    they have become `blockIdx.x` and `threadIdx.x`, with a guard for the last,
    partial block.
    """),
    code("""
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    B = td.compute((n,), lambda i: A[i] * 2.0 + 1.0, name="B")
    s = td.create_schedule(B)
    bx, tx = s[B].split(B.op.axis[0], factor=128)
    s[B].bind(bx, "blockIdx.x")
    s[B].bind(tx, "threadIdx.x")
    print(td.lower(s, [A, B]))
    mod = build(s, [A, B])
    print(kernel_source(mod))
    """),
    md("""
    The grid is sized at each call from the symbolic `n`: 1000 elements need 8 blocks
    of 128 threads.
    """),
    code("""
    print(mod.plan.launches([1000]))
    a = np.random.rand(1000).astype(np.float32)
    b = np.empty_like(a)
    mod(a, b)
    print("equal to NumPy:", np.allclose(b, a * 2 + 1))
    """),
    md("""
    ## 2. A refused schedule: a reduction across threads

    Threads of a block run at the same time, so binding a loop to threads is like
    `parallel`: it must carry no dependence. The reduction axis of a row sum does
    (every step updates the same `S[i]`), and the message says so, with the way out
    (`rfactor`, as in notebook 3).
    """),
    code("""
    m = td.var("m")
    X = td.placeholder((n, m), name="X")
    k = td.reduce_axis(m, name="k")
    S = td.compute((n,), lambda i: td.sum(X[i, k], axis=k), name="S")
    s_sum = td.create_schedule(S)
    s_sum[S].bind(S.op.axis[0], "blockIdx.x")
    try:
        s_sum[S].bind(k, "threadIdx.x")
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    Following the advice: split `k` by 64 and factor over the inner piece. Each of
    64 threads sums a strided part of the row into `S_rf` (which lives in shared
    memory, since it is computed per block and read by other threads), and the
    block then adds the 64 partial sums.
    """),
    code("""
    s_sum = td.create_schedule(S)
    _, k_in = s_sum[S].split(k, factor=64)
    SF = s_sum.rfactor(S, k_in)
    s_sum[S].bind(S.op.axis[0], "blockIdx.x")
    s_sum[SF].compute_at(s_sum[S], S.op.axis[0])
    s_sum[SF].bind(SF.op.axis[0], "threadIdx.x")
    mod_sum = build(s_sum, [X, S])
    print([line.strip() for line in mod_sum.source.splitlines() if "__shared__" in line])
    x = np.random.rand(100, 1000).astype(np.float32)
    out = np.empty(100, np.float32)
    mod_sum(x, out)
    print("equal to NumPy:", np.allclose(out, x.sum(axis=1), rtol=1e-4))
    """),
    md("""
    ## 3. Matrix multiply: one thread per output

    The starting point on a GPU: 16 x 16 tiles of `C`, one tile per block, one output
    per thread, each thread running the whole `k` loop. It is correct, but every
    thread reads its row of `A` and column of `B` from global memory, and the 16
    threads of a row of the block read the same values of `A` again and again.
    """),
    code("""
    def matmul():
        M, N, K = td.var("M"), td.var("N"), td.var("K")
        A = td.placeholder((M, K), name="A")
        B = td.placeholder((K, N), name="B")
        k = td.reduce_axis(K, name="k")
        C = td.compute((M, N), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
        return A, B, C, k


    A, B, C, k = matmul()
    s_simple = td.create_schedule(C)
    io, jo, ii, ji = s_simple[C].tile(*C.op.axis, 16, 16)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                      (ji, "threadIdx.x")):
        s_simple[C].bind(axis, tag)
    print(td.lower(s_simple, [A, B, C]))
    mod_simple = build(s_simple, [A, B, C])
    """),
    md("""
    ## 4. Shared-memory tiling and synchronization

    The classic fix: at each step of `k` by 16, the block's 256 threads first copy a
    16 x 16 tile of `A` and one of `B` into shared memory (one element each), then
    every thread reads the 16 values of its row and column from there. The
    schedule says so with `cache_read(A, "shared", [CC])` computed at `k_outer` and
    bound to the threads; the accumulation happens in a `local` stage, one register
    per thread.
    """),
    code("""
    A, B, C, k = matmul()
    s_sh = td.create_schedule(C)
    CC = s_sh.cache_write(C, "local")               # the accumulator, in registers
    AS = s_sh.cache_read(A, "shared", [CC])         # tiles of A and B, in shared memory
    BS = s_sh.cache_read(B, "shared", [CC])
    io, jo, ii, ji = s_sh[C].tile(*C.op.axis, 16, 16)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                      (ji, "threadIdx.x")):
        s_sh[C].bind(axis, tag)
    s_sh[CC].compute_at(s_sh[C], jo)                # per block
    ic, jc = CC.op.axis
    ko, ki = s_sh[CC].split(CC.op.reduce_axis[0], factor=16)
    s_sh[CC].reorder(ko, ic, jc, ki)
    s_sh[CC].bind(ic, "threadIdx.y")
    s_sh[CC].bind(jc, "threadIdx.x")
    for stage in (AS, BS):
        s_sh[stage].compute_at(s_sh[CC], ko)        # a new tile at each step of k
        s_sh[stage].bind(stage.op.axis[0], "threadIdx.y")
        s_sh[stage].bind(stage.op.axis[1], "threadIdx.x")
    print(td.lower(s_sh, [A, B, C]))
    """),
    md("""
    Threads that read what *other* threads wrote must wait until it is written. In
    the CUDA source, tdsl has put two barriers in the `k_outer` loop: one after the
    copies (the tile is ready before anyone reads it) and one after the
    multiply-adds (nobody overwrites the tile while a slower thread still reads the
    old one). Remove either and the result is wrong; tdsl's tests check exactly
    that on the emulator.
    """),
    code("""
    mod_sh = build(s_sh, [A, B, C])
    src = kernel_source(mod_sh)
    keep = ("__shared__", "for (int64_t k_outer", "_shared[(", "__syncthreads",
            "C_local[0L] = (")
    print("\\n".join(line for line in src.splitlines() if any(key in line for key in keep)))
    print("__syncthreads() calls:", src.count("__syncthreads()"))
    """),
    md("""
    When nvcc is installed, tdsl compiles every kernel with it (even when emulating)
    and reports what `ptxas` says each one uses: registers per thread, shared memory
    per block (two 16 x 16 float tiles: 2048 bytes), spills to local memory (there
    should be none) and `barriers`, the number of hardware barrier *resources* used
    (both `__syncthreads()` use barrier 0, so it says 1).
    """),
    code("""
    if mod_sh.resources is None:
        print("nvcc not found: no resource report (the emulator ran the source anyway)")
    else:
        for name, r in mod_sh.resources.items():
            print(name, r)
    """),
    md("""
    ## 5. Local accumulators: a register tile per thread

    One output per thread does 2 shared-memory loads per multiply-add. Give each
    thread a 4 x 4 block of outputs instead: it loads 4 values of `A` and 4 of `B`
    per step and does 16 multiply-adds with them, from 16 accumulators in
    registers (`float C_local[16]`, its loops unrolled so that the indices are
    constants). A block of 16 x 16 threads now covers a 64 x 64 tile of `C`.
    """),
    code("""
    A, B, C, k = matmul()
    s_reg = td.create_schedule(C)
    CC = s_reg.cache_write(C, "local")
    AS = s_reg.cache_read(A, "shared", [CC])
    BS = s_reg.cache_read(B, "shared", [CC])
    io, jo, ii, ji = s_reg[C].tile(*C.op.axis, 64, 64)
    iio, iii = s_reg[C].split(ii, factor=4)
    jio, jii = s_reg[C].split(ji, factor=4)
    s_reg[C].reorder(io, jo, iio, jio, iii, jii)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (iio, "threadIdx.y"),
                      (jio, "threadIdx.x")):
        s_reg[C].bind(axis, tag)
    s_reg[CC].compute_at(s_reg[C], jo)
    ko, ki = s_reg[CC].split(CC.op.reduce_axis[0], factor=16)
    ico, ici = s_reg[CC].split(CC.op.axis[0], factor=4)
    jco, jci = s_reg[CC].split(CC.op.axis[1], factor=4)
    s_reg[CC].reorder(ko, ico, jco, ki, ici, jci)
    s_reg[CC].bind(ico, "threadIdx.y")
    s_reg[CC].bind(jco, "threadIdx.x")
    s_reg[CC].unroll(ici)
    s_reg[CC].unroll(jci)
    for stage in (AS, BS):                  # 64 x 16 and 16 x 64 tiles, 16 x 16 threads
        s_reg[stage].compute_at(s_reg[CC], ko)
        rows, cols = stage.op.axis
        ro, ri = s_reg[stage].split(rows, factor=16)
        co, ci = s_reg[stage].split(cols, factor=16)
        s_reg[stage].reorder(ro, co, ri, ci)
        s_reg[stage].bind(ri, "threadIdx.y")
        s_reg[stage].bind(ci, "threadIdx.x")
    mod_reg = build(s_reg, [A, B, C])
    src = kernel_source(mod_reg)
    print("\\n".join(line.strip() for line in src.splitlines()
                    if "__shared__" in line or "C_local[16]" in line))
    if mod_reg.resources is not None:
        print(mod_reg.resources)
    """),
    md("""
    ## 6. A refused build: too many threads per block

    Some limits are the hardware's, not isl's, and they are checked when the kernel
    is built: a block has at most 1024 threads. Binding a 32 x 64 tile to threads
    asks for 2048.
    """),
    code("""
    A, B, C, k = matmul()
    s_big = td.create_schedule(C)
    io, jo, ii, ji = s_big[C].tile(*C.op.axis, 32, 64)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                      (ji, "threadIdx.x")):
        s_big[C].bind(axis, tag)
    try:
        build(s_big, [A, B, C])
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    ## 7. Check against NumPy, and time it

    All three matrix multiplies on ragged sizes (not multiples of the tiles, so the
    guards of partial blocks are exercised), then a small timing table. On the
    emulator, these times measure a CPU running one GPU thread after another (and
    switching between threads at every barrier, which makes the shared-memory
    version look *slower*): they show that the emulator is slow, nothing more. On a
    GPU they are real.
    """),
    code(NP_TIME),
    code("""
    rng = np.random.default_rng(0)
    mods = {"one thread per output": mod_simple,
            "shared-memory tiles": mod_sh, "shared + 4x4 register tile": mod_reg}
    for shape in ((100, 37, 53), (17, 33, 16)):
        M_, N_, K_ = shape
        a = rng.standard_normal((M_, K_), dtype=np.float32)
        b = rng.standard_normal((K_, N_), dtype=np.float32)
        for name, mod in mods.items():
            c = np.full((M_, N_), np.nan, dtype=np.float32)
            mod(a, b, c)
            assert np.allclose(c, a @ b, rtol=1e-4, atol=1e-4), (name, shape)
    print("every CUDA matmul agrees with NumPy")

    size = 128
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty((size, size), dtype=np.float32)
    where = "GPU" if GPU else "CPU emulator"
    rows = [(f"{name} ({where})", f"{mod.time(a, b, c, repeat=2).median * 1e3:.1f}")
            for name, mod in mods.items()]
    rows.append(("NumPy on the CPU", f"{np_time(lambda: a @ b) * 1e3:.3f}"))
    print_table((f"C = A @ B, {size}^3", "ms"), rows)
    """),
    md("""
    **What to remember.** `bind` maps loops to blocks and threads and is checked like
    `parallel`; `cache_read(..., "shared")` + `compute_at` + `bind` stages a tile in
    shared memory, and tdsl places the barriers; `cache_write(..., "local")` gives
    each thread accumulators in registers. The emulator makes all of this testable
    on any machine; performance needs a GPU.

    **Try it.** (a) Compute the shared tiles at `ki` instead of `ko`: what does
    tdsl say, and why would it be a bad idea anyway (how many barriers per step of
    `k`)? (b) Change section 5's register tile to 8 x 8 outputs per thread (a block
    of 16 x 16 threads then covers 128 x 128 of `C`). Check it on the emulator: it
    must agree with `a @ b` on ragged sizes, e.g. `(100, 37, 53)`, and the kernel
    must declare `float C_local[64]`. With nvcc, read the registers per thread in
    `mod.resources`. Solution: `tutorials/solutions/05_cuda.py`.
    """),
]
