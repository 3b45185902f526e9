"""Unique names: the one rule every part of tdsl uses to keep identifiers apart."""

from __future__ import annotations


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name_1`, `name_2`, ... : the first not in `taken`, which it joins."""
    candidate, k = name, 1
    while candidate in taken:
        candidate = f"{name}_{k}"
        k += 1
    taken.add(candidate)
    return candidate
