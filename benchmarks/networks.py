#!/usr/bin/env python3
"""Network latency: tdsl next to ONNX Runtime, JAX (jax.jit, XLA on CPU) and TVM Relax, on
the ONNX models of tdsl.testing.onnx_models, batch 1 (and the MLP at batch 64), 2 threads.

    python benchmarks/networks.py [--quick] [--models mlp,resnet18] [--no-write]

Each model is built once (random weights, fixed seed) and handed to every system as the
same ONNX graph:

- tdsl: `td.compile(model)` (skipped, saying so, in a tdsl without the graph compiler).
  ResNet-18's cold compile (an empty kernel cache) and second compile (cache) are timed.
- ONNX Runtime: an InferenceSession, intra_op_num_threads=2, default optimizations.
- JAX: benchmarks/peers/onnx_jax.py interprets the graph with jax.numpy / lax; jax.jit.
- TVM Relax: `tvm.relax.frontend.onnx.from_onnx`, then `tvm.compile` for llvm with this
  CPU's -mcpu and the default pipeline (no tuning).

ONNX Runtime's output is the reference: every other row is checked against it first (a
wrong result is reported, never timed). Timing is benchmarks/harness.py's: interleaved
rounds, an untimed switch-in per turn, medians. The table replaces the section
"Networks (benchmarks/networks.py)" of benchmarks/RESULTS.md (between its markers) unless
--no-write; a --quick run (3 rounds x 2 calls) says so in the section.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
THREADS = 2
for _var in ("OMP_NUM_THREADS", "TVM_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TDSL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402



def markers(policy: str | None) -> tuple[str, str]:
    """The delimiters of the section of one OpenMP wait policy: tdsl's kernels run on
    libgomp, whose barriers spin by default (the peers have their own thread pools), so a
    run with OMP_WAIT_POLICY set gets its own section, as in parity/run.py."""
    suffix = f" OMP_WAIT_POLICY={policy}" if policy else ""
    return f"<!-- networks.py: begin{suffix} -->", f"<!-- networks.py: end{suffix} -->"

PEERS = ("tdsl", "onnxruntime", "jax", "tvm")
TITLES = {"tdsl": "tdsl", "onnxruntime": "ONNX Runtime", "jax": "JAX jit (XLA)",
          "tvm": "TVM Relax"}


def models() -> dict:
    """id -> (title, builder of the ONNX model)."""
    from tdsl.testing import onnx_models as m
    return {
        "mlp": ("MLP 784-512-512-10, batch 1", lambda: m.mlp(batch=1)),
        "mlp64": ("MLP 784-512-512-10, batch 64", lambda: m.mlp(batch=64)),
        "resnet18": ("ResNet-18, 1x3x224x224", lambda: m.resnet18(image=224)),
        "mobilenet_v2": ("MobileNetV2, 1x3x224x224", lambda: m.mobilenet_v2(image=224)),
        "transformer": ("encoder block, seq 128, width 256, 4 heads",
                        lambda: m.transformer_block(seq=128, width=256, heads=4)),
    }


# -- the systems: prepare(model, x) -> (run, result, compile seconds) -------------------------


def prepare_onnxruntime(model, x):
    import onnxruntime as ort
    t0 = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    compile_s = time.perf_counter() - t0
    feeds = {model.graph.input[0].name: x}
    out = {}

    def run():
        out["y"] = session.run(None, feeds)[0]
    return run, lambda: out["y"], compile_s


def prepare_jax(model, x):
    from benchmarks.peers import PeerUnavailable
    try:
        import jax
    except Exception as e:
        raise PeerUnavailable(f"cannot import jax: {e}") from e
    from benchmarks.peers.onnx_jax import to_jax
    fn, weights = to_jax(model)
    jitted = jax.jit(fn)
    xj = jax.device_put(x)
    t0 = time.perf_counter()
    jitted(xj, weights)[0].block_until_ready()      # trace + XLA compile
    compile_s = time.perf_counter() - t0
    out = {}

    def run():
        out["y"] = jitted(xj, weights)[0].block_until_ready()
    return run, lambda: np.asarray(out["y"]), compile_s


def prepare_tvm(model, x):
    from benchmarks.machine import _native_march
    from benchmarks.peers import PeerUnavailable
    try:
        import tvm
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx
    except Exception as e:
        raise PeerUnavailable(f"TVM Relax's ONNX frontend is unavailable: "
                              f"{type(e).__name__}: {e}") from e
    t0 = time.perf_counter()
    mod = from_onnx(model, keep_params_in_input=False)
    target = tvm.target.Target({"kind": "llvm", "mcpu": _native_march(), "num-cores": THREADS})
    vm = relax.VirtualMachine(tvm.compile(mod, target=target), tvm.cpu())
    compile_s = time.perf_counter() - t0
    arg = tvm.runtime.tensor(x, tvm.cpu())
    main = vm["main"]
    out = {}

    def run():
        out["y"] = main(arg)
    return run, lambda: out["y"].numpy(), compile_s


def prepare_tdsl(model, x, timings: dict | None = None):
    import tdsl as td
    from benchmarks.peers import PeerUnavailable
    if not hasattr(td, "compile"):
        raise PeerUnavailable("td.compile is not available in this tdsl (no graph "
                              "compiler, tdsl/graph): the tdsl row is skipped")
    t0 = time.perf_counter()
    net = td.compile(model)
    compile_s = time.perf_counter() - t0
    if timings is not None:                       # the second compile finds the cache
        t1 = time.perf_counter()
        td.compile(model)
        timings["cached_s"] = time.perf_counter() - t1
    out = {}

    def run():
        out["y"] = net(x)
    return run, lambda: np.asarray(out["y"] if not isinstance(out["y"], list)
                                   else out["y"][0]), compile_s


# -- one model ---------------------------------------------------------------------------------


class Case:
    """One model of the run: its ONNX graph, the input, the tdsl network prepared early."""

    def __init__(self, key: str, title: str, build):
        self.key, self.title, self.model = key, title, build()
        shape = [d.dim_value for d in self.model.graph.input[0].type.tensor_type.shape.dim]
        self.x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        self.timings: dict = {}
        self.tdsl = None

    def prepare_tdsl(self, harness) -> None:
        """td.compile forks worker processes: it runs for every model before JAX (whose
        threads a fork must not copy) is imported."""
        log(f"{self.key}: preparing tdsl")
        timings = self.timings if self.key == "resnet18" else None
        self.tdsl = harness.prepare_impl("tdsl", lambda: prepare_tdsl(self.model, self.x,
                                                                      timings))


def bench_model(case: Case, args, harness) -> dict:
    key, model, x = case.key, case.model, case.x
    preparers = {"onnxruntime": lambda: prepare_onnxruntime(model, x),
                 "jax": lambda: prepare_jax(model, x),
                 "tvm": lambda: prepare_tvm(model, x)}
    impls = [case.tdsl] if case.tdsl is not None else []
    for peer in PEERS[1:]:
        if peer not in args.peers:
            continue
        log(f"{key}: preparing {peer}")
        impls.append(harness.prepare_impl(peer, preparers[peer]))
    ref = next((im for im in impls if im.name == "onnxruntime" and im.timed), None)
    if ref is not None:
        ref.run()
        want = ref.result()
        for im in impls:
            _check(im, want)
    harness.measure(impls, rounds=args.rounds, calls=args.calls, warmup=1,
                    progress=lambda m: log(f"{key}: {m}"))
    rec = {"model": key, "title": case.title, "rows": {}}
    for im in impls:
        row = {"status": im.status, "reason": im.reason, "compile_s": im.compile_s}
        if im.samples:
            stats = harness.Stats.of(im.samples)
            row.update(median_ms=stats.median_s * 1e3, p10_ms=stats.p10_s * 1e3, n=stats.n)
        if im.traceback_text and args.verbose:
            print(im.traceback_text, file=sys.stderr)
        rec["rows"][im.name] = row
    if "cached_s" in case.timings:
        rec["rows"]["tdsl"]["cached_compile_s"] = case.timings["cached_s"]
    return rec


def _check(im, want: np.ndarray) -> None:
    """Run once; the output must equal ONNX Runtime's within float32 tolerance."""
    if not im.timed or im.name == "onnxruntime":
        return
    try:
        im.run()
        got = im.result()
    except Exception as e:
        im.status, im.reason = "error", f"{type(e).__name__}: {e}"
        im.traceback_text = traceback.format_exc()
        return
    scale = float(np.max(np.abs(want))) or 1.0
    err = float(np.max(np.abs(np.asarray(got, np.float64) - want))) / scale \
        if got.shape == want.shape else float("inf")
    if not err <= 1e-3:
        im.status = "wrong"
        im.reason = f"max error {err:.2e} of the output's range vs ONNX Runtime (shape " \
                    f"{got.shape}, expected {want.shape})"


