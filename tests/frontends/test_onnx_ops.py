"""Every converter of the ONNX importer against ONNX Runtime, one tiny single-node graph per
case: broadcasting, Gemm's transposes and scales, Conv's pads/strides/dilations/groups and
auto_pad, pooling borders, Clip's bounds as inputs or attributes, Reshape's 0 and -1, the
folding of shape chains. Built as one kernel with the default schedule (via="build"), the
fastest way to run them; test_onnx.py runs the models through td.compile."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from .common import check_model

R = np.random.default_rng(7)
BUILD = "build"            # one td.build of the graph, default schedule


def rand(*shape, positive=False):
    a = R.standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.1 if positive else a


def single(op, inputs, attrs=None, consts=None, opset=17, outputs=1):
    """A one-node model: `inputs` {name: shape} are graph inputs (float32), `consts`
    {name: array} initializers, in the order inputs then consts unless `order` says."""
    consts = consts or {}
    names = list(inputs) + list(consts)
    outs = [f"y{k}" for k in range(outputs)]
    node = helper.make_node(op, [n if n != "_" else "" for n in names], outs, name="n",
                            **(attrs or {}))
    graph = helper.make_graph(
        [node], "single",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [numpy_helper.from_array(np.array(a), n) for n, a in consts.items() if n != "_"])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def i64(*values):
    return np.array(values, np.int64)


# id, op, graph inputs {name: shape}, attributes, initializers, opset
CASES = [
    ("add_broadcast", "Add", {"a": (2, 3, 4), "b": (3, 1)}, {}, {}, 17),
    ("sub_scalar", "Sub", {"a": (2, 3)}, {}, {"c": np.float32(0.5)}, 17),
    ("mul_row_weight", "Mul", {"a": (2, 3, 4)}, {}, {"w": rand(4)}, 17),
    ("div_broadcast_both", "Div", {"a": (2, 1, 4), "b": (3, 1)}, {}, {}, 17),
    ("gelu", "Gelu", {"x": (3, 5)}, {}, {}, 20),
    ("gelu_tanh", "Gelu", {"x": (3, 5)}, {"approximate": "tanh"}, {}, 20),
    ("clip_attrs", "Clip", {"x": (3, 5)}, {"min": -0.5, "max": 0.5}, {}, 6),
    ("clip_relu6", "Clip", {"x": (3, 5)}, {}, {"lo": np.float32(0), "hi": np.float32(0.5)}, 13),
    ("clip_max_only", "Clip", {"x": (3, 5)}, {}, {"_": 0, "hi": np.float32(0.3)}, 13),
    ("pow2", "Pow", {"x": (3, 5)}, {}, {"e": np.float32(2)}, 17),
    ("pow3", "Pow", {"x": (3, 5)}, {}, {"e": np.float32(3)}, 17),
    ("matmul_2d", "MatMul", {"a": (3, 4), "b": (4, 5)}, {}, {}, 17),
    ("matmul_3d", "MatMul", {"a": (2, 3, 4), "b": (2, 4, 5)}, {}, {}, 17),
    ("matmul_weight", "MatMul", {"a": (2, 3, 4)}, {}, {"w": rand(4, 5)}, 17),
    ("matmul_4d_broadcast", "MatMul", {"a": (2, 1, 3, 4), "b": (3, 4, 5)}, {}, {}, 17),
    ("gemm_linear", "Gemm", {"x": (3, 4)}, {"transB": 1}, {"w": rand(5, 4), "b": rand(5)}, 17),
    ("gemm_linear_weight_transposed", "Gemm", {"x": (9, 4)}, {"transB": 1},
     {"w": rand(5, 4), "b": rand(5)}, 17),
    ("gemm_transA", "Gemm", {"a": (4, 3), "b": (4, 5)}, {"transA": 1}, {}, 17),
    ("gemm_scaled", "Gemm", {"a": (3, 4), "b": (4, 5), "c": (3, 5)},
     {"alpha": 0.5, "beta": 2.0}, {}, 17),
    ("gemm_both_T_row_c", "Gemm", {"a": (4, 3), "b": (5, 4)},
     {"transA": 1, "transB": 1, "beta": 0.5}, {"c": rand(1, 5)}, 17),
    ("conv_pads_bias", "Conv", {"x": (1, 3, 7, 7)}, {"pads": [1, 1, 1, 1]},
     {"w": rand(4, 3, 3, 3), "b": rand(4)}, 17),
    ("conv_stride_dilation", "Conv", {"x": (2, 3, 9, 8)},
     {"strides": [2, 1], "dilations": [2, 2], "pads": [2, 1, 2, 1]}, {"w": rand(4, 3, 3, 3)}, 17),
    ("conv_groups", "Conv", {"x": (1, 4, 6, 6)}, {"group": 2, "pads": [1, 1, 1, 1]},
     {"w": rand(6, 2, 3, 3)}, 17),
    ("conv_depthwise_s2", "Conv", {"x": (1, 4, 7, 7)},
     {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}, {"w": rand(4, 1, 3, 3)}, 17),
    ("conv_asymmetric_pads", "Conv", {"x": (1, 2, 6, 6)}, {"pads": [0, 1, 2, 0]},
     {"w": rand(3, 2, 3, 3)}, 17),
    ("conv_same_upper_s2", "Conv", {"x": (1, 2, 8, 8)},
     {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"w": rand(3, 2, 4, 4)}, 17),
    ("conv_same_lower", "Conv", {"x": (1, 2, 6, 6)}, {"auto_pad": "SAME_LOWER"},
     {"w": rand(3, 2, 2, 2)}, 17),
    ("conv_valid", "Conv", {"x": (1, 2, 6, 6)}, {"auto_pad": "VALID", "kernel_shape": [3, 3]},
     {"w": rand(3, 2, 3, 3)}, 17),
    ("batch_norm", "BatchNormalization", {"x": (2, 3, 4, 4)}, {"epsilon": 1e-3},
     {"g": rand(3), "b": rand(3), "m": rand(3), "v": rand(3, positive=True)}, 17),
    ("max_pool", "MaxPool", {"x": (1, 2, 9, 9)},
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, {}, 17),
    ("max_pool_asym_dilated", "MaxPool", {"x": (1, 2, 8, 8)},
     {"kernel_shape": [2, 3], "pads": [0, 1, 1, 0], "dilations": [2, 1]}, {}, 17),
    ("max_pool_ceil_exact", "MaxPool", {"x": (1, 2, 9, 9)},
     {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, {}, 17),
    ("avg_pool", "AveragePool", {"x": (1, 2, 8, 8)}, {"kernel_shape": [2, 2], "strides": [2, 2]},
     {}, 17),
    ("avg_pool_exclude_pad", "AveragePool", {"x": (1, 2, 7, 7)},
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}, {}, 17),
    ("avg_pool_include_pad", "AveragePool", {"x": (1, 2, 7, 7)},
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, {}, 17),
    ("avg_pool_same_upper", "AveragePool", {"x": (1, 2, 6, 6)},
     {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, {}, 17),
    ("global_avg_pool", "GlobalAveragePool", {"x": (2, 3, 5, 4)}, {}, {}, 17),
    ("global_max_pool", "GlobalMaxPool", {"x": (2, 3, 5, 4)}, {}, {}, 17),
    ("softmax_last", "Softmax", {"x": (2, 3, 5)}, {}, {}, 17),
    ("softmax_axis1", "Softmax", {"x": (2, 3, 5)}, {"axis": 1}, {}, 17),
    ("softmax_opset11_2d_view", "Softmax", {"x": (2, 3, 5)}, {"axis": 1}, {}, 11),
    ("log_softmax", "LogSoftmax", {"x": (2, 3, 5)}, {}, {}, 17),
    ("layer_norm", "LayerNormalization", {"x": (2, 3, 8)}, {"epsilon": 1e-3},
     {"g": rand(8), "b": rand(8)}, 17),
    ("layer_norm_2_axes", "LayerNormalization", {"x": (2, 3, 8)}, {"axis": -2},
     {"g": rand(3, 8)}, 17),
    ("reduce_mean_input", "ReduceMean", {"x": (2, 3, 4)}, {}, {"axes": i64(-1, 0)}, 18),
    ("reshape_0_and_minus1", "Reshape", {"x": (2, 3, 4)}, {}, {"s": i64(0, -1, 2)}, 17),
    ("concat_with_weight", "Concat", {"a": (2, 3, 4)}, {"axis": 1}, {"w": rand(2, 2, 4)}, 17),
    ("unsqueeze", "Unsqueeze", {"x": (2, 3)}, {}, {"axes": i64(0, -1)}, 17),
    ("squeeze", "Squeeze", {"x": (2, 1, 3, 1)}, {}, {"axes": i64(1)}, 17),
    ("slice_steps_negative", "Slice", {"x": (4, 10)}, {},
     {"st": i64(1, -8), "en": i64(9223372036854775807, -1), "ax": i64(0, 1), "sp": i64(1, 2)},
     17),
    ("gather_scalar", "Gather", {"x": (2, 5, 3)}, {"axis": 1}, {"i": np.array(-2, np.int64)}, 17),
    ("expand", "Expand", {"x": (3, 1)}, {}, {"s": i64(2, 3, 4)}, 17),
    ("gather_range", "Gather", {"x": (2, 5, 3)}, {"axis": 1}, {"i": i64(1, 2, 3)}, 17),
]


# Operators that need nothing but x: one model holding one node of each, one build per group.
GROUPS = {
    "activations": ((3, 5), [("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {}),
                             ("Tanh", {}), ("Erf", {}), ("Exp", {}), ("Neg", {}), ("Abs", {}),
                             ("Identity", {}), ("Dropout", {})]),
    "reductions": ((2, 3, 4), [("ReduceMean", {"axes": [1], "keepdims": 0}),
                               ("ReduceSum", {"keepdims": 0}), ("ReduceMax", {"axes": [2]}),
                               ("ReduceMin", {"axes": [0, 2]})]),
    "layout": ((2, 1, 3, 4), [("Flatten", {"axis": 2}), ("Flatten", {"axis": 0}),
                              ("Transpose", {"perm": [2, 0, 3, 1]}), ("Transpose", {}),
                              ("Squeeze", {})]),
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_operator_groups_match_onnxruntime(group):
    shape, ops = GROUPS[group]
    nodes = [helper.make_node(op, ["x"], [f"y{k}"], name=f"{op}_{k}", **attrs)
             for k, (op, attrs) in enumerate(ops)]
    graph = helper.make_graph(
        nodes, group, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None) for k in range(len(ops))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    check_model(model, trials=1, via=BUILD)


@pytest.mark.parametrize("op, inputs, attrs, consts, opset",
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_operator_matches_onnxruntime(op, inputs, attrs, consts, opset):
    model = single(op, inputs, attrs, consts, opset)
    positive = op in ("Sqrt",)
    check_model(model, trials=1, seed=1 if positive else 0, via=BUILD)


def test_split_and_operators_of_positive_inputs():
    """Several outputs (Split), and Sqrt, Pow 0.5, Log, Reciprocal on |x|."""
    model = single("Split", {"x": (2, 7)}, {"axis": 1}, {"s": i64(3, 4)}, outputs=2)
    check_model(model, trials=1, via=BUILD)
    model = single("Sqrt", {"x": (3, 4)})
    model.graph.node.insert(0, helper.make_node("Abs", ["x"], ["ax"], name="abs"))
    model.graph.node[1].input[0] = "ax"
    check_model(model, trials=1, via=BUILD)
    for op, consts in (("Pow", {"e": np.float32(0.5)}), ("Log", {}), ("Reciprocal", {})):
        model = single(op, {"x": (3, 4)}, consts=consts)
        model.graph.node.insert(0, helper.make_node("Abs", ["x"], ["ax"], name="abs"))
        model.graph.node[1].input[0] = "ax"
        check_model(model, trials=1, via=BUILD)


def test_shape_chain_folds_to_constant():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, the way torch.onnx writes a
    reshape: folded at import time, no shape computation in the kernel."""
    n = helper.make_node
    nodes = [n("Shape", ["x"], ["s"]),
             n("Gather", ["s", "zero"], ["b"], axis=0),
             n("Unsqueeze", ["b", "axes"], ["b1"]),
             n("Concat", ["b1", "rest"], ["shape"], axis=0),
             n("Reshape", ["x", "shape"], ["y"], name="r")]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])],
        [numpy_helper.from_array(np.array(0, np.int64), "zero"),
         numpy_helper.from_array(i64(0), "axes"), numpy_helper.from_array(i64(-1), "rest")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    outputs, inputs, params = check_model(model, trials=1, via=BUILD)
    assert not params                     # the shape chain left no weight behind
    assert [int(d.value) for d in outputs[0].shape] == [2, 12]


def test_folding_of_known_values():
    """Nodes whose inputs are all known run in NumPy at import time (Constant forms,
    arithmetic, Where/Equal, Range, Cast, ConstantOfShape, Split); a known value read as
    data becomes a weight."""
    n = helper.make_node
    ones = numpy_helper.from_array(np.array([1], np.int64), "v")
    nodes = [n("Shape", ["x"], ["s"]),
             n("Gather", ["s", "one"], ["d1"], axis=0),
             n("Gather", ["s", "two"], ["d2"], axis=0),
             n("Mul", ["d1", "d2"], ["d12"]),
             n("Unsqueeze", ["d12", "axes"], ["inner"]),
             n("Constant", [], ["two_list"], value_ints=[2]),
             n("Equal", ["two_list", "two_list"], ["same"]),
             n("Where", ["same", "two_list", "inner"], ["outer"]),
             n("ConstantOfShape", ["two_list"], ["ones2"], value=ones),
             n("Split", ["ones2"], ["o1", "o2"], axis=0),
             n("Sub", ["o1", "o2"], ["zero1"]),                      # [0]
             n("Add", ["outer", "zero1"], ["outer2"]),
             n("Concat", ["outer2", "inner"], ["shape"], axis=0),
             n("Reshape", ["x", "shape"], ["flat"]),                  # (2, 12)
             n("Constant", [], ["lim"], value_int=12),
             n("Range", ["zero", "lim", "step"], ["r"]),
             n("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
             n("Add", ["flat", "rf"], ["y"], name="plus_range")]
    inits = [numpy_helper.from_array(np.array(k, np.int64), name)
             for k, name in ((1, "one"), (2, "two"), (0, "zero"), (1, "step"))]
    inits.append(numpy_helper.from_array(i64(0), "axes"))
    graph = helper.make_graph(
        nodes, "folds", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    _, _, params = check_model(model, trials=1, via=BUILD)
    (weights,) = params.values()                          # only the range, as float32
    np.testing.assert_array_equal(weights, np.arange(12, dtype=np.float32))
