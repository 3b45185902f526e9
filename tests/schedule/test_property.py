"""Random schedules: every primitive sequence is either refused or correct.

Hypothesis picks a program (matmul, blur, softmax, prefix sum, IIR, a small conv2d)
and applies a random sequence of primitives (split, tile, reorder, fuse, parallel,
vectorize, unroll, compute_at, compute_inline, compute_root, rfactor) drawn from the
schedule's current stages and loops. Each step either raises `ScheduleError`, and
then the schedule is exactly as before, or is applied. The final schedule must build
and match `td.reference` and NumPy at two random size combinations, on arrays
guarded by canaries (no write outside the outputs, inputs untouched).

CI runs 200 examples; `TDSL_HYPOTHESIS_EXAMPLES=2000` runs a longer search.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import tdsl as td
from tdsl.lang.expr import Const, Reduce
from tdsl.lang.tensor import ComputeOp
from tdsl.schedule.state import is_reduce_leaf
from tdsl.testing import random_array, tolerance
from tests.schedule.test_primitives import (
    blur,
    conv2d,
    iir,
    matmul,
    prefix_sum,
    run_guarded,
    softmax,
)

PROGRAMS = {"matmul": matmul, "blur": blur, "softmax": softmax, "prefix_sum": prefix_sum,
            "iir": iir, "conv2d": conv2d}

# sizes for every symbolic size, by name: small, with values that divide the factors
# below and values that do not
SIZE_RANGE = {"N": (1, 2), "Ci": (1, 3), "Co": (1, 3), "H": (1, 9), "W": (1, 9)}
DEFAULT_RANGE = (1, 40)
FACTORS = (1, 2, 3, 4, 5, 8, 16)
PRIMITIVES = ("split", "split", "tile", "reorder", "fuse", "parallel", "vectorize", "unroll",
              "compute_at", "compute_at", "compute_inline", "compute_root", "rfactor")

EXAMPLES = int(os.environ.get("TDSL_HYPOTHESIS_EXAMPLES", 80))


def _computed_stages(s):
    return [st_ for st_ in s.stages if not st_.state.inlined]


def _non_output_stages(s):
    outs = {s.data.key_of(t.op) for t in s.outputs}
    return [st_ for st_ in s.stages if st_._key not in outs]


def _step(s, draw) -> str | None:
    """Draw one primitive applicable in form to `s`, apply it, and return its description
    (None if nothing of that kind can be drawn). May raise ScheduleError."""
    kind = draw(st.sampled_from(PRIMITIVES), label="primitive")
    computed = _computed_stages(s)
    if kind in ("split", "parallel", "vectorize", "unroll"):
        stage = draw(st.sampled_from(computed), label="stage")
        axis = draw(st.sampled_from(stage.leaf_iter_vars), label="axis")
        if kind == "split":
            factor = draw(st.sampled_from(FACTORS), label="factor")
            stage.split(axis, factor=factor)
            return f"s[{stage.name}].split({axis.name}, {factor})"
        getattr(stage, kind)(axis)
        return f"s[{stage.name}].{kind}({axis.name})"
    if kind == "tile":
        stage = draw(st.sampled_from(computed), label="stage")
        leaves = stage.leaf_iter_vars
        if len(leaves) < 2:
            return None
        k = draw(st.integers(0, len(leaves) - 2), label="first")
        fx = draw(st.sampled_from(FACTORS), label="fx")
        fy = draw(st.sampled_from(FACTORS), label="fy")
        stage.tile(leaves[k], leaves[k + 1], fx, fy)
        return f"s[{stage.name}].tile({leaves[k].name}, {leaves[k + 1].name}, {fx}, {fy})"
    if kind == "reorder":
        stage = draw(st.sampled_from(computed), label="stage")
        order = draw(st.permutations(stage.leaf_iter_vars), label="order")
        stage.reorder(*order)
        return f"s[{stage.name}].reorder({', '.join(a.name for a in order)})"
    if kind == "fuse":
        stage = draw(st.sampled_from(computed), label="stage")
        leaves = stage.leaf_iter_vars
        if len(leaves) < 2:
            return None
        k = draw(st.integers(0, len(leaves) - 2), label="first")
        stage.fuse(leaves[k], leaves[k + 1])
        return f"s[{stage.name}].fuse({leaves[k].name}, {leaves[k + 1].name})"
    if kind == "compute_at":
        movable = _non_output_stages(s)
        if not movable or not computed:
            return None
        stage = draw(st.sampled_from(movable), label="producer")
        parent = draw(st.sampled_from(computed), label="consumer")
        axis = draw(st.sampled_from(parent.leaf_iter_vars), label="axis")
        stage.compute_at(parent, axis)
        return f"s[{stage.name}].compute_at(s[{parent.name}], {axis.name})"
    if kind in ("compute_inline", "compute_root"):
        movable = _non_output_stages(s)
        if not movable:
            return None
        stage = draw(st.sampled_from(movable), label="stage")
        getattr(stage, kind)()
        return f"s[{stage.name}].{kind}()"
    # rfactor: a reduction stage and one of its reduction loops
    reductions = [x for x in computed
                  if isinstance(x.op, ComputeOp) and isinstance(x.op.body, Reduce)]
    if not reductions:
        return None
    stage = draw(st.sampled_from(reductions), label="stage")
    loops = [a for a in stage.leaf_iter_vars if is_reduce_leaf(stage.state, a)]
    if not loops:
        return None
    axis = draw(st.sampled_from(loops), label="axis")
    tensor = stage.op.output(0)
    s.rfactor(tensor, axis)
    return f"s.rfactor({stage.name}, {axis.name})"


def _unrolled_copies(s) -> int:
    """The most copies of a statement that full unrolling writes into the source."""
    most = 1
    for stage in s.stages:
        copies = 1
        for leaf in stage.leaf_iter_vars:
            if stage.state.kind_of(leaf) == "unroll" and isinstance(leaf.extent, Const):
                copies *= leaf.extent.value
        most = max(most, copies)
    return most


def _sizes(p, draw) -> dict:
    names = sorted({v for combo in p.sizes for v in combo}, key=lambda v: v.name)
    return {v: draw(st.integers(*SIZE_RANGE.get(v.name, DEFAULT_RANGE)), label=v.name)
            for v in names}


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_schedules_are_refused_or_correct(data):
    name = data.draw(st.sampled_from(sorted(PROGRAMS)), label="program")
    p = PROGRAMS[name]()
    s = p.schedule()
    steps = data.draw(st.integers(1, 8), label="steps")
    applied, refused = [], 0
    for _ in range(steps):
        before = (s.data, list(s.history), str(s))
        try:
            what = _step(s, data.draw)
        except td.ScheduleError:
            after = (s.data, list(s.history), str(s))
            assert after[0] is before[0] and after[1:] == before[1:], \
                "a refused primitive changed the schedule"
            refused += 1
            continue
        if what is not None:
            applied.append(what)
    assume(_unrolled_copies(s) <= 256)     # gcc takes minutes on 16x16x16 unrolled bodies
    event(f"program {name}")
    event(f"{min(len(applied), 4)}{'+' if len(applied) >= 4 else ''} primitives applied")
    event(f"{min(refused, 2)}{'+' if refused >= 2 else ''} primitives refused")
    module = td.build(s, p.args)
    for _ in range(2):
        sizes = _sizes(p, data.draw)
        rng = np.random.default_rng(len(applied))
        feeds = {t: random_array(t, sizes, rng) for t in p.args
                 if isinstance(t.op, td.lang.PlaceholderOp)}
        outputs = [t for t in p.args if t not in feeds]
        want = td.reference(outputs, feeds, sizes)
        want_np = p.numpy({t.name: a for t, a in feeds.items()},
                          {v.name: n for v, n in sizes.items()})
        got = run_guarded(module, p.args, sizes, feeds)
        rtol, atol = tolerance("float32")
        for t, g, w, wn in zip(outputs, got, want, want_np):
            np.testing.assert_allclose(g, w, rtol=rtol * 10, atol=atol * 10, err_msg=(
                f"{t.name} differs from td.reference at {sizes} after:\n  " +
                "\n  ".join(s.history)))
            np.testing.assert_allclose(g, wn, rtol=rtol * 10, atol=atol * 10,
                                       err_msg=f"{t.name} differs from NumPy")
