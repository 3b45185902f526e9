"""One converter per ONNX operator: an `onnx.Node` view in, tdsl tensors out (tdsl.nn ops).

A converter reads its attributes with `node.attr(name, default)` (ONNX's defaults written
out here), its data inputs with `node.tensor(i)` and the inputs that must be known at
import time (shapes, axes, bounds) with `node.known(i, what)`. Whatever it cannot
represent exactly it refuses with `node.unsupported(...)` / `node.refuse_attribute(...)`.
The shape operators and the NumPy folding of known values are in `onnx_shape_ops.py`;
`CONVERTERS` and `FOLDERS` at the end are the dispatch tables of both.
"""

from __future__ import annotations

import math

import numpy as np

import tdsl as td
from tdsl import nn
from tdsl.lang.tensor import Tensor
from tdsl.nn import _checks as check, linear
from tdsl.nn.elementwise import broadcast_index, broadcast_shapes

from . import onnx_shape_ops as shape_ops

# -- elementwise ---------------------------------------------------------------------------


def _operand(node, i: int, other: int):
    """Input i for a broadcasting op: a known one-element array is a Python number (weak:
    float32 stays float32) when it does not add dimensions to the other operand."""
    value, partner = node.value(i), node.value(other)
    if isinstance(value, np.ndarray) and value.size == 1 and isinstance(partner, Tensor) \
            and value.ndim <= partner.ndim and value.dtype != object:
        return value.reshape(()).item()
    return node.tensor(i)


def _binary(nn_op, integer_ok: bool = True):
    def convert(node):
        a, b = _operand(node, 0, 1), _operand(node, 1, 0)
        if not integer_ok and any(isinstance(v, Tensor) and not v.dtype.startswith("float")
                                  for v in (a, b)):
            raise node.unsupported("integer division of tensors computed at run time is not "
                                   "supported (ONNX truncates, tdsl's division is true "
                                   "division)")
        return nn_op(a, b, name=node.name)
    return convert


def _unary(fn):
    """An elementwise function of one tensor (fn: scalar expression -> expression)."""
    def convert(node):
        return nn.elementwise(fn, node.tensor(0), name=node.name)
    return convert


def _nn_unary(nn_op):
    def convert(node):
        return nn_op(node.tensor(0), name=node.name)
    return convert


def leaky_relu(node):
    return nn.leaky_relu(node.tensor(0), alpha=float(node.attr("alpha", 0.01)), name=node.name)


def gelu(node):
    approximate = node.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise node.refuse_attribute("approximate", approximate, "'none' or 'tanh'")
    return nn.gelu(node.tensor(0), approximate=approximate, name=node.name)


def clip(node):
    """min(max(x, lo), hi); the bounds are inputs 1 and 2 from opset 11, attributes before."""
    lo, hi = node.attr("min"), node.attr("max")
    if node.has(1):
        lo = _scalar(node, 1, "min")
    if node.has(2):
        hi = _scalar(node, 2, "max")

    def bound(v):
        v = td.maximum(v, lo) if lo is not None else v
        return td.minimum(v, hi) if hi is not None else v

    return nn.elementwise(bound, node.tensor(0), name=node.name)


def power(node):
    """x ** y; a known exponent 2, 3, 1, 0.5 or -1 becomes products, sqrt or a division."""
    x = node.tensor(0)
    value = node.value(1)
    if not isinstance(value, np.ndarray) or value.size != 1:
        return nn.elementwise(td.power, x, node.tensor(1), name=node.name)
    e = float(value.reshape(()))
    forms = {1.0: lambda v: v, 2.0: lambda v: v * v, 3.0: lambda v: v * v * v,
             0.5: td.sqrt, -1.0: lambda v: 1 / v}
    fn = forms.get(e, lambda v: td.power(v, e))
    return nn.elementwise(fn, x, name=node.name)


def _scalar(node, i: int, what: str) -> float | int:
    value = node.known(i, what)
    if value.size != 1:
        raise node.unsupported(f"{what} must be a single value; got shape {value.shape}")
    return value.reshape(()).item()


