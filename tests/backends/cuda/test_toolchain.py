"""nvcc discovery, compilation, ptxas resource reports and the disk cache; pycuda status.

Uses the real nvcc (tests skip where there is none); nothing here needs a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tdsl.backends.cuda import gpu, toolchain
from tdsl.backends.cuda.gpu import CudaUnavailableError, load_cubin, pycuda_status
from tdsl.backends.cuda.toolchain import find_nvcc, nvcc_compile, nvcc_version, parse_ptxas
from tdsl.errors import CompileError

TRANSPOSE = r"""
extern "C" __global__ void transpose(const float* __restrict__ a, float* __restrict__ b,
                                     int rows, int cols) {
    __shared__ float tile[16][17];  // +1 column: no bank conflicts on the transposed read
    int x = blockIdx.x * 16 + threadIdx.x, y = blockIdx.y * 16 + threadIdx.y;
    if (x < cols && y < rows) tile[threadIdx.y][threadIdx.x] = a[y * cols + x];
    __syncthreads();
    x = blockIdx.y * 16 + threadIdx.x;
    y = blockIdx.x * 16 + threadIdx.y;
    if (x < rows && y < cols) b[y * rows + x] = tile[threadIdx.x][threadIdx.y];
}
"""

SYNTAX_ERROR = r"""
extern "C" __global__ void broken(float* A) {
    A[0] = Az;
}
"""


def needs_nvcc(test):
    skip = pytest.mark.skipif(find_nvcc() is None, reason="nvcc not found (set CUDA_HOME, "
                              "put nvcc on PATH, or pip install nvidia-cuda-nvcc)")
    return pytest.mark.needs_nvcc(skip(test))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path))
    return tmp_path


# --------------------------------------------------------------------------- finding nvcc


def test_cuda_home_comes_first(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvcc"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert find_nvcc() == str(fake)


def test_missing_nvcc_is_a_compile_error_that_says_how_to_get_it(tmp_path, monkeypatch):
    for var in ("CUDA_HOME", "CUDA_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(toolchain, "_site_dirs", list)
    monkeypatch.setattr(toolchain, "DEFAULT_TOOLKITS", ())
    assert find_nvcc() is None
    with pytest.raises(CompileError, match="nvcc not found.*CUDA_HOME.*nvidia-cuda-nvcc"):
        nvcc_compile(TRANSPOSE)


@needs_nvcc
def test_nvcc_version():
    assert "release" in nvcc_version()


# --------------------------------------------------------------------------- compiling


@needs_nvcc
def test_cubin_and_ptxas_resources(cache_dir):
    out = nvcc_compile(TRANSPOSE, arch="sm_80")
    assert out.binary[:4] == b"\x7fELF" and out.ptx is None
    res = out.resources["transpose"]
    assert res["registers"] > 0
    assert res["shared_bytes"] == 16 * 17 * 4
    assert res["barriers"] == 1
    assert res["spill_stores"] == res["spill_loads"] == res["stack_bytes"] == 0
    assert "Used" in out.log


@needs_nvcc
def test_ptx_target_is_assembled_too(cache_dir):
    out = nvcc_compile(TRANSPOSE, arch="sm_80", target="ptx")
    assert ".entry transpose" in out.ptx and ".target sm_80" in out.ptx
    assert out.binary == out.ptx.encode()
    assert out.resources["transpose"]["barriers"] == 1


@needs_nvcc
def test_syntax_error_carries_nvcc_message(cache_dir):
    with pytest.raises(CompileError, match='identifier "Az" is undefined') as info:
        nvcc_compile(SYNTAX_ERROR)
    err = info.value
    assert 'identifier "Az" is undefined' in err.output
    assert "nvcc" in err.command and "-arch=sm_80" in err.command
    assert err.source == SYNTAX_ERROR
    assert not any(p.name == "kernel.cubin" for p in cache_dir.rglob("*"))  # nothing cached


@needs_nvcc
def test_unsupported_arch_is_nvcc_s_message(cache_dir):
    with pytest.raises(CompileError, match="Unsupported gpu architecture 'sm_10'"):
        nvcc_compile(TRANSPOSE, arch="sm_10")


@pytest.mark.parametrize("kwargs", [{"arch": "80"}, {"arch": "compute_80"}, {"target": "fatbin"}])
def test_bad_arch_or_target_is_a_value_error(kwargs):
    with pytest.raises(ValueError):
        nvcc_compile(TRANSPOSE, **kwargs)


@needs_nvcc
def test_second_compile_is_served_from_the_disk_cache(cache_dir, monkeypatch):
    calls = []
    real_run = subprocess.run

    def counting_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    first = nvcc_compile(TRANSPOSE, arch="sm_80")
    assert any("-cubin" in cmd for cmd in calls)
    calls.clear()
    second = nvcc_compile(TRANSPOSE, arch="sm_80")
    assert calls == []
    assert second == first
    # Another option is another key, so nvcc runs again.
    nvcc_compile(TRANSPOSE, arch="sm_80", options=["-lineinfo"])
    assert any("-lineinfo" in cmd for cmd in calls)


def test_parse_ptxas_attributes_lines_to_the_right_kernel():
    log = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z4tmplIfEvPT_' for 'sm_80'
ptxas info    : Function properties for _Z4tmplIfEvPT_
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 8 registers, used 0 barriers, 360 bytes cmem[0]
ptxas info    : Compiling entry function 'tiled' for 'sm_80'
ptxas info    : Function properties for tiled
    256 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 256 bytes cumulative stack size, \
1024 bytes smem, 372 bytes cmem[0]
ptxas info    : Function properties for _Z6helperPfi
    64 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
"""
    assert parse_ptxas(log) == {
        "_Z4tmplIfEvPT_": {"registers": 8, "shared_bytes": 0, "spill_stores": 0,
                           "spill_loads": 0, "stack_bytes": 0, "barriers": 0},
        "tiled": {"registers": 255, "shared_bytes": 1024, "spill_stores": 12,
                  "spill_loads": 8, "stack_bytes": 256, "barriers": 1},
    }


