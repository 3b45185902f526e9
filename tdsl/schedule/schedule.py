"""`Schedule` and `Stage`: the Halide/TVM-style schedule language.

Every primitive follows one pattern: validate its arguments, compute the new
schedule state, prove it legal with isl (`legality.check`), and only then adopt
it. A refused primitive raises `ScheduleError` and changes nothing.

>>> s = td.create_schedule(C)
>>> io, ii = s[C].split(C.op.axis[0], factor=8)
>>> s[C].parallel(io)
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ScheduleError
from ..lang.expr import Const, IterVar
from ..lang.graph import as_tensor_list, topo_order
from ..lang.tensor import ComputeOp, Operation, PlaceholderOp, Tensor, UpdateOp
from . import legality
from .data import ScheduleData
from .state import (Fuse, Split, StageState, ceil_div, derived_from, initial_state, new_axis,
                    root_axes)

LOOP_KINDS = ("serial", "parallel", "vectorize", "unroll")
GPU_TAGS = ("blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y",
            "threadIdx.z")


class Schedule:
    """The schedule of a set of output tensors; `s[T]` is the stage computing T."""

    def __init__(self, outputs):
        outs = tuple(as_tensor_list(outputs, "create_schedule's outputs"))
        order = topo_order(outs)
        placeholders = tuple(op for op in order if isinstance(op, PlaceholderOp))
        keys = tuple(op for op in order if not isinstance(op, PlaceholderOp))
        if not keys:
            raise ScheduleError("create_schedule needs at least one computed tensor; "
                                f"{', '.join(t.name for t in outs)} are placeholders")
        self._data = ScheduleData(outs, placeholders, keys,
                                  {op: initial_state(op) for op in keys},
                                  tuple((op, op) for op in keys))
        self.history: list[str] = []
        self._analysis = None

    # -- access --------------------------------------------------------------------
    @property
    def data(self) -> ScheduleData:
        return self._data

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        return self._data.outputs

    @property
    def stages(self) -> list["Stage"]:
        return [Stage(self, key) for key in self._data.order]

    def __getitem__(self, item) -> "Stage":
        op = item.op if isinstance(item, Tensor) else item
        if isinstance(op, Stage):
            return op
        if not isinstance(op, Operation):
            raise ScheduleError(f"s[...] takes a tensor of the schedule; got {item!r}")
        key = self._data.key_of(op)
        if key is None:
            if isinstance(op, PlaceholderOp):
                raise ScheduleError(f"{op.name} is an input (placeholder): it has no stage to "
                                    "schedule. To stage a copy of it, use s.cache_read")
            raise ScheduleError(f"{op.name} is not computed by this schedule")
        return Stage(self, key)

    def analysis(self) -> "legality.Analysis":
        """The polyhedral analysis of the current schedule (program, isl model,
        dependences); cached until the next primitive. `td.poly` reads it."""
        if self._analysis is None or self._analysis[0] is not self._data:
            self._analysis = (self._data, legality.analyze(self._data))
        return self._analysis[1]

    def _commit(self, data: ScheduleData, call: str, focus=None, result: str = "") -> None:
        analysis = legality.check(data, call, focus)
        self._data = data
        self._analysis = (data, analysis)
        self.history.append(call + (f"  -> {result}" if result else ""))

    # -- graph-rewriting primitives --------------------------------------------------
    def cache_read(self, tensor: Tensor, scope: str, readers) -> Tensor:
        """A copy of `tensor` in `scope` that `readers` read instead; schedule the copy
        (usually compute_at into the reader) to stage a tile of it.

        >>> AA = s.cache_read(A, "local", [C])
        """
        from .rewrite import cache_read
        data, out, call = cache_read(self, tensor, scope, readers)
        self._commit(data, call, result=out.name)
        return out

    def cache_write(self, tensor: Tensor, scope: str) -> Tensor:
        """Compute `tensor` into a `scope` buffer, then copy it out once: the new stage
        holds the computation (and its reduction), `tensor`'s stage becomes the copy.

        >>> CC = s.cache_write(C, "local")
        """
        from .rewrite import cache_write
        data, out, call = cache_write(self, tensor, scope)
        self._commit(data, call, result=out.name)
        return out

    def rfactor(self, tensor: Tensor, axis: IterVar, factor_axis: int = 0) -> Tensor:
        """Factor the reduction of `tensor` over the loop `axis`: a new stage computes
        one partial result per value of `axis` (a data axis there, so it may run in
        parallel or as vector lanes), and `tensor` reduces the partial results.

        >>> ko, ki = s[S].split(k, factor=16)
        >>> SF = s.rfactor(S, ki)
        """
        from .rewrite import rfactor
        data, out, call = rfactor(self, tensor, axis, factor_axis)
        self._commit(data, call, result=out.name)
        return out

    # -- seeing it -----------------------------------------------------------------
    def show(self) -> str:
        """The schedule's history as the calls that made it, then each stage's loop nest."""
        names = ", ".join(t.name for t in self.outputs)
        lines = [f"Schedule of {names}"]
        lines += [f"  {h}" for h in self.history] or ["  (default: every stage at the root)"]
        regions = self._regions()
        for key in self._data.order:
            state = self._data.states[key]
            where = _placement(self._data, state)
            if key in regions:
                where = where[:-1] + f"; each iteration computes a region of shape " \
                                     f"[{regions[key]}], sized by isl)"
            lines.append(f"Stage {state.op.name}{where}:")
            if not state.inlined:
                lines += ["  " + line for line in legality.nest_lines(state)]
        return "\n".join(lines)

    def _regions(self) -> dict:
        """Stage key -> the shape of the region a compute_at stage computes per iteration."""
        attached = [k for k in self._data.order if isinstance(self._data.states[k].attach, tuple)]
        if not attached:
            return {}
        analysis = self.analysis()
        found = {}
        for key in attached:
            array = analysis.program.array_of.get(id(self._data.states[key].op))
            layout = analysis.model.layouts.get(array.name) if array is not None else None
            if layout is not None:
                found[key] = ", ".join(str(d) for d in layout.shape)
        return found

    __str__ = show

    def __repr__(self) -> str:
        return f"<Schedule of {', '.join(t.name for t in self.outputs)}: " \
               f"{len(self._data.order)} stages>"


def _placement(data: ScheduleData, state: StageState) -> str:
    if state.inlined:
        return " (inlined)"
    if isinstance(state.attach, tuple):
        parent = data.states[state.attach[0]].op.name
        return f" (computed at {parent}.{state.attach[1].name})"
    return ""


def create_schedule(outputs) -> Schedule:
    """The default schedule of `outputs`: every stage at the root, loops in axis order.

    >>> s = td.create_schedule(C)          # or td.create_schedule([C, D])
    """
    return Schedule(outputs)


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
        if self._key not in _producers_of(self._schedule.data, parent._key):
            raise ScheduleError(
                f"{self._call(text)}: {parent.name} does not read {self.name}, so there is "
                f"nothing to compute inside its loop. compute_at places a producer inside "
                f"a loop of a consumer of it")
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


def _producers_of(data: ScheduleData, key) -> set:
    """Stages read inside the loops of stage `key`: by it, by stages computed inside its
    loops, and through inlined stages."""
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
            if data.states[pk].inlined:
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
