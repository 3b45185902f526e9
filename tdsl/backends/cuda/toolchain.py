"""nvcc: find it, compile CUDA source to cubin or PTX, and report what ptxas allocated.

Sits after code generation: takes a `.cu` text and returns the binary plus, per kernel,
the registers, shared memory, spills, stack and barriers that `ptxas -v` reports. No GPU
or driver is needed. Results are cached on disk (namespace "nvcc"), keyed by the source,
the options and `nvcc --version`.

>>> out = nvcc_compile(source, arch="sm_80")                       # doctest: +SKIP
>>> res = out.resources["gemm_tiled"]                               # doctest: +SKIP
>>> res["registers"], res["spill_stores"], res["barriers"]         # doctest: +SKIP
(32, 0, 1)
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tdsl import cache
from tdsl.errors import CompileError

_NAMESPACE = "nvcc"
DEFAULT_TOOLKITS = ("/usr/local/cuda",)  # searched last, where NVIDIA's installers put it
_TIMEOUT_S = 600
NOT_FOUND = ("nvcc not found (set CUDA_HOME or put nvcc on PATH, or pip install nvidia-cuda-nvcc "
             "to get it from PyPI)")


@dataclass(frozen=True)
class CompiledCuda:
    """What nvcc produced.

    `binary` is the cubin, or the PTX text as bytes for target="ptx" (both load with
    cuModuleLoadData). `ptx` is the PTX text for target="ptx", else None. `resources`
    maps each kernel's symbol name (plain for `extern "C"` kernels, mangled otherwise) to
    {registers, shared_bytes, spill_stores, spill_loads, stack_bytes, barriers}.
    `log` is everything nvcc and ptxas printed.
    """

    binary: bytes
    ptx: str | None
    resources: dict[str, dict[str, int]] = field(default_factory=dict)
    log: str = ""


# --------------------------------------------------------------------------- finding nvcc


def find_nvcc() -> str | None:
    """Path of nvcc, or None: $CUDA_HOME/bin, $CUDA_PATH/bin, PATH, the PyPI wheels, then
    /usr/local/cuda/bin.

    The PyPI wheels put nvcc in site-packages/nvidia/cuda_nvcc/bin (CUDA 12) or
    site-packages/nvidia/cu13/bin (CUDA 13).
    """
    candidates = [os.path.join(os.environ[var], "bin", "nvcc")
                  for var in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(var)]
    on_path = shutil.which("nvcc")
    candidates += [on_path] if on_path else []
    for packages in _site_dirs():
        candidates.append(os.path.join(packages, "nvidia", "cuda_nvcc", "bin", "nvcc"))
        candidates += sorted(glob.glob(os.path.join(packages, "nvidia", "cu*", "bin", "nvcc")),
                             reverse=True)
    candidates += [os.path.join(root, "bin", "nvcc") for root in DEFAULT_TOOLKITS]
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _site_dirs() -> list[str]:
    dirs = [p for p in sys.path if p.endswith("-packages")]
    try:
        dirs += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # some embedded interpreters lack these
        pass
    return list(dict.fromkeys(dirs))


def _require_nvcc() -> str:
    nvcc = find_nvcc()
    if nvcc is None:
        raise CompileError(NOT_FOUND)
    return nvcc


def nvcc_version(nvcc: str | None = None) -> str:
    """The text `nvcc --version` prints (it ends with e.g. "release 13.0, V13.0.88")."""
    nvcc = nvcc or _require_nvcc()
    return _version(nvcc, os.stat(nvcc).st_mtime_ns)


@functools.cache
def _version(nvcc: str, _mtime: int) -> str:
    proc = subprocess.run([nvcc, "--version"], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"{nvcc} --version failed", output=proc.stderr,
                           command=f"{nvcc} --version")
    return proc.stdout.strip()


# --------------------------------------------------------------------------- compiling


def nvcc_compile(source: str, *, arch: str = "sm_80",
                 target: Literal["cubin", "ptx"] = "cubin",
                 options: Sequence[str] = ()) -> CompiledCuda:
    """Compile CUDA `source` for `arch` with nvcc; cached on disk.

    `options` are extra nvcc flags (e.g. "-lineinfo", "--use_fast_math"). For
    target="ptx" the PTX is also assembled with ptxas, so resources are reported and
    the PTX is known to be valid for `arch`.
    """
    if target not in ("cubin", "ptx"):
        raise ValueError(f"target={target!r}: use 'cubin' or 'ptx'")
    if not re.fullmatch(r"sm_\d+[af]?", arch):
        raise ValueError(f"arch={arch!r}: use a real architecture like 'sm_80' or 'sm_90a'")
    nvcc = _require_nvcc()
    flags = [f"-arch={arch}", *options]
    key = cache.digest("nvcc_compile", source, target, *flags, nvcc_version(nvcc))
    entry = cache.lookup(key, _NAMESPACE)
    if entry is None:
        entry = cache.store(key, _NAMESPACE,
                            lambda tmp: _compile_into(tmp, nvcc, source, flags, target))
    log = (entry / "log.txt").read_text()
    binary = (entry / ("kernel.ptx" if target == "ptx" else "kernel.cubin")).read_bytes()
    return CompiledCuda(binary=binary, ptx=binary.decode() if target == "ptx" else None,
                        resources=parse_ptxas(log), log=log)


def _compile_into(tmp: Path, nvcc: str, source: str, flags: list[str], target: str) -> list[str]:
    (tmp / "kernel.cu").write_text(source)
    log = ""
    files = ["log.txt", "kernel.cubin"]
    if target == "ptx":
        log += _run([nvcc, "-ptx", *flags, "-o", "kernel.ptx", "kernel.cu"], tmp, source)
        files.append("kernel.ptx")
        # ptxas -v on the PTX gives the resources and proves the PTX assembles.
        log += _run([nvcc, "-cubin", *flags, "-Xptxas", "-v", "-o", "kernel.cubin",
                     "kernel.ptx"], tmp, source)
    else:
        log += _run([nvcc, "-cubin", *flags, "-Xptxas", "-v", "-o", "kernel.cubin",
                     "kernel.cu"], tmp, source)
    (tmp / "log.txt").write_text(log)
    return files


def _run(cmd: list[str], cwd: Path, source: str) -> str:
    command = shlex.join(cmd)
    try:
        proc = subprocess.run(cmd, cwd=cwd, check=False, capture_output=True, text=True,
                              timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise CompileError(f"nvcc did not finish in {_TIMEOUT_S} s", source=source,
                           output=str(e.stderr or ""), command=command) from None
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        errors = [line for line in output.splitlines() if "error" in line or "fatal" in line]
        raise CompileError(
            f"nvcc failed (exit {proc.returncode}):\n  "
            + "\n  ".join(errors[:10] or output.splitlines()[-10:]),
            source=source, output=output, command=command)
    return output


# --------------------------------------------------------------------------- ptxas -v

_ENTRY = re.compile(r"ptxas info\s*: Compiling entry function '([^']+)'")
_PROPS = re.compile(r"ptxas info\s*: Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"ptxas info\s*: Used (\d+) registers(.*)")


def parse_ptxas(log: str) -> dict[str, dict[str, int]]:
    """Per-kernel resources from `ptxas -v` output.

    >>> parse_ptxas('''ptxas info    : Compiling entry function 'k' for 'sm_80'
    ... ptxas info    : Function properties for k
    ...     8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
    ... ptxas info    : Used 40 registers, used 1 barriers, 2048 bytes smem, 380 bytes cmem[0]''')
    {'k': {'registers': 40, 'shared_bytes': 2048, 'spill_stores': 4, 'spill_loads': 4, \
'stack_bytes': 8, 'barriers': 1}}
    """
    frames: dict[str, tuple[int, int, int]] = {}   # any function, kernels and device functions
    used: dict[str, tuple[int, str]] = {}           # entry functions only
    entry = props = None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            entry = m.group(1)
        elif m := _PROPS.search(line):
            props = m.group(1)
        elif (m := _FRAME.search(line)) and props is not None:
            frames[props] = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
            props = None
        elif (m := _USED.search(line)) and entry is not None:
            used[entry] = (int(m.group(1)), m.group(2))
            entry = None
    resources = {}
    for name, (registers, rest) in used.items():
        stack, spill_stores, spill_loads = frames.get(name, (0, 0, 0))
        barriers = re.search(r"used (\d+) barriers", rest)
        smem = re.search(r"(\d+) bytes smem", rest)
        resources[name] = {
            "registers": registers,
            "shared_bytes": int(smem.group(1)) if smem else 0,  # ptxas omits a zero smem
            "spill_stores": spill_stores,
            "spill_loads": spill_loads,
            "stack_bytes": stack,
            "barriers": int(barriers.group(1)) if barriers else 0,
        }
    return resources
