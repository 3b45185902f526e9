"""From a schedule's stages to the program the polyhedral layer analyzes.

Inlined stages are substituted into their consumers; every other stage becomes
statements (a reduction is an init and an update, as DESIGN.md's reference
order says) nested in its loops, with stages computed at a loop placed at the
start of that loop's body.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..errors import ScheduleError, TdslValueError
from ..lang.expr import Expr, Load, Reduce
from ..lang.tensor import ComputeOp, PlaceholderOp, Tensor, UpdateOp
from ..lang.visit import substitute, transform, walk
from ..lang.names import C_RESERVED, unique_name
from ..poly.program import Array, Loop, Prefetch, Program, Statement
from .state import StageState, is_reduce_leaf, leaf_values


class ProgramBuilder:
    """Builds one `Program` from a schedule's data; see `build_program`."""

    def __init__(self, data, args: Sequence[Tensor], name: str):
        self.data = data
        self.name = name
        self.args = list(args)
        self._bodies: dict[int, Expr] = {}
        self.arrays: dict[object, Array] = {}       # stage key (or placeholder op) -> Array
        self.array_of: dict[int, Array] = {}
        self.statements: dict[object, list[Statement]] = {}
        self.attach: dict[str, Loop] = {}
        self._names: set[str] = set(C_RESERVED)  # array names (never a C library name)
        self._stmt_names: set[str] = set()     # statement names (a separate namespace)
        self._placed: set = set()

    # -- inlining ------------------------------------------------------------------
    def body(self, op) -> Expr:
        """The op's body with every inlined producer substituted."""
        if id(op) not in self._bodies:
            self._bodies[id(op)] = transform(op.body if isinstance(op, ComputeOp) else op.value,
                                             self._inline_load)
        return self._bodies[id(op)]

    def _inline_load(self, node: Expr):
        if not isinstance(node, Load):
            return None
        key = self.data.key_of(node.tensor.op)
        state = self.data.states.get(key)
        if state is None or not state.inlined:
            return None
        producer = state.op
        return substitute(self.body(producer), dict(zip(producer.axis, node.indices)))

    # -- arrays --------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        return unique_name(name, self._names)

    def _stmt(self, name: str) -> str:
        return unique_name(name, self._stmt_names)

    def build_arrays(self) -> None:
        outputs = {self._storage_key(self.data.key_of(t.op)) for t in self.args
                   if not isinstance(t.op, PlaceholderOp)}
        for op in self.data.placeholders:
            arr = Array(self._unique(op.name), op.dtype, op.shape, "input")
            self.arrays[op] = arr
            self.array_of[id(op)] = arr
        for key in self.data.order:
            state = self.data.states[key]
            if state.inlined:
                continue
            if isinstance(state.op, UpdateOp):
                base_key = self.data.key_of(state.op.base.op)
                arr = self.arrays[self._storage_key(base_key)]
            else:
                role = "output" if key in outputs else "temp"
                if role == "output" and state.storage_order:
                    raise ScheduleError(
                        f"{state.op.name} is an argument of the kernel, whose layout is the "
                        f"caller's array (row-major): s[{state.op.name}].reorder_storage(...) "
                        "applies to intermediates only")
                arr = Array(self._unique(state.op.name), state.op.dtype, state.op.shape, role,
                            state.scope, state.align, state.storage_order)
            self.arrays[key] = arr
            for op in self.data.ops_of(key):
                self.array_of[id(op)] = arr

    def _storage_key(self, key):
        state = self.data.states[key]
        while isinstance(state.op, UpdateOp):
            key = self.data.key_of(state.op.base.op)
            state = self.data.states[key]
        return key

    # -- statements ----------------------------------------------------------------
    def build_statements(self) -> None:
        for s, key in enumerate(self.data.order):
            state = self.data.states[key]
            if not state.inlined:
                stmts = self._stage_statements(s, key, state)
                self.statements[key] = [self._with_prefetches(st, state) for st in stmts] \
                    if state.prefetches else stmts

    def _with_prefetches(self, st: Statement, state: StageState) -> Statement:
        """`st` with the stage's prefetch hints that apply to it: those of tensors it
        reads, along one of its axes (a reduction's init reads nothing), and those of its
        own output, for the write."""
        hints = []
        for p in state.prefetches:
            if p.write:                 # the stage's own array (also after a cache_write)
                if any(d is p.axis for d in st.dims):
                    hints.append(Prefetch(st.target, p.axis, p.shift, write=True))
                continue
            call = f"s[{state.op.name}].prefetch({p.tensor.name}, ...)"
            arr = self.array_of.get(id(p.tensor.op))
            if arr is None:
                raise ScheduleError(f"{call}: {p.tensor.name} is inlined (compute_inline), so "
                                    "there is no buffer to prefetch; prefetch what it reads")
            loads = [n for n in walk(st.value) if isinstance(n, Load) and
                     self.array_of.get(id(n.tensor.op)) is arr]
            if not loads or not any(d is p.axis for d in st.dims):
                continue
            if any(isinstance(x, Load) for n in loads for i in n.indices for x in walk(i)):
                raise ScheduleError(f"{call}: {state.op.name} reads {p.tensor.name} at an "
                                    "index that is itself read from memory (a gather); the "
                                    "address ahead is not known, so it cannot be prefetched")
            hints.append(Prefetch(arr, p.axis, p.shift))
        return replace(st, prefetches=tuple(hints))

    def _stage_statements(self, s: int, key, state: StageState) -> list[Statement]:
        op, arr = state.op, self.arrays[key]
        stage = op.name
        if isinstance(op, UpdateOp):
            body = self.body(op)
            index = tuple(transform(i, self._inline_load) for i in op.index)
            return [Statement(self._stmt(stage), stage, "recurrence",
                              op.axis + op.reduce_axis, arr, index, body,
                              ref_order=(s, *op.axis, *op.reduce_axis))]
        body = self.body(op)
        axis = op.axis
        if not isinstance(body, Reduce):
            return [Statement(self._stmt(stage), stage, "compute", axis, arr, axis, body,
                              ref_order=(s, *axis))]
        identity = body.reducer.identity(body.dtype)
        acc, value, combined = body.reducer.combine_expr(body.dtype)
        current = Load(op.output(0), axis)
        update_value = substitute(combined, {acc: current, value: body.body})
        init = Statement(self._stmt(f"{stage}_init"), stage, "init", axis, arr, axis, identity,
                         ref_order=(s, *axis, 0))
        update = Statement(self._stmt(f"{stage}_update"), stage, "update",
                           axis + body.axes, arr, axis, update_value, where=body.where,
                           reduction=True, ref_order=(s, *axis, 1, *body.axes))
        return [init, update]

    # -- loops ---------------------------------------------------------------------
    def stage_nodes(self, key, visiting: frozenset = frozenset()) -> tuple:
        if key in visiting:
            raise ScheduleError(f"compute_at cycle: {key.name} is computed inside itself")
        visiting = visiting | {key}
        self._placed.add(key)
        state = self.data.states[key]
        stmts = self.statements[key]
        values = leaf_values(state)
        if len(stmts) == 1:
            return self._nest(key, state, list(state.leaves), stmts, values, visiting)
        init, update = stmts
        reduce_at = [k for k, leaf in enumerate(state.leaves) if is_reduce_leaf(state, leaf)]
        p = reduce_at[0] if reduce_at else len(state.leaves)
        init_leaves = [leaf for leaf in state.leaves[p:] if not is_reduce_leaf(state, leaf)]
        inner = self._nest(key, state, init_leaves, [init], values, visiting, attach=False) + \
            self._nest(key, state, list(state.leaves[p:]), [update], values, visiting)
        return self._nest(key, state, list(state.leaves[:p]), list(inner), values, visiting,
                          own=[init, update])

    def _nest(self, key, state, leaves, inner, values, visiting, attach=True, own=None):
        own = own if own is not None else [n for n in inner if isinstance(n, Statement)]
        body = tuple(inner)
        for leaf in reversed(leaves):
            producers = self.data.attached_at(key, leaf) if attach else []
            nodes, allocs = [], []
            for producer in producers:
                nodes.extend(self.stage_nodes(producer, visiting))
                allocs.append(self.arrays[producer])
            loop = Loop(leaf, state.op.name, state.kind_of(leaf),
                        {s.name: values[leaf] for s in own}, (*nodes, *body), tuple(allocs))
            for arr in allocs:
                self.attach[arr.name] = loop
            body = (loop,)
        return body

    def build(self) -> Program:
        self.build_arrays()
        self.build_statements()
        body = []
        for key in self.data.order:
            state = self.data.states[key]
            if state.attach is None:
                body.extend(self.stage_nodes(key))
        for key in self.data.order:
            state = self.data.states[key]
            if not state.inlined and key not in self._placed:
                parent, leaf = state.attach
                raise ScheduleError(
                    f"{state.op.name} is computed at loop {leaf.name} of "
                    f"{self.data.states[parent].op.name}, which is no longer a loop of it "
                    f"(its loops are {', '.join(v.name for v in self.data.states[parent].leaves)}"
                    f"); compute_at {state.op.name} again")
        self._check_prefetches()
        arrays = tuple(dict.fromkeys(self.arrays.values()))
        return Program(self.name, arrays, self.array_of, tuple(body), size_params(self.args),
                       self.attach)

    def _check_prefetches(self) -> None:
        """Every prefetch hint applies somewhere, to a buffer shared by all iterations."""
        for key in self.data.order:
            state = self.data.states[key]
            for p in () if state.inlined else state.prefetches:
                call = f"s[{state.op.name}].prefetch({p.tensor.name}, {p.axis.name}, ...)"
                hinted = [h for st in self.statements[key] for h in st.prefetches
                          if h.dim is p.axis and h.write == p.write and
                          (p.write or h.array is self.array_of[id(p.tensor.op)])]
                if not hinted:
                    access = "writes" if p.write else "reads"
                    raise ScheduleError(
                        f"{call}: {state.op.name} no longer {access} {p.tensor.name} along "
                        f"{p.axis.name} (a later cache_read, cache_write or rfactor rewrote "
                        f"it); prefetch in the stage that {access} it now")
                arr = hinted[0].array
                if arr.name in self.attach or arr.scope != "global":
                    raise ScheduleError(
                        f"{call}: {p.tensor.name} is a buffer private to a loop (computed "
                        "at another stage, or in local storage), already in the cache where "
                        "it is read; prefetch an argument or a stage computed at the root")


