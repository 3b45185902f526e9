"""ONNX's shape operators (Reshape, Transpose, Concat, Slice, Gather, ...) on tdsl tensors,
and NumPy folding of every node whose inputs are all known at import time.

A known value is a NumPy array; `Shape` of a tensor with a symbolic size gives an array of
dtype object holding that size's `td.var` (`[N, 128, 256]`), which Gather, Concat,
Unsqueeze, Slice and arithmetic carry through to a Reshape. `FOLDERS` maps an operator to
its NumPy evaluation (used when all inputs are known), `CONVERTERS` to its tensor form.
"""

from __future__ import annotations

import numpy as np

import tdsl as td
from tdsl import nn
from tdsl.lang.expr import Expr
from tdsl.nn import _checks as check
from tdsl.nn.elementwise import broadcast_index, broadcast_shapes

# -- tensors -------------------------------------------------------------------------------


def reshape(node):
    x = node.tensor(0)
    return nn.reshape(x, _reshape_target(node, x.shape, node.known(1, "shape")),
                      name=node.name)


def _reshape_target(node, current, target: np.ndarray) -> list:
    """The target shape with ONNX's 0 (copy this dimension of the input) resolved."""
    allowzero = int(node.attr("allowzero", 0))
    out = []
    for d, s in enumerate(target.reshape(-1).tolist()):
        if isinstance(s, Expr) or s != 0:
            out.append(s if isinstance(s, Expr) else int(s))
        elif allowzero:
            raise node.refuse_attribute("allowzero", 1, "a dimension of size 0")
        elif d >= len(current):
            raise td.TdslValueError(f"shape[{d}] is 0 (copy the input's dimension {d}) but "
                                    f"the input has {len(current)} dimensions")
        else:
            out.append(current[d])
    return out


def flatten(node):
    x = node.tensor(0)
    axis = node.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        raise td.TdslValueError(f"axis {node.attr('axis')} is out of range for {x.ndim} "
                                "dimensions")
    shape = (check.product(x.shape[:axis]), check.product(x.shape[axis:]))
    return nn.reshape(x, shape, name=node.name)


def transpose(node):
    perm = node.attr("perm")
    return nn.transpose(node.tensor(0), None if perm is None else list(perm), name=node.name)


def concat(node):
    tensors = [node.tensor(i) for i in range(len(node)) if node.has(i)]
    return nn.concat(tensors, axis=int(node.required_attr("axis")), name=node.name)


def identity(node):
    return node.value(0)


def shape(node):
    """The input's shape as a known array (symbolic sizes as their expressions)."""
    x = node.value(0)
    dims = list(x.shape) if isinstance(x, np.ndarray) else [
        check.const_value(d) if check.const_value(d) is not None else d for d in x.shape]
    start, end = node.attr("start", 0), node.attr("end")
    dims = dims[start:end]
    if all(isinstance(d, int) for d in dims):
        return np.array(dims, np.int64)
    return np.array(dims, object)


def gather(node):
    """Data computed at run time, indices known: one index (drops the axis) or a range
    (a slice)."""
    x, indices = node.tensor(0), node.known(1, "indices")
    axis = check.axis(int(node.attr("axis", 0)), x.ndim, "Gather")
    size = check.const_value(x.shape[axis])
    flat = [int(i) + (size if i < 0 and size is not None else 0)
            for i in indices.reshape(-1).tolist()]
    if indices.ndim == 0:
        (i,) = flat
        return td.compute(x.shape[:axis] + x.shape[axis + 1:],
                          lambda *o: x[(*o[:axis], i, *o[axis:])], name=node.name)
    if indices.ndim == 1 and flat == list(range(flat[0], flat[0] + len(flat))):
        return nn.slice(x, [flat[0]], [flat[0] + len(flat)], [axis], name=node.name)
    raise node.unsupported(f"Gather of a computed tensor with indices {indices.tolist()} "
                           "(only one index or a contiguous range is supported)")


def unsqueeze(node):
    x = node.tensor(0)
    return nn.reshape(x, _unsqueezed(node, list(x.shape)), name=node.name)


def squeeze(node):
    x = node.tensor(0)
    return nn.reshape(x, _squeezed(node, list(x.shape)) or [1], name=node.name)


def _axes(node, what: str = "axes") -> list[int] | None:
    """`axes` from input 1 (opset 13 on) or the attribute."""
    axes = node.attr("axes")
    if node.has(1):
        axes = node.known(1, what).reshape(-1).tolist()
    return None if axes is None else [int(a) for a in axes]


