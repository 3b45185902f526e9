"""The gradient check of the td.grad tests: build the adjoints, run them, and compare with
central finite differences of the forward computation evaluated by td.reference (NumPy),
in float64.

For a non-scalar output Y the checked function is f = sum(head * Y) with a random head
(a placeholder passed as `head=`); for a scalar output, f = Y. Each input is checked on up
to `COORDINATES` single coordinates (all of them for small inputs) and on `DIRECTIONS`
random directions (the directional derivative against sum(grad * v)).
"""

from __future__ import annotations

import numpy as np

import tdsl as td
from tdsl.lang.reference import evaluate_scalar

EPS = 1e-5                   # central differences: O(EPS^2) truncation, O(1e-16 / EPS) noise
RTOL = 1e-6
COORDINATES = 24
DIRECTIONS = 3


def random(shape, seed: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, shape)


def adjoints(output, inputs, feeds: dict, *, auto: bool = False, sizes: dict | None = None,
             seed: int = 0, head_feed: np.ndarray | None = None):
    """Build td.grad(output, inputs) (default schedule or td.auto_schedule), run it on
    `feeds`; returns (gradient arrays, the head array or None, the kernel's arguments)."""
    head = None
    if output.ndim:
        head = td.placeholder(output.shape, output.dtype, name="head")
    grads = td.grad(output, inputs, head=head)
    for g, t in zip(grads, inputs):
        assert g.dtype == t.dtype and g.ndim == t.ndim, (g, t)
        assert isinstance(g.op, (td.lang.ComputeOp, td.lang.UpdateOp)), g
    schedule = td.auto_schedule(grads) if auto else td.create_schedule(grads)
    placeholders = list(feeds) + ([head] if head is not None else [])
    module = td.build(schedule, placeholders + grads)
    sizes = dict(sizes or {})
    feeds = dict(feeds)
    if head is not None:
        shape = td.reference(output, feeds, sizes).shape
        head_feed = random(shape, seed + 99) if head_feed is None else head_feed
        feeds[head] = head_feed
    bound = _bound_sizes(placeholders, feeds, sizes)
    # NaN in the outputs: an element the kernel never writes shows.
    results = [np.full(tuple(int(evaluate_scalar(d, bound)) for d in g.shape), np.nan, g.dtype)
               for g in grads]
    module(*[feeds[t] for t in placeholders], *results)
    for got, want, g in zip(results, td.reference(grads, feeds, sizes), grads):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{g.name}: built kernel vs td.reference")
    return results, head_feed, placeholders


def gradcheck(output, inputs, feeds: dict, *, auto: bool = False, sizes: dict | None = None,
              seed: int = 0, rtol: float = RTOL) -> list[np.ndarray]:
    """Assert that td.grad's adjoints of `inputs` (placeholders in `feeds`) match central
    differences of the output; returns the adjoints."""
    grads, head, _ = adjoints(output, inputs, feeds, auto=auto, sizes=sizes, seed=seed)
    sizes = dict(sizes or {})

    def f(t, x) -> float:
        y = np.asarray(td.reference(output, {**feeds, t: np.asarray(x)}, sizes), np.float64)
        return float(np.sum(y * head)) if head is not None else float(y)

    rng = np.random.default_rng(seed + 7)
    for t, g in zip(inputs, grads):
        x = feeds[t]
        scale = 1.0 + float(np.max(np.abs(g))) if g.size else 1.0
        coords = range(x.size) if x.size <= COORDINATES else \
            rng.choice(x.size, COORDINATES, replace=False)
        for c in coords:
            step = np.zeros(x.size)
            step[c] = EPS
            step = step.reshape(x.shape)
            fd = (f(t, x + step) - f(t, x - step)) / (2 * EPS)
            _close(g.flat[c], fd, rtol, scale, f"d/d{t.name} at flat index {c}")
        for d in range(DIRECTIONS):
            v = rng.standard_normal(x.shape)
            fd = (f(t, x + EPS * v) - f(t, x - EPS * v)) / (2 * EPS)
            _close(float(np.sum(g * v)), fd, rtol, scale * np.sqrt(x.size),
                   f"d/d{t.name} along random direction {d}")
    return grads


def _close(got: float, fd: float, rtol: float, scale: float, what: str) -> None:
    """|got - fd| within rtol of fd, or of a hundredth of the gradient's scale near 0."""
    error = abs(got - fd)
    assert error <= rtol * max(abs(fd), 1e-2 * scale), \
        f"{what}: td.grad gives {got!r}, finite differences {fd!r} (error {error:.3g})"


def _bound_sizes(placeholders, feeds, sizes) -> dict:
    from tdsl.lang.shapes import bind_sizes
    return bind_sizes(placeholders, [np.asarray(feeds[t]) for t in placeholders], sizes)
