"""`td.testing.grade`: one call that grades a student's kernel, check by check.

    result = td.testing.grade(make_matmul, expected=lambda A, B: A @ B,
                              sizes=[{"n": 37, "l": 19, "m": 23}],
                              counts_sizes={"n": 256, "l": 256, "m": 256},
                              max_traffic=4 << 20, min_vector_fraction=0.9)
    print(result)                       # points and a message per check
    assert result["correct"].passed, result["correct"].message

The checks, in order (a check not asked for is not run):

- legal: `make()` (the student's function returning `(schedule, args)`) runs and the
  schedule builds. tdsl refuses an illegal primitive at the call, with a lesson, and
  building proves the whole schedule again, so building is legality;
- correct: at each of `sizes` (ragged ones catch tiles that assume divisibility), the
  kernel on random inputs against `expected` (NumPy on the inputs, in the order of the
  placeholders of `args`) or, without it, against `td.reference` of the algorithm;
- traffic, vector, parallel, flops: `td.counts` at `counts_sizes`: the bytes moved into
  a cache of `cache_bytes` at most `max_traffic`, a share of statement instances in
  vectorized (parallel) loops of at least `min_vector_fraction` (`min_parallel_fraction`),
  at most `max_flops` operations (no wasted recomputation).

Counts are machine-independent and exact, so a grade does not depend on the machine or
on its load; timing is for the student to look at, not for the grade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TdslError
from ..lang.expr import Var
from ..lang.graph import as_tensor_list
from ..lang.reference import reference
from ..lang.tensor import PlaceholderOp

DEFAULT_POINTS = {"legal": 1.0, "correct": 2.0, "traffic": 1.0, "vector": 1.0,
                  "parallel": 1.0, "flops": 1.0}


@dataclass(frozen=True)
class Check:
    """The outcome of one check: points earned of `max_points`, and what to do."""

    name: str
    points: float
    max_points: float
    passed: bool
    message: str


@dataclass(frozen=True)
class Grade:
    checks: tuple[Check, ...]

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.checks)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; the checks run were "
                       f"{', '.join(c.name for c in self.checks)}")

    def as_dict(self) -> dict:
        return {"points": self.points, "max_points": self.max_points,
                "checks": [c.__dict__.copy() for c in self.checks]}

    def __str__(self) -> str:
        lines = [f"{self.points:g} / {self.max_points:g} points"]
        for c in self.checks:
            mark = "ok  " if c.passed else "FAIL"
            lines.append(f"  {mark} {c.name:9s} {c.points:g}/{c.max_points:g}  {c.message}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def grade(make, *, expected=None, sizes=(), counts_sizes=None, cache_bytes: int = 32 * 1024,
          max_traffic: int | None = None, min_vector_fraction: float | None = None,
          min_parallel_fraction: float | None = None, max_flops: int | None = None,
          points: dict | None = None, seed: int = 0, rtol: float | None = None,
          atol: float | None = None) -> Grade:
    """Grade the kernel `make()` returns as `(schedule, args)`; see the module docstring.

    `make` may also be the pair itself. `sizes` is a list of dicts (by td.var or name);
    `points` overrides the points of checks by name (DEFAULT_POINTS).

    >>> g = td.testing.grade(make, expected=np.matmul, sizes=[{"n": 7, "l": 5, "m": 3}])
    >>> g.points, g["correct"].message
    """
    weights = {**DEFAULT_POINTS, **(points or {})}
    wanted = ["legal"] + (["correct"] if sizes else [])
    counted = {"traffic": max_traffic, "vector": min_vector_fraction,
               "parallel": min_parallel_fraction, "flops": max_flops}
    wanted += [name for name, bound in counted.items() if bound is not None]
    results: dict[str, Check] = {}

    def done(name: str, passed: bool, message: str, share: float | None = None) -> None:
        share = (1.0 if passed else 0.0) if share is None else share
        results[name] = Check(name, weights[name] * share, weights[name], passed, message)

    try:
        schedule, args, module = _build(make)
    except Exception as e:              # the student's code: any error is a lesson
        done("legal", False, _why(e))
        for name in wanted[1:]:
            done(name, False, "not checked: the kernel does not build (see legal)")
        return Grade(tuple(results[n] for n in wanted))
    done("legal", True, "the schedule builds (isl proved every primitive legal)")
    if sizes:
        _correct(done, module, args, list(sizes), expected, seed, rtol, atol)
    if len(wanted) > len(results):
        _counted(done, schedule, args, counts_sizes, cache_bytes, counted)
    return Grade(tuple(results[n] for n in wanted))


def _build(make):
    from ..build import build
    schedule, args = make() if callable(make) else make
    args = as_tensor_list(args, "args")
    return schedule, args, build(schedule, args)


def _why(e: Exception) -> str:
    kind = type(e).__name__
    text = str(e).strip()
    if isinstance(e, TdslError):
        return f"{kind}: {text}"
    return f"{kind} while building the kernel: {text}"


def _correct(done, module, args, all_sizes, expected, seed, rtol, atol) -> None:
    from . import random_array, run, tolerance
    rng = np.random.default_rng(seed)
    inputs = [t for t in args if isinstance(t.op, PlaceholderOp)]
    outputs = [t for t in args if not isinstance(t.op, PlaceholderOp)]
    passed, first_failure = 0, None
    for raw in all_sizes:
        sizes = _by_var(raw, args)
        feeds = {t: random_array(t, sizes, rng) for t in inputs}
        where = ", ".join(f"{v.name}={n}" for v, n in sizes.items()) or "its sizes"
        try:
            got = run(module, args, sizes, feeds)
        except Exception as e:
            first_failure = first_failure or f"at {where}, the kernel raised {_why(e)}"
            continue
        if expected is None:
            want, what = reference(outputs, feeds, sizes), "td.reference"
        else:
            result = expected(*[feeds[t] for t in inputs])
            want = list(result) if isinstance(result, (tuple, list)) else [result]
            what = "the expected result"
        problem = None
        for t, g, w in zip(outputs, got, want):
            r, a = tolerance(t.dtype)
            problem = problem or _mismatch(t.name, g, np.asarray(w), rtol or r,
                                           a if atol is None else atol, what)
        if problem is None:
            passed += 1
        else:
            first_failure = first_failure or f"at {where}, {problem}"
    total = len(all_sizes)
    if passed == total:
        done("correct", True, f"matches at all {total} sizes")
    else:
        done("correct", False, f"wrong at {total - passed} of {total} sizes; {first_failure}",
             share=passed / total)


def _by_var(raw: dict, args) -> dict:
    """Sizes keyed by the td.var objects of `args`' shapes (given by var or by name)."""
    from ..lang.visit import free_vars
    found = {}
    for t in args:
        for d in t.shape:
            for v in free_vars(d):
                if isinstance(v, Var):
                    found.setdefault(v.name, v)
    out = {}
    for key, value in raw.items():
        name = key.name if isinstance(key, Var) else key
        if name not in found:
            raise TdslError(f"grade: the size {name} is not a size of the kernel's arguments "
                            f"({', '.join(found) or 'all constant'})")
        out[found[name]] = int(value)
    return out


