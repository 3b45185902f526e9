"""W6, transpose: 16 x 16 tiles, staged through a tile buffer in L1.

A tile of the input is read row by row (contiguous vectors) into a local 16 x 16
buffer; the output tile is then written row by row (contiguous vectors), reading
the buffer by columns. Tiles of rows run in parallel.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel


def transpose(n: int, m: int, tile: int = 16, staged: bool = True):
    x = td.placeholder((n, m), name="x")
    out = td.compute((m, n), lambda i, j: x[j, i], name="out")
    s = td.create_schedule(out)
    i, j = out.op.axis
    io, jo, ii, ji = s[out].tile(i, j, tile, tile)
    s[out].parallel(io)
    s[out].vectorize(ji)
    if staged:
        xl = s.cache_read(x, "local", [out])
        s[xl].compute_at(s[out], jo)
        s[xl].vectorize(xl.op.axis[1])
    return s, [x, out]


def _prepare(inputs, tile: int, staged: bool):
    x = inputs["x"]
    s, args = transpose(*x.shape, tile=tile, staged=staged)
    return prepare_kernel(s, args, [x], (x.shape[1], x.shape[0]))


VARIANTS = {
    "staged-16": lambda inputs: _prepare(inputs, 16, True),
    "direct-8": lambda inputs: _prepare(inputs, 8, False),
    "direct-16": lambda inputs: _prepare(inputs, 16, False),
    "direct-32": lambda inputs: _prepare(inputs, 32, False),
}
