"""The CPU emulator on hand-written CUDA kernels.

Each kernel is standard CUDA: the same text is run by the emulator (against numpy) and
compiled by nvcc for sm_80, and on a GPU machine also run by pycuda.
"""

from __future__ import annotations

import numpy as np
import pytest

from tdsl.backends.cuda.emu import EmuLaunchError, EmuModule, kernel_names
from tdsl.backends.cuda.gpu import GpuFunction, load_cubin, pycuda_status
from tdsl.backends.cuda.toolchain import find_nvcc, nvcc_compile

AXPBY = r"""
extern "C" __global__ void axpby(int n, float a, const float* __restrict__ x, float b,
                                 float* __restrict__ y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + b * y[i];
}
"""

# C[M, N] = A[M, K] @ B[K, N], 16x16 tiles staged in shared memory, guarded ragged edges.
GEMM_BODY = r"""
    __shared__ float As[16][16];
    __shared__ float Bs[16][16];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += 16) {
        As[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : 0.0f;
        Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : 0.0f;
        __syncthreads();
        for (int k = 0; k < 16; ++k) acc += As[ty][k] * Bs[k][tx];
        SECOND_BARRIER
    }
    if (row < M && col < N) C[row * N + col] = acc;
}
"""
GEMM_SIGNATURE = ("(const float* __restrict__ A, const float* __restrict__ B, "
                  "float* __restrict__ C, int M, int N, int K) {")
GEMM_TILED = ('extern "C" __global__ void gemm_tiled' + GEMM_SIGNATURE
              + GEMM_BODY.replace("SECOND_BARRIER", "__syncthreads();"))
# The same kernel without the barrier that protects the tiles from being overwritten.
GEMM_RACY = ('extern "C" __global__ void gemm_racy' + GEMM_SIGNATURE
             + GEMM_BODY.replace("SECOND_BARRIER", "/* second __syncthreads removed */"))

# Threads past n leave before a barrier the others wait at: undefined behaviour in CUDA.
BAD_BARRIER = r"""
extern "C" __global__ void bad_barrier(const float* x, float* y, int n) {
    __shared__ float buf[64];
    int i = threadIdx.x;
    if (i >= n) return;
    buf[i] = x[i];
    __syncthreads();
    y[i] = buf[(i + 1) % n];
}
"""

# Tree reduction in shared memory (barriers in a loop), then one atomicAdd per block.
BLOCK_SUM = r"""
extern "C" __global__ void block_sum(const float* x, float* total, int n) {
    __shared__ float part[256];
    int t = threadIdx.x, i = blockIdx.x * 256 + t;
    part[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
        if (t < s) part[t] += part[t + s];
        __syncthreads();
    }
    if (t == 0) atomicAdd(total, part[0]);
}
"""

# The header's math overloads and atomics, in the barrier-free loop mode across blocks.
FEATURES = r"""
extern "C" __global__ void features(const float* __restrict__ x, float* __restrict__ out,
                                    int* counter, int* biggest, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    out[4 * i + 0] = expf(v) - __expf(v);
    out[4 * i + 1] = rsqrtf(fabsf(v) + 1.0f);
    out[4 * i + 2] = fminf(fmaxf(v, -0.5f), 0.5f) + (float)min(i, 7) + (float)max(i % 3, 1);
    out[4 * i + 3] = sqrt(fabsf(v)) + max(v, 0.0f);
    atomicAdd(counter, 1);
    atomicMax(biggest, i);
}
"""

SOURCES = {"axpby": AXPBY, "gemm_tiled": GEMM_TILED, "gemm_racy": GEMM_RACY,
           "bad_barrier": BAD_BARRIER, "block_sum": BLOCK_SUM, "features": FEATURES}
BARRIERS = {"axpby": False, "gemm_tiled": True, "gemm_racy": True, "bad_barrier": True,
            "block_sum": True, "features": False}
ALL = "\n".join(SOURCES.values())

_GPU_OK, _GPU_REASON = pycuda_status()


def needs_nvcc(test):
    skip = pytest.mark.skipif(find_nvcc() is None, reason="nvcc not found (set CUDA_HOME, "
                              "put nvcc on PATH, or pip install nvidia-cuda-nvcc)")
    return pytest.mark.needs_nvcc(skip(test))


def needs_gpu(test):
    return pytest.mark.needs_gpu(pytest.mark.skipif(not _GPU_OK, reason=_GPU_REASON)(test))


