"""A float32 loop that computes in float64 (gelu's and erf's float64 evaluation): its lanes
are converted to a float64 vector of as many lanes (two native vectors, which GCC splits)
and back, instead of being built one by one; the results equal the scalar evaluation's
bit for bit, on every target this CPU runs, at sizes that do and do not fill a vector."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tdsl as td
from tdsl import nn

TARGETS = {"sse2": "c -mcpu=x86-64", "avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("width", [64, 37])
def test_float64_inside_a_float32_vector_loop(target, width):
    x = td.placeholder((5, width), name="x")
    y = nn.gelu(x)
    e = nn.erf(x)
    lanes = td.target(TARGETS[target]).lanes("float32")
    s = td.create_schedule([y, e])
    for t in (y, e):
        _, ji = s[t].split(t.op.axis[1], lanes)
        s[t].vectorize(ji)
    mod = td.build(s, [x, y, e], target=TARGETS[target])
    body = mod.source[mod.source.index("int kernel("):]
    assert f"tdsl_f64x{lanes})" in body and "__builtin_convertvector" in body
    plain = td.build(td.create_schedule([y, e]), [x, y, e], target=TARGETS[target])
    if not td.target(TARGETS[target]).runs_here():
        pytest.skip(f"{target} code compiled; this CPU cannot run it")
    a = (np.random.default_rng(width).standard_normal((5, width)) * 3).astype("float32")
    outs = [np.empty_like(a), np.empty_like(a)]
    mod(a, *outs)
    want = [np.empty_like(a), np.empty_like(a)]
    plain(a, *want)
    for got, ref in zip(outs, want):
        np.testing.assert_array_equal(got, ref)
    erf = np.vectorize(math.erf)(a.astype(np.float64))
    assert np.abs(outs[1] - erf).max() < 1e-7


def test_a_float64_loop_reading_float32_of_two_lanes():
    """A float64 loop of 2 lanes reading float32 (there is no 2-lane float32 vector): its
    float32 lanes are built one by one, as before."""
    n = td.var("n")
    A = td.placeholder((n, 12), name="A")
    k = td.reduce_axis((3, 9), name="k")
    C = td.compute((n,), lambda i: td.min(A[i, k] - k, axis=k), name="C")
    s = td.auto_schedule(C)
    mod = td.build(s, [A, C])
    a = np.random.default_rng(0).standard_normal((6, 12)).astype("float32")
    out = np.empty(6, C.dtype)
    mod(a, out)
    want = (a[:, 3:9].astype(np.float64) - np.arange(3, 9)).min(1)
    np.testing.assert_allclose(out, want, rtol=1e-6)
