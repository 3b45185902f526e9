"""The CUDA backend: GPU-mapped loop nests as CUDA kernels, compiled by nvcc, run on a GPU
through pycuda or on the CPU emulator.

    kernels = split_kernels(lowered.kernel)   one kernel per root loop nest (kernels.py)
    insert_barriers(...)                      __syncthreads where threads share (sync.py)
    source  = render(kernels)                 CUDA C through cgen (codegen.py)
    nvcc_compile(source, arch)                cubin, PTX and ptxas resources (toolchain.py)
    emulator or pycuda                        the launches, in order (runtime.py)

>>> mod = td.build(s, [A, B], target="cuda", emulate=True)      # doctest: +SKIP
>>> mod(a, b); mod.resources["kernel_B"]["registers"]            # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import NamedTuple

from ...errors import TdslValueError
from ...ir.passes import drop_prefetches
from ...module import Module
from .codegen import render
from .kernels import GpuKernel, split_kernels
from .sync import insert_barriers

DEFAULT_ARCH = "sm_80"
NO_GPU_HINT = "pass emulate=True to run on the CPU emulator"


class CudaStatus(NamedTuple):
    """What `td.cuda_status()` found: `gpu` (kernels can run on a GPU here), `why` (the
    device, or why there is none) and `nvcc` (its path, or None)."""

    gpu: bool
    why: str
    nvcc: str | None


def status() -> CudaStatus:
    """Whether CUDA kernels can run here, and with which tools; never raises.

    >>> gpu, why, nvcc = td.cuda_status()
    >>> mod = td.build(s, args, target="cuda", emulate=not gpu)     # doctest: +SKIP
    """
    from .gpu import pycuda_status
    from .toolchain import find_nvcc
    gpu, why = pycuda_status()
    nvcc = find_nvcc()
    return CudaStatus(gpu, why, str(nvcc) if nvcc else None)


def generate(kernel) -> tuple[list[GpuKernel], str]:
    """The GPU kernels of a lowered kernel and their CUDA source. Prefetch hints
    (Stage.prefetch) are dropped: a GPU hides memory latency with other warps."""
    kernels = split_kernels(dataclasses.replace(kernel, body=drop_prefetches(kernel.body)))
    readonly = {b.name for b in kernel.params if b.role == "input"}
    for k in kernels:
        k.body = insert_barriers(k.body, {b.name for b in k.private}, readonly)
        k.uses_barrier = _has_sync(k.body)
    return kernels, render(kernels, kernel.sizes)


def build(lowered, emulate: bool = False, arch: str | None = None, **options) -> Module:
    """Generate, compile and load the kernels of `lowered`; see the module docstring.

    emulate=True runs them on the CPU emulator; otherwise on the GPU through pycuda,
    which raises CudaUnavailableError (saying why) where there is none. `arch` is nvcc's
    target ("sm_80" by default, the device's own on a GPU).
    """
    if options:
        raise TdslValueError(f"the cuda target takes the options emulate= and arch=; got "
                             f"{sorted(options)}")
    from .runtime import Plan
    start = time.perf_counter()
    kernels, source = generate(lowered.kernel)
    plan = Plan(lowered.kernel, kernels)
    if emulate:
        return _emulated(lowered, source, plan, arch or DEFAULT_ARCH, start)
    return _on_gpu(lowered, source, plan, arch, start)


def _emulated(lowered, source, plan, arch: str, start: float) -> Module:
    from .emu import EmuModule
    from .runtime import emulator_prepare
    from .toolchain import find_nvcc, nvcc_compile
    ptx = resources = None
    if find_nvcc() is None:
        warnings.warn("nvcc not found: the kernels run on the emulator, but mod.ptx and "
                      "mod.resources are None (pip install nvidia-cuda-nvcc, or set CUDA_HOME)",
                      stacklevel=3)
    else:
        compiled = nvcc_compile(source, arch=arch, target="ptx")
        ptx, resources = compiled.ptx, compiled.resources
        _warn_spills(resources)
    module = EmuModule(source, {k.name: k.uses_barrier for k in plan.kernels})
    extra = {"ptx": ptx, "resources": resources, "arch": arch, "emulated": True, "plan": plan,
             "cubin": None, "library_path": module.library_path}
    return Module(lowered, source, emulator_prepare(plan, module), "cuda",
                  time.perf_counter() - start, extra)


def _on_gpu(lowered, source, plan, arch: str | None, start: float) -> Module:
    from .gpu import CudaUnavailableError, device_arch, pycuda_status
    from .runtime import GpuRunner
    from .toolchain import nvcc_compile
    usable, reason = pycuda_status()
    if not usable:
        raise CudaUnavailableError(f"no usable GPU: {reason}; {NO_GPU_HINT}")
    arch = arch or device_arch()
    cubin = nvcc_compile(source, arch=arch, target="cubin")
    ptx = nvcc_compile(source, arch=arch, target="ptx").ptx
    _warn_spills(cubin.resources)
    runner = GpuRunner(plan, cubin.binary)
    extra = {"ptx": ptx, "resources": cubin.resources, "arch": arch, "emulated": False,
             "plan": plan, "cubin": cubin.binary, "runner": runner}
    return Module(lowered, source, runner.prepare, "cuda", time.perf_counter() - start, extra)


def _warn_spills(resources: dict) -> None:
    for name, r in resources.items():
        if r["spill_stores"] or r["spill_loads"]:
            warnings.warn(f"kernel {name} spills registers ({r['spill_stores']} bytes stored, "
                          f"{r['spill_loads']} loaded): use smaller register tiles", stacklevel=4)


def _has_sync(s) -> bool:
    from ...ir import nodes as ir
    match s:
        case ir.Sync():
            return True
        case ir.Seq(stmts=stmts):
            return any(_has_sync(c) for c in stmts)
        case ir.For(body=body) | ir.Alloc(body=body):
            return _has_sync(body)
        case ir.If(then=then, otherwise=other):
            return _has_sync(then) or (other is not None and _has_sync(other))
    return False
