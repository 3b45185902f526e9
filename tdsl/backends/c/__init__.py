"""The C backend: OpenMP C from the loop IR, compiled by gcc, called through ctypes."""

from __future__ import annotations

import ctypes
import time

from ...module import Module
from .build import compile_shared, load, recall, remember
from ...target import target as parse_target
from .render import render


def build(lowered, fingerprint: str | None = None, target=None, **options) -> Module:
    """Render for `target` (a `td.Target`; the native CPU by default), compile (or fetch
    from the cache) and load a lowered kernel; with the schedule's `fingerprint`,
    remember the kernel under it for `cached`."""
    if options:
        from ...errors import TdslValueError
        raise TdslValueError(f"the C target takes no options; got {sorted(options)}")
    target = parse_target(target)
    start = time.perf_counter()
    kernel = lowered.kernel
    source = render(kernel, target)
    path = compile_shared(source, target)
    if fingerprint is not None:
        remember(fingerprint, path, kernel.name, [v.name for v in kernel.sizes], target)
    return _module(lowered, source, path, time.perf_counter() - start)


def cached(fingerprint: str, lazy_lowered, target=None) -> Module | None:
    """The module of a schedule built before (same fingerprint, compiler and flags),
    without lowering it again; None if there is none."""
    start = time.perf_counter()
    found = recall(fingerprint, parse_target(target))
    if found is None:
        return None
    path, name, sizes = found
    if name != lazy_lowered.name or sizes != [v.name for v in lazy_lowered.sizes]:
        return None
    source = (path.parent / "kernel.c").read_text()
    return _module(lazy_lowered, source, path, time.perf_counter() - start)


def _module(lowered, source: str, path, seconds: float) -> Module:
    argtypes = [ctypes.c_void_p] * len(lowered.args) + [ctypes.c_int64] * len(lowered.sizes)
    fn = load(path, lowered.name, argtypes)

    def prepare(arrays, sizes):
        args = [a.ctypes.data for a in arrays] + list(sizes)
        return lambda keep=arrays: fn(*args)

    return Module(lowered, source, prepare, "c", seconds, {"library_path": path})
