"""Data types and their promotion, delegated to NumPy so tdsl and NumPy agree.

A dtype is carried as its NumPy name (`"float32"`). Promotion follows NumPy 2
(NEP 50): Python scalars are "weak" and adopt the tensor's type
(`float32 + 1.0 -> float32`) unless their kind is higher (`int32 + 1.5 -> float64`).
"""

from __future__ import annotations

import numpy as np

from ..errors import TdslTypeError

SUPPORTED = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)
INDEX = "int64"          # the dtype of axes and symbolic sizes


def as_dtype(dtype: object, what: str = "dtype") -> str:
    """Normalize a dtype given as a name, a NumPy dtype or a NumPy scalar type."""
    try:
        name = np.dtype(dtype).name   # type: ignore[arg-type]
    except TypeError:
        name = None
    if name not in SUPPORTED:
        raise TdslTypeError(f"{what} must be one of {', '.join(SUPPORTED)}; got {dtype!r}")
    return name


def is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def is_bool(dtype: str) -> bool:
    return dtype == "bool"


def promote(a: str, b: str) -> str:
    """The dtype NumPy gives `a op b` for two arrays."""
    return np.result_type(np.dtype(a), np.dtype(b)).name


def scalar_dtype(value: bool | int | float) -> str:
    """The dtype a lone Python scalar gets: bool, int32 or float32 (as TVM does)."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int32" if -(2**31) <= int(value) < 2**31 else "int64"
    return "float32"


def unary_result(ufunc: np.ufunc, dtype: str) -> str:
    """The dtype NumPy's `ufunc` gives on an array of `dtype` (exp(int32) -> float64)."""
    with np.errstate(all="ignore"):
        return ufunc(np.zeros(1, dtype=dtype)).dtype.name

