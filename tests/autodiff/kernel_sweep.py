"""The kernels of tests/test_kernels.py, captured for the finite-difference sweep.

Each test there defines its kernel inline and hands it to `run(outputs, args, sizes,
inputs=...)`. To reuse those definitions without copying them, `capture()` calls every
test function (each variant of its parameters, at the first and the last of its sizes)
with `run` replaced by a recorder that stops the test there, and with `td.placeholder`
making float64 inputs (central differences need float64). Nothing is built or run
while capturing; a test that builds on its own (`td.build`, a subprocess) is stopped at
that call and listed as not captured.

A captured kernel is differentiable when it has a float input, a float output and no
recurrence nor custom reducer (td.grad says which); `sweep_cases()` returns those, and
the others with the reason they are skipped.
"""

from __future__ import annotations

import inspect
import itertools
from contextlib import ExitStack
from dataclasses import dataclass, field
from unittest import mock

import numpy as np

import tdsl as td
from tdsl.errors import TdslError
from tdsl.lang import dtypes
from tdsl.lang.graph import topo_order
from tdsl.lang.tensor import ComputeOp, PlaceholderOp, UpdateOp

from .. import test_kernels

# At most this many sizes per test and variant: the first and the last of the test's list
# (the smallest and the largest, ragged ones in tests/test_kernels.py).
PER_TEST = 2
# The parameter names tests/test_kernels.py gives sizes.
SIZE_PARAMS = {"n", "m", "nm", "nlm", "dims", "hw"}


class _Stop(Exception):
    """Raised by the recorder: the kernel is captured, the rest of the test is not run."""


@dataclass
class Kernel:
    """One kernel as a test of tests/test_kernels.py defines it (inputs made float64)."""
    test: str                       # test function [parametrization]
    outputs: list
    args: list
    sizes: dict
    inputs: dict = field(default_factory=dict)

    @property
    def placeholders(self) -> list:
        return [t for t in self.args if isinstance(t.op, PlaceholderOp)]


def _float64_placeholder(real):
    def placeholder(shape, dtype="float32", name=None):
        return real(shape, "float64" if dtypes.is_float(dtype) else dtype, name)
    return placeholder


def _refuse(*args, **kwargs):
    raise _Stop("builds on its own")


def _call(fn, kwargs: dict) -> Kernel | str:
    """Run one test function with the recorder; the Kernel, or why none was captured."""
    captured = []

    def recorder(outputs, args, sizes, inputs=None, seed=0):
        outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        captured.append(Kernel("", outs, list(args), dict(sizes), dict(inputs or {})))
        raise _Stop("captured")

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(test_kernels, "run", recorder))
        stack.enter_context(mock.patch.object(td, "placeholder",
                                              _float64_placeholder(td.placeholder)))
        for name in ("build", "lower"):
            stack.enter_context(mock.patch.object(td, name, _refuse))
        stack.enter_context(mock.patch.object(test_kernels, "_int_min_by_minus_one", _refuse))
        try:
            fn(**kwargs)
        except _Stop:
            pass
        except Exception as e:             # e.g. a dtype assertion that float64 changed
            return f"not captured: {type(e).__name__} before run()"
    return captured[0] if captured else "not captured: builds or runs on its own"


def _parametrizations(fn) -> list[tuple[str, dict]]:
    """(id, kwargs) for each combination of the test's parametrize marks."""
    marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
    axes = []
    for m in marks:
        names = [n.strip() for n in m.args[0].split(",")] if isinstance(m.args[0], str) \
            else list(m.args[0])
        ids = m.kwargs.get("ids")
        values = []
        for k, v in enumerate(m.args[1]):
            label = ids[k] if isinstance(ids, (list, tuple)) else None
            if hasattr(v, "values") and hasattr(v, "marks"):     # pytest.param(...)
                label, vals = v.id or label, tuple(v.values)
            else:
                vals = (v,) if len(names) == 1 else tuple(v)
            values.append((label or "-".join(map(str, vals)), dict(zip(names, vals))))
        axes.append(values)
    if not axes:
        return [("", {})]
    return [("-".join(label for label, _ in combo),
             {k: x for _, kw in combo for k, x in kw.items()})
            for combo in itertools.product(*axes)]


