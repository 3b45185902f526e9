"""W7, row sums: the reduction factored into vector lanes (rfactor), rows in parallel.

A float sum does not vectorize by itself (reassociation), so the reduction over k
is split by the lanes and factored over the inner positions: one partial sum per lane,
kept in one vector register while the row streams through, then added up.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel, reduce_in_lanes



def rowsum(n: int, m: int, lanes: int):
    x = td.placeholder((n, m), name="x")
    k = td.reduce_axis(m, name="k")
    total = td.compute((n,), lambda i: td.sum(x[i, k], axis=k), name="total")
    s = td.create_schedule(total)
    partial = reduce_in_lanes(s, total, lanes)
    (i,) = total.op.axis
    s[partial].compute_at(s[total], i)
    s[total].parallel(i)
    return s, [x, total]


def _prepare(inputs, lanes: int):
    x = inputs["x"]
    s, args = rowsum(*x.shape, lanes=lanes)
    return prepare_kernel(s, args, [x], (x.shape[0],))


VARIANTS = {f"lanes{n}": (lambda inputs, n=n: _prepare(inputs, n))
            for n in (td.target().lanes(), 2 * td.target().lanes(), 4 * td.target().lanes())}
