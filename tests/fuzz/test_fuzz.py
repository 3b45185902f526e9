"""CI's share of the differential fuzzer (`python -m tdsl.testing.fuzz`).

A fixed seed keeps a known set of cases green; today's date as a second seed
explores new ones every day. A failure prints the reproducer scripts' paths and
their first lines; fix the bug and keep the case in test_regressions.py.
"""

from __future__ import annotations

import datetime
import os

from tdsl.testing.fuzz import fuzz, reproducer, summary

CASES = int(os.environ.get("TDSL_FUZZ_CASES", 240))
FIXED_SEED = 16


def test_fuzz_fixed_seed_and_todays_date(tmp_path):
    today = int(datetime.date.today().strftime("%Y%m%d"))
    log = []
    outcomes = fuzz(CASES, [FIXED_SEED, today], jobs=2, timeout=120, out_dir=tmp_path,
                    log=log.append)
    failed = [o for o in outcomes if not o.passed]
    assert len(outcomes) == CASES
    assert not failed, summary(outcomes, 0) + "\n" + "\n".join(log) + "\n\n" + \
        reproducer(failed[0])


def test_reproducer_replays_a_case(tmp_path):
    from tdsl.testing.fuzz import run_case
    out = run_case(FIXED_SEED, 3)
    assert out.passed, out.detail
    script = reproducer(out)
    compile(script, "case.py", "exec")
    assert f"seed {FIXED_SEED}, case 3" in script and "check_outputs(" in script
