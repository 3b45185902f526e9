"""The stages of a network in channel blocks (NCHWc), built for graph/layout.py.

A tensor `t[n, c, ...]` in blocks of L channels is `tb[n, c // L, ..., c % L]`: its
channels split in two, the inner L last (MLAS's and TVM's NCHWc). Three builders:

- `blocked_convolution`: `blk[n, fo, y, x, fi] = sum ... * wb[fo, ..., fi]`, the weight
  packed once with NumPy; when its input is in blocks of Li channels too, the sum over
  input channels is split the same way, `sum_{cb, ky, kx, ci} xb[n, cb, .., ci] *
  wb[fo, cb, ky, kx, ci, fi]` (the innermost loop reads Li neighbouring floats of the
  input and Li neighbouring weight vectors);
- `channelwise`: a stage that reads its blocked inputs at its own channel (padding,
  bias, residual add, relu, pooling, a depthwise convolution) rebuilt over blocked
  axes; a weight it reads at the channel (a bias `b[c]`, a depthwise filter
  `w[c, 0, ky, kx]`) is packed once into blocks too (`b[cb, ci]`), so its reads stay
  contiguous vectors along ci;
- `view`: the NCHW tensor read back from blocks, for readers that want NCHW.
"""

from __future__ import annotations

import numpy as np

from ..lang.expr import BinOp, Const, IterVar, Load, Reduce
from ..lang.names import unique_name
from ..lang.tensor import ComputeOp, Tensor, placeholder
from ..lang import dtypes
from ..lang.visit import free_vars, substitute, transform


def _axis(name: str, extent, kind: str = "data") -> IterVar:
    e = extent if not isinstance(extent, int) else Const(extent, dtypes.INDEX)
    return IterVar(name, Const(0, dtypes.INDEX), e, kind)


def _value(e) -> int:
    return int(e.value)


