"""The gradient check of the td.grad tests: build the adjoints with the default schedule and
with td.auto_schedule, run both, compare them with td.reference of the adjoint graph, and
compare that with central finite differences of the forward computation (td.reference,
NumPy), in float64.

For a non-scalar output Y the checked function is f = sum(head * Y) with a random head
(a placeholder passed as `head=`); for a scalar output, f = Y. Each input is checked on up
to `COORDINATES` single coordinates (all of them for small inputs) and on `DIRECTIONS`
random directions (the directional derivative against sum(grad * v)).
"""

from __future__ import annotations

import numpy as np

import tdsl as td
from tdsl.lang.graph import topo_order
from tdsl.lang.reference import evaluate_scalar
from tdsl.lang.shapes import bind_sizes

EPS = 1e-5                   # central differences: O(EPS^2) truncation, O(1e-16 / EPS) noise
RTOL = 1e-6
COORDINATES = 12
DIRECTIONS = 2
BOTH = ("default", "auto")


def random(shape, seed: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, shape)


class Adjoints:
    """td.grad(output, inputs) built once per schedule kind; `run` checks every build
    against td.reference of the adjoint graph and returns td.reference's adjoints."""

    def __init__(self, output, inputs, placeholders, schedules=BOTH):
        self.output, self.inputs = output, list(inputs)
        self.head = td.placeholder(output.shape, output.dtype, name="head") \
            if output.ndim else None
        self.grads = td.grad(output, self.inputs, head=self.head)
        for g, t in zip(self.grads, self.inputs):
            assert g.dtype == t.dtype and g.ndim == t.ndim, (g, t)
            assert isinstance(g.op, (td.lang.ComputeOp, td.lang.UpdateOp)), g
        # Only the placeholders the adjoints read: td.build refuses the others (the input of
        # a linear function, say), so a caller of td.grad passes exactly these.
        used = {id(op) for op in topo_order(self.grads)}
        self.args = [t for t in [*placeholders, self.head] if t is not None and id(t.op) in used]
        self.modules = {}
        for kind in schedules:
            s = td.auto_schedule(self.grads) if kind == "auto" else \
                td.create_schedule(self.grads)
            self.modules[kind] = td.build(s, self.args + self.grads)

    def run(self, feeds: dict, sizes: dict | None = None, seed: int = 0,
            head: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray | None]:
        sizes = dict(sizes or {})
        feeds = dict(feeds)
        if self.head is not None:
            shape = td.reference(self.output, feeds, sizes).shape
            feeds[self.head] = random(shape, seed + 99) if head is None else head
        bound = bind_sizes(self.args, [np.asarray(feeds[t]) for t in self.args], sizes)
        want = td.reference(self.grads, feeds, sizes)
        for kind, module in self.modules.items():
            # NaN in the outputs: an element the kernel never writes shows.
            got = [np.full(tuple(int(evaluate_scalar(d, bound)) for d in g.shape), np.nan,
                           g.dtype) for g in self.grads]
            module(*[feeds[t] for t in self.args], *got)
            for a, b, g in zip(got, want, self.grads):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12,
                                           err_msg=f"{g.name}: {kind} build vs td.reference")
        return want, feeds.get(self.head) if self.head is not None else None


def gradcheck(output, inputs, feeds: dict, *, sizes: dict | None = None, seed: int = 0,
              schedules=BOTH, more=()) -> list[np.ndarray]:
    """Assert that td.grad's adjoints of `inputs` (placeholders in `feeds`), built with each
    schedule kind, match central differences of the output; `more` holds further feeds
    (other sizes) to check the same kernels on. Returns the adjoints of the first feeds."""
    adjoints = Adjoints(output, inputs, list(feeds), schedules)
    first = None
    for n, case in enumerate([feeds, *more]):
        grads = _check_case(adjoints, case, sizes, seed + n)
        first = grads if first is None else first
    return first


def _check_case(adjoints: Adjoints, feeds: dict, sizes, seed: int) -> list[np.ndarray]:
    grads, head = adjoints.run(feeds, sizes, seed)
    sizes = dict(sizes or {})
    output = adjoints.output

    def f(t, x) -> float:
        y = np.asarray(td.reference(output, {**feeds, t: np.asarray(x)}, sizes), np.float64)
        return float(np.sum(y * head)) if head is not None else float(y)

    rng = np.random.default_rng(seed + 7)
    for t, g in zip(adjoints.inputs, grads):
        x = feeds[t]
        scale = 1.0 + float(np.max(np.abs(g))) if g.size else 1.0
        coords = range(x.size) if x.size <= COORDINATES else \
            rng.choice(x.size, COORDINATES, replace=False)
        for c in coords:
            step = np.zeros(x.size)
            step[c] = EPS
            step = step.reshape(x.shape)
            fd = (f(t, x + step) - f(t, x - step)) / (2 * EPS)
            _close(g.flat[c], fd, scale, f"d/d{t.name} at flat index {c}")
        for d in range(DIRECTIONS):
            v = rng.standard_normal(x.shape)
            fd = (f(t, x + EPS * v) - f(t, x - EPS * v)) / (2 * EPS)
            _close(float(np.sum(g * v)), fd, scale * np.sqrt(x.size),
                   f"d/d{t.name} along random direction {d}")
    return grads


def _close(got: float, fd: float, scale: float, what: str) -> None:
    """|got - fd| within RTOL of fd, or of a hundredth of the gradient's scale near 0."""
    error = abs(got - fd)
    assert error <= RTOL * max(abs(fd), 1e-2 * scale), \
        f"{what}: td.grad gives {got!r}, finite differences {fd!r} (error {error:.3g})"
