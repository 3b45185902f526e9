"""`Schedule` and `Stage`: the Halide/TVM-style schedule language.

Every primitive follows one pattern: validate its arguments, compute the new
schedule state, prove it legal with isl (`legality.check`), and only then adopt
it. A refused primitive raises `ScheduleError` and changes nothing.

>>> s = td.create_schedule(C)
>>> io, ii = s[C].split(C.op.axis[0], factor=8)
>>> s[C].parallel(io)
"""

from __future__ import annotations

import contextlib

from ..errors import ScheduleError
from ..lang.expr import IterVar
from ..lang.graph import as_tensor_list, topo_order
from ..lang.tensor import Operation, PlaceholderOp, Tensor
from ..poly import isl_lessons
from . import legality
from .data import ScheduleData
from .stage import Stage
from .state import StageState, initial_state

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
        self._calls: list[tuple] = []       # ((stage, axes, reduce axes), line) for script()
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
            with isl_lessons("the analysis of this schedule"):
                self._analysis = (self._data, legality.analyze(self._data))
        return self._analysis[1]

    @contextlib.contextmanager
    def deferred_checks(self):
        """Apply primitives without proving each one legal, and prove the whole schedule
        once on leaving: if it is illegal, ScheduleError (the lesson) and the schedule goes
        back to where it was. For code that applies many primitives it expects to be legal
        (td.tune realizing candidates): one isl analysis instead of one per primitive.

        >>> with s.deferred_checks():
        ...     s[C].parallel(i); s[C].vectorize(j)
        """
        if getattr(self, "_defer", False):        # inside another: that one checks
            yield self
            return
        token = self.checkpoint()
        self._defer = True
        try:
            yield self
        except BaseException:
            self._defer = False
            self.restore(token)
            raise
        self._defer = False
        try:
            self.check()
        except ScheduleError:
            self.restore(token)
            raise

    def check(self) -> None:
        """Prove the schedule as it is now legal (ScheduleError, the lesson, if it is not);
        inside `deferred_checks`, where primitives are not checked one by one."""
        if self._analysis is not None and self._analysis[0] is self._data and \
                self._analysis[1] is not None:
            return                                  # proven when it was committed
        self._analysis = (self._data, legality.check(self._data, "the schedule"))

    def _commit(self, data: ScheduleData, call: str, focus=None, result: str = "") -> None:
        analysis = None if getattr(self, "_defer", False) else legality.check(data, call, focus)
        self._data = data
        self._analysis = (data, analysis) if analysis is not None else None
        self.history.append(call + (f"  -> {result}" if result else ""))
        code = _parent_axis_by_position(data, call)
        self._calls.append((_stage_axes(data, call), f"{result} = {code}" if result else code))

    def script(self) -> str:
        """The schedule as Python a user can paste after the compute definitions (the
        tensors under their own names, the schedule as `s`): each stage's axes bound from
        its op before the calls that use them, each primitive's results assigned.

        >>> print(s.script())
        i, j = C.op.axis
        (k,) = C.op.reduce_axis
        i_outer, i_inner = s[C].split(i, factor=8)
        """
        lines, bound = [], None
        for (stage, axes, reduce_axes), line in self._calls:
            if stage is not None and stage != bound:
                for names, field in ((axes, "axis"), (reduce_axes, "reduce_axis")):
                    if names:
                        target = names[0] + "," if len(names) == 1 else ", ".join(names)
                        lines.append(f"{target if len(names) > 1 else '(' + target + ')'} = "
                                     f"{stage}.op.{field}")
                bound = stage
            lines.append(line)
        return "\n".join(lines)

    def checkpoint(self) -> tuple:
        """A token for `restore`: the schedule as it is now (primitives never change a
        schedule's earlier states, so this is cheap)."""
        return (self._data, len(self.history), self._analysis)

    def restore(self, token: tuple) -> None:
        """Go back to the state a `checkpoint()` recorded, forgetting later primitives.

        >>> cp = s.checkpoint(); s[C].parallel(i); s.restore(cp)
        """
        data, length, analysis = token
        self._data, self._analysis = data, analysis
        del self.history[length:]
        del self._calls[length:]

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
        lines += [f"  {h}" for h in self.script().splitlines()] or \
            ["  (default: every stage at the root)"]
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


def _parent_axis_by_position(data: ScheduleData, call: str) -> str:
    """`s[P].compute_at(s[C], i)` with C's root axis written `C.op.axis[0]`: in a script
    the name `i` may be bound to another stage's axis by then."""
    marker = ".compute_at(s["
    if marker not in call:
        return call
    head, rest = call.split(marker, 1)
    parent, axis = rest[:rest.index("]")], rest[rest.index("],") + 2:-1].strip()
    for key in data.order:
        op = data.states[key].op
        if op.name == parent:
            for field in ("axis", "reduce_axis"):
                names = [a.name for a in getattr(op, field, ())]
                if axis in names:
                    return f"{head}{marker}{parent}], {parent}.op.{field}[{names.index(axis)}])"
    return call


def _stage_axes(data: ScheduleData, call: str) -> tuple:
    """(stage name, its axes' names, its reduction axes' names) of a call `s[NAME]....`;
    (None, (), ()) for a call on the schedule (`s.cache_write(...)`)."""
    if not call.startswith("s["):
        return None, (), ()
    name = call[2:call.index("]")]
    for key in data.order:
        op = data.states[key].op
        if op.name == name:
            return (name, tuple(a.name for a in getattr(op, "axis", ())),
                    tuple(a.name for a in getattr(op, "reduce_axis", ())))
    return None, (), ()


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
