"""A canonical text of a schedule: everything that determines the kernel it lowers to.

Two schedules with the same fingerprint lower to the same code, so a build can find
its compiled kernel without lowering again (a cache hit in milliseconds instead of
the isl work). Variables, axes and operations are numbered in order of first
appearance, so the text does not depend on object identities; the source of tdsl
itself is part of it, so a new version of the compiler never reuses old kernels.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ..lang.expr import (BinOp, Call, Cast, Const, Expr, IterVar, Load, Reduce, Select, UnaryOp,
                         Var)
from ..lang.tensor import ComputeOp, PlaceholderOp, UpdateOp


class _Canon:
    def __init__(self):
        self.ids: dict[int, str] = {}
        self.keep: list = []               # keeps numbered objects alive (ids stay unique)

    def ref(self, obj, prefix: str) -> str:
        key = id(obj)
        if key not in self.ids:
            self.ids[key] = f"{prefix}{len(self.ids)}"
            self.keep.append(obj)
        return self.ids[key]

    def axis(self, iv: IterVar) -> str:
        known = id(iv) in self.ids
        name = self.ref(iv, "a")
        if known:
            return name
        return f"{name}:{iv.name}:{iv.kind}[{self.expr(iv.start)},{self.expr(iv.extent)}]"

    def expr(self, e: Expr) -> str:
        match e:
            case Const(value=v, dtype=dt):
                return f"{dt}({v!r})"
            case IterVar():
                return self.axis(e)
            case Var(name=name, dtype=dt):
                return f"${name}:{dt}"
            case BinOp(op=op, a=a, b=b, dtype=dt):
                return f"({op}:{dt} {self.expr(a)} {self.expr(b)})"
            case UnaryOp(op=op, value=v, dtype=dt):
                return f"({op}:{dt} {self.expr(v)})"
            case Call(name=name, args=args, dtype=dt):
                return f"({name}:{dt} {' '.join(self.expr(a) for a in args)})"
            case Cast(dtype=dt, value=v):
                return f"(cast:{dt} {self.expr(v)})"
            case Select(cond=c, true_value=t, false_value=f):
                return f"(select {self.expr(c)} {self.expr(t)} {self.expr(f)})"
            case Load(tensor=t, indices=idx):
                return f"{self.op(t.op)}[{','.join(self.expr(i) for i in idx)}]"
            case Reduce(reducer=r, body=body, axes=axes, where=where):
                acc, value, combined = r.combine_expr(body.dtype)
                del acc, value       # fresh Vars named acc and value, printed by name
                return (f"(reduce {r.name} combine={self.expr(combined)} "
                        f"identity={self.expr(r.identity(body.dtype))} "
                        f"axes=[{','.join(self.axis(a) for a in axes)}] "
                        f"body={self.expr(body)} where="
                        f"{self.expr(where) if where is not None else '-'})")
        own = getattr(e, "child_exprs", None)
        raise TypeError(f"cannot fingerprint {type(e).__name__}{' (IR node)' if own else ''}")

    def op(self, op) -> str:
        return self.ref(op, "op")

    def operation(self, op) -> str:
        head = f"{self.op(op)}={type(op).__name__}:{op.name}:{op.dtype}"
        if isinstance(op, PlaceholderOp):
            return f"{head} shape=({','.join(self.expr(d) for d in op.shape)})"
        if isinstance(op, ComputeOp):
            return (f"{head} axis=[{','.join(self.axis(a) for a in op.axis)}] "
                    f"body={self.expr(op.body)}")
        if isinstance(op, UpdateOp):
            return (f"{head} base={self.op(op.base.op)} "
                    f"axis=[{','.join(self.axis(a) for a in op.axis)}] "
                    f"raxis=[{','.join(self.axis(a) for a in op.reduce_axis)}] "
                    f"index=({','.join(self.expr(i) for i in op.index)}) "
                    f"value={self.expr(op.value)}")
        raise TypeError(type(op).__name__)

    def state(self, key, state) -> str:
        parts = [f"stage {self.op(key)} op={self.op(state.op)} scope={state.scope} "
                 f"align={state.align}" +
                 (f" order={state.storage_order}" if state.storage_order else "") +
                 "".join(f" prefetch={self.op(p.tensor.op)}@{self.axis(p.axis)}{p.shift:+d}"
                         for p in state.prefetches)]
        for rel in state.relations:
            if hasattr(rel, "factor"):
                parts.append(f"split {self.axis(rel.parent)} -> {self.axis(rel.outer)} "
                             f"{self.axis(rel.inner)} by {rel.factor}")
            else:
                parts.append(f"fuse {self.axis(rel.outer)} {self.axis(rel.inner)} -> "
                             f"{self.axis(rel.fused)}")
        parts.append("leaves " + ",".join(self.axis(a) for a in state.leaves))
        parts.append("kinds " + ",".join(f"{self.axis(a)}={k}" for a, k in state.kinds))
        attach = state.attach
        if isinstance(attach, tuple):
            parts.append(f"at {self.op(attach[0])}.{self.axis(attach[1])}")
        else:
            parts.append(f"at {attach or 'root'}")
        return "\n  ".join(parts)


def fingerprint(data, args, name: str, extra: str = "") -> str:
    """The canonical text of schedule `data` lowered for `args` as kernel `name`."""
    canon = _Canon()
    lines = [f"tdsl {source_digest()}", f"kernel {name} {extra}"]
    for op in data.placeholders:
        lines.append(canon.operation(op))
    ops = []
    for key in data.order:
        for op in [key] + data.ops_of(key):
            if all(op is not o for o in ops):
                ops.append(op)
    # producers of rewritten ops (cache stages) are themselves keys; every op is listed once
    for op in ops:
        lines.append(canon.operation(op))
    for key in data.order:
        lines.append(canon.state(key, data.states[key]))
    lines.append("outputs " + ",".join(canon.op(t.op) for t in data.outputs))
    lines.append("args " + ",".join(canon.op(t.op) for t in args))
    return "\n".join(lines)


def graph_text(ops) -> str:
    """The canonical text of a stage DAG (`ops` producers first), without a schedule:
    the key of a compiled network (tdsl/graph)."""
    canon = _Canon()
    return "\n".join([f"tdsl {source_digest()}"] + [canon.operation(op) for op in ops])


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """A hash of tdsl's own source files: a changed compiler never reuses old kernels
    (and a resumed tune never reuses what an older tdsl realized, tuning/realizations.py)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".h") and path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]
