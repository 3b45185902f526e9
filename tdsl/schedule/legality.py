"""Checking a schedule with isl, and turning a violation into a small lesson.

`check(data, call)` builds the program, its dependences and its scheduled
order, and raises `ScheduleError` when a dependence is no longer respected or a
parallel, vectorized or GPU-bound loop carries one. The message names the call,
the dependence in words, one concrete pair of instances with the smallest sizes,
the loop nest with the offending loop marked, and what would be legal.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScheduleError
from ..lang.expr import Const
from ..poly import Model, carried, compute_dependences, isl_lessons, order_violations
from ..poly.legality import Violation
from ..poly.program import Loop, Program, loops
from ..ir.simplify import simplify_index
from .program import build_program
from .state import StageState

CONCURRENT = ("parallel", "vectorize")        # plus GPU bindings, which contain a "."


def is_concurrent(kind: str) -> bool:
    return kind in CONCURRENT or "." in kind


@dataclass
class Analysis:
    program: Program
    model: Model
    deps: list


def analyze(data, args=None) -> Analysis:
    args = args if args is not None else default_args(data)
    program = build_program(data, args)
    model = Model(program)
    return Analysis(program, model, compute_dependences(model))


def default_args(data) -> list:
    return [op.output(0) for op in data.placeholders] + list(data.outputs)


def check(data, call: str, focus=None) -> Analysis:
    """Raise ScheduleError (a lesson) if `data` is illegal; `call` is the primitive as
    the user wrote it, `focus` the (stage key, leaf) it annotated, if any."""
    with isl_lessons(call):
        try:
            analysis = analyze(data)
        except ScheduleError as exc:
            raise ScheduleError(f"{call} is illegal.\n  {exc}") from None
        verify(data, analysis, call, focus)
    return analysis


def verify(data, analysis: Analysis, call: str, focus=None) -> None:
    """Raise the lesson for the first broken dependence or carried parallel loop."""
    model, deps = analysis.model, analysis.deps
    broken = order_violations(model, deps)
    if broken:
        raise ScheduleError(_order_lesson(data, analysis, call, broken[0]))
    annotated = [(loop, path) for loop, path in loops(analysis.program.body)
                 if is_concurrent(loop.kind)]
    if focus is not None:       # report the loop the user just annotated first
        annotated.sort(key=lambda lp: lp[0].var is not focus[1])
    for loop, _ in annotated:
        found = carried(model, deps, loop)
        if found:
            raise ScheduleError(_carried_lesson(data, analysis, call, loop, found[0]))


# ---------------------------------------------------------------------------------------
# Lessons
# ---------------------------------------------------------------------------------------

_KIND_WORDS = {"RAW": "read-after-write", "WAR": "write-after-read", "WAW": "write-after-write"}


def _pair(v: Violation) -> str:
    d = v.dependence
    if d.reduction:
        text = f"{v.source} and {v.sink} both update {v.element}"
    elif d.kind == "RAW":
        text = f"{v.source} writes {v.element}, which {v.sink} reads"
    elif d.kind == "WAR":
        text = f"{v.source} reads {v.element} before {v.sink} overwrites it"
    else:
        text = f"{v.source} and {v.sink} both write {v.element}"
    if v.sizes:
        text += "  (for " + ", ".join(f"{k}={n}" for k, n in v.sizes.items()) + ")"
    return text


def _carried_lesson(data, analysis: Analysis, call: str, loop: Loop, v: Violation) -> str:
    key, state = _stage_of(data, loop.stage)
    kind_word = {"parallel": "run in parallel", "vectorize": "run as vector lanes"}.get(
        loop.kind, f"be bound to {loop.kind}")
    d = v.dependence
    lines = [f"{call} is illegal."]
    if d.reduction:
        lines.append(f"  Loop {loop.var.name} carries a dependence of {loop.stage} on itself: "
                     f"iterations of the {_reducer_name(state)} over {loop.var.name} update the "
                     f"same element, so they cannot {kind_word}:")
    else:
        lines.append(f"  Loop {loop.var.name} carries a {_KIND_WORDS[d.kind]} dependence on "
                     f"{d.array}: one iteration must finish before the next, so they cannot "
                     f"{kind_word}:")
    lines.append(f"    {_pair(v)}")
    lines.append(f"  Loop nest of {loop.stage}:")
    lines += ["    " + line for line in nest_lines(state, mark=(loop.var, loop.kind))]
    free = parallel_loops(data, analysis, loop.stage)
    lines.append(f"  Loops of {loop.stage} that can run in parallel: "
                 f"{', '.join(free) if free else 'none'}.")
    if d.reduction:
        lines.append(f"  To parallelize the reduction, rfactor {loop.stage} over "
                     f"{loop.var.name} first.")
    return "\n".join(lines)


def _order_lesson(data, analysis: Analysis, call: str, v: Violation) -> str:
    d = v.dependence
    sink_stage = analysis.model.stmts[d.sink].stmt.stage
    _, state = _stage_of(data, sink_stage)
    lines = [f"{call} is illegal.",
             f"  It breaks a {_KIND_WORDS[d.kind]} dependence on {d.array}: {_pair(v)}, so "
             f"{v.sink} must run after {v.source}, but the new schedule runs it at the same "
             "time or earlier."]
    if state is not None:
        lines.append(f"  Loop nest of {sink_stage} with this change:")
        lines += ["    " + line for line in nest_lines(state)]
    lines.append("  Keep the loop that carries this dependence outside the loops you moved, "
                 "or change the algorithm (e.g. split a recurrence into independent rows).")
    return "\n".join(lines)


def _reducer_name(state: StageState) -> str:
    body = getattr(state.op, "body", None)
    return getattr(getattr(body, "reducer", None), "name", "reduction")


def _stage_of(data, stage_name: str):
    for key in data.order:
        if data.states[key].op.name == stage_name:
            return key, data.states[key]
    return None, None


def parallel_loops(data, analysis: Analysis, stage_name: str) -> list[str]:
    """Names of the stage's loops that carry no dependence."""
    by_leaf: dict = {}
    for loop, _ in loops(analysis.program.body):
        if loop.stage == stage_name:
            by_leaf.setdefault(loop.var, []).append(loop)
    names = []
    for leaf, group in by_leaf.items():
        if all(not carried(analysis.model, analysis.deps, loop) for loop in group):
            names.append(leaf.name)
    return names