# -- the report --------------------------------------------------------------------------------


def markdown(records: list[dict], info: dict, args, seconds: float) -> str:
    quick = " **Quick run** (3 rounds x 2 calls, a smoke test: indicative only)." \
        if args.quick else ""
    if float(info["load"].split()[0]) > (info["cores"] or 1):
        quick += (" The load average was above the core count (other jobs shared the "
                  "cores): absolute times are inflated, compare the systems within the run.")
    policy = None if info["omp_wait_policy"] == "unset" else info["omp_wait_policy"]
    begin, end = markers(policy)
    variant = f", OMP_WAIT_POLICY={policy}" if policy else ""
    lines = [begin, f"## Networks (benchmarks/networks.py{variant})", "",
             f"{info['date']}: {info['cpu']}, gcc -march=native = {info['march']}, "
             f"{info['cores']} cores, {THREADS} threads; onnxruntime {info['onnxruntime']}, "
             f"jax {info['jax']}, TVM {info['tvm']}; OMP_WAIT_POLICY="
             f"{info['omp_wait_policy']}, GOMP_SPINCOUNT={info.get('gomp_spincount', 'unset')}; "
             f"load average at the end "
             f"{info['load']}; {seconds:.0f} s in all.{quick}", "",
             "Latency per inference, median ms (10th percentile), float32; every row was "
             "checked against ONNX Runtime first. Lower is better.", "",
             "| model | " + " | ".join(TITLES[p] for p in PEERS) + " | tdsl / best peer |",
             "|---|" + "---:|" * (len(PEERS) + 1)]
    notes: dict = {}             # (system, status, reason) -> the models it concerns
    for rec in records:
        cells, best = [], None
        for peer in PEERS:
            row = rec["rows"].get(peer)
            if row is None:
                cells.append("not run")
            elif "median_ms" in row and row["status"] == "ok":
                cells.append(f"{row['median_ms']:.3g} ({row['p10_ms']:.3g})")
                if peer != "tdsl":
                    best = row["median_ms"] if best is None else min(best, row["median_ms"])
            else:
                cells.append(row["status"])
                notes.setdefault((TITLES[peer], row["status"], row["reason"]),
                                 []).append(rec["title"])
        tdsl = rec["rows"].get("tdsl", {})
        ratio = f"{tdsl['median_ms'] / best:.2f}x" if "median_ms" in tdsl and best else "-"
        lines.append(f"| {rec['title']} | " + " | ".join(cells) + f" | {ratio} |")
    lines += ["", "Compile times, seconds (tdsl: `td.compile`; ONNX Runtime: session "
              "creation; JAX: trace + XLA compile; TVM: from_onnx + tvm.compile):", "",
              "| model | " + " | ".join(TITLES[p] for p in PEERS) + " |",
              "|---|" + "---:|" * len(PEERS)]
    for rec in records:
        cells = []
        for peer in PEERS:
            row = rec["rows"].get(peer, {})
            c = row.get("compile_s")
            cell = f"{c:.2f}" if c is not None and row.get("status") != "skipped" else "-"
            if row.get("cached_compile_s") is not None:
                cell += f" (cached: {row['cached_compile_s']:.2f})"
            cells.append(cell)
        lines.append(f"| {rec['title']} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (issue \"Networks\"): tdsl faster than ONNX Runtime and XLA on "
              "every model; ResNet-18 cold compile under 30 s, cached under 1 s.", ""]
    lines += target_lines(records)
    if notes:
        lines += ["", "Rows not timed:", ""]
        for (system, status, reason), titles in notes.items():
            which = "every model" if len(titles) == len(records) else "; ".join(titles)
            lines.append(f"- {system}, {status} on {which}: {reason}")
    lines.append(end)
    return "\n".join(lines) + "\n"


