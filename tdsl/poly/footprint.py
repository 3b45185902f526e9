"""compute_at with recomputation: the region a producer must compute per iteration.

A stage computed inside loop L of a consumer gets, as leading dims, the values
of L and the loops around it ("o"). For each o, it computes exactly the
elements read by the statements inside that iteration of L (Halide semantics:
overlapping tiles recompute their halo), into storage private to the iteration,
sized by isl from that region: constant when the tiles are.
"""

from __future__ import annotations

from dataclasses import dataclass

import islpy as isl

from ..errors import ScheduleError
from ..lang import dtypes
from ..lang.expr import Const, Expr
from .ast_expr import from_pw_aff
from .bounds import max_over_domain, max_val


@dataclass(frozen=True)
class Layout:
    """Where one iteration's private region lives: element x is at x - offset."""

    offset: tuple[Expr, ...]          # in the enclosing loops' axes
    shape: tuple[Expr, ...]           # constants when the tile sizes are constant
    footprint: isl.Map                # o -> x, for teaching and tests
    offset_affs: tuple                # the offsets as isl PwAffs of o


def expand_private_arrays(model) -> dict[str, Layout]:
    """Narrow the domains of compute_at statements to their footprints; return the
    layout of each private array."""
    from .model import _guarded_loads, _map_from_affs
    program = model.program
    private = [a for a in program.arrays if a.name in program.attach]
    writers = {a.name: [sm for sm in model.stmts.values() if sm.stmt.target is a]
               for a in private}
    # Consumers first: a producer's region depends on its readers' (already narrowed) domains.
    private.sort(key=lambda a: -min(sm.stmt.ref_order[0] for sm in writers[a.name]))
    layouts = {}
    for array in private:
        loop = program.attach[array.name]
        inside = {sm.name for sm in model.statements_under(loop)}
        footprint = None
        for reader in model.stmts.values():
            if reader.stmt.target is array:
                continue
            for load, conds in _guarded_loads(reader.stmt):
                if program.array_of[id(load.tensor.op)] is not array:
                    continue
                if reader.name not in inside:
                    producer, consumer = writers[array.name][0].stmt.stage, reader.stmt.stage
                    raise ScheduleError(
                        f"{producer} would be computed inside loop {loop.var.name} of "
                        f"{loop.stage}, but {consumer} also reads it, outside that loop. Move "
                        f"the consumer in first (consumers before producers), e.g. "
                        f"s[{consumer}].compute_at(s[{loop.stage}], {loop.var.name}), or keep "
                        f"{producer} at the root")
                relation, _, _ = model.raw_access(reader, array, load.indices, conds)
                relation = relation.reset_tuple_id(isl.dim_type.out)
                to_o = _map_from_affs(reader.domain, model.path_values(reader, loop), None)
                piece = to_o.reverse().apply_range(relation)
                footprint = piece if footprint is None else footprint.union(piece)
        if footprint is None:
            stage = writers[array.name][0].stmt.stage
            raise ScheduleError(f"{stage} is computed inside loop {loop.var.name} of "
                                f"{loop.stage}, but nothing in that loop reads {stage}")
        footprint = footprint.coalesce()
        region = footprint.wrap().flatten()
        for w in writers[array.name]:
            n_o = len(w.outer)
            o_affs = [isl.PwAff.from_aff(isl.Aff.var_on_domain(w.build.local, isl.dim_type.set, k))
                      for k in range(n_o)]
            to_region = _map_from_affs(w.domain, o_affs + [w.build(i) for i in w.stmt.index],
                                       None)
            w.domain = to_region.intersect_range(region).domain().coalesce()
        layouts[array.name] = _layout(model, loop, footprint, array.shape)
        for w in writers[array.name]:
            model.rebase_at_region(w, layouts[array.name])
    return layouts


def _layout(model, loop, footprint: isl.Map, array_shape) -> Layout:
    path = (*model.loop_paths[id(loop)], loop)
    ids = {f"__in{k}": l.var for k, l in enumerate(path)}
    ids.update({p.name: p for p in model.params})
    offset, shape, affs = [], [], []
    if footprint.is_empty():
        # Nothing is read (a `where=` that leaves nothing to reduce): one element, never
        # touched, and no isl expression of an empty function (isl calls that "void").
        zero = isl.PwAff.from_aff(isl.Aff.zero_on_domain(
            isl.LocalSpace.from_space(footprint.get_space().domain())))
        n = footprint.dim(isl.dim_type.out)
        one = Const(1, dtypes.INDEX)
        return Layout((Const(0, dtypes.INDEX),) * n, (one,) * n, footprint, (zero,) * n)
    for d in range(footprint.dim(isl.dim_type.out)):
        lo, hi = footprint.dim_min(d), footprint.dim_max(d)
        affs.append(lo)
        offset.append(from_pw_aff(lo, ids))
        extent = hi.sub(lo).add_constant_val(isl.Val.one(model.ctx))
        # `extent.max_val()` refuses quasi-affine extents (fused, then split loops);
        # bounds.max_val asks isl about the extent's graph instead.
        biggest = max_val(extent)
        over_params = None if biggest.is_int() else max_over_domain(extent)
        if biggest.is_int():
            shape.append(Const(int(biggest.to_python()), dtypes.INDEX))
        elif over_params is not None:
            # at least 1: at sizes where nothing is read (an empty reduction range) the
            # extent is undefined or negative, and the buffer must still be allocatable
            one = isl.PwAff.from_aff(isl.Aff.zero_on_domain(isl.LocalSpace.from_space(
                over_params.get_domain_space())).set_constant_val(isl.Val.one(model.ctx)))
            shape.append(from_pw_aff(over_params.union_max(one), ids, model.context))
        else:
            # No bound from isl: the whole producer array is always enough.
            shape.append(array_shape[d])
    return Layout(tuple(offset), tuple(shape), footprint, tuple(affs))
