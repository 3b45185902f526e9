#!/usr/bin/env python3
"""tdsl's CUDA schedules on a real GPU (through pycuda), against cuBLAS/cuDNN-backed peers.

    python benchmarks/cuda/run_cuda.py [--repeat 20] [--json PATH]
    python benchmarks/cuda/run_cuda.py --emulate     # smoke run on the CPU emulator, small sizes

Workloads (the shapes of benchmarks/workloads.py): GEMM 1024^3 (W1) with two schedules
(16x16 shared tiles; 64x64 tiles with a 4x4 register tile per thread), row softmax 4096x1024
(W4, one block per row), 3x3 blur 4098^2 -> 4096^2 (W5, blur_x in shared memory). Each is
checked against NumPy, then timed on arrays already on the device (kernel time from CUDA
events, median of --repeat calls). Peers, when installed: CuPy (cuBLAS for GEMM) or PyTorch.

With no usable GPU it says why and exits 0. The emulator is for correctness, not speed:
its times mean nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import tdsl as td
from tdsl.backends.cuda.gpu import pycuda_status
from tdsl.lang.shapes import bind_sizes

OUT = Path(__file__).resolve().parent.parent / "out" / "cuda_results.json"


# --------------------------------------------------------------------------- schedules
# The same schedules as tests/backends/cuda/test_codegen.py.


def _matmul():
    M, N, K = td.var("M"), td.var("N"), td.var("K")
    A = td.placeholder((M, K), name="A")
    B = td.placeholder((K, N), name="B")
    k = td.reduce_axis((0, K), name="k")
    C = td.compute((M, N), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return td.create_schedule(C), A, B, C


def _bind(s, t, pairs):
    for axis, tag in pairs:
        s[t].bind(axis, tag)


def matmul_shared16():
    s, A, B, C = _matmul()
    CC = s.cache_write(C, "local")
    AS, BS = s.cache_read(A, "shared", [CC]), s.cache_read(B, "shared", [CC])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 16, 16)
    _bind(s, C, ((io, "blockIdx.y"), (jo, "blockIdx.x"), (ii, "threadIdx.y"),
                 (ji, "threadIdx.x")))
    s[CC].compute_at(s[C], jo)
    ic, jc = CC.op.axis
    ko, ki = s[CC].split(CC.op.reduce_axis[0], factor=16)
    s[CC].reorder(ko, ic, jc, ki)
    _bind(s, CC, ((ic, "threadIdx.y"), (jc, "threadIdx.x")))
    s[CC].unroll(ki)
    for stage in (AS, BS):
        s[stage].compute_at(s[CC], ko)
        _bind(s, stage, ((stage.op.axis[0], "threadIdx.y"), (stage.op.axis[1], "threadIdx.x")))
    return s, [A, B, C]


def matmul_register4x4():
    s, A, B, C = _matmul()
    CC = s.cache_write(C, "local")
    AS, BS = s.cache_read(A, "shared", [CC]), s.cache_read(B, "shared", [CC])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 64, 64)
    iio, iii = s[C].split(ii, factor=4)
    jio, jii = s[C].split(ji, factor=4)
    s[C].reorder(io, jo, iio, jio, iii, jii)
    _bind(s, C, ((io, "blockIdx.y"), (jo, "blockIdx.x"), (iio, "threadIdx.y"),
                 (jio, "threadIdx.x")))
    s[CC].compute_at(s[C], jo)
    ko, ki = s[CC].split(CC.op.reduce_axis[0], factor=16)
    ico, ici = s[CC].split(CC.op.axis[0], factor=4)
    jco, jci = s[CC].split(CC.op.axis[1], factor=4)
    s[CC].reorder(ko, ico, jco, ki, ici, jci)
    _bind(s, CC, ((ico, "threadIdx.y"), (jco, "threadIdx.x")))
    s[CC].unroll(ici)
    s[CC].unroll(jci)
    for stage in (AS, BS):
        s[stage].compute_at(s[CC], ko)
        rows, cols = stage.op.axis
        ro, ri = s[stage].split(rows, factor=16)
        co, ci = s[stage].split(cols, factor=16)
        s[stage].reorder(ro, co, ri, ci)
        _bind(s, stage, ((ri, "threadIdx.y"), (ci, "threadIdx.x")))
    return s, [A, B, C]


def softmax():
    n, m = td.var("n"), td.var("m")
    A = td.placeholder((n, m), name="A")
    k = td.reduce_axis((0, m), name="k")
    MX = td.compute((n,), lambda i: td.max(A[i, k], axis=k), name="MX")
    E = td.compute((n, m), lambda i, j: td.exp(A[i, j] - MX[i]), name="E")
    k2 = td.reduce_axis((0, m), name="k2")
    SM = td.compute((n,), lambda i: td.sum(E[i, k2], axis=k2), name="SM")
    O = td.compute((n, m), lambda i, j: E[i, j] / SM[i], name="O")
    s = td.create_schedule(O)
    s[E].compute_inline()
    _, ki = s[MX].split(MX.op.reduce_axis[0], factor=128)
    MF = s.rfactor(MX, ki)
    _, ki2 = s[SM].split(SM.op.reduce_axis[0], factor=128)
    SF = s.rfactor(SM, ki2)
    i, j = O.op.axis
    _, ji = s[O].split(j, factor=128)
    _bind(s, O, ((i, "blockIdx.x"), (ji, "threadIdx.x")))
    for reduced, partial in ((SM, SF), (MX, MF)):
        s[reduced].compute_at(s[O], i)
        s[partial].compute_at(s[reduced], reduced.op.axis[0])
        s[partial].bind(partial.op.axis[0], "threadIdx.x")
    return s, [A, O]


def blur():
    H, W = td.var("H"), td.var("W")
    I = td.placeholder((H, W), name="I")
    BX = td.compute((H, W - 2), lambda y, x: (I[y, x] + I[y, x + 1] + I[y, x + 2]) / 3,
                    name="BX")
    BY = td.compute((H - 2, W - 2), lambda y, x: (BX[y, x] + BX[y + 1, x] + BX[y + 2, x]) / 3,
                    name="BY")
    s = td.create_schedule(BY)
    yo, xo, yi, xi = s[BY].tile(*BY.op.axis, 16, 32)
    _bind(s, BY, ((yo, "blockIdx.y"), (xo, "blockIdx.x"), (yi, "threadIdx.y"),
                  (xi, "threadIdx.x")))
    s[BX].compute_inline()
    BS = s.cache_read(BX, "shared", [BY])
    s[BS].compute_at(s[BY], xo)
    rows, cols = BS.op.axis
    _, ri = s[BS].split(rows, factor=16)
    _bind(s, BS, ((ri, "threadIdx.y"), (cols, "threadIdx.x")))
    return s, [I, BY]


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
        ("gemm_shared16", matmul_shared16, gemm),
        ("gemm_register4x4", matmul_register4x4, gemm),
        ("softmax", softmax, {"inputs": rows, "out": (r, c), "ref": _softmax_ref,
                              "work": 8.0 * r * c, "unit": "GB/s", "peer": "softmax"}),
        ("blur", blur, {"inputs": image, "out": (b - 2, b - 2), "ref": _blur_ref,
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
