"""Convolutions and the activations between them in blocks of channels (NCHWc), decided
once at compile time, as ONNX Runtime's NCHWc transformer and TVM's AlterOpLayout do.

A convolution `out[n, f, y, x] = sum x_[..., y.., x..] * w[f, c, ky, kx]` whose weight is a
constant and whose input does not depend on f (groups = 1) is computed in blocks of L
output channels (L = two vectors, one when two do not divide the channels), as MLAS's
NCHWc kernels and TVM's x86 conv2d do:

    wb[fo, c, ky, kx, fi] = w[fo * L + fi, c, ky, kx]                  (a new weight)
    blk[n, fo, y, x, fi]  = sum x_[..., y.., x..] * wb[fo, c, ky, kx, fi]

so that a register tile holds L output channels (vectors along fi, the weights loaded as
vectors from contiguous memory) by a few pixels of a row (the input broadcast), and a
row of 7 or 14 pixels fills its tiles (rows of pixels, not vectors of them).

The blocks then propagate forward (`blocks.py`): a stage that reads blocked tensors at
its own channel only (padding, bias, residual add, relu, pooling, a depthwise
convolution) is rebuilt over blocked axes, and a convolution whose input is blocked
sums over the input's blocks (`blk[..] = sum xb[n, cb, .., ci] * wb[fo, cb, .., ci,
fi]`), whatever the length of its sum. Every blocked stage keeps its NCHW name as a
view, `out[n, f, y, x] = blk[n, f // L, y, x, f % L]`, which only readers that want NCHW
read (a flatten, the network's outputs); so consecutive convolutions exchange blocks,
and each kernel writes its blocks with vector stores.

A convolution reading a zero padding keeps only the terms its tests leave (a `where` on
the sum, `_through_padding`): the taps on the padding's zeros are skipped at the image's
border, as MLAS skips them (9.5% of a 7-wide 3x3 convolution's work in its top and bottom
rows, 9.5% more in its first and last columns; isl gives the border strips of a row
versions of their own, `poly/codegen._wholly_full`), and the sum reads what the padding
pads in place: no padded copy at every call. A sum that skips rows runs over the
window's rows first, the weight packed `wb[fo, ky, c, kx, fi]` (`blocks.blocked_convolution`
says why).

A convolution whose input is not blocked is blocked only when its sum has at least
MIN_REDUCTION terms: its epilogue may have to transpose the block back to NCHW
(`TileRules._blocked_tile`, scalar stores), which costs more than short sums save.
"""

from __future__ import annotations

from ..lang.expr import COMPARISONS, BinOp, Call, Const, IterVar, Load, Reduce, Select
from ..lang.graph import topo_order
from ..lang.names import unique_name
from ..lang.tensor import ComputeOp, Tensor
from ..ir.simplify import simplify_index
from ..lang import dtypes
from ..lang.visit import conjuncts, free_vars, loads, substitute, transform, walk
from . import blocks
from .fold import Folded
from .rewrite import consumers, rebuild

MIN_REDUCTION = 128      # shorter sums over an NCHW input: the tile's transposing epilogue
#                          (scalar) costs more than the block saves (MobileNetV2's 1x1
#                          convolutions of 64 channels)


def block_convolutions(outputs: list[Tensor], params: dict, folded: list, target):
    """(outputs, params) with convolutions and the stages between them in channel blocks
    (module docstring); appends a `Folded("layout", ...)` record for each blocked
    convolution and one for the stages that follow them in blocks."""
    lanes = target.lanes("float32")
    order = topo_order(outputs)
    readers = consumers(order)
    taken = {op.name for op in order} | {p.name for p in params}
    packer = blocks.Packer(dict(params), taken)
    blocked: dict[Tensor, tuple[Tensor, int]] = {}     # old tensor -> (its blocks, L)
    new: dict[Tensor, Tensor] = {}                     # old tensor -> its replacement
    followers: list[str] = []
    wanted = _wanted(order, readers, params, lanes)
    for op in order:
        t = op.output(0)
        made = _blocked_convolution(op, packer, blocked, new, readers, lanes, folded,
                                    op in wanted)
        if made is None and op in wanted:
            made = _channelwise(op, packer, blocked, new, readers[op])
            if made is not None:
                followers.append(op.name)
        if made is None:
            new[t] = rebuild([t], new)[t]
            continue
        twin, block = made
        blocked[t] = (twin, block)
        new[t] = blocks.view(twin, block, op.name)
    outputs = [new[o] for o in outputs]
    final = topo_order(outputs)
    read = {op.output(0) for op in final}
    kept = {blocked[t][0].op for t in blocked}.intersection(final)
    followers = [op.name for op in order if op.name in followers and
                 blocked[op.output(0)][0].op in kept]   # (a padding read around is gone)
    if followers:
        folded.append(Folded("blocks", tuple(followers), "channel blocks (NCHWc)"))
    return outputs, {t: v for t, v in packer.params.items() if t in read}


