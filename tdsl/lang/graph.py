"""The dataflow graph of operations: topological order and consumers."""

from __future__ import annotations

from typing import Iterable

from ..errors import TdslTypeError, TdslValueError
from .tensor import Operation, PlaceholderOp, Tensor, UpdateOp


def as_tensor_list(outputs, what: str = "outputs") -> list[Tensor]:
    items = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    for t in items:
        if not isinstance(t, Tensor):
            raise TdslTypeError(f"{what} must be tensors (from td.placeholder/td.compute); "
                                f"got {type(t).__name__} {t!r}")
    if not items:
        raise TdslValueError(f"{what} is empty")
    return items


def topo_order(outputs: Iterable[Tensor]) -> list[Operation]:
    """Every operation the outputs depend on, producers before consumers
    (ties in the order they were first reached, depth first)."""
    order: list[Operation] = []
    state: dict[int, str] = {}

    def visit(op: Operation) -> None:
        mark = state.get(id(op))
        if mark == "done":
            return
        if mark == "active":
            raise TdslValueError(f"the computation of {op.name} depends on itself")
        state[id(op)] = "active"
        for t in op.input_tensors:
            if t.op is not op:
                visit(t.op)
        state[id(op)] = "done"
        order.append(op)

    for t in outputs:
        visit(t.op)
    _check_versions(order)
    return order


def _check_versions(order: list[Operation]) -> None:
    """A tensor superseded by an update may be read only by that update."""
    updated_by = {id(op.base.op): op for op in order if isinstance(op, UpdateOp)}
    for op in order:
        for t in op.input_tensors:
            newer = updated_by.get(id(t.op))
            if newer is not None and newer is not op:
                raise TdslValueError(
                    f"{op.name} reads {t.name}, which the update {newer.name} overwrites in "
                    f"place; read the tensor returned by td.update ({newer.name}) instead, or "
                    f"copy {t.name} in its own td.compute first")


def placeholders(order: Iterable[Operation]) -> list[Tensor]:
    return [op.output(0) for op in order if isinstance(op, PlaceholderOp)]


def storage_root(t: Tensor) -> Tensor:
    """The tensor whose storage `t` lives in (an update writes its base in place)."""
    while isinstance(t.op, UpdateOp):
        t = t.op.base
    return t
