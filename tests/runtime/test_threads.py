"""Concurrent callers: 8 Python threads hammering several Modules (serial and parallel
kernels) with random shapes, right and wrong calls mixed; results exact against NumPy.
Also: the thread budget (TDSL_NUM_THREADS) is read once and validated."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import tdsl as td
from tdsl import TdslValueError
from tdsl.runtime import Module, plan

N, L, M = td.var("n"), td.var("l"), td.var("m")


def _modules():
    X = td.placeholder((N,), name="X")
    Y = td.placeholder((N,), name="Y")
    Z = td.compute((N,), lambda i: X[i] + Y[i], name="Z")
    add = td.build(td.create_schedule(Z), [X, Y, Z], name="add")

    A = td.placeholder((N, L), dtype="int32", name="A")
    B = td.placeholder((L, M), dtype="int32", name="B")
    k = td.reduce_axis(L, name="k")
    C = td.compute((N, M), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    s[C].parallel(C.op.axis[0])
    matmul = td.build(s, [A, B, C], name="imatmul")
    return add, matmul


def _pure(mod):
    """The same library called through the pure-Python plan."""
    return Module(mod.lowered, mod.source, None, "c", library=mod.library, pure_python=True)


def _hammer(add, matmul, seed: int, errors: list, rounds: int = 150):
    rng = np.random.default_rng(seed)
    try:
        for r in range(rounds):
            threads = [None, 1, 2][r % 3]
            if rng.random() < 0.5:
                n = int(rng.integers(1, 300))
                x = rng.standard_normal(n).astype("float32")
                y = rng.standard_normal(n).astype("float32")
                z = np.empty(n, "float32")
                add(x, y, z, num_threads=threads)
                np.testing.assert_array_equal(z, x + y)
            else:
                n, l, m = (int(v) for v in rng.integers(1, 24, 3))
                a = rng.integers(-50, 50, (n, l)).astype("int32")
                b = rng.integers(-50, 50, (l, m)).astype("int32")
                c = np.empty((n, m), "int32")
                matmul(a, b, c, num_threads=threads)
                np.testing.assert_array_equal(c, a @ b)
            if r % 10 == 0:                  # a wrong call in the middle of the traffic
                with pytest.raises(TdslValueError, match="argument Z should have shape"):
                    add(np.ones(3, "float32"), np.ones(3, "float32"), np.ones(4, "float32"))
    except BaseException as e:               # reported by the main thread
        errors.append(e)


@pytest.mark.parametrize("kind", ["native", "pure-python"])
def test_eight_threads_hammering_two_modules(kind):
    add, matmul = _modules()
    if kind == "pure-python":
        add, matmul = _pure(add), _pure(matmul)
    errors: list = []
    pool = [threading.Thread(target=_hammer, args=(add, matmul, seed, errors))
            for seed in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in pool), "a caller hung"
    assert not errors, errors[0]
    if plan.NativePlan is not None:                  # every call, refused ones included,
        from tdsl.runtime import _fastcall           # gave its share of threads back
        assert _fastcall.calls_in_flight() == 0


def test_one_module_many_threads_same_arrays_shapes():
    """Threads share the Module, never per-call state: each sees its own result."""
    add, _ = _modules()
    results = {}

    def call(k):
        x = np.full(1000, k, "float32")
        z = np.empty(1000, "float32")
        for _ in range(200):
            add(x, x, z)
        results[k] = z

    pool = [threading.Thread(target=call, args=(k,)) for k in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for k, z in results.items():
        assert (z == 2 * k).all()


@pytest.mark.parametrize("value, expected", [("3", "3"), ("0", "must be a positive integer"),
                                             ("many", "must be a positive integer")])
def test_thread_budget_is_read_once_and_validated(value, expected):
    code = ("import os\nfrom tdsl.runtime import plan\nos.environ['TDSL_NUM_THREADS'] = '7'\n"
            "import importlib\nprint(plan.BUDGET)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"TDSL_NUM_THREADS": value, "PATH": ""}, timeout=60)
    assert expected in result.stdout + result.stderr


def test_module_num_threads_setting():
    add, matmul = _modules()
    matmul.num_threads = 1
    a = np.arange(12, dtype="int32").reshape(3, 4)
    b = np.ones((4, 2), "int32")
    c = np.empty((3, 2), "int32")
    matmul(a, b, c)
    np.testing.assert_array_equal(c, a @ b)
    matmul(a, b, c, num_threads=2)
    np.testing.assert_array_equal(c, a @ b)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_num_threads_must_be_a_positive_integer(bad):
    add, _ = _modules()
    x = np.ones(3, "float32")
    with pytest.raises(TdslValueError, match="num_threads must be a positive integer"):
        add(x, x, np.empty(3, "float32"), num_threads=bad)
    with pytest.raises(TdslValueError, match="num_threads must be a positive integer"):
        add.num_threads = bad
    add.num_threads = None
    assert add.num_threads is None
