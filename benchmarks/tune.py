#!/usr/bin/env python3
"""Tune W1-W8 with td.tune and write the tuning curves into benchmarks/RESULTS.md.

    python benchmarks/tune.py [--workloads W3,W7] [--trials 300] [--target native]
                              [--baseline random]

Each workload's algorithm is the one of benchmarks/schedules/auto.py (as a user writes
it), at the sizes of benchmarks/workloads.py. The evolutionary search appends to
benchmarks/tuning/log.jsonl (the log the `tdsl:tuned` rows of benchmarks/run.py replay
with td.apply_best; the workload key names the CPU and target, so logs of several
machines share the file) and the random-search baseline to benchmarks/tuning/random.jsonl.
A run resumes what the logs already hold. The curve (best time after N trials) of both
goes into the "Tuning" section of RESULTS.md, with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

LOGS = {"evolutionary": HERE / "tuning" / "log.jsonl", "random": HERE / "tuning" / "random.jsonl"}
MARK_BEGIN, MARK_END = "<!-- tuning: begin -->", "<!-- tuning: end -->"
CHECKPOINTS = (1, 10, 25, 50, 100, 200, 300)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W8")
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--target", default=None, help="tdsl target (default: this CPU)")
    p.add_argument("--baseline", default="random", help="'random' or 'none'")
    p.add_argument("--md", default=str(HERE / "RESULTS.md"))
    args = p.parse_args(argv)

    import numpy as np

    import tdsl as td
    from benchmarks import machine
    from benchmarks.schedules import auto
    from benchmarks.workloads import WORKLOADS

    rows = []
    searches = ["evolutionary"] + ([] if args.baseline == "none" else ["random"])
    for wid in args.workloads.split(","):
        w = WORKLOADS[wid]
        inputs = w.make_inputs(np.random.default_rng(0))
        curves = {}
        for search in searches:
            tensors, _ = auto.ALGORITHMS[wid](inputs)
            start = time.perf_counter()
            result = td.tune(tensors[-1], tensors, trials=args.trials, target=args.target,
                             log=LOGS[search], search=search, seed=0)
            minutes = (time.perf_counter() - start) / 60
            curves[search] = (result.curve(), minutes, result.refused, result.errors,
                              result.wrong)
            print(f"{wid} {search}: best {result.seconds * 1e3:.3f} ms "
                  f"({w.perf(result.seconds):.1f} {w.unit}), {minutes:.1f} min, "
                  f"refused {result.refused}, errors {result.errors}", flush=True)
        rows.append((w, curves))
    _write(Path(args.md), rows, f"{machine._cpu_model()}, -march=native = "
           f"{machine._native_march()}, {os.cpu_count()} cores", args)


def _write(md: Path, rows, cpu: str, args) -> None:
    lines = [MARK_BEGIN, "## Tuning (benchmarks/tune.py)", "",
             f"CPU: {cpu}. `python benchmarks/tune.py --workloads "
             f"{args.workloads} --trials {args.trials}`; best time "
             f"(ms) after N measured candidates, td.tune's evolutionary search with its "
             f"LightGBM model against random search over the same space, each from its log "
             f"(a resumed run counts the trials of earlier runs).", ""]
    header = "| workload | search | " + " | ".join(f"N={n}" for n in CHECKPOINTS) + \
        " | minutes | refused | errors |"
    lines += [header, "|" + "---|" * (len(CHECKPOINTS) + 5)]
    for w, curves in rows:
        for search, (curve, minutes, refused, errors, wrong) in curves.items():
            cells = [f"{curve[n - 1] * 1e3:.3f}" if len(curve) >= n else "-"
                     for n in CHECKPOINTS]
            lines.append(f"| {w.id} | {search} | " + " | ".join(cells) +
                         f" | {minutes:.1f} | {refused} | {errors + wrong} |")
    lines += ["", MARK_END]
    text = md.read_text() if md.exists() else ""
    block = "\n".join(lines)
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    md.write_text(text)


if __name__ == "__main__":
    main()