@pytest.fixture(scope="module")
def emu(private_cache):
    """One module with every test kernel: a single g++ build, in a private cache."""
    return EmuModule(ALL, BARRIERS)


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def run_gemm(fn, M, N, K, rng):
    A, B = _rand(rng, M, K), _rand(rng, K, N)
    C = np.zeros((M, N), np.float32)
    fn(A, B, C, np.int32(M), np.int32(N), np.int32(K),
       grid=((N + 15) // 16, (M + 15) // 16), block=(16, 16))
    return C, A.astype(np.float64) @ B


# --------------------------------------------------------------------------- numerics


def test_axpby_ragged_matches_numpy(emu):
    rng = np.random.default_rng(0)
    n = 100_003
    x, y = _rand(rng, n), _rand(rng, n)
    expected = 2.0 * x + 3.0 * y
    emu.get_function("axpby")(np.int32(n), np.float32(2), x, np.float32(3), y,
                              grid=((n + 255) // 256,), block=(256,))
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("M,N,K", [(100, 37, 70), (64, 48, 32), (1, 1, 1)],
                         ids=["100x37x70", "64x48x32", "1x1x1"])
def test_tiled_gemm_matches_numpy(emu, M, N, K):
    C, expected = run_gemm(emu.get_function("gemm_tiled"), M, N, K, np.random.default_rng(1))
    np.testing.assert_allclose(C, expected, rtol=1e-4, atol=1e-4)


def test_block_sum_uses_barriers_in_a_loop_and_atomics_across_blocks(emu):
    n = 10_000
    x = np.random.default_rng(2).random(n, dtype=np.float32)
    total = np.zeros(1, np.float32)
    emu.get_function("block_sum")(x, total, np.int32(n), grid=((n + 255) // 256,), block=(256,))
    np.testing.assert_allclose(total[0], x.sum(dtype=np.float64), rtol=1e-5)


def test_math_overloads_and_atomics(emu):
    n = 1000
    x = np.random.default_rng(7).uniform(-3, 3, n).astype(np.float32)
    out = np.zeros((n, 4), np.float32)
    counter, biggest = np.zeros(1, np.int32), np.full(1, -1, np.int32)
    emu.get_function("features")(x, out, counter, biggest, np.int32(n),
                                 grid=((n + 127) // 128,), block=(128,))
    i = np.arange(n)
    np.testing.assert_allclose(out[:, 0], 0, atol=1e-5)
    np.testing.assert_allclose(out[:, 1], 1 / np.sqrt(np.abs(x) + 1), rtol=1e-6)
    np.testing.assert_allclose(out[:, 2], np.clip(x, -0.5, 0.5) + np.minimum(i, 7)
                               + np.maximum(i % 3, 1), rtol=1e-6)
    np.testing.assert_allclose(out[:, 3], np.sqrt(np.abs(x)) + np.maximum(x, 0), rtol=1e-6)
    assert (counter[0], biggest[0]) == (n, n - 1)


# --------------------------------------------------------------------------- bugs it catches


def test_missing_barrier_gives_the_same_wrong_result_every_time(emu):
    racy = emu.get_function("gemm_racy")
    results = []
    for _ in range(3):
        C, expected = run_gemm(racy, 100, 37, 70, np.random.default_rng(3))
        assert not np.allclose(C, expected, rtol=1e-4, atol=1e-4)
        results.append(C)
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_divergent_barrier_is_an_error_not_a_hang(emu):
    x, y = np.ones(64, np.float32), np.zeros(64, np.float32)
    with pytest.raises(EmuLaunchError, match="divergent") as info:
        emu.get_function("bad_barrier")(x, y, np.int32(40), block=(64,))
    assert "block (0,0,0): 24 threads exited, 40 wait" in str(info.value)
    # The fibers left waiting are reset: the next launch on this OS thread is correct.
    C, expected = run_gemm(emu.get_function("gemm_tiled"), 100, 37, 70, np.random.default_rng(4))
    np.testing.assert_allclose(C, expected, rtol=1e-4, atol=1e-4)


def test_barrier_in_a_kernel_declared_barrier_free_is_reported(emu):
    wrong = EmuModule(ALL, {**BARRIERS, "gemm_tiled": False})  # same .so, from the cache
    with pytest.raises(EmuLaunchError, match="uses_barrier=0"):
        run_gemm(wrong.get_function("gemm_tiled"), 16, 16, 16, np.random.default_rng(5))


# --------------------------------------------------------------------------- arguments


def test_python_int_argument_is_refused(emu):
    x, y = np.ones(8, np.float32), np.ones(8, np.float32)
    with pytest.raises(TypeError, match=r"Python int.*np\.int32"):
        emu.get_function("axpby")(8, np.float32(2), x, np.float32(3), y, block=(8,))


@pytest.mark.parametrize("args, message", [
    ((np.int64(8), np.float32(2), "x", np.float32(3), "y"), "int64 scalar"),
    ((np.int32(8), np.float32(2), "x64", np.float32(3), "y"), "dtype float64"),
    ((np.int32(8), np.float32(2), "x", np.float32(3)), "takes 5 arguments"),
    ((np.int32(8), np.float32(2), "x", np.float32(3), "y_ro"), "read-only"),
    ((np.int32(8), np.float32(2), "x_strided", np.float32(3), "y"), "C-contiguous"),
], ids=["scalar-size", "array-dtype", "count", "read-only", "strided"])
def test_bad_arguments_are_refused_with_the_reason(emu, args, message):
    arrays = {"x": np.ones(8, np.float32), "y": np.ones(8, np.float32),
              "x64": np.ones(8), "x_strided": np.ones(16, np.float32)[::2]}
    arrays["y_ro"] = np.ones(8, np.float32)
    arrays["y_ro"].flags.writeable = False
    args = [arrays[a] if isinstance(a, str) else a for a in args]
    with pytest.raises((TypeError, ValueError), match=message):
        emu.get_function("axpby")(*args, block=(8,))


@pytest.mark.parametrize("grid, block", [((1,), (1025,)), ((1,), (32, 32, 2)), ((1,), (1, 1, 65)),
                                         ((0,), (32,)), ((1, 65536), (32,))],
                         ids=["1025-threads", "2048-threads", "z-65", "empty-grid", "grid-y"])
def test_launch_limits(emu, grid, block):
    x, y = np.ones(8, np.float32), np.ones(8, np.float32)
    with pytest.raises(ValueError, match="block|grid"):
        emu.get_function("axpby")(np.int32(8), np.float32(2), x, np.float32(3), y,
                                  grid=grid, block=block)


def test_unknown_kernel_name(emu):
    with pytest.raises(ValueError, match="no kernel 'gemm'.*gemm_tiled"):
        emu.get_function("gemm")


def test_the_header_is_precompiled_once_and_used_by_every_build(tmp_path, monkeypatch):
    from tdsl.backends.cuda import emu as emu_module
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path / "a"))
    precompiled = EmuModule(ALL, BARRIERS)
    header = emu_module._header(*emu_module._compiler(), emu_module.FLAGS)
    assert header.parent.parent == tmp_path / "a" / "cuda-emu-header"
    assert header.with_name(header.name + ".gch").stat().st_size > 0
    # the same kernels built from the text header
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path / "b"))
    monkeypatch.setattr(emu_module, "_header", lambda *args: emu_module.HEADER)
    text = EmuModule(ALL, BARRIERS)
    rng = np.random.default_rng(3)
    for module in (precompiled, text):
        got, want = run_gemm(module.get_function("gemm_tiled"), 37, 21, 19, rng)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_header_that_cannot_be_precompiled_falls_back_to_the_text(tmp_path, monkeypatch):
    from tdsl.backends.cuda import emu as emu_module
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path))
    assert emu_module._precompiled_header(str(tmp_path), "false", "v", ("-O2",)) == \
        emu_module.HEADER
    assert not list((tmp_path / "cuda-emu-header").iterdir())     # nothing half-written


def test_kernel_names_are_found_in_the_source():
    assert kernel_names(AXPBY) == {"axpby": False}
    assert kernel_names(ALL) == dict.fromkeys(SOURCES, True)
    assert kernel_names("// __global__ void gone(int n) {}\n" + AXPBY) == {"axpby": False}


# --------------------------------------------------------------------------- same text on nvcc


@needs_nvcc
@pytest.mark.parametrize("name", list(SOURCES))
def test_same_source_compiles_with_nvcc(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path))
    out = nvcc_compile(SOURCES[name], arch="sm_80", target="cubin")
    res = out.resources[name]
    assert res["registers"] > 0
    assert res["spill_stores"] == res["spill_loads"] == 0
    assert res["barriers"] == (1 if BARRIERS[name] else 0)


@needs_gpu
@needs_nvcc
def test_gpu_matches_numpy():
    from tdsl.backends.cuda.gpu import device_arch

    module = load_cubin(nvcc_compile(ALL, arch=device_arch()).binary)
    rng = np.random.default_rng(6)
    C, expected = run_gemm(GpuFunction(module, "gemm_tiled"), 100, 37, 70, rng)
    np.testing.assert_allclose(C, expected, rtol=1e-4, atol=1e-4)
    n = 100_003
    x, y = _rand(rng, n), _rand(rng, n)
    want = 2.0 * x + 3.0 * y
    GpuFunction(module, "axpby")(np.int32(n), np.float32(2), x, np.float32(3), y,
                                 grid=((n + 255) // 256,), block=(256,))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
