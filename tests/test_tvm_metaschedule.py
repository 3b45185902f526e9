"""benchmarks/peers/tvm_metaschedule.py: the "tvm:metaschedule" row's pieces that need no
tuning run (tuning even a tiny workload takes minutes here, most of it MetaSchedule's
start-up, and apache-tvm is in the `bench` extra, not `test`): the curve read from
MetaSchedule's database, the records, the report's columns, and the unscheduled TE
definitions MetaSchedule tunes (built untuned, against NumPy, where TVM is installed)."""

import json

import numpy as np
import pytest

from benchmarks import report
from benchmarks.peers import tvm_metaschedule as tms

try:
    import tvm  # noqa: F401
    HAVE_TVM = True
except Exception:
    HAVE_TVM = False


def test_curve_from_the_database_in_commit_order(tmp_path):
    db = tmp_path / "database_tuning_record.json"
    lines = [[0, [["trace-a"], [3e-3, 5e-3], {"kind": "llvm"}, []]],
             [0, [["trace-b"], [1e10], {"kind": "llvm"}, []]],      # a failed trial
             [0, [["trace-c"], [2e-3], {"kind": "llvm"}, []]],
             [0, [["trace-d"], None, {"kind": "llvm"}, []]]]
    db.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    curve, recs, errors = tms._curve(db)
    assert curve == [4e-3, 4e-3, 2e-3, 2e-3]
    assert errors == 2
    assert [r["seconds"] for r in recs] == [4e-3, None, 2e-3, None]
    assert recs[2]["trace"] == ["trace-c"]


def test_records_match_on_workload_sizes_target_cpu_and_budget(tmp_path):
    path = tmp_path / "ms.jsonl"
    base = {"workload": "W7", "shapes": {"x": [64, 64]}, "target": {"kind": "llvm"},
            "cpu": "some cpu", "trials": 8, "seed": 0}
    assert tms.load_record(path, base) is None
    path.write_text("\n".join(json.dumps({**base, **d}) for d in (
        {"trials": 16, "best_s": 1.0}, {"best_s": 2.0}, {"cpu": "other", "best_s": 3.0},
        {"best_s": 4.0})) + "\n")
    assert tms.load_record(path, base)["best_s"] == 4.0            # the last that matches
    assert tms.load_record(path, {**base, "trials": 16})["best_s"] == 1.0
    assert tms.load_record(path, {**base, "shapes": {"x": [64, 65]}}) is None


def _rec(ms):
    return {"status": "ok", "median_s": ms / 1e3, "p10_s": ms / 1e3, "iqr_s": 0.0,
            "perf": 1.0 / ms, "unit": "GB/s", "vs_numpy": None, "pct_of_limit": 100.0,
            "compile_s": 0.1, "compile_hit_s": None}


def test_metaschedule_is_a_tuner_column_not_the_best_peer():
    results = {"W7": {"tdsl": _rec(2.0), "tdsl:auto": _rec(4.0), "tdsl:tuned": _rec(2.0),
                      "tvm": _rec(3.0), "tvm:metaschedule": _rec(1.0)},
               "W3": {"tdsl": _rec(2.0), "halide:mullapudi2016": _rec(2.0)}}
    (w7, w3) = report.summary_rows(results)
    assert w7[2].startswith("tvm ") and w7[3] == "1.50x"       # hand-scheduled TVM
    head = report.auto_head(results)
    assert head[-3:] == ["tdsl:tuned", "tvm:metaschedule", "tdsl:tuned vs tvm:metaschedule"]
    rows = {r[0]: r for r in report.auto_rows(results)}
    assert len(rows["W7"]) == len(head) and rows["W7"][-1] == "0.50x"
    assert rows["W3"][-3:] == ["-", "-", "-"]
    md = report.markdown_section("c", "d", results, {}, {}, {}, {})
    assert "| tdsl:tuned | tvm:metaschedule | tdsl:tuned vs tvm:metaschedule |" in md
    assert "tdsl:tuned vs MetaSchedule" in report.auto_text("c", results)
    # without a MetaSchedule row the table keeps its columns
    del results["W7"]["tvm:metaschedule"]
    assert report.auto_head(results) == report.AUTO_HEAD


def _small(wid, rng):
    f = np.float32
    if wid == "W1":
        return {"A": rng.standard_normal((20, 12)).astype(f),
                "B": rng.standard_normal((12, 18)).astype(f)}
    if wid == "W2":
        return {"x": rng.standard_normal((1, 3, 6, 5)).astype(f),
                "w": rng.standard_normal((4, 3, 3, 3)).astype(f)}
    if wid == "W3":
        return {k: rng.standard_normal((9, 14)).astype(f) for k in "abc"}
    return {"x": rng.standard_normal((11, 17)).astype(f)}


@pytest.mark.skipif(not HAVE_TVM, reason="apache-tvm is not installed (the bench extra)")
@pytest.mark.parametrize("wid", tms.WORKLOADS)
def test_the_definitions_metaschedule_tunes_match_numpy(wid):
    """W1-W8 in TE as tune_tir gets them, built with no schedule, at small ragged sizes,
    against the benchmark's float64 references."""
    from benchmarks.workloads import WORKLOADS
    inputs = _small(wid, np.random.default_rng(5))
    ref = WORKLOADS[wid].reference(inputs)
    func, names = tms.algorithm(wid, {k: v.shape for k, v in inputs.items()})
    assert sorted(names) == sorted(inputs)
    fn = tvm.compile(tvm.IRModule({"main": func}), target={"kind": "llvm"})["main"]
    dev = tvm.cpu()
    out = tvm.runtime.empty(ref.shape, "float32", dev)
    fn(*[tvm.runtime.tensor(inputs[n], dev) for n in names], out)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-4)
