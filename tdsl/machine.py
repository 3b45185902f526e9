"""What the machine can do at best, measured by probes that are not tdsl kernels.

    td.machine.describe()          "AMD EPYC 7763, 2 cores, c (AVX2, 32-byte vectors, ...)"
    td.machine.fma_peak()          GFLOP/s of independent vector FMAs on every core
    td.machine.bandwidth()         GB/s of a STREAM triad on arrays far larger than L3
    td.machine.measure()           both, with the CPU they were measured on

A ceiling measured with a tdsl kernel can be beaten by a better tdsl kernel (a chart
then says "800 % of peak"); these probes are written in C for the target's native
vector width, so nothing a schedule does can exceed them:

- the FMA probe runs, on every OpenMP thread, independent chains of fused multiply-adds
  on the target's vectors (GCC vector extensions: 8 floats with AVX2, 16 with AVX-512),
  12 chains with 16 vector registers and 24 with 32, enough to hide the FMA latency;
  it counts threads x iterations x chains x lanes x 2 flops;
- the triad is `a[i] = b[i] + s * c[i]` over three arrays of 64 MiB, counted as STREAM
  does (3 x 4 bytes per element).

The same probes are benchmarks/limits.py's FMA and triad rows. Both are compiled
through tdsl's C build (same gcc, same cache) for `td.target()`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time

import numpy as np

PROBE_SOURCE = r"""
#include <omp.h>
#include <stddef.h>

typedef float vfloat __attribute__((vector_size(VBYTES)));
#define LANES (VBYTES / 4)

int probe_threads(void) { return omp_get_max_threads(); }
int probe_lanes(void) { return LANES; }
int probe_chains(void) { return CHAINS; }

/* CHAINS independent chains of vector FMAs per thread; the result depends on every
   chain, so nothing is optimized away. */
float probe_fma(long iters) {
    float total = 0.0f;
    #pragma omp parallel reduction(+:total)
    {
        vfloat acc[CHAINS];
        const vfloat mul = (vfloat){} + 0.999999f, add = (vfloat){} + 1e-7f;
        #pragma GCC unroll 32
        for (int j = 0; j < CHAINS; j++) acc[j] = (vfloat){} + (float)(j + omp_get_thread_num());
        for (long i = 0; i < iters; i++) {
            #pragma GCC unroll 32
            for (int j = 0; j < CHAINS; j++) acc[j] = acc[j] * mul + add;
        }
        vfloat s = acc[0];
        #pragma GCC unroll 32
        for (int j = 1; j < CHAINS; j++) s += acc[j];
        for (int l = 0; l < LANES; l++) total += s[l];
    }
    return total;
}

void probe_triad_init(float *a, float *b, float *c, long n) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) { a[i] = 0.0f; b[i] = 1.0f; c[i] = 2.0f; }
}

void probe_triad(float *restrict a, const float *restrict b, const float *restrict c,
                 float s, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
"""


@functools.lru_cache(maxsize=8)
def _library(target: str):
    from .backends.c.build import compile_shared
    from .target import target as parse_target
    t = parse_target(target or None)
    if not t.runs_here():
        from .errors import TdslValueError
        raise TdslValueError(f"cannot measure {t}: this machine cannot run its code "
                             f"(it is {parse_target('c').describe()})")
    chains = 24 if t.vector_registers >= 32 else 12
    source = f"#define VBYTES {t.vector_bytes}\n#define CHAINS {chains}\n" + PROBE_SOURCE
    lib = ctypes.CDLL(str(compile_shared(source, t)))
    for name in ("probe_threads", "probe_lanes", "probe_chains"):
        getattr(lib, name).restype = ctypes.c_int
    lib.probe_fma.restype = ctypes.c_float
    lib.probe_fma.argtypes = [ctypes.c_long]
    fp = ctypes.POINTER(ctypes.c_float)
    lib.probe_triad_init.argtypes = [fp, fp, fp, ctypes.c_long]
    lib.probe_triad.argtypes = [fp, fp, fp, ctypes.c_float, ctypes.c_long]
    return lib


def fma_peak(target=None, repeat: int = 8, max_iters: int = 1 << 20) -> float:
    """The attainable GFLOP/s of float32 vector FMAs on all OpenMP threads: the best rate
    of `repeat` runs at each of a few lengths up to `max_iters` iterations (about 5 ms
    on a core with two 8-lane FMA units). The best of many short runs, because on a
    shared machine a run that waits for a core measures the other program, not the CPU;
    a kernel timed while the machine is busy stays below this peak."""
    lib = _library(str(target) if target is not None else "")
    flops_per_iter = 2.0 * lib.probe_chains() * lib.probe_lanes() * lib.probe_threads()
    lib.probe_fma(1024)                                   # start the OpenMP threads
    best, iters = 0.0, 1 << 13
    while iters <= max_iters:
        for _ in range(repeat):
            start = time.perf_counter()
            lib.probe_fma(iters)
            best = max(best, flops_per_iter * iters / (time.perf_counter() - start) / 1e9)
        iters *= 4
    return best


def bandwidth(target=None, n: int = 16 * 1024 * 1024, repeat: int = 5) -> float:
    """The memory bandwidth in GB/s: the median of `repeat` STREAM triads over three
    arrays of `n` float32 (64 MiB each by default)."""
    lib = _library(str(target) if target is not None else "")
    arrays = [np.empty(n, np.float32) for _ in range(3)]
    ptrs = [a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for a in arrays]
    lib.probe_triad_init(*ptrs, n)            # first touch by the threads that use the pages
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        lib.probe_triad(*ptrs, ctypes.c_float(3.0), n)
        times.append(time.perf_counter() - start)
    return 3.0 * 4 * n / float(np.median(times[1:])) / 1e9


def describe(target=None) -> str:
    """The CPU, its cores and the target, in one line: say it next to every timing."""
    from .target import host_description
    from .target import target as parse_target
    return (f"{host_description()}, {os.cpu_count()} cores, "
            f"target {parse_target(target).describe()}")


def measure(target=None) -> dict:
    """`{"peak_gflops", "bandwidth_gbs", "lanes", "threads", "cpu"}`: the FMA probe's
    peak, the triad's bandwidth, the float32 lanes of one vector, the OpenMP threads and
    `describe()`.

    >>> m = td.machine.measure()
    >>> m["peak_gflops"] > 0 and m["lanes"] in (4, 8, 16)
    True
    """
    from .target import target as parse_target
    lib = _library(str(target) if target is not None else "")
    return {"peak_gflops": fma_peak(target), "bandwidth_gbs": bandwidth(target),
            "lanes": parse_target(target).lanes("float32"), "threads": lib.probe_threads(),
            "cpu": describe(target)}
