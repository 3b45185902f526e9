"""The ONNX importer on whole models (tdsl.testing.onnx_models) against ONNX Runtime, and the
errors of bad models, each message checked.

The networks are built with the default schedule as one `td.build` of the whole graph
(tests/frontends/common.py), whose isl dependence analysis and single C file grow with the
number of stages: a full MobileNetV2 (225 stages at 32x32) takes ~100 s to build. So the
tests use the full MLP and transformer block, and ResNet-18 / MobileNetV2 with narrow
channels, 32x32 images and fewer blocks (every kind of block and layer is still there:
identity and projection shortcuts, depthwise convs, Relu6, residual Adds);
benchmarks/networks.py runs the full-size models.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tdsl as td
from tdsl.frontends.onnx import import_model
from tdsl.testing import onnx_models

from .common import check_model, compile_imported, ort_run


def test_mlp():
    outputs, inputs, params = check_model(onnx_models.mlp(), trials=3)
    assert [tuple(int(d.value) for d in t.shape) for t in inputs] == [(1, 784)]
    assert sorted(p.shape for p in params.values()) == sorted(
        [(512, 784), (512,), (512, 512), (512,), (10, 512), (10,)])


@pytest.mark.parametrize("make, shape", [
    (lambda: onnx_models.mlp(batch="N", sizes=(20, 16, 3)), (20,)),
    (lambda: onnx_models.transformer_block(seq=8, width=16, heads=2, batch="N"), (8, 16)),
], ids=["mlp", "transformer"])
def test_symbolic_batch(make, shape):
    """A named batch dimension becomes td.var("N"): one kernel serves every batch size. In
    the transformer, Shape -> Gather -> Concat carries N into the head-split Reshape."""
    model = make()
    outputs, inputs, params = import_model(model)
    assert str(inputs[0].shape[0]) == "N" and str(outputs[0].shape[0]) == "N"
    run = compile_imported(outputs, inputs, params)
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
        (got,) = run(x)
        (want,) = ort_run(model, {"x": x})
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # sizes= binds the name to a constant instead.
    outputs, inputs, _ = import_model(model, sizes={"N": 4})
    assert int(outputs[0].shape[0].value) == 4


def test_mlp_batch_64_weights_stored_transposed():
    """From 8 rows on, a Linear's weight (out, in) is a parameter stored as (in, out)."""
    outputs, inputs, params = check_model(onnx_models.mlp(batch=64, sizes=(24, 16, 3)),
                                          trials=1)
    assert sorted(p.shape for p in params.values() if p.ndim == 2) == [(16, 3), (24, 16)]
    assert all(t.name.endswith("weight_T") for t in params if t.ndim == 2)


def test_td_compile_takes_the_onnx_model(tmp_path):
    """td.compile("model.onnx") and td.compile(ModelProto) import through this frontend."""
    import onnx
    model = onnx_models.mlp(batch=2, sizes=(12, 8, 3))
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(0).standard_normal((2, 12)).astype(np.float32)
    (want,) = ort_run(model, {"x": x})
    for source in (model, str(path)):
        net = td.compile(source)
        np.testing.assert_allclose(net(x), want, rtol=1e-4, atol=1e-5)


def test_transformer_block():
    check_model(onnx_models.transformer_block(seq=8, width=16, heads=2), trials=3)


def test_resnet18_small():
    check_model(onnx_models.resnet18(image=32, width=8, blocks=(1, 1, 1, 1), classes=10),
                trials=2, rtol=1e-3, atol=1e-4)


def test_mobilenet_v2_small():
    stages = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 1, 2)]
    check_model(onnx_models.mobilenet_v2(image=32, alpha=0.25, stages=stages, classes=10),
                trials=2, rtol=1e-3, atol=1e-4)


def test_models_pass_the_onnx_checker_at_full_size():
    """The benchmark's models, built (and checked by onnx.checker) without running."""
    makers = [*onnx_models.MODELS.values(),
              lambda: onnx_models.transformer_block(gelu="op")]     # Gelu, opset 20
    for make in makers:
        model = make()
        outputs, inputs, params = import_model(model)
        assert len(outputs) == 1 and len(inputs) == 1


# -- bad models ------------------------------------------------------------------------------


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(
        nodes, "bad", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(a, n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _raises(model, error, *fragments):
    with pytest.raises(error) as info:
        import_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def test_unknown_operator():
    model = _model([helper.make_node("Hardmax", ["x"], ["y"], name="hm")],
                   [("x", [2, 3])], [("y", [2, 3])])
    e = _raises(model, td.UnsupportedError, "ONNX operator Hardmax (Hardmax node 'hm') is not "
                "supported by tdsl's importer; supported: Abs, Add,")
    assert isinstance(e, td.TdslError) and isinstance(e, NotImplementedError)


def test_other_domain():
    node = helper.make_node("FusedGemm", ["x"], ["y"], name="f", domain="com.microsoft")
    _raises(_model([node], [("x", [2, 3])], [("y", [2, 3])]), td.UnsupportedError,
            "ONNX FusedGemm node 'f': operators of domain 'com.microsoft' are not supported")


def test_unknown_attribute_is_refused_not_ignored():
    node = helper.make_node("Relu", ["x"], ["y"], name="r", foo=3)
    _raises(_model([node], [("x", [2, 3])], [("y", [2, 3])]), td.UnsupportedError,
            "ONNX Relu node 'r': attribute foo=3 is not supported (the importer does not know "
            "this attribute of Relu)")


@pytest.mark.parametrize("attrs, message", [
    ({"storage_order": 1}, "attribute storage_order=1 is not supported (row major only)"),
    ({"ceil_mode": 1}, "attribute ceil_mode=1 is not supported (only where it gives the floor "
                       "mode's output size)"),
    ({"auto_pad": "WRONG"}, "attribute auto_pad='WRONG' is not supported (NOTSET, VALID, "
                            "SAME_UPPER or SAME_LOWER)"),
], ids=["storage_order", "ceil_mode", "auto_pad"])
def test_unsupported_pool_attributes(attrs, message):
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2],
                            strides=[2, 2], **attrs)
    _raises(_model([node], [("x", [1, 1, 5, 5])], [("y", None)]), td.UnsupportedError,
            f"ONNX MaxPool node 'pool': {message}")


