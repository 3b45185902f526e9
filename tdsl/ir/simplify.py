"""Simplification of integer index expressions: collect linear terms.

`32 * yo + yi - 32 * yo` becomes `yi`. Non-linear parts (floor division, min,
loads) stay as atoms; the result is rebuilt as a sum of terms in a stable
order (variables first, the constant last).
"""

from __future__ import annotations

from ..lang import dtypes
from ..lang.expr import BinOp, Const, Expr, UnaryOp, binary
from ..lang.visit import children, rebuild


def simplify_index(e: Expr) -> Expr:
    """`e` with its linear integer part normalized (non-integer expressions unchanged)."""
    if not dtypes.is_int(e.dtype):
        return e
    terms, constant = _linear(e)
    return _rebuild(terms, constant, e.dtype)


def _linear(e: Expr) -> tuple[dict, int]:
    """({atom: coefficient}, constant) with atoms kept by identity of their text."""
    match e:
        case Const(value=v) if isinstance(v, int) and not isinstance(v, bool):
            return {}, int(v)
        case BinOp(op="add" | "sub", a=a, b=b):
            ta, ca = _linear(a)
            tb, cb = _linear(b)
            sign = 1 if e.op == "add" else -1
            for atom, (coef, node) in tb.items():
                old = ta.get(atom, (0, node))[0]
                ta[atom] = (old + sign * coef, node)
            return ta, ca + sign * cb
        case BinOp(op="mul", a=a, b=Const(value=v)) if isinstance(v, int):
            ta, ca = _linear(a)
            return {k: (c * v, n) for k, (c, n) in ta.items()}, ca * v
        case BinOp(op="mul", a=Const(value=v), b=b) if isinstance(v, int):
            tb, cb = _linear(b)
            return {k: (c * v, n) for k, (c, n) in tb.items()}, cb * v
        case UnaryOp(op="neg", value=v):
            tv, cv = _linear(v)
            return {k: (-c, n) for k, (c, n) in tv.items()}, -cv
    atom = rebuild(e, tuple(simplify_index(c) if dtypes.is_int(c.dtype) else c
                            for c in children(e)))
    return {str(atom): (1, atom)}, 0


def _rebuild(terms: dict, constant: int, dtype: str) -> Expr:
    result: Expr | None = None
    # positive terms first, so `i - 8 * io` rather than `0 - 8 * io + i`
    for coef, node in sorted(terms.values(), key=lambda t: t[0] < 0):
        if coef == 0:
            continue
        term = node if coef in (1, -1) else binary("mul", Const(abs(coef), dtype), node)
        if result is None:
            result = term if coef > 0 else binary("sub", Const(0, dtype), term)
        else:
            result = binary("add" if coef > 0 else "sub", result, term)
    if result is None:
        return Const(constant, dtype)
    if constant:
        result = binary("add" if constant > 0 else "sub", result, Const(abs(constant), dtype))
    return result
