"""ONNX test models built with `onnx.helper`, no download: an MLP, ResNet-18, MobileNetV2
and a transformer encoder block, with random weights from a fixed seed.

The tests (tests/frontends) and the network benchmark (benchmarks/networks.py) share them.
Each function returns an `onnx.ModelProto` that passes `onnx.checker.check_model`; sizes
are parameters so the tests can use small ones:

>>> model = resnet18(image=32)                 # (1, 3, 32, 32) -> (1, 1000)
>>> model = transformer_block(seq=16, width=32, heads=2)

`python -m tdsl.testing.onnx_models DIR` writes the four at their default sizes as files.

Weights use He / Xavier scales and batch norms have statistics near 1, so activations stay
O(1) through the depth of the network and a float32 comparison is meaningful.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17          # LayerNormalization is from opset 17


class GraphBuilder:
    """Nodes, initializers and fresh names for one graph; `model()` finishes it."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count: dict[str, int] = {}

    def fresh(self, prefix: str) -> str:
        self.count[prefix] = self.count.get(prefix, 0) + 1
        return f"{prefix}_{self.count[prefix]}"

    def weight(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def random(self, name: str, shape, scale: float) -> str:
        return self.weight(name, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def ints(self, name: str, values) -> str:
        return self.weight(self.fresh(name), np.array(values, np.int64))

    def scalar(self, name: str, value: float) -> str:
        return self.weight(self.fresh(name), np.array(value, np.float32))

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, name: str | None = None,
           **attrs) -> str | list[str]:
        name = name or self.fresh(op_type)
        outs = [f"{name}_out{k}" if outputs > 1 else f"{name}_out" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    def name_output(self, value: str, name: str = "y") -> None:
        """Give the graph's result (the output of the node that made `value`) its name."""
        node = next(n for n in self.nodes if value in n.output)
        node.output[list(node.output).index(value)] = name

    def model(self, name: str, inputs, outputs, opset: int = OPSET) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="tdsl.testing.onnx_models")
        model.ir_version = 8          # what onnxruntime reads back to ONNX 1.14
        onnx.checker.check_model(model)
        return model

    # -- layers ----------------------------------------------------------------------------

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             bias: bool = False) -> str:
        name = self.fresh("conv")
        fan_in = cin // groups * k * k
        w = self.random(f"{name}.weight", (cout, cin // groups, k, k), math.sqrt(2 / fan_in))
        inputs = [x, w] + ([self.random(f"{name}.bias", (cout,), 0.1)] if bias else [])
        return self.op("Conv", inputs, name=name, kernel_shape=[k, k], strides=[stride] * 2,
                       pads=[k // 2] * 4, group=groups)

    def batch_norm(self, x: str, c: int) -> str:
        name = self.fresh("bn")
        gamma, beta, mean, var = (
            self.weight(f"{name}.{what}", self.rng.uniform(lo, hi, c).astype(np.float32))
            for what, lo, hi in (("weight", 0.5, 1.5), ("bias", -0.2, 0.2),
                                 ("running_mean", -0.1, 0.1), ("running_var", 0.5, 1.5)))
        return self.op("BatchNormalization", [x, gamma, beta, mean, var], name=name,
                       epsilon=1e-5)

    def linear(self, x: str, cin: int, cout: int) -> str:
        """PyTorch's nn.Linear export: Gemm(x, W (out, in), b, transB=1)."""
        name = self.fresh("fc")
        w = self.random(f"{name}.weight", (cout, cin), math.sqrt(2 / cin))
        b = self.random(f"{name}.bias", (cout,), 0.1)
        return self.op("Gemm", [x, w, b], name=name, transB=1)


def _io(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def mlp(batch: int | str = 1, sizes=(784, 512, 512, 10), seed: int = 0) -> onnx.ModelProto:
    """Gemm + Relu layers 784-512-512-10; `batch` may be a name (a symbolic dimension)."""
    g = GraphBuilder(seed)
    h = "x"
    for k, (cin, cout) in enumerate(zip(sizes, sizes[1:])):
        h = g.linear(h, cin, cout)
        if k < len(sizes) - 2:
            h = g.op("Relu", [h])
    g.name_output(h)
    return g.model("mlp", [_io("x", (batch, sizes[0]))], [_io("y", (batch, sizes[-1]))])


def resnet18(image: int = 224, batch: int = 1, classes: int = 1000, width: int = 64,
             blocks=(2, 2, 2, 2), seed: int = 0) -> onnx.ModelProto:
    """ResNet-18 (He et al. 2016): 7x7/2 conv, max pool, 4 stages of BasicBlocks (two 3x3
    convs, batch norm, a 1x1/2 projection where the shape changes), global average pool,
    Flatten, Gemm. `width` and `blocks` shrink it for tests."""
    g = GraphBuilder(seed)
    h = g.op("Relu", [g.batch_norm(g.conv("x", 3, width, 7, stride=2), width)])
    h = g.op("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = width
    for stage, count in enumerate(blocks):
        cout = width * 2 ** stage
        for b in range(count):
            stride = 2 if stage > 0 and b == 0 else 1
            out = g.op("Relu", [g.batch_norm(g.conv(h, cin, cout, 3, stride), cout)])
            out = g.batch_norm(g.conv(out, cout, cout, 3), cout)
            short = h if stride == 1 and cin == cout else \
                g.batch_norm(g.conv(h, cin, cout, 1, stride), cout)
            h = g.op("Relu", [g.op("Add", [out, short])])
            cin = cout
    h = g.op("Flatten", [g.op("GlobalAveragePool", [h])], axis=1)
    g.name_output(g.linear(h, cin, classes))
    return g.model("resnet18", [_io("x", (batch, 3, image, image))], [_io("y", (batch, classes))])


# (expansion t, channels c, repeats n, first stride s) of MobileNetV2 (Sandler et al. 2018)
MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenet_v2(image: int = 224, batch: int = 1, classes: int = 1000, alpha: float = 1.0,
                 stages=MOBILENET_V2, seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2: inverted residual blocks (1x1 expand + Relu6, 3x3 depthwise + Relu6, 1x1
    project, residual Add where the shape allows), Relu6 as Clip(0, 6) with bounds as
    inputs. `alpha` scales the channels, `stages` can be shortened for tests."""
    g = GraphBuilder(seed)
    lo, hi = g.scalar("relu6_min", 0.0), g.scalar("relu6_max", 6.0)

    def relu6(x):
        return g.op("Clip", [x, lo, hi])

    def ch(c):
        return max(8, int(c * alpha + 4) // 8 * 8)

    cin = ch(32)
    h = relu6(g.batch_norm(g.conv("x", 3, cin, 3, stride=2), cin))
    for t, c, n, s in stages:
        cout = ch(c)
        for b in range(n):
            stride = s if b == 0 else 1
            hidden = cin * t
            out = h if t == 1 else relu6(g.batch_norm(g.conv(h, cin, hidden, 1), hidden))
            out = relu6(g.batch_norm(g.conv(out, hidden, hidden, 3, stride, groups=hidden),
                                     hidden))
            out = g.batch_norm(g.conv(out, hidden, cout, 1), cout)
            h = g.op("Add", [h, out]) if stride == 1 and cin == cout else out
            cin = cout
    last = max(1280, ch(1280)) if alpha > 1 else ch(1280)
    h = relu6(g.batch_norm(g.conv(h, cin, last, 1), last))
    h = g.op("Flatten", [g.op("GlobalAveragePool", [h])], axis=1)
    g.name_output(g.linear(h, last, classes))
    return g.model("mobilenet_v2", [_io("x", (batch, 3, image, image))],
                   [_io("y", (batch, classes))])


def transformer_block(seq: int = 128, width: int = 256, heads: int = 4, batch: int = 1,
                      ffn: int | None = None, gelu: str = "erf", seed: int = 0
                      ) -> onnx.ModelProto:
    """One post-LN encoder block (BERT's layer) as PyTorch exports it:

        a = softmax(Q K^T / sqrt(d)) V per head     (Q, K, V = x Wq + bq, ...)
        h = LayerNorm(x + a Wo + bo)
        y = LayerNorm(h + gelu(h W1 + b1) W2 + b2)

    The head split reshapes through a Shape -> Gather -> Unsqueeze -> Concat chain (folded
    to a constant by an importer), the merge through Reshape [0, 0, -1]. gelu="erf" writes
    0.5 x (1 + erf(x / sqrt 2)) with Erf (opset 17), gelu="op" the Gelu operator (opset 20).
    """
    if width % heads:
        raise ValueError(f"width {width} is not a multiple of heads {heads}")
    ffn = ffn or 4 * width
    dh = width // heads
    g = GraphBuilder(seed)

    def proj(x, cin, cout, name):
        w = g.random(f"{name}.weight", (cin, cout), math.sqrt(1 / cin))
        return g.op("Add", [g.op("MatMul", [x, w]), g.random(f"{name}.bias", (cout,), 0.1)])

    def norm(x, name):
        gamma = g.weight(f"{name}.weight", g.rng.uniform(0.5, 1.5, width).astype(np.float32))
        beta = g.random(f"{name}.bias", (width,), 0.1)
        return g.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)

    # (B, S, H, dh) from x's own batch and sequence sizes, as torch.onnx writes it.
    shape = g.op("Shape", ["x"])
    dims = [g.op("Unsqueeze", [g.op("Gather", [shape, g.ints("index", k)], axis=0),
                               g.ints("axes", [0])]) for k in (0, 1)]
    heads_shape = g.op("Concat", dims + [g.ints("heads", [heads, dh])], axis=0)

    def split_heads(t, perm):
        return g.op("Transpose", [g.op("Reshape", [t, heads_shape])], perm=perm)

    q = split_heads(proj("x", width, width, "q"), [0, 2, 1, 3])        # (B, H, S, dh)
    k = split_heads(proj("x", width, width, "k"), [0, 2, 3, 1])        # (B, H, dh, S)
    v = split_heads(proj("x", width, width, "v"), [0, 2, 1, 3])
    scores = g.op("Div", [g.op("MatMul", [q, k]), g.scalar("sqrt_dh", math.sqrt(dh))])
    attn = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])    # (B, H, S, dh)
    merged = g.op("Reshape", [g.op("Transpose", [attn], perm=[0, 2, 1, 3]),
                              g.ints("merge", [0, 0, -1])])
    h = norm(g.op("Add", ["x", proj(merged, width, width, "o")]), "ln1")
    up = proj(h, width, ffn, "ffn1")
    if gelu == "op":
        act = g.op("Gelu", [up])
    else:
        erf = g.op("Erf", [g.op("Div", [up, g.scalar("sqrt2", math.sqrt(2))])])
        act = g.op("Mul", [g.op("Mul", [up, g.op("Add", [erf, g.scalar("one", 1.0)])]),
                           g.scalar("half", 0.5)])
    g.name_output(norm(g.op("Add", [h, proj(act, ffn, width, "ffn2")]), "ln2"))
    return g.model("transformer_block", [_io("x", (batch, seq, width))],
                   [_io("y", (batch, seq, width))], opset=20 if gelu == "op" else OPSET)


MODELS = {"mlp": mlp, "resnet18": resnet18, "mobilenet_v2": mobilenet_v2,
          "transformer": transformer_block}


if __name__ == "__main__":
    # python -m tdsl.testing.onnx_models DIR: the four models at their default sizes as
    # DIR/<name>.onnx, for td.compile("DIR/resnet18.onnx") or any other ONNX tool.
    import pathlib
    import sys

    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    folder.mkdir(parents=True, exist_ok=True)
    for key, make in MODELS.items():
        onnx.save(make(), folder / f"{key}.onnx")
        print(folder / f"{key}.onnx")
