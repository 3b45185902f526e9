"""Kernels gcc 12.2 miscompiles without tdsl's workarounds (plain C reproducers are in the
comments of tdsl/backends/c/build.py and prelude.py)."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_tensors_named_like_c_functions():
    """Found by the td.grad work: nn.tanh's stage (named `tanh`) became a C buffer that hid
    tanh(), and gcc failed; such arrays get another C name, the arguments keep theirs."""
    x = td.placeholder((5,), dtype="float64", name="exp")
    t = td.compute((5,), lambda i: td.tanh(x[i]) + td.exp(x[i]), name="tanh")
    kernel = td.compute((5,), lambda i: t[i] * 2.0, name="kernel")
    a = np.linspace(-1, 1, 5)
    out = np.zeros(5)
    mod = td.build(td.create_schedule(kernel), [x, kernel])
    mod(a, out)
    np.testing.assert_allclose(out, (np.tanh(a) + np.exp(a)) * 2, rtol=1e-12)
    with pytest.raises(ValueError, match="argument exp should have shape"):
        mod(np.zeros(4), out)
