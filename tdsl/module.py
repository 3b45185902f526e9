"""`tdsl.module` moved to `tdsl.runtime`; this name stays for code that imports it."""

from .runtime.module import ERROR_CODES, Module, Timing  # noqa: F401
