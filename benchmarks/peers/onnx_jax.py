"""A small ONNX -> JAX interpreter for benchmarks/networks.py: the four models' operators as
jax.numpy / lax calls, traced once under `jax.jit` (XLA on CPU).

    fn, weights = to_jax(model)          # fn(x, weights) -> list of outputs
    run = jax.jit(fn)

Float initializers are arguments of the jitted function (as a framework passes its
parameters); integer ones (shapes, axes) and `Shape` of a traced value stay NumPy, so
Reshape targets are static as XLA needs. Only the operators and attributes the benchmark's
models use are here; anything else raises NotImplementedError naming it. The benchmark
checks the result against ONNX Runtime before timing it.
"""

from __future__ import annotations

import math

import numpy as np


def to_jax(model):
    """(fn(x, weights) -> [outputs], weights {name: array}) for a one-input ONNX model."""
    import jax.numpy as jnp
    from onnx import numpy_helper

    graph = model.graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = {k: v for k, v in arrays.items() if v.dtype.kind == "f"}
    static = {k: v for k, v in arrays.items() if k not in weights}
    (x_name,) = [v.name for v in graph.input if v.name not in arrays]

    def fn(x, params):
        env = dict(static)
        env.update(params)
        env[x_name] = x
        for node in graph.node:
            attrs = {a.name: _attr(a) for a in node.attribute}
            ins = [env[n] if n else None for n in node.input]
            if node.op_type not in OPS:
                raise NotImplementedError(f"onnx_jax: operator {node.op_type} is not supported")
            out = OPS[node.op_type](jnp, attrs, *ins)
            for name, value in zip(node.output, out if isinstance(out, list) else [out]):
                # NumPy's 0-d results are scalars; keep them arrays so they stay static.
                env[name] = np.asarray(value) if isinstance(value, np.generic) else value
        return [env[v.name] for v in graph.output]

    return fn, {k: jnp.asarray(v) for k, v in weights.items()}


def _attr(a):
    from onnx import helper, numpy_helper
    if a.type == a.TENSOR:
        return numpy_helper.to_array(a.t)
    v = helper.get_attribute_value(a)
    return v.decode() if isinstance(v, bytes) else v


def _xp(jnp, *values):
    """NumPy when every value is a NumPy array (shape arithmetic stays static), else jnp."""
    return np if all(v is None or isinstance(v, np.ndarray) for v in values) else jnp


def _conv(jnp, at, x, w, b=None):
    from jax import lax
    pads = at.get("pads", [0, 0, 0, 0])
    if at.get("auto_pad", "NOTSET") not in ("NOTSET",):
        raise NotImplementedError(f"onnx_jax: Conv auto_pad={at['auto_pad']}")
    y = lax.conv_general_dilated(
        x, w, tuple(at.get("strides", [1, 1])), [(pads[0], pads[2]), (pads[1], pads[3])],
        rhs_dilation=tuple(at.get("dilations", [1, 1])),
        feature_group_count=at.get("group", 1), dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y if b is None else y + b[None, :, None, None]


def _pool(jnp, at, x, kind):
    from jax import lax
    kh, kw = at["kernel_shape"]
    sh, sw = at.get("strides", [1, 1])
    p = at.get("pads", [0, 0, 0, 0])
    padding = [(0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])]
    if kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, kh, kw), (1, 1, sh, sw), padding)
    if any(p) and not at.get("count_include_pad", 0):
        raise NotImplementedError("onnx_jax: AveragePool excluding padding")
    total = lax.reduce_window(x, 0.0, lax.add, (1, 1, kh, kw), (1, 1, sh, sw), padding)
    return total / (kh * kw)


def _gemm(jnp, at, a, b, c=None):
    a = a.T if at.get("transA", 0) else a
    b = b.T if at.get("transB", 0) else b
    y = at.get("alpha", 1.0) * (a @ b)
    return y if c is None else y + at.get("beta", 1.0) * c


def _bn(jnp, at, x, g, b, m, v):
    scale = g / jnp.sqrt(v + at.get("epsilon", 1e-5))
    return (x - m[None, :, None, None]) * scale[None, :, None, None] + b[None, :, None, None]


def _layer_norm(jnp, at, x, g, b=None):
    axes = tuple(range(at.get("axis", -1) % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / jnp.sqrt(var + at.get("epsilon", 1e-5)) * g
    return y if b is None else y + b


def _softmax(jnp, at, x):
    import jax
    return jax.nn.softmax(x, axis=at.get("axis", -1))


def _reshape(jnp, at, x, shape):
    shape = [x.shape[d] if s == 0 else int(s) for d, s in enumerate(np.asarray(shape))]
    return _xp(jnp, x).reshape(x, shape)


def _unsqueeze(jnp, at, x, axes=None):
    axes = at.get("axes") if axes is None else np.asarray(axes).tolist()
    return _xp(jnp, x).expand_dims(x, tuple(axes))


def _clip(jnp, at, x, lo=None, hi=None):
    return jnp.clip(x, lo if lo is not None else at.get("min"),
                    hi if hi is not None else at.get("max"))


def _binary(name):
    def op(jnp, at, a, b):
        return getattr(_xp(jnp, a, b), name)(a, b)
    return op


def _gelu(jnp, at, x):
    from jax.scipy.special import erf
    if at.get("approximate", "none") == "tanh":
        return 0.5 * x * (1 + jnp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _erf(jnp, at, x):
    from jax.scipy.special import erf
    return erf(x)


OPS = {
    "Add": _binary("add"), "Sub": _binary("subtract"), "Mul": _binary("multiply"),
    "Div": _binary("divide"), "Pow": _binary("power"),
    "Relu": lambda jnp, at, x: jnp.maximum(x, 0), "Clip": _clip,
    "Sigmoid": lambda jnp, at, x: 1 / (1 + jnp.exp(-x)), "Tanh": lambda jnp, at, x: jnp.tanh(x),
    "Sqrt": lambda jnp, at, x: jnp.sqrt(x), "Erf": _erf, "Gelu": _gelu,
    "MatMul": lambda jnp, at, a, b: jnp.matmul(a, b), "Gemm": _gemm,
    "Conv": _conv, "BatchNormalization": _bn,
    "MaxPool": lambda jnp, at, x: _pool(jnp, at, x, "max"),
    "AveragePool": lambda jnp, at, x: _pool(jnp, at, x, "avg"),
    "GlobalAveragePool": lambda jnp, at, x: x.mean(axis=(2, 3), keepdims=True),
    "Softmax": _softmax, "LayerNormalization": _layer_norm,
    "ReduceMean": lambda jnp, at, x, axes=None: x.mean(
        axis=tuple(at.get("axes", []) if axes is None else np.asarray(axes).tolist()),
        keepdims=bool(at.get("keepdims", 1))),
    "Reshape": _reshape,
    "Flatten": lambda jnp, at, x: x.reshape(
        int(np.prod(x.shape[:at.get("axis", 1)])), -1),
    "Transpose": lambda jnp, at, x: _xp(jnp, x).transpose(x, at.get("perm")),
    "Concat": lambda jnp, at, *xs: _xp(jnp, *xs).concatenate(xs, axis=at["axis"]),
    "Identity": lambda jnp, at, x: x,
    "Constant": lambda jnp, at: at["value"],
    "Shape": lambda jnp, at, x: np.array(x.shape, np.int64),
    "Gather": lambda jnp, at, x, i: _xp(jnp, x).take(x, i, axis=at.get("axis", 0)),
    "Unsqueeze": _unsqueeze,
}
