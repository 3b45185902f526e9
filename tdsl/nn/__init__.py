"""tdsl.nn: neural-network operators as plain compute definitions.

Every operator takes tdsl tensors (placeholders or computed tensors) and returns one,
after checking shapes at the call (TdslValueError / TdslTypeError naming what was
expected and what came). Each is a handful of `td.compute` stages, readable as an
example of the language; schedule them like any other (`td.create_schedule`,
`td.auto_schedule`) and build with `td.build`.

>>> from tdsl import nn
>>> x = td.placeholder((n, 3, 32, 32), name="x")
>>> w = td.placeholder((16, 3, 3, 3), name="w")
>>> y = nn.relu(nn.conv2d(x, w, padding=1))
>>> mod = td.build(td.auto_schedule(y), [x, w, y])
"""

from .activation import erf, erf_expr, gelu, leaky_relu, relu, sigmoid, silu, tanh
from .conv import conv2d
from .elementwise import (add, broadcast_shapes, div, elementwise, maximum, minimum, mul, sub)
from .linear import batch_matmul, dense, matmul
from .normalization import batch_norm, layer_norm, log_softmax, softmax
from .pool import avg_pool2d, global_avg_pool2d, max_pool2d
from .reduce import max, mean, min, sum  # noqa: A004
from .shape import concat, flatten, pad, reshape, slice, transpose  # noqa: A004

__all__ = [
    "dense", "matmul", "batch_matmul", "conv2d",
    "max_pool2d", "avg_pool2d", "global_avg_pool2d",
    "relu", "leaky_relu", "gelu", "sigmoid", "tanh", "silu", "erf", "erf_expr",
    "softmax", "log_softmax", "layer_norm", "batch_norm",
    "add", "sub", "mul", "div", "maximum", "minimum", "elementwise", "broadcast_shapes",
    "reshape", "flatten", "transpose", "concat", "pad", "slice",
    "sum", "mean", "max", "min",
]
