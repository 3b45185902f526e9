"""What every operator of `tdsl.nn` checks before it defines a compute: its arguments are
tensors, ranks and sizes agree, axes are in range, hyperparameters are sane.

Each check raises `TdslTypeError` / `TdslValueError` at the call, with a NumPy-style
message (what was expected, what came), so no mistake surfaces later as a lowering or
run-time error. Sizes are `Expr`s: a constant compares by value, a symbolic size
(`td.var`) only with the same expression.
"""

from __future__ import annotations

from typing import Sequence

import tdsl as td
from tdsl.errors import TdslTypeError, TdslValueError
from tdsl.lang.expr import BinOp, Const, Expr, is_scalar
from tdsl.lang.tensor import Tensor, shape_str
from tdsl.lang.visit import same


def tensor(value: object, op: str, what: str) -> Tensor:
    """`value` itself if it is a tdsl tensor, else TdslTypeError."""
    if not isinstance(value, Tensor):
        hint = " (wrap NumPy data in a td.placeholder and pass the array when calling " \
               "the kernel)" if hasattr(value, "__array__") else ""
        raise TdslTypeError(f"{op}: {what} must be a tdsl tensor (td.placeholder or a "
                            f"computed tensor); got {type(value).__name__}{hint}")
    return value


def rank(x: Tensor, ndim: int | Sequence[int], op: str, what: str, layout: str = "") -> None:
    """`x` has `ndim` dimensions (or one of several)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        want = " or ".join(map(str, allowed))
        raise TdslValueError(f"{op}: {what} must have {want} dimensions{layout and ' ' + layout}"
                             f"; got {x.ndim} (shape {shape_str(x.shape)})")


def const_value(e: Expr) -> int | None:
    """The value of a constant size, None for a symbolic one."""
    return int(e.value) if isinstance(e, Const) else None


def same_size(a: Expr | int, b: Expr | int) -> bool:
    """True when two sizes are certainly equal: equal constants or the same expression."""
    a, b = size(a), size(b)
    if isinstance(a, Const) and isinstance(b, Const):
        return a.value == b.value
    return same(a, b)


def size(value: Expr | int) -> Expr:
    return value if isinstance(value, Expr) else Const(int(value), "int64")


def axis(value: object, ndim: int, op: str, what: str = "axis") -> int:
    """A non-negative axis from a possibly negative one (NumPy's rule)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TdslTypeError(f"{op}: {what} must be an integer; got {value!r}")
    if not -ndim <= value < ndim:
        raise TdslValueError(f"{op}: {what} {value} is out of bounds for a tensor of "
                             f"{ndim} dimension(s) (valid: {-ndim} to {ndim - 1})")
    return value % ndim


def axes(value: object, ndim: int, op: str) -> tuple[int, ...]:
    """None (every axis), one axis or a tuple of distinct axes, sorted."""
    if value is None:
        return tuple(range(ndim))
    items = value if isinstance(value, (tuple, list)) else (value,)
    result = tuple(axis(a, ndim, op) for a in items)
    if len(set(result)) != len(result):
        raise TdslValueError(f"{op}: an axis is repeated in axis={tuple(items)!r}")
    return tuple(sorted(result))


def positive_int(value: object, op: str, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TdslTypeError(f"{op}: {what} must be an integer; got {value!r}")
    if value < minimum:
        raise TdslValueError(f"{op}: {what} must be at least {minimum}; got {value}")
    return value


def pair(value: object, op: str, what: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints (height, width), as PyTorch's conv and pool take them."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise TdslValueError(f"{op}: {what} must be an int or a pair (height, width); "
                             f"got {value!r}")
    return tuple(positive_int(v, op, what, minimum) for v in items)   # type: ignore[return-value]


def eps(value: object, op: str) -> float:
    if not is_scalar(value) or isinstance(value, bool) or not value >= 0:
        raise TdslValueError(f"{op}: eps must be a non-negative number; got {value!r}")
    return float(value)


def scalar_or_tensor(value: object, op: str, what: str) -> object:
    if isinstance(value, Tensor) or (is_scalar(value) and not isinstance(value, Expr)):
        return value
    raise TdslTypeError(f"{op}: {what} must be a tdsl tensor or a Python number; "
                        f"got {type(value).__name__}")


def name(value: object, default: str) -> str:
    """The output's name (td.compute checks that it is an identifier)."""
    return default if value is None else value   # type: ignore[return-value]


def count(n: Expr, dtype: str) -> object:
    """The number of elements `n` as a divisor that keeps `dtype`: a Python int when `n` is
    constant (a weak scalar: float32 / 49 stays float32), else `n` cast to the float type
    (float32 / int64 would promote to float64, as in NumPy)."""
    value = const_value(n)
    if value is not None:
        return value
    return td.cast(n, dtype if dtype.startswith("float") else "float64")


def factors(sizes: Sequence[Expr]) -> tuple[int, list[Expr]]:
    """(product of the constant factors, the symbolic factors in order) of the sizes; a
    product such as `n * 3` counts as its factors n and 3."""
    constant, symbolic = 1, []
    for s in sizes:
        value = const_value(s)
        if value is not None:
            constant *= value
        elif isinstance(s, BinOp) and s.op == "mul":
            c, sym = factors((s.a, s.b))
            constant, symbolic = constant * c, symbolic + sym
        else:
            symbolic.append(s)
    return constant, symbolic


def product(sizes: Sequence[Expr]) -> Expr:
    """The product of sizes, constants folded together and put last (`n * 12`)."""
    constant, symbolic = factors(sizes)
    if not symbolic:
        return size(constant)
    result = symbolic[0]
    for s in symbolic[1:]:
        result = result * s
    return result * constant if constant != 1 else result
