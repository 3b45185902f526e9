"""Timing one candidate, in a worker process: load its library, check it, time it.

Runs where the measurement happens (a local worker process or a Ray task on some node),
so it imports only the runtime and NumPy. A wrong output is an error of kind "wrong
result" (a compiler bug: the search reports it loudly); an error the kernel returns is
"runtime error". Crashes and hangs are caught by the runner that owns the process.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

MIN_REPEAT_SECONDS = 0.01       # one timed repeat runs the kernel at least this long
REPEATS = 5
# A kernel whose arrays take more than this share of the last-level cache is timed from a
# flushed cache, one call at a time (as benchmarks/run.py and MetaSchedule's runner time
# memory-bound kernels): back to back, the next call finds part of its data in the cache,
# and the search then chose schedules that win only there (W7's row sum, Zen 3: the tuned
# schedule 4% behind the hand one under run.py's flushed timing, though ahead back to back).
FLUSH_SHARE = 0.5
FLUSHED_REPEATS = 11


def measure(library: bytes, full, small: list, repeats: int = REPEATS) -> dict:
    """{"seconds": median seconds per call, "times": [...]} or {"error": kind,
    "detail": message}. `full` and `small` are `workload.Checked` calls."""
    from ..errors import TdslError
    from ..runtime.module import load
    with tempfile.TemporaryDirectory(prefix="tdsl-measure-") as folder:
        path = os.path.join(folder, "candidate.so")
        with open(path, "wb") as f:
            f.write(library)
        try:
            module = load(path)
        except TdslError as exc:
            return {"error": "load error", "detail": str(exc)}
        try:
            for checked in [*small, full]:
                wrong = _check(module, checked)
                if wrong:
                    return {"error": "wrong result", "detail": wrong}
            return _time(module, full, repeats)
        except TdslError as exc:
            return {"error": "runtime error", "detail": str(exc)}


def _check(module, checked) -> str | None:
    arrays = [a.copy() for a in checked.arrays]
    module(*arrays)
    for k, want, (rtol, atol) in zip(checked.outputs, checked.expected, checked.tolerances):
        got = arrays[k]
        if got.dtype.kind == "f":
            ok = np.allclose(got, want, rtol=rtol * 10, atol=atol * 10, equal_nan=True)
        else:
            ok = np.array_equal(got, want)
        if not ok:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            where = np.unravel_index(int(np.nanargmax(diff)), diff.shape)
            return (f"argument {k} ({checked.label}): {int((diff > 0).sum())} elements "
                    f"differ; at {tuple(int(i) for i in where)} got {got[where]}, expected "
                    f"{want[where]}")
    return None


def _time(module, full, repeats: int) -> dict:
    from ..target import last_level_cache_bytes
    arrays = [a.copy() for a in full.arrays]
    run = module.bind(*arrays)
    start = time.perf_counter()
    run()                                            # warm-up: pages, caches, threads
    once = max(time.perf_counter() - start, 1e-7)
    cache = last_level_cache_bytes()
    if sum(a.nbytes for a in arrays) > FLUSH_SHARE * cache:
        return _time_flushed(run, max(repeats, FLUSHED_REPEATS), cache)
    number = max(1, int(MIN_REPEAT_SECONDS / once))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            run()
        times.append((time.perf_counter() - start) / number)
    return {"seconds": statistics.median(times), "times": times}


def _time_flushed(run, repeats: int, cache: int) -> dict:
    """One call per repeat, each after writing a buffer twice the last-level cache."""
    flush = np.zeros(2 * cache, np.uint8)
    times = []
    for _ in range(repeats):
        flush += 1
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "times": times, "flushed": True}