# -- linear algebra -----------------------------------------------------------------------


def matmul(node):
    """NumPy's matmul: 2-D x 2-D is nn.matmul; a (B, S, D) x (D, E) projection is one too,
    on x seen as (B * S, D) (reshapes on both sides: td.auto_schedule register-tiles 2-D
    products, a 3-D one it leaves unscheduled); equal 3-D batches are nn.batch_matmul,
    other batch shapes broadcast."""
    a, b = node.tensor(0), node.tensor(1)
    if a.ndim < 2 or b.ndim < 2:
        raise node.unsupported(f"MatMul of a {a.ndim}-D and a {b.ndim}-D tensor; both must "
                               "have at least 2 dimensions")
    if a.ndim == b.ndim == 2:
        return nn.matmul(a, b, name=node.name)
    if b.ndim == 2:
        rows = nn.reshape(a, (check.product(a.shape[:-1]), a.shape[-1]),
                          name=f"{node.name}_rows")
        product = nn.matmul(rows, b, name=f"{node.name}_2d")
        return nn.reshape(product, (*a.shape[:-1], b.shape[1]), name=node.name)
    if a.ndim == b.ndim == 3 and check.same_size(a.shape[0], b.shape[0]):
        return nn.batch_matmul(a, b, name=node.name)
    return _broadcast_matmul(a, b, node.name)


def _broadcast_matmul(a: Tensor, b: Tensor, name: str) -> Tensor:
    """c[..., i, j] = sum_k a[..., i, k] * b[..., k, j], the batch axes broadcast."""
    op = "nn.matmul"
    linear._inner(op, a, b)
    batch = broadcast_shapes([a.shape[:-2], b.shape[:-2]], op)
    k = td.reduce_axis(a.shape[-1], name="k")

    def body(*i):
        outer, row, col = i[:-2], i[-2], i[-1]
        return td.sum(a[(*broadcast_index(a.shape[:-2], outer), row, k)]
                      * b[(*broadcast_index(b.shape[:-2], outer), k, col)], axis=k)

    return td.compute((*batch, a.shape[-2], b.shape[-1]), body, name=name)


def gemm(node):
    """alpha * A' @ B' + beta * C (A' = A.T with transA, B' = B.T with transB).

    PyTorch's Linear export (transB=1, B a weight (out, in)) is nn.dense for a few rows
    (one row: dot products along contiguous weight rows). From GEMM_ROWS rows on, the
    weight is stored transposed once, at import: the product is then a plain nn.matmul,
    which td.auto_schedule register-tiles with vectors along B's rows (in nn.dense's
    w[j, k] each vector lane would read another row). Measured on the MLP 784-512-512-10
    through td.compile: batch 1, dense 0.23 ms / matmul 0.39; batch 64, 3.9 / 1.9."""
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    ta, tb = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    a = node.tensor(0)
    weight = node.value(1)
    rows = check.const_value(a.shape[1 if ta else 0]) if a.ndim == 2 else None
    if tb and isinstance(weight, np.ndarray) and weight.ndim == 2 and weight.dtype != object \
            and rows is not None and rows >= GEMM_ROWS:
        b, tb = node.importer.param(f"{node.proto.input[1]}_T", weight.T), 0
    else:
        b = node.tensor(1)
    c = node.tensor(2) if node.has(2) else None
    for what, t in (("A", a), ("B", b)):
        if t.ndim != 2:
            raise node.unsupported(f"{what} must be 2-D; got shape {t.shape}")
    name = node.name if c is None or beta == 0.0 else f"{node.name}_matmul"
    bias_like = c is not None and c.ndim == 1 and check.same_size(c.shape[0], b.shape[0])
    if not ta and tb and alpha == 1.0 and beta == 1.0 and (c is None or bias_like):
        return nn.dense(a, b, c, name=node.name)
    if not ta and not tb and alpha == 1.0:
        ab = nn.matmul(a, b, name=name)
    else:
        ab = _gemm_product(a, b, ta, tb, alpha, name)
    if c is None or beta == 0.0:
        return ab
    if beta == 1.0:
        return nn.add(ab, c, name=node.name)
    return nn.elementwise(lambda u, v: u + beta * v, ab, c, name=node.name)


