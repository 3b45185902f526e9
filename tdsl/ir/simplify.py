"""Simplification of integer index expressions: collect linear terms.

`32 * yo + yi - 32 * yo` becomes `yi`. Non-linear parts (floor division, min,
loads) stay as atoms; the result is rebuilt as a sum of terms in a stable
order (variables first, the constant last).
"""

from __future__ import annotations

from ..lang import dtypes
from ..lang.expr import BinOp, Const, Expr, IterVar, UnaryOp, Var, binary
from ..lang.visit import children, free_vars, rebuild, substitute


def simplify_index(e: Expr) -> Expr:
    """`e` with its linear integer part normalized (non-integer expressions unchanged)."""
    if not dtypes.is_int(e.dtype):
        return e
    terms, constant = linear_terms(e)
    return _rebuild(terms, constant, e.dtype)


def linear_terms(e: Expr) -> tuple[dict, int]:
    """({key: (coefficient, atom)}, constant) of an integer expression. Variables are
    atoms by identity; any other non-linear part (a floor division, a min, a load) is an
    atom by its text and the identities of its variables, with its own parts simplified.
    Terms whose coefficients cancel are dropped."""
    match e:
        case Const(value=v) if isinstance(v, int) and not isinstance(v, bool):
            return {}, int(v)
        case BinOp(op="add" | "sub", a=a, b=b):
            ta, ca = linear_terms(a)
            tb, cb = linear_terms(b)
            sign = 1 if e.op == "add" else -1
            for key, (coef, atom) in tb.items():
                ta[key] = (ta.get(key, (0, atom))[0] + sign * coef, atom)
            return {k: t for k, t in ta.items() if t[0] != 0}, ca + sign * cb
        case BinOp(op="mul", a=a, b=Const(value=v)) | BinOp(op="mul", a=Const(value=v), b=a) \
                if isinstance(v, int) and not isinstance(v, bool):
            ta, ca = linear_terms(a)
            return {k: (c * v, n) for k, (c, n) in ta.items() if c * v != 0}, ca * v
        case UnaryOp(op="neg", value=v):
            tv, cv = linear_terms(v)
            return {k: (-c, n) for k, (c, n) in tv.items()}, -cv
    if isinstance(e, (Var, IterVar)):
        return {f"var:{id(e)}": (1, e)}, 0
    atom = rebuild(e, tuple(simplify_index(c) if dtypes.is_int(c.dtype) else c
                            for c in children(e)))
    return {f"{type(atom).__name__}:{atom}:{[id(v) for v in free_vars(atom)]}": (1, atom)}, 0


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


def step_along(e: Expr, var) -> Expr | None:
    """e(var + 1) - e(var) for an integer index `e`, where it does not depend on `var`;
    else None. Products are expanded first (`_polynomial`): `(8 jo + j) * m`, a row of
    symbolic length m, which `simplify_index` keeps as one atom, steps by m along j."""
    diff = _polynomial(substitute(e, {var: var + 1}))
    for monomial, coef in _polynomial(e).items():
        diff[monomial] = diff.get(monomial, 0) - coef
    terms = [(m, c) for m, c in diff.items() if c]
    if any(v is var for m, _ in terms for _, atom in m for v in free_vars(atom)):
        return None
    step: Expr = Const(0, e.dtype)
    for monomial, coef in terms:
        term: Expr = Const(coef, e.dtype)
        for _, atom in monomial:
            term = term * atom
        step = step + term
    return simplify_index(step)


def _polynomial(e: Expr) -> dict:
    """An integer expression as {monomial: coefficient}: sums and products expanded, a
    monomial a sorted tuple of (key, atom) with the atoms of `linear_terms`."""
    if isinstance(e, BinOp) and e.op in ("add", "sub", "mul"):
        a, b = _polynomial(e.a), _polynomial(e.b)
        if e.op == "mul":
            out: dict = {}
            for ma, ca in a.items():
                for mb, cb in b.items():
                    m = tuple(sorted(ma + mb, key=lambda t: t[0]))
                    out[m] = out.get(m, 0) + ca * cb
            return out
        sign = 1 if e.op == "add" else -1
        for m, c in b.items():
            a[m] = a.get(m, 0) + sign * c
        return a
    if isinstance(e, UnaryOp) and e.op == "neg":
        return {m: -c for m, c in _polynomial(e.value).items()}
    terms, constant = linear_terms(e)
    out = {((key, atom),): coef for key, (coef, atom) in terms.items()}
    if constant:
        out[()] = constant
    return out
