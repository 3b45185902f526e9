"""Notebook 7, let the machine schedule: td.auto_schedule against the hand schedule of
notebook 2, a td.tune run with its curve against random search, what the tuner chose
and why every candidate it measured was legal."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 7. Let the machine schedule

    Notebook 2 scheduled a matrix multiply by hand: a register tile of accumulators,
    B packed into panels, rows of tiles in parallel. Most kernels you write will not
    get that care. tdsl schedules them for you at two levels:

    * **`td.auto_schedule`** applies rules, in the spirit of Halide's Mullapudi2016
      and TVM's Ansor sketches: inline cheap stages, factor row reductions into vector
      lanes, tile stencils, give reductions with reuse a register tile, parallelize
      the outer loops. No search, no measurement: a schedule in milliseconds.
    * **`td.tune`** opens the rules' choices (tile rows, vectors per tile, packing,
      inlining, lanes, fusing for threads) as *knobs* and searches them: it measures
      candidates, trains a cost model (LightGBM) on what it measured, and measures
      next what the model ranks best, as TVM's AutoTVM and Ansor do.

    *Builds on notebook 2 (the hand schedule it is compared with) and notebook 3
    (what "proven legal" means).*

    What neither TVM nor Halide does: every primitive either level applies is proven
    legal by isl, like yours. A candidate isl refuses is never compiled, so the search
    never wastes a build on a wrong schedule and never produces one.
    """),
    code("""
    %matplotlib inline
    import statistics
    import tempfile
    import time
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np

    import tdsl as td

    print("CPU:", td.machine.describe())
    """),
    code(NP_TIME),
    md("""
    ## 1. The algorithm, and nothing else

    The matrix multiply of notebook 2, with symbolic sizes: one compiled kernel serves
    every size.
    """),
    code("""
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")

    N = 512
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (N, N)).astype("float32")
    b = rng.uniform(-1, 1, (N, N)).astype("float32")
    c = np.zeros((N, N), "float32")
    """),
    md("""
    ## 2. `td.auto_schedule`: rules, no search

    `print(s)` shows what the rules chose as code you could paste under the
    definition above and edit: a `cache_write` register tile with unrolled rows and
    vectorized columns, a packed panel of B (`cache_read`), parallel outer loops. The
    tile's shape comes from the target: 6 rows of 2 vectors on AVX2, 8 rows of 2
    vectors on AVX-512.
    """),
    code("""
    s_auto = td.auto_schedule(C)
    print(s_auto)
    auto = td.build(s_auto, [A, B, C])
    auto(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    """),
    md("""
    Against the hand schedule of notebook 2 (`td.examples.matmul()` is that schedule)
    and the default schedule (loops in axis order):
    """),
    code("""
    hand_s, hand_args = td.examples.matmul()
    hand = td.build(hand_s, hand_args)
    naive = td.build(td.create_schedule(C), [A, B, C])
    flops = 2 * N ** 3
    timings = {
        "naive (default schedule)": naive.time(a, b, c, repeat=3).median,
        "td.auto_schedule": auto.time(a, b, c).median,
        "hand (notebook 2)": hand.time(a, b, c).median,
        "numpy (OpenBLAS)": np_time(lambda: a @ b),
    }
    print_table(("schedule", "ms", "GFLOP/s"),
                [(name, f"{t * 1e3:.2f}", f"{flops / t / 1e9:.1f}") for name, t in timings.items()])
    """),
    md("""
    ## 3. `td.tune`: search the rules' knobs

    The tuner needs sizes to measure at (`sizes=`: the sizes stay symbolic in the
    kernel) and a log: one JSON line per candidate, appended as each result arrives, so
    a run that is stopped loses nothing and a new run on the same log resumes.

    Each candidate is realized by the rules with its knob values, proven legal by isl,
    compiled (in parallel), checked against `td.reference` at small ragged sizes and
    against an oracle at the full size, then timed alone in a worker process: a kernel
    that crashes or hangs is recorded as an error and the search goes on. The first
    candidate is always `td.auto_schedule`'s own, so the search starts from it. At the
    end the four fastest are measured again, interleaved, and the winner is the best of
    their medians: the minimum of noisy times favours a candidate that was lucky once.

    We run 8 trials of the evolutionary search, and 8 of random search over the
    same space as the baseline it must beat (a real run uses a few hundred).
    """),
    code("""
    folder = Path(tempfile.mkdtemp())
    sizes = {"n": N, "l": N, "m": N}
    tuned = td.tune([C], [A, B, C], trials=8, sizes=sizes, log=folder / "tune.jsonl", seed=0)
    baseline = td.tune([C], [A, B, C], trials=8, sizes=sizes, log=folder / "random.jsonl",
                       search="random", seed=0)
    print(f"evolutionary: best {tuned.seconds * 1e3:.2f} ms, choices {tuned.choices}")
    print(f"random:       best {baseline.seconds * 1e3:.2f} ms, choices {baseline.choices}")
    print(f"refused by isl: {tuned.refused + baseline.refused}, "
          f"errors: {tuned.errors + baseline.errors}, "
          f"wrong results: {tuned.wrong + baseline.wrong}")
    """),
    md("""
    The curve: the best time after each measured candidate. With so few trials the two
    searches are close (the space of a matmul's register tile is small, and the first
    candidate, the rules' own, is already good); on larger spaces the model pays off
    once it has seen enough measurements (`benchmarks/tune.py` draws the curves for the
    eight benchmark workloads in `benchmarks/RESULTS.md`).
    """),
    code("""
    fig, ax = plt.subplots(figsize=(6, 3))
    for result, label in ((tuned, "td.tune (evolution + LightGBM)"), (baseline, "random search")):
        curve = result.curve()
        ax.plot(range(1, len(curve) + 1), [flops / t / 1e9 for t in curve], marker="o", label=label)
    ax.set_xlabel("measured candidates")
    ax.set_ylabel("best GFLOP/s so far")
    ax.legend()
    plt.show()
    """),
    md("""
    ## 4. What the tuner chose, and why it is legal

    A record of the log holds the candidate's knobs (`C.tile_rows`: rows of the
    register tile; `C.tile_vectors`: its width in vectors; `C.pack`: whether B is
    copied into panels), its result, and the features the model learned from. The
    chosen schedule is built from the same rules, so it is legal for the same
    reason the rules' primitives are: isl proved each dependence respected and each
    parallel or vector loop free of carried dependences. `td.apply_best` rebuilds it
    from the log in a later session, without searching.
    """),
    code("""
    import json
    for line in (folder / "tune.jsonl").read_text().splitlines()[:3]:
        record = json.loads(line)
        print(record["trial"], record["choices"], record["result"].get("seconds"))

    s_best = td.apply_best(folder / "tune.jsonl", [C], [A, B, C], sizes=sizes)
    print(s_best)
    best = td.build(s_best, [A, B, C])
    c2 = np.zeros((300, 200), "float32")
    a2, b2 = a[:300, :100].copy(), b[:100, :200].copy()
    best(a2, b2, c2)                     # any size: the kernel is symbolic
    np.testing.assert_allclose(c2, a2 @ b2, rtol=1e-4, atol=1e-4)
    """),
    md("""
    ## 5. The table

    The tuned kernel against the others, timed the same way. The tuner measures in
    its own worker process, so its numbers and these can differ by the machine's noise.
    """),
    code("""
    timings["td.tune (8 trials)"] = best.time(a, b, c).median
    print_table(("schedule", "ms", "GFLOP/s"),
                [(name, f"{t * 1e3:.2f}", f"{flops / t / 1e9:.1f}") for name, t in timings.items()])
    """),
    md("""
    **What to remember.** `td.auto_schedule` gives a good schedule with no search;
    `td.tune` searches the same rules' choices with a learned cost model, resumes from
    its log, survives crashing candidates, and (with `runner="ray"`) spreads builds and
    measurements over a Ray cluster. Neither can produce an illegal schedule: isl proves
    every candidate before gcc sees it.
    """),
]
