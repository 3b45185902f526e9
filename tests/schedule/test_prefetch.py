"""`s[X].prefetch(tensor, axis, offset)`: X's reads of `tensor` also asked for `offset`
iterations of `axis` ahead, as cache hints spread through X's inner loops. The hints
change no result: softmax and a stencil with them are checked against NumPy at dividing,
ragged and symbolic sizes, on both x86 targets, with offsets ahead, behind and past the
last row. The hinted addresses are checked in the loop IR (a split axis moves by its
step; a stencil prefetches only the row it does not read yet) and in the C (one hint
per vector of contiguous lanes, one per lane of strided ones). Refusals name what to do
instead; the CUDA backend drops the hints; td.auto_schedule prefetches the next row in
the last pass of a row pipeline that reads its input twice, and that pass's next row of
the output for the write. A stage that prefetches its
own output asks for a write (gcc's builtin with rw = 1), at constant and symbolic sizes,
in a reduction's init and update alike."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl.auto.knobs import Knobs
from tdsl.auto.rules import apply_rules
from tdsl.errors import ScheduleError

TARGETS = ("c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4")


def _softmax(n, m):
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    mx = td.compute((n,), lambda i: td.max(x[i, k1], axis=k1), name="mx")
    e = td.compute((n, m), lambda i, j: td.exp(x[i, j] - mx[i]), name="e")
    tot = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="tot")
    out = td.compute((n, m), lambda i, j: e[i, j] / tot[i], name="out")
    return x, mx, e, tot, out


def _row_schedule(x, mx, e, tot, out, vector=8):
    s = td.create_schedule(out)
    i, j = out.op.axis
    s[out].parallel(i)
    for t in (tot, e, mx):                        # consumers first
        s[t].compute_at(s[out], i)
    _, ji = s[e].split(e.op.axis[1], vector)
    s[e].vectorize(ji)
    s[out].vectorize(j)
    return s


def _numpy_softmax(a):
    ex = np.exp(a - a.max(1, keepdims=True))
    return ex / ex.sum(1, keepdims=True)


def _check_softmax_runs(mod, target, rows, cols, seed):
    """The hinted softmax equals NumPy's (skipped where this CPU cannot run `target`)."""
    if not td.target(target).runs_here():
        pytest.skip(f"{target} code compiled (hints checked); this CPU cannot run it")
    a = np.random.default_rng(seed).standard_normal((rows, cols)).astype("float32")
    y = np.empty_like(a)
    mod(a, y)                                   # the last rows prefetch past the end
    np.testing.assert_allclose(y, _numpy_softmax(a), rtol=1e-5, atol=1e-6)


def _prefetch_lines(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if "__builtin_prefetch" in line]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("rows,cols,offset", [(16, 64, 1), (37, 1000, 3), (37, 1000, -1),
                                              (1, 3, 1), (1, 3, -1)], ids=str)
def test_softmax_with_the_next_row_prefetched(target, rows, cols, offset):
    x, mx, e, tot, out = _softmax(rows, cols)
    s = _row_schedule(x, mx, e, tot, out)
    s[e].prefetch(x, e.op.axis[0], offset)
    assert f"s[e].prefetch(x, i, {offset})" in s.script()
    text = str(td.lower(s, [x, out]))
    sign = "+" if offset > 0 else "-"
    row = str(offset) if rows == 1 else f"i {sign} {abs(offset)}"    # one row: no loop
    assert f"prefetch x[{row}, " in text, text
    mod = td.build(s, [x, out], target=target)
    hints = _prefetch_lines(mod.source)
    assert hints and all("(uintptr_t)x" in h for h in hints)
    _check_softmax_runs(mod, target, rows, cols, seed=rows)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("rows,cols,offset", [(16, 64, 1), (37, 1000, 2), (37, 1000, -1),
                                              (1, 3, 1)], ids=str)
def test_a_stage_prefetches_its_own_output_for_the_write(target, rows, cols, offset):
    """s[out].prefetch(out, i): out's own row i + offset, hinted for a write (the third
    argument of gcc's builtin is 1: x86 prefetchw), one hint per vector of its store,
    beside the read hints of x in e; the results are unchanged."""
    x, mx, e, tot, out = _softmax(rows, cols)
    s = _row_schedule(x, mx, e, tot, out)
    s[e].prefetch(x, e.op.axis[0])
    s[out].prefetch(out, out.op.axis[0], offset)
    assert f"s[out].prefetch(out, i, {offset})" in s.script()
    text = str(td.lower(s, [x, out]))
    sign = "+" if offset > 0 else "-"
    row = str(offset) if rows == 1 else f"i {sign} {abs(offset)}"
    assert f"prefetch for write out[{row}, " in text, text
    mod = td.build(s, [x, out], target=target)
    hints = _prefetch_lines(mod.source)
    writes = [h for h in hints if "(uintptr_t)out" in h]
    reads = [h for h in hints if "(uintptr_t)x" in h]
    assert writes and all(h.endswith(", 1, 3);") for h in writes), hints
    assert reads and all(h.endswith(", 0, 3);") for h in reads), hints
    _check_softmax_runs(mod, target, rows, cols, seed=cols)