# --------------------------------------------------------------------------- pycuda


def test_pycuda_status_never_raises_and_gives_a_reason():
    ok, reason = pycuda_status()
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    if importlib.util.find_spec("pycuda") is None:
        assert not ok
        assert "pycuda is not installed" in reason and "[cuda]" in reason


@pytest.fixture
def fake_pycuda(tmp_path, monkeypatch):
    """Put a stand-in pycuda package whose driver module is `driver_source` on sys.path."""

    def install(driver_source: str) -> None:
        package = tmp_path / "pycuda"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "driver.py").write_text(driver_source)
        monkeypatch.syspath_prepend(str(tmp_path))

    monkeypatch.setattr(gpu, "_driver_module", None)
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "pycuda"}
    for name in saved:
        del sys.modules[name]
    yield install
    for name in [k for k in sys.modules if k.split(".")[0] == "pycuda"]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_pycuda_status_without_a_driver(fake_pycuda):
    fake_pycuda('raise ImportError("libcuda.so.1: cannot open shared object file: '
                'No such file or directory")\n')
    assert pycuda_status() == (False, (
        "pycuda is installed but pycuda.driver failed to load (libcuda.so.1: cannot open "
        "shared object file: No such file or directory); the NVIDIA driver library "
        "libcuda.so.1 is missing - no GPU driver on this machine?"))


def test_pycuda_status_with_a_stub_driver(fake_pycuda):
    fake_pycuda("class Error(Exception): pass\n"
                "class LogicError(Error): pass\n"
                "def init(): raise LogicError('cuInit failed: CUDA driver is a stub library')\n")
    assert pycuda_status() == (False, ("CUDA driver found but unusable: LogicError: cuInit "
                                      "failed: CUDA driver is a stub library"))
    with pytest.raises(CudaUnavailableError, match="stub library"):
        load_cubin(b"")


def test_load_cubin_without_a_gpu_says_why():
    ok, reason = pycuda_status()
    if ok:
        pytest.skip("a GPU is available here")
    with pytest.raises(CudaUnavailableError) as info:
        load_cubin(b"")
    assert str(info.value) == reason


def test_importing_the_gpu_module_does_not_import_pycuda():
    code = "import sys, tdsl.backends.cuda.gpu; sys.exit('pycuda' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], check=False, env=env).returncode == 0
