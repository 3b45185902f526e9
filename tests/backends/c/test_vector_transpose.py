"""A transposing tile (`out[i, j] = x[j, i]`, a lanes x lanes tile with its rows unrolled
and its columns vectorized) reads each output vector down a column of x. The C backend
loads the block's rows as vectors and transposes them in registers
(`vector.transposed_tiles`) instead of building each vector lane by lane: checked here in
the C, and against NumPy on every target this CPU runs, at sizes that do and do not
divide the tiles, symbolic ones included, for 32- and 64-bit types."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td

TARGETS = {"sse2": "c -mcpu=x86-64", "avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


def _kernel(mod) -> str:
    return mod.source[mod.source.index("int kernel("):]


def _random(shape, dtype, seed):
    a = np.random.default_rng(seed).standard_normal(shape) * 100
    return a.astype(dtype)


def _transpose(n, m, dtype, lanes, chunks=1, extra=False, rows=None):
    """out = x^T (+ 2 * y, read contiguously, when `extra`) in `rows` (default lanes) x
    (chunks * lanes) tiles, rows unrolled, columns vectorized, rows of tiles parallel."""
    x = td.placeholder((n, m), name="x", dtype=dtype)
    y = td.placeholder((m, n), name="y", dtype=dtype)
    if extra:
        out = td.compute((m, n), lambda i, j: x[j, i] + y[i, j] * 2, name="out")
    else:
        out = td.compute((m, n), lambda i, j: x[j, i], name="out")
    s = td.create_schedule(out)
    io, jo, ii, ji = s[out].tile(*out.op.axis, rows or lanes, chunks * lanes)
    s[out].parallel(io)
    s[out].unroll(ii)
    s[out].vectorize(ji)
    return s, ([x, y, out] if extra else [x, out])


def _check(mod, args, shapes, dtype, seed=0):
    arrays = [_random(shapes[a.name], dtype, seed + k) for k, a in enumerate(args[:-1])]
    out = np.zeros(shapes["out"], dtype)
    mod(*arrays, out)
    want = arrays[0].T + (2 * arrays[1] if len(arrays) == 2 else 0)
    np.testing.assert_array_equal(out, want.astype(dtype))


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("size", [(64, 48), (37, 45)])
def test_a_transposing_tile_is_transposed_in_registers(target, dtype, size):
    lanes = td.target(TARGETS[target]).lanes(dtype)
    n, m = size
    s, args = _transpose(n, m, dtype, lanes)
    mod = td.build(s, args, target=TARGETS[target])
    body = _kernel(mod)
    # the full tiles (isolated even where the sizes do not divide): lanes row loads, and
    # log2(lanes) rounds of lanes / 2 pairs of interleaves
    rounds = lanes.bit_length() - 1
    assert body.count("__builtin_shuffle") == rounds * lanes
    if not td.target(TARGETS[target]).runs_here():
        pytest.skip(f"{target} code compiled; this CPU cannot run it")
    _check(mod, args, {"x": (n, m), "out": (m, n)}, dtype)


@pytest.mark.parametrize("target", ["avx2", "avx512"])
def test_symbolic_sizes_two_vectors_per_row_and_another_operand(target):
    """Two vectors per tile row (two blocks, each transposed), a contiguous operand added
    in the same vector loop, symbolic sizes: ragged and dividing calls of one kernel."""
    lanes = td.target(TARGETS[target]).lanes("float32")
    n, m = td.var("n"), td.var("m")
    s, args = _transpose(n, m, "float32", lanes, chunks=2, extra=True)
    mod = td.build(s, args, target=TARGETS[target])
    assert _kernel(mod).count("__builtin_shuffle") == 2 * (lanes.bit_length() - 1) * lanes
    if not td.target(TARGETS[target]).runs_here():
        pytest.skip(f"{target} code compiled; this CPU cannot run it")
    for k, (nn, mm) in enumerate([(4 * lanes, 2 * lanes), (3 * lanes + 5, 5 * lanes - 3),
                                  (3, 7)]):
        _check(mod, args, {"x": (nn, mm), "y": (mm, nn), "out": (mm, nn)}, "float32", k)


def test_a_narrow_tile_uses_narrow_vectors():
    """A 4 x 4 tile on AVX2: its vector loop uses 4-lane vectors, transposed as such."""
    s, args = _transpose(36, 20, "float32", 4)
    mod = td.build(s, args, target=TARGETS["avx2"])
    assert _kernel(mod).count("__builtin_shuffle") == 2 * 4 and "tdsl_f32x4 tdsl_tr" in \
        _kernel(mod)
    if td.target(TARGETS["avx2"]).runs_here():
        _check(mod, args, {"x": (36, 20), "out": (20, 36)}, "float32")


def test_fewer_rows_than_lanes_and_a_guarded_read_stay_lane_by_lane():
    """Where the pattern does not hold the vector is built lane by lane as before: fewer
    rows unrolled than the vector has lanes (not a square block), and a gather under a
    select (a padded transpose: the select's arm may read x only where its condition
    holds)."""
    target = TARGETS["avx2"]
    lanes = td.target(target).lanes("float32")
    s, args = _transpose(32, 32, "float32", lanes, rows=lanes // 2)
    narrow = td.build(s, args, target=target)
    assert "__builtin_shuffle" not in _kernel(narrow)

    x = td.placeholder((30, 30), name="x")
    out = td.compute((32, 32), lambda i, j: td.select(
        td.all(i >= 1, i <= 30, j >= 1, j <= 30), x[j - 1, i - 1], 0.0), name="out")
    s = td.create_schedule(out)
    _, _, ii, ji = s[out].tile(*out.op.axis, lanes, lanes)
    s[out].unroll(ii)
    s[out].vectorize(ji)
    padded = td.build(s, [x, out], target=target)
    assert "__builtin_shuffle" not in _kernel(padded)
    a = _random((30, 30), "float32", 3)
    got = np.empty((32, 32), "float32")
    padded(a, got)
    np.testing.assert_array_equal(got, np.pad(a.T, 1))
    got = np.empty((32, 32), "float32")
    narrow(a := _random((32, 32), "float32", 4), got)
    np.testing.assert_array_equal(got, a.T)
