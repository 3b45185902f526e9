"""gcc invocation and the on-disk cache for the C backend (tdsl/runtime loads libraries).

The compiler and flags come from `TDSL_CC` and `TDSL_CFLAGS` (defaults below); the
CPU comes from the target (`-march=` of `td.target(...)`, appended last so that it
wins). The cache key covers the source, the compiler's identity, the flags and the
host CPU, so a shared cache never serves code built for another machine.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shlex
import subprocess
from pathlib import Path

from ... import cache
from ...errors import CompileError

# -fno-predictive-commoning: gcc would carry loaded values across iterations of the loops
# around a register tile (a convolution's rx loop), in the registers the accumulators need.
# -fno-tree-loop-if-convert: gcc 12.2 at -O3 with AVX2 miscompiles a select in a loop nest
# whose innermost loop has a small odd trip count once that loop is unrolled and the loop
# around it if-converted and vectorized (`g[i, j, c] = j == a[i, c] ? h[i, c] : 0` over
# (3, 4, 5) writes 4 wrong elements; tests/backends/c/test_gcc_workarounds.py). tdsl's
# own vector code needs no if-conversion (it emits its selects).
DEFAULT_CFLAGS = ("-O3 -fopenmp -fPIC -shared -std=gnu11 -fwrapv "
                  "-fno-math-errno -fno-trapping-math -fno-predictive-commoning "
                  "-fno-tree-loop-if-convert")


RUNTIME_ABI = "runtime-1"      # libraries carry tdsl_manifest and <name>_call (entry.py)

# The x86 intrinsics header, which the vector prelude includes for native min/max and
# streamed stores (vector.vector_prelude), is 0.25-0.3 s of gcc's time per kernel, most
# of a small kernel's build; gcc reads its precompiled form in ~0.03 s. The header below
# is precompiled once per compiler and flags (intrinsics_header) and force-included
# ahead of the source, whose own #include then finds the header's guard defined: the
# source stays self-contained and unchanged.
INTRINSICS_INCLUDE = "#include <immintrin.h>"
INTRINSICS_HEADER = "#if defined(__x86_64__)\n#include <immintrin.h>\n#endif\n"


def compiler() -> str:
    return os.environ.get("TDSL_CC", "gcc")


def cflags(target=None) -> list[str]:
    """The compile flags: TDSL_CFLAGS (or the defaults), then the target's -march."""
    from ...target import target as parse_target
    return shlex.split(os.environ.get("TDSL_CFLAGS", DEFAULT_CFLAGS)) + \
        parse_target(target).cflags


