"""`td.grad`: reverse-mode differentiation of a stage DAG into more stages.

    dW, dX = td.grad(Y, [W, X])              # Y a scalar: its adjoint (the head) is 1
    dW, dX = td.grad(Y, [W, X], head=dY)     # dY shaped like Y

The walk visits the stages from Y back to the inputs (reverse topological order). Each
stage's adjoint is the sum of what its consumers contributed, materialized as one
compute `<name>_grad`; then its body is swept in reverse (`reductions.seed`,
`derivatives.partials`) and each read `A[f(v)]` becomes a piece of A's adjoint
(`adjoint.contribution`: a gather over A's index space). Only stages on a path from Y
to an input are visited. What comes back is ordinary compute definitions: schedule them
(`td.create_schedule`, `td.auto_schedule`), print them, build them with the inputs.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import TdslError, TdslTypeError, TdslValueError
from ..lang import dtypes
from ..lang.expr import Const, Expr, IterVar, Load, Reduce, cast
from ..lang.graph import topo_order
from ..lang.tensor import ComputeOp, Operation, Tensor, UpdateOp, shape_str
from ..lang.visit import same
from .adjoint import Piece, contribution
from .affine import parse
from .derivatives import partials
from .reductions import seed
from .stages import axis_names, named_compute

Reader = Callable[[tuple], Expr]


def grad(output: Tensor, inputs: Sequence[Tensor] | Tensor, head: Tensor | None = None):
    """The adjoints of `inputs` for `output`: d(sum(head * output)) / d(input), one tensor
    per input, shaped and typed like it (zeros where the output does not depend on it).

    `head` is the adjoint of the output (a tensor shaped like it, e.g. a placeholder); it
    defaults to 1 for a scalar output (shape ()). Differentiable: arithmetic, the float
    intrinsics, select, casts between float types (casts to integers, floor, ceil, round,
    trunc and comparisons pass nothing), sum / max / min reductions with where= (on a tie
    the first extremum in the reduction's order takes the adjoint; `maximum(a, b)` gives it
    to a where a >= b, `minimum(a, b)` where a <= b), affine reads such as `A[i + r, j * 2]`
    (gathers), reads at data-dependent indices (a guard such as `label[i] == j`, or a
    scatter-add with td.update for `E[idx[i], j]`). Refused with a TdslError: integer
    inputs or outputs, and on the path recurrences (td.update), custom reducers and
    reductions whose range depends on another axis.

    >>> dW, dX = td.grad(loss, [W, X])
    >>> mod = td.build(td.create_schedule([dW, dX]), [X, W, dW, dX])

    Pass td.build the placeholders the adjoints read: it refuses unused ones (the input of a
    linear function has no place in its own adjoint).
    """
    output = _check_tensor(output, "the output")
    single = isinstance(inputs, Tensor)
    wanted = [inputs] if single else [_check_tensor(t, "each input") for t in
                                      _as_list(inputs)]
    for t in [output, *wanted]:
        if not dtypes.is_float(t.dtype):
            raise TdslTypeError(
                f"td.grad: {t.name} is {t.dtype}; gradients exist for floating-point tensors "
                "only (an integer tensor is piecewise constant). Cast it to a float type in "
                "a td.compute and differentiate with respect to that")
    order = topo_order([output])
    wanted_ops = {id(t.op) for t in wanted}
    depends = _depending(order, wanted_ops)
    readers: dict[int, Reader] = {id(output.op): _head_reader(output, head)}
    pieces: dict[int, list[Piece]] = {}
    results: dict[int, Tensor] = {}
    gathers: dict[int, Piece] = {}     # a gather stage's op -> its piece (reduce_at)
    for op in reversed(order):
        if id(op) not in depends or (id(op) not in readers and id(op) not in pieces):
            continue                               # no adjoint reaches it
        if isinstance(op, UpdateOp):
            raise _recurrence_error(op, output)
        if id(op) not in readers:
            parts = pieces.pop(id(op))
            adjoint = _accumulate(op, parts, copy=id(op) in wanted_ops, gathers=gathers)
            readers[id(op)] = _reader(adjoint)
            results[id(op)] = adjoint
            if len(parts) == 1 and parts[0].reduce_at is not None and \
                    id(op) not in wanted_ops:
                gathers[id(adjoint.op)] = parts[0]
        if isinstance(op, ComputeOp):
            made = _propagate(op, readers[id(op)], depends, pieces)
            if made != 1 and id(op) in results:
                gathers.pop(id(results[id(op)].op), None)   # read by several pieces
    if id(output.op) in wanted_ops:
        results[id(output.op)] = _materialize(output, readers[id(output.op)])
    grads = [results[id(t.op)] if id(t.op) in results else _zeros(t) for t in wanted]
    return grads[0] if single else grads


def _propagate(op: ComputeOp, adjoint_at: Reader, depends: set[int],
               pieces: dict[int, list[Piece]]) -> int:
    """Sweep op's body with its adjoint; add a piece to each input read on the path.
    Returns how many pieces it added."""
    start = seed(op, adjoint_at)
    live = lambda load: id(load.tensor.op) in depends and load.tensor.op is not op  # noqa: E731
    values = {} if isinstance(op.body, Reduce) else {id(op.body): op.output(0)[tuple(op.axis)]}
    merged: list[tuple[Load, Expr]] = []
    for load, g in partials(start.root, start.adjoint, live, values):
        for n, (other, h) in enumerate(merged):
            if other.tensor == load.tensor and all(same(a, b) for a, b in
                                                   zip(other.indices, load.indices)):
                merged[n] = (other, h + g)
                break
        else:
            merged.append((load, g))
    for load, g in merged:
        pieces.setdefault(id(load.tensor.op), []).append(contribution(op, load, g, start.where))
    return len(merged)


def _accumulate(op: Operation, parts: list[Piece], copy: bool,
                gathers: dict[int, Piece] | None = None) -> Tensor:
    """One tensor `<name>_grad`: the sum of the pieces. A lone stage piece is itself; a lone
    piece that reads another computed tensor element for element is that tensor (a reshape
    with nothing to add), unless `copy` (an input's adjoint: a stage of its own); a lone
    piece that reads a gather stage at shifted indices, and is its only reader, is that
    gather's sum made at those indices (the crop of a padding's adjoint: the interior only).
    """
    t = op.output(0)
    name = f"{op.name}_grad"
    if len(parts) == 1 and parts[0].stage is not None:
        return parts[0].stage(name)
    if len(parts) == 1 and not copy:
        same_as = _whole_read(parts[0], t)
        if same_as is not None:
            return same_as
    if len(parts) == 1 and gathers:
        composed = _composed(parts[0], t, name, gathers)
        if composed is not None:
            return composed
    readers: list[Reader] = []
    for n, part in enumerate(parts):
        if part.stage is not None:
            label = f"{name}_{part.source}" + (f"_{n}" if _repeated(parts, part) else "")
            readers.append(_reader(part.stage(label)))
        else:
            readers.append(part.at)

    def total(*indices):
        value = readers[0](indices)
        for read in readers[1:]:
            value = value + read(indices)
        return cast(t.dtype, value)

    return named_compute(t.shape, total, axis_names(t), name)


def _whole_read(part: Piece, t: Tensor) -> Tensor | None:
    """The computed tensor that `part` reads at exactly the adjoint's own axes, if that is
    all it does (and its dtype is t's)."""
    axes = tuple(IterVar(f"i{d}", Const(0, dtypes.INDEX), s, "data") for d, s in
                 enumerate(t.shape))
    e = part.at(axes)
    if isinstance(e, Load) and e.tensor.dtype == t.dtype and \
            isinstance(e.tensor.op, ComputeOp) and len(e.indices) == len(axes) and \
            all(i is a for i, a in zip(e.indices, axes)) and \
            all(_same_size(a, b) for a, b in zip(e.tensor.shape, t.shape)):
        return e.tensor
    return None


def _composed(part: Piece, t: Tensor, name: str, gathers: dict[int, Piece]) -> Tensor | None:
    """t's adjoint when `part` is one read of a gather stage G at t's axes shifted by
    constants, G[i + c] (a crop), and G has no other reader: sum_r body(i + c, r) over t's
    axes directly. (A reshape's read, G[i // 16, ...], stays a read: the sum is better
    made over G's own axes.)"""
    axes = tuple(IterVar(f"i{d}", Const(0, dtypes.INDEX), s, "data") for d, s in
                 enumerate(t.shape))
    e = part.at(axes)
    if not (isinstance(e, Load) and id(e.tensor.op) in gathers and e.dtype == t.dtype and
            len(e.indices) == len(axes) and
            all(dtypes.is_int(i.dtype) and parse(i).without(a).is_const and
                parse(i).coefficient(a) == 1 for i, a in zip(e.indices, axes))):
        return None
    gather = gathers.pop(id(e.tensor.op))       # one reader: made once

    def total(*indices):
        return gather.reduce_at(part.at(indices).indices)

    return named_compute(t.shape, total, axis_names(t), name)


def _repeated(parts: list[Piece], part: Piece) -> bool:
    return sum(p.source == part.source and p.stage is not None for p in parts) > 1


def _reader(t: Tensor) -> Reader:
    return lambda indices: t[tuple(indices)] if indices else t[()]


def _head_reader(output: Tensor, head: Tensor | None) -> Reader:
    """The adjoint of the output: 1 for a scalar, else the head tensor."""
    if head is None:
        if output.ndim:
            raise TdslValueError(
                f"td.grad: {output.name} has shape {shape_str(output.shape)}, not a scalar; "
                f"the head (the adjoint of {output.name}) defaults to 1 only for a scalar "
                f"output of shape (). Pass head=, a tensor shaped like {output.name}")
        one = Const(1.0, output.dtype)
        return lambda indices: one
    head = _check_tensor(head, "head")
    if head.ndim != output.ndim or not all(_same_size(a, b) for a, b in
                                           zip(head.shape, output.shape)):
        raise TdslValueError(
            f"td.grad: the head {head.name} has shape {shape_str(head.shape)}; it must have "
            f"the shape of the output {output.name}, {shape_str(output.shape)}")
    if not dtypes.is_float(head.dtype):
        raise TdslTypeError(f"td.grad: the head {head.name} is {head.dtype}; it must be a "
                            f"floating-point tensor like {output.name} ({output.dtype})")
    return lambda indices: cast(output.dtype, head[tuple(indices)] if indices else head[()])


def _same_size(a: Expr, b: Expr) -> bool:
    if isinstance(a, Const) and isinstance(b, Const):
        return a.value == b.value
    return same(a, b)


def _materialize(t: Tensor, read: Reader) -> Tensor:
    return named_compute(t.shape, lambda *i: cast(t.dtype, read(i)), axis_names(t),
                         f"{t.name}_grad")


def _zeros(t: Tensor) -> Tensor:
    """The adjoint of an input the output does not depend on."""
    return named_compute(t.shape, lambda *i: Const(0.0, t.dtype), axis_names(t),
                         f"{t.name}_grad")


def _depending(order: list[Operation], wanted: set[int]) -> set[int]:
    """The operations that read a wanted tensor, directly or through others."""
    depends: set[int] = set()
    for op in order:
        if id(op) in wanted or any(id(t.op) in depends for t in op.input_tensors
                                   if t.op is not op):
            depends.add(id(op))
    return depends


def _recurrence_error(op: UpdateOp, output: Tensor) -> TdslError:
    base = op.base
    while isinstance(base.op, UpdateOp):
        base = base.op.base
    return TdslError(
        f"td.grad: {op.name} is a recurrence (td.update of {base.name}) between "
        f"{output.name} and the inputs; it is not differentiable: it overwrites {base.name} "
        "in place, so the values its adjoint would need are gone, and its reads of "
        "earlier updates chain in an order td.grad does not invert. Write that stage "
        "without td.update (a td.sum, for instance) to differentiate through it")


def _check_tensor(t: object, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TdslTypeError(f"td.grad: {what} must be a tdsl tensor; got "
                            f"{type(t).__name__} {t!r}")
    return t


def _as_list(inputs) -> list:
    if not isinstance(inputs, (list, tuple)):
        raise TdslTypeError("td.grad: the inputs must be a tensor or a list of tensors; got "
                            f"{type(inputs).__name__}")
    if not inputs:
        raise TdslValueError("td.grad: the list of inputs is empty")
    return list(inputs)

