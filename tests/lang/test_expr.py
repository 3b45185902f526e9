"""The expression language: NumPy's typing rules, refused expressions, readable printing.

Nothing here compiles: expressions are built and inspected (dtype, str, errors).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tdsl as td
from tdsl import TdslTypeError, TdslValueError

N, M = td.var("n"), td.var("m")
I, J = td.var("i"), td.var("j")

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64"]
ARITH = ["add", "sub", "mul", "truediv", "floordiv", "mod", "lt", "eq"]
PY_OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "truediv": lambda a, b: a / b, "floordiv": lambda a, b: a // b,
          "mod": lambda a, b: a % b, "lt": lambda a, b: a < b, "eq": lambda a, b: a == b,
          "and": lambda a, b: a & b, "power": np.power}   # `**` has value-based fast paths


def numpy_result(op: str, a: object, b: object) -> str | None:
    """The dtype NumPy gives `a op b` (arrays of dtype a/b, or Python scalars); None if
    NumPy refuses the types; "overflow" if a Python int does not fit the array's type."""
    def sample(x, positive=False):
        if isinstance(x, str):
            return np.ones(3, dtype=x)
        return abs(x) if positive and type(x) is int else x
    try:
        with np.errstate(all="ignore"):
            try:
                return np.asarray(PY_OPS[op](sample(a), sample(b))).dtype.name
            except ValueError:
                # NumPy refuses integer arrays to negative integer powers by value only.
                return np.asarray(PY_OPS[op](sample(a, True), sample(b, True))).dtype.name
    except TypeError:
        return None
    except OverflowError:
        return "overflow"


def vec(dtype: str, name: str = "A"):
    return td.placeholder((N,), dtype=dtype, name=name)


def expected_or_refused(op, want, build):
    """tdsl gives NumPy's dtype, or refuses (TdslTypeError) where NumPy refuses, and also
    where NumPy would do arithmetic on two booleans (tdsl asks for | or &)."""
    bool_arith = want == "bool" and op in ("add", "sub", "mul")
    if want is None or bool_arith:
        with pytest.raises(TdslTypeError):
            build()
    else:
        assert build().dtype == want


@pytest.mark.parametrize("op", ARITH)
@pytest.mark.parametrize("ta,tb", list(itertools.product(DTYPES, DTYPES)),
                         ids=[f"{a}-{b}" for a, b in itertools.product(DTYPES, DTYPES)])
def test_promotion_of_two_tensors_matches_numpy(ta, tb, op):
    A, B = vec(ta, "A"), vec(tb, "B")
    want = numpy_result(op, ta, tb)
    expected_or_refused(op, want, lambda: PY_OPS[op](A[I], B[I]))


SCALARS = [pytest.param(2, id="int"), pytest.param(-3, id="negint"),
           pytest.param(1.5, id="float"), pytest.param(True, id="bool")]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "floordiv", "lt", "power"])
