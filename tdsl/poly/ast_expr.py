"""isl AST expressions (and piecewise affine functions) as tdsl expressions."""

from __future__ import annotations

import functools

import islpy as isl

from ..lang import dtypes
from ..lang.expr import BinOp, Const, Expr, Select, binary, unary

_T = isl.ast_expr_op_type
_BINARY = {_T.add: "add", _T.sub: "sub", _T.mul: "mul", _T.div: "floordiv", _T.fdiv_q: "floordiv",
           _T.eq: "eq", _T.le: "le", _T.lt: "lt", _T.ge: "ge", _T.gt: "gt", _T.and_: "and",
           _T.and_then: "and", _T.or_: "or", _T.or_else: "or"}


def from_ast(e: isl.AstExpr, ids: dict[str, Expr]) -> Expr:
    """Translate an isl AstExpr; `ids` gives the expression for each identifier."""
    kind = e.get_type()
    if kind == isl.ast_expr_type.id:
        name = e.get_id().get_name()
        if name not in ids:
            raise KeyError(f"isl AST names {name!r}, which is not bound here")
        return ids[name]
    if kind == isl.ast_expr_type.int:
        return Const(int(e.get_val().to_python()), dtypes.INDEX)
    op = e.get_op_type()
    args = [from_ast(e.get_op_arg(k), ids) for k in range(e.get_op_n_arg())]
    if op in _BINARY:
        return binary(_BINARY[op], args[0], args[1])
    if op in (_T.pdiv_q,):
        # Quotient with a non-negative dividend: C's truncating division is exact here.
        return _trunc("truncdiv", args[0], args[1])
    if op in (_T.pdiv_r, _T.zdiv_r):
        return _trunc("truncmod", args[0], args[1])
    if op in (_T.min, _T.max):
        name = "min" if op == _T.min else "max"
        return functools.reduce(lambda a, b: binary(name, a, b), args)
    if op == _T.minus:
        return unary("neg", args[0])
    if op in (_T.select, _T.cond):
        return Select(args[0], args[1], args[2])
    raise NotImplementedError(f"isl AST operation {op} is not supported")


def _trunc(op: str, a: Expr, b: Expr) -> Expr:
    if isinstance(a, Const) and isinstance(b, Const) and b.value:
        q = abs(a.value) // abs(b.value) * (1 if (a.value >= 0) == (b.value > 0) else -1)
        return Const(q if op == "truncdiv" else a.value - q * b.value, dtypes.INDEX)
    if op == "truncdiv" and isinstance(b, Const) and b.value == 1:
        return a
    return BinOp(op, a, b, dtypes.INDEX)


def from_pw_aff(pa: isl.PwAff, ids: dict[str, Expr], context: isl.Set | None = None) -> Expr:
    """A piecewise affine function of the parameters (and of input dims, which are
    turned into parameters named `__in<k>` and looked up in `ids`) as an expression."""
    n_in = pa.dim(isl.dim_type.in_)
    if n_in:
        for k in range(n_in):
            pa = pa.set_dim_id(isl.dim_type.in_, k, isl.Id(f"__in{k}"))
        pa = pa.move_dims(isl.dim_type.param, pa.dim(isl.dim_type.param), isl.dim_type.in_, 0,
                          n_in)
    ctx = pa.domain() if context is None else context.align_params(pa.get_space()).intersect(
        pa.domain())
    build = isl.AstBuild.from_context(ctx.params() if ctx.dim(isl.dim_type.set) else ctx)
    return from_ast(build.expr_from_pw_aff(pa), ids)


def plus_one(e: Expr) -> Expr:
    """`e + 1`, folded into a trailing constant or pushed into min/max (loop bounds)."""
    if isinstance(e, BinOp) and e.op in ("min", "max"):
        return BinOp(e.op, plus_one(e.a), plus_one(e.b), e.dtype)
    if isinstance(e, BinOp) and e.op in ("add", "sub") and isinstance(e.b, Const):
        value = (e.b.value if e.op == "add" else -e.b.value) + 1
        if value == 0:
            return e.a
        return BinOp("add" if value > 0 else "sub", e.a, Const(abs(value), e.dtype), e.dtype)
    return binary("add", e, 1)
