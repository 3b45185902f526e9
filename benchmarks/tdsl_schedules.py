"""Finds and prepares tdsl's implementations from benchmarks/schedules/.

The module for workload W1 is benchmarks/schedules/w1_gemm.py (any `w1_*.py` is accepted),
with `prepare(inputs) -> (run, result, compile_s)`, the peers' contract. A module may
instead offer several schedules as `VARIANTS = {"name": prepare, ...}`: each is timed as
"tdsl:name" and the fastest is reported as "tdsl". Every workload also gets "tdsl:auto": its
algorithm as a user writes it (schedules/auto.py) under td.auto_schedule, and "tdsl:tuned":
the same algorithm under the best schedule of benchmarks/tuning/log.jsonl (td.apply_best;
benchmarks/tune.py makes the log); neither is counted as the hand schedule.

Compile time: run.py points TDSL_CACHE_DIR at a fresh directory, so the first `prepare`
is a cold compile; `prepare` is then called a second time and its compile_s is the cache
hit. The second preparation is the one timed.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .harness import Impl, prepare_impl

SCHEDULE_DIR = Path(__file__).resolve().parent / "schedules"


def find_module(workload) -> Path | None:
    exact = SCHEDULE_DIR / f"{workload.module}.py"
    if exact.exists():
        return exact
    found = sorted(SCHEDULE_DIR.glob(f"{workload.id.lower()}_*.py"))
    return found[0] if found else None


def prepare_all(workload, inputs: dict) -> list[Impl]:
    meta = dict(amount=workload.amount, unit=workload.unit)
    path = find_module(workload)
    if path is None:
        return [Impl("tdsl", status="not available",
                     reason=f"no benchmarks/schedules/{workload.module}.py", **meta)]
    try:
        mod = importlib.import_module(f"benchmarks.schedules.{path.stem}")
    except Exception as e:
        import traceback
        return [Impl("tdsl", status="error", reason=f"import {path.name}: "
                     f"{type(e).__name__}: {e}", traceback_text=traceback.format_exc(),
                     **meta)]
    variants = dict(getattr(mod, "VARIANTS", None) or {"": mod.prepare})
    from .schedules import auto
    if workload.id in auto.ALGORITHMS:          # the algorithm under td.auto_schedule
        variants["auto"] = lambda inputs: auto.prepare(workload.id, inputs, workload.out_shape)
        # and under the best schedule of its tuning log (benchmarks/tune.py)
        variants["tuned"] = lambda inputs: auto.prepare_tuned(workload.id, inputs,
                                                              workload.out_shape)
    impls = []
    for vname, prep in variants.items():
        name = f"tdsl:{vname}" if vname else "tdsl"
        desc = f"{path.name}" + (f" [{vname}]" if vname else "")
        cold = prepare_impl(name, lambda prep=prep: prep(_copy(inputs)), schedule=desc, **meta)
        if cold.status != "ok":
            impls.append(cold)
            continue
        cold_s = cold.compile_s
        del cold
        hit = prepare_impl(name, lambda prep=prep: prep(_copy(inputs)), schedule=desc, **meta)
        if hit.status == "ok":
            hit.compile_hit_s, hit.compile_s = hit.compile_s, cold_s
        impls.append(hit)
    return impls


def _copy(inputs: dict) -> dict:
    return {k: v.copy() for k, v in inputs.items()}


def with_best(recs: dict) -> dict:
    """If tdsl ran as variants, add "tdsl" = the fastest of them (first in the dict)."""
    variants = {k: r for k, r in recs.items() if k.startswith("tdsl:") and
                k not in ("tdsl:auto", "tdsl:tuned")}
    if not variants:
        return recs
    ok = {k: r for k, r in variants.items() if r["median_s"] is not None}
    if ok:
        best_name = min(ok, key=lambda k: ok[k]["median_s"])
        best = dict(ok[best_name], variant=best_name.split(":", 1)[1])
    else:
        best = {"status": "error", "reason": "no tdsl variant produced a timing",
                "median_s": None}
    return {"tdsl": best, **recs}
