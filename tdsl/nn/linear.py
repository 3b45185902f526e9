"""Linear layers: `dense` (PyTorch's nn.Linear), `matmul` and `batch_matmul`.

Each is one reduction stage over the shared dimension; `dense` adds its bias in a second,
elementwise stage, because a reduction must be the whole body of a compute.
"""

from __future__ import annotations

import tdsl as td
from tdsl.errors import TdslValueError
from tdsl.lang.tensor import Tensor, shape_str

from . import _checks as check


def dense(x: Tensor, w: Tensor, bias: Tensor | None = None, *, name: str | None = None
          ) -> Tensor:
    """A fully connected layer, y = x @ w.T + bias (PyTorch's nn.Linear layout):

        y[i, j] = sum_k x[i, k] * w[j, k]  (+ bias[j])

    x is (batch, in_features), w is (out_features, in_features), bias is (out_features,).
    Stages: `dense` (or `dense_matmul` then `dense` with a bias).

    >>> y = nn.dense(x, w, b)          # x (n, 64), w (10, 64), b (10,) -> y (n, 10)
    """
    op, name = "nn.dense", check.name(name, "dense")
    x, w = check.tensor(x, op, "x"), check.tensor(w, op, "w")
    check.rank(x, 2, op, "x", "(batch, in_features)")
    check.rank(w, 2, op, "w", "(out_features, in_features)")
    batch, in_features = x.shape
    out_features, w_in = w.shape
    if not check.same_size(in_features, w_in):
        raise TdslValueError(
            f"{op}: x has {in_features} input features (shape {shape_str(x.shape)}) but w "
            f"expects {w_in} (shape {shape_str(w.shape)}); w is (out_features, in_features) "
            "as in PyTorch")
    if bias is not None:
        bias = check.tensor(bias, op, "bias")
        if bias.ndim != 1 or not check.same_size(bias.shape[0], out_features):
            raise TdslValueError(f"{op}: bias must have shape ({out_features},) "
                                 f"(out_features of w); got {shape_str(bias.shape)}")
    k = td.reduce_axis(in_features, name="k")
    # w is read along its rows (w[j, k]): both operands walk k contiguously.
    y = td.compute((batch, out_features), lambda i, j: td.sum(x[i, k] * w[j, k], axis=k),
                   name=name if bias is None else f"{name}_matmul")
    if bias is None:
        return y
    return td.compute((batch, out_features), lambda i, j: y[i, j] + bias[j], name=name)


def matmul(a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
    """The matrix product of two 2-D tensors:

        c[i, j] = sum_k a[i, k] * b[k, j]

    >>> c = nn.matmul(a, b)            # (n, l) x (l, m) -> (n, m)
    """
    op, name = "nn.matmul", check.name(name, "matmul")
    a, b = check.tensor(a, op, "a"), check.tensor(b, op, "b")
    check.rank(a, 2, op, "a", "(n, k)")
    check.rank(b, 2, op, "b", "(k, m)")
    _inner(op, a, b)
    k = td.reduce_axis(a.shape[1], name="k")
    return td.compute((a.shape[0], b.shape[1]),
                      lambda i, j: td.sum(a[i, k] * b[k, j], axis=k), name=name)


def batch_matmul(a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
    """A batch of independent matrix products:

        c[p, i, j] = sum_k a[p, i, k] * b[p, k, j]

    >>> c = nn.batch_matmul(a, b)      # (batch, n, k) x (batch, k, m) -> (batch, n, m)
    """
    op, name = "nn.batch_matmul", check.name(name, "batch_matmul")
    a, b = check.tensor(a, op, "a"), check.tensor(b, op, "b")
    check.rank(a, 3, op, "a", "(batch, n, k)")
    check.rank(b, 3, op, "b", "(batch, k, m)")
    if not check.same_size(a.shape[0], b.shape[0]):
        raise TdslValueError(f"{op}: the batch sizes differ: a has {a.shape[0]} (shape "
                             f"{shape_str(a.shape)}), b has {b.shape[0]} (shape "
                             f"{shape_str(b.shape)})")
    _inner(op, a, b)
    k = td.reduce_axis(a.shape[2], name="k")
    return td.compute((a.shape[0], a.shape[1], b.shape[2]),
                      lambda p, i, j: td.sum(a[p, i, k] * b[p, k, j], axis=k), name=name)


def _inner(op: str, a: Tensor, b: Tensor) -> None:
    """The contracted sizes agree: the last of a, the second to last of b."""
    if not check.same_size(a.shape[-1], b.shape[-2]):
        raise TdslValueError(
            f"{op}: the contracted dimensions differ: a has {a.shape[-1]} columns (shape "
            f"{shape_str(a.shape)}), b has {b.shape[-2]} rows (shape {shape_str(b.shape)})")
