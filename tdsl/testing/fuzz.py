"""The differential fuzzer: random programs under random schedules, against NumPy.

    python -m tdsl.testing.fuzz --cases 1000 --seed 1 [--seed 20261201] [--jobs 2]

Case `i` of seed `S` draws a program (`programs.py`: six families, each with an
independent NumPy oracle), then up to eight schedule moves (`moves.py`: every
primitive, illegal ones and bad calls on purpose), builds the kernel and runs it
on random inputs; one case in ten (`AUTO_CASE`) is scheduled instead by td.auto_schedule's
rules with a random configuration of their knobs (a candidate `td.tune` could measure).
A case passes when every move was applied, or refused with a
`ScheduleError` that left the schedule unchanged, or (a bad call) raised
`TypeError`/`ValueError`; and the kernel's outputs match the oracle. Anything
else fails: a wrong value or dtype, another exception, a crash of the process, a
hang, an isl failure that reached the user (even as the generic "cannot be
analysed" lesson). Every 100 cases, one case builds its kernel in three processes
at once into one fresh cache, and one kills a build mid-compile and builds again.

Cases run in worker processes (a crash or a hang costs a worker, not the run);
a failing case is written out as a standalone script under `--out` that replays
the program and moves and shows the failure.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ISL_LIMIT = "cannot be analysed"
AUTO_CASE = 7      # case i with i % 10 == AUTO_CASE: td.auto_schedule's rules, random knobs
INTERNAL_WORDS = ("isl_", "islpy", "Traceback", "assert")


@dataclass
class Outcome:
    seed: int
    index: int
    family: str = ""
    failure: str = ""               # "" when the case passed
    detail: str = ""
    source: str = ""
    oracle: str = ""
    moves: list = field(default_factory=list)     # (code, "applied" | "refused" | ...)
    special: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failure


# -- checking a built kernel ----------------------------------------------------------------

def check_outputs(s, args, sizes: dict, oracle, seed: int = 0) -> None:
    """Build `s`, run it on random inputs and compare with `oracle`; AssertionError
    (naming the output and the worst element) on a wrong value, shape or dtype."""
    import tdsl as td
    from . import random_array, run, tolerance
    from ..lang.tensor import PlaceholderOp
    rng = np.random.default_rng(seed)
    feeds = {t: random_array(t, sizes, rng) for t in args if isinstance(t.op, PlaceholderOp)}
    kept = {t: a.copy() for t, a in feeds.items()}
    outputs = [t for t in args if not isinstance(t.op, PlaceholderOp)]
    got = run(td.build(s, args), args, sizes, feeds)
    want = oracle({t.name: a.copy() for t, a in kept.items()},
                  {k.name: v for k, v in sizes.items()})
    for t, g, w in zip(outputs, got, want):
        w = np.asarray(w)
        if w.dtype != g.dtype or w.shape != g.shape:
            raise AssertionError(f"{t.name}: got dtype {g.dtype} shape {g.shape}, the oracle "
                                 f"gives dtype {w.dtype} shape {w.shape}")
        rtol, atol = tolerance(t.dtype)
        if g.dtype.kind == "f":
            ok = np.allclose(g, w, rtol=rtol * 10, atol=atol * 10, equal_nan=True)
        else:
            ok = np.array_equal(g, w)
        if not ok:
            diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
            worst = np.unravel_index(np.nanargmax(diff), diff.shape)
            raise AssertionError(f"{t.name}: wrong value at {worst}: got {g[worst]}, expected "
                                 f"{w[worst]} ({int((diff > 0).sum())} elements differ)")
    for t, a in feeds.items():
        if not np.array_equal(a, kept[t]):
            raise AssertionError(f"the kernel wrote into the input {t.name}")


# -- one case ---------------------------------------------------------------------------------

class _Failed(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def run_case(seed: int, index: int, report=lambda kind, value: None) -> Outcome:
    """Draw and run case `index` of `seed`; `report` sees the program and each move
    before it runs (so a crash or a hang can still be reproduced)."""
    import tdsl as td
    from ..lang.tensor import PlaceholderOp
    from .moves import random_move
    from .programs import random_program
    start = time.perf_counter()
    rng = np.random.default_rng([seed, index])
    program = random_program(rng)
    out = Outcome(seed, index, program.family, source=program.source, oracle=program.oracle)
    report("program", (program.family, program.source, program.oracle))
    ns: dict = {}
    try:
        exec(program.source, ns)
        exec(program.oracle, ns)
        args, sizes = ns["args"], ns["sizes"]
        s = ns["s"] = td.create_schedule([t for t in args if not isinstance(t.op, PlaceholderOp)])
        inputs = [t.name for t in args if isinstance(t.op, PlaceholderOp)]
        if index % 10 == AUTO_CASE:
            s, code = _auto_schedule(args, rng)
            ns["s"] = s
            out.moves.append((code, "applied"))
            report("move", code)
            report("status", "applied")
        for _ in range(0 if index % 10 == AUTO_CASE else int(rng.integers(1, 9))):
            move = random_move(s, inputs, rng)
            report("move", move.code)
            out.moves.append((move.code, "failed"))
            out.moves[-1] = (move.code, _apply(s, move, ns))
            report("status", out.moves[-1][1])
        special = "concurrent" if index % 100 == 75 else "killed" if index % 100 == 99 else ""
        out.special = special
        try:
            if special:
                _special(special, out)
            else:
                check_outputs(s, args, sizes, ns["oracle"], seed=index)
        except td.ScheduleError as exc:
            if ISL_LIMIT in str(exc):
                raise _Failed("isl error at build", str(exc)) from None
            out.moves.append(("# td.build refused the schedule", "refused at build"))
    except _Failed as exc:
        out.failure, out.detail = exc.kind, exc.detail
    except AssertionError as exc:
        out.failure, out.detail = "wrong result", str(exc)
    except Exception as exc:            # noqa: BLE001  (any other exception is a finding)
        out.failure, out.detail = "exception", f"{type(exc).__name__}: {exc}"
    out.seconds = time.perf_counter() - start
    return out


def _auto_schedule(args, rng):
    """An automatic schedule with a random configuration of its knobs (what `td.tune`
    measures), each knob drawn as the rules offer it (one pass of the rules), and the
    code that makes it again from the configuration drawn."""
    from ..auto.knobs import Knobs
    from ..auto.rules import apply_rules
    from ..lang.tensor import PlaceholderOp

    class Drawn(Knobs):
        def choose(self, name, options, default):
            options = tuple(dict.fromkeys((default, *options)))
            self.config[name] = options[int(rng.integers(len(options)))]
            return super().choose(name, options, default)

    knobs = Drawn()
    s = apply_rules([t for t in args if not isinstance(t.op, PlaceholderOp)], knobs=knobs)
    code = ("from tdsl.auto.knobs import Knobs\nfrom tdsl.auto.rules import apply_rules\n"
            "from tdsl.lang.tensor import PlaceholderOp\n"
            "s = apply_rules([t for t in args if not isinstance(t.op, PlaceholderOp)], "
            f"knobs=Knobs({dict(sorted(knobs.chosen.items()))!r}))")
    return s, code


def _apply(s, move, ns) -> str:
    import tdsl as td
    before, history = s.data, len(s.history)
    try:
        exec(move.code, ns)
    except td.ScheduleError as exc:
        _unchanged(s, before, history, move)
        text = str(exc)
        if ISL_LIMIT in text:
            raise _Failed("isl error", text) from None
        if not text.strip() or any(w in text for w in INTERNAL_WORDS):
            raise _Failed("not a lesson", text) from None
        return "refused"
    except (TypeError, ValueError) as exc:
        _unchanged(s, before, history, move)
        if not move.bad_call:
            raise _Failed("exception", f"{type(exc).__name__}: {exc}") from None
        return "rejected"
    except _Failed:
        raise
    except Exception as exc:            # noqa: BLE001
        raise _Failed("exception", f"{type(exc).__name__}: {exc}") from None
    if move.bad_call and s.data is before:
        return "no-op"
    if move.bad_call:
        raise _Failed("bad call accepted", move.code)
    return "applied"


def _unchanged(s, before, history, move) -> None:
    if s.data is not before or len(s.history) != history:
        raise _Failed("refused but changed", f"{move.code} raised, yet changed the schedule")


# -- builds in several processes, and killed builds -----------------------------------------------

def _special(kind: str, out: Outcome) -> None:
    with tempfile.TemporaryDirectory(prefix="tdsl-fuzz-") as tmp:
        tmp = Path(tmp)
        script = tmp / "case.py"
        script.write_text(reproducer(out, check=True))
        env = dict(os.environ, TDSL_CACHE_DIR=str(tmp / "cache"))
        if kind == "concurrent":
            procs = [subprocess.Popen([sys.executable, str(script)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for _ in range(3)]
            for p in procs:
                text = p.communicate(timeout=300)[0].decode(errors="replace")
                if p.returncode != 0:
                    raise _Failed("concurrent build", text[-3000:])
        else:
            _kill_mid_compile(script, tmp, env)
            result = subprocess.run([sys.executable, str(script)], env=env,
                                    capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                raise _Failed("build after a killed build", (result.stdout + result.stderr)[-3000:])
        left = [p.name for p in (tmp / "cache").rglob(".*")]
        if left:
            raise _Failed("cache left temporary files", f"{kind}: {left}")


def _kill_mid_compile(script: Path, tmp: Path, env: dict) -> None:
    ready = tmp / "compiling"
    slow = tmp / "slowcc"
    cc = env.get("TDSL_CC", "gcc")
    slow.write_text(f'#!/bin/sh\ncase "$1" in --version) exec {cc} --version;; esac\n'
                    f'case "$*" in *-dM*) exec {cc} "$@";; esac\n'     # td.target's ISA probe
                    f"touch {ready}\nsleep 300\nexec {cc} \"$@\"\n")
    slow.chmod(0o755)
    proc = subprocess.Popen([sys.executable, str(script)], env=dict(env, TDSL_CC=str(slow)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- reproducers ----------------------------------------------------------------------------

def reproducer(out: Outcome, check: bool = True) -> str:
    """A standalone script replaying case `out`: program, oracle, moves, then the check."""
    lines = [f"# tdsl fuzz case: seed {out.seed}, case {out.index}, family {out.family}"]
    if out.failure:
        lines.append(f"# failure: {out.failure}")
        lines += ["#   " + line for line in out.detail.splitlines()[:20]]
    lines += [out.source, textwrap.dedent(out.oracle), "",
              "from tdsl.lang.tensor import PlaceholderOp",
              "s = td.create_schedule([t for t in args if not isinstance(t.op, PlaceholderOp)])"]
    for code, status in out.moves:
        if code.startswith("#"):
            lines.append(f"{code}")
        elif status == "applied":
            lines.append(code)
        elif status in ("refused", "rejected", "no-op"):
            lines += ["try:", f"    {code}", f"except (td.ScheduleError, TypeError, ValueError):"
                      f"  # {status}, as it should be", "    pass"]
        else:                           # the move that failed (or never returned)
            lines.append(f"{code}  # <- {out.failure or status}")
    if check:
        lines += ["from tdsl.testing.fuzz import check_outputs",
                  f"check_outputs(s, args, sizes, oracle, seed={out.index})", 'print("ok")']
    return "\n".join(lines) + "\n"


# -- the driver -------------------------------------------------------------------------------

def _worker(conn) -> None:
    # TDSL_FUZZ_SELFTEST="crash:3,hang:5" makes those cases die or hang after their first
    # move, to test the driver itself
    faults = dict(item.split(":")[::-1] for item in
                  os.environ.get("TDSL_FUZZ_SELFTEST", "").split(",") if item)
    while True:
        job = conn.recv()
        if job is None:
            return
        seed, index = job
        fault = faults.get(str(index))

        def report(kind, value, fault=fault):
            conn.send((kind, value))
            if kind == "move" and fault == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            if kind == "move" and fault == "hang":
                time.sleep(3600)
        outcome = run_case(seed, index, report)
        conn.send(("done", outcome))


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.job = None
        self.partial: Outcome | None = None
        self.started = 0.0

    def give(self, seed: int, index: int) -> None:
        self.job, self.started = (seed, index), time.monotonic()
        self.partial = Outcome(seed, index)
        self.conn.send(self.job)

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()


def fuzz(cases: int, seeds: list[int], jobs: int = 1, timeout: float = 120.0,
         out_dir: Path | None = None, start: int = 0, log=print) -> list[Outcome]:
    """Run `cases` cases (split over `seeds`) in `jobs` processes; return the outcomes.
    Failures are written to `out_dir` as reproducer scripts."""
    from multiprocessing.connection import wait
    ctx = multiprocessing.get_context("spawn")
    todo = [(seeds[k % len(seeds)], start + k // len(seeds)) for k in range(cases)]
    todo.reverse()
    workers = [_Worker(ctx) for _ in range(max(1, min(jobs, cases)))]
    outcomes: list[Outcome] = []
    for w in workers:
        if todo:
            w.give(*todo.pop())
    while any(w.job for w in workers):
        busy = [w for w in workers if w.job]
        ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0)
        for k, w in enumerate(workers):
            if not w.job:
                continue
            finished = None
            if w.conn in ready:
                try:
                    while w.conn.poll():
                        kind, value = w.conn.recv()
                        if kind == "program":
                            w.partial.family, w.partial.source, w.partial.oracle = value
                        elif kind == "move":
                            w.partial.moves.append((value, "running"))
                        elif kind == "status":
                            w.partial.moves[-1] = (w.partial.moves[-1][0], value)
                        else:
                            finished = value
                            break
                except (EOFError, OSError):
                    pass
            if finished is None and not w.proc.is_alive():
                finished = w.partial
                finished.failure = "crash"
                finished.detail = f"the worker process died (exit code {w.proc.exitcode})"
            elif finished is None and time.monotonic() - w.started > timeout:
                finished = w.partial
                finished.failure, finished.detail = "hang", f"no result after {timeout:.0f} s"
            if finished is None:
                continue
            outcomes.append(finished)
            if not finished.passed:
                _record(finished, out_dir, log)
            if finished.failure in ("crash", "hang"):
                w.stop()
                workers[k] = w = _Worker(ctx)
            w.job = None
            if todo:
                w.give(*todo.pop())
    for w in workers:
        try:
            w.conn.send(None)
        except OSError:
            pass
        w.proc.join(timeout=5)
        w.stop()
    return outcomes


def _record(out: Outcome, out_dir: Path | None, log) -> None:
    where = ""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"seed{out.seed}_case{out.index}.py"
        path.write_text(reproducer(out))
        where = f" -> {path}"
    log(f"FAIL seed {out.seed} case {out.index} ({out.family}): {out.failure}: "
        f"{out.detail.splitlines()[0][:200] if out.detail else ''}{where}")


def summary(outcomes: list[Outcome], seconds: float) -> str:
    failed = [o for o in outcomes if not o.passed]
    moves = [status for o in outcomes for _, status in o.moves]
    fams: dict[str, int] = {}
    for o in outcomes:
        fams[o.family] = fams.get(o.family, 0) + 1
    return (f"{len(outcomes)} cases in {seconds:.0f} s: {len(outcomes) - len(failed)} passed, "
            f"{len(failed)} failed; moves applied {moves.count('applied')}, refused "
            f"{moves.count('refused')}, bad calls rejected {moves.count('rejected')}, "
            f"refused at build {moves.count('refused at build')}; families "
            + ", ".join(f"{k} {v}" for k, v in sorted(fams.items())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tdsl.testing.fuzz",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, action="append",
                        help="repeat for several seeds (cases are split over them)")
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    opts = parser.parse_args(argv)
    began = time.perf_counter()
    outcomes = fuzz(opts.cases, opts.seed or [0], opts.jobs, opts.timeout, opts.out,
                    opts.start)
    print(summary(outcomes, time.perf_counter() - began))
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
