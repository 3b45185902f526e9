#!/usr/bin/env python3
"""Schedule-for-schedule parity with Halide: every pair of benchmarks/parity/schedules.py
on the AVX2 and AVX-512 targets.

    python benchmarks/parity/run.py [--targets avx2,avx512] [--pairs gemm_tile,blur_tiled]
                                    [--quick] [--sweeps 3] [--threads N] [--dump-c DIR]

For each pair and target: both halves are built for the target (tdsl: `td.build(...,
target=)`, Halide: `compile_to_callable(..., hl.Target)`); where this CPU can run the
target, both results are checked against the float64 NumPy reference, then timed
interleaved by benchmarks/harness.py (the L3 is flushed before every timed call of a
GB/s pair), in `--sweeps` sweeps over all pairs (a pair's ratio is the median of its
sweeps'). Where the CPU cannot run the target, the table says "compiled". The table goes
into the "Parity with Halide" section of benchmarks/RESULTS.md for this variant (thread
count, OMP_WAIT_POLICY if set; the rest of the file is kept) and into
benchmarks/parity/results*.json; `--dump-c DIR` keeps tdsl's C sources.
Exits 1 if any result was wrong or any half failed to build.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "HL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def variant(threads: int) -> str:
    """What distinguishes a run's section: the thread count, and the OpenMP wait policy
    when the environment sets one (it changes tdsl's parallel runtime, not Halide's)."""
    policy = os.environ.get("OMP_WAIT_POLICY")
    return f"threads={threads}" + (f" OMP_WAIT_POLICY={policy}" if policy else "")


def markers(variant: str) -> tuple[str, str]:
    """The delimiters of the parity section of one variant (one section per thread count
    and wait policy, so a 1-thread run, which isolates the code from the parallel runtime,
    sits next to the all-cores one)."""
    return f"<!-- parity:begin {variant} -->", f"<!-- parity:end {variant} -->"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", default="avx2,avx512", help="comma-separated (default: both)")
    p.add_argument("--pairs", default="", help="comma-separated pair names or families "
                   "(default: all)")
    p.add_argument("--quick", action="store_true", help="3 rounds x 2 calls: a smoke run")
    p.add_argument("--rounds", type=int, help="rounds of the rotation (default 6, quick 3)")
    p.add_argument("--calls", type=int, help="timed calls per round (default 3, quick 2)")
    p.add_argument("--sweeps", type=int, default=3,
                   help="measure every pair this many times, one sweep over all pairs after "
                   "another; a pair's ratio is the median of its sweeps' (default 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--md", default=str(HERE.parent / "RESULTS.md"),
                   help="Markdown file whose parity section is (re)written")
    p.add_argument("--json", help="JSON output (default: benchmarks/parity/results.json for "
                   "all cores, else results-<variant>.json)")
    p.add_argument("--dump-c", default="", help="directory for tdsl's generated C sources")
    p.add_argument("--keep-tdsl-cache", action="store_true",
                   help="use TDSL_CACHE_DIR as it is (default: a fresh cache)")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 4)
    args.sweeps = 1 if args.quick else args.sweeps
    args.calls = args.calls or (2 if args.quick else 3)
    if not args.json:                     # results.json, or e.g. results-threads1.json
        v = variant(args.threads)
        default = args.threads == os.cpu_count() and "OMP_WAIT_POLICY" not in os.environ
        slug = v.replace("=", "").replace(" ", "-")
        args.json = str(HERE / ("results.json" if default else f"results-{slug}.json"))
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare_pair(pair, target, args, harness, common) -> tuple[dict, list]:
    """Build both halves for `target` and, where this CPU runs it, check them against the
    NumPy reference: (the pair's record, its two harness Impls)."""
    import numpy as np

    log(f"building {pair.name} for {target.name}")
    sizes = pair.sizes
    inputs = pair.inputs(sizes, np.random.default_rng(1234))
    rec = {"pair": pair.name, "family": pair.family, "target": target.name,
           "sizes": sizes, "unit": pair.unit, "runs_here": target.runs_here()}
    impls = []
    for side, prepare in (("tdsl", common.prepare_tdsl), ("halide", common.prepare_halide)):
        def prep(prepare=prepare):
            run, result, compile_s, *extra = prepare(pair, target, sizes,
                                                     [a.copy() for a in inputs])
            if extra and args.dump_c:
                path = Path(args.dump_c) / f"{pair.name}-{target.name}.c"
                path.write_text(extra[0].source)
            return run, result, compile_s
        impls.append(harness.prepare_impl(side, prep, amount=pair.amount(sizes),
                                          unit=pair.unit))
    if rec["runs_here"]:
        ref = pair.reference(*inputs)
        for im in impls:
            harness.check(im, pair, ref)
    return rec, impls


def measure_sweep(rec, impls, args, harness, flush) -> None:
    """One interleaved measurement of a pair's two halves; its ratio goes to rec["sweeps"]."""
    import numpy as np

    if not rec["runs_here"] or not all(im.timed for im in impls):
        return
    start = [len(im.samples) for im in impls]
    harness.measure(impls, rounds=args.rounds, calls=args.calls,
                    warmup=1 if args.quick else 2,
                    flush=flush if rec["unit"] == "GB/s" else None)
    tdsl, halide = (float(np.median(im.samples[n:])) for im, n in zip(impls, start))
    rec.setdefault("sweeps", []).append(halide / tdsl)


def finish_record(rec, impls, harness) -> dict:
    """Per side: status, compile time, and the statistics of all timed calls; the pair's
    ratio is the median of its sweeps' ratios (Halide's median time / tdsl's)."""
    import numpy as np

    for im in impls:
        side = {"status": im.status, "compile_s": im.compile_s}
        if im.status != "ok":
            side["reason"] = im.reason
            log(im.traceback_text or f"{rec['pair']}/{rec['target']}/{im.name}: {im.reason}")
        if im.samples:
            st = harness.Stats.of(im.samples)
            side.update(median_s=st.median_s, p10_s=st.p10_s, iqr_s=st.iqr_s, n=st.n,
                        perf=im.amount / st.median_s / 1e9)
        rec[im.name] = side
    if rec.get("sweeps"):
        rec["ratio"] = float(np.median(rec["sweeps"]))
    return rec


def geomeans(records: list[dict]) -> dict:
    import math
    out = {}
    for t in sorted({r["target"] for r in records}):
        ratios = [r["ratio"] for r in records if r["target"] == t and "ratio" in r]
        if ratios:
            out[t] = {"geomean": math.exp(sum(map(math.log, ratios)) / len(ratios)),
                      "pairs": len(ratios), "below_0.95": sum(x < 0.95 for x in ratios)}
    return out


def _cell(side: dict) -> str:
    if side["status"] != "ok":
        return side["status"]
    return f"{side['perf']:.1f}" if "perf" in side else "compiled"


def markdown(records, means, info, pairs) -> str:
    begin, end = markers(info["variant"])
    lines = [begin, f"## Parity with Halide ({info['variant']})", "",
             "`python benchmarks/parity/run.py`: each pair is one schedule written twice, in "
             "Halide's Python API and in tdsl, with the same splits, order, fusion, vector "
             "widths, parallel loops and compute_at placements, shaped per target from its "
             "lanes and registers (`benchmarks/parity/`). ratio = Halide's median time / "
             "tdsl's (above 1: tdsl faster): the median over sweeps (in parentheses their range; "
             "each sweep times every pair interleaved), perf from the median of all calls; GB/s "
             "pairs start from DRAM (L3 flushed before each timed call).", "",
             f"Measured {info['date']} on {info['cpu']} ({info['simd']}), {info['threads']} "
             f"thread{'s' if info['threads'] != 1 else ''}, halide {info['halide']}, "
             f"gcc {info['gcc']}; load average (1 min) "
             f"{info['load_average']['start'][0]:.1f} at the start, "
             f"{info['load_average']['end'][0]:.1f} at the end.", ""]
    for t, m in means.items():
        lines.append(f"- **{t}**: geometric mean {m['geomean']:.2f}x over {m['pairs']} pairs, "
                     f"{m['below_0.95']} below 0.95x")
    not_run = sorted({r["target"] for r in records if not r["runs_here"]})
    for t in not_run:
        lines.append(f"- **{t}**: compiled by both, not run: this CPU cannot execute it")
    lines += ["", "| pair | target | unit | tdsl | Halide | ratio |", "|---|---|---|---|---|---|"]
    for r in records:
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        if "ratio" in r and r["ratio"] < 0.95:
            ratio = f"**{ratio}**"
        if len(r.get("sweeps", [])) > 1:
            ratio += f" ({min(r['sweeps']):.2f}-{max(r['sweeps']):.2f})"
        lines.append(f"| {r['pair']} | {r['target']} | {r['unit']} | {_cell(r['tdsl'])} | "
                     f"{_cell(r['halide'])} | {ratio} |")
    lines += ["", "| pair | schedule (both systems) |", "|---|---|"]
    lines += [f"| {p.name} | {p.idea} |" for p in pairs]
    lines.append(end)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str, variant: str) -> None:
    """Replace the delimited parity section of `path` for `variant`, or append it."""
    begin, end = markers(variant)
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv=None) -> int:
    args = parse_args(argv)
    faulthandler.enable()
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    if not args.keep_tdsl_cache:
        os.environ["TDSL_CACHE_DIR"] = tempfile.mkdtemp(prefix="tdsl-parity-cache-")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))

    import json

    import numpy as np

    from benchmarks import harness, machine
    from benchmarks.parity import common
    from benchmarks.parity.schedules import PAIRS

    wanted = {w for w in args.pairs.split(",") if w}
    pairs = [p for p in PAIRS if not wanted or p.name in wanted or p.family in wanted]
    targets = [common.TARGETS[t] for t in args.targets.split(",") if t]
    if not pairs:
        log(f"no pair matches {sorted(wanted)}; pairs: {[p.name for p in PAIRS]}")
        return 2
    if args.dump_c:
        Path(args.dump_c).mkdir(parents=True, exist_ok=True)
    evict = np.ones(32 * 1024 * 1024, np.float32)

    def flush():                                   # 128 MiB, 4x the L3
        return float(evict.sum())

    t_start = time.perf_counter()
    load_start = os.getloadavg()
    records = []
    for target in targets:
        prepared = [prepare_pair(pair, target, args, harness, common) for pair in pairs]
        for sweep in range(args.sweeps):
            for rec, impls in prepared:
                measure_sweep(rec, impls, args, harness, flush)
                if rec.get("sweeps"):
                    log(f"sweep {sweep + 1}/{args.sweeps} {rec['pair']:22s} {target.name:7s} "
                        f"ratio {rec['sweeps'][-1]:.2f}x")
        for rec, impls in prepared:
            records.append(finish_record(rec, impls, harness))
            ratio = f"{rec['ratio']:.2f}x" if "ratio" in rec else "-"
            log(f"{rec['pair']:22s} {target.name:7s} tdsl {_cell(rec['tdsl']):>10s}  "
                f"halide {_cell(rec['halide']):>10s} {rec['unit']:8s} ratio {ratio}")
    means = geomeans(records)
    for t, m in means.items():
        log(f"{t}: geomean {m['geomean']:.3f}x over {m['pairs']} pairs, "
            f"{m['below_0.95']} below 0.95x")
    info = machine.describe(args.threads)
    info["halide"] = _halide_version()
    info["variant"] = variant(args.threads)
    info["load_average"] = {"start": load_start, "end": os.getloadavg()}
    Path(args.json).write_text(json.dumps(
        {"machine": info, "geomeans": means, "records": records,
         "rounds": args.rounds, "calls": args.calls,
         "seconds": time.perf_counter() - t_start}, indent=1, default=str) + "\n")
    write_section(Path(args.md), markdown(records, means, info, pairs), info["variant"])
    log(f"wrote {args.md} and {args.json} in {time.perf_counter() - t_start:.0f} s")
    bad = [r for r in records for side in ("tdsl", "halide") if r[side]["status"] != "ok"]
    return 1 if bad else 0


def _halide_version() -> str:
    from importlib.metadata import version
    try:
        return version("halide")
    except Exception as e:
        return f"unavailable ({e})"


if __name__ == "__main__":
    sys.exit(main())
