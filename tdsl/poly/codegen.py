"""From the model to an isl AST: a schedule tree with bands, marks and isolation.

One single-member band per loop (its value for every statement below it), a
sequence node wherever a loop body holds several children, a mark above each
band naming our loop (its kind and name reach the emitter through it), and a
mark below a band where a private buffer is allocated. Each band whose range
has both full and partial tiles gets isl's `isolate` option, so full tiles get
loops with constant trip counts and no guards (ISL_NOTES §4).
"""

from __future__ import annotations

import islpy as isl

from . import coverage
from .bounds import max_val, operation_budget
from .model import Model, _map_from_affs, maps_of
from .program import Loop, Statement, loops


ISOLATED_KINDS = ("vectorize", "unroll")


class Marks:
    """The registry of mark ids (`loop<k>` -> Loop, `alloc<k>` -> arrays) and of the
    index expressions isl derived at each statement instance (`user<k>`)."""

    def __init__(self):
        self.loops: dict[str, Loop] = {}
        self.allocs: dict[str, list] = {}
        self.indices: dict[str, dict[int, list[isl.AstExpr]]] = {}
        self.versions: dict[int, isl.Map] = {}     # id(loop) -> its full iterations
        self.executed: dict[str, isl.Set] = {}      # statement -> instances its leaves run

    def loop(self, loop: Loop) -> isl.Id:
        key = f"loop{len(self.loops)}"
        self.loops[key] = loop
        return isl.Id(key)

    def alloc(self, arrays) -> isl.Id:
        key = f"alloc{len(self.allocs)}"
        self.allocs[key] = list(arrays)
        return isl.Id(key)


def generate_ast(model: Model, isolate: bool = True) -> tuple[isl.AstNode, Marks]:
    """The isl AST of the scheduled program, and the marks it carries; checked to run
    every instance (coverage.py: isl can drop some; one retry, then a lesson)."""
    ast, marks = _generate(model, isolate)
    missing = coverage.lost(model, marks.executed)
    if missing:
        for name in missing:
            sm = model.stmts[name]
            sm.domain = coverage.partitioned(sm.domain, len(sm.outer))
        ast, marks = _generate(model, isolate)
        missing = coverage.lost(model, marks.executed)
        if missing:
            raise coverage.refuse(missing)
    return ast, marks


def _generate(model: Model, isolate: bool) -> tuple[isl.AstNode, Marks]:
    marks = Marks()
    requests = _isolation_requests(model) if isolate else {}
    # Fullness that is periodic in a loop (a fused loop over tiles: `f % 22 != 21`) is
    # not a range isl's isolate can split off; those loops get two versions of their body
    # instead (a sequence of two filters), each with its own private buffers.
    marks.versions = {key: full for key, full in requests.items() if _periodic(full)}
    requests = {key: full for key, full in requests.items() if key not in marks.versions}
    schedule = _sequence(model, model.program.body, marks) or _nothing(model)
    if requests:
        # Options make a band depend on the bands above it ("anchored"), so they are set
        # once the whole tree exists.
        schedule = _isolate_all(model, schedule.get_root(), marks, requests).get_schedule()
    build = isl.AstBuild.from_context(model.context)
    build, handle = build.set_at_each_domain(lambda node, b: _index_exprs(model, marks, node, b))
    ast = build.node_from_schedule(schedule)
    del handle
    return ast, marks


def _index_exprs(model: Model, marks: Marks, node: isl.AstNode,
                 build: isl.AstBuild) -> isl.AstNode:
    """Every exact access of the statement at `node`, as expressions of the loop
    iterators, simplified by isl in the context of the loops around (PPCG does the
    same): `Bp[j // 32, ...]` inside a tile of 32 becomes `Bp[j_outer, ...]`."""
    name = node.user_get_expr().get_op_arg(0).get_id().get_name()
    sm = model.stmts[name]
    exprs = {}
    try:
        schedule = maps_of(build.get_schedule())[0]
        ran = schedule.domain()
    except isl.Error:               # no record: coverage.lost cannot judge this statement
        schedule, ran = None, sm.domain
    marks.executed[name] = ran if name not in marks.executed else \
        marks.executed[name].union(ran)
    try:
        if schedule is None:
            raise isl.Error("no schedule at this leaf")
        to_domain = isl.PwMultiAff.from_map(schedule.reverse())
        for k, acc in enumerate(sm.writes + sm.reads):
            if acc.index is not None:
                exprs[k] = [build.expr_from_pw_aff(pa.pullback_pw_multi_aff(to_domain))
                            for pa in acc.index]
    except isl.Error:
        # An exception must not cross isl's C frames; without isl's expressions the
        # statement's own index expressions are used (correct, only less simplified).
        exprs = {}
    key = f"user{len(marks.indices)}"
    marks.indices[key] = exprs
    return node.set_annotation(isl.Id(key))


