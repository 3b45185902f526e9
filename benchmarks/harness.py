"""The measurement method: check, warm up, then interleaved round-robin timing.

For one workload, every implementation (numpy, TVM, Halide, tdsl, and the machine-limit
row) has been prepared into a `run()` callable. The harness

1. checks each implementation's result against the float64 reference before any timing
   (a wrong result is an error, never a timing);
2. warms each one up (`warmup` untimed calls);
3. runs `rounds` rounds; in each round every implementation, in an order rotated by one
   each round, gets untimed calls for at least `switch_warm_s` (at least one call) to
   absorb the switch from the previous implementation (caches, sleeping thread pools,
   worker threads that the OS woke on the busy core and has not yet moved), and then
   `calls` timed calls. Before each implementation the harness sleeps `settle_s`, so that
   idle worker threads of the previous runtime (OpenBLAS, libgomp, TVM and Halide pools
   all spin for a while before sleeping; OpenBLAS for ~0.1 s) stop taking a core;
4. reports per implementation the median, the 10th percentile and the interquartile range
   of all timed calls (`rounds * calls` of them).

Timing is `time.perf_counter()` around one Python call of `run()`.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .peers import PeerUnavailable


class WrongResult(AssertionError):
    """An implementation's output does not match the float64 reference."""


@dataclass
class Impl:
    """One row of a workload's rotation. `status` is "ok", or why it is not timed."""
    name: str
    run: Callable[[], None] | None = None
    result: Callable[[], np.ndarray] | None = None
    compile_s: float | None = None
    compile_hit_s: float | None = None
    status: str = "ok"            # ok | not available | skipped | wrong | error
    reason: str = ""
    schedule: str = ""
    is_limit: bool = False
    amount: float = 0.0           # flops or bytes per call, for perf
    unit: str = ""
    samples: list[float] = field(default_factory=list)
    traceback_text: str = ""

    @property
    def timed(self) -> bool:
        return self.status == "ok" and self.run is not None


@dataclass(frozen=True)
class Stats:
    median_s: float
    p10_s: float
    iqr_s: float
    n: int

    @staticmethod
    def of(samples: list[float]) -> "Stats":
        a = np.asarray(samples)
        q10, q25, q50, q75 = np.percentile(a, [10, 25, 50, 75])
        return Stats(float(q50), float(q10), float(q75 - q25), len(a))


def prepare_impl(name: str, prepare: Callable[[], tuple], **meta) -> Impl:
    """Call `prepare()` -> (run, result, compile_s). A missing peer becomes status
    "skipped", any other exception status "error" (with its traceback kept)."""
    try:
        run, result, compile_s = prepare()
    except PeerUnavailable as e:
        return Impl(name, status="skipped", reason=str(e), **meta)
    except Exception as e:
        return Impl(name, status="error", reason=f"{type(e).__name__}: {e}",
                    traceback_text=traceback.format_exc(), **meta)
    return Impl(name, run=run, result=result, compile_s=compile_s, **meta)


def check(impl: Impl, workload, ref: np.ndarray) -> None:
    """Run once and compare with `ref`; sets status "wrong"/"error" (and reason) if not."""
    if not impl.timed or impl.is_limit:
        return
    try:
        impl.run()
        out = impl.result()
    except Exception as e:
        impl.status, impl.reason = "error", f"{type(e).__name__}: {e}"
        impl.traceback_text = traceback.format_exc()
        return
    msg = workload.check(out, ref)
    if msg is not None:
        impl.status, impl.reason = "wrong", msg


def measure(impls: list[Impl], *, rounds: int, calls: int, warmup: int = 2,
            settle_s: float = 0.15, switch_warm_s: float = 0.03,
            flush: Callable[[], object] | None = None,
            progress: Callable[[str], None] | None = None) -> None:
    """Fill `impl.samples` for every timed implementation, round-robin interleaved.
    With `flush`, it is called (untimed) before every timed call, e.g. to evict L3."""
    live = [im for im in impls if im.timed]
    for im in live:
        for _ in range(warmup):
            im.run()
    for r in range(rounds):
        shift = r % len(live) if live else 0
        for im in live[shift:] + live[:shift]:
            time.sleep(settle_s)
            t_switch = time.perf_counter()
            im.run()                       # untimed: absorbs the switch
            while time.perf_counter() - t_switch < switch_warm_s:
                im.run()
            for _ in range(calls):
                if flush is not None:
                    flush()
                t0 = time.perf_counter()
                im.run()
                im.samples.append(time.perf_counter() - t0)
        if progress:
            progress(f"round {r + 1}/{rounds}")
