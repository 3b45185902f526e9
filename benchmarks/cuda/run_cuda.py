#!/usr/bin/env python3
"""tdsl's CUDA schedules on a real GPU (through pycuda), against cuBLAS/cuDNN-backed peers.

    python benchmarks/cuda/run_cuda.py [--repeat 20] [--json PATH]
    python benchmarks/cuda/run_cuda.py --emulate     # smoke run on the CPU emulator, small sizes

Workloads (the shapes of benchmarks/workloads.py): GEMM 1024^3 (W1) with two schedules
(16x16 shared tiles; 64x64 tiles with a 4x4 register tile per thread), row softmax 4096x1024
(W4, one block per row), 3x3 blur 4098^2 -> 4096^2 (W5, blur_x in shared memory). Each is
checked against NumPy, then timed on arrays already on the device (kernel time from CUDA
events, median of --repeat calls). Peers, when installed: CuPy (cuBLAS for GEMM) or PyTorch.
The schedules are benchmarks/cuda/schedules.py's, which tests/backends/cuda/test_codegen.py
checks on the emulator.

With no usable GPU it says why and exits 0. The emulator is for correctness, not speed:
its times mean nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:                 # run as a script: benchmarks.cuda importable
    sys.path.insert(0, str(REPO))

import tdsl as td  # noqa: E402
from benchmarks.cuda.schedules import (blur, register_tiled_matmul, softmax,  # noqa: E402
                                       tiled_matmul)
from tdsl.backends.cuda.gpu import pycuda_status  # noqa: E402
from tdsl.lang.shapes import bind_sizes  # noqa: E402

OUT = REPO / "benchmarks" / "out" / "cuda_results.json"


# --------------------------------------------------------------------------- workloads


def _gemm_ref(a, b):
    return a.astype(np.float64) @ b.astype(np.float64)


def _softmax_ref(x):
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _blur_ref(x):
    a = x.astype(np.float64)
    bx = (a[:, :-2] + a[:, 1:-1] + a[:, 2:]) / 3
    return (bx[:-2] + bx[1:-1] + bx[2:]) / 3


def workloads(small: bool):
    # small: blur's output 64 x 64 is whole tiles (ragged blur tiles hit a core lowering
    # bug, tdsl.poly.ast_expr.plus_one, while it lasts)
    g, (r, c), b = (100, (37, 300), 66) if small else (1024, (4096, 1024), 4098)
    rng = np.random.default_rng(0)
    gemm_in = [rng.standard_normal((g, g), dtype=np.float32) for _ in range(2)]
    rows = [rng.standard_normal((r, c), dtype=np.float32)]
    image = [rng.standard_normal((b, b), dtype=np.float32)]
    gemm = {"inputs": gemm_in, "out": (g, g), "ref": _gemm_ref, "work": 2.0 * g ** 3,
            "unit": "GFLOP/s", "peer": "gemm"}
    return [
        ("gemm_shared16", partial(tiled_matmul, 16, unroll=True), gemm),
        ("gemm_register4x4", register_tiled_matmul, gemm),
        ("softmax", softmax, {"inputs": rows, "out": (r, c), "ref": _softmax_ref,
                              "work": 8.0 * r * c, "unit": "GB/s", "peer": "softmax"}),
        ("blur", partial(blur, explicit_shared=True),
         {"inputs": image, "out": (b - 2, b - 2), "ref": _blur_ref,
          "work": 4.0 * (b * b + (b - 2) ** 2), "unit": "GB/s", "peer": "blur"}),
    ]


# --------------------------------------------------------------------------- timing


def time_tdsl(mod, inputs, out, repeat: int, emulate: bool) -> float:
    """Median seconds of one call's kernels on device-resident arrays (emulator: host)."""
    arrays = [*inputs, out]
    sizes = bind_sizes(mod.args, arrays)
    values = [sizes[v] for v in mod.kernel.sizes]
    if emulate:
        return mod.time(*arrays, repeat=repeat).median
    drv = mod.runner.drv
    device = [drv.mem_alloc(a.nbytes) for a in arrays]
    try:
        for mem, a in zip(device, inputs):
            drv.memcpy_htod(mem, a)
        ptrs = [int(m) for m in device]
        mod.runner.device_call(ptrs, values)            # warm-up
        return statistics.median(mod.runner.device_call(ptrs, values, time_kernels=True)
                                 for _ in range(repeat))
    finally:
        for mem in device:
            mem.free()


