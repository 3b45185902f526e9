"""Interval bounds of integer index expressions: how many blocks and threads a launch needs.

A loop bound to blockIdx/threadIdx runs over `start <= v < stop`, both affine expressions
(with min/max and floor division) of the sizes and the enclosing loops. The launch must
cover the largest `stop - start` over every value the enclosing loops take. Plain interval
arithmetic would lose the correlation in `min(M, 16 * io + 16) - 16 * io`, so linear terms
are first pushed into min/max (`min(M - 16 * io, 16)`), where they cancel.

>>> upper_bound(stop - start, {id(M): (1, INF), id(io): (0, INF)})      # doctest: +SKIP
16
"""

from __future__ import annotations

import math

from ...lang.expr import BinOp, Cast, Const, Expr, IterVar, Select, UnaryOp, Var
from ...ir.simplify import linear_terms
from ...lang.visit import free_vars

INF = math.inf
Interval = tuple[float, float]
Env = dict[int, Interval]          # id(Var) -> (lo, hi), inclusive, possibly infinite


def upper_bound(e: Expr, env: Env, facts=()) -> float:
    """The largest value `e` can take when each variable ranges over `env` (INF if unknown)
    and each expression in `facts` is <= 0 (conditions of the enclosing ifs)."""
    best = interval(e, env)[1]
    for f in facts:                       # f <= 0, so e <= e - f
        best = min(best, interval(e - f, env)[1])
    return best


def lower_bound(e: Expr, env: Env, facts=()) -> float:
    """The smallest value `e` can take; see upper_bound."""
    return -upper_bound(-e, env, facts)


def facts_of(cond: Expr, holds: bool) -> list[Expr]:
    """Expressions that are <= 0 wherever `cond` is `holds`: the affine comparisons of a
    conjunction that holds, or the single comparison that does not."""
    match cond:
        case BinOp(op="and", a=a, b=b) if holds:
            return facts_of(a, True) + facts_of(b, True)
        case BinOp(op="or", a=a, b=b) if not holds:
            return facts_of(a, False) + facts_of(b, False)
        case BinOp(op="lt" | "le" | "gt" | "ge" | "eq" | "ne", a=a, b=b) \
                if a.dtype.startswith(("int", "uint")):
            op = cond.op if holds else _NEGATED[cond.op]
            return {"le": [a - b], "lt": [a - b + 1], "ge": [b - a], "gt": [b - a + 1],
                    "eq": [a - b, b - a], "ne": []}[op]
    return []


_NEGATED = {"lt": "ge", "le": "gt", "gt": "le", "ge": "lt", "eq": "ne", "ne": "eq"}


def interval(e: Expr, env: Env) -> Interval:
    """(lo, hi) enclosing every value of the integer expression `e` over `env`."""
    terms, const = linear_terms(e)
    if len(terms) == 1 and const == 0 and next(iter(terms.values()))[0] == 1:
        return _atom(next(iter(terms.values()))[1], env)
    for key, (coef, atom) in terms.items():
        if _is_minmax(atom) and coef in (1, -1):
            rest = _rebuild({k: t for k, t in terms.items() if k != key}, const)
            if coef == 1:           # min(a, b) + r = min(a + r, b + r)
                return _atom(BinOp(atom.op, rest + atom.a, rest + atom.b, atom.dtype), env)
            flipped = "max" if atom.op == "min" else "min"      # r - min(a, b) = max(r - a, r - b)
            return _atom(BinOp(flipped, rest - atom.a, rest - atom.b, atom.dtype), env)
    lo = hi = float(const)
    for coef, atom in terms.values():
        a_lo, a_hi = _atom(atom, env)
        t_lo, t_hi = _mul((coef, coef), (a_lo, a_hi))
        lo, hi = lo + t_lo, hi + t_hi
    return lo, hi


def _atom(e: Expr, env: Env) -> Interval:
    match e:
        case Const(value=v):
            return float(v), float(v)
        case Var() | IterVar():
            return env.get(id(e), (-INF, INF))
        case BinOp(op="min" | "max", a=a, b=b):
            (a_lo, a_hi), (b_lo, b_hi) = interval(a, env), interval(b, env)
            pick = min if e.op == "min" else max
            return pick(a_lo, b_lo), pick(a_hi, b_hi)
        case BinOp(op="add" | "sub" | "mul") | UnaryOp(op="neg"):
            if isinstance(e, BinOp) and e.op == "mul":
                return _mul(interval(e.a, env), interval(e.b, env))
            return interval(e, env)
        case BinOp(op="floordiv" | "truncdiv", a=a, b=Const(value=d)) if d > 0:
            lo, hi = interval(a, env)
            if e.op == "truncdiv" and lo < 0:
                return -INF, INF
            return _floor_div(lo, d), _floor_div(hi, d)
        case BinOp(op="mod" | "truncmod", b=Const(value=d)) if d > 0:
            lo, _ = interval(e.a, env)
            return (0.0 if e.op == "mod" or lo >= 0 else -(d - 1.0)), d - 1.0
        case Cast(value=v) if v.dtype.startswith("int"):
            return interval(v, env)
        case Select(true_value=t, false_value=f):
            (t_lo, t_hi), (f_lo, f_hi) = interval(t, env), interval(f, env)
            return min(t_lo, f_lo), max(t_hi, f_hi)
    return -INF, INF


def _floor_div(x: float, d: int) -> float:
    return x if math.isinf(x) else float(math.floor(x / d))


def _mul(a: Interval, b: Interval) -> Interval:
    products = []
    for x in a:
        for y in b:
            products.append(0.0 if x == 0 or y == 0 else x * y)  # 0 * inf is 0 here
    return min(products), max(products)


def _is_minmax(e: Expr) -> bool:
    return isinstance(e, BinOp) and e.op in ("min", "max")


def coefficient(e: Expr, var: Var) -> int | None:
    """The integer `c` with `e == c * var + rest`, `rest` free of `var`; None if `var`
    appears non-linearly (inside a division, a min, ...)."""
    terms, _ = linear_terms(e)
    c = 0
    for coef, atom in terms.values():
        if atom is var:
            c += coef
        elif any(v is var for v in free_vars(atom)):
            return None
    return c


def _rebuild(terms: dict[str, tuple[int, Expr]], const: int) -> Expr:
    result: Expr = Const(const, "int64")
    for coef, atom in terms.values():
        result = result + (atom if coef == 1 else atom * coef)
    return result
