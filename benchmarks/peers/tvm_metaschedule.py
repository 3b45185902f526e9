"""TVM's MetaSchedule on W1-W8: the row "tvm:metaschedule".

Each workload is defined in TE as a user writes it, with no schedule (`algorithm`: the
computations of tvm_impl.py without its layout changes, packing or hand schedule; W4's
exponential is `topi.fast_exp`, as in tvm_impl, TVM's vectorizable exp), made a PrimFunc
(`te.create_prim_func`) and tuned by MetaSchedule (`s_tir.meta_schedule.tune_tir`) for a
given number of measured trials, with its defaults: the post-order-apply space of the
llvm target's schedule rules, evolutionary search, the XGBoost cost model (the random
model if xgboost is not installed; the row says which), 64 candidates per round. The
target is the run's LLVM target (tvm_impl.target(): the `mcpu` of the run's tdsl target)
with `num-cores` = the run's thread count; candidates are built by MetaSchedule's local
builder and timed by its local runner (EvaluatorConfig: the mean of 3 runs, at least
100 ms, with its CPU cache flush for the GB/s workloads, whose measure starts from DRAM).

The best candidate's trace is replayed on the PrimFunc in this process, compiled with
`tvm.compile` and then timed by benchmarks/harness.py like every other row; MetaSchedule's
own measurements make the row's tuning curve (best time after N measured trials,
`curves`), not its time.

Tuning runs in a child process (`python -m benchmarks.peers.tvm_metaschedule --child`),
as Halide's autoschedulers do (peers/halide_auto.py): a crash inside TVM's native code
must not take the benchmark run with it. A failing, crashing or timed-out child makes
`prepare` raise, and the row is "error" with the child's last lines. Results are kept in
benchmarks/tuning/metaschedule.jsonl (one record per workload, sizes, target, CPU and
trial budget: the trace of the best candidate, the curve, the counts); a record that
matches is replayed without tuning again (`retune=True` or a new budget tunes).

Two things in the PyPI wheels make MetaSchedule fail unless handled:
- apache-tvm 0.27.0.post1 asks for `apache-tvm-ffi>=0.1.14.post0`, and pip installs
  0.1.15.post2, whose libtvm_ffi is not ABI-compatible with the libtvm built against
  0.1.14: `ToJSONGraph` (tvm.ir.save_json of any TIR expression, which TuneContext does)
  dereferences an object's reference count as a pointer and segfaults. With
  apache-tvm-ffi 0.1.14.post1 it works (pyproject's `bench` extra pins it).
- MetaSchedule's default builder imports `tvm.s_tir.tensor_intrin` in every build worker,
  and restarts its worker pool for every batch. That import parses hundreds of tensor
  intrinsics in TVMScript: 30-80 s on the 2-core machine, more than the builder's 30 s
  timeout, so every candidate is a "build error". `build` below is the default build
  without that import (the traces carry the tensorized code; nothing is looked up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import PeerUnavailable
from .tvm_impl import bound_call

ROW = "tvm:metaschedule"
DEFAULT_TRIALS = 300
TRIALS_PER_ROUND = 64           # MetaSchedule's default num_trials_per_iter
BUILD_TIMEOUT_S = 120
CHILD_TIMEOUT_S = 3 * 3600
REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "benchmarks" / "tuning" / "metaschedule.jsonl"
_UNAVAILABLE = 3                # the child's exit code when tvm or MetaSchedule is missing
_GBS = ("W3", "W4", "W5", "W6", "W7", "W8")    # measured from DRAM: cache flush on


class MetaScheduleError(RuntimeError):
    """MetaSchedule failed (or its child process died) on this workload."""


def _tvm():
    try:
        import tvm
        from tvm import te, topi  # noqa: F401
        from tvm.s_tir import meta_schedule  # noqa: F401
    except Exception as e:        # ImportError, or a broken native library
        raise PeerUnavailable(f"cannot import tvm.s_tir.meta_schedule: "
                              f"{type(e).__name__}: {e}") from e
    return tvm


def threads() -> int:
    """`num-cores` of the target: the run's thread count (run.py sets TVM_NUM_THREADS =
    --threads), else the number of cores."""
    return int(os.environ.get("TVM_NUM_THREADS") or os.cpu_count() or 1)


def cost_model() -> str:
    """MetaSchedule's default, "xgb", when xgboost is installed; else "random"."""
    try:
        import xgboost  # noqa: F401
    except Exception:
        return "random"
    return "xgb"


