"""td.grad of nn.conv2d against NumPy's convolution adjoints, and the form of the input
adjoint (tdsl/autodiff/correlate.py): a correlation of the zero-padded (and, for a
stride along the rows, zero-inserted) head with the flipped kernel, a sum over a box
with no where=, made directly at the input's indices (the padding's crop composed in).

The NumPy oracle is the chain rule of the convolution written as a scatter over the
filter offsets, in float64; a few cases are also checked against finite differences
(common.gradcheck). Strides along the row (the forward splits the columns by phase),
groups (other than depthwise) and cases where the guards are not only the head's bounds
keep td.grad's gather; they are checked for values only.
"""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import nn
from tdsl.lang.expr import Reduce
from tdsl.lang.graph import topo_order

from .common import gradcheck, random


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_numpy(x, w, stride, padding, dilation, groups):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, f, oh, ow))
    fg = f // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for ky in range(kh):
            for kx in range(kw):
                win = xs[:, :, ky * dh:ky * dh + sh * (oh - 1) + 1:sh,
                         kx * dw:kx * dw + sw * (ow - 1) + 1:sw]
                y[:, g * fg:(g + 1) * fg] += np.einsum("nchw,fc->nfhw", win,
                                                       w[g * fg:(g + 1) * fg, :, ky, kx])
    return y