@functools.lru_cache(maxsize=None)
def _compiler_identity(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CompileError(f"the C compiler {cc!r} could not be run ({exc}); install gcc or set "
                           "TDSL_CC") from None
    return out.stdout


def _cpu_identity() -> str:
    """The host CPU: its name, its features and its last-level cache (the C it gets
    depends on the cache's size, render.streamed_outputs)."""
    from ...target import last_level_cache_bytes
    return f"{_cpu_model()} llc={last_level_cache_bytes()}"


@functools.lru_cache(maxsize=None)
def _cpu_model() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((line for line in info.splitlines() if line.startswith("model name")), "")
        flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
        return model + flags
    except OSError:
        return platform.processor()


def compile_shared(source: str, target=None) -> Path:
    """The path of a shared library built from `source` for `target` (from the cache
    when possible), the runtime object (`runtime_object`) linked in."""
    from .entry import RUNTIME
    cc, flags = compiler(), cflags(target)
    key = cache.digest(source, RUNTIME, _compiler_identity(cc), " ".join(flags),
                       _cpu_identity(), platform.machine())
    entry = cache.lookup(key, "c")
    if entry is None:
        runtime = runtime_object(target)
        entry = cache.store(key, "c", lambda tmp: _gcc(cc, flags, source, tmp, runtime))
    return entry / "kernel.so"


def runtime_object(target=None) -> Path:
    """The object file of the runtime every library links (entry.RUNTIME: checked entry
    points, the fork proxy, the CPU check), compiled once per compiler, flags and CPU."""
    from .entry import RUNTIME
    cc, flags = compiler(), cflags(target)
    key = cache.digest("runtime-object", RUNTIME, _compiler_identity(cc), " ".join(flags),
                       _cpu_identity(), platform.machine())
    entry = cache.lookup(key, "c-runtime")
    if entry is None:
        entry = cache.store(key, "c-runtime", lambda tmp: _compile_object(cc, flags, RUNTIME,
                                                                        tmp))
    return entry / "runtime.o"


def _compile_object(cc: str, flags: list[str], source: str, tmp: Path) -> list[str]:
    (tmp / "runtime.c").write_text(source)
    command = [cc, *[f for f in flags if f != "-shared"], "-c", "runtime.c", "-o", "runtime.o"]
    result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
    if result.returncode != 0:
        raise CompileError(f"{cc} failed to compile tdsl's runtime (exit {result.returncode}):"
                           f"\n{result.stderr.strip()[:4000]}", source=source,
                           output=result.stderr, command=" ".join(command))
    return ["runtime.c", "runtime.o"]


def intrinsics_header(cc: str, flags: list[str]) -> Path | None:
    """The path of INTRINSICS_HEADER beside its precompiled form for `cc` and `flags`
    (cached), or None: not gcc (another compiler's precompiled headers differ), or gcc
    could not precompile it. gcc checks that a .gch matches the compile's options and
    reads the text header when it does not, so a stale one costs time, never results."""
    identity = _compiler_identity(cc)
    if "gcc" not in identity.lower() or "clang" in identity.lower():
        return None
    args = (str(cache.cache_root()), cc, identity, tuple(f for f in flags if f != "-shared"))
    path = _intrinsics_header(*args)
    if path is not None and not path.exists():      # the cache was cleared since
        _intrinsics_header.cache_clear()
        path = _intrinsics_header(*args)
    return path


@functools.cache             # one lookup per process and compiler, flags, cache root
def _intrinsics_header(root: str, cc: str, identity: str, flags: tuple[str, ...]):
    key = cache.digest("intrinsics-header", INTRINSICS_HEADER, identity, " ".join(flags),
                       platform.machine())

    def compile_into(tmp: Path) -> list[str]:
        (tmp / "tdsl_intrinsics.h").write_text(INTRINSICS_HEADER)
        command = [cc, *flags, "-x", "c-header", "tdsl_intrinsics.h",
                   "-o", "tdsl_intrinsics.h.gch"]
        result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise CompileError(f"{cc} could not precompile the intrinsics header:\n"
                               f"{result.stderr[-2000:]}", command=" ".join(command))
        return ["tdsl_intrinsics.h", "tdsl_intrinsics.h.gch"]

    try:
        entry = cache.lookup(key, "c-header") or cache.store(key, "c-header", compile_into)
    except (CompileError, OSError):
        return None
    return entry / "tdsl_intrinsics.h"


def toolchain_identity(target=None) -> str:
    """What a library depends on besides its source: compiler, flags, CPU, machine (the
    graph compiler keys whole networks with it)."""
    cc, flags = compiler(), cflags(target)
    return "\n".join((RUNTIME_ABI, _compiler_identity(cc), " ".join(flags), _cpu_identity(),
                      platform.machine()))


def _index_key(fingerprint: str, target) -> str:
    cc, flags = compiler(), cflags(target)
    return cache.digest("index", RUNTIME_ABI, fingerprint, _compiler_identity(cc),
                        " ".join(flags),
                        _cpu_identity(), platform.machine())


def remember(fingerprint: str, library: Path, name: str, sizes: list[str], target=None) -> None:
    """Record that the schedule with `fingerprint` compiles to `library`."""
    record = json.dumps({"library": str(library), "name": name, "sizes": sizes})

    def write(tmp: Path) -> list[str]:
        (tmp / "index.json").write_text(record)
        return ["index.json"]
    cache.store(_index_key(fingerprint, target), "c-index", write)


def recall(fingerprint: str, target=None):
    """(library path, kernel name, size names) remembered for `fingerprint`, if the
    library is still a valid cache entry; else None."""
    entry = cache.lookup(_index_key(fingerprint, target), "c-index")
    if entry is None:
        return None
    record = json.loads((entry / "index.json").read_text())
    library = Path(record["library"])
    if cache.lookup(library.parent.name, "c") is None:       # evicted or corrupt
        return None
    return library, record["name"], record["sizes"]


def _gcc(cc: str, flags: list[str], source: str, tmp: Path, runtime: Path) -> list[str]:
    (tmp / "kernel.c").write_text(source)
    # -pipe: no temporary files between gcc's passes
    header = intrinsics_header(cc, flags) if INTRINSICS_INCLUDE in source else None
    # immintrin.h from its precompiled form; the source's own #include is then a no-op
    include = ["-include", str(header)] if header is not None else []
    command = [cc, *flags, "-pipe", *include, "kernel.c", str(runtime), "-o", "kernel.so",
               "-lm"]
    result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
    if result.returncode != 0:
        raise CompileError(f"{cc} failed to compile the generated C (exit {result.returncode}):\n"
                           f"{result.stderr.strip()[:4000]}", source=source,
                           output=result.stderr, command=" ".join(command))
    return ["kernel.c", "kernel.so"]