def target_config() -> dict:
    """The run's TVM target (tvm_impl.target()) with num-cores, as a dict."""
    from .. import targets
    return {"kind": "llvm", "mcpu": targets.llvm_mcpu(), "num-cores": threads()}


# --- the algorithms, no schedule ---------------------------------------------------------

def algorithm(workload_id: str, shapes: dict):
    """(PrimFunc, input names): the workload in TE, unscheduled."""
    _tvm()
    from tvm import te, topi

    def f32(v):
        return te.const(v, "float32")

    if workload_id == "W1":
        (m, kk), (_, n) = shapes["A"], shapes["B"]
        A, B = te.placeholder((m, kk), name="A"), te.placeholder((kk, n), name="B")
        k = te.reduce_axis((0, kk), "k")
        C = te.compute((m, n), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
        return te.create_prim_func([A, B, C]), ["A", "B"]
    if workload_id == "W2":
        n_, c_, h_, w_ = shapes["x"]
        k_, _, r_, s_ = shapes["w"]
        X = te.placeholder((n_, c_, h_, w_), name="x")
        Wt = te.placeholder((k_, c_, r_, s_), name="w")
        Xp = te.compute(
            (n_, c_, h_ + 2, w_ + 2),
            lambda n, c, h, w: te.if_then_else(te.all(h >= 1, h <= h_, w >= 1, w <= w_),
                                               X[n, c, h - 1, w - 1], f32(0.0)), name="Xp")
        c = te.reduce_axis((0, c_), "c")
        r = te.reduce_axis((0, r_), "r")
        s = te.reduce_axis((0, s_), "s")
        O = te.compute((n_, k_, h_, w_),
                       lambda n, k, h, w: te.sum(Xp[n, c, h + r, w + s] * Wt[k, c, r, s],
                                                 axis=[c, r, s]), name="O")
        return te.create_prim_func([X, Wt, O]), ["x", "w"]
    if workload_id == "W3":
        sh = shapes["a"]
        a, b, c = (te.placeholder(sh, name=nm) for nm in "abc")
        out = te.compute(sh, lambda i, j: te.max(a[i, j] * b[i, j] + c[i, j], f32(0.0)),
                         name="out")
        return te.create_prim_func([a, b, c, out]), ["a", "b", "c"]
    h, w = shapes["x"]
    x = te.placeholder((h, w), name="x")
    if workload_id == "W4":
        k1, k2 = te.reduce_axis((0, w), "k1"), te.reduce_axis((0, w), "k2")
        mx = te.compute((h,), lambda i: te.max(x[i, k1], axis=k1), name="mx")
        e = topi.fast_exp(te.compute((h, w), lambda i, j: x[i, j] - mx[i], name="sh"))
        sm = te.compute((h,), lambda i: te.sum(e[i, k2], axis=k2), name="sm")
        out = te.compute((h, w), lambda i, j: e[i, j] / sm[i], name="out")
    elif workload_id == "W5":
        third = f32(1.0 / 3.0)
        bx = te.compute((h, w - 2), lambda i, j: (x[i, j] + x[i, j + 1] + x[i, j + 2]) * third,
                        name="blur_x")
        out = te.compute((h - 2, w - 2),
                         lambda i, j: (bx[i, j] + bx[i + 1, j] + bx[i + 2, j]) * third,
                         name="blur_y")
    elif workload_id == "W6":
        out = te.compute((w, h), lambda i, j: x[j, i], name="out")
    elif workload_id == "W7":
        k = te.reduce_axis((0, w), "k")
        out = te.compute((h,), lambda i: te.sum(x[i, k], axis=k), name="out")
    elif workload_id == "W8":
        k1, k2 = te.reduce_axis((0, w), "k1"), te.reduce_axis((0, w), "k2")
        s1 = te.compute((h,), lambda i: te.sum(x[i, k1], axis=k1), name="s1")
        s2 = te.compute((h,), lambda i: te.sum(x[i, k2] * x[i, k2], axis=k2), name="s2")
        inv_n = f32(1.0 / w)

        def norm(i, j):
            mean = s1[i] * inv_n
            return (x[i, j] - mean) * te.rsqrt(s2[i] * inv_n - mean * mean + f32(1e-5))
        out = te.compute((h, w), norm, name="out")
    else:
        raise KeyError(f"unknown workload {workload_id!r}")
    return te.create_prim_func([x, out]), ["x"]


WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")


def build(mod, target, _params):
    """MetaSchedule's default build (s_tir.meta_schedule.builder.default_build) without
    its `import tvm.s_tir.tensor_intrin` (see the module's docstring). Runs in the
    builder's worker processes, which import this module by name."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock
    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


# --- tuning (in the child process) -------------------------------------------------------

def _curve(record_file: Path) -> tuple[list[float | None], list[dict], int]:
    """From MetaSchedule's JSON database, in the order the measurements were committed:
    the best mean time after each trial (None before the first success), the records
    (trace, mean seconds or None), and the number of failed trials."""
    best, curve, recs, errors = None, [], [], 0
    for line in record_file.read_text().splitlines():
        if not line.strip():
            continue
        _, (trace, run_secs, *_) = json.loads(line)
        secs = [float(s) for s in run_secs or []]
        mean = sum(secs) / len(secs) if secs else None
        if mean is None or mean >= 1e9:          # MetaSchedule records a failure as 1e10
            errors += 1
            mean = None
        elif best is None or mean < best:
            best = mean
        curve.append(best)
        recs.append({"trace": trace, "seconds": mean})
    return curve, recs, errors


def tune(workload_id: str, shapes: dict, trials: int, target: dict, work_dir: str,
         seed: int = 0, flush: bool | None = None, model: str | None = None) -> dict:
    """Tune in this process; returns the record: the best trace (JSON and Python), its
    MetaSchedule time, the curve, counts and seconds."""
    tvm = _tvm()
    from tvm.s_tir import meta_schedule as ms
    flush = workload_id in _GBS if flush is None else flush
    model = model or cost_model()
    func, _ = algorithm(workload_id, shapes)
    mod = tvm.IRModule({"main": func})
    t0 = time.perf_counter()
    ms.tune_tir(
        mod, tvm.target.Target(target), work_dir, max_trials_global=trials,
        num_trials_per_iter=min(TRIALS_PER_ROUND, trials),
        builder=ms.builder.LocalBuilder(f_build=build, timeout_sec=BUILD_TIMEOUT_S,
                                        max_workers=target["num-cores"]),
        runner=ms.runner.LocalRunner(evaluator_config=ms.runner.EvaluatorConfig(
            number=3, repeat=1, min_repeat_ms=100, enable_cpu_cache_flush=flush)),
        cost_model=model, num_tuning_cores=target["num-cores"], seed=seed)
    seconds = time.perf_counter() - t0
    curve, recs, errors = _curve(Path(work_dir) / "database_tuning_record.json")
    ok = [r for r in recs if r["seconds"] is not None]
    if not ok:
        raise MetaScheduleError(f"MetaSchedule on {workload_id}: none of {len(recs)} "
                                f"trials built and ran (see the logs in {work_dir})")
    best = min(ok, key=lambda r: r["seconds"])
    sch = tvm.s_tir.Schedule(mod)
    tvm.s_tir.schedule.Trace.apply_json_to_schedule(best["trace"], sch)
    return {"workload": workload_id, "shapes": {k: list(v) for k, v in shapes.items()},
            "target": target, "trials": trials, "seed": seed, "cost_model": model,
            "cache_flush": flush, "measured": len(recs), "errors": errors,
            "best_s": best["seconds"], "curve": curve, "tuning_s": seconds,
            "trace": best["trace"], "source": "\n".join(sch.trace.as_python())}


def _child(request: str, out: str) -> int:
    """--child REQUEST OUT: tune as `request` (JSON) says, write the record to OUT."""
    req = json.loads(request)
    try:
        _tvm()
    except PeerUnavailable as e:
        print(e, file=sys.stderr)
        return _UNAVAILABLE
    with tempfile.TemporaryDirectory(prefix="tvm-ms-") as work_dir:
        rec = tune(req["workload"], {k: tuple(v) for k, v in req["shapes"].items()},
                   req["trials"], req["target"], req.get("work_dir") or work_dir,
                   seed=req["seed"])
    Path(out).write_text(json.dumps(rec))
    return 0


def versions() -> str:
    """The installed apache-tvm and apache-tvm-ffi, from their metadata (no import)."""
    from importlib import metadata
    out = []
    for dist in ("apache-tvm", "apache-tvm-ffi"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} not installed")
    return ", ".join(out)


def _failure(wid: str, proc) -> str:
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
    # the lines that say what failed: an exception, TVM's segfault banner and native frames
    key = [ln for ln in lines if "Error" in ln or "Segfault" in ln or "tvm::" in ln]
    msg = " / ".join((key or lines)[-4:])[-600:] or "no message"
    if proc.returncode < 0:
        try:
            how = f"killed by {signal.Signals(-proc.returncode).name}"
        except ValueError:
            how = f"killed by signal {-proc.returncode}"
    else:
        how = f"exit code {proc.returncode}"
    hint = ""
    if "ToJSONGraph" in msg or proc.returncode == -signal.SIGSEGV:
        hint = (" (apache-tvm 0.27.0.post1 needs apache-tvm-ffi 0.1.14.post1: with 0.1.15 "
                "ToJSONGraph segfaults; pip install 'apache-tvm-ffi==0.1.14.post1')")
    return f"MetaSchedule on {wid}: child process {how} [{versions()}]{hint}: {msg}"


def tune_in_child(workload_id: str, shapes: dict, trials: int, target: dict,
                  seed: int = 0, timeout_s: float = CHILD_TIMEOUT_S,
                  work_dir: str | None = None) -> dict:
    """`tune` in a child process (a native crash, an abort or a hang past `timeout_s` is a
    MetaScheduleError here); the child's output goes to this process's stderr."""
    req = {"workload": workload_id, "shapes": {k: list(v) for k, v in shapes.items()},
           "trials": trials, "target": target, "seed": seed, "work_dir": work_dir}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="tvm-ms-out-") as tmp:
        out = Path(tmp) / "record.json"
        cmd = [sys.executable, "-m", "benchmarks.peers.tvm_metaschedule", "--child",
               json.dumps(req), str(out)]
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            raise MetaScheduleError(f"MetaSchedule on {workload_id}: no result after "
                                    f"{timeout_s:.0f} s") from e
        if proc.returncode == _UNAVAILABLE:
            raise PeerUnavailable(proc.stderr.strip().splitlines()[-1])
        if proc.returncode != 0 or not out.exists():
            raise MetaScheduleError(_failure(workload_id, proc))
        return json.loads(out.read_text())


# --- records -----------------------------------------------------------------------------

def _key(rec: dict) -> tuple:
    return (rec["workload"], json.dumps(rec["shapes"], sort_keys=True),
            json.dumps(rec["target"], sort_keys=True), rec.get("cpu"), rec["trials"],
            rec.get("seed", 0))


def load_record(path: Path, want: dict) -> dict | None:
    """The last record of `path` with the key of `want` (workload, shapes, target, CPU,
    trials, seed), or None."""
    if not Path(path).exists():
        return None
    found = None
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if _key(rec) == _key(want):
                found = rec
    return found


def tuned(workload_id: str, shapes: dict, trials: int, *, records: Path | None = RECORDS,
          retune: bool = False, seed: int = 0, recorded_only: bool = False
          ) -> tuple[dict, bool]:
    """(record, whether it was tuned now): from `records` if one matches, else tuned in a
    child process and appended there (records=None: neither read nor written);
    `recorded_only` raises MetaScheduleError instead of tuning."""
    from .. import targets
    want = {"workload": workload_id, "shapes": {k: list(v) for k, v in shapes.items()},
            "target": target_config(), "cpu": targets.cpu(), "trials": trials, "seed": seed}
    if records is not None and not retune:
        rec = load_record(records, want)
        if rec is not None:
            return rec, False
    if recorded_only:
        shown = Path(records).resolve()
        shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
        raise MetaScheduleError(f"no record of {workload_id} with {trials} trials for this "
                                f"target and CPU in {shown}")
    rec = tune_in_child(workload_id, shapes, trials, want["target"], seed=seed)
    rec["cpu"] = want["cpu"]
    rec["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if records is not None:
        Path(records).parent.mkdir(parents=True, exist_ok=True)
        with open(records, "a") as f:
            f.write(json.dumps(rec) + "\n")
    return rec, True


def compile_record(rec: dict, shapes: dict):
    """(compiled main function, input names): the record's trace replayed on the
    workload's PrimFunc, built with tvm.compile for the record's target."""
    tvm = _tvm()
    func, names = algorithm(rec["workload"], shapes)
    sch = tvm.s_tir.Schedule(tvm.IRModule({"main": func}))
    tvm.s_tir.schedule.Trace.apply_json_to_schedule(rec["trace"], sch)
    lib = tvm.compile(sch.mod, target=tvm.target.Target(rec["target"]))
    return lib["main"], names


class MetaSchedule:
    """The peer: `prepare(workload_id, inputs, out_shape)` and `schedules()`, the contract
    of the modules in this package. `trials`: the budget (run.py's --trials)."""

    row = ROW

    def __init__(self, trials: int = DEFAULT_TRIALS, records: Path | None = RECORDS,
                 retune: bool = False):
        self.trials, self.records, self.retune = trials, records, retune
        self.sources: dict[str, str] = {}        # workload id -> the best trace, as Python
        self.curves: dict[str, list] = {}        # workload id -> best seconds after N trials
        self.info: dict[str, dict] = {}          # workload id -> counts, seconds, cached

    def schedules(self, t=None) -> dict:
        desc = (f"MetaSchedule (tune_tir, {self.trials} trials, {cost_model()} cost model, "
                f"evolutionary search, num-cores {threads()}) on the unscheduled TE "
                "definition; the best trace replayed and compiled")
        return {wid: desc for wid in WORKLOADS}

    def prepare(self, workload_id: str, inputs: dict, out_shape: tuple):
        """(run, result, compile_s): compile_s = MetaSchedule's tuning time (the child's,
        or the stored record's) + this process's replay and compilation."""
        tvm = _tvm()
        shapes = {k: tuple(v.shape) for k, v in inputs.items()}
        rec, fresh = tuned(workload_id, shapes, self.trials, records=self.records,
                           retune=self.retune)
        t0 = time.perf_counter()
        fn, names = compile_record(rec, shapes)
        compile_s = rec["tuning_s"] + time.perf_counter() - t0
        self.sources[workload_id] = rec["source"]
        self.curves[workload_id] = rec["curve"]
        self.info[workload_id] = {k: rec[k] for k in ("measured", "errors", "best_s",
                                                      "tuning_s", "cost_model", "date")
                                  if k in rec} | {"from_record": not fresh}
        return (*bound_call(tvm, fn, names, inputs, out_shape), compile_s)


def main(argv: list[str]) -> int:
    """--child REQUEST OUT: the child process. Else WID [TRIALS]: tune one workload at the
    benchmark's sizes (not stored) and print the curve and the best trace."""
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2])
    import numpy as np

    from ..workloads import WORKLOADS as ALL
    wid, trials = argv[0], int(argv[1]) if len(argv) > 1 else DEFAULT_TRIALS
    shapes = {k: v.shape for k, v in ALL[wid].make_inputs(np.random.default_rng(0)).items()}
    rec = tune_in_child(wid, shapes, trials, target_config())
    print(json.dumps({k: v for k, v in rec.items() if k not in ("trace", "source")}))
    print(rec["source"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
