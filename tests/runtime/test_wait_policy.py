"""`import tdsl` makes OpenMP's waiting threads spin briefly (GOMP_SPINCOUNT=5000) unless the
user chose a policy."""

import os
import subprocess
import sys

import pytest

SHOW = "import os, tdsl; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"


@pytest.mark.parametrize("given,expected", [
    ({}, "None 5000"),
    ({"OMP_WAIT_POLICY": "active"}, "active None"),
    ({"GOMP_SPINCOUNT": "10000"}, "None 10000"),
    ({"OMP_WAIT_POLICY": "passive"}, "passive None"),
])
def test_wait_policy_default_and_the_users_choice(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(given)
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split("\n")[0] == expected
