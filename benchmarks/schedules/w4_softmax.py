"""W4, row softmax: one row at a time in registers and L1, rows in parallel.

Per row: the maximum (factored into vector lanes), exp(x - max) into a private row
buffer with the vectorized polynomial exp, the sum of that row (in lanes), and
the normalized row. Every stage is computed at the row loop, so a row is read
from memory once and written once; the exp pass prefetches the next row.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel, reduce_in_lanes



def softmax(n: int, m: int, lanes: int):
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    row_max = td.compute((n,), lambda i: td.max(x[i, k1], axis=k1), name="row_max")
    e = td.compute((n, m), lambda i, j: td.exp(x[i, j] - row_max[i]), name="e")
    total = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
    # divided by the sum, as ONNX's Softmax defines it and every W4 row computes it (a
    # multiplication by the reciprocal is another float computation; 1-4% faster here)
    out = td.compute((n, m), lambda i, j: e[i, j] / total[i], name="out")

    s = td.create_schedule(out)
    i, j = out.op.axis
    s[out].parallel(i)
    s[out].vectorize(j)
    for red in (total, row_max):                    # consumers first
        part = reduce_in_lanes(s, red, lanes)
        s[red].compute_at(s[out], i)
        s[part].compute_at(s[out], i)
        if red is total:
            s[e].compute_at(s[out], i)
            s[e].vectorize(e.op.axis[1])
    # exp, the second pass over a row of x and the costly one, fetches the next row
    # (Stage.prefetch): the maximum's pass then finds it in the cache
    s[e].prefetch(x, e.op.axis[0])
    # the last pass fetches its next row of out for the write: its stores then find their
    # lines owned instead of each waiting on a read-for-ownership (2 threads, Zen 3, L3
    # flushed: 2.35 -> 2.18 ms median, 2.17 -> 1.85 ms p10)
    s[out].prefetch(out, i)
    return s, [x, out]


def _prepare(inputs, lanes: int):
    x = inputs["x"]
    s, args = softmax(*x.shape, lanes=lanes)
    return prepare_kernel(s, args, [x], x.shape)


# 16 lanes: one vector of partial results; 32 or 64: two or four independent vectors,
# which hides the latency of the reduction's additions
VARIANTS = {f"lanes{n}": (lambda inputs, n=n: _prepare(inputs, n))
            for n in (td.target().lanes(), 2 * td.target().lanes(), 4 * td.target().lanes())}
