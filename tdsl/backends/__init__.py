"""The backends, by target name. A backend is a module with
`build(lowered, **options) -> Module`; a new target is one folder here and one
entry below."""

from __future__ import annotations

import importlib

from ..errors import TdslValueError

TARGETS = {"c": "tdsl.backends.c", "cuda": "tdsl.backends.cuda"}


def get(target: str):
    """The backend module for `target`."""
    if target not in TARGETS:
        raise TdslValueError(f"unknown target {target!r}; the targets are "
                             f"{', '.join(sorted(TARGETS))}")
    return importlib.import_module(TARGETS[target])
