"""What td.grad refuses, with its messages, and the edge cases it accepts: an input the
output does not depend on (zeros), a recurrence off the path, a tensor as its own input."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td

from .common import Adjoints, random

N = td.var("n")


def _vector(name="X", dtype="float64"):
    return td.placeholder((N,), dtype, name=name)


def _total(Y, name="loss"):
    k = td.reduce_axis(Y.shape[0], name="k")
    return td.compute((), lambda: td.sum(Y[k], axis=k), name=name)


def test_integer_input_is_refused():
    X, I = _vector(), _vector("I", "int32")
    loss = _total(td.compute((N,), lambda i: X[i] * I[i], name="Y"))
    with pytest.raises(td.TdslTypeError, match=r"I is int32; gradients exist for floating"):
        td.grad(loss, [X, I])


def test_integer_output_is_refused():
    I = _vector("I", "int32")
    with pytest.raises(td.TdslTypeError, match=r"loss is int32"):
        td.grad(_total(I), [I])


def test_recurrence_on_the_path_is_refused():
    X = _vector()
    r = td.reduce_axis((1, N), name="r")
    Y = td.compute((N,), lambda i: X[i], name="Y")
    Y = td.update(Y, lambda: (r,), lambda: Y[r - 1] + X[r], name="prefix")
    with pytest.raises(td.TdslError, match=r"prefix is a recurrence \(td\.update of Y\).*"
                                           r"not differentiable"):
        td.grad(_total(Y), [X])


def test_recurrence_off_the_path_is_accepted():
    """A prefix sum of an integer tensor, used as a factor: no adjoint reaches it."""
    X, I = _vector(), _vector("I", "int64")
    r = td.reduce_axis((1, N), name="r")
    C = td.compute((N,), lambda i: I[i], name="C")
    C = td.update(C, lambda: (r,), lambda: C[r - 1] + I[r], name="counts")
    loss = _total(td.compute((N,), lambda i: X[i] * X[i] * td.cast(C[i], "float64"), name="Y"))
    x, i = random(6, 1), np.arange(6, dtype="int64")
    (dx,), _ = Adjoints(loss, [X], [X, I]).run({X: x, I: i})
    np.testing.assert_allclose(dx, 2 * x * np.cumsum(i), rtol=1e-12)


def test_custom_reducer_is_refused():
    X = _vector()
    product = td.comm_reducer(lambda a, b: a * b, 1.0, name="product")
    k = td.reduce_axis(N, name="k")
    P = td.compute((), lambda: product(X[k], axis=k), name="P")
    with pytest.raises(td.TdslError, match=r"P reduces with the custom reducer 'product'"):
        td.grad(P, [X])


def test_triangular_reduction_is_refused():
    X = _vector()

    def prefix(i):
        r = td.reduce_axis((0, i + 1), name="r")
        return td.sum(X[r], axis=r)

    S = td.compute((N,), prefix, name="S")
    with pytest.raises(td.TdslError, match=r"reduction axis r of S has a range that depends "
                                           r"on another axis"):
        td.grad(_total(S), [X])


def test_head_is_required_for_a_tensor_and_shaped_like_it():
    X = _vector()
    Y = td.compute((N,), lambda i: X[i] * 2, name="Y")
    with pytest.raises(td.TdslValueError, match=r"Y has shape \(n,\), not a scalar.*head="):
        td.grad(Y, [X])
    with pytest.raises(td.TdslValueError, match=r"the head H has shape \(3,\); it must have "
                                                r"the shape of the output Y, \(n,\)"):
        td.grad(Y, [X], head=td.placeholder((3,), "float64", name="H"))
    with pytest.raises(td.TdslTypeError, match=r"inputs must be a tensor or a list"):
        td.grad(Y, {X}, head=td.placeholder((N,), "float64", name="H"))
    with pytest.raises(td.TdslTypeError, match=r"each input must be a tdsl tensor"):
        td.grad(Y, [X, np.zeros(3)], head=td.placeholder((N,), "float64", name="H"))


def test_unrelated_input_gets_zeros_and_output_its_head():
    X, Z = _vector(), _vector("Z")
    Y = td.compute((N,), lambda i: td.exp(X[i]), name="Y")
    x, head = random(5, 1), random(5, 3)
    # Z is not an argument: no adjoint reads it (td.build refuses unused placeholders).
    (dx, dz, dy), _ = Adjoints(Y, [X, Z, Y], [X]).run({X: x}, head=head)
    np.testing.assert_allclose(dx, head * np.exp(x), rtol=1e-12)
    np.testing.assert_array_equal(dz, np.zeros(5))
    np.testing.assert_array_equal(dy, head)


def test_single_tensor_input_gives_one_tensor():
    X = _vector()
    dX = td.grad(_total(td.compute((N,), lambda i: X[i] * X[i], name="Y")), X)
    assert isinstance(dX, td.Tensor) and dX.name == "X_grad"
