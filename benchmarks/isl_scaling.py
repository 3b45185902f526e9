"""How isl time grows with the number of stages and loop dimensions.

A chain of S stencil stages in D dimensions (each stage adds two neighbours along
axis 0 of the previous one) is scheduled two ways:

  root        every stage at the root, loops untouched
  tiled       the output tiled by 8 along every axis, every stage compute_at the
              output's innermost tile loop (footprints with growing halos)

For each, the table gives the time to apply the schedule's primitives (each one
proves the whole schedule legal with isl), then the parts of lowering: the isl
model (domains, accesses, compute_at footprints), the dependences, the legality
check and the isl AST, and `td.lower` end to end. Nothing is compiled.

    python benchmarks/isl_scaling.py                 # 1..16 stages, 1..3 dims
    python benchmarks/isl_scaling.py --stages 1 2 4 8 --dims 2
"""

from __future__ import annotations

import argparse
import time

import tdsl as td
from tdsl import poly
from tdsl.poly.program import loops
from tdsl.schedule.legality import is_concurrent
from tdsl.schedule.program import build_program

_compute_dependences = getattr(poly, "compute_dependences", None) or poly.dependences


def chain(stages: int, dims: int):
    """X -> P1 -> ... -> P<stages>, each P_k[x0, ...] = P_{k-1}[x0, ...] + P_{k-1}[x0 + 1, ...]."""
    sizes = [td.var(f"n{d}") for d in range(dims)]
    X = td.placeholder((sizes[0] + stages, *sizes[1:]), name="X")
    cur, made = X, []
    for s in range(stages):
        shape = (sizes[0] + stages - 1 - s, *sizes[1:])
        cur = _stage(cur, shape, f"P{s + 1}")
        made.append(cur)
    return X, made


def _stage(prev, shape, name):
    def body(*ix):
        return prev[ix] + prev[(ix[0] + 1, *ix[1:])] * 0.5
    return td.compute(shape, body, name=name)


def schedule(kind: str, stages: int, dims: int):
    X, made = chain(stages, dims)
    out = made[-1]
    s = td.create_schedule(out)
    start = time.perf_counter()
    if kind == "tiled":
        axes = out.op.axis
        outer = []
        for a in axes:
            o, _ = s[out].split(a, factor=8)
            outer.append(o)
        inner = [leaf for leaf in s[out].leaf_iter_vars if not any(leaf is o for o in outer)]
        s[out].reorder(*outer, *inner)
        for stage in reversed(made[:-1]):
            s[stage].compute_at(s[out], outer[-1])
        s[out].parallel(outer[0])
    applied = time.perf_counter() - start
    return s, [X, out], applied


def measure(kind: str, stages: int, dims: int) -> dict:
    s, args, applied = schedule(kind, stages, dims)
    t0 = time.perf_counter()
    program = build_program(s.data, args)
    t1 = time.perf_counter()
    model = poly.Model(program)
    t2 = time.perf_counter()
    deps = _compute_dependences(model)
    t3 = time.perf_counter()
    poly.order_violations(model, deps)
    for loop, _ in loops(program.body):
        if is_concurrent(loop.kind):
            poly.carried(model, deps, loop)
    t4 = time.perf_counter()
    poly.generate_ast(model)
    t5 = time.perf_counter()
    td.lower(s, args)
    t6 = time.perf_counter()
    del t0
    return dict(stmts=len(model.stmts), applied=applied, model=t2 - t1, deps=t3 - t2,
                legality=t4 - t3, ast=t5 - t4, lower=t6 - t5)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, nargs="*", default=list(range(1, 17)))
    parser.add_argument("--dims", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--kinds", nargs="*", default=["root", "tiled"])
    args = parser.parse_args(argv)
    head = (f"{'schedule':<8} {'dims':>4} {'stages':>6} {'stmts':>5} {'apply s':>8} "
            f"{'model s':>8} {'deps s':>8} {'legal s':>8} {'ast s':>8} {'lower s':>8}")
    print(head)
    print("-" * len(head))
    for kind in args.kinds:
        for dims in args.dims:
            for stages in args.stages:
                r = measure(kind, stages, dims)
                print(f"{kind:<8} {dims:>4} {stages:>6} {r['stmts']:>5} {r['applied']:>8.3f} "
                      f"{r['model']:>8.3f} {r['deps']:>8.3f} {r['legality']:>8.3f} "
                      f"{r['ast']:>8.3f} {r['lower']:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
