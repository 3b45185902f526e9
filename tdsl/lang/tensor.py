"""Tensors and the operations that produce them: placeholders, computes, updates.

`td.compute(shape, lambda i, j: ...)` runs the lambda once on fresh axes named
after its parameters and records the expression it returns. `td.update` adds a
Halide-style update definition (a recurrence) to an existing tensor.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import TdslTypeError, TdslValueError
from . import dtypes
from .expr import Const, Expr, IterVar, Load, Reduce, Var, as_expr, cast, index_expr
from .visit import free_vars, walk


class Tensor:
    """The output of an operation; index it (`A[i, j]`) to read an element."""

    __slots__ = ("op", "value_index")

    def __init__(self, op: "Operation", value_index: int = 0):
        self.op = op
        self.value_index = value_index

    @property
    def shape(self) -> tuple[Expr, ...]:
        return self.op.shape

    @property
    def dtype(self) -> str:
        return self.op.dtype

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def ndim(self) -> int:
        return len(self.op.shape)

    def __getitem__(self, indices) -> Load:
        if not isinstance(indices, tuple):
            indices = (indices,)
        if any(isinstance(i, slice) for i in indices):
            raise TdslTypeError(f"{self.name}[...] takes one index expression per dimension; "
                                "slices are not supported inside a compute")
        if len(indices) != self.ndim:
            raise TdslValueError(f"{self.name} has {self.ndim} dimension(s) "
                                 f"(shape {shape_str(self.shape)}); got {len(indices)} index(es)")
        idx = tuple(index_expr(i, f"index {d} of {self.name}") for d, i in enumerate(indices))
        return Load(self, idx)

    def __eq__(self, other):
        return isinstance(other, Tensor) and other.op is self.op and \
            other.value_index == self.value_index

    def __hash__(self):
        return hash((id(self.op), self.value_index))

    def __bool__(self):
        return True

    def _not_a_value(self, *_):
        raise TdslTypeError(f"the tensor {self.name} was used as a value; index it, e.g. "
                            f"{self.name}[{', '.join('ijklmn'[d] for d in range(self.ndim))}]")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _not_a_value
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _not_a_value
    __pow__ = __rpow__ = __neg__ = __lt__ = __le__ = __gt__ = __ge__ = _not_a_value
    __and__ = __or__ = __invert__ = _not_a_value

    def __repr__(self):
        return f"Tensor({self.name}, shape={shape_str(self.shape)}, dtype={self.dtype})"


def shape_str(shape: Sequence[Expr]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


class Operation:
    """Base of the operations; each has one output tensor (`op.output(0)`)."""

    name: str
    shape: tuple[Expr, ...]
    dtype: str

    def output(self, index: int = 0) -> Tensor:
        if index != 0:
            raise TdslValueError(f"{self.name} has one output; got index {index}")
        return self._tensor

    @property
    def input_tensors(self) -> list[Tensor]:
        return []


@dataclass(frozen=True, eq=False)
class PlaceholderOp(Operation):
    name: str
    shape: tuple[Expr, ...]
    dtype: str
    _tensor: Tensor = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_tensor", Tensor(self))


@dataclass(frozen=True, eq=False)
class ComputeOp(Operation):
    """`name[axis] = body` over the data `axis`; a `Reduce` body makes it a reduction."""

    name: str
    axis: tuple[IterVar, ...]
    body: Expr
    _tensor: Tensor = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_tensor", Tensor(self))

    @property
    def shape(self) -> tuple[Expr, ...]:
        return tuple(a.extent for a in self.axis)

    @property
    def dtype(self) -> str:
        return self.body.dtype

    @property
    def reduce_axis(self) -> tuple[IterVar, ...]:
        return self.body.axes if isinstance(self.body, Reduce) else ()

    @property
    def input_tensors(self) -> list[Tensor]:
        return _tensors_read(self.body)


@dataclass(frozen=True, eq=False)
class UpdateOp(Operation):
    """An update definition of `base`: for every point of `axis` x `reduce_axis` in
    lexicographic order, `base[index] = value` (reading `base` sees earlier updates)."""

    name: str
    base: Tensor
    axis: tuple[IterVar, ...]           # pure axes (each also appears bare in `index`)
    reduce_axis: tuple[IterVar, ...]
    index: tuple[Expr, ...]
    value: Expr
    _tensor: Tensor = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_tensor", Tensor(self))

    @property
    def shape(self) -> tuple[Expr, ...]:
        return self.base.shape

    @property
    def dtype(self) -> str:
        return self.base.dtype

    @property
    def input_tensors(self) -> list[Tensor]:
        reads = _tensors_read(self.value)
        for e in self.index:
            reads += [t for t in _tensors_read(e) if t not in reads]
        if self.base not in reads:
            reads.insert(0, self.base)
        return reads


def _tensors_read(e: Expr) -> list[Tensor]:
    seen: list[Tensor] = []
    for node in walk(e):
        if isinstance(node, Load) and node.tensor not in seen:
            seen.append(node.tensor)
    return seen


# ---------------------------------------------------------------------------------------
# The user-facing constructors
# ---------------------------------------------------------------------------------------

def var(name: str = "n", dtype: str = dtypes.INDEX) -> Var:
    """A symbolic size (or any integer parameter), bound when the kernel is called.

    >>> n = td.var("n")
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise TdslValueError(f"a variable name must be a Python identifier; got {name!r}")
    dt = dtypes.as_dtype(dtype)
    if not dtypes.is_int(dt):
        raise TdslTypeError(f"td.var is an integer size; dtype {dt} is not an integer type")
    return Var(name, dt)


