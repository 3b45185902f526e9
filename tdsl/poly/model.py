"""The isl model of a program: domains, accesses, reference order and schedule.

`Model(program)` builds, for every statement, its iteration domain (a named
isl set with the sizes as parameters), its access relations, its position in
the reference order, and its time in the scheduled loop tree (a "2d+1" vector:
sibling positions interleaved with loop values). Statements computed inside
another stage's loop (compute_at) get that loop nest's values as leading dims
("o" dims) and a domain narrowed to the region read there (see footprint.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import islpy as isl

from ..errors import TdslValueError
from ..lang.expr import Expr, IterVar, Load, Select, UnaryOp, Var, all_of
from ..lang.names import unique_name
from ..lang.visit import children, conjuncts, free_vars
from .affine import AffineBuilder, NonAffine, set_space
from .program import Array, Loop, Program, Statement, loops, walk as walk_statements


@dataclass
class Access:
    """One read or write of a statement, as isl sees it."""

    array: Array
    indices: tuple[Expr, ...]
    relation: isl.Map                # stmt[o.., dims..] -> array[(o..,) x..]  (expanded)
    exact: bool                      # False: a conservative over-approximation
    proven_in_bounds: bool
    load: Load | None = None         # the expression node, for reads
    index: list | None = None        # exact accesses: one PwAff per dim of the storage
                                     # (rebased for private storage), on the stmt's domain


@dataclass
class StmtModel:
    stmt: Statement
    path: tuple[Loop, ...]           # enclosing loops, outermost first
    outer: tuple[Loop, ...]          # enclosing loops of other stages: the "o" dims
    positions: tuple[int, ...]       # sibling position at each level (len(path) + 1)
    space: isl.Space
    build: AffineBuilder
    domain: isl.Set
    guard: Expr | None                # a non-affine `where`, tested in the body
    writes: list[Access] = field(default_factory=list)
    reads: list[Access] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.stmt.name


class Model:
    """isl objects for one program; see the module docstring."""

    def __init__(self, program: Program):
        self.program = program
        self.ctx = isl.DEFAULT_CONTEXT     # strings and ids parse there; contexts must not mix
        self.params = _collect_params(program)
        self.param_names = [p.name for p in self.params]
        self.param_pos = {id(p): k for k, p in enumerate(self.params)}
        self.loop_paths = {id(loop): path for loop, path in loops(program.body)}
        self._boxes: dict[str, isl.Set] = {}
        self._rebase: dict[str, isl.PwMultiAff] = {}
        self.rebased: dict[str, tuple] = {}     # stmt -> (layout, {dim position: array dim})
        self.stmts: dict[str, StmtModel] = {}
        for stmt, path, positions in _positions(program.body):
            self.stmts[stmt.name] = self._statement(stmt, path, positions)
        self.context = self._context()
        from .footprint import expand_private_arrays
        self.layouts = expand_private_arrays(self)
        for sm in self.stmts.values():
            self._accesses(sm)
        self.time = self._time_map()
        self.reference = self._reference_map()

    # -- spaces and domains ----------------------------------------------------------
    def _statement(self, stmt: Statement, path, positions) -> StmtModel:
        outer = tuple(loop for loop in path if loop.stage != stmt.stage)
        assert path[:len(outer)] == outer, f"{stmt.name}: own loops must be innermost"
        taken: set[str] = set()
        names = [f"o_{loop.stage}_{loop.var.name}" for loop in outer] + [
            unique_name(d.name, taken) for d in stmt.dims]
        space = set_space(self.ctx, stmt.name, names, self.param_names)
        dims = {id(d): len(outer) + k for k, d in enumerate(stmt.dims)}
        build = AffineBuilder(space, dims, self.param_pos)
        domain = isl.Set.universe(space)
        for d in stmt.dims:
            try:
                v, lo, ext = build(d), build(d.start), build(d.extent)
            except NonAffine:
                raise TdslValueError(
                    f"the range of axis {d.name} of {stmt.stage} ({d.start} <= {d.name} < "
                    f"{d.start} + {d.extent}) must be affine in the sizes") from None
            domain = domain.intersect(v.ge_set(lo)).intersect(v.lt_set(lo.add(ext)))
        guard = None
        if stmt.where is not None:
            # Each affine conjunct narrows the domain; the others are tested in the loop
            # body, where the affine ones then hold (rfactor's `k < extent and A[i, k] > 0`
            # must not read A before the bound is known to hold).
            rest = []
            for cond in conjuncts(stmt.where):
                try:
                    domain = domain.intersect(build.condition(cond))
                except NonAffine:
                    rest.append(cond)
            guard = all_of(*rest) if rest else None
        return StmtModel(stmt, path, outer, positions, space, build, domain, guard)

    def _context(self) -> isl.Set:
        """Every size at least 1, every array dimension at least 1, and the sizes
        known at build time."""
        space = isl.Space.create_from_names(self.ctx, set=[], params=self.param_names)
        ctx = isl.Set.universe(space)
        build = AffineBuilder(space, {}, self.param_pos)
        one = build.const(1)
        for p in self.params:
            ctx = ctx.intersect(build(p).ge_set(one))
        for arr in self.program.arrays:
            for d in arr.shape:
                try:
                    ctx = ctx.intersect(build(d).ge_set(one))
                except NonAffine:
                    pass
        for name, value in self.program.context.items():
            if name in self.param_names:
                p = self.params[self.param_names.index(name)]
                ctx = ctx.intersect(build(p).eq_set(build.const(value)))
        return ctx.params()

    def domain(self, name: str) -> isl.Set:
        return self.stmts[name].domain

    # -- values of loops -----------------------------------------------------------
    def loop_value(self, sm: StmtModel, loop: Loop) -> isl.PwAff:
        """The value of `loop` at each instance of the statement (an o dim, or the
        loop's own value expression for statements of its stage, relative to the start
        of the region when the stage is computed at another stage's loop)."""
        for k, o in enumerate(sm.outer):
            if o is loop:
                aff = isl.Aff.var_on_domain(sm.build.local, isl.dim_type.set, k)
                return isl.PwAff.from_aff(aff)
        value = sm.build(loop.values[sm.name])
        rebase = self._rebase.get(sm.name)
        return value if rebase is None else value.pullback_pw_multi_aff(rebase)

    def rebase_at_region(self, sm: StmtModel, layout) -> None:
        """Make the own loops of `sm`, a statement computing a private region, run from
        the region's start: a data axis x that indexes the region's dim d is seen by its
        loops as x - offset_d(o). Splits then start at the region's edge (TVM and
        Halide do the same), so a tile-local stage's loops run from 0 with constant trip
        counts, instead of from a modulo of the consumer's (fused) loop."""
        n_o = len(sm.outer)
        if n_o == 0:
            return
        to_o = isl.PwMultiAff.from_map(_map_from_affs(
            isl.Set.universe(sm.space), [isl.PwAff.from_aff(isl.Aff.var_on_domain(
                sm.build.local, isl.dim_type.set, k)) for k in range(n_o)], None))
        shifted, dims_of = {}, {}
        for d, index in enumerate(sm.stmt.index):
            k = next((n for n, dim in enumerate(sm.stmt.dims) if dim is index), None)
            if k is None or (n_o + k) in shifted:
                continue
            offset = layout.offset_affs[d].pullback_pw_multi_aff(to_o)
            shifted[n_o + k] = offset
            dims_of[k] = d
        if not shifted:
            return
        self.rebased[sm.name] = (layout, dims_of)
        affs = []
        for k in range(sm.space.dim(isl.dim_type.set)):
            x = isl.PwAff.from_aff(isl.Aff.var_on_domain(sm.build.local, isl.dim_type.set, k))
            affs.append(x.sub(shifted[k]) if k in shifted else x)
        rebase = isl.PwMultiAff.from_map(_map_from_affs(isl.Set.universe(sm.space), affs,
                                                        sm.name))
        self._rebase[sm.name] = rebase

    def path_values(self, sm: StmtModel, loop: Loop) -> list[isl.PwAff]:
        """Values of `loop` and every loop enclosing it, outermost first."""
        return [self.loop_value(sm, l) for l in (*self.loop_paths[id(loop)], loop)]

    # -- accesses ------------------------------------------------------------------
    def _accesses(self, sm: StmtModel) -> None:
        stmt = sm.stmt
        sm.writes = [self.access(sm, stmt.target, stmt.index, ())]
        for load, conds in _guarded_loads(stmt):
            array = self.program.array_of[id(load.tensor.op)]
            sm.reads.append(self.access(sm, array, load.indices, conds, load))

    def raw_access(self, sm: StmtModel, array: Array, indices, conds):
        """(relation to the array's own coordinates, exact?, guard exact?) of one access."""
        domain = sm.domain
        exact_guard = True
        for cond in conds:
            try:
                domain = domain.intersect(sm.build.condition(cond))
            except NonAffine:
                exact_guard = False
        try:
            affs = [sm.build(i) for i in indices]
            return _map_from_affs(domain, affs, array.name), True, exact_guard
        except NonAffine:
            return isl.Map.from_domain_and_range(domain, self.box(array)), False, exact_guard

    def access(self, sm: StmtModel, array: Array, indices, conds, load=None) -> Access:
        """The relation `stmt -> array` of one access, expanded to private storage."""
        relation, exact, exact_guard = self.raw_access(sm, array, indices, conds)
        relation = relation.intersect_params(self.context)
        in_bounds = exact and relation.range().is_subset(self.box(array))
        if exact and exact_guard and not in_bounds:
            self._out_of_bounds(sm, array, indices, relation)
        # Index functions over the whole domain (a guarded load's relation covers only
        # where its select chooses it, but its index is computed at every instance).
        index = [sm.build(i).intersect_domain(sm.domain) for i in indices] if exact else None
        attach = self.program.attach.get(array.name)
        if attach is not None:
            prefix = self.path_values(sm, attach)
            domain = relation.domain()
            to_o = _map_from_affs(domain, prefix, None)
            if index is not None:
                o_of = isl.PwMultiAff.from_map(to_o)
                offsets = self.layouts[array.name].offset_affs
                index = [x.sub(off.pullback_pw_multi_aff(o_of)) for x, off in zip(index, offsets)]
            relation = to_o.flat_range_product(relation)
            relation = relation.set_tuple_name(isl.dim_type.out, array.name)
        return Access(array, tuple(indices), relation, exact, in_bounds, load, index)

    def box(self, array: Array) -> isl.Set:
        """`{ array[x] : 0 <= x_d < shape_d }` (built once per array)."""
        if array.name not in self._boxes:
            self._boxes[array.name] = self._box(array)
        return self._boxes[array.name]

    def _box(self, array: Array) -> isl.Set:
        space = set_space(self.ctx, array.name, [f"x{d}" for d in range(len(array.shape))],
                          self.param_names)
        build = AffineBuilder(space, {}, self.param_pos)
        box = isl.Set.universe(space)
        zero = build.const(0)
        for d, extent in enumerate(array.shape):
            x = isl.PwAff.from_aff(isl.Aff.var_on_domain(build.local, isl.dim_type.set, d))
            box = box.intersect(x.ge_set(zero)).intersect(x.lt_set(build(extent)))
        return box.intersect_params(self.context)

    def _out_of_bounds(self, sm, array, indices, relation) -> None:
        from .witness import describe_instance, smallest_point
        from ..errors import TdslIndexError
        outside = relation.intersect_range(
            isl.Set.universe(relation.get_space().range()).subtract(self.box(array)))
        outside = outside.intersect_params(self.context)
        if outside.is_empty():
            return
        point = smallest_point(outside.wrap(), self.param_names)
        where = describe_instance(self, sm, point.instance(0, sm.space.dim(isl.dim_type.set)))
        element = point.coords[sm.space.dim(isl.dim_type.set):]
        sizes = ", ".join(f"{k}={v}" for k, v in point.params.items())
        raise TdslIndexError(
            f"{sm.stmt.stage} reads or writes {array.name} out of bounds: {where} accesses "
            f"{array.name}[{', '.join(map(str, element))}] (index "
            f"[{', '.join(str(i) for i in indices)}]) but {array.name} has shape "
            f"({', '.join(str(s) for s in array.shape)})" + (f" when {sizes}" if sizes else "")
            + ". Guard the read with td.select(...) or pad the input in its own stage")

    # -- the reference order and the scheduled order -----------------------------------
    def _reference_map(self) -> isl.UnionMap:
        rows = {}
        for sm in self.stmts.values():
            ref = list(sm.stmt.ref_order)
            affs = [sm.build.const(ref[0])]
            affs += [isl.PwAff.from_aff(isl.Aff.var_on_domain(sm.build.local, isl.dim_type.set,
                                                             k)) for k in range(len(sm.outer))]
            affs += [sm.build.const(r) if isinstance(r, int) else sm.build(r) for r in ref[1:]]
            rows[sm.name] = affs
        return self._padded_union(rows, "R")

    def _time_map(self) -> isl.UnionMap:
        rows = {}
        for sm in self.stmts.values():
            affs = []
            for pos, loop in zip(sm.positions, sm.path):
                affs += [sm.build.const(pos), self.loop_value(sm, loop)]
            affs.append(sm.build.const(sm.positions[-1]))
            rows[sm.name] = affs
        return self._padded_union(rows, "T")

    def _padded_union(self, rows: dict[str, list], name: str) -> isl.UnionMap:
        width = max(len(r) for r in rows.values())
        result = None
        for sname, affs in rows.items():
            sm = self.stmts[sname]
            affs = affs + [sm.build.const(0)] * (width - len(affs))
            m = isl.UnionMap.from_map(_map_from_affs(sm.domain, affs, name))
            result = m if result is None else result.union(m)
        return result

    def time_dim_of(self, loop: Loop) -> int:
        """The position of `loop`'s value in the time vectors."""
        return 2 * len(self.loop_paths[id(loop)]) + 1

    def statements_under(self, loop: Loop) -> list[StmtModel]:
        return [sm for sm in self.stmts.values() if any(l is loop for l in sm.path)]


# ---------------------------------------------------------------------------------------

def maps_of(umap: isl.UnionMap) -> list[isl.Map]:
    """The maps of a union map, one per pair of spaces."""
    maps = umap.get_map_list()
    return [maps.get_at(k) for k in range(maps.n_map())]


def _map_from_affs(domain: isl.Set, affs: list, out_name: str | None) -> isl.Map:
    """`{ domain -> out_name[affs...] }` restricted to `domain`."""
    if not affs:
        target = isl.Set.universe(isl.Space.set_alloc(domain.get_ctx(), 0, 0))
        if out_name:
            target = target.set_tuple_name(out_name)
        m = isl.Map.from_domain_and_range(isl.Set.universe(domain.get_space()), target)
        return m.align_params(domain.get_space()).intersect_domain(domain)
    m = isl.Map.from_pw_aff(affs[0])
    for pa in affs[1:]:
        m = m.flat_range_product(isl.Map.from_pw_aff(pa))
    if out_name:
        m = m.set_tuple_name(isl.dim_type.out, out_name)
    return m.intersect_domain(domain)


def _positions(nodes, path=(), prefix=()):
    """(statement, enclosing loops, sibling positions) in program order."""
    for pos, node in enumerate(nodes):
        if isinstance(node, Statement):
            yield node, path, prefix + (pos,)
        else:
            yield from _positions(node.body, path + (node,), prefix + (pos,))


def _collect_params(program: Program) -> list[Var]:
    found: dict[str, Var] = {p.name: p for p in program.params}
    exprs: list[Expr] = []
    for arr in program.arrays:
        exprs.extend(arr.shape)
    for stmt, _ in walk_statements(program.body):
        for d in stmt.dims:
            exprs += [d.start, d.extent]
        exprs += [*stmt.index, stmt.value] + ([stmt.where] if stmt.where is not None else [])
    for e in exprs:
        for v in free_vars(e):
            if isinstance(v, Var) and not isinstance(v, IterVar):
                other = found.setdefault(v.name, v)
                if other is not v:
                    raise TdslValueError(
                        f"two different size variables are both named {v.name!r}; create each "
                        "size once with td.var and reuse it")
    return list(found.values())


def _guarded_loads(stmt: Statement):
    """Every load of the statement with the conditions under which it executes
    (the branch conditions of the selects around it, and the statement's `where`)."""
    out = []
    base = (stmt.where,) if stmt.where is not None else ()

    def visit(e: Expr, conds: tuple) -> None:
        if isinstance(e, Select):
            visit(e.cond, conds)
            visit(e.true_value, conds + (e.cond,))
            visit(e.false_value, conds + (UnaryOp("invert", e.cond, "bool"),))
            return
        if isinstance(e, Load):
            out.append((e, conds))
            for i in e.indices:
                visit(i, conds)
            return
        for c in children(e):
            visit(c, conds)

    visit(stmt.value, base)
    for i in stmt.index:
        visit(i, ())
    if stmt.where is not None:
        visit(stmt.where, ())
    return out

