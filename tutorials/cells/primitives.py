"""Notebook 1b, schedules one primitive at a time: split, reorder, tile, fuse (loops),
unroll, vectorize, parallel on a tiny 2-D function, each with its loop nest, a picture
of the visiting order and the leftover loops explained."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 1b. Schedules, one primitive at a time

    *Builds on notebook 1 (placeholders, `td.compute`, `td.lower`, `td.build`). Read it
    before notebook 2, which combines everything here to make a matrix multiply fast.*

    A schedule is a list of **primitives**, each a small change to the loops of one
    stage. This notebook applies them one at a time to the smallest interesting
    example, a 2-D function `F[y, x] = 2 A[y, x] + 1`, and after each one shows three
    things: the loop nest (`td.lower`), a picture of the order in which the points of
    `F` are visited (`td.viz.order`, points numbered in execution order), and a check
    that the result did not change (`td.testing.assert_equivalent`). This is Halide's
    lesson 5, in tdsl.

    The primitives: `reorder`, `split` (and the leftover loops it may leave), `tile`,
    `fuse`, `unroll`, `vectorize`, `parallel`. A word on names: **fuse** joins two
    *loops* of one stage into one loop (this notebook); **fusion** of *stages*
    (computing a producer inside its consumer's loops) is done with `compute_at` and
    `compute_inline`, the subject of notebook 4.
    """),
    code("""
    %matplotlib inline
    import os
    import statistics
    import time

    import numpy as np

    import tdsl as td
    import tdsl.viz  # pictures (matplotlib)

    print("CPU:", td.machine.describe())
    """),
    md("""
    ## 1. The function, and its default loops

    Symbolic sizes `h x w`, so that the loops must work for every size. `schedule()`
    returns a fresh default schedule each time: one loop per axis, in the order of the
    lambda's parameters, `y` outside and `x` inside. The picture is at `h = 4`,
    `w = 6`: the points are visited row by row, as a C programmer would write it.
    """),
    code("""
    h, w = td.var("h"), td.var("w")
    A = td.placeholder((h, w), name="A")
    F = td.compute((h, w), lambda y, x: A[y, x] * 2.0 + 1.0, name="F")
    y, x = F.op.axis
    SMALL = {h: 4, w: 6}


    def schedule():
        return td.create_schedule(F)


    def check(s):
        \"\"\"The schedule computes the same F as the algorithm, at awkward sizes.\"\"\"
        td.testing.assert_equivalent(s, [A, F], sizes={h: 7, w: 13})
        print("same result as the algorithm: checked at h=7, w=13")


    s = schedule()
    print(td.lower(s, [A, F]))
    td.viz.order(s, F, SMALL)
    """),
    md("""
    ## 2. `reorder`: which loop is outside

    `reorder(x, y)` puts `x` outside: the function is visited column by column. The
    result is the same, because no point of `F` reads another; the *memory order* is
    not: `A` and `F` are stored row by row, so consecutive iterations now jump a whole
    row (`w` floats) in memory. Section 9 measures what that costs.
    `td.poly.order` lists the points in execution order, which is handy for checks.
    """),
    code("""
    s = schedule()
    s[F].reorder(x, y)
    print(td.lower(s, [A, F]))
    print("first points visited:", td.poly.order(s, F, SMALL)[:5])
    check(s)
    td.viz.order(s, F, SMALL)
    """),
    md("""
    ## 3. `split`: one loop becomes two

    `split(x, factor=4)` replaces `x` by two loops, `x_outer` and `x_inner`, with
    `x = 4 * x_outer + x_inner` and `x_inner` running 0..3. On its own it changes
    nothing about the order; it gives the other primitives a loop of a known, constant
    length (4) to work on.

    `w` is symbolic and need not be a multiple of 4, so the loops must stop exactly at
    `w`: `x_outer` runs `(w - 1) // 4 + 1` times (`w / 4` rounded up) and `x_inner`
    runs `min(4, w - 4 * x_outer)` times, 4 except in the last, shorter group. At
    `w = 6` that is a group of 4 and a group of 2 in each row. (Section 6 shows the
    other way tdsl handles a size the factor does not divide: a *leftover loop*.)
    """),
    code("""
    s = schedule()
    xo, xi = s[F].split(x, factor=4)
    print(td.lower(s, [A, F]))
    check(s)
    td.viz.order(s, F, SMALL)
    """),
    md("""
    With a size that the factor divides, every group is full and the `min` disappears:
    here the same split on a function of constant size 4 x 8.
    """),
    code("""
    A8 = td.placeholder((4, 8), name="A8")
    F8 = td.compute((4, 8), lambda y, x: A8[y, x] * 2.0 + 1.0, name="F8")
    s8 = td.create_schedule(F8)
    s8[F8].split(F8.op.axis[1], factor=4)
    print(td.lower(s8, [A8, F8]))
    """),
    md("""
    ## 4. `split` + `reorder` = `tile`

    Split both axes and put the two outer loops first: the function is visited in
    2 x 3 *tiles*, each finished before the next starts (the colours in the picture).
    `tile(y, x, 2, 3)` does exactly these two splits and the reorder in one call. Tiles
    are how a schedule keeps a block of data in cache while it is reused (notebook 2).
    When `h` or `w` is not a multiple of the tile, the last tiles are smaller (the two
    `min`s).
    """),
    code("""
    s = schedule()
    yo, yi = s[F].split(y, factor=2)
    xo, xi = s[F].split(x, factor=3)
    s[F].reorder(yo, xo, yi, xi)
    print(td.lower(s, [A, F]))

    s_tile = schedule()
    s_tile[F].tile(y, x, 2, 3)
    same = td.poly.order(s, F, SMALL) == td.poly.order(s_tile, F, SMALL)
    print("tile(y, x, 2, 3) visits the points in the same order:", same)
    check(s_tile)
    td.viz.order(s_tile, F, SMALL)
    """),
    md("""
    `s[F].loops` lists the stage's loops as the schedule has made them so far,
    outermost first: use it instead of keeping every name the primitives return.
    """),
    code("""
    print([loop.name for loop in s_tile[F].loops])
    """),
    md("""
    ## 5. `fuse`: two loops become one

    `fuse(yo, xo)` is the opposite of split: one loop over every pair, with
    `yo = f // (number of xo)` and `xo = f % (number of xo)`. Nothing about the order
    changes. It is useful to give `parallel` more iterations to share among the cores
    (notebook 6 fuses the channel-block and row loops of a convolution for that).

    Fusing needs the inner loop's length to be a constant, so that `f // length` stays
    an affine expression isl can reason about. With symbolic sizes that is refused,
    with the reason and the way out:
    """),
    code("""
    s = schedule()
    try:
        s[F].fuse(y, x)
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    With constant sizes it is accepted. On the 4 x 8 function `F8`, tiles of 2 x 4 and
    then the two loops over tiles fused: one loop of 2 x 2 = 4 tiles, which `parallel`
    could share among 4 threads. isl writes `y_outer = f // 2` and `x_outer = f % 2`
    (with `f` the fused loop) its own way: `(f + 1) % 2 + f - 1` is `2 * (f // 2)`,
    and `4 - 4 * ((f + 1) % 2)` is `4 * (f % 2)`.
    """),
    code("""
    s8 = td.create_schedule(F8)
    yo, xo, yi, xi = s8[F8].tile(*F8.op.axis, 2, 4)
    tiles = s8[F8].fuse(yo, xo)
    print(td.lower(s8, [A8, F8]))
    td.testing.assert_equivalent(s8, [A8, F8])
    td.viz.order(s8, F8, {})
    """),
    md("""
    ## 6. `unroll`: copies of the body instead of a loop

    `unroll(xi)` marks a loop of constant length to be written out as that many copies
    of its body: no loop counter, no branch, and constant indices that the C compiler
    can keep in registers (notebook 2's register tile relies on it). The order is
    unchanged. The lowered loops mark it `# unroll`; in the generated C the inner loop
    is gone and its 4 copies are there instead.

    **The leftover loop.** An unrolled loop must have a constant length, so the
    `min(4, w - 4 * x_outer)` of section 3 will not do. tdsl splits the work in two
    instead: a main loop over the `w // 4` full groups, unrolled, and a *leftover*
    loop `for x_inner in range(w % 4)` for the last `w % 4` columns of each row (at
    `w = 6`: 4 columns in the main loop, 2 leftover). Its index
    `w + x_inner - w % 4` is just `4 * (w // 4) + x_inner`, written the way isl
    simplified it. The main loop needs no test at all; that is why it is fast.
    """),
    code("""
    s = schedule()
    xo, xi = s[F].split(x, factor=4)
    s[F].unroll(xi)
    print(td.lower(s, [A, F]))
    mod = td.build(s, [A, F])
    body = mod.source[mod.source.index("int kernel("):]
    print([line.strip() for line in body.splitlines() if line.strip().startswith("F[")][:4])
    check(s)
    """),
    md("""
    ## 7. `vectorize`: the iterations of a loop as the lanes of one instruction

    A vector register holds several floats: `td.target()` says how many on this CPU
    (8 floats with AVX2, 16 with AVX-512). Split `x` by that number and `vectorize`
    the inner loop: each iteration of `x_outer` is then one vector load, multiply, add
    and store. In the picture the lanes of one vector are the same colour; they run at
    the same time. As with `unroll`, the last `w % lanes` columns of each row get a
    leftover loop; it is marked `# vectorize` too, but with fewer than `lanes`
    iterations it cannot be one vector: the C backend writes it as a plain loop under
    `#pragma omp simd` and lets gcc choose (print `mod.source` to see both loops).
    """),
    code("""
    LANES = td.target().lanes("float32")
    print(td.target().describe(), "->", LANES, "float32 lanes per vector")
    s = schedule()
    xo, xi = s[F].split(x, factor=LANES)
    s[F].vectorize(xi)
    print(td.lower(s, [A, F]))
    mod = td.build(s, [A, F])
    body = mod.source[mod.source.index("int kernel("):]
    print(next(line.strip() for line in body.splitlines() if f"tdsl_f32x{LANES}" in line))
    check(s)
    td.viz.order(s, F, {h: 2, w: 2 * LANES})
    """),
    md("""
    A primitive that would change the result is refused. Vectorizing runs the
    iterations of a loop *at the same time*, so it is only legal for a loop whose
    iterations do not depend on each other; a loop that does is said to *carry a
    dependence* (notebook 3 is about exactly this). Every loop of `F` is free, so
    here everything is accepted; a running sum along `x` would not be.
    """),
    md("""
    ## 8. `parallel`: iterations on different cores

    `parallel(y)` shares the iterations of `y` among threads (OpenMP): each thread
    computes some rows. The picture colours the points by the iteration of the
    parallel loop; each colour has its own path, because different threads run at the
    same time, not one after the other. Like `vectorize`, `parallel` is checked: the
    loop must carry no dependence.
    """),
    code("""
    s = schedule()
    s[F].parallel(y)
    print(td.lower(s, [A, F]))
    check(s)
    td.viz.order(s, F, SMALL)
    """),
    md("""
    ## 9. All together, checked against NumPy, and timed

    The schedule of notebook 1's last section: rows on threads, columns as vector
    lanes. Then a timing table on a 2048 x 2048 image (16 MiB per array). This
    function does one multiply-add per element, so memory sets its speed: expect the
    column order to be much slower (every access a new cache line), the vector and
    parallel versions to be close to NumPy, and threads to help only as much as the
    memory bus and the other programs on this machine allow.
    """),
    code(NP_TIME),
    code("""
    s_fast = schedule()
    xo, xi = s_fast[F].split(x, factor=LANES)
    s_fast[F].vectorize(xi)
    s_fast[F].parallel(y)
    check(s_fast)

    s_cols = schedule()
    s_cols[F].reorder(x, y)

    s_vec = schedule()
    s_vec[F].vectorize(s_vec[F].split(x, factor=LANES)[1])

    ROWS = COLS = 2048
    a = np.random.default_rng(0).standard_normal((ROWS, COLS), dtype=np.float32)
    f = np.empty_like(a)
    rows = []
    for name, sch in (("default (rows)", schedule()), ("reorder(x, y): columns", s_cols),
                      (f"split by {LANES} + vectorize", s_vec),
                      ("+ parallel(y)", s_fast)):
        mod = td.build(sch, [A, F])
        f.fill(np.nan)
        mod(a, f)
        assert np.allclose(f, 2 * a + 1), name
        rows.append((name, f"{mod.time(a, f, repeat=5).median * 1e3:.2f}"))
    rows.append(("NumPy 2 * a + 1", f"{np_time(lambda: 2 * a + 1) * 1e3:.2f}"))
    print(td.machine.describe(), "| load average:", os.getloadavg()[0])
    print_table(("F = 2 A + 1, 2048 x 2048", "ms"), rows)
    if float(rows[3][1]) > float(rows[2][1]):
        busy = os.getloadavg()[0] > os.cpu_count() - 0.5
        print("Here the threads did not pay: " + (
            "another program holds a core (load average above the cores) and every "
            "parallel loop waits for its slowest thread." if busy else
            "one core already moves as many bytes as the memory bus carries."))
    """),
    md("""
    **What to remember.** `split` makes two loops from one (a shorter last group when
    the factor does not divide the size, or a leftover loop when the inner loop is
    unrolled or vectorized); `reorder` chooses which is outside; `tile`
    is two splits and a reorder; `fuse` makes one loop from two (constant inner
    length); `unroll` writes a loop out; `vectorize` and `parallel` run iterations at
    the same time and are accepted only for loops that carry no dependence. None of
    them changes the result. Next: notebook 2 combines them on a matrix multiply.

    **Try it.** (a) Write a schedule of `F` that visits it in 2 x 2 tiles, *tiles
    column by column* (the loop over tile columns outside the loop over tile rows),
    and check it: at `h = w = 4` the first eight points visited must be
    `[(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]`
    (`assert td.poly.order(s, F, {h: 4, w: 4})[:8] == ...`).
    (b) Split `x` by 3 and unroll the inner loop. At `w = 10`, which columns does the
    leftover loop compute in each row? Print `td.lower`, then check your answer: in
    `td.poly.order(s, F, {h: 2, w: 10})` the leftover columns of row 0 come right
    before the first point of row 1.
    Solutions: `tutorials/solutions/01b_primitives.py`.
    """),
]
