"""`td.tune` and `td.apply_best`: search the rules' knobs, measure, keep the best.

Each round proposes candidates (evolution: mutations and crossings of the fastest
measured so far, and some random ones; or only random ones, the baseline), realizes
them as schedules (isl checks every primitive; refused candidates are counted and never
built), ranks them with the cost model trained on the measurements so far, and measures
the best few: lowered and rendered here, compiled in parallel, each checked against the
workload's oracle and timed alone by the runner. Every result is appended to the log as
it arrives; a log that already holds candidates of this workload is resumed. At the end,
the fastest few are measured again, interleaved, and ranked by the median of all their
times (`_confirm`), so the winner is not the candidate that was lucky once.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ScheduleError, TdslError, TdslValueError
from . import log as logmod
from . import realizations
from .features import features, isl_features
from .model import CostModel
from .runner import make_runner
from .space import Candidate, Space, config_key
from .workload import Workload

SEARCHES = ("evolutionary", "random")
EXPLORE = 0.25                 # share of each batch measured at random, not by the model
ELITE = 8                      # the fastest candidates evolution breeds from
# A round that proposes nothing new (every mutation of the elite already measured: the
# search sits in a corner it has exhausted) is followed by a restart: a pool twice as
# large, all of it random points of the space. The search ends after this many such
# rounds in a row (the space is then taken as measured out: the small spaces of a row
# sum or a transpose hold 6-8 schedules).
STALE_ROUNDS = 4
# isl's counts join the features when counting the rules' default candidate takes less
# than this: counting is exact but grows with the loop tree (a 3x3 convolution's takes
# about a second), and every candidate a round proposes is counted before the model
# ranks it
ISL_FEATURE_SECONDS = 0.5
# A search keeps the minimum of noisy times, so its first place is often a candidate
# that was lucky once (the winner's curse; on a shared 2-core Zen 3, benchmarks/run.py
# replayed W8's tuned schedule at 1.64 ms and td.auto_schedule's, a candidate it had
# beaten in the search, at 1.53 ms). At the end of a run that measured anything (or resumed
# a log that holds no confirmation), the fastest CONFIRM_TOP candidates are measured
# again CONFIRM_ROUNDS times, interleaved (their order rotated each round), and ranked
# by the median of all their times.
CONFIRM_TOP = 4
CONFIRM_ROUNDS = 3


@dataclass
class TuneResult:
    """The best candidate of a tuning run and everything measured on the way."""

    schedule: object                     # the best schedule (a td.Schedule)
    seconds: float                       # its median seconds per call
    choices: dict                        # its knobs
    history: list = field(repr=False)    # one record per candidate: choices, time or error
    workload: Workload = field(repr=False)
    refused: int = 0                     # candidates isl refused (never compiled)
    errors: int = 0                      # candidates that failed to build, crashed, hung...
    wrong: int = 0                       # candidates whose output was wrong (compiler bugs)

    def build(self):
        """The best schedule, compiled for the workload's target."""
        from ..build import build
        return build(self.schedule, self.workload.args, target=self.workload.target)

    def curve(self) -> list[float]:
        """The best seconds so far after each measured candidate (inf before the first)."""
        best, out = float("inf"), []
        for r in self.history:
            if r["trial"] is None:
                continue
            best = min(best, r["result"].get("seconds", float("inf")))
            out.append(best)
        return out


