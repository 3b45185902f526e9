"""Halide (PyPI `halide`) versions of W1-W8, JIT-compiled through the Python bindings.

Scheduled in the style of Halide's own apps and tests: the blur app (tile + compute_at),
the matrix-multiply performance tests (an accumulator Func computed at a register tile),
the conv_layer app (output channels vectorized, pixels unrolled), and `rfactor` for
reductions (tutorial lesson 18). HL_NUM_THREADS must be set before `import halide`.
The Halide target and the vector widths and register tiles come from the run's target
(`benchmarks/targets.py`): x86-64-v3 is Halide's avx-avx2-f16c-fma-sse41, x86-64-v4 adds
avx512 + avx512_skylake; native is Halide's host target.

Halide indexes x first: a numpy array of shape (rows, cols) is a Halide buffer with
x = column, y = row, which `hl.Buffer(ndarray)` arranges without copying.
"""

from __future__ import annotations

import time

from .. import targets
from . import PeerUnavailable

_SCHEDULES = {
    "W1": "accumulator Func computed at {cols}x{rows} register tiles ({vecs} vectors x {rows} "
          "rows){block}, k loop outside the unrolled tile; rows of tiles parallel; no packing",
    "W2": "pad stage + weights transposed to channel-innermost; accumulator of {ch} "
          "channels x {px} pixels computed at each output tile; (row, channel block) parallel",
    "W3": "vectorize x by {lanes}, parallel over strips of 64 rows",
    "W4": "strips of 64 rows parallel; per row max and sum rfactored into {lanes} lanes, "
          "exp (Halide's vectorizable polynomial) computed at the row",
    "W5": "the blur app's schedule: tiles 256x32, blur_x computed at the tile, both "
          "vectorized by {lanes}, strips parallel",
    "W6": "{lanes}x{lanes} tiles: input block loaded with vector loads (wrapper computed at "
          "the tile) and stored transposed; strips of tiles parallel",
    "W7": "strips of 64 rows parallel; row sum rfactored into {lanes} vector lanes",
    "W8": "strips of 64 rows parallel; sum and sum of squares rfactored into {lanes} lanes at "
          "the row; normalize vectorized",
}


def schedules(t=None) -> dict:
    """Each workload's schedule in one line, with the widths and tiles of target `t`
    (default: the run's target)."""
    return targets.describe_schedules(_SCHEDULES, t, "halide")


def _shape():
    return targets.peer_shape(peer="halide")


_hl = None


def _load():
    global _hl
    if _hl is None:
        try:
            import halide
        except Exception as e:
            raise PeerUnavailable(f"cannot import halide: {type(e).__name__}: {e}") from e
        _hl = halide
    return _hl


def version() -> str:
    from importlib.metadata import version as v
    _load()
    return v("halide")


def target():
    """The Halide target for the run's tdsl target, with assertions off, as apps ship:
    for native, the host target (Halide detects the CPU, e.g. AVX-512 / Zen 4); for a
    named CPU level, x86-64-linux with exactly its features (e.g. x86-64-v3:
    avx-avx2-f16c-fma-sse41)."""
    hl = _load()
    feats = targets.halide_features()
    if feats is None:
        t = hl.get_jit_target_from_environment()
    else:
        arch_bits_os = str(hl.get_host_target()).split("-")[:3]      # x86-64-linux
        t = hl.Target("-".join(arch_bits_os + feats))
    return t.with_feature(hl.TargetFeature.NoAsserts)


def _vars(names: str):
    hl = _load()
    return [hl.Var(n) for n in names.split()]


def _param(name: str, shape: tuple):
    """ImageParam with the numpy shape's constant extents (Halide order: last axis first)."""
    hl = _load()
    p = hl.ImageParam(hl.Float(32), len(shape), name)
    _fix_bounds(p, shape)
    return p


def _fix_bounds(p, shape):
    stride = 1
    for d, extent in enumerate(reversed(shape)):
        p.dim(d).set_bounds(0, extent).set_stride(stride)
        stride *= extent


# --- algorithms and their schedules ---------------------------------------------------------
# Each builder defines a workload's algorithm (its Funcs) and then applies the hand
# schedule; with schedule=False it returns the algorithm unscheduled (halide_auto.py hands
# it to Halide's autoschedulers). Returns (output Func, ImageParams, input names).

