"""The eight benchmark workloads W1-W8 of shared/PERF_TARGETS.md, as data.

Each `Workload` holds the sizes, a generator of float32 inputs, a float64 reference, the
measure (GFLOP/s from a flop count, or GB/s from the bytes moved when each input is read
once and the output written once), which machine limit it is compared with, and the
tolerance a float32 result must meet. Implementations (numpy, TVM, Halide, tdsl) receive
`make_inputs(rng)`'s dict and return one output array.

>>> w = WORKLOADS["W3"]
>>> x = w.make_inputs(np.random.default_rng(0)); w.out_shape
(4096, 4096)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

F32 = 4  # bytes per element

Inputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Workload:
    id: str                      # "W1"
    name: str                    # "gemm"; tdsl's schedule module is f"{id.lower()}_{name}.py"
    title: str                   # one line for the table
    sizes: dict                  # the problem sizes, for the record
    out_shape: tuple[int, ...]
    make_inputs: Callable[[np.random.Generator], Inputs]
    reference: Callable[[Inputs], np.ndarray]   # float64
    unit: str                    # "GFLOP/s" or "GB/s"
    amount: float                # flops or bytes per call
    limit: str                   # "fma" or "triad"
    rtol: float
    atol: float
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def module(self) -> str:
        return f"{self.id.lower()}_{self.name}"

    def perf(self, seconds: float) -> float:
        """`amount` per second in the unit's scale (1e9)."""
        return self.amount / seconds / 1e9

    def check(self, out: np.ndarray, ref: np.ndarray) -> str | None:
        """None if `out` matches `ref` within tolerance, else a message saying where not."""
        out = np.asarray(out)
        if out.shape != ref.shape:
            return f"shape {out.shape}, expected {ref.shape}"
        if out.dtype != np.float32:
            return f"dtype {out.dtype}, expected float32"
        bad = ~(np.abs(out - ref) <= self.atol + self.rtol * np.abs(ref))
        if not bad.any():
            return None
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), out.shape))
        err = np.abs(out.astype(np.float64) - ref)
        return (f"{int(bad.sum())} of {out.size} elements out of tolerance "
                f"(rtol={self.rtol}, atol={self.atol}); first at {list(idx)}: got "
                f"{float(out[idx]):.7g}, expected {float(ref[idx]):.7g}; "
                f"max abs error {np.nanmax(err):.3g}")


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# --- W1 GEMM ---------------------------------------------------------------------------

GEMM_N = 1024


def _gemm_inputs(rng):
    n = GEMM_N
    return {"A": _f32(rng.uniform(-1, 1, (n, n))), "B": _f32(rng.uniform(-1, 1, (n, n)))}


def _gemm_ref(x):
    return x["A"].astype(np.float64) @ x["B"].astype(np.float64)


# --- W2 conv2d NCHW, 3x3, pad 1, stride 1 ----------------------------------------------

CONV = dict(N=1, C=64, H=56, W=56, K=64, R=3, S=3, pad=1, stride=1)


def _conv_inputs(rng):
    c = CONV
    return {"x": _f32(rng.uniform(-1, 1, (c["N"], c["C"], c["H"], c["W"]))),
            "w": _f32(rng.uniform(-1, 1, (c["K"], c["C"], c["R"], c["S"])))}


def conv2d_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """out[n,k,h,w] = sum_{c,r,s} xpad[n,c,h+r,w+s] * w[k,c,r,s], float64."""
    n_, _, h, wd = x.shape
    k, _, r, s = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    w64 = w.astype(np.float64)
    out = np.zeros((n_, k, h, wd))
    for dr in range(r):
        for ds in range(s):
            out += np.einsum("nchw,kc->nkhw", xp[:, :, dr:dr + h, ds:ds + wd], w64[:, :, dr, ds])
    return out


# --- W3..W8 ----------------------------------------------------------------------------

BIG = 4096          # W3, W5, W6, W7: 4096 x 4096
ROWS, COLS = 4096, 1024   # W4, W8: 4096 x 1024
LN_EPS = 1e-5


def _ew_inputs(rng):
    sh = (BIG, BIG)
    return {"a": _f32(rng.standard_normal(sh)), "b": _f32(rng.standard_normal(sh)),
            "c": _f32(rng.standard_normal(sh))}


def _ew_ref(x):
    a, b, c = (x[k].astype(np.float64) for k in "abc")
    return np.maximum(a * b + c, 0.0)


