"""`td.build`: lower a schedule and hand it to a backend.

The schedule layer (and with it islpy) is imported when `build` is first called, so
`import tdsl` stays cheap for processes that only load exported kernels.
"""

from __future__ import annotations

from .runtime.module import Module


def build(schedule, args, target=None, name: str = "kernel", **options) -> Module:
    """Compile `schedule` into a callable taking one array per tensor of `args`.

    `target` is "c" (OpenMP C for this CPU), "c -mcpu=<cpu>" (for a CPU gcc's -march=
    names, e.g. x86-64-v3 for AVX2), a `td.Target`, or "cuda"; by default
    `TDSL_TARGET` from the environment, else "c".

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
    from .target import target as parse_target
    backend = backends.get(target)            # unknown targets fail before any work
    target = parse_target(target)
    if target.kind != "c":
        return backend.build(lower(schedule, args, name), **options)
    if options:
        return backend.build(lower(schedule, args, name), target=target, **options)
    args = as_tensor_list(args, "args")
    data = schedule.data
    key = fingerprint(data, args, name, str(target))
    snapshot = _Snapshot(data)
    lazy = LazyLowered(name, args, size_params(args), lambda: lower(snapshot, args, name))
    module = backend.cached(key, lazy, target)
    if module is not None:
        return module
    return backend.build(lower(schedule, args, name), fingerprint=key, target=target)


class _Snapshot:
    """The schedule as it was when built (a Schedule changes with later primitives)."""

    def __init__(self, data):
        self.data = data