def _gemm(shapes, schedule=True):
    hl = _load()
    (m, kk), (_, n) = shapes["A"], shapes["B"]
    A, B = _param("A", (m, kk)), _param("B", (kk, n))
    x, y, xo, yo, xi, yi = _vars("x y xo yo xi yi")
    k = hl.RDom([(0, kk)], "k")
    acc, out = hl.Func("acc"), hl.Func("out")
    acc[x, y] = 0.0
    acc[x, y] += A[k.x, y] * B[x, k.x]
    out[x, y] = acc[x, y]
    if not schedule:
        return out, [A, B], ["A", "B"]
    sh = _shape()                       # 48x8 (3 zmm x 8 rows) / 16x6 (2 ymm x 6 rows)
    if sh.gemm_row_block > sh.gemm_rows:
        # the blocking of Halide's test/performance/matrix_multiplication.cpp (an AVX2
        # schedule: 24 x 32 output tiles of 24 x 4 register tiles): output tiles of several
        # register tiles, so a panel of B is reused by each while it is in cache
        yii = hl.Var("yii")
        out.tile(x, y, xo, yo, xi, yi, sh.gemm_cols, sh.gemm_row_block).parallel(yo) \
           .split(yi, yi, yii, sh.gemm_rows).vectorize(xi, sh.lanes).unroll(xi).unroll(yii)
        acc.compute_at(out, yi).vectorize(x, sh.lanes).unroll(x).unroll(y)
        acc.update().reorder(x, y, k.x).vectorize(x, sh.lanes).unroll(x).unroll(y) \
           .unroll(k.x, 2)
    else:
        out.tile(x, y, xo, yo, xi, yi, sh.gemm_cols, sh.gemm_rows).parallel(yo) \
           .vectorize(xi, sh.lanes)
        acc.compute_at(out, xo).vectorize(x, sh.lanes).unroll(x).unroll(y)
        acc.update().reorder(x, y, k.x).vectorize(x, sh.lanes).unroll(x).unroll(y)
    return out, [A, B], ["A", "B"]


def _conv2d(shapes, schedule=True):
    hl = _load()
    n_, c_, h_, w_ = shapes["x"]
    k_, _, r_, s_ = shapes["w"]
    X, Wt = _param("x", shapes["x"]), _param("w", shapes["w"])    # X(w, h, c, n), Wt(s, r, c, k)
    w, h, k, n, wo, wi, ko, ki, t = _vars("w h k n wo wi ko ki t")
    pad = hl.BoundaryConditions.constant_exterior(X, 0.0)
    Xp, Wp = hl.Func("Xp"), hl.Func("Wp")
    Xp[w, h, k, n] = pad[w - 1, h - 1, k, n]
    Wp[k, w, h, n] = Wt[w, h, n, k]            # (k, s, r, c): output channel innermost
    r = hl.RDom([(0, s_), (0, r_), (0, c_)], "r")
    conv, out = hl.Func("conv"), hl.Func("out")
    conv[k, w, h, n] = 0.0
    conv[k, w, h, n] += Xp[w + r.x, h + r.y, r.z, n] * Wp[k, r.x, r.y, r.z]
    out[w, h, k, n] = conv[k, w, h, n]
    if not schedule:
        return out, [X, Wt], ["x", "w"]
    sh = _shape()                       # 16 channels x 14 pixels / 8 x 14
    kv = sh.conv_channels
    out.split(k, ko, ki, kv).split(w, wo, wi, sh.conv_pixels).reorder(wi, ki, wo, h, ko, n) \
       .fuse(h, ko, t).parallel(t)
    conv.compute_at(out, wo).vectorize(k, kv).unroll(w)
    conv.update().reorder(k, w, r.x, r.y, r.z).vectorize(k, kv).unroll(w)
    Xp.compute_root().parallel(k)
    Wp.compute_root().vectorize(k, kv)
    return out, [X, Wt], ["x", "w"]


def _fma_relu(shapes, schedule=True):
    hl = _load()
    sh = shapes["a"]
    a, b, c = (_param(nm, sh) for nm in "abc")
    x, y = _vars("x y")
    out = hl.Func("out")
    out[x, y] = hl.max(a[x, y] * b[x, y] + c[x, y], 0.0)
    if not schedule:
        return out, [a, b, c], ["a", "b", "c"]
    out.vectorize(x, _shape().lanes).parallel(y, 64)
    return out, [a, b, c], ["a", "b", "c"]


def _row_reduce(f, rvar, at, yi, lanes=None):
    """f(y) = reduction of body over rvar, rfactored into `lanes` lanes (default: one
    vector of the target) and computed at (at, yi): the lane-partial Func is vectorized,
    the final lanes -> 1 is scalar."""
    hl = _load()
    lanes = lanes or _shape().lanes
    u = hl.Var("u")
    rxo, rxi = hl.RVar("rxo"), hl.RVar("rxi")
    f.update().split(rvar, rxo, rxi, lanes)
    intm = f.update().rfactor(rxi, u)
    f.compute_at(at, yi)
    intm.compute_at(at, yi).vectorize(u)
    intm.update().vectorize(u)
    return intm


def _softmax(shapes, schedule=True):
    hl = _load()
    rows, cols = shapes["x"]
    X = _param("x", (rows, cols))
    x, y, yo, yi = _vars("x y yo yi")
    r = hl.RDom([(0, cols)], "r")
    mx, e, sm, out = hl.Func("mx"), hl.Func("e"), hl.Func("sm"), hl.Func("out")
    mx[y] = hl.f32(float("-inf"))
    mx[y] = hl.max(mx[y], X[r.x, y])
    e[x, y] = hl.exp(X[x, y] - mx[y])
    sm[y] = 0.0
    sm[y] += e[r.x, y]
    out[x, y] = e[x, y] / sm[y]
    if not schedule:
        return out, [X], ["x"]
    lanes = _shape().lanes
    out.split(y, yo, yi, 64).parallel(yo).vectorize(x, lanes)
    e.compute_at(out, yi).vectorize(x, lanes)
    _row_reduce(mx, r.x, out, yi)
    _row_reduce(sm, r.x, out, yi)
    return out, [X], ["x"]


