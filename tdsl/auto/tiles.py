"""The tiling rules of `td.auto_schedule` on the CPU (a mixin of rules.py's `_CpuRules`).

Register tiles for reductions with reuse (matmul, convolution: rows unrolled, columns
vectorized, held over the whole reduction), dot-product tiles for operands that all run
along the reduction (dense), column reductions (vectors of independent sums, windows
sliding with the output), two-level transpose tiles; and the epilogue rule: an
elementwise stage that reads such a reduction at its own index is tiled instead, and the
reduction computed per tile (TVM computes a conv at its epilogue's tile, the epilogue
playing the role of cache_write's copy stage).
"""

from __future__ import annotations

import numpy as np

from ..errors import ScheduleError
from ..examples import register_tile_shape
from ..lang.expr import Const
from ..lang.tensor import PlaceholderOp, UpdateOp
from ..lang.visit import free_vars, loads
from .analysis import StageInfo, uses_axis, blocked_index


class NotApplicable(ScheduleError):
    """A rule that does not fit a stage (not a refusal by isl)."""


class TileRules:
    """Methods of `_CpuRules` (rules.py): `self.s`, `self.t`, `self.infos`, `self.lanes`,
    `self.placed`, `self.inlined`, `self.outputs`, `choose`, `stage`, `_vector_inner`,
    `_parallel_outer` come from there."""

    # -- 4. epilogues in the register tile ---------------------------------------------
    def _epilogue_host(self, op):
        """The stage that applies `op`'s epilogue (bias, batch_norm, relu, a residual add,
        gelu, inlined into it), when every path of readers from `op` runs through inlined
        stages reading at their own index to that one stage: its loops are tiled as
        `op`'s would be and `op` is computed per tile (TVM's cache_write stage is then the
        epilogue itself), so each tile of the output is finished while it is in
        registers, with no second pass over the output.

        A link may add or drop axes of extent 1 (ONNX's MatMul of a (1, S, D) input is a
        2-D product reshaped to (1, S, E): the reshape reads `p[i1, i2]`). Returns (host,
        its axes at the positions of `op`'s axes), or None."""
        found: dict = {}

        def walk(cur, axes) -> bool:
            info = self.infos[cur]
            if not info.readers or cur in self.outputs:
                return False
            for reader in info.readers:
                at = info.reads_at.get(reader, ())
                if isinstance(reader, UpdateOp) or len(at) != 1:
                    return False
                step = _reader_axes(at[0], list(cur.axis), list(reader.axis))
                if step is None:
                    return False
                mapped = [step[_position(cur.axis, a)] for a in axes]
                if any(a is None for a in mapped):
                    return False
                if reader in self.inlined:
                    if not walk(reader, mapped):
                        return False
                    continue
                if reader in self.placed or self.infos[reader].kind != "injective":
                    return False
                if found and (reader not in found or
                              any(a is not b for a, b in zip(found[reader], mapped))):
                    return False
                found[reader] = mapped
            return True

        if not walk(op, list(op.axis)) or len(found) != 1:
            return None
        return next(iter(found.items()))

    def _blocked_host(self, op):
        """(host, position, L) for a convolution computed in blocks of L output channels
        (graph/layout.py: `blk[n, fo, y, x, fi]`) whose one reader is its NCHW view
        `blk[n, f // L, y, x, f % L]`, followed by the chain of stages of its epilogue
        read at their own index (bias, residual add, relu, inlined); the host is the
        last of them, the stage that writes the output. None otherwise."""
        info = self.infos[op]
        if len(info.readers) != 1 or op in self.outputs:
            return None
        view = info.readers[0]
        at = info.reads_at.get(view, ())
        if isinstance(view, UpdateOp) or len(at) != 1:
            return None
        found = blocked_index(at[0], list(view.axis))
        if found is None or found[1] != op.axis[-1].extent.value:
            return None
        cur = view
        while cur in self.inlined:
            vi = self.infos[cur]
            if len(vi.readers) != 1 or cur in self.outputs:
                return None
            reader = vi.readers[0]
            at = vi.reads_at.get(reader, ())
            if isinstance(reader, UpdateOp) or len(at) != 1 or \
                    len(reader.axis) != len(view.axis) or \
                    not all(_at_axis(i, a) for i, a in zip(at[0], reader.axis)) or \
                    not all(_same_extent(a, b) for a, b in zip(reader.axis, view.axis)):
                return None
            cur = reader
        if cur in self.placed or self.infos[cur].kind != "injective":
            return None
        return cur, found[0], found[1]

    def _blocked_tile(self, op, info: StageInfo, host, position: int, block: int) -> None:
        """The register tile of a convolution in channel blocks, at its epilogue: the
        host's channels split by the block (a tile's channels are then one block, `fi`
        vectorized) and its row into strips of pixels (unrolled); the block is computed
        per (channel block, row, strip), over the whole reduction, and the host writes
        the strip's pixels of each channel from it. Strips as `_rows_without_ragged_tile`
        says (on AVX2 6 pixels, the whole row when it is 7)."""
        row, col = info.row_axis, info.col_axis
        axes = list(op.axis)
        k = next(i for i, a in enumerate(axes) if a is row)
        if k == position or col is not axes[-1]:
            raise NotApplicable("the tile's row is the channel block")
        hs = self.stage(host)
        haxes = list(host.axis)
        channel, hrow = haxes[position], haxes[k]
        width = hrow.extent.value if isinstance(hrow.extent, Const) else None
        rows, _ = register_tile_shape(self.t)
        if width is not None:
            rows = _rows_without_ragged_tile(width, rows, block // self.lanes,
                                             self.t.vector_registers)
        rows = self.choose(op, "tile_rows", (2, 3, 4, 6, 7, 8, 12, 14), rows)
        fo, fi = hs.split(channel, factor=block)
        ro, ri = hs.split(hrow, factor=rows)
        outer = [fo if a is channel else ro if a is hrow else a for a in haxes]
        hs.reorder(*outer, fi, ri)
        self._parallel_outer(hs, outer[:-1])
        _unroll_border_strips(hs, op, ro, width, rows)
        bs = self.stage(op)
        bs.compute_at(hs, outer[-1])
        others = [a for a in axes if a is not row and a is not col]
        co, ci = bs.split(col, factor=self.lanes)
        bs.reorder(*others, *op.reduce_axis, row, co, ci)
        bs.unroll(row)
        bs.unroll(co)
        bs.vectorize(ci)

    def _column_reduction(self, op, host=None) -> None:
        """A reduction whose innermost data axis is contiguous: the reduction loops go
        outside it, so the innermost loop is a vector of independent sums. With `host`
        (its epilogue), the host's rows are cut in pieces of that many vectors and the
        reduction computed per piece, its sums held in registers."""
        vectors = self.choose(op, "column_vectors", (1, 2, 4, 8), 4)
        if host is not None and self._narrow_columns(op, host):
            self._column_tile(op, host)
            return
        if host is not None:
            hs = self.stage(host)
            jo, ji = hs.split(host.axis[-1], factor=vectors * self.lanes)
            outer = [*host.axis[:-1], jo]
            hs.reorder(*outer, ji)
            hs.vectorize(ji)
            last = self._parallel_outer(hs, outer)
            stage = self.stage(op)
            stage.compute_at(hs, last)
            stage.reorder(*op.axis[:-1], *op.reduce_axis, op.axis[-1])
            stage.vectorize(op.axis[-1])
            return
        stage = self.stage(op)
        inner = op.axis[-1]
        jo, ji = stage.split(inner, factor=vectors * self.lanes)
        data = _without(stage.leaf_iter_vars, *op.reduce_axis, ji)
        stage.reorder(*data, *op.reduce_axis, ji)
        stage.vectorize(ji)
        self._parallel_outer(stage, data)

    def _narrow_columns(self, op, host) -> bool:
        """Are `op`'s rows (its last axis) at most two vectors long, with a constant row
        before them (a depthwise convolution in channel blocks, `out[n, cb, y, x, ci]`)?"""
        if len(op.axis) < 2 or len(host.axis) != len(op.axis):
            return False
        last, row = op.axis[-1].extent, op.axis[-2].extent
        return isinstance(last, Const) and last.value <= 2 * self.lanes and \
            isinstance(row, Const) and not any(r is op.axis[-2] for r in op.reduce_axis)

    def _column_tile(self, op, host) -> None:
        """A register tile of a column reduction whose rows are short (a depthwise
        convolution in channel blocks: 16 channels, a window of 3 x 3 taps): a strip of
        pixels along the axis before the row, unrolled, by the row's vectors, held over
        the whole reduction; each operand read once per tap and pixel, the window's
        weights (the same for every pixel) once per tap."""
        hs = self.stage(host)
        *outer, x, c = host.axis
        width = x.extent.value
        rows, _ = register_tile_shape(self.t)        # 6 on AVX2, 8 on AVX-512
        vectors = -(-c.extent.value // self.lanes)
        rows = self.choose(op, "tile_rows", (2, 4, 6, 7, 8), _rows_without_ragged_tile(
            width, rows, vectors, self.t.vector_registers))
        xo, xi = hs.split(x, factor=rows)
        hs.reorder(*outer, xo, xi, c)
        self._vector_inner(hs, c)
        last = self._parallel_outer(hs, [*outer, xo])
        stage = self.stage(op)
        stage.compute_at(hs, last)
        *others, ox, oc = op.axis
        co, ci = stage.split(oc, factor=self.lanes)
        stage.reorder(*others, *op.reduce_axis, ox, co, ci)
        stage.unroll(ox)
        stage.unroll(co)
        stage.vectorize(ci)

    def _transpose_tiles(self, op) -> None:
        """Two levels of tiles: blocks of 128 x 128 (a block's pages stay in the TLB),
        and inside them tiles of one vector by one vector, rows unrolled."""
        stage = self.stage(op)
        y, x = op.axis[-2], op.axis[-1]
        block = self.choose(op, "block", (32, 64, 128, 256), 128)
        yo, xo, yi, xi = stage.tile(y, x, block, block)
        yio, yii = stage.split(yi, factor=self.lanes)
        xio, xii = stage.split(xi, factor=self.lanes)
        stage.reorder(yo, xo, xio, yio, yii, xii)
        stage.unroll(yii)
        stage.vectorize(xii)
        self._parallel_outer(stage, _without(stage.leaf_iter_vars, xo, xio, yio, yii, xii))

    def _register_tile(self, op, info: StageInfo, host=None, host_axes=None) -> None:
        """A register tile of `op` (cache_write: rows unrolled, columns vectorized, held
        over the whole reduction); with `host` (its epilogue, `_epilogue_host`, whose
        axes at `op`'s positions are `host_axes`), the host's loops are tiled and `op`
        itself is the tile computed at them."""
        mover = _row_operand(op, info) if host is None else None
        extent = info.row_axis.extent
        if not isinstance(extent, Const) or extent.value < self.lanes:
            mover = None                    # not one whole vector of rows
        if mover is not None and self.choose(op, "vectors", ("columns", "rows"),
                                             "rows" if _sliding(op, info) else "columns") \
                == "rows":
            return self._row_vector_tile(op, info, *mover)
        rows, cols = register_tile_shape(self.t)
        width = info.col_axis.extent
        if isinstance(width, Const) and width.value < cols:
            if width.value % self.lanes == 0:
                # whole vectors, fewer of them per row: more rows, as many accumulators
                budget = rows * cols // self.lanes
                cols = width.value
                rows = budget // (cols // self.lanes)
            else:
                # a row narrower than the tile (a 14 x 14 or 7 x 7 feature map): each row
                # of accumulators is a vector, narrower ones and scalars (14 = 8 + 4 + 1 +
                # 1); fewer rows keep them all in registers
                rows = max(1, min(rows, self.t.vector_registers // _registers(width.value,
                                                                              self.lanes)))
        elif isinstance(info.row_axis.extent, Const):
            rows = _rows_without_ragged_tile(info.row_axis.extent.value, rows,
                                             cols // self.lanes, self.t.vector_registers)
        rows = self.choose(op, "tile_rows", (2, 3, 4, 6, 7, 8, 12), rows)
        cols = self.lanes * self.choose(op, "tile_vectors", (1, 2, 3, 4), cols // self.lanes)
        if host is None:
            stage, local = self.stage(op), self.s.cache_write(op.output(0), "local")
            row, col, axes = info.row_axis, info.col_axis, op.axis
        else:
            stage, local, axes = self.stage(host), op.output(0), host.axis
            row, col = _same_position(host_axes, op.axis, info.row_axis, info.col_axis)
        ro, ri = stage.split(row, factor=rows)
        co, ci = stage.split(col, factor=cols)
        outer = [ro if a is row else co if a is col else a for a in axes]
        panel = _panel_operand(op, info)
        packed = panel is not None and _packed_already(panel, cols)
        if packed:
            panel = None
        if panel is not None and not self.choose(op, "pack", (True, False), True):
            panel = None
        if panel is not None or self.choose(op, "tile_order", ("rows", "columns"),
                                            "columns" if packed else "rows") == "columns":
            # B of a matmul walks down its columns: copy the tile's panel of columns into
            # contiguous local storage once per column tile (cache_read), and run the row
            # tiles inside, reusing it from L2 (GotoBLAS's packed panel, TVM's tutorial).
            # A panel packed at compile time (graph/panels.py) is read in place in the
            # same order: with rows of tiles outside, every row tile would stream all of
            # B again (the MLP's 784 x 512 weight is 1.6 MB, past L2). Without a panel
            # the order is the search's choice: rows of tiles outside reuse a block of A
            # rows, columns of tiles outside a panel of B
            outer = [a for a in outer if a is not ro]
            outer.insert(next(k for k, a in enumerate(outer) if a is co) + 1, ro)
        stage.reorder(*outer, ri, ci)
        stage.vectorize(ci)
        # the innermost tile loop stays a loop of its own (its ragged last tile is a range
        # isl splits off); the loops outside it are fused for the threads
        last = outer[-1]
        if last is ro and isinstance(row.extent, Const):
            _unroll_border_strips(stage, op, ro, row.extent.value, rows)
        # (with a panel, the column tile is the last of these: fused into the parallel
        # loop when there is a batch axis, the panel's copy goes to the fused loop)
        panel_at = self._parallel_outer(stage, outer[:-1]) if outer[:-1] else None
        ls = self.s[local]
        ls.compute_at(stage, last)
        lrow, lcol = _same_position(local.op.axis, op.axis, info.row_axis, info.col_axis)
        others = [a for a in local.op.axis if a is not lrow and a is not lcol]
        col_outer, col_inner = ls.split(lcol, factor=self.lanes)
        ls.reorder(*others, *local.op.reduce_axis, lrow, col_outer, col_inner)
        ls.unroll(lrow)
        ls.unroll(col_outer)
        ls.vectorize(col_inner)
        if panel is not None:
            copy = self.s.cache_read(panel.tensor, "local", [local])
            cs = self.s[copy]
            cs.compute_at(stage, panel_at if panel_at is not None else co)
            self._vector_inner(cs, copy.op.axis[-1])

    def _row_vector_tile(self, op, info: StageInfo, mover, dim: int) -> None:
        """The register tile turned around (the `<op>.vectors` knob's "rows"): vectors
        along the tile's row axis (a convolution's output channels), the columns (pixels)
        unrolled and broadcast. The operand that moves with the rows (the weights
        `w[f, c, r, s]`) is copied once into a buffer with the row axis innermost
        (cache_read, reorder_storage), so each tap's channels are one vector load, with
        the next dimension's stride padded to an odd number of cache lines (storage_align:
        the taps then spread over every L1 set); the accumulators are stored with the row
        axis innermost too. This is the schedule of benchmarks/schedules/w2_conv2d.py (TVM's
        NCHWc convolution) on the plain algorithm: 169 against 173 GFLOP/s for the
        hand-blocked one, 155 for the column tile (W2, Zen 3, AVX2, 2026-12-03)."""
        row, col = info.row_axis, info.col_axis
        vecs = self.choose(op, "row_vectors", (1, 2, 3),
                           min(2, row.extent.value // self.lanes))
        channels = vecs * self.lanes
        pixels = self.choose(op, "row_pixels", (4, 6, 7, 8, 12, 14),
                             6 if self.t.vector_registers < 32 else 14)
        stage, local = self.stage(op), self.s.cache_write(op.output(0), "local")
        copy = self.s.cache_read(mover.tensor, "local", [local])
        ro, ri = stage.split(row, factor=channels)
        co, ci = stage.split(col, factor=pixels)
        outer = [ro if a is row else co if a is col else a for a in op.axis]
        stage.reorder(*outer, ri, ci)
        self._parallel_outer(stage, outer[:-1])
        ls = self.s[local]
        ls.compute_at(stage, outer[-1])
        lrow, lcol = _same_position(local.op.axis, op.axis, row, col)
        others = [a for a in local.op.axis if a is not lrow and a is not lcol]
        ls.reorder_storage(*others, lcol, lrow)
        ls.reorder(*others, *local.op.reduce_axis, lcol, lrow)
        ls.unroll(lcol)
        row_outer, row_inner = ls.split(lrow, factor=self.lanes)
        ls.unroll(row_outer)
        ls.vectorize(row_inner)
        cs = self.s[copy]
        order = [a for d, a in enumerate(copy.op.axis) if d != dim]
        order.append(copy.op.axis[dim])
        cs.reorder_storage(*order)
        line = max(1, 64 // np.dtype(copy.dtype).itemsize)     # elements per cache line
        if len(order) > 1:
            cs.storage_align(order[-2], 2 * line, line)
        cs.reorder(*order)
        # a transposing copy reads with a stride, slower per byte than the grain rule's
        # streams (W2's 147 KB of weights: 156 -> 163 GFLOP/s on the threads)
        if self.choose(copy.op, "parallel", (True, False), True):
            cs.parallel(order[0])

    def _dot_tile(self, op, info: StageInfo, host=None, host_axes=None) -> None:
        """A register tile of dot products for `C[i, j] = sum_k x[i, k] * w[j, k]` (a
        dense layer): the reduction is factored into vector lanes along k (rfactor), so
        every operand is a contiguous vector load; a tile of rows x columns of C keeps
        one vector of partial sums each in registers over the whole k loop (4 x 3: 12
        accumulators fed by 7 loads per step), and C sums each vector's lanes at the
        end. At batch 1 (a matrix-vector product) the tile is one row of 8 columns:
        w streams once, in parallel over the column tiles."""
        k = info.dot_axis
        if not isinstance(k.extent, Const) or k.extent.value % self.lanes or \
                not self.choose(op, "dot", (True, False), True):
            raise NotApplicable("not a dot-product tile")
        row, col = info.row_axis, info.col_axis
        nrows = row.extent.value if isinstance(row.extent, Const) else None
        rows = self.choose(op, "dot_rows", (1, 2, 3, 4, 6), 1 if nrows == 1 else 4)
        cols = self.choose(op, "dot_cols", (2, 3, 4, 6, 8), 8 if rows == 1 else 12 // rows)
        _, k_inner = self.stage(op).split(k, factor=self.lanes)
        partial = self.s.rfactor(op.output(0), k_inner, factor_axis=len(op.axis))
        stage = self.stage(op if host is None else host)
        prow, pcol = _same_position(partial.op.axis, op.axis, row, col)
        if host is not None:
            row, col = _same_position(host_axes, op.axis, row, col)
        ro, ri = stage.split(row, factor=rows)
        co, ci = stage.split(col, factor=cols)
        # column tiles outside row tiles: a tile's rows of w stay in L1 while the rows of
        # x (the smaller operand) stream past them
        outer = [co if a is row else ro if a is col else a
                 for a in (op.axis if host is None else host.axis)]
        stage.reorder(*outer, ri, ci)
        last = self._parallel_outer(stage, outer)
        if host is not None:
            self._vector_inner(stage, ci)
            self.stage(op).compute_at(stage, last)
        ps = self.s[partial]
        ps.compute_at(stage, last)
        lane = partial.op.axis[-1]
        others = [a for a in partial.op.axis[:-1] if a is not prow and a is not pcol]
        ps.reorder(*others, *partial.op.reduce_axis, prow, pcol, lane)
        ps.unroll(prow)
        ps.unroll(pcol)
        ps.vectorize(lane)


def _panel_operand(op, info: StageInfo):
    """The load of a reduction with reuse whose vectors are read down a reduction axis
    (`B[k, j]`: the last index runs with the column alone, an earlier one with a reduction
    axis) from an input of the kernel; None if there is none (a convolution's input moves
    with its reduction in the last index too)."""
    from ..lang.tensor import PlaceholderOp
    from ..lang.visit import free_vars, loads
    reduce_axes = op.reduce_axis
    for ld in loads(op.body.body):
        if not isinstance(ld.tensor.op, PlaceholderOp) or len(ld.indices) < 2:
            continue
        last = free_vars(ld.indices[-1])
        if len(last) != 1 or last[0] is not info.col_axis:
            continue
        if any(v is r for i in ld.indices[:-1] for v in free_vars(i) for r in reduce_axes):
            return ld
    return None


def _unroll_border_strips(stage, op, strips, width: int | None, rows: int) -> None:
    """Unroll the loop over a row's strips of `rows` pixels when there are two and `op`'s
    sum skips a padding's taps (a `where`, graph/layout.py): each strip is then a border
    strip with its own constant position, and isl gives each one version of its window
    loops with no test inside (in a loop over the strips gcc kept an accumulator in
    memory across the versions: ResNet-18's 14-wide convolutions 4.5% slower than
    without the skip, 5% faster with the copies)."""
    if op.body.where is not None and width is not None and -(-width // rows) == 2:
        stage.unroll(strips)


def _rows_without_ragged_tile(width: int, rows: int, vectors: int, registers: int) -> int:
    """Rows of a register tile of `vectors` accumulator vectors per row, along a row of
    `width`: all of it when it is at most one more than `rows`; else one more than
    `rows` when that leaves no ragged last tile where `rows` does, if the tile, its row
    of operand vectors and a broadcast fit the `registers` (a row of 36 on AVX-512:
    strips of 9, 18 accumulators of 32 zmm registers), or if the row holds only two such
    strips. On AVX2 a strip of 7 pixels x 16 channels takes 17 of 16 ymm registers and
    gcc spills one; ResNet-18's convolutions, Zen 3, interleaved, same run: rows of 56
    and 28 ran 7-8% faster in strips of 6 (and a ragged 2 or 4) than in strips of 7;
    rows of 14 ran 2-7% slower in 6 + 6 + 2 than in 7 + 7 (the strip of 2 is a seventh
    of the work at half the speed), and rows of 7 keep the whole row (8-20% faster
    than 6 + 1)."""
    if width <= rows + 1:
        return width
    if width % rows and width % (rows + 1) == 0:
        fits = (rows + 2) * vectors + 1 <= registers
        if fits or width <= 2 * (rows + 1):
            return rows + 1
    return rows


def _packed_already(panel, cols: int) -> bool:
    """Is the panel a tile's columns would copy already contiguous: the operand's rows
    exactly one column tile wide (a convolution's weights packed in channel blocks at
    compile time, `wb[fo, c, ky, kx, fi]`), so a copy would only duplicate them?"""
    last = panel.tensor.shape[-1]
    return isinstance(last, Const) and last.value == cols


def _reader_axes(index, axes, reader_axes):
    """The reader's axis at each of `axes` (None for a unit axis it reads at 0) when it
    reads them at `index`, or None if it reads them otherwise. At the same rank, each index
    is the reader's axis at its position (or 0 on an axis of extent 1, NumPy
    broadcasting's read); else each index is a reader axis, in order, of the same extent,
    or 0 on a unit axis, the reader's other axes have extent 1 and the last index is its
    last axis (a reshape adding or dropping unit axes)."""
    if len(reader_axes) == len(axes):
        if all(_at_axis(i, r) for i, r in zip(index, reader_axes)) and \
                all(_same_extent(a, r) for a, r in zip(axes, reader_axes)):
            return list(reader_axes)
        return None
    if index[-1] is not reader_axes[-1]:
        return None
    mapped, used = [], []
    for i, a in zip(index, axes):
        if isinstance(i, Const) and i.value == 0 and _unit(a):
            mapped.append(None)
            continue
        k = next((k for k, r in enumerate(reader_axes) if r is i), None)
        if k is None or (used and k <= used[-1]) or not _same_extent(a, reader_axes[k]):
            return None
        used.append(k)
        mapped.append(reader_axes[k])
    if not all(_unit(r) for k, r in enumerate(reader_axes) if k not in used):
        return None
    return mapped


def _unit(axis) -> bool:
    return isinstance(axis.extent, Const) and axis.extent.value == 1


def _position(axes, axis) -> int:
    return next(k for k, a in enumerate(axes) if a is axis)


def _at_axis(index, axis) -> bool:
    """`index` is `axis`, or 0 on an axis of extent 1 (NumPy broadcasting's read)."""
    return index is axis or (isinstance(index, Const) and index.value == 0 and _unit(axis))


def _same_extent(a, b) -> bool:
    return a.extent is b.extent or (isinstance(a.extent, Const) and
                                    isinstance(b.extent, Const) and
                                    a.extent.value == b.extent.value)


def _registers(width: int, lanes: int) -> int:
    """Registers one row of `width` accumulators takes: whole vectors, then halves down
    to 4 lanes, then scalars (as the C backend emits them)."""
    count, rest = width // lanes, width % lanes
    while lanes > 4:
        lanes //= 2
        count, rest = count + rest // lanes, rest % lanes
    return count + rest


def _without(loops, *excluded) -> list:
    """`loops` less `excluded`, by identity (axes compare as expressions)."""
    return [a for a in loops if not any(a is x for x in excluded)]


def _row_operand(op, info: StageInfo):
    """(load, dimension) a row-vector tile (`_row_vector_tile`) copies with that dimension
    innermost: the one input moving with the tile's rows and not its columns, indexed by
    the row axis itself in one dimension and nowhere else (a convolution's `w[f, c, r, s]`,
    dimension 0); or None."""
    row, col = info.row_axis, info.col_axis
    movers = [ld for ld in loads(op.body.body) if uses_axis(ld, row) and not uses_axis(ld, col)]
    if len(movers) != 1 or not isinstance(movers[0].tensor.op, PlaceholderOp):
        return None
    mover = movers[0]
    dims = [d for d, i in enumerate(mover.indices) if i is row]
    if len(dims) != 1 or any(any(v is row for v in free_vars(i))
                             for d, i in enumerate(mover.indices) if d != dims[0]):
        return None
    return mover, dims[0]


def _sliding(op, info: StageInfo) -> bool:
    """Does an operand read along the tile's columns through a window (`x[.., xx + rx]`, a
    convolution)? Its column vectors then start at every offset of the window (loads that
    straddle cache lines); vectors along the rows do not."""
    col = info.col_axis
    reduce = op.body.axes
    for ld in loads(op.body.body):
        for i in ld.indices:
            used = free_vars(i)
            if any(v is col for v in used) and any(v is r for v in used for r in reduce):
                return True
    return False


def _same_position(new_axes, old_axes, *wanted):
    """The axes of `new_axes` at the positions of `wanted` among `old_axes`."""
    positions = [next(k for k, a in enumerate(old_axes) if a is w) for w in wanted]
    return [new_axes[p] for p in positions]
