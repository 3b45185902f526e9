"""`td.reference`: the algorithm evaluated by NumPy alone, with no schedule and no compiler.

It is the independent oracle of the tests and of `td.testing`. A compute is
evaluated on broadcast index grids (`i` is an `arange` along its own array
axis); a reduction adds one array axis per reduction axis and reduces them;
updates (recurrences) run their reduction domain point by point in order.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from ..errors import TdslIndexError, TdslTypeError, TdslValueError
from .expr import (BinOp, Call, Cast, Const, Expr, IterVar, Load, Reduce, Select, UnaryOp, Var,
                   _UFUNCS)
from .graph import as_tensor_list, storage_root, topo_order
from .shapes import bind_sizes, check_arrays
from .tensor import ComputeOp, PlaceholderOp, Tensor, UpdateOp
from .visit import walk

_CHUNK_ELEMENTS = 1 << 23        # bound the memory of one broadcast evaluation


def reference(outputs, inputs: dict, sizes: dict | None = None):
    """Evaluate `outputs` with NumPy from `inputs` ({placeholder: array}).

    Returns one array, or a list for a list of outputs. `sizes` may bind symbolic
    sizes that no input determines.

    >>> c = td.reference(C, {A: a, B: b})
    """
    outs = as_tensor_list(outputs, "td.reference's outputs")
    order = topo_order(outs)
    feeds = {}
    for key, value in inputs.items():
        if not isinstance(key, Tensor) or not isinstance(key.op, PlaceholderOp):
            raise TdslTypeError(f"td.reference's inputs are keyed by placeholders; got {key!r}")
        feeds[key] = value
    needed = [op.output(0) for op in order if isinstance(op, PlaceholderOp)]
    for t in needed:
        if t not in feeds:
            raise TdslValueError(f"td.reference needs a value for the placeholder {t.name}")
    arrays = check_arrays(needed, [feeds[t] for t in needed], contiguous=False)
    bound = bind_sizes(needed, arrays, {v: int(n) for v, n in (sizes or {}).items()})
    values: dict[int, np.ndarray] = {id(t.op): a for t, a in zip(needed, arrays)}
    for op in order:
        if isinstance(op, ComputeOp):
            values[id(op)] = _eval_compute(op, values, bound)
        elif isinstance(op, UpdateOp):
            values[id(op)] = _eval_update(op, values, bound)
    results = [values[id(t.op)] for t in outs]
    return results if isinstance(outputs, (list, tuple)) else results[0]


def evaluate_scalar(e: Expr, sizes: dict) -> object:
    """The value of an expression of symbolic sizes only."""
    return _Evaluator({}, sizes, {}).eval(e).item()


def _shape(op, sizes) -> tuple[int, ...]:
    return tuple(int(evaluate_scalar(d, sizes)) for d in op.shape)


class _Evaluator:
    """Evaluates expressions over broadcast NumPy arrays."""

    def __init__(self, env: dict[int, np.ndarray], sizes: dict, values: dict[int, np.ndarray],
                 mask: np.ndarray | None = None):
        self.env, self.sizes, self.values = env, sizes, values
        self.mask = mask        # where the expression being evaluated is actually used

    def eval(self, e: Expr) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self._eval(e)

    def _eval(self, e: Expr) -> np.ndarray:
        match e:
            case Const(value=v, dtype=dt):
                return np.array(v, dtype=dt)
            case Var():
                if e in self.sizes:
                    return np.array(self.sizes[e], dtype=e.dtype)
                if id(e) in self.env:
                    return self.env[id(e)]
                raise TdslValueError(f"the size {e.name} is not bound")
            case IterVar():
                return self.env[id(e)]
            case BinOp(op=op, a=a, b=b, dtype=dt):
                x, y = self._eval(a), self._eval(b)
                if op in ("floordiv", "mod") and np.dtype(a.dtype).kind in "iu":
                    # C and tdsl define integer division by zero as 0, as NumPy does.
                    safe = np.where(y == 0, np.ones_like(y), y)
                    return np.where(y == 0, np.zeros((), dt), _UFUNCS[op](x, safe)).astype(dt)
                return np.asarray(_UFUNCS[op](x, y)).astype(dt, copy=False)
            case UnaryOp(op="neg", value=v):
                return np.negative(self._eval(v))
            case UnaryOp(op="invert", value=v):
                return np.invert(self._eval(v))
            case Call(name=name, args=args, dtype=dt):
                return np.asarray(_INTRINSICS[name](*[self._eval(a) for a in args])).astype(dt)
            case Cast(dtype=dt, value=v):
                return self._eval(v).astype(dt)
            case Select(cond=c, true_value=t, false_value=f):
                # A select reads only the chosen side (padding: `select(i >= 1, A[i - 1], 0)`).
                cond = self._eval(c)
                outer = self.mask
                self.mask = cond if outer is None else (outer & cond)
                yes = self._eval(t)
                self.mask = ~cond if outer is None else (outer & ~cond)
                no = self._eval(f)
                self.mask = outer
                return np.where(cond, yes, no)
            case Load(tensor=t, indices=idx):
                return self._load(t, idx)
        raise TdslTypeError(f"cannot evaluate {e!r} here")

    def _load(self, t: Tensor, indices) -> np.ndarray:
        array = self.values[id(storage_root(t).op) if id(t.op) not in self.values else id(t.op)]
        idx = [self._eval(i).astype(np.int64) for i in indices]
        for d, i in enumerate(idx):
            outside = (i < 0) | (i >= array.shape[d])
            if self.mask is not None:
                outside = outside & self.mask
            if np.any(outside):
                bad = int(np.broadcast_to(i, outside.shape)[outside].flat[0])
                raise TdslIndexError(
                    f"{t.name} is read at index {bad} in dimension {d}, outside its size "
                    f"{array.shape[d]} (index expression `{indices[d]}`)")
            idx[d] = np.clip(i, 0, array.shape[d] - 1)     # unused lanes read a valid element
        return array[tuple(idx)]


_INTRINSICS = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "floor": np.floor, "ceil": np.ceil,
    "sin": np.sin, "cos": np.cos, "log2": np.log2, "exp2": np.exp2, "round": np.rint,
    "trunc": np.trunc, "power": np.power,
}


def _grid(axes: Sequence[IterVar], sizes, first=None) -> dict:
    """Each axis as an arange along its own array dimension (open grid)."""
    env = {}
    for d, ax in enumerate(axes):
        start = int(evaluate_scalar(ax.start, sizes))
        extent = int(evaluate_scalar(ax.extent, sizes))
        values = np.arange(start, start + extent, dtype=np.int64)
        if d == 0 and first is not None:
            values = values[first[0]:first[1]]
        shape = [1] * len(axes)
        shape[d] = values.size
        env[id(ax)] = values.reshape(shape)
    return env


def _eval_compute(op: ComputeOp, values, sizes) -> np.ndarray:
    shape = _shape(op, sizes)
    out = np.empty(shape, dtype=op.dtype)
    body = op.body
    raxes = body.axes if isinstance(body, Reduce) else ()
    r_extents = [max(0, int(evaluate_scalar(a.extent, sizes))) for a in raxes]  # empty if < 0
    per_row = int(np.prod(shape[1:], dtype=np.int64)) * int(np.prod(r_extents, dtype=np.int64))
    rows = max(1, _CHUNK_ELEMENTS // max(per_row, 1)) if shape else 1
    for lo in range(0, shape[0] if shape else 1, rows):
        hi = min(lo + rows, shape[0]) if shape else 1
        env = _grid((*op.axis, *raxes), sizes, first=(lo, hi) if shape else None)
        ev = _Evaluator(env, sizes, values)
        target = out[lo:hi] if shape else out
        target[...] = _eval_body(op, body, ev, len(op.axis), tuple(target.shape), r_extents)
    return out


def _eval_body(op, body, ev: _Evaluator, ndata: int, data_shape, r_extents) -> np.ndarray:
    if not isinstance(body, Reduce):
        return np.broadcast_to(ev.eval(body), data_shape)
    full = tuple(data_shape) + tuple(r_extents)
    identity = body.reducer.identity(body.dtype)
    if 0 in r_extents:                  # nothing to reduce: the reducer's identity
        return np.full(data_shape, identity.value, dtype=body.dtype)
    # The body is read only where `where` holds, as in compiled code: a read it guards
    # (`A[i - r]` under `where=i - r >= 0`) may be out of bounds elsewhere.
    mask = np.broadcast_to(ev.eval(body.where), full) if body.where is not None else None
    outer, ev.mask = ev.mask, mask
    try:
        vals = np.broadcast_to(ev.eval(body.body), full)
    finally:
        ev.mask = outer
    if mask is not None:
        vals = np.where(mask, vals, np.array(identity.value, body.dtype))
    raxes = tuple(range(ndata, ndata + len(r_extents)))
    if body.reducer.numpy_reduce is not None:
        with np.errstate(all="ignore"):
            return body.reducer.numpy_reduce(vals, axis=raxes, dtype=body.dtype) \
                if body.reducer.name == "sum" else body.reducer.numpy_reduce(vals, axis=raxes)
    acc_var, val_var, combined = body.reducer.combine_expr(body.dtype)
    flat = vals.reshape(tuple(data_shape) + (-1,))
    acc = np.full(data_shape, identity.value, dtype=body.dtype)
    for r in range(flat.shape[-1]):
        acc = _Evaluator({id(acc_var): acc, id(val_var): flat[..., r]}, ev.sizes, {}).eval(
            combined).astype(body.dtype)
    return acc


def _eval_update(op: UpdateOp, values, sizes) -> np.ndarray:
    array = values[id(op.base.op)].copy()
    values = dict(values)
    root = storage_root(op.output(0))
    values[id(root.op)] = array
    values[id(op.base.op)] = array
    ranges = [range(int(evaluate_scalar(a.start, sizes)),
                    int(evaluate_scalar(a.start, sizes)) + int(evaluate_scalar(a.extent, sizes)))
              for a in op.reduce_axis]
    if _pure_points_independent(op):
        pure_env = _grid(op.axis, sizes)
        for point in itertools.product(*ranges):
            env = dict(pure_env)
            env.update({id(a): np.array(v, np.int64) for a, v in zip(op.reduce_axis, point)})
            _write(op, array, _Evaluator(env, sizes, values))
        return array
    pure_ranges = [range(int(evaluate_scalar(a.extent, sizes))) for a in op.axis]
    for pure in itertools.product(*pure_ranges):
        for point in itertools.product(*ranges):
            env = {id(a): np.array(v, np.int64) for a, v in zip(op.axis, pure)}
            env.update({id(a): np.array(v, np.int64) for a, v in zip(op.reduce_axis, point)})
            _write(op, array, _Evaluator(env, sizes, values))
    return array


def _write(op: UpdateOp, array: np.ndarray, ev: _Evaluator) -> None:
    value = ev.eval(op.value)
    idx = [ev.eval(i).astype(np.int64) for i in op.index]
    shape = np.broadcast_shapes(value.shape, *(i.shape for i in idx))
    idx = [np.broadcast_to(i, shape) for i in idx]
    for d, i in enumerate(idx):
        if i.size and (i.min() < 0 or i.max() >= array.shape[d]):
            raise TdslIndexError(f"{op.name} writes {op.base.name} at index "
                                 f"{int(i.min() if i.min() < 0 else i.max())} in dimension {d}, "
                                 f"outside its size {array.shape[d]}")
    array[tuple(idx)] = np.broadcast_to(value, shape)


def _pure_points_independent(op: UpdateOp) -> bool:
    """Different pure points touch disjoint elements: each pure axis is used bare, at its
    own dimension, in the write and in every read of the updated tensor."""
    root = storage_root(op.output(0))
    positions = {id(a): [d for d, e in enumerate(op.index) if e is a][0] for a in op.axis}
    for node in walk(op.value):
        if isinstance(node, Load) and storage_root(node.tensor) == root:
            for a in op.axis:
                if node.indices[positions[id(a)]] is not a:
                    return False
    return True