def target_lines(records: list[dict]) -> list[str]:
    """Met or not, with the numbers, per model and for ResNet-18's compile times."""
    lines = []
    for rec in records:
        tdsl = rec["rows"].get("tdsl", {})
        if "median_ms" not in tdsl or tdsl["status"] != "ok":
            lines.append(f"- {rec['title']}: no tdsl time ({tdsl.get('status', 'not run')})")
            continue
        slower = [f"{TITLES[p]} {rec['rows'][p]['median_ms']:.3g} ms"
                  for p in ("onnxruntime", "jax") if rec["rows"].get(p, {}).get("status") == "ok"
                  and "median_ms" in rec["rows"][p]
                  and rec["rows"][p]["median_ms"] <= tdsl["median_ms"]]
        verdict = "met" if not slower else "not met: slower than " + ", ".join(slower)
        lines.append(f"- {rec['title']}: tdsl {tdsl['median_ms']:.3g} ms, {verdict}")
    for rec in records:
        tdsl = rec["rows"].get("tdsl", {})
        if rec["model"] == "resnet18" and tdsl.get("status") == "ok":
            cold, cached = tdsl["compile_s"], tdsl.get("cached_compile_s")
            lines.append(f"- ResNet-18 cold compile {cold:.1f} s: "
                         f"{'met' if cold < 30 else 'not met'} (target 30 s)")
            if cached is not None:
                lines.append(f"- ResNet-18 second compile (cache) {cached:.2f} s: "
                             f"{'met' if cached < 1 else 'not met'} (target 1 s)")
    return lines


