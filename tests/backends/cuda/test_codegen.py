"""The CUDA code generator: GPU schedules run on the CPU emulator against NumPy, and every
generated kernel compiles with nvcc for sm_80 without spills.

Shapes are symbolic and the test sizes ragged (n=1000 with tiles of 128, 100x37, ...),
so the guards of partial tiles are exercised. On a machine with a GPU and pycuda, the
same modules also run there (needs_gpu). The schedules are benchmarks/cuda/schedules.py's,
the ones benchmarks/cuda/run_cuda.py times.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tdsl as td
from benchmarks.cuda.schedules import (blur, conv2d, elementwise, register_tiled_matmul, row_sum,
                                       softmax, tiled_matmul)
from tdsl.backends.cuda import bounds
from tdsl.backends.cuda.emu import EmuModule
from tdsl.backends.cuda.gpu import CudaUnavailableError, pycuda_status
from tdsl.backends.cuda.toolchain import find_nvcc

HAS_NVCC = find_nvcc() is not None


def build(s, args):
    """The emulated module; checks nvcc's report of every kernel (no spills, limits)."""
    mod = td.build(s, args, target="cuda", emulate=True)
    if HAS_NVCC:
        assert set(mod.resources) == {k.name for k in mod.plan.kernels}
        for name, r in mod.resources.items():
            assert r["spill_stores"] == 0 and r["spill_loads"] == 0, (name, r)
            assert r["shared_bytes"] <= 48 * 1024 and r["registers"] <= 255
        assert ".entry" in mod.ptx
    return mod


def rand(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).uniform(-1, 1, shape).astype("float32")


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- numerics


def test_elementwise_bind():
    s, args = elementwise()
    mod = build(s, args)
    assert "blockIdx.x" in mod.source and "__syncthreads" not in mod.source
    for n in (1000, 128, 1):
        a = rand(n)
        b = np.zeros_like(a)
        mod(a, b)
        close(b, a * 2 + 1)
    assert [str(x) for x in mod.plan.launches([1000])] == ["kernel_B<<<(8, 1, 1), (128, 1, 1)>>>"]


def test_row_sum_one_block_per_row():
    s, args = row_sum()
    mod = build(s, args)
    assert "__shared__ float S_rf[64]" in mod.source
    for shape in ((100, 37), (7, 1000), (3, 1)):
        a = rand(*shape)
        out = np.zeros(shape[0], "float32")
        mod(a, out)
        close(out, a.sum(axis=1))


MATMUL_SIZES = [(100, 37, 53), (64, 64, 64), (1, 1, 1), (17, 33, 16)]


@pytest.mark.parametrize("unroll", [False, True], ids=["k-loop", "k-unrolled"])
def test_tiled_matmul_shared_and_registers(unroll):
    s, args = tiled_matmul(unroll=unroll)                     # unrolled: as run_cuda.py runs it
    mod = build(s, args)
    src = mod.source
    assert ("#pragma unroll" in src) == unroll
    assert "__shared__ float A_shared[256]" in src and "__shared__ float B_shared[256]" in src
    assert "float C_local[1];" in src                         # one accumulator per thread
    assert src.count("__syncthreads()") == 2                  # tile ready; tile consumed
    assert mod.plan.kernels[0].static_block == (16, 16, 1)
    if HAS_NVCC:
        r = mod.resources["kernel_C"]
        assert r["shared_bytes"] == 2048 and r["barriers"] == 1 and r["stack_bytes"] == 0
    for M, N, K in MATMUL_SIZES:
        a, b = rand(M, K), rand(K, N, seed=1)
        c = np.zeros((M, N), "float32")
        mod(a, b, c)
        close(c, a @ b)


def test_register_tiled_matmul():
    s, args = register_tiled_matmul()
    mod = build(s, args)
    assert "float C_local[16];" in mod.source                 # 4x4 per thread
    assert mod.plan.kernels[0].static_block == (16, 16, 1)
    if HAS_NVCC:
        r = mod.resources["kernel_C"]
        assert r["shared_bytes"] == 8192 and r["stack_bytes"] == 0   # C_local in registers
    for M, N, K in [(100, 37, 53), (128, 64, 32), (1, 1, 1)]:
        a, b = rand(M, K), rand(K, N, seed=1)
        c = np.zeros((M, N), "float32")
        mod(a, b, c)
        close(c, a @ b)


def _run_source(mod, source, arrays):
    """Run an edited copy of `mod.source` on the emulator with `mod`'s launch sizes."""
    plan = mod.plan
    emu = EmuModule(source, {k.name: "__syncthreads" in source for k in plan.kernels})
    sizes = [a.shape[d] for a, d in ((arrays[0], 0), (arrays[0], 1), (arrays[1], 1))]
    for launch in plan.launches(sizes):
        k = launch.kernel
        fn = emu.get_function(k.name)
        fn(*arrays, *(np.int64(v) for v in sizes), grid=launch.grid, block=launch.block)


