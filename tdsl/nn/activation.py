"""Pointwise activations: relu, leaky_relu, gelu, sigmoid, tanh, silu, and erf.

Each is one elementwise stage over all of x's axes. Types follow NumPy: a float tensor
keeps its dtype; an integer one becomes float64 where the formula needs a float (relu and
leaky_relu's comparison keep integers).

erf has no C intrinsic in tdsl, so it is a rational approximation (`erf_expr`).
"""

from __future__ import annotations

import math

import tdsl as td
from tdsl.errors import TdslValueError
from tdsl.lang.expr import Expr
from tdsl.lang.tensor import Tensor

from . import _checks as check


def relu(x: Tensor, *, name: str | None = None) -> Tensor:
    """max(x, 0), elementwise.

    >>> y = nn.relu(x)
    """
    # 0 is a weak Python scalar: float32 stays float32 and int32 stays int32.
    return _pointwise("nn.relu", x, lambda v: td.maximum(v, 0), check.name(name, "relu"))


def leaky_relu(x: Tensor, alpha: float = 0.01, *, name: str | None = None) -> Tensor:
    """x where x > 0, else alpha * x (PyTorch's negative_slope).

    >>> y = nn.leaky_relu(x, alpha=0.2)
    """
    return _pointwise("nn.leaky_relu", x, lambda v: td.select(v > 0, v, alpha * v),
                      check.name(name, "leaky_relu"))


def sigmoid(x: Tensor, *, name: str | None = None) -> Tensor:
    """1 / (1 + exp(-x)), elementwise.

    >>> y = nn.sigmoid(x)
    """
    return _pointwise("nn.sigmoid", x, td.sigmoid, check.name(name, "sigmoid"))


def tanh(x: Tensor, *, name: str | None = None) -> Tensor:
    """tanh(x), elementwise.

    >>> y = nn.tanh(x)
    """
    return _pointwise("nn.tanh", x, td.tanh, check.name(name, "tanh"))


def silu(x: Tensor, *, name: str | None = None) -> Tensor:
    """x * sigmoid(x) (also called swish), elementwise.

    >>> y = nn.silu(x)
    """
    return _pointwise("nn.silu", x, lambda v: v * td.sigmoid(v), check.name(name, "silu"))


def gelu(x: Tensor, approximate: str = "none", *, name: str | None = None) -> Tensor:
    """The Gaussian error linear unit, x * Phi(x) (PyTorch's nn.GELU):

        approximate="none":  0.5 x (1 + erf(x / sqrt(2)))
        approximate="tanh":  0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))

    "none" evaluates in float64 with `erf_expr` and rounds once to x's dtype: within
    1e-7 of the exact value for float32 (see `erf_expr`).

    >>> y = nn.gelu(x)
    """
    op, name = "nn.gelu", check.name(name, "gelu")
    if approximate == "tanh":
        c = math.sqrt(2 / math.pi)
        return _pointwise(op, x, lambda v: 0.5 * v * (1 + td.tanh(c * (v + 0.044715 * v * v * v))),
                          name)
    if approximate != "none":
        raise TdslValueError(f"{op}: approximate must be 'none' or 'tanh'; got {approximate!r}")

    def exact(v):
        wide = td.cast(v, "float64")
        return 0.5 * wide * (1 + erf_expr(wide * (1 / math.sqrt(2))))

    return _pointwise(op, x, exact, name, keep_float=True)


def erf(x: Tensor, *, name: str | None = None) -> Tensor:
    """The error function erf(x) = 2 / sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise,
    through `erf_expr` (float64 inside, rounded once to x's dtype).

    >>> y = nn.erf(x)
    """
    return _pointwise("nn.erf", x, lambda v: erf_expr(td.cast(v, "float64")),
                      check.name(name, "erf"), keep_float=True)


# erf(x) = x * P(x^2) / Q(x^2) on [-4, 4], +-1 beyond (erf(4) = 1 - 1.5e-8): the rational
# minimax approximation Eigen and XLA use for float32 erf (Eigen's generic_fast_erf_float).
# Evaluated in float64 its largest error against math.erf is 6.5e-8 (measured on 200001
# points of [-6, 6]); rounding to float32 adds at most 3e-8. In float32 arithmetic Horner's
# rule loses ~4e-7, hence the float64 evaluation. (Abramowitz-Stegun 7.1.26 is off by 1.5e-7
# before any rounding.) float64 tensors get the same 6.5e-8: float32 accuracy, not float64.
_ERF_P = (-1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04,
          -5.69250639462346e-05, -2.10102402082508e-06, 2.77068142495902e-08,
          -2.72614225801306e-10)                       # coefficients of x^0, x^2, ... x^12
_ERF_Q = (-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03,
          -2.13374055278905e-04, -1.45660718464996e-05)  # coefficients of x^0, ... x^8


def erf_expr(v: Expr) -> Expr:
    """erf(v) as an expression, for v of a float type (computed in v's type): the rational
    approximation above, max error 6.5e-8.

    >>> td.compute((n,), lambda i: nn.erf_expr(td.cast(x[i], "float64")))
    """
    v = td.minimum(td.maximum(v, -4.0), 4.0)
    z = v * v
    return v * _horner(_ERF_P, z) / _horner(_ERF_Q, z)


def _horner(coefficients: tuple[float, ...], z: Expr) -> Expr:
    """c0 + z (c1 + z (c2 + ...)), the polynomial with the fewest roundings."""
    result = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = result * z + c
    return result


def _pointwise(op: str, x: Tensor, fn, name: str, keep_float: bool = False) -> Tensor:
    """out[i...] = fn(x[i...]) over all of x's axes. With keep_float, a float x keeps its
    dtype even when fn computes wider (gelu and erf work in float64)."""
    x = check.tensor(x, op, "x")
    dtype = x.dtype if x.dtype.startswith("float") else None

    def body(*index):
        value = fn(x[index])
        return td.cast(value, dtype) if keep_float and dtype else value

    return td.compute(x.shape, body, name=name)
