"""Host side of a CUDA module: launch sizes at call time, temporaries, and the launches,
on the CPU emulator (numpy arrays) or on a GPU through pycuda (device allocations).

Both take the arrays Module has already checked, in argument order, and the bound sizes
in `kernel.sizes` order, and return the kernel's error code (0, or 2 for an index
computed from data that was out of bounds), like the C backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import nodes as ir
from ...lang.reference import evaluate_scalar
from .kernels import GpuKernel


@dataclass
class Launch:
    kernel: GpuKernel
    grid: tuple[int, int, int]
    block: tuple[int, int, int]

    def __str__(self) -> str:
        return f"{self.kernel.name}<<<{self.grid}, {self.block}>>>"


class Plan:
    """The kernels of a module, in order, with what they take."""

    def __init__(self, lowered_kernel: ir.Kernel, kernels: list[GpuKernel]):
        self.params = lowered_kernel.params
        self.temps = lowered_kernel.temps
        self.size_vars = lowered_kernel.sizes
        self.kernels = kernels
        self._memo: dict[tuple[int, ...], list[Launch]] = {}

    def launches(self, sizes) -> list[Launch]:
        """The launches for sizes given in `size_vars` order (kernels with an empty grid
        are left out)."""
        key = tuple(int(v) for v in sizes)
        if key not in self._memo:
            env = {id(v): n for v, n in zip(self.size_vars, key)}
            found = []
            for k in self.kernels:
                grid, block = k.launch(env)
                if all(grid):
                    found.append(Launch(k, grid, block))
            self._memo[key] = found
        return self._memo[key]

    def temp_elements(self, b: ir.Buffer, sizes) -> int:
        values = dict(zip(self.size_vars, (int(v) for v in sizes)))
        return int(evaluate_scalar(b.elements, values))


def emulator_prepare(plan: Plan, module):
    """Module's `prepare` for the CPU emulator: numpy arrays are the device buffers."""
    functions = {k.name: module.get_function(k.name) for k in plan.kernels}

    def prepare(arrays, sizes):
        launches = plan.launches(sizes)
        by_id = {id(b): a for b, a in zip(plan.params, arrays)}

        def run(keep=arrays) -> int:
            buffers = dict(by_id)
            for t in plan.temps:
                buffers[id(t)] = np.empty(plan.temp_elements(t, sizes), dtype=t.dtype)
            err = np.zeros(1, dtype=np.int32)
            scalars = [np.int64(v) for v in sizes]
            for launch in launches:
                k = launch.kernel
                args = [buffers[id(b)] for b in k.buffers] + scalars + ([err] if k.checked else [])
                functions[k.name](*args, grid=launch.grid, block=launch.block)
            return int(err[0])

        return run

    return prepare


class GpuRunner:
    """Runs a module's kernels on the GPU: device copies of the arrays, the launches in
    order, the outputs copied back. `device_call` runs on arrays already on the device
    (for benchmarks)."""

    def __init__(self, plan: Plan, cubin: bytes):
        from .gpu import GpuFunction, _driver, load_cubin
        self.drv = _driver()
        self.plan = plan
        self.module = load_cubin(cubin)
        self.functions = {k.name: GpuFunction(self.module, k.name) for k in plan.kernels}

    def prepare(self, arrays, sizes):
        def run(keep=arrays) -> int:
            drv = self.drv
            device = []
            for b, a in zip(self.plan.params, arrays):
                mem = drv.mem_alloc(max(a.nbytes, 1))
                if b.role == "input":
                    drv.memcpy_htod(mem, a)
                device.append(mem)
            try:
                err = self.device_call([int(m) for m in device], sizes)
                drv.Context.synchronize()
                for b, a, mem in zip(self.plan.params, arrays, device):
                    if b.role != "input":
                        drv.memcpy_dtoh(a, mem)
            finally:
                for mem in device:
                    mem.free()
            return err
        return run

    def device_call(self, pointers: list[int], sizes, time_kernels: bool = False):
        """Launch every kernel on device pointers (one per argument, in order); returns the
        error code, or with time_kernels=True the summed kernel time in seconds."""
        drv = self.drv
        by_id = {id(b): np.uintp(p) for b, p in zip(self.plan.params, pointers)}
        temps = []
        for t in self.plan.temps:
            mem = drv.mem_alloc(max(self.plan.temp_elements(t, sizes) * np.dtype(t.dtype).itemsize,
                                    1))
            temps.append(mem)
            by_id[id(t)] = np.uintp(int(mem))
        err = drv.mem_alloc(4)
        drv.memset_d32(err, 0, 1)
        scalars = [np.int64(v) for v in sizes]
        total = 0.0
        try:
            for launch in self.plan.launches(sizes):
                k = launch.kernel
                args = [by_id[id(b)] for b in k.buffers] + scalars + \
                    ([np.uintp(int(err))] if k.checked else [])
                took = self.functions[k.name](*args, grid=launch.grid, block=launch.block,
                                              time_kernel=time_kernels)
                total += took or 0.0
            code = np.zeros(1, dtype=np.int32)
            drv.memcpy_dtoh(code, err)
        finally:
            for mem in temps:
                mem.free()
            err.free()
        return total if time_kernels else int(code[0])
