"""Finite differences for every differentiable kernel of tests/test_kernels.py.

The kernels are those tests' own definitions (kernel_sweep.py captures them; none is
copied here), with float64 inputs, at the tests' sizes: symbolic sizes bound to the
smallest and the largest of each test's list (ragged ones such as 13 x 33 included),
and the tests with constant shapes. td.grad's adjoints, evaluated by td.reference, must
match central differences of the forward kernel within a relative error of 1e-6
(common.gradcheck; nothing is compiled: the builds of adjoints are checked in the other
files of this folder). `test_coverage` lists what is skipped and why.
"""

from __future__ import annotations

import pytest

from tdsl.lang import dtypes

from .common import gradcheck
from .kernel_sweep import feeds_for, sweep_cases

CASES, SKIPPED = sweep_cases()


@pytest.mark.parametrize("kernel", CASES, ids=[k.test for k in CASES])
def test_gradient_matches_finite_differences(kernel):
    wrt = [t for t in kernel.placeholders if dtypes.is_float(t.dtype)]
    for n, output in enumerate(o for o in kernel.outputs if dtypes.is_float(o.dtype)):
        gradcheck(output, wrt, feeds_for(kernel, seed=n), sizes=kernel.sizes, seed=n,
                  schedules=())


def test_coverage():
    """Most of the suite's float kernels are swept; every skip has a reason of a known
    kind (integer results, recurrences, custom reducers, explicit narrow casts)."""
    kinds = ("no float output", "no float input", "a recurrence", "narrower float type",
             "td.grad refuses it", "not captured")
    assert len(CASES) >= 70, len(CASES)          # 78 when this was written
    for test, reason in SKIPPED.items():
        assert reason.startswith(kinds) or any(k in reason for k in kinds), (test, reason)
    print(f"{len(CASES)} kernels swept; skipped: " +
          "; ".join(f"{t}: {r}" for t, r in sorted(SKIPPED.items())))
