"""What every parity pair shares: the two x86 targets, the `Pair` record, and the builders
that turn a tdsl schedule or a Halide pipeline into a `run()` over NumPy arrays.

A target is named once and spelled for both systems: AVX2 is `c -mcpu=x86-64-v3` for
tdsl and `x86-64-linux-avx-avx2-f16c-fma-sse41` for Halide (8 float lanes, 16 vector
registers); AVX-512 is `c -mcpu=x86-64-v4` and `...-avx512-avx512_skylake` (16 lanes,
32 registers). A pair reads the lanes and registers from the target and gives both of
its builders the same numbers, so the two schedules differ only in the language.

Halide indexes x first: a NumPy array of shape (rows, cols) is a Halide buffer with
x = column, y = row (`hl.Buffer(ndarray)` arranges that without copying).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import tdsl as td


@dataclass(frozen=True)
class Target:
    """One x86 target as both systems spell it; lanes and registers come from tdsl's
    `td.target` (Halide's `natural_vector_size` agrees: 8 and 16 float32 lanes)."""
    name: str                  # "avx2" | "avx512"
    tdsl: str                  # td.build's target string
    halide: str                # hl.Target's string (without no_asserts)

    @property
    def lanes(self) -> int:
        """float32 lanes of one vector register."""
        return td.target(self.tdsl).lanes("float32")

    @property
    def registers(self) -> int:
        return td.target(self.tdsl).vector_registers

    def runs_here(self) -> bool:
        """Can this CPU execute code built for the target?"""
        return td.target(self.tdsl).runs_here()


AVX2 = Target("avx2", "c -mcpu=x86-64-v3", "x86-64-linux-avx-avx2-f16c-fma-sse41")
AVX512 = Target("avx512", "c -mcpu=x86-64-v4",
                "x86-64-linux-avx-avx2-avx512-avx512_skylake-f16c-fma-sse41")
TARGETS = {t.name: t for t in (AVX2, AVX512)}


@dataclass(frozen=True)
class Pair:
    """One schedule written twice. `tdsl(target, sizes)` returns (schedule, args), the
    output last; `halide(target, sizes)` returns (output Func, [ImageParam]) in the order
    of `inputs`. `inputs(sizes, rng)` returns the float32 inputs, `reference(*inputs)` the
    float64 result, `amount(sizes)` the flops or bytes of one call (in `unit`)."""
    name: str
    family: str
    idea: str                                  # the schedule in one line, for the table
    sizes: dict                                # the benchmark's sizes
    test_sizes: tuple[dict, ...]               # small and ragged, for the tests
    inputs: Callable[..., list[np.ndarray]]
    out_shape: Callable[[dict], tuple]
    reference: Callable[..., np.ndarray]
    tdsl: Callable[[Target, dict], tuple]
    halide: Callable[[Target, dict], tuple]
    unit: str                                  # "GFLOP/s" | "GB/s"
    amount: Callable[[dict], float]
    rtol: float = 2e-4
    atol: float = 2e-4
    notes: dict = field(default_factory=dict)

    def check(self, out: np.ndarray, ref: np.ndarray) -> str | None:
        """None if `out` matches `ref`, else where it does not."""
        bad = ~(np.abs(out - ref) <= self.atol + self.rtol * np.abs(ref))
        if not bad.any():
            return None
        at = tuple(int(v) for v in np.argwhere(bad)[0])
        return f"{int(bad.sum())} elements wrong, first at {at}: {out[at]} vs {ref[at]}"


def random_inputs(*shapes) -> Callable[[dict, np.random.Generator], list[np.ndarray]]:
    """An `inputs` function: one float32 array in [-1, 1) per shape(sizes)."""
    def make(sizes, rng):
        return [rng.uniform(-1, 1, shape(sizes)).astype(np.float32) for shape in shapes]
    return make


def bytes_moved(sizes_to_shapes) -> Callable[[dict], float]:
    """An `amount` for memory-bound pairs: 4 bytes per element of every input and output."""
    return lambda sz: 4.0 * sum(int(np.prod(s)) for s in sizes_to_shapes(sz))


# --- tdsl --------------------------------------------------------------------------------

def build_tdsl(schedule, args, target: Target):
    """td.build for `target` (compiled for it whatever this CPU is)."""
    return td.build(schedule, args, target=target.tdsl)


def prepare_tdsl(pair: Pair, target: Target, sizes: dict, inputs: list[np.ndarray]):
    """(run, result, compile_s) of the tdsl half."""
    t0 = time.perf_counter()
    s, args = pair.tdsl(target, sizes)
    mod = build_tdsl(s, args, target)
    compile_s = time.perf_counter() - t0
    out = np.empty(pair.out_shape(sizes), np.float32)
    arrays = [*inputs, out]
    bound = mod.bind(*arrays)

    def run(arrays=arrays):                  # the arrays live as long as run
        bound()
    return run, (lambda: out), compile_s, mod


# --- Halide ------------------------------------------------------------------------------

_hl = None


def hl():
    """The halide module, imported on first use (HL_NUM_THREADS must be set before)."""
    global _hl
    if _hl is None:
        import halide
        _hl = halide
    return _hl


def halide_target(target: Target):
    h = hl()
    return h.Target(target.halide).with_feature(h.TargetFeature.NoAsserts)


def hvars(names: str):
    return [hl().Var(n) for n in names.split()]


def image(name: str, shape: tuple):
    """An ImageParam with the constant extents of a NumPy shape (last axis = x)."""
    h = hl()
    p = h.ImageParam(h.Float(32), len(shape), name)
    fix_bounds(p, shape)
    return p


def fix_bounds(p, shape: tuple) -> None:
    stride = 1
    for d, extent in enumerate(reversed(shape)):
        p.dim(d).set_bounds(0, extent).set_stride(stride)
        stride *= extent


def prepare_halide(pair: Pair, target: Target, sizes: dict, inputs: list[np.ndarray]):
    """(run, result, compile_s) of the Halide half (JIT; compiles for any x86 target)."""
    h = hl()
    t0 = time.perf_counter()
    out_func, params = pair.halide(target, sizes)
    out_shape = pair.out_shape(sizes)
    fix_bounds(out_func.output_buffer(), out_shape)
    fn = out_func.compile_to_callable(params, halide_target(target))
    compile_s = time.perf_counter() - t0
    out = np.empty(out_shape, np.float32)
    arrays = [*inputs, out]                  # hl.Buffer does not keep its array alive
    buffers = [h.Buffer(a) for a in arrays]
    keep = (arrays, out_func, params)

    def run(keep=keep):
        fn(*buffers)
    return run, (lambda: out), compile_s


def halide_row_reduce(f, rvar, at, var, lanes: int):
    """Halide's rfactor idiom (tutorial lesson 18): f's reduction over `rvar` split by
    `lanes` and factored over the inner part into a lane-partial Func, vectorized over
    its lanes; f and the partial Func both computed at (at, var). tdsl's twin:
    `tdsl_row_reduce`."""
    h = hl()
    u = h.Var("u")
    rxo, rxi = h.RVar("rxo"), h.RVar("rxi")
    f.update().split(rvar, rxo, rxi, lanes)
    intm = f.update().rfactor(rxi, u)
    f.compute_at(at, var)
    intm.compute_at(at, var).vectorize(u)
    intm.update().vectorize(u)
    return intm


def tdsl_row_reduce(s, red, at, axis, lanes: int):
    """The twin of `halide_row_reduce`: `red`'s reduction split by `lanes`, factored over
    the inner part (rfactor) into a partial stage whose lanes are innermost and vectorized;
    `red` and the partial stage both computed at (at, axis), the consumer first."""
    (k,) = red.op.reduce_axis
    _, k_inner = s[red].split(k, factor=lanes)
    partial = s.rfactor(red, k_inner)
    lane, _ = partial.op.axis
    (k_rest,) = partial.op.reduce_axis
    s[partial].reorder(k_rest, lane)
    s[partial].vectorize(lane)
    s[red].compute_at(s[at], axis)
    s[partial].compute_at(s[at], axis)
    return partial
