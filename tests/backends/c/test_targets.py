"""Targets: the ISA comes from the compiler, vector code follows the target's width.

Every kernel is compiled for SSE2 (x86-64), AVX2 (x86-64-v3) and AVX-512 (x86-64-v4) and
run, against NumPy, wherever this CPU can execute the code (an AVX-512 machine runs all
three; an AVX2 machine compiles the AVX-512 code and runs the other two).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tdsl as td

TARGETS = {"sse2": "c -mcpu=x86-64", "avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


def test_target_properties_come_from_the_compiler():
    assert td.target("c -mcpu=x86-64-v3").vector_bytes == 32
    assert td.target("c -mcpu=x86-64-v3").vector_registers == 16
    assert td.target("c -mcpu=x86-64-v3").lanes("float32") == 8
    assert td.target("c -mcpu=x86-64-v4").lanes("float32") == 16
    assert td.target("c -mcpu=x86-64-v4").lanes("float64") == 8
    assert td.target("c -mcpu=x86-64-v4").vector_registers == 32
    assert td.target("c -mcpu=x86-64").vector_bytes == 16
    assert td.target("c -mcpu=x86-64").runs_here()
    assert str(td.target("c -mcpu=x86-64-v3")) == "c -mcpu=x86-64-v3"
    assert td.target("c").mcpu == "native"
    assert "AVX2" in td.target("c -mcpu=x86-64-v3").describe()


def test_default_target_from_the_environment(monkeypatch):
    monkeypatch.setenv("TDSL_TARGET", "c -mcpu=x86-64-v3")
    assert td.target().mcpu == "x86-64-v3"
    monkeypatch.delenv("TDSL_TARGET")
    assert td.target().mcpu == "native"


@pytest.mark.parametrize("spec,phrases", [
    ("llvm", ["unknown target 'llvm'", "c -mcpu=x86-64-v3"]),
    ("c -march=x86-64-v3", ["unknown option '-march=x86-64-v3'", "-mcpu=<cpu>"]),
    ("c -mcpu=pentium-9000", ["the CPU 'pentium-9000' is not one", "x86-64-v3"]),
    ("cuda -mcpu=x86-64-v3", ["takes no -mcpu", "arch="]),
])
def test_bad_targets_are_explained(spec, phrases):
    with pytest.raises(td.TdslValueError) as info:
        td.target(spec)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_bad_target_in_build_fails_before_any_work():
    A = td.placeholder((4,), name="A")
    B = td.compute((4,), lambda i: A[i] + 1.0, name="B")
    with pytest.raises(td.TdslValueError, match="unknown option"):
        td.build(td.create_schedule(B), [A, B], target="c -O9")


def _kernels():
    """(name, build(n) -> (schedule, args), numpy(inputs) -> expected)."""
    def elementwise(dtype, fn, ref):
        def make(n):
            a = td.placeholder((n,), name="a", dtype=dtype)
            b = td.placeholder((n,), name="b", dtype=dtype)
            out = td.compute((n,), lambda i: fn(a[i], b[i]), name="out")
            s = td.create_schedule(out)
            s[out].vectorize(out.op.axis[0])
            return s, [a, b, out]
        return make, ref

    def rowsum(n):
        x = td.placeholder((3, n), name="x")
        k = td.reduce_axis(n, name="k")
        out = td.compute((3,), lambda i: td.sum(x[i, k], axis=k), name="out")
        s = td.create_schedule(out)
        _, ki = s[out].split(k, factor=8)
        part = s.rfactor(out, ki)
        lane, _ = part.op.axis
        s[part].reorder(part.op.reduce_axis[0], lane)
        s[part].vectorize(lane)
        return s, [x, out]

    return {
        "f32-fma-relu": elementwise("float32", lambda x, y: td.maximum(x * y + 1.5, 0.0),
                                    lambda a, b: np.maximum(a * b + 1.5, 0)),
        "f32-exp-select": elementwise(
            "float32", lambda x, y: td.select(x > y, td.exp(x - y), -y),
            lambda a, b: np.where(a > b, np.exp(a - b), -b)),
        "f32-min": elementwise("float32", lambda x, y: td.minimum(x, y) / 3.0,
                               lambda a, b: np.minimum(a, b) / 3),
        "f64-mul-sub": elementwise("float64", lambda x, y: x * y - x,
                                   lambda a, b: a * b - a),
        "i32-max-add": elementwise("int32", lambda x, y: td.maximum(x, y) + x,
                                   lambda a, b: np.maximum(a, b) + a),
        "f32-rowsum-8-lanes": (rowsum, None),
    }


KERNELS = _kernels()


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("n", [5, 13, 40])
def test_vector_kernels_on_every_target(kernel, target, n):
    make, ref = KERNELS[kernel]
    s, args = make(n)
    spec = TARGETS[target]
    mod = td.build(s, args, target=spec)
    lanes = td.target(spec).lanes(args[-1].dtype)
    widest = max((int(w) for w in re.findall(r"tdsl_[fi](?:32|64)x(\d+)_u\*", mod.source)),
                 default=0)
    assert widest <= lanes, f"vectors of {widest} lanes in code for {spec}"
    if not td.target(spec).runs_here():
        return
    rng = np.random.default_rng(n)
    inputs = []
    for t in args[:-1]:
        shape = tuple(d.value for d in t.shape)
        values = rng.standard_normal(shape) * 3
        inputs.append(values.astype(t.dtype))
    out = np.empty(tuple(d.value for d in args[-1].shape), args[-1].dtype)
    mod(*inputs, out)
    expected = ref(*inputs) if ref is not None else inputs[0].sum(axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_a_loop_wider_than_a_vector_is_split_into_native_vectors():
    a = td.placeholder((64,), name="a")
    out = td.compute((64,), lambda i: a[i] * 2.0, name="out")
    s = td.create_schedule(out)
    s[out].vectorize(out.op.axis[0])
    avx2 = td.build(s, [a, out], target="c -mcpu=x86-64-v3").source
    assert avx2.count("*(tdsl_f32x8_u*)&out[") == 8 and "f32x16" not in avx2.split("int kernel")[1]
    avx512 = td.build(s, [a, out], target="c -mcpu=x86-64-v4").source
    assert avx512.count("*(tdsl_f32x16_u*)&out[") == 4


def test_a_remainder_uses_a_narrower_vector():
    a = td.placeholder((13,), name="a")
    out = td.compute((13,), lambda i: a[i] * 2.0, name="out")
    s = td.create_schedule(out)
    s[out].vectorize(out.op.axis[0])
    body = td.build(s, [a, out], target="c -mcpu=x86-64-v3").source.split("int kernel")[1]
    # 8 lanes, then 4 lanes, then one scalar statement (no loop: in a register tile a
    # loop kept the accumulators in memory)
    assert "*(tdsl_f32x8_u*)&out[0L]" in body and "*(tdsl_f32x4_u*)&out[8L]" in body
    assert "omp simd" not in body and "out[12L] = " in body
