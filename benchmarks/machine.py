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


def _loadavg() -> str:
    """The OS load average: above the core count, other jobs shared the cores."""
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _native_march() -> str:
    """What gcc's -march=native resolves to here (e.g. znver3), with "+avx512f" where the
    CPU has AVX-512, which the name may not say: gcc 12 names a Zen 4 znver3."""
    import subprocess
    try:
        out = subprocess.run(["gcc", "-march=native", "-Q", "--help=target"],
                             capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    march = next((line.split()[-1] for line in out.splitlines()
                  if line.strip().startswith("-march=")), "unknown")
    avx512 = any(line.split()[:1] == ["-mavx512f"] and line.split()[-1] == "[enabled]"
                 for line in out.splitlines())
    return f"{march}+avx512f" if avx512 else march


def _blas() -> str:
    """numpy's BLAS as threadpoolctl sees it: library, version, the kernel it picked for
    this CPU (e.g. Haswell, Zen, SkylakeX), threads."""
    try:
        import threadpoolctl
        pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    except Exception:
        return "unknown (threadpoolctl not installed)"
    return "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('prefix')}), "
                     f"kernel {p.get('architecture')}, {p.get('num_threads')} threads"
                     for p in pools) or "none found"


def describe(threads: int, target=None) -> dict:
    """The machine and the target of a run (`target`: a tdsl Target; default: the run's)."""
    import numpy as np

    from . import limits, targets
    from .peers import halide_impl, tvm_impl

    t = target if target is not None else targets.current()
    info = {
        "target": t.describe(), "target_cflags": " ".join(t.cflags),
        "cpu": _cpu_model(), "host": f"{targets.cpu()}, -march=native = {_native_march()}: "
                f"{targets.host().describe()}",
        "simd": _flags(), "cores": os.cpu_count(), "threads": threads,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "tvm": _peer_version(tvm_impl),
        "halide": _peer_version(halide_impl), "gcc": limits.gcc_version(),
        "numpy_blas": _blas(),
        "load average (1, 5, 15 min) at the end": _loadavg(),
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