def capture() -> tuple[list[Kernel], dict[str, str]]:
    """Every kernel of tests/test_kernels.py, and {test: reason} for the tests whose kernel
    could not be captured. Per test and variant (its parameters that are not sizes; float
    dtypes count as one, all being float64 here), the first and the last of its sizes."""
    kernels, missed = [], {}
    for name, fn in inspect.getmembers(test_kernels, inspect.isfunction):
        if not name.startswith("test_") or fn.__module__ != test_kernels.__name__:
            continue
        variants: dict[tuple, dict[str, list]] = {}
        for label, kwargs in _parametrizations(fn):
            variant = tuple((k, "float" if _is_float_name(v) else repr(v))
                            for k, v in kwargs.items() if k not in SIZE_PARAMS)
            size = repr(sorted((k, v) for k, v in kwargs.items() if k in SIZE_PARAMS))
            variants.setdefault(variant, {}).setdefault(size, []).append((label, kwargs))
        for by_size in variants.values():
            sizes = list(by_size)
            for size in sizes if len(sizes) <= PER_TEST else [sizes[0], sizes[-1]]:
                why = ""
                for label, kwargs in by_size[size]:     # float16/32/64: the first that works
                    test = f"{name}[{label}]" if label else name
                    got = _call(fn, kwargs)
                    if not isinstance(got, str):
                        got.test = test
                        kernels.append(got)
                        break
                    why = why or got
                else:
                    missed[test] = why
    return kernels, missed


def _is_float_name(v) -> bool:
    return isinstance(v, str) and v.startswith("float")


def why_not_differentiable(k: Kernel) -> str | None:
    """None if td.grad applies to the kernel in float64; else the reason it is skipped."""
    outs = [o for o in k.outputs if dtypes.is_float(o.dtype)]
    wrt = [t for t in k.placeholders if dtypes.is_float(t.dtype)]
    if not outs:
        return "no float output (integer or bool results)"
    if not wrt:
        return "no float input"
    order = topo_order(outs)
    if any(isinstance(op, UpdateOp) for op in order):
        return "a recurrence (td.update) on the path"
    narrow = [op.name for op in order if isinstance(op, ComputeOp) and
              dtypes.is_float(op.output(0).dtype) and op.output(0).dtype != "float64"]
    if narrow:
        return f"computes {', '.join(narrow)} in a narrower float type (an explicit cast)"
    try:
        td.grad(outs[0], wrt, head=td.placeholder(outs[0].shape, outs[0].dtype, "head")
                if outs[0].ndim else None)
    except TdslError as e:
        return f"td.grad refuses it: {str(e).split(';')[0]}"
    return None


def sweep_cases():
    """(differentiable kernels, {test: why skipped})."""
    kernels, skipped = capture()
    cases = []
    for k in kernels:
        reason = why_not_differentiable(k)
        if reason is None:
            cases.append(k)
        else:
            skipped[k.test] = reason
    return cases, skipped


def feeds_for(k: Kernel, seed: int) -> dict:
    """Inputs at the test's sizes: the test's own integer inputs (indices), else small
    integers; fresh floats away from kinks and jumps: in the test's range (else [-1, 1])
    shrunk by 5% at each end, and at least 5% of the range away from 0 (abs, floor)."""
    from tdsl.lang.reference import evaluate_scalar
    rng = np.random.default_rng(seed)
    feeds = {}
    for t in k.placeholders:
        shape = tuple(int(evaluate_scalar(d, k.sizes)) for d in t.shape)
        given = k.inputs.get(t)
        if given is not None and not dtypes.is_float(t.dtype):
            feeds[t] = np.asarray(given)
        elif not dtypes.is_float(t.dtype):
            # Small: a term like power(I, 3) at I = -47 adds 1e5 to the output, and its
            # rounding drowns the differences of the float part.
            feeds[t] = rng.integers(-3, 4, shape).astype(t.dtype) if dtypes.is_int(t.dtype) \
                else rng.random(shape) < 0.5
        else:
            lo, hi = (float(np.min(given)), float(np.max(given))) if given is not None \
                and np.size(given) else (-1.0, 1.0)
            lo, hi = lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo)
            x = rng.uniform(lo, hi, shape)
            gap = 0.05 * (hi - lo)
            if lo < 0 < hi:                     # keep |x| >= 5% of the range
                x = np.where(np.abs(x) < gap, gap * np.where(x < 0, -1.0, 1.0), x)
            feeds[t] = x
    return feeds
