"""Halide's autoschedulers on W1-W8: rows "halide:mullapudi2016" and "halide:adams2019".

The algorithm is halide_impl.py's, Func for Func (`halide_impl.algorithm`: the same
builders with the hand schedule left out). Instead of the hand schedule, the pipeline gets
estimates (the run's input and output extents, which are also its fixed bounds) and is
scheduled by one of the autoschedulers the PyPI `halide` wheel ships as plugins:

    Mullapudi2016  Mullapudi et al., SIGGRAPH 2016: greedy grouping and tiling by an
                   analytic cost model (arithmetic + loads, last-level cache size)
    Adams2019      Adams et al., SIGGRAPH 2019: beam search over schedules scored by a
                   learned cost model (the weights built into the plugin)

each with `parallelism` = the run's thread count (HL_NUM_THREADS) and its other
parameters at their defaults, then JIT-compiled for the run's Halide target
(`halide_impl.target()`, assertions off).

The autoscheduler runs in a child process (`python -m benchmarks.peers.halide_auto
--child`), because an error raised inside a plugin is not always turned into a Python
exception: some (e.g. a parameter the plugin rejects, or an internal assertion of its
search) end in std::terminate, which would abort the whole benchmark run. The child
defines the algorithm, sets the estimates, autoschedules and serializes the scheduled
pipeline (`hl.serialize_pipeline`, which keeps the schedule); this process deserializes it
onto its own ImageParams and compiles it. A child that fails, aborts or runs past
CHILD_TIMEOUT_S makes `prepare` raise, and the row is "error" with the child's message
(harness.prepare_impl); a plugin that cannot be loaded makes the row "skipped".
compile_s = the child's definition + autoscheduling time + this process's deserialization
+ compilation (not the child's start-up, ~1 s of importing).
These rows are not hand schedules: report.py keeps them out of the best-peer comparison.
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

from . import PeerUnavailable, halide_impl

# row name -> the autoscheduler's name in Halide (AutoschedulerParams) and its plugin
AUTOSCHEDULERS = {"halide:mullapudi2016": ("Mullapudi2016", "autoschedule_mullapudi2016"),
                  "halide:adams2019": ("Adams2019", "autoschedule_adams2019")}
CHILD_TIMEOUT_S = 1800      # Adams2019 takes ~3 min on W2 on a loaded 2-core Zen 3
REPO = Path(__file__).resolve().parents[2]
_NO_PLUGIN = 3              # the child's exit code when the plugin cannot be loaded

_loaded: set[str] = set()


class AutoscheduleError(RuntimeError):
    """The autoscheduler failed (or its child process died) on this workload."""


def _plugin(plugin: str) -> None:
    """Load the autoscheduler plugin once: by its bare name (found on the library path),
    else from the halide package's lib64/ or lib/."""
    if plugin in _loaded:
        return
    hl = halide_impl._load()
    errors = []
    here = Path(hl.__file__).parent
    for cand in [plugin] + [str(here / d / f"lib{plugin}.so") for d in ("lib64", "lib")]:
        if cand != plugin and not Path(cand).exists():
            continue
        try:
            hl.load_plugin(cand)
        except Exception as e:
            errors.append(f"{cand}: {str(e).strip()}")
            continue
        _loaded.add(plugin)
        return
    raise PeerUnavailable(f"cannot load Halide plugin {plugin}: " + "; ".join(errors))


def threads() -> int:
    """The autoschedulers' `parallelism`: the run's thread count (run.py sets
    HL_NUM_THREADS = --threads), else the number of cores."""
    return int(os.environ.get("HL_NUM_THREADS") or os.cpu_count() or 1)


def _estimate(shape) -> list[tuple[int, int]]:
    return [(0, int(e)) for e in reversed(shape)]        # Halide order: last axis first


def autoschedule(name: str, plugin: str, workload_id: str, shapes: dict, out_shape: tuple,
                 target: str, parallelism: int, extra: dict | None = None):
    """In this process: (scheduled Pipeline, ImageParams, input names, schedule source,
    seconds to define and autoschedule). What the child process runs. `extra`: more
    autoscheduler parameters (strings), besides parallelism."""
    hl = halide_impl._load()
    _plugin(plugin)
    t0 = time.perf_counter()
    out, params, names = halide_impl.algorithm(workload_id, shapes, out_shape)
    for p, nm in zip(params, names):
        p.set_estimates(_estimate(shapes[nm]))
    out.set_estimates(_estimate(out_shape))
    pipeline = hl.Pipeline(out)
    res = pipeline.apply_autoscheduler(hl.Target(target), hl.AutoschedulerParams(
        name, {"parallelism": str(parallelism), **(extra or {})}))
    return pipeline, params, names, res.schedule_source, time.perf_counter() - t0