def _shape(shape, what: str) -> tuple[Expr, ...]:
    if isinstance(shape, (int, Expr)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TdslTypeError(f"{what} must be a tuple of sizes; got {shape!r}")
    dims = tuple(index_expr(s, f"{what}[{d}]") for d, s in enumerate(shape))
    for d, s in enumerate(dims):
        if isinstance(s, Const) and s.value < 1:
            raise TdslValueError(f"{what}[{d}] must be at least 1; got {s.value}")
        for v in free_vars(s):
            if isinstance(v, IterVar):
                raise TdslValueError(f"{what}[{d}] uses the axis {v.name}; sizes may use "
                                     "only symbolic sizes (td.var) and constants")
    return dims


def _name(name: object, default: str) -> str:
    name = default if name is None else name
    if not isinstance(name, str) or not name.isidentifier():
        raise TdslValueError(f"a tensor name must be a Python identifier; got {name!r}")
    return name


def placeholder(shape, dtype="float32", name: str | None = None) -> Tensor:
    """An input tensor of the kernel.

    >>> A = td.placeholder((n, m), name="A")          # float32 by default
    """
    return PlaceholderOp(_name(name, "placeholder"), _shape(shape, "placeholder shape"),
                         dtypes.as_dtype(dtype)).output(0)


def reduce_axis(dom, name: str = "k") -> IterVar:
    """A reduction axis over `0 <= k < dom`, or `lo <= k < hi` for `dom=(lo, hi)`.

    >>> k = td.reduce_axis(l, name="k")
    """
    if isinstance(dom, (tuple, list)):
        if len(dom) != 2:
            raise TdslValueError(f"reduce_axis range must be (lo, hi); got {dom!r}")
        lo = index_expr(dom[0], "reduce_axis lower bound")
        hi = index_expr(dom[1], "reduce_axis upper bound")
        extent = hi - lo
    else:
        lo, extent = Const(0, dtypes.INDEX), index_expr(dom, "reduce_axis extent")
    if isinstance(extent, Const) and extent.value < 1:
        raise TdslValueError(f"reduce_axis {name} is empty: extent {extent.value}")
    return IterVar(_name(name, "k"), lo, extent, "reduce")


def _axis_names(fn: Callable, ndim: int, what: str) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return [f"i{d}" for d in range(ndim)]
    if len(params) != ndim:
        raise TdslValueError(f"{what}: the lambda takes {len(params)} argument(s) but the shape "
                             f"has {ndim} dimension(s)")
    return [p.name for p in params]


def compute(shape, fcompute: Callable[..., object], name: str | None = None,
            dtype=None) -> Tensor:
    """A tensor defined elementwise by `fcompute` over its axes.

    The lambda's parameter names name the axes (`lambda i, j:` gives axes i, j).
    The body may be a reduction (`td.sum(..., axis=k)`) at the top level only.

    >>> C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    """
    name = _name(name, "compute")
    dims = _shape(shape, f"the shape of {name}")
    names = _axis_names(fcompute, len(dims), f"td.compute({name})")
    axis = tuple(IterVar(n, Const(0, dtypes.INDEX), d, "data") for n, d in zip(names, dims))
    body = fcompute(*axis)
    if isinstance(body, (tuple, list)):
        raise TdslTypeError(f"td.compute({name}): the lambda returned {len(body)} values; "
                            "one compute has one output (write one compute per output)")
    body = as_expr(body, f"the body of {name}")
    if dtype is not None:
        dt = dtypes.as_dtype(dtype)
        body = Reduce(body.reducer, cast(dt, body.body), body.axes, body.where) \
            if isinstance(body, Reduce) else cast(dt, body)
    _check_body(name, body, axis)
    return ComputeOp(name, axis, body).output(0)


def _check_body(name: str, body: Expr, axis: tuple[IterVar, ...]) -> None:
    top = body.body if isinstance(body, Reduce) else body
    parts = [top] + ([body.where] if isinstance(body, Reduce) and body.where is not None else [])
    allowed = set(map(id, axis)) | (set(map(id, body.axes)) if isinstance(body, Reduce) else set())
    for part in parts:
        for node in walk(part):
            if isinstance(node, Reduce):
                raise TdslValueError(
                    f"td.compute({name}): a reduction ({node.reducer.name}) must be the whole "
                    f"body of a compute, not part of `{body}`. Compute the reduction in its own "
                    "stage and use that tensor here")
            if isinstance(node, IterVar) and id(node) not in allowed:
                kind = "reduction axis" if node.kind == "reduce" else "axis"
                raise TdslValueError(
                    f"td.compute({name}) uses the {kind} {node.name}, which is not an axis of "
                    f"{name}" + (" nor reduced over in its body: pass it in axis=..."
                                 if node.kind == "reduce" else
                                 " (an axis of another compute cannot be used here)"))


def update(tensor: Tensor, index_fn: Callable[..., object], value_fn: Callable[..., object],
           name: str | None = None) -> Tensor:
    """A recurrence: an update definition of `tensor`, in the manner of Halide.

    The lambdas take the update's pure axes (one per bare axis of the index);
    reduction axes (`td.reduce_axis`) used in them are iterated in order, innermost
    last, after the pure axes. Reads of `tensor` inside `value_fn` see the values
    written so far, so `y[r] = y[r - 1] + x[r]` is a prefix sum. Returns the tensor
    after the update (same storage); read that one from later stages.

    >>> r = td.reduce_axis((1, n), name="r")
    >>> Y = td.compute((n,), lambda i: X[i], name="Y")
    >>> Y = td.update(Y, lambda: (r,), lambda: Y[r - 1] + X[r])
    """
    if not isinstance(tensor, Tensor) or isinstance(tensor.op, PlaceholderOp):
        raise TdslTypeError("td.update updates a computed tensor (td.compute or td.update); "
                            f"got {tensor!r}")
    base = tensor
    while isinstance(base.op, UpdateOp):
        base = base.op.base
    label = _name(name, f"{base.name}_update")
    names = _axis_names(index_fn, len(inspect.signature(index_fn).parameters),
                        f"td.update({label})")
    pure = [IterVar(n, Const(0, dtypes.INDEX), Const(1, dtypes.INDEX), "data") for n in names]
    index = index_fn(*pure)
    if not isinstance(index, (tuple, list)):
        index = (index,)
    if len(index) != tensor.ndim:
        raise TdslValueError(f"td.update({label}): the index has {len(index)} entries but "
                             f"{tensor.name} has {tensor.ndim} dimension(s)")
    index = tuple(index_expr(e, f"index {d} of the update of {tensor.name}")
                  for d, e in enumerate(index))
    # Each pure axis is the bare index of one dimension: its extent is that dimension's.
    axis = []
    for p in pure:
        dims = [d for d, e in enumerate(index) if e is p]
        if not dims:
            raise TdslValueError(f"td.update({label}): the axis {p.name} must appear on its own "
                                 f"as one entry of the index, e.g. (..., {p.name}, ...)")
        axis.append(IterVar(p.name, Const(0, dtypes.INDEX), tensor.shape[dims[0]], "data"))
    mapping = dict(zip(pure, axis))
    from .visit import substitute
    index = tuple(substitute(e, mapping) for e in index)
    value = as_expr(value_fn(*axis), f"the value of {label}")
    value = cast(tensor.dtype, value)
    reduce_axes: list[IterVar] = []
    for e in (*index, value):
        for v in free_vars(e):
            if isinstance(v, IterVar) and v.kind == "reduce" and not _has(reduce_axes, v):
                reduce_axes.append(v)
            elif isinstance(v, IterVar) and v.kind == "data" and not _has(axis, v):
                raise TdslValueError(f"td.update({label}) uses the axis {v.name} of another "
                                     "compute; use the lambda's parameters or reduce axes")
    if any(isinstance(n, Reduce) for e in (*index, value) for n in walk(e)):
        raise TdslValueError(f"td.update({label}): a reduction inside an update definition is "
                             "not supported; compute it in its own stage")
    return UpdateOp(label, tensor, tuple(axis), tuple(reduce_axes), index, value).output(0)


def _has(items, x) -> bool:
    """Identity membership (`in` would build `==` expressions)."""
    return any(item is x for item in items)