@pytest.mark.parametrize("scalar", SCALARS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_promotion_with_python_scalar_is_weak(dtype, scalar, op):
    """NEP 50: a Python scalar adopts the tensor's type unless its kind is higher."""
    A = vec(dtype)
    if (dtype, scalar, op) == ("uint8", -3, "lt"):
        return      # see test_compare_unsigned_with_out_of_range_int
    for left in (True, False):
        want = numpy_result(op, dtype, scalar) if left else numpy_result(op, scalar, dtype)
        build = (lambda: PY_OPS[op](A[I], scalar)) if left else \
            (lambda: PY_OPS[op](scalar, A[I]))
        if want == "overflow":                   # uint8 - 3: NumPy raises OverflowError
            with pytest.raises(TdslValueError, match=f"{scalar} does not fit in {dtype}"):
                build()
        else:
            expected_or_refused(op, want, build)


def test_numpy_scalars_are_strong():
    A = vec("float32")
    assert (A[I] + np.float64(1.0)).dtype == "float64"
    assert (A[I] + 1.0).dtype == "float32"
    assert (vec("int8")[I] + np.int32(1)).dtype == "int32"
    assert (vec("int8")[I] + 1).dtype == "int8"


def test_scalar_constant_takes_tensor_dtype():
    e = vec("int8")[I] + 1
    assert e.dtype == "int8"
    assert e.b.dtype == "int8" and e.b.value == 1
    f = vec("int32")[I] + 1.5       # int32 + Python float -> float64, operand cast
    assert f.dtype == "float64" and f.a.dtype == "float64"


def test_scalar_out_of_range_for_dtype():
    with pytest.raises(TdslValueError, match="300 does not fit in uint8"):
        vec("uint8")[I] + 300


def test_compare_unsigned_with_out_of_range_int():
    U = vec("uint8")
    assert (np.ones(3, "uint8") < -3).dtype == bool and (np.ones(3, "uint8") > 300).dtype == bool
    assert (U[I] < -3).dtype == "bool"
    assert (U[I] > 300).dtype == "bool"


def test_index_arithmetic_is_int64():
    assert (I * 2 + 1).dtype == "int64"
    assert (N - 1).dtype == "int64"
    assert (I < N).dtype == "bool"


@pytest.mark.parametrize("fn,arg,want", [
    (td.exp, "int32", "float64"), (td.exp, "float16", "float16"), (td.sqrt, "uint8", "float16"),
    (td.log, "int8", "float16"), (td.abs, "int16", "int16"), (td.floor, "float32", "float32"),
    (td.tanh, "float64", "float64"), (td.sigmoid, "float32", "float32"),
], ids=lambda x: getattr(x, "__name__", str(x)))
def test_intrinsic_result_types_follow_numpy_ufuncs(fn, arg, want):
    np_name = {"sigmoid": "exp"}.get(fn.__name__, fn.__name__)
    assert getattr(np, np_name)(np.ones(1, arg)).dtype.name == want     # the premise
    assert fn(vec(arg)[I]).dtype == want


@pytest.mark.parametrize("ta,tb", [("float32", "int32"), ("int8", "uint8"), ("float16", "int8")])
def test_maximum_minimum_promote(ta, tb):
    A, B = vec(ta, "A"), vec(tb, "B")
    want = np.maximum(np.ones(1, ta), np.ones(1, tb)).dtype.name
    assert td.maximum(A[I], B[I]).dtype == want
    assert td.minimum(A[I], B[I]).dtype == want


def test_astype_and_cast():
    A = vec("float32")
    assert A[I].astype("int8").dtype == "int8"
    assert A[I].astype(np.float64).dtype == "float64"
    assert A[I].astype("float32") is not None and A[I].astype("float32").dtype == "float32"
    with pytest.raises(TdslTypeError, match="dtype must be one of"):
        A[I].astype("complex64")


def test_select_and_logic_types():
    A, B = vec("int32", "A"), vec("float16", "B")
    s = td.select(A[I] > 0, A[I], B[I])
    assert s.dtype == np.result_type(np.int32, np.float16).name        # float32
    assert td.select(A[I] > 0, A[I], 0).dtype == "int32"
    assert td.all(A[I] > 0, B[I] < 1).dtype == "bool"
    assert td.any(A[I] > 0).dtype == "bool"
    assert (~(A[I] > 0)).dtype == "bool"
    assert (~A[I]).dtype == "int32"


# ---------------------------------------------------------------------------------------
# Refused expressions
# ---------------------------------------------------------------------------------------

def test_bool_of_expression_points_to_select():
    A = vec("float32")
    with pytest.raises(TdslTypeError, match=r"td\.select") as info:
        bool(A[I] > 0)
    assert "td.all" in str(info.value) and "td.any" in str(info.value)


@pytest.mark.parametrize("body", [
    pytest.param(lambda A, i: A[i] if A[i] > 0 else 0.0, id="if-else"),
    pytest.param(lambda A, i: (A[i] > 0) and (A[i] < 1), id="and"),
    pytest.param(lambda A, i: not (A[i] > 0), id="not"),
    pytest.param(lambda A, i: max(A[i], 0.0), id="builtin-max"),
])
def test_python_control_flow_in_a_compute_raises(body):
    A = vec("float32")
    with pytest.raises(TdslTypeError, match=r"td\.select"):
        td.compute((N,), lambda i: body(A, i), name="C")


@pytest.mark.parametrize("make,match", [
    pytest.param(lambda A, F: F[I] & F[I], r"cannot apply & to float32 and float32",
                 id="float&float"),
    pytest.param(lambda A, F: F[I] | True, r"cannot apply \|", id="float|bool-scalar"),
    pytest.param(lambda A, F: ~F[I], r"~ needs a boolean or integer", id="~float"),
    pytest.param(lambda A, F: -(F[I] > 0), r"cannot negate the boolean", id="-bool"),
    pytest.param(lambda A, F: F[I] + F, r"tensor F was used as a value; index it",
                 id="expr+tensor"),
    pytest.param(lambda A, F: A * F[I], r"tensor A was used as a value; index it",
                 id="tensor*expr"),
    pytest.param(lambda A, F: F[I] + "1", r"must be an expression or a number", id="expr+str"),
    pytest.param(lambda A, F: A[F[I]], r"index 0 of A must be an integer expression",
                 id="float-index-expr"),
    pytest.param(lambda A, F: A[1.5], r"index 0 of A must be an integer", id="float-index"),
    pytest.param(lambda A, F: td.select(F[I], 1, 0), r"condition must be boolean",
                 id="select-float-cond"),
    pytest.param(lambda A, F: td.all(F[I] > 0, F[I]), r"td\.all takes boolean", id="all-float"),
    pytest.param(lambda A, F: td.exp(F[I] > 0), r"td\.exp of the boolean", id="exp-bool"),
    pytest.param(lambda A, F: (F[I] > 0) + (F[I] < 1), r"arithmetic \+ on two booleans",
                 id="bool+bool"),
])
def test_incompatible_types_raise_type_error(make, match):
    A = td.placeholder((N,), dtype="int32", name="A")
    F = td.placeholder((N,), dtype="float32", name="F")
    with pytest.raises(TdslTypeError, match=match):
        make(A, F)


def test_tensor_used_as_compute_body_without_index():
    A = vec("float32")
    with pytest.raises(TdslTypeError, match="tensor A was used as a value; index it"):
        td.compute((N,), lambda i: A, name="C")


def test_tensor_times_scalar_without_index():
    A = vec("float32")
    with pytest.raises(TdslTypeError, match="index it"):
        td.compute((N,), lambda i: A * 2, name="C")


def test_wrong_index_count():
    A = td.placeholder((N, M), name="A")
    with pytest.raises(TdslValueError, match=r"A has 2 dimension\(s\) \(shape \(n, m\)\); "
                                             r"got 1 index"):
        A[I]
    with pytest.raises(TdslValueError, match="got 3 index"):
        A[I, J, I]


def test_slice_index_refused():
    A = td.placeholder((N, M), name="A")
    with pytest.raises(TdslTypeError, match="slices are not supported"):
        A[I, :]


def test_reduction_not_at_top_level():
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis(M, name="k")
    with pytest.raises(TdslValueError, match="must be the whole body of a compute") as info:
        td.compute((N,), lambda i: td.sum(A[i, k], axis=k) * 2, name="S")
    message = str(info.value)
    assert "td.compute(S)" in message and "own stage" in message


def test_reduction_inside_where_refused():
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis(M, name="k")
    with pytest.raises(TdslValueError, match="must be the whole body"):
        td.compute((N,), lambda i: td.sum(A[i, k], axis=k,
                                           where=td.max(A[i, k], axis=k) > 0), name="S")


def test_axis_of_another_compute():
    A = vec("float32")
    C = td.compute((N,), lambda i: A[i] * 2, name="C")
    (i0,) = C.op.axis
    with pytest.raises(TdslValueError, match="an axis of another compute cannot be used") \
            as info:
        td.compute((N,), lambda i: A[i0] + A[i], name="D")
    assert "td.compute(D)" in str(info.value) and "axis i" in str(info.value)


def test_reduce_axis_not_listed_in_axis():
    A = td.placeholder((N, M), name="A")
    k, k2 = td.reduce_axis(M, name="k"), td.reduce_axis(N, name="k2")
    with pytest.raises(TdslValueError, match=r"reduction axis k2.*pass it in axis="):
        td.compute((N,), lambda i: td.sum(A[i, k] + A[k2, k], axis=k), name="E")
    with pytest.raises(TdslValueError, match=r"reduction axis k.*pass it in axis="):
        td.compute((N,), lambda i: A[i, k], name="F")


def test_data_axis_passed_as_reduce_axis():
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis(M, name="k")
    with pytest.raises(TdslTypeError, match="takes reduction axes made with td.reduce_axis"):
        td.compute((N,), lambda i: td.sum(A[i, k], axis=i), name="G")


def test_where_must_be_boolean():
    A = td.placeholder((N, M), name="A")
    k = td.reduce_axis(M, name="k")
    with pytest.raises(TdslTypeError, match="where= must be boolean"):
        td.compute((N,), lambda i: td.sum(A[i, k], axis=k, where=A[i, k]), name="G")


def test_lambda_arity_must_match_shape():
    A = td.placeholder((N, M), name="A")
    with pytest.raises(TdslValueError, match="takes 1 argument.*2 dimension"):
        td.compute((N, M), lambda i: A[i, 0], name="G")


# ---------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------

def _vectors():
    return (td.placeholder((N, M), name="A"), td.placeholder((M, N), name="B"),
            td.placeholder((N,), name="v"), td.placeholder((N,), dtype="int32", name="I"))


PRINTED = [
    (lambda A, B, v, X: A[I, J] * B[J, I], "A[i, j] * B[j, i]"),
    (lambda A, B, v, X: (v[I] + 1) * 2, "(v[i] + 1.0) * 2.0"),
    (lambda A, B, v, X: v[I] - (v[J] - v[I]), "v[i] - (v[j] - v[i])"),
    (lambda A, B, v, X: v[I] * v[J] + v[I], "v[i] * v[j] + v[i]"),
    (lambda A, B, v, X: td.exp(v[I] - v[J]), "exp(v[i] - v[j])"),
    (lambda A, B, v, X: td.select(v[I] > 0, v[I], 0), "select(v[i] > 0.0, v[i], 0.0)"),
    (lambda A, B, v, X: X[I] // 2 % 3, "I[i] // 2 % 3"),
    (lambda A, B, v, X: X[I] / 2, "float64(I[i]) / 2.0"),
    (lambda A, B, v, X: A[I + 1, J * 2 - 1], "A[i + 1, j * 2 - 1]"),
    (lambda A, B, v, X: td.all(v[I] > 0, X[I] == 3), "(v[i] > 0.0) & (I[i] == 3)"),
    (lambda A, B, v, X: td.maximum(v[I], 0.0), "max(v[i], 0.0)"),
    (lambda A, B, v, X: v[I].astype("int8"), "int8(v[i])"),
    (lambda A, B, v, X: -(v[I] ** 2), "-(v[i] ** 2.0)"),
]


@pytest.mark.parametrize("make,text", [pytest.param(mk, t, id=t) for mk, t in PRINTED])
def test_expression_strings(make, text):
    assert str(make(*_vectors())) == text


def test_reduction_prints_with_axes_and_where():
    A = td.placeholder((N, M), name="A")
    B = td.placeholder((M, N), name="B")
    k = td.reduce_axis(M, name="k")
    C = td.compute((N, N), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k, where=k <= i),
                   name="C")
    assert str(C.op.body) == "sum(A[i, k] * B[k, j], axis=[k], where=k <= i)"
    assert [a.name for a in C.op.axis] == ["i", "j"]
    assert [a.name for a in C.op.reduce_axis] == ["k"]
    assert repr(C) == "Tensor(C, shape=(n, n), dtype=float32)"


def test_negation_under_power_keeps_parentheses():
    v = td.placeholder((N,), name="v")
    assert str((-v[I]) ** 2) == "(-v[i]) ** 2.0"


def test_float32_constant_prints_short():
    v = td.placeholder((N,), name="v")
    assert str(v[I] * 0.1) == "v[i] * 0.1"