def _child(request: str, outdir: str) -> int:
    """--child: autoschedule as `request` (JSON) says; write the serialized pipeline to
    outdir/pipeline.hlpipe and the schedule source and seconds to outdir/meta.json."""
    hl = halide_impl._load()
    req = json.loads(request)
    try:
        _plugin(req["plugin"])
    except PeerUnavailable as e:
        print(e, file=sys.stderr)
        return _NO_PLUGIN
    shapes = {k: tuple(v) for k, v in req["shapes"].items()}
    pipeline, _, _, source, seconds = autoschedule(
        req["name"], req["plugin"], req["workload"], shapes, tuple(req["out_shape"]),
        req["target"], req["parallelism"], req["params"])
    hl.serialize_pipeline(pipeline, str(Path(outdir) / "pipeline.hlpipe"))
    (Path(outdir) / "meta.json").write_text(json.dumps({"source": source,
                                                        "seconds": seconds}))
    return 0


def _failure(name: str, wid: str, proc) -> str:
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
    msg = " / ".join(lines[-4:])[-600:] or "no message"
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = str(-proc.returncode)
        how = f"killed by {sig}"
    else:
        how = f"exit code {proc.returncode}"
    return f"{name} on {wid}: child process {how}: {msg}"


class Autoscheduled:
    """One autoscheduler as a peer: `prepare(workload_id, inputs, out_shape)` and
    `schedules()`, the contract of the modules in this package."""

    def __init__(self, row: str):
        self.row = row
        self.name, self.plugin = AUTOSCHEDULERS[row]
        self.params: dict[str, str] = {}       # more autoscheduler parameters (none here)
        self.sources: dict[str, str] = {}      # workload id -> the schedule it chose, as C++

    def schedules(self, t=None) -> dict:
        desc = (f"{self.name} autoscheduler on halide_impl's algorithm (no hand schedule): "
                f"estimates = the run's sizes, parallelism = {threads()}, other parameters "
                "default")
        return {wid: desc for wid in halide_impl._BUILDERS}

    def build(self, workload_id: str, shapes: dict, out_shape: tuple):
        """(callable, input names, compile seconds, schedule source): autoschedule in a
        child process, then deserialize the scheduled pipeline here and compile it."""
        hl = halide_impl._load()
        target = halide_impl.target()
        req = {"name": self.name, "plugin": self.plugin, "workload": workload_id,
               "shapes": {k: list(v) for k, v in shapes.items()},
               "out_shape": list(out_shape), "target": str(target),
               "parallelism": threads(), "params": self.params}
        with tempfile.TemporaryDirectory(prefix="halide-auto-") as tmp:
            cmd = [sys.executable, "-m", "benchmarks.peers.halide_auto", "--child",
                   json.dumps(req), tmp]
            try:
                proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                                      timeout=CHILD_TIMEOUT_S)
            except subprocess.TimeoutExpired as e:
                raise AutoscheduleError(f"{self.name} on {workload_id}: no schedule after "
                                        f"{CHILD_TIMEOUT_S} s") from e
            if proc.returncode == _NO_PLUGIN:
                raise PeerUnavailable(proc.stderr.strip())
            meta_path, data_path = Path(tmp) / "meta.json", Path(tmp) / "pipeline.hlpipe"
            if proc.returncode != 0 or not meta_path.exists():
                raise AutoscheduleError(_failure(self.name, workload_id, proc))
            meta = json.loads(meta_path.read_text())
            t0 = time.perf_counter()
            _, params, names = halide_impl.algorithm(workload_id, shapes, out_shape)
            pipeline = hl.deserialize_pipeline(data_path.read_bytes(),
                                               {p.name(): p.parameter() for p in params})
        fn = pipeline.compile_to_callable(params, target)
        return fn, names, meta["seconds"] + time.perf_counter() - t0, meta["source"]

    def prepare(self, workload_id: str, inputs: dict, out_shape: tuple):
        """(run, result, compile_s): Halide buffers alias the numpy inputs and output."""
        hl = halide_impl._load()
        import numpy as np
        fn, names, compile_s, source = self.build(
            workload_id, {k: v.shape for k, v in inputs.items()}, out_shape)
        self.sources[workload_id] = source
        out = np.empty(out_shape, np.float32)
        args = [hl.Buffer(inputs[nm]) for nm in names] + [hl.Buffer(out)]

        def run():
            fn(*args)
        return run, (lambda: out), compile_s


PEERS = {row: Autoscheduled(row) for row in AUTOSCHEDULERS}


def version() -> str:
    return halide_impl.version()


def main(argv: list[str]) -> int:
    """--child REQUEST OUTDIR: the child process; else [W1 W3 ...]: print the schedules
    each autoscheduler chooses at the benchmark's sizes."""
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2])
    import numpy as np

    from ..workloads import WORKLOADS
    for wid in argv or list(WORKLOADS):
        w = WORKLOADS[wid]
        shapes = {k: v.shape for k, v in w.make_inputs(np.random.default_rng(0)).items()}
        for peer in PEERS.values():
            try:
                *_, src = peer.build(wid, shapes, w.out_shape)
            except Exception as e:
                src = f"error: {type(e).__name__}: {e}"
            print(f"== {wid} {peer.row}\n{src}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
