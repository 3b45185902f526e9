"""Kernels gcc 12.2 miscompiles without tdsl's workarounds (plain C reproducers are in the
comments of tdsl/backends/c/build.py and prelude.py)."""

from __future__ import annotations

import numpy as np

import tdsl as td


def test_select_in_a_small_odd_loop_under_if_conversion():
    """-O3 -mavx2 if-converts and vectorizes the j loop around a fully unrolled c loop of 5
    and writes 4 wrong elements; -fno-tree-loop-if-convert (DEFAULT_CFLAGS) avoids it."""
    a = td.placeholder((3, 5), dtype="int64", name="a")
    h = td.placeholder((3, 5), dtype="float64", name="h")
    g = td.compute((3, 4, 5), lambda i, j, c: td.select(a[i, c] == j, h[i, c], 0.0), name="g")
    av = (np.arange(15).reshape(3, 5) * 7) % 4
    hv = np.arange(1, 16, dtype="float64").reshape(3, 5)
    out = np.zeros((3, 4, 5))
    td.build(td.create_schedule(g), [a, h, g], target="c -mcpu=x86-64-v3")(av, hv, out)
    want = np.where(av[:, None, :] == np.arange(4)[None, :, None], hv[:, None, :], 0.0)
    np.testing.assert_array_equal(out, want)
