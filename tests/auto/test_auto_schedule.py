"""td.auto_schedule: legal, correct, and the schedule the rules promise, per program.

Every program of the schedule tests (symbolic sizes, ragged and dividing) against NumPy
with canaries around every array; constant-size workloads with checks of what the rules
chose (a register tile in registers, reductions in lanes at the row, stencil tiles);
the CUDA rules through the emulator.
"""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tests.schedule import test_primitives as programs
from tests.schedule.test_idioms import full_tile_reduction_loops

PROGRAMS = {
    "matmul": programs.matmul, "conv2d": programs.conv2d, "blur": programs.blur,
    "softmax": programs.softmax, "prefix_sum": programs.prefix_sum, "iir": programs.iir,
    "row_sum": programs.row_sum, "stencil_chain": programs.stencil_chain,
    "two_consumers": programs.two_consumers,
    "two_outputs": lambda: programs.two_consumers(both_outputs=True), "pad1d": programs.pad1d,
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_auto_schedule_of_every_schedule_test_program(name):
    p = PROGRAMS[name]()
    s = td.auto_schedule(p.outputs)
    programs.verify(p, s)


@pytest.mark.parametrize("target", ["c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4"],
                         ids=["avx2", "avx512"])
@pytest.mark.parametrize("n,m,l", [(64, 96, 32), (37, 50, 19)], ids=["dividing", "ragged"])
def test_matmul_gets_a_register_tile(n, m, l, target):
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.auto_schedule(C, target=target)
    text = "\n".join(s.history)
    assert "cache_write(C, 'local')" in text and "unroll" in text and "parallel" in text
    mod = td.build(s, [A, B, C], target=target)
    rows, cols = td.examples.register_tile_shape(target)
    loops = full_tile_reduction_loops(mod.source)
    assert loops and loops[0].count("C_local[") == 2 * rows * (cols // td.target(target).lanes())
    if td.target(target).runs_here():
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((n, l), np.float32), rng.standard_normal((l, m), np.float32)
        c = np.empty((n, m), np.float32)
        mod(a, b, c)
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_softmax_reductions_in_lanes_at_the_row():
    p = programs.softmax()
    s = td.auto_schedule(p.outputs)
    text = "\n".join(s.history)
    assert "rfactor" in text and "compute_at" in text and "parallel" in text
    for stage in s.stages:
        if stage.name != p.outputs[0].name:
            assert "computed at" in s.show().split(f"Stage {stage.name}")[1].split("\n")[0]
    programs.verify(p, s)


def test_conv2d_keeps_padding_as_a_stage_and_tiles_channels():
    p = programs.conv2d()
    s = td.auto_schedule(p.outputs)
    text = "\n".join(s.history)
    assert "s[Apad].compute_inline" not in text and "s[Apad].compute_at" not in text
    assert "cache_write(O, 'local')" in text
    programs.verify(p, s)


def test_blur_computes_the_producer_per_tile():
    p = programs.blur()
    s = td.auto_schedule(p.outputs)
    assert any(line.startswith(f"s[{p.bx.name}].compute_at") for line in s.history)
    programs.verify(p, s)


@pytest.mark.parametrize("shape", [(40, 24), (33, 17)], ids=str)
def test_transpose_and_column_sum(shape):
    n, m = shape
    x = td.placeholder((n, m), name="x")
    t = td.compute((m, n), lambda i, j: x[j, i], name="t")
    s = td.auto_schedule(t)
    assert any(".tile(" in h for h in s.history)
    mod = td.build(s, [x, t])
    a = np.random.default_rng(1).standard_normal((n, m), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    mod(a, out)
    np.testing.assert_array_equal(out, a.T)

    r = td.reduce_axis(n, name="r")
    col = td.compute((m,), lambda j: td.sum(x[r, j], axis=r), name="col")
    s = td.auto_schedule(col)
    assert any("vectorize" in h for h in s.history)
    mod = td.build(s, [x, col])
    got = np.empty(m, np.float32)
    mod(a, got)
    np.testing.assert_allclose(got, a.sum(0), rtol=1e-5, atol=1e-5)


def test_every_choice_is_a_legal_public_primitive():
    """The schedule carries the calls the rules made, as for a user; relowering checks
    the whole schedule again."""
    p = programs.softmax()
    s = td.auto_schedule(p.outputs)
    assert s.history and all(h.startswith("s") for h in s.history)
    td.lower(s, p.args)


@pytest.mark.needs_nvcc
@pytest.mark.parametrize("name", ["matmul", "softmax", "blur"])
def test_cuda_auto_schedule_on_the_emulator(name):
    p = PROGRAMS[name]()
    s = td.auto_schedule(p.outputs, target="cuda")
    assert any("blockIdx.x" in h for h in s.history)
    mod = td.build(s, p.args, target="cuda", emulate=True)
    combo = p.sizes[0]
    rng = np.random.default_rng(0)
    feeds = {t: programs.random_array(t, combo, rng) for t in p.args
             if isinstance(t.op, td.lang.PlaceholderOp)}
    want = p.numpy({t.name: a for t, a in feeds.items()}, {v.name: k for v, k in combo.items()})
    outs = [np.empty(w.shape, np.float32) for w in want]
    mod(*feeds.values(), *outs)
    for got, exp in zip(outs, want):
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["matmul", "softmax", "conv2d", "blur"])
def test_printed_schedule_is_code_that_rebuilds_it(name):
    """print(s) shows the primitives as Python: pasted after the compute definitions, it
    makes the same schedule."""
    p = PROGRAMS[name]()
    s = td.auto_schedule(p.outputs)
    code = s.script()
    assert "\n".join("  " + line for line in code.splitlines()) in str(s)
    fresh = td.create_schedule(p.outputs)
    scope = {"s": fresh, **{t.name: t for t in p.t.values() if isinstance(t, td.Tensor)}}
    exec(code, scope)
    assert fresh.history == s.history