class Packer:
    """Weights re-laid out once, each (weight, dimension, L) packed one time: dimension
    `dim` split into (size // L, L) with the L moved last."""

    def __init__(self, params: dict, taken: set):
        self.params, self.taken = params, taken
        self.done: dict = {}

    def channel(self, w: Tensor, dim: int, block: int) -> Tensor:
        key = (w, dim, block)
        if key not in self.done:
            a = self.params[w]
            shape = a.shape[:dim] + (a.shape[dim] // block, block) + a.shape[dim + 1:]
            packed = np.ascontiguousarray(np.moveaxis(a.reshape(shape), dim + 1, -1))
            self.done[key] = self._new(w, f"{w.name}_c{block}", packed)
        return self.done[key]

    def filters(self, w: Tensor, out_block: int, in_block: int | None,
                rows_first: bool = False) -> Tensor:
        """A convolution's weight (F, C, K...) as (F / Lo, C, K..., Lo), or with the input
        channels in blocks too, (F / Lo, C / Li, K..., Li, Lo); `rows_first` moves the
        window's rows (the first K) before the channels: (F / Lo, KH, C / Li, KW, Li, Lo)."""
        a = self.params[w]
        f, c, rest = a.shape[0], a.shape[1], a.shape[2:]
        k = len(rest)
        if in_block is None:
            a = a.reshape((f // out_block, out_block, c) + rest)     # fo, fi, c, K...
            kernel, lanes = list(range(3, 3 + k)), (1,)
            name = f"{w.name}_blk{out_block}"
        else:                                                        # fo, fi, cb, ci, K...
            a = a.reshape((f // out_block, out_block, c // in_block, in_block) + rest)
            kernel, lanes = list(range(4, 4 + k)), (3, 1)
            name = f"{w.name}_blk{out_block}x{in_block}"
        # the channels (or their blocks) are dimension 2 either way
        order = (0, kernel[0], 2, *kernel[1:]) if rows_first else (0, 2, *kernel)
        packed = a.transpose(order + lanes)
        return self._new(w, name, np.ascontiguousarray(packed))

    def panels(self, w: Tensor, columns: int) -> Tensor:
        """A matrix product's right operand (K, N) as (ceil(N / C), K, C) panels of C
        columns, zeros past column N (graph/panels.py), packed one time per (w, C)."""
        key = (w, "panels", columns)
        if key not in self.done:
            a = self.params[w]
            k, n = a.shape
            padded = np.zeros((k, -(-n // columns) * columns), dtype=a.dtype)
            padded[:, :n] = a
            packed = np.ascontiguousarray(padded.reshape(k, -1, columns).transpose(1, 0, 2))
            self.done[key] = self._new(w, f"{w.name}_p{columns}", packed)
        return self.done[key]

    def _new(self, w: Tensor, name: str, array) -> Tensor:
        t = placeholder(array.shape, w.dtype, unique_name(name, self.taken))
        self.params[t] = array
        return t


def blocked_convolution(op: ComputeOp, weight: Load, data: Load, block: int,
                        width: int, packer: Packer, name: str,
                        data_blocks: tuple[Tensor, int] | None, where=None) -> Tensor:
    """`op` (a convolution, `sum data * weight` over 4-D NCHW axes) in blocks of `block`
    output channels, `width` columns wide; `data_blocks` = (the input in blocks, Li)
    when the input is read from blocks (its channel index the first reduction axis).

    `where` (over `op`'s axes): the terms the sum keeps, the others products with a
    padding's zeros (graph/layout.py). isl then bounds the window's loops at the image's
    border, as MLAS skips those taps. When it tests the window's rows, the sum runs over
    them first and the weight is packed in that order: the taps a border row skips are
    then one contiguous run of each block's weights, not a hole in every channel block.
    (Holes in the first pass over weights that come from memory cost more than the
    skipped taps save: ResNet-18's 7-wide convolutions ran 5% slower with them.)"""
    n, f, y, x = op.axis
    body = op.body
    filters = _value(f.extent)
    bn, fo = _axis(n.name, n.extent), _axis("fo", filters // block)
    by, bx, fi = _axis(y.name, y.extent), _axis(x.name, width), _axis("fi", block)
    mapping = {n: bn, y: by, x: bx}
    fresh = {r: _axis(r.name, r.extent, "reduce") for r in body.axes}
    mapping.update(fresh)
    ky = weight.indices[2] if len(weight.indices) > 2 else None   # the window's row axis
    rows_first = where is not None and ky is not None and _value(ky.extent) > 1 and \
        any(v is ky for v in free_vars(where))
    where_mapping = dict(mapping)               # the where may test the channel too
    if data_blocks is None:
        wb = packer.filters(weight.tensor, block, None, rows_first=rows_first)
        axes = tuple(fresh[r] for r in body.axes)

        def swap(e):
            if e is weight:
                return Load(wb, (fo, *_rows_first([mapping[i] for i in e.indices[1:]],
                                                  rows_first), fi))
            return None
    else:
        twin, inner = data_blocks
        rc = weight.indices[1]
        cb = _axis("cb", _value(rc.extent) // inner, "reduce")
        ci = _axis("ci", inner, "reduce")
        wb = packer.filters(weight.tensor, block, inner, rows_first=rows_first)
        axes = tuple(cb if r is rc else fresh[r] for r in body.axes) + (ci,)
        where_mapping[rc] = cb * Const(inner, dtypes.INDEX) + ci

        def swap(e):
            if e is weight:
                return Load(wb, (fo, *_rows_first([cb, *(mapping[i] for i in e.indices[2:])],
                                                  rows_first), ci, fi))
            if e is data:
                return _read_blocks(twin, e, mapping, cb, ci)
            return None
    if rows_first:
        axes = (fresh[ky], *(a for a in axes if a is not fresh[ky]))
    inner_body = substitute(transform(body.body, swap), mapping)
    kept = None if where is None else substitute(where, where_mapping)
    return ComputeOp(name, (bn, fo, by, bx, fi), Reduce(body.reducer, inner_body, axes,
                                                        kept)).output(0)


def _rows_first(indices: list, rows_first: bool) -> tuple:
    """A packed weight's indices (channels, rows, columns...) with the rows first when
    `rows_first` (`Packer.filters`)."""
    if rows_first:
        indices = [indices[1], indices[0], *indices[2:]]
    return tuple(indices)


def channelwise(op: ComputeOp, block: int, blocked: dict, packer: Packer,
                name: str, width: int | None = None) -> Tensor:
    """`op` over blocked axes (a0, cb, a2, ..., ci): its reads of tensors in `blocked`
    (tensor -> (its blocks, L)) at (i0, c, i2, ...) become blocks[i0, cb, i2, ..., ci];
    a weight read at the channel alone in one dimension is packed (`Packer.channel`);
    any other index of the channel becomes cb * L + ci; `width` narrows the last axis."""
    c = op.axis[1]
    channels = _value(c.extent)
    new = [_axis(a.name, a.extent) for a in op.axis]
    if width is not None:                       # its last axis only as wide as it is read
        new[-1] = _axis(op.axis[-1].name, width)
    cb, ci = _axis(f"{c.name}b", channels // block), _axis(f"{c.name}i", block)
    axes = (new[0], cb, *new[2:], ci)
    mapping: dict = {a: b for a, b in zip(op.axis, new)}
    mapping[c] = cb * block + ci
    body = op.body
    reduce_axes = body.axes if isinstance(body, Reduce) else ()
    mapping.update({r: _axis(r.name, r.extent, "reduce") for r in reduce_axes})

    def swap(e):
        if not isinstance(e, Load) or not e.indices:
            return None
        if e.tensor in blocked and len(e.indices) > 1 and e.indices[1] is c:
            return _read_blocks(blocked[e.tensor][0], e, mapping, cb, ci)
        dims = [k for k, i in enumerate(e.indices) if any(v is c for v in free_vars(i))]
        if e.tensor in packer.params and len(dims) == 1 and e.indices[dims[0]] is c and \
                _value(e.tensor.shape[dims[0]]) % block == 0:
            k = dims[0]
            packed = packer.channel(e.tensor, k, block)
            idx = [substitute(i, mapping) for i in e.indices]
            return Load(packed, (*idx[:k], cb, *idx[k + 1:], ci))
        return None

    if isinstance(body, Reduce):
        where = None if body.where is None else substitute(transform(body.where, swap), mapping)
        new_body = Reduce(body.reducer, substitute(transform(body.body, swap), mapping),
                          tuple(mapping[r] for r in reduce_axes), where)
    else:
        new_body = substitute(transform(body, swap), mapping)
    return ComputeOp(name, axes, new_body).output(0)


def view(blocks: Tensor, block: int, name: str) -> Tensor:
    """`out[a0, c, a2, ...] = blocks[a0, c // L, a2, ..., c % L]`: NCHW read back."""
    shape = blocks.shape
    axes = [_axis(f"i{k}", e) for k, e in enumerate(shape[:-1])]
    axes[1] = _axis("i1", _value(shape[1]) * block)
    c = axes[1]
    index = (axes[0], BinOp("floordiv", c, Const(block, dtypes.INDEX), dtypes.INDEX),
             *axes[2:], BinOp("mod", c, Const(block, dtypes.INDEX), dtypes.INDEX))
    return ComputeOp(name, tuple(axes), Load(blocks, index)).output(0)


def _read_blocks(twin: Tensor, load: Load, mapping: dict, cb: IterVar, ci: IterVar) -> Load:
    """`load` (`t[i0, c, i2, ...]`, c the channel) of a tensor in blocks: `twin[i0, cb,
    i2, ..., ci]`, its other indices renamed by `mapping`."""
    rest = tuple(substitute(i, mapping) for i in load.indices[2:])
    return Load(twin, (substitute(load.indices[0], mapping), cb, *rest, ci))
