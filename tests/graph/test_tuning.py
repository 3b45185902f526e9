"""The kernels of a network as tuning tasks; td.compile takes their tuned schedules from
the log."""

from __future__ import annotations

import numpy as np

import tdsl as td

from . import common


def test_tasks_then_compile_with_the_log(tmp_path):
    outputs, inputs, params, oracle = common.mlp()
    tasks = td.graph.tasks(outputs, inputs, params)
    assert [t.name for t in tasks] == ["network_dense_matmul", "network_dense_matmul_1",
                                       "network_softmax"]
    assert [a.name for a in tasks[0].args] == ["x", "w1", "b1", "relu"]
    assert tasks[0].work == 4 * 32 * 16 + 2 * 4 * 32
    log = tmp_path / "net.jsonl"
    td.tune(list(tasks[1].outputs), list(tasks[1].args), trials=2, batch=2, log=log,
            progress=False)
    net = td.compile(outputs, inputs=inputs, params=params, log=log)
    assert [k.tuned for k in net.kernels] == [False, True, False]
    assert "schedule (tuned (from the log)):" in str(net)
    x = np.random.default_rng(4).standard_normal((4, 16)).astype("float32")
    np.testing.assert_allclose(net(x), oracle(x), rtol=2e-4, atol=2e-4)
