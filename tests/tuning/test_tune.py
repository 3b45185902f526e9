"""td.tune and td.apply_best: real searches on small sizes with few trials.

Every candidate is compiled by gcc and timed in a worker process (or a Ray task on a
local cluster); the tests check what a user relies on: the log, resuming, replaying the
best record, faults that do not stop the search, and the errors for bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tdsl as td
from tdsl.tuning import LocalRunner, RayRunner
from tdsl.tuning.measure import REPEATS
from tdsl.tuning.search import CONFIRM_ROUNDS
from tdsl.tuning.space import Space
from tdsl.tuning.workload import Workload

SIZES = {"n": 40, "l": 24, "m": 56}


def matmul():
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return A, B, C


def softmax():
    n, m = td.var("n"), td.var("m")
    x = td.placeholder((n, m), name="x")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    mx = td.compute((n,), lambda i: td.max(x[i, k1], axis=k1), name="mx")
    e = td.compute((n, m), lambda i, j: td.exp(x[i, j] - mx[i]), name="e")
    total = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
    out = td.compute((n, m), lambda i, j: e[i, j] / total[i], name="out")
    return x, out


def check_matmul(mod, n=33, l=17, m=45):
    rng = np.random.default_rng(n)
    a = rng.uniform(-1, 1, (n, l)).astype("float32")
    b = rng.uniform(-1, 1, (l, m)).astype("float32")
    c = np.zeros((n, m), "float32")
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def lines(path):
    return [json.loads(x) for x in open(path).read().splitlines()]


@pytest.mark.slow
def test_tune_logs_resumes_and_applies(tmp_path):
    log = tmp_path / "tune.jsonl"
    A, B, C = matmul()
    result = td.tune([C], [A, B, C], trials=5, sizes=SIZES, log=log, seed=1, progress=False)
    measured = [r for r in result.history if r["trial"] is not None]
    assert len(measured) == 5
    # the fastest four were measured again and the winner is the best of their medians
    confirmed = [r for r in result.history if r["result"].get("confirmed")]
    fastest = sorted((r for r in measured if "seconds" in r["result"]),
                     key=lambda r: r["result"]["seconds"])[:4]
    assert {r["fingerprint"] for r in confirmed} == {r["fingerprint"] for r in fastest}
    repeats = REPEATS * (1 + CONFIRM_ROUNDS)      # the search's times, then each round's
    assert all(r["trial"] is None and r["result"]["confirmed"] == 1 and
               len(r["result"]["times"]) == repeats for r in confirmed)
    assert result.seconds == min(r["result"]["seconds"] for r in confirmed)
    assert result.errors == result.wrong == 0
    records = lines(log)
    assert len(records) == len(result.history)
    key = Workload([C], [A, B, C], SIZES).key
    assert all(r["workload"]["key"] == key and r["workload"]["sizes"] == SIZES
               for r in records)
    # the cost model sees isl's exact counts: 2 n m l flops, at least every byte of A, B
    # and C brought in (whole cache lines, and any local copy, on top)
    flops = 2 * SIZES["n"] * SIZES["l"] * SIZES["m"]
    data = 4 * (SIZES["n"] * SIZES["l"] + SIZES["l"] * SIZES["m"] + SIZES["n"] * SIZES["m"])
    for r in records:
        assert r["features"]["isl:flops"] == pytest.approx(np.log2(flops))
        assert r["features"]["isl:footprint"] >= np.log2(data)
        assert r["features"]["isl:traffic_l1"] >= r["features"]["isl:traffic_l3"]
        assert 0 <= r["features"]["isl:vector_fraction"] <= 1
    # the first candidate is the auto schedule's (all defaults)
    assert records[0]["choices"] == Space(Workload([C], [A, B, C], SIZES)).realize({}).choices
    check_matmul(result.build())                       # any size: the sizes stay symbolic

    # a fresh definition of the same algorithm resumes the log: nothing measured twice
    A, B, C = matmul()
    again = td.tune([C], [A, B, C], trials=8, sizes=SIZES, log=log, seed=2, progress=False)
    records = lines(log)
    assert len([r for r in records if r["trial"] is not None]) == 8
    keys = [r["fingerprint"] for r in records if r["trial"] is not None]
    assert len(keys) == len(set(keys))

    # the best of a log is the best of its latest confirmation
    A, B, C = matmul()
    s = td.apply_best(log, [C], [A, B, C], sizes=SIZES)
    latest = [r for r in records if r["result"].get("confirmed") == 2]
    assert len(latest) == 4
    best = min(latest, key=lambda r: r["result"]["seconds"])
    assert best["choices"] == again.choices and best["result"]["seconds"] == again.seconds
    check_matmul(td.build(s, [A, B, C]), 29, 31, 64)

    # a record another version of the rules made (its choices give another schedule now:
    # here its fingerprint is altered) is passed over for the next; none left: an error
    stale = dict(best, result={**best["result"], "seconds": 1e-9},
                 fingerprint="0" * 24)
    with open(log, "a") as f:
        f.write(json.dumps(stale) + "\n")
    A, B, C = matmul()
    assert td.apply_best(log, [C], [A, B, C], sizes=SIZES).script() == s.script()
    only = tmp_path / "stale.jsonl"
    only.write_text(json.dumps(stale) + "\n")
    with pytest.raises(td.TdslError, match="made by another version of tdsl: the best gives "
                                           "another schedule"):
        td.apply_best(only, [C], [A, B, C], sizes=SIZES)
    # resuming such a log: its stale records count for nothing, and their configurations
    # (the rules' defaults among them) are measured again
    old = [dict(r, fingerprint="0" * 24) for r in records if r["trial"] is not None][:3]
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_text("".join(json.dumps(r) + "\n" for r in old))
    A, B, C = matmul()
    td.tune([C], [A, B, C], trials=2, sizes=SIZES, log=resumed, seed=3, progress=False)
    fresh = [r for r in lines(resumed) if r["trial"] is not None and r["fingerprint"] != "0" * 24]
    assert len(fresh) == 2
    assert any(r["choices"] == old[0]["choices"] for r in fresh)


def test_a_resumed_log_is_realized_once_per_version_of_tdsl(tmp_path, monkeypatch):
    """What each logged configuration realizes to is kept between runs (tuning/
    realizations.py, under a digest of tdsl's sources): the second resume of a log
    realizes none of its records, only the winner it returns; another version of tdsl,
    or an unreadable kept map, realizes them all again; a record whose fingerprint the
    kept map contradicts is still stale."""
    from tdsl.tuning import realizations
    monkeypatch.setattr(realizations, "rules_version", lambda: f"test-{tmp_path.name}")
    log = tmp_path / "tune.jsonl"
    A, B, C = matmul()
    first = td.tune([C], [A, B, C], trials=3, sizes=SIZES, log=log, seed=1, progress=False)
    real, calls = Space.realize, []

    def counted(self, config):
        calls.append(config)
        return real(self, config)
    monkeypatch.setattr(Space, "realize", counted)

    def resume(path=log):
        calls.clear()
        A, B, C = matmul()
        result = td.tune([C], [A, B, C], trials=3, sizes=SIZES, log=path, seed=1,
                         progress=False)
        return result, len(calls)
    again, realized = resume()
    assert realized == 1 and again.choices == first.choices     # the winner's schedule
    configs = {json.dumps(r["choices"], sort_keys=True) for r in lines(log)}
    monkeypatch.setattr(realizations, "rules_version", lambda: f"other-{tmp_path.name}")
    assert resume()[1] == len(configs) + 1
    realizations._path(first.workload.key).write_text("{not json")
    assert resume()[1] == len(configs) + 1
    # the kept map says what the choices give now: a record of another schedule is stale
    stale = tmp_path / "stale.jsonl"
    stale.write_text("".join(json.dumps(dict(r, fingerprint="0" * 24)) + "\n"
                             for r in lines(log) if r["trial"] is not None))
    result, _ = resume(stale)
    assert all(r["fingerprint"] != "0" * 24 for r in result.history)
    assert len([r for r in lines(stale) if r["fingerprint"] != "0" * 24
                and r["trial"] is not None]) == 3


def test_tune_constant_shapes_and_random_search(tmp_path):
    x, out = softmax()
    n, m = x.shape
    # constant shapes need no sizes; the oracle is td.reference
    X = td.placeholder((37, 300), name="x")
    k1, k2 = td.reduce_axis(300, name="k1"), td.reduce_axis(300, name="k2")
    mx = td.compute((37,), lambda i: td.max(X[i, k1], axis=k1), name="mx")
    e = td.compute((37, 300), lambda i, j: td.exp(X[i, j] - mx[i]), name="e")
    total = td.compute((37,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
    Y = td.compute((37, 300), lambda i, j: e[i, j] / total[i], name="out")
    result = td.tune(Y, [X, Y], trials=4, search="random", seed=3, progress=False)
    assert len(result.history) >= 4 and result.errors == 0
    a = np.random.default_rng(0).uniform(-3, 3, (37, 300)).astype("float32")
    y = np.zeros_like(a)
    result.build()(a, y)
    want = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(y, want / want.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_crash_and_a_hang_do_not_stop_the_search(tmp_path, monkeypatch):
    monkeypatch.setenv("TDSL_TEST_FAULTS", str(tmp_path / "calls"))
    runner = LocalRunner(timeout=4, measure_fn="tests.tuning.faults:measure")
    A, B, C = matmul()
    result = td.tune([C], [A, B, C], trials=5, sizes=SIZES, runner=runner, seed=4,
                     progress=False, log=tmp_path / "log.jsonl")
    kinds = [r["result"].get("error", "ok") for r in result.history if r["trial"] is not None]
    assert kinds[1] == "crash" and "SIGSEGV" in result.history[1]["result"]["detail"]
    assert kinds[2] == "timeout"
    assert kinds.count("ok") == 3 and result.errors == 2
    check_matmul(result.build())


def test_a_wrong_kernel_is_caught_before_timing():
    from tdsl.backends.c import library_text
    from tdsl.schedule import create_schedule, lower
    from tdsl.tuning.measure import measure
    from tdsl.tuning.runner import compile_candidate
    A, B, C = matmul()
    workload = Workload([C], [A, B, C], SIZES)
    full, small = workload.checks()
    k = td.reduce_axis(A.shape[1], name="k")
    wrong = td.compute(C.shape, lambda i, j: td.sum(A[i, k] * B[k, j] * 1.01, axis=k),
                       name="C")
    source = library_text(lower(create_schedule(wrong), [A, B, wrong]))
    result = measure(compile_candidate(source, "c"), full, small)
    assert result["error"] == "wrong result" and "small sizes" in result["detail"]
    good = library_text(lower(create_schedule(C), [A, B, C]))
    assert measure(compile_candidate(good, "c"), full, small)["seconds"] > 0


def test_ray_runner_on_a_local_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, resources={"tdsl_measure": 1}, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    try:
        A, B, C = matmul()
        result = td.tune([C], [A, B, C], trials=3, sizes=SIZES, runner=RayRunner(), seed=5,
                         progress=False, log=tmp_path / "ray.jsonl")
        measured = [r for r in result.history if r["trial"] is not None]
        assert len([r for r in measured if "seconds" in r["result"]]) == 3
        check_matmul(result.build())
    finally:
        ray.shutdown()


def test_cost_model_ranks_better_than_random():
    """On a fixed data set (a random search over the whole space of the softmax workload at
    128 x 4096, on a quiet 2-core AMD EPYC Zen 3, kept in data/softmax_random.jsonl and
    made by tests/tuning/make_data.py), a model trained on half the records ranks the
    other half far better than chance."""
    from tdsl.tuning.model import CostModel
    path = Path(__file__).parent / "data" / "softmax_random.jsonl"
    records = [r for r in lines(path) if r["trial"] is not None and "seconds" in r["result"]]
    assert len(records) >= 30
    train, test = records[::2], records[1::2]
    model = CostModel(seed=0)
    model.fit([r["features"] for r in train], [r["result"]["seconds"] for r in train])
    predicted = model.predict([r["features"] for r in test])
    seconds = np.array([r["result"]["seconds"] for r in test])
    rank = lambda v: np.argsort(np.argsort(v))           # noqa: E731
    spearman = np.corrcoef(rank(predicted), rank(-seconds))[0, 1]
    assert spearman > 0.5
    top = seconds[np.argsort(-predicted)[:5]]
    assert top.mean() < np.median(seconds)


def test_bad_calls_say_what_was_expected(tmp_path):
    A, B, C = matmul()
    with pytest.raises(td.TdslError, match="symbolic sizes n, l, m"):
        td.tune([C], [A, B, C], trials=2)
    with pytest.raises(td.TdslValueError, match="which no argument's shape uses"):
        td.tune([C], [A, B, C], trials=2, sizes={**SIZES, "q": 3})
    with pytest.raises(td.TdslValueError, match="trials= should be a positive integer"):
        td.tune([C], [A, B, C], trials=0, sizes=SIZES)
    with pytest.raises(td.TdslValueError, match="search= should be one of"):
        td.tune([C], [A, B, C], trials=2, sizes=SIZES, search="grid")
    with pytest.raises(td.TdslError, match="runner= should be"):
        td.tune([C], [A, B, C], trials=2, sizes=SIZES, runner="cluster")
    with pytest.raises(td.TdslError, match="holds no measured candidate of workload [0-9a-f]+"):
        td.apply_best(tmp_path / "none.jsonl", [C], [A, B, C], sizes=SIZES)
    (tmp_path / "torn.jsonl").write_text('{"version": 1, "workload": {"ke')
    with pytest.warns(UserWarning, match="not a whole JSON record"):
        with pytest.raises(td.TdslError, match="holds no measured candidate"):
            td.apply_best(tmp_path / "torn.jsonl", [C], [A, B, C], sizes=SIZES)