def _wanted(order, readers, params, lanes: int) -> set:
    """The stages worth computing in blocks: those read, at their own channel only, by a
    stage worth it, or read as the input of a convolution (which can then sum over the
    blocks). A stage whose readers all want NCHW stays NCHW: the convolution before it
    then transposes its blocks in registers (`TileRules._blocked_tile`) instead of a
    second pass gathering them."""
    wanted: set = set()
    for op in reversed(order):
        for r in readers[op]:
            match = _convolution(r, params)
            if match is not None and match[1].tensor.op is op and \
                    r.axis[1].extent.value % lanes == 0:
                wanted.add(op)
                break
            if r in wanted and _at_channel(r, op):
                wanted.add(op)
                break
    return wanted


def _at_channel(reader, op) -> bool:
    """Does `reader` (with a channel axis 1) read `op` only at its own channel, index 1?"""
    if not isinstance(reader, ComputeOp) or len(reader.axis) < 3:
        return False
    c = reader.axis[1]
    for ld in _loads_of(reader, op):
        uses = [k for k, i in enumerate(ld.indices) if any(v is c for v in free_vars(i))]
        if uses != [1] or ld.indices[1] is not c:
            return False
    return True


def _blocked_convolution(op, packer, blocked, new, readers, lanes, folded, wanted: bool):
    """(blocks, L) of `op` computed in blocks of output channels, or None. Blocked when
    its input is blocked, or its output is wanted in blocks (`_wanted`: then no tile
    transposes it), or its sum is long enough to pay for the transposition."""
    match = _convolution(op, packer.params)
    if match is None:
        return None
    weight, data, size = match
    filters = op.axis[1].extent.value
    block = next((b for b in (2 * lanes, lanes) if filters % b == 0), None)
    if block is None:
        return None
    width = _width(op, readers[op])
    where = None
    through = _through_padding(op, data)
    if through is not None:             # read what the padding pads: no copy to make
        op, where = through
        weight, data, size = _convolution(op, packer.params)
    data_blocks = None
    source = blocked.get(data.tensor)
    if source is not None and len(data.indices) > 1 and data.indices[1] is weight.indices[1] \
            and not any(v is weight.indices[1] for i in data.indices[2:] for v in free_vars(i)):
        data_blocks = source
    elif size < MIN_REDUCTION and not wanted:
        return None
    # the other operand reads the replaced graph (blocks.view of a blocked producer
    # included); the data read from blocks reads them directly
    data_new = Load(new.get(data.tensor, data.tensor), data.indices)
    swap_op = _redirected(op, {data.tensor: data_new.tensor})
    data_load = next(ld for ld in loads(swap_op.body.body) if ld.tensor is data_new.tensor)
    weight_load = next(ld for ld in loads(swap_op.body.body) if ld.tensor is weight.tensor)
    name = unique_name(f"{op.name}_blk", packer.taken)
    twin = blocks.blocked_convolution(swap_op, weight_load, data_load, block, width,
                                      packer, name, data_blocks, where)
    inner = f" and {data_blocks[1]} input channels" if data_blocks else ""
    folded.append(Folded("layout", (op.name,), f"{weight.tensor.name} in blocks of {block} "
                                               f"output channels{inner}"))
    return twin, block


