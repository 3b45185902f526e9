"""W3, out = max(a * b + c, 0): rows in parallel, each row in native vectors.

Memory bound: the goal is to stream the three inputs once at full bandwidth, in
parallel blocks of rows large enough to keep both cores busy.
"""

from __future__ import annotations

import tdsl as td

from ._common import prepare_kernel


def fma_relu(n: int, m: int, rows_per_task: int = 16):
    a = td.placeholder((n, m), name="a")
    b = td.placeholder((n, m), name="b")
    c = td.placeholder((n, m), name="c")
    out = td.compute((n, m), lambda i, j: td.maximum(a[i, j] * b[i, j] + c[i, j], 0.0),
                     name="out")
    s = td.create_schedule(out)
    i, j = out.op.axis
    io, ii = s[out].split(i, factor=rows_per_task)
    s[out].parallel(io)
    s[out].vectorize(j)
    return s, [a, b, c, out]


def _prepare(inputs, rows: int):
    a, b, c = inputs["a"], inputs["b"], inputs["c"]
    s, args = fma_relu(*a.shape, rows_per_task=rows)
    return prepare_kernel(s, args, [a, b, c], a.shape)


VARIANTS = {f"rows{n}": (lambda inputs, n=n: _prepare(inputs, n)) for n in (16, 256)}