def size_params(args: Sequence[Tensor]) -> tuple:
    """The symbolic sizes of the arguments' shapes, in first-seen order."""
    from ..lang.expr import Var
    from ..lang.visit import free_vars
    seen = []
    for t in args:
        for d in t.shape:
            for v in free_vars(d):
                if isinstance(v, Var) and not any(v is x for x in seen):
                    seen.append(v)
    return tuple(seen)


def build_program(data, args: Sequence[Tensor], name: str = "kernel") -> Program:
    """The program of the schedule `data` for a kernel taking `args`."""
    return ProgramBuilder(data, args, name).build()


def check_args(data, args: Sequence[Tensor]) -> list[Tensor]:
    """The argument list, checked: every placeholder and output present, nothing foreign."""
    from ..lang.graph import as_tensor_list
    args = as_tensor_list(args, "args")
    keys = set()
    for t in args:
        if isinstance(t.op, PlaceholderOp):
            if t.op not in data.placeholders:
                raise TdslValueError(f"args: {t.name} is not used by this schedule")
            continue
        key = data.key_of(t.op)
        if key is None:
            raise TdslValueError(f"args: {t.name} is not computed by this schedule")
        if data.states[key].inlined:
            raise TdslValueError(f"args: {t.name} is inlined (compute_inline), so it has no "
                                 "storage to pass; remove it from args")
        if key in keys:
            raise TdslValueError(f"args: {t.name} is listed twice")
        keys.add(key)
    for op in data.placeholders:
        if op.output(0) not in args:
            raise TdslValueError(f"args is missing the input {op.name}: the schedule reads it, "
                                 f"so pass it, e.g. td.build(s, [{op.name}, ...])")
    for t in data.outputs:
        key = data.key_of(t.op)
        if key not in keys and not any(data.key_of(a.op) == key for a in args
                                       if not isinstance(a.op, PlaceholderOp)):
            raise TdslValueError(f"args is missing the output {t.name}: pass the tensor the "
                                 f"kernel should write, e.g. td.build(s, [..., {t.name}])")
    return args

