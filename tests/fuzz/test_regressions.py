"""Bugs the differential fuzzer found, each kept as the smallest program that showed it.

The comment on each test names the fuzz case (`python -m tdsl.testing.fuzz --seed S
--start I --cases 1` reruns it) and what went wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tests.helpers import check


def _recurrence():
    n = td.var("n")
    X = td.placeholder((n, 12), name="X")
    Y = td.compute((n, 12), lambda i, j: X[i, j] * 2.0, name="Y")
    r = td.reduce_axis((1, 12), name="r")
    Y = td.update(Y, lambda i: (i, r), lambda i: Y[i, r - 1] * 0.5 + X[i, r])
    return n, X, Y


def test_cache_read_for_the_update_of_the_same_tensor_is_refused():
    """seed 2, cases 141 and 250: a copy of Y made before Y's own update was read by
    the update, which then saw stale values (wrong results)."""
    n, X, Y = _recurrence()
    s = td.create_schedule(Y)
    base, update = s.stages[0], s.stages[1]
    with pytest.raises(td.ScheduleError, match="updates Y itself") as info:
        s.cache_read(base.op.output(0), "local", [update.op.output(0)])
    assert "Cache the reads of a stage that runs after the update" in str(info.value)
    assert len(s.stages) == 2 and not s.history
    x = np.random.default_rng(0).uniform(-1, 1, (5, 12)).astype("float32")
    _, (y,) = check(s, [X, Y], {n: 5}, inputs={X: x})


def test_cache_read_after_the_update_is_fine():
    n, X, Y = _recurrence()
    Z = td.compute((n, 12), lambda i, j: Y[i, j] + X[i, j], name="Z")
    s = td.create_schedule(Z)
    s.cache_read(Y, "local", [Z])
    check(s, [X, Z], {n: 4})


def test_cache_write_after_reorder_is_a_lesson_not_a_type_error():
    """seed 2, case 2: cache_write compared loop tuples with `!=`, which builds an
    expression (`ax1 == ax0`) and raised TdslTypeError instead of the lesson."""
    A = td.placeholder((6, 5), name="A")
    P = td.compute((6, 5), lambda i, j: A[i, j] * 2.0, name="P")
    s = td.create_schedule(P)
    i, j = P.op.axis
    s[P].reorder(j, i)
    with pytest.raises(td.ScheduleError, match="call cache_write before transforming"):
        s.cache_write(P, "global")
    check(s, [A, P])


def test_cache_read_for_the_update_after_rewriting_the_base_is_refused():
    """seed 20261201, case 211: after cache_read(X, [Y]) rewrote Y's stage, Y's update
    was no longer seen as a version of Y, and a copy of Y for the update was accepted
    (stale values)."""
    n, X, Y = _recurrence()
    s = td.create_schedule(Y)
    s.cache_read(X, "local", [s.stages[0].op.output(0)])
    base, update = s.stages[1], s.stages[2]
    with pytest.raises(td.ScheduleError, match="updates Y itself"):
        s.cache_read(base.op.output(0), "local", [update.op.output(0)])
    check(s, [X, Y], {n: 7})