def tree_of(model: Model) -> isl.Schedule:
    """The schedule tree of a model (bands, sequences and marks, without isolation)."""
    return _sequence(model, model.program.body, Marks()) or _nothing(model)


def _sequence(model: Model, nodes, marks: Marks) -> isl.Schedule | None:
    schedules = [_node(model, n, marks) for n in nodes]
    schedules = [s for s in schedules if s is not None]
    if not schedules:
        return None
    result = schedules[0]
    for s in schedules[1:]:
        result = result.sequence(s)
    return result


def _node(model: Model, node, marks: Marks) -> isl.Schedule | None:
    if isinstance(node, Statement):
        return isl.Schedule.from_domain(isl.UnionSet.from_set(model.stmts[node.name].domain))
    inner = _sequence(model, node.body, marks)
    if inner is None:
        return None
    values = None
    for sm in model.statements_under(node):
        piece = isl.UnionMap.from_map(_map_from_affs(sm.domain, [model.loop_value(sm, node)],
                                                     None))
        values = piece if values is None else values.union(piece)
    if values.is_empty():
        # Nothing runs in this loop (a `where=` that leaves nothing to reduce): no band,
        # since isl cannot take the space of an empty schedule.
        return None
    band = inner.insert_partial_schedule(isl.MultiUnionPwAff.from_union_map(values))
    band_node = band.get_root().child(0)
    if node.allocs:
        band_node = band_node.child(0).insert_mark(marks.alloc(node.allocs)).parent()
    full = marks.versions.get(id(node))
    if full is not None:
        band_node = _insert_versions(model, node, band_node, full)
    band_node = band_node.insert_mark(marks.loop(node))
    return band_node.get_schedule()


def _insert_versions(model: Model, loop: Loop, band_node: isl.ScheduleNode,
                     full: isl.Map) -> isl.ScheduleNode:
    """Below the band of `loop`, a sequence of two copies of its body: the iterations where
    `full` ([outer loops] -> [loop]) holds, then the others. isl guards each copy with its
    condition and simplifies the bounds inside with it, so the full copy gets constant
    trip counts; each copy allocates its own private buffers."""
    full_set = _one_piece(full.wrap().flatten().coalesce())
    chosen = partial = None
    for sm in model.statements_under(loop):
        to_prefix = _map_from_affs(sm.domain, model.path_values(sm, loop), None)
        inside = to_prefix.intersect_range(full_set.reset_tuple_id()).domain()
        outside = sm.domain.subtract(inside)
        inside, outside = isl.UnionSet.from_set(inside), isl.UnionSet.from_set(outside)
        chosen = inside if chosen is None else chosen.union(inside)
        partial = outside if partial is None else partial.union(outside)
    if chosen.is_empty() or partial.is_empty():
        return band_node
    filters = isl.UnionSetList.alloc(model.ctx, 2).add(chosen).add(partial)
    return band_node.child(0).insert_sequence(filters).parent()


def _one_piece(full: isl.Set) -> isl.Set:
    """`full` if isl describes it as one piece, else its largest piece.

    A union of pieces (fullness of a fused 4-deep tile loop comes out of isl as three)
    would make isl test each piece inside every loop of the full version, a branch chain
    in the innermost loop; one piece is one test outside. The other pieces of full
    iterations then run the general version: correct, only slower."""
    pieces = full.get_basic_sets()
    if len(pieces) <= 1:
        return full
    return isl.Set.from_basic_set(max(pieces, key=_points))


