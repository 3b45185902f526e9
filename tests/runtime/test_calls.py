"""The per-call path of a C Module beyond tests/test_module.py: both plans (the C
extension and pure Python) refuse exactly what the Python checks refuse, with the same
messages; byte order; the fast path is the one in use when the extension is built."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import TdslError, TdslTypeError
from tdsl.runtime import Module, plan

N, L, M = td.var("n"), td.var("l"), td.var("m")


@pytest.fixture(scope="module")
def matmul():
    A = td.placeholder((N, L), name="A")
    B = td.placeholder((L, M), name="B")
    k = td.reduce_axis(L, name="k")
    C = td.compute((N, M), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return td.build(td.create_schedule(C), [A, B, C])


def _calls():
    f = np.float32
    a, b, c = np.ones((3, 4), f), np.ones((4, 5), f), np.zeros((3, 5), f)
    sq = np.ones((4, 4), f)
    ro = c.copy()
    ro.flags.writeable = False
    return {"ok": (a, b, c), "count": (a, b), "dtype": (a, b.astype("float64"), c),
            "int-dtype": (a.astype("int32"), b, c), "rank": (a, np.ones(4, f), c),
            "fortran": (a, np.asfortranarray(b), c), "strided": (a, np.ones((4, 10), f)[:, ::2], c),
            "shape": (a, b, np.zeros((3, 6), f)), "binding": (a, np.ones((5, 5), f), c),
            "zero": (np.ones((0, 4), f), b, np.zeros((0, 5), f)), "readonly": (a, b, ro),
            "alias": (sq, sq.copy(), sq[:]), "alias-same": (sq, sq.copy(), sq),
            "partial-alias": (np.ones((4, 4), f), np.ones((4, 4), f), None),
            "list": ([[1.0] * 4] * 3, b, c), "byteorder": (a, b.astype(">f4"), c)}


def _outcome(mod, args):
    if args[-1] is None:                 # C is the second half of a buffer that B ends in
        buf = np.ones(20, "float32")
        args = (args[0], buf[:16].reshape(4, 4), buf[4:20].reshape(4, 4))
    try:
        mod(*args)
    except TdslError as e:
        return type(e).__name__, str(e)
    return "ok"


@pytest.mark.parametrize("name", list(_calls()))
def test_both_plans_refuse_like_the_python_checks(matmul, name):
    args = _calls()[name]
    pure = Module(matmul.lowered, matmul.source, None, "c", library=matmul.library,
                  pure_python=True)
    native = _outcome(matmul, args)
    assert _outcome(pure, args) == native
    if name == "ok":
        assert native == "ok"
    else:
        assert native != "ok"
        try:                                         # the Python checks alone: same words
            matmul._check(tuple(x for x in args if x is not None))
        except TdslError as e:
            if args[-1] is not None:
                assert native == (type(e).__name__, str(e))


def test_byte_order_is_checked(matmul):
    a, b, c = _calls()["byteorder"]
    with pytest.raises(TdslTypeError, match="argument B has non-native byte order"):
        matmul(a, b, c)


def test_the_extension_is_in_use():
    """`pip install` builds tdsl.runtime._fastcall; without it a call costs ~25 µs, not <1 µs."""
    import os
    if os.environ.get("TDSL_PURE_PYTHON") == "1":
        pytest.skip("TDSL_PURE_PYTHON=1")
    assert plan.NativePlan is not None, "tdsl.runtime._fastcall is not built: reinstall " \
                                        "with `pip install -e .` (needs a C compiler)"
