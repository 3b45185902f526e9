"""td.auto_schedule of whole training steps (examples/): the digits CNN's step, forward,
loss and td.grad's adjoints in one kernel of ~40 stages, is scheduled with one isl proof
of the whole program (a proof per rule took minutes) and computes what td.reference
does; the rule-by-rule path gives the same schedules; and the grain rule keeps loops of
small nests serial, a `<stage>.parallel` knob overruling it.
"""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl.auto import rules
from tdsl.auto.analysis import analyze
from tdsl.auto.knobs import Knobs
from tdsl.target import target as parse_target
from tests.schedule import test_primitives as programs

pytest.importorskip("sklearn", reason="examples.digits imports the digits data's loader")

from examples import digits, train_cnn, train_mlp  # noqa: E402


def _step(model, batch):
    params = list(model.params)
    x = td.placeholder((batch, *model.image_shape), "float32", name="x")
    target = td.placeholder((batch, digits.CLASSES), "float32", name="target")
    loss = digits.cross_entropy(model.forward(x, params), target)
    outputs = [loss, *td.grad(loss, params)]
    return outputs, [x, target, *params]


def _check(s, outputs, inputs, sizes):
    """Build `s`, run it on random inputs, compare every output with td.reference."""
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(tuple(sizes.get(d, d) if not hasattr(d, "value") else
                                        int(d.value) for d in t.shape)).astype(np.float32)
              for t in inputs]
    mod = td.build(s, [*inputs, *outputs])
    want = td.reference(outputs, dict(zip(inputs, values)))
    got = [np.empty(w.shape, np.float32) for w in want]
    mod(*values, *got)
    for t, g, w in zip(outputs, got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * max(np.abs(w).max(), 1),
                                   err_msg=t.name)


def _rule_by_rule(outputs, knobs=None):
    """The rules with every rule proven when it ends (the fallback of apply_rules)."""
    s = td.create_schedule(outputs)
    infos = analyze(list(s.data.order), [o.op for o in outputs])
    rules._CpuRules(s, parse_target(None), infos, outputs, knobs or Knobs()).run()
    return s


def test_cnn_training_step_is_scheduled_with_one_proof_and_correct(monkeypatch):
    """A smaller CNN (2 and 2 filters, batch 2) than examples/train_cnn.py's, the same
    ~40 stages: one legality check of the whole schedule, and the kernel equals
    td.reference."""
    outputs, inputs = _step(train_cnn.model((2, 2)), 2)
    checks = []
    original = td.Schedule.check

    def counted(self):
        checks.append(1)
        return original(self)
    monkeypatch.setattr(td.Schedule, "check", counted)
    s = td.auto_schedule(outputs)
    monkeypatch.undo()
    assert len(checks) == 1
    assert len(s.history) > 40                          # the rules did schedule it
    _check(s, outputs, inputs, {})


@pytest.mark.parametrize("name", ["matmul", "conv2d", "softmax", "blur", "iir",
                                  "two_consumers"])
def test_one_proof_gives_the_rule_by_rule_schedule(name):
    p = getattr(programs, name)()
    assert str(td.auto_schedule(p.outputs)) == str(_rule_by_rule(p.outputs))


def test_a_refused_whole_schedule_falls_back_to_rule_by_rule(monkeypatch):
    """If isl refuses the schedule of the one-proof attempt, the rules run again one by
    one: the result is the rule-by-rule schedule, still correct."""
    p = programs.matmul()
    calls = []
    original = rules._CpuRules.run

    def run_refused(self):
        calls.append(self.speculative)
        original(self)
        if self.speculative:                   # a race the proof refuses
            local = next(st for st in self.s.stages if st.op.reduce_axis)
            local.parallel(local.op.reduce_axis[0])
    monkeypatch.setattr(rules._CpuRules, "run", run_refused)
    knobs = Knobs()
    s = rules.apply_rules(p.outputs, None, knobs)
    monkeypatch.undo()
    assert calls == [True, False]
    assert str(s) == str(_rule_by_rule(p.outputs))
    programs.verify(p, s)


def _parallel_loops(s) -> list[str]:
    return [line for line in s.script().splitlines() if ".parallel(" in line]


def test_small_nests_stay_serial_and_the_knob_overrules_it():
    """The MLP step at batch 1: every nest is far below MIN_PARALLEL_WORK, no loop runs
    on the threads; `<stage>.parallel=True` puts one back; results unchanged."""
    outputs, inputs = _step(train_mlp.model(hidden=32), 1)
    knobs = Knobs()
    s = rules.apply_rules(outputs, None, knobs)
    assert _parallel_loops(s) == []
    offered = [k for k in knobs.space if k.endswith(".parallel")]
    assert offered and all(knobs.chosen[k] is False for k in offered)
    _check(s, outputs, inputs, {})
    forced = Knobs({"w1_grad.parallel": True})
    s2 = rules.apply_rules(outputs, None, forced)
    assert forced.chosen["w1_grad.parallel"] is True
    assert any("w1_grad" in line for line in _parallel_loops(s2))
    _check(s2, outputs, inputs, {})


def test_work_is_counted_from_the_definition():
    """iterations x operations: a matmul 16 x 16 x 16 is 16^3 x (multiply, add, two
    loads); symbolic sizes keep the parallel loop."""
    A = td.placeholder((16, 16), name="A")
    B = td.placeholder((16, 16), name="B")
    k = td.reduce_axis(16, name="k")
    C = td.compute((16, 16), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    r = rules._CpuRules(td.create_schedule(C), parse_target(None), {}, [C], Knobs())
    assert r.nest_work(C.op) == 16 ** 3 * 4
    n = td.var("n")
    X = td.placeholder((n, 64), name="X")
    Y = td.compute((n, 64), lambda i, j: X[i, j] * 2, name="Y")
    assert r.nest_work(Y.op) is None
    assert _parallel_loops(td.auto_schedule(Y))
