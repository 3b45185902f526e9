"""Memory planning: the intermediates of a network (tensors one kernel writes and later
kernels read) placed in one arena, sharing bytes where their lifetimes do not overlap.

A tensor lives from the kernel that writes it to the last kernel that reads it. Placing
is greedy by size (TensorFlow Lite's arena planner): the largest tensor first, each at
the lowest 64-byte aligned offset where it overlaps no placed tensor that is alive at the
same time. The arena's size is the peak; the sum of the intermediates is what one buffer
each would take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALIGN = 64


@dataclass(frozen=True)
class Slot:
    """Where one intermediate lives: bytes [offset, offset + nbytes) of the arena, from
    kernel `first` (which writes it) to kernel `last` (its last reader)."""

    name: str
    nbytes: int
    offset: int
    first: int
    last: int


@dataclass(frozen=True)
class MemoryPlan:
    slots: tuple[Slot, ...]
    peak: int                        # the arena's bytes
    total: int                       # bytes with one buffer per intermediate

    def offset(self, name: str) -> int:
        return next(s.offset for s in self.slots if s.name == name)

    def __str__(self) -> str:
        lines = [f"memory plan: {len(self.slots)} intermediates in one arena of "
                 f"{_bytes(self.peak)} (one buffer each: {_bytes(self.total)})"]
        for s in sorted(self.slots, key=lambda s: (s.first, s.offset)):
            lines.append(f"  {s.name:<24} {_bytes(s.nbytes):>10} at {s.offset:>10,}  "
                         f"kernels {s.first}..{s.last}")
        return "\n".join(lines)


def plan_memory(intermediates: list[tuple[str, int, int, int]]) -> MemoryPlan:
    """Arena offsets for (name, nbytes, first kernel, last kernel) records.

    >>> plan_memory([("a", 400, 0, 1), ("b", 400, 1, 2), ("c", 400, 2, 3)]).peak
    848
    """
    placed: list[Slot] = []
    for name, nbytes, first, last in sorted(intermediates, key=lambda r: (-r[1], r[2], r[0])):
        live = sorted((s for s in placed if s.first <= last and first <= s.last),
                      key=lambda s: s.offset)
        offset = 0
        for s in live:
            if offset + nbytes <= s.offset:
                break
            offset = max(offset, _align(s.offset + s.nbytes))
        placed.append(Slot(name, nbytes, offset, first, last))
    peak = max((s.offset + s.nbytes for s in placed), default=0)
    total = sum(_align(s.nbytes) for s in placed)
    return MemoryPlan(tuple(sorted(placed, key=lambda s: (s.first, s.name))), peak, total)


def nbytes(shape, dtype: str) -> int:
    return int(np.prod([int(d) for d in shape], dtype=np.int64)) * np.dtype(dtype).itemsize


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
