#!/usr/bin/env python
"""Do td.counts rank schedules like the machine does? Predicted roofline time against
measured time, Spearman's rank correlation, a section in benchmarks/RESULTS.md.

    python benchmarks/counts_vs_time.py --quick --write

The schedules: for each workload W1-W8 its algorithm unscheduled, under
td.auto_schedule, and every hand variant of benchmarks/schedules/ (captured at
`prepare_kernel`); and the seven matmul schedules of tutorial 02. Predicted time is
`Counts.roofline_time`: the largest of the compute time (flops at the FMA peak of
benchmarks/limits.py, a scalar statement at 1/lanes of it, a serial one at 1/threads)
and, for each cache level, the model's traffic into it over the bandwidth a STREAM
triad reaches on arrays that fit in the level above (DRAM for the last level).
`--quick` runs half-size problems (GEMM 512, 2048^2 images) with fewer repetitions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tdsl as td  # noqa: E402
from tdsl.analysis import Machine  # noqa: E402

from benchmarks import limits, report  # noqa: E402
from benchmarks.schedules import _common, auto  # noqa: E402
from benchmarks.tdsl_schedules import find_module  # noqa: E402
from benchmarks.workloads import WORKLOADS  # noqa: E402

BEGIN, END = "<!-- counts_vs_time.py: begin -->", "<!-- counts_vs_time.py: end -->"


# -- the machine ---------------------------------------------------------------------------

def cache_sizes() -> list[int]:
    """Data cache sizes of cpu0 from sysfs, L1 first (bytes)."""
    sizes = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        if (index / "type").read_text().strip() in ("Data", "Unified"):
            text = (index / "size").read_text().strip()
            scale = {"K": 1024, "M": 1 << 20}.get(text[-1], 1)
            sizes.append(int(text.rstrip("KM")) * scale)
    return sizes or [32 * 1024, 512 * 1024, 32 << 20]


def _median_s(run, repeat: int) -> float:
    """The median of `repeat` timed calls after a warm-up call."""
    return statistics.median(_times(run, repeat))


def _best_s(run, repeat: int) -> float:
    """The fastest of `repeat` timed calls after a warm-up call: on a machine shared
    with other programs, the run least disturbed by them."""
    return min(_times(run, repeat))


def _times(run, repeat: int) -> list[float]:
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def probe_machine(threads: int) -> tuple[Machine, str]:
    """Peak (limits.fma_limit) and bandwidth into each cache level on `threads` threads:
    a vectorized tdsl triad on one thread over arrays that fit in the next level (three
    arrays in half of it; a parallel region per call of a few microseconds would measure
    the thread barrier on a loaded machine), times the threads; for the last level the
    STREAM triad of limits.py over 64 MiB arrays."""
    import ctypes
    gomp = ctypes.CDLL("libgomp.so.1")
    gomp.omp_set_num_threads(threads)          # the probes' OpenMP regions, this thread
    fma = limits.fma_limit()
    peak = fma.amount / _median_s(fma.run, 5) / 1e9
    caches = cache_sizes()
    bandwidth = {}
    for level, size in enumerate(caches[:-1]):
        n = caches[level + 1] // 2 // 12 // 64 * 64
        bandwidth[size] = threads * _tdsl_triad_gbs(n)
    triad = limits.triad_limit()
    bandwidth[caches[-1]] = triad.amount / _median_s(triad.run, 5) / 1e9
    machine = Machine(peak, bandwidth, threads=threads, lanes=td.target().lanes())
    text = (f"peak {peak:.0f} GFLOP/s on {threads} thread(s); bandwidth into " + ", ".join(
        f"{_size(c)}: {b:.0f} GB/s" for c, b in bandwidth.items()))
    return machine, text


def _tdsl_triad_gbs(n: int) -> float:
    X, Y = td.placeholder((n,), name="X"), td.placeholder((n,), name="Y")
    Z = td.compute((n,), lambda q: X[q] + 3.0 * Y[q], name="Z")
    s = td.create_schedule(Z)
    _, qi = s[Z].split(Z.op.axis[0], factor=64)
    s[Z].vectorize(qi)
    mod = td.build(s, [X, Y, Z])
    mod.num_threads = 1
    x, y, z = (np.ones(n, np.float32) for _ in range(3))
    number = max(1, (1 << 24) // n)
    return 12 * n / mod.time(x, y, z, repeat=7, number=number).median / 1e9


def cpu_name() -> str:
    out = subprocess.run(["gcc", "-march=native", "-Q", "--help=target"], capture_output=True,
                         text=True).stdout
    march = next((line.split()[-1] for line in out.splitlines()
                  if line.strip().startswith("-march=")), "?")
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    return f"{model}, gcc -march=native = {march}, {os.cpu_count()} cores"


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


# -- the schedules ----------------------------------------------------------------------------

class Captured(Exception):
    pass


def _capture(prepare, inputs):
    """(schedule, args, arrays, out_shape) that `prepare(inputs)` hands to prepare_kernel."""
    seen = {}

    def record(schedule, args, arrays, out_shape):
        seen.update(schedule=schedule, args=args, arrays=arrays, out_shape=out_shape)
        raise Captured
    modules = [m for m in list(sys.modules.values())
               if getattr(m, "prepare_kernel", None) is _common.prepare_kernel]
    for m in modules:
        m.prepare_kernel = record
    try:
        prepare(inputs)
    except Captured:
        pass
    finally:
        for m in modules:
            m.prepare_kernel = _common.prepare_kernel
    return seen["schedule"], seen["args"], seen["arrays"], seen["out_shape"]


def _shrunk(workload, rng, quick: bool) -> dict:
    inputs = workload.make_inputs(rng)
    if not quick:
        return inputs
    half = {"W1": {"A": (512, 512), "B": (512, 512)}, "W2": {},
            "W5": {"x": (2050, 2050)}, "W4": {"x": (2048, 1024)}, "W8": {"x": (2048, 1024)}}
    shapes = half.get(workload.id, {k: (2048, 2048) for k in inputs})
    return {k: np.ascontiguousarray(v[tuple(slice(0, s) for s in shapes[k])]) if k in shapes
            else v for k, v in inputs.items()}


def workload_schedules(quick: bool):
    """(group, name, schedule, args, arrays, out_shape) of every workload schedule."""
    import importlib
    rng = np.random.default_rng(0)
    for wid, workload in WORKLOADS.items():
        inputs = _shrunk(workload, rng, quick)
        args, arrays = auto.ALGORITHMS[wid](inputs)
        out_shape = tuple(int(d.value) if hasattr(d, "value") else int(d)
                          for d in args[-1].shape)
        yield wid, "unscheduled", td.create_schedule(args[-1]), args, arrays, out_shape
        yield wid, "auto", td.auto_schedule(args[-1]), args, arrays, out_shape
        path = find_module(workload)
        module = importlib.import_module(f"benchmarks.schedules.{path.stem}")
        for vname, prep in (getattr(module, "VARIANTS", None) or {"": module.prepare}).items():
            yield (wid, vname or "hand", *_capture(prep, inputs))


def tutorial_schedules(n: int):
    """The matmul schedules of tutorial 02 (tutorials/cells/scheduling_matmul.py)."""
    def algorithm(pack=False):
        A = td.placeholder((n, n), name="A")
        B = td.placeholder((n, n), name="B")
        k = td.reduce_axis(n, name="k")
        if pack:
            Bp = td.compute((n // 32, n, 32), lambda jo, kk, ji: B[kk, jo * 32 + ji], name="Bp")
            C = td.compute((n, n), lambda i, j: td.sum(A[i, k] * Bp[j // 32, k, j % 32], axis=k),
                           name="C")
            return A, B, C, k, Bp
        C = td.compute((n, n), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
        return A, B, C, k, None

    def register_tile(s, C, parallel, Bp=None):
        CL = s.cache_write(C, "local")
        i, j = C.op.axis
        io, jo, _, ji = s[C].tile(i, j, 8, 32)
        s[CL].compute_at(s[C], jo)
        ic, jc = CL.op.axis
        s[CL].reorder(CL.op.reduce_axis[0], ic, jc)
        s[CL].unroll(ic)
        s[CL].vectorize(jc)
        s[C].vectorize(ji)
        if Bp is not None:
            s[Bp].vectorize(Bp.op.axis[2])
        if parallel:
            s[C].parallel(io)
            if Bp is not None:
                s[Bp].parallel(Bp.op.axis[0])

    A, B, C, k, _ = algorithm()
    yield "naive (i, j, k)", td.create_schedule(C), [A, B, C]
    s = td.create_schedule(C)
    i, j = C.op.axis
    s[C].reorder(i, k, j)
    yield "loop order (i, k, j)", s, [A, B, C]
    for vector in (False, True):
        s = td.create_schedule(C)
        i, j = C.op.axis
        io, jo, ii, ji = s[C].tile(i, j, 16, 256)
        ko, ki = s[C].split(k, factor=64)
        s[C].reorder(io, jo, ko, ii, ki, ji)
        if vector:
            s[C].vectorize(ji)
        yield ("+ vectorize j" if vector else "tiled 16x256, k by 64"), s, [A, B, C]
    s = td.create_schedule(C)
    register_tile(s, C, parallel=False)
    yield "+ register tile 8x32", s, [A, B, C]
    for parallel in (False, True):
        A, B, C, k, Bp = algorithm(pack=True)
        s = td.create_schedule(C)
        register_tile(s, C, parallel, Bp)
        yield ("+ parallel" if parallel else "+ pack B"), s, [A, B, C]


# -- measuring --------------------------------------------------------------------------------

def bind(schedule, args, arrays, out_shape, threads: int):
    """The built kernel bound to its inputs and a fresh output: a call runs it."""
    mod = td.build(schedule, args)
    mod.num_threads = threads
    return mod.bind(*arrays, np.empty(out_shape, np.float32))


def measure_rounds(runs: list, rounds: int, quick: bool) -> list[float]:
    """The fastest time of each kernel over `rounds` rounds; a round times every kernel
    (best of a few calls after a warm-up), so a burst of load from other programs falls
    on all kernels of a round rather than on one of them."""
    best = [float("inf")] * len(runs)
    for r in range(rounds):
        for k, run in enumerate(runs):
            start = time.perf_counter()
            run()
            once = time.perf_counter() - start
            if once > 5.0 and best[k] < float("inf"):
                continue                       # slow and measured once already
            repeat = 1 if once > 1.0 else (3 if quick else 5)
            best[k] = min(best[k], once, _best_s(run, repeat) if once < 5.0 else once)
        print(f"  round {r + 1} of {rounds} measured", flush=True)
    return best


def spearman(xs, ys) -> float:
    """Spearman's rho; NaN when either side is constant (all predicted equal)."""
    from scipy.stats import spearmanr
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan")
    return float(spearmanr(xs, ys).statistic)


