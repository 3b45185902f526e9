"""`td.build`: lower a schedule and hand it to a backend."""

from __future__ import annotations

from . import backends
from .module import Module
from .schedule import lower


def build(schedule, args, target: str = "c", name: str = "kernel", **options) -> Module:
    """Compile `schedule` into a callable taking one array per tensor of `args`.

    >>> mod = td.build(s, [A, B, C], target="c")
    >>> mod(a, b, c)
    """
    backend = backends.get(target)            # unknown targets fail before any work
    return backend.build(lower(schedule, args, name), **options)
