"""Rebuilding a stage DAG with some reads redirected: the one graph rewrite the graph
compiler needs (cutting a network into kernels, naming stages apart, folding constants).

Operations are immutable, so a rewrite builds new ones: `rebuild` walks the DAG producers
first and gives every operation whose inputs changed (or that is renamed) a new operation
with the same axes and a body whose loads read the replacements. Nothing is mutated; the
caller keeps the old graph.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..lang.expr import Load
from ..lang.names import unique_name
from ..lang.tensor import ComputeOp, Operation, PlaceholderOp, Tensor, UpdateOp
from ..lang.visit import transform


def rebuild(outputs: Iterable[Tensor], replace: dict[Tensor, Tensor],
            rename: Callable[[Operation], str] | None = None) -> dict[Tensor, Tensor]:
    """Old tensor -> new tensor for every tensor `outputs` depend on, where each read of a
    key of `replace` reads its value instead (the replaced tensor's producers are not
    visited) and each operation is named `rename(op)` (default: its own name).

    >>> new = rebuild([y], {h: td.placeholder(h.shape, h.dtype, h.name)})
    >>> y_cut = new[y]            # y computed from the placeholder instead of from h
    """
    new: dict[Tensor, Tensor] = dict(replace)
    for op in _order(outputs, replace):
        t = op.output(0)
        if t in new:
            continue
        name = rename(op) if rename is not None else op.name
        new[t] = _rebuilt(op, name, new)
    return new


def _order(outputs, replace) -> list[Operation]:
    """The operations reached from `outputs` without crossing a replaced tensor."""
    order: list[Operation] = []
    seen: set[int] = set()

    def visit(op: Operation) -> None:
        if id(op) in seen:
            return
        seen.add(id(op))
        if op.output(0) not in replace:
            for t in op.input_tensors:
                if t.op is not op:
                    visit(t.op)
        order.append(op)

    for t in outputs:
        visit(t.op)
    return order


def _rebuilt(op: Operation, name: str, new: dict[Tensor, Tensor]) -> Tensor:
    def redirect(node):
        if isinstance(node, Load) and node.tensor in new and new[node.tensor] is not node.tensor:
            return Load(new[node.tensor], node.indices)
        return None

    if isinstance(op, PlaceholderOp):
        return op.output(0) if name == op.name else \
            PlaceholderOp(name, op.shape, op.dtype).output(0)
    if isinstance(op, ComputeOp):
        body = transform(op.body, redirect)
        if body is op.body and name == op.name:
            return op.output(0)
        return ComputeOp(name, op.axis, body).output(0)
    if isinstance(op, UpdateOp):
        base = new.get(op.base, op.base)
        index = tuple(transform(i, redirect) for i in op.index)
        value = transform(op.value, redirect)
        return UpdateOp(name, base, op.axis, op.reduce_axis, index, value).output(0)
    raise TypeError(f"cannot rebuild {type(op).__name__}")


def distinct_names(outputs: list[Tensor], keep: Iterable[Tensor] = ()) -> dict[Tensor, Tensor]:
    """Every tensor of the DAG renamed apart (`relu`, `relu_1`, ...), as `rebuild` maps
    them: nn operators reuse default names, and a kernel, a message or a memory plan must
    tell two `relu`s apart. The tensors of `keep` (the network's inputs) are not renamed."""
    taken: set[str] = {t.name for t in keep}
    kept = {id(t.op) for t in keep}

    def rename(op: Operation) -> str:
        return op.name if id(op) in kept else unique_name(op.name, taken)
    return rebuild(outputs, {}, rename)


def consumers(order: list[Operation]) -> dict[Operation, list[Operation]]:
    """Operation -> the operations that read it (each once, in `order`)."""
    readers: dict[Operation, list[Operation]] = {op: [] for op in order}
    for op in order:
        for t in op.input_tensors:
            if t.op is not op and op not in readers[t.op]:
                readers[t.op].append(op)
    return readers


__all__ = ["rebuild", "distinct_names", "consumers"]