def write_section(path: Path, section: str) -> None:
    """Replace the delimited section of RESULTS.md (the one with the same markers as
    `section`'s first and last lines), or append it."""
    begin, end = section.strip("\n").split("\n")[0], section.strip("\n").split("\n")[-1]
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def describe() -> dict:
    from importlib.metadata import version

    from benchmarks.machine import _cpu_model, _loadavg, _native_march

    def ver(name):
        try:
            return version(name)
        except Exception:
            return "not installed"
    import datetime
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": _cpu_model(), "march": _native_march(), "cores": os.cpu_count(),
            "onnxruntime": ver("onnxruntime"), "jax": ver("jax"), "tvm": ver("apache-tvm"),
            "load": _loadavg(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
            # tdsl's default (tdsl/runtime) when neither variable was set
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "unset")}


def log(msg: str) -> None:
    print(f"[networks] {msg}", file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 rounds x 2 calls: a smoke run")
    p.add_argument("--rounds", type=int, help="rounds of the rotation (default 8, quick 3)")
    p.add_argument("--calls", type=int, help="timed calls per round (default 5, quick 2)")
    p.add_argument("--models", default="", help="comma-separated ids (default: all of "
                   "mlp, mlp64, resnet18, mobilenet_v2, transformer)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated systems")
    p.add_argument("--md", default=str(HERE / "RESULTS.md"))
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--verbose", action="store_true", help="print the tracebacks of errors")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 8)
    args.calls = args.calls or (2 if args.quick else 5)
    args.peers = [x for x in args.peers.split(",") if x]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # A fresh kernel cache: tdsl's first compile of ResNet-18 is a cold one.
    os.environ["TDSL_CACHE_DIR"] = tempfile.mkdtemp(prefix="tdsl-networks-cache-")
    from benchmarks import harness
    catalogue = models()
    wanted = [m for m in args.models.split(",") if m] or list(catalogue)
    unknown = [m for m in wanted if m not in catalogue]
    if unknown:
        log(f"unknown models {unknown}; choose from {list(catalogue)}")
        return 2
    t0 = time.perf_counter()
    cases = [Case(key, *catalogue[key]) for key in wanted]
    if "tdsl" in args.peers:
        for case in cases:
            case.prepare_tdsl(harness)
    records = []
    for case in cases:
        records.append(bench_model(case, args, harness))
        for peer, row in records[-1]["rows"].items():
            timing = f"{row['median_ms']:.3f} ms" if "median_ms" in row else row["status"]
            compile_s = f", compile {row['compile_s']:.2f} s" if row.get("compile_s") else ""
            log(f"{case.key:13s} {peer:12s} {timing}{compile_s} {row['reason'][:120]}")
    section = markdown(records, describe(), args, time.perf_counter() - t0)
    print(section)
    if not args.no_write:
        write_section(Path(args.md), section)
        log(f"wrote {args.md}")
    bad = [r for rec in records for r in rec["rows"].values() if r["status"] in ("wrong",)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
