"""Run CUDA C kernels on the CPU: the emulator's build and launch side.

Takes the same `.cu` text that nvcc compiles, builds it with g++ and the force-included
header `emu/cuda_emu.h` into a cached shared library, and launches its kernels through
ctypes with a pycuda-like call. numpy arrays stand in for device buffers:

>>> mod = EmuModule(source)                                    # doctest: +SKIP
>>> axpby = mod.get_function("axpby")                           # doctest: +SKIP
>>> axpby(np.int32(n), np.float32(2), x, np.float32(3), y,      # doctest: +SKIP
...       grid=((n + 255) // 256,), block=(256,))

See cuda_emu.h for the execution model (fibers for kernels with barriers, a plain loop
for kernels without).
"""

from __future__ import annotations

import ctypes
import functools
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdsl import cache
from tdsl.errors import CompileError, TdslError, TdslValueError

HEADER = Path(__file__).parent / "emu" / "cuda_emu.h"
FLAGS = ("-std=c++20", "-O2", "-fopenmp", "-fPIC", "-shared", "-Wno-unknown-pragmas")
_NAMESPACE = "cuda-emu"
_PCH_NAMESPACE = "cuda-emu-header"
_ERRLEN = 512


class EmuLaunchError(TdslError):
    """A kernel failed inside the emulator (divergent barrier, C++ exception, bad launch).

    `kernel` is the kernel's name and `code` the emulator's status code.
    """

    def __init__(self, message: str, *, kernel: str = "", code: int = 0):
        super().__init__(message)
        self.kernel = kernel
        self.code = code


# --------------------------------------------------------------------------- launch limits

# Limits of every CUDA device since compute capability 3.0.
MAX_BLOCK = (1024, 1024, 64)
MAX_BLOCK_THREADS = 1024
MAX_GRID = (2**31 - 1, 65535, 65535)


def launch_dims(grid: Sequence[int], block: Sequence[int]) -> tuple[tuple, tuple]:
    """Validate a launch configuration and pad both to 3 dimensions.

    >>> launch_dims((4,), (16, 16))
    ((4, 1, 1), (16, 16, 1))
    """
    g = _dims(grid, "grid")
    b = _dims(block, "block")
    for axis, n, limit in zip("xyz", b, MAX_BLOCK):
        if n > limit:
            raise ValueError(f"block={b}: block.{axis} = {n} exceeds the CUDA limit {limit}")
    if b[0] * b[1] * b[2] > MAX_BLOCK_THREADS:
        raise ValueError(f"block={b} has {b[0] * b[1] * b[2]} threads; CUDA allows at most "
                         f"{MAX_BLOCK_THREADS} threads per block")
    for axis, n, limit in zip("xyz", g, MAX_GRID):
        if n > limit:
            raise ValueError(f"grid={g}: grid.{axis} = {n} exceeds the CUDA limit {limit}")
    return g, b


def _dims(value: Sequence[int], what: str) -> tuple[int, int, int]:
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
        raise TypeError(f"{what} must be a tuple of 1 to 3 ints, like (16, 16, 1); "
                        f"got {value!r}")
    dims = []
    for n in value:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"{what}={value!r}: each size must be an int")
        if n < 1:
            raise ValueError(f"{what}={value!r}: each size must be at least 1")
        dims.append(int(n))
    return tuple(dims + [1] * (3 - len(dims)))


# --------------------------------------------------------------------------- build


def kernel_names(source: str) -> dict[str, bool]:
    """The `__global__` kernels of `source`, each mapped to whether the source has a barrier.

    A barrier anywhere marks every kernel: `__syncthreads` may sit in a `__device__`
    helper, and the fiber mode is correct for any kernel, only slower.
    """
    code = _strip_comments(source)
    names = re.findall(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+"
                       r"(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(", code)
    barrier = "__syncthreads" in code
    return {name: barrier for name in dict.fromkeys(names)}


