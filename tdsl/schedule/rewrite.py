"""Primitives that rewrite the operation graph: cache_read, cache_write, rfactor.

Each returns the new schedule data (not yet checked), the tensor the user gets
back, and the call as the user wrote it. Rewritten stages keep their axis
objects, so the user's handles to `C.op.axis` stay valid.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ScheduleError
from ..lang.expr import Const, IterVar, Load, Reduce, all_of, binary
from ..lang.graph import storage_root
from ..lang.names import unique_name
from ..lang.tensor import ComputeOp, PlaceholderOp, Tensor, UpdateOp
from ..lang.visit import substitute, transform
from .state import Split, derived_from, initial_state

SCOPES = ("global", "local", "shared")


def _scope(scope: str, call: str) -> str:
    if scope not in SCOPES:
        raise ScheduleError(f"{call}: scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    return scope


def _tensor(sched, tensor, call: str):
    if not isinstance(tensor, Tensor):
        raise ScheduleError(f"{call}: expected a tensor; got {tensor!r}")
    return tensor


def cache_read(sched, tensor: Tensor, scope: str, readers):
    call = f"s.cache_read({getattr(tensor, 'name', tensor)}, {scope!r}, [" + ", ".join(
        getattr(r, "name", str(r)) for r in (readers if isinstance(readers, (list, tuple))
                                             else [readers])) + "])"
    _tensor(sched, tensor, call)
    _scope(scope, call)
    data = sched.data
    readers = readers if isinstance(readers, (list, tuple)) else [readers]
    if not readers:
        raise ScheduleError(f"{call}: give the stages that should read the copy")
    source_ops = {id(op) for op in _versions(data, tensor)}
    reader_keys = []
    for r in readers:
        key = data.key_of(r.op if isinstance(r, Tensor) else getattr(r, "op", r))
        if key is None:
            raise ScheduleError(f"{call}: {getattr(r, 'name', r)} is not a stage of this schedule")
        reader = data.states[key].op
        if not any(id(t.op) in source_ops for t in reader.input_tensors):
            raise ScheduleError(f"{call}: {reader.name} does not read "
                                f"{tensor.name}")
        if id(reader) in source_ops:
            raise ScheduleError(
                f"{call} is illegal: {reader.name} updates {tensor.name} itself (a recurrence "
                f"reads the values it has just written), so a copy made before it would hold "
                f"stale values. Cache the reads of a stage that runs after the update, or "
                f"cache the inputs of {reader.name} instead")
        reader_keys.append(key)
    axes = tuple(IterVar(f"ax{d}", _zero(), extent, "data") for d, extent in
                 enumerate(tensor.shape))
    copy = ComputeOp(_fresh_name(data, f"{tensor.name}_{scope}"), axes,
                     Load(tensor, axes))

    def redirect(node):
        if isinstance(node, Load) and id(node.tensor.op) in source_ops:
            return Load(copy.output(0), node.indices)
        return None

    first = min(data.order.index(k) for k in reader_keys)
    new = data.with_stage(copy, replace(initial_state(copy), scope=scope),
                          before=data.order[first])
    for key in reader_keys:
        state = new.states[key]
        new = new.with_state(key, replace(state, op=_rewrite_op(state.op, redirect)))
    return new, copy.output(0), call


def cache_write(sched, tensor: Tensor, scope: str):
    call = f"s.cache_write({getattr(tensor, 'name', tensor)}, {scope!r})"
    _tensor(sched, tensor, call)
    _scope(scope, call)
    data = sched.data
    key = data.key_of(tensor.op)
    if key is None or isinstance(tensor.op, PlaceholderOp):
        raise ScheduleError(f"{call}: {tensor.name} is not computed by this schedule")
    state = data.states[key]
    op = state.op
    if not isinstance(op, ComputeOp):
        raise ScheduleError(f"{call}: {tensor.name} is an update definition; cache its base")
    natural = op.axis + op.reduce_axis
    # compare loops by identity: `==` on IterVars builds an expression
    if state.relations or state.kinds or len(state.leaves) != len(natural) or any(
            a is not b for a, b in zip(state.leaves, natural)):
        raise ScheduleError(f"{call}: call cache_write before transforming {tensor.name}'s "
                            "loops (the cached stage takes over its computation)")
    axes = tuple(IterVar(f"{a.name}_c", a.start, a.extent, "data") for a in op.axis)
    local = ComputeOp(_fresh_name(data, f"{op.name}_{scope}"), axes,
                      substitute(op.body, dict(zip(op.axis, axes))))
    copy = ComputeOp(op.name, op.axis, Load(local.output(0), op.axis))
    new = data.with_stage(local, replace(initial_state(local), scope=scope),
                          before=key)
    new = new.with_state(key, replace(state, op=copy, leaves=copy.axis))
    return new, local.output(0), call


def rfactor(sched, tensor: Tensor, axis: IterVar, factor_axis: int = 0):
    call = f"s.rfactor({getattr(tensor, 'name', tensor)}, {getattr(axis, 'name', axis)})"
    _tensor(sched, tensor, call)
    data = sched.data
    key = data.key_of(tensor.op)
    if key is None:
        raise ScheduleError(f"{call}: {tensor.name} is not computed by this schedule")
    state = data.states[key]
    op = state.op
    if not isinstance(op, ComputeOp) or not isinstance(op.body, Reduce):
        raise ScheduleError(f"{call}: {tensor.name} is not a reduction")
    if not any(leaf is axis for leaf in state.leaves):
        raise ScheduleError(f"{call}: {getattr(axis, 'name', axis)} is not a loop of "
                            f"{tensor.name} ({', '.join(v.name for v in state.leaves)})")
    roots = derived_from(state)[axis]
    if len(roots) != 1 or next(iter(roots)).kind != "reduce":
        raise ScheduleError(f"{call}: {axis.name} must be a reduction loop (a reduction axis "
                            "or a piece of one made by split)")
    if not 0 <= factor_axis <= len(op.axis):
        raise ScheduleError(f"{call}: factor_axis must be in 0..{len(op.axis)}")
    (k,) = roots
    pieces = [leaf for leaf in state.leaves if derived_from(state)[leaf] == roots]
    expr, split_bounds = _recompose(state, k)
    if expr is None:
        raise ScheduleError(f"{call}: the loops of {k.name} were fused with other loops; "
                            f"rfactor needs {k.name} to be only split")
    body = op.body
    # The new data axis starts at 0 (storage is indexed from 0); `axis` itself may not
    # (`reduce_axis((1, m))` unsplit), so its value is `factored + start`.
    # A symbolic extent may be negative at some sizes (`reduce_axis((2, m))` at m = 1):
    # the reduction is then empty, and so must be the buffer of partial results.
    extent = axis.extent if isinstance(axis.extent, Const) else binary("max", axis.extent, 0)
    factored = IterVar(axis.name, _zero(), extent, "data")
    axis_value = factored if _is_zero(axis.start) else factored + axis.start
    kept = {leaf: IterVar(leaf.name, leaf.start, leaf.extent, "reduce") for leaf in pieces
            if leaf is not axis}
    k_value = substitute(expr, {axis: axis_value, **kept})
    data_axes = tuple(IterVar(a.name, a.start, a.extent, "data") for a in op.axis)
    rename = {**dict(zip(op.axis, data_axes)), k: k_value}
    where = [substitute(value, {axis: axis_value, **kept}) < iv.start + iv.extent
             for value, iv in split_bounds]
    if body.where is not None:      # after the bounds: it may read at k (C's && order)
        where.append(substitute(body.where, rename))
    other = tuple(a for a in body.axes if a is not k)
    axes_rf = data_axes[:factor_axis] + (factored,) + data_axes[factor_axis:]
    inner = substitute(body.body, rename)
    reduce_axes = tuple(kept.values()) + other
    cond = all_of(*where) if where else None
    if reduce_axes:
        rf_body = Reduce(body.reducer, inner, reduce_axes, cond)
    elif cond is not None:
        from ..lang.expr import select
        rf_body = select(cond, inner, body.reducer.identity(body.dtype))
    else:
        rf_body = inner
    rf = ComputeOp(_fresh_name(data, f"{op.name}_rf"), axes_rf, rf_body)
    r = IterVar(f"{axis.name}_r", _zero(), extent, "reduce")
    index = op.axis[:factor_axis] + (r,) + op.axis[factor_axis:]
    final = ComputeOp(op.name, op.axis, Reduce(body.reducer, Load(rf.output(0), index), (r,)))
    new = data.with_stage(rf, initial_state(rf), before=key)
    new = new.with_state(key, replace(initial_state(final), attach=state.attach))
    return new, rf.output(0), call


def _recompose(state, k: IterVar):
    """`k` as an expression of its leaves (inverting the splits), and the bounds that
    inverting loses: a split of an axis whose extent its factor does not divide makes
    `outer * f + inner` overshoot, so each split axis adds `value < start + extent`.
    None if `k` was fused with another axis."""
    bounds = []

    def expr_of(iv):
        for rel in state.relations:
            if isinstance(rel, Split) and rel.parent is iv:
                outer, inner = expr_of(rel.outer), expr_of(rel.inner)
                if outer is None or inner is None:
                    return None
                value = iv.start + outer * rel.factor + inner
                bounds.append((value, iv))
                return value
        if any(leaf is iv for leaf in state.leaves):
            return iv
        return None

    expr = expr_of(k)
    return (expr, bounds) if expr is not None else (None, [])


def _rewrite_op(op, fn):
    if isinstance(op, ComputeOp):
        return ComputeOp(op.name, op.axis, transform(op.body, fn))
    if isinstance(op, UpdateOp):
        return UpdateOp(op.name, op.base, op.axis, op.reduce_axis,
                        tuple(transform(i, fn) for i in op.index), transform(op.value, fn))
    return op


def _versions(data, tensor: Tensor) -> list:
    """Every op whose storage is `tensor`'s (the tensor, its stage's ops, its updates)."""
    root = storage_root(tensor)
    ops = [tensor.op, root.op]
    key = data.key_of(root.op)
    if key is not None:
        ops += data.ops_of(key)
    for k in data.order:
        op = data.states[k].op
        # by stage key: an earlier rewrite (cache_read of an input) gives the base stage a
        # new op, while the update still names the old one as its base
        base = storage_root(op.output(0)).op if isinstance(op, UpdateOp) else None
        if base is not None and (base is root.op or (key is not None and
                                                     data.key_of(base) is key)):
            ops += data.ops_of(k)
    return ops


def _fresh_name(data, name: str) -> str:
    taken = {data.states[k].op.name for k in data.order} | {p.name for p in data.placeholders}
    return unique_name(name, taken)


def _is_zero(e) -> bool:
    return isinstance(e, Const) and e.value == 0


def _zero():
    from ..lang import dtypes
    from ..lang.expr import Const
    return Const(0, dtypes.INDEX)
