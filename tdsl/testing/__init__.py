"""Testing helpers for users and courses: random inputs, schedule equivalence, grading.

`assert_equivalent(s, args, sizes={n: 37})` builds the schedule, runs it on
random inputs at the given sizes and compares it with the unscheduled build and
with `td.reference` (NumPy). `grade(make, ...)` (grade.py) is the one call a course
grades with: legality, correctness at ragged sizes, and counts, with points and a
message per check.
"""

from __future__ import annotations

import numpy as np

from ..build import build
from ..lang import dtypes
from ..lang.expr import Var
from ..lang.graph import as_tensor_list
from ..lang.reference import evaluate_scalar, reference
from ..lang.tensor import PlaceholderOp, Tensor
from ..schedule import create_schedule


def random_array(t: Tensor, sizes: dict, rng: np.random.Generator) -> np.ndarray:
    """Random values for a placeholder: floats in [-1, 1), small integers, random bools."""
    shape = tuple(int(evaluate_scalar(d, sizes)) for d in t.shape)
    if dtypes.is_float(t.dtype):
        return rng.uniform(-1, 1, shape).astype(t.dtype)
    if dtypes.is_bool(t.dtype):
        return rng.random(shape) < 0.5
    info = np.iinfo(t.dtype)
    return rng.integers(max(info.min, -50), min(info.max, 50), shape, endpoint=True).astype(t.dtype)


def tolerance(dtype: str) -> tuple[float, float]:
    """(rtol, atol) for comparing results of `dtype` computed in different orders."""
    return {"float16": (2e-2, 2e-2), "float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)}.get(
        dtype, (0.0, 0.0))


def run(module, args, sizes: dict, inputs: dict) -> list[np.ndarray]:
    """Call `module` with `inputs` for its placeholders and fresh outputs; return outputs."""
    arrays, outputs = [], []
    for t in args:
        if isinstance(t.op, PlaceholderOp):
            arrays.append(inputs[t])
        else:
            shape = tuple(int(evaluate_scalar(d, sizes)) for d in t.shape)
            out = np.full(shape, 7, dtype=t.dtype) if t.dtype != "bool" else \
                np.zeros(shape, dtype=bool)
            arrays.append(out)
            outputs.append(out)
    module(*arrays)
    return outputs


def assert_equivalent(schedule, args, sizes: dict | None = None, seed: int = 0,
                      inputs: dict | None = None) -> None:
    """Assert that `schedule` computes what its algorithm means, at the given sizes.

    Compares the scheduled kernel with the unscheduled one and with td.reference,
    on random inputs (or `inputs`). Raises AssertionError with the worst element.

    >>> td.testing.assert_equivalent(s, [A, B, C], sizes={n: 37, m: 20, l: 9})
    """
    args = as_tensor_list(args, "args")
    sizes = {k: int(v) for k, v in (sizes or {}).items()}
    for k in sizes:
        if not isinstance(k, Var):
            raise TypeError(f"sizes are keyed by td.var objects; got {k!r}")
    rng = np.random.default_rng(seed)
    feeds = dict(inputs or {})
    for t in args:
        if isinstance(t.op, PlaceholderOp) and t not in feeds:
            feeds[t] = random_array(t, sizes, rng)
    outputs = [t for t in args if not isinstance(t.op, PlaceholderOp)]
    expected = reference(outputs, feeds, sizes)
    plain = run(build(create_schedule(schedule.outputs), args), args, sizes, feeds)
    scheduled = run(build(schedule, args), args, sizes, feeds)
    for t, want, base, got in zip(outputs, expected, plain, scheduled):
        _compare(f"{t.name} (unscheduled build vs td.reference)", base, want, t.dtype)
        _compare(f"{t.name} (scheduled build vs td.reference)", got, want, t.dtype)


def _compare(what: str, got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    rtol, atol = tolerance(dtype)
    if dtypes.is_float(dtype):
        ok = np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    else:
        ok = np.array_equal(got, want)
    if not ok:
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        worst = np.unravel_index(np.nanargmax(diff), diff.shape) if diff.size else ()
        raise AssertionError(f"{what}: mismatch at {worst}: got {got[worst]}, expected "
                             f"{want[worst]} (max abs error {np.nanmax(diff):.3g})")


from .grade import Check, Grade, grade  # noqa: E402  (grade uses the helpers above)