def test_conv_1d_and_training_batch_norm():
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="c1")
    _raises(_model([conv], [("x", [1, 2, 5])], [("y", None)],
                   [("w", np.zeros((3, 2, 3), np.float32))]),
            td.UnsupportedError, "ONNX Conv node 'c1': only 2-D convolution (NCHW) is "
            "supported; x has shape")
    bn = helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], name="bn",
                          training_mode=1)
    ones = np.ones(2, np.float32)
    _raises(_model([bn], [("x", [1, 2, 3, 3])], [("y", None)],
                   [(n, ones) for n in "gbmv"]),
            td.UnsupportedError, "ONNX BatchNormalization node 'bn': attribute "
            "training_mode=1 is not supported (inference only)")


def test_mismatched_shapes_name_the_node():
    mm = helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")
    _raises(_model([mm], [("a", [2, 3]), ("b", [4, 5])], [("y", None)]), td.TdslValueError,
            "ONNX MatMul node 'mm': nn.matmul: the contracted dimensions differ: a has 3 "
            "columns (shape (2, 3)), b has 4 rows (shape (4, 5))")
    add = helper.make_node("Add", ["a", "b"], ["y"], name="plus")
    _raises(_model([add], [("a", [2, 3]), ("b", [4])], [("y", None)]), td.TdslValueError,
            "ONNX Add node 'plus': nn.add: operands could not be broadcast together with "
            "shapes (2, 3) (4,)")


def test_declared_output_shape_is_checked():
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    _raises(_model([node], [("x", [2, 3])], [("y", [3, 2])]), td.TdslValueError,
            "ONNX graph output 'y' is declared with shape (3, 2) but the graph computes "
            "(2, 3)")


def test_run_time_shape_input_is_refused():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")
    model = _model([node], [("x", [2, 3])], [("y", None)])
    model.graph.input.append(helper.make_tensor_value_info("s", TensorProto.INT64, [2]))
    _raises(model, td.UnsupportedError, "ONNX Reshape node 'rs': input 1 (shape, 's') must "
            "be a constant or an initializer; it is computed at run time")


def test_input_without_sizes_and_wrong_model_type():
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    model = _model([node], [("x", [2, None])], [("y", None)])
    _raises(model, td.UnsupportedError, "ONNX graph input 'x': dimension 1 has neither a "
            "size nor a name")
    with pytest.raises(td.TdslTypeError, match="import_model: model must be a path or an "
                       "onnx.ModelProto; got int"):
        import_model(42)


def test_wrong_input_array_is_refused_at_the_call():
    outputs, inputs, params = import_model(onnx_models.mlp(sizes=(6, 4, 2)))
    run = compile_imported(outputs, inputs, params)
    with pytest.raises(ValueError, match="x"):
        run(np.zeros((1, 7), np.float32))
    with pytest.raises(TypeError, match="x"):
        run(np.zeros((1, 6), np.float64))


def test_model_from_a_path(tmp_path):
    """`tdsl.frontends.import_onnx` reads a file; importing tdsl.frontends loads no onnx."""
    import subprocess
    import sys

    import onnx

    from tdsl.frontends import import_onnx
    path = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(sizes=(6, 4, 2)), path)
    outputs, inputs, params = import_onnx(str(path))
    assert len(params) == 4 and [t.name for t in inputs] == ["x"]
    probe = "import sys, tdsl, tdsl.frontends; print('onnx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_folding_errors_and_missing_attributes_name_the_node():
    reshape = helper.make_node("Reshape", ["c", "s"], ["r"], name="fold_me")
    add = helper.make_node("Add", ["x", "r"], ["y"], name="a")
    model = _model([reshape, add], [("x", [2, 3])], [("y", None)],
                   [("c", np.zeros((2, 3), np.float32)), ("s", np.array([4, 2], np.int64))])
    _raises(model, td.TdslValueError, "ONNX Reshape node 'fold_me': evaluating the node on "
            "its known inputs failed: cannot reshape array of size 6 into shape (4,2)")
    concat = helper.make_node("Concat", ["x", "x"], ["y"], name="cat")
    _raises(_model([concat], [("x", [2, 3])], [("y", None)]), td.TdslValueError,
            "ONNX Concat node 'cat': the required attribute axis is missing")