def _points(piece: isl.BasicSet, limit: int = 1 << 16) -> int:
    """The number of points of a bounded, parameter-free piece, `limit` for one whose
    bounding box holds more (counting those would cost more than the choice is worth);
    0 if it is unbounded or has parameters (then the first piece wins)."""
    if piece.dim(isl.dim_type.param) or not piece.is_bounded() or piece.is_empty():
        return 0
    whole = isl.Set.from_basic_set(piece)
    box = 1
    for d in range(whole.dim(isl.dim_type.set)):
        box *= whole.dim_max_val(d).to_python() - whole.dim_min_val(d).to_python() + 1
        if box > limit:
            return limit
    return whole.count_val().to_python()


def _periodic(full: isl.Map) -> bool:
    """Does the set of full prefixes need integer division to describe (a fused loop)?"""
    return any(b.dim(isl.dim_type.div) > 0 for b in full.wrap().get_basic_sets())


def _nothing(model: Model) -> isl.Schedule:
    """The schedule of a program none of whose statements runs."""
    space = isl.Space.params_alloc(model.ctx, 0).align_params(model.context.get_space())
    return isl.Schedule.from_domain(isl.UnionSet.empty(space))


def _isolate_all(model: Model, node: isl.ScheduleNode, marks: Marks,
                 requests: dict) -> isl.ScheduleNode:
    """Set the isolate options (see `_isolation_requests`) on the bands below loop marks,
    depth first; returns the node at the same position in the new tree."""
    if node.get_type() == isl.schedule_node_type.mark:
        loop = marks.loops.get(node.mark_get_id().get_name())
        if loop is not None and id(loop) in requests:
            option = isl.UnionSet.from_set(requests[id(loop)].wrap().set_tuple_name("isolate"))
            node = node.child(0).band_set_ast_build_options(option).parent()
    for k in range(node.n_children()):
        node = _isolate_all(model, node.child(k), marks, requests).parent()
    return node


# isl operations the fullness of one loop may take: a few milliseconds for most loops, up
# to ~20 s where the sets carry huge coefficients (one op is then bignum work). Separating full
# tiles only makes code faster, and for some loops of a tile-local stage under a fused
# loop (values like `j_c - floor(f/3) + 8 floor(f/24)`) isl's exact extent took hours:
# the gradient of the digits CNN's second convolution, auto-scheduled at batch 64.
ISOLATION_BUDGET = 200_000


def _isolation_requests(model: Model) -> dict[int, isl.Map]:
    """Where to separate full tiles, by loop: `{id(loop): [outer loops] -> [loop]}`.

    Constant trip counts matter where the emitter vectorizes or unrolls (isolating every
    band would double the code at each level). For such a loop, the prefixes where it
    runs its longest trip count are "full"; the split goes on the outermost loop the
    fullness depends on, not on the loop itself: with a matmul's k loop between a tile
    loop and its unrolled rows, the test `n >= 8 i_outer + 8` then lands outside k, and
    each version of the tile allocates its own accumulators, which gcc keeps in
    registers only when no version indexes them with a variable.
    """
    requests: dict[int, isl.Map] = {}
    wholly: dict[int, isl.Map] = {}      # _wholly_full's, where no loop asks for its own
    for loop, _ in loops(model.program.body):
        if loop.kind not in ISOLATED_KINDS:
            continue
        try:
            with operation_budget(model.ctx, ISOLATION_BUDGET):
                found = _full_prefixes(model, loop)
                if found is None:
                    continue
                full, prefixes = found
                depth = _deepest_dependency(full, prefixes)
        except isl.Error:
            continue        # no split: the loop keeps its general bounds (correct, slower)
        path = (*model.loop_paths[id(loop)], loop)
        # In a GPU kernel the split stays on the loop itself: a loop bound to blocks or
        # threads is one launch or one thread region, and the backend sizes per-thread
        # storage from `min` bounds, which an if/else around the loop would hide.
        gpu = any("Idx." in p.kind for p in path)
        target_depth = len(path) - 1 if gpu else depth
        outer = full.project_out(isl.dim_type.set, depth + 1, len(path) - 2 - depth)
        _request(requests, path, outer, depth, target_depth)
        if gpu:
            continue
        try:
            with operation_budget(model.ctx, ISOLATION_BUDGET):
                whole = _wholly_full(full, prefixes, depth)
        except isl.Error:
            whole = None
        if whole is not None:
            _request(wholly, path, whole[1], whole[0], whole[0])
    # A loop's own split wins over a wholly-full one on the same loop: intersected, a
    # transposing tile's rows `m >= 8 i_outer + 8` with its columns' `n % 8 == 0` (every
    # column tile full) would leave the full rows of a ragged n without constant bounds.
    return {**wholly, **requests}