def _strip_comments(source: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", " ", source, flags=re.DOTALL)


@functools.cache
def _compiler() -> tuple[str, str]:
    """(path, version text) of g++; the version is part of the cache key."""
    cxx = shutil.which("g++")
    if cxx is None:
        raise CompileError("g++ not found: the CUDA emulator builds kernels with g++ "
                           "(apt-get install g++)")
    out = subprocess.run([cxx, "--version"], check=False, capture_output=True, text=True)
    return cxx, out.stdout


def build(source: str, kernels: Sequence[str], options: Sequence[str] = ()) -> Path:
    """Compile `source` plus one CUDA_EMU_EXPORT line per kernel into a cached .so; its path."""
    cxx, version = _compiler()
    full = source.rstrip() + "\n\n// Emulator entry points, appended by tdsl.backends.cuda.emu\n"
    full += "".join(f"CUDA_EMU_EXPORT({name})\n" for name in kernels)
    flags = [*FLAGS, *options]
    key = cache.digest("cuda-emu", HEADER.read_text(), full, *flags, version)

    def compile_into(tmp: Path) -> list[str]:
        (tmp / "kernel.cu").write_text(full)
        # Debug info and sanitizer reports name the published entry, not this temp dir.
        final = cache.cache_root() / _NAMESPACE / key
        cmd = [cxx, *flags, f"-ffile-prefix-map={tmp}={final}", "-include",
               str(_header(cxx, version, tuple(flags))),
               "-x", "c++", "kernel.cu", "-o", "kernel.so"]
        proc = subprocess.run(cmd, cwd=tmp, check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if "error" in line]
            raise CompileError(
                "g++ could not build the CUDA source for the emulator:\n  "
                + "\n  ".join(errors[:10] or proc.stderr.splitlines()[-10:]),
                source=full, output=proc.stderr, command=shlex.join(cmd))
        return ["kernel.so"]

    entry = cache.lookup(key, _NAMESPACE) or cache.store(key, _NAMESPACE, compile_into)
    return entry / "kernel.so"


def _header(cxx: str, version: str, flags: tuple[str, ...]) -> Path:
    path = _precompiled_header(str(cache.cache_root()), cxx, version, flags)
    if not path.exists():                   # the cache was cleared since: build it again
        _precompiled_header.cache_clear()
        path = _precompiled_header(str(cache.cache_root()), cxx, version, flags)
    return path


@functools.cache            # one lookup per process: the check of a 50 MB .gch takes 0.1 s
def _precompiled_header(root: str, cxx: str, version: str, flags: tuple[str, ...]) -> Path:
    """The header to force-include: a cached copy of cuda_emu.h beside its precompiled
    form for these flags (g++ then reads the .gch, not the header and the C++ library
    it includes: about 1.1 s less per kernel build, 1.5 s -> 0.35 s for an empty kernel
    on a Zen 3). g++ checks that a .gch matches the compile's options and reads the
    text header when it does not; where the header cannot be precompiled, the
    package's own header is used."""
    key = cache.digest("cuda-emu-header", HEADER.read_text(), *flags, version)

    def compile_into(tmp: Path) -> list[str]:
        shutil.copyfile(HEADER, tmp / HEADER.name)
        cmd = [cxx, *(f for f in flags if f != "-shared"), "-x", "c++-header", HEADER.name,
               "-o", HEADER.name + ".gch"]
        proc = subprocess.run(cmd, cwd=tmp, check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"g++ could not precompile the emulator's header:\n"
                               f"{proc.stderr[-2000:]}", command=shlex.join(cmd))
        return [HEADER.name, HEADER.name + ".gch"]

    try:
        entry = cache.lookup(key, _PCH_NAMESPACE) or cache.store(key, _PCH_NAMESPACE,
                                                                 compile_into)
    except (CompileError, OSError):
        return HEADER
    return entry / HEADER.name


# --------------------------------------------------------------------------- launch


@dataclass(frozen=True, slots=True)
class Param:
    """One kernel parameter, decoded from the emulator's signature string ("Pf4", "i4")."""

    pointer: bool
    const: bool      # pointer to const: the kernel cannot write through it
    kind: str        # b(ool) f(loat) i(nt) u(nsigned) o(ther) v(oid)
    size: int        # bytes of the value, or of the element for a pointer

    @staticmethod
    def parse(code: str) -> Param:
        pointer = code[0] in "PC"
        body = code[1:] if pointer else code
        return Param(pointer, code[0] == "C", body[0], int(body[1:]))

    def __str__(self) -> str:
        names = {"b": "bool", "f": "float", "i": "int", "u": "uint", "o": "struct",
                 "v": "void"}
        base = names[self.kind] + ("" if self.kind in "bv" else str(8 * self.size))
        return f"{'const ' if self.const else ''}{base}*" if self.pointer else base

    def numpy_scalar(self) -> str:
        """The numpy type a scalar argument needs, e.g. "np.int32"."""
        return {"b": "np.bool_", "o": "np.void"}.get(self.kind, f"np.{self}")


def _matches(kind: str, size: int, dtype: np.dtype) -> bool:
    if kind in "ov":
        return kind == "v" or dtype.itemsize == size
    ints = "iu" if kind in "iu" else kind
    return dtype.kind in ints and dtype.itemsize == size


class EmuFunction:
    """One kernel of an EmuModule, called like a pycuda Function."""

    def __init__(self, name: str, lib: ctypes.CDLL, uses_barrier: bool):
        self.name = name
        self.uses_barrier = uses_barrier
        self._launch = getattr(lib, f"{name}__emu_launch")
        self._launch.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                                 ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                 ctypes.c_char_p, ctypes.c_int]
        self._launch.restype = ctypes.c_int
        sig = getattr(lib, f"{name}__emu_signature")
        sig.restype = ctypes.c_char_p
        text = sig().decode()
        self.params = tuple(Param.parse(c) for c in text.split(",")) if text else ()

    def __call__(self, *args, block: Sequence[int], grid: Sequence[int] = (1, 1, 1),
                 shared: int = 0) -> None:
        """Launch on `grid` x `block`; arrays are read and written in place."""
        if shared:
            raise ValueError(f"{self.name}: shared={shared}: the emulator has no dynamic "
                             "shared memory; declare __shared__ arrays with static sizes")
        g, b = launch_dims(grid, block)
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments "
                            f"({', '.join(map(str, self.params))}), got {len(args)}")
        keep = [self._convert(i, p, a) for i, (p, a) in enumerate(zip(self.params, args))]
        params = (ctypes.c_void_p * max(len(keep), 1))(*[_address(k) for k in keep])
        err = ctypes.create_string_buffer(_ERRLEN)
        code = self._launch((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), params,
                            int(self.uses_barrier), err, _ERRLEN)
        if code != 0:
            raise EmuLaunchError(f"{self.name}<<<{g}, {b}>>>: {err.value.decode()}",
                                 kernel=self.name, code=code)

    def _convert(self, index: int, param: Param, arg):
        where = f"argument {index} of {self.name} ({param})"
        if param.pointer:
            if arg is None:
                return ctypes.c_void_p(None)
            if not isinstance(arg, np.ndarray):
                raise TypeError(f"{where} needs a numpy array (device buffer), "
                                f"got {type(arg).__name__}")
            if not arg.flags.c_contiguous:
                raise ValueError(f"{where}: the array is not C-contiguous; pass "
                                 "np.ascontiguousarray(...)")
            if not param.const and not arg.flags.writeable:
                raise ValueError(f"{where}: the kernel may write through this pointer but "
                                 "the array is read-only")
            if not _matches(param.kind, param.size, arg.dtype):
                raise TypeError(f"{where} got an array of dtype {arg.dtype}")
            return ctypes.c_void_p(arg.ctypes.data)
        if isinstance(arg, np.generic):  # first: np.float64 is also a Python float
            pass
        elif isinstance(arg, (bool, int, float, complex)):
            raise TypeError(f"{where} is a Python {type(arg).__name__}: kernel scalars must be "
                            f"sized numpy scalars, as in pycuda: pass "
                            f"{param.numpy_scalar()}({arg!r})")
        else:
            raise TypeError(f"{where} needs a sized numpy scalar ({param.numpy_scalar()}), "
                            f"got {type(arg).__name__}")
        if not _matches(param.kind, param.size, arg.dtype):
            raise TypeError(f"{where} got a numpy {arg.dtype} scalar; pass "
                            f"{param.numpy_scalar()}(...)")
        return np.array(arg)  # 0-d array: a stable buffer holding the value


