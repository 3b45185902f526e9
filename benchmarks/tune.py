#!/usr/bin/env python3
"""Tune W1-W8 with td.tune and write the tuning curves into benchmarks/RESULTS.md.

    python benchmarks/tune.py [--workloads W3,W7] [--trials 300] [--target native]
                              [--baseline random,metaschedule] [--logs DIR]
                              [--ms-recorded-only]

Each workload's algorithm is the one of benchmarks/schedules/auto.py (as a user writes
it), at the sizes of benchmarks/workloads.py. The evolutionary search appends to
benchmarks/tuning/log.jsonl (the log the `tdsl:tuned` rows of benchmarks/run.py replay
with td.apply_best; the workload key names the CPU and target, so logs of several
machines share the file) and the random-search baseline to benchmarks/tuning/random.jsonl.
A run resumes what the logs already hold. The third curve is TVM's MetaSchedule with the
same trial budget on the same workload defined in TE (benchmarks/peers/tvm_metaschedule.py:
tune_tir with its defaults, XGBoost cost model, in a child process, num-cores =
TVM_NUM_THREADS or the number of cores); its record (best trace, curve) goes to
benchmarks/tuning/metaschedule.jsonl, where run.py's `tvm:metaschedule` row finds it, and a
record for the same workload, target, CPU and budget is reused instead of tuning again
(--ms-recorded-only: the table from the records alone, a workload without one says so).
MetaSchedule's curve is in its own runner's times (the mean of 3 runs of at least 100 ms,
caches flushed for the GB/s workloads), td.tune's in td.tune's: compare the shapes and
each curve's end against run.py's interleaved timing of the winners.
The curves (best time after N trials) go into the "Tuning" section of RESULTS.md for the
target, with the CPU it ran on: one section per target, and a run of some workloads
replaces their rows and keeps the others' (and the notes written under the table).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LOG_NAMES = {"evolutionary": "log.jsonl", "random": "random.jsonl",
             "metaschedule": "metaschedule.jsonl"}
LOGS = {k: HERE / "tuning" / v for k, v in LOG_NAMES.items()}
CHECKPOINTS = (1, 10, 25, 50, 100, 200, 300)
PAUSE_S = 120            # a longer gap between two records is a pause between runs


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W8")
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--target", default=None, help="tdsl target (default: this CPU)")
    p.add_argument("--baseline", default="random,metaschedule",
                   help="comma-separated baselines to td.tune's evolutionary search: random "
                        "(td.tune's random search), metaschedule (TVM's MetaSchedule), or "
                        "'none'")
    p.add_argument("--logs", default=None,
                   help="directory of the logs (default benchmarks/tuning/, the committed "
                        "ones; another directory for a smoke run)")
    p.add_argument("--ms-recorded-only", action="store_true",
                   help="metaschedule: only the curves already in its records (a workload "
                        "without one gets an empty row saying so), no new tuning")
    p.add_argument("--md", default=str(HERE / "RESULTS.md"))
    args = p.parse_args(argv)

    import numpy as np

    import tdsl as td
    from benchmarks import machine
    from benchmarks.schedules import auto
    from benchmarks.workloads import WORKLOADS

    logs = LOGS if args.logs is None else {k: Path(args.logs) / v for k, v in LOG_NAMES.items()}
    baselines = [b.strip() for b in args.baseline.split(",") if b.strip() not in ("", "none")]
    bad = [b for b in baselines if b not in ("random", "metaschedule")]
    if bad:
        p.error(f"unknown baseline(s) {bad}")
    if args.target:                       # MetaSchedule's target follows tdsl's
        os.environ["TDSL_TARGET"] = args.target
    rows = []
    searches = ["evolutionary"] + [b for b in baselines if b == "random"]
    for wid in args.workloads.split(","):
        w = WORKLOADS[wid]
        inputs = w.make_inputs(np.random.default_rng(0))
        curves = {}
        for search in searches:
            tensors, _ = auto.ALGORITHMS[wid](inputs)
            start = time.perf_counter()
            result = td.tune(tensors[-1], tensors, trials=args.trials, target=args.target,
                             log=logs[search], search=search, seed=0)
            # a resumed run: the minutes of all its runs, from the log's time stamps
            minutes = max((time.perf_counter() - start) / 60, _logged_minutes(result.history))
            curves[search] = (result.curve(), minutes, result.refused, result.errors,
                              result.wrong)
            print(f"{wid} {search}: best {result.seconds * 1e3:.3f} ms "
                  f"({w.perf(result.seconds):.1f} {w.unit}), {minutes:.1f} min, "
                  f"refused {result.refused}, errors {result.errors}", flush=True)
        if "metaschedule" in baselines:
            curves["metaschedule"] = _metaschedule(w, inputs, args.trials, logs,
                                                   args.ms_recorded_only)
        rows.append((w, curves))
    _write(Path(args.md), rows, f"{machine._cpu_model()}, -march=native = "
           f"{machine._native_march()}, {os.cpu_count()} cores", args,
           str(td.target(args.target)))


def _logged_minutes(history) -> float:
    """Minutes of tuning in a workload's log records: the sum of the gaps between
    consecutive time stamps, leaving out gaps over PAUSE_S (the pause between a run and
    a later one that resumed it); to the second, 0 when the records carry no stamps."""
    import calendar
    stamps = sorted(calendar.timegm(time.strptime(r["time"], "%Y-%m-%dT%H:%M:%SZ"))
                    for r in history if r.get("time"))
    return sum(b - a for a, b in zip(stamps, stamps[1:]) if b - a <= PAUSE_S) / 60


def _metaschedule(w, inputs, trials: int, logs: dict, recorded_only: bool = False):
    """MetaSchedule's curve on workload `w` with `trials`, as (curve, minutes, refused,
    errors, wrong): from its record, or tuned now (in a child process) and recorded. An
    error (MetaSchedule failed or is not installed) is printed and gives an empty curve
    with the reason."""
    from benchmarks.peers import PeerUnavailable, tvm_metaschedule
    shapes = {k: v.shape for k, v in inputs.items()}
    try:
        rec, fresh = tvm_metaschedule.tuned(w.id, shapes, trials, records=logs["metaschedule"],
                                            recorded_only=recorded_only)
    except (PeerUnavailable, tvm_metaschedule.MetaScheduleError) as e:
        print(f"{w.id} metaschedule: {type(e).__name__}: {e}", flush=True)
        return [], 0.0, "-", str(e)[:200].replace("|", "/"), 0
    curve = [float("inf") if c is None else c for c in rec["curve"]]
    minutes = rec["tuning_s"] / 60
    print(f"{w.id} metaschedule: best {rec['best_s'] * 1e3:.3f} ms "
          f"({w.perf(rec['best_s']):.1f} {w.unit}), {minutes:.1f} min"
          f"{'' if fresh else ' (recorded ' + rec.get('date', '') + ')'}, "
          f"{rec['measured']} measured, errors {rec['errors']}", flush=True)
    return curve, minutes, "-", rec["errors"], 0


def markers(target: str) -> tuple[str, str]:
    """The delimiters of the Tuning section of one target in RESULTS.md."""
    return f"<!-- tuning: begin {target} -->", f"<!-- tuning: end {target} -->"


def _write(md: Path, rows, cpu: str, args, target: str) -> None:
    """Write the Tuning section of `target`: the rows of this run's workloads, the rows of
    the others kept from the section as it was, and the notes under its table kept."""
    begin, end = markers(target)
    text = md.read_text() if md.exists() else ""
    kept, notes = _old_rows(text, begin, end, {w.id for w, _ in rows})
    lines = [begin, f"## Tuning (benchmarks/tune.py), target `{target}`", "",
             f"CPU: {cpu}. `python benchmarks/tune.py --target '{target}' --trials "
             f"{args.trials}` (the rows of {args.workloads} from this run"
             f"{', the others from earlier runs' if kept else ''}); best time "
             f"(ms) after N measured candidates, td.tune's evolutionary search with its "
             f"LightGBM model against random search over the same space, each from its log "
             f"(a resumed run counts the trials of earlier runs), and TVM's MetaSchedule "
             f"(tune_tir, XGBoost cost model, evolutionary search) with the same budget on "
             f"the workload in TE, from benchmarks/tuning/metaschedule.jsonl. Each curve is "
             f"in its own tuner's timing (MetaSchedule: its runner's mean of 3 runs of at "
             f"least 100 ms, caches flushed for GB/s workloads); 'minutes' is the whole "
             f"tuning run (MetaSchedule's includes ~1-3 min of start-up: importing TVM's "
             f"tensor intrinsics; td.tune's is counted from its log's time stamps, pauses between "
             f"resumed runs left out). 'measured' is the candidates timed: a search stops "
             f"before the budget when four rounds in a row propose nothing new, the last three "
             f"of them random restarts with growing pools (the space of W3, W6 "
             f"and W7 has fewer than 10 schedules; where both searches stop at the same count "
             f"below the budget, they have measured the whole space, and their bests differ "
             f"by the noise of timing the same candidates again), and '-' marks a count it "
             f"did not reach. "
             f"td.tune's winner is the best median of its four fastest, measured again at the "
             f"end (the confirmation), so it need not be the candidate of the curve's last "
             f"point. run.py's tdsl:tuned and tvm:metaschedule rows time the winners side by "
             f"side.", ""]
    header = "| workload | search | " + " | ".join(f"N={n}" for n in CHECKPOINTS) + \
        " | measured | minutes | refused | errors |"
    lines += [header, "|" + "---|" * (len(CHECKPOINTS) + 6)]
    new_rows = {}
    for w, curves in rows:
        new_rows[w.id] = []
        for search, (curve, minutes, refused, errors, wrong) in curves.items():
            cells = [f"{curve[n - 1] * 1e3:.3f}" if len(curve) >= n else "-"
                     for n in CHECKPOINTS]
            bad = errors + wrong if isinstance(errors, int) else errors
            new_rows[w.id].append(f"| {w.id} | {search} | " + " | ".join(cells) +
                                  f" | {len(curve)} | {minutes:.1f} | {refused} | {bad} |")
    for wid in sorted({**kept, **new_rows}, key=lambda w: int(w[1:])):
        lines += new_rows.get(wid) or kept[wid]
    lines += ["", *notes, end] if notes else ["", end]
    block = "\n".join(lines)
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    md.write_text(text)


def _old_rows(text: str, begin: str, end: str, rerun: set) -> tuple[dict, list]:
    """(rows by workload of the workloads not in `rerun`, the lines under the table) of
    the section between `begin` and `end` in `text`; ({}, []) where there is none."""
    if begin not in text or end not in text:
        return {}, []
    section = text.split(begin, 1)[1].split(end, 1)[0].splitlines()
    rows: dict[str, list[str]] = {}
    table = [k for k, line in enumerate(section) if line.startswith("| W")]
    for line in (section[k] for k in table):
        wid = line.split("|")[1].strip()
        if wid not in rerun:
            rows.setdefault(wid, []).append(line)
    notes = section[table[-1] + 1:] if table else []
    while notes and not notes[0].strip():
        notes.pop(0)
    return rows, notes


if __name__ == "__main__":
    main()
