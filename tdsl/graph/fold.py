"""Constant folding over the weights, at compile time.

1. Every stage that depends on the weights (`params`) alone is evaluated once, with
   `td.reference` (NumPy), and replaced by a new weight: batch_norm's per-channel
   `gamma / sqrt(var + eps)`, a transposed or reshaped weight.
2. batch_norm (inference) after a convolution is folded into it: with s = scale[f],

       (conv(x, w)[n, f, y, x] - mean[f]) * s + beta[f] = conv(x, w * s)[n, f, y, x] + b'[f]
       b' = beta - mean * s            (+ bias * s when the convolution had a bias)

   so the network runs the convolution with new weights plus a bias epilogue, and the
   batch_norm stage disappears.

Returns the rewritten outputs, the weights they read (old ones no longer read dropped)
and a record of what was folded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lang.expr import BinOp, IterVar, Load, Reduce
from ..lang.graph import topo_order
from ..lang.names import unique_name
from ..lang.reference import reference
from ..lang.tensor import ComputeOp, PlaceholderOp, Tensor, placeholder
from ..lang.visit import transform
from .rewrite import consumers, rebuild


@dataclass(frozen=True)
class Folded:
    """One folding: what was computed at compile time and what it became."""

    what: str            # "constant" | "batch_norm" | "layout" | "blocks" (graph/layout.py)
    stages: tuple[str, ...]
    into: str

    def __str__(self) -> str:
        if self.what == "batch_norm":
            return f"batch_norm {self.stages[0]} folded into {self.into} (weights and bias)"
        if self.what == "layout":
            return f"{self.stages[0]} computed with {self.into}"
        if self.what == "blocks":
            return f"{', '.join(self.stages)} computed in {self.into}"
        return f"{', '.join(self.stages)} evaluated at compile time -> {self.into}"


@dataclass(frozen=True)
class FoldResult:
    outputs: tuple[Tensor, ...]
    params: dict                     # placeholder tensor -> np.ndarray, the ones still read
    folded: tuple[Folded, ...]


def fold(outputs: list[Tensor], params: dict[Tensor, np.ndarray]) -> FoldResult:
    """Fold constants and batch norms (see the module docstring)."""
    params = dict(params)
    folded: list[Folded] = []
    taken = {op.name for op in topo_order(outputs)}
    outputs, params = _evaluate_constants(outputs, params, folded, taken)
    outputs, params = _fold_batch_norms(outputs, params, folded, taken)
    outputs, params = _evaluate_constants(outputs, params, folded, taken)
    read = {t for t in (op.output(0) for op in topo_order(outputs))}
    return FoldResult(tuple(outputs), {t: v for t, v in params.items() if t in read},
                      tuple(folded))


def _evaluate_constants(outputs, params, folded, taken):
    order = topo_order(outputs)
    constant = {id(op) for op in order if isinstance(op, PlaceholderOp) and
                op.output(0) in params}
    for op in order:
        if isinstance(op, ComputeOp) and op.input_tensors and \
                all(id(t.op) in constant for t in op.input_tensors):
            constant.add(id(op))
    readers = consumers(order)
    outs = {id(t.op) for t in outputs}
    frontier = [op.output(0) for op in order
                if id(op) in constant and not isinstance(op, PlaceholderOp) and
                (id(op) in outs or any(id(r) not in constant for r in readers[op]))]
    if not frontier:
        return outputs, params
    values = reference(frontier, {t: v for t, v in params.items()})
    values = values if isinstance(values, list) else [values]
    replace = {}
    for t, value in zip(frontier, values):
        new = placeholder(t.shape, t.dtype, t.name)
        params[new] = np.ascontiguousarray(value)
        replace[t] = new
        inside = [op.name for op in topo_order([t]) if not isinstance(op, PlaceholderOp)]
        folded.append(Folded("constant", tuple(inside), t.name))
    new = rebuild(outputs, replace)
    return [new[t] for t in outputs], params


def _fold_batch_norms(outputs, params, folded, taken):
    """One batch_norm at a time: the replacement reads the graph as it is, so the graph
    rebuilt around it stays one graph (no stage of the old one resurfaces upstream)."""
    while True:
        order = topo_order(outputs)
        readers = consumers(order)
        outs = {id(t.op) for t in outputs}
        match = next((m for m in (_batch_norm_after_conv(op, params, readers, outs)
                                  for op in order) if m is not None), None)
        if match is None:
            return outputs, params
        new = rebuild(outputs, {match.norm.output(0): _folded(match, params, taken)})
        outputs = [new[t] for t in outputs]
        folded.append(Folded("batch_norm", (match.norm.name,), match.conv.name))


@dataclass(frozen=True)
class _Match:
    norm: ComputeOp                  # (c - mean[f]) * scale[f] + beta[f]
    conv: Tensor                     # the reduction sum(x * w)
    weight: Tensor                   # w[f, ...] (a param)
    bias_stage: Tensor | None        # conv + bias[f], if there is one
    bias: Tensor | None
    mean: Tensor
    scale: Tensor
    beta: Tensor


def _batch_norm_after_conv(op, params, readers, outs) -> _Match | None:
    """The batch_norm stage of nn.batch_norm reading a convolution (or dense) that only it
    reads, every per-channel operand a weight; None otherwise."""
    if not isinstance(op, ComputeOp) or len(op.axis) < 2:
        return None
    channel = op.axis[1]
    b = op.body
    if not (isinstance(b, BinOp) and b.op == "add" and isinstance(b.a, BinOp) and
            b.a.op == "mul" and isinstance(b.a.a, BinOp) and b.a.a.op == "sub"):
        return None
    source, mean, scale, beta = b.a.a.a, b.a.a.b, b.a.b, b.b
    if not (_at(source, op.axis) and all(_per_channel(t, channel, params)
                                         for t in (mean, scale, beta))):
        return None
    producer = source.tensor
    bias_stage = bias = None
    if _is_bias(producer, params):
        bias_stage, bias = producer, producer.op.body.b.tensor
        producer = producer.op.body.a.tensor
    elif _is_crop(producer):
        # nn.conv2d's narrow rows computed wider, then read at out_w columns: the
        # batch_norm folds into the wide convolution the same way
        bias_stage = producer
        producer = producer.op.body.tensor
    conv = producer.op
    for t in (producer, bias_stage):
        if t is not None and (id(t.op) in outs or len(readers[t.op]) != 1):
            return None
    weight = _weight(conv, params)
    if weight is None:
        return None
    return _Match(op, producer, weight, bias_stage, bias, mean.tensor, scale.tensor,
                  beta.tensor)


def _at(e, axes) -> bool:
    return isinstance(e, Load) and len(e.indices) == len(axes) and \
        all(i is a for i, a in zip(e.indices, axes))


def _per_channel(e, channel, params) -> bool:
    return isinstance(e, Load) and e.tensor in params and len(e.indices) == 1 and \
        e.indices[0] is channel


def _is_bias(t: Tensor, params) -> bool:
    op = t.op
    if not isinstance(op, ComputeOp) or len(op.axis) < 2:
        return False
    b = op.body
    return isinstance(b, BinOp) and b.op == "add" and _at(b.a, op.axis) and \
        _per_channel(b.b, op.axis[1], params) and isinstance(b.a.tensor.op, ComputeOp) and \
        isinstance(b.a.tensor.op.body, Reduce)


def _is_crop(t: Tensor) -> bool:
    """A stage that reads a reduction at its own index and does nothing else."""
    op = t.op
    return isinstance(op, ComputeOp) and len(op.axis) >= 2 and _at(op.body, op.axis) and \
        isinstance(op.body.tensor.op, ComputeOp) and isinstance(op.body.tensor.op.body, Reduce)


def _weight(conv, params) -> Tensor | None:
    """The weight of sum(x[...] * w[f, ...]) with f the output channel (axis 1)."""
    if not isinstance(conv, ComputeOp) or not isinstance(conv.body, Reduce) or \
            conv.body.reducer.name != "sum" or len(conv.axis) < 2:
        return None
    body = conv.body.body
    if not (isinstance(body, BinOp) and body.op == "mul"):
        return None
    for ld in (body.a, body.b):
        if isinstance(ld, Load) and ld.tensor in params and \
                isinstance(ld.indices[0], IterVar) and ld.indices[0] is conv.axis[1]:
            return ld.tensor
    return None


def _folded(m: _Match, params, taken) -> Tensor:
    """conv with w * scale, then + (beta - mean * scale [+ bias * scale]), named as the
    batch_norm stage was."""
    scale = params[m.scale].astype(np.float64)
    w = params[m.weight]
    shape = (-1,) + (1,) * (w.ndim - 1)
    new_w = placeholder(m.weight.shape, m.weight.dtype, unique_name(f"{m.weight.name}_bn", taken))
    params[new_w] = np.ascontiguousarray((w * scale.reshape(shape)).astype(w.dtype))
    shift = params[m.beta] - params[m.mean] * scale
    if m.bias is not None:
        shift = shift + params[m.bias] * scale
    new_b = placeholder(m.beta.shape, m.beta.dtype, unique_name(f"{m.norm.name}_bias", taken))
    params[new_b] = np.ascontiguousarray(shift.astype(params[m.beta].dtype))
    conv = m.conv.op

    def reweigh(node):
        if isinstance(node, Load) and node.tensor == m.weight:
            return Load(new_w, node.indices)
        return None
    new_conv = ComputeOp(conv.name, conv.axis, transform(conv.body, reweigh)).output(0)
    axis = m.norm.axis
    return ComputeOp(m.norm.name, axis,
                     new_conv[tuple(axis)] + new_b[axis[1]]).output(0)
