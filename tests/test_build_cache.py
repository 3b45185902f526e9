"""A schedule built before is fetched by its fingerprint without lowering again, and
every change to the algorithm or the schedule changes the fingerprint."""

import numpy as np
import pytest

import tdsl as td
from tdsl.schedule.fingerprint import fingerprint
from tdsl.schedule.lower import LazyLowered, Lowered


def _matmul(factor=8, kind="parallel", scale=1.0):
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j] * scale, axis=k), name="C")
    s = td.create_schedule(C)
    io, ii = s[C].split(C.op.axis[0], factor=factor)
    getattr(s[C], kind)(io)
    return s, [A, B, C]


def test_second_build_is_fetched_without_lowering(monkeypatch, tmp_path):
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path))
    s, args = _matmul()
    first = td.build(s, args)
    assert isinstance(first.lowered, Lowered)
    s2, args2 = _matmul()                       # new objects, same meaning
    second = td.build(s2, args2)
    assert isinstance(second.lowered, LazyLowered)
    assert second.source == first.source
    a, b = np.random.rand(37, 19).astype("float32"), np.random.rand(19, 23).astype("float32")
    c = np.empty((37, 23), "float32")
    second(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    assert "for i_outer" in str(second.kernel)  # lowered on demand


@pytest.mark.parametrize("change", [dict(factor=4), dict(kind="unroll"), dict(scale=2.0)],
                         ids=["factor", "loop-kind", "algorithm"])
def test_every_change_changes_the_fingerprint(change):
    s, args = _matmul()
    s2, args2 = _matmul(**change)
    assert fingerprint(s.data, args, "kernel") == fingerprint(s.data, args, "kernel")
    assert fingerprint(s.data, args, "kernel") != fingerprint(s2.data, args2, "kernel")
    assert fingerprint(s.data, args, "kernel") != fingerprint(s.data, args, "other")


def test_flags_are_part_of_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path))
    s, args = _matmul()
    td.build(s, args)
    monkeypatch.setenv("TDSL_CFLAGS", "-O2 -fopenmp -fPIC -shared -std=gnu11 -fwrapv")
    again = td.build(s, args)
    assert isinstance(again.lowered, Lowered)    # a new compile, not the cached entry
