"""The benchmark schedules, built small and checked against NumPy, so they never rot."""

import numpy as np
import pytest

import tdsl as td
from benchmarks.schedules import (w1_gemm, w2_conv2d, w3_fma_relu, w4_softmax, w5_blur,
                                  w6_transpose, w7_rowsum, w8_layernorm)
from tests.helpers import check


def _numpy_softmax(x):
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _numpy_layernorm(x, eps=1e-5):
    a = x.astype(np.float64)
    mu = a.mean(axis=1, keepdims=True)
    return (a - mu) / np.sqrt(((a - mu) ** 2).mean(axis=1, keepdims=True) + eps)


def _conv(x, w):
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    n, c, h, wd = x.shape
    out = np.zeros((n, w.shape[0], h, wd))
    for r in range(3):
        for s in range(3):
            out += np.einsum("nchw,kc->nkhw", xp[:, :, r:r + h, s:s + wd], w[:, :, r, s])
    return out


CASES = {
    "gemm-packed": (lambda: w1_gemm.gemm(37, 64, 29, 6, 16), lambda f: f[0] @ f[1]),
    "gemm-packed-padded": (lambda: w1_gemm.gemm(37, 75, 29, 4, 24), lambda f: f[0] @ f[1]),
    "gemm-unpacked": (lambda: w1_gemm.gemm(20, 40, 9, 8, 32, pack=False),
                      lambda f: f[0] @ f[1]),
    "conv2d": (lambda: w2_conv2d.conv2d(1, 5, 9, 30, 32, 8, 12), lambda f: _conv(f[0], f[1])),
    "fma_relu": (lambda: w3_fma_relu.fma_relu(37, 50),
                 lambda f: np.maximum(f[0] * f[1] + f[2], 0)),
    "softmax": (lambda: w4_softmax.softmax(7, 45, 8), lambda f: _numpy_softmax(f[0])),
    "blur": (lambda: w5_blur.blur(37, 300),
             lambda f: sum(sum(f[0][r:r + 37, c:c + 300] for c in range(3)) / 3
                           for r in range(3)) / 3),
    "blur-inline": (lambda: w5_blur.blur_inline(37, 300, rows=16),
                    lambda f: sum(sum(f[0][r:r + 37, c:c + 300] for c in range(3)) / 3
                                  for r in range(3)) / 3),
    "transpose-blocked": (lambda: w6_transpose.transpose(37, 45, block=16, tile=8),
                          lambda f: f[0].T),
    "transpose-one-level": (lambda: w6_transpose.transpose(37, 45, block=16, tile=16),
                            lambda f: f[0].T),
    "rowsum": (lambda: w7_rowsum.rowsum(7, 45, 16), lambda f: f[0].sum(axis=1)),
    "layernorm": (lambda: w8_layernorm.layernorm(7, 45, 8), lambda f: _numpy_layernorm(f[0])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_benchmark_schedule_matches_numpy(name):
    make, numpy_fn = CASES[name]
    s, args = make()
    feeds, (out,) = check(s, args)
    inputs = [feeds[t] for t in args if isinstance(t.op, td.lang.PlaceholderOp)]
    np.testing.assert_allclose(out, numpy_fn(inputs), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("lanes,strip", [(32, 7), (32, 14), (16, 6), (8, 14)],
                         ids=["k32x7", "k32x14", "k16x6", "k8x14"])
def test_conv2d_variants(lanes, strip):
    s, args = w2_conv2d.conv2d(1, 3, 9, 30, 64, lanes=lanes, strip=strip)
    feeds, (out,) = check(s, args)
    inputs = [feeds[t] for t in args if isinstance(t.op, td.lang.PlaceholderOp)]
    np.testing.assert_allclose(out, _conv(*inputs), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("lanes", [8, 32, 64])
def test_reduction_lane_variants(lanes):
    for make in (lambda: w4_softmax.softmax(5, 150, lanes), lambda: w8_layernorm.layernorm(
            5, 150, lanes), lambda: w7_rowsum.rowsum(5, 150, lanes)):
        s, args = make()
        check(s, args)



@pytest.mark.parametrize("wid", ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"])
def test_auto_rows_match_the_reference(wid):
    """The `tdsl:auto` rows: each workload's plain algorithm under td.auto_schedule, at a
    small size, against the workload's float64 reference."""
    from benchmarks.schedules import auto
    from benchmarks.workloads import WORKLOADS
    small = {"W1": {"A": (37, 29), "B": (29, 50)}, "W2": {"x": (1, 5, 9, 30), "w": (16, 5, 3, 3)},
             "W3": {k: (37, 50) for k in "abc"}, "W5": {"x": (39, 302)}}.get(
        wid, {"x": (7, 45)})
    rng = np.random.default_rng(0)
    inputs = {k: rng.standard_normal(v).astype(np.float32) for k, v in small.items()}
    args, arrays = auto.ALGORITHMS[wid](inputs)
    want = WORKLOADS[wid].reference(inputs)
    run, result, _ = auto.prepare(wid, inputs, want.shape)
    run()
    np.testing.assert_allclose(result(), want, rtol=2e-4, atol=2e-4)
