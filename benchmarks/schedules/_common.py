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
