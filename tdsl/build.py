"""`td.build`: lower a schedule and hand it to a backend.

The schedule layer (and with it islpy) is imported when `build` is first called, so
`import tdsl` stays cheap for processes that only load exported kernels.
"""

from __future__ import annotations

from .runtime.module import Module


def build(schedule, args, target: str = "c", name: str = "kernel", **options) -> Module:
    """Compile `schedule` into a callable taking one array per tensor of `args`.

    A schedule built before (the same algorithm, schedule, arguments, compiler and
    flags) is fetched from the disk cache without lowering it again.

    >>> mod = td.build(s, [A, B, C], target="c")
    >>> mod(a, b, c)
    """
    from . import backends
    from .lang.graph import as_tensor_list
    from .schedule import lower
    from .schedule.fingerprint import fingerprint
    from .schedule.lower import LazyLowered
    from .schedule.program import size_params
    backend = backends.get(target)            # unknown targets fail before any work
    if not hasattr(backend, "cached") or options:
        return backend.build(lower(schedule, args, name), **options)
    args = as_tensor_list(args, "args")
    data = schedule.data
    key = fingerprint(data, args, name, target)
    snapshot = _Snapshot(data)
    lazy = LazyLowered(name, args, size_params(args), lambda: lower(snapshot, args, name))
    module = backend.cached(key, lazy)
    if module is not None:
        return module
    return backend.build(lower(schedule, args, name), fingerprint=key)


class _Snapshot:
    """The schedule as it was when built (a Schedule changes with later primitives)."""

    def __init__(self, data):
        self.data = data
