"""Generic traversal of expressions: children, rebuild, transform, substitute.

Plain functions over the node kinds with `match`; no visitor classes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

from .expr import BinOp, Call, Cast, Const, Expr, IterVar, Load, Reduce, Select, UnaryOp, Var


def children(e: Expr) -> tuple[Expr, ...]:
    match e:
        case BinOp(a=a, b=b):
            return (a, b)
        case UnaryOp(value=v) | Cast(value=v):
            return (v,)
        case Call(args=args):
            return args
        case Select(cond=c, true_value=t, false_value=f):
            return (c, t, f)
        case Load(indices=idx):
            return idx
        case Reduce(body=body, where=where):
            return (body,) if where is None else (body, where)
    # Nodes defined downstream (the IR's BufferLoad) describe their own children.
    own = getattr(e, "child_exprs", None)
    return own() if own is not None else ()


def rebuild(e: Expr, kids: tuple[Expr, ...]) -> Expr:
    """`e` with its children replaced by `kids` (same order as `children`)."""
    if all(k is c for k, c in zip(kids, children(e))):
        return e
    match e:
        case BinOp():
            return dataclasses.replace(e, a=kids[0], b=kids[1])
        case UnaryOp() | Cast():
            return dataclasses.replace(e, value=kids[0])
        case Call():
            return dataclasses.replace(e, args=tuple(kids))
        case Select():
            return Select(*kids)
        case Load():
            return Load(e.tensor, tuple(kids))
        case Reduce():
            return dataclasses.replace(e, body=kids[0], where=kids[1] if len(kids) > 1 else None)
    return e.with_children(kids) if hasattr(e, "with_children") else e


def transform(e: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild `e` bottom-up; `fn(node)` may return a replacement (None keeps the node).

    Shared subexpressions are transformed once.
    """
    memo: dict[int, Expr] = {}

    def go(node: Expr) -> Expr:
        key = id(node)
        if key in memo:
            return memo[key]
        new = rebuild(node, tuple(go(c) for c in children(node)))
        replaced = fn(new)
        result = new if replaced is None else replaced
        memo[key] = result
        return result

    return go(e)


def substitute(e: Expr, mapping: dict) -> Expr:
    """Replace variables (`Var`/`IterVar`, by identity) with the expressions in `mapping`."""
    if not mapping:
        return e
    return transform(e, lambda n: mapping.get(n) if isinstance(n, (Var, IterVar)) else None)


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of `e`, pre-order (shared nodes are visited once)."""
    seen: set[int] = set()
    stack = [e]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(reversed(children(node)))


def free_vars(e: Expr) -> list:
    """The Vars and IterVars `e` mentions, in first-seen order."""
    return [n for n in walk(e) if isinstance(n, (Var, IterVar))]


def conjuncts(cond: Expr) -> list[Expr]:
    """The terms of a conjunction `a & b & ...` (a single term for anything else)."""
    if isinstance(cond, BinOp) and cond.op == "and":
        return conjuncts(cond.a) + conjuncts(cond.b)
    return [cond]


def loads(e: Expr) -> list[Load]:
    return [n for n in walk(e) if isinstance(n, Load)]


def same(a: Expr, b: Expr) -> bool:
    """Structural equality (variables and tensors by identity, constants by value)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    match a:
        case Const():
            return a.value == b.value and a.dtype == b.dtype
        case Var() | IterVar():
            return False
        case Load():
            if a.tensor != b.tensor:
                return False
        case BinOp() | UnaryOp() | Call():
            if (getattr(a, "op", None), getattr(a, "name", None), a.dtype) != \
                    (getattr(b, "op", None), getattr(b, "name", None), b.dtype):
                return False
        case Cast():
            if a.dtype != b.dtype:
                return False
        case Reduce():
            if a.reducer is not b.reducer or a.axes != b.axes:
                return False
    ka, kb = children(a), children(b)
    return len(ka) == len(kb) and all(same(x, y) for x, y in zip(ka, kb))
