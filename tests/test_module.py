"""The `Module` boundary: every wrong call raises a clear error naming the argument,
leaves the outputs alone and never crashes; a right call afterwards still works.

Also: timing statistics, DLPack arguments, data-dependent indices out of range, and
allocation failures of intermediates reaching Python as MemoryError.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tdsl as td
from tdsl import TdslError, TdslIndexError, TdslMemoryError, TdslValueError

N, L, M = td.var("n"), td.var("l"), td.var("m")


@pytest.fixture(scope="module")
def matmul():
    A = td.placeholder((N, L), name="A")
    B = td.placeholder((L, M), name="B")
    k = td.reduce_axis(L, name="k")
    C = td.compute((N, M), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return td.build(td.create_schedule(C), [A, B, C])


def _arrays(n=3, l=4, m=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, l)).astype("float32"),
            rng.uniform(-1, 1, (l, m)).astype("float32"), np.zeros((n, m), "float32"))


def _works(mod, n=3, l=4, m=5):
    """A right call computes the right result."""
    a, b, c = _arrays(n, l, m, seed=n + l + m)
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)


def _refused(mod, args, error, *fragments):
    """`mod(*args)` raises `error` mentioning every fragment, writes no output, and a
    right call afterwards still works."""
    outputs = [x for x in args if isinstance(x, np.ndarray) and x.flags.writeable]
    before = [x.copy() for x in outputs]
    with pytest.raises(error) as info:
        mod(*args)
    assert isinstance(info.value, TdslError)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    for x, old in zip(outputs, before):
        np.testing.assert_array_equal(x, old)
    _works(mod)
    return message


# ---------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------

def test_right_call_at_several_sizes(matmul):
    for n, l, m in ((1, 1, 1), (3, 4, 5), (17, 2, 33)):
        _works(matmul, n, l, m)


@pytest.mark.parametrize("count", [0, 2, 4])
def test_wrong_argument_count(matmul, count):
    a, b, c = _arrays()
    args = [a, b, c, c.copy()][:count]
    _refused(matmul, args, TypeError, "takes 3 arrays (A, B, C)", f"got {count}")


@pytest.mark.parametrize("dtype", ["float64", "float16", "int32"])
def test_wrong_dtype(matmul, dtype):
    a, b, c = _arrays()
    _refused(matmul, (a, b.astype(dtype), c), TypeError,
             "argument B", "dtype float32", f"got {dtype}")


def test_wrong_output_dtype(matmul):
    a, b, c = _arrays()
    _refused(matmul, (a, b, c.astype("float64")), TypeError, "argument C", "float32")


@pytest.mark.parametrize("shape", [(4,), (1, 4, 5), ()], ids=["1d", "3d", "0d"])
def test_wrong_rank(matmul, shape):
    a, _, c = _arrays()
    b = np.ones(shape, "float32")
    _refused(matmul, (a, b, c), ValueError, "argument B", "2 dimension(s)", f"got {len(shape)}")


@pytest.mark.parametrize("make", [
    pytest.param(lambda b: np.asfortranarray(b), id="fortran"),
    pytest.param(lambda b: np.ones((4, 10), "float32")[:, ::2], id="strided"),
])
def test_non_contiguous(matmul, make):
    a, b, c = _arrays()
    _refused(matmul, (a, make(b), c), ValueError, "argument B", "C-contiguous")


def test_non_contiguous_output(matmul):
    a, b, _ = _arrays()
    c = np.zeros((5, 3), "float32").T
    _refused(matmul, (a, b, c), ValueError, "argument C", "C-contiguous")


def test_output_shape_mismatch_names_argument_and_both_shapes(matmul):
    a, b, _ = _arrays()
    message = _refused(matmul, (a, b, np.zeros((3, 6), "float32")), ValueError,
                       "argument C", "(3, 5)", "(3, 6)")
    assert "m = 5" in message         # says which size and where it came from


def test_inconsistent_symbolic_sizes(matmul):
    """l is bound from A (3, 4); B's first dimension must then be 4."""
    a, _, c = _arrays()
    message = _refused(matmul, (a, np.ones((5, 5), "float32"), c), ValueError,
                       "argument B", "(4, 5)", "(5, 5)")
    assert "l" in message and "A" in message


def test_zero_size_refused(matmul):
    _refused(matmul, (np.ones((0, 4), "float32"), np.ones((4, 5), "float32"),
                      np.zeros((0, 5), "float32")), ValueError, "n = 0", "sizes must be >= 1")


def test_read_only_output(matmul):
    a, b, c = _arrays()
    c.flags.writeable = False
    _refused(matmul, (a, b, c), ValueError, "argument C", "writeable")


def test_read_only_input_is_fine(matmul):
    a, b, c = _arrays()
    a.flags.writeable = False
    b.flags.writeable = False
    matmul(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)