def _request(requests: dict, path, outer: isl.Set, depth: int, target_depth: int) -> None:
    """Ask for the isolation of `outer` (a set over the values of path[0..depth]) on the
    band of path[target_depth]; two requests on one loop isolate their intersection."""
    outer = outer.add_dims(isl.dim_type.set, target_depth - depth)
    as_map = isl.Map.from_domain(outer).move_dims(isl.dim_type.out, 0, isl.dim_type.in_,
                                                   target_depth, 1)
    target = path[target_depth]
    if id(target) in requests:
        as_map = requests[id(target)].intersect(as_map)
    requests[id(target)] = as_map.coalesce()


def _wholly_full(full: isl.Set, prefixes: isl.Set, depth: int):
    """(e, the values of loops 0..e all of whose longer prefixes are full) for the
    outermost e above `depth` where some values are and some are not; None if none.
    The strips of a row whose first and last strips are partial only for some values of
    a loop inside (a convolution's rx, where the border pixels skip a padding's taps):
    isolating the strips inside gives them one version with constant bounds, and the
    border strips, each alone at its constant position, their own versions."""
    n = full.dim(isl.dim_type.set)
    partial = prefixes.subtract(full)
    for e in range(depth):
        rest = n - e - 1
        values = prefixes.project_out(isl.dim_type.set, e + 1, rest)
        whole = values.subtract(partial.project_out(isl.dim_type.set, e + 1, rest))
        if not whole.is_empty() and not whole.is_equal(values):
            return e, whole.coalesce()
    return None


def _full_prefixes(model: Model, loop: Loop):
    """(prefixes where `loop` runs its longest constant trip count, all its prefixes),
    as sets over the values of the loops around it; None if there is nothing to separate
    (no constant longest trip count, or every prefix is full)."""
    region = None
    for sm in model.statements_under(loop):
        piece = _map_from_affs(sm.domain, model.path_values(sm, loop), None).range()
        region = piece if region is None else region.union(piece)
    n = region.dim(isl.dim_type.set)
    if n < 2:
        return None
    # prefix -> loop value; its bounds are functions of the prefix (a compute_at tile
    # runs over [14 x_outer, 14 x_outer + 14), a split's inner loop over [0, 14))
    ranges = isl.Map.from_domain(region.coalesce()).move_dims(
        isl.dim_type.out, 0, isl.dim_type.in_, n - 1, 1)
    lo, hi = ranges.dim_min(0), ranges.dim_max(0)
    extent = hi.sub(lo).add_constant_val(isl.Val.one(model.ctx))
    longest = max_val(extent)          # extent.max_val() refuses quasi-affine extents
    if not longest.is_int():
        return None
    prefixes = ranges.domain()
    full = extent.eq_set(_const_like(extent, longest)).intersect(prefixes)
    if full.is_empty() or full.is_equal(prefixes):
        return None
    return full, prefixes


def _deepest_dependency(full: isl.Set, prefixes: isl.Set) -> int:
    """The smallest e such that whether a prefix is full depends only on dims 0..e."""
    n = full.dim(isl.dim_type.set)
    for e in range(n):
        rest = n - e - 1
        outer = full.project_out(isl.dim_type.set, e + 1, rest)
        if outer.add_dims(isl.dim_type.set, rest).intersect(prefixes).is_equal(full):
            return e
    return n - 1


def _const_like(pa: isl.PwAff, value: isl.Val) -> isl.PwAff:
    aff = isl.Aff.zero_on_domain(isl.LocalSpace.from_space(pa.get_domain_space()))
    return isl.PwAff.from_aff(aff.set_constant_val(value))
