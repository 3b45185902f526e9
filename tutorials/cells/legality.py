"""Notebook 3, legality: domains and dependences drawn, why parallel(k) is refused,
td.poly.explain, rfactor, and what may be reordered in a recurrence."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 3. Legality: which schedules are allowed, and why

    *Builds on notebook 1b (the primitives; "a loop that carries a dependence") and
    notebook 2 (`reorder`, `parallel` on a matrix multiply).*

    A schedule may change the order of a computation but never its result. tdsl
    enforces this at every primitive: it models the program with isl (the integer
    set library) as *iteration domains* (the instances of each statement),
    *accesses* (what each instance reads and writes) and *dependences* (pairs of
    instances that must stay in order), and refuses a primitive whose new order
    breaks a dependence. The refusal is a `ScheduleError` that says why, with one
    concrete pair of instances as evidence, and the schedule is left unchanged.

    This notebook looks at that model directly: domains and dependences, drawn;
    why `parallel(k)` is refused in a reduction; how `rfactor` makes a reduction
    parallel and vectorizable anyway; and a recurrence, where some reorders are
    legal and others are not.
    """),
    code("""
    %matplotlib inline
    import os
    import statistics
    import time

    import numpy as np

    import tdsl as td
    import tdsl.viz  # pictures (matplotlib)

    LANES = td.target().lanes("float32")       # floats per vector: 8 on AVX2, 16 on AVX-512
    print("CPU:", td.machine.describe())
    """),
    md("""
    ## 1. Iteration domains

    A matrix multiply with symbolic sizes. Its reduction is two statements,
    `C_init[i, j]` (set to 0) and `C_update[i, j, k]` (add one product), and the
    domain of each is the set of its instances: every integer point that satisfies
    the bounds, for every value of the sizes `n, l, m` (isl's parameters, before the
    arrow).
    """),
    code("""
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    for name, domain in td.poly.domains(s).items():
        print(f"{name}:  {domain}")
    """),
    md("""
    ### How to read isl's sets and maps

    isl prints every set and map in one notation. Take the domain of `C_update`:

        [n, l, m] -> { C_update[i, j, k] : 0 <= i < n and 0 <= j < m and 0 <= k < l }

    * `[n, l, m] ->` lists the **parameters**: symbolic constants (here the sizes),
      unknown when the set is built, fixed for any one run.
    * `C_update[i, j, k]` is a **tuple**: a name and one integer per dimension. A set
      is a set of such tuples: here the instances of the statement `C_update`, one
      per `(i, j, k)`.
    * After the colon, the **constraints**: affine (in)equalities over the tuple's
      dimensions and the parameters, joined by `and` (an `or` splits into pieces).
      A set contains exactly the integer points that satisfy them.
    * A **map** (relation) pairs tuples: `{ C_update[i, j, k] -> A[i, k] : ... }`
      relates each instance to the element of `A` it reads.
    * In a map, a **prime** names the right-hand tuple's dimensions when they would
      clash with the left's: `C_update[i, j, k] -> C_update[i' = i, j' = j, k'] :
      k' > k` relates each update to every *later* update (`k' > k`) of the same
      `C[i, j]` (`i' = i`, `j' = j`).
    * A **union** is several sets or maps, possibly of different tuples, separated by
      `;` inside the braces; tdsl usually prints one piece per line instead.

    The accesses and the dependences below are maps in exactly this notation.
    """),
    md("""
    ## 2. Accesses and dependences

    Each statement reads and writes array elements, as maps from instances to
    elements. Two instances *depend* on each other when they touch the same element
    and at least one writes it: read after write (RAW), write after read (WAR),
    write after write (WAW). tdsl computes them in the order the algorithm defines;
    those among the updates of one reduction are marked `reduction`.

    There are five pieces: three among the updates of one `C[i, j]` (each update
    reads `C[i, j]` and writes it, so a later one reads after, writes after, and
    overwrites what an earlier one read: RAW, WAW and WAR, all `reduction`), and two
    from `C_init` into every update (it writes the zero that they read and
    overwrite: RAW and WAW). Reading one: `C_init[i, j] -> C_update[i' = i, j' = j, k]`
    says that the init of `C[i, j]` must come before every update of that same
    element, for every `k`.
    """),
    code("""
    update = td.poly.accesses(s)["C_update"]
    print("C_update reads: ", *update["reads"], sep="\\n  ")
    print("C_update writes:", *update["writes"], sep="\\n  ")
    print()
    for dep in td.poly.dependences(s):
        print(dep)
    """),
    md("""
    ## 3. The picture

    `td.viz.domain` draws a 2-D slice of the domain at small sizes (here the `i, k`
    plane at `j = 0`) with the dependences between neighbours. `carried_by=k` paints
    red the dependences whose two ends are in *different iterations of loop `k`*:
    those are the pairs that would run at the same time if `k` ran in parallel.

    The updates of one `C[i, j]` are joined along `k` by **dashed lines without
    arrowheads**: they are a reduction, whose updates may run in any order but not at
    the same time. The green squares below `k = 0` are the `C_init` instances, with
    an arrow (a true dependence: it must come first) into the first update.
    """),
    code("""
    td.viz.domain(s, C, {n: 3, m: 1, l: 5}, dims=("i", "k"), carried_by=k)
    """),
    md("""
    The same picture with `carried_by=i` has no red arrow: no dependence connects
    two different rows `i`, so the loop over `i` may run in parallel.
    """),
    code("""
    i, j = C.op.axis
    td.viz.domain(s, C, {n: 3, m: 1, l: 5}, dims=("i", "k"), carried_by=i)
    """),
    md("""
    ## 4. Why `parallel(k)` is refused

    Now ask for the red arrows to be broken. Read the message from the top: the
    call as you wrote it; the reason in words; one *witness*, two instances at the
    smallest sizes that show the conflict; the loop nest with the offending loop
    marked; and the ways out (the loops that can be parallel, and `rfactor`).
    """),
    code("""
    try:
        s[C].parallel(k)
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    A refused primitive changes nothing, so you can retry the cell with another idea.
    The schedule's history (printed by `print(s)`) holds only the calls that were
    accepted: the refused `parallel(k)` is not in it. Below, `parallel(i)` is accepted,
    and it is the one call the history shows.
    """),
    code("""
    s[C].parallel(i)
    print(s)
    """),
    md("""
    `td.poly.explain(stage, loop)` answers the question for any loop, without trying:
    """),
    code("""
    for axis in (i, j, k):
        print(td.poly.explain(s[C], axis), end="\\n\\n")
    """),
    md("""
    ## 5. Reordering a reduction *is* allowed

    A sum may be added up in any order: tdsl treats the updates of one reduction as
    an associative, commutative operation, so their dependences only forbid running
    two updates *at the same time*, not swapping their order. Splitting `k` and
    running its pieces inside out is accepted (the float rounding changes slightly,
    as with any reordered sum). Section 7 shows a recurrence, where the same
    reorder is refused.
    """),
    code("""
    s2 = td.create_schedule(C)
    ko, ki = s2[C].split(k, factor=4)
    s2[C].reorder(ki, ko)
    print(s2)
    td.testing.assert_equivalent(s2, [A, B, C], sizes={n: 5, m: 7, l: 9})
    print("assert_equivalent passed")
    """),
    md("""
    ## 6. `rfactor`: making a reduction parallel

    The sum of a long vector has a single output, so there is no data loop to run
    in parallel, and its only loop, `r`, is refused. `rfactor` changes the
    algorithm so that there is one: split `r`, then *factor* the sum over one of its
    pieces. The new stage `S_rf` computes one partial sum per value of that piece
    (a data axis now, free to be parallel or vector lanes), and `S` adds the partial
    sums up.
    """),
    code("""
    L = 1 << 22                          # 4M floats, 16 MiB
    X = td.placeholder((L,), name="X")
    r = td.reduce_axis(L, name="r")
    S = td.compute((), lambda: td.sum(X[r], axis=r), name="S")   # a 0-d tensor
    s_sum = td.create_schedule(S)
    try:
        s_sum[S].vectorize(r)
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    To vectorize: split `r` by the number of lanes (8 on AVX2, 16 on AVX-512) and
    factor over the inner piece. `S_rf[r_inner]` holds `LANES` partial sums; moving
    its reduction loop `r_outer` outside and vectorizing `r_inner` makes each step one
    vector add of `LANES` consecutive elements of `X` into `LANES` accumulators.
    """),
    code("""
    s_vec = td.create_schedule(S)
    ro, ri = s_vec[S].split(r, factor=LANES)
    SF = s_vec.rfactor(S, ri)
    (lane,), (rest,) = SF.op.axis, SF.op.reduce_axis
    s_vec[SF].reorder(rest, lane)
    s_vec[SF].vectorize(lane)
    print(s_vec)
    print(td.lower(s_vec, [X, S]))
    """),
    md("""
    To run on every core as well, factor twice: first over an outer piece of `r`
    with one part per thread (`nparts=8`), then, inside each part, over 16 floats.
    16 floats are 64 bytes, one cache line, so that two threads never write to the
    same line (when they do, the line travels between their cores at every write:
    *false sharing*); that is two vectors per step on AVX2, one on AVX-512. The
    partial sums `S_rf_rf[part, lane]` are computed with `part` in parallel and
    `lane` as vector lanes, then combined by the two small stages after it.
    """),
    code("""
    s_par = td.create_schedule(S)
    part, rest = s_par[S].split(r, nparts=8)
    SP = s_par.rfactor(S, part)
    rest_o, rest_i = s_par[SP].split(SP.op.reduce_axis[0], factor=16)
    SV = s_par.rfactor(SP, rest_i, factor_axis=1)
    p, lane = SV.op.axis
    (rest_o,) = SV.op.reduce_axis
    s_par[SV].reorder(p, rest_o, lane)
    s_par[SV].parallel(p)
    s_par[SV].vectorize(lane)
    print(td.lower(s_par, [X, S]))
    """),
    md("""
    ## 7. A recurrence: what may and may not be reordered

    A recurrence reads values it wrote itself. `td.update` writes one: here a
    first-order IIR filter down the columns of an image, `Y[r, c] = 0.5 Y[r-1, c] +
    X[r, c]` for rows `r >= 1` (row 0 is copied by the pure definition `Y`). Unlike
    a sum, the order along `r` is the meaning: row `r` needs the *finished* row
    `r - 1`. Across columns `c` there is no dependence at all.
    """),
    code("""
    H, W = td.var("H"), td.var("W")
    Xi = td.placeholder((H, W), name="X")
    rr = td.reduce_axis((1, H), name="r")
    Y0 = td.compute((H, W), lambda t, c: Xi[t, c], name="Y")
    Y = td.update(Y0, lambda c: (rr, c), lambda c: 0.5 * Y0[rr - 1, c] + Xi[rr, c])
    s_iir = td.create_schedule(Y)
    col = Y.op.axis[0]
    print(td.lower(s_iir, [Xi, Y]))
    """),
    md("""
    The picture makes it plain: every arrow runs along `r`, each column is its own
    chain, and loop `r` carries all of them (red). Compare with the picture of the
    sum in section 3: there the updates were joined by dashed lines (any order will
    do), here by arrows (this order and no other).
    """),
    code("""
    td.viz.domain(s_iir, Y, {H: 5, W: 4}, dims=("c", "r"), carried_by=rr)
    """),
    md("""
    So `parallel(r)` is refused, like `parallel(k)` above, but here with a
    read-after-write dependence: one iteration must finish before the next starts.
    """),
    code("""
    try:
        s_iir[Y].parallel(rr)
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    And unlike the sum of section 5, running the pieces of `r` inside out is refused
    too: it would compute row 5 before row 4. The message names the broken
    dependence and shows the loop nest the reorder would have made.
    """),
    code("""
    r_out, r_in = s_iir[Y].split(rr, factor=4)
    try:
        s_iir[Y].reorder(r_in, r_out)
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    What *is* legal: anything that keeps `r` in order. The loop over columns may
    run in parallel, and it may even move *inside* `r` (each row then updates all
    columns at once), which makes the innermost loop walk a row of memory and lets
    it become vector lanes. `td.poly.explain` agrees:
    """),
    code("""
    print(td.poly.explain(s_iir[Y], col))
    s_rows = td.create_schedule(Y)
    s_rows[Y].reorder(rr, col)                  # rows outside, columns inside
    s_rows[Y].vectorize(col)
    s_rows[Y0].parallel(Y0.op.axis[0])          # the pure definition Y = X: no dependence
    print(td.lower(s_rows, [Xi, Y]))
    """),
    md("""
    For threads as well, split the columns into strips of 64, run the strips in
    parallel and, within each, rows in order with 64 columns as vector lanes.
    """),
    code("""
    s_strips = td.create_schedule(Y)
    c_out, c_in = s_strips[Y].split(col, factor=64)
    s_strips[Y].reorder(c_out, rr, c_in)
    s_strips[Y].parallel(c_out)
    s_strips[Y].vectorize(c_in)
    s_strips[Y0].parallel(Y0.op.axis[0])
    print(s_strips)
    for sch in (s_rows, s_strips):
        td.testing.assert_equivalent(sch, [Xi, Y], sizes={H: 9, W: 70})
    print("assert_equivalent passed for both")
    """),
    md("""
    ## 8. Check against NumPy, and time it

    The factored sums against NumPy's `sum` (computed in float64: a float32 sum of
    4M numbers added one after another loses digits, and the partial sums of
    `rfactor` are in fact *more* accurate), and the IIR schedules against a NumPy
    loop over rows. Then the timings. The default sum is one chain of dependent
    additions, each waiting for the one before; the default IIR walks down columns,
    jumping a whole row of memory at every step. The vectorized schedules remove
    those causes; below the table, the notebook says which schedules were faster than
    the default on this machine (threads pay only when the cores are free).
    """),
    code(NP_TIME),
    code("""
    rng = np.random.default_rng(0)
    x = rng.random(L, dtype=np.float32)
    exact = x.astype(np.float64).sum()
    total = np.zeros((), np.float32)
    sums = {}
    for name, sch in (("sum, default", s_sum), ("sum, rfactor: vector lanes", s_vec),
                      ("sum, rfactor twice: threads + lanes", s_par)):
        mod = td.build(sch, [X, S])
        mod(x, total)
        print(f"{name}: relative error {abs(float(total) - exact) / exact:.1e}")
        assert abs(float(total) - exact) < 1e-3 * exact
        sums[name] = mod.time(x, total, repeat=5).median

    h, w = 2048, 2048
    img = rng.random((h, w), dtype=np.float32)
    want = img.copy()
    for t in range(1, h):
        want[t] = 0.5 * want[t - 1] + img[t]
    out = np.empty_like(img)
    iirs = {}
    for name, sch in (("IIR, default (down each column)", s_iir),
                      ("IIR, rows outside, columns as lanes", s_rows),
                      ("IIR, parallel strips of columns", s_strips)):
        mod = td.build(sch, [Xi, Y])
        out.fill(np.nan)
        mod(img, out)
        assert np.allclose(out, want, rtol=1e-4, atol=1e-5), name
        iirs[name] = mod.time(img, out, repeat=3).median
    print("all IIR schedules agree with NumPy")
    """),
    code("""
    def numpy_iir():
        y = img.copy()
        for t in range(1, h):
            y[t] = 0.5 * y[t - 1] + img[t]
        return y


    rows = [(name, f"{t * 1e3:.2f}") for name, t in {**sums, **iirs}.items()]
    rows += [("sum, NumPy (pairwise)", f"{np_time(lambda: x.sum()) * 1e3:.2f}"),
             ("IIR, NumPy loop over rows", f"{np_time(numpy_iir, repeat=3) * 1e3:.2f}")]
    print(td.machine.describe(), "| load average:", os.getloadavg()[0])
    print_table(("kernel", "ms"), rows)
    for group in (sums, iirs):
        (default, t0), *others = group.items()
        for name, t in others:
            print(f"{name}: {t0 / t:.1f}x the default "
                  f"({'faster' if t < t0 else 'NOT faster here'})")
    """),
    md("""
    **What to remember.** A loop may run in parallel (or as vector lanes) only if it
    carries no dependence; `td.viz.domain(..., carried_by=loop)` draws the ones it
    carries and `td.poly.explain` says it in words. The updates of a reduction may be
    reordered but not run at the same time; `rfactor` turns part of a reduction into
    a data axis so it can. A recurrence must keep its own order, but every loop
    it does not depend on is free.

    **Try it.** Write a prefix sum: `Y = td.compute((L,), lambda t: X[t])` and then
    `P = td.update(Y, lambda: (r,), lambda: Y[r - 1] + X[r])` with
    `r = td.reduce_axis((1, L))`. Predict which of `parallel(r)`, `vectorize(r)` and
    `split(r)` + `reorder(inner, outer)` are refused, then check each prediction:
    the refused ones raise `td.ScheduleError` (catch it and `print(e)` to read why),
    `td.poly.explain(s[P], r)` must say "cannot run in parallel", and the schedules
    that are accepted must pass `td.testing.assert_equivalent`.
    Solution: `tutorials/solutions/03_legality.py`.
    """),
]
