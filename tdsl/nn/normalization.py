"""Normalizations along axes: softmax, log_softmax, layer_norm, batch_norm (inference).

Each reduction (a max, a sum) is its own stage, since a reduction must be the whole body
of a compute; the elementwise stages read the reduced tensors at the row they belong to.
"""

from __future__ import annotations

import tdsl as td
from tdsl.errors import TdslValueError
from tdsl.lang.tensor import Tensor, shape_str

from . import _checks as check


def softmax(x: Tensor, axis: int = -1, *, name: str | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, computed stably by first subtracting the max:

        m = max_k x[.., k, ..]     e = exp(x - m)     out = e / sum_k e[.., k, ..]

    (exp of x - m is at most 1: no overflow for large x). Stages: `softmax_max`,
    `softmax_exp`, `softmax_sum`, `softmax`.

    >>> p = nn.softmax(logits, axis=-1)
    """
    op, name = "nn.softmax", check.name(name, "softmax")
    x = check.tensor(x, op, "x")
    ax = check.axis(axis, x.ndim, op)
    rows = _drop(x.shape, ax)                   # the shape of one value per softmax row
    k1, k2 = td.reduce_axis(x.shape[ax], name="k1"), td.reduce_axis(x.shape[ax], name="k2")
    top = td.compute(rows, lambda *r: td.max(x[_put(r, ax, k1)], axis=k1), name=f"{name}_max")
    e = td.compute(x.shape, lambda *i: td.exp(x[i] - top[_drop(i, ax)]), name=f"{name}_exp")
    total = td.compute(rows, lambda *r: td.sum(e[_put(r, ax, k2)], axis=k2), name=f"{name}_sum")
    return td.compute(x.shape, lambda *i: e[i] / total[_drop(i, ax)], name=name)


def log_softmax(x: Tensor, axis: int = -1, *, name: str | None = None) -> Tensor:
    """log(softmax(x)) along `axis`, without forming the softmax (whose log would be -inf
    where it underflows):

        m = max_k x[.., k, ..]     out = x - m - log(sum_k exp(x[.., k, ..] - m))

    Stages: `log_softmax_max`, `log_softmax_sum`, `log_softmax`.

    >>> logp = nn.log_softmax(logits)
    """
    op, name = "nn.log_softmax", check.name(name, "log_softmax")
    x = check.tensor(x, op, "x")
    ax = check.axis(axis, x.ndim, op)
    rows = _drop(x.shape, ax)
    k1, k2 = td.reduce_axis(x.shape[ax], name="k1"), td.reduce_axis(x.shape[ax], name="k2")
    top = td.compute(rows, lambda *r: td.max(x[_put(r, ax, k1)], axis=k1), name=f"{name}_max")
    total = td.compute(rows, lambda *r: td.sum(td.exp(x[_put(r, ax, k2)] - top[r]), axis=k2),
                       name=f"{name}_sum")
    return td.compute(x.shape, lambda *i: x[i] - top[_drop(i, ax)] - td.log(total[_drop(i, ax)]),
                      name=name)


def layer_norm(x: Tensor, gamma: Tensor | None, beta: Tensor | None, axis: int = -1,
               eps: float = 1e-5, *, name: str | None = None) -> Tensor:
    """Normalize over the axes from `axis` to the last (ONNX LayerNormalization; the
    default, the last axis only, is PyTorch's nn.LayerNorm(D)), then scale and shift:

        mean = sum(x) / D     var = sum((x - mean)^2) / D     (over the normalized axes)
        out = (x - mean) / sqrt(var + eps) * gamma + beta

    gamma and beta have the normalized axes' shape (x.shape[axis:]); None skips one.
    The variance is a second pass over x - mean (the one-pass E[x^2] - E[x]^2 cancels
    badly when the mean is large). Stages: `layer_norm_sum`, `layer_norm_sqsum`,
    `layer_norm`.

    >>> y = nn.layer_norm(x, gamma, beta)           # x (n, D), gamma and beta (D,)
    """
    op, name = "nn.layer_norm", check.name(name, "layer_norm")
    x = check.tensor(x, op, "x")
    ax = check.axis(axis, x.ndim, op)
    eps = check.eps(eps, op)
    inner = x.shape[ax:]                        # the normalized axes
    for what, t in (("gamma", gamma), ("beta", beta)):
        if t is not None and not _has_shape(check.tensor(t, op, what), inner):
            raise TdslValueError(f"{op}: {what} must have the shape of the normalized axes "
                                 f"{shape_str(inner)} (x {shape_str(x.shape)}, axis={axis}); "
                                 f"got {shape_str(t.shape)}")
    ks = [td.reduce_axis(d, name=f"k{j}") for j, d in enumerate(inner)]
    ls = [td.reduce_axis(d, name=f"l{j}") for j, d in enumerate(inner)]
    size = check.count(check.product(inner), x.dtype)
    outer = x.shape[:ax]
    total = td.compute(outer, lambda *o: td.sum(x[(*o, *ks)], axis=ks), name=f"{name}_sum")

    def squared_deviations(*o):
        centered = x[(*o, *ls)] - total[o] / size
        return td.sum(centered * centered, axis=ls)

    sqsum = td.compute(outer, squared_deviations, name=f"{name}_sqsum")

    def body(*i):
        o, j = i[:ax], i[ax:]
        value = (x[i] - total[o] / size) / td.sqrt(sqsum[o] / size + eps)
        value = value * gamma[j] if gamma is not None else value
        return value + beta[j] if beta is not None else value

    return td.compute(x.shape, body, name=name)


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, var: Tensor,
               eps: float = 1e-5, *, name: str | None = None) -> Tensor:
    """Batch normalization at inference (PyTorch's nn.BatchNorm2d in eval mode), with the
    running statistics `mean` and `var`, channel axis 1 (NCHW, or any rank >= 2):

        out[n, c, ...] = (x[n, c, ...] - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]

    gamma / sqrt(var + eps) is folded into one value per channel first (stage
    `batch_norm_scale`): C square roots and divisions instead of one per element.
    Stages: `batch_norm_scale`, `batch_norm`.

    >>> y = nn.batch_norm(x, gamma, beta, running_mean, running_var)
    """
    op, name = "nn.batch_norm", check.name(name, "batch_norm")
    x = check.tensor(x, op, "x")
    if x.ndim < 2:
        raise TdslValueError(f"{op}: x must have at least 2 dimensions (N, C, ...); got "
                             f"{x.ndim} (shape {shape_str(x.shape)})")
    eps = check.eps(eps, op)
    channels = x.shape[1]
    params = {"gamma": gamma, "beta": beta, "mean": mean, "var": var}
    for what, t in params.items():
        if not _has_shape(check.tensor(t, op, what), (channels,)):
            raise TdslValueError(f"{op}: {what} must have shape ({channels},) (the channels of "
                                 f"x {shape_str(x.shape)}, axis 1); got {shape_str(t.shape)}")
    scale = td.compute((channels,), lambda c: gamma[c] / td.sqrt(var[c] + eps),
                       name=f"{name}_scale")
    return td.compute(x.shape, lambda n, c, *rest: (x[(n, c, *rest)] - mean[c]) * scale[c]
                      + beta[c], name=name)


def _drop(items: tuple, ax: int) -> tuple:
    """`items` without position `ax` (an index or a shape, the reduced axis removed)."""
    return items[:ax] + items[ax + 1:]


def _put(items: tuple, ax: int, value) -> tuple:
    """`items` with `value` inserted at position `ax` (the reduction axis put back)."""
    return items[:ax] + (value,) + items[ax:]


def _has_shape(t: Tensor, shape: tuple) -> bool:
    return t.ndim == len(shape) and all(check.same_size(a, b) for a, b in zip(t.shape, shape))
