"""W2, conv2d NCHW, 3x3, pad 1: a register tile of pixels x output channels.

The peers' lesson: pad in a separate stage (no bounds tests in the reduction), and
keep a block of outputs in registers over the whole (c, r, s) reduction. The block
is computed in a channels-innermost layout (16 output channels are one vector, the
weights re-laid out as `wt[k // 16, c, r, s, k % 16]`), computed inside each
(channel block, row, 14-pixel strip) of the NCHW output, which copies it out.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel


def conv2d(batch: int, c: int, h: int, w: int, k: int, lanes: int, strip: int):
    """(schedule, args) for a 3x3, stride 1, pad 1 convolution with blocks of `lanes`
    output channels (one or more vectors); k must divide by lanes."""
    x = td.placeholder((batch, c, h, w), name="x")
    wts = td.placeholder((k, c, 3, 3), name="w")
    pad = td.compute((batch, c, h + 2, w + 2), lambda n, ci, y, xx: td.select(
        td.all(y >= 1, y <= h, xx >= 1, xx <= w), x[n, ci, y - 1, xx - 1], 0.0), name="pad")
    wt = td.compute((k // lanes, c, 3, 3, lanes),
                    lambda ko, ci, r, s, ki: wts[ko * lanes + ki, ci, r, s], name="wt")
    rc, ry, rx = (td.reduce_axis(c, name="rc"), td.reduce_axis(3, name="ry"),
                  td.reduce_axis(3, name="rx"))
    block = td.compute((batch, k // lanes, h, w, lanes), lambda n, ko, y, xx, ki: td.sum(
        pad[n, rc, y + ry, xx + rx] * wt[ko, rc, ry, rx, ki], axis=[rc, ry, rx]), name="block")
    out = td.compute((batch, k, h, w),
                     lambda n, kk, y, xx: block[n, kk // lanes, y, xx, kk % lanes], name="out")

    s = td.create_schedule(out)
    n, kk, y, xx = out.op.axis
    ko, ki = s[out].split(kk, factor=lanes)
    xo, xi = s[out].split(xx, factor=strip)
    s[out].reorder(n, ko, y, xo, ki, xi)
    s[out].parallel(s[out].fuse(ko, y))
    s[block].compute_at(s[out], xo)
    bn, bko, by, bx, bki = block.op.axis
    s[block].reorder(bn, bko, by, rc, ry, rx, bx, bki)
    s[block].unroll(bx)
    s[block].vectorize(bki)
    pn, pc, py, px = pad.op.axis
    s[pad].parallel(pc)
    s[pad].vectorize(px)
    wko, wc, wr, ws, wki = wt.op.axis
    s[wt].parallel(s[wt].fuse(wko, wc))
    return s, [x, wts, out]


def _prepare(inputs, lanes: int, strip: int):
    x, w = inputs["x"], inputs["w"]
    batch, c, h, wd = x.shape
    s, args = conv2d(batch, c, h, wd, w.shape[0], lanes=lanes, strip=strip)
    return prepare_kernel(s, args, [x, w], (batch, w.shape[0], h, wd))


def _variants():
    """(output channels per block, pixels per strip) for the target. A block is
    channels / lanes vectors x strip pixels of accumulators, plus the weight vectors and
    one broadcast pixel, within the vector registers: on AVX2 (16 ymm) 8 x 12 and 16 x 6
    (12 accumulators) and 8 x 14; on AVX-512 (32 zmm) TVM's 16 x 14, 16 x 7, 32 x 7 (loads
    half as many pixels per FMA) and 32 x 8."""
    lanes = td.target().lanes()
    if td.target().vector_registers < 32:
        shapes = ((lanes, 12), (2 * lanes, 6), (lanes, 14))
    else:
        shapes = ((lanes, 14), (lanes, 7), (2 * lanes, 7), (2 * lanes, 8))
    return {f"k{k}x{strip}": (lambda inputs, k=k, strip=strip: _prepare(inputs, k, strip))
            for k, strip in shapes}


VARIANTS = _variants()