def _through_padding(op, data: Load):
    """(`op` reading what the zero padding `data` pads, in place; the sum's `where`: the
    padding's tests at the convolution's indices) when the padding is `select(tests,
    src[...], 0)` with tests that are comparisons of its indices (nn.conv2d's padding, its
    column phases, nn.pad, a right padding that widens a row); None otherwise. Every term
    the tests leave out is a product with a padding zero: the sum without them is the
    same, as MLAS skips those taps (9.5% of a 7-wide 3x3 convolution's work at its top
    and bottom rows, 9.5% more at its first and last columns), and the terms kept read
    the source where the padding reads it, so no padded copy is made at every call."""
    pad = data.tensor.op
    if not isinstance(pad, ComputeOp) or not isinstance(pad.body, Select) or \
            len(data.indices) != len(pad.axis):
        return None
    inner, fill = pad.body.true_value, pad.body.false_value
    if not (isinstance(inner, Load) and isinstance(fill, Const) and fill.value == 0):
        return None
    tests = conjuncts(pad.body.cond)
    if not all(_index_test(t) for t in tests):
        return None
    at = dict(zip(pad.axis, data.indices))
    where = None
    for t in tests:
        kept = BinOp(t.op, simplify_index(substitute(t.a, at)),
                     simplify_index(substitute(t.b, at)), t.dtype)
        where = kept if where is None else where & kept
    read = Load(inner.tensor, tuple(simplify_index(substitute(i, at)) for i in inner.indices))

    def swap(e):
        return read if e is data else None
    return ComputeOp(op.name, op.axis, transform(op.body, swap)), where


def _index_test(test) -> bool:
    """Is `test` a comparison of integer index expressions (no loads, no calls)?"""
    return isinstance(test, BinOp) and test.op in COMPARISONS and \
        all(dtypes.is_int(side.dtype) and not any(isinstance(e, (Load, Call)) for e in walk(side))
            for side in (test.a, test.b))


def _channelwise(op, packer, blocked, new, readers):
    """(blocks, L) of `op` rebuilt over blocked axes when it reads blocked tensors, all in
    blocks of the same L, at its own channel (axis 1) only; else None. A reduction (a
    depthwise convolution) is computed only as wide as its readers read it (`_width`:
    nn.conv2d's rows of 7 computed 8 wide are for vectors along the row, and in blocks
    the vectors run along the channels)."""
    if not isinstance(op, ComputeOp) or len(op.axis) < 3 or \
            not hasattr(op.axis[1].extent, "value"):
        return None
    c = op.axis[1]
    body = op.body
    parts = [body.body] + ([body.where] if body.where is not None else []) \
        if isinstance(body, Reduce) else [body]
    block = None
    for part in parts:
        for ld in loads(part):
            uses = [k for k, i in enumerate(ld.indices) if any(v is c for v in free_vars(i))]
            if ld.tensor not in blocked:
                continue
            if uses != [1] or ld.indices[1] is not c:
                return None
            if block not in (None, blocked[ld.tensor][1]):
                return None
            block = blocked[ld.tensor][1]
    if block is None or c.extent.value % block:
        return None
    op = _redirected(op, {t: new[t] for t in op.input_tensors if t not in blocked and t in new})
    name = unique_name(f"{op.name}_blk", packer.taken)
    width = _width(op, readers) if isinstance(body, Reduce) and len(op.axis) == 4 else None
    return blocks.channelwise(op, block, blocked, packer, name, width), block


def _redirected(op, replace: dict):
    """`op` with reads of the keys of `replace` redirected (itself when none)."""
    replace = {k: v for k, v in replace.items() if v is not k}
    if not replace:
        return op
    def redirect(e):
        if isinstance(e, Load) and e.tensor in replace:
            return Load(replace[e.tensor], e.indices)
        return None
    return ComputeOp(op.name, op.axis, transform(op.body, redirect))


def _convolution(op, params):
    """(weight load, data load, terms of the sum) of `sum(x[...] * w[f, ...])` over 4-D
    NCHW axes, w a constant read at the output channel f (axis 1) first and nowhere
    else, x not reading f; None for anything else (a depthwise or grouped convolution
    reads x at f)."""
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
        return w, x, size
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
