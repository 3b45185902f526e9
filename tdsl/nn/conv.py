"""2-D convolution in NCHW layout, grouped and depthwise included.

Padding is its own stage (`<name>_pad`, a `td.compute` with `td.select`), as in
benchmarks/schedules/auto.py: the convolution then reads every window without bounds
tests, and a schedule may inline the padding or compute it per tile. The pooling layers
(pool.py) use the same padding stage and output-size rule.
"""

from __future__ import annotations

import tdsl as td
from tdsl.errors import TdslValueError
from tdsl.lang.expr import Expr
from tdsl.lang.tensor import Tensor, shape_str

from . import _checks as check


def conv2d(x: Tensor, w: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1, *, name: str | None = None) -> Tensor:
    """A 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d), NCHW:

        out[n, f, y, x] = sum_{c, ky, kx} xp[n, g * C_g + c, y * sh + ky * dh, x * sw + kx * dw]
                                          * w[f, c, ky, kx]        (+ bias[f])

    where xp is x zero-padded by (ph, pw) on each side, C_g = C / groups input channels
    per group and g = f // (F / groups) the group of output channel f. x is (N, C, H, W),
    w is (F, C / groups, KH, KW), bias (F,). stride, padding and dilation are ints or
    (height, width) pairs. The output is (N, F, H_out, W_out) with

        H_out = (H + 2 ph - dh (KH - 1) - 1) // sh + 1     (and likewise W_out).

    Depthwise convolution is groups = C (w is (C * multiplier, 1, KH, KW)). Stages:
    `conv2d_pad` (when padding > 0), `conv2d` (or `conv2d_sum` then `conv2d` with a bias).

    >>> y = nn.conv2d(x, w, b, stride=2, padding=1)
    """
    op, name = "nn.conv2d", check.name(name, "conv2d")
    x, w = check.tensor(x, op, "x"), check.tensor(w, op, "w")
    check.rank(x, 4, op, "x", "(N, C, H, W)")
    check.rank(w, 4, op, "w", "(out_channels, in_channels / groups, KH, KW)")
    (sh, sw), (ph, pw) = check.pair(stride, op, "stride"), check.pair(padding, op, "padding", 0)
    dh, dw = check.pair(dilation, op, "dilation")
    groups = check.positive_int(groups, op, "groups")
    batch, channels, height, width = x.shape
    filters, group_channels, kh, kw = w.shape
    _check_groups(op, x, w, groups)
    if bias is not None:
        bias = check.tensor(bias, op, "bias")
        if bias.ndim != 1 or not check.same_size(bias.shape[0], filters):
            raise TdslValueError(f"{op}: bias must have shape ({filters},) (out_channels of "
                                 f"w); got {shape_str(bias.shape)}")
    out_h = out_size(op, "height", height, kh, sh, ph, dh)
    out_w = out_size(op, "width", width, kw, sw, pw, dw)
    ry, rx = td.reduce_axis(kh, name="ry"), td.reduce_axis(kw, name="rx")
    kwv = check.const_value(kw)
    wide = _vector_width(out_w, kwv, width)
    if sw > 1 and dw == 1 and kwv is not None:
        # strided along the row: split the padded input's columns by phase (x = X sw + p)
        # so that neighbouring outputs read neighbouring elements (a vector, not a gather)
        xp = pad2d_phases(x, ph, pw, sw, kwv, wide, f"{name}_pad")

        def column(xx):
            return (rx % sw, xx + rx // sw)
    else:
        right = 0
        if wide is not out_w:          # the columns the wider rows read past the padding
            right = max(0, (check.const_value(wide) - 1) * sw + (kwv - 1) * dw + 1
                        - (check.const_value(width) + 2 * pw))
        xp = pad2d(x, ph, pw, 0.0, f"{name}_pad", right=right)

        def column(xx):
            return (xx * sw + rx * dw,)

    def first_channel(f):
        """The first input channel of output channel f's group (constants with groups > 1,
        so the index stays quasi-affine: f // 3 * 2)."""
        if groups == 1:
            return 0
        filters_per_group = check.const_value(filters) // groups
        return f // filters_per_group * check.const_value(group_channels)

    if check.const_value(group_channels) == 1:
        # One input channel per group (depthwise): no sum over channels at all.
        def body(n, f, y, xx):
            return td.sum(xp[(n, first_channel(f), y * sh + ry * dh, *column(xx))]
                          * w[f, 0, ry, rx], axis=[ry, rx])
    else:
        rc = td.reduce_axis(group_channels, name="rc")

        def body(n, f, y, xx):
            return td.sum(xp[(n, first_channel(f) + rc, y * sh + ry * dh, *column(xx))]
                          * w[f, rc, ry, rx], axis=[rc, ry, rx])

    out_shape = (batch, filters, out_h, out_w)
    if wide is not out_w:
        # rows computed a whole number of vectors wide; the next stage reads out_w of them
        out = td.compute((batch, filters, out_h, wide), body, name=f"{name}_sum")
        if bias is None:
            return td.compute(out_shape, lambda n, f, y, xx: out[n, f, y, xx], name=name)
    else:
        out = td.compute(out_shape, body, name=name if bias is None else f"{name}_sum")
        if bias is None:
            return out
    return td.compute(out_shape, lambda n, f, y, xx: out[n, f, y, xx] + bias[f], name=name)


ROW_VECTOR = 8          # floats in one AVX2 vector: the unit a narrow row is rounded up to


def _vector_width(out_w: Expr, kw: int | None, width: Expr) -> Expr:
    """The width the convolution computes its rows at: out_w itself, or for a narrow
    constant row (a 7 x 7 or 14 x 14 feature map) out_w rounded up to whole vectors when
    that computes at most a quarter more (7 -> 8, 14 -> 16): a register tile of whole
    vectors instead of vectors, halves and scalars; the next stage reads out_w columns."""
    ow, wv = check.const_value(out_w), check.const_value(width)
    if ow is None or kw is None or wv is None or ow % ROW_VECTOR == 0 or ow >= 3 * ROW_VECTOR:
        return out_w
    wide = -(-ow // ROW_VECTOR) * ROW_VECTOR
    if 4 * (wide - ow) > ow:
        return out_w
    return check.size(wide)


def _check_groups(op: str, x: Tensor, w: Tensor, groups: int) -> None:
    """C = groups * (in_channels of w), and F is a multiple of groups."""
    channels, filters, group_channels = x.shape[1], w.shape[0], w.shape[1]
    if groups == 1:
        if not check.same_size(channels, group_channels):
            raise TdslValueError(
                f"{op}: x has {channels} input channels (shape {shape_str(x.shape)}) but w "
                f"expects {group_channels} (shape {shape_str(w.shape)}); w is (out_channels, "
                "in_channels / groups, KH, KW)")
        return
    c, f, g = (check.const_value(e) for e in (channels, filters, group_channels))
    if c is None or f is None or g is None:
        raise TdslValueError(f"{op}: groups={groups} needs constant channel counts; got x "
                             f"{shape_str(x.shape)} and w {shape_str(w.shape)}")
    if c % groups:
        raise TdslValueError(f"{op}: in_channels {c} is not divisible by groups={groups}")
    if f % groups:
        raise TdslValueError(f"{op}: out_channels {f} (w.shape[0]) is not divisible by "
                             f"groups={groups}")
    if g != c // groups:
        raise TdslValueError(
            f"{op}: with groups={groups}, w must have in_channels / groups = {c // groups} "
            f"channels (w.shape[1]); got {g} (w {shape_str(w.shape)}, x {shape_str(x.shape)})")


def out_size(op: str, what: str, n: Expr, k: Expr, stride: int, pad: int,
             dilation: int) -> Expr:
    """(n + 2 pad - dilation (k - 1) - 1) // stride + 1: the positions of a sliding window
    (floor mode); TdslValueError when the window does not fit once."""
    span = dilation * (k - 1) + 1               # the window's extent, dilation included
    nv, spanv = check.const_value(n), check.const_value(check.size(span))
    if nv is not None and spanv is not None:
        if nv + 2 * pad < spanv:
            padded = f" padded to {nv + 2 * pad}" if pad else ""
            dilated = f" with dilation {dilation}" if dilation > 1 else ""
            raise TdslValueError(f"{op}: the input {what} {nv}{padded} is smaller than the "
                                 f"window ({spanv}{dilated})")
        return check.size((nv + 2 * pad - spanv) // stride + 1)
    # A symbolic size: the constants kept together, so that a "same" window gives n itself.
    if spanv is not None:
        offset = 2 * pad - spanv                # the last window starts at n + offset
        return n + (offset + 1) if stride == 1 else (n + offset) // stride + 1
    reach = n + 2 * pad - span
    return reach + 1 if stride == 1 else reach // stride + 1


def pad2d(x: Tensor, ph: int, pw: int, value: float | Expr, name: str,
          right: int = 0) -> Tensor:
    """x (N, C, H, W) with `value` around its last two axes (and `right` more columns
    on the right); x itself when nothing pads.

        xp[n, c, y, x] = x[n, c, y - ph, x - pw]  inside, `value` outside
    """
    if ph == 0 and pw == 0 and right == 0:
        return x
    height, width = x.shape[2], x.shape[3]

    def body(n, c, y, xx):
        inside = td.all(y >= ph, y < height + ph, xx >= pw, xx < width + pw)
        # The load sits under the select: isl restricts it to the inside, so the border
        # never reads x out of bounds.
        fill = value if isinstance(value, Expr) else td.const(value, x.dtype)
        return td.select(inside, x[n, c, y - ph, xx - pw], fill)

    wv = check.const_value(width)
    padded = check.size(wv + 2 * pw + right) if wv is not None else width + (2 * pw + right)
    return td.compute((x.shape[0], x.shape[1], height + 2 * ph, padded), body, name=name)


def pad2d_phases(x: Tensor, ph: int, pw: int, stride: int, kw: int, out_w: Expr,
                 name: str) -> Tensor:
    """x (N, C, H, W) zero-padded as `pad2d` does, its columns split by phase for a
    window of `kw` columns moving by `stride`: (N, C, H + 2 ph, P, Q) with

        xp[n, c, y, p, q] = x[n, c, y - ph, q * stride + p - pw]   (0 outside x)

    P = min(stride, kw) phases, Q = out_w + (kw - 1) // stride columns; the window at
    output column xx reads column xx * stride + rx of the padded input at
    xp[..., rx % stride, xx + rx // stride], so a convolution's vector along xx loads
    contiguous elements.
    """
    height, width = x.shape[2], x.shape[3]
    phases, extra = min(stride, kw), (kw - 1) // stride
    known = check.const_value(out_w)
    columns = check.size(known + extra) if known is not None else out_w + extra

    def body(n, c, y, p, q):
        col = q * stride + p - pw
        inside = td.all(y >= ph, y < height + ph, col >= 0, col < width)
        return td.select(inside, x[n, c, y - ph, col], td.const(0.0, x.dtype))

    return td.compute((x.shape[0], x.shape[1], height + 2 * ph, phases, columns), body,
                      name=name)
