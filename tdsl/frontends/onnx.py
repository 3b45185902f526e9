"""The ONNX importer: an ONNX graph -> tdsl tensors built with `tdsl.nn`.

    outputs, inputs, params = import_model("resnet18.onnx")

The graph's inputs become placeholders (a named symbolic dimension, `dim_param`, becomes a
`td.var` of that name); its initializers become placeholders too, listed in `params` with
their arrays. Nodes are visited in the graph's order (ONNX requires a topological one) and
each is turned into tdsl tensors by one converter function of `onnx_ops.CONVERTERS`.

Values known at import time stay NumPy arrays: an initializer or a `Constant` read as a
shape, an axis or an exponent is used as a number, and only becomes a placeholder if an
operator reads it as data. Nodes whose inputs are all known are folded with NumPy, so the
`Shape -> Gather -> Unsqueeze -> Concat -> Reshape` chains of exported models become a
constant target shape (a symbolic dimension is carried through as its `td.var`).

What the importer cannot represent exactly raises `td.UnsupportedError` naming the
operator, the node and the attribute; a shape mismatch raises the `tdsl.nn` operator's
`TdslValueError` with the node named in front. Never a wrong result: an attribute that no
converter reads is refused, not ignored.

This is the only module of tdsl that imports `onnx`.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

import tdsl as td
from tdsl.errors import TdslError, UnsupportedError
from tdsl.lang.expr import Const, Expr
from tdsl.lang.tensor import PlaceholderOp, Tensor, shape_str

from . import onnx_ops

Value = Any          # a tdsl Tensor, or a NumPy array known at import time
SUPPORTED = sorted(set(onnx_ops.CONVERTERS) | set(onnx_ops.FOLDERS))


def import_model(model: str | os.PathLike | onnx.ModelProto, *,
                 sizes: dict[str, int] | None = None
                 ) -> tuple[list[Tensor], list[Tensor], dict[Tensor, np.ndarray]]:
    """Read an ONNX model into tdsl tensors: (outputs, inputs, params).

    `outputs` are the graph's outputs in order, `inputs` its inputs (placeholders), and
    `params` maps the placeholder of every weight the graph reads to its array. A symbolic
    dimension (`dim_param`, such as a batch "N") becomes `td.var("N")`, or the constant
    given in `sizes` ({"N": 1}) when it is there.

    >>> outputs, inputs, params = import_model("mlp.onnx")
    >>> mod = td.build(td.create_schedule(outputs), inputs + list(params) + outputs)
    """
    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(os.fspath(model))
    elif not isinstance(model, onnx.ModelProto):
        raise td.TdslTypeError("import_model: model must be a path or an onnx.ModelProto; "
                               f"got {type(model).__name__}")
    return _Importer(model, dict(sizes or {})).run()


class _Importer:
    """One import: the values by ONNX name, the placeholders made so far."""

    def __init__(self, model: onnx.ModelProto, sizes: dict[str, int]):
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.sizes = sizes
        self.symbols: dict[str, Expr] = {}           # dim_param -> td.var
        self.values: dict[str, Value] = {}
        self.params: dict[Tensor, np.ndarray] = {}
        self.param_of: dict[str, Tensor] = {}         # a constant's name -> its placeholder

    def run(self):
        for init in self.graph.initializer:
            self.values[init.name] = numpy_helper.to_array(init)
        inputs = [self._input(v) for v in self.graph.input if v.name not in self.values]
        for node in self.graph.node:
            self._convert(node)
        outputs = [self._output(v) for v in self.graph.output]
        # Only the weights some operator read as data are parameters.
        return outputs, inputs, self.params

    # -- graph inputs and outputs --------------------------------------------------------

    def _input(self, info: onnx.ValueInfoProto) -> Tensor:
        kind = info.type.WhichOneof("value")
        if kind != "tensor_type":
            raise UnsupportedError(f"ONNX graph input {info.name!r} is a {kind}; only tensors "
                                   "are supported")
        ttype = info.type.tensor_type
        dtype = _dtype(ttype.elem_type, f"graph input {info.name!r}")
        if not ttype.HasField("shape"):
            raise UnsupportedError(f"ONNX graph input {info.name!r} has no shape; tdsl needs "
                                   "its rank and sizes (a named dimension may be symbolic)")
        shape = [self._dim(info.name, d, dim) for d, dim in enumerate(ttype.shape.dim)]
        t = td.placeholder(tuple(shape), dtype, name=identifier(info.name))
        self.values[info.name] = t
        return t

    def _dim(self, name: str, d: int, dim) -> int | Expr:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            return dim.dim_value
        if not dim.HasField("dim_param"):
            raise UnsupportedError(
                f"ONNX graph input {name!r}: dimension {d} has neither a size nor a name; "
                "give it a dim_param (a symbolic size) or a dim_value")
        label = dim.dim_param
        if label in self.sizes:
            return int(self.sizes[label])
        if label not in self.symbols:
            self.symbols[label] = td.var(identifier(label))
        return self.symbols[label]

    def _output(self, info: onnx.ValueInfoProto) -> Tensor:
        if info.name not in self.values:
            raise TdslError(f"ONNX graph output {info.name!r} is produced by no node")
        value = self.values[info.name]
        if not isinstance(value, Tensor) or isinstance(value.op, PlaceholderOp):
            # A kernel's output must be computed: a constant or an input is copied.
            t = value if isinstance(value, Tensor) else self.param(info.name, value)
            value = td.compute(t.shape, lambda *i: t[i], name=identifier(info.name))
        _check_declared(info, value)
        return value

    # -- nodes ----------------------------------------------------------------------------

    def _convert(self, node: onnx.NodeProto) -> None:
        where = f"{node.op_type} node {node.name or '(unnamed)'!r}"
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedError(f"ONNX {where}: operators of domain {node.domain!r} are "
                                   "not supported (only the standard ai.onnx domain)")
        for name in node.input:
            if name and name not in self.values:
                raise TdslError(f"ONNX {where}: input {name!r} is not produced by an earlier "
                                "node, an initializer or a graph input (is the graph sorted?)")
        view = Node(self, node, where)
        folder = onnx_ops.FOLDERS.get(node.op_type)
        converter = onnx_ops.CONVERTERS.get(node.op_type)
        try:
            if folder is not None and view.all_known():
                results = _fold(folder, view)
            elif converter is not None:
                results = converter(view)
            elif folder is not None:
                raise UnsupportedError(f"ONNX {where}: {node.op_type} is supported on values "
                                       "known at import time only (constants, initializers, "
                                       "shapes); an input here is computed at run time")
            else:
                raise UnsupportedError(
                    f"ONNX operator {node.op_type} ({where}) is not supported by tdsl's "
                    f"importer; supported: {', '.join(SUPPORTED)}")
            view.check_attributes_read()
        except UnsupportedError:
            raise
        except TdslError as e:
            if str(e).startswith("ONNX "):
                raise
            raise type(e)(f"ONNX {where}: {e}") from e
        results = results if isinstance(results, (list, tuple)) else [results]
        produced = [name for name in node.output if name]
        if len(results) < len(produced):
            used = node.output[len(results):]
            raise UnsupportedError(f"ONNX {where}: only the first {len(results)} output(s) "
                                   f"are supported; the node also produces {list(used)}")
        for name, value in zip(node.output, results):
            if name:
                self.values[name] = value

    def param(self, name: str, array: np.ndarray) -> Tensor:
        """The placeholder standing for a known array read as data (made once per name)."""
        if name not in self.param_of:
            if array.dtype == object:
                raise UnsupportedError(f"the value {name!r} depends on a symbolic size "
                                       f"({array.tolist()}) and cannot be read as data")
            array = np.ascontiguousarray(array)
            # A scalar weight is stored as one element: tdsl tensors have at least one axis.
            shape = array.shape or (1,)
            t = td.placeholder(shape, array.dtype.name, name=identifier(name))
            self.param_of[name] = t
            self.params[t] = array.reshape(shape)
        return self.param_of[name]


class Node:
    """What a converter sees of one ONNX node: its inputs as tdsl tensors or known arrays,
    its attributes as Python values (each read is recorded; see `check_attributes_read`)."""

    def __init__(self, importer: _Importer, proto: onnx.NodeProto, where: str):
        self.importer, self.proto, self.where = importer, proto, where
        self.op = proto.op_type
        self.opset = importer.opset
        self.name = identifier(proto.name or (proto.output[0] if proto.output else proto.op_type))
        self.inputs: list[Value | None] = [importer.values[n] if n else None
                                           for n in proto.input]
        self.outputs = [n for n in proto.output]
        self._attrs = {a.name: a for a in proto.attribute}
        self._read: set[str] = set()

    def __len__(self) -> int:
        return len(self.inputs)

    def all_known(self) -> bool:
        return all(v is None or isinstance(v, np.ndarray) for v in self.inputs)

    def has(self, i: int) -> bool:
        """Whether optional input i is given (absent, or named "")."""
        return i < len(self.inputs) and self.inputs[i] is not None

    def tensor(self, i: int) -> Tensor:
        """Input i as a tdsl tensor: a known array becomes a parameter placeholder."""
        value = self._input(i)
        if isinstance(value, Tensor):
            return value
        return self.importer.param(self.proto.input[i], value)

    def known(self, i: int, what: str) -> np.ndarray:
        """Input i's value, which must be known at import time (a shape, axes, a bound)."""
        value = self._input(i)
        if isinstance(value, Tensor):
            raise UnsupportedError(f"ONNX {self.where}: input {i} ({what}, "
                                   f"{self.proto.input[i]!r}) must be a constant or an "
                                   "initializer; it is computed at run time")
        return value

    def value(self, i: int) -> Value:
        """Input i as it is: a tensor or a known array."""
        return self._input(i)

    def _input(self, i: int) -> Value:
        if not self.has(i):
            raise TdslError(f"ONNX {self.where}: input {i} is required but missing")
        return self.inputs[i]

    def attr(self, name: str, default: Any = None) -> Any:
        """Attribute `name` as a Python value (ints, floats, strings, lists, arrays)."""
        self._read.add(name)
        if name not in self._attrs:
            return default
        proto = self._attrs[name]
        if proto.type == onnx.AttributeProto.TENSOR:
            return numpy_helper.to_array(proto.t)
        value = helper.get_attribute_value(proto)
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, list):
            return [v.decode() if isinstance(v, bytes) else v for v in value]
        return value

    def required_attr(self, name: str) -> Any:
        """Attribute `name`, which the operator requires."""
        value = self.attr(name)
        if value is None:
            raise td.TdslValueError(f"ONNX {self.where}: the required attribute {name} is "
                                    "missing")
        return value

    def dtype_attr(self, name: str) -> str:
        """An attribute holding an ONNX element type (Cast's `to`), as a dtype name."""
        return _dtype(self.required_attr(name), f"{self.where}: attribute {name}")

    def unsupported(self, message: str) -> UnsupportedError:
        return UnsupportedError(f"ONNX {self.where}: {message}")

    def refuse_attribute(self, name: str, value: Any, why: str) -> UnsupportedError:
        return self.unsupported(f"attribute {name}={value!r} is not supported ({why})")

    def check_attributes_read(self) -> None:
        """An attribute no converter looked at would be silently ignored: refuse it."""
        ignored = sorted(set(self._attrs) - self._read)
        if ignored:
            name = ignored[0]
            raise self.refuse_attribute(name, self.attr(name), "the importer does not "
                                        f"know this attribute of {self.op}")


