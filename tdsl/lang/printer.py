"""Expressions as readable text, Python-like: `A[i, k] * B[k, j]`, `exp(x - m)`."""

from __future__ import annotations

import numpy as np

from .expr import (SYMBOLS, BinOp, Call, Cast, Const, Expr, IterVar, Load, Reduce, Select,
                   UnaryOp, Var)

_PRECEDENCE = {
    "lt": 1, "le": 1, "gt": 1, "ge": 1, "eq": 1, "ne": 1, "or": 2, "xor": 3, "and": 4,
    "add": 5, "sub": 5, "mul": 6, "truediv": 6, "floordiv": 6, "mod": 6, "power": 8,
    "truncdiv": 6, "truncmod": 6,
}
# The IR's C-style division of non-negative values prints like Python's (same value).
_IR_SYMBOLS = {"truncdiv": "//", "truncmod": "%"}


def expr_str(e: Expr, names=None) -> str:
    """`e` as text. `names` optionally maps variables to the names to print."""
    return _fmt(e, 0, names or {})


def _fmt(e: Expr, parent: int, names) -> str:
    match e:
        case Var() | IterVar():
            return names.get(e, e.name)
        case Const(value=v, dtype=dt):
            if isinstance(v, bool):
                return "True" if v else "False"
            if isinstance(v, float):
                # the shortest text that reads back as the same value of its type
                text = repr(v) if dt == "float64" else str(np.dtype(dt).type(v))
                if text in ("inf", "-inf", "nan"):
                    text = {"inf": "inf", "-inf": "-inf", "nan": "nan"}[text]
                return text if dt in ("float32", "float64") else f"{dt}({text})"
            return str(v)
        case BinOp(op=op, a=a, b=b) if op in ("min", "max"):
            return f"{op}({_fmt(a, 0, names)}, {_fmt(b, 0, names)})"
        case BinOp(op=op, a=a, b=b):
            prec = _PRECEDENCE[op]
            symbol = SYMBOLS.get(op) or _IR_SYMBOLS[op]
            text = f"{_fmt(a, prec, names)} {symbol} {_fmt(b, prec + 1, names)}"
            return f"({text})" if prec < parent else text
        case UnaryOp(op=op, value=v):
            text = ("-" if op == "neg" else "~") + _fmt(v, 9, names)
            return f"({text})" if parent > 7 else text     # Python: -x ** 2 == -(x ** 2)
        case Call(name=name, args=args):
            return f"{name}({', '.join(_fmt(a, 0, names) for a in args)})"
        case Cast(dtype=dt, value=v):
            return f"{dt}({_fmt(v, 0, names)})"
        case Select(cond=c, true_value=t, false_value=f):
            return f"select({_fmt(c, 0, names)}, {_fmt(t, 0, names)}, {_fmt(f, 0, names)})"
        case Load(tensor=t, indices=idx):
            return f"{t.name}[{', '.join(_fmt(i, 0, names) for i in idx) or '()'}]"
        case Reduce(reducer=r, body=body, axes=axes, where=where):
            ax = ", ".join(names.get(a, a.name) for a in axes)
            cond = "" if where is None else f", where={_fmt(where, 0, names)}"
            return f"{r.name}({_fmt(body, 0, names)}, axis=[{ax}]{cond})"
    # Nodes defined downstream (the IR's BufferLoad) print themselves.
    own = getattr(e, "format_with", None)
    return own(lambda x: _fmt(x, 0, names)) if own is not None else object.__repr__(e)
