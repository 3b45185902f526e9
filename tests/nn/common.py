"""Helpers of the tdsl.nn tests: build a graph of operators, run it, and NumPy oracles
written here independently of tdsl (no PyTorch in the test environment)."""

from __future__ import annotations

import math

import numpy as np

import tdsl as td
from tdsl.lang.reference import evaluate_scalar


def random(shape, seed: int, lo: float = -1.0, hi: float = 1.0, dtype="float32") -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


def build_run(outputs, feeds: dict, auto: bool = False, sizes: dict | None = None
              ) -> list[np.ndarray]:
    """Build `outputs` (one tensor or a list) with the default schedule or td.auto_schedule,
    run it on `feeds` {placeholder: array}, and return the outputs (also checked against
    td.reference, tdsl's NumPy evaluator)."""
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    schedule = td.auto_schedule(outputs) if auto else td.create_schedule(outputs)
    inputs = list(feeds)
    module = td.build(schedule, inputs + outputs)
    sizes = dict(sizes or {})
    # NaN (or 7 for integers) in the outputs: an element the kernel never writes shows.
    results = [np.full(tuple(int(evaluate_scalar(d, sizes)) for d in t.shape),
                       np.nan if t.dtype.startswith("float") else 7, t.dtype) for t in outputs]
    module(*feeds.values(), *results)
    for got, want in zip(results, td.reference(outputs, feeds, sizes)):
        close(got, want)
    return results


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got.astype(np.float64), np.asarray(want, np.float64),
                               rtol=rtol, atol=atol)


# -- NumPy oracles ---------------------------------------------------------------------

def conv2d(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """PyTorch's conv2d, NCHW, by summing one shifted slice per kernel position."""
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2])
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, f, oh, ow))
    fg = f // groups
    for g in range(groups):
        xs = x[:, g * cg:(g + 1) * cg]
        ws = w[g * fg:(g + 1) * fg].astype(np.float64)
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dilation[0], kx * dilation[1]
                patch = xs[:, :, y0:y0 + stride[0] * (oh - 1) + 1:stride[0],
                           x0:x0 + stride[1] * (ow - 1) + 1:stride[1]]
                out[:, g * fg:(g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, ws[:, :, ky, kx])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def pool2d(x, kernel, stride, padding, mode, dilation=(1, 1)):
    """PyTorch's max_pool2d / avg_pool2d (floor mode, count_include_pad=True)."""
    fill = -np.inf if mode == "max" else 0.0
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2],
               constant_values=fill)
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    win = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    return win.max(axis=(4, 5)) if mode == "max" else win.mean(axis=(4, 5))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x.astype(np.float64) / math.sqrt(2)))
