"""TVM (PyPI `apache-tvm`) versions of W1-W8, scheduled by hand with `tvm.s_tir.Schedule`.

The schedules follow TVM's own material: the "How to optimize GEMM on CPU" tutorial
(blocking, packing, a write cache held in registers, vectorize, parallel), TOPI's x86
direct conv2d (output channels in vector lanes, a row segment of output pixels unrolled),
and TOPI's rfactor-based reductions. Vector widths and register tiles come from the run's
target (`benchmarks/targets.py`: 16 lanes and an 8x48 GEMM tile for AVX-512, 8 lanes and
4x24 for AVX2); each schedule is described in one line by `schedules()`.

TVM 0.27 removed the string target form and `te.create_schedule`: targets are dicts and
TE computes are scheduled as TensorIR through `te.create_prim_func` + `s_tir.Schedule`.
TVM_NUM_THREADS must be set before `import tvm` (run.py does).
"""

from __future__ import annotations

import time

from .. import targets
from . import PeerUnavailable

_SCHEDULES = {
    "W1": "pack B into {cols}-wide panels; {rows}x{cols} register tile ({rows} rows x {vecs} "
          "vectors of {lanes}) held over the whole k loop; rows of tiles parallel",
    "W2": "pad + pack weights ({ch} output channels per vector); register tile of {ch} "
          "channels x {px} output pixels over (c, r, s); (k-block, row) parallel",
    "W3": "rows parallel, columns vectorized by {lanes}",
    "W4": "rows parallel; per row: max and sum rfactored into {lanes} lanes, topi.fast_exp "
          "(vectorizable) into a row buffer computed at the row, then scale",
    "W5": "tiles 32x256 parallel over row strips; blur_x computed at the tile, both "
          "vectorized by {lanes}",
    "W6": "{lanes}x{lanes} tiles, rows of tiles parallel, inner tile unrolled / vectorized",
    "W7": "rows parallel; row sum rfactored into {lanes} vector lanes",
    "W8": "rows parallel; sum and sum of squares rfactored into {lanes} lanes at the row; "
          "normalize vectorized",
}


def schedules(t=None) -> dict:
    """Each workload's schedule in one line, with the widths and tiles of target `t`
    (default: the run's target)."""
    return targets.describe_schedules(_SCHEDULES, t, "tvm")


_tvm = None


def _load():
    global _tvm
    if _tvm is None:
        try:
            import tvm  # noqa: F401
            from tvm import s_tir, te, topi  # noqa: F401
        except Exception as e:  # ImportError, or a broken native library
            raise PeerUnavailable(f"cannot import tvm: {type(e).__name__}: {e}") from e
        _tvm = tvm
    return _tvm


def version() -> str:
    return _load().__version__


def target():
    """LLVM for the run's tdsl target (`targets.current()`): its -mcpu (x86-64-v3,
    x86-64-v4, a CPU name), or for native the host CPU named explicitly, as TVM's docs
    advise."""
    tvm = _load()
    return tvm.target.Target({"kind": "llvm", "mcpu": targets.llvm_mcpu()})


def _lanes() -> int:
    return targets.peer_shape(peer="tvm").lanes


def _f32(v):
    return _load().tirx.const(v, "float32")


def _vec(sch, loop, lanes=None):
    """Split `loop` into (outer, lanes) and vectorize the lanes (the target's lanes)."""
    outer, inner = sch.split(loop, [None, lanes or _lanes()])
    sch.vectorize(inner)
    return outer


def _rfactor_lanes(sch, block_name, lanes=None):
    """Factor the innermost reduction of `block_name` into `lanes` partial results
    (TOPI's rfactor idiom; default: one vector of the target); returns (rf block, final
    block). Call `_vector_rf` on the rf block once it has been placed."""
    blk = sch.get_sblock(block_name)
    k = sch.get_loops(blk)[-1]
    _, ki = sch.split(k, [None, lanes or _lanes()])
    rf = sch.rfactor(ki, factor_axis=len(sch.get(blk).iter_vars) - 1)
    return rf, blk


