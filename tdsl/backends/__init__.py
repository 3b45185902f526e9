"""The backends, by target name. A backend is a module with
`build(lowered, **options) -> Module`; a new target is one folder here and one
entry below."""

from __future__ import annotations

import importlib

from ..errors import TdslValueError

TARGETS = {"c": "tdsl.backends.c", "cuda": "tdsl.backends.cuda"}


def get(target):
    """The backend module for `target` (a target string such as "c -mcpu=x86-64-v3", or a
    `td.Target`)."""
    from ..target import target as parse
    kind = parse(target).kind
    if kind not in TARGETS:
        raise TdslValueError(f"unknown target {target!r}; the targets are "
                             f"{', '.join(sorted(TARGETS))}")
    return importlib.import_module(TARGETS[kind])
