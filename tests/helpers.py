"""The differential helper most tests use: build, run on random data, compare.

`check(s, args, sizes)` asserts scheduled == unscheduled == td.reference, and
returns the scheduled outputs so a test can also compare with plain NumPy.
"""

from __future__ import annotations

import numpy as np

import tdsl as td
from tdsl.testing import random_array, run, tolerance


def check(schedule, args, sizes=None, seed=0, inputs=None):
    """assert_equivalent, then the scheduled outputs (for a NumPy comparison)."""
    sizes = sizes or {}
    rng = np.random.default_rng(seed)
    feeds = dict(inputs or {})
    for t in args:
        if isinstance(t.op, td.lang.PlaceholderOp) and t not in feeds:
            feeds[t] = random_array(t, sizes, rng)
    td.testing.assert_equivalent(schedule, args, sizes, seed, feeds)
    outs = run(td.build(schedule, args), args, sizes, feeds)
    return feeds, outs


def assert_close(got, want, dtype="float32"):
    rtol, atol = tolerance(dtype)
    if np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(got, want, rtol=rtol * 10, atol=atol * 10)
    else:
        np.testing.assert_array_equal(got, want)
