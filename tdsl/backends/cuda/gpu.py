"""The GPU runtime: load nvcc's cubin with pycuda and launch kernels on numpy arrays.

The only module that imports pycuda, and only inside its functions, so `import tdsl`
works where pycuda or the NVIDIA driver is missing. It loads the exact bytes that
`toolchain.nvcc_compile` produced (and CI validated) with `module_from_buffer`, and
launches like the emulator does, so tests can switch between the two:

>>> mod = load_cubin(nvcc_compile(src, arch=device_arch()).binary)      # doctest: +SKIP
>>> GpuFunction(mod, "axpby")(np.int32(n), np.float32(2), x, np.float32(3), y,
...                           grid=((n + 255) // 256,), block=(256,))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tdsl.backends.cuda.emu import launch_dims
from tdsl.errors import TdslError, TdslValueError

NOT_INSTALLED = "pycuda is not installed (install the 'cuda' extra: pip install 'tdsl[cuda]')"
NO_DRIVER = ("pycuda is installed but pycuda.driver failed to load ({error}); the NVIDIA "
             "driver library libcuda.so.1 is missing - no GPU driver on this machine?")
UNUSABLE = "CUDA driver found but unusable: {error}"


class CudaUnavailableError(TdslError):
    """The GPU path was asked for but pycuda, the driver or a device is missing."""


class GpuLaunchError(TdslError):
    """The driver refused a module or a launch (wrong architecture, bad launch, fault)."""


_driver_module: Any = None  # pycuda.driver once a context exists


def _driver():
    """pycuda.driver with a current context; raises CudaUnavailableError with the reason."""
    global _driver_module
    if _driver_module is not None:
        return _driver_module
    try:
        import pycuda
    except ImportError:
        raise CudaUnavailableError(NOT_INSTALLED) from None
    except Exception as e:  # noqa: BLE001 - any failure here means "no GPU path"
        raise CudaUnavailableError(f"pycuda failed to import: {type(e).__name__}: {e}") from None
    try:
        import pycuda.driver as drv
    except ImportError as e:
        if "libcuda" in str(e):
            raise CudaUnavailableError(NO_DRIVER.format(error=e)) from None
        raise CudaUnavailableError(f"pycuda is installed but pycuda.driver failed to load "
                                   f"({e})") from None
    except Exception as e:  # noqa: BLE001
        raise CudaUnavailableError(f"pycuda.driver failed to load: {type(e).__name__}: {e}") \
            from None
    try:
        drv.init()
        if drv.Device.count() == 0:
            raise CudaUnavailableError(UNUSABLE.format(error="no CUDA device is visible"))
        # autoinit makes a context on the first usable device and pops it at exit; other
        # pycuda code in the process (gpuarray, ...) shares it.
        import pycuda.autoinit  # noqa: F401
    except CudaUnavailableError:
        raise
    except Exception as e:  # noqa: BLE001 - pycuda's LogicError etc.
        raise CudaUnavailableError(UNUSABLE.format(error=f"{type(e).__name__}: {e}")) from None
    _driver_module = drv
    return drv


def pycuda_status() -> tuple[bool, str]:
    """(True, a description of the device) if kernels can run on a GPU, else (False, why).

    Never raises; a first successful call creates the CUDA context.
    """
    try:
        drv = _driver()
        dev = drv.Context.get_device()
        return True, f"{dev.name()} ({device_arch()}), driver version {drv.get_driver_version()}"
    except CudaUnavailableError as e:
        return False, str(e)
    except Exception as e:  # noqa: BLE001 - the contract is to never raise
        return False, f"checking pycuda failed: {type(e).__name__}: {e}"


def device_arch() -> str:
    """The current device's architecture for nvcc, e.g. "sm_80"."""
    major, minor = _driver().Context.get_device().compute_capability()
    return f"sm_{major}{minor}"


def load_cubin(binary: bytes):
    """Load a cubin (or PTX text as bytes) into the current context; a pycuda Module."""
    drv = _driver()
    try:
        return drv.module_from_buffer(binary)
    except drv.Error as e:
        raise GpuLaunchError(f"the CUDA driver refused the module: {e}. Was it compiled for "
                             f"this device ({device_arch()})?") from e


class GpuFunction:
    """A kernel of a loaded module, called like EmuFunction.

    numpy arrays are copied to the device before the launch and back after it (read-only
    arrays only in); scalars must be sized numpy scalars.
    """

    def __init__(self, module, name: str):
        drv = _driver()
        self.name = name
        try:
            self._fn = module.get_function(name)
        except drv.Error as e:
            raise TdslValueError(f"no kernel {name!r} in the module ({e}); kernels declared "
                                 "without extern \"C\" have mangled names") from e

    def __call__(self, *args, block: Sequence[int], grid: Sequence[int] = (1, 1, 1),
                 shared: int = 0, time_kernel: bool = False) -> float | None:
        """Launch and wait; with time_kernel=True, return the kernel's run time in seconds."""
        drv = _driver()
        g, b = launch_dims(grid, block)
        converted = [self._convert(i, arg, drv) for i, arg in enumerate(args)]
        try:
            return self._fn(*converted, grid=g, block=b, shared=shared, time_kernel=time_kernel)
        except drv.Error as e:
            raise GpuLaunchError(f"{self.name}<<<{g}, {b}>>> failed: {type(e).__name__}: {e}") \
                from e

    def _convert(self, index: int, arg, drv):
        where = f"argument {index} of {self.name}"
        if isinstance(arg, (bool, int, float, complex)) and not isinstance(arg, np.generic):
            raise TypeError(f"{where} is a Python {type(arg).__name__}: kernel scalars must be "
                            f"sized numpy scalars, as in pycuda (e.g. np.int32({arg!r}))")
        if arg is None:
            return np.uintp(0)  # a null pointer
        if isinstance(arg, np.ndarray):
            if not arg.flags.c_contiguous:
                raise ValueError(f"{where}: the array is not C-contiguous; pass "
                                 "np.ascontiguousarray(...)")
            return drv.InOut(arg) if arg.flags.writeable else drv.In(arg)
        if isinstance(arg, np.bool_):
            return np.uint8(arg)  # pycuda packs np.number only; a C++ bool is one byte
        if isinstance(arg, (np.number, np.void)):
            return arg
        raise TypeError(f"{where}: expected a numpy array or a sized numpy scalar, got "
                        f"{type(arg).__name__}")