def run(quick: bool, only: list[str], threads: int, rounds: int) -> str:
    machine, machine_text = probe_machine(threads)
    print(machine_text, flush=True)
    entries = []                 # (group, name, predicted, counts, count seconds, run)

    def record(group, name, schedule, args, arrays, out_shape):
        start = time.perf_counter()
        c = td.counts(schedule, args)
        count_s = time.perf_counter() - start
        predicted = c.roofline_time(machine, warm=True)
        entries.append((group, name, predicted, c, count_s,
                        bind(schedule, args, arrays, out_shape, threads)))
        print(f"{group:>4} {name:28s} predicted {predicted * 1e3:9.2f} ms  "
              f"(counts {count_s:.2f} s)", flush=True)

    for group, name, s, args, arrays, out_shape in workload_schedules(quick):
        if not only or group in only:
            record(group, name, s, args, arrays, out_shape)
    if not only or "T02" in only:
        n = 512 if quick else 1024
        rng = np.random.default_rng(1)
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        for name, s, args in tutorial_schedules(n):
            record("T02", name, s, args, [a, b], (n, n))
    measured = measure_rounds([e[5] for e in entries], rounds, quick)
    rows = [(g, name, predicted, t, c, count_s)
            for (g, name, predicted, c, count_s, _), t in zip(entries, measured)]
    for g, name, predicted, t, _, _ in rows:
        print(f"{g:>4} {name:28s} predicted {predicted * 1e3:9.2f} ms  measured "
              f"{t * 1e3:9.2f} ms", flush=True)
    return markdown(rows, machine, machine_text, quick, rounds)


