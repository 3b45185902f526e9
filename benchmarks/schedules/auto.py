"""The eight workloads as a user writes them, scheduled by `td.auto_schedule`: the
`tdsl:auto` rows. No hand schedule and no layout choice: the algorithm only (a matmul, a
convolution with its padding stage, a softmax in four stages...), as in PERF_TARGETS.md.
"""

from __future__ import annotations

from pathlib import Path

import tdsl as td

from ._common import prepare_kernel


def gemm(inputs):
    n, l = inputs["A"].shape
    m = inputs["B"].shape[1]
    A, B = td.placeholder((n, l), name="A"), td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return [A, B, C], [inputs["A"], inputs["B"]]


def conv2d(inputs):
    batch, c, h, w = inputs["x"].shape
    kk = inputs["w"].shape[0]
    x = td.placeholder((batch, c, h, w), name="x")
    wt = td.placeholder((kk, c, 3, 3), name="w")
    pad = td.compute((batch, c, h + 2, w + 2), lambda n, ci, y, xx: td.select(
        td.all(y >= 1, y <= h, xx >= 1, xx <= w), x[n, ci, y - 1, xx - 1], 0.0), name="pad")
    rc, ry, rx = (td.reduce_axis(c, name="rc"), td.reduce_axis(3, name="ry"),
                  td.reduce_axis(3, name="rx"))
    out = td.compute((batch, kk, h, w), lambda n, f, y, xx: td.sum(
        pad[n, rc, y + ry, xx + rx] * wt[f, rc, ry, rx], axis=[rc, ry, rx]), name="out")
    return [x, wt, out], [inputs["x"], inputs["w"]]


def fma_relu(inputs):
    shape = inputs["a"].shape
    a, b, c = (td.placeholder(shape, name=n) for n in "abc")
    out = td.compute(shape, lambda i, j: td.maximum(a[i, j] * b[i, j] + c[i, j], 0.0),
                     name="out")
    return [a, b, c, out], [inputs["a"], inputs["b"], inputs["c"]]


def softmax(inputs):
    n, m = inputs["x"].shape
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    mx = td.compute((n,), lambda i: td.max(x[i, k1], axis=k1), name="mx")
    e = td.compute((n, m), lambda i, j: td.exp(x[i, j] - mx[i]), name="e")
    total = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
    out = td.compute((n, m), lambda i, j: e[i, j] / total[i], name="out")
    return [x, out], [inputs["x"]]


def blur(inputs):
    hh, ww = inputs["x"].shape
    h, w = hh - 2, ww - 2
    inp = td.placeholder((hh, ww), name="inp")
    # times a third, as the peers' algorithms (and the hand schedule's) write it: a
    # division is not the same float computation, and costs four vdivps per output vector
    # once blur_x is inlined (auto and tuned compare with Halide's and TVM's autoschedulers
    # on the same arithmetic)
    third = 1.0 / 3.0
    bx = td.compute((hh, w), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2]) * third,
                    name="bx")
    by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) * third,
                    name="by")
    return [inp, by], [inputs["x"]]


def transpose(inputs):
    n, m = inputs["x"].shape
    x = td.placeholder((n, m), name="x")
    out = td.compute((m, n), lambda i, j: x[j, i], name="out")
    return [x, out], [inputs["x"]]


def rowsum(inputs):
    n, m = inputs["x"].shape
    x = td.placeholder((n, m), name="x")
    k = td.reduce_axis(m, name="k")
    total = td.compute((n,), lambda i: td.sum(x[i, k], axis=k), name="total")
    return [x, total], [inputs["x"]]


def layernorm(inputs, eps: float = 1e-5):
    n, m = inputs["x"].shape
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    total = td.compute((n,), lambda i: td.sum(x[i, k1], axis=k1), name="total")
    squares = td.compute((n,), lambda i: td.sum(x[i, k2] * x[i, k2], axis=k2), name="squares")
    # times the reciprocal of the standard deviation, as ONNX's LayerNormalization defines
    # it (InvStdDev) and every W8 row computes it: a division is another float computation
    # and costs a vdivps per output vector
    out = td.compute((n, m), lambda i, j: (x[i, j] - total[i] / m) * (1.0 / td.sqrt(td.maximum(
        squares[i] / m - (total[i] / m) * (total[i] / m), 0.0) + eps)), name="out")
    return [x, out], [inputs["x"]]


ALGORITHMS = {"W1": gemm, "W2": conv2d, "W3": fma_relu, "W4": softmax, "W5": blur,
              "W6": transpose, "W7": rowsum, "W8": layernorm}


TUNING_LOG = Path(__file__).resolve().parent.parent / "tuning" / "log.jsonl"


def prepare(workload_id: str, inputs, out_shape):
    """(run, result, compile_s) of the workload's algorithm under td.auto_schedule."""
    args, arrays = ALGORITHMS[workload_id](inputs)
    s = td.auto_schedule(args[-1])
    return prepare_kernel(s, args, arrays, out_shape)


def prepare_tuned(workload_id: str, inputs, out_shape):
    """(run, result, compile_s) of the best schedule benchmarks/tuning/log.jsonl holds for
    the workload on this machine and target (benchmarks/tune.py makes it); TdslError if
    the log holds none."""
    from ..peers import PeerUnavailable
    args, arrays = ALGORITHMS[workload_id](inputs)
    try:
        s = td.apply_best(TUNING_LOG, args[-1], args)
    except td.TdslError as exc:
        if "holds no measured candidate" in str(exc):     # not tuned on this machine yet
            raise PeerUnavailable(f"{exc}; python benchmarks/tune.py --workloads "
                                  f"{workload_id} makes it") from None
        raise
    return prepare_kernel(s, args, arrays, out_shape)
