"""Differential tests of whole kernels with default schedules against plain NumPy.

Every kernel is built once with symbolic sizes (the disk cache makes the rebuilds of
the parametrized cases free) and run at several sizes, including 1 and odd ones.
`check` asserts built == td.reference; each test then compares the built output with
NumPy code written here, independently of tdsl's reference evaluator.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tdsl as td
from tdsl.testing import tolerance

from .helpers import check

N, L, M = td.var("n"), td.var("l"), td.var("m")

SIZES_1D = [pytest.param(v, id=f"n{v}") for v in (1, 7, 64, 129)]
SIZES_2D = [pytest.param(nm, id=f"{nm[0]}x{nm[1]}") for nm in ((1, 1), (1, 9), (7, 1), (13, 33))]
SIZES_3D = [pytest.param(nlm, id="x".join(map(str, nlm))) for nlm in
            ((1, 1, 1), (3, 5, 7), (17, 1, 9), (10, 16, 3))]


def assert_matches(got: np.ndarray, want: np.ndarray, dtype: str | None = None,
                   scale: float = 1.0) -> None:
    """got == want (exactly for integers and bools, within tdsl's tolerance for floats)."""
    dtype = dtype or got.dtype.name
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {dtype}"
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    if np.dtype(dtype).kind == "f":
        rtol, atol = tolerance(dtype)
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=rtol * scale, atol=atol * scale)
    else:
        np.testing.assert_array_equal(got, want.astype(dtype))


def run(outputs, args, sizes, inputs=None, seed=0):
    """Default schedule of `outputs`, checked against td.reference; (feeds, built outputs)."""
    s = td.create_schedule(outputs)
    return check(s, args, sizes, seed=seed, inputs=inputs)


def rand(shape, dtype="float32", lo=-1.0, hi=1.0, seed=1):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(lo, hi, shape).astype(dtype)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    return rng.integers(int(lo), int(hi), shape, endpoint=True).astype(dtype)


