"""The loop IR as readable text: what `print(td.lower(s, args))` shows.

Python-like: `for i in range(0, n):  # parallel`, `C[i, j] = C[i, j] + A[i, k] * B[k, j]`.
"""

from __future__ import annotations

from ..lang.printer import expr_str
from ..lang.expr import Expr
from .nodes import Alloc, For, If, Kernel, Prefetch, Seq, Stmt, Store, Sync


def _e(e: Expr) -> str:
    return expr_str(e)


def stmt_lines(s: Stmt, depth: int = 0) -> list[str]:
    pad = "  " * depth
    match s:
        case Seq(stmts=stmts):
            return [line for child in stmts for line in stmt_lines(child, depth)]
        case For(var=v, start=start, stop=stop, body=body, kind=kind, step=step):
            note = "" if kind == "serial" else f"  # {kind}"
            head = f"{pad}for {v.name} in range({_e(start)}, {_e(stop)}):{note}"
            if step != 1:
                head = f"{pad}for {v.name} in range({_e(start)}, {_e(stop)}, {step}):{note}"
            elif _e(start) == "0":
                head = f"{pad}for {v.name} in range({_e(stop)}):{note}"
            return [head] + stmt_lines(body, depth + 1)
        case Store(buffer=b, indices=idx, value=value):
            return [f"{pad}{b.name}[{', '.join(_e(i) for i in idx) or '()'}] = {_e(value)}"]
        case Prefetch(buffer=b, indices=idx, write=write):
            what = "prefetch for write" if write else "prefetch"
            return [f"{pad}{what} {b.name}[{', '.join(_e(i) for i in idx)}]"]
        case If(cond=c, then=then, otherwise=other):
            lines = [f"{pad}if {_e(c)}:"] + stmt_lines(then, depth + 1)
            if other is not None:
                lines += [f"{pad}else:"] + stmt_lines(other, depth + 1)
            return lines
        case Alloc(buffer=b, body=body):
            shape = ", ".join(_e(d) for d in b.shape)
            note = "" if b.scope == "global" else f"  # {b.scope}"
            return [f"{pad}{b.name} = alloc {b.dtype}[{shape}]{note}"] + stmt_lines(body, depth)
        case Sync():
            return [f"{pad}sync_threads()"]
    return [f"{pad}{s!r}"]


def stmt_str(s: Stmt) -> str:
    return "\n".join(stmt_lines(s))


def kernel_str(k: Kernel) -> str:
    params = ", ".join(f"{b.name}: {b.dtype}[{', '.join(_e(d) for d in b.shape)}]"
                       for b in k.params)
    lines = [f"def {k.name}({params}):"]
    for b in k.temps:
        shape = ", ".join(_e(d) for d in b.shape)
        lines.append(f"  {b.name} = alloc {b.dtype}[{shape}]")
    lines += stmt_lines(k.body, 1)
    return "\n".join(lines)