GEMM_ROWS = 8      # from this many rows of A on, a known Gemm weight is stored transposed


def _gemm_product(a: Tensor, b: Tensor, ta: int, tb: int, alpha: float, name: str) -> Tensor:
    """alpha * A' @ B' as one reduction, the transposes read in place."""
    rows, inner = (a.shape[1], a.shape[0]) if ta else a.shape
    inner_b, cols = (b.shape[1], b.shape[0]) if tb else b.shape
    if not check.same_size(inner, inner_b):
        raise td.TdslValueError(f"Gemm: A' is ({rows}, {inner}) and B' is ({inner_b}, {cols}) "
                                f"(transA={ta}, transB={tb}): the inner sizes differ")
    k = td.reduce_axis(inner, name="k")

    def body(i, j):
        product = (a[k, i] if ta else a[i, k]) * (b[j, k] if tb else b[k, j])
        return td.sum(product if alpha == 1.0 else alpha * product, axis=k)

    return td.compute((rows, cols), body, name=name)


# -- convolution and pooling ----------------------------------------------------------------


def conv(node):
    x, w = node.tensor(0), node.tensor(1)
    bias = node.tensor(2) if node.has(2) else None
    if x.ndim != 4:
        raise node.unsupported(f"only 2-D convolution (NCHW) is supported; x has shape "
                               f"{x.shape}")
    kernel = tuple(w.shape[2:])
    declared = node.attr("kernel_shape")
    if declared is not None and [check.const_value(k) for k in kernel] != list(declared):
        raise td.TdslValueError(f"kernel_shape {declared} differs from the weight's shape "
                                f"{w.shape}")
    strides, dilations = _pair_attr(node, "strides"), _pair_attr(node, "dilations")
    pads = _pads(node, x, [check.const_value(k) for k in kernel], strides, dilations)
    x, padding = _pad_input(x, pads, 0.0, node.name, symmetric_limit=None)
    return nn.conv2d(x, w, bias, stride=strides, padding=padding, dilation=dilations,
                     groups=int(node.attr("group", 1)), name=node.name)


