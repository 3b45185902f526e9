"""A vectorized pure loop around a serial reduction loop (Halide's `out.update().vectorize(x)`
with the reduction inside): the lanes run in lockstep through the reduction, each vector's
accumulator a vector. Checked against NumPy for sum and max, constant ragged and symbolic
sizes, AVX2 and SSE2 (AVX-512 compiled, run where the CPU has it)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tdsl as td

TARGETS = {"sse2": "c -mcpu=x86-64", "avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


def _column_reduction(rows, cols, reducer, width):
    A = td.placeholder((rows, cols), name="A")
    i = td.reduce_axis(rows, name="i")
    C = td.compute((cols,), lambda j: reducer(A[i, j], axis=i), name="C")
    s = td.create_schedule(C)
    jo, ji = s[C].split(C.op.axis[0], width)
    s[C].vectorize(ji)
    s[C].parallel(jo)
    return s, A, C


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("reduce_name", ["sum", "max"])
def test_column_reduction_with_vector_accumulators(target, reduce_name):
    reducer = {"sum": td.sum, "max": td.max}[reduce_name]
    s, A, C = _column_reduction(13, 70, reducer, 32)
    mod = td.build(s, [A, C], target=TARGETS[target])
    inner = mod.source[mod.source.index("for (int64_t i = 0L"):]
    assert re.search(r"\*\(tdsl_f32x\d+_u\*\)&C\[", inner.split("}")[0]), inner[:600]
    if not td.target(TARGETS[target]).runs_here():
        pytest.skip(f"{target} code compiled; this CPU cannot run it")
    a = np.random.default_rng(1).standard_normal((13, 70), dtype=np.float32)
    c = np.full(70, np.nan, np.float32)
    mod(a, c)
    expected = a.sum(0) if reduce_name == "sum" else a.max(0)
    np.testing.assert_allclose(c, expected, rtol=1e-5)


def test_column_reduction_with_symbolic_sizes():
    n, m = td.var("n"), td.var("m")
    s, A, C = _column_reduction(n, m, td.sum, 16)
    mod = td.build(s, [A, C], target="c -mcpu=x86-64-v3")
    for rows, cols in [(1, 1), (5, 16), (9, 47), (3, 100)]:
        a = np.random.default_rng(rows).standard_normal((rows, cols), dtype=np.float32)
        c = np.full(cols, np.nan, np.float32)
        mod(a, c)
        np.testing.assert_allclose(c, a.sum(0), rtol=1e-5, atol=1e-6)