def _mismatch(name, got, want, rtol, atol, what) -> str | None:
    if got.shape != want.shape:
        return f"{name} has shape {got.shape}, {what} has {want.shape}"
    close = np.isclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                       equal_nan=True)
    if close.all():
        return None
    bad = np.argwhere(~close)
    first = tuple(int(i) for i in bad[0])
    return (f"{name} differs from {what} at {len(bad)} of {got.size} elements; first at "
            f"{list(first)}: got {got[first]:.6g}, expected {want[first]:.6g}")


def _counted(done, schedule, args, counts_sizes, cache_bytes, bounds) -> None:
    from ..analysis import counts
    try:
        c = counts(schedule, args, sizes=counts_sizes)
    except TdslError as e:
        if "needs a value for every symbolic size" in str(e):
            raise                              # the grader's call lacks counts_sizes
        for name, bound in bounds.items():
            if bound is not None:
                done(name, False, f"cannot count: {_why(e)}")
        return
    except Exception as e:
        for name, bound in bounds.items():
            if bound is not None:
                done(name, False, f"cannot count: {_why(e)}")
        return
    at = ", ".join(f"{k}={v}" for k, v in c.sizes.items())
    at = f" at {at}" if at else ""
    if bounds["traffic"] is not None:
        traffic = c.traffic(cache_bytes)
        total, limit = sum(traffic.values()), bounds["traffic"]
        worst = max(traffic, key=traffic.get)
        if total <= limit:
            done("traffic", True, f"moves {_mb(total)} into a {_kb(cache_bytes)} cache{at} "
                 f"(at most {_mb(limit)})")
        else:
            done("traffic", False,
                 f"moves {_mb(total)} into a {_kb(cache_bytes)} cache{at}, more than "
                 f"{_mb(limit)}; most of it is {worst} ({_mb(traffic[worst])}, footprint "
                 f"{_mb(c.footprint[worst])}): tile the loops so that what one tile reads "
                 f"fits in {_kb(cache_bytes)} and is reused from there (reuse is kept "
                 f"inside: {', '.join(c.reuse_levels(cache_bytes))})")
    for name, what, share in (("vector", "vectorized", c.vector_fraction),
                              ("parallel", "parallel", c.parallel_fraction)):
        bound = bounds[name]
        if bound is None:
            continue
        if share >= bound:
            done(name, True, f"{share:.0%} of the statement instances run in {what} loops "
                 f"(at least {bound:.0%})")
        else:
            flag = "vector" if name == "vector" else "parallel"
            rest = sorted((st for st in c.statements if not getattr(st, flag)),
                          key=lambda st: -st.instances)
            names = ", ".join(f"{st.name} ({st.instances:,})" for st in rest[:3])
            advice = ("vectorize the innermost loop (unit stride) of" if name == "vector" else
                      "make an outer loop parallel (one without dependences) around")
            done(name, False, f"{share:.0%} of the statement instances run in {what} loops"
                 f"{at}, fewer than {bound:.0%}; {advice} {names}")
    if bounds["flops"] is not None:
        if c.flops <= bounds["flops"]:
            done("flops", True, f"{c.flops:,} operations{at} (at most {bounds['flops']:,})")
        else:
            biggest = max(c.statements, key=lambda st: sum(st.ops.values()))
            done("flops", False, f"{c.flops:,} operations{at}, more than {bounds['flops']:,}: "
                 f"work is repeated, most in {biggest.name} ({sum(biggest.ops.values()):,}); "
                 "a stage computed inside a loop recomputes what it needs in every iteration")


def _mb(n: float) -> str:
    return f"{n / (1 << 20):.2f} MiB"


def _kb(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"
