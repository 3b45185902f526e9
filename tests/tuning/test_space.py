"""The pieces of the search: knobs, deferred legality checks, candidates."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl.auto.knobs import Knobs
from tdsl.tuning.space import Space
from tdsl.tuning.workload import Workload
from tests.tuning.test_tune import SIZES, matmul, softmax


def test_knobs_take_the_config_or_the_default():
    knobs = Knobs({"C.tile_rows": 4, "C.pack": "maybe"})
    assert knobs.choose("C.tile_rows", (2, 4, 6), 6) == 4
    assert knobs.choose("C.pack", (True, False), True) is True          # invalid -> default
    assert knobs.choose("C.other", (1, 2), 3) == 3
    assert knobs.space["C.other"] == ((3, 1, 2), 3)                     # default offered first
    assert knobs.chosen == {"C.tile_rows": 4, "C.pack": True, "C.other": 3}


def test_deferred_checks_prove_the_whole_schedule_once():
    A, B, C = matmul()
    s = td.create_schedule(C)
    i, j = C.op.axis
    (k,) = C.op.reduce_axis
    with s.deferred_checks():
        s[C].parallel(i)
        s[C].vectorize(j)
    assert len(s.history) == 2
    with pytest.raises(td.ScheduleError, match="carries a dependence of C on itself"):
        with s.deferred_checks():
            s[C].reorder(i, k, j)
            s[C].parallel(k)                  # illegal, found on leaving
    assert len(s.history) == 2                # back where it was
    with pytest.raises(td.ScheduleError):
        s[C].parallel(k)                      # checked again outside


def test_the_default_candidate_is_the_auto_schedule():
    x, out = softmax()
    workload = Workload(out, [x, out], {"n": 16, "m": 100})
    space = Space(workload)
    default = space.realize({})
    assert default.schedule.script() == td.auto_schedule(out).script()
    assert {"out.row_pipeline", "mx.lane_vectors", "total.lane_vectors"} <= set(space.knobs)
    rng = np.random.default_rng(0)
    seen = {default.key}
    for _ in range(6):
        c = space.realize(space.mutate(default.choices, rng))
        assert not c.refused
        seen.add(c.key)
    assert len(seen) > 3                      # mutations give other schedules


def test_a_configuration_sets_its_knobs_and_the_schedule():
    A, B, C = matmul()
    workload = Workload([C], [A, B, C], SIZES)
    c = Space(workload).realize({"C.tile_rows": 4})
    assert not c.refused and c.choices["C.tile_rows"] == 4
    assert "split(i, factor=4)" in c.schedule.script()
