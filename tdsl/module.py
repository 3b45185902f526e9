"""`Module`: a compiled kernel callable on NumPy arrays, checked at the boundary.

Every call checks the argument count, dtypes, ranks, contiguity and shapes
(binding symbolic sizes from the first array that uses them) before anything
reaches compiled code, so a wrong argument raises a clear error and never
crashes the process; a right call afterwards works as before.
"""

from __future__ import annotations

import statistics
import time as _time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import TdslIndexError, TdslMemoryError, TdslTypeError, TdslValueError
from .lang.shapes import bind_sizes, check_arrays
from .lang.tensor import PlaceholderOp

ERROR_CODES = {
    1: (TdslMemoryError, "the kernel could not allocate memory for its intermediate buffers"),
    2: (TdslIndexError, "an index computed from data (a gather such as A[idx[i]]) was out of "
                        "bounds; the outputs are incomplete"),
}


@dataclass(frozen=True)
class Timing:
    """Seconds per kernel call: the median and minimum of `times` (one per repeat)."""

    median: float
    min: float
    times: tuple[float, ...]

    def __str__(self) -> str:
        return f"median {self.median * 1e3:.3f} ms, min {self.min * 1e3:.3f} ms " \
               f"({len(self.times)} repeats)"


class Module:
    """A built kernel. Call it with one array per argument of `td.build`; outputs are
    written in place.

    >>> mod = td.build(s, [A, B, C])
    >>> mod(a, b, c)
    """

    def __init__(self, lowered, source: str, prepare: Callable, target: str,
                 compile_seconds: float = 0.0, extra: dict | None = None):
        self.lowered = lowered
        self.source = source
        self.target = target
        self.compile_seconds = compile_seconds
        self._prepare = prepare
        self.args = lowered.args
        self.outputs = tuple(t for t in lowered.args if not isinstance(t.op, PlaceholderOp))
        for key, value in (extra or {}).items():
            setattr(self, key, value)

    @property
    def kernel(self):
        return self.lowered.kernel

    def _bind(self, arrays) -> Callable[[], int]:
        if len(arrays) != len(self.args):
            names = ", ".join(t.name for t in self.args)
            raise TdslTypeError(f"the kernel takes {len(self.args)} arrays ({names}); got "
                                f"{len(arrays)}")
        checked = check_arrays(self.args, arrays, outputs=self.outputs)
        sizes = bind_sizes(self.args, checked)
        self._check_aliasing(checked)
        values = [sizes[v] for v in self.lowered.sizes]
        return self._prepare(checked, values)

    def _check_aliasing(self, arrays) -> None:
        for k, (t, a) in enumerate(zip(self.args, arrays)):
            if t not in self.outputs:
                continue
            for j, (other_t, other) in enumerate(zip(self.args, arrays)):
                if j != k and np.may_share_memory(a, other):
                    raise TdslValueError(f"argument {t.name} (an output) shares memory with "
                                         f"{other_t.name}; pass separate arrays")

    def __call__(self, *arrays) -> None:
        run = self._bind(arrays)
        _raise_for(run())

    def bind(self, *arrays) -> Callable[[], None]:
        """A zero-argument callable running the kernel on these arrays, checked once now
        (for timing loops and benchmarks; the arrays must not change shape or dtype)."""
        run = self._bind(arrays)

        def call() -> None:
            _raise_for(run())
        return call

    def time(self, *arrays, repeat: int = 5, number: int = 1) -> Timing:
        """Seconds per call of the kernel alone (arguments checked once, outside timing)."""
        run = self._bind(arrays)
        _raise_for(run())                 # warm-up, and errors surface here
        times = []
        for _ in range(repeat):
            start = _time.perf_counter()
            for _ in range(number):
                run()
            times.append((_time.perf_counter() - start) / number)
        return Timing(statistics.median(times), min(times), tuple(times))

    def __repr__(self) -> str:
        return f"<Module {self.lowered.name} ({self.target}): " \
               f"{', '.join(t.name for t in self.args)}>"


def _raise_for(code: int) -> None:
    if code:
        cls, message = ERROR_CODES.get(code, (TdslValueError, f"the kernel failed ({code})"))
        raise cls(message)
