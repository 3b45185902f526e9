"""Memory-based dependences of the reference order, tagged by kind and reduction.

For every array, with W and R its write and read relations and `before` the
strict reference order: RAW = W;R^-1 & before, WAR = R;W^-1 & before,
WAW = W;W^-1 & before. Self-dependences of a commutative reduction update on its
own accumulator are tagged `reduction`: their order may be relaxed, their
parallelism never (ISL_NOTES §1: value-based dependences would let updates run
before their init, so they are not used for legality).
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl

from .model import maps_of


@dataclass(frozen=True)
class Dependence:
    kind: str                 # "RAW" | "WAR" | "WAW"
    array: str
    source: str               # statement names
    sink: str
    relation: isl.Map         # source instance -> sink instance
    reduction: bool

    def __str__(self) -> str:
        tag = "reduction " if self.reduction else ""
        return f"{tag}{self.kind} on {self.array}: {self.relation}"


_CACHE: dict[str, list[Dependence]] = {}
_CACHE_SIZE = 64


def compute_dependences(model) -> list[Dependence]:
    """All dependences of the program in `model`.

    They depend only on the accesses and the reference order, which most schedule
    primitives (split, reorder, parallel, ...) do not change: the result is cached by
    the text of those relations, so a schedule's successive checks compute it once.
    """
    writes: dict[str, isl.UnionMap] = {}
    reads: dict[str, isl.UnionMap] = {}
    for sm in model.stmts.values():
        for acc in sm.writes:
            _add(writes, acc.array.name, acc.relation)
        for acc in sm.reads:
            _add(reads, acc.array.name, acc.relation)
    key = "\n".join([model.reference.to_str()] +
                    [f"W {a} {w.to_str()}" for a, w in sorted(writes.items())] +
                    [f"R {a} {r.to_str()}" for a, r in sorted(reads.items())])
    if key in _CACHE:
        return _CACHE[key]
    deps = _compute(model, writes, reads)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = deps
    return deps


def _compute(model, writes: dict, reads: dict) -> list[Dependence]:
    # The reference order is compared only between the statements of a pair that share
    # an array, one pair at a time: `lex_lt_union_map` of the whole reference relates
    # every statement to every other (57 statements of a CNN's training step: 3,249
    # pairs, 1 s of each check), while a pair that shares an array is a handful.
    refs = {m.get_tuple_name(isl.dim_type.in_): m for m in maps_of(model.reference)}
    before: dict[tuple[str, str], isl.Map] = {}
    deps: list[Dependence] = []
    for array, w in writes.items():
        r = reads.get(array)
        pairs = [("WAW", w.apply_range(w.reverse()))]
        if r is not None:
            pairs += [("RAW", w.apply_range(r.reverse())), ("WAR", r.apply_range(w.reverse()))]
        for kind, relation in pairs:
            for m in maps_of(relation):
                src = m.get_tuple_name(isl.dim_type.in_)
                dst = m.get_tuple_name(isl.dim_type.out)
                if (src, dst) not in before:
                    before[src, dst] = refs[src].lex_lt_map(refs[dst])
                m = m.intersect(before[src, dst])
                if m.is_empty():
                    continue
                stmt = model.stmts[src].stmt
                reduction = src == dst and stmt.reduction and stmt.target.name == array
                deps.append(Dependence(kind, array, src, dst, m.coalesce(), reduction))
    return deps


def _add(table: dict[str, isl.UnionMap], key: str, relation: isl.Map) -> None:
    piece = isl.UnionMap.from_map(relation)
    table[key] = piece if key not in table else table[key].union(piece)
