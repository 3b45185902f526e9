"""The evolutionary search measures out a space whose elite neighbourhood it exhausts.

The search is what is under test here, not the kernels: the runner below times nothing
(its "time" of a candidate is a fixed pseudo-random function of the generated C, a
rugged landscape), so the test runs without gcc. Every candidate is still realized and
proven legal by isl and lowered to C, as in a real search.
"""

from __future__ import annotations

import hashlib

import pytest

import tdsl as td

from .programs import blur


class LandscapeRunner:
    """The runner protocol (start, compile, measure, close) with a made-up landscape."""

    def start(self, checks) -> None:
        pass

    def compile(self, jobs):
        return [source.encode() for source, _ in jobs]

    def measure(self, libraries):
        return [{"seconds": 1e-3 * (1 + int(hashlib.sha256(lib).hexdigest()[:6], 16) / 2**24)}
                for lib in libraries]

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_evolution_restarts_at_random_when_its_neighbourhood_is_measured_out():
    # the blur's space holds 104 schedules; before the restarts the search stopped after
    # 70-85 of them (three rounds in which every mutation of the elite was measured)
    inp, by = blur()
    result = td.tune(by, [inp, by], trials=100, runner=LandscapeRunner(), seed=1,
                     progress=False)
    measured = [r for r in result.history if r["trial"] is not None]
    assert len(measured) == 100
    assert len({r["fingerprint"] for r in measured}) == 100      # no schedule twice
    assert result.refused == 0 and result.errors == 0
