"""Small passes over the loop IR: expression mapping and source-level unrolling."""

from __future__ import annotations

import dataclasses

from typing import Callable

from ..lang.expr import Const, Expr
from ..lang.visit import substitute
from . import nodes as ir


def map_exprs(s: ir.Stmt, fn: Callable[[Expr], Expr]) -> ir.Stmt:
    """`s` with `fn` applied to every expression it holds."""
    match s:
        case ir.Seq(stmts=children):
            return ir.Seq(tuple(map_exprs(c, fn) for c in children))
        case ir.For(start=start, stop=stop, body=body):
            return dataclasses.replace(s, start=fn(start), stop=fn(stop), body=map_exprs(body, fn))
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
        value = loop.start + Const(k * loop.step, loop.var.dtype)
        copies.append(map_exprs(loop.body, lambda e, v=value: substitute(e, {loop.var: v})))
    return ir.seq(*copies)


def merge_allocs(s: ir.Stmt) -> ir.Stmt:
    """Adjacent Allocs of one buffer in a sequence become one (isl may split the body of a
    loop with a single iteration into pieces, each under its own copy of the Alloc)."""
    match s:
        case ir.Seq(stmts=stmts):
            out: list[ir.Stmt] = []
            for child in (merge_allocs(c) for c in stmts):
                if isinstance(child, ir.Alloc) and out and isinstance(out[-1], ir.Alloc) \
                        and out[-1].buffer is child.buffer:
                    out[-1] = ir.Alloc(child.buffer, merge_allocs(ir.seq(out[-1].body,
                                                                         child.body)))
                else:
                    out.append(child)
            return ir.seq(*out)
        case ir.For(body=body):
            return dataclasses.replace(s, body=merge_allocs(body))
        case ir.If(cond=cond, then=then, otherwise=other):
            return ir.If(cond, merge_allocs(then),
                         merge_allocs(other) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            return ir.Alloc(b, merge_allocs(body))
    return s
