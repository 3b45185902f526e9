"""W5, two-stage 3x3 box blur: blur_x computed per tile of blur_y (Halide's blur app).

blur_y is tiled 32 rows x 256 columns; each tile computes the 34 x 256 rows of
blur_x it needs (the 2-row halo is recomputed, 6%) into a private buffer that
stays in L1/L2, both stages in native vectors, tiles of rows in parallel. The
"inline" variant recomputes blur_x inside blur_y instead (`blur_inline`).
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel


def blur(h: int, w: int, tile_y: int = 32, tile_x: int = 256):
    """(schedule, args) for an (h + 2) x (w + 2) input and an h x w output."""
    inp = td.placeholder((h + 2, w + 2), name="inp")
    bx = td.compute((h + 2, w), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2])
                    * (1.0 / 3), name="bx")
    by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) * (1.0 / 3),
                    name="by")
    s = td.create_schedule(by)
    y, x = by.op.axis
    yo, xo, yi, xi = s[by].tile(y, x, tile_y, tile_x)
    s[by].vectorize(xi)
    s[by].parallel(yo)
    s[bx].compute_at(s[by], xo)
    s[bx].vectorize(bx.op.axis[1])
    return s, [inp, by]


def blur_inline(h: int, w: int, rows: int = 16):
    """(schedule, args): blur_x inlined into blur_y (TVM's MetaSchedule's choice): 9
    loads per output, all but a row's first from L1, and no intermediate buffer; strips
    of `rows` rows in parallel, rows in native vectors. Past the cache the blur is bound
    by memory, so the recomputed adds are free and the output streams past the cache."""
    inp = td.placeholder((h + 2, w + 2), name="inp")
    bx = td.compute((h + 2, w), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2])
                    * (1.0 / 3), name="bx")
    by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) * (1.0 / 3),
                    name="by")
    s = td.create_schedule(by)
    s[bx].compute_inline()
    y, x = by.op.axis
    yo, _ = s[by].split(y, factor=rows)
    s[by].parallel(yo)
    s[by].vectorize(x)
    return s, [inp, by]


def _prepare_inline(inputs):
    x = inputs["x"]
    s, args = blur_inline(x.shape[0] - 2, x.shape[1] - 2)
    return prepare_kernel(s, args, [x], (x.shape[0] - 2, x.shape[1] - 2))


def _prepare(inputs, tile_y: int, tile_x: int):
    x = inputs["x"]
    s, args = blur(x.shape[0] - 2, x.shape[1] - 2, tile_y, tile_x)
    return prepare_kernel(s, args, [x], (x.shape[0] - 2, x.shape[1] - 2))


# tile shapes: Halide's app uses 32 x 256; taller tiles recompute less halo
VARIANTS = {
    f"{ty}x{tx}": (lambda inputs, ty=ty, tx=tx: _prepare(inputs, ty, tx))
    for ty, tx in ((32, 256), (8, 4096), (16, 4096), (32, 4096))
}
VARIANTS["inline"] = _prepare_inline
