"""The graph compiler's parts without compiling: patterns, fusion, folding, planning."""

from __future__ import annotations

import numpy as np

import tdsl as td
from tdsl import nn
from tdsl.graph.fold import fold
from tdsl.graph.fuse import partition
from tdsl.graph.patterns import Pattern, pattern
from tdsl.graph.plan import plan_memory
from tdsl.graph.rewrite import distinct_names, rebuild
from tdsl.lang.graph import topo_order


def test_patterns():
    x = td.placeholder((1, 4, 6, 6), name="x")
    w = td.placeholder((8, 4, 3, 3), name="w")
    b = td.placeholder((8,), name="b")
    conv = nn.conv2d(x, w, b, padding=1)
    assert pattern(conv.op.input_tensors[0].op) is Pattern.OUT_FUSABLE      # conv2d_sum
    assert pattern(conv.op) is Pattern.BROADCAST                            # + bias[f]
    assert pattern(nn.relu(x).op) is Pattern.ELEMENTWISE
    assert pattern(nn.add(x, x).op) is Pattern.ELEMENTWISE                  # batch 1 read at 0
    assert pattern(nn.transpose(x, (0, 2, 3, 1)).op) is Pattern.INJECTIVE
    assert pattern(nn.max_pool2d(x, 2).op) is Pattern.REDUCTION
    assert pattern(nn.flatten(x).op) is Pattern.INJECTIVE                   # x[i // 36, ...]
    # dropping axes of size 1 reads the same elements: a broadcast, not a reshape
    assert pattern(nn.flatten(nn.global_avg_pool2d(x)).op) is Pattern.BROADCAST
    assert str(Pattern.OUT_FUSABLE) == "out_fusable"


def test_distinct_names_and_rebuild():
    x = td.placeholder((4,), name="x")
    y = nn.relu(nn.relu(x))
    new = distinct_names([y], keep=[x])
    assert [op.name for op in topo_order([new[y]])] == ["x", "relu", "relu_1"]
    h = y.op.input_tensors[0]
    cut = td.placeholder(h.shape, h.dtype, "h")
    rebuilt = rebuild([y], {h: cut})[y]
    assert rebuilt.op.input_tensors == [cut]
    assert y.op.input_tensors == [h]                     # the old graph is unchanged


def test_epilogue_takes_a_diamond_that_meets_again():
    x = td.placeholder((2, 8), name="x")
    w = td.placeholder((8, 8), name="w")
    h = nn.relu(nn.dense(x, w, name="d"), name="r")
    y = nn.add(nn.sigmoid(h, name="s"), nn.tanh(h, name="t"), name="y")
    parts = partition([y], topo_order([y]))
    # r is read by s and t, which meet again in y: one exit, all in the dense's kernel
    assert [[op.name for op in g.ops] for g in parts.groups] == [["d", "r", "s", "t", "y"]]


def test_epilogue_stops_where_its_paths_part():
    x = td.placeholder((2, 8), name="x")
    w, v = td.placeholder((8, 8), name="w"), td.placeholder((8, 8), name="v")
    h = nn.relu(nn.dense(x, w, name="d"), name="r")
    s = nn.sigmoid(h, name="s")
    y = nn.add(nn.dense(s, v, name="e"), h, name="y")
    parts = partition([y], topo_order([y]))
    stages = [[op.name for op in g.ops] for g in parts.groups]
    # r is read by s (then a second dense) and by y: s alone would be a second exit
    assert stages[0] == ["d", "r"]
    assert ["e", "y"] in stages


def test_cheap_shared_producer_is_recomputed():
    x = td.placeholder((4, 4), name="x")
    h = nn.mul(x, 2.0, name="h")                         # read by two kernels' reductions
    a, b = nn.sum(h, axis=1, name="a"), nn.max(h, axis=0, name="b")
    parts = partition([a, b], topo_order([a, b]))
    assert [[op.name for op in g.ops] for g in parts.groups] == [["h", "a"], ["h", "b"]]
    assert "h: recompute" in str(parts.choices[0])


def test_fold_constant_stages_and_batch_norm():
    x = td.placeholder((1, 2, 4, 4), name="x")
    w = td.placeholder((3, 2, 1, 1), name="w")
    bias = td.placeholder((3,), name="bias")
    stats = [td.placeholder((3,), name=n) for n in ("g", "b", "m", "v")]
    y = nn.batch_norm(nn.conv2d(x, w, bias), *stats)
    rng = np.random.default_rng(0)
    params = {t: rng.random(tuple(int(d.value) for d in t.shape)).astype("float32") + 0.5
              for t in (w, bias, *stats)}
    result = fold([y], params)
    assert [f.what for f in result.folded] == ["constant", "batch_norm"]
    names = sorted(t.name for t in result.params)
    assert names == ["batch_norm_bias", "w_bn"]                  # bias, mean, var... gone
    xa = rng.random((1, 2, 4, 4)).astype("float32")
    want = td.reference(y, {x: xa, **params})
    got = td.reference(result.outputs[0], {x: xa, **result.params})
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_memory_plan_shares_by_liveness():
    plan = plan_memory([("a", 400, 0, 1), ("b", 400, 1, 2), ("c", 400, 2, 3),
                        ("d", 100, 0, 3)])
    offsets = {s.name: s.offset for s in plan.slots}
    assert offsets["c"] == offsets["a"]                  # a is dead when c is written
    assert offsets["b"] != offsets["a"]
    assert plan.peak < plan.total
    assert plan_memory([]).peak == 0


def test_fold_a_chain_of_batch_norms():
    """Each conv + batch_norm of a chain folded; no stage of the old graph survives
    upstream of a folded one."""
    x = td.placeholder((1, 2, 4, 4), name="x")
    rng = np.random.default_rng(1)
    params, h = {}, x
    for layer in range(3):
        w = td.placeholder((2, 2, 1, 1), name=f"w{layer}")
        stats = [td.placeholder((2,), name=f"{n}{layer}") for n in "gbmv"]
        for t in (w, *stats):
            params[t] = rng.random(tuple(int(d.value) for d in t.shape)).astype("float32") + .5
        h = nn.relu(nn.batch_norm(nn.conv2d(x if layer == 0 else h, w), *stats))
    result = fold([h], params)
    assert [f.what for f in result.folded].count("batch_norm") == 3
    read = {op.name for op in topo_order(list(result.outputs))}
    assert not read & {"w0", "w1", "w2", "m0", "m1", "m2", "batch_norm_scale"}
    xa = rng.random((1, 2, 4, 4)).astype("float32")
    np.testing.assert_allclose(td.reference(result.outputs[0], {x: xa, **result.params}),
                               td.reference(h, {x: xa, **params}), rtol=1e-5)