def conv_adjoints_numpy(x, w, head, stride, padding, dilation, groups):
    """(dx, dw) of sum(head * conv(x, w)): the scatter of each filter offset's product."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh, ow = head.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dwt = np.zeros_like(w)
    fg = f // groups
    for g in range(groups):
        hs = head[:, g * fg:(g + 1) * fg]
        for ky in range(kh):
            for kx in range(kw):
                rows = slice(ky * dh, ky * dh + sh * (oh - 1) + 1, sh)
                cols = slice(kx * dw, kx * dw + sw * (ow - 1) + 1, sw)
                dxp[:, g * cg:(g + 1) * cg, rows, cols] += np.einsum(
                    "nfhw,fc->nchw", hs, w[g * fg:(g + 1) * fg, :, ky, kx])
                dwt[g * fg:(g + 1) * fg, :, ky, kx] = np.einsum(
                    "nfhw,nchw->fc", hs, xp[:, g * cg:(g + 1) * cg, rows, cols])
    return dxp[:, :, ph:ph + h, pw:pw + wd], dwt


def _grads(shape_x, shape_w, stride, padding, dilation, groups, sizes=None):
    x = td.placeholder(shape_x, "float64", name="x")
    w = td.placeholder(shape_w, "float64", name="w")
    y = nn.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  name="cv")
    head = td.placeholder(y.shape, "float64", name="head")
    dx, dw = td.grad(y, [x, w], head=head)
    return x, w, head, dx, dw


def _is_correlation(dx) -> bool:
    """dx is one sum over a box (no where=) of a padded head times the kernel."""
    body = dx.op.body
    if not isinstance(body, Reduce) or body.where is not None:
        return False
    padded = [t for t in dx.op.input_tensors if t.name.endswith(("_pad", "_dilated"))
              and not t.name.startswith("cv_pad")]
    return len(padded) == 1


# (N, C, H, W), (F, C / groups, KH, KW), stride, padding, dilation, groups, new form?
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1, 1, 1, True),          # ragged, "same" padding
    ((2, 3, 8, 8), (5, 3, 3, 3), 1, 0, 1, 1, True),          # valid
    ((1, 2, 9, 7), (3, 2, 3, 2), 1, 2, 1, 1, True),          # padding > K - 1 - p, 3 x 2
    ((2, 2, 9, 9), (3, 2, 3, 3), 1, 2, 2, 1, True),          # dilation 2
    ((2, 3, 9, 7), (4, 3, 3, 3), (2, 1), 1, 1, 1, True),     # stride 2 along the rows
    ((2, 2, 11, 10), (3, 2, 3, 3), 2, 2, 2, 1, True),        # stride 2 with dilation 2
    # stride 3 with 4 taps and 3 output rows: td.grad solves for the filter row (the
    # larger range), so the guards are the kernel's bounds, not the head's: gather kept
    ((1, 2, 10, 9), (2, 2, 4, 4), (3, 1), (1, 2), 1, 1, False),
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1, 1, 1, False),         # stride 2: phases kept
    ((2, 4, 7, 6), (4, 2, 3, 3), 1, 1, 1, 2, False),         # groups: gather kept
    ((2, 3, 6, 5), (3, 1, 3, 3), 1, 1, 1, 3, True),          # depthwise
]


@pytest.mark.parametrize("shape_x, shape_w, stride, padding, dilation, groups, new", CASES)
def test_conv_adjoints_match_numpy(shape_x, shape_w, stride, padding, dilation, groups, new):
    x, w, head, dx, dw = _grads(shape_x, shape_w, stride, padding, dilation, groups)
    assert _is_correlation(dx) == new, dx.op
    mod = td.build(td.create_schedule([dx, dw]), [x, w, head, dx, dw])
    xv, wv = random(shape_x, 1), random(shape_w, 2)
    out = conv_numpy(xv, wv, stride, padding, dilation, groups)
    hv = random(out.shape, 3)
    assert tuple(int(d.value) for d in head.shape) == out.shape
    got_dx, got_dw = np.full(shape_x, np.nan), np.full(shape_w, np.nan)
    mod(xv, wv, hv, got_dx, got_dw)
    want_dx, want_dw = conv_adjoints_numpy(xv, wv, hv, stride, padding, dilation, groups)
    np.testing.assert_allclose(got_dx, want_dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_dw, want_dw, rtol=1e-10, atol=1e-12)


def test_correlation_with_auto_schedule_and_finite_differences():
    """The new form through td.auto_schedule and the default schedule, against central
    differences of the forward (a tanh after the conv, so the head is not constant)."""
    x = td.placeholder((2, 3, 7, 9), "float64", name="x")
    w = td.placeholder((4, 3, 3, 3), "float64", name="w")
    y = nn.tanh(nn.conv2d(x, w, padding=1, name="cv"), name="act")
    gradcheck(y, [x, w], {x: random((2, 3, 7, 9), 4), w: random((4, 3, 3, 3), 5)})


def test_correlation_with_symbolic_sizes():
    """Symbolic height and width: the pads are constants (the sizes cancel), the form is
    the correlation, and one kernel is right at two ragged sizes."""
    h, wd = td.var("h"), td.var("wd")
    x, w, head, dx, dw = _grads((2, 3, h, wd), (4, 3, 3, 3), 1, 1, 1, 1)
    assert _is_correlation(dx)
    mod = td.build(td.auto_schedule([dx, dw]), [x, w, head, dx, dw])
    for n, (hh, ww) in enumerate([(5, 7), (9, 4)]):
        xv, wv = random((2, 3, hh, ww), 10 + n), random((4, 3, 3, 3), 20 + n)
        hv = random((2, 4, hh, ww), 30 + n)
        got_dx, got_dw = np.full(xv.shape, np.nan), np.full(wv.shape, np.nan)
        mod(xv, wv, hv, got_dx, got_dw)
        want_dx, want_dw = conv_adjoints_numpy(xv, wv, hv, 1, 1, 1, 1)
        np.testing.assert_allclose(got_dx, want_dx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_dw, want_dw, rtol=1e-10, atol=1e-12)


def test_strided_rows_with_finite_differences():
    x = td.placeholder((1, 2, 9, 6), "float64", name="x")
    w = td.placeholder((3, 2, 3, 3), "float64", name="w")
    y = nn.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2), name="cv")
    gradcheck(y, [x], {x: random((1, 2, 9, 6), 6), w: random((3, 2, 3, 3), 7)},
              schedules=("default",))


def test_guard_that_is_not_the_heads_bounds_keeps_the_gather():
    """A consumer whose where= restricts more than the head's bounds: the sum is not over
    a box, the gather (with where=) stays, and the values are right."""
    x = td.placeholder((6,), "float64", name="x")
    k = td.placeholder((3,), "float64", name="k")
    r = td.reduce_axis(3, name="r")
    y = td.compute((4,), lambda i: td.sum(x[i + r] * k[r], axis=[r], where=i + r < 5),
                   name="y")
    head = td.placeholder((4,), "float64", name="head")
    dx = td.grad(y, x, head=head)
    assert dx.op.body.where is not None
    mod = td.build(td.create_schedule(dx), [k, head, dx])
    kv, hv = random(3, 1), random(4, 2)
    got = np.full(6, np.nan)
    mod(kv, hv, got)
    want = np.zeros(6)
    for i in range(4):
        for rr in range(3):
            if i + rr < 5:
                want[i + rr] += hv[i] * kv[rr]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_second_read_at_the_heads_index_keeps_the_gather():
    """y[n, i] = sum_r x[n, i + r] k[r] * z[n, i]: x's summand is head * z * k at
    i = a - r, so padding the head would leave z read out of bounds; the gather stays,
    with NumPy's values."""
    x = td.placeholder((2, 6), "float64", name="x")
    k = td.placeholder((3,), "float64", name="k")
    z = td.placeholder((2, 4), "float64", name="z")
    r = td.reduce_axis(3, name="r")
    y = td.compute((2, 4), lambda n, i: td.sum(x[n, i + r] * k[r] * z[n, i], axis=[r]),
                   name="y")
    head = td.placeholder((2, 4), "float64", name="head")
    dx = td.grad(y, x, head=head)
    assert dx.op.body.where is not None
    mod = td.build(td.create_schedule(dx), [k, z, head, dx])
    kv, zv, hv = random(3, 1), random((2, 4), 2), random((2, 4), 3)
    got = np.full((2, 6), np.nan)
    mod(kv, zv, hv, got)
    want = np.zeros((2, 6))
    for i in range(4):
        for rr in range(3):
            want[:, i + rr] += hv[:, i] * zv[:, i] * kv[rr]
    np.testing.assert_allclose(got, want, rtol=1e-12)


