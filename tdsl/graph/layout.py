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

A convolution reading a zero padding skips the window's taps on it at the top and bottom
rows of the image (`_window_rows`, a `where` on the sum; MLAS skips them too): 9.5% of a
7-wide 3x3 convolution's work. Its sum then runs over the window's rows first, the weight
packed `wb[fo, ky, c, kx, fi]` (`blocks.blocked_convolution` says why). It skips the
padding's columns too (another 9.5% at 7 wide, 4.8% at 14: isl gives the border strips
of a row versions of their own, `poly/codegen._wholly_full`); then no tap reads the
padding, and the sum reads what it pads in place (`_through_padding`): no padded copy at
every call.

A convolution whose input is not blocked is blocked only when its sum has at least
MIN_REDUCTION terms: its epilogue may have to transpose the block back to NCHW
(`TileRules._blocked_tile`, scalar stores), which costs more than short sums save.
"""

from __future__ import annotations

from ..lang.expr import BinOp, Const, IterVar, Load, Reduce, Select
from ..lang.graph import topo_order
from ..lang.names import unique_name
from ..lang.tensor import ComputeOp, Tensor
from ..ir.simplify import linear_terms, simplify_index
from ..lang import dtypes
from ..lang.visit import free_vars, loads
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
        made = _blocked_convolution(op, packer, blocked, new, readers, target, folded,
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


def _blocked_convolution(op, packer, blocked, new, readers, target, folded,
                         wanted: bool):
    """(blocks, L) of `op` computed in blocks of output channels, or None. Blocked when
    its input is blocked, or its output is wanted in blocks (`_wanted`: then no tile
    transposes it), or its sum is long enough to pay for the transposition."""
    match = _convolution(op, packer.params)
    if match is None:
        return None
    weight, data, size = match
    filters, lanes = op.axis[1].extent.value, target.lanes("float32")
    block = next((b for b in (2 * lanes, lanes) if filters % b == 0), None)
    if block is None:
        return None
    width = _width(op, readers[op])
    inside = _padded_inside(op, data, width)
    if inside is not None:              # read what the padding pads: no copy to make
        op = _redirected(op, {data.tensor: inside})
        weight, data, size = _convolution(op, packer.params)
    rows = _window_rows(data, weight)
    columns = _window_columns(data, weight) if rows is not None else None
    through = _through_padding(op, data, rows, columns)
    if through is not None:             # no tap reads the padding: no copy to make
        op, rows, columns = through
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
                                      packer, name, data_blocks, rows, columns)
    inner = f" and {data_blocks[1]} input channels" if data_blocks else ""
    folded.append(Folded("layout", (op.name,), f"{weight.tensor.name} in blocks of {block} "
                                               f"output channels{inner}"))
    return twin, block


def _padded_inside(op, data: Load, width: int):
    """The tensor a padding pads, when the convolution `op` reads that padding at its own
    pixels (a 1x1 convolution, stride 1) `width` columns wide and so only inside it:
    nn.conv2d pads a 7-wide row on the right to compute it 8 wide, which a convolution
    narrowed back to 7 columns (`_width`) does not need. None otherwise."""
    pad = data.tensor.op
    if not isinstance(pad, ComputeOp) or not isinstance(pad.body, Select):
        return None
    inner, fill = pad.body.true_value, pad.body.false_value
    if not (isinstance(inner, Load) and len(inner.indices) == len(pad.axis) and
            all(i is a for i, a in zip(inner.indices, pad.axis)) and
            isinstance(fill, Const) and fill.value == 0):
        return None
    n, _, y, x = op.axis
    source = inner.tensor
    if len(data.indices) != 4 or len(source.shape) != 4 or data.indices[0] is not n or \
            not _at_pixel(data.indices[2], y) or not _at_pixel(data.indices[3], x):
        return None
    if not all(hasattr(e, "value") for e in source.shape[2:]) or \
            width > source.shape[3].value or y.extent.value > source.shape[2].value:
        return None
    return source


def _through_padding(op, data: Load, rows, columns):
    """(`op` reading what the zero padding `data` pads, at the shifted position; `rows`
    and `columns` in the source's coordinates) when the sum skips every tap on the
    padding (both given) and the padding only shifts its source (`src[n, c, y - ph, x -
    pw]`) and tests nothing but those rows and columns; None otherwise. MLAS reads the
    source in place too: no padded copy at every call."""
    if rows is None or columns is None:
        return None
    pad = data.tensor.op
    inner = pad.body.true_value
    if not isinstance(inner, Load) or len(inner.indices) != len(pad.axis) or \
            len(pad.axis) != 4:
        return None
    shifts = []
    for index, axis in zip(inner.indices, pad.axis):
        terms, constant = linear_terms(index)
        if [(c, a) for c, a in terms.values()] != [(1, axis)]:
            return None
        shifts.append(constant)
    row, col = pad.axis[2], pad.axis[3]
    if any(_row_bound(t, row) is None and _row_bound(t, col) is None
           for t in _conjuncts(pad.body.cond)):
        return None                     # it tests something else: zeros elsewhere too
    read = Load(inner.tensor, tuple(simplify_index(i + Const(k, dtypes.INDEX))
                                    for i, k in zip(data.indices, shifts)))

    def swap(e):
        return read if e is data else None
    from ..lang.visit import transform
    moved = ComputeOp(op.name, op.axis, transform(op.body, swap))
    return moved, (rows[0] + shifts[2], rows[1] + shifts[2]), \
        (columns[0] + shifts[3], columns[1] + shifts[3])


def _window_rows(data: Load, weight: Load) -> tuple[int, int] | None:
    """[lo, hi): the rows of the zero padding a convolution reads (`data`, rows at axis 2)
    that hold what it pads, when the window moves over those rows (the weight's row axis
    in the row index) and the padding's select tests its rows against constants; None
    otherwise. Outside them every term of the sum is a product with a padding zero."""
    return _window_inside(data, weight, 2)


def _window_columns(data: Load, weight: Load) -> tuple[int, int] | None:
    """`_window_rows` for the columns (axis 3) of a 4-D padding."""
    return _window_inside(data, weight, 3) if len(data.indices) == 4 else None


def _window_inside(data: Load, weight: Load, dim: int) -> tuple[int, int] | None:
    pad = data.tensor.op
    if not isinstance(pad, ComputeOp) or not isinstance(pad.body, Select) or \
            len(pad.axis) <= dim or len(data.indices) != len(pad.axis) or \
            len(weight.indices) <= dim:
        return None
    fill, window = pad.body.false_value, weight.indices[dim]
    if not (isinstance(fill, Const) and fill.value == 0) or \
            getattr(window.extent, "value", 1) <= 1 or \
            not any(v is window for v in free_vars(data.indices[dim])):
        return None
    axis, lo, hi = pad.axis[dim], None, None
    for test in _conjuncts(pad.body.cond):
        bound = _row_bound(test, axis)
        if bound is not None:
            kind, value = bound
            lo = value if kind == "lo" and (lo is None or value > lo) else lo
            hi = value if kind == "hi" and (hi is None or value < hi) else hi
    if lo is None or hi is None or (lo <= 0 and hi >= axis.extent.value):
        return None
    return lo, hi


def _conjuncts(cond) -> list:
    if isinstance(cond, BinOp) and cond.op == "and":
        return _conjuncts(cond.a) + _conjuncts(cond.b)
    return [cond]


def _row_bound(test, row: IterVar) -> tuple[str, int] | None:
    """("lo", c) for `row >= c` (or `row > c - 1`), ("hi", c) for `row < c` (or `row <=
    c - 1`), with constants on either side folded; None for any other test."""
    if not isinstance(test, BinOp) or test.op not in ("ge", "gt", "lt", "le"):
        return None
    terms, constant = linear_terms(test.a - test.b)      # row + constant (op) 0
    if len(terms) != 1:
        return None
    (coef, atom), = terms.values()
    if atom is not row or coef != 1:
        return None
    # row + constant >= 0  <=>  row >= -constant, and so on
    return {"ge": ("lo", -constant), "gt": ("lo", 1 - constant),
            "lt": ("hi", -constant), "le": ("hi", 1 - constant)}[test.op]


def _at_pixel(index, axis) -> bool:
    """`index` is `axis`, or `axis + r` with r a window axis of extent 1 (a 1x1 kernel)."""
    if index is axis:
        return True
    return isinstance(index, BinOp) and index.op == "add" and index.a is axis and \
        isinstance(index.b, IterVar) and index.b.kind == "reduce" and \
        getattr(index.b.extent, "value", None) == 1


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
    from ..lang.visit import transform

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