def test_not_an_array(matmul):
    _, b, c = _arrays()
    _refused(matmul, ([[1.0] * 4] * 3, b, c), TypeError, "argument A", "NumPy array", "list")


@pytest.fixture(scope="module")
def square_matmul():
    A = td.placeholder((N, N), name="A")
    B = td.placeholder((N, N), name="B")
    k = td.reduce_axis(N, name="k")
    C = td.compute((N, N), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return td.build(td.create_schedule(C), [A, B, C])


def test_output_aliasing_input_view(square_matmul):
    a = np.random.default_rng(1).uniform(-1, 1, (4, 4)).astype("float32")
    b = a.copy()
    with pytest.raises(TdslValueError, match="argument C .*shares memory with A"):
        square_matmul(a, b, a[:])            # a different view of A's memory
    np.testing.assert_array_equal(a, b)
    c = np.zeros_like(a)
    square_matmul(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)


def test_output_is_the_same_array_as_an_input(square_matmul):
    a = np.random.default_rng(2).uniform(-1, 1, (4, 4)).astype("float32")
    b = a.copy()
    want = a @ b
    try:
        with pytest.raises(TdslValueError, match="argument C .*shares memory with A"):
            square_matmul(a, b, a)
    finally:
        # Whether or not it was refused, the result must never be silently wrong.
        assert np.array_equal(a, b) or np.allclose(a, want, rtol=1e-5)


def test_two_outputs_same_array():
    X = td.placeholder((N,), name="X")
    Y = td.compute((N,), lambda i: X[i] + 1, name="Y")
    Z = td.compute((N,), lambda i: X[i] * 3, name="Z")
    mod = td.build(td.create_schedule([Y, Z]), [X, Y, Z])
    x, y = np.ones(3, "float32"), np.zeros(3, "float32")
    with pytest.raises(TdslValueError, match="shares memory"):
        mod(x, y, y)


# ---------------------------------------------------------------------------------------
# Timing, source
# ---------------------------------------------------------------------------------------

def test_time_returns_statistics(matmul):
    a, b, c = _arrays(8, 8, 8)
    timing = matmul.time(a, b, c, repeat=4, number=3)
    assert len(timing.times) == 4
    assert all(t > 0 for t in timing.times)
    assert timing.min == min(timing.times)
    assert timing.median == float(np.median(timing.times))
    assert timing.min <= timing.median
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)      # it really ran
    assert "median" in str(timing)


def test_time_checks_arguments(matmul):
    a, b, _ = _arrays()
    with pytest.raises(TdslValueError, match="argument C"):
        matmul.time(a, b, np.zeros((2, 2), "float32"))


def test_source_is_the_generated_c(matmul):
    assert "int kernel(" in matmul.source
    assert "const float* restrict A" in matmul.source
    assert "A, B, C" in repr(matmul)


# ---------------------------------------------------------------------------------------
# DLPack
# ---------------------------------------------------------------------------------------

