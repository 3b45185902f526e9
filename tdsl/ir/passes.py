"""Small passes over the loop IR: expression mapping and source-level unrolling."""

from __future__ import annotations

from typing import Callable

from ..lang.expr import Const, Expr
from ..lang.visit import substitute
from . import nodes as ir


def map_exprs(s: ir.Stmt, fn: Callable[[Expr], Expr]) -> ir.Stmt:
    """`s` with `fn` applied to every expression it holds."""
    match s:
        case ir.Seq(stmts=children):
            return ir.Seq(tuple(map_exprs(c, fn) for c in children))
        case ir.For(var=v, start=start, stop=stop, body=body, kind=kind):
            return ir.For(v, fn(start), fn(stop), map_exprs(body, fn), kind)
        case ir.Store(buffer=b, indices=idx, value=value, checked=checked):
            return ir.Store(b, tuple(fn(i) for i in idx), fn(value), checked)
        case ir.If(cond=cond, then=then, otherwise=other):
            return ir.If(fn(cond), map_exprs(then, fn),
                         map_exprs(other, fn) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            return ir.Alloc(b, map_exprs(body, fn))
    return s


def unroll_loop(loop: ir.For, trip: int) -> ir.Stmt:
    """The loop body repeated `trip` times with the loop variable a constant each time."""
    copies = []
    for k in range(trip):
        value = loop.start + Const(k, loop.var.dtype)
        copies.append(map_exprs(loop.body, lambda e, v=value: substitute(e, {loop.var: v})))
    return ir.seq(*copies)


