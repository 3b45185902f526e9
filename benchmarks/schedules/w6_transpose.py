"""W6, transpose: two levels of tiles, the outer for the TLB, the inner for vectors.

A 4096 x 4096 transpose reads one row in 4 KiB pages and writes another: with
small tiles alone, every 64-byte line touched is on a different page. Blocks of
128 x 128 keep a block's 2 x 128 pages in the TLB; inside a block, 8 x 8 tiles
are written as rows of vectors (each gathered from a column of the input) with
the tile's rows unrolled. Blocks of rows run in parallel.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel


def transpose(n: int, m: int, block: int, tile: int):
    x = td.placeholder((n, m), name="x")
    out = td.compute((m, n), lambda i, j: x[j, i], name="out")
    s = td.create_schedule(out)
    i, j = out.op.axis
    io, jo, ii, ji = s[out].tile(i, j, block, block)
    iio, iii = s[out].split(ii, factor=tile)
    jio, jii = s[out].split(ji, factor=tile)
    s[out].reorder(io, jo, jio, iio, iii, jii)
    s[out].parallel(io)
    s[out].unroll(iii)
    s[out].vectorize(jii)
    return s, [x, out]


def _prepare(inputs, block: int, tile: int):
    x = inputs["x"]
    s, args = transpose(*x.shape, block=block, tile=tile)
    return prepare_kernel(s, args, [x], (x.shape[1], x.shape[0]))


def _variants():
    """(block, vector tile): tiles of one native vector (8 x 8 floats on AVX2, 16 x 16 on
    AVX-512), also 8 x 8 on AVX-512, in 128- or 64-blocks; one level of 16 x 16 tiles."""
    lanes = td.target().lanes()
    shapes = dict.fromkeys(((128, lanes), (64, lanes), (128, 8), (16, 16)))
    return {f"{block}x{block}/{tile}x{tile}": (lambda inputs, b=block, t=tile:
                                               _prepare(inputs, b, t))
            for block, tile in shapes}


VARIANTS = _variants()
