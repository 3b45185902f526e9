"""`Stage`: the schedule of one operation, and every loop primitive on it.

Each primitive validates its arguments, computes the stage's new state (pure
helpers such as `_split` return a state and commit nothing, so `tile` can
compose them), and hands it to the schedule, which proves it legal with isl
before adopting it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import ScheduleError
from ..lang.expr import Const, IterVar
from ..lang.tensor import ComputeOp, Operation, Tensor, UpdateOp
from .data import ScheduleData
from .state import (Fuse, Prefetch, Split, StageState, ceil_div, derived_from, new_axis,
                    root_axes, root_step)

if TYPE_CHECKING:
    from .schedule import Schedule

GPU_TAGS = ("blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y",
            "threadIdx.z")


class Stage:
    """The schedule of one operation: its loops and where it is computed."""

    def __init__(self, schedule: Schedule, key: Operation):
        self._schedule = schedule
        self._key = key

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    @property
    def state(self) -> StageState:
        return self._schedule.data.states[self._key]

    @property
    def op(self) -> Operation:
        return self.state.op

    @property
    def name(self) -> str:
        return self.state.op.name

    @property
    def leaf_iter_vars(self) -> tuple[IterVar, ...]:
        return self.state.leaves

    @property
    def loops(self) -> tuple[IterVar, ...]:
        """The stage's loops as the schedule has made them so far, outermost first: its
        axes at first, then the results of split, tile, fuse and reorder (the loops
        `td.lower` prints for it). Empty for an inlined stage.

        >>> s[C].split(C.op.axis[1], factor=8)
        >>> [v.name for v in s[C].loops]
        ['i', 'j_outer', 'j_inner', 'k']
        """
        return () if self.state.inlined else tuple(self.state.leaves)

    @property
    def inlined(self) -> bool:
        """Whether compute_inline() substituted this stage into its consumers (it then
        has no loops and no buffer)."""
        return self.state.inlined

    def __repr__(self) -> str:
        return f"<Stage {self.name}: {', '.join(v.name for v in self.leaf_iter_vars)}>"

    def _call(self, text: str) -> str:
        return f"s[{self.name}].{text}"

    def _apply(self, state: StageState, call: str, focus=None, result: str = "",
                moved=()) -> None:
        """Adopt `state` for this stage if the schedule stays legal. `moved` pairs a loop
        that disappears with the loop that replaces it: stages computed at the old loop
        move there (a split's inner loop keeps the same iterations per step; a fused
        loop runs them finer, which recomputes more but stays correct)."""
        data = self._schedule.data.with_state(self._key, state)
        for old, new in moved:
            for key in data.order:
                attach = data.states[key].attach
                if isinstance(attach, tuple) and attach[0] is self._key and attach[1] is old:
                    data = data.with_state(key, replace(data.states[key],
                                                        attach=(self._key, new)))
        self._schedule._commit(data, call, focus, result)

    # -- validation ----------------------------------------------------------------
    def _require_leaf(self, axis, primitive: str, call: str | None = None,
                      state: StageState | None = None) -> IterVar:
        """`axis` if it is a loop of this stage now; else a ScheduleError saying what it is.
        `call` is the user's call when it is not a method of this stage (compute_at)."""
        state = state or self.state
        call = call or self._call(primitive)
        if not isinstance(axis, IterVar):
            raise ScheduleError(f"{call}: expected an axis (an IterVar from "
                                f"{self.name}.op.axis, .op.reduce_axis or a primitive); got "
                                f"{type(axis).__name__} {axis!r}")
        if any(leaf is axis for leaf in state.leaves):
            return axis
        for rel in state.relations:
            if isinstance(rel, Split) and rel.parent is axis:
                raise ScheduleError(
                    f"{call}: {axis.name} was already split into "
                    f"{rel.outer.name} and {rel.inner.name}; use those loops")
            if isinstance(rel, Fuse) and (axis is rel.outer or axis is rel.inner):
                raise ScheduleError(f"{call}: {axis.name} was fused into "
                                    f"{rel.fused.name}; use that loop")
        owner = _owner(self._schedule.data, axis)
        if owner is not None and owner != self.name:
            raise ScheduleError(f"{call}: {axis.name} is an axis of "
                                f"{owner}, not of {self.name}; use s[{owner}] or "
                                f"{self.name}'s own axes ({_names(state.leaves)})")
        raise ScheduleError(f"{call}: {axis.name} is not an axis of "
                            f"{self.name}; its loops are {_names(state.leaves)}")

    def _require_computed(self, primitive: str, call: str | None = None) -> None:
        if self.state.inlined:
            raise ScheduleError(f"{call or self._call(primitive)}: {self.name} is inlined "
                                "(compute_inline) and has no loops; compute_root() it first")

    # -- loop transformations ------------------------------------------------------
    # Each has a pure part (`_split`, `_reorder`, ...: state in, state out, nothing
    # committed) so that `tile` can compose them and commit once, or not at all.
    def split(self, parent: IterVar, factor: int | None = None, nparts: int | None = None):
        """Split `parent` into (outer, inner) with parent == outer * factor + inner.

        >>> io, ii = s[C].split(i, factor=16)
        """
        text = f"split({getattr(parent, 'name', parent)}, " + (
            f"factor={factor!r})" if nparts is None else f"nparts={nparts!r})")
        state, outer, inner = self._split(self.state, parent, factor, nparts, self._call(text))
        self._apply(state, self._call(text), result=f"{outer.name}, {inner.name}",
                    moved=((parent, inner),))
        return outer, inner

    def _split(self, state: StageState, parent, factor, nparts, call: str):
        self._require_computed("split", call)
        parent = self._require_leaf(parent, "split", call, state)
        if (factor is None) == (nparts is None):
            raise ScheduleError(f"{call}: give exactly one of factor= and nparts=")
        if nparts is not None:
            _positive(nparts, "nparts", call)
            if not isinstance(parent.extent, Const):
                raise ScheduleError(
                    f"{call}: nparts= needs a constant extent, and {parent.name} "
                    f"runs over {parent.extent}; use factor= instead")
            factor = -(-parent.extent.value // nparts)
        _positive(factor, "factor", call)
        outer = new_axis(f"{parent.name}_outer", ceil_div(parent.extent, factor), parent.kind)
        inner = new_axis(f"{parent.name}_inner", Const(factor, parent.extent.dtype), parent.kind)
        k = _index(state.leaves, parent)
        leaves = state.leaves[:k] + (outer, inner) + state.leaves[k + 1:]
        kinds = tuple((iv, kd) for iv, kd in state.kinds if iv is not parent)
        return replace(state, leaves=leaves, kinds=kinds, relations=state.relations +
                       (Split(parent, outer, inner, factor),)), outer, inner

    def tile(self, x_parent: IterVar, y_parent: IterVar, x_factor: int, y_factor: int):
        """Split both axes and order the loops (x_outer, y_outer, x_inner, y_inner); one
        step: if any part is refused, nothing is applied.

        >>> io, jo, ii, ji = s[C].tile(i, j, 16, 8)
        """
        call = self._call(f"tile({getattr(x_parent, 'name', x_parent)}, "
                          f"{getattr(y_parent, 'name', y_parent)}, {x_factor}, {y_factor})")
        state, xo, xi = self._split(self.state, x_parent, x_factor, None, call)
        state, yo, yi = self._split(state, y_parent, y_factor, None, call)
        state = self._reorder(state, (xo, yo, xi, yi), call)
        self._apply(state, call, result=f"{xo.name}, {yo.name}, {xi.name}, {yi.name}",
                    moved=((x_parent, xi), (y_parent, yi)))
        return xo, yo, xi, yi

    def reorder(self, *axes: IterVar) -> None:
        """Run the given loops in this order, in the positions they occupy now.

        >>> s[C].reorder(io, jo, ko, ii, ki, ji)
        """
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        call = self._call(f"reorder({', '.join(getattr(a, 'name', str(a)) for a in axes)})")
        self._apply(self._reorder(self.state, axes, call), call)

    def _reorder(self, state: StageState, axes, call: str) -> StageState:
        self._require_computed("reorder", call)
        axes = tuple(self._require_leaf(a, "reorder", call, state) for a in axes)
        if len(set(map(id, axes))) != len(axes):
            raise ScheduleError(f"{call}: a loop is listed twice")
        positions = sorted(_index(state.leaves, a) for a in axes)
        leaves = list(state.leaves)
        for pos, axis in zip(positions, axes):
            leaves[pos] = axis
        return replace(state, leaves=tuple(leaves))

    def fuse(self, *axes: IterVar) -> IterVar:
        """Fuse adjacent loops (outermost first) into one loop over all their iterations.

        >>> f = s[C].fuse(io, jo)
        """
        call = self._call(f"fuse({', '.join(getattr(a, 'name', str(a)) for a in axes)})")
        self._require_computed("fuse", call)
        if len(axes) < 2:
            raise ScheduleError(f"{call}: fuse needs at least two loops")
        axes = tuple(self._require_leaf(a, "fuse", call) for a in axes)
        state = self.state
        first = _index(state.leaves, axes[0])
        if [_index(state.leaves, a) for a in axes] != list(range(first, first + len(axes))):
            raise ScheduleError(
                f"{call}: fused loops must be adjacent and in order (outermost "
                f"first); the loops of {self.name} are {_names(state.leaves)}. Reorder first")
        kinds = {a.kind for a in axes}
        if len(kinds) > 1:
            raise ScheduleError(f"{call}: cannot fuse data loops with reduction "
                                f"loops ({_names(axes)})")
        relations = state.relations
        fused = axes[0]
        for inner in axes[1:]:
            if not isinstance(inner.extent, Const):
                raise ScheduleError(
                    f"{call}: the inner loop {inner.name} runs over {inner.extent}, "
                    "which is not a constant, and fused = outer * extent + inner must be "
                    f"affine for isl. Split {inner.name} by a constant first, or fuse loops "
                    "with constant extents")
            new = new_axis(f"{fused.name}_{inner.name}_fused", fused.extent * inner.extent,
                           inner.kind)
            relations = relations + (Fuse(fused, inner, new),)
            fused = new
        leaves = state.leaves[:first] + (fused,) + state.leaves[first + len(axes):]
        kinds_kept = tuple((iv, kd) for iv, kd in state.kinds if not any(iv is a for a in axes))
        self._apply(replace(state, leaves=leaves, relations=relations, kinds=kinds_kept), call,
                    result=fused.name, moved=tuple((a, fused) for a in axes))
        return fused

    # -- loop kinds ----------------------------------------------------------------
    def _annotate(self, axis: IterVar, kind: str, text: str) -> None:
        self._require_computed(text)
        axis = self._require_leaf(axis, text)
        self._apply(self.state.with_kind(axis, kind), self._call(text), focus=(self._key, axis))

    def parallel(self, axis: IterVar) -> None:
        """Run the loop's iterations on parallel threads (OpenMP); it must carry no
        dependence."""
        self._annotate(axis, "parallel", f"parallel({getattr(axis, 'name', axis)})")

    def vectorize(self, axis: IterVar) -> None:
        """Run the loop's iterations as SIMD lanes (`omp simd`); it must carry no dependence."""
        self._annotate(axis, "vectorize", f"vectorize({getattr(axis, 'name', axis)})")

    def unroll(self, axis: IterVar) -> None:
        """Unroll the loop in the generated source (constant trip counts are unrolled fully)."""
        self._annotate(axis, "unroll", f"unroll({getattr(axis, 'name', axis)})")

    def bind(self, axis: IterVar, thread: str) -> None:
        """Map the loop to a GPU grid or block dimension ("blockIdx.x", "threadIdx.y", ...)."""
        if thread not in GPU_TAGS:
            raise ScheduleError(f"{self._call('bind')}: the thread tag must be one of "
                                f"{', '.join(GPU_TAGS)}; got {thread!r}")
        self._annotate(axis, thread, f"bind({getattr(axis, 'name', axis)}, {thread!r})")

    # -- placement -----------------------------------------------------------------
    def compute_at(self, parent: "Stage", axis: IterVar) -> None:
        """Compute this stage inside loop `axis` of `parent`: per iteration, exactly the
        region that iteration reads, in storage private to it.

        >>> s[P].compute_at(s[C], jo)
        """
        text = f"compute_at(s[{getattr(parent, 'name', parent)}], {getattr(axis, 'name', axis)})"
        if not isinstance(parent, Stage) or parent._schedule is not self._schedule:
            raise ScheduleError(f"{self._call(text)}: the first argument must be a stage of "
                                "this schedule, e.g. s[C]")
        if parent._key is self._key:
            raise ScheduleError(f"{self._call(text)}: a stage cannot be computed inside itself")
        parent._require_computed("compute_at", self._call(text))
        axis = parent._require_leaf(axis, "compute_at", self._call(text))
        self._require_movable(text)
        if self._key not in _needed_by(self._schedule.data, parent._key):
            raise ScheduleError(
                f"{self._call(text)}: {parent.name} does not need {self.name}, neither "
                f"directly nor through other stages, so there is nothing to compute inside "
                f"its loop. compute_at places a producer inside a loop of a stage that uses "
                f"its values")
        self._apply(replace(self.state, attach=(parent._key, axis)), self._call(text))

    def compute_root(self) -> None:
        """Compute the whole stage at the root, before its consumers (the default)."""
        self._apply(replace(self.state, attach=None), self._call("compute_root()"))

    def compute_inline(self) -> None:
        """Substitute this stage's expression into its consumers; it gets no loops and no
        storage."""
        text = self._call("compute_inline()")
        op = self.state.op
        if not isinstance(op, ComputeOp):
            raise ScheduleError(f"{text} is illegal: {self.name} is an update definition (a "
                                "recurrence); only pure computes can be inlined")
        if op.reduce_axis:
            raise ScheduleError(
                f"{text} is illegal: {self.name} is a reduction ({op.body.reducer.name} over "
                f"{_names(op.reduce_axis)}), and inlining it would recompute the whole "
                "reduction at every use. Keep it as a stage: compute_root() or compute_at() it")
        self._require_movable("compute_inline()")
        data = self._schedule.data
        for key in data.order:
            attach = data.states[key].attach
            if isinstance(attach, tuple) and attach[0] is self._key:
                raise ScheduleError(f"{text}: {data.states[key].op.name} is computed inside a "
                                    f"loop of {self.name}; move it first")
        self._apply(replace(self.state, attach="inline", kinds=()), text)

    def _require_movable(self, text: str) -> None:
        data = self._schedule.data
        if any(t.op is self.state.op or data.key_of(t.op) is self._key for t in data.outputs):
            raise ScheduleError(f"{self._call(text)}: {self.name} is an output of the schedule; "
                                "its values go to the caller's array, so it stays at the root")
        if isinstance(self.state.op, UpdateOp) or any(
                isinstance(data.states[k].op, UpdateOp) and
                data.key_of(data.states[k].op.base.op) is self._key for k in data.order):
            raise ScheduleError(f"{self._call(text)}: {self.name} has update definitions (a "
                                "recurrence); its stages stay at the root")

    def storage_align(self, axis: IterVar, factor: int, offset: int) -> None:
        """Pad the stride of `axis`'s dimension so that stride % factor == offset
        (avoids cache conflicts of power-of-two row lengths).

        >>> s[B].storage_align(B.op.axis[0], 16, 1)
        """
        text = f"storage_align({getattr(axis, 'name', axis)}, {factor}, {offset})"
        op = self.state.op
        axes = getattr(op, "axis", ())
        if not any(a is axis for a in axes):
            raise ScheduleError(f"{self._call(text)}: the axis must be a data axis of "
                                f"{self.name} ({_names(axes)})")
        _positive(factor, "factor", self._call(text))
        if not isinstance(offset, int) or not 0 <= offset < factor:
            raise ScheduleError(f"{self._call(text)}: offset must be in 0..{factor - 1}")
        dim = _index(axes, axis)
        align = tuple(a for a in self.state.align if a[0] != dim) + ((dim, factor, offset),)
        self._apply(replace(self.state, align=align), self._call(text))


    def reorder_storage(self, *axes: IterVar) -> None:
        """Lay out this stage's buffer with its dimensions in the order of `axes`, the
        outermost first (each data axis once): the last is contiguous. The loops do not
        change, only the addresses (TVM's transform_layout with a permutation; Halide's
        reorder_storage, which lists the innermost first). A tile copied into local
        storage (cache_read) can so be read along another dimension as vectors. The
        kernel's arguments keep the caller's row-major layout.

        >>> WL = s.cache_read(W, "local", [C])          # W[k, c]: read along k
        >>> s[WL].reorder_storage(*reversed(WL.op.axis))   # k contiguous
        """
        names = ", ".join(getattr(a, "name", repr(a)) for a in axes)
        call = self._call(f"reorder_storage({names})")
        op = self.state.op
        data_axes = tuple(getattr(op, "axis", ()))
        if isinstance(op, UpdateOp) or not isinstance(op, ComputeOp):
            raise ScheduleError(f"{call}: {self.name} is not a compute stage with storage of "
                                "its own; reorder the storage of the stage that defines it")
        if self.state.inlined:
            raise ScheduleError(f"{call}: {self.name} is inlined (compute_inline) and has no "
                                "storage to lay out")
        if any(t.op is op or self._schedule.data.key_of(t.op) is self._key
               for t in self._schedule.outputs):
            raise ScheduleError(f"{call}: {self.name} is an output; its layout is the "
                                "caller's array (row-major). Reorder the storage of an "
                                f"intermediate, such as s.cache_write({self.name}, 'local')")
        order = []
        for a in axes:
            if not any(a is d for d in data_axes):
                raise ScheduleError(f"{call}: {getattr(a, 'name', a)!s} is not a data axis "
                                    f"of {self.name}; its data axes are {_names(data_axes)}")
            order.append(_index(data_axes, a))
        if sorted(order) != list(range(len(data_axes))):
            raise ScheduleError(f"{call}: name every data axis of {self.name} once "
                                f"({_names(data_axes)}); got {len(axes)} axes")
        identity = tuple(order) == tuple(range(len(data_axes)))
        self._apply(replace(self.state, storage_order=() if identity else tuple(order)), call)

    def prefetch(self, tensor, axis: IterVar, offset: int = 1) -> None:
        """Fetch into the cache, while this stage runs, what it will read from `tensor`
        `offset` iterations of loop `axis` later (TVM's prefetch(tensor, var, offset);
        Halide's prefetch(f, at, from, offset)). The hints are spread through the loops
        inside `axis`: each iteration asks for its own share of the data of iteration
        `axis + offset`, a vector at a time, so they overlap with the work instead of
        coming in one burst at the top of `axis` (on a row softmax a burst gained
        nothing; spread, the next row arrives while this one is computed).

        The typical use is a pipeline computed row by row that reads a row more than
        once (softmax, layernorm): its last pass over the row fetches the next one.

        >>> s[E].prefetch(X, E.op.axis[0])        # E runs per row of X: fetch row i + 1

        A stage may also prefetch its own output: the hint is then for a write (x86
        `prefetchw`), so the line arrives owned and the store does not stall on the
        read-for-ownership of a store miss. It pays where a stage writes its row after
        work on other data (a softmax's last pass): the hardware prefetchers follow
        loads, not stores.

        >>> s[Y].prefetch(Y, Y.op.axis[0])        # Y's own row i + 1, for the write

        `axis` is a loop of this stage, an axis or a split of one (a fused loop has no
        single step to move along). `tensor` must be an argument or a stage computed at
        the root. The hints change no result: a prefetch never faults, even past the
        end of an array. The CUDA backend ignores them.
        """
        name = getattr(tensor, "name", repr(tensor))
        call = self._call(f"prefetch({name}, {getattr(axis, 'name', axis)}, {offset})")
        self._require_computed("prefetch", call)
        if not isinstance(tensor, Tensor):
            raise ScheduleError(f"{call}: expected the tensor to prefetch (a td.placeholder "
                                f"or a stage's output); got {type(tensor).__name__}")
        data = self._schedule.data
        read = _reads(data, self.state.op)
        key = data.key_of(tensor.op)
        if key is not None and data.states[key].inlined:
            inputs = ", ".join(t.name for t in _reads(data, tensor.op))
            raise ScheduleError(f"{call}: {name} is inlined (compute_inline) into "
                                f"{self.name}, so there is no buffer to prefetch; prefetch "
                                f"what it reads ({inputs})")
        if not any(t.op is tensor.op for t in read) and tensor.op is not self.state.op:
            reads = ", ".join(t.name for t in read) or "nothing"
            raise ScheduleError(f"{call}: {self.name} neither reads nor writes {name} (it "
                                f"reads {reads} and writes {self.name}); prefetch in the "
                                "stage that reads it, or a stage's own output for the write")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset == 0:
            raise ScheduleError(f"{call}: offset must be a nonzero integer constant (the "
                                f"iterations to look ahead); got {offset!r}")
        axis = self._require_leaf(axis, "prefetch", call)
        moves = root_step(self.state, axis)
        if isinstance(moves, Fuse):
            raise ScheduleError(
                f"{call}: {axis.name} comes from fusing {moves.outer.name} and "
                f"{moves.inner.name}, so its next iteration is not one step along an "
                "axis; prefetch along a loop that is an axis or a split of one")
        root, step = moves
        hint = Prefetch(tensor, root, offset * step, write=tensor.op is self.state.op)
        kept = tuple(p for p in self.state.prefetches
                     if not (p.tensor.op is tensor.op and p.axis is root))
        self._apply(replace(self.state, prefetches=kept + (hint,)), call)


def _reads(data: ScheduleData, op) -> list:
    """The tensors `op` reads, through the producers inlined into it."""
    found, stack = [], list(op.input_tensors)
    while stack:
        t = stack.pop()
        if any(t.op is f.op for f in found):
            continue
        key = data.key_of(t.op)
        if key is not None and data.states[key].inlined:
            stack.extend(data.states[key].op.input_tensors)
        else:
            found.append(t)
    return found


def _positive(value, name: str, call: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ScheduleError(f"{call}: {name} must be a positive integer constant; got {value!r}")


def _index(seq, item) -> int:
    for k, x in enumerate(seq):
        if x is item:
            return k
    raise ValueError(item)


def _names(axes) -> str:
    return ", ".join(a.name for a in axes)


def _owner(data: ScheduleData, axis: IterVar) -> str | None:
    for key in data.order:
        state = data.states[key]
        if any(a is axis for a in root_axes(state.op)) or axis in derived_from(state):
            return state.op.name
    return None


def _needed_by(data: ScheduleData, key) -> set:
    """Stages whose values stage `key` needs, directly or through other stages (Halide and
    TVM let a producer be computed at a loop of any stage that needs it; whether the
    placement is legal is isl's question, answered when the schedule is checked)."""
    readers = [key] + [k for k in data.order if _inside(data, k, key)]
    found = set()
    stack = list(readers)
    while stack:
        k = stack.pop()
        for t in data.states[k].op.input_tensors:
            pk = data.key_of(t.op)
            if pk is None or pk in found:
                continue
            found.add(pk)
            stack.append(pk)
    return found


def _inside(data: ScheduleData, key, ancestor) -> bool:
    """Is stage `key` computed (transitively) inside a loop of stage `ancestor`?"""
    seen = set()
    while isinstance(data.states[key].attach, tuple) and key not in seen:
        seen.add(key)
        key = data.states[key].attach[0]
        if key is ancestor:
            return True
    return False
