"""td.counts against counts derived by hand: operations, accesses, footprints, the
cache model's traffic, vector and parallel shares. No timing, no compiling."""

import pytest

import tdsl as td

KIB = 1024


def _matmul(n=None, l=None, m=None):
    n, l, m = n or td.var("n"), l or td.var("l"), m or td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return (n, l, m), (A, B, C), k


@pytest.mark.parametrize("n,l,m", [(37, 19, 23), (1024, 1024, 1024)], ids=["ragged", "1024"])
def test_matmul_at_symbolic_sizes(n, l, m):
    (vn, vl, vm), (A, B, C), _ = _matmul()
    s = td.create_schedule(C)
    c = td.counts(s, [A, B, C], sizes={vn: n, "l": l, "m": m})     # td.var or name
    assert c.flops == 2 * n * m * l
    assert c.ops == {"add": n * m * l, "mul": n * m * l}
    assert c.loads == {"A": n * m * l, "B": n * m * l, "C": n * m * l}    # C += ...
    assert c.stores == {"A": 0, "B": 0, "C": n * m + n * m * l}          # init + updates
    assert c.footprint == {"A": 4 * n * l, "B": 4 * l * m, "C": 4 * n * m}
    assert c.instances == {"C_init": n * m, "C_update": n * m * l}
    assert c.exact and c.vector_fraction == 0 and c.parallel_tasks == 0
    assert c.as_dict()["flops"] == c.flops
    assert "flops" in str(c) and "traffic@32K" in str(c)


def test_constant_sizes_need_no_sizes_and_tiling_keeps_the_counts():
    _, (A, B, C), k = _matmul(40, 30, 20)
    s = td.create_schedule(C)
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, 8, 8)            # ragged tiles: 40 x 20 by 8 x 8
    s[C].parallel(io)
    c = td.counts(s, [A, B, C])
    assert c.flops == 2 * 40 * 30 * 20 and c.sizes == {}
    assert c.parallel_tasks == 5 and c.parallel_fraction == 1.0
    assert c.parallel_work == (40 * 20 + 40 * 20 * 30) / 5


def test_missing_sizes_are_named_and_unused_ones_ignored():
    (n, l, m), (A, B, C), _ = _matmul()
    s = td.create_schedule(C)
    with pytest.raises(td.TdslValueError, match=r"missing l, m \(pass sizes=\{\"l\": \.\.\., "):
        td.counts(s, [A, B, C], sizes={"n": 4})
    c = td.counts(s, [A, B, C], sizes={"n": 4, "l": 4, "m": 4, "q": 2})    # q: unused
    assert c.sizes == {"n": 4, "l": 4, "m": 4}
    with pytest.raises(td.TdslValueError, match="int >= 1"):
        td.counts(s, [A, B, C], sizes={"n": 0, "l": 4, "m": 4})


def test_traffic_of_loop_order_ikj_by_hand():
    """64^3, float32, 64-byte lines (16 floats): a row is 4 lines, a matrix 256 lines.
    At 32 KiB one iteration of i (a row of A and C, all of B: 264 lines) fits, so the
    traffic is the footprint. At 8 KiB it does not; each k step (9 lines) fits, so per
    i: a row of A, all of B, and a row of C for the init and for the updates."""
    _, (A, B, C), k = _matmul(64, 64, 64)
    s = td.create_schedule(C)
    i, j = C.op.axis
    s[C].reorder(i, k, j)
    c = td.counts(s, [A, B, C])
    assert c.traffic(32 * KIB) == c.footprint == {"A": 16 * KIB, "B": 16 * KIB, "C": 16 * KIB}
    assert c.traffic(8 * KIB) == {"A": 64 * 4 * 64, "B": 64 * 256 * 64, "C": 2 * 64 * 4 * 64}
    assert c.traffic(10 ** 9) == c.footprint


def test_naive_order_reads_a_line_per_element_of_a_column():
    """i, j, k with k innermost: each B[k, j] of a column is in its own line. One
    iteration of j touches 4 + 64 + 1 lines (4416 bytes), one of i 4 + 256 + 4."""
    _, (A, B, C), _ = _matmul(64, 64, 64)
    c = td.counts(td.create_schedule(C), [A, B, C])
    assert c.traffic(2 * KIB)["B"] == 64 * 64 * 64 * 64       # per (i, j): 64 lines
    assert c.traffic(4 * KIB)["B"] == 64 * 64 * 64 * 64
    assert c.traffic(8 * KIB)["B"] == 64 * 256 * 64           # j fits: per i, all of B
    assert c.reuse_levels(8 * KIB) == ["C.j"]