class DLPackOnly:
    """An array-like that is not a NumPy array and speaks only DLPack."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_dlpack_object_without_copy(matmul):
    a, b, c = _arrays()
    matmul(DLPackOnly(a), DLPackOnly(b), DLPackOnly(c))
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)     # written in place


def test_dlpack_object_checked_like_an_array(matmul):
    a, b, c = _arrays()
    _refused(matmul, (DLPackOnly(a), DLPackOnly(b.astype("float64")), c), TypeError,
             "argument B", "float64")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="PyTorch is not installed; the DLPack path is covered by "
                           "test_dlpack_object_without_copy")
def test_torch_cpu_tensors(matmul):
    import torch
    a = torch.rand(3, 4)
    b = torch.rand(4, 5)
    c = torch.zeros(3, 5)
    matmul(a, b, c)
    torch.testing.assert_close(c, a @ b, rtol=1e-5, atol=1e-5)
    with pytest.raises(TdslValueError, match="argument B"):
        matmul(a, b.t(), c)                   # a transposed view is not C-contiguous


# ---------------------------------------------------------------------------------------
# Data-dependent indices
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gather():
    A = td.placeholder((N,), name="A")
    idx = td.placeholder((M,), dtype="int32", name="idx")
    G = td.compute((M,), lambda i: A[idx[i]] * 2, name="G")
    return td.build(td.create_schedule(G), [A, idx, G])


@pytest.mark.parametrize("bad", [5, -1, 2**31 - 1, -(2**31)], ids=str)
def test_gather_out_of_range_raises_index_error(gather, bad):
    a = np.arange(5, dtype="float32")
    g = np.zeros(3, "float32")
    with pytest.raises(IndexError) as info:
        gather(a, np.array([0, bad, 1], "int32"), g)
    assert isinstance(info.value, TdslIndexError)
    assert "out of bounds" in str(info.value)
    gather(a, np.array([4, 0, 2], "int32"), g)            # the module still works
    np.testing.assert_array_equal(g, a[[4, 0, 2]] * 2)


# ---------------------------------------------------------------------------------------
# Allocation failure of an intermediate
# ---------------------------------------------------------------------------------------

def _huge_intermediate(width: int):
    """C[i] = T[i, 0] + 1 with T of shape (n, width) computed in full at root."""
    A = td.placeholder((N,), name="A")
    T = td.compute((N, width), lambda i, j: A[i] * 2.0, name="T")
    C = td.compute((N,), lambda i: T[i, 0] + 1.0, name="C")
    return td.build(td.create_schedule(C), [A, C])


def test_intermediate_too_large_for_address_space_raises_memory_error():
    """2**50 float32 elements (4 PiB): beyond any address space, so the allocation fails
    whatever the overcommit policy; the kernel must report it, not crash."""
    mod = _huge_intermediate(2**50)
    a, c = np.ones(2, "float32"), np.zeros(2, "float32")
    with pytest.raises(MemoryError) as info:
        mod(a, c)
    assert isinstance(info.value, TdslMemoryError)
    assert "allocate" in str(info.value)
    small = _huge_intermediate(3)
    small(a, c)
    np.testing.assert_array_equal(c, a * 2 + 1)


RLIMIT_CHILD = textwrap.dedent("""
    import resource, numpy as np, tdsl as td
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    T = td.compute((n, {width}), lambda i, j: A[i] * 2.0, name="T")
    C = td.compute((n,), lambda i: T[i, 0] + 1.0, name="C")
    mod = td.build(td.create_schedule(C), [A, C])
    mod(np.ones(1, "float32"), np.zeros(1, "float32"))            # warm up
    vm = [int(x.split()[1]) * 1024 for x in open("/proc/self/status")
          if x.startswith("VmSize:")][0]
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = vm + (512 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (soft if hard < 0 else min(soft, hard), hard))
    a, c = np.ones({n_big}, "float32"), np.zeros({n_big}, "float32")
    try:
        mod(a, c)
        print("no error")
    except td.TdslMemoryError as e:
        print("MemoryError:", e)
    a, c = np.arange(3, dtype="float32"), np.zeros(3, "float32")
    mod(a, c)                                                     # still works
    assert (c == a * 2 + 1).all(), c
    print("recovered")
""")


def _run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)


def test_memory_error_under_address_space_limit():
    """Under RLIMIT_AS, an intermediate of 1 GiB (n = 256 rows of 4 MiB) cannot be
    allocated: MemoryError, the process survives, and a small call works after."""
    result = _run_child(RLIMIT_CHILD.format(width=2**20, n_big=256))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MemoryError: the kernel could not allocate" in result.stdout, result.stdout
    assert "recovered" in result.stdout


def test_allocation_size_overflow_is_a_memory_error():
    code = textwrap.dedent("""
        import numpy as np, tdsl as td
        n = td.var("n")
        A = td.placeholder((n,), name="A")
        T = td.compute((n, 2**62), lambda i, j: A[i] * 2.0, name="T")
        C = td.compute((n,), lambda i: T[i, 0] + 1.0, name="C")
        mod = td.build(td.create_schedule(C), [A, C])
        try:
            mod(np.ones(1, "float32"), np.zeros(1, "float32"))
        except td.TdslMemoryError:
            print("MemoryError")
    """)
    try:
        result = _run_child(code, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the kernel ran on with a wrapped allocation size")
    assert result.returncode == 0, f"child died: exit {result.returncode}"
    assert "MemoryError" in result.stdout


# ---------------------------------------------------------------------------------------
# td.build's own argument checks
# ---------------------------------------------------------------------------------------

def test_build_errors():
    X = td.placeholder((N,), name="X")
    B = td.placeholder((N,), name="B")
    Y = td.compute((N,), lambda i: X[i] * 2 + B[i], name="Y")
    s = td.create_schedule(Y)
    with pytest.raises(TdslValueError, match="unknown target 'nope'"):
        td.build(s, [X, B, Y], target="nope")
    with pytest.raises(TdslValueError, match="missing the input B"):
        td.build(s, [X, Y])
    with pytest.raises(TdslValueError, match="missing the output Y"):
        td.build(s, [X, B])
    with pytest.raises(TdslValueError, match="Y is listed twice"):
        td.build(s, [X, B, Y, Y])
    mod = td.build(s, [B, X, Y])              # any order of arguments
    x, b, y = np.arange(4, dtype="float32"), np.ones(4, "float32"), np.zeros(4, "float32")
    mod(b, x, y)
    np.testing.assert_array_equal(y, x * 2 + b)
