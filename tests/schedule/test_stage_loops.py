"""The public view of a stage's loops that the tutorials use: `s[X].loops` (outermost
first, as the schedule made them) and `s[X].inlined`; and `td.cuda_status()`."""

import tdsl as td


def _two_stages():
    n = td.var("n")
    A = td.placeholder((n, n), name="A")
    P = td.compute((n, n), lambda i, j: A[i, j] * 2.0, name="P")
    Q = td.compute((n, n), lambda i, j: P[i, j] + 1.0, name="Q")
    return P, Q


def test_loops_follow_split_reorder_and_fuse():
    P, Q = _two_stages()
    s = td.create_schedule(Q)
    i, j = Q.op.axis
    assert [v.name for v in s[Q].loops] == ["i", "j"]
    jo, ji = s[Q].split(j, factor=8)
    assert s[Q].loops == (i, jo, ji)
    s[Q].reorder(jo, i, ji)
    assert s[Q].loops == (jo, i, ji)
    io, ii = s[Q].split(i, factor=4)
    f = s[Q].fuse(ii, ji)
    assert s[Q].loops == (jo, io, f)
    s[Q].vectorize(s[Q].loops[-1])             # the innermost loop, whatever its name
    assert "# vectorize" in str(td.lower(s, [P.op.input_tensors[0], Q]))


def test_inlined_stages_have_no_loops():
    P, Q = _two_stages()
    s = td.create_schedule(Q)
    assert not s[P].inlined and len(s[P].loops) == 2
    s[P].compute_inline()
    assert s[P].inlined and s[P].loops == ()


def test_cuda_status_never_raises_and_says_why():
    gpu, why, nvcc = td.cuda_status()
    assert isinstance(gpu, bool) and isinstance(why, str) and why
    assert nvcc is None or isinstance(nvcc, str)


def test_poly_order_lists_instances_in_execution_order():
    h, w = td.var("h"), td.var("w")
    A = td.placeholder((h, w), name="A")
    F = td.compute((h, w), lambda y, x: A[y, x] * 2.0, name="F")
    s = td.create_schedule(F)
    y, x = F.op.axis
    assert td.poly.order(s, F, {h: 2, w: 2}) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    s[F].reorder(x, y)
    assert td.poly.order(s, F, {"h": 2, "w": 3}) == [(0, 0), (1, 0), (0, 1), (1, 1),
                                                      (0, 2), (1, 2)]
    s = td.create_schedule(F)
    s[F].tile(*F.op.axis, 2, 2)
    assert td.poly.order(s, F, {h: 4, w: 4})[:6] == [(0, 0), (0, 1), (1, 0), (1, 1),
                                                     (0, 2), (0, 3)]


def test_poly_count_counts_instances_and_stores_to_an_array():
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    sizes = {n: 4, m: 6, l: 5}
    assert td.poly.count(s, sizes) == 4 * 6 + 4 * 6 * 5           # init + updates
    assert td.poly.count(s, sizes, writes="C") == 4 * 6 + 4 * 6 * 5
    s, (A, B, C) = td.examples.matmul(tile_i=2, tile_j=4)
    assert td.poly.count(s, {"n": 4, "m": 8, "l": 5}, writes="C") == 4 * 8   # the copy