def _unsqueezed(node, dims: list) -> list:
    axes = _axes(node)
    rank = len(dims) + len(axes)
    for a in sorted(check.axis(a, rank, "Unsqueeze") for a in axes):
        dims.insert(a, 1)
    return dims


def _squeezed(node, dims: list) -> list:
    axes = _axes(node)
    ones = [d for d, s in enumerate(dims) if check.const_value(check.size(s)) == 1]
    drop = ones if axes is None else [check.axis(a, len(dims), "Squeeze") for a in axes]
    for d in drop:
        if d not in ones:
            raise td.TdslValueError(f"cannot squeeze axis {d} of size {dims[d]} (only "
                                    "size 1)")
    return [s for d, s in enumerate(dims) if d not in drop]


def slice_(node):
    x = node.tensor(0)
    starts, ends, axes, steps = _slice_args(node, x.ndim)
    if any(s < 0 for s in steps):
        raise node.unsupported(f"negative steps {steps} are not supported")
    return nn.slice(x, starts, ends, axes, steps, name=node.name)


def _slice_args(node, rank: int):
    """(starts, ends, axes, steps) as lists of ints: inputs from opset 10, attributes before."""
    if node.opset >= 10:
        starts = node.known(1, "starts").tolist()
        ends = node.known(2, "ends").tolist()
        axes = node.known(3, "axes").tolist() if node.has(3) else list(range(len(starts)))
        steps = node.known(4, "steps").tolist() if node.has(4) else [1] * len(starts)
    else:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes = node.attr("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    # INT64_MAX ("to the end") fits no int32 index: clamp to what nn.slice reads as the end.
    ends = [min(int(e), 2**31 - 1) for e in ends]
    starts = [max(int(s), -(2**31)) for s in starts]
    return starts, ends, [int(a) for a in axes], [int(s) for s in steps]


def split(node):
    x = node.tensor(0)
    axis = check.axis(int(node.attr("axis", 0)), x.ndim, "Split")
    size = check.const_value(x.shape[axis])
    sizes = node.attr("split")
    if node.has(1):
        sizes = node.known(1, "split").tolist()
    count = int(node.attr("num_outputs", len(node.outputs)))
    if sizes is None:
        if size is None:
            raise node.unsupported("an even Split of a symbolic dimension")
        part = -(-size // count)
        sizes = [min(part, size - k * part) for k in range(count)]
    pieces, start = [], 0
    for k, n in enumerate(sizes):
        pieces.append(nn.slice(x, [start], [start + int(n)], [axis], name=f"{node.name}_{k}"))
        start += int(n)
    return pieces


def cast(node):
    x = node.tensor(0)
    dtype = node.dtype_attr("to")
    if dtype == x.dtype:
        return x
    return td.compute(x.shape, lambda *i: td.cast(x[i], dtype), name=node.name)


def expand(node):
    x = node.tensor(0)
    target = [check.size(int(s)) for s in node.known(1, "shape").tolist()]
    out = broadcast_shapes([x.shape, tuple(target)], "Expand")
    return td.compute(out, lambda *i: x[broadcast_index(x.shape, i)], name=node.name)


CONVERTERS = {
    "Reshape": reshape, "Flatten": flatten, "Transpose": transpose, "Concat": concat,
    "Identity": identity, "Shape": shape, "Gather": gather, "Unsqueeze": unsqueeze,
    "Squeeze": squeeze, "Slice": slice_, "Split": split, "Cast": cast, "Expand": expand,
}

# -- folding: every input known ------------------------------------------------------------


def _numeric(node, *arrays: np.ndarray) -> None:
    """Folding that compares or divides needs numbers, not symbolic sizes."""
    if any(a.dtype == object for a in arrays):
        raise node.unsupported("this operation on a shape with a symbolic size is not "
                               "supported")


def _fold_binary(fn, numeric: bool = False):
    def fold(node):
        a, b = node.known(0, "a"), node.known(1, "b")
        if numeric:
            _numeric(node, a, b)
        return np.asarray(fn(a, b))
    return fold


def _fold_div(node):
    a, b = node.known(0, "a"), node.known(1, "b")
    _numeric(node, a, b)
    if a.dtype.kind in "iu":
        return (np.trunc(a / b)).astype(a.dtype)        # ONNX integer division truncates
    return a / b


def _fold_constant(node):
    for name in ("value_float", "value_int"):
        if node.attr(name) is not None:
            return np.array(node.attr(name), np.float32 if "float" in name else np.int64)
    for name in ("value_floats", "value_ints"):
        if node.attr(name) is not None:
            return np.array(node.attr(name), np.float32 if "float" in name else np.int64)
    value = node.attr("value")
    if value is None:
        raise node.unsupported("only the value, value_float(s) and value_int(s) forms of "
                               "Constant are supported")
    return value


def _fold_reshape(node):
    data = node.known(0, "data")
    target = _reshape_target(node, list(data.shape), node.known(1, "shape"))
    return data.reshape([int(s) for s in target])


def _fold_flatten(node):
    data = node.known(0, "input")
    axis = node.attr("axis", 1) % (data.ndim + 1) if data.ndim else 0
    return data.reshape(int(np.prod(data.shape[:axis])), -1)


def _fold_gather(node):
    data, indices = node.known(0, "data"), node.known(1, "indices")
    return np.take(data, indices.astype(np.int64), axis=int(node.attr("axis", 0)))


def _fold_slice(node):
    data = node.known(0, "data")
    starts, ends, axes, steps = _slice_args(node, data.ndim)
    index = [slice(None)] * data.ndim
    for s, e, a, k in zip(starts, ends, axes, steps):
        index[a] = slice(s, e, k)
    return data[tuple(index)]


def _fold_split(node):
    data = node.known(0, "input")
    axis = int(node.attr("axis", 0)) % data.ndim
    sizes = node.attr("split")
    if node.has(1):
        sizes = node.known(1, "split").tolist()
    count = int(node.attr("num_outputs", len(node.outputs)))
    if sizes is None:
        part = -(-data.shape[axis] // count)
        sizes = [min(part, data.shape[axis] - k * part) for k in range(count)]
    return np.split(data, np.cumsum(sizes)[:-1], axis=axis)


def _fold_cast(node):
    data = node.known(0, "input")
    dtype = node.dtype_attr("to")
    if data.dtype == object:
        if dtype != "int64":
            raise node.unsupported("casting a symbolic shape to a non-integer type")
        return data
    return data.astype(dtype)


def _fold_constant_of_shape(node):
    target = node.known(0, "shape")
    _numeric(node, target)
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else value
    return np.full(tuple(int(s) for s in target.tolist()), value.reshape(-1)[0], value.dtype)


def _fold_range(node):
    start, limit, delta = (node.known(i, w) for i, w in enumerate(("start", "limit", "delta")))
    _numeric(node, start, limit, delta)
    return np.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)


def _fold_where(node):
    arrays = [node.known(i, w) for i, w in enumerate(("condition", "X", "Y"))]
    _numeric(node, *arrays)
    return np.where(*arrays)


def _fold_expand(node):
    data, target = node.known(0, "input"), node.known(1, "shape")
    _numeric(node, target)
    shape_out = np.broadcast_shapes(data.shape, tuple(int(s) for s in target.tolist()))
    return np.broadcast_to(data, shape_out).copy()


FOLDERS = {
    "Constant": _fold_constant,
    "Identity": lambda node: node.known(0, "input"),
    "Shape": shape,
    "Add": _fold_binary(np.add), "Sub": _fold_binary(np.subtract),
    "Mul": _fold_binary(np.multiply), "Div": _fold_div,
    "Neg": lambda node: -node.known(0, "X"),
    "Sqrt": lambda node: np.sqrt(node.known(0, "X")),
    "Equal": _fold_binary(np.equal, numeric=True),
    "Less": _fold_binary(np.less, numeric=True),
    "Greater": _fold_binary(np.greater, numeric=True),
    "Where": _fold_where,
    "Reshape": _fold_reshape, "Flatten": _fold_flatten,
    "Transpose": lambda node: np.transpose(node.known(0, "data"), node.attr("perm")),
    "Concat": lambda node: np.concatenate(
        [node.known(i, "input") for i in range(len(node)) if node.has(i)],
        axis=int(node.required_attr("axis"))),
    "Gather": _fold_gather,
    "Unsqueeze": lambda node: np.array(node.known(0, "data")).reshape(
        [int(s) for s in _unsqueezed(node, list(node.known(0, "data").shape))]),
    "Squeeze": lambda node: np.array(node.known(0, "data")).reshape(
        [int(s) for s in _squeezed(node, list(node.known(0, "data").shape))]),
    "Slice": _fold_slice, "Split": _fold_split, "Cast": _fold_cast,
    "ConstantOfShape": _fold_constant_of_shape, "Range": _fold_range, "Expand": _fold_expand,
}