@pytest.mark.parametrize("which", [0, 1], ids=["tile-ready", "tile-consumed"])
def test_matmul_without_an_inserted_barrier_is_wrong(which):
    """Each barrier the generator inserts is needed: without it, the emulator (which runs
    the threads of a block in order up to the next barrier) gets a wrong result, always."""
    s, args = tiled_matmul()
    mod = build(s, args)
    sync = [m.start() for m in re.finditer(r"__syncthreads\(\);", mod.source)]
    assert len(sync) == 2
    broken = mod.source[:sync[which]] + "/* removed */" + \
        mod.source[sync[which] + len("__syncthreads();"):]
    M, N, K = 40, 40, 40
    a, b = rand(M, K), rand(K, N, seed=1)
    c = np.zeros((M, N), "float32")
    _run_source(mod, mod.source, [a, b, c])                     # the edit is what breaks it
    close(c, a @ b)
    for _ in range(2):
        c = np.zeros((M, N), "float32")
        _run_source(mod, broken, [a, b, c])
        assert np.abs(c - a @ b).max() > 1e-2


@pytest.mark.parametrize("shared", [False, True], ids=["padded-inline", "padded-in-shared"])
def test_conv2d(shared):
    s, args = conv2d(shared)
    mod = build(s, args)
    assert ("__shared__ float P_shared[540]" in mod.source) == shared
    for n, h, w in ((2, 13, 21), (1, 8, 16)):
        x, wt = rand(n, 3, h, w), rand(4, 3, 3, 3, seed=1)
        y = np.zeros((n, 4, h, w), "float32")
        mod(x, wt, y)
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        want = sum(np.einsum("nchw,fc->nfhw", padded[:, :, dy:dy + h, dx:dx + w],
                             wt[:, :, dy, dx]) for dy in range(3) for dx in range(3))
        close(y, want)


@pytest.mark.parametrize("size", [(34, 66), (100, 37), (3, 3)],
                         ids=["34x66", "100x37", "3x3"])
@pytest.mark.parametrize("explicit", [True, False], ids=["cache_read-shared", "default-scope"])
def test_blur_first_stage_in_shared_memory(explicit, size):
    s, args = blur(explicit)
    mod = build(s, args)
    name = "BX_shared" if explicit else "BX"
    assert f"__shared__ float {name}[576]" in mod.source       # 18 x 32 tile with halo
    assert mod.source.count("__syncthreads()") == 1
    h, w = size
    img = rand(h, w)
    out = np.zeros((h - 2, w - 2), "float32")
    mod(img, out)
    bx = (img[:, :-2] + img[:, 1:-1] + img[:, 2:]) / 3
    close(out, (bx[:-2] + bx[1:-1] + bx[2:]) / 3)


def test_softmax_one_block_per_row():
    s, args = softmax()
    mod = build(s, args)
    assert len(mod.plan.kernels) == 1
    for shape in ((100, 37), (7, 1000), (3, 1)):
        a = rand(*shape) * 5
        out = np.zeros(shape, "float32")
        mod(a, out)
        e = np.exp(a - a.max(axis=1, keepdims=True))
        close(out, e / e.sum(axis=1, keepdims=True))


def test_region_with_fewer_thread_dims_stores_from_one_thread():
    """A stage bound to threadIdx.x only, in a 16x16 block: only threadIdx.y == 0 stores."""
    n = td.var("n")
    A = td.placeholder((n, n), name="A")
    k = td.reduce_axis((0, n), name="k")
    R = td.compute((n,), lambda i: td.sum(A[i, k], axis=k), name="R")
    C = td.compute((n, n), lambda i, j: A[i, j] - R[i], name="C")
    s = td.create_schedule(C)
    io, jo, ii, ji = s[C].tile(*C.op.axis, 16, 16)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                      (ji, "threadIdx.x")):
        s[C].bind(axis, tag)
    s[R].compute_at(s[C], jo)
    s[R].bind(R.op.axis[0], "threadIdx.x")
    mod = build(s, [A, C])
    assert "if (threadIdx.y == 0)" in mod.source
    a = rand(37, 37)
    c = np.zeros_like(a)
    mod(a, c)
    close(c, a - a.sum(axis=1, keepdims=True))


