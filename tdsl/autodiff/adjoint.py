"""Index-map inversion: one read `A[f(v)]` of a consumer, turned into a piece of A's adjoint.

The consumer C runs over its variables v (data axes and reduction axes). The read A[f(v)]
with adjoint g(v) contributes to element a of A's adjoint

    dA[a] += sum over {v in C's domain : f(v) == a, where(v)} of g(v)

which is written as a GATHER over A's index space, never a scatter: the equations
f_d(v) == a_d are solved for as many variables as possible (`affine.py`: unit coefficients
directly, `2 y + ry == a` as y = (a - ry) // 2 with the guard (a - ry) % 2 == 0); every
solved variable gets its range as a guard; equations left unsolved become guards; and
the variables left free become a new `td.reduce_axis` each, the guards its `where=`
(whose affine parts isl turns into exact loop bounds). With nothing free the piece is an
expression, `select(guards, g, 0)`, inlined into A's adjoint; else a reduction stage.

A read whose index depends on data (`A[idx[i]]`) is a gather only when no free variable
has to be searched for (`logp[i, label[i]]`: i is solved from a0, then a1 == label[a0] is
a guard); otherwise it becomes a scatter-add, a `td.update` over C's domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import TdslError
from ..lang import dtypes
from ..lang.expr import BinOp, Const, Expr, IterVar, Load, Select, all_of, cast, select
from ..lang.reduce import sum as sum_reducer
from ..lang.tensor import ComputeOp, Tensor, update
from ..lang.visit import free_vars, loads, same, substitute, transform
from .affine import Form, axis_bounds, occurs, parse, provably_nonneg
from .correlate import correlate
from .stages import axis_names, fresh_reduce_axis, named_compute

_SYMBOLIC = 1 << 62          # the "extent" of a symbolic axis when choosing what to solve


@dataclass(frozen=True)
class Piece:
    """One consumer's contribution to a tensor's adjoint: an expression over the tensor's
    axes (`at(indices)`), or a stage made once its name is known (`stage(name)`)."""

    source: str                                # the consumer's name
    at: Callable[[tuple[Expr, ...]], Expr] | None = None
    stage: Callable[[str], Tensor] | None = None
    # For a gather stage: its reduction read at any indices of the tensor (a crop reads
    # the adjoint of a padding at y + p: the sum is then made at the crop's indices).
    reduce_at: Callable[[tuple[Expr, ...]], Expr] | None = None


@dataclass
class _System:
    """The equations f_d(v) - a_d == 0 being solved, and what solving found."""

    equations: dict[int, Form]                # dimension -> form, still unsolved
    unknowns: list[IterVar]                   # consumer variables not yet solved
    solutions: dict[IterVar, Expr]
    divisible: list[Expr]                     # guards of solutions with a stride
    strides: dict[IterVar, tuple[Expr, int]] = field(default_factory=dict)  # v = num / c
    digits: list[tuple[Expr, Expr, int]] = field(default_factory=list)  # (atom, m, s)

    def eliminate_digits(self) -> None:
        """Solve `s y + r == m` for both y and r when r runs over [0, K) with K <= s (a
        window no larger than its stride: a 2 x 2 pool with stride 2): y = m // s and
        r = m % s, one solution or none, instead of a sum over r guarded by
        (m - r) % s == 0. Only where nothing else unknown is in the equation."""
        for d, form in list(self.equations.items()):
            unknown = [(v, form.coefficient(v)) for v in self.unknowns
                       if form.coefficient(v) != 0]
            if len(unknown) != 2 or any(occurs(v, atom) for v in self.unknowns
                                        for atom, _ in form.without(unknown[0][0])
                                        .without(unknown[1][0]).terms):
                continue
            (a, ca), (b, cb) = sorted(unknown, key=lambda t: abs(t[1]))
            if abs(ca) != 1 or abs(cb) < 2 or (ca > 0) != (cb > 0) or \
                    not (isinstance(a.start, Const) and a.start.value == 0) or \
                    not isinstance(a.extent, Const) or int(a.extent.value) > abs(cb):
                continue
            stride = abs(cb)
            m = (-(form.without(a).without(b)) * ca).expr()   # ca (b sign) stride y + r == m
            quotient, remainder = m // stride, m % stride
            self.digits += [(quotient, m, stride), (remainder, m, stride)]
            del self.equations[d]
            for v, solution in ((b, quotient), (a, remainder)):
                self.unknowns = [u for u in self.unknowns if u is not v]
                self._replace(v, solution)
                self.solutions[v] = solution

    def eliminate(self) -> bool:
        """Solve one equation for one variable (the largest range first); False if none."""
        best = None
        for d, form in self.equations.items():
            for v in self.unknowns:
                c = form.coefficient(v)
                rest = form.without(v)
                if c == 0 or any(occurs(v, atom) for atom, _ in rest.terms):
                    continue
                score = (_extent_rank(v), abs(c) == 1, v.kind == "data")
                if best is None or score > best[0]:
                    best = (score, d, v, c, rest)
        if best is None:
            return False
        _, d, v, c, rest = best
        if abs(c) == 1:                        # c v + rest == 0
            solution = (rest * -c).expr()
        else:
            numerator = (-rest).expr()
            self.divisible.append(numerator % abs(c) == 0)
            self.strides[v] = (numerator, c)
            solution = numerator // c
        del self.equations[d]
        self.unknowns = [u for u in self.unknowns if u is not v]   # not list.remove: ==
        self._replace(v, solution)
        self.solutions[v] = solution
        return True

    def _replace(self, v: IterVar, solution: Expr) -> None:
        mapping = {v: solution}
        for d, form in self.equations.items():
            replaced = Form((), form.const)
            for atom, c in form.terms:
                new = parse(solution) if atom is v else \
                    parse(substitute(atom, mapping)) if occurs(v, atom) else Form.atom(atom)
                replaced = replaced + new * c
            self.equations[d] = replaced
        self.solutions = {u: substitute(s, mapping) for u, s in self.solutions.items()}
        self.divisible = [substitute(g, mapping) for g in self.divisible]
        self.strides = {u: (substitute(n, mapping), c) for u, (n, c) in self.strides.items()}


def contribution(consumer: ComputeOp, load: Load, adjoint: Expr, where: Expr | None) -> Piece:
    """The piece of `load.tensor`'s adjoint from `load` in `consumer`, whose adjoint there is
    `adjoint` (an expression over the consumer's variables), under C's `where`."""
    target = load.tensor
    variables = [*consumer.axis, *consumer.reduce_axis]
    _check_ranges(consumer, variables)
    names = axis_names(target)
    axes = [IterVar(n, Const(0, dtypes.INDEX), s, "data") for n, s in zip(names, target.shape)]
    # Each equation lhs == rhs: one per dimension, except the digits of one flat index
    # (a flatten or reshape), which become the one equation flat == recomposed.
    pairs = {d: (e, a) for d, (e, a) in enumerate(zip(load.indices, axes))}
    pairs.update(_recompose_digits(load.indices, axes, target))
    pairs = {d: pair for d, pair in pairs.items() if pair is not None}
    system = _System({d: parse(lhs) - parse(rhs) for d, (lhs, rhs) in pairs.items()},
                     list(variables), {}, [])
    system.eliminate_digits()
    while system.eliminate():
        pass
    taken = set(names)
    single = {v: v.start for v in system.unknowns if _extent_rank(v) == 1}   # keepdims axes
    free = {v: fresh_reduce_axis(v, taken) for v in system.unknowns if v not in single}
    unsolved = free | single
    mapping = {u: substitute(s, unsolved) for u, s in system.solutions.items()} | unsolved
    residual = [substitute(pairs[d][0], mapping) == pairs[d][1] for d in system.equations]
    searched = {id(r) for r in free.values()}
    if any(loads(g) and any(id(x) in searched for x in free_vars(g)) for g in residual):
        return _scatter(consumer, load, adjoint, where, variables)
    bounds = {id(a): (Form(), parse(a.extent) - Form((), 1)) for a in axes}
    bounds |= {id(r): b for r in free.values() if (b := axis_bounds(r)) is not None}
    bounds |= _digit_bounds(system.digits, bounds)
    guards = _solution_guards(system, mapping, unsolved, bounds) + residual
    if where is not None:
        guards.append(substitute(where, mapping))
    body = _drop_true_conditions(substitute(adjoint, mapping), bounds)
    return _piece(consumer.name, target, axes, list(free.values()), guards, body)


def _digit_bounds(digits, bounds) -> dict:
    """Bounds of the digits m // s and m % s of eliminate_digits, for proving guards."""
    found = {}
    for atom, m, s in digits:
        if atom.op == "mod":
            found[id(atom)] = (Form(), Form((), s - 1))
            continue
        lo, hi = _lowest(parse(m), bounds), _lowest(-parse(m), bounds)
        if lo is not None and hi is not None:
            found[id(atom)] = (Form((), lo // s), Form((), -hi // s))
    return found


def _lowest(form: Form, bounds) -> int | None:
    """The least value of form over constant axis bounds, or None."""
    total = form.const
    for atom, c in form.terms:
        if id(atom) not in bounds:
            return None
        lo, hi = bounds[id(atom)]
        end = lo if c > 0 else hi
        if not end.is_const:
            return None
        total += c * end.const
    return total


def _digit(e: Expr) -> tuple[Expr, int, int | None] | None:
    """`e` as a digit (flat, stride, radix) of a flat index: `flat // s % m`, `flat % m`
    (stride 1) or `flat // s` (the top digit, radix None), with constant s and m."""
    match e:
        case BinOp(op="mod", a=BinOp(op="floordiv", a=flat, b=Const(value=s)), b=Const(value=m)):
            return flat, int(s), int(m)
        case BinOp(op="mod", a=flat, b=Const(value=m)):
            return flat, 1, int(m)
        case BinOp(op="floordiv", a=flat, b=Const(value=s)):
            return flat, int(s), None
    return None


def _recompose_digits(indices, axes: list[IterVar], target: Tensor) -> dict:
    """{d: (flat, recomposed)} for indices that are all the digits of one flat index, in
    mixed radix: `A[i // 16, i // 4 % 4, i % 4]` (nn.flatten's read of a (16, 4, 4) tensor)
    gives flat == 16 a0 + 4 a1 + a2, which eliminate() solves for i, instead of three
    equations that leave i free (a reduction over the whole preimage). Exact for floor
    division by positive constants, given each a_d in [0, m_d): the target's axes are.
    The other dimensions of the group map to None (their equation is in the first's)."""
    groups: dict[int, list] = {}
    flats: list[Expr] = []
    for d, e in enumerate(indices):
        digit = _digit(e)
        if digit is None or dtypes.is_float(e.dtype):
            continue
        flat, stride, radix = digit
        key = next((k for k, f in enumerate(flats) if same(f, flat)), None)
        if key is None:
            flats.append(flat)
            key = len(flats) - 1
        groups.setdefault(key, []).append((stride, radix, d))
    result = {}
    for key, digits in groups.items():
        digits.sort()
        if not _mixed_radix(digits, target):
            continue
        recomposed = Form()
        for stride, _, d in digits:
            recomposed = recomposed + Form.atom(axes[d]) * stride
        result[digits[0][2]] = (flats[key], recomposed.expr())
        for _, _, d in digits[1:]:
            result[d] = None
    return result


def _mixed_radix(digits: list[tuple[int, int | None, int]], target: Tensor) -> bool:
    """The digits (stride, radix, dimension), by stride, are all of a flat index: strides
    1, m0, m0 m1, ..., a radix on every digit but the top one, and each of those target
    dimensions no larger than its radix (so its axis is a valid digit)."""
    if len(digits) < 2 or digits[0][0] != 1 or digits[-1][1] is not None:
        return False
    for (stride, radix, d), (following, _, _) in zip(digits, digits[1:]):
        size = _const(target.shape[d])
        if radix is None or radix <= 0 or stride * radix != following or size is None \
                or not 1 <= size <= radix:
            return False
    return True


def _const(e: Expr) -> int | None:
    return int(e.value) if isinstance(e, Const) else None


def _solution_guards(system: _System, mapping: dict, unsolved: dict, bounds) -> list[Expr]:
    """Each solved variable in its range, each strided solution exact."""
    guards = [substitute(g, unsolved) for g in system.divisible]
    for v in system.solutions:
        if v in system.strides:
            numerator, c = system.strides[v]
            guards += _strided_range_guards(substitute(numerator, unsolved), c, v, bounds)
        else:
            guards += _range_guards(mapping[v], v, bounds)
    return guards


def _piece(source: str, target: Tensor, axes: list[IterVar], free: list[IterVar],
           guards: list[Expr], value: Expr) -> Piece:
    """select(guards, value, 0) over the stand-in `axes`: an expression, or with `free`
    variables a reduction stage over them."""
    # Guards that read tensors are tested only where the others hold: they read at the
    # solved indices, which the others keep in bounds (a select evaluates one side).
    outer = all_of(*plain) if (plain := [g for g in guards if not loads(g)]) else None
    inner = all_of(*data) if (data := [g for g in guards if loads(g)]) else None
    body = value
    for guard in (inner, outer):
        body = select(guard, body, 0) if guard is not None else body
    placed = _placer(axes)
    if not free:
        return Piece(source, at=lambda indices: placed(body, indices))

    # The guards without reads are where=, not a select in the body: isl turns their
    # affine parts into loop bounds, and the loop body stays free of tests (a select
    # there kept a convolution's input adjoint from vectorizing). When they are only the
    # bounds of a factor (a convolution's head), that factor is zero-padded instead and
    # the sum runs over a box (correlate.py).
    guarded = select(inner, value, 0) if inner is not None else value

    def reduce_at(indices) -> Expr:
        axes_now = {r: fresh_reduce_axis(r, set()) for r in free}
        summand = substitute(placed(guarded, indices), axes_now)
        conditions = [substitute(placed(g, indices), axes_now) for g in plain]
        rewritten = correlate(summand, conditions, list(axes_now.values()))
        if rewritten is not None:
            summand, over = rewritten
            return sum_reducer(summand, axis=over)
        return sum_reducer(summand, axis=list(axes_now.values()),
                           where=all_of(*conditions) if conditions else None)

    def stage(name: str) -> Tensor:
        return named_compute(target.shape, lambda *indices: reduce_at(indices),
                             [a.name for a in axes], name)

    return Piece(source, stage=stage, reduce_at=reduce_at)


def _extent_rank(v: IterVar) -> int:
    """How many values v takes (symbolic: more than any constant)."""
    return int(v.extent.value) if isinstance(v.extent, Const) else _SYMBOLIC


def _placer(axes: list[IterVar]) -> Callable[[Expr, tuple], Expr]:
    """Put the real axes (or any indices) of A's adjoint where the stand-in axes are."""
    return lambda e, indices: substitute(e, dict(zip(axes, indices)))


def _range_guards(solution: Expr, v: IterVar, bounds) -> list[Expr]:
    """start <= solution < start + extent, without the halves that provably hold."""
    guards = []
    s, lo, hi = parse(solution), parse(v.start), parse(v.start) + parse(v.extent)
    if not provably_nonneg(s - lo, bounds):
        guards.append(solution >= v.start)
    if not provably_nonneg(hi - s - Form((), 1), bounds):
        guards.append(solution < v.start + v.extent)
    return guards


def _strided_range_guards(numerator: Expr, c: int, v: IterVar, bounds) -> list[Expr]:
    """start <= numerator / c < start + extent for an exact division, written on the
    numerator (affine, no floor division): for c > 0, start * c <= numerator < stop * c."""
    guards = []
    n, lo, hi = parse(numerator), parse(v.start) * c, (parse(v.start) + parse(v.extent)) * c
    low, high = (lo, hi) if c > 0 else (hi, lo)       # numerator in [low, high) or (high, low]
    if c > 0:
        if not provably_nonneg(n - low, bounds):
            guards.append(numerator >= low.expr())
        if not provably_nonneg(high - n - Form((), 1), bounds):
            guards.append(numerator < high.expr())
    else:
        if not provably_nonneg(high - n, bounds):
            guards.append(numerator <= high.expr())
        if not provably_nonneg(n - low - Form((), 1), bounds):
            guards.append(numerator > low.expr())
    return guards


_TRUE_WHEN = {"ge": lambda a, b: a - b, "gt": lambda a, b: a - b - Form((), 1),
              "le": lambda a, b: b - a, "lt": lambda a, b: b - a - Form((), 1)}


def _drop_true_conditions(e: Expr, bounds) -> Expr:
    """`e` with the integer comparisons that hold everywhere replaced by True (a forward
    padding's `y + 1 >= 1` read back at y), and selects on True resolved."""
    def fold(node: Expr) -> Expr | None:
        match node:
            case BinOp(op=op, a=a, b=b) if op in _TRUE_WHEN and dtypes.is_int(a.dtype):
                if provably_nonneg(_TRUE_WHEN[op](parse(a), parse(b)), bounds):
                    return Const(True, "bool")
            case BinOp(op="and", a=a, b=b) if isinstance(a, Const) and a.value:
                return b
            case BinOp(op="and", a=a, b=b) if isinstance(b, Const) and b.value:
                return a
            case Select(cond=Const(value=v), true_value=t, false_value=f):
                return t if v else f
        return None
    return transform(e, fold)


def _check_ranges(consumer: ComputeOp, variables: list[IterVar]) -> None:
    for v in variables:
        if any(isinstance(x, IterVar) for x in (*free_vars(v.start), *free_vars(v.extent))):
            raise TdslError(
                f"td.grad: the reduction axis {v.name} of {consumer.name} has a range that "
                "depends on another axis; such (triangular) reductions are not "
                "differentiable yet")


def _scatter(consumer: ComputeOp, load: Load, adjoint: Expr, where: Expr | None,
             variables: list[IterVar]) -> Piece:
    """dA[f(v)] += g(v) for every v of the consumer's domain, in order: a td.update of a
    zero tensor over new reduction axes, one per consumer variable."""
    target = load.tensor

    def stage(name: str) -> Tensor:
        names = axis_names(target)
        taken = set(names)
        fresh = {v: fresh_reduce_axis(v, taken) for v in variables}
        index = tuple(substitute(e, fresh) for e in load.indices)
        value = select(where, adjoint, 0) if where is not None else adjoint
        value = substitute(value, fresh)
        used = {id(x) for e in (*index, value) for x in free_vars(e)}
        for r in fresh.values():              # a variable nothing mentions: sum its range
            if id(r) not in used:
                value = value * cast(value.dtype, r.extent)
        # The buffer is the zero stage's, so it carries the adjoint's name.
        zero = named_compute(target.shape, lambda *a: Const(0.0, target.dtype), names, name)
        return update(zero, lambda: index, lambda: zero[index] + value, name=f"{name}_add")

    return Piece(consumer.name, stage=stage)
