"""td.auto_schedule on every kernel of tests/test_kernels.py: the same tests, with the
automatic schedule instead of the default one (scheduled == default == td.reference)."""

import pytest

import tdsl as td
import tests.test_kernels as kernels
from tests.helpers import check
from tests.test_kernels import *  # noqa: F401,F403  (the tests collected again, below)


def run_auto(outputs, args, sizes, inputs=None, seed=0):
    s = td.auto_schedule(outputs)
    return check(s, args, sizes, seed=seed, inputs=inputs)


@pytest.fixture(autouse=True)
def automatic_schedules(monkeypatch):
    monkeypatch.setattr(kernels, "run", run_auto)