def nest_lines(state: StageState, mark=None) -> list[str]:
    """The stage's loops and statement, indented; `mark=(leaf, kind)` points at one loop."""
    lines = []
    for depth, leaf in enumerate(state.leaves):
        start = leaf.start
        extent = leaf.extent
        rng = f"range({extent})" if isinstance(start, Const) and start.value == 0 else \
            f"range({start}, {simplify_index(start + extent)})"
        text = "  " * depth + f"for {leaf.name} in {rng}:"
        kind = state.kind_of(leaf)
        if mark is not None and leaf is mark[0]:
            text = f"{text:<34}  <-- {mark[1]}({leaf.name})"
        elif kind != "serial":
            text = f"{text:<34}  # {kind}"
        lines.append(text)
    lines.append("  " * len(state.leaves) + statement_text(state))
    return lines


def statement_text(state: StageState) -> str:
    from ..lang.expr import Reduce
    from ..lang.tensor import ComputeOp, UpdateOp
    op = state.op
    if isinstance(op, UpdateOp):
        return f"{op.base.name}[{', '.join(map(str, op.index))}] = {op.value}"
    if isinstance(op, ComputeOp):
        lhs = f"{op.name}[{', '.join(a.name for a in op.axis)}]"
        body = op.body
        if isinstance(body, Reduce):
            if body.reducer.name == "sum":
                return f"{lhs} += {body.body}"
            return f"{lhs} = {body.reducer.name}({lhs}, {body.body})"
        return f"{lhs} = {body}"
    return op.name