# Windows no larger than their stride: each input element is in at most one window, so
# td.grad solves s y + r == a for both (y = a // s, r = a % s) and the adjoint is
# elementwise, with no sum over the window and no divisibility guard.

def _no_reduction(t) -> bool:
    return not isinstance(t.op.body, Reduce)


@pytest.mark.parametrize("shape, pool, stride", [((2, 3, 8, 8), 2, 2), ((1, 2, 7, 6), 2, 2),
                                                 ((1, 2, 9, 8), (2, 1), (3, 2))])
def test_max_pool_with_stride_at_least_the_window_is_elementwise(shape, pool, stride):
    x = td.placeholder(shape, "float64", name="x")
    y = nn.max_pool2d(nn.tanh(x, name="t"), pool, stride=stride, name="mp")
    dx = td.grad(y, [x], head=td.placeholder(y.shape, "float64", name="head"))[0]
    assert all(_no_reduction(op.output(0)) for op in topo_order([dx])
               if op.name.startswith("t_grad")), [op for op in topo_order([dx])]
    gradcheck(y, [x], {x: random(shape, 11)}, schedules=("default",))


def test_conv_with_kernel_equal_to_stride_is_a_sum_over_filters_only():
    """A 2 x 2 convolution with stride 2 (patches): the input adjoint sums over the
    output channels alone, against NumPy."""
    x, w, head, dx, dw = _grads((2, 3, 7, 8), (4, 3, 2, 2), 2, 0, 1, 1)
    mod = td.build(td.create_schedule([dx, dw]), [x, w, head, dx, dw])
    xv, wv = random((2, 3, 7, 8), 1), random((4, 3, 2, 2), 2)
    hv = random(conv_numpy(xv, wv, 2, 0, 1, 1).shape, 3)
    got_dx, got_dw = np.full(xv.shape, np.nan), np.full(wv.shape, np.nan)
    mod(xv, wv, hv, got_dx, got_dw)
    want_dx, want_dw = conv_adjoints_numpy(xv, wv, hv, 2, 0, 1, 1)
    np.testing.assert_allclose(got_dx, want_dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_dw, want_dw, rtol=1e-10, atol=1e-12)
