"""The machine a kernel is built for: a target string in, what the code generator needs out.

    td.target("c")                        the CPU running this process (-march=native)
    td.target("c -mcpu=x86-64-v3")        any x86-64 with AVX2 and FMA (32-byte vectors)
    td.target("c -mcpu=x86-64-v4")        AVX-512 (64-byte vectors, 32 vector registers)
    td.target("c -mcpu=znver3")           any CPU name gcc's -march= accepts
    td.target("cuda")                     NVIDIA GPUs (options go to td.build)

The instruction set is read from the compiler itself (the macros gcc predefines for
that -march), never assumed: vector width and register count follow from it, and the
-march flag goes into the compile command and so into the cache key. Like TVM's
`llvm -mcpu=...` and Halide's target strings, a target names code that may run on
another machine; `runs_here()` says whether this one can execute it.
"""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
from dataclasses import dataclass

from .errors import TdslValueError

KINDS = ("c", "cuda")
NATIVE = "native"

# the predefined macro of each instruction-set feature tdsl's code generator cares about
_FEATURE_MACROS = {
    "sse2": "__SSE2__", "sse4.1": "__SSE4_1__", "avx": "__AVX__", "avx2": "__AVX2__",
    "fma": "__FMA__", "avx512f": "__AVX512F__", "avx512bw": "__AVX512BW__",
    "avx512vl": "__AVX512VL__", "neon": "__ARM_NEON",
}


@dataclass(frozen=True)
class Target:
    """A compilation target: the backend kind and the CPU the code is for.

    >>> t = td.target("c -mcpu=x86-64-v3")
    >>> t.vector_bytes, t.vector_registers, t.lanes("float32")
    (32, 16, 8)
    """

    kind: str                          # "c" or "cuda"
    mcpu: str                          # a gcc -march value, or "native"
    features: frozenset                # instruction-set features (see _FEATURE_MACROS)

    @property
    def vector_bytes(self) -> int:
        """Bytes in one native vector register (64 with AVX-512, 32 with AVX, else 16)."""
        if "avx512f" in self.features:
            return 64
        if "avx" in self.features:
            return 32
        return 16

    @property
    def vector_registers(self) -> int:
        """Architectural vector registers: 32 zmm with AVX-512 (and NEON), else 16."""
        return 32 if ("avx512f" in self.features or "neon" in self.features) else 16

    @property
    def has_fma(self) -> bool:
        return "fma" in self.features or "avx512f" in self.features or "neon" in self.features

    def lanes(self, dtype: str = "float32") -> int:
        """Elements of `dtype` in one native vector."""
        import numpy as np
        return max(1, self.vector_bytes // np.dtype(dtype).itemsize)

    @property
    def cflags(self) -> list[str]:
        """The compiler flags that select this CPU."""
        return [f"-march={self.mcpu}"]

    def runs_here(self) -> bool:
        """Can this machine execute code built for this target?"""
        if self.kind != "c":
            return False
        return self.features <= _features(NATIVE)

    def __str__(self) -> str:
        return self.kind if self.mcpu == NATIVE else f"{self.kind} -mcpu={self.mcpu}"

    def describe(self) -> str:
        """One line for reports: the target, its ISA and what the code generator uses."""
        isa = ("AVX-512" if "avx512f" in self.features else "AVX2" if "avx2" in self.features
               else "AVX" if "avx" in self.features else "NEON" if "neon" in self.features
               else "SSE2" if "sse2" in self.features else "scalar")
        return (f"{self} ({isa}, {self.vector_bytes}-byte vectors, "
                f"{self.vector_registers} vector registers)")


def target(spec: "str | Target | None" = None) -> Target:
    """The `Target` for a target string (see the module docstring). `None` is the
    default target: the environment variable `TDSL_TARGET` if set, else "c".

    >>> td.target("c -mcpu=x86-64-v4").lanes("float32")
    16
    """
    if isinstance(spec, Target):
        return spec
    return _parse(spec if spec is not None else os.environ.get("TDSL_TARGET") or "c")


@functools.lru_cache(maxsize=64)
def _parse(spec: str) -> Target:
    if not isinstance(spec, str):
        raise TdslValueError(f"a target must be a string such as 'c' or "
                             f"'c -mcpu=x86-64-v3'; got {type(spec).__name__} {spec!r}")
    words = shlex.split(spec)
    if not words or words[0] not in KINDS:
        raise TdslValueError(f"unknown target {spec!r}; a target starts with one of "
                             f"{', '.join(KINDS)}, e.g. 'c' or 'c -mcpu=x86-64-v3'")
    kind, mcpu = words[0], NATIVE
    for word in words[1:]:
        if word.startswith("-mcpu=") and len(word) > len("-mcpu="):
            mcpu = word[len("-mcpu="):]
        else:
            raise TdslValueError(f"target {spec!r}: unknown option {word!r}; the option is "
                                 "-mcpu=<cpu> with a CPU name gcc's -march= accepts, e.g. "
                                 "-mcpu=x86-64-v3 (AVX2) or -mcpu=x86-64-v4 (AVX-512)")
    if kind == "cuda":
        if mcpu != NATIVE:
            raise TdslValueError(f"target {spec!r}: the cuda target takes no -mcpu; pass "
                                 "arch='sm_80' to td.build instead")
        return Target(kind, NATIVE, frozenset())
    return Target(kind, mcpu, _features(mcpu))


@functools.lru_cache(maxsize=64)
def _features(mcpu: str) -> frozenset:
    """The features gcc enables for -march=`mcpu` (asked from gcc's predefined macros)."""
    cc = os.environ.get("TDSL_CC", "gcc")
    command = [cc, f"-march={mcpu}", "-dM", "-E", "-x", "c", os.devnull]
    try:
        out = subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:
        raise TdslValueError(f"the C compiler {cc!r} could not be run to read the features of "
                             f"-march={mcpu} ({exc}); install gcc or set TDSL_CC") from None
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["(no message)"])[0]
        raise TdslValueError(f"the CPU {mcpu!r} is not one {cc} knows (-march={mcpu}: "
                             f"{first}); use a name gcc's -march= accepts, e.g. x86-64-v3, "
                             "x86-64-v4, znver3, skylake-avx512")
    defined = {line.split()[1] for line in out.stdout.splitlines() if line.startswith("#define")}
    return frozenset(name for name, macro in _FEATURE_MACROS.items() if macro in defined)


