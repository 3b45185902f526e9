"""The part of `prepare` every schedule shares: build, allocate the output, bind."""

from __future__ import annotations

import time

import numpy as np

import tdsl as td


def prepare_kernel(schedule, args, inputs: list[np.ndarray], out_shape) -> tuple:
    """(run, result, compile_s) for a kernel whose last argument is its output."""
    start = time.perf_counter()
    mod = td.build(schedule, args)
    compile_s = time.perf_counter() - start
    out = np.empty(out_shape, dtype=np.float32)
    run = mod.bind(*inputs, out)
    return run, (lambda: out), compile_s


def packed_panels(B, cols: int, name: str = "Bp"):
    """B (l, m) re-laid out as column panels `Bp[j // cols, k, j % cols]`, each panel's
    rows contiguous; where cols does not divide m the last panel is zero past the edge
    (TVM's packedB). W1's schedules and the parity GEMM pairs read their B through it."""
    l, m = (d.value for d in B.shape)
    panels = -(-m // cols)
    if m % cols:
        return td.compute((panels, l, cols), lambda jo, kk, ji: td.select(
            jo * cols + ji < m, B[kk, jo * cols + ji], 0.0), name=name)
    return td.compute((panels, l, cols), lambda jo, kk, ji: B[kk, jo * cols + ji], name=name)


def reduce_in_lanes(s, red, lanes: int):
    """Factor the row reduction `red` into `lanes` partial results (rfactor): the partial
    stage runs over the row with its lanes innermost and vectorized, so they stay in
    vector registers; returns the partial stage's tensor, still to be placed."""
    (k,) = red.op.reduce_axis
    _, k_inner = s[red].split(k, factor=lanes)
    partial = s.rfactor(red, k_inner)
    lane, _ = partial.op.axis
    (k_rest,) = partial.op.reduce_axis
    s[partial].reorder(k_rest, lane)
    s[partial].vectorize(lane)
    return partial