def tune(outputs, args, trials: int = 200, sizes=None, target=None, log=None,
         runner="local", seed: int = 0, search: str = "evolutionary", batch: int = 8,
         progress: bool = True) -> TuneResult:
    """Search schedules of `outputs` for the fastest, measuring at most `trials` candidates.

    `sizes` binds the symbolic sizes to measure at ({"n": 1024}); `log` (a path) receives
    one JSON line per candidate and, if it already holds candidates of this workload, the
    search resumes without measuring them again. `runner` is "local" (worker processes
    here), "ray" (a Ray cluster) or a runner object. `search="random"` is the baseline.
    A candidate whose arrays take more than half the last-level cache is timed one call
    at a time from a flushed cache (`measure.FLUSH_SHARE`), others back to back.

    >>> result = td.tune([C], [A, B, C], trials=200, sizes={"n": 1024}, log="tune.jsonl")
    >>> mod = result.build()
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise TdslValueError(f"trials= should be a positive integer; got {trials!r}")
    if search not in SEARCHES:
        raise TdslValueError(f"search= should be one of {', '.join(SEARCHES)}; got {search!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise TdslValueError(f"batch= should be a positive integer; got {batch!r}")
    workload = Workload(outputs, args, sizes, target)
    tuner = _Tuner(workload, make_runner(runner), log, seed, search, batch, progress)
    return tuner.run(trials)


STALE_RECORDS_TRIED = 8       # apply_best: records realized before it gives up


def apply_best(log, outputs, args, sizes=None, target=None):
    """The schedule of the fastest candidate `log` holds for this workload (no search).

    >>> s = td.apply_best("tune.jsonl", [C], [A, B, C], sizes={"n": 1024})
    """
    workload = Workload(outputs, args, sizes, target)
    records = logmod.for_workload(log, workload.key)
    if logmod.best(records) is None:
        raise TdslError(f"the tuning log {log} holds no measured candidate of workload "
                        f"{workload.key} (sizes {workload.size_names}, target "
                        f"{workload.target}, machine {workload.describe()['machine']!r}); "
                        f"run td.tune(..., log={str(log)!r}) for it first")
    space, why = Space(workload), ""
    # A record names its schedule by fingerprint: where another version of tdsl's rules
    # made it, its choices may give another schedule now (a new knob at its default), so
    # the measured time is not this schedule's; the next fastest record is tried.
    for record in logmod.ranked(records)[:STALE_RECORDS_TRIED]:
        candidate = space.realize(record["choices"])
        if candidate.refused:
            why = f"no longer gives a legal schedule: {candidate.refused[0]}"
        elif candidate.key != record["fingerprint"]:
            why = "gives another schedule with this version of tdsl's rules"
        else:
            return candidate.schedule
    raise TdslError(f"the fastest records of {log} for workload {workload.key} were made by "
                    f"another version of tdsl: the best {why}; tune again")


class _Tuner:
    def __init__(self, workload, runner, log, seed, search, batch, progress):
        self.workload, self.runner, self.log = workload, runner, log
        self.rng = np.random.default_rng(seed)
        self.search, self.batch, self.progress = search, batch, progress
        self.space = Space(workload)
        self.model = CostModel(seed)
        self.history: list[dict] = []
        self.seen: dict[str, dict] = {}            # schedule key -> record
        self.tried: set[str] = set()               # config keys measured or refused
        self.realized: dict[str, Candidate] = {}   # config key -> its candidate
        # config key -> the fingerprint it realizes to: this run's, and those kept from
        # earlier runs under the same version of tdsl (realizations.py), so a resumed log is
        # not realized record by record again
        self.fingerprints: dict[str, str] = {}
        self.kept: dict[str, str] = {}              # what realizations.py held at the start
        self.refused = self.errors = self.wrong = 0
        self.count_with_isl: bool | None = None    # decided at the first candidate

    # -- the loop -----------------------------------------------------------------------
    def run(self, trials: int) -> TuneResult:
        from tqdm.auto import tqdm
        if self.log:
            self.kept = realizations.load(self.workload.key)
            self.fingerprints = dict(self.kept)
        for record in logmod.for_workload(self.log, self.workload.key) if self.log else []:
            if self._current(record):
                self._remember(record)
        self._keep_fingerprints()
        measured = self._measured()
        bar = tqdm(total=trials, initial=min(measured, trials), disable=not self.progress,
                   desc="td.tune", unit="trial", dynamic_ncols=True)
        self.bar = bar
        confirmed = any(r["result"].get("confirmed") for r in self.history)
        try:
            if measured < trials or not confirmed:
                self.runner.start(self.workload.checks())
            stale = 0
            first = True
            while self._measured() < trials and stale < STALE_ROUNDS:
                want = min(self.batch, trials - self._measured())
                batch = self._propose(want, include_default=first, restart=stale)
                first = False
                stale = stale + 1 if not batch else 0
                if batch:
                    self._measure(batch)
                    self._fit()
            if self._measured() > measured or not confirmed:
                self._confirm()        # a resumed log without a confirmation gets one
        finally:
            self.runner.close()
            bar.close()
            self._keep_fingerprints()
        return self._result()

    def _current(self, record: dict) -> bool:
        """Does the record's configuration give the schedule it measured with this
        version of tdsl's rules? Where a rule changed (a new knob at its default), it
        gives another schedule, whose time the record does not hold: such a record
        neither counts toward the trials nor keeps its configuration from being
        measured again (apply_best passes over it the same way)."""
        ck = config_key(record["choices"])
        fingerprint = self.fingerprints.get(ck)
        if fingerprint is None:
            candidate = self.realized.get(ck)
            if candidate is None:
                candidate = self.realized[ck] = self.space.realize(record["choices"])
                candidate.config_key = ck
            fingerprint = self.fingerprints[ck] = candidate.key
        return fingerprint == record["fingerprint"]

    def _keep_fingerprints(self) -> None:
        """Keep what this run's configurations realize to, for the next resume."""
        if self.log:
            # under the configuration proposed and under the whole choices it realized
            # (a proposal names some knobs; a record holds them all)
            new = {ck: c.key for ck, c in self.realized.items()}
            new.update({config_key(c.choices): c.key for c in self.realized.values()})
            if any(self.kept.get(ck) != key for ck, key in new.items()):
                self.kept.update(new)
                realizations.save(self.workload.key, new)       # (merged with the file)

    def _measured(self) -> int:
        return sum(1 for r in self.history if r["trial"] is not None)

    # -- proposing ------------------------------------------------------------------------
    def _propose(self, want: int, include_default: bool, restart: int = 0) -> list[Candidate]:
        """Up to `want` new candidates; `restart` > 0 after that many rounds proposed
        nothing: a random pool 2**restart times the usual size (see STALE_ROUNDS)."""
        configs = [{}] if include_default else []      # {}: every knob at its default
        elite = [] if restart else self._elite()
        pool = max(3 * want, 16) << restart
        for _ in range(pool):
            roll = self.rng.random()
            if self.search == "random" or not elite or roll < 0.2:
                configs.append(self.space.random(self.rng))
            elif roll < 0.8 or len(elite) < 2:
                parent = elite[int(self.rng.integers(len(elite)))]
                configs.append(self.space.mutate(parent, self.rng,
                                                 changes=1 + int(self.rng.random() < 0.3)))
            else:
                a, b = self.rng.choice(len(elite), 2, replace=False)
                configs.append(self.space.cross(elite[a], elite[b], self.rng))
        fresh: list[Candidate] = []
        default: list[Candidate] = []        # the rules' own choices, measured first
        keys, round_configs = set(), set()
        for config in configs:
            ck = config_key(config)
            if ck in self.tried or ck in round_configs:
                continue
            round_configs.add(ck)
            candidate = self.realized.get(ck)
            if candidate is None:          # realize (isl proves it) once per configuration
                candidate = self.realized[ck] = self.space.realize(config)
                candidate.config_key = ck
            if candidate.key in self.seen or candidate.key in keys:
                continue
            keys.add(candidate.key)
            if candidate.refused:
                self.tried.add(ck)
                self._refuse(candidate, "; ".join(candidate.refused))
                continue
            (default if not config else fresh).append(candidate)
        rest = fresh
        if not rest and not default:
            return []
        if self.search == "evolutionary" and self.model.trained and rest:
            for c in rest:                  # features: only where the model ranks them
                if not c.features:
                    c.features = self._features(c)
            scores = self.model.predict([c.features for c in rest])
            ranked = [rest[k] for k in np.argsort(-scores, kind="stable")]
            explore = int(round(EXPLORE * want))
            chosen = ranked[:max(0, want - len(default) - explore)]
            left = ranked[len(chosen):]
            picks = self.rng.permutation(len(left))[:want - len(default) - len(chosen)]
            chosen += [left[k] for k in picks]
        else:
            chosen = [rest[k] for k in self.rng.permutation(len(rest))]
        batch = (default + chosen)[:want]
        for c in batch:                 # the others may be proposed again in a later round
            self.tried.add(c.config_key)
            if not c.features:          # what the model learns from, once measured
                c.features = self._features(c)
        return batch

    def _features(self, candidate: Candidate) -> dict:
        found = features(candidate, self.workload.sizes)
        if self.count_with_isl is False or self.search != "evolutionary":
            return found
        start = time.perf_counter()
        try:
            found.update(isl_features(candidate.schedule, self.workload.args,
                                      self.workload.sizes))
        except TdslError:             # a construct td.counts does not count: loop features
            pass
        if self.count_with_isl is None:
            self.count_with_isl = time.perf_counter() - start < ISL_FEATURE_SECONDS
        return found

    def _elite(self) -> list[dict]:
        timed = sorted((r for r in self.history if "seconds" in r["result"]),
                       key=lambda r: r["result"]["seconds"])
        return [r["choices"] for r in timed[:ELITE]]

    # -- measuring ------------------------------------------------------------------------
    def _measure(self, batch: list[Candidate]) -> None:
        libraries = self._build(batch)
        results = self.runner.measure([lib for _, lib in libraries])
        for (c, _), result in zip(libraries, results):
            self._record(c, result)

    def _build(self, batch: list[Candidate]) -> list[tuple[Candidate, bytes]]:
        """The libraries of `batch`, compiled in parallel; a candidate that fails to
        lower or to build is recorded (refused or an error) and left out."""
        from ..backends.c import library_text
        from ..schedule import lower
        target = str(self.workload.target)
        jobs, ready = [], []
        for c in batch:
            try:
                lowered = lower(c.schedule, self.workload.args)
            except ScheduleError as exc:
                self._refuse(c, f"lowering: {exc}")
                continue
            jobs.append((library_text(lowered, self.workload.target), target))
            ready.append(c)
        built = self.runner.compile(jobs)
        for c, lib in zip(ready, built):
            if not isinstance(lib, bytes):
                self._record(c, lib)
        return [(c, lib) for c, lib in zip(ready, built) if isinstance(lib, bytes)]

    def _confirm(self) -> None:
        """Measure the fastest few candidates again (CONFIRM_TOP, CONFIRM_ROUNDS) and
        log each with the median of all its times, marked with this confirmation's
        number; `log.best` ranks by the latest confirmation."""
        fastest: dict[str, dict] = {}
        for r in self.history:
            if r["trial"] is None or "seconds" not in r["result"]:
                continue
            known = fastest.get(r["fingerprint"])
            if known is None or r["result"]["seconds"] < known["result"]["seconds"]:
                fastest[r["fingerprint"]] = r
        top = sorted(fastest.values(), key=lambda r: r["result"]["seconds"])[:CONFIRM_TOP]
        if len(top) < 2:
            return                          # nothing to choose between
        chosen = {r["fingerprint"]: r for r in top}
        # this run's candidates are realized already (isl proved them once); those of a
        # resumed log are realized again, and left out if the choices no longer give the
        # schedule that was measured (a log from another version of the rules)
        known = {c.key: c for c in self.realized.values()}
        again = [c for c in (known.get(r["fingerprint"]) or self.space.realize(r["choices"])
                             for r in top) if not c.refused and c.key in chosen]
        libraries = self._build(again)
        if len(libraries) < 2:
            return
        times = {c.key: list(chosen[c.key]["result"].get("times") or
                             [chosen[c.key]["result"]["seconds"]]) for c, _ in libraries}
        for round_ in range(CONFIRM_ROUNDS):
            order = libraries[round_ % len(libraries):] + libraries[:round_ % len(libraries)]
            for (c, _), result in zip(order, self.runner.measure([lib for _, lib in order])):
                if "seconds" in result:
                    times[c.key] += result.get("times") or [result["seconds"]]
        number = 1 + max((r["result"].get("confirmed", 0) for r in self.history), default=0)
        for c, _ in libraries:
            result = {"seconds": float(np.median(times[c.key])), "times": times[c.key],
                      "confirmed": number}
            record = logmod.record(self.workload, None, c.choices, c.key, result,
                                   chosen[c.key].get("features"))
            self._remember(record)
            if self.log:
                logmod.append(self.log, record)
        self._show()

    def _record(self, c: Candidate, result: dict) -> None:
        trial = self._measured()
        record = logmod.record(self.workload, trial, c.choices, c.key, result, c.features)
        self._remember(record)
        if self.log:
            logmod.append(self.log, record)
        self.bar.update(1)
        if result.get("error") == "wrong result":
            message = (f"td.tune: candidate {trial} computed a WRONG RESULT; this is a bug in "
                       f"tdsl, please report it with the record (choices {c.choices}): "
                       f"{result.get('detail')}")
            self.bar.write(message)
            warnings.warn(message, stacklevel=4)
        self._show()

    def _refuse(self, c: Candidate, why: str) -> None:
        record = logmod.record(self.workload, None, c.choices, c.key,
                               {"error": "refused", "detail": why[:2000]})
        self._remember(record)
        if self.log:
            logmod.append(self.log, record)

    def _remember(self, record: dict) -> None:
        self.history.append(record)
        self.seen[record["fingerprint"]] = record
        self.tried.add(config_key(record["choices"]))
        result = record["result"]
        if result.get("error") == "refused":
            self.refused += 1
        elif "error" in result:
            self.errors += 1
            if result["error"] == "wrong result":
                self.wrong += 1

    def _show(self) -> None:
        best = logmod.best(self.history)
        self.bar.set_postfix_str(
            (f"best {best['result']['seconds'] * 1e3:.3g} ms" if best else "best -") +
            f", errors {self.errors}, refused {self.refused}", refresh=False)

    def _fit(self) -> None:
        if self.search != "evolutionary":
            return
        rows, seconds = [], []
        for r in self.history:
            if r["trial"] is None or not r.get("features"):
                continue
            rows.append(r["features"])
            seconds.append(r["result"].get("seconds"))
        self.model.fit(rows, seconds)

    def _result(self) -> TuneResult:
        best = logmod.best(self.history)
        if best is None:
            kinds = sorted({r["result"].get("error", "?") for r in self.history})
            raise TdslError(f"td.tune measured no working candidate of workload "
                            f"{self.workload.key} ({len(self.history)} tried; errors: "
                            f"{', '.join(kinds) or 'none'}); see the log or result history")
        candidate = self.space.realize(best["choices"])
        return TuneResult(candidate.schedule, best["result"]["seconds"], best["choices"],
                          self.history, self.workload, self.refused, self.errors, self.wrong)
