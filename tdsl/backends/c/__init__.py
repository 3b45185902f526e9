"""The C backend: OpenMP C from the loop IR, compiled by gcc, called through ctypes."""

from __future__ import annotations

import ctypes
import time

from ...module import Module
from .build import compile_shared, load
from .render import render


def build(lowered, **options) -> Module:
    """Render, compile (or fetch from the cache) and load a lowered kernel."""
    if options:
        from ...errors import TdslValueError
        raise TdslValueError(f"the C target takes no options; got {sorted(options)}")
    start = time.perf_counter()
    kernel = lowered.kernel
    source = render(kernel)
    path = compile_shared(source)
    argtypes = [ctypes.c_void_p] * len(kernel.params) + [ctypes.c_int64] * len(kernel.sizes)
    fn = load(path, kernel.name, argtypes)

    def prepare(arrays, sizes):
        args = [a.ctypes.data for a in arrays] + list(sizes)
        return lambda keep=arrays: fn(*args)

    return Module(lowered, source, prepare, "c", time.perf_counter() - start,
                  {"library_path": path})
