"""Affine forms of index expressions: the algebra `adjoint.py` solves index maps with.

An index `y * 2 + ry - 1` is read as the integer-linear combination `2 y + 1 ry - 1` of
*atoms*: variables (axes, symbolic sizes) and any subexpression that is not a sum or a
constant multiple (`f // 3`, `i * n`, `idx[i]`), kept whole. Forms add, scale and turn back
into expressions; `provably_nonneg` proves a form >= 0 from the ranges of its atoms, which
is how trivially true bound guards are dropped from adjoints.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lang import dtypes
from ..lang.expr import BinOp, Cast, Const, Expr, IterVar, Load, UnaryOp, Var, cast
from ..lang.visit import same, walk


@dataclass(frozen=True)
class Form:
    """sum(coefficient * atom) + const, with integer coefficients (none zero)."""

    terms: tuple[tuple[Expr, int], ...] = ()
    const: int = 0

    @staticmethod
    def atom(e: Expr) -> "Form":
        return Form(((e, 1),), 0)

    def coefficient(self, atom: Expr) -> int:
        return next((c for a, c in self.terms if same(a, atom)), 0)

    def without(self, atom: Expr) -> "Form":
        return Form(tuple((a, c) for a, c in self.terms if not same(a, atom)), self.const)

    def __add__(self, other: "Form") -> "Form":
        terms = list(self.terms)
        for atom, c in other.terms:
            for n, (a, d) in enumerate(terms):
                if same(a, atom):
                    terms[n] = (a, c + d)
                    break
            else:
                terms.append((atom, c))
        return Form(tuple((a, c) for a, c in terms if c != 0), self.const + other.const)

    def __mul__(self, k: int) -> "Form":
        if k == 0:
            return Form()
        return Form(tuple((a, c * k) for a, c in self.terms), self.const * k)

    def __neg__(self) -> "Form":
        return self * -1

    def __sub__(self, other: "Form") -> "Form":
        return self + (-other)

    @property
    def is_const(self) -> bool:
        return not self.terms

    def expr(self) -> Expr:
        """The form as an int64 expression: positive terms first, then the others."""
        result: Expr | None = None
        for atom, c in sorted(self.terms, key=lambda t: t[1] < 0):
            a = atom if atom.dtype == dtypes.INDEX else cast(dtypes.INDEX, atom)
            if result is None:
                result = a * c if c != -1 else -a
            elif c > 0:
                result = result + (a * c if c != 1 else a)
            else:
                result = result - (a * -c if c != -1 else a)
        if result is None:
            return Const(self.const, dtypes.INDEX)
        if self.const > 0:
            return result + self.const
        return result - (-self.const) if self.const < 0 else result


def parse(e: Expr) -> Form:
    """`e` (an integer expression) as a form; what is not linear becomes one atom."""
    match e:
        case Const(value=v) if dtypes.is_int(e.dtype):
            return Form((), int(v))
        case BinOp(op="add", a=a, b=b):
            return parse(a) + parse(b)
        case BinOp(op="sub", a=a, b=b):
            return parse(a) - parse(b)
        case UnaryOp(op="neg", value=v):
            return -parse(v)
        case BinOp(op="mul", a=a, b=b):
            fa, fb = parse(a), parse(b)
            if fa.is_const:
                return fb * fa.const
            if fb.is_const:
                return fa * fb.const
        case Cast(value=v) if dtypes.is_int(e.dtype) and dtypes.is_int(v.dtype):
            return parse(v)
    return Form.atom(e)


def occurs(var: Expr, e: Expr) -> bool:
    """`var` (by identity) appears somewhere in `e`."""
    return any(node is var for node in walk(e))


def provably_nonneg(form: Form, bounds: dict[int, tuple[Form, Form]]) -> bool:
    """form >= 0 for every value of its atoms: `bounds` maps an axis atom (by id) to its
    (lowest, highest) value as forms over sizes. A size (a `td.var`) is >= 1, as every call
    checks; any other expression of sizes (`(h - 1) // 2`) must cancel out. Sound, not
    complete: False means "not proven"."""
    total = Form((), form.const)
    for atom, c in form.terms:
        if _is_size_expr(atom):
            total = total + Form(((atom, c),), 0)
            continue
        if id(atom) not in bounds:
            return False
        lo, hi = bounds[id(atom)]
        total = total + (lo if c > 0 else hi) * c
    if any(not isinstance(a, Var) or c < 0 for a, c in total.terms):
        return False
    return total.const + sum(c for _, c in total.terms) >= 0


def axis_bounds(axis: IterVar) -> tuple[Form, Form] | None:
    """(lowest, highest) value of an axis whose range is given by sizes only."""
    lo, hi = parse(axis.start), parse(axis.start) + parse(axis.extent) - Form((), 1)
    if any(not _is_size_expr(a) for f in (lo, hi) for a, _ in f.terms):
        return None
    return lo, hi


def _is_size_expr(e: Expr) -> bool:
    """An expression of symbolic sizes and constants only (no axis, no tensor read)."""
    return all(not isinstance(n, (IterVar, Load)) for n in walk(e))