def test_own_output_prefetch_with_symbolic_sizes_and_a_reduction():
    """A reduction stage prefetching its own output along its row axis: both its init
    and its update statement write it; symbolic sizes; the results are unchanged."""
    n, m = td.var("n"), td.var("m")
    x = td.placeholder((n, m), name="x")
    k = td.reduce_axis(m, name="k")
    total = td.compute((n,), lambda i: td.sum(x[i, k], axis=k), name="total")
    s = td.create_schedule(total)
    s[total].prefetch(total, total.op.axis[0], 4)
    text = str(td.lower(s, [x, total]))
    assert "prefetch for write total[i + 4]" in text, text
    mod = td.build(s, [x, total])
    assert any("(uintptr_t)total" in h and h.endswith(", 1, 3);")
               for h in _prefetch_lines(mod.source))
    for rows, cols in ((9, 33), (1, 1), (64, 128)):
        a = np.random.default_rng(cols).standard_normal((rows, cols)).astype("float32")
        y = np.empty(rows, np.float32)
        mod(a, y)
        np.testing.assert_allclose(y, a.sum(1), rtol=1e-5, atol=1e-5)


def test_the_write_hint_stays_with_the_stage_through_a_cache_write():
    """s[y].prefetch(y, i), then s.cache_write(y): y is now the copy out of y_local and
    still writes y, so the hint is a write of y's next row in that copy."""
    x = td.placeholder((13, 40), name="x")
    y = td.compute((13, 40), lambda i, j: x[i, j] * 2.0 + 1.0, name="y")
    s = td.create_schedule(y)
    s[y].prefetch(y, y.op.axis[0])
    yl = s.cache_write(y, "local")
    s[yl].compute_at(s[y], y.op.axis[0])
    text = str(td.lower(s, [x, y]))
    assert "prefetch for write y[i + 1, " in text, text
    mod = td.build(s, [x, y])
    assert any("(uintptr_t)y" in h and h.endswith(", 1, 3);")
               for h in _prefetch_lines(mod.source))
    a = np.random.default_rng(3).standard_normal((13, 40)).astype("float32")
    out = np.empty_like(a)
    mod(a, out)
    np.testing.assert_array_equal(out, a * np.float32(2.0) + np.float32(1.0))


def test_symbolic_sizes_and_a_split_row_axis():
    """Along the outer loop of a split the hint moves by the split's factor."""
    n, m = td.var("n"), td.var("m")
    x, mx, e, tot, out = _softmax(n, m)
    s = td.create_schedule(out)
    i, j = out.op.axis
    io, ii = s[out].split(i, 4)
    s[out].parallel(io)
    for t in (tot, e, mx):
        s[t].compute_at(s[out], ii)
    s[out].vectorize(j)
    eo, ei = s[e].split(e.op.axis[0], 2)      # e's own row axis, split: outer steps 2 rows
    s[e].prefetch(x, eo, 3)
    (hint,) = s[e].state.prefetches
    assert hint.axis is e.op.axis[0] and hint.shift == 6
    mod = td.build(s, [x, out])
    assert _prefetch_lines(mod.source)
    for rows, cols in ((9, 33), (1, 1), (64, 128)):
        a = np.random.default_rng(cols).standard_normal((rows, cols)).astype("float32")
        y = np.empty_like(a)
        mod(a, y)
        np.testing.assert_allclose(y, _numpy_softmax(a), rtol=1e-5, atol=1e-6)


def test_a_stencil_prefetches_only_the_row_it_does_not_read():
    n, m = 40, 70
    x = td.placeholder((n + 2, m), name="x")
    y = td.compute((n, m), lambda i, j: x[i, j] + x[i + 1, j] * 2.0 + x[i + 2, j], name="y")
    s = td.create_schedule(y)
    s[y].vectorize(y.op.axis[1])
    s[y].prefetch(x, y.op.axis[0], 1)
    hints = [line for line in str(td.lower(s, [x, y])).splitlines() if "prefetch" in line]
    assert len(hints) == 1 and "x[i + 3, j]" in hints[0], hints
    mod = td.build(s, [x, y])
    a = np.random.default_rng(0).standard_normal((n + 2, m)).astype("float32")
    b = np.empty((n, m), "float32")
    mod(a, b)
    np.testing.assert_array_equal(b, a[:-2] + 2 * a[1:-1] + a[2:])   # same order: exact


