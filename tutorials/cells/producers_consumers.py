"""Notebook 4, producers and consumers: the two-stage blur with compute_root,
compute_at a tile and compute_inline; redundant work counted, locality measured."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 4. Producers and consumers: where to compute an intermediate

    *Builds on notebook 1b (split, tile, parallel), notebook 2 (where `compute_at`
    first appeared, for the register tile) and notebook 3 (domains, read with isl's
    notation).*

    When one stage reads another, the schedule decides *when* the producer's values
    are computed relative to their use. This is Halide's central trade-off, shown
    here on its classic example, a two-stage 3x3 box blur:

    * **compute_root** (the default): compute the whole intermediate first, store
      it, then read it back. No work is repeated, but the values travel through
      memory and are cold by the time they are read.
    * **compute_inline**: substitute the producer's expression into the consumer. No
      storage at all, but every value is recomputed for every use.
    * **compute_at** a tile of the consumer: compute, per tile, exactly the region
      of the producer that tile reads. Values are used while they are still in
      cache; only the tile's border (the *halo*) is computed twice.

    We will count the work each choice does and measure what it buys. This is
    *fusion* of stages (computing a producer inside its consumer's loops), not the
    loop primitive `fuse` of notebook 1b, which joins two loops of one stage.
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
    ## 1. The algorithm

    `bx` averages three neighbours along a row, `by` averages three rows of `bx`.
    Each output reads three rows of `bx`, and each value of `bx` is read by three
    outputs: that reuse is what the schedules below handle differently. The input is
    padded by 2 in each direction, so the output is `h x w`.
    """),
    code("""
    h, w = td.var("h"), td.var("w")
    inp = td.placeholder((h + 2, w + 2), name="inp")
    bx = td.compute((h + 2, w), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2]) / 3,
                    name="bx")
    by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) / 3,
                    name="by")
    args = [inp, by]
    """),
    md("""
    ## 2. compute_root: everything first, then the consumer

    The default. `bx` is a full `(h + 2) x w` buffer: each of its values is computed
    exactly once, but for a large image the buffer is larger than the caches, so
    `by` reads it back from main memory.
    """),
    code("""
    s_root = td.create_schedule(by)
    print(td.lower(s_root, args))
    """),
    md("""
    ## 3. compute_inline: no intermediate at all

    `compute_inline` substitutes `bx`'s expression into `by`. The lowered code has
    no `bx` any more: each output computes the three `bx` values it needs, so every
    `bx` value is computed three times (once per output that reads it).
    """),
    code("""
    s_inline = td.create_schedule(by)
    s_inline[bx].compute_inline()
    print(td.lower(s_inline, args))
    """),
    md("""
    ## 4. compute_at a tile: the region each tile needs

    Tile the output in 32 x 256 blocks and compute `bx` inside the loop over tiles.
    isl works out the region of `bx` one tile reads, from the accesses of `by`:
    34 rows (32 plus the 2-row halo) by 256 columns. That is the size of the private
    buffer in the lowered code, `alloc float32[34, 256]`, small enough to stay in
    the L2 cache while the tile uses it.
    """),
    code("""
    def at_tiles(ty, tx):
        s = td.create_schedule(by)
        _, xo, _, _ = s[by].tile(*by.op.axis, ty, tx)   # (y_outer, x_outer, y_inner, x_inner)
        s[bx].compute_at(s[by], xo)
        return s

    s_at = at_tiles(32, 256)
    print(td.lower(s_at, args))
    """),
    md("""
    The domain of `bx` is no longer the whole image: it is indexed by the tile
    (the `o_by_...` dimensions, the loops it is computed in) and, inside, ranges over
    the rows `32 y_outer ... 32 y_outer + 33` of that tile. Neighbouring tiles
    overlap by two rows: those rows are computed twice.
    """),
    code("""
    bx_domain = td.poly.domains(s_at)["bx"]
    print(bx_domain)
    """),
    md("""
    ## 5. How much redundant work? Count it

    The domain of the `bx` statement *is* the list of `bx` evaluations, so isl can
    count them: enumerate its points at small sizes. Compare with the formulas:
    compute_root evaluates `(h + 2) w`, a tile of `ty` rows evaluates `ty + 2` rows of
    `bx` for `ty` rows of output, and inlining evaluates 3 per output. Per output
    pixel, that is `(h+2)/h ~ 1`, `(ty + 2) / ty` and `3`.
    """),
    code("""
    def bx_evaluations(schedule, sizes):
        domain = td.poly.domains(schedule)["bx"]
        return len(td.poly.points(domain, sizes, limit=10 ** 6))

    H, W = 64, 64
    print(f"h = w = {H}: {H * W} outputs")
    print(f"  compute_root:   {bx_evaluations(s_root, {'h': H, 'w': W}):6d} bx evaluations "
          f"(formula (h + 2) w = {(H + 2) * W})")
    for ty, tx in ((16, 16), (4, 16), (1, 64)):
        counted = bx_evaluations(at_tiles(ty, tx), {"h": H, "w": W})
        print(f"  at {ty:2d} x {tx:2d} tiles: {counted:6d} bx evaluations "
              f"(formula (h / ty) (ty + 2) w = {H // ty * (ty + 2) * W}), "
              f"{counted / (H * W):.2f} per output")
        assert counted == H // ty * (ty + 2) * W
    print(f"  compute_inline: {3 * H * W:6d} bx evaluations (3 per output, no bx stage)")
    """),
    md("""
    ## 6. The region each tile computes, and the halo

    `td.viz.regions` draws what isl derived: for 4 x 4 tiles of an 8 x 8 output, the
    region of `bx` each tile computes (one outline per tile, in its colour) and, in
    grey, the elements computed by more than one tile, with how many times. Each tile
    of 4 output rows needs 6 rows of `bx`; the two tiles of a column of tiles share
    two rows of `bx`, which both compute: the halo. Tiles side by side share no
    column, because `bx` is a blur along rows whose input is `inp`, not `bx`.
    """),
    code("""
    td.viz.regions(at_tiles(4, 4), bx, {h: 8, w: 8})
    """),
    md("""
    `td.viz.order` draws the order in which the schedule visits the output: the same
    4 x 4 tiles, each tile a colour, the points numbered in execution order. Within a
    tile the consumer runs row by row, after the tile has computed its 6 x 4 block of
    `bx` (the region above).
    """),
    code("""
    td.viz.order(at_tiles(4, 4), by, {h: 8, w: 8})
    """),
    md("""
    With the rows of tiles in parallel, the colours become threads instead: each
    colour is the set of points one iteration of the parallel loop computes, with its
    own path, since the threads run at the same time. `s[by].loops` lists the loops of
    `by` as the schedule made them, outermost first (notebook 1b).
    """),
    code("""
    s_lanes = at_tiles(4, 4)
    s_lanes[by].parallel(s_lanes[by].loops[0])
    td.viz.order(s_lanes, by, {h: 8, w: 8})
    """),
    md("""
    ## 7. What it buys: measure

    Now a 4096 x 4096 image (64 MiB per array, more than the caches hold), every
    stage vectorized along its rows so that the memory behaviour shows. `run` builds
    a placement, checks it against NumPy, and records the time with the work it
    does per output pixel and the size of its `bx` buffer. compute_root writes the
    whole 64 MiB `bx` to memory and reads it back; inline moves nothing but triples
    the arithmetic; tiles sit in between.
    """),
    code("""
    ROWS, COLS = 4096, 4096
    rng = np.random.default_rng(0)
    image = rng.random((ROWS + 2, COLS + 2), dtype=np.float32)
    out = np.empty((ROWS, COLS), dtype=np.float32)


    def numpy_blur(a):
        b = (a[:, :-2] + a[:, 1:-1] + a[:, 2:]) / 3
        return (b[:-2] + b[1:-1] + b[2:]) / 3


    expected = numpy_blur(image)
    table = {}


    def run(name, schedule, bx_per_output, buffer_bytes):
        mod = td.build(schedule, args)
        out.fill(np.nan)
        mod(image, out)
        assert np.allclose(out, expected, rtol=1e-5, atol=1e-6), name
        table[name] = (bx_per_output, buffer_bytes, mod.time(image, out, repeat=5).median)
        print(f"{name}: {table[name][2] * 1e3:.2f} ms")
        return mod


    def vectorized(s):
        \"\"\"The innermost loop of each stage as vector lanes (an inlined bx has none).\"\"\"
        s[by].vectorize(s[by].loops[-1])
        if not s[bx].inlined:
            s[bx].vectorize(s[bx].loops[-1])
        return s
    """),
    code("""
    run("compute_root", vectorized(td.create_schedule(by)), (ROWS + 2) / ROWS,
        (ROWS + 2) * COLS * 4)
    run("compute_inline", vectorized(s_inline), 3.0, 0)
    for ty, tx in ((4, 256), (32, 256), (128, 1024)):
        run(f"compute_at {ty} x {tx} tiles", vectorized(at_tiles(ty, tx)), (ty + 2) / ty,
            (ty + 2) * tx * 4)
    """),
    md("""
    ## 8. And in parallel

    Placement and parallelism interact. With compute_root, the threads share one
    memory bus and it is the limit; with tiles computed at the consumer (or inlined),
    each thread works on its own tiles in its own core's cache. Below, the outermost
    loop of each runs on parallel threads.
    """),
    code("""
    s_root_par = vectorized(td.create_schedule(by))
    s_root_par[by].parallel(by.op.axis[0])
    s_root_par[bx].parallel(bx.op.axis[0])
    run("compute_root, parallel", s_root_par, (ROWS + 2) / ROWS, (ROWS + 2) * COLS * 4)

    s_inline_par = vectorized(td.create_schedule(by))
    s_inline_par[bx].compute_inline()
    s_inline_par[by].parallel(by.op.axis[0])
    run("compute_inline, parallel", s_inline_par, 3.0, 0)

    s_par = vectorized(at_tiles(32, 256))
    s_par[by].parallel(s_par[by].loops[0])
    final = run("compute_at 32 x 256, parallel", s_par, 34 / 32, 34 * 256 * 4)
    print(f"({os.cpu_count()} cores)")
    """),
    md("""
    ## 9. Check against NumPy, and the timing table

    Every variant was checked against NumPy as it was measured; here is the last one
    once more, then the table. NumPy computes the blur as whole-image array
    operations: compute_root, with a temporary image for every `+`.
    """),
    code(NP_TIME),
    code("""
    out.fill(np.nan)
    final(image, out)
    print("max |tdsl - NumPy| =", float(np.abs(out - expected).max()))
    assert np.allclose(out, expected, rtol=1e-5, atol=1e-6)

    table["NumPy"] = (1.0, (ROWS + 2) * COLS * 4, np_time(lambda: numpy_blur(image)))
    print(td.machine.describe(), "| load average:", os.getloadavg()[0])
    base = table["compute_root"][2]
    print_table(("placement of bx", "bx per output", "bx buffer", "ms", "x root"), [
        (name, f"{per:.2f}", f"{buf / 1024:.0f} KiB", f"{t * 1e3:.2f}", f"{base / t:.2f}")
        for name, (per, buf, t) in table.items()])
    """),
    md("""
    **What to remember.** compute_root does no redundant work and has the worst
    locality; compute_inline has perfect locality and the most redundant work;
    compute_at a tile trades a halo of recomputation (`(ty + 2) / ty`) for a buffer
    that fits in cache. isl derives the region each tile needs, so any tile size is
    correct; which one is fastest is a measurement.

    **Try it.** (a) Change `at_tiles` to compute `bx` at `y_outer` instead of
    `x_outer` (a strip of full rows per tile). Predict the number of `bx` evaluations
    at `h = w = 64` with 16-row tiles and check it with
    `assert bx_evaluations(s, {"h": 64, "w": 64}) == your_number`; then find the new
    buffer's shape in `td.lower` (the `alloc` line). (b) Compute it at `y_inner` (one
    output row at a time): predict and check the evaluations the same way. How many
    per output pixel?
    Solution: `tutorials/solutions/04_producers_consumers.py`.
    """),
]
