"""Notebook 6, a deep-learning layer end to end: conv2d + bias + ReLU, fused and
register-tiled, checked and timed against NumPy."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 6. A deep-learning layer, end to end: conv2d + bias + ReLU

    *Builds on notebook 2 (the register tile, packing, threads) and notebook 4
    (`compute_at` and `compute_inline`: where a stage is computed).*

    The layer every convolutional network is made of: a 3 x 3 convolution with
    zero padding, plus a bias per output channel, then ReLU, in the NCHW layout
    (batch, channels, height, width). We write it as three stages, fuse the stages
    (compute one inside another's loops, as in notebook 4),
    schedule the convolution with a register tile as in notebook 2 (this is the
    schedule of `benchmarks/schedules/w2_conv2d.py`), and check and time it against
    NumPy.

    The sizes are one layer of a ResNet-like network: 32 input channels, 64 output
    channels, a 56 x 56 image, batch 1.
    """),
    code("""
    import os
    import statistics
    import time

    import numpy as np

    import tdsl as td

    BATCH, CIN, HEIGHT, WIDTH, COUT = 1, 32, 56, 56, 64
    FLOPS = 2 * BATCH * COUT * CIN * HEIGHT * WIDTH * 9
    print(f"{FLOPS / 1e6:.0f} MFLOP per call")
    print("CPU:", td.machine.describe())
    """),
    md("""
    ## 1. The layer in NumPy

    First the reference. The convolution is written as *im2col*: the nine shifted
    copies of the padded input are stacked, so that the convolution becomes one
    matrix multiply by the weights, which NumPy hands to its BLAS library. This is
    how many frameworks run convolutions on a CPU.
    """),
    code("""
    def numpy_layer(x, w, bias):
        n, c, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.stack([xp[:, :, dy:dy + h, dx:dx + wd] for dy in range(3)
                         for dx in range(3)], axis=2).reshape(n, c * 9, h * wd)
        out = (w.reshape(w.shape[0], c * 9) @ cols).reshape(n, w.shape[0], h, wd)
        return np.maximum(out + bias[None, :, None, None], 0)


    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, CIN, HEIGHT, WIDTH), dtype=np.float32)
    w = (rng.standard_normal((COUT, CIN, 3, 3), dtype=np.float32) * 0.1).astype(np.float32)
    bias = rng.standard_normal(COUT, dtype=np.float32)
    expected = numpy_layer(x, w, bias)
    print("output:", expected.shape, "| fraction zeroed by ReLU:",
          f"{(expected == 0).mean():.2f}")
    """),
    md("""
    ## 2. The layer in tdsl

    Three stages. `pad` adds the zero border with a `td.select`, so the convolution
    itself needs no bounds tests. `conv` is a reduction over input channels and the
    3 x 3 window. `out` adds the bias and applies ReLU. `check` builds a schedule,
    compares with NumPy and records the time.
    """),
    code("""
    def layer():
        x = td.placeholder((BATCH, CIN, HEIGHT, WIDTH), name="x")
        w = td.placeholder((COUT, CIN, 3, 3), name="w")
        bias = td.placeholder((COUT,), name="bias")
        pad = td.compute((BATCH, CIN, HEIGHT + 2, WIDTH + 2), lambda n, c, y, xx: td.select(
            td.all(y >= 1, y <= HEIGHT, xx >= 1, xx <= WIDTH), x[n, c, y - 1, xx - 1], 0.0),
            name="pad")
        rc, ry, rx = (td.reduce_axis(CIN, name="rc"), td.reduce_axis(3, name="ry"),
                      td.reduce_axis(3, name="rx"))
        conv = td.compute((BATCH, COUT, HEIGHT, WIDTH), lambda n, k, y, xx: td.sum(
            pad[n, rc, y + ry, xx + rx] * w[k, rc, ry, rx], axis=[rc, ry, rx]), name="conv")
        out = td.compute((BATCH, COUT, HEIGHT, WIDTH),
                         lambda n, k, y, xx: td.maximum(conv[n, k, y, xx] + bias[k], 0.0),
                         name="out")
        return [x, w, bias, out], (pad, conv, out)


    seconds, modules = {}, {}
    result = np.empty_like(expected)


    def check(name, schedule, args, repeat=3):
        mod = modules[name] = td.build(schedule, args)
        result.fill(np.nan)
        mod(x, w, bias, result)
        err = float(np.abs(result - expected).max())
        assert err < 1e-3, f"{name}: max error {err}"
        seconds[name] = mod.time(x, w, bias, result, repeat=repeat).median
        print(f"{name}: {seconds[name] * 1e3:.2f} ms, {FLOPS / seconds[name] / 1e9:.1f} "
              f"GFLOP/s, max |error| {err:.1e}")


    args, (pad, conv, out) = layer()
    s = td.create_schedule(out)
    print(td.lower(s, args))
    check("three stages at the root", s, args)
    """),
    md("""
    ## 3. Fusing the stages (stage fusion, notebook 4)

    As written, `conv` is a full 64 x 56 x 56 buffer (784 KiB) written by one loop
    nest and read back by the next. The bias and ReLU are cheap; they should be
    applied while each result is still in a register or in L1. A reduction cannot be
    inlined into its consumer (each use would redo the whole sum), and tdsl says so:
    """),
    code("""
    try:
        s[conv].compute_inline()
    except td.ScheduleError as e:
        print(e)
    """),
    md("""
    As the message suggests, compute `conv` *at* a loop of `out` instead: here one
    output row at a time, so `conv` becomes a private buffer of 56 values, used
    immediately by the bias and ReLU. The padding stays a stage at the root for now.
    """),
    code("""
    args, (pad, conv, out) = layer()
    s = td.create_schedule(out)
    n, k, y, xx = out.op.axis
    s[conv].compute_at(s[out], y)
    print(td.lower(s, args))
    check("conv computed per row of out", s, args)
    """),
    md("""
    The other way to fuse is to inline, and `pad` is a pure stage, so inlining it is
    legal: the padded copy of the input disappears (no pass over the input, no
    buffer). But its `select` (is this pixel inside the image?) moves into the
    innermost loop of the reduction, where it is evaluated 288 times per output
    (32 channels x 3 x 3) instead of once per padded pixel. Which effect wins is a
    measurement:
    """),
    code("""
    s[pad].compute_inline()
    print(td.lower(s, args))
    check("conv per row, pad inlined", s, args)
    t_stage = seconds["conv computed per row of out"]
    t_inline = seconds["conv per row, pad inlined"]
    print(f"with pad inlined the layer took {t_inline / t_stage:.2f} times as long as with "
          f"pad as a stage ({'faster' if t_inline < t_stage else 'slower'} here)")
    """),
    md("""
    The cell above printed both times. Whichever won here, the padding stays a stage
    in what follows, for a reason that is about the next step rather than this one:
    the register tile below loads `pad` as whole vectors at fixed offsets in its
    innermost, unrolled loop, and that needs the padded values to be in memory with
    no test in front of each load. A padded copy costs one pass over the input, a
    few percent of the convolution's time.
    """),
    md("""
    ## 4. The register tile

    Now the schedule that makes it fast, following notebook 2. The accumulators
    of a block of 14 pixels x `LANES` output channels (`LANES` = the floats in one
    vector: 8 on AVX2, 16 on AVX-512) are kept in registers over the whole
    reduction: 14 vectors, plus one for the weights and one for the broadcast input
    value, 16 registers (all of AVX2's 16, half of AVX-512's 32; the next cell checks).
    For that, the block is computed in a *channels-innermost* layout
    (`block[n, k // LANES, y, x, k % LANES]`), the weights are re-laid out to match
    (`wt[k // LANES, c, ry, rx, k % LANES]`, `LANES` consecutive output channels per
    load), and the last stage reads the block back into NCHW while adding the bias
    and applying ReLU: the whole epilogue is fused into the copy.
    """),
    code("""
    LANES = td.target().lanes("float32")   # output channels per vector
    STRIP = 14                             # pixels per tile (56 = 4 x 14)
    registers = STRIP + 2                  # accumulators, weights, broadcast input
    print(f"{LANES} channels per vector; register tile {STRIP} x {LANES}: {registers} of "
          f"{td.target().vector_registers} vector registers")
    assert registers <= td.target().vector_registers and COUT % LANES == 0


    def tiled_layer():
        x = td.placeholder((BATCH, CIN, HEIGHT, WIDTH), name="x")
        w = td.placeholder((COUT, CIN, 3, 3), name="w")
        bias = td.placeholder((COUT,), name="bias")
        pad = td.compute((BATCH, CIN, HEIGHT + 2, WIDTH + 2), lambda n, c, y, xx: td.select(
            td.all(y >= 1, y <= HEIGHT, xx >= 1, xx <= WIDTH), x[n, c, y - 1, xx - 1], 0.0),
            name="pad")
        wt = td.compute((COUT // LANES, CIN, 3, 3, LANES),
                        lambda ko, c, ry, rx, ki: w[ko * LANES + ki, c, ry, rx], name="wt")
        rc, ry, rx = (td.reduce_axis(CIN, name="rc"), td.reduce_axis(3, name="ry"),
                      td.reduce_axis(3, name="rx"))
        block = td.compute((BATCH, COUT // LANES, HEIGHT, WIDTH, LANES),
                           lambda n, ko, y, xx, ki: td.sum(
                               pad[n, rc, y + ry, xx + rx] * wt[ko, rc, ry, rx, ki],
                               axis=[rc, ry, rx]), name="block")
        out = td.compute((BATCH, COUT, HEIGHT, WIDTH), lambda n, k, y, xx: td.maximum(
            block[n, k // LANES, y, xx, k % LANES] + bias[k], 0.0), name="out")
        return [x, w, bias, out], (pad, wt, block, out)
    """),
    md("""
    The schedule: tile `out` by `LANES` channels x 14 pixels; compute `block` at each
    tile (`compute_at` at `xx_outer`, a private 14 x `LANES` buffer); inside, the
    reduction loops go outside the tile's pixels, the 14 pixels are unrolled and
    the `LANES` channels vectorized. The padding is vectorized along its rows.
    """),
    code("""
    args, (pad, wt, block, out) = tiled_layer()
    s = td.create_schedule(out)
    n, k, y, xx = out.op.axis
    ko, ki = s[out].split(k, factor=LANES)
    xo, xi = s[out].split(xx, factor=STRIP)
    s[out].reorder(n, ko, y, xo, ki, xi)
    s[block].compute_at(s[out], xo)
    bn, bko, by, bxx, bki = block.op.axis
    rc, ry, rx = block.op.reduce_axis
    s[block].reorder(bn, bko, by, rc, ry, rx, bxx, bki)
    s[block].unroll(bxx)
    s[block].vectorize(bki)
    s[pad].vectorize(pad.op.axis[3])
    print(td.lower(s, args))
    check(f"register tile {STRIP} x {LANES}", s, args)
    """),
    md("""
    ## 5. Parallel

    The tiles are independent. Fusing the loops over channel blocks and rows (the
    loop primitive `fuse` of notebook 1b) gives `64 / LANES x 56` iterations to share
    between the cores (448 on AVX2, 224 on AVX-512); the padding and the weight
    re-layout run in parallel over input channels. (As in notebook 2: if another
    program keeps a core busy, the threads wait for it and the gain can vanish.)
    """),
    code("""
    s[out].parallel(s[out].fuse(ko, y))
    s[pad].parallel(pad.op.axis[1])
    s[wt].parallel(wt.op.axis[1])
    print(s)
    check(f"+ parallel ({os.cpu_count()} cores)", s, args, repeat=5)
    """),
    md("""
    ## 6. Check against NumPy, and the timing table

    The final kernel once more on fresh random inputs, then every version next to
    NumPy's im2col + BLAS. The layer does 2 x 64 x 32 x 56 x 56 x 9 = 115.6 million
    floating-point operations per call.
    """),
    code(NP_TIME),
    code("""
    x2 = rng.standard_normal(x.shape, dtype=np.float32)
    modules[f"+ parallel ({os.cpu_count()} cores)"](x2, w, bias, result)
    want = numpy_layer(x2, w, bias)
    print("max |tdsl - NumPy| =", float(np.abs(result - want).max()))
    assert np.allclose(result, want, rtol=1e-4, atol=1e-4)

    seconds["NumPy (im2col + BLAS)"] = np_time(lambda: numpy_layer(x, w, bias))
    print(td.machine.describe(), "| load average:", os.getloadavg()[0])
    t_np = seconds["NumPy (im2col + BLAS)"]
    print_table(("conv2d + bias + ReLU", "ms", "GFLOP/s", "x NumPy"), [
        (name, f"{t * 1e3:.2f}", f"{FLOPS / t / 1e9:.1f}", f"{t_np / t:.2f}")
        for name, t in seconds.items()])
    """),
    md("""
    **What to remember.** A layer is a few stages; the epilogue (bias, activation)
    belongs inside the loops that produce each result, and a reduction is fused by
    `compute_at`, never inlined. The fast convolution is the matrix-multiply lesson
    again: a register tile of accumulators, operands laid out so that each load is
    one vector, then threads.

    **Try it.** In the schedule of section 3 ("conv computed per row of out"), compute
    `pad` at the rows of `out` too (`s[pad].compute_at(s[out], y)`): each output row
    then pads just the input rows its convolution reads. How many rows of `pad` does
    one output row need, and how many `pad` values are computed in all (a halo, as in
    notebook 4; mind which loops are around `y`)? Predict the number, then check it with
    `assert td.poly.count(s, {}, writes="pad") == your_number`, and check the result
    with `check(...)`.
    Solution: `tutorials/solutions/06_dl_layer.py`.
    """),
]
