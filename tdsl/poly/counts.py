"""Exact counts of a scheduled program, by isl: what every statement executes and the
data each loop touches.

`count(model, sizes, line_bytes)` reads a `Model` (the scheduled program, after
compute_at's narrowing, so recomputed halos are counted) at concrete sizes and returns
`ProgramCounts`:

- per statement: its instances (isl cardinality of its domain, "o" dims included), the
  floating-point operations of its value by kind, each restricted to the instances
  where it runs (an affine `select` branch, a `where`);
- per array: loads and stores executed, and the footprint (distinct elements);
- the loop tree as `Level`s: per loop, the number of its iterations (distinct values
  of the loops around it and itself) and, per array, the cache lines touched summed
  over those iterations (each iteration's distinct lines), and the same summed over
  the iterations of the loop around it. `tdsl.counts` runs its cache model on these.

islpy here has no barvinok, so there is no `card()` as a polynomial in the sizes:
every count is an `isl_set_count_val` at the sizes given. A set is first split into
disjoint basic sets and each into independent groups of dims (no constraint links
two groups), counted separately and multiplied: a 1024^3 box costs microseconds
instead of isl's scan of a million rows.

A cache line is `line_bytes` of one row: element `X[x0, ..., xr]` is in line
`X[x0, ..., floor(xr / (line_bytes / itemsize))]` (rows start on a line boundary:
buffers are 64-byte aligned, rows assumed a whole number of lines). Private storage
(compute_at, cache_write at a loop) is counted in its own coordinates (the tile
buffer, the same memory in every iteration), not per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl
import numpy as np

from ..errors import TdslValueError
from ..lang import dtypes
from ..lang.expr import BinOp, Call, Expr, Load, Select, UnaryOp
from ..lang.visit import children
from .affine import NonAffine
from .model import Model, StmtModel, _map_from_affs
from .program import Loop, Statement

PARALLEL_KINDS = ("parallel", "blockIdx", "threadIdx")


@dataclass(frozen=True)
class StatementCount:
    """What one statement executes at the given sizes."""

    name: str                       # "C_update"
    stage: str
    kind: str                       # compute | init | update | recurrence
    instances: int
    ops: dict[str, int]             # floating-point operations by kind, all instances
    vector: bool                    # inside a vectorized loop
    parallel: bool                  # inside a parallel (or GPU-bound) loop


@dataclass(frozen=True)
class ArrayCount:
    name: str
    dtype: str
    itemsize: int
    role: str                       # input | output | temp
    private: bool                   # storage private to a loop iteration (compute_at)
    loads: int
    stores: int
    footprint: int                  # distinct elements touched


@dataclass(frozen=True)
class Level:
    """A node of the loop tree, for the cache model. `lines[a]`: lines of array a touched
    in one iteration of this node, summed over its iterations; `lines_outside[a]`: the
    same for the iterations of the parent node (reuse across this node's iterations
    kept). The root has one iteration; a statement is a leaf."""

    name: str                       # "C.k" for a loop, the statement's name, "root"
    kind: str                       # "root" | "statement" | a loop kind (serial, parallel...)
    iterations: int
    lines: dict[str, int]
    lines_outside: dict[str, int]
    children: tuple["Level", ...] = ()


@dataclass(frozen=True)
class ProgramCounts:
    statements: tuple[StatementCount, ...]
    arrays: dict[str, ArrayCount]
    root: Level
    parallel_tasks: int             # iterations of the outermost parallel loops
    line_elements: dict[str, int]   # elements per cache line, per array
    inexact: tuple[str, ...]        # why a count is an upper bound, if it is


def count(model: Model, sizes: dict[str, int], line_bytes: int = 64) -> ProgramCounts:
    """Counts of `model` at `sizes` (every parameter of the model, by name)."""
    return _Counter(model, sizes, line_bytes).run()


# ---------------------------------------------------------------------------------------
# Cardinality at fixed sizes
# ---------------------------------------------------------------------------------------

def card(s: isl.Set) -> int:
    """The number of integer points of `s`, whose parameters are fixed by equalities."""
    s = s.project_out(isl.dim_type.param, 0, s.dim(isl.dim_type.param)).coalesce()
    if s.is_empty():
        return 0
    total = 0
    for bset in s.make_disjoint().get_basic_sets():
        total += _card_basic(bset)
    return total


def _card_basic(bset: isl.BasicSet) -> int:
    n = bset.dim(isl.dim_type.set)
    if n == 0:
        return 0 if bset.is_empty() else 1
    total = 1
    for group in _independent_dims(bset):
        part = bset
        for d in reversed(range(n)):
            if d not in group:
                part = part.project_out(isl.dim_type.set, d, 1)
        total *= int(isl.Set.from_basic_set(part).count_val().to_python())
        if total == 0:
            return 0
    return total


def _independent_dims(bset: isl.BasicSet) -> list[list[int]]:
    """The dims of `bset` in groups that no constraint (nor existential) links."""
    n, ndiv = bset.dim(isl.dim_type.set), bset.dim(isl.dim_type.div)
    parent = list(range(n + ndiv))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def link(items: list[int]) -> None:
        for x in items[1:]:
            parent[find(x)] = find(items[0])

    for c in bset.get_constraints():
        link([d for d in range(n) if not c.get_coefficient_val(isl.dim_type.set, d).is_zero()]
             + [n + k for k in range(ndiv)
                if not c.get_coefficient_val(isl.dim_type.div, k).is_zero()])
    for k in range(ndiv):
        try:
            div = bset.get_div(k)
        except isl.Error:           # an existential without a known definition: only its
            continue                # constraints link it, and they were linked above
        if div.is_nan():
            continue
        link([n + k] + [d for d in range(n)
                        if not div.get_coefficient_val(isl.dim_type.in_, d).is_zero()]
             + [n + j for j in range(div.dim(isl.dim_type.div))
                if not div.get_coefficient_val(isl.dim_type.div, j).is_zero()])
    groups: dict[int, list[int]] = {}
    for d in range(n):
        groups.setdefault(find(d), []).append(d)
    return list(groups.values())


# ---------------------------------------------------------------------------------------
# The counter
# ---------------------------------------------------------------------------------------

class _Counter:
    def __init__(self, model: Model, sizes: dict[str, int], line_bytes: int):
        self.model = model
        self.line_bytes = line_bytes
        fixed = model.context
        for k, name in enumerate(model.param_names):
            fixed = fixed.fix_val(isl.dim_type.param, k,
                                  isl.Val.int_from_si(model.ctx, int(sizes[name])))
        if fixed.is_empty():
            # The model assumes every size and every array dimension >= 1 (its accesses
            # hold only there), so it has nothing to say at these sizes.
            given = ", ".join(f"{k}={v}" for k, v in sizes.items())
            raise TdslValueError(
                f"td.counts at {given}: some array of the kernel has a dimension below 1 at "
                f"these sizes ({', '.join(f'{a.name}{_shape(a)}' for a in model.program.arrays)}"
                f"); counts assume every size and array dimension is at least 1, as the "
                f"analysis does; count at larger sizes")
        self.fixed = fixed
        self.inexact: list[str] = []
        self.domains = {name: sm.domain.intersect_params(self.fixed)
                        for name, sm in model.stmts.items()}
        self.line_elements = {a.name: max(1, line_bytes // np.dtype(a.dtype).itemsize)
                              for a in model.program.arrays}
        self._line_maps: dict[str, isl.Map] = {}
        self.lines_of = {name: self._lines(sm) for name, sm in model.stmts.items()}

    def run(self) -> ProgramCounts:
        statements = tuple(self._statement(sm) for sm in self.model.stmts.values())
        arrays = self._arrays()
        root = self._level(None, self.model.program.body, ())
        tasks = sum(self._iterations(loop) for loop in self._outer_parallel())
        return ProgramCounts(statements, arrays, root, tasks, dict(self.line_elements),
                             tuple(dict.fromkeys(self.inexact)))

    # -- statements: instances and operations ------------------------------------------
    def _statement(self, sm: StmtModel) -> StatementCount:
        domain = self.domains[sm.name]
        instances = card(domain)
        if sm.guard is not None:
            self.inexact.append(f"{sm.stmt.stage}: the condition {sm.guard} is not affine, so "
                                "every instance of the domain is counted")
        ops: dict[str, int] = {}
        for kind, conds in _operations(sm.stmt.value, ()):
            ops[kind] = ops.get(kind, 0) + self._instances_where(sm, domain, instances, conds)
        kinds = [loop.kind for loop in sm.path]
        return StatementCount(sm.name, sm.stmt.stage, sm.stmt.kind, instances, ops,
                              "vectorize" in kinds,
                              any(k.startswith(PARALLEL_KINDS) for k in kinds))

    def _instances_where(self, sm, domain, instances, conds) -> int:
        if not conds:
            return instances
        restricted = domain
        for cond in conds:
            try:
                restricted = restricted.intersect(sm.build.condition(cond))
            except NonAffine:
                self.inexact.append(f"{sm.stmt.stage}: the select condition {cond} is not "
                                    "affine, so both of its branches are counted")
        return card(restricted)

    # -- arrays: loads, stores, footprints ------------------------------------------------
    def _arrays(self) -> dict[str, ArrayCount]:
        program = self.model.program
        loads = {a.name: 0 for a in program.arrays}
        stores = dict(loads)
        touched: dict[str, isl.Set] = {}
        for sm in self.model.stmts.values():
            for access, is_write in [(a, False) for a in sm.reads] + [(a, True) for a in
                                                                      sm.writes]:
                name = access.array.name
                executed = card(access.relation.domain().intersect_params(self.fixed))
                (stores if is_write else loads)[name] += executed
                if not access.exact:
                    self.inexact.append(f"{sm.stmt.stage} reads {name} at {_indices(access)}, "
                                        f"not an affine index: the whole of {name} is counted")
                elements = self._physical(sm, access).range()
                touched[name] = elements if name not in touched else touched[name].union(
                    elements)
        return {a.name: ArrayCount(a.name, a.dtype, np.dtype(a.dtype).itemsize, a.role,
                                   a.name in program.attach, loads[a.name], stores[a.name],
                                   card(touched[a.name]) if a.name in touched else 0)
                for a in program.arrays}

    def _physical(self, sm: StmtModel, access) -> isl.Map:
        """`stmt -> array[storage coordinates]` at the fixed sizes: a private array in its
        own (rebased) coordinates, the same storage in every iteration."""
        domain = access.relation.domain().intersect_params(self.fixed)
        if access.array.name in self.model.program.attach:
            if access.index is not None:
                return _map_from_affs(domain, list(access.index), access.array.name)
            n_o = access.relation.dim(isl.dim_type.out) - len(access.array.shape)
            relation = access.relation.project_out(isl.dim_type.out, 0, n_o)
            relation = relation.set_tuple_name(isl.dim_type.out, access.array.name)
            return relation.intersect_domain(domain)
        return access.relation.intersect_domain(domain)

    def _lines(self, sm: StmtModel) -> dict[str, isl.Map]:
        """Per array: `stmt -> array line` of every access of the statement."""
        out: dict[str, isl.Map] = {}
        for access in sm.reads + sm.writes:
            name = access.array.name
            lines = self._physical(sm, access).apply_range(self._line_map(access.array))
            out[name] = lines if name not in out else out[name].union(lines)
        return out

    def _line_map(self, array) -> isl.Map:
        if array.name not in self._line_maps:
            rank = len(array.shape)
            space = isl.Space.create_from_names(self.model.ctx, set=[f"x{d}" for d in
                                                                     range(rank)],
                                                params=self.model.param_names)
            space = space.set_tuple_name(isl.dim_type.set, array.name)
            local = isl.LocalSpace.from_space(space)
            affs = [isl.PwAff.from_aff(isl.Aff.var_on_domain(local, isl.dim_type.set, d))
                    for d in range(rank)]
            if affs:
                per_line = isl.Val.int_from_si(self.model.ctx, self.line_elements[array.name])
                affs[-1] = affs[-1].scale_down_val(per_line).floor()
            self._line_maps[array.name] = _map_from_affs(isl.Set.universe(space), affs,
                                                         array.name)
        return self._line_maps[array.name]

    # -- the loop tree ---------------------------------------------------------------------
    def _level(self, loop: Loop | None, body: tuple, outside: tuple[Loop, ...]) -> Level:
        """The Level of `loop` (None: the root), whose enclosing loops are `outside`."""
        inside = outside + ((loop,) if loop is not None else ())
        kids = []
        for node in body:
            if isinstance(node, Statement):
                sm = self.model.stmts[node.name]
                kids.append(Level(sm.name, "statement", card(self.domains[sm.name]),
                                  {}, self._pairs([sm], inside)))
            else:
                kids.append(self._level(node, node.body, inside))
        stmts = [self.model.stmts[s.name] for s in _statements(body)]
        if loop is None:
            lines = self._pairs(stmts, ())
            return Level("root", "root", 1, lines, lines, tuple(kids))
        return Level(f"{loop.stage}.{loop.var.name}", loop.kind, self._iterations(loop),
                     self._pairs(stmts, inside), self._pairs(stmts, outside), tuple(kids))

    def _prefix(self, sm: StmtModel, path: tuple[Loop, ...]) -> isl.Map:
        """`stmt -> [values of the loops of path]` at the fixed sizes."""
        affs = [self.model.loop_value(sm, loop) for loop in path]
        return _map_from_affs(self.domains[sm.name], affs, None)

    def _pairs(self, stmts: list[StmtModel], path: tuple[Loop, ...]) -> dict[str, int]:
        """Per array: the number of distinct (values of path, line) pairs."""
        pairs: dict[str, isl.Set] = {}
        for sm in stmts:
            prefix = self._prefix(sm, path).reverse()
            for name, lines in self.lines_of[sm.name].items():
                wrapped = prefix.apply_range(lines).wrap()
                pairs[name] = wrapped if name not in pairs else pairs[name].union(wrapped)
        return {name: card(s) for name, s in pairs.items()}

    def _iterations(self, loop: Loop) -> int:
        path = (*self.model.loop_paths[id(loop)], loop)
        values = None
        for sm in self.model.statements_under(loop):
            v = self._prefix(sm, path).range()
            values = v if values is None else values.union(v)
        return 0 if values is None else card(values)

    def _outer_parallel(self) -> list[Loop]:
        from .program import loops
        return [loop for loop, path in loops(self.model.program.body)
                if loop.kind.startswith(PARALLEL_KINDS)
                and not any(p.kind.startswith(PARALLEL_KINDS) for p in path)]


def _shape(array) -> str:
    return f"({', '.join(str(d) for d in array.shape)})"


def _statements(body: tuple) -> list[Statement]:
    from .program import walk
    return [s for s, _ in walk(body)]


def _indices(access) -> str:
    return f"[{', '.join(str(i) for i in access.indices)}]"


def _operations(e: Expr, conds: tuple):
    """(kind, conditions under which it runs) of every floating-point operation of `e`;
    a select's branches run under its condition (C's `?:`), index arithmetic is not
    counted (loads' indices are integers)."""
    match e:
        case Select(cond=c, true_value=t, false_value=f):
            yield from _operations(c, conds)
            yield from _operations(t, conds + (c,))
            yield from _operations(f, conds + (UnaryOp("invert", c, "bool"),))
            return
        case Load():
            return
        case BinOp(op=op, a=a) if dtypes.is_float(a.dtype):
            yield _KIND.get(op, op), conds
        case UnaryOp(op="neg", value=v) if dtypes.is_float(v.dtype):
            yield "neg", conds
        case Call(name=name, args=args) if args and dtypes.is_float(args[0].dtype):
            yield name, conds
    for child in children(e):
        yield from _operations(child, conds)


# comparisons of floats are one kind; everything else keeps its name
_KIND = {"truediv": "div", "lt": "cmp", "le": "cmp", "gt": "cmp", "ge": "cmp", "eq": "cmp",
         "ne": "cmp", "power": "pow"}

__all__ = ["ArrayCount", "Level", "ProgramCounts", "StatementCount", "card", "count"]
