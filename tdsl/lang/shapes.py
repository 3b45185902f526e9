"""Binding symbolic sizes from arrays, and checking arrays against declared shapes.

One implementation serves the compiled `Module` and `td.reference`, so both
accept and refuse exactly the same arguments with the same messages.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import TdslTypeError, TdslValueError
from .expr import Const, Expr, Var
from .tensor import Tensor, shape_str
from .visit import free_vars


def to_array(value: object, tensor: Tensor) -> np.ndarray:
    """A NumPy view of `value` (a NumPy array or a CPU DLPack tensor), without a copy."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "__dlpack__"):
        try:
            return np.from_dlpack(value)
        except (BufferError, TypeError, RuntimeError) as exc:
            raise TdslTypeError(f"argument {tensor.name}: could not take the array through "
                                f"DLPack without a copy ({exc}); pass a CPU array") from None
    raise TdslTypeError(f"argument {tensor.name} must be a NumPy array (or a CPU array that "
                        f"supports DLPack); got {type(value).__name__}")


def evaluate_size(e: Expr, sizes: dict[Var, int]) -> int:
    """The integer value of a size expression once its variables are bound."""
    if isinstance(e, Const):
        return int(e.value)
    from .reference import evaluate_scalar
    return int(evaluate_scalar(e, sizes))


def bind_sizes(tensors: Sequence[Tensor], arrays: Sequence[np.ndarray],
               sizes: dict[Var, int] | None = None) -> dict[Var, int]:
    """Bind every symbolic size from the first array whose dimension is exactly that
    size, then check every dimension of every array. Raises ValueError naming the
    argument, the expected shape and the actual one."""
    bound: dict[Var, int] = dict(sizes or {})
    origin: dict[Var, str] = {v: "sizes=" for v in bound}
    progress = True
    while progress:          # `H + 2` binds H once nothing binds it directly
        progress = False
        for t, a in zip(tensors, arrays):
            for d, dim in enumerate(t.shape):
                unknown = [v for v in free_vars(dim) if v not in bound]
                if len(unknown) != 1:
                    continue
                value = _solve(dim, unknown[0], int(a.shape[d]), bound)
                if value is not None:
                    bound[unknown[0]] = value
                    origin[unknown[0]] = f"dimension {d} of {t.name}"
                    progress = True
    for t, a in zip(tensors, arrays):
        expected = []
        for dim in t.shape:
            missing = [v for v in free_vars(dim) if v not in bound]
            if missing:
                raise TdslValueError(
                    f"the size {missing[0].name} in the shape of {t.name} "
                    f"{shape_str(t.shape)} cannot be bound: no argument has a dimension that is "
                    f"exactly {missing[0].name}")
            expected.append(evaluate_size(dim, bound))
        if tuple(a.shape) != tuple(expected):
            detail = ""
            for d, (want, got) in enumerate(zip(expected, a.shape)):
                if want != got:
                    dim = t.shape[d]
                    names = ", ".join(f"{v.name}={bound[v]} (from {origin[v]})"
                                      for v in free_vars(dim))
                    detail = f": dimension {d} should be {dim}" + (f" = {want}, with {names}"
                                                                    if names else "")
                    break
            raise TdslValueError(f"argument {t.name} should have shape "
                                 f"{tuple(expected)} (declared {shape_str(t.shape)}); got "
                                 f"{tuple(a.shape)}{detail}")
    for v, n in bound.items():
        if n < 1:
            raise TdslValueError(f"size {v.name} = {n} (from {origin[v]}); sizes must be >= 1")
    return bound


def _solve(dim: Expr, v: Var, size: int, bound: dict) -> int | None:
    """The value of `v` making the affine size expression `dim` equal `size`."""
    at0 = evaluate_size(dim, {**bound, v: 0})
    slope = evaluate_size(dim, {**bound, v: 1}) - at0
    if slope == 0 or (size - at0) % slope:
        return None
    value = (size - at0) // slope
    return value if evaluate_size(dim, {**bound, v: value}) == size else None


def check_arrays(tensors: Sequence[Tensor], values: Sequence[object], *,
                 outputs: Sequence[Tensor] = (), contiguous: bool = True) -> list[np.ndarray]:
    """Arrays for `tensors` after checking dtype, rank, contiguity and writability."""
    arrays = []
    for t, v in zip(tensors, values):
        a = to_array(v, t)
        if a.dtype.name != t.dtype:
            raise TdslTypeError(f"argument {t.name} should have dtype {t.dtype}; got {a.dtype}")
        if a.ndim != t.ndim:
            raise TdslValueError(f"argument {t.name} should have {t.ndim} dimension(s) "
                                 f"{shape_str(t.shape)}; got {a.ndim} (shape {a.shape})")
        if contiguous and not a.flags.c_contiguous:
            raise TdslValueError(f"argument {t.name} must be C-contiguous; got strides "
                                 f"{a.strides} (use np.ascontiguousarray)")
        if t in outputs and not a.flags.writeable:
            raise TdslValueError(f"argument {t.name} is an output and must be writeable")
        arrays.append(a)
    return arrays
