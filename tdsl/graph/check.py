"""The checks of `td.compile`'s arguments: every mistake named, with what was expected
and what came, before any work is done."""

from __future__ import annotations

import numpy as np

from ..errors import TdslTypeError, TdslValueError
from ..lang.expr import Const
from ..lang.graph import as_tensor_list, topo_order
from ..lang.tensor import PlaceholderOp, Tensor, shape_str


def check_graph(outputs, inputs, params) -> tuple[list[Tensor], list[Tensor], dict]:
    """(outputs, inputs, params) as lists and a dict of C-contiguous arrays; raises
    TdslTypeError / TdslValueError naming the offending tensor."""
    outputs = as_tensor_list(outputs, "td.compile's outputs")
    if inputs is None:
        raise TdslTypeError("td.compile needs inputs=[...]: the placeholders fed at each call")
    inputs = as_tensor_list(inputs, "td.compile's inputs") if \
        not (isinstance(inputs, (list, tuple)) and not inputs) else []
    for t in inputs:
        if not isinstance(t.op, PlaceholderOp):
            raise TdslTypeError(f"td.compile's inputs must be placeholders (td.placeholder); "
                                f"{t.name} is computed by a {type(t.op).__name__}")
    names = [t.name for t in inputs]
    for n in names:
        if names.count(n) > 1:
            raise TdslValueError(f"two inputs of td.compile are named {n!r}; name them apart "
                                 "(the library's arguments are named after them)")
    params = _check_params(params or {}, inputs)
    order = topo_order(outputs)
    for op in order:
        t = op.output(0)
        if isinstance(op, PlaceholderOp) and t not in params and \
                not any(t == i for i in inputs):
            raise TdslValueError(f"the outputs read the placeholder {t.name} "
                                 f"{shape_str(t.shape)}, which is neither an input nor a param "
                                 "of td.compile; add it to inputs=[...] or params={...}")
        for d in op.shape:
            if not isinstance(d, Const):
                raise TdslValueError(f"td.compile needs constant shapes; {t.name} has shape "
                                     f"{shape_str(op.shape)} (bind symbolic sizes first)")
    for k, t in enumerate(outputs):
        if any(t == o for o in outputs[:k]):
            raise TdslValueError(f"the output {t.name} is listed twice in td.compile's "
                                 "outputs")
        if isinstance(t.op, PlaceholderOp):
            raise TdslValueError(f"the output {t.name} is a placeholder itself; outputs must "
                                 "be computed from the inputs")
        if not any(id(i.op) in {id(op) for op in topo_order([t])} for i in inputs):
            raise TdslValueError(f"the output {t.name} does not depend on any input "
                                 f"({', '.join(names) or 'none given'}); it is a constant, "
                                 "compute it with td.reference instead")
    return outputs, inputs, params


def _check_params(params, inputs) -> dict:
    if not isinstance(params, dict):
        raise TdslTypeError(f"td.compile's params must be a dict {{placeholder: array}}; got "
                            f"{type(params).__name__}")
    checked = {}
    for t, value in params.items():
        if not isinstance(t, Tensor) or not isinstance(t.op, PlaceholderOp):
            raise TdslTypeError(f"td.compile's params are keyed by placeholders; got {t!r}")
        if any(t == i for i in inputs):
            raise TdslValueError(f"{t.name} is both an input and a param of td.compile")
        if not isinstance(value, np.ndarray):
            raise TdslTypeError(f"param {t.name}: expected a NumPy array of dtype {t.dtype} "
                                f"and shape {shape_str(t.shape)}; got {type(value).__name__}")
        want = tuple(int(d.value) if isinstance(d, Const) else None for d in t.shape)
        if value.shape != want:
            raise TdslValueError(f"param {t.name}: expected shape {shape_str(t.shape)}; got "
                                 f"{value.shape}")
        if value.dtype != np.dtype(t.dtype):
            raise TdslTypeError(f"param {t.name}: expected dtype {t.dtype}; got {value.dtype} "
                                f"(convert it with .astype('{t.dtype}'))")
        checked[t] = np.ascontiguousarray(value)
    return checked
