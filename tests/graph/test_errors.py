"""td.compile refuses bad arguments before any work, naming what was expected and what
came."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import tdsl as td
from tdsl import nn


def _dense():
    x = td.placeholder((2, 4), name="x")
    w = td.placeholder((3, 4), name="w")
    return x, w, nn.relu(nn.dense(x, w))


W = np.ones((3, 4), "float32")


def test_an_input_must_be_a_placeholder():
    x, w, y = _dense()
    with pytest.raises(td.TdslTypeError, match=r"inputs must be placeholders \(td.placeholder\);"
                                               r" relu is computed by a ComputeOp"):
        td.compile([y], inputs=[y], params={w: W})


def test_a_param_with_the_wrong_shape():
    x, w, y = _dense()
    with pytest.raises(td.TdslValueError,
                       match=r"param w: expected shape \(3, 4\); got \(4, 3\)"):
        td.compile([y], inputs=[x], params={w: W.T.copy()})


def test_a_param_with_the_wrong_dtype():
    x, w, y = _dense()
    with pytest.raises(td.TdslTypeError,
                       match=r"param w: expected dtype float32; got float64 "
                             r"\(convert it with .astype\('float32'\)\)"):
        td.compile([y], inputs=[x], params={w: W.astype("float64")})


def test_a_param_that_is_not_an_array():
    x, w, y = _dense()
    with pytest.raises(td.TdslTypeError, match="param w: expected a NumPy array of dtype "
                                               r"float32 and shape \(3, 4\); got list"):
        td.compile([y], inputs=[x], params={w: W.tolist()})


def test_an_output_that_does_not_depend_on_the_inputs():
    x, w, y = _dense()
    c = nn.relu(w, name="constant")
    with pytest.raises(td.TdslValueError, match=r"the output constant does not depend on any "
                                                r"input \(x\)"):
        td.compile([y, c], inputs=[x], params={w: W})


def test_a_placeholder_neither_input_nor_param():
    x, w, y = _dense()
    with pytest.raises(td.TdslValueError, match=r"the outputs read the placeholder w \(3, 4\), "
                                                "which is neither an input nor a param"):
        td.compile([y], inputs=[x])


def test_an_input_that_is_also_a_param():
    x, w, y = _dense()
    with pytest.raises(td.TdslValueError, match="w is both an input and a param"):
        td.compile([y], inputs=[x, w], params={w: W})


def test_symbolic_shapes_are_refused():
    n = td.var("n")
    x = td.placeholder((n, 4), name="x")
    with pytest.raises(td.TdslValueError, match=r"td.compile needs constant shapes; x has "
                                                r"shape \(n, 4\)"):
        td.compile([nn.relu(x)], inputs=[x])


def test_other_targets_are_refused():
    x, w, y = _dense()
    with pytest.raises(td.TdslValueError, match="builds networks for the C target"):
        td.compile([y], inputs=[x], params={w: W}, target="cuda")


def test_errors_are_tdsl_errors():
    x, w, y = _dense()
    for call in (lambda: td.compile([y], inputs=[y], params={w: W}),
                 lambda: td.compile([y], inputs=[x], params={w: W[:2]})):
        with pytest.raises(td.TdslError):
            call()


def test_an_onnx_model_goes_to_the_frontend(monkeypatch):
    """td.compile("model.onnx") asks tdsl.frontends.onnx.import_model for the graph."""
    x, w, y = _dense()
    seen = []

    def import_model(model):
        seen.append(model)
        return [y], [x], {w: W}
    frontend = types.ModuleType("tdsl.frontends.onnx")
    frontend.import_model = import_model
    package = types.ModuleType("tdsl.frontends")
    package.__path__ = []
    package.onnx = frontend
    monkeypatch.setitem(sys.modules, "tdsl.frontends", package)
    monkeypatch.setitem(sys.modules, "tdsl.frontends.onnx", frontend)
    net = td.compile("model.onnx")
    assert seen == ["model.onnx"]
    xa = np.arange(8, dtype="float32").reshape(2, 4) - 3
    np.testing.assert_allclose(net(xa), np.maximum(xa @ W.T, 0))
    with pytest.raises(td.TdslValueError, match="brings its own inputs and weights"):
        td.compile("model.onnx", inputs=[x])
