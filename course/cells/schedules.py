"""Assignment 2, schedules: make matmul and conv2d fast. Graded with td.testing.grade on
legality, correctness at ragged sizes and machine-independent counts; timing shown only."""

from . import code, md, solution, tests

CELLS = [
    md("""
    # Assignment 2: fast schedules

    The algorithms are given: a matrix multiply and a 3 x 3 convolution, with symbolic
    sizes. Your job is the *schedule*: loop order, tiles, vectors, threads. tdsl proves
    every primitive legal with isl when you call it, so an illegal schedule fails at
    the call, with an explanation.

    **How this is graded.** Not by timing: on a shared machine timings vary from run
    to run. `td.testing.grade` builds your schedule (legality), runs it at ragged
    sizes against NumPy (correctness), and counts, exactly and without running
    anything, what your schedule does at a fixed size (`td.counts`):

    - *traffic*: the bytes your loop nest moves into a 32 KiB cache (the L1 data cache
      of one core), under the cache model of `td.counts`: when one iteration of a loop
      touches less than the cache holds, what that iteration reuses stays in cache;
    - *vector fraction*: the share of the work in vectorized loops;
    - *parallel fraction*: the share of the work in parallel loops.

    Each section shows the counts of the default schedule next to yours, and times
    both, for you to see (timing is not graded: on a machine shared with others,
    threads that wait for a busy core can even make a parallel kernel slower).
    """),
    code("""
    import numpy as np

    import tdsl as td

    CACHE = 32 * 1024                                     # bytes: an L1 data cache
    MATMUL_RAGGED = [{"n": 37, "l": 19, "m": 53}, {"n": 5, "l": 64, "m": 17},
                     {"n": 1, "l": 1, "m": 1}]
    MATMUL_AT = {"n": 256, "l": 256, "m": 256}            # where the counts are taken


    def matmul_algorithm():
        \"\"\"C = A @ B for A (n, l) and B (l, m), float32, symbolic sizes.\"\"\"
        n, l, m = td.var("n"), td.var("l"), td.var("m")
        A = td.placeholder((n, l), name="A")
        B = td.placeholder((l, m), name="B")
        k = td.reduce_axis(l, name="k")
        C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
        return A, B, C


    def compare(name, default, yours, sizes, arrays):
        \"\"\"The counts of both schedules side by side, and their times at `sizes`.\"\"\"
        rows = []
        for label, (s, args) in (("default", default), ("yours", yours)):
            c = td.counts(s, args, sizes=sizes)
            mod = td.build(s, args)
            out = np.empty(arrays[-1].shape, np.float32)
            seconds = mod.time(*arrays[:-1], out, repeat=3).min
            rows.append((label, c.total_traffic(CACHE) / 2 ** 20, c.vector_fraction,
                         c.parallel_fraction, seconds * 1e3))
        print(f"{name}: {'schedule':8s} {'traffic MiB':>12s} {'vector':>7s} {'parallel':>9s} "
              f"{'ms (not graded)':>16s}")
        for label, traffic, vector, parallel, ms in rows:
            print(f"{' ' * len(name)}  {label:8s} {traffic:12.2f} {vector:7.2f} {parallel:9.2f} "
                  f"{ms:16.2f}")
    """),
    md("""
    ## 1. Matrix multiply

    Write `fast_matmul()`: it returns `(schedule, [A, B, C])` for `matmul_algorithm()`.
    The default schedule runs `i, j, k` with `k` innermost: every step reads `B` down a
    column, one cache line per element. To earn the points:

    - correct and legal at the ragged sizes above (2 points);
    - at most 24 MiB of traffic into a 32 KiB cache at n = l = m = 256 (the default
      schedule moves 64.5 MiB) (1 point);
    - at least 90% of the work in vectorized loops (1 point) and in parallel loops
      (1 point).

    Tutorial 02 shows the moves: tiling, `vectorize`, `cache_write` + `compute_at` for a
    tile of `C` in registers, `parallel`. Tiles must work at sizes they do not divide.
    """),
    solution("""
    def fast_matmul():
        A, B, C = matmul_algorithm()
        s = td.create_schedule(C)
        ### BEGIN SOLUTION
        CL = s.cache_write(C, "local")               # a 4 x 32 tile of C in registers
        i, j = C.op.axis
        io, jo, ii, ji = s[C].tile(i, j, 4, 32)
        s[CL].compute_at(s[C], jo)
        ic, jc = CL.op.axis
        (kc,) = CL.op.reduce_axis
        s[CL].reorder(kc, ic, jc)
        s[CL].unroll(ic)
        s[CL].vectorize(jc)
        s[C].vectorize(ji)
        s[C].parallel(io)
        ### END SOLUTION
        return s, [A, B, C]
    """, "fast_matmul"),
    code("""
    A, B, C = matmul_algorithm()
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((256, 256), dtype=np.float32) for _ in range(2))
    compare("matmul", (td.create_schedule(C), [A, B, C]), fast_matmul(), MATMUL_AT,
            [a, b, a @ b])
    matmul_grade = td.testing.grade(fast_matmul, expected=np.matmul, sizes=MATMUL_RAGGED,
                                    counts_sizes=MATMUL_AT, cache_bytes=CACHE,
                                    max_traffic=24 << 20, min_vector_fraction=0.9,
                                    min_parallel_fraction=0.9)
    print(matmul_grade)
    """),
    tests("""
    assert matmul_grade["legal"].passed, matmul_grade["legal"].message
    assert matmul_grade["correct"].passed, matmul_grade["correct"].message
    """, "test_matmul_correct", 2),
    tests("""
    assert matmul_grade["traffic"].passed, matmul_grade["traffic"].message
    """, "test_matmul_traffic", 1),
    tests("""
    assert matmul_grade["vector"].passed, matmul_grade["vector"].message
    """, "test_matmul_vector", 1),
    tests("""
    assert matmul_grade["parallel"].passed, matmul_grade["parallel"].message
    ### BEGIN HIDDEN TESTS
    # the same schedule at other sizes: no tile may assume the sizes it was tried at
    again = td.testing.grade(fast_matmul, expected=np.matmul, sizes=[{"n": 33, "l": 2, "m": 65}])
    assert again.passed, again
    ### END HIDDEN TESTS
    """, "test_matmul_parallel", 1),
    md("""
    ## 2. Convolution

    A 3 x 3 convolution with padding 1 of an image of 8 channels into 16, in two
    stages: `pad` (zeros around the image) and `out`. Write `fast_conv()`, returning
    `(schedule, [X, W, out])` for `conv_algorithm()`. Points:

    - correct and legal at ragged image sizes (2 points);
    - at least 90% of the work in vectorized loops (1 point) and in parallel loops
      (1 point);
    - no more operations than the default schedule (1 point): a stage computed inside
      a loop recomputes, in every iteration, what that iteration needs, which costs
      operations when iterations overlap.

    Hint: vectorize along the image's rows (`x`), with the reduction loops outside the
    vector loop, so each vector of outputs is updated by whole vectors.
    """),
    code("""
    CONV_RAGGED = [{"h": 13, "w": 7}, {"h": 1, "w": 1}, {"h": 9, "w": 33}]
    CONV_AT = {"h": 56, "w": 56}


    def conv_algorithm():
        \"\"\"out (16, h, w): the 3 x 3 convolution, padding 1, of X (8, h, w) by W.\"\"\"
        h, w = td.var("h"), td.var("w")
        X = td.placeholder((8, h, w), name="X")
        W = td.placeholder((16, 8, 3, 3), name="W")
        pad = td.compute((8, h + 2, w + 2), lambda c, y, x: td.select(
            td.all(y >= 1, y <= h, x >= 1, x <= w), X[c, y - 1, x - 1], 0.0), name="pad")
        rc, ry, rx = td.reduce_axis(8, "rc"), td.reduce_axis(3, "ry"), td.reduce_axis(3, "rx")
        out = td.compute((16, h, w), lambda f, y, x: td.sum(
            pad[rc, y + ry, x + rx] * W[f, rc, ry, rx], axis=[rc, ry, rx]), name="out")
        return X, W, pad, out


    def conv_numpy(x, w):
        xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1)))
        h, wd = x.shape[1:]
        return sum(np.einsum("chw,fc->fhw", xp[:, r:r + h, s:s + wd], w[:, :, r, s])
                   for r in range(3) for s in range(3))


    X, W, pad, out = conv_algorithm()
    CONV_FLOPS = td.counts(td.create_schedule(out), [X, W, out], sizes=CONV_AT).flops
    """),
    solution("""
    def fast_conv():
        X, W, pad, out = conv_algorithm()
        s = td.create_schedule(out)
        ### BEGIN SOLUTION
        f, y, x = out.op.axis
        rc, ry, rx = out.op.reduce_axis
        xo, xi = s[out].split(x, factor=16)
        s[out].reorder(f, y, xo, rc, ry, rx, xi)     # whole vectors of outputs per tap
        s[out].vectorize(xi)
        s[out].parallel(f)
        ### END SOLUTION
        return s, [X, W, out]
    """, "fast_conv"),
    code("""
    X, W, pad, out = conv_algorithm()
    x = rng.standard_normal((8, 56, 56), dtype=np.float32)
    w = rng.standard_normal((16, 8, 3, 3), dtype=np.float32)
    compare("conv2d", (td.create_schedule(out), [X, W, out]), fast_conv(), CONV_AT,
            [x, w, conv_numpy(x, w)])
    conv_grade = td.testing.grade(fast_conv, expected=conv_numpy, sizes=CONV_RAGGED,
                                  counts_sizes=CONV_AT, min_vector_fraction=0.9,
                                  min_parallel_fraction=0.9, max_flops=CONV_FLOPS)
    print(conv_grade)
    """),
    tests("""
    assert conv_grade["legal"].passed, conv_grade["legal"].message
    assert conv_grade["correct"].passed, conv_grade["correct"].message
    """, "test_conv_correct", 2),
    tests("""
    assert conv_grade["vector"].passed, conv_grade["vector"].message
    """, "test_conv_vector", 1),
    tests("""
    assert conv_grade["parallel"].passed, conv_grade["parallel"].message
    """, "test_conv_parallel", 1),
    tests("""
    assert conv_grade["flops"].passed, conv_grade["flops"].message
    """, "test_conv_flops", 1),
    md("""
    **Going further (not graded).** Compute `pad` inside the loop over rows of `out`
    (`compute_at`): what happens to the traffic, and to the operations? Print
    `td.counts(...)` for both and read the table.
    """),
]
