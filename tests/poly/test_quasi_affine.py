"""isl questions with quasi-affine answers: every one is answered, or becomes a lesson.

The extents, footprints and loop bounds of fused-then-split loops, of `//` and `%`
indices and of strided accesses contain floor divisions; isl's `PwAff.max_val`
refuses those ("expecting integer affine expression"). Each schedule below asks
the audited calls (footprint sizes: `dim_min`/`dim_max`/`max_val`; isolation of
full tiles: `dim_min`/`dim_max`/`max_val`; bands of empty domains; AST building)
such a question, at constant and at symbolic sizes, and must build and compute
what the algorithm means.
"""

from __future__ import annotations

import islpy as isl
import pytest

import tdsl as td
from tdsl.poly.bounds import isl_lessons, max_over_domain, max_val
from tests.helpers import check


def test_issue16_compute_at_in_tile_of_fused_split_loop():
    """Issue 16, bug 1: the private buffer's extent is quasi-affine."""
    A = td.placeholder((11, 34, 40), name="A")
    S3 = td.compute((11, 34, 40), lambda i, j, k: A[i, j, k] * 2.0, name="S3")
    S4 = td.compute((11, 34, 40), lambda i, j, k: S3[i, j, k] + 1.0, name="S4")
    s = td.create_schedule(S4)
    i, j, k = S4.op.axis
    f = s[S4].fuse(s[S4].fuse(i, j), k)
    fo, fi = s[S4].split(f, factor=7)
    a, b, c, d = s[S4].tile(fo, fi, 16, 5)
    s[S3].compute_at(s[S4], b)
    check(s, [A, S4])


def test_issue16_reduction_whose_where_leaves_nothing_gives_identity():
    """Issue 16, bug 2: an empty reduction builds and gives the reducer's identity."""
    A = td.placeholder((5, 2), name="A")
    k = td.reduce_axis((1, 2), name="k")
    C = td.compute((5,), lambda i: td.sum(A[i, k], axis=k, where=k >= 2), name="C")
    _, (out,) = check(td.create_schedule(C), [A, C])
    assert (out == 0).all()


def test_empty_reduction_symbolic_max_identity():
    n, m = td.var("n"), td.var("m")
    A = td.placeholder((n, m), name="A")
    k = td.reduce_axis((0, m), name="k")
    C = td.compute((n,), lambda i: td.max(A[i, k], axis=k, where=k >= m), name="C")
    s = td.create_schedule(C)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[C].parallel(io)
    _, (out,) = check(s, [A, C], {n: 9, m: 3})
    assert (out == -float("inf")).all() or (out <= -3e38).all()


def _pipeline(shape):
    A = td.placeholder(shape, name="A")
    P = td.compute(shape, lambda *ix: A[ix] * 2.0, name="P")
    C = td.compute(shape, lambda *ix: P[ix] + 1.0, name="C")
    return A, P, C


def _fused_split(c_sizes, factor, tile, at, kind=None):
    """C over a 3-D domain, all loops fused then split (and tiled); P computed at
    loop number `at` (0..3) of the result; optionally the innermost loop is `kind`."""
    n = td.var("n")
    shape = tuple(n if s is None else s for s in c_sizes)
    A, P, C = _pipeline(shape)
    s = td.create_schedule(C)
    i, j, k = C.op.axis
    f = s[C].fuse(s[C].fuse(i, j), k)
    fo, fi = s[C].split(f, factor=factor)
    loops = s[C].tile(fo, fi, *tile)
    if at is not None:
        s[P].compute_at(s[C], loops[at])
    if kind:
        getattr(s[C], kind)(loops[-1])
    sizes = {n: 13} if None in c_sizes else {}
    return s, [A, C], sizes


@pytest.mark.parametrize("at", [0, 1, 2, 3], ids=lambda a: f"at{a}")
def test_compute_at_every_depth_of_fused_split_tile(at):
    check(*_fused_split((5, 6, 7), 7, (4, 3), at))


@pytest.mark.parametrize("at", [1, 3], ids=lambda a: f"at{a}")
def test_compute_at_fused_split_symbolic(at):
    check(*_fused_split((None, 4, 3), 5, (2, 3), at))