def test_tiled_traffic_falls_with_cache_size_and_never_below_the_footprint():
    (n, l, m), (A, B, C), k = _matmul()
    s = td.create_schedule(C)
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, 32, 32)
    ko, ki = s[C].split(k, factor=32)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    sizes = {"n": 256, "l": 256, "m": 256}
    tiled = td.counts(s, [A, B, C], sizes=sizes)
    plain = td.counts(td.create_schedule(C), [A, B, C], sizes=sizes)
    caches = [1 * KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1024 * KIB]
    totals = [tiled.total_traffic(cb) for cb in caches]
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]
    for cb in caches:
        for name, moved in tiled.traffic(cb).items():
            assert moved >= tiled.footprint[name]
    assert totals[-1] == sum(tiled.footprint.values())           # 768 KiB fits in 1 MiB
    assert tiled.total_traffic(16 * KIB) < plain.total_traffic(16 * KIB) / 4


def test_stencil_footprint_and_recomputed_halo():
    h, w = td.var("h"), td.var("w")
    X = td.placeholder((h + 2, w), name="X")
    bx = td.compute((h + 2, w), lambda y, x: X[y, x] * 2.0, name="bx")
    by = td.compute((h, w), lambda y, x: bx[y, x] + bx[y + 1, x] + bx[y + 2, x], name="by")
    s = td.create_schedule(by)
    c = td.counts(s, [X, by], sizes={"h": 10, "w": 7})
    assert c.footprint == {"X": 12 * 7 * 4, "bx": 12 * 7 * 4, "by": 10 * 7 * 4}
    assert c.flops == 12 * 7 + 2 * 10 * 7
    s[bx].compute_at(s[by], by.op.axis[0])              # three rows of bx per row of by
    c = td.counts(s, [X, by], sizes={"h": 10, "w": 7})
    assert c.instances["bx"] == 10 * 3 * 7 and c.flops == 10 * 3 * 7 + 2 * 10 * 7
    assert c.footprint["X"] == 12 * 7 * 4 and c.footprint["bx"] == 3 * 7 * 4  # the buffer
    assert c.loads["X"] == 10 * 3 * 7


def _elementwise():
    n, m = td.var("n"), td.var("m")
    A = td.placeholder((n, m), name="A")
    B = td.compute((n, m), lambda i, j: td.exp(A[i, j]) * 2.0 + td.sqrt(A[i, j]), name="B")
    return A, B


def test_vector_fraction_and_parallel_work():
    A, B = _elementwise()
    s = td.create_schedule(B)
    sizes = {"n": 12, "m": 64}
    scalar = td.counts(s, [A, B], sizes=sizes)
    assert scalar.vector_fraction == 0 and scalar.ops == {"add": 768, "exp": 768, "mul": 768,
                                                          "sqrt": 768}
    i, j = B.op.axis
    jo, ji = s[B].split(j, factor=8)
    s[B].vectorize(ji)
    s[B].parallel(i)
    c = td.counts(s, [A, B], sizes=sizes)
    assert c.vector_fraction == 1.0 and c.parallel_tasks == 12 and c.parallel_work == 64


def test_inline_cache_read_and_rfactor_count_what_runs():
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    P = td.compute((n,), lambda i: A[i] * 3.0, name="P")
    Q = td.compute((n,), lambda i: P[i] + P[i], name="Q")
    s = td.create_schedule(Q)
    s[P].compute_inline()
    c = td.counts(s, [A, Q], sizes={"n": 10})
    assert c.ops == {"add": 10, "mul": 20} and c.loads == {"A": 20, "Q": 0}

    s = td.create_schedule(Q)
    AL = s.cache_read(A, "local", [P])
    c = td.counts(s, [A, Q], sizes={"n": 10})
    assert c.loads["A"] == 10 and c.stores[AL.name] == 10 and c.loads[AL.name] == 10

    k = td.reduce_axis(n, name="k")
    T = td.compute((1,), lambda _: td.sum(A[k], axis=k), name="T")
    s = td.create_schedule(T)
    ko, ki = s[T].split(k, factor=4)
    TF = s.rfactor(T, ki)
    c = td.counts(s, [A, T], sizes={"n": 10})
    # partial sums: 4 inits, 10 updates (k = 4 ko + ki < 10); then 4 adds into T
    assert c.instances[f"{TF.name}_update"] == 10 and c.ops == {"add": 14}


def test_a_select_counts_the_branch_that_runs():
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    B = td.compute((n,), lambda i: td.select(i < 3, A[i] * 2.0, A[i] + A[i] + 1.0), name="B")
    c = td.counts(td.create_schedule(B), [A, B], sizes={"n": 10})
    assert c.ops == {"add": 14, "mul": 3} and c.loads["A"] == 3 + 14
