"""numpy implementations of W1-W8: the 1.00x baseline of every ratio.

Written as a numpy user would: library calls with `out=` into preallocated arrays where
numpy offers it, temporaries where the expression needs them. numpy's elementwise ufuncs
run on one thread; matmul uses the linked BLAS (OpenBLAS) with its thread count.
"""

from __future__ import annotations

import numpy as np


def _gemm(x):
    a, b = x["A"], x["B"]
    out = np.empty((a.shape[0], b.shape[1]), np.float32)

    def run():
        np.matmul(a, b, out=out)
    return run, out


def _conv2d(x):
    # pad + im2col + sgemm, the usual numpy/BLAS route (what Caffe-style CPU code does).
    xin, w = x["x"], x["w"]
    n, c, h, wd = xin.shape
    k, _, r, s = w.shape
    assert n == 1
    xp = np.zeros((c, h + r - 1, wd + s - 1), np.float32)
    cols = np.empty((c, r, s, h, wd), np.float32)
    out = np.empty((n, k, h, wd), np.float32)
    wmat = w.reshape(k, c * r * s)
    cols_mat = cols.reshape(c * r * s, h * wd)
    out_mat = out.reshape(k, h * wd)
    win = np.lib.stride_tricks.sliding_window_view(xp, (h, wd), axis=(1, 2))  # c, r, s, h, w

    def run():
        xp[:, 1:h + 1, 1:wd + 1] = xin[0]
        np.copyto(cols, win)
        np.matmul(wmat, cols_mat, out=out_mat)
    return run, out


def _fma_relu(x):
    a, b, c = x["a"], x["b"], x["c"]
    out = np.empty_like(a)

    def run():
        np.maximum(a * b + c, 0.0, out=out)
    return run, out


def _softmax(x):
    a = x["x"]
    out = np.empty_like(a)

    def run():
        np.subtract(a, a.max(axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        np.divide(out, out.sum(axis=1, keepdims=True), out=out)
    return run, out


def _blur(x):
    a = x["x"]
    h, w = a.shape
    bx = np.empty((h, w - 2), np.float32)
    out = np.empty((h - 2, w - 2), np.float32)
    third = np.float32(1.0 / 3.0)

    def run():
        np.add(a[:, :-2], a[:, 1:-1], out=bx)
        np.add(bx, a[:, 2:], out=bx)
        np.multiply(bx, third, out=bx)
        np.add(bx[:-2], bx[1:-1], out=out)
        np.add(out, bx[2:], out=out)
        np.multiply(out, third, out=out)
    return run, out


def _transpose(x):
    a = x["x"]
    out = np.empty((a.shape[1], a.shape[0]), np.float32)

    def run():
        np.copyto(out, a.T)
    return run, out


def _rowsum(x):
    a = x["x"]
    out = np.empty(a.shape[0], np.float32)

    def run():
        np.sum(a, axis=1, out=out)
    return run, out


def _layernorm(x):
    a = x["x"]
    out = np.empty_like(a)
    eps = np.float32(1e-5)

    def run():
        mu = a.mean(axis=1, keepdims=True)
        np.subtract(a, mu, out=out)
        var = np.mean(out * out, axis=1, keepdims=True)
        np.multiply(out, 1.0 / np.sqrt(var + eps), out=out)
    return run, out


SCHEDULES = {
    "W1": "np.matmul(A, B, out=C) (OpenBLAS sgemm, threaded)",
    "W2": "pad into a zeroed buffer, im2col by copying a sliding-window view, sgemm",
    "W3": "np.maximum(a * b + c, 0, out=out): two temporaries, one thread",
    "W4": "subtract row max, np.exp in place, divide by row sum",
    "W5": "three shifted adds then scale, for x then for y, into preallocated buffers",
    "W6": "np.copyto(out, x.T)",
    "W7": "np.sum(x, axis=1, out=out) (pairwise SIMD sum)",
    "W8": "mean, subtract, mean of squares, scale by 1/sqrt(var + eps)",
}



def schedules(t=None) -> dict:
    """The same for every target: numpy has no schedule (its BLAS picks its own kernel,
    named in the machine description)."""
    return dict(SCHEDULES)


_IMPLS = {"W1": _gemm, "W2": _conv2d, "W3": _fma_relu, "W4": _softmax, "W5": _blur,
          "W6": _transpose, "W7": _rowsum, "W8": _layernorm}


def version() -> str:
    return np.__version__


def prepare(workload_id: str, inputs: dict, out_shape: tuple | None = None):
    """(run, result, compile_s) for numpy's version of `workload_id`."""
    run, out = _IMPLS[workload_id](inputs)
    return run, (lambda: out), 0.0