def max_pool(node):
    x = _pool_input(node)
    if int(node.attr("storage_order", 0)) != 0:
        raise node.refuse_attribute("storage_order", node.attr("storage_order"), "row major "
                                    "only")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.unsupported("the Indices output of MaxPool is not supported")
    kernel, strides, dilations = _pool_window(node)
    pads = _pads(node, x, kernel, strides, dilations)
    _ceil_mode(node, x, kernel, strides, dilations, pads)
    limit = [(d * (k - 1) + 1) // 2 for k, d in zip(kernel, dilations)]
    x, padding = _pad_input(x, pads, -math.inf, node.name, symmetric_limit=limit)
    return nn.max_pool2d(x, kernel, strides, padding, dilations, name=node.name)


def average_pool(node):
    """The mean of each window; with count_include_pad=0 (ONNX's default) a border window
    divides by the elements inside x only: the per-position factor K / count is a weight."""
    x = _pool_input(node)
    kernel, strides, dilations = _pool_window(node)
    if dilations != (1, 1):
        raise node.refuse_attribute("dilations", list(dilations), "AveragePool without "
                                    "dilation only")
    pads = _pads(node, x, kernel, strides, (1, 1))
    _ceil_mode(node, x, kernel, strides, (1, 1), pads)
    include = int(node.attr("count_include_pad", 0))
    limit = [k // 2 for k in kernel]
    padded, padding = _pad_input(x, pads, 0.0, node.name, symmetric_limit=limit)
    out = nn.avg_pool2d(padded, kernel, strides, padding, name=node.name)
    if include or not any(pads):
        return out
    sizes = [check.const_value(d) for d in x.shape[2:]]
    if None in sizes:
        raise node.unsupported("count_include_pad=0 with padding needs constant image sizes")
    factor = np.ones((1, 1) + tuple(check.const_value(d) for d in out.shape[2:]), x.dtype)
    for axis, (n, k, s, before) in enumerate(zip(sizes, kernel, strides, pads[:2])):
        starts = np.arange(factor.shape[2 + axis]) * s - before
        inside = np.minimum(starts + k, n) - np.maximum(starts, 0)
        factor *= np.expand_dims(k / inside, 1 - axis).astype(x.dtype)
    scale = node.importer.param(f"{node.name}_count_scale", factor)
    return nn.mul(out, scale, name=f"{node.name}_exclude_pad")


def global_average_pool(node):
    return nn.global_avg_pool2d(_pool_input(node), name=node.name)


def global_max_pool(node):
    return nn.max(_pool_input(node), axis=(2, 3), keepdims=True, name=node.name)


def _pool_input(node) -> Tensor:
    x = node.tensor(0)
    if x.ndim != 4:
        raise node.unsupported(f"only 2-D pooling (NCHW) is supported; x has shape {x.shape}")
    return x


def _pool_window(node):
    kernel = node.required_attr("kernel_shape")
    if len(kernel) != 2:
        raise node.unsupported(f"kernel_shape must list 2 sizes; got {kernel}")
    return tuple(kernel), _pair_attr(node, "strides"), _pair_attr(node, "dilations")


def _pair_attr(node, name: str) -> tuple[int, int]:
    value = node.attr(name, [1, 1])
    if len(value) != 2:
        raise node.refuse_attribute(name, value, "2-D operators need 2 values")
    return tuple(int(v) for v in value)


def _pads(node, x: Tensor, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from `pads` or `auto_pad` (SAME_UPPER puts the odd one at
    the end, SAME_LOWER at the start; VALID pads nothing)."""
    auto = node.attr("auto_pad", "NOTSET")
    pads = node.attr("pads")
    if auto in ("NOTSET", "VALID"):
        if pads is None or auto == "VALID":
            return (0, 0, 0, 0)
        if len(pads) != 4:
            raise node.refuse_attribute("pads", pads, "2-D operators need 4 values")
        return tuple(int(p) for p in pads)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.refuse_attribute("auto_pad", auto, "NOTSET, VALID, SAME_UPPER or "
                                    "SAME_LOWER")
    begin, end = [], []
    for n, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        size = check.const_value(n)
        if size is None or k is None:
            raise node.unsupported(f"auto_pad={auto} needs constant image and kernel sizes")
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else large)
        end.append(large if auto == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])


def _pad_input(x: Tensor, pads, value: float, name: str, symmetric_limit):
    """(x, padding) for an nn op: symmetric pads (within what the op accepts) are its
    `padding`; others are an explicit nn.pad stage and padding 0."""
    top, left, bottom, right = pads
    fits = symmetric_limit is None or (top <= symmetric_limit[0] and left <= symmetric_limit[1])
    if top == bottom and left == right and fits:
        return x, (top, left)
    return nn.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)], value,
                  name=f"{name}_pad"), (0, 0)


def _ceil_mode(node, x: Tensor, kernel, strides, dilations, pads) -> None:
    """ceil_mode=1 is accepted where it gives the same size as floor mode."""
    if not int(node.attr("ceil_mode", 0)):
        return
    for axis in range(2):
        n = check.const_value(x.shape[2 + axis])
        span = dilations[axis] * (kernel[axis] - 1) + 1
        reach = None if n is None else n + pads[axis] + pads[axis + 2] - span
        if reach is None or reach % strides[axis]:
            raise node.refuse_attribute("ceil_mode", 1, "only where it gives the floor mode's "
                                        "output size")


# -- normalization and reductions -----------------------------------------------------------


def batch_normalization(node):
    if int(node.attr("training_mode", 0)):
        raise node.refuse_attribute("training_mode", 1, "inference only")
    if int(node.attr("spatial", 1)) != 1:
        raise node.refuse_attribute("spatial", node.attr("spatial"), "spatial=1 only")
    node.attr("momentum")                          # used in training only
    if any(node.outputs[1:]):
        raise node.unsupported("the running statistics outputs (training) are not supported")
    x, gamma, beta, mean, var = (node.tensor(i) for i in range(5))
    return nn.batch_norm(x, gamma, beta, mean, var, eps=float(node.attr("epsilon", 1e-5)),
                         name=node.name)


def layer_normalization(node):
    if any(node.outputs[1:]):
        raise node.unsupported("the Mean and InvStdDev outputs are not supported")
    stash = int(node.attr("stash_type", 1))
    if stash != 1:
        raise node.refuse_attribute("stash_type", stash, "statistics in float32 only")
    x = node.tensor(0)
    gamma = node.tensor(1)
    beta = node.tensor(2) if node.has(2) else None
    return nn.layer_norm(x, gamma, beta, axis=int(node.attr("axis", -1)),
                         eps=float(node.attr("epsilon", 1e-5)), name=node.name)


def softmax(node, nn_op=nn.softmax):
    """From opset 13 along one axis (default -1); before, over all axes from `axis`
    (default 1) of the input seen as 2-D."""
    x = node.tensor(0)
    if node.opset >= 13:
        return nn_op(x, axis=int(node.attr("axis", -1)), name=node.name)
    axis = check.axis(int(node.attr("axis", 1)), x.ndim, f"ONNX {node.op}")
    if axis == x.ndim - 1:
        return nn_op(x, axis=-1, name=node.name)
    rows, cols = check.product(x.shape[:axis]), check.product(x.shape[axis:])
    flat = nn.reshape(x, (rows, cols), name=f"{node.name}_2d")
    return nn.reshape(nn_op(flat, axis=1, name=f"{node.name}_rows"), x.shape, name=node.name)


def log_softmax(node):
    return softmax(node, nn.log_softmax)


def _reduce(nn_op):
    """ReduceX: axes from input 1 (ReduceSum from opset 13, the others from 18) or from
    the `axes` attribute before."""
    def convert(node):
        x = node.tensor(0)
        axes = node.attr("axes")
        if node.has(1):
            axes = node.known(1, "axes").tolist()
        if not axes:
            if int(node.attr("noop_with_empty_axes", 0)):
                return nn.elementwise(lambda v: v, x, name=node.name)
            axes = None
        keep = bool(int(node.attr("keepdims", 1)))
        return nn_op(x, axis=None if axes is None else tuple(axes), keepdims=keep,
                     name=node.name)
    return convert


def dropout(node):
    """Inference: the identity (a `training_mode` input must be known false)."""
    if node.has(2) and bool(node.known(2, "training_mode").reshape(())):
        raise node.unsupported("Dropout in training mode is not supported")
    node.attr("seed")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.unsupported("the mask output of Dropout is not supported")
    return node.value(0)


CONVERTERS = {
    "Add": _binary(nn.add), "Sub": _binary(nn.sub), "Mul": _binary(nn.mul),
    "Div": _binary(nn.div, integer_ok=False),
    "Relu": _nn_unary(nn.relu), "Sigmoid": _nn_unary(nn.sigmoid), "Tanh": _nn_unary(nn.tanh),
    "Erf": _nn_unary(nn.erf), "Gelu": gelu, "LeakyRelu": leaky_relu, "Clip": clip,
    "Sqrt": _unary(td.sqrt), "Exp": _unary(td.exp), "Log": _unary(td.log),
    "Neg": _unary(lambda v: -v), "Abs": _unary(td.abs), "Reciprocal": _unary(lambda v: 1 / v),
    "Pow": power,
    "MatMul": matmul, "Gemm": gemm,
    "Conv": conv, "MaxPool": max_pool, "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool, "GlobalMaxPool": global_max_pool,
    "BatchNormalization": batch_normalization, "LayerNormalization": layer_normalization,
    "Softmax": softmax, "LogSoftmax": log_softmax,
    "ReduceMean": _reduce(nn.mean), "ReduceSum": _reduce(nn.sum),
    "ReduceMax": _reduce(nn.max), "ReduceMin": _reduce(nn.min),
    "Dropout": dropout,
    **shape_ops.CONVERTERS,
}

FOLDERS = shape_ops.FOLDERS