def correlations(rows, tie: float = 0.0) -> tuple[float, dict]:
    """(pooled, {group: within}) Spearman of predicted vs measured time; predictions
    within `tie` (relative) of each other rank as ties (the model does not claim that a
    0.01% difference in predicted time is a difference)."""
    def predicted(r):
        return round(np.log(r[2]) / np.log1p(tie)) if tie else r[2]
    groups = sorted({r[0] for r in rows}, key=lambda g: (g == "T02", g))
    within = {g: spearman([predicted(r) for r in rows if r[0] == g],
                          [r[3] for r in rows if r[0] == g]) for g in groups}
    return spearman([predicted(r) for r in rows], [r[3] for r in rows]), within


def _summary(pooled: float, within: dict, n: int) -> str:
    finite = [v for v in within.values() if v == v]
    return (f"{pooled:.2f} over all {n} schedules; within a workload: mean "
            f"{statistics.mean(finite):.2f} (" + ", ".join(
                f"{g} {v:.2f}" if v == v else f"{g} n/a (all predicted equal)"
                for g, v in within.items()) + ")")


def markdown(rows, machine, machine_text, quick, rounds) -> str:
    raw = correlations(rows)
    tied = correlations(rows, tie=0.02)
    lines = [
        f"CPU: {cpu_name()}. {machine_text} (measured by this script, "
        f"{machine.lanes} float32 lanes). Every kernel ran on {machine.threads} thread(s) "
        "(parallel loops included) and the model was told so. "
        + ("Quick mode: half-size problems (GEMM 512, 2048^2 images, conv as W2), "
           "" if quick else "Full-size problems. ")
        + f"Measured: the fastest call over {rounds} rounds, each timing every schedule "
          "(best of 5 calls after a warm-up; 1 for calls over 1 s). "
        + "The machine was shared with other sessions while this ran (load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores), so the measured times are noisy.",
        "",
        f"**Spearman rank correlation, predicted vs measured time, with predictions within "
        f"2% of each other ranked as ties: {_summary(*tied, len(rows))}.** Without ties: "
        f"{_summary(*raw, len(rows))}.",
        "",
        "| group | schedule | predicted ms | measured ms | GFLOP | traffic into L1 / LLC | "
        "vector | bound |",
        "|---|---|---:|---:|---:|---:|---:|---|"]
    caches = sorted(machine.bandwidth_gbs)
    for group, name, predicted, measured, c, _ in rows:
        bounds = c.time_bounds(machine, warm=True)
        bound = max(bounds, key=bounds.get)
        lines.append(
            f"| {group} | {name} | {predicted * 1e3:.2f} | {measured * 1e3:.2f} | "
            f"{c.flops / 1e9:.2f} | {_size_mb(c.total_traffic(caches[0]))} / "
            f"{_size_mb(c.total_traffic(caches[-1]))} | {c.vector_fraction:.2f} | "
            f"{bound if bound == 'compute' else 'traffic into ' + _size(bound)} |")
    lines += ["", "Predicted time = `Counts.roofline_time(Machine(...), warm=True)` "
              "(tdsl/analysis/counts.py): the cache model of docs/architecture.md at each "
              "level's size, no timing; the within-workload correlations are the ones that "
              "say whether the counts rank schedules of one algorithm (the pooled figure is "
              "helped by the workloads' different sizes)."]
    return "\n".join(lines)


def _size_mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def write_results(text: str, path: Path) -> None:
    """Replace this script's section of RESULTS.md (or append it); the rest is untouched."""
    section = f"{BEGIN}\n## Counts vs measured time (benchmarks/counts_vs_time.py)\n\n{text}\n{END}"
    report.replace_section(path, BEGIN, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="half-size problems")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per kernel and in the model (default 1: on a machine "
                        "shared with other programs, an OpenMP team waits for descheduled "
                        "threads, and parallel timings say more about the load than the "
                        "schedule)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of measurements")
    parser.add_argument("only", nargs="*", help="groups to run (W1 ... W8, T02)")
    opts = parser.parse_args()
    text = run(opts.quick, opts.only, opts.threads, opts.rounds)
    print(text)
    if opts.write:
        write_results(text, HERE / "RESULTS.md")


if __name__ == "__main__":
    main()