def host_description() -> str:
    """The host CPU's name, as /proc/cpuinfo gives it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


DEFAULT_LAST_LEVEL_CACHE = 32 << 20     # where the OS does not say (Zen 3/4 CCX: 32 MiB)


def last_level_cache_bytes() -> int:
    """The size of this machine's last-level data cache: the environment variable
    `TDSL_LLC_BYTES` if set, else what Linux's sysfs reports for CPU 0 (the cache CPU 0
    shares, not the whole chip's, which `getconf` may give), `DEFAULT_LAST_LEVEL_CACHE`
    where it cannot be read. The C backend streams an output past the cache when it is
    larger than this (`backends/c/render.streamed_outputs`)."""
    override = os.environ.get("TDSL_LLC_BYTES")
    if override is None:
        return _detected_last_level_cache()
    try:
        value = int(override)
    except ValueError:
        value = -1
    if value <= 0:
        raise TdslValueError(f"TDSL_LLC_BYTES should be a positive number of bytes; got "
                             f"{override!r}")
    return value


@functools.lru_cache(maxsize=1)
def _detected_last_level_cache() -> int:
    best = (0, 0)
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = os.listdir(root)
    except OSError:
        return DEFAULT_LAST_LEVEL_CACHE
    for entry in entries:
        if not entry.startswith("index"):
            continue
        try:
            with open(f"{root}/{entry}/type") as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(f"{root}/{entry}/level") as f:
                level = int(f.read())
            with open(f"{root}/{entry}/size") as f:
                text = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            size = int(text.rstrip("KMG")) * scale
        except (OSError, ValueError):
            continue
        best = max(best, (level, size))
    return best[1] or DEFAULT_LAST_LEVEL_CACHE
