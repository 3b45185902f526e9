"""`td.reference`: the NumPy-only evaluator, checked against NumPy written by hand.

It is the oracle of every differential test, so it is tested on its own here, with
no compiler involved.
"""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import TdslIndexError, TdslTypeError, TdslValueError

N, L, M = td.var("n"), td.var("l"), td.var("m")
RNG = np.random.default_rng(0)


def randf(*shape, dtype="float32"):
    return RNG.uniform(-1, 1, shape).astype(dtype)


@pytest.mark.parametrize("nlm", [(1, 1, 1), (4, 6, 3), (9, 2, 11)],
                         ids=lambda d: "x".join(map(str, d)))
def test_matmul(nlm):
    A = td.placeholder((N, L), name="A")
    B = td.placeholder((L, M), name="B")
    k = td.reduce_axis(L, name="k")
    C = td.compute((N, M), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    a, b = randf(nlm[0], nlm[1]), randf(nlm[1], nlm[2])
    c = td.reference(C, {A: a, B: b})
    assert isinstance(c, np.ndarray) and c.dtype == np.float32 and c.shape == (nlm[0], nlm[2])
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)


def test_softmax_list_of_outputs():
    X = td.placeholder((N, M), dtype="float64", name="X")
    k1, k2 = td.reduce_axis(M, name="k1"), td.reduce_axis(M, name="k2")
    mx = td.compute((N,), lambda i: td.max(X[i, k1], axis=k1), name="mx")
    e = td.compute((N, M), lambda i, j: td.exp(X[i, j] - mx[i]), name="e")
    s = td.compute((N,), lambda i: td.sum(e[i, k2], axis=k2), name="s")
    Y = td.compute((N, M), lambda i, j: e[i, j] / s[i], name="Y")
    x = randf(5, 7, dtype="float64") * 20
    y, m = td.reference([Y, mx], {X: x})
    z = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(y, z / z.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(m, x.max(1))


def test_integer_floordiv_mod_and_zero_divisor():
    A = td.placeholder((N,), dtype="int32", name="A")
    B = td.placeholder((N,), dtype="int32", name="B")
    Q = td.compute((N,), lambda i: A[i] // B[i], name="Q")
    R = td.compute((N,), lambda i: A[i] % B[i], name="R")
    a = np.array([7, -7, 7, -7, 5, -5, 0], "int32")
    b = np.array([2, 2, -2, -2, 0, 0, 3], "int32")
    q, r = td.reference([Q, R], {A: a, B: b})
    np.testing.assert_array_equal(q, [3, -4, -4, 3, 0, 0, 0])
    np.testing.assert_array_equal(r, [1, 1, -1, -1, 0, 0, 0])


def test_where_and_custom_reducer():
    product = td.comm_reducer(lambda x, y: x * y, 1, name="product")
    A = td.placeholder((N, M), dtype="int64", name="A")
    k = td.reduce_axis(M, name="k")
    P = td.compute((N,), lambda i: product(A[i, k], axis=k, where=A[i, k] > 0), name="P")
    S = td.compute((N,), lambda i: td.sum(A[i, k], axis=k, where=k >= i), name="S")
    a = RNG.integers(-3, 4, (4, 5)).astype("int64")
    p, s = td.reference([P, S], {A: a})
    np.testing.assert_array_equal(p, np.prod(np.where(a > 0, a, 1), axis=1))
    np.testing.assert_array_equal(s, [a[i, i:].sum() for i in range(4)])


def test_conv_with_padding_stage():
    X = td.placeholder((N, M), name="X")
    K = td.placeholder((3, 3), name="K")
    P = td.compute((N + 2, M + 2), lambda y, x: td.select(
        td.all(y >= 1, y <= N, x >= 1, x <= M), X[y - 1, x - 1], 0.0), name="P")
    ry, rx = td.reduce_axis(3, name="ry"), td.reduce_axis(3, name="rx")
    O = td.compute((N, M), lambda y, x: td.sum(P[y + ry, x + rx] * K[ry, rx], axis=[ry, rx]),
                   name="O")
    x, kern = randf(6, 5), randf(3, 3)
    o = td.reference(O, {X: x, K: kern})
    p = np.pad(x, 1)
    want = sum(p[dy:dy + 6, dx:dx + 5] * kern[dy, dx] for dy in range(3) for dx in range(3))
    np.testing.assert_allclose(o, want, rtol=1e-5, atol=1e-6)


def test_update_prefix_sum():
    X = td.placeholder((N,), dtype="int64", name="X")
    r = td.reduce_axis((1, N), name="r")
    Y0 = td.compute((N,), lambda i: X[i], name="Y")
    Y = td.update(Y0, lambda: (r,), lambda: Y0[r - 1] + X[r])
    x = RNG.integers(-9, 10, 12).astype("int64")
    np.testing.assert_array_equal(td.reference(Y, {X: x}), np.cumsum(x))


def test_input_is_not_modified_and_noncontiguous_input_is_accepted():
    A = td.placeholder((N, M), name="A")
    C = td.compute((N, M), lambda i, j: A[i, j] * 2, name="C")
    a = randf(4, 6)[:, ::2]                     # a strided view
    before = a.copy()
    np.testing.assert_array_equal(td.reference(C, {A: a}), before * 2)
    np.testing.assert_array_equal(a, before)


# ---------------------------------------------------------------------------------------
# Bounds
# ---------------------------------------------------------------------------------------

def test_out_of_bounds_read_raises_index_error():
    A = td.placeholder((N,), name="A")
    C = td.compute((N,), lambda i: A[i + 1], name="C")
    with pytest.raises(IndexError) as info:
        td.reference(C, {A: randf(5)})
    assert isinstance(info.value, TdslIndexError)
    message = str(info.value)
    assert "A is read at index 5" in message and "size 5" in message and "i + 1" in message


def test_negative_index_raises_instead_of_wrapping():
    A = td.placeholder((N,), name="A")
    C = td.compute((N,), lambda i: A[i - 1], name="C")
    with pytest.raises(TdslIndexError, match="index -1"):
        td.reference(C, {A: randf(5)})


def test_out_of_bounds_gather_raises():
    A = td.placeholder((N,), name="A")
    idx = td.placeholder((M,), dtype="int32", name="idx")
    G = td.compute((M,), lambda i: A[idx[i]], name="G")
    a = randf(4)
    np.testing.assert_array_equal(td.reference(G, {A: a, idx: np.array([3, 0, 2], "int32")}),
                                  a[[3, 0, 2]])
    with pytest.raises(TdslIndexError, match="A is read at index 4"):
        td.reference(G, {A: a, idx: np.array([0, 4, 1], "int32")})


def test_padded_select_does_not_raise():
    """select(i >= 1, A[i - 1], 0) reads A[-1] only on the branch it does not take."""
    A = td.placeholder((N,), name="A")
    P = td.compute((N + 2,), lambda i: td.select(td.all(i >= 1, i <= N), A[i - 1], 0.0),
                   name="P")
    a = randf(5)
    np.testing.assert_array_equal(td.reference(P, {A: a}), np.pad(a, 1))


def test_nested_select_masks_both_levels():
    A = td.placeholder((N,), name="A")
    C = td.compute((N,), lambda i: td.select(i >= 1, td.select(i < N - 1, A[i - 1] + A[i + 1],
                                                                A[i - 1]), A[i + 1]), name="C")
    a = randf(6)
    want = np.empty(6, "float32")
    want[0], want[-1] = a[1], a[-2]
    want[1:-1] = a[:-2] + a[2:]
    np.testing.assert_allclose(td.reference(C, {A: a}), want, rtol=1e-6)


def test_out_of_bounds_in_taken_branch_still_raises():
    A = td.placeholder((N,), name="A")
    C = td.compute((N,), lambda i: td.select(i >= 1, A[i + 1], 0.0), name="C")
    with pytest.raises(TdslIndexError):
        td.reference(C, {A: randf(5)})


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------

def test_missing_input_and_wrong_keys():
    A = td.placeholder((N,), name="A")
    B = td.placeholder((N,), name="B")
    C = td.compute((N,), lambda i: A[i] + B[i], name="C")
    with pytest.raises(TdslValueError, match="needs a value for the placeholder B"):
        td.reference(C, {A: randf(3)})
    with pytest.raises(TdslTypeError, match="keyed by placeholders"):
        td.reference(C, {"A": randf(3), B: randf(3)})


def test_shape_mismatch_and_dtype_checked():
    A = td.placeholder((N,), name="A")
    B = td.placeholder((N,), name="B")
    C = td.compute((N,), lambda i: A[i] + B[i], name="C")
    with pytest.raises(TdslValueError, match=r"argument B should have shape \(3,\).*got \(4,\)"):
        td.reference(C, {A: randf(3), B: randf(4)})
    with pytest.raises(TdslTypeError, match="argument B should have dtype float32; got float64"):
        td.reference(C, {A: randf(3), B: randf(3, dtype="float64")})


def test_sizes_argument_binds_unbound_size():
    A = td.placeholder((N,), name="A")
    C = td.compute((N, M), lambda i, j: A[i] * j, name="C")
    a = randf(3)
    c = td.reference(C, {A: a}, sizes={M: 4})
    np.testing.assert_allclose(c, a[:, None] * np.arange(4), rtol=1e-6)
    with pytest.raises(TdslValueError):
        td.reference(C, {A: a})


def test_reduction_reads_only_where_its_where_holds():
    """A read that where= guards is not evaluated outside it (as in compiled code): a
    window sum over A[i - r] with where=i - r >= 0 never reads A[-1]. (td.reference used
    to evaluate the body everywhere and raise TdslIndexError.)"""
    n = td.var("n")
    A = td.placeholder((n,), "float64", name="A")
    r = td.reduce_axis(3, name="r")
    S = td.compute((n,), lambda i: td.sum(A[i - r], axis=r, where=i - r >= 0), name="S")
    a = np.arange(1.0, 6.0)
    want = [a[max(0, i - 2):i + 1].sum() for i in range(5)]
    np.testing.assert_array_equal(td.reference(S, {A: a}), want)
    mod = td.build(td.create_schedule(S), [A, S])
    s = np.empty(5)
    mod(a, s)
    np.testing.assert_array_equal(s, want)
