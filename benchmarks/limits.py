"""Machine limit rows: FMA peak (GFLOP/s) and STREAM triad (GB/s), timed like workloads.

Two small C kernels, compiled once per target by `gcc -O3 -march=<target's cpu> -fopenmp`
into a shared library and called through ctypes. Each limit is an implementation with the
same `(run, result, compile_s)` contract, so the harness times it inside every workload's
round-robin rotation and percentages divide by the limit measured in that same rotation.

- fma: every OpenMP thread runs independent chains of FMAs on the target's native
  vectors (GCC vector extensions: 32 bytes for AVX2, 64 for AVX-512), 12 chains with 16
  vector registers and 24 with 32, enough to cover the FMA latency; the count is
  threads * iters * chains * lanes * 2 flops.
- triad: a[i] = b[i] + s * c[i] over arrays far larger than L3 (64 MiB each by default),
  counted as STREAM does: 3 arrays * 4 bytes per element (write-allocate not counted).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The probes of td.machine (one C source for the tutorials' peak and this limit row):
# CHAINS independent FMA chains of one vector (VBYTES bytes) per thread, and the triad.
from tdsl.machine import PROBE_SOURCE as C_SOURCE  # noqa: E402


CFLAGS = ["-O3", "-fopenmp", "-shared", "-fPIC", "-ffp-contract=fast"]


def build_dir() -> Path:
    d = Path(os.environ.get("BENCH_BUILD_DIR", Path(tempfile.gettempdir()) / "tdsl-bench-build"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def compile_c(source: str, name: str, flags: tuple = ("-march=native",)) -> tuple[ctypes.CDLL,
                                                                                 float]:
    """gcc `source` with CFLAGS and `flags` into a shared library (cached by content hash);
    (library, seconds)."""
    flags = [*CFLAGS, *flags]
    key = hashlib.sha256((source + " ".join(flags)).encode()).hexdigest()[:16]
    so = build_dir() / f"{name}-{key}.so"
    t0 = time.perf_counter()
    if not so.exists():
        src = so.with_suffix(".c")
        src.write_text(source)
        tmp = so.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(["gcc", *flags, str(src), "-o", str(tmp)], check=True,
                       capture_output=True, text=True)
        tmp.replace(so)
    lib = ctypes.CDLL(str(so))
    return lib, time.perf_counter() - t0


_libs: dict = {}


def _load(target=None):
    """The limits library for `target` (a tdsl target string; the default target if None)."""
    import tdsl as td
    t = td.target(target)
    if str(t) not in _libs:
        chains = 24 if t.vector_registers >= 32 else 12
        lib, _ = compile_c(C_SOURCE, "limits", (*t.cflags, f"-DVBYTES={t.vector_bytes}",
                                                f"-DCHAINS={chains}"))
        lib.chains = chains
        lib.flags = " ".join(t.cflags)
        lib.probe_lanes.restype = ctypes.c_int
        lib.probe_threads.restype = ctypes.c_int
        lib.probe_fma.restype = ctypes.c_float
        lib.probe_fma.argtypes = [ctypes.c_long]
        fp = ctypes.POINTER(ctypes.c_float)
        lib.probe_triad_init.argtypes = [fp, fp, fp, ctypes.c_long]
        lib.probe_triad.argtypes = [fp, fp, fp, ctypes.c_float, ctypes.c_long]
        _libs[str(t)] = lib
    return _libs[str(t)]


@dataclass
class Limit:
    kind: str          # "fma" or "triad"
    unit: str          # "GFLOP/s" or "GB/s"
    amount: float      # flops or bytes per call
    run: object
    description: str

    def perf(self, seconds: float) -> float:
        return self.amount / seconds / 1e9


def fma_limit(iters: int = 2_000_000, target=None) -> Limit:
    lib = _load(target)
    threads, lanes = lib.probe_threads(), lib.probe_lanes()

    def run():
        lib.probe_fma(iters)
    return Limit("fma", "GFLOP/s", 2.0 * lib.chains * lanes * threads * iters, run,
                 f"FMA peak: {threads} threads x {lib.chains} chains of {lanes}-lane FMAs "
                 f"(gcc {lib.flags})")


_triad_arrays = {}


def triad_limit(n: int = 16 * 1024 * 1024, target=None) -> Limit:
    """STREAM triad over three arrays of `n` float32 (64 MiB each by default)."""
    lib = _load(target)
    if n not in _triad_arrays:
        arrs = [np.empty(n, np.float32) for _ in range(3)]
        ptrs = [a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for a in arrs]
        lib.probe_triad_init(*ptrs, n)      # first touch by the threads that will use the pages
        _triad_arrays[n] = (arrs, ptrs)
    _, (pa, pb, pc) = _triad_arrays[n]
    s = ctypes.c_float(3.0)

    def run():
        lib.probe_triad(pa, pb, pc, s, n)
    return Limit("triad", "GB/s", 3.0 * 4 * n, run,
                 f"STREAM triad, 3 x {n * 4 >> 20} MiB float32 arrays (gcc {lib.flags})")


def make(kind: str, quick: bool = False, target=None) -> Limit:
    return fma_limit(target=target) if kind == "fma" else triad_limit(target=target)


def gcc_version() -> str:
    try:
        out = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0]
    except Exception as e:   # gcc missing: the limit rows cannot be built
        return f"unavailable ({e})"
