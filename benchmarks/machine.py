"""What the results were measured on: CPU, cores, threads, library versions, date."""

from __future__ import annotations

import datetime
import os
import platform


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _flags() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                f = set(line.split(":", 1)[1].split())
                return " ".join(x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")
                                if x in f)
    except OSError:
        pass
    return ""


def _peer_version(mod) -> str:
    try:
        return mod.version()
    except Exception as e:
        return f"unavailable ({e})"


def describe(threads: int) -> dict:
    import numpy as np

    from . import limits
    from .peers import halide_impl, tvm_impl

    info = {
        "cpu": _cpu_model(), "simd": _flags(), "cores": os.cpu_count(), "threads": threads,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "tvm": _peer_version(tvm_impl),
        "halide": _peer_version(halide_impl), "gcc": limits.gcc_version(),
    }
    try:
        info["tvm_target"] = str(tvm_impl.target())
        info["halide_target"] = str(halide_impl.target())
    except Exception:
        pass
    try:
        import threadpoolctl
        info["threadpools"] = "; ".join(
            " ".join(str(p[k]) for k in ("prefix", "version", "architecture") if p.get(k))
            + f" x{p.get('num_threads')}" for p in threadpoolctl.threadpool_info())
    except Exception:
        info["threadpools"] = "unknown (threadpoolctl not installed)"
    try:
        import tdsl
        info["tdsl"] = getattr(tdsl, "__version__", "present")
    except Exception as e:
        info["tdsl"] = f"not importable ({type(e).__name__}: {e})"
    info["env"] = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "TVM_NUM_THREADS",
                                                   "HL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                   "TDSL_CACHE_DIR")}
    return info