def _blur(shapes, schedule=True):
    hl = _load()
    hin, win = shapes["x"]
    X = _param("x", (hin, win))
    x, y, xi, yi = _vars("x y xi yi")
    third = hl.f32(1.0 / 3.0)
    bx, by = hl.Func("blur_x"), hl.Func("blur_y")
    bx[x, y] = (X[x, y] + X[x + 1, y] + X[x + 2, y]) * third
    by[x, y] = (bx[x, y] + bx[x, y + 1] + bx[x, y + 2]) * third
    if not schedule:
        return by, [X], ["x"]
    lanes = _shape().lanes
    by.tile(x, y, xi, yi, 256, 32).vectorize(xi, lanes).parallel(y)
    bx.compute_at(by, x).vectorize(x, lanes)
    return by, [X], ["x"]


def _transpose(shapes, schedule=True):
    hl = _load()
    rows, cols = shapes["x"]
    X = _param("x", (rows, cols))
    x, y, xi, yi = _vars("x y xi yi")
    out = hl.Func("out")
    out[x, y] = X[y, x]
    if not schedule:
        return out, [X], ["x"]
    t = _shape().lanes                  # lanes x lanes tiles: 16x16 / 8x8
    out.tile(x, y, xi, yi, t, t).vectorize(xi).unroll(yi).parallel(y)
    block = X.in_()
    block.compute_at(out, x).vectorize(block.args()[0]).unroll(block.args()[1])
    return out, [X], ["x"]


def _rowsum(shapes, schedule=True):
    hl = _load()
    rows, cols = shapes["x"]
    X = _param("x", (rows, cols))
    y, yo, yi = _vars("y yo yi")
    r = hl.RDom([(0, cols)], "r")
    total, out = hl.Func("total"), hl.Func("out")
    total[y] = 0.0
    total[y] += X[r.x, y]
    out[y] = total[y]
    if not schedule:
        return out, [X], ["x"]
    out.split(y, yo, yi, 64).parallel(yo)
    _row_reduce(total, r.x, out, yi)
    return out, [X], ["x"]


def _layernorm(shapes, schedule=True):
    hl = _load()
    rows, cols = shapes["x"]
    X = _param("x", (rows, cols))
    x, y, yo, yi = _vars("x y yo yi")
    r = hl.RDom([(0, cols)], "r")
    s1, s2, out = hl.Func("s1"), hl.Func("s2"), hl.Func("out")
    s1[y] = 0.0
    s1[y] += X[r.x, y]
    s2[y] = 0.0
    s2[y] += X[r.x, y] * X[r.x, y]
    mean = s1[y] * (1.0 / cols)
    var = s2[y] * (1.0 / cols) - mean * mean
    out[x, y] = (X[x, y] - mean) * (1.0 / hl.sqrt(var + hl.f32(1e-5)))   # (InvStdDev, as ONNX)
    if not schedule:
        return out, [X], ["x"]
    out.split(y, yo, yi, 64).parallel(yo).vectorize(x, _shape().lanes)
    _row_reduce(s1, r.x, out, yi)
    _row_reduce(s2, r.x, out, yi)
    return out, [X], ["x"]


_BUILDERS = {"W1": _gemm, "W2": _conv2d, "W3": _fma_relu, "W4": _softmax, "W5": _blur,
             "W6": _transpose, "W7": _rowsum, "W8": _layernorm}


def algorithm(workload_id: str, shapes: dict, out_shape: tuple):
    """(output Func, ImageParams, input names): the workload's algorithm with no schedule
    (every Func inlined unless a schedule says otherwise), the same Funcs as `build`'s, with
    the inputs' and the output's constant extents fixed."""
    out, params, names = _BUILDERS[workload_id](shapes, schedule=False)
    _fix_bounds(out.output_buffer(), out_shape)
    return out, params, names


def build(workload_id: str, shapes: dict, out_shape: tuple):
    """(callable, input names, compile seconds): define, schedule, compile_to_callable."""
    t0 = time.perf_counter()
    out, params, names = _BUILDERS[workload_id](shapes)
    _fix_bounds(out.output_buffer(), out_shape)
    fn = out.compile_to_callable(params, target())
    return fn, names, time.perf_counter() - t0


def prepare(workload_id: str, inputs: dict, out_shape: tuple):
    """(run, result, compile_s): Halide buffers alias the numpy inputs and output."""
    hl = _load()
    import numpy as np
    fn, names, compile_s = build(workload_id, {k: v.shape for k, v in inputs.items()},
                                 out_shape)
    out = np.empty(out_shape, np.float32)
    args = [hl.Buffer(inputs[nm]) for nm in names] + [hl.Buffer(out)]

    def run():
        fn(*args)
    return run, (lambda: out), compile_s
