"""2-D pooling in NCHW layout: max, average, and global average.

PyTorch's defaults: stride = kernel, floor mode (a window must fit in the padded input),
average with count_include_pad=True (a border window divides by KH * KW, the padding
counted as zeros). Padding is conv.py's padding stage: -inf (the max's identity) for the
max, 0 for the average.
"""

from __future__ import annotations

import tdsl as td
from tdsl.errors import TdslValueError
from tdsl.lang.tensor import Tensor

from . import _checks as check
from .conv import out_size, pad2d


def max_pool2d(x: Tensor, kernel, stride=None, padding=0, dilation=1, *,
               name: str | None = None) -> Tensor:
    """The maximum over each KH x KW window (PyTorch's nn.MaxPool2d), NCHW:

        out[n, c, y, x] = max_{ky, kx} xp[n, c, y * sh + ky * dh, x * sw + kx * dw]

    where xp is x padded with -inf by (ph, pw), so padding never wins. kernel, stride
    (default: kernel), padding and dilation are ints or (height, width) pairs; padding is
    at most half the window. Stages: `max_pool2d_pad` (when padding > 0), `max_pool2d`.

    >>> y = nn.max_pool2d(x, 3, stride=2, padding=1)
    """
    op, name = "nn.max_pool2d", check.name(name, "max_pool2d")
    x, (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window_args(op, x, kernel, stride, padding,
                                                              dilation)
    out_h = out_size(op, "height", x.shape[2], kh, sh, ph, dh)
    out_w = out_size(op, "width", x.shape[3], kw, sw, pw, dw)
    xp = pad2d(x, ph, pw, td.max.identity(x.dtype), f"{name}_pad")
    ry, rx = td.reduce_axis(kh, name="ry"), td.reduce_axis(kw, name="rx")
    return td.compute(
        (x.shape[0], x.shape[1], out_h, out_w),
        lambda n, c, y, xx: td.max(xp[n, c, y * sh + ry * dh, xx * sw + rx * dw],
                                   axis=[ry, rx]), name=name)


def avg_pool2d(x: Tensor, kernel, stride=None, padding=0, *, name: str | None = None
               ) -> Tensor:
    """The mean of each KH x KW window (PyTorch's nn.AvgPool2d, count_include_pad=True):

        out[n, c, y, x] = sum_{ky, kx} xp[n, c, y * sh + ky, x * sw + kx] / (KH * KW)

    where xp is x zero-padded by (ph, pw). Stages: `avg_pool2d_pad` (when padding > 0),
    `avg_pool2d_sum`, `avg_pool2d`.

    >>> y = nn.avg_pool2d(x, 2)
    """
    op, name = "nn.avg_pool2d", check.name(name, "avg_pool2d")
    x, (kh, kw), (sh, sw), (ph, pw), _ = _window_args(op, x, kernel, stride, padding, 1)
    out_h = out_size(op, "height", x.shape[2], kh, sh, ph, 1)
    out_w = out_size(op, "width", x.shape[3], kw, sw, pw, 1)
    xp = pad2d(x, ph, pw, 0.0, f"{name}_pad")
    ry, rx = td.reduce_axis(kh, name="ry"), td.reduce_axis(kw, name="rx")
    shape = (x.shape[0], x.shape[1], out_h, out_w)
    total = td.compute(shape, lambda n, c, y, xx: td.sum(xp[n, c, y * sh + ry, xx * sw + rx],
                                                         axis=[ry, rx]), name=f"{name}_sum")
    # Floor mode: every window lies inside the padded input, so the divisor is constant.
    return td.compute(shape, lambda n, c, y, xx: total[n, c, y, xx] / (kh * kw), name=name)


def global_avg_pool2d(x: Tensor, *, name: str | None = None) -> Tensor:
    """The mean over all of H x W per channel, kept as a 1 x 1 image (ONNX
    GlobalAveragePool, PyTorch's AdaptiveAvgPool2d(1)):

        out[n, c, 0, 0] = sum_{y, x} x[n, c, y, x] / (H * W)

    Stages: `global_avg_pool2d_sum`, `global_avg_pool2d`.

    >>> y = nn.global_avg_pool2d(x)    # (N, C, H, W) -> (N, C, 1, 1)
    """
    op, name = "nn.global_avg_pool2d", check.name(name, "global_avg_pool2d")
    x = check.tensor(x, op, "x")
    check.rank(x, 4, op, "x", "(N, C, H, W)")
    batch, channels, height, width = x.shape
    ry, rx = td.reduce_axis(height, name="ry"), td.reduce_axis(width, name="rx")
    total = td.compute((batch, channels),
                       lambda n, c: td.sum(x[n, c, ry, rx], axis=[ry, rx]), name=f"{name}_sum")
    area = check.count(height * width, x.dtype)
    return td.compute((batch, channels, 1, 1), lambda n, c, y, xx: total[n, c] / area,
                      name=name)


def _window_args(op: str, x, kernel, stride, padding, dilation):
    """The checked arguments of a pooling window: x, then (height, width) pairs."""
    x = check.tensor(x, op, "x")
    check.rank(x, 4, op, "x", "(N, C, H, W)")
    kh, kw = check.pair(kernel, op, "kernel")
    sh, sw = (kh, kw) if stride is None else check.pair(stride, op, "stride")
    ph, pw = check.pair(padding, op, "padding", 0)
    dh, dw = check.pair(dilation, op, "dilation")
    for p, k, d in ((ph, kh, dh), (pw, kw, dw)):
        # PyTorch's rule: a window must hold at least one element of x (half the span).
        span = d * (k - 1) + 1
        if p > span // 2:
            raise TdslValueError(f"{op}: padding should be at most half of the kernel size "
                                 f"({span}); got padding={p}")
    return x, (kh, kw), (sh, sw), (ph, pw), (dh, dw)