def test_pinned_api_example():
    """The issue's example, line for line."""
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), dtype="float32", name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    i, j = C.op.axis
    (k2,) = C.op.reduce_axis
    assert (i.name, j.name, k2.name) == ("i", "j", "k") and k2 is k
    assert [str(d) for d in C.shape] == ["n", "m"] and C.dtype == "float32"
    s = td.create_schedule(C)
    text = str(td.lower(s, [A, B, C]))
    for line in ("for i in range(n):", "for j in range(m):", "for k in range(l):",
                 "C[i, j] = C[i, j] + A[i, k] * B[k, j]"):
        assert line in text, text
    mod = td.build(s, [A, B, C], target="c")
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 3), "float32"), rng.random((3, 4), "float32")
    c = np.empty((5, 4), "float32")
    mod(a, b, c)
    assert "kernel" in mod.source
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    np.testing.assert_allclose(td.reference(C, {A: a, B: b}), a @ b, rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Elementwise and broadcast
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("nm", SIZES_2D)
def test_add(nm):
    A = td.placeholder((N, M), name="A")
    B = td.placeholder((N, M), name="B")
    C = td.compute((N, M), lambda i, j: A[i, j] + B[i, j], name="C")
    (feeds, (c,)) = run(C, [A, B, C], {N: nm[0], M: nm[1]})
    assert_matches(c, feeds[A] + feeds[B])


@pytest.mark.parametrize("nm", SIZES_2D)
def test_scalar_arithmetic(nm):
    A = td.placeholder((N, M), name="A")
    C = td.compute((N, M), lambda i, j: (A[i, j] * 2 + 1) - A[i, j] / 3 - 0.5 * -A[i, j],
                   name="C")
    (feeds, (c,)) = run(C, [A, C], {N: nm[0], M: nm[1]})
    a = feeds[A]
    assert_matches(c, (a * 2 + 1) - a / 3 - 0.5 * -a)


@pytest.mark.parametrize("nm", SIZES_2D)
def test_broadcast_row_vector(nm):
    A = td.placeholder((N, M), name="A")
    b = td.placeholder((M,), name="b")
    C = td.compute((N, M), lambda i, j: A[i, j] + b[j], name="C")
    (feeds, (c,)) = run(C, [A, b, C], {N: nm[0], M: nm[1]})
    assert_matches(c, feeds[A] + feeds[b][None, :])


@pytest.mark.parametrize("nm", SIZES_2D)
def test_broadcast_col_vector(nm):
    A = td.placeholder((N, M), name="A")
    v = td.placeholder((N,), name="v")
    C = td.compute((N, M), lambda i, j: A[i, j] * v[i], name="C")
    (feeds, (c,)) = run(C, [A, v, C], {N: nm[0], M: nm[1]})
    assert_matches(c, feeds[A] * feeds[v][:, None])


@pytest.mark.parametrize("nm", SIZES_2D)
def test_outer_product(nm):
    u = td.placeholder((N,), name="u")
    v = td.placeholder((M,), name="v")
    C = td.compute((N, M), lambda i, j: u[i] * v[j] - u[i], name="C")
    (feeds, (c,)) = run(C, [u, v, C], {N: nm[0], M: nm[1]})
    assert_matches(c, np.multiply.outer(feeds[u], feeds[v]) - feeds[u][:, None])


NUMERIC = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8"]


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("n", [1, 37])
def test_elementwise_per_dtype(dtype, n):
    A = td.placeholder((N,), dtype=dtype, name="A")
    B = td.placeholder((N,), dtype=dtype, name="B")
    # int8/uint8 products overflow and wrap, as in NumPy.
    C = td.compute((N,), lambda i: A[i] * B[i] + A[i] - B[i] * 3, name="C")
    assert C.dtype == dtype
    (feeds, (c,)) = run(C, [A, B, C], {N: n})
    a, b = feeds[A], feeds[B]
    with np.errstate(over="ignore"):
        want = a * b + a - b * np.array(3, dtype)
    assert_matches(c, want, dtype)


@pytest.mark.parametrize("n", [1, 37])
def test_bool_logic(n):
    P = td.placeholder((N,), dtype="bool", name="P")
    Q = td.placeholder((N,), dtype="bool", name="Q")
    R = td.placeholder((N,), dtype="bool", name="R")
    C = td.compute((N,), lambda i: (P[i] & ~Q[i]) | (R[i] ^ P[i]), name="C")
    (feeds, (c,)) = run(C, [P, Q, R, C], {N: n})
    p, q, r = feeds[P], feeds[Q], feeds[R]
    assert_matches(c, (p & ~q) | (r ^ p), "bool")


@pytest.mark.parametrize("n", [1, 37])
def test_comparisons_all_any(n):
    A = td.placeholder((N,), dtype="int32", name="A")
    B = td.placeholder((N,), dtype="int32", name="B")
    C = td.compute((N,), lambda i: td.all(A[i] < B[i], A[i] != 0, B[i] >= -10), name="C")
    D = td.compute((N,), lambda i: td.any(A[i] == B[i], A[i] > 20, B[i] <= -30), name="D")
    (feeds, (c, d)) = run([C, D], [A, B, C, D], {N: n})
    a, b = feeds[A], feeds[B]
    assert_matches(c, (a < b) & (a != 0) & (b >= -10), "bool")
    assert_matches(d, (a == b) | (a > 20) | (b <= -30), "bool")


MIXED = [("int8", "float32"), ("uint8", "int8"), ("int32", "float16"), ("int16", "uint8"),
         ("float16", "float32"), ("bool", "int32"), ("int64", "float32")]


@pytest.mark.parametrize("ta,tb", MIXED, ids=[f"{a}+{b}" for a, b in MIXED])
def test_mixed_dtype_promotion(ta, tb):
    A = td.placeholder((N,), dtype=ta, name="A")
    B = td.placeholder((N,), dtype=tb, name="B")
    C = td.compute((N,), lambda i: A[i] + B[i], name="C")
    want_dtype = np.result_type(np.dtype(ta), np.dtype(tb)).name
    assert C.dtype == want_dtype
    (feeds, (c,)) = run(C, [A, B, C], {N: 29})
    assert_matches(c, feeds[A] + feeds[B], want_dtype)


# ---------------------------------------------------------------------------------------
# Casts
# ---------------------------------------------------------------------------------------

CASTS = [("float32", "int32"), ("float64", "int8"), ("float32", "uint8"), ("int32", "float32"),
         ("int64", "float64"), ("int8", "float16"), ("bool", "int32"), ("float32", "bool"),
         ("int16", "bool"), ("bool", "float32"), ("int32", "int8"), ("float16", "float64")]


@pytest.mark.parametrize("src,dst", CASTS, ids=[f"{a}->{b}" for a, b in CASTS])
def test_cast(src, dst):
    A = td.placeholder((N,), dtype=src, name="A")
    C = td.compute((N,), lambda i: A[i].astype(dst), name="C")
    D = td.compute((N,), lambda i: A[i].astype(dst) * 1, name="D")    # cast inside arithmetic
    n = 41
    if np.dtype(src).kind == "f":
        # Values with fractions of both signs, and exact zeros: floats truncate toward 0.
        a = rand((n,), src, -5.0, 5.0)
        a[::7] = 0
        if dst == "uint8":
            a = np.abs(a)     # negative float -> unsigned is undefined in C
    else:
        a = rand((n,), src, -120 if src != "bool" else 0, 120 if src != "bool" else 1)
    (feeds, (c, d)) = run([C, D], [A, C, D], {N: n}, inputs={A: a})
    assert_matches(c, a.astype(dst), dst)
    want_d = a.astype(dst) * 1             # NumPy 2: bool * 1 is int64, int8 * 1 stays int8
    assert D.dtype == want_d.dtype.name
    assert_matches(d, want_d)


def test_td_cast_pinned_argument_order():
    A = td.placeholder((N,), name="A")
    C = td.compute((N,), lambda i: td.cast(A[i], "int32"), name="C")
    a = np.array([-2.5, -0.5, 0.0, 1.9, 7.2], "float32")
    (_, (c,)) = run(C, [A, C], {N: 5}, inputs={A: a})
    assert_matches(c, a.astype("int32"))


def test_float_to_int_truncates_toward_zero():
    A = td.placeholder((6,), name="A")
    C = td.compute((6,), lambda i: A[i].astype("int32"), name="C")
    a = np.array([-2.7, -2.2, -0.5, 0.5, 2.2, 2.7], "float32")
    (_, (c,)) = run(C, [A, C], {}, inputs={A: a})
    np.testing.assert_array_equal(c, np.trunc(a).astype("int32"))


# ---------------------------------------------------------------------------------------
# Integer floor division and modulo
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_floordiv_mod_arrays(dtype):
    A = td.placeholder((N,), dtype=dtype, name="A")
    B = td.placeholder((N,), dtype=dtype, name="B")
    Q = td.compute((N,), lambda i: A[i] // B[i], name="Q")
    R = td.compute((N,), lambda i: A[i] % B[i], name="R")
    lo = 0 if dtype == "uint8" else -9
    vals = np.arange(lo, 10)
    a = np.repeat(vals, len(vals)).astype(dtype)       # every pair, zero divisors included
    b = np.tile(vals, len(vals)).astype(dtype)
    (_, (q, r)) = run([Q, R], [A, B, Q, R], {N: a.size}, inputs={A: a, B: b})
    with np.errstate(divide="ignore"):
        want_q, want_r = a // b, a % b
    # tdsl defines x // 0 == 0 and x % 0 == 0: the value NumPy returns (with a warning).
    assert (want_q[b == 0] == 0).all() and (want_r[b == 0] == 0).all()
    assert_matches(q, want_q, dtype)
    assert_matches(r, want_r, dtype)


@pytest.mark.parametrize("divisor", [3, -3, 7, 1, -1, 0])
def test_floordiv_mod_by_constant(divisor):
    A = td.placeholder((N,), dtype="int32", name="A")
    Q = td.compute((N,), lambda i: A[i] // divisor, name="Q")
    R = td.compute((N,), lambda i: A[i] % divisor, name="R")
    S = td.compute((N,), lambda i: (i - 5) // divisor + (i - 5) % divisor * 100, name="S")
    a = np.arange(-20, 21, dtype="int32")
    (_, (q, r, s)) = run([Q, R, S], [A, Q, R, S], {N: a.size}, inputs={A: a})
    idx = np.arange(a.size, dtype=np.int64) - 5
    with np.errstate(divide="ignore"):          # x // 0 == x % 0 == 0, NumPy's values
        assert_matches(q, a // np.int32(divisor))
        assert_matches(r, a % np.int32(divisor))
        assert_matches(s, idx // divisor + idx % divisor * 100, "int64")


INT_MIN_DIV = textwrap.dedent("""
    import numpy as np, tdsl as td
    n = td.var("n")
    A = td.placeholder((n,), dtype="{dtype}", name="A")
    B = td.placeholder((n,), dtype="{dtype}", name="B")
    Q = td.compute((n,), lambda i: A[i] // B[i], name="Q")
    R = td.compute((n,), lambda i: A[i] % B[i], name="R")
    mod = td.build(td.create_schedule([Q, R]), [A, B, Q, R])
    lo = np.iinfo("{dtype}").min
    a = np.array([lo, lo, lo + 1, 7], "{dtype}")
    b = np.array([-1, 1, -1, -1], "{dtype}")
    q, r = np.zeros_like(a), np.zeros_like(a)
    mod(a, b, q, r)
    with np.errstate(all="ignore"):
        assert (q == a // b).all() and (r == a % b).all(), (q, r)
    print("ok")
""")


def _int_min_by_minus_one(dtype):
    """MIN // -1 overflows (NumPy wraps to MIN, MIN % -1 == 0); run it in a child process,
    since a trapping division would kill the test session."""
    result = subprocess.run([sys.executable, "-c", INT_MIN_DIV.format(dtype=dtype)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", \
        f"exit {result.returncode}: {result.stderr[-2000:]}"


@pytest.mark.parametrize("dtype", ["int8", "int32"])
def test_int_min_floordiv_minus_one(dtype):
    _int_min_by_minus_one(dtype)


def test_int64_min_floordiv_minus_one():
    _int_min_by_minus_one("int64")


def _float_operands(dtype):
    a = rand((50,), dtype, -10, 10, seed=3)
    b = (rand((50,), dtype, 0.5, 3, seed=4) * np.where(np.arange(50) % 2, 1, -1)).astype(dtype)
    return a, b


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_mod(dtype):
    A = td.placeholder((N,), dtype=dtype, name="A")
    B = td.placeholder((N,), dtype=dtype, name="B")
    R = td.compute((N,), lambda i: A[i] % B[i], name="R")
    a, b = _float_operands(dtype)
    (_, (r,)) = run(R, [A, B, R], {N: 50}, inputs={A: a, B: b})
    assert_matches(r, a % b, scale=10)
    assert (np.sign(r[r != 0]) == np.sign(b[r != 0])).all()     # Python's sign convention


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_floordiv(dtype):
    A = td.placeholder((N,), dtype=dtype, name="A")
    B = td.placeholder((N,), dtype=dtype, name="B")
    Q = td.compute((N,), lambda i: A[i] // B[i], name="Q")
    a, b = _float_operands(dtype)
    (_, (q,)) = run(Q, [A, B, Q], {N: 50}, inputs={A: a, B: b})
    assert_matches(q, a // b)


# ---------------------------------------------------------------------------------------
# Select and padding
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("nm", SIZES_2D)
def test_select_leaky_relu(nm):
    A = td.placeholder((N, M), name="A")
    C = td.compute((N, M), lambda i, j: td.select(A[i, j] > 0, A[i, j], A[i, j] * 0.1),
                   name="C")
    (feeds, (c,)) = run(C, [A, C], {N: nm[0], M: nm[1]})
    a = feeds[A]
    assert_matches(c, np.where(a > 0, a, a * np.float32(0.1)))


@pytest.mark.parametrize("nm", SIZES_2D)
def test_select_on_index_triangle(nm):
    A = td.placeholder((N, M), dtype="int16", name="A")
    C = td.compute((N, M), lambda i, j: td.select(j <= i, A[i, j], 0), name="C")
    (feeds, (c,)) = run(C, [A, C], {N: nm[0], M: nm[1]})
    assert_matches(c, np.tril(feeds[A]))


@pytest.mark.parametrize("n", [1, 2, 9, 30])
def test_pad_then_stencil(n):
    X = td.placeholder((N,), name="X")
    P = td.compute((N + 2,), lambda i: td.select(td.all(i >= 1, i <= N), X[i - 1], 0.0),
                   name="P")
    Y = td.compute((N,), lambda i: P[i] + 2 * P[i + 1] - P[i + 2], name="Y")
    (feeds, (y,)) = run(Y, [X, Y], {N: n})
    p = np.pad(feeds[X], 1)
    assert_matches(y, p[:-2] + 2 * p[1:-1] - p[2:])


@pytest.mark.parametrize("nm", SIZES_2D)
def test_pad_2d_output(nm):
    X = td.placeholder((N, M), name="X")
    P = td.compute((N + 2, M + 4), lambda y, x: td.select(
        td.all(y >= 1, y < N + 1, x >= 2, x < M + 2), X[y - 1, x - 2], -1.0), name="P")
    (feeds, (p,)) = run(P, [X, P], {N: nm[0], M: nm[1]})
    assert_matches(p, np.pad(feeds[X], ((1, 1), (2, 2)), constant_values=-1.0))


# ---------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------

REDUCERS = {"sum": (td.sum, np.sum, 0.0), "max": (td.max, np.max, -np.inf),
            "min": (td.min, np.min, np.inf)}


@pytest.mark.parametrize("name", list(REDUCERS))
@pytest.mark.parametrize("nm", SIZES_2D)
def test_reduce_rows(name, nm):
    reducer, np_reduce, _ = REDUCERS[name]
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis(M, name="k")
    C = td.compute((N,), lambda i: reducer(A[i, k], axis=k), name="C")
    (feeds, (c,)) = run(C, [A, C], {N: nm[0], M: nm[1]})
    assert_matches(c, np_reduce(feeds[A], axis=1), scale=10)


@pytest.mark.parametrize("name", list(REDUCERS))
@pytest.mark.parametrize("nm", SIZES_2D)
def test_reduce_where_data(name, nm):
    reducer, np_reduce, identity = REDUCERS[name]
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis(M, name="k")
    C = td.compute((N,), lambda i: reducer(A[i, k] * 2, axis=k, where=A[i, k] > 0.2), name="C")
    (feeds, (c,)) = run(C, [A, C], {N: nm[0], M: nm[1]})
    a = feeds[A]
    want = np_reduce(np.where(a > 0.2, a * 2, np.float32(identity)), axis=1)
    assert_matches(c, want.astype("float32"), scale=10)


@pytest.mark.parametrize("name", list(REDUCERS))
@pytest.mark.parametrize("dtype", ["int32", "int8", "float64"])
def test_reduce_where_index(name, dtype):
    """A triangular reduction: row i reduces A[i, :i+1]."""
    reducer, np_reduce, _ = REDUCERS[name]
    A = td.placeholder((N, N), dtype=dtype, name="A")
    k = td.reduce_axis(N, name="k")
    C = td.compute((N,), lambda i: reducer(A[i, k], axis=k, where=k <= i), name="C")
    n = 11
    (feeds, (c,)) = run(C, [A, C], {N: n})
    a = feeds[A]
    # A reduction accumulates in its body's dtype (int8 sums wrap; NumPy's sum would widen).
    kw = {"dtype": dtype} if name == "sum" else {}
    want = np.array([np_reduce(a[i, :i + 1], **kw) for i in range(n)], dtype=dtype)
    assert_matches(c, want, dtype)


def test_reduce_where_empty_gives_identity():
    A = td.placeholder((N, M), dtype="int32", name="A")
    k = td.reduce_axis(M, name="k")
    S = td.compute((N,), lambda i: td.sum(A[i, k], axis=k, where=A[i, k] > 1000), name="S")
    X = td.compute((N,), lambda i: td.max(A[i, k], axis=k, where=A[i, k] > 1000), name="X")
    Y = td.compute((N,), lambda i: td.min(A[i, k], axis=k, where=A[i, k] > 1000), name="Y")
    (_, (s, x, y)) = run([S, X, Y], [A, S, X, Y], {N: 3, M: 4})
    info = np.iinfo("int32")
    assert_matches(s, np.zeros(3, "int32"))
    assert_matches(x, np.full(3, info.min, "int32"))
    assert_matches(y, np.full(3, info.max, "int32"))


@pytest.mark.parametrize("nm", SIZES_2D)
def test_reduce_uint8_and_bool(nm):
    """uint8 max/min/sum (the sum wraps in uint8); bool max/min are any/all."""
    U = td.placeholder((N, M), dtype="uint8", name="U")
    P = td.placeholder((N, M), dtype="bool", name="P")
    k = td.reduce_axis(M, name="k")
    X = td.compute((N,), lambda i: td.max(U[i, k], axis=k), name="X")
    Y = td.compute((N,), lambda i: td.min(U[i, k], axis=k), name="Y")
    S = td.compute((N,), lambda i: td.sum(U[i, k], axis=k), name="S")
    AnyP = td.compute((N,), lambda i: td.max(P[i, k], axis=k), name="AnyP")
    AllP = td.compute((N,), lambda i: td.min(P[i, k], axis=k), name="AllP")
    u = rand(nm, "uint8", 0, 255, seed=12)
    (feeds, (x, y, s, any_p, all_p)) = run([X, Y, S, AnyP, AllP], [U, P, X, Y, S, AnyP, AllP],
                                           {N: nm[0], M: nm[1]}, inputs={U: u})
    p = feeds[P]
    assert_matches(x, u.max(axis=1))
    assert_matches(y, u.min(axis=1))
    assert_matches(s, u.sum(axis=1, dtype="uint8"))
    assert_matches(any_p, p.any(axis=1))
    assert_matches(all_p, p.all(axis=1))


@pytest.mark.parametrize("nlm", SIZES_3D)
def test_reduce_two_axes(nlm):
    A = td.placeholder((N, L, M), name="A")
    k1 = td.reduce_axis(L, name="k1")
    k2 = td.reduce_axis(M, name="k2")
    S = td.compute((N,), lambda i: td.sum(A[i, k1, k2] * A[i, k1, k2], axis=[k1, k2]),
                   name="S")
    X = td.compute((N,), lambda i: td.max(A[i, k1, k2], axis=[k2, k1]), name="X")
    (feeds, (s, x)) = run([S, X], [A, S, X], {N: nlm[0], L: nlm[1], M: nlm[2]})
    a = feeds[A]
    assert_matches(s, (a * a).sum(axis=(1, 2)), scale=10)
    assert_matches(x, a.max(axis=(1, 2)))


@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_reduce_all_to_scalar_shape(n):
    A = td.placeholder((N, N), dtype="int64", name="A")
    i, j = td.reduce_axis(N, name="i"), td.reduce_axis(N, name="j")
    S = td.compute((1,), lambda z: td.sum(A[i, j] * (i + 1) - j, axis=[i, j]), name="S")
    (feeds, (s,)) = run(S, [A, S], {N: n})
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    assert_matches(s, np.array([(feeds[A] * (ii + 1) - jj).sum()], "int64"))


@pytest.mark.parametrize("m", [2, 3, 10])
def test_reduce_axis_range(m):
    """reduce_axis((lo, hi)): a window sum over A[i, 1:m-1] (empty for m == 2)."""
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis((1, M - 1), name="k")
    C = td.compute((N,), lambda i: td.sum(A[i, k], axis=k), name="C")
    (feeds, (c,)) = run(C, [A, C], {N: 5, M: m})
    assert_matches(c, feeds[A][:, 1:m - 1].sum(axis=1))


def test_reduce_axis_constant_range():
    A = td.placeholder((N, 12), name="A")
    k = td.reduce_axis((3, 9), name="k")
    C = td.compute((N,), lambda i: td.min(A[i, k] - k, axis=k), name="C")
    (feeds, (c,)) = run(C, [A, C], {N: 6})
    assert C.dtype == "float64"         # float32 - int64 axis -> float64, as in NumPy
    want = (feeds[A][:, 3:9] - np.arange(3, 9)).min(axis=1)
    assert_matches(c, want, "float64")


@pytest.mark.parametrize("nm", SIZES_2D)
def test_comm_reducer_product(nm):
    product = td.comm_reducer(lambda a, b: a * b, 1, name="product")
    A = td.placeholder((N, M), dtype="float64", name="A")
    k = td.reduce_axis(M, name="k")
    C = td.compute((N,), lambda i: product(A[i, k] + 1.0, axis=k), name="C")
    (feeds, (c,)) = run(C, [A, C], {N: nm[0], M: nm[1]})
    assert_matches(c, np.prod(feeds[A] + 1.0, axis=1), "float64")


@pytest.mark.parametrize("nm", SIZES_2D)
def test_comm_reducer_max_abs(nm):
    max_abs = td.comm_reducer(lambda a, b: td.maximum(td.abs(a), td.abs(b)), 0.0,
                              name="max_abs")
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis(M, name="k")
    C = td.compute((N,), lambda i: max_abs(A[i, k], axis=k), name="C")
    (feeds, (c,)) = run(C, [A, C], {N: nm[0], M: nm[1]})
    assert_matches(c, np.abs(feeds[A]).max(axis=1))


def test_comm_reducer_integer_product_with_where():
    product = td.comm_reducer(lambda a, b: a * b, lambda dtype: 1, name="product")
    A = td.placeholder((N, M), dtype="int64", name="A")
    k = td.reduce_axis(M, name="k")
    C = td.compute((N,), lambda i: product(A[i, k], axis=k, where=A[i, k] % 3 != 0), name="C")
    a = rand((4, 6), "int64", -5, 5, seed=7)
    (_, (c,)) = run(C, [A, C], {N: 4, M: 6}, inputs={A: a})
    assert_matches(c, np.prod(np.where(a % 3 != 0, a, 1), axis=1))


# ---------------------------------------------------------------------------------------
# Linear algebra and layout
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("nlm", SIZES_3D)
def test_matmul(nlm):
    A = td.placeholder((N, L), name="A")
    B = td.placeholder((L, M), name="B")
    k = td.reduce_axis(L, name="k")
    C = td.compute((N, M), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    (feeds, (c,)) = run(C, [A, B, C], {N: nlm[0], L: nlm[1], M: nlm[2]})
    assert_matches(c, feeds[A] @ feeds[B], scale=10)


def test_matmul_constant_shapes_float64():
    A = td.placeholder((16, 9), dtype="float64", name="A")
    B = td.placeholder((9, 5), dtype="float64", name="B")
    k = td.reduce_axis(9, name="k")
    C = td.compute((16, 5), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    (feeds, (c,)) = run(C, [A, B, C], {})
    assert_matches(c, feeds[A] @ feeds[B])


@pytest.mark.parametrize("nlm", SIZES_3D)
def test_batched_matmul(nlm):
    Bt = td.var("b")
    X = td.placeholder((Bt, N, L), name="X")
    Y = td.placeholder((Bt, L, M), name="Y")
    k = td.reduce_axis(L, name="k")
    Z = td.compute((Bt, N, M), lambda b, i, j: td.sum(X[b, i, k] * Y[b, k, j], axis=k),
                   name="Z")
    for batch in (1, 3):
        (feeds, (z,)) = run(Z, [X, Y, Z], {Bt: batch, N: nlm[0], L: nlm[1], M: nlm[2]})
        assert_matches(z, np.matmul(feeds[X], feeds[Y]), scale=10)


def test_matmul_int_accumulates_in_int32():
    A = td.placeholder((N, L), dtype="int8", name="A")
    B = td.placeholder((L, M), dtype="int8", name="B")
    k = td.reduce_axis(L, name="k")
    C = td.compute((N, M), lambda i, j: td.sum(A[i, k].astype("int32") * B[k, j], axis=k),
                   name="C")
    (feeds, (c,)) = run(C, [A, B, C], {N: 5, L: 33, M: 3})
    want = feeds[A].astype("int32") @ feeds[B].astype("int32")
    assert_matches(c, want, "int32")


@pytest.mark.parametrize("nm", SIZES_2D)
def test_transpose(nm):
    A = td.placeholder((N, M), dtype="int32", name="A")
    T = td.compute((M, N), lambda j, i: A[i, j], name="T")
    (feeds, (t,)) = run(T, [A, T], {N: nm[0], M: nm[1]})
    assert_matches(t, feeds[A].T)


def test_transpose_3d_constant():
    A = td.placeholder((2, 3, 5), dtype="float16", name="A")
    T = td.compute((5, 2, 3), lambda c, a, b: A[a, b, c], name="T")
    (feeds, (t,)) = run(T, [A, T], {})
    assert_matches(t, feeds[A].transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------
# Convolution and pooling
# ---------------------------------------------------------------------------------------

def _conv2d_nchw(stride: int):
    """conv2d NCHW, 3x3 kernel, padding 1 in its own stage."""
    Bn, C, H, W, F = (td.var(x) for x in ("B", "C", "H", "W", "F"))
    X = td.placeholder((Bn, C, H, W), name="X")
    K = td.placeholder((F, C, 3, 3), name="K")
    P = td.compute((Bn, C, H + 2, W + 2), lambda b, c, y, x: td.select(
        td.all(y >= 1, y <= H, x >= 1, x <= W), X[b, c, y - 1, x - 1], 0.0), name="P")
    rc, ry, rx = (td.reduce_axis(e, name=nm) for e, nm in ((C, "rc"), (3, "ry"), (3, "rx")))
    OH, OW = (H - 1) // stride + 1, (W - 1) // stride + 1
    O = td.compute((Bn, F, OH, OW), lambda b, f, y, x: td.sum(
        P[b, rc, y * stride + ry, x * stride + rx] * K[f, rc, ry, rx], axis=[rc, ry, rx]),
        name="O")
    return (X, K, O), dict(B=Bn, C=C, H=H, W=W, F=F)


def _np_conv2d(x, k, stride):
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(np.float64)
    _, _, h, w = x.shape
    oh, ow = (h - 1) // stride + 1, (w - 1) // stride + 1
    out = np.zeros((x.shape[0], k.shape[0], oh, ow))
    for ry in range(3):
        for rx in range(3):
            win = p[:, :, ry:ry + stride * (oh - 1) + 1:stride,
                    rx:rx + stride * (ow - 1) + 1:stride]
            out += np.einsum("bchw,fc->bfhw", win, k[:, :, ry, rx].astype(np.float64))
    return out


CONV_SIZES = [(1, 1, 1, 1, 1), (2, 3, 5, 7, 4), (1, 4, 8, 6, 2)]


@pytest.mark.parametrize("stride", [1, 2], ids=["stride1", "stride2"])
@pytest.mark.parametrize("dims", CONV_SIZES, ids=["x".join(map(str, d)) for d in CONV_SIZES])
def test_conv2d_nchw_padded(stride, dims):
    (X, K, O), v = _conv2d_nchw(stride)
    b, c, h, w, f = dims
    sizes = {v["B"]: b, v["C"]: c, v["H"]: h, v["W"]: w, v["F"]: f}
    (feeds, (o,)) = run(O, [X, K, O], sizes)
    assert o.shape == (b, f, (h - 1) // stride + 1, (w - 1) // stride + 1)
    assert_matches(o, _np_conv2d(feeds[X], feeds[K], stride).astype("float32"), scale=10)


def test_conv2d_constant_shape():
    X = td.placeholder((1, 2, 6, 5), name="X")
    K = td.placeholder((3, 2, 3, 3), name="K")
    P = td.compute((1, 2, 8, 7), lambda b, c, y, x: td.select(
        td.all(y >= 1, y <= 6, x >= 1, x <= 5), X[b, c, y - 1, x - 1], 0.0), name="P")
    rc, ry, rx = td.reduce_axis(2, "rc"), td.reduce_axis(3, "ry"), td.reduce_axis(3, "rx")
    O = td.compute((1, 3, 6, 5), lambda b, f, y, x: td.sum(
        P[b, rc, y + ry, x + rx] * K[f, rc, ry, rx], axis=[rc, ry, rx]), name="O")
    (feeds, (o,)) = run(O, [X, K, O], {})
    assert_matches(o, _np_conv2d(feeds[X], feeds[K], 1).astype("float32"), scale=10)


POOL_SIZES = [(1, 1, 2, 2), (2, 3, 4, 6), (1, 2, 10, 8)]


@pytest.mark.parametrize("dims", POOL_SIZES, ids=["x".join(map(str, d)) for d in POOL_SIZES])
def test_max_pool_2x2(dims):
    Bn, C, OH, OW = (td.var(x) for x in ("B", "C", "OH", "OW"))
    X = td.placeholder((Bn, C, OH * 2, OW * 2), name="X")
    ry, rx = td.reduce_axis(2, name="ry"), td.reduce_axis(2, name="rx")
    Y = td.compute((Bn, C, OH, OW), lambda b, c, y, x: td.max(
        X[b, c, y * 2 + ry, x * 2 + rx], axis=[ry, rx]), name="Y")
    b, c, h, w = dims
    (feeds, (y,)) = run(Y, [X, Y], {Bn: b, C: c, OH: h // 2, OW: w // 2})
    x = feeds[X]
    assert_matches(y, x.reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5)))


@pytest.mark.parametrize("hw", [(3, 3), (5, 8), (9, 4)], ids=["3x3", "5x8", "9x4"])
def test_avg_pool_3x3_stride1(hw):
    """Average pooling, 3x3 window, stride 1, 'valid'."""
    H, W = td.var("H"), td.var("W")
    X = td.placeholder((N, H, W), name="X")
    ry, rx = td.reduce_axis(3, name="ry"), td.reduce_axis(3, name="rx")
    S = td.compute((N, H - 2, W - 2), lambda c, y, x: td.sum(X[c, y + ry, x + rx],
                                                             axis=[ry, rx]), name="S")
    Y = td.compute((N, H - 2, W - 2), lambda c, y, x: S[c, y, x] / 9, name="Y")
    (feeds, (y,)) = run(Y, [X, Y], {N: 2, H: hw[0], W: hw[1]})
    x = feeds[X]
    h, w = hw
    want = sum(x[:, dy:dy + h - 2, dx:dx + w - 2] for dy in range(3) for dx in range(3)) / 9
    assert_matches(y, want.astype("float32"), scale=10)


# ---------------------------------------------------------------------------------------
# Multi-stage pipelines
# ---------------------------------------------------------------------------------------

def _softmax():
    X = td.placeholder((N, M), name="X")
    k1, k2 = td.reduce_axis(M, name="k1"), td.reduce_axis(M, name="k2")
    mx = td.compute((N,), lambda i: td.max(X[i, k1], axis=k1), name="mx")
    e = td.compute((N, M), lambda i, j: td.exp(X[i, j] - mx[i]), name="e")
    total = td.compute((N,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
    Y = td.compute((N, M), lambda i, j: e[i, j] / total[i], name="Y")
    return X, Y


@pytest.mark.parametrize("nm", SIZES_2D)
def test_softmax(nm):
    X, Y = _softmax()
    x = rand(nm, "float32", -30, 30, seed=5)      # large values: the max subtraction matters
    (_, (y,)) = run(Y, [X, Y], {N: nm[0], M: nm[1]}, inputs={X: x})
    x64 = x.astype(np.float64)
    z = np.exp(x64 - x64.max(axis=1, keepdims=True))
    assert_matches(y, (z / z.sum(axis=1, keepdims=True)).astype("float32"), scale=10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("nm", [(1, 2), (4, 7), (9, 64)], ids=["1x2", "4x7", "9x64"])
def test_layernorm(nm):
    X = td.placeholder((N, M), name="X")
    gamma = td.placeholder((M,), name="gamma")
    beta = td.placeholder((M,), name="beta")
    k1, k2 = td.reduce_axis(M, name="k1"), td.reduce_axis(M, name="k2")
    mean = td.compute((N,), lambda i: td.sum(X[i, k1], axis=k1) , name="mean_sum")
    mu = td.compute((N,), lambda i: mean[i] / M.astype("float32"), name="mu")
    var = td.compute((N,), lambda i: td.sum((X[i, k2] - mu[i]) * (X[i, k2] - mu[i]), axis=k2),
                     name="var")
    Y = td.compute((N, M), lambda i, j: (X[i, j] - mu[i]) /
                   td.sqrt(var[i] / M.astype("float32") + 1e-5) * gamma[j] + beta[j], name="Y")
    (feeds, (y,)) = run(Y, [X, gamma, beta, Y], {N: nm[0], M: nm[1]})
    x = feeds[X].astype(np.float64)
    want = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    want = want * feeds[gamma] + feeds[beta]
    assert_matches(y, want.astype("float32"), scale=100)


@pytest.mark.parametrize("nm", SIZES_2D)
def test_multi_output_shared_input_and_intermediate(nm):
    A = td.placeholder((N, M), name="A")
    T = td.compute((N, M), lambda i, j: A[i, j] * A[i, j] + 1, name="T")
    k = td.reduce_axis(M, name="k")
    C = td.compute((N,), lambda i: td.sum(T[i, k] - A[i, k], axis=k), name="C")
    D = td.compute((N, M), lambda i, j: td.sqrt(T[i, j]) + A[i, j], name="D")
    (feeds, (c, d)) = run([C, D], [A, C, D], {N: nm[0], M: nm[1]})
    a = feeds[A]
    t = a * a + 1
    assert_matches(c, (t - a).sum(axis=1), scale=10)
    assert_matches(d, np.sqrt(t) + a)


def test_multi_output_one_reads_the_other():
    A = td.placeholder((N,), name="A")
    C = td.compute((N,), lambda i: A[i] * 3, name="C")
    D = td.compute((N,), lambda i: C[i] + A[i], name="D")
    (feeds, (c, d)) = run([C, D], [A, C, D], {N: 17})
    assert_matches(c, feeds[A] * 3)
    assert_matches(d, feeds[A] * 3 + feeds[A])


# ---------------------------------------------------------------------------------------
# Intrinsics
# ---------------------------------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


INTRINSICS = {
    "exp": (td.exp, np.exp, (-5, 5)),
    "log": (td.log, np.log, (0.01, 10)),
    "sqrt": (td.sqrt, np.sqrt, (0, 10)),
    "tanh": (td.tanh, np.tanh, (-4, 4)),
    "sigmoid": (td.sigmoid, _sigmoid, (-8, 8)),
    "floor": (td.floor, np.floor, (-5, 5)),
    "ceil": (td.ceil, np.ceil, (-5, 5)),
    "abs": (td.abs, np.abs, (-5, 5)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(INTRINSICS))
def test_intrinsic(name, dtype):
    fn, np_fn, (lo, hi) = INTRINSICS[name]
    A = td.placeholder((N,), dtype=dtype, name="A")
    C = td.compute((N,), lambda i: fn(A[i]), name="C")
    a = rand((57,), dtype, lo, hi, seed=11)
    a[0] = lo if name != "log" else a[0]
    (_, (c,)) = run(C, [A, C], {N: 57}, inputs={A: a})
    assert_matches(c, np_fn(a.astype(np.float64)).astype(dtype), dtype, scale=10)


def test_intrinsic_float16_and_int_promotion():
    A = td.placeholder((N,), dtype="float16", name="A")
    I = td.placeholder((N,), dtype="int32", name="I")
    C = td.compute((N,), lambda i: td.exp(A[i]), name="C")
    D = td.compute((N,), lambda i: td.sqrt(I[i]), name="D")       # int32 -> float64 (NumPy)
    E = td.compute((N,), lambda i: td.abs(I[i]), name="E")
    assert (C.dtype, D.dtype, E.dtype) == ("float16", "float64", "int32")
    a = rand((20,), "float16", -2, 2, seed=2)
    ii = rand((20,), "int32", -30, 30, seed=3)
    (_, (c, d, e)) = run([C, D, E], [A, I, C, D, E], {N: 20}, inputs={A: a, I: np.abs(ii)})
    assert_matches(c, np.exp(a), "float16")
    assert_matches(d, np.sqrt(np.abs(ii)), "float64")
    assert_matches(e, np.abs(ii), "int32")


@pytest.mark.parametrize("n", [1, 33])
def test_power_and_minmax(n):
    A = td.placeholder((N,), name="A")
    B = td.placeholder((N,), name="B")
    I = td.placeholder((N,), dtype="int32", name="I")
    P = td.compute((N,), lambda i: td.power(td.abs(A[i]) + 0.5, B[i] * 3), name="P")
    Q = td.compute((N,), lambda i: A[i] ** 2 + td.power(I[i], 3), name="Q")
    R = td.compute((N,), lambda i: td.maximum(A[i], B[i]) - td.minimum(A[i], 0.25), name="R")
    S = td.compute((N,), lambda i: td.maximum(I[i], 3) + td.minimum(I[i], -2), name="S")
    (feeds, (p, q, r, s)) = run([P, Q, R, S], [A, B, I, P, Q, R, S], {N: n})
    a, b, ii = feeds[A], feeds[B], feeds[I]
    assert Q.dtype == "float64"       # float32 + int32 -> float64, as in NumPy
    assert_matches(p, np.power(np.abs(a) + np.float32(0.5), b * 3), scale=10)
    assert_matches(q, (a ** 2).astype(np.float64) + np.power(ii, 3).astype(np.float64))
    assert_matches(r, np.maximum(a, b) - np.minimum(a, np.float32(0.25)))
    assert_matches(s, np.maximum(ii, 3) + np.minimum(ii, -2))


# ---------------------------------------------------------------------------------------
# Data-dependent indexing and recurrences
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("nm", [(1, 1), (5, 12), (40, 3)], ids=["1x1", "5x12", "40x3"])
def test_gather(nm):
    A = td.placeholder((N, 3), name="A")
    idx = td.placeholder((M,), dtype="int32", name="idx")
    G = td.compute((M, 3), lambda i, j: A[idx[i], j] * 2, name="G")
    n, m = nm
    a = rand((n, 3), seed=8)
    ix = np.random.default_rng(9).integers(0, n, m).astype("int32")
    (_, (g,)) = run(G, [A, idx, G], {N: n, M: m}, inputs={A: a, idx: ix})
    assert_matches(g, a[ix] * 2)


@pytest.mark.parametrize("n", [1, 2, 17, 100])
def test_prefix_sum_update(n):
    X = td.placeholder((N,), dtype="int32", name="X")
    r = td.reduce_axis((1, N), name="r")
    Y0 = td.compute((N,), lambda i: X[i], name="Y")
    Y = td.update(Y0, lambda: (r,), lambda: Y0[r - 1] + X[r])
    (feeds, (y,)) = run(Y, [X, Y], {N: n})
    assert_matches(y, np.cumsum(feeds[X]).astype("int32"))


@pytest.mark.parametrize("nm", [(1, 1), (3, 8), (6, 31)], ids=["1x1", "3x8", "6x31"])
def test_iir_filter_along_rows(nm):
    """y[b, t] = 0.5 * y[b, t-1] + x[b, t] per row, rows independent."""
    X = td.placeholder((N, M), dtype="float64", name="X")
    r = td.reduce_axis((1, M), name="r")
    Y0 = td.compute((N, M), lambda b, t: X[b, t], name="Y")
    Y = td.update(Y0, lambda b: (b, r), lambda b: 0.5 * Y0[b, r - 1] + X[b, r])
    (feeds, (y,)) = run(Y, [X, Y], {N: nm[0], M: nm[1]})
    x = feeds[X]
    want = x.copy()
    for t in range(1, x.shape[1]):
        want[:, t] = 0.5 * want[:, t - 1] + x[:, t]
    assert_matches(y, want, "float64")


@pytest.mark.parametrize("nm", [(1, 1), (7, 3), (20, 2)], ids=["1x1", "7x3", "20x2"])
def test_iir_down_columns_then_backward_pass(nm):
    """Two chained updates along axis 0 (the pure axis is the column): a causal filter,
    then an anti-causal one running from the bottom row up."""
    X = td.placeholder((N, M), dtype="float64", name="X")
    r = td.reduce_axis((1, N), name="r")
    Y0 = td.compute((N, M), lambda t, c: X[t, c], name="Y")
    Y1 = td.update(Y0, lambda c: (r, c), lambda c: 0.5 * Y0[r - 1, c] + X[r, c])
    r2 = td.reduce_axis((1, N), name="r2")
    Y2 = td.update(Y1, lambda c: (N - 1 - r2, c),
                   lambda c: Y1[N - 1 - r2, c] + 0.25 * Y1[N - r2, c])
    (feeds, (y,)) = run(Y2, [X, Y2], {N: nm[0], M: nm[1]})
    x = feeds[X]
    want = x.copy()
    for t in range(1, nm[0]):
        want[t] = 0.5 * want[t - 1] + x[t]
    for t in range(nm[0] - 2, -1, -1):
        want[t] = want[t] + 0.25 * want[t + 1]
    assert_matches(y, want, "float64")


def test_diamond_dag():
    A = td.placeholder((N,), name="A")
    B = td.compute((N,), lambda i: A[i] + 1, name="B")
    C = td.compute((N,), lambda i: B[i] * 2, name="C")
    D = td.compute((N,), lambda i: B[i] - 3, name="D")
    k = td.reduce_axis(N, name="k")
    E = td.compute((N,), lambda i: td.sum(C[k] * D[i], axis=k), name="E")
    (feeds, (e,)) = run(E, [A, E], {N: 9})
    b = feeds[A] + 1
    assert_matches(e, (b * 2).sum() * (b - 3), scale=10)


def test_update_then_consumer_stage():
    """A stage reading the tensor returned by td.update sees the finished recurrence."""
    X = td.placeholder((N,), name="X")
    r = td.reduce_axis((1, N), name="r")
    Y0 = td.compute((N,), lambda i: X[i], name="Y")
    Y = td.update(Y0, lambda: (r,), lambda: td.maximum(Y0[r - 1], X[r]))
    Z = td.compute((N,), lambda i: Y[i] - X[i], name="Z")
    (feeds, (z,)) = run(Z, [X, Z], {N: 23})
    x = feeds[X]
    assert_matches(z, np.maximum.accumulate(x) - x)


@pytest.mark.parametrize("m", [1, 50])
def test_histogram_scatter_update(m):
    V = td.placeholder((M,), dtype="int32", name="V")
    r = td.reduce_axis(M, name="r")
    H0 = td.compute((8,), lambda b: 0, name="H")
    H = td.update(H0, lambda: (V[r],), lambda: H0[V[r]] + 1)
    v = np.random.default_rng(m).integers(0, 8, m).astype("int32")
    (_, (h,)) = run(H, [V, H], {M: m}, inputs={V: v})
    assert_matches(h, np.bincount(v, minlength=8).astype("int32"))
