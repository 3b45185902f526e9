#!/usr/bin/env python3
"""Benchmark tdsl's schedules against numpy, TVM and Halide on W1-W8.

    python benchmarks/run.py [--target "c -mcpu=x86-64-v3"] [--quick] [--workloads W1,W3]
                             [--threads N] [--json PATH] [--md PATH]

A run is for one target (default "c", this CPU) or several (`--target avx2,avx512`, run one
after the other, each in its own process): tdsl (through TDSL_TARGET), TVM, Halide and the
limit rows are all built for it, and a target this CPU cannot execute is refused. The JSON
and the Markdown hold one section per target; a run replaces its target's section and keeps
the others'. Thread counts are fixed through the environment before numpy, TVM or Halide
is imported.
tdsl's implementations are found in benchmarks/schedules/w1_gemm.py ... w8_layernorm.py
(`prepare(inputs) -> (run, result, compile_s)`); a missing one is reported as "not
available". Besides Halide's hand schedules ("halide"), the peers include Halide's
autoschedulers on the same algorithms ("halide:mullapudi2016", "halide:adams2019",
peers/halide_auto.py), which are not counted as the best peer. TVM's MetaSchedule
("tvm:metaschedule", peers/tvm_metaschedule.py) is opt-in: `--peers ...,tvm:metaschedule
--trials 300` tunes each workload with that budget (minutes per workload) unless
benchmarks/tuning/metaschedule.jsonl holds a record of it (`--retune` tunes anyway). See
benchmarks/README.md for the method and the columns.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
THREAD_VARS = ("OMP_NUM_THREADS", "TVM_NUM_THREADS", "HL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PEERS = ("numpy", "tvm", "halide", "halide:mullapudi2016", "halide:adams2019")
OPT_IN = ("tvm:metaschedule",)       # slow (a tuning run per workload): only via --peers


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", default="c",
                   help="tdsl target(s), comma-separated: a target string such as "
                        "'c -mcpu=x86-64-v3', or avx2 (= c -mcpu=x86-64-v3), avx512 "
                        "(= c -mcpu=x86-64-v4), native (= c, the default: this CPU)")
    p.add_argument("--quick", action="store_true",
                   help="fewer rounds (4 x 5 timed calls) and shorter pauses; for a smoke run")
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W8",
                   help="comma-separated workload ids (default: all)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for every implementation (default: all cores)")
    p.add_argument("--json", default=str(HERE / "out" / "results.json"), help="JSON output")
    p.add_argument("--md", default=str(HERE / "out" / "RESULTS.md"), help="Markdown output")
    p.add_argument("--peers", default=",".join(PEERS),
                   help="peers to run (default: all but the opt-in " + ", ".join(OPT_IN) + ")")
    p.add_argument("--trials", type=int, default=300,
                   help="tvm:metaschedule: MetaSchedule's trial budget per workload (default "
                        "300, td.tune's budget in benchmarks/tune.py)")
    p.add_argument("--retune", action="store_true",
                   help="tvm:metaschedule: tune even where benchmarks/tuning/metaschedule.jsonl "
                        "holds a record for this workload, target, CPU and budget")
    p.add_argument("--ms-records", default=str(HERE / "tuning" / "metaschedule.jsonl"),
                   help="tvm:metaschedule: the records read and appended ('none': neither)")
    p.add_argument("--rounds", type=int, help="rounds of the rotation (default 10, quick 4)")
    p.add_argument("--calls", type=int, help="timed calls per impl per round (default 3, quick 5)")
    p.add_argument("--settle", type=float,
                   help="seconds of sleep between implementations, longer than the idle spin of "
                        "OpenBLAS (~0.1 s) and the other thread pools (default 0.15)")
    p.add_argument("--switch-warm", type=float, default=0.03,
                   help="seconds of untimed calls after each switch of implementation "
                        "(at least one call; default 0.03)")
    p.add_argument("--flush", choices=("auto", "always", "never"), default="auto",
                   help="read a 128 MiB buffer (untimed) before every timed call so that "
                        "the data starts in DRAM, not L3: 'auto' (default) does it for the "
                        "GB/s workloads, whose measure counts bytes from memory (W4 and W8 "
                        "move 32 MiB, the size of the L3)")
    p.add_argument("--keep-tdsl-cache", action="store_true",
                   help="use the existing TDSL_CACHE_DIR instead of a fresh one (the "
                        "'cold' compile is then not cold)")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (4 if args.quick else 10)
    args.calls = args.calls or (5 if args.quick else 3)
    args.settle = args.settle if args.settle is not None else 0.15
    args.warmup = 1 if args.quick else 2
    return args


def fix_environment(args, target: str) -> None:
    """Before any numeric library or tdsl is imported: the target, thread counts, a fresh
    tdsl cache."""
    os.environ["TDSL_TARGET"] = target
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    if not args.keep_tdsl_cache:
        os.environ["TDSL_CACHE_DIR"] = tempfile.mkdtemp(prefix="tdsl-bench-cache-")


def flushes(mode: str, workload) -> bool:
    return mode == "always" or (mode == "auto" and workload.unit == "GB/s")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _without_target(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--target":
            skip = True
        elif not a.startswith("--target="):
            out.append(a)
    return out


def _refusals(specs: list[str]) -> list[str]:
    """Why each target that cannot run here cannot (empty: all can). Imports tdsl, so the
    parent of a several-target run calls it, not a run that benchmarks."""
    from benchmarks import targets
    import tdsl as td
    out = []
    for spec in specs:
        try:
            why = targets.refusal(td.target(spec))
        except Exception as e:       # an unknown target string: tdsl's message says why
            why = f"target {spec!r}: {e}"
        if why:
            out.append(why)
    return out


def run_targets(specs: list[str], argv: list[str]) -> int:
    """Several targets: check that all can run here, then one process per target (each
    sets TDSL_TARGET before importing tdsl) writing its section of the same outputs."""
    refused = _refusals(specs)
    if refused:
        log("refused, nothing run:\n  " + "\n  ".join(refused))
        return 2
    rc = 0
    for spec in specs:
        log(f"=== target {spec}")
        cmd = [sys.executable, str(Path(__file__).resolve()), *_without_target(argv),
               "--target", spec]
        rc = max(rc, subprocess.run(cmd).returncode)
    return rc


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks.targets import parse_list
    specs = parse_list(args.target)
    if not specs:
        log("--target: no target given")
        return 2
    if len(specs) > 1:
        return run_targets(specs, argv)
    fix_environment(args, specs[0])

    import json

    import numpy as np

    from benchmarks import targets
    try:
        target = targets.current()             # from TDSL_TARGET, set above
    except Exception as e:                     # an unknown target: tdsl's message says why
        log(f"refused: target {specs[0]!r}: {e}")
        return 2
    why = targets.refusal(target)
    if why:
        log(f"refused: {why}")
        return 2
    log(f"target: {target.describe()}; CPU: {targets.cpu()}")

    from benchmarks import harness, limits, machine, report, tdsl_schedules
    from benchmarks.peers import (halide_auto, halide_impl, numpy_impl, tvm_impl,
                                  tvm_metaschedule)
    from benchmarks.workloads import WORKLOADS

    metaschedule = tvm_metaschedule.MetaSchedule(
        trials=args.trials, retune=args.retune,
        records=None if args.ms_records == "none" else Path(args.ms_records))
    peer_mods = {"numpy": numpy_impl, "tvm": tvm_impl, "halide": halide_impl,
                 **halide_auto.PEERS, "tvm:metaschedule": metaschedule}
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    bad = [p for p in peers if p not in peer_mods]
    if bad:
        log(f"unknown peer(s) {bad}; choose from {list(peer_mods)}")
        return 2
    wids = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in wids if w not in WORKLOADS]
    if unknown:
        log(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
        return 2

    evict = np.ones(32 * 1024 * 1024, np.float32) if args.flush != "never" else None

    def flush():                                          # 128 MiB, 4x the L3
        return float(evict.sum())
    t_start = time.perf_counter()
    load_start = machine._loadavg()
    results, titles, failures = {}, {}, []
    for wid in wids:
        w = WORKLOADS[wid]
        titles[wid] = w.title
        log(f"== {wid} {w.title}")
        inputs = w.make_inputs(np.random.default_rng(1234))
        ref = w.reference(inputs)

        impls = tdsl_schedules.prepare_all(w, inputs)
        for name in peers:
            mod = peer_mods[name]
            own = {k: v.copy() for k, v in inputs.items()}   # nobody shares (or edits) inputs
            impls.append(harness.prepare_impl(
                name, lambda mod=mod, own=own, wid=wid, w=w: mod.prepare(wid, own, w.out_shape),
                schedule=mod.schedules()[wid], amount=w.amount, unit=w.unit))
        lim = limits.make(w.limit, target=target)
        impls.append(harness.Impl("limit", run=lim.run, is_limit=True, amount=lim.amount,
                                  unit=lim.unit, schedule=lim.description))
        for im in impls:
            harness.check(im, w, ref)
            if im.status in ("wrong", "error"):
                failures.append(f"{wid} {im.name}: {im.status}: {im.reason}")
                log(f"!! {wid} {im.name} {im.status.upper()}: {im.reason}")
                if im.traceback_text:
                    log(im.traceback_text)
        harness.measure(impls, rounds=args.rounds, calls=args.calls, warmup=args.warmup,
                        settle_s=args.settle, switch_warm_s=args.switch_warm,
                        flush=flush if flushes(args.flush, w) else None)
        recs = tdsl_schedules.with_best(report.workload_records(impls))
        for name, auto in halide_auto.PEERS.items():     # what the autoscheduler chose
            if name in recs and wid in auto.sources:
                recs[name]["schedule_source"] = auto.sources[wid]
        if metaschedule.row in recs and wid in metaschedule.sources:   # its trace and curve
            recs[metaschedule.row]["schedule_source"] = metaschedule.sources[wid]
            recs[metaschedule.row]["tuning"] = {**metaschedule.info[wid],
                                                "curve_s": metaschedule.curves[wid]}
        results[wid] = recs
        note = "  [L3 flushed before each timed call]" if flushes(args.flush, w) else ""
        print(report.text_table(wid, f"{w.title}  [{target}]{note}", recs), flush=True)
        print(flush=True)
        del impls, inputs, ref

    print(report.summary_text(str(target), results), flush=True)
    if report.auto_rows(results):
        print(flush=True)
        print(report.auto_text(str(target), results), flush=True)
    info = machine.describe(args.threads, target)
    method = {
        "rounds": args.rounds, "timed calls per impl per round": args.calls,
        "timed calls per impl": args.rounds * args.calls, "warm-up calls": args.warmup,
        "settle between impls (s)": args.settle,
        "untimed calls after a switch (s)": args.switch_warm,
        "L3 flushed before each timed call": {
            wid: flushes(args.flush, WORKLOADS[wid]) for wid in wids},
        "quick": args.quick,
        "load average (1, 5, 15 min) at the start": load_start,
        "wall time (s)": round(time.perf_counter() - t_start, 1),
    }
    schedules = {"numpy": numpy_impl.schedules(), "tvm": tvm_impl.schedules(),
                 "halide": halide_impl.schedules(),
                 **{name: auto.schedules() for name, auto in halide_auto.PEERS.items()
                    if name in peers},
                 **({metaschedule.row: metaschedule.schedules()}
                    if metaschedule.row in peers else {})}
    doc = {"target": str(target), "target_description": target.describe(),
           "cpu": targets.cpu(), "workloads": results, "workload_info": {
               wid: {"title": WORKLOADS[wid].title, "unit": WORKLOADS[wid].unit,
                     "amount": WORKLOADS[wid].amount, "limit": WORKLOADS[wid].limit,
                     "sizes": WORKLOADS[wid].sizes} for wid in wids},
           "machine": info, "method": method, "schedules": schedules, "failures": failures}
    section = report.markdown_section(str(target), target.describe(), results, titles, info,
                                      method, schedules)
    for path, merge in ((args.json, lambda old: json.dumps(
            report.merge_json(old, str(target), doc), indent=1, default=str)),
                        (args.md, lambda old: report.merge_markdown(old, str(target),
                                                                    section))):
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(merge(p.read_text() if p.exists() else ""))
    log(f"wrote {args.json} and {args.md} in {method['wall time (s)']} s")
    if failures:
        log("FAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
