"""Small passes over the loop IR: expression mapping, source-level unrolling, joining a
buffer's Alloc copies, hoisting loop-invariant guards out of loops, and dropping the
prefetch hints for a backend that has no use for them."""

from __future__ import annotations

import dataclasses

from typing import Callable

from ..lang.expr import _UFUNCS, BinOp, Const, Expr, Load, UnaryOp, _fold
from ..lang.visit import free_vars, substitute, transform, walk
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
        case ir.Prefetch(buffer=b, indices=idx, write=write):
            return ir.Prefetch(b, tuple(fn(i) for i in idx), write)
        case ir.If(cond=cond, then=then, otherwise=other):
            return ir.If(fn(cond), map_exprs(then, fn),
                         map_exprs(other, fn) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            return ir.Alloc(b, map_exprs(body, fn))
    return s


def unroll_loop(loop: ir.For, trip: int) -> ir.Stmt:
    """The loop body repeated `trip` times with the loop variable a constant each time;
    a guard that becomes constant in a copy (isl's `if (j == 0)` in a loop over j) keeps
    only the branch it takes."""
    copies = []
    for k in range(trip):
        value = loop.start + Const(k * loop.step, loop.var.dtype)
        copy = map_exprs(loop.body, lambda e, v=value: substitute(e, {loop.var: v}))
        copies.append(drop_constant_guards(copy))
    return ir.seq(*copies)


def fold_constants(e: Expr) -> Expr:
    """`e` with every operation on constants computed (substitution leaves `0 == 0`)."""
    def fold(node: Expr) -> Expr | None:
        if isinstance(node, BinOp) and node.op in _UFUNCS and isinstance(node.a, Const) \
                and isinstance(node.b, Const):
            return _fold(node.op, node.a, node.b, node.dtype)
        if isinstance(node, UnaryOp) and node.op == "neg" and isinstance(node.value, Const) \
                and isinstance(node.value.value, int):
            return Const(-node.value.value, node.dtype)
        return None
    return transform(e, fold)


def drop_constant_guards(s: ir.Stmt) -> ir.Stmt:
    """`s` with each If whose condition is a constant replaced by the branch it takes."""
    match s:
        case ir.Seq(stmts=children):
            return ir.seq(*[drop_constant_guards(c) for c in children])
        case ir.For(start=start, stop=stop, body=body):
            # bounds too (`max(0, 1 - 7 * 0)` once an outer loop is a constant): a loop
            # the schedule unrolled needs a constant trip count to be unrolled
            return dataclasses.replace(s, start=fold_constants(start), stop=fold_constants(stop),
                                       body=drop_constant_guards(body))
        case ir.If(cond=cond, then=then, otherwise=other):
            folded = fold_constants(cond)
            if isinstance(folded, Const):
                taken = then if folded.value else other
                return drop_constant_guards(taken) if taken is not None else ir.Seq(())
            return ir.If(cond, drop_constant_guards(then),
                         drop_constant_guards(other) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            return ir.Alloc(b, drop_constant_guards(body))
    return s


# Loops a guard may be hoisted out of: the GPU kinds stay where the schedule bound them.
_UNSWITCHABLE = ("serial", "unroll", "vectorize")


def unswitch(s: ir.Stmt) -> ir.Stmt:
    """Guards that do not depend on a loop hoisted out of it: `for k { if (c) A else B }`
    becomes `if (c) { for k A } else { for k B }` when the If is the loop's whole body and
    `c` reads neither `k` nor memory. isl puts the guards that tell a partial tile from
    another (`fused >= 6402`, `(fused + 1) % 33 == 0`) inside the reduction loop of a
    register tile it generates for both: one loop then holds the accumulators of every
    case, some indexed by a loop variable, and gcc keeps all of them in memory. Each
    case in its own loop has constant indices again, and gcc keeps it in registers.
    Nothing is copied (each branch is in one loop), and a loop with no iterations runs
    none either way."""
    match s:
        case ir.Seq(stmts=children):
            return ir.seq(*[unswitch(c) for c in children])
        case ir.For(var=var, body=body, kind=kind):
            inner = unswitch(body)
            guard = _only_if(inner)
            if kind in _UNSWITCHABLE and guard is not None and _invariant(guard.cond, var):
                def loop(branch):
                    return unswitch(dataclasses.replace(s, body=branch))
                return ir.If(guard.cond, loop(guard.then),
                             loop(guard.otherwise) if guard.otherwise is not None else None)
            return dataclasses.replace(s, body=inner)
        case ir.If(cond=cond, then=then, otherwise=other):
            return ir.If(cond, unswitch(then), unswitch(other) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            return ir.Alloc(b, unswitch(body))
    return s


def _only_if(s: ir.Stmt) -> ir.If | None:
    while isinstance(s, ir.Seq) and len(s.stmts) == 1:
        s = s.stmts[0]
    return s if isinstance(s, ir.If) else None


def _invariant(cond: Expr, var) -> bool:
    """Does `cond` have the same value in every iteration of the loop over `var`? (It reads
    no memory, which the loop could write.)"""
    if any(isinstance(n, (ir.BufferLoad, Load)) for n in walk(cond)):
        return False
    return all(v is not var for v in free_vars(cond))


def merge_allocs(s: ir.Stmt) -> ir.Stmt:
    """One Alloc for the copies of a buffer's Alloc that isl put in several children of a
    sequence. isl may split the body of a loop with a single iteration into pieces, each
    under its own copy of the Alloc, and some of them under a guard (an accumulator's
    init, its update under `if (i >= 1)`, its store): all pieces belong to one iteration
    of the loop that owns the buffer, so the buffer must live across all of them. isl may
    also run the first part of the last iteration inside a loop and the rest after it
    (fuzzer case 865 of seed 20261202): copies under serial loops are joined too, above
    the loop. That is safe: each iteration computes its region of the buffer before it
    reads it, and isl separates an iteration only where no other runs in between. Copies
    under parallel (or vector, or GPU) loops stay apart: those iterations run at once."""
    match s:
        case ir.Seq(stmts=stmts):
            children = [merge_allocs(c) for c in stmts]
            while True:
                shared = _shared_alloc(children)
                if shared is None:
                    return ir.seq(*children)
                buffer, first, last = shared
                body = ir.seq(*[_strip_alloc(c, buffer) for c in children[first:last + 1]])
                # the joined body may share another buffer (one mark allocates several)
                children[first:last + 1] = [ir.Alloc(buffer, merge_allocs(body))]
    return map_children(s, merge_allocs)


def _shared_alloc(children: list[ir.Stmt]):
    """(buffer, first, last): a buffer allocated (outside loops) in two or more of the
    children, and the first and last child that allocate it; None if there is none."""
    seen: dict[int, tuple] = {}
    for k, child in enumerate(children):
        for buffer in _allocs_outside_loops(child):
            b, first, _ = seen.get(id(buffer), (buffer, k, k))
            seen[id(buffer)] = (b, first, k)
    for buffer, first, last in seen.values():
        if last > first:
            return buffer, first, last
    return None


SEQUENTIAL = ("serial", "unroll")


def _allocs_outside_loops(s: ir.Stmt) -> list[ir.Buffer]:
    """Buffers allocated in `s` outside loops whose iterations run at once."""
    match s:
        case ir.Seq(stmts=stmts):
            return [b for c in stmts for b in _allocs_outside_loops(c)]
        case ir.If(then=then, otherwise=other):
            return _allocs_outside_loops(then) + \
                (_allocs_outside_loops(other) if other is not None else [])
        case ir.Alloc(buffer=b, body=body):
            return [b] + _allocs_outside_loops(body)
        case ir.For(kind=kind, body=body) if kind in SEQUENTIAL:
            return _allocs_outside_loops(body)
    return []


def _strip_alloc(s: ir.Stmt, buffer: ir.Buffer) -> ir.Stmt:
    """`s` without its Allocs of `buffer` that `_allocs_outside_loops` sees (an enclosing
    Alloc now owns it)."""
    match s:
        case ir.Seq(stmts=stmts):
            return ir.seq(*[_strip_alloc(c, buffer) for c in stmts])
        case ir.If(cond=cond, then=then, otherwise=other):
            return ir.If(cond, _strip_alloc(then, buffer),
                         _strip_alloc(other, buffer) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            inner = _strip_alloc(body, buffer)
            return inner if b is buffer else ir.Alloc(b, inner)
        case ir.For(kind=kind, body=body) if kind in SEQUENTIAL:
            return dataclasses.replace(s, body=_strip_alloc(body, buffer))
    return s


def map_children(s: ir.Stmt, fn: Callable[[ir.Stmt], ir.Stmt]) -> ir.Stmt:
    """`s` with `fn` applied to each statement directly inside it (a sequence's members,
    a loop's or an Alloc's body, an If's branches); a leaf unchanged."""
    match s:
        case ir.Seq(stmts=stmts):
            return ir.seq(*[fn(c) for c in stmts])
        case ir.For(body=body):
            return dataclasses.replace(s, body=fn(body))
        case ir.If(cond=cond, then=then, otherwise=other):
            return ir.If(cond, fn(then), fn(other) if other is not None else None)
        case ir.Alloc(buffer=b, body=body):
            return ir.Alloc(b, fn(body))
    return s


def drop_prefetches(s: ir.Stmt) -> ir.Stmt:
    """`s` without its Prefetch hints (a backend with no prefetch instruction: CUDA)."""
    if isinstance(s, ir.Prefetch):
        return ir.Seq(())
    return map_children(s, drop_prefetches)
