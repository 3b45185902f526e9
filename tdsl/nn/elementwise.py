"""Binary arithmetic with NumPy broadcasting: add, sub, mul, div, maximum, minimum, and
`elementwise` for any function of broadcast operands.

Broadcasting aligns shapes at the right; a dimension of size 1 stretches to the other
operand's size, which in a compute means reading that operand at index 0 there. A
symbolic size broadcasts against itself or 1 only (its value is not known when the
kernel is defined). Python numbers are weak, as in NumPy 2: float32 + 1.0 is float32.
"""

from __future__ import annotations

from typing import Callable

import tdsl as td
from tdsl.errors import TdslTypeError, TdslValueError
from tdsl.lang.expr import Const, Expr
from tdsl.lang.tensor import Tensor, shape_str

from . import _checks as check


def add(a, b, *, name: str | None = None) -> Tensor:
    """a + b with broadcasting.

    >>> y = nn.add(x, bias)           # (n, m) + (m,)
    """
    return elementwise(lambda u, v: u + v, a, b, name=check.name(name, "add"), op="nn.add")


def sub(a, b, *, name: str | None = None) -> Tensor:
    """a - b with broadcasting.

    >>> y = nn.sub(x, mean)           # (n, m) - (n, 1)
    """
    return elementwise(lambda u, v: u - v, a, b, name=check.name(name, "sub"), op="nn.sub")


def mul(a, b, *, name: str | None = None) -> Tensor:
    """a * b with broadcasting.

    >>> y = nn.mul(x, 0.5)
    """
    return elementwise(lambda u, v: u * v, a, b, name=check.name(name, "mul"), op="nn.mul")


def div(a, b, *, name: str | None = None) -> Tensor:
    """a / b with broadcasting (true division: integers give float64, as in NumPy).

    >>> y = nn.div(x, scale)
    """
    return elementwise(lambda u, v: u / v, a, b, name=check.name(name, "div"), op="nn.div")


def maximum(a, b, *, name: str | None = None) -> Tensor:
    """The larger of a and b, elementwise with broadcasting.

    >>> y = nn.maximum(x, 0.0)
    """
    return elementwise(td.maximum, a, b, name=check.name(name, "maximum"), op="nn.maximum")


def minimum(a, b, *, name: str | None = None) -> Tensor:
    """The smaller of a and b, elementwise with broadcasting.

    >>> y = nn.minimum(x, 6.0)
    """
    return elementwise(td.minimum, a, b, name=check.name(name, "minimum"), op="nn.minimum")


def elementwise(fn: Callable[..., Expr], *operands, name: str | None = None,
                op: str = "nn.elementwise") -> Tensor:
    """out[i...] = fn(a[i...], b[i...], ...) over the broadcast shape of the operands
    (tensors or Python numbers; at least one tensor). fn takes one scalar expression per
    operand and returns one:

        out[i, j] = fn(a[i, j], b[0, j])      for a (n, m) and b (1, m)

    >>> y = nn.elementwise(lambda u, v: td.power(u, v), x, 2.0, name="square")
    """
    name = check.name(name, "elementwise")
    for position, value in enumerate(operands):
        check.scalar_or_tensor(value, op, f"operand {position}")
    tensors = [t for t in operands if isinstance(t, Tensor)]
    if not tensors:
        raise TdslTypeError(f"{op}: at least one operand must be a tdsl tensor; got only "
                            f"numbers {operands!r}")
    shape = broadcast_shapes([t.shape for t in tensors], op)

    def read(value, index):
        return value[broadcast_index(value.shape, index)] if isinstance(value, Tensor) \
            else value

    return td.compute(shape, lambda *i: fn(*(read(v, i) for v in operands)), name=name)


def broadcast_shapes(shapes: list[tuple[Expr, ...]], op: str) -> tuple[Expr, ...]:
    """NumPy's broadcast of shapes (right-aligned; size 1 stretches), or TdslValueError."""
    ndim = max(len(s) for s in shapes)
    result = []
    for d in range(ndim):
        size = None
        for s in shapes:
            k = d - (ndim - len(s))             # the same dimension counted in s
            if k < 0 or _is_one(s[k]):
                continue
            if size is None or _is_one(size):
                size = s[k]
            elif not check.same_size(size, s[k]):
                listed = " ".join(shape_str(s) for s in shapes)
                raise TdslValueError(
                    f"{op}: operands could not be broadcast together with shapes {listed}: "
                    f"dimension {d} (from the right: {ndim - d}) is {size} in one and {s[k]} "
                    "in another (sizes must be equal or 1; a symbolic size matches only itself)")
        result.append(size if size is not None else check.size(1))
    return tuple(result)


def broadcast_index(shape: tuple[Expr, ...], index: tuple) -> tuple:
    """The index of an operand of `shape` read at `index` of the broadcast output: the
    trailing entries, 0 where the operand's size is 1."""
    tail = index[len(index) - len(shape):]
    return tuple(0 if _is_one(size) else i for size, i in zip(shape, tail))


def _is_one(size: Expr) -> bool:
    return isinstance(size, Const) and size.value == 1