@pytest.mark.parametrize("kind", ["vectorize", "unroll"])
def test_isolation_of_fused_split_loops(kind):
    """Full-tile isolation asks for the longest trip count of a quasi-affine loop."""
    check(*_fused_split((3, 5, 7), 6, (4, 4), None, kind))


@pytest.mark.parametrize("kind", ["vectorize", "unroll"])
def test_isolation_of_fused_split_loops_symbolic(kind):
    check(*_fused_split((None, 5, 3), 4, (3, 4), 1, kind))


def _ragged_register_tile():
    A = td.placeholder((37, 11), name="A")
    B = td.placeholder((11, 29), name="B")
    k = td.reduce_axis((0, 11), name="k")
    C = td.compute((37, 29), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    io, jo, ii, ji = s[C].tile(*C.op.axis, 4, 8)
    s[C].unroll(ii)
    s[C].vectorize(ji)
    return s, [A, B, C]


def test_isolation_out_of_its_isl_budget_keeps_the_general_loop(monkeypatch, tmp_path):
    """Separating full tiles is only for speed: where isl's exact extent of a loop would
    take more than `ISOLATION_BUDGET` operations (hours, for a tile-local stage of the
    digits CNN's weight gradient under a fused loop), the loop keeps its general bounds:
    one version of the tile instead of full and partial ones, computing the same."""
    from tdsl.poly import codegen
    isolated = str(td.lower(*_ragged_register_tile())).count("for ")
    monkeypatch.setattr(codegen, "ISOLATION_BUDGET", 1)
    s, args = _ragged_register_tile()
    assert str(td.lower(s, args)).count("for ") < isolated
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path))     # not the isolated library
    check(s, args)


@pytest.mark.parametrize("symbolic", [False, True], ids=["const", "sym"])
def test_compute_at_floordiv_and_mod_indices(symbolic):
    n = td.var("n") if symbolic else 24
    A = td.placeholder((n,), name="A")
    P = td.compute((n,), lambda i: A[i] * 3.0, name="P")
    C = td.compute((n,), lambda i: P[i // 3] + P[(i * 5) % n if symbolic else (i * 5) % 24]
                   + P[i - i % 4], name="C")
    s = td.create_schedule(C)
    io, ii = s[C].split(C.op.axis[0], factor=5)
    s[P].compute_at(s[C], io)
    check(s, [A, C], {n: 23} if symbolic else {})


@pytest.mark.parametrize("symbolic", [False, True], ids=["const", "sym"])
def test_compute_at_strided_reads(symbolic):
    n = td.var("n") if symbolic else 10
    A = td.placeholder((3 * n + 2,), name="A")
    P = td.compute((3 * n + 2,), lambda i: A[i] + 1.0, name="P")
    C = td.compute((n,), lambda i: P[3 * i] + P[3 * i + 2], name="C")
    s = td.create_schedule(C)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[P].compute_at(s[C], ii)
    s[C].vectorize(ii)
    check(s, [A, C], {n: 11} if symbolic else {})


def test_bounds_max_val_of_rational_piece():
    """dim_max of a quasi-affine footprint gives pieces like (35 - 5 o + 6 floor(...))/6:
    integral on their domain, which isl's max_val cannot see."""
    pa = isl.PwAff("{ [i] -> [(i)/2] : 0 <= i <= 10 and i % 2 = 0 }")
    with pytest.raises(isl.Error):
        pa.max_val()            # what used to escape to the user
    assert max_val(pa).to_python() == 5
    assert max_over_domain(pa) is not None


def test_bounds_max_val_of_empty_and_unbounded():
    assert max_val(isl.PwAff("{ [i] -> [(i)/2] : i < 0 and i > 0 }")).is_nan()
    assert not max_val(isl.PwAff("[n] -> { [i] -> [(i)/2] : 0 <= i <= n and i % 2 = 0 }")).is_int()


def test_isl_failure_becomes_a_lesson():
    with pytest.raises(td.ScheduleError) as info:
        with isl_lessons("s[C].split(i, factor=3)"):
            isl.PwAff("{ [i] -> [(i)/2] : 0 <= i <= 10 and i % 2 = 0 }").max_val()
    text = str(info.value)
    assert text.startswith("s[C].split(i, factor=3) cannot be analysed")
    assert "limit of tdsl" in text and "Try" in text
