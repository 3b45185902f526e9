"""`s[X].reorder_storage(...)`: a stage's buffer laid out with its dimensions permuted
(the loops unchanged). Checked against NumPy at dividing, ragged and symbolic sizes, for
root buffers, private tiles (compute_at) and with storage_align on top; the layout shows
in the strides and in the generated C (a tile of weights read as vectors along the
output channels, the conv2d schedule of benchmarks/schedules/w2_conv2d.py written on the
plain algorithm); an output, a partial permutation, a reduction axis and an inlined
stage are refused with what to do instead; the CUDA backend keeps the order in shared
memory."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl.errors import ScheduleError
from tdsl.lang.reference import evaluate_scalar


def _matmul(n, m, l):
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    T = td.compute((l, m), lambda a, b: B[a, b] * 2.0, name="T")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * T[k, j], axis=k), name="C")
    return A, B, T, C


@pytest.mark.parametrize("sizes", [{"n": 16, "m": 24, "l": 8}, {"n": 37, "m": 45, "l": 29},
                                   {"n": 1, "m": 1, "l": 1}], ids=str)
@pytest.mark.parametrize("symbolic", [False, True], ids=["constant", "symbolic"])
def test_transposed_intermediate_and_tile(sizes, symbolic):
    dims = {k: td.var(k) for k in sizes} if symbolic else dict(sizes)
    A, B, T, C = _matmul(dims["n"], dims["m"], dims["l"])
    s = td.create_schedule(C)
    a, b = T.op.axis
    s[T].reorder_storage(b, a)                    # T stored column-major
    CL = s.cache_write(C, "local")
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, 4, 8)
    s[CL].compute_at(s[C], jo)
    s[CL].reorder_storage(CL.op.axis[1], CL.op.axis[0])
    assert "s[T].reorder_storage(b, a)" in s.script()
    lowered = td.lower(s, [A, B, C])
    (t_buf,) = [t for t in lowered.kernel.temps if t.name == "T"]
    values = {dims[k]: v for k, v in sizes.items()} if symbolic else {}
    assert evaluate_scalar(t_buf.strides[0], values) == 1
    assert evaluate_scalar(t_buf.strides[1], values) == sizes["l"]
    mod = td.build(s, [A, B, C])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((sizes["n"], sizes["l"])).astype("float32")
    y = rng.standard_normal((sizes["l"], sizes["m"])).astype("float32")
    out = np.empty((sizes["n"], sizes["m"]), "float32")
    mod(x, y, out)
    np.testing.assert_allclose(out, x @ (2 * y), rtol=1e-4, atol=1e-4)


def _conv(c, k, h, w, kb, strip, lanes, target):
    x = td.placeholder((1, c, h, w), name="x")
    wts = td.placeholder((k, c, 3, 3), name="w")
    pad = td.compute((1, c, h + 2, w + 2), lambda n, ci, y, xx: td.select(
        td.all(y >= 1, y <= h, xx >= 1, xx <= w), x[n, ci, y - 1, xx - 1], 0.0), name="pad")
    rc, ry, rx = (td.reduce_axis(c, name="rc"), td.reduce_axis(3, name="ry"),
                  td.reduce_axis(3, name="rx"))
    out = td.compute((1, k, h, w), lambda n, f, y, xx: td.sum(
        pad[n, rc, y + ry, xx + rx] * wts[f, rc, ry, rx], axis=[rc, ry, rx]), name="out")
    s = td.create_schedule(out)
    OL = s.cache_write(out, "local")
    WL = s.cache_read(wts, "local", [OL])
    n, f, y, xx = out.op.axis
    fo, fi = s[out].split(f, factor=kb)
    xo, xi = s[out].split(xx, factor=strip)
    s[out].reorder(n, fo, y, xo, fi, xi)
    s[out].parallel(s[out].fuse(fo, y))
    s[OL].compute_at(s[out], xo)
    on, of, oy, ox = OL.op.axis
    s[OL].reorder_storage(on, oy, ox, of)         # the tile's channels contiguous
    s[OL].reorder(on, oy, *OL.op.reduce_axis, ox, of)
    s[OL].unroll(ox)
    ofo, ofi = s[OL].split(of, factor=lanes)
    s[OL].unroll(ofo)
    s[OL].vectorize(ofi)
    wf, wc, wr, ws = WL.op.axis
    s[WL].reorder_storage(wc, wr, ws, wf)          # weights with the channels innermost
    s[WL].storage_align(ws, 64, 16)                # taps 80 floats apart: all L1 sets
    s[WL].reorder(wc, wr, ws, wf)
    s[pad].vectorize(pad.op.axis[3])
    return s, [x, wts, out]


@pytest.mark.parametrize("target", ["c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4"])
@pytest.mark.parametrize("shape", [(8, 32, 10, 12), (5, 48, 7, 9)], ids=str)
def test_conv2d_with_channels_innermost_weights(target, shape):
    c, k, h, w = shape
    lanes = td.target(target).lanes()
    s, args = _conv(c, k, h, w, 2 * lanes if k % (2 * lanes) == 0 else lanes, 6, lanes,
                    target)
    mod = td.build(s, args, target=target)
    assert f"*(tdsl_f{32}x{lanes}_u*)&w_local[" in mod.source     # weights as vectors
    if not td.target(target).runs_here():
        pytest.skip(f"{target} compiled; this CPU cannot run it")
    rng = np.random.default_rng(1)
    xa = rng.standard_normal((1, c, h, w)).astype("float32")
    wa = rng.standard_normal((k, c, 3, 3)).astype("float32")
    got = np.empty((1, k, h, w), "float32")
    mod(xa, wa, got)
    padded = np.pad(xa[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    want = np.zeros((k, h, w))
    for ry in range(3):
        for rx in range(3):
            want += np.einsum("fc,cyx->fyx", wa[:, :, ry, rx],
                              padded[:, ry:ry + h, rx:rx + w])
    np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-4)


def test_refusals_say_what_to_do():
    A, B, T, C = _matmul(8, 8, 8)
    s = td.create_schedule(C)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match=r"C is an output; its layout is the caller's "
                                            r"array .*s.cache_write\(C, 'local'\)"):
        s[C].reorder_storage(j, i)
    a, b = T.op.axis
    with pytest.raises(ScheduleError, match=r"name every data axis of T once \(a, b\); got 1"):
        s[T].reorder_storage(b)
    CL = s.cache_write(C, "local")
    with pytest.raises(ScheduleError, match=r"k is not a data axis of C_local; its data "
                                            r"axes are i_c, j_c"):
        s[CL].reorder_storage(CL.op.reduce_axis[0], CL.op.axis[0])
    s[T].compute_inline()
    with pytest.raises(ScheduleError, match="T is inlined .* no storage"):
        s[T].reorder_storage(b, a)
    # an intermediate passed as an argument is an output of the kernel too
    s2 = td.create_schedule(C)
    s2[T].reorder_storage(b, a)
    with pytest.raises(ScheduleError, match=r"T is an argument of the kernel"):
        td.build(s2, [A, B, T, C])


@pytest.mark.needs_nvcc
def test_cuda_shared_tile_keeps_the_order():
    """A shared-memory tile of B stored transposed: the emulated kernel is still right."""
    n = 40
    A, B = td.placeholder((n, n), name="A"), td.placeholder((n, n), name="B")
    k = td.reduce_axis(n, name="k")
    C = td.compute((n, n), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    CC = s.cache_write(C, "local")
    BS = s.cache_read(B, "shared", [CC])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 8, 8)
    s[C].bind(io, "blockIdx.y")
    s[C].bind(jo, "blockIdx.x")
    s[C].bind(ii, "threadIdx.y")
    s[C].bind(ji, "threadIdx.x")
    s[CC].compute_at(s[C], jo)
    ko, ki = s[CC].split(CC.op.reduce_axis[0], factor=8)
    s[CC].reorder(ko, *CC.op.axis, ki)
    s[CC].bind(CC.op.axis[0], "threadIdx.y")
    s[CC].bind(CC.op.axis[1], "threadIdx.x")
    s[BS].compute_at(s[CC], ko)
    s[BS].reorder_storage(BS.op.axis[1], BS.op.axis[0])
    s[BS].bind(BS.op.axis[0], "threadIdx.y")
    s[BS].bind(BS.op.axis[1], "threadIdx.x")
    mod = td.build(s, [A, B, C], target="cuda", emulate=True)
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal((n, n)).astype("float32") for _ in range(2))
    c = np.empty((n, n), "float32")
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
