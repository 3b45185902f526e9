"""td.tune's timing: a kernel whose arrays take more than half the last-level cache is
timed one call at a time after a flush (`measure.FLUSH_SHARE`), as benchmarks/run.py and
MetaSchedule's runner time memory-bound kernels; a smaller one back to back."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import tdsl as td
from tdsl.tuning import measure


def _module():
    x = td.placeholder((64, 64), name="x")
    y = td.compute((64, 64), lambda i, j: x[i, j] * 2.0, name="y")
    return td.build(td.create_schedule(y), [x, y])


def test_large_arrays_are_timed_from_a_flushed_cache(monkeypatch):
    mod = _module()
    full = SimpleNamespace(arrays=(np.ones((64, 64), np.float32), np.zeros((64, 64), np.float32)))
    monkeypatch.setenv("TDSL_LLC_BYTES", str(32 * 1024))      # 32 KB of arrays > half of it
    result = measure._time(mod, full, measure.REPEATS)
    assert result["flushed"] and len(result["times"]) == measure.FLUSHED_REPEATS
    assert result["seconds"] == np.median(result["times"]) > 0
    monkeypatch.setenv("TDSL_LLC_BYTES", str(1 << 30))
    result = measure._time(mod, full, measure.REPEATS)
    assert "flushed" not in result and len(result["times"]) == measure.REPEATS
