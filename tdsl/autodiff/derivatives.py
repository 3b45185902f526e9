"""Local partial derivatives: reverse mode over one compute's expression.

`partials(root, seed, live)` pushes the adjoint `seed` of `root` down the expression DAG,
node by node, with each node's derivative rule, and returns the adjoint reaching each
`Load` of a tensor that `live` accepts. Nothing here knows about index maps: the adjoint
of a load is an expression over the consumer's own axes (`adjoint.py` inverts it).

Only floating-point values carry adjoints. Integer and boolean values (indices,
conditions, casts to integers) are piecewise constant: the gradient stops there. Ties:
`maximum(a, b)` gives the adjoint to `a` where a >= b, `minimum(a, b)` to `a` where a <= b
(the first argument wins, as the first position wins in a max or min reduction).
"""

from __future__ import annotations

import math
from typing import Callable

from ..errors import TdslError
from ..lang import dtypes
from ..lang.expr import (BinOp, Call, Cast, Const, Expr, Load, Select, UnaryOp, call, cast,
                         select)
from ..lang.visit import children

_ZERO_DERIVATIVE = frozenset({"floor", "ceil", "round", "trunc"})


def partials(root: Expr, seed: Expr, live: Callable[[Load], bool],
             values: dict[int, Expr] | None = None) -> list[tuple[Load, Expr]]:
    """(load, adjoint) for every live load under `root`, given root's adjoint `seed`.

    `values` may name a cheaper expression for a node's value (id -> expr: the consumer's
    own tensor for its whole body), used where a derivative needs the value (exp, tanh...).
    """
    values = values or {}
    order = _live_nodes(root, live)
    if not order:
        return []
    adjoint: dict[int, Expr] = {id(root): seed}
    found: list[tuple[Load, Expr]] = []
    alive = {id(n) for n in order}
    for node in reversed(order):                      # every parent before its children
        g = adjoint.pop(id(node), None)
        if g is None:
            continue
        if isinstance(node, Load):
            found.append((node, g))
            continue
        for child, contribution in _rules(node, g, values.get(id(node), node), alive):
            key = id(child)
            adjoint[key] = contribution if key not in adjoint else adjoint[key] + contribution
    return found


def _live_nodes(root: Expr, live: Callable[[Load], bool]) -> list[Expr]:
    """The float nodes with a live load below them, children before parents."""
    memo: dict[int, bool] = {}
    order: list[Expr] = []

    def visit(node: Expr) -> bool:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = False                                  # expressions are acyclic
        if not dtypes.is_float(node.dtype):
            return False
        if isinstance(node, Load):
            result = live(node)
        else:
            result = False
            for child in children(node):
                result = visit(child) or result
        memo[key] = result
        if result:
            order.append(node)
        return result

    visit(root)
    return order


def _rules(node: Expr, g: Expr, value: Expr, alive: set[int]) -> list[tuple[Expr, Expr]]:
    """(child, adjoint contribution) for the live children of `node`, whose adjoint is g."""
    def wants(x: Expr) -> bool:
        return id(x) in alive

    out: list[tuple[Expr, Expr]] = []
    match node:
        case BinOp(op=op, a=a, b=b):
            out = _binary(op, a, b, g, value, wants)
        case UnaryOp(op="neg", value=v):
            out = [(v, -g)]
        case Call(name=name, args=(x,)):
            out = [(x, _unary(name, x, g, value))] if name not in _ZERO_DERIVATIVE else []
        case Cast(value=v):
            out = [(v, cast(v.dtype, g))]
        case Select(cond=c, true_value=t, false_value=f):
            out = [(t, select(c, g, 0)), (f, select(c, 0, g))]
        case _:
            raise TdslError(f"td.grad: no derivative rule for `{node}` "
                            f"({type(node).__name__})")
    return [(child, contribution) for child, contribution in out if wants(child)]


def _binary(op: str, a: Expr, b: Expr, g: Expr, value: Expr, wants) -> list:
    match op:
        case "add":
            return [(a, g), (b, g)]
        case "sub":
            return [(a, g), (b, -g)]
        case "mul":
            return [(a, _times(g, b)), (b, _times(g, a))]
        case "truediv":
            return [(a, g / b), (b, -(g * value) / b)]
        case "power":
            pairs = [(a, g * b * call("power", a, b - 1))] if wants(a) else []
            return pairs + ([(b, g * value * call("log", a))] if wants(b) else [])
        case "max":
            return [(a, select(a >= b, g, 0)), (b, select(a >= b, 0, g))]
        case "min":
            return [(a, select(a <= b, g, 0)), (b, select(a <= b, 0, g))]
        case "mod":                       # a - floor(a / b) * b
            return [(a, g), (b, -g * call("floor", a / b))]
        case "floordiv":                  # piecewise constant
            return []
    raise TdslError(f"td.grad: no derivative rule for the operator {op!r} "
                    f"(in `{a} {op} {b}`)")


def _unary(name: str, x: Expr, g: Expr, value: Expr) -> Expr:
    match name:
        case "exp":
            return _times(g, value)
        case "log":
            return g / x
        case "sqrt":
            return g * 0.5 / value
        case "abs":
            return select(x > 0, g, select(x < 0, -g, 0))
        case "tanh":
            return _times(g, 1 - value * value)
        case "sigmoid":
            return _times(g, value * (1 - value))
        case "sin":
            return _times(g, call("cos", x))
        case "cos":
            return -g * call("sin", x)
        case "log2":
            return g / (x * math.log(2))
        case "exp2":
            return g * value * math.log(2)
    raise TdslError(f"td.grad: no derivative rule for the intrinsic {name}")


def _times(g: Expr, x: Expr) -> Expr:
    """g * x, without the factor when g is the constant 1 (a scalar output's adjoint)."""
    if isinstance(g, Const) and g.value == 1 and g.dtype == x.dtype:
        return x
    return g * x