@pytest.mark.parametrize("target,lanes", [(TARGETS[0], 8), (TARGETS[1], 16)])
def test_one_hint_per_contiguous_vector_and_per_lane_when_strided(target, lanes):
    n = 64
    x = td.placeholder((n, n), name="x")
    # contiguous: y[i, j] reads x[i, j] (a vector of lanes, one line at most)
    y = td.compute((n, n), lambda i, j: x[i, j] * 2.0, name="y")
    s = td.create_schedule(y)
    jo, ji = s[y].split(y.op.axis[1], lanes)
    s[y].vectorize(ji)
    s[y].prefetch(x, y.op.axis[0], 2)
    mod = td.build(s, [x, y], target=target)
    assert len(_prefetch_lines(mod.source)) == 1, mod.source
    # strided: t[i, j] reads x[j, i]: the lanes are rows apart, a line each
    t = td.compute((n, n), lambda i, j: x[j, i], name="t")
    s = td.create_schedule(t)
    jo, ji = s[t].split(t.op.axis[1], lanes)
    s[t].vectorize(ji)
    s[t].prefetch(x, jo, 1)
    mod = td.build(s, [x, t], target=target)
    assert len(_prefetch_lines(mod.source)) == lanes, mod.source
    if td.target(target).runs_here():
        a = np.random.default_rng(1).standard_normal((n, n)).astype("float32")
        b = np.empty_like(a)
        mod(a, b)
        np.testing.assert_array_equal(b, a.T)


def test_the_hint_is_part_of_the_schedule_fingerprint():
    from tdsl.schedule.fingerprint import fingerprint
    x, mx, e, tot, out = _softmax(8, 32)
    plain = _row_schedule(x, mx, e, tot, out)
    hinted = _row_schedule(x, mx, e, tot, out)
    hinted[e].prefetch(x, e.op.axis[0])
    assert fingerprint(plain.data, [x, out], "k") != fingerprint(hinted.data, [x, out], "k")


def test_refusals_say_what_to_do():
    x, mx, e, tot, out = _softmax(16, 32)
    s = _row_schedule(x, mx, e, tot, out)
    with pytest.raises(ScheduleError, match=r"s\[tot\]\.prefetch\(x, .*tot neither reads nor "
                                            r"writes x \(it reads e and writes tot\); "
                                            r"prefetch in the stage that reads it, or a "
                                            r"stage's own output for the write"):
        s[tot].prefetch(x, tot.op.axis[0])
    with pytest.raises(ScheduleError, match="offset must be a nonzero integer"):
        s[e].prefetch(x, e.op.axis[0], 0)
    with pytest.raises(ScheduleError, match="expected the tensor to prefetch"):
        s[e].prefetch("x", e.op.axis[0])
    with pytest.raises(ScheduleError, match="k1 is an axis of mx, not of e"):
        s[e].prefetch(x, mx.op.reduce_axis[0])

    y = td.compute((16, 32), lambda i, j: x[i, j] + 1.0, name="y")
    s = td.create_schedule(y)
    fused = s[y].fuse(*y.op.axis)
    with pytest.raises(ScheduleError, match="comes from fusing i and j, so its next iteration "
                                            "is not one step along an axis"):
        s[y].prefetch(x, fused)


def test_refusals_that_need_the_whole_program():
    # a tensor private to a loop is already in the cache where it is read
    x, mx, e, tot, out = _softmax(16, 32)
    s = _row_schedule(x, mx, e, tot, out)
    with pytest.raises(ScheduleError, match="e is a buffer private to a loop"):
        s[out].prefetch(e, out.op.axis[0])
    # a gather: the address ahead depends on data
    idx = td.placeholder((10,), "int32", name="idx")
    table = td.placeholder((50,), name="table")
    g = td.compute((10,), lambda i: table[idx[i]], name="g")
    s = td.create_schedule(g)
    with pytest.raises(ScheduleError, match="g reads table at an index that is itself read "
                                            "from memory .a gather."):
        s[g].prefetch(table, g.op.axis[0])
    # a later cache_read replaces the reads the hint was for
    x2 = td.placeholder((16, 32), name="x2")
    y = td.compute((16, 32), lambda i, j: x2[i, j] * 3.0, name="y")
    s = td.create_schedule(y)
    s[y].prefetch(x2, y.op.axis[0])
    with pytest.raises(ScheduleError, match=r"s.cache_read\(x2, 'global', \[y\]\) is illegal."
                                            r"\s+.*y no longer reads x2 along i"):
        s.cache_read(x2, "global", [y])


