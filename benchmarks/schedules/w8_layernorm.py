"""W8, layernorm over the last axis: mean and variance in one pass, per row.

Sum and sum of squares are factored into vector lanes each (rfactor) and computed at
the row loop, then var = E[x^2] - mean^2 (what TOPI's layer norm does), and the
row is normalized in native vectors. A row is read from memory once (the second
read hits L1) and written once; the normalizing pass prefetches the next row.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel, reduce_in_lanes

EPS = 1e-5


def layernorm(n: int, m: int, lanes: int, eps: float = EPS):
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    total = td.compute((n,), lambda i: td.sum(x[i, k1], axis=k1), name="total")
    squares = td.compute((n,), lambda i: td.sum(x[i, k2] * x[i, k2], axis=k2), name="squares")
    mean = td.compute((n,), lambda i: total[i] * (1.0 / m), name="mean")
    scale = td.compute((n,), lambda i: 1.0 / td.sqrt(
        td.maximum(squares[i] * (1.0 / m) - mean[i] * mean[i], 0.0) + eps), name="scale")
    out = td.compute((n, m), lambda i, j: (x[i, j] - mean[i]) * scale[i], name="out")

    s = td.create_schedule(out)
    i, j = out.op.axis
    s[out].parallel(i)
    s[out].vectorize(j)
    s[scale].compute_at(s[out], i)
    s[mean].compute_at(s[out], i)
    for red in (squares, total):
        part = reduce_in_lanes(s, red, lanes)
        s[red].compute_at(s[out], i)
        s[part].compute_at(s[out], i)
    # the last of the three passes over a row fetches the next row (Stage.prefetch)
    s[out].prefetch(x, i)
    return s, [x, out]


def _prepare(inputs, lanes: int):
    x = inputs["x"]
    s, args = layernorm(*x.shape, lanes=lanes)
    return prepare_kernel(s, args, [x], x.shape)


VARIANTS = {f"lanes{n}": (lambda inputs, n=n: _prepare(inputs, n))
            for n in (td.target().lanes(), 2 * td.target().lanes(), 4 * td.target().lanes())}
