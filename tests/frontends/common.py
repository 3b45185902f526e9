"""Helpers of the ONNX importer tests: run an imported graph, and ONNX Runtime as the oracle.

`compile_imported` is the one place that turns (outputs, inputs, params) into something
callable: `td.compile` (fused kernels, each scheduled automatically, one library) for the
models; `via="build"`, one `td.build` of the whole graph with the default schedule (every
stage at the root), for the single-operator graphs (about 3x faster to build: the
operator tests check the converters, tests/graph checks td.compile) and for graphs with a
symbolic size, which td.compile refuses.
"""

from __future__ import annotations

import numpy as np
import onnx

import tdsl as td
from tdsl.frontends.onnx import import_model
from tdsl.lang.reference import evaluate_scalar


def compile_imported(outputs, inputs, params, sizes: dict | None = None, via: str = "compile"):
    """A function of the input arrays returning the list of output arrays."""
    constant = all(isinstance(d, td.lang.expr.Const) for t in inputs for d in t.shape)
    if via == "compile" and constant:
        net = td.compile(outputs, inputs=inputs, params=params)

        def run_compiled(*arrays):
            result = net(*arrays)
            return list(result) if isinstance(result, (list, tuple)) else [result]
        return run_compiled
    module = td.build(td.create_schedule(outputs), inputs + list(params) + outputs)
    weights = list(params.values())

    def run(*arrays):
        bound = dict(sizes or {})
        for t, a in zip(inputs, arrays):          # symbolic sizes from the arrays' shapes
            for d, n in zip(t.shape, a.shape):
                if not isinstance(d, td.lang.expr.Const):
                    bound[d] = n
        results = [np.full(tuple(int(evaluate_scalar(d, bound)) for d in t.shape), np.nan,
                           t.dtype) for t in outputs]
        module(*arrays, *weights, *results)
        return results
    return run


def ort_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # ORT's own fusions (GELU, LayerNorm...) change the rounding; the oracle runs the graph
    # as written.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check_model(model: onnx.ModelProto, trials: int = 2, seed: int = 0, rtol: float = 1e-4,
                atol: float = 1e-4, sizes: dict | None = None, shapes: dict | None = None,
                via: str = "compile"):
    """Import `model`, run it on `trials` random inputs and compare every output with ONNX
    Runtime's: |got - want| <= atol * max|want| + rtol * |want|. Returns the imported
    (outputs, inputs, params)."""
    outputs, inputs, params = import_model(model, sizes=sizes)
    run = compile_imported(outputs, inputs, params, via=via)
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        feeds = {}
        for info, t in zip(_graph_inputs(model), inputs):
            shape = (shapes or {}).get(info.name) or tuple(int(d.value) for d in t.shape)
            feeds[info.name] = rng.standard_normal(shape).astype(t.dtype)
        got = run(*feeds.values())
        want = ort_run(model, feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape, f"shape {g.shape}, ONNX Runtime {w.shape}"
            scale = float(np.max(np.abs(w))) or 1.0
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * scale)
    return outputs, inputs, params


def _graph_inputs(model):
    inits = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]
