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


def schedule_tree(schedule) -> isl.Schedule:
    """The isl schedule tree isl's AST generator receives (bands, sequences, marks).

    >>> print(td.poly.schedule_tree(s))
    """
    from .codegen import tree_of
    return tree_of(schedule.analysis().model)


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


# ---------------------------------------------------------------------------------------
# Enumeration at concrete sizes, for pictures
# ---------------------------------------------------------------------------------------

def _fix_params(obj, sizes: dict[str, int]):
    for k in range(obj.dim(isl.dim_type.param)):
        name = obj.get_dim_name(isl.dim_type.param, k)
        if name in sizes:
            obj = obj.fix_val(isl.dim_type.param, k, isl.Val.int_from_si(obj.get_ctx(),
                                                                        int(sizes[name])))
    return obj


def points(s: isl.Set, sizes: dict[str, int], limit: int = 20000) -> list[tuple[int, ...]]:
    """The integer points of `s` with the parameters fixed to `sizes`."""
    fixed = _fix_params(s, sizes)
    if not fixed.is_bounded():
        raise ValueError("the set is unbounded at these sizes; give every size")
    found: list[tuple[int, ...]] = []

    def take(point: isl.Point) -> None:
        if len(found) < limit:
            n = point.get_space().dim(isl.dim_type.set)
            found.append(tuple(int(point.get_coordinate_val(isl.dim_type.set, d).to_python())
                               for d in range(n)))
    fixed.foreach_point(take)
    return sorted(found)


def pairs(m: isl.Map, sizes: dict[str, int], limit: int = 20000) -> list[tuple[tuple, tuple]]:
    """The (source, sink) pairs of a relation at concrete sizes."""
    n_in = m.dim(isl.dim_type.in_)
    return [(p[:n_in], p[n_in:]) for p in points(m.wrap().flatten(), sizes, limit)]


def times(schedule, statement: str, sizes: dict[str, int]) -> dict[tuple, tuple]:
    """Each instance of `statement` -> its time vector in the schedule, at `sizes`."""
    model = schedule.analysis().model
    time = [m for m in _maps(model.time) if m.get_tuple_name(isl.dim_type.in_) == statement][0]
    return dict(pairs(time, sizes))


def order(schedule, stage, sizes: dict) -> list[tuple[int, ...]]:
    """The instances of `stage`'s main statement (a reduction's update) in the order the
    schedule runs them, at concrete `sizes` ({size var or name: int}); each instance is
    the tuple of the stage's own axes (for a stage computed at another's loop, without
    the loops around it). Iterations of a parallel loop are listed one after the other.

    >>> s[C].reorder(j, i)
    >>> td.poly.order(s, C, {n: 2, m: 2})
    [(0, 0), (1, 0), (0, 1), (1, 1)]
    """
    sz = {getattr(k, "name", str(k)): int(v) for k, v in (sizes or {}).items()}
    name = getattr(stage, "name", stage)
    model = schedule.analysis().model
    mine = [sm for sm in model.stmts.values() if sm.stmt.stage == name]
    if not mine:
        raise ValueError(f"{name} is not a stage of this schedule")
    sm = ([m for m in mine if m.stmt.kind != "init"] or mine)[-1]
    n_outer = len(sm.outer)
    return [p[n_outer:] for p, _ in sorted(times(schedule, sm.name, sz).items(),
                                           key=lambda item: item[1])]


def count(schedule, sizes: dict, writes: str | None = None, limit: int = 10 ** 6) -> int:
    """How many statement instances the schedule runs at concrete `sizes` (isl's points
    of every iteration domain, enumerated), or only those of statements that write the
    array named `writes`: for example how often the output itself is stored, which a
    register tile (cache_write) brings from n*m*l to n*m.

    >>> td.poly.count(s, {n: 8, m: 8, l: 8}, writes="C")
    576
    """
    sz = {getattr(k, "name", str(k)): int(v) for k, v in (sizes or {}).items()}
    model = schedule.analysis().model
    total = 0
    for sm in model.stmts.values():
        if writes is not None and not any(
                a.relation.get_tuple_name(isl.dim_type.out) == writes for a in sm.writes):
            continue
        found = points(sm.domain, sz, limit=limit)
        if len(found) >= limit:
            raise ValueError(f"{sm.name} has {limit} or more instances at {sz}; count at "
                             "smaller sizes")
        total += len(found)
    return total


def carried_pairs(schedule, stage: str, axis, sizes: dict[str, int]) -> list[tuple]:
    """(source, sink) instance pairs of dependences carried by loop `axis` of `stage`."""
    from .legality import carried_relations
    from .program import loops
    analysis = schedule.analysis()
    found = []
    for loop, _ in loops(analysis.program.body):
        if loop.stage == stage and loop.var is axis:
            for dep, relation in carried_relations(analysis.model, analysis.deps, loop):
                found += [(dep, src, dst) for src, dst in pairs(relation, sizes)]
    return found


def _maps(umap: isl.UnionMap) -> list[isl.Map]:
    from .model import maps_of
    return maps_of(umap)
