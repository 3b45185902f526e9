"""Legality of a schedule: evidence, not a bool.

`order_violations` finds dependences the schedule no longer runs source before
sink; `carried` finds dependences carried by one loop (forbidden for parallel,
vectorized and GPU-bound loops, reduction updates included). Each violation
carries one concrete pair of instances, with the smallest sizes, for messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl

from .deps import Dependence
from .model import maps_of
from .witness import describe_instance, smallest_point


@dataclass
class Violation:
    dependence: Dependence
    source: str               # "C.update[i=0, j=0, k=0]"
    sink: str
    element: str              # "C[0, 0]"
    sizes: dict[str, int]

    @property
    def race(self) -> bool:
        """Two updates of one reduction at the same time (not an order problem)."""
        return self.dependence.reduction


def in_time(model, deps: list[Dependence]) -> tuple[isl.Map | None, isl.Map | None]:
    """(non-reduction deps, reduction deps), each as one relation between time vectors:
    the fast form of every check (a few isl operations on one map, whatever the number
    of statements); the per-dependence relations are only used to explain a failure."""
    if not hasattr(model, "_deps_in_time"):
        parts = []
        for reduction in (False, True):
            union = None
            for dep in deps:
                if dep.reduction == reduction:
                    piece = isl.UnionMap.from_map(dep.relation)
                    union = piece if union is None else union.union(piece)
            if union is None:
                parts.append(None)
                continue
            timed = union.apply_domain(model.time).apply_range(model.time)
            maps = maps_of(timed)
            parts.append(maps[0] if maps else None)
        model._deps_in_time = tuple(parts)
    return model._deps_in_time


def order_violations(model, deps: list[Dependence], limit: int = 1) -> list[Violation]:
    """Dependences whose sink the schedule runs at the same time as, or before, the
    source (reduction updates may run in any order, so only "same time" counts)."""
    plain, reduction = in_time(model, deps)
    clean = True
    if plain is not None:
        clean &= plain.intersect(isl.Map.lex_ge(plain.get_space().domain())).is_empty()
    if reduction is not None:
        clean &= reduction.intersect(isl.Map.identity(reduction.get_space())).is_empty()
    if clean:
        return []
    time = model.time
    not_after = time.lex_ge_union_map(time)
    same = time.apply_range(time.reverse())
    found = []
    for dep in deps:
        bad = _restrict(dep.relation, same if dep.reduction else not_after)
        if bad is not None:
            found.append(_explain(model, dep, bad))
            if len(found) >= limit:
                break
    return found


def carried(model, deps: list[Dependence], loop, limit: int = 1) -> list[Violation]:
    """Dependences between two different iterations of `loop` (same iteration of every
    loop around it), each explained by one witness."""
    if not _carries_any(model, deps, loop):
        return []
    found = []
    for dep, bad in carried_relations(model, deps, loop):
        found.append(_explain(model, dep, bad))
        if len(found) >= limit:
            break
    return found


def _carried_in_time(model, loop) -> isl.Map:
    """Pairs of times inside `loop` (its path's sibling positions, equal outer loops)
    that are in different iterations of it."""
    dim = model.time_dim_of(loop)
    sm = model.statements_under(loop)[0]
    positions = sm.positions[:len(model.loop_paths[id(loop)]) + 1]
    width = maps_of(model.time)[0].dim(isl.dim_type.out)
    t = [f"t{k}" for k in range(width)]
    s = [f"s{k}" for k in range(width)]
    conds = [f"{t[k]} = {s[k]}" for k in range(dim)]
    conds += [f"{t[2 * d]} = {p}" for d, p in enumerate(positions)]
    conds.append(f"({t[dim]} < {s[dim]} or {t[dim]} > {s[dim]})")
    return isl.Map(f"{{ T[{', '.join(t)}] -> T[{', '.join(s)}] : {' and '.join(conds)} }}")


def _carries_any(model, deps, loop) -> bool:
    """Does `loop` carry any dependence? Only those between two statements under it can
    be carried (the others differ from it in a sibling position), so only they are
    mapped to time and tested, one at a time: a parallel loop of one stage of a large
    program is not tested against every dependence of the program."""
    inside = {sm.name for sm in model.statements_under(loop)}
    differ = None
    for dep in deps:
        if dep.source not in inside or dep.sink not in inside:
            continue
        timed = _dep_in_time(model, dep)
        if differ is None:
            differ = _carried_in_time(model, loop).align_params(timed.get_space())
        if not timed.intersect(differ).is_empty():
            return True
    return False


def _dep_in_time(model, dep: Dependence) -> isl.Map:
    """`dep`'s relation between time vectors (cached on the model)."""
    if not hasattr(model, "_dep_time"):
        model._dep_time = {}
        model._stmt_time = {m.get_tuple_name(isl.dim_type.in_): m for m in maps_of(model.time)}
    timed = model._dep_time.get(id(dep))
    if timed is None:
        timed = dep.relation.apply_domain(model._stmt_time[dep.source]) \
            .apply_range(model._stmt_time[dep.sink])
        model._dep_time[id(dep)] = timed
    return timed


def carried_relations(model, deps: list[Dependence], loop) -> list[tuple[Dependence, isl.Map]]:
    """Each dependence carried by `loop`, restricted to the instance pairs it carries."""
    inside = {sm.name for sm in model.statements_under(loop)}
    pairs = model.time.apply_range(isl.UnionMap.from_map(_carried_in_time(model, loop))) \
        .apply_range(model.time.reverse())
    found = []
    for dep in deps:
        if dep.source in inside and dep.sink in inside:
            bad = _restrict(dep.relation, pairs)
            if bad is not None:
                found.append((dep, bad))
    return found


def _restrict(relation: isl.Map, allowed: isl.UnionMap) -> isl.Map | None:
    bad = isl.UnionMap.from_map(relation).intersect(allowed)
    if bad.is_empty():
        return None
    return maps_of(bad)[0]


def _explain(model, dep: Dependence, bad: isl.Map) -> Violation:
    bad = bad.intersect_params(model.context.align_params(bad.get_space()))
    point = smallest_point(bad.wrap(), model.param_names)
    src, dst = model.stmts[dep.source], model.stmts[dep.sink]
    n_src = src.space.dim(isl.dim_type.set)
    src_coords, dst_coords = point.coords[:n_src], point.coords[n_src:]
    return Violation(dep, describe_instance(model, src, src_coords),
                     describe_instance(model, dst, dst_coords),
                     _element(model, dep, src, src_coords), point.params)


def _element(model, dep: Dependence, src, coords: list[int]) -> str:
    """The array element the two instances share, as `C[0, 0]`."""
    accesses = src.writes if dep.kind in ("RAW", "WAW") else src.reads
    for acc in accesses:
        if acc.array.name != dep.array:
            continue
        point = isl.Set.universe(acc.relation.get_space().domain())
        for k, v in enumerate(coords):
            point = point.fix_val(isl.dim_type.set, k, isl.Val.int_from_si(model.ctx, v))
        image = acc.relation.intersect_domain(point)
        n_par = image.dim(isl.dim_type.param)
        image = image.range()
        if image.is_empty():
            continue
        w = smallest_point(image, model.param_names)
        attach = model.program.attach.get(acc.array.name)
        skip = len(model.loop_paths[id(attach)]) + 1 if attach is not None else 0
        del n_par
        return f"{dep.array}[{', '.join(map(str, w.coords[skip:]))}]"
    return dep.array