def test_launch_size_follows_symbolic_extents():
    """Threads bound to a loop over a symbolic size: the block is sized at each call."""
    n, m = td.var("n"), td.var("m")
    A = td.placeholder((n, m), name="A")
    B = td.compute((n, m), lambda i, j: A[i, j] + 1, name="B")
    s = td.create_schedule(B)
    s[B].bind(B.op.axis[0], "blockIdx.x")
    s[B].bind(B.op.axis[1], "threadIdx.x")
    mod = build(s, [A, B])
    assert mod.plan.kernels[0].static_block is None
    a = rand(5, 300)
    b = np.zeros_like(a)
    mod(a, b)
    close(b, a + 1)
    assert mod.plan.launches([5, 300])[0].block == (300, 1, 1)
    big = rand(2, 2000)
    with pytest.raises(td.ScheduleError, match=r"needs blockDim.x = 2000 at these sizes; CUDA "
                                               r"allows at most 1024"):
        mod(big, np.zeros_like(big))


def test_integer_and_double_arithmetic():
    """The C prelude's helpers on the device: floor division and modulo like NumPy, min and
    max, in int32 and float64."""
    n = td.var("n")
    A = td.placeholder((n,), dtype="int32", name="A")
    X = td.placeholder((n,), dtype="float64", name="X")
    B = td.compute((n,), lambda i: td.maximum(A[i] // 3, A[i] % 5 - 2) * 2, name="B")
    Y = td.compute((n,), lambda i: td.minimum(X[i] * 3, td.sqrt(td.abs(X[i]))), name="Y")
    s = td.create_schedule([B, Y])
    for out in (B, Y):
        bx, tx = s[out].split(out.op.axis[0], factor=64)
        s[out].bind(bx, "blockIdx.x")
        s[out].bind(tx, "threadIdx.x")
    mod = build(s, [A, X, B, Y])
    assert [k.name for k in mod.plan.kernels] == ["kernel_B", "kernel_Y"]
    a = np.arange(-50, 50, dtype="int32")
    x = np.linspace(-2, 2, 100)
    b, y = np.zeros_like(a), np.zeros_like(x)
    mod(a, x, b, y)
    np.testing.assert_array_equal(b, np.maximum(a // 3, a % 5 - 2) * 2)
    np.testing.assert_allclose(y, np.minimum(x * 3, np.sqrt(np.abs(x))), rtol=1e-12)


def test_emulator_without_nvcc_warns(monkeypatch):
    from tdsl.backends.cuda import toolchain
    monkeypatch.setattr(toolchain, "find_nvcc", lambda: None)
    s, args = elementwise()
    with pytest.warns(UserWarning, match="nvcc not found"):
        mod = td.build(s, args, target="cuda", emulate=True)
    assert mod.ptx is None and mod.resources is None
    a = rand(300)
    b = np.zeros_like(a)
    mod(a, b)
    close(b, a * 2 + 1)


def test_bounds_see_through_min_of_tiles():
    M, io = td.var("M"), td.var("io")
    extent = td.minimum(M, io * 16 + 16) - io * 16
    env = {id(M): (1, bounds.INF), id(io): (0, bounds.INF)}
    assert bounds.upper_bound(extent, env) == 16
    assert bounds.interval((M - 1) // 16 + 1, {id(M): (100, 100)}) == (7, 7)


# --------------------------------------------------------------------------- refusals


def test_reduction_axis_bound_to_threads_is_a_race():
    n = td.var("n")
    A = td.placeholder((n, n), name="A")
    k = td.reduce_axis((0, n), name="k")
    S = td.compute((n,), lambda i: td.sum(A[i, k], axis=k), name="S")
    s = td.create_schedule(S)
    s[S].bind(S.op.axis[0], "blockIdx.x")
    with pytest.raises(td.ScheduleError, match=r"(?s)s\[S\]\.bind\(k, 'threadIdx.x'\) is "
                                               r"illegal.*cannot be bound to threadIdx.x.*both "
                                               r"update S\[0\].*rfactor S over k"):
        s[S].bind(k, "threadIdx.x")


def test_more_than_1024_threads_per_block():
    n = td.var("n")
    A = td.placeholder((n, n), name="A")
    B = td.compute((n, n), lambda i, j: A[i, j] * 2, name="B")
    s = td.create_schedule(B)
    io, jo, ii, ji = s[B].tile(*B.op.axis, 32, 64)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                      (ji, "threadIdx.x")):
        s[B].bind(axis, tag)
    with pytest.raises(td.ScheduleError, match=r"kernel kernel_B \(stage B\) needs 64 x 32 x 1 "
                                               r"= 2048 threads per block; CUDA allows at most "
                                               r"1024"):
        td.build(s, [A, B], target="cuda", emulate=True)


def test_too_much_shared_memory():
    s, args = tiled_matmul(tile=64)       # two 64x64 float tiles = 32 KiB: fine
    s2, args2 = tiled_matmul(tile=96)     # two 96x96 tiles = 72 KiB: refused
    del s, args
    with pytest.raises(td.ScheduleError, match=r"needs 73728 bytes of shared memory per block "
                                               r"\(A_shared 36864 B, B_shared 36864 B\); CUDA "
                                               r"allows 49152 bytes \(48 KiB\)"):
        td.build(s2, args2, target="cuda", emulate=True)


def test_shared_alloc_inside_thread_loops():
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    B = td.compute((n,), lambda i: A[i] * 2, name="B")
    s = td.create_schedule(B)
    AS = s.cache_read(A, "shared", [B])
    bx, tx = s[B].split(B.op.axis[0], factor=128)
    s[B].bind(bx, "blockIdx.x")
    s[B].bind(tx, "threadIdx.x")
    s[AS].compute_at(s[B], tx)
    with pytest.raises(td.ScheduleError, match=r"A_shared is allocated in shared memory inside "
                                               r"the threadIdx loop i_inner.*compute A_shared at "
                                               r"a loop outside the threadIdx loops"):
        td.build(s, [A, B], target="cuda", emulate=True)


def test_unbound_loop_nest():
    s, args = elementwise()
    s2 = td.create_schedule(args[1])
    del s
    with pytest.raises(td.ScheduleError, match=r"bind a loop of B to blockIdx/threadIdx"):
        td.build(s2, args, target="cuda", emulate=True)


def test_local_buffer_shared_between_threads_is_refused():
    """A 'local' stage computed at the block loop but read at other threads' elements."""
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    P = td.compute((n,), lambda i: A[i] * 2, name="P")
    B = td.compute((n - 1,), lambda i: P[i] + P[i + 1], name="B")
    s = td.create_schedule(B)
    PL = s.cache_write(P, "local")
    s[P].compute_inline()
    bx, tx = s[B].split(B.op.axis[0], factor=64)
    s[B].bind(bx, "blockIdx.x")
    s[B].bind(tx, "threadIdx.x")
    s[PL].compute_at(s[B], bx)
    s[PL].bind(PL.op.axis[0], "threadIdx.x")
    with pytest.raises(td.ScheduleError, match=r"P_local .* its elements are not each used by "
                                               r"one thread"):
        td.build(s, [A, B], target="cuda", emulate=True)


def test_threads_that_would_wait_inside_a_thread_loop_are_refused():
    """Hand-made IR: inside one threadIdx.x loop, one threadIdx.y loop fills X and a second
    reads a neighbour's element; no barrier can go between them."""
    from tdsl.backends.cuda.sync import insert_barriers
    from tdsl.ir import nodes as ir
    from tdsl.lang.expr import Const, Var
    X = ir.Buffer("X", "float32", (Const(9, "int64"),), scope="shared",
                  strides=(Const(1, "int64"),))
    Y = ir.Buffer("Y", "float32", (Const(8, "int64"),), role="output",
                  strides=(Const(1, "int64"),))
    tx, ty, ty2 = Var("tx"), Var("ty"), Var("ty2")
    zero, eight = Const(0, "int64"), Const(8, "int64")
    fill = ir.For(ty, zero, eight, ir.Store(X, (ty,), Const(1.0, "float32")), "threadIdx.y")
    use = ir.For(ty2, zero, eight, ir.Store(Y, (ty2,), ir.BufferLoad(X, (ty2 + 1,))),
                 "threadIdx.y")
    body = ir.For(tx, zero, Const(1, "int64"), ir.seq(fill, use), "threadIdx.x")
    with pytest.raises(td.ScheduleError, match=r"X is written inside the threadIdx loops "
                                               r"starting at tx and used by other threads"):
        insert_barriers(body, private=set(), readonly=set())
    same = ir.For(ty2, zero, eight, ir.Store(Y, (ty2,), ir.BufferLoad(X, (ty2,))), "threadIdx.y")
    insert_barriers(ir.For(tx, zero, Const(1, "int64"), ir.seq(fill, same), "threadIdx.x"),
                    private=set(), readonly=set())      # each thread reads its own element


def test_without_gpu_the_error_says_why_and_what_to_do():
    usable, reason = pycuda_status()
    if usable:
        pytest.skip("a GPU is usable here")
    s, args = elementwise()
    with pytest.raises(CudaUnavailableError, match=r"pass emulate=True to run on the CPU "
                                                   r"emulator") as info:
        td.build(s, args, target="cuda")
    assert reason in str(info.value)


@pytest.mark.needs_gpu
def test_on_the_gpu():
    if not pycuda_status()[0]:
        pytest.skip(pycuda_status()[1])
    s, args = tiled_matmul()
    mod = td.build(s, args, target="cuda")
    assert mod.cubin and mod.ptx and not mod.emulated
    for M, N, K in MATMUL_SIZES:
        a, b = rand(M, K), rand(K, N, seed=1)
        c = np.zeros((M, N), "float32")
        mod(a, b, c)
        close(c, a @ b)
