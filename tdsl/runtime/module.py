"""`Module`: a compiled kernel callable on NumPy arrays, checked at the boundary.

Every call checks the argument count, dtypes, ranks, contiguity, writability of outputs,
shapes (binding symbolic sizes from the first array that uses them) and that no output
shares memory with another argument, before anything reaches compiled code, so a wrong
argument raises a clear error and never crashes the process; a right call afterwards
works as before.

A C-backend Module calls its library's checked entry point through a plan (plan.py):
the shape checks run in C, the kernel runs without the GIL, and the Python checks of
`tdsl.lang.shapes` run only to word an error. Other backends hand in `prepare`, and
every call runs the Python checks.
"""

from __future__ import annotations

import statistics
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import TdslError, TdslIndexError, TdslMemoryError, TdslTypeError, TdslValueError
from ..lang.shapes import bind_sizes, check_arrays
from ..lang.tensor import PlaceholderOp
from . import library as _library
from .plan import make_plan

ERROR_CODES = {
    1: (TdslMemoryError, "the kernel could not allocate memory for its intermediate buffers"),
    2: (TdslIndexError, "an index computed from data (a gather such as A[idx[i]]) was out of "
                        "bounds; the outputs are incomplete"),
}                 # 3: arguments (worded by the Python checks); 4, 5: the entry's message
ERR_ARGUMENT = 3


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
    >>> mod(a, b, c, num_threads=1)     # this call's OpenMP team
    >>> mod.export("matmul.so")         # td.load("matmul.so") in another process
    """

    def __init__(self, lowered, source: str | None, prepare: Callable | None, target: str,
                 compile_seconds: float = 0.0, extra: dict | None = None, *,
                 library: "_library.Library | None" = None, entry: str | None = None,
                 pure_python: bool = False):
        self.lowered = lowered
        self.source = source
        self.target = target
        self.compile_seconds = compile_seconds
        self._prepare = prepare
        self.library = library
        self._threads = 0                       # 0: a share of TDSL_NUM_THREADS (plan.py)
        if library is not None:
            self.signature, address = library.entry(entry)
            self._plan = make_plan(address, self.signature.args, pure_python)
            self._run = self._plan.run
            if lowered is None:
                self.args, self.outputs = self.signature.tensors()
        if lowered is not None:
            self.args = tuple(lowered.args)
            self.outputs = tuple(t for t in lowered.args if not isinstance(t.op, PlaceholderOp))
        for key, value in (extra or {}).items():
            setattr(self, key, value)

    @property
    def kernel(self):
        if self.lowered is None:
            raise TdslError("this Module was loaded from a library: its loop nest is not part "
                            "of it (build it from the schedule to see the loops)")
        return self.lowered.kernel

    @property
    def num_threads(self) -> int | None:
        """OpenMP threads of every call of this Module; None (the default): a share of
        the budget `TDSL_NUM_THREADS` among the calls in flight."""
        return self._threads or None

    @num_threads.setter
    def num_threads(self, value: int | None) -> None:
        self._threads = 0 if value is None else _thread_count(value)

    # -- calls -------------------------------------------------------------------------

    def __call__(self, *arrays, num_threads: int | None = None) -> None:
        if self.library is None:
            run = self._bind(arrays)
            _raise_for(run())
            return
        threads = self._threads if num_threads is None else _thread_count(num_threads)
        result = self._run(arrays, threads)
        if result is not None:
            self._failed(arrays, threads, result)

    def _failed(self, arrays, threads: int, result) -> None:
        """Word the error of a refused call with the Python checks, or run the call once
        the checks have converted its arguments (DLPack)."""
        if result is False:
            checked, _ = self._check(arrays)
            result = self._run(tuple(checked), threads)
            if result is None:
                return
            if result is False:
                raise TdslValueError("the arguments passed the checks but the runtime refused "
                                     "them; please report this with their dtypes and shapes")
        code, message = result
        if code == ERR_ARGUMENT:
            self._check(arrays)                  # raises the same error as ever
            raise TdslValueError(message)
        cls, text = ERROR_CODES.get(code, (TdslError, message))
        raise cls(text)

    def _check(self, arrays) -> tuple[list[np.ndarray], dict]:
        if len(arrays) != len(self.args):
            names = ", ".join(t.name for t in self.args)
            raise TdslTypeError(f"the kernel takes {len(self.args)} arrays ({names}); got "
                                f"{len(arrays)}")
        checked = check_arrays(self.args, arrays, outputs=self.outputs)
        for t, a in zip(self.args, checked):
            if not a.dtype.isnative:
                raise TdslTypeError(f"argument {t.name} has non-native byte order "
                                    f"({a.dtype.str}); convert it with "
                                    f"a.astype('{a.dtype.newbyteorder('=').str}')")
        sizes = bind_sizes(self.args, checked)
        self._check_aliasing(checked)
        return checked, sizes

    def _bind(self, arrays) -> Callable[[], int]:
        checked, sizes = self._check(arrays)
        if self.library is not None:
            frozen = tuple(checked)
            threads = self._threads
            plan = self._run

            def run() -> int:
                result = plan(frozen, threads)
                if result is None:
                    return 0
                if result is False:
                    raise TdslValueError("the arrays changed since they were bound")
                return result[0]
            return run
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

    # -- export ------------------------------------------------------------------------

    def export(self, path) -> Path:
        """Write the kernel as one shared library at `path` (with its manifest: argument
        names, dtypes, shapes and sizes) and a C header beside it (`path` with `.h`).
        `td.load(path)` gives back a Module with the same call and the same checks, in a
        process without isl or a compiler; C programs include the header and link the
        library. Returns the header's path."""
        if self.library is None:
            raise TdslError(f"only C-target Modules can be exported (this one is "
                            f"{self.target!r})")
        path = Path(path)
        _library.export(self.library.path, path)
        header = path.with_suffix(".h")
        header.write_text(_library.header(self.library.signatures, path.name))
        return header

    def __repr__(self) -> str:
        name = self.lowered.name if self.lowered is not None else self.signature.name
        return f"<Module {name} ({self.target}): {', '.join(t.name for t in self.args)}>"


def _thread_count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TdslValueError(f"num_threads must be a positive integer (or None for a share of "
                             f"TDSL_NUM_THREADS); got {value!r}")
    return value


def _raise_for(code: int) -> None:
    if code:
        cls, message = ERROR_CODES.get(code, (TdslValueError, f"the kernel failed ({code})"))
        raise cls(message)


def load(path, entry: str | None = None) -> Module:
    """The Module exported to `path` by `Module.export`: same call, same checks, same
    errors. Imports no isl and runs no compiler.

    >>> mod = td.load("matmul.so")
    >>> mod(a, b, c)
    """
    path = Path(path)
    _library.check_file(path)
    library = _library.Library(path, "the exported library")
    if "network" in library.manifest:            # a compiled network (tdsl/graph)
        from .network import NetworkModule
        return NetworkModule(None, None, None, "c", library=library, entry=entry,
                             extra={"library_path": path})
    return Module(None, None, None, "c", library=library, entry=entry,
                  extra={"library_path": path})