def peer(kind: str, inputs, repeat: int):
    """(name, median seconds) of a CuPy or PyTorch implementation, or (reason, None)."""
    try:
        import torch
        if not torch.cuda.is_available():
            raise ImportError("torch has no CUDA device")
        xs = [torch.from_numpy(a).cuda() for a in inputs]
        fn = {"gemm": lambda: xs[0] @ xs[1], "softmax": lambda: torch.softmax(xs[0], dim=1),
              "blur": lambda: _blur_expr(xs[0])}[kind]
        return "torch (cuBLAS)" if kind == "gemm" else "torch", _time_events(
            fn, repeat, torch.cuda.Event, torch.cuda.synchronize)
    except ImportError as e:
        reason = f"torch: {e}"
    try:
        import cupy
        xs = [cupy.asarray(a) for a in inputs]

        def cupy_softmax():
            e = cupy.exp(xs[0] - xs[0].max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        fn = {"gemm": lambda: xs[0] @ xs[1], "softmax": cupy_softmax,
              "blur": lambda: _blur_expr(xs[0])}[kind]
        def event(enable_timing=True):
            return cupy.cuda.Event()
        return "cupy (cuBLAS)" if kind == "gemm" else "cupy", _time_events(
            fn, repeat, event, cupy.cuda.Device().synchronize)
    except ImportError as e:
        return f"no peer ({reason}; cupy: {e})", None


def _blur_expr(x):
    bx = (x[:, :-2] + x[:, 1:-1] + x[:, 2:]) / 3
    return (bx[:-2] + bx[1:-1] + bx[2:]) / 3


def _time_events(fn, repeat, event, synchronize) -> float:
    fn()
    synchronize()
    times = []
    for _ in range(repeat):
        start, stop = event(enable_timing=True), event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        ms = start.elapsed_time(stop) if hasattr(start, "elapsed_time") else \
            __import__("cupy").cuda.get_elapsed_time(start, stop)
        times.append(ms / 1e3)
    return statistics.median(times)


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--json", default=str(OUT))
    p.add_argument("--emulate", action="store_true",
                   help="run on the CPU emulator with small sizes (a smoke test; times "
                        "mean nothing)")
    args = p.parse_args(argv)
    if not args.emulate:
        usable, reason = pycuda_status()
        if not usable:
            print(f"No GPU available ({reason}); nothing to benchmark. "
                  "Use --emulate for a smoke run on the CPU emulator.")
            return 0
        print(f"GPU: {reason}")
    rows, failed = [], False
    for name, schedule, w in workloads(small=args.emulate):
        start = time.perf_counter()
        s, tensors = schedule()
        mod = td.build(s, tensors, target="cuda", emulate=args.emulate)
        compile_s = time.perf_counter() - start
        out = np.zeros(w["out"], np.float32)
        mod(*w["inputs"], out)
        err = float(np.max(np.abs(out - w["ref"](*w["inputs"]))))
        ok = err < 1e-3 * max(1.0, float(np.sqrt(w["inputs"][0].shape[-1])))
        failed |= not ok
        seconds = time_tdsl(mod, w["inputs"], out, args.repeat, args.emulate)
        peer_name, peer_s = (("emulator: no peer", None) if args.emulate
                             else peer(w["peer"], w["inputs"], args.repeat))
        scale = 1e9
        row = {"workload": name, "ok": ok, "max_abs_err": err, "tdsl_ms": seconds * 1e3,
               "tdsl_rate": w["work"] / seconds / scale, "unit": w["unit"],
               "peer": peer_name, "peer_ms": peer_s and peer_s * 1e3,
               "peer_rate": peer_s and w["work"] / peer_s / scale, "compile_s": compile_s,
               "resources": mod.resources, "arch": mod.arch, "emulated": args.emulate}
        rows.append(row)
        peer_text = f"{row['peer_ms']:.3f} ms ({row['peer_rate']:.0f} {w['unit']})" \
            if peer_s else "-"
        print(f"{name:18s} {'ok ' if ok else 'BAD'} tdsl {row['tdsl_ms']:9.3f} ms "
              f"({row['tdsl_rate']:8.1f} {w['unit']})   {peer_name}: {peer_text}   "
              f"regs {[r['registers'] for r in (mod.resources or {}).values()]}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
