"""Where candidates are compiled and timed: worker processes here, or a Ray cluster.

A runner compiles a batch of C sources (in parallel: gcc runs in its own processes) and
times libraries one at a time on a measurement worker that has the machine to itself.
The worker is a separate process: a kernel that crashes it, hangs past the time limit
or exhausts memory is recorded as an error of that kind, the worker is replaced, and the
search goes on.

`LocalRunner` uses processes on this machine. `RayRunner` makes each compile a Ray task
and each measurement a Ray task that holds the custom resource `tdsl_measure` (one per
node), so two measurements never share a node's cores; tdsl writes no RPC of its own.
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import TdslError

MEASURE_RESOURCE = "tdsl_measure"


def compile_candidate(source: str, target: str) -> bytes:
    """The exported library (bytes) built from `source` for `target`; CompileError if
    gcc refuses it."""
    from ..backends.c.build import compile_shared
    from ..runtime.library import pack
    return pack(compile_shared(source, target))


def _compile_or_error(source: str, target: str):
    try:
        return compile_candidate(source, target)
    except Exception as exc:                          # noqa: BLE001  (recorded, not raised)
        return {"error": "compile error", "detail": f"{type(exc).__name__}: {exc}"[:2000]}


# -- local ----------------------------------------------------------------------------------

class LocalRunner:
    """Compile with `jobs` gcc processes at a time (default: the cores), time in one
    worker process with `timeout` seconds per candidate.

    `measure_fn` ("module:function", called as function(library, full, small) -> dict)
    is what the worker runs; by default `tdsl.tuning.measure:measure`."""

    def __init__(self, jobs: int | None = None, timeout: float = 60.0,
                 measure_fn: str = "tdsl.tuning.measure:measure"):
        self.jobs = jobs or os.cpu_count() or 1
        self.timeout = timeout
        self.measure_fn = measure_fn
        self._checks = None
        self._process = None

    # the runner protocol: start, compile, measure, close
    def start(self, checks) -> None:
        self._checks = checks

    def compile(self, jobs: list[tuple[str, str]]) -> list:
        """bytes (a library) or an error dict per (source, target)."""
        with ThreadPoolExecutor(self.jobs) as pool:
            return list(pool.map(lambda job: _compile_or_error(*job), jobs))

    def measure(self, libraries: list[bytes]) -> list[dict]:
        return [self._measure_one(lib) for lib in libraries]

    def close(self) -> None:
        self._stop()

    # -- the worker -------------------------------------------------------------------------
    def _measure_one(self, library: bytes) -> dict:
        from .worker import read_message, write_message
        if self._process is None:
            self._spawn()
        try:
            write_message(self._to, library)
            ready, _, _ = select.select([self._from], [], [], self.timeout)
            if not ready:
                self._stop()
                return {"error": "timeout", "detail": f"no result after {self.timeout:g} s; "
                        "the worker was killed"}
            return read_message(self._from)
        except (EOFError, BrokenPipeError, OSError, pickle.UnpicklingError):
            try:
                code = self._process.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            self._stop()
            return {"error": "crash", "detail": f"the measurement worker died (exit code "
                    f"{code}{_signal_name(code)})"}

    def _spawn(self) -> None:
        from .worker import write_message
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([root, *sys.path[1:]])
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tdsl.tuning.worker", str(child_reads), str(child_writes)],
            pass_fds=(child_reads, child_writes), env=env, stdin=subprocess.DEVNULL)
        os.close(child_reads)
        os.close(child_writes)
        self._to, self._from = parent_writes, parent_reads
        write_message(self._to, (self.measure_fn, self._checks))

    def _stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            os.close(self._to)
            os.close(self._from)
        self._process = None


def _signal_name(code) -> str:
    if code is None or code >= 0:
        return ""
    import signal
    try:
        return f", {signal.Signals(-code).name}"
    except ValueError:
        return ""


# -- Ray --------------------------------------------------------------------------------------

class RayRunner:
    """Builds and measurements as Ray tasks on the cluster at `address` (None: the one
    `ray.init()` finds or starts). Every node that measures must offer the custom
    resource `tdsl_measure: 1` (`ray start ... --resources '{"tdsl_measure": 1}'`, or
    `ray.init(resources={"tdsl_measure": 1})` for a cluster on this machine)."""

    def __init__(self, address: str | None = None, timeout: float = 60.0, **init_options):
        try:
            import ray
        except ImportError:
            raise TdslError("runner='ray' needs Ray: pip install 'tdsl[tune]'") from None
        self.ray = ray
        self.address, self.timeout, self.init_options = address, timeout, init_options
        self._checks_ref = None
        self._compile_task = ray.remote(num_cpus=1, max_retries=0)(_compile_or_error)
        self._measure_task = ray.remote(num_cpus=0, resources={MEASURE_RESOURCE: 1},
                                        max_retries=0)(_ray_measure)

    def start(self, checks) -> None:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_options)
        if ray.cluster_resources().get(MEASURE_RESOURCE, 0) < 1:
            raise TdslError(
                f"the Ray cluster has no node offering the resource {MEASURE_RESOURCE!r}, so "
                f"no measurement could run; start the measuring nodes with --resources "
                f"'{{\"{MEASURE_RESOURCE}\": 1}}' (or ray.init(resources="
                f"{{\"{MEASURE_RESOURCE}\": 1}}) on this machine)")
        self._checks_ref = ray.put(checks)

    def compile(self, jobs: list[tuple[str, str]]) -> list:
        refs = [self._compile_task.remote(source, target) for source, target in jobs]
        results = []
        for ref in refs:
            try:
                results.append(self.ray.get(ref))
            except Exception as exc:                  # noqa: BLE001
                results.append({"error": "compile error", "detail": str(exc)[:2000]})
        return results

    def measure(self, libraries: list[bytes]) -> list[dict]:
        # one wave per node that measures, so a task's time limit starts when it does
        slots = max(1, int(self.ray.cluster_resources().get(MEASURE_RESOURCE, 1)))
        results = []
        for first in range(0, len(libraries), slots):
            results += self._wave(libraries[first:first + slots])
        return results

    def _wave(self, libraries: list[bytes]) -> list[dict]:
        ray = self.ray
        refs = [self._measure_task.remote(lib, self._checks_ref) for lib in libraries]
        results = []
        for ref in refs:
            try:
                results.append(ray.get(ref, timeout=self.timeout))
            except ray.exceptions.GetTimeoutError:
                ray.cancel(ref, force=True)
                results.append({"error": "timeout", "detail": f"no result after "
                                f"{self.timeout:g} s; the Ray task was cancelled"})
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError) as exc:
                results.append({"error": "crash", "detail": str(exc).splitlines()[0][:500]})
            except Exception as exc:                  # noqa: BLE001
                results.append({"error": "crash", "detail": f"{type(exc).__name__}: "
                                f"{str(exc)[:500]}"})
        return results

    def close(self) -> None:
        self._checks_ref = None


def _ray_measure(library: bytes, checks) -> dict:
    from .measure import measure
    full, small = checks
    return measure(library, full, small)


def make_runner(runner):
    """A runner from td.tune's `runner=`: "local", "ray", or a runner object."""
    if runner == "local" or runner is None:
        return LocalRunner()
    if runner == "ray":
        return RayRunner()
    if all(hasattr(runner, m) for m in ("start", "compile", "measure", "close")):
        return runner
    raise TdslError(f"runner= should be 'local', 'ray' or a runner object (LocalRunner, "
                    f"RayRunner); got {runner!r}")
