"""Weights re-laid out once, at compile time, for the schedule that wants them.

A convolution `out[n, f, y, x] = sum x_[..., y.., x..] * w[f, c, ky, kx]` whose weight is a
constant and whose input does not depend on f (groups = 1) is computed in blocks of L
output channels (L = two vectors), as MLAS's NCHWc kernels and TVM's x86 conv2d do:

    wb[fo, c, ky, kx, fi] = w[fo * L + fi, c, ky, kx]                  (a new weight)
    blk[n, fo, y, x, fi]  = sum x_[..., y.., x..] * wb[fo, c, ky, kx, fi]
    out[n, f, y, x]       = blk[n, f // L, y, x, f % L]                (a view, same name)

so that a register tile holds L output channels (vectors along fi, the weights loaded as
vectors from contiguous memory) by a few pixels of a row (the input broadcast), and a
row of 7 or 14 pixels fills its tiles (rows of pixels, not vectors of them). The
activations stay NCHW: the view is read by the convolution's epilogue, which
`td.auto_schedule` tiles by L channels x a few pixels and computes the block per tile
(`tiles.TileRules._blocked_tile`), so the transposition is done from registers.

The weight is packed here with NumPy, once (the issue's "weights re-laid out once for
the schedule that wants it instead of at every call").
"""

from __future__ import annotations

from ..lang.expr import BinOp, IterVar, Load, Reduce
from ..lang.graph import topo_order
from ..lang.names import unique_name
from ..lang.tensor import ComputeOp, Tensor, compute, placeholder
from ..lang.visit import free_vars, loads, substitute, transform
from .fold import Folded
from .rewrite import consumers, rebuild

MIN_REDUCTION = 128      # shorter sums: the tile's transposing epilogue (scalar) costs
#                          more than the block saves (MobileNetV2's 1x1 convs of 64 channels)


def block_convolutions(outputs: list[Tensor], params: dict, folded: list, target):
    """(outputs, params) with every blocked-able convolution blocked (module docstring);
    appends a `Folded("layout", ...)` record for each to `folded`."""
    lanes = target.lanes("float32")
    taken = {op.name for op in topo_order(outputs)} | {p.name for p in params}
    params = dict(params)
    done: set[str] = set()
    while True:
        # one convolution at a time: its replacement reads the graph as it is, so the
        # graph rebuilt around it stays one graph (as fold.py's batch norms)
        order = topo_order(outputs)
        readers = consumers(order)
        found = None
        for op in order:
            match = _convolution(op, params) if op.name not in done else None
            if match is None:
                continue
            filters = op.axis[1].extent.value
            block = next((b for b in (2 * lanes, lanes) if filters % b == 0), None)
            if block is not None:
                found = op, match, block
                break
        if found is None:
            break
        op, weight, block = found
        done.add(op.name)
        view = _blocked(op, weight, block, params, taken, _width(op, readers[op]))
        new = rebuild(outputs, {op.output(0): view})
        outputs = [new[t] for t in outputs]
        folded.append(Folded("layout", (op.name,), f"{weight.name} in blocks of {block} "
                                                   "output channels"))
    read = {op.output(0) for op in topo_order(outputs)}
    return outputs, {t: v for t, v in params.items() if t in read}


def _convolution(op, params):
    """The weight of `sum(x[...] * w[f, ...])` over 4-D NCHW axes, w a constant
    read at the output channel f (axis 1) first and nowhere else, x not reading f; None
    for anything else (a depthwise or grouped convolution reads x at f)."""
    if not isinstance(op, ComputeOp) or len(op.axis) != 4 or \
            not isinstance(op.body, Reduce) or op.body.reducer.name != "sum" or \
            op.body.where is not None:
        return None
    if not all(hasattr(a.extent, "value") for a in op.axis):
        return None
    body = op.body.body
    if not (isinstance(body, BinOp) and body.op == "mul" and
            isinstance(body.a, Load) and isinstance(body.b, Load)):
        return None
    f = op.axis[1]
    for w, x in ((body.b, body.a), (body.a, body.b)):
        if w.tensor not in params or not w.indices or w.indices[0] is not f:
            continue
        if any(v is f for i in w.indices[1:] for v in free_vars(i)):
            continue
        if any(v is f for i in x.indices for v in free_vars(i)):
            continue
        if not all(isinstance(i, IterVar) and i.kind == "reduce" for i in w.indices[1:]):
            continue
        size = 1
        for axis in op.body.axes:
            if not hasattr(axis.extent, "value"):
                return None
            size *= axis.extent.value
        if size < MIN_REDUCTION:
            return None
        return w.tensor
    return None


def _width(op, readers) -> int:
    """The columns the blocked convolution computes: its own, or fewer when every reader
    reads it at its own index over narrower rows (nn.conv2d computes a 7-wide row 8 wide
    for its vector tiles; blocked, the pixels are unrolled and 7 is what is needed)."""
    width = op.axis[3].extent.value
    if not readers:
        return width
    needed = 0
    for r in readers:
        if not isinstance(r, ComputeOp) or len(r.axis) != 4:
            return width
        for ld in _loads_of(r, op):
            if len(ld.indices) != 4 or not all(i is a for i, a in zip(ld.indices, r.axis)):
                return width
        extent = r.axis[3].extent
        if not hasattr(extent, "value"):
            return width
        needed = max(needed, extent.value)
    return min(width, needed) if needed else width


def _loads_of(reader, op) -> list[Load]:
    body = reader.body.body if isinstance(reader.body, Reduce) else reader.body
    return [ld for ld in loads(body) if ld.tensor.op is op]


def _blocked(op, weight: Tensor, block: int, params: dict, taken: set,
             width: int) -> Tensor:
    import numpy as np
    w = params[weight]
    filters = w.shape[0]
    packed = np.ascontiguousarray(
        w.reshape((filters // block, block) + w.shape[1:]).transpose(
            (0,) + tuple(range(2, w.ndim + 1)) + (1,)))
    wb = placeholder(packed.shape, weight.dtype, unique_name(f"{weight.name}_blk{block}", taken))
    params[wb] = packed
    n, f, y, x = op.axis
    body = op.body
    shape = (op.axis[0].extent, filters // block, op.axis[2].extent, width, block)

    def blocked(bn, fo, by, bx, fi):
        def swap(e):
            if isinstance(e, Load) and e.tensor is weight:
                return Load(wb, (fo, *e.indices[1:], fi))
            return None
        inner = substitute(transform(body.body, swap), {n: bn, y: by, x: bx})
        return Reduce(body.reducer, inner, body.axes, None)

    blk = compute(shape, blocked, name=unique_name(f"{op.name}_blk", taken))
    # the view, named as the convolution was (at `width` columns: see `_width`)
    return compute(shape[:1] + (op.axis[1].extent,) + shape[2:4],
                   lambda vn, vf, vy, vx: blk[vn, vf // block, vy, vx, vf % block],
                   name=op.name)