def _address(holder) -> int:
    if isinstance(holder, np.ndarray):
        return holder.ctypes.data
    return ctypes.addressof(holder)


class EmuModule:
    """A `.cu` source built for the CPU emulator; the counterpart of pycuda's SourceModule.

    `kernels` maps each kernel name to whether it calls `__syncthreads` (True runs it on
    fibers, False as a plain loop over threads). None finds the `__global__` kernels in
    the source and uses fibers if the source mentions `__syncthreads`. `options` are
    extra g++ flags, e.g. ("-fsanitize=address", "-g").

    >>> EmuModule(src, {"gemm_tiled": True}).get_function("gemm_tiled")   # doctest: +SKIP
    """

    def __init__(self, source: str, kernels: dict[str, bool] | None = None, *,
                 options: Sequence[str] = ()):
        self.kernels = dict(kernel_names(source) if kernels is None else kernels)
        if not self.kernels:
            raise TdslValueError("no __global__ kernel found in the source; pass "
                                 "kernels={name: uses_barrier} explicitly")
        for name in self.kernels:
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise TdslValueError(f"kernel name {name!r} is not a C identifier")
        self.source = source
        self.library_path = build(source, sorted(self.kernels), options)
        self._lib = ctypes.CDLL(str(self.library_path))

    def get_function(self, name: str) -> EmuFunction:
        """The kernel `name` as a callable `fn(*args, grid=..., block=...)`."""
        if name not in self.kernels:
            raise TdslValueError(f"no kernel {name!r} in this module; it has: "
                                 f"{', '.join(sorted(self.kernels))}")
        return EmuFunction(name, self._lib, self.kernels[name])
