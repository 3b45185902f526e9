"""benchmarks/peers/halide_auto.py: Halide's autoschedulers (Mullapudi2016, Adams2019) on
halide_impl's algorithms, for W3 (elementwise) and W7 (row sum) at small, ragged sizes,
checked against NumPy; and the rows' place in the report (not a best peer)."""

import numpy as np
import pytest

from benchmarks import report

try:
    import halide  # noqa: F401
    HAVE_HALIDE = True
except Exception:
    HAVE_HALIDE = False

needs_halide = pytest.mark.skipif(not HAVE_HALIDE, reason="the PyPI `halide` package is not "
                                  "importable here (pip install halide)")
ROWS = ("halide:mullapudi2016", "halide:adams2019")


def _w3(rng):
    sh = (45, 70)                  # rows not a multiple of a strip, columns of a vector
    a, b, c = (rng.standard_normal(sh).astype(np.float32) for _ in range(3))
    ref = np.maximum(a.astype(np.float64) * b + c, 0.0)
    return {"a": a, "b": b, "c": c}, sh, ref, 1e-5


def _w7(rng):
    x = rng.standard_normal((33, 257)).astype(np.float32)
    return {"x": x}, (33,), x.astype(np.float64).sum(axis=1), 1e-4


@needs_halide
@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("wid, make", [("W3", _w3), ("W7", _w7)])
def test_autoscheduled_matches_numpy(wid, make, row):
    from benchmarks.peers import halide_auto
    inputs, out_shape, ref, rtol = make(np.random.default_rng(7))
    peer = halide_auto.PEERS[row]
    run, result, compile_s = peer.prepare(wid, {k: v.copy() for k, v in inputs.items()},
                                          out_shape)
    run()
    out = result()
    assert out.shape == out_shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=1e-4)
    run()                                             # a second call: the same result
    np.testing.assert_allclose(result(), ref, rtol=rtol, atol=1e-4)
    assert compile_s > 0
    assert "pipeline.get_func" in peer.sources[wid]   # the schedule the autoscheduler chose
    assert peer.schedules()[wid].startswith(peer.name)


@needs_halide
def test_the_hand_schedule_is_separable():
    """halide_impl's builders give the algorithm with or without the hand schedule: the
    hand-scheduled build and the bare algorithm (Halide's default schedule: all inlined,
    the output serial) agree with NumPy."""
    import halide as hl

    from benchmarks.peers import halide_impl
    x = np.random.default_rng(3).standard_normal((128, 256)).astype(np.float32)
    ref = x.astype(np.float64).sum(axis=1)
    run, result, _ = halide_impl.prepare("W7", {"x": x.copy()}, (128,))
    run()
    np.testing.assert_allclose(result(), ref, rtol=1e-4, atol=1e-4)
    out, params, names = halide_impl.algorithm("W7", {"x": x.shape}, (128,))
    assert names == ["x"] and len(params) == 1
    res = np.empty(128, np.float32)
    out.compile_to_callable(params, halide_impl.target())(hl.Buffer(x), hl.Buffer(res))
    np.testing.assert_allclose(res, ref, rtol=1e-4, atol=1e-4)


def test_autoscheduler_rows_are_not_the_best_peer():
    def rec(ms):
        return {"status": "ok", "median_s": ms / 1e3, "p10_s": ms / 1e3, "iqr_s": 0.0,
                "perf": 1.0 / ms, "unit": "GB/s", "vs_numpy": None, "pct_of_limit": 100.0,
                "compile_s": 0.1, "compile_hit_s": None}
    results = {"W7": {"tdsl": rec(2.0), "tdsl:auto": rec(4.0), "halide": rec(3.0),
                      "halide:mullapudi2016": rec(1.0),
                      "halide:adams2019": {"status": "error", "reason": "x",
                                           "median_s": None}}}
    (row,) = report.summary_rows(results)
    assert row[2].startswith("halide ") and row[3] == "1.50x"     # hand-scheduled halide
    (auto,) = report.auto_rows(results)
    assert auto[0] == "W7" and auto[3] == "error"
    assert auto[4] == "0.25x (halide:mullapudi2016)"
    assert "Automatic schedules" in report.markdown_section("c", "d", results, {}, {}, {}, {})
    assert report.auto_rows({"W7": {"tdsl": rec(2.0)}}) == []


@needs_halide
def test_a_failing_autoscheduler_is_an_error_row_not_a_crash():
    """A parameter the plugin rejects ends in std::terminate inside the plugin (the
    Halide::Error it throws is not caught; its text is lost): the child process dies, and
    the row is "error" saying so, instead of the run aborting."""
    from benchmarks import harness
    from benchmarks.peers import halide_auto
    peer = halide_auto.Autoscheduled("halide:adams2019")
    peer.params = {"no_such_parameter": "1"}
    x = np.ones((16, 32), np.float32)
    im = harness.prepare_impl(peer.row, lambda: peer.prepare("W7", {"x": x}, (16,)))
    assert im.status == "error" and "AutoscheduleError" in im.reason
    assert "Adams2019 on W7: child process killed by SIGABRT" in im.reason, im.reason
    assert "Halide::Error" in im.reason
