"""The C backend: OpenMP C from the loop IR, compiled by gcc, called through ctypes."""

from __future__ import annotations

import time

from ...errors import TdslError
from ...lang.tensor import PlaceholderOp
from ...runtime.library import Library, manifest
from ...runtime.module import Module
from ...runtime.signature import Signature
from ...target import target as parse_target
from .build import compile_shared, recall, remember
from .entry import library_source
from .render import render


def build(lowered, fingerprint: str | None = None, target=None, **options) -> Module:
    """Render for `target` (a `td.Target`; the default target if None), compile (or fetch
    from the cache) and load a lowered kernel; with the schedule's `fingerprint`,
    remember the kernel under it for `cached`."""
    if options:
        from ...errors import TdslValueError
        raise TdslValueError(f"the C target takes no options; got {sorted(options)}")
    target = parse_target(target)
    start = time.perf_counter()
    kernel = lowered.kernel
    source = library_text(lowered, target)
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
    try:
        return _module(lazy_lowered, source, path, time.perf_counter() - start)
    except TdslError:             # an entry from an older tdsl: build it again
        return None


def library_text(lowered, target=None) -> str:
    """The C of a kernel's library for `target`: the kernel, its checked entry point, its
    manifest."""
    sig = _signature(lowered)
    return library_source([render(lowered.kernel, target)], [sig],
                          manifest([sig], [lowered.name]))


def _signature(lowered) -> Signature:
    outputs = [t for t in lowered.args if not isinstance(t.op, PlaceholderOp)]
    return Signature.from_tensors(lowered.name, lowered.args, outputs, lowered.sizes)


def _module(lowered, source: str, path, seconds: float) -> Module:
    """A Module calling the library's checked entry point (backends/c/entry.py)."""
    return Module(lowered, source, None, "c", seconds, {"library_path": path},
                  library=Library(path, require_cpu=False))