def _vector_rf(sch, rf):
    """Lanes innermost and vectorized, the reduction outside them, the init hoisted."""
    lane, ko = sch.get_loops(rf)[-2:]
    sch.reorder(ko, lane)
    sch.vectorize(lane)
    init = sch.decompose_reduction(rf, ko)
    sch.vectorize(sch.get_loops(init)[-1])


# --- schedules ---------------------------------------------------------------------------

def _gemm(shapes):
    _load()
    from tvm import s_tir, te
    (m, kk), (_, n) = shapes["A"], shapes["B"]
    shape = targets.peer_shape(peer="tvm")
    ti, tj, lanes = shape.gemm_rows, shape.gemm_cols, shape.lanes   # 8x48 / 4x24
    npan = (n + tj - 1) // tj
    A = te.placeholder((m, kk), name="A")
    B = te.placeholder((kk, n), name="B")
    packedB = te.compute(
        (npan, kk, tj),
        lambda jo, k, ji: te.if_then_else(jo * tj + ji < n, B[k, jo * tj + ji], _f32(0.0)),
        name="packedB")
    k = te.reduce_axis((0, kk), "k")
    Cp = te.compute((m, npan * tj),
                    lambda i, j: te.sum(A[i, k] * packedB[j // tj, k, j % tj], axis=k), name="Cp")
    C = te.compute((m, n), lambda i, j: Cp[i, j], name="C")
    sch = s_tir.Schedule(te.create_prim_func([A, B, C]))
    i, j = sch.get_loops(sch.get_sblock("C"))
    io, ii = sch.split(i, [None, ti])
    jo, ji = sch.split(j, [None, tj])
    sch.reorder(io, jo, ii, ji)
    sch.parallel(io)
    _vec(sch, ji)
    cp = sch.get_sblock("Cp")
    sch.compute_at(cp, jo)            # the ti x tj accumulator tile lives per (io, jo)
    sch.set_scope(cp, 0, "local")
    ci, cj, ck = sch.get_loops(cp)[-3:]
    cj0, cj1 = sch.split(cj, [None, lanes])
    sch.reorder(ck, ci, cj0, cj1)
    sch.unroll(ci)
    sch.unroll(cj0)
    sch.vectorize(cj1)
    init = sch.decompose_reduction(cp, ck)
    _vec(sch, sch.get_loops(init)[-1])
    pjo, _, pji = sch.get_loops(sch.get_sblock("packedB"))
    sch.parallel(pjo)
    _vec(sch, pji)
    return sch.mod, ["A", "B"]


def _conv2d(shapes):
    _load()
    from tvm import s_tir, te
    n_, c_, h_, w_ = shapes["x"]
    k_, _, r_, s_ = shapes["w"]
    shape = targets.peer_shape(peer="tvm")
    kv, wt = shape.conv_channels, shape.conv_pixels      # 16 x 14 / 8 x 14
    X = te.placeholder((n_, c_, h_, w_), name="x")
    Wt = te.placeholder((k_, c_, r_, s_), name="w")
    Xp = te.compute(
        (n_, c_, h_ + 2, w_ + 2),
        lambda n, c, h, w: te.if_then_else(te.all(h >= 1, h <= h_, w >= 1, w <= w_),
                                           X[n, c, h - 1, w - 1], _f32(0.0)), name="Xp")
    Wp = te.compute((k_ // kv, c_, r_, s_, kv),
                    lambda ko, c, r, s, ki: Wt[ko * kv + ki, c, r, s], name="Wp")
    c = te.reduce_axis((0, c_), "c")
    r = te.reduce_axis((0, r_), "r")
    s = te.reduce_axis((0, s_), "s")
    Oc = te.compute((n_, k_ // kv, h_, w_, kv),
                    lambda n, ko, h, w, ki: te.sum(Xp[n, c, h + r, w + s] * Wp[ko, c, r, s, ki],
                                                   axis=[c, r, s]), name="Oc")
    Out = te.compute((n_, k_, h_, w_), lambda n, k, h, w: Oc[n, k // kv, h, w, k % kv],
                     name="O")
    sch = s_tir.Schedule(te.create_prim_func([X, Wt, Out]))
    n, k, h, w = sch.get_loops(sch.get_sblock("O"))
    ko, ki = sch.split(k, [None, kv])
    wo, wi = sch.split(w, [None, wt])
    sch.reorder(n, ko, h, wo, wi, ki)
    sch.parallel(sch.fuse(ko, h))
    oc = sch.get_sblock("Oc")
    sch.compute_at(oc, wo)            # wt pixels x kv channels of accumulators per tile
    sch.set_scope(oc, 0, "local")
    _, _, _, ow, oki, rc, rr, rs = sch.get_loops(oc)[-8:]
    sch.reorder(rc, rr, rs, ow, oki)
    sch.unroll(ow)
    sch.vectorize(oki)
    init = sch.decompose_reduction(oc, rc)
    sch.vectorize(sch.get_loops(init)[-1])
    xl = sch.get_loops(sch.get_sblock("Xp"))
    sch.parallel(sch.fuse(xl[0], xl[1]))
    wl = sch.get_loops(sch.get_sblock("Wp"))
    sch.parallel(wl[0])
    sch.vectorize(wl[-1])
    return sch.mod, ["x", "w"]


def _fma_relu(shapes):
    _load()
    from tvm import s_tir, te
    sh = shapes["a"]
    a, b, c = (te.placeholder(sh, name=nm) for nm in "abc")
    out = te.compute(sh, lambda i, j: te.max(a[i, j] * b[i, j] + c[i, j], _f32(0.0)), name="out")
    sch = s_tir.Schedule(te.create_prim_func([a, b, c, out]))
    i, j = sch.get_loops(sch.get_sblock("out"))
    sch.parallel(i)
    jo = _vec(sch, j)
    sch.unroll(sch.split(jo, [None, 4])[1])
    return sch.mod, ["a", "b", "c"]


def _softmax(shapes):
    _load()
    from tvm import s_tir, te, topi
    rows, cols = shapes["x"]
    x = te.placeholder((rows, cols), name="x")
    k1 = te.reduce_axis((0, cols), "k1")
    mx = te.compute((rows,), lambda i: te.max(x[i, k1], axis=k1), name="mx")
    sh = te.compute((rows, cols), lambda i, j: x[i, j] - mx[i], name="sh")
    e = topi.fast_exp(sh)     # TVM's vectorizable exp (what its FastMath pass substitutes)
    k2 = te.reduce_axis((0, cols), "k2")
    sm = te.compute((rows,), lambda i: te.sum(e[i, k2], axis=k2), name="sm")
    out = te.compute((rows, cols), lambda i, j: e[i, j] / sm[i], name="out")
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    sch.compute_inline(sch.get_sblock("sh"))
    eb = sch.get_sblock(e.op.name)
    i, j = sch.get_loops(sch.get_sblock("out"))
    sch.parallel(i)
    _vec(sch, j)
    for name in ("sm", "mx"):
        rf, fin = _rfactor_lanes(sch, name)
        sch.compute_at(fin, i)
        sch.compute_at(rf, i)
        _vector_rf(sch, rf)
        if name == "sm":
            sch.compute_at(eb, i)
            sch.set_scope(eb, 0, "local")
            _vec(sch, sch.get_loops(eb)[-1])
    return sch.mod, ["x"]


def _blur(shapes):
    _load()
    from tvm import s_tir, te
    h, w = shapes["x"]
    third = _f32(1.0 / 3.0)
    x = te.placeholder((h, w), name="x")
    bx = te.compute((h, w - 2), lambda i, j: (x[i, j] + x[i, j + 1] + x[i, j + 2]) * third,
                    name="blur_x")
    by = te.compute((h - 2, w - 2),
                    lambda i, j: (bx[i, j] + bx[i + 1, j] + bx[i + 2, j]) * third, name="blur_y")
    sch = s_tir.Schedule(te.create_prim_func([x, by]))
    i, j = sch.get_loops(sch.get_sblock("blur_y"))
    io, ii = sch.split(i, [None, 32])
    jo, ji = sch.split(j, [None, 256])
    sch.reorder(io, jo, ii, ji)
    sch.parallel(io)
    _vec(sch, ji)
    bxb = sch.get_sblock("blur_x")
    sch.compute_at(bxb, jo)
    _vec(sch, sch.get_loops(bxb)[-1])
    return sch.mod, ["x"]


def _transpose(shapes):
    _load()
    from tvm import s_tir, te
    h, w = shapes["x"]
    x = te.placeholder((h, w), name="x")
    out = te.compute((w, h), lambda i, j: x[j, i], name="out")
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    i, j = sch.get_loops(sch.get_sblock("out"))
    t = _lanes()                      # lanes x lanes tiles: 16x16 / 8x8
    io, ii = sch.split(i, [None, t])
    jo, ji = sch.split(j, [None, t])
    sch.reorder(io, jo, ii, ji)
    sch.parallel(io)
    sch.unroll(ii)
    sch.vectorize(ji)
    return sch.mod, ["x"]


def _rowsum(shapes):
    _load()
    from tvm import s_tir, te
    h, w = shapes["x"]
    x = te.placeholder((h, w), name="x")
    k = te.reduce_axis((0, w), "k")
    out = te.compute((h,), lambda i: te.sum(x[i, k], axis=k), name="out")
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    rf, fin = _rfactor_lanes(sch, "out")
    (i,) = sch.get_loops(fin)[:1]
    sch.parallel(i)
    sch.compute_at(rf, i)
    _vector_rf(sch, rf)
    return sch.mod, ["x"]


def _layernorm(shapes):
    _load()
    from tvm import s_tir, te
    rows, cols = shapes["x"]
    x = te.placeholder((rows, cols), name="x")
    k1 = te.reduce_axis((0, cols), "k1")
    k2 = te.reduce_axis((0, cols), "k2")
    s1 = te.compute((rows,), lambda i: te.sum(x[i, k1], axis=k1), name="s1")
    s2 = te.compute((rows,), lambda i: te.sum(x[i, k2] * x[i, k2], axis=k2), name="s2")
    inv_n = _f32(1.0 / cols)

    def norm(i, j):
        mean = s1[i] * inv_n
        var = s2[i] * inv_n - mean * mean
        return (x[i, j] - mean) * te.rsqrt(var + _f32(1e-5))
    out = te.compute((rows, cols), norm, name="out")
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    i, j = sch.get_loops(sch.get_sblock("out"))
    sch.parallel(i)
    _vec(sch, j)
    for name in ("s2", "s1"):
        rf, fin = _rfactor_lanes(sch, name)
        sch.compute_at(fin, i)
        sch.compute_at(rf, i)
        _vector_rf(sch, rf)
    return sch.mod, ["x"]


_BUILDERS = {"W1": _gemm, "W2": _conv2d, "W3": _fma_relu, "W4": _softmax, "W5": _blur,
             "W6": _transpose, "W7": _rowsum, "W8": _layernorm}


def build(workload_id: str, shapes: dict):
    """(compiled main function, input names, compile seconds) — schedule + tvm.compile."""
    tvm = _load()
    t0 = time.perf_counter()
    mod, names = _BUILDERS[workload_id](shapes)
    lib = tvm.compile(mod, target=target())
    fn = lib["main"]
    return fn, names, time.perf_counter() - t0


def prepare(workload_id: str, inputs: dict, out_shape: tuple):
    """(run, result, compile_s): inputs copied once into TVM tensors, output preallocated."""
    tvm = _load()
    fn, names, compile_s = build(workload_id, {k: v.shape for k, v in inputs.items()})
    return (*bound_call(tvm, fn, names, inputs, out_shape), compile_s)


def bound_call(tvm, fn, names: list, inputs: dict, out_shape: tuple):
    """(run, result) of a compiled TVM function: the inputs named `names` copied once
    into TVM tensors, the output preallocated after them."""
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(inputs[nm], dev) for nm in names]
    out = tvm.runtime.empty(out_shape, "float32", dev)
    args.append(out)

    def run():
        fn(*args)
    return run, (lambda: out.numpy())
