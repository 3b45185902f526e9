"""td.tune measures its fastest candidates again before it names a winner.

A search keeps the minimum of noisy times, so a candidate measured fast once by luck
would win over a truly faster one. The runner below times nothing (no gcc): each
candidate's true time is a fixed function of its C, and its first measurement is that
time scaled by a pseudo-random factor of 0.3-1.0 (a lucky first call); later ones are
exact. After the confirmation rounds the winner must be the truly fastest of the
candidates confirmed, with its true time.
"""

from __future__ import annotations

import hashlib

import tdsl as td
from tdsl.tuning.search import CONFIRM_TOP

from .programs import blur


def _unit(text: bytes, salt: bytes) -> float:
    return int(hashlib.sha256(salt + text).hexdigest()[:6], 16) / 2**24


class LuckyFirstRunner:
    """The runner protocol (start, compile, measure, close) with lucky first calls."""

    def __init__(self):
        self.seen: set[bytes] = set()

    def start(self, checks) -> None:
        pass

    def compile(self, jobs):
        return [source.encode() for source, _ in jobs]

    def true_seconds(self, library: bytes) -> float:
        return 1e-3 * (1 + _unit(library, b"true"))

    def measure(self, libraries):
        results = []
        for lib in libraries:
            seconds = self.true_seconds(lib)
            if lib not in self.seen:
                seconds *= 0.3 + 0.7 * _unit(lib, b"luck")
                self.seen.add(lib)
            results.append({"seconds": seconds, "times": [seconds]})
        return results

    def close(self) -> None:
        pass


def test_the_winner_is_the_fastest_by_its_confirmed_median(tmp_path):
    inp, by = blur()
    runner = LuckyFirstRunner()
    log = tmp_path / "tune.jsonl"
    result = td.tune(by, [inp, by], trials=24, runner=runner, seed=3, progress=False, log=log)
    confirmed = [r for r in result.history if r["result"].get("confirmed")]
    assert len(confirmed) == CONFIRM_TOP
    # each confirmed median is the candidate's true time: 1 lucky of 4 measurements
    truth = {r["fingerprint"]: runner.true_seconds(_library(result, r)) for r in confirmed}
    assert all(r["result"]["seconds"] == truth[r["fingerprint"]] for r in confirmed)
    assert result.seconds == min(truth.values())
    # the lucky minimum of the raw measurements is below every true time
    raw = min(r["result"]["seconds"] for r in result.history if r["trial"] is not None)
    assert raw < result.seconds
    # apply_best replays the confirmed winner, not the lucky one
    inp, by = blur()
    s = td.apply_best(log, by, [inp, by])
    assert s.history == result.schedule.history


def _library(result, record) -> bytes:
    """What the runner was given to build for `record`'s candidate: its C."""
    from tdsl.backends.c import library_text
    from tdsl.schedule import lower
    from tdsl.tuning.space import Space
    candidate = Space(result.workload).realize(record["choices"])
    lowered = lower(candidate.schedule, result.workload.args)
    return library_text(lowered, result.workload.target).encode()
