"""A select on loop indices inside a vectorized loop (a pad stage, a zero-padded panel):
vectors inside the region take the true value with vector loads; vectors at its border
are built lane by lane. Checked against NumPy on every target this CPU runs, with sizes
that do and do not divide the vectors, and a symbolic size."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tdsl as td

TARGETS = {"sse2": "c -mcpu=x86-64", "avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


def _pad(size, lanes_split=8):
    x = td.placeholder((size, size), name="x")
    P = td.compute((size + 2, size + 2), lambda i, j: td.select(
        td.all(i >= 1, i <= size, j >= 1, j <= size), x[i - 1, j - 1], 0.0), name="P")
    s = td.create_schedule(P)
    _, j = P.op.axis
    _, ji = s[P].split(j, lanes_split)
    s[P].vectorize(ji)
    return s, x, P


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("size", [14, 21, 30])
def test_pad_stage_vectorized_with_vector_loads_inside(target, size):
    s, x, P = _pad(size, 16 if target == "avx512" else 8)
    mod = td.build(s, [x, P], target=TARGETS[target])
    # the interior test: first and last lane, then one vector load of x
    assert re.search(r"\) \? \(tdsl_f32x\d+\)\(\(?\*\(tdsl_f32x\d+_u\*\)&x\[", mod.source), \
        mod.source[-3000:]
    if not td.target(TARGETS[target]).runs_here():
        pytest.skip(f"{target} code compiled; this CPU cannot run it")
    a = np.random.default_rng(size).random((size, size), dtype=np.float32)
    out = np.full((size + 2, size + 2), np.nan, np.float32)
    mod(a, out)
    np.testing.assert_array_equal(out, np.pad(a, 1))


def test_pad_stage_with_a_symbolic_size():
    n = td.var("n")
    s, x, P = _pad(n)
    mod = td.build(s, [x, P], target="c -mcpu=x86-64-v3")
    for size in (5, 16, 23):
        a = np.random.default_rng(size).random((size, size), dtype=np.float32)
        out = np.full((size + 2, size + 2), np.nan, np.float32)
        mod(a, out)
        np.testing.assert_array_equal(out, np.pad(a, 1))


@pytest.mark.parametrize("cond_name", ["ne", "or", "mod"])
def test_selects_not_monotone_in_the_lane_stay_lane_by_lane(cond_name):
    """`!=`, `or` and a `%` can be true at both ends of a vector and false between: the
    shortcut must not apply."""
    m = 37
    a = td.placeholder((m,), name="a")
    conds = {"ne": lambda j: j != 3, "or": lambda j: td.any(j < 2, j > 6),
             "mod": lambda j: j % 5 < 4}
    out = td.compute((m,), lambda j: td.select(conds[cond_name](j), a[j], -1.0), name="out")
    s = td.create_schedule(out)
    _, ji = s[out].split(out.op.axis[0], 8)
    s[out].vectorize(ji)
    mod = td.build(s, [a, out], target="c -mcpu=x86-64-v3")
    x = np.arange(m, dtype=np.float32)
    got = np.empty(m, np.float32)
    mod(x, got)
    j = np.arange(m)
    keep = {"ne": j != 3, "or": (j < 2) | (j > 6), "mod": j % 5 < 4}[cond_name]
    np.testing.assert_array_equal(got, np.where(keep, x, -1.0))
