"""The polyhedral view of a schedule, for teaching: `td.poly.domains(s)`,
`td.poly.accesses(s)`, `td.poly.dependences(s)` and `td.poly.explain(s[C], axis)`.

Each takes a schedule (or a stage) and returns isl objects or text; they read the
analysis the schedule itself runs for legality (`Schedule.analysis()`).
"""

from __future__ import annotations

import islpy as isl

from .legality import carried


def domains(schedule) -> dict[str, isl.Set]:
    """The iteration domain of every statement, by statement name.

    >>> td.poly.domains(s)["C_update"]
    [n, l, m] -> { C_update[i, j, k] : 0 <= i < n and 0 <= j < m and 0 <= k < l }
    """
    return {name: sm.domain for name, sm in schedule.analysis().model.stmts.items()}


def accesses(schedule) -> dict[str, dict[str, list[isl.Map]]]:
    """`{statement: {"reads": [...], "writes": [...]}}` as isl maps."""
    model = schedule.analysis().model

    def shown(m: isl.Map) -> isl.Map:
        return m.gist_params(model.context)
    return {name: {"reads": [shown(a.relation) for a in sm.reads],
                   "writes": [shown(a.relation) for a in sm.writes]}
            for name, sm in model.stmts.items()}


def dependences(schedule, stage: str | None = None) -> list:
    """The dependences of the reference order (optionally only those into `stage`)."""
    analysis = schedule.analysis()
    deps = analysis.deps
    if stage is not None:
        deps = [d for d in deps if analysis.model.stmts[d.sink].stmt.stage == stage]
    return deps


def schedule_map(schedule) -> isl.UnionMap:
    """Every statement instance -> its time in the scheduled loop nest (2d+1 vectors)."""
    return schedule.analysis().model.time


def explain(stage, axis) -> str:
    """Why the loop `axis` of `stage` can or cannot run in parallel, in words.

    >>> print(td.poly.explain(s[C], k))
    """
    analysis = stage.schedule.analysis()
    from .program import loops
    mine = [loop for loop, _ in loops(analysis.program.body)
            if loop.stage == stage.name and loop.var is axis]
    if not mine:
        return f"{getattr(axis, 'name', axis)} is not a loop of {stage.name} in this schedule"
    for loop in mine:
        found = carried(analysis.model, analysis.deps, loop)
        if found:
            v = found[0]
            d = v.dependence
            what = ("both update" if d.reduction else
                    {"RAW": "write then read", "WAR": "read then overwrite",
                     "WAW": "both write"}[d.kind])
            sizes = ", ".join(f"{k}={n}" for k, n in v.sizes.items())
            return (f"Loop {axis.name} of {stage.name} cannot run in parallel: it carries a "
                    f"{'reduction ' if d.reduction else ''}{d.kind} dependence on {d.array}. "
                    f"{v.source} and {v.sink} ({what} {v.element}) are in different iterations "
                    f"of {axis.name}" + (f" (for {sizes})" if sizes else "") + ".")
    return (f"Loop {axis.name} of {stage.name} can run in parallel: no dependence connects two "
            f"different iterations of it (with the loops around it fixed).")
