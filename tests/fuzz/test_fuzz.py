"""CI's share of the differential fuzzer (`python -m tdsl.testing.fuzz`).

A fixed seed keeps a known set of cases green; today's date as a second seed
explores new ones every day. A failure prints the reproducer scripts' paths and
their first lines; fix the bug and keep the case in test_regressions.py.
"""

from __future__ import annotations

import datetime
import os

import pytest

from tdsl.testing.fuzz import fuzz, reproducer, summary

CASES = int(os.environ.get("TDSL_FUZZ_CASES", 80))
FIXED_SEED = 16
STREAMED_CASES = int(os.environ.get("TDSL_FUZZ_STREAMED_CASES", 20))


@pytest.mark.slow
def test_fuzz_fixed_seed_and_todays_date(tmp_path):
    today = int(datetime.date.today().strftime("%Y%m%d"))
    log = []
    # cases 60-99 of each seed: they hold the concurrent build (case 75) and the killed
    # build (case 99) of tdsl.testing.fuzz
    outcomes = fuzz(CASES, [FIXED_SEED, today], jobs=2, timeout=120, out_dir=tmp_path,
                    start=60, log=log.append)
    failed = [o for o in outcomes if not o.passed]
    assert len(outcomes) == CASES
    assert not failed, summary(outcomes, 0) + "\n" + "\n".join(log) + "\n\n" + \
        reproducer(failed[0])


@pytest.mark.slow
def test_fuzz_with_every_large_output_streamed(tmp_path, monkeypatch):
    """A last-level cache of 256 bytes (TDSL_LLC_BYTES, inherited by the fuzzer's
    workers): every output the kernel only writes takes the streamed stores
    (backends/c/render.streamed_outputs) wherever its vector loops write a cache line."""
    monkeypatch.setenv("TDSL_LLC_BYTES", "256")
    outcomes = fuzz(STREAMED_CASES, [FIXED_SEED + 1], jobs=2, timeout=120, out_dir=tmp_path,
                    log=lambda _: None)
    failed = [o for o in outcomes if not o.passed]
    assert len(outcomes) == STREAMED_CASES
    assert not failed, summary(outcomes, 0) + "\n\n" + reproducer(failed[0])


def test_reproducer_replays_a_case(tmp_path):
    from tdsl.testing.fuzz import run_case
    out = run_case(FIXED_SEED, 3)
    assert out.passed, out.detail
    script = reproducer(out)
    compile(script, "case.py", "exec")
    assert f"seed {FIXED_SEED}, case 3" in script and "check_outputs(" in script


@pytest.mark.slow
def test_a_crash_and_a_hang_become_failures_with_reproducers(tmp_path, monkeypatch):
    monkeypatch.setenv("TDSL_FUZZ_SELFTEST", "crash:1,hang:2")
    outcomes = fuzz(4, [FIXED_SEED], jobs=2, timeout=10, out_dir=tmp_path, log=lambda _: None)
    by_index = {o.index: o for o in outcomes}
    assert sorted(by_index) == [0, 1, 2, 3]
    assert by_index[1].failure == "crash" and by_index[2].failure == "hang"
    assert by_index[0].passed and by_index[3].passed
    script = (tmp_path / f"seed{FIXED_SEED}_case1.py").read_text()
    assert "# <- crash" in script and "import tdsl as td" in script
    assert (tmp_path / f"seed{FIXED_SEED}_case2.py").exists()