def test_through_an_inlined_producer_and_refused_on_the_inlined_tensor():
    x = td.placeholder((24, 40), name="x")
    p = td.compute((24, 40), lambda i, j: x[i, j] * 0.5, name="p")
    y = td.compute((24, 40), lambda i, j: p[i, j] + x[i, j], name="y")
    s = td.create_schedule(y)
    s[p].compute_inline()
    s[y].prefetch(x, y.op.axis[0])             # y reads x directly and through p
    mod = td.build(s, [x, y])
    assert _prefetch_lines(mod.source)
    a = np.random.default_rng(3).standard_normal((24, 40)).astype("float32")
    b = np.empty_like(a)
    mod(a, b)
    np.testing.assert_array_equal(b, 1.5 * a)      # a / 2 + a: one rounding, as 1.5 a
    with pytest.raises(ScheduleError, match=r"p is inlined \(compute_inline\) into y, so "
                                            r"there is no buffer to prefetch; prefetch what "
                                            r"it reads \(x\)"):
        s[y].prefetch(p, y.op.axis[0])


@pytest.mark.needs_nvcc
def test_cuda_drops_the_hints():
    x = td.placeholder((8, 32), name="x")
    y = td.compute((8, 32), lambda i, j: x[i, j] * 2.0 + 1.0, name="y")
    s = td.create_schedule(y)
    s[y].bind(y.op.axis[0], "blockIdx.x")
    s[y].bind(y.op.axis[1], "threadIdx.x")
    s[y].prefetch(x, y.op.axis[0])
    assert "prefetch x[" in str(td.lower(s, [x, y]))
    mod = td.build(s, [x, y], target="cuda", emulate=True)
    assert "prefetch" not in mod.source
    a = np.random.default_rng(4).standard_normal((8, 32)).astype("float32")
    b = np.empty_like(a)
    mod(a, b)
    np.testing.assert_array_equal(b, 2 * a + 1)


def _layernorm(n, m):
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    total = td.compute((n,), lambda i: td.sum(x[i, k1], axis=k1), name="total")
    squares = td.compute((n,), lambda i: td.sum(x[i, k2] * x[i, k2], axis=k2), name="squares")
    out = td.compute((n, m), lambda i, j: (x[i, j] - total[i] / m) / td.sqrt(
        squares[i] / m - (total[i] / m) * (total[i] / m) + 1e-5), name="out")
    return x, out


def test_auto_schedule_prefetches_the_next_row_of_a_multi_pass_pipeline():
    x, mx, e, tot, out = _softmax(64, 200)
    s = td.auto_schedule(out)
    assert "s[e].prefetch(x, i, 1)" in s.script()       # e is the last pass over x
    assert "s[out].prefetch(out, i, 1)" in s.script()   # out's next row, for the write
    assert any(", 1, 3);" in h for h in _prefetch_lines(td.build(s, [x, out]).source))
    mod = td.build(s, [x, out])
    a = np.random.default_rng(5).standard_normal((64, 200)).astype("float32")
    y = np.empty_like(a)
    mod(a, y)
    np.testing.assert_allclose(y, _numpy_softmax(a), rtol=1e-5, atol=1e-6)

    x, out = _layernorm(td.var("n"), 96)
    s = td.auto_schedule(out)
    assert "s[out].prefetch(x, i, 1)" in s.script()
    assert "s[out].prefetch(out, i, 1)" in s.script()
    mod = td.build(s, [x, out])
    a = np.random.default_rng(6).standard_normal((13, 96)).astype("float32")
    y = np.empty_like(a)
    mod(a, y)
    ref = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)

    # the knob turns it off; a single pass (a row sum) has nothing to prefetch
    x, mx, e, tot, out = _softmax(64, 200)
    s = apply_rules([out], knobs=Knobs({"out.prefetch": False}))
    assert "prefetch" not in s.script()
    x = td.placeholder((64, 200), name="x")
    k = td.reduce_axis(200, name="k")
    r = td.compute((64,), lambda i: td.sum(x[i, k], axis=k), name="r")
    assert "prefetch" not in td.auto_schedule(r).script()


@pytest.mark.parametrize("n,m,l", [(32, 48, 40), (29, 37, 33)], ids=str)
def test_register_tile_with_the_reduction_prefetched_ahead(n, m, l):
    """Hints inside a register tile (unrolled rows, vectorized columns, the reduction
    loop inside the vector loop's body): the tile stays correct."""
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    CL = s.cache_write(C, "local")
    io, jo, ii, ji = s[C].tile(*C.op.axis, 4, 16)
    s[CL].compute_at(s[C], jo)
    ci, cj = CL.op.axis
    (ck,) = CL.op.reduce_axis
    cjo, cji = s[CL].split(cj, 8)
    s[CL].reorder(ck, ci, cjo, cji)
    s[CL].unroll(ci)
    s[CL].vectorize(cji)
    s[CL].prefetch(B, ck, 4)
    s[C].vectorize(ji)
    mod = td.build(s, [A, B, C])
    assert _prefetch_lines(mod.source)
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, l)).astype("float32")
    b = rng.standard_normal((l, m)).astype("float32")
    c = np.empty((n, m), "float32")
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
