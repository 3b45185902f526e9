"""The per-call fast path: a plan per Module that checks the cheap properties of each
argument (an ndarray of the right kind and itemsize, native byte order, rank, C-contiguous,
writeable outputs), then calls the library's checked entry point (shapes, sizes,
aliasing) without the GIL.

`plan.run(arrays, num_threads)` returns None when the kernel ran, `(code, message)` when
the entry point refused the arguments or the kernel failed, and False when an argument
needs the Python checks (not an ndarray, wrong dtype, ...): the Module then runs them,
which raise the error every caller has always seen.

The plan is `tdsl.runtime._fastcall.Plan` (a C extension built with the package) when it
is importable, else `PyPlan` below: same results through ctypes, ~25 µs per call instead
of under 1 µs (`ndarray.ctypes.data` alone costs ~4 µs).
`TDSL_PURE_PYTHON=1` forces `PyPlan` (tests/runtime runs both).

Threads: `num_threads` > 0 is used as is; 0 shares the budget (`TDSL_NUM_THREADS`, else
`OMP_NUM_THREADS`, else the CPUs this process may run on) among the calls in flight, so
8 callers of a parallel kernel on 2 cores do not start 8 teams of 2 threads.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from ..errors import TdslValueError


def _budget() -> int:
    for name in ("TDSL_NUM_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(name, "").split(",")[0].strip()
        if text:
            try:
                value = int(text)
            except ValueError:
                value = 0
            if value < 1:
                raise TdslValueError(f"{name}={os.environ[name]!r}: the number of threads must "
                                     "be a positive integer")
            return value
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


BUDGET = _budget()            # read once, when the runtime is imported

ENTRY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                         ctypes.c_char_p, ctypes.c_size_t)


class PyPlan:
    """The fast path in Python (see the module docstring)."""

    _in_flight = 0            # approximate without a lock; it only sizes OpenMP teams

    def __init__(self, address: int, kinds: str, itemsizes, ndims, outputs):
        self.entry = ENTRY(address)
        self.spec = tuple(zip(kinds, itemsizes, ndims, outputs))
        self.data_type = ctypes.c_void_p * len(self.spec)
        self.dims_type = ctypes.c_int64 * max(sum(ndims), 1)
        self.offsets = [8 * sum(ndims[:k]) for k in range(len(ndims))]

    def run(self, arrays, num_threads: int):
        if len(arrays) != len(self.spec):
            return False
        for a, (kind, itemsize, ndim, output) in zip(arrays, self.spec):
            if not isinstance(a, np.ndarray):
                return False
            d = a.dtype
            if d.kind != kind or d.itemsize != itemsize or not d.isnative or a.ndim != ndim \
                    or not a.flags.c_contiguous or (output and not a.flags.writeable):
                return False
        data = self.data_type(*[a.ctypes.data for a in arrays])
        dims = self.dims_type(*[d for a in arrays for d in a.shape])
        base = ctypes.addressof(dims)
        shapes = self.data_type(*[base + offset for offset in self.offsets])
        err = ctypes.create_string_buffer(512)
        PyPlan._in_flight += 1
        try:
            team = num_threads or max(1, BUDGET // PyPlan._in_flight)
            code = self.entry(data, shapes, team, err, len(err))
        finally:
            PyPlan._in_flight -= 1
        return None if code == 0 else (code, err.value.decode(errors="replace"))


def _native():
    if os.environ.get("TDSL_PURE_PYTHON") == "1":
        return None
    try:
        from . import _fastcall
    except ImportError:
        return None
    _fastcall.configure(BUDGET)
    return _fastcall.Plan


NativePlan = _native()
MAX_NATIVE_ARGS = 64          # _fastcall.c's MAX_ARGS


def make_plan(address: int, args, pure_python: bool = False):
    """The plan for an entry point at `address` taking `args` (runtime.signature.Arg)."""
    spec = ("".join(np.dtype(a.dtype).kind for a in args),
            tuple(np.dtype(a.dtype).itemsize for a in args), tuple(len(a.shape) for a in args),
            tuple(a.is_output for a in args))
    cls = PyPlan if pure_python or NativePlan is None or len(args) > MAX_NATIVE_ARGS \
        else NativePlan
    return cls(address, *spec)