def _fold(folder, view: "Node"):
    """The node evaluated with NumPy; NumPy's own complaints (a reshape that does not fit)
    become TdslValueError naming the node."""
    try:
        results = folder(view)
    except TdslError:
        raise
    except (ValueError, IndexError, TypeError) as e:
        raise td.TdslValueError(f"ONNX {view.where}: evaluating the node on its known inputs "
                                f"failed: {e}") from e
    # NumPy gives scalars for 0-d results (np.take with one index): arrays.
    if isinstance(results, list):
        return [np.asarray(r) for r in results]
    return np.asarray(results)


def identifier(name: str) -> str:
    """An ONNX name as a tdsl tensor name (a Python identifier): `/layer1/Conv_output_0`
    -> `layer1_Conv_output_0`."""
    name = re.sub(r"\W+", "_", name).strip("_") or "v"
    return name if not name[0].isdigit() else f"v{name}"


def _dtype(elem_type: int, what: str) -> str:
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except Exception:
        dtype = str(elem_type)
    if dtype not in ("float32", "float64", "int32", "int64"):
        raise UnsupportedError(f"ONNX {what} has element type {dtype}; the importer supports "
                               "float32, float64, int32 and int64")
    return dtype


def _check_declared(info: onnx.ValueInfoProto, t: Tensor) -> None:
    """A graph output's declared constant sizes must be the ones computed."""
    if not info.type.HasField("tensor_type") or not info.type.tensor_type.HasField("shape"):
        return
    dims = info.type.tensor_type.shape.dim
    mismatch = len(dims) != t.ndim or any(
        dim.HasField("dim_value") and dim.dim_value > 0 and isinstance(size, Const)
        and size.value != dim.dim_value for dim, size in zip(dims, t.shape))
    if mismatch:
        declared = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
        raise td.TdslValueError(f"ONNX graph output {info.name!r} is declared with shape "
                                f"{declared} but the graph computes {shape_str(t.shape)}")
