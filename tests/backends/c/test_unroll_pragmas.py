"""An unrolled loop whose trip count is not known (a ragged register tile's rows at
symbolic sizes) is left to gcc with a pragma: `GCC unroll 8` where its body is straight
code, `GCC unroll 1` where its body holds loops (gcc copied the vector loops and their
remainders 8 times: one tuning candidate took gcc 37 s on AVX-512). The kernel is right
on every target this CPU runs, at dividing and ragged sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tdsl as td

from ...schedule.test_idioms import gemm_tvm_style

TARGETS = {"avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


def _loop_after(source: str, at: int) -> str:
    """The text of the loop that starts after position `at` (its braces balanced)."""
    start = source.index("{", at)
    depth = 0
    for k in range(start, len(source)):
        depth += {"{": 1, "}": -1}.get(source[k], 0)
        if depth == 0:
            return source[at:k + 1]
    return source[at:]


@pytest.mark.parametrize("target", list(TARGETS))
def test_gcc_unrolls_only_straight_bodies(target):
    lanes = td.target(TARGETS[target]).lanes("float32")
    # TVM's register tile at symbolic sizes: 8 rows x 2 vectors of C_local at the column
    # tile, k outermost in it, rows and column vectors unrolled
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    s, args = gemm_tvm_style(n, m, l, 8, 2 * lanes, lanes, fuse=False)
    mod = td.build(s, args, target=TARGETS[target])
    body = mod.source[mod.source.index("int kernel("):]
    eights = [m.end() for m in re.finditer(r"#pragma GCC unroll 8\n", body)]
    ones = [m.end() for m in re.finditer(r"#pragma GCC unroll 1\n", body)]
    assert ones and all(body[at:].lstrip().startswith("for") for at in eights + ones)
    for at in eights:                         # straight code: no loop inside
        assert "for (" not in _loop_after(body, at)[4:]
    if not td.target(TARGETS[target]).runs_here():
        pytest.skip(f"{target} code compiled; this CPU cannot run it")
    rng = np.random.default_rng(0)
    for n, l, m in ((16, 7, 4 * lanes), (13, 9, 3 * lanes + 5), (3, 2, 5)):
        a = rng.standard_normal((n, l)).astype("float32")
        b = rng.standard_normal((l, m)).astype("float32")
        c = np.empty((n, m), "float32")
        mod(a, b, c)
        np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