def _rows_inputs(rng):
    return {"x": _f32(rng.standard_normal((ROWS, COLS)))}


def _big_inputs(rng):
    return {"x": _f32(rng.standard_normal((BIG, BIG)))}


def _softmax_ref(x):
    a = x["x"].astype(np.float64)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _blur_inputs(rng):
    return {"x": _f32(rng.standard_normal((BIG + 2, BIG + 2)))}


def _blur_ref(x):
    a = x["x"].astype(np.float64)
    bx = (a[:, :-2] + a[:, 1:-1] + a[:, 2:]) / 3.0
    return (bx[:-2] + bx[1:-1] + bx[2:]) / 3.0


def _layernorm_ref(x):
    a = x["x"].astype(np.float64)
    mu = a.mean(axis=1, keepdims=True)
    var = ((a - mu) ** 2).mean(axis=1, keepdims=True)
    return (a - mu) / np.sqrt(var + LN_EPS)


def _bytes(*shapes) -> float:
    return float(sum(int(np.prod(s)) for s in shapes) * F32)


_c = CONV
WORKLOADS: dict[str, Workload] = {w.id: w for w in [
    Workload("W1", "gemm", "GEMM C = A @ B, 1024^3", {"M": 1024, "N": 1024, "K": 1024},
             (GEMM_N, GEMM_N), _gemm_inputs, _gemm_ref,
             "GFLOP/s", 2.0 * GEMM_N ** 3, "fma", rtol=1e-4, atol=1e-3),
    Workload("W2", "conv2d", "conv2d NCHW 1x64x56x56, K=64, 3x3, pad 1", dict(CONV),
             (_c["N"], _c["K"], _c["H"], _c["W"]), _conv_inputs,
             lambda x: conv2d_reference(x["x"], x["w"]),
             "GFLOP/s", 2.0 * _c["N"] * _c["K"] * _c["C"] * _c["H"] * _c["W"] * _c["R"] * _c["S"],
             "fma", rtol=1e-4, atol=1e-3),
    Workload("W3", "fma_relu", "out = max(a*b + c, 0), 4096^2", {"shape": (BIG, BIG)},
             (BIG, BIG), _ew_inputs, _ew_ref,
             "GB/s", _bytes(*[(BIG, BIG)] * 4), "triad", rtol=1e-5, atol=1e-6),
    Workload("W4", "softmax", "row softmax (max-subtracted), 4096x1024",
             {"shape": (ROWS, COLS)}, (ROWS, COLS), _rows_inputs, _softmax_ref,
             "GB/s", _bytes((ROWS, COLS), (ROWS, COLS)), "triad", rtol=1e-4, atol=1e-8),
    Workload("W5", "blur", "3x3 box blur, blur_x then blur_y, 4098^2 -> 4096^2",
             {"in": (BIG + 2, BIG + 2), "out": (BIG, BIG)}, (BIG, BIG),
             _blur_inputs, _blur_ref,
             "GB/s", _bytes((BIG + 2, BIG + 2), (BIG, BIG)), "triad", rtol=1e-5, atol=1e-5,
             notes="output 4096^2 from a 4098^2 input (as in Halide's blur app): "
                   "out[y,x] = mean of in[y:y+3, x:x+3], as two 1-D passes each /3"),
    Workload("W6", "transpose", "transpose 4096^2", {"shape": (BIG, BIG)}, (BIG, BIG),
             _big_inputs, lambda x: x["x"].astype(np.float64).T,
             "GB/s", _bytes((BIG, BIG), (BIG, BIG)), "triad", rtol=0.0, atol=0.0),
    Workload("W7", "rowsum", "row sum 4096^2 -> 4096", {"shape": (BIG, BIG)}, (BIG,),
             _big_inputs, lambda x: x["x"].astype(np.float64).sum(axis=1),
             "GB/s", _bytes((BIG, BIG), (BIG,)), "triad", rtol=1e-4, atol=2e-3),
    Workload("W8", "layernorm", "layernorm over last axis (no affine, eps 1e-5), 4096x1024",
             {"shape": (ROWS, COLS), "eps": LN_EPS}, (ROWS, COLS), _rows_inputs,
             _layernorm_ref,
             "GB/s", _bytes((ROWS, COLS), (ROWS, COLS)), "triad", rtol=1e-4, atol=1e-4),
]}
