"""Outputs larger than the last-level cache that a kernel only writes are stored past the
cache (`tdsl_stream_*`, render.streamed_outputs): the results equal NumPy's whatever the
output's alignment (aligned, 16 bytes past, 4 bytes past: the plain-store fallback), for
constant and symbolic sizes, ragged rows, every element type the vector emitter stores,
serial and parallel loops; an output the kernel reads, a small output and a run shorter
than STREAM_RUN_BYTES keep plain stores. The cache size is made small here (`llc` fixture)
so small arrays take the streamed path."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import tdsl as td
from tdsl.backends.c.vector import STREAM_RUN_BYTES

target_module = sys.modules["tdsl.target"]      # (td.target is the function)

TARGETS = {"sse2": "c -mcpu=x86-64", "avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


@pytest.fixture
def llc(monkeypatch):
    """A last-level cache of 1 KiB: outputs above 256 float32 are streamed."""
    monkeypatch.setattr(target_module, "last_level_cache_bytes", lambda: 1024)


def _fma_relu(shape, dtype="float32", parallel=True, lanes=None, tgt="c"):
    """max(a * b + c, 0), rows split into vector loops of `lanes` (default: one streamed
    run, STREAM_RUN_BYTES) vectorized."""
    a, b, c = (td.placeholder(shape, name=n, dtype=dtype) for n in "abc")
    out = td.compute(shape, lambda i, j: td.maximum(a[i, j] * b[i, j] + c[i, j],
                                                td.const(0, dtype)), name="out")
    s = td.create_schedule(out)
    i, j = out.op.axis
    _, ji = s[out].split(j, lanes or STREAM_RUN_BYTES // np.dtype(dtype).itemsize)
    s[out].vectorize(ji)
    if parallel:
        s[out].parallel(i)
    return s, [a, b, c, out]


def _body(mod) -> str:
    return mod.source[mod.source.index("int kernel("):]


def _views(shape, dtype, offset_bytes):
    """A C-contiguous array of `shape` starting `offset_bytes` past a 64-byte boundary."""
    item = np.dtype(dtype).itemsize
    raw = np.empty(int(np.prod(shape)) * item + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset_bytes
    return raw[start:start + int(np.prod(shape)) * item].view(dtype).reshape(shape)


def _inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype.startswith("int"):
        return [rng.integers(-50, 50, shape).astype(dtype) for _ in range(3)]
    return [rng.standard_normal(shape).astype(dtype) for _ in range(3)]


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("shape", [(7, 256), (5, 203)])
def test_streamed_output_equals_numpy_at_every_alignment(llc, monkeypatch, target, shape):
    s, args = _fma_relu(shape, tgt=TARGETS[target])
    mod = td.build(s, args, target=TARGETS[target])
    lanes = td.target(TARGETS[target]).lanes("float32")
    body = _body(mod)
    assert f"tdsl_stream_f32x{lanes}(&out[" in body
    # every thread fences its streamed stores inside the parallel loop, and the kernel
    # once more before it returns
    assert body.count("tdsl_sfence()") == 2
    if not td.target(TARGETS[target]).runs_here():
        pytest.skip(f"{target} code compiled; this CPU cannot run it")
    a, b, c = _inputs(shape, "float32")
    want = np.maximum(a * b + c, 0)
    # the same kernel with plain stores: streaming changes where the values go, not them
    monkeypatch.setattr(target_module, "last_level_cache_bytes", lambda: 1 << 40)
    plain = np.empty(shape, np.float32)
    td.build(*_fma_relu(shape, tgt=TARGETS[target]), target=TARGETS[target])(a, b, c, plain)
    for offset in (0, 16, 32, 4):
        out = _views(shape, "float32", offset)
        out[...] = np.nan
        mod(a, b, c, out)
        np.testing.assert_array_equal(out, plain, err_msg=f"offset {offset}")
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6, err_msg=f"offset {offset}")


@pytest.mark.parametrize("dtype", ["float64", "int32", "int64"])
def test_streamed_output_of_every_vector_type(llc, dtype):
    shape = (3, 160)
    s, args = _fma_relu(shape, dtype, parallel=False)
    mod = td.build(s, args)
    assert "tdsl_stream_" in _body(mod) and _body(mod).count("tdsl_sfence()") == 1
    a, b, c = _inputs(shape, dtype)
    want = np.maximum(a * b + c, 0)
    for offset in (0, 16, 8):
        out = _views(shape, dtype, offset)
        mod(a, b, c, out)
        if dtype.startswith("int"):
            np.testing.assert_array_equal(out, want)
        else:              # (gcc may contract a * b + c into one fma: last-bit differences)
            np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_symbolic_sizes_decide_per_call(llc):
    """With symbolic sizes the decision is a flag computed from the sizes at each call:
    a small call stores normally, a large one streams; both are right."""
    n, m = td.var("n"), td.var("m")
    s, args = _fma_relu((n, m))
    mod = td.build(s, args)
    body = _body(mod)
    assert "const int tdsl_stream_out = " in body and ", tdsl_stream_out)" in body
    for shape in ((2, 40), (9, 300), (4, 1027)):
        a, b, c = _inputs(shape, "float32", seed=shape[1])
        out = _views(shape, "float32", 16)
        mod(a, b, c, out)
        np.testing.assert_allclose(out, np.maximum(a * b + c, 0), rtol=1e-5, atol=1e-6)


def test_outputs_that_stay_in_the_cache_keep_plain_stores(llc, monkeypatch):
    # an output the kernel reads back: a row sum accumulated in place
    A = td.placeholder((64, 512), name="A")
    k = td.reduce_axis(64, name="k")
    C = td.compute((512,), lambda j: td.sum(A[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    _, ji = s[C].split(C.op.axis[0], 32)
    s[C].vectorize(ji)
    mod = td.build(s, [A, C])
    assert "tdsl_stream_" not in mod.source
    a = np.random.default_rng(1).standard_normal((64, 512)).astype("float32")
    out = np.empty(512, "float32")
    mod(a, out)
    np.testing.assert_allclose(out, a.sum(0), rtol=1e-4)
    # a row of one 32-byte vector writes half a cache line at a time
    s, args = _fma_relu((16, 8), lanes=8, tgt="c -mcpu=x86-64-v3")
    assert "tdsl_stream_" not in td.build(s, args, target="c -mcpu=x86-64-v3").source
    # a transposing tile writes one line of each of its 16 rows (vector.STREAM_RUN_BYTES)
    x = td.placeholder((64, 64), name="x")
    t = td.compute((64, 64), lambda i, j: x[j, i], name="t")
    s = td.create_schedule(t)
    _, _, ii, ji = s[t].tile(*t.op.axis, 16, 16)
    s[t].unroll(ii)
    s[t].vectorize(ji)
    assert "tdsl_stream_" not in td.build(s, [x, t], target="c -mcpu=x86-64-v4").source
    # an output smaller than the cache
    monkeypatch.setattr(target_module, "last_level_cache_bytes", lambda: 1 << 30)
    s, args = _fma_relu((7, 256))
    assert "tdsl_stream_" not in td.build(s, args).source
