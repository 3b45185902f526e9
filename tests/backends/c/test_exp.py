"""The float32 exp tdsl emits (a polynomial, so that it vectorizes) is within 2 ulp of
the correctly rounded exp, in the vector lanes and in the scalar remainder alike."""

import numpy as np
import pytest

import tdsl as td


def _ulp_error(got: np.ndarray, x: np.ndarray) -> np.ndarray:
    exact = np.exp(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / ulp


@pytest.mark.parametrize("vectorized", [True, False], ids=["vector", "scalar"])
def test_exp_is_within_two_ulp(vectorized):
    n = td.var("n")
    X = td.placeholder((n,), name="X")
    Y = td.compute((n,), lambda i: td.exp(X[i]), name="Y")
    s = td.create_schedule(Y)
    if vectorized:
        io, ii = s[Y].split(Y.op.axis[0], factor=16)
        s[Y].vectorize(ii)
    mod = td.build(s, [X, Y])
    body = mod.source[mod.source.index("int kernel("):]
    assert ("tdsl_vexpf" in body) == vectorized
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-87, 88, 200_000), rng.uniform(-1, 1, 100_000),
                        np.linspace(-10, 10, 20_003)]).astype(np.float32)
    y = np.empty_like(x)
    mod(x, y)
    assert _ulp_error(y, x).max() <= 2.0


def test_exp_limits():
    n = td.var("n")
    X = td.placeholder((n,), name="X")
    Y = td.compute((n,), lambda i: td.exp(X[i]), name="Y")
    mod = td.build(td.create_schedule(Y), [X, Y])
    x = np.array([-200.0, -88.0, 0.0, 89.0, np.inf, -np.inf], np.float32)
    y = np.empty_like(x)
    mod(x, y)
    assert y[0] == 0 and y[1] < 1e-37 and y[2] == 1 and np.isinf(y[3]) and np.isinf(y[4])
    assert y[5] == 0
