"""Random schedule moves for the fuzzer, as source text.

`random_move(s, names, rng)` looks at the live schedule `s` and returns one
statement (a `Move`) that applies a primitive to it: split, tile, fuse, reorder,
compute_at at any depth, compute_inline, compute_root, cache_read, cache_write,
rfactor, parallel, vectorize, unroll, prefetch. Nothing checks legality first: illegal moves
are drawn on purpose, and so are bad calls (wrong types, zero factors, axes of
another stage), which must raise `TypeError`, `ValueError` or `ScheduleError`.

Stages and loops are named by position (`s.stages[1].leaf_iter_vars[2]`), so
replaying the same statements on the same program reaches the same loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FACTORS = (1, 2, 3, 4, 5, 7, 8, 16)


@dataclass(frozen=True)
class Move:
    code: str
    bad_call: bool = False        # a wrong argument on purpose


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def _stage(k: int) -> str:
    return f"s.stages[{k}]"


def _leaf(k: int, j: int) -> str:
    return f"s.stages[{k}].leaf_iter_vars[{j}]"


def _computed(s) -> list[int]:
    return [k for k, st in enumerate(s.stages) if not st.state.inlined and st.leaf_iter_vars]


def _reads(s, k: int, j: int) -> bool:
    """Does stage k read the tensor of stage j (directly)?"""
    return any(s.data.key_of(t.op) is s.stages[j]._key for t in s.stages[k].op.input_tensors)


def random_move(s, placeholders: list[str], rng: np.random.Generator) -> Move:
    """One random primitive call on schedule `s` (placeholders: names of input tensors)."""
    stages = _computed(s)
    if not stages or rng.random() < 0.08:
        return bad_call(s, rng)
    k = _pick(rng, stages)
    leaves = s.stages[k].leaf_iter_vars
    n = len(leaves)
    j = int(rng.integers(n))
    kind = _pick(rng, ("split", "split", "tile", "fuse", "reorder", "compute_at", "compute_at",
                       "compute_at", "inline", "root", "cache_read", "cache_write", "rfactor",
                       "parallel", "parallel", "vectorize", "vectorize", "unroll",
                       "prefetch"))
    st, leaf = _stage(k), _leaf(k, j)
    if kind == "split":
        if rng.random() < 0.15:
            return Move(f"{st}.split({leaf}, nparts={_pick(rng, (2, 3, 4))})")
        return Move(f"{st}.split({leaf}, factor={_pick(rng, FACTORS)})")
    if kind == "tile" and n >= 2:
        a, b = sorted(int(x) for x in rng.choice(n, size=2, replace=False))
        return Move(f"{st}.tile({_leaf(k, a)}, {_leaf(k, b)}, {_pick(rng, FACTORS)}, "
                    f"{_pick(rng, FACTORS)})")
    if kind == "fuse" and n >= 2:
        j = min(j, n - 2)
        count = 3 if n - j >= 3 and rng.random() < 0.3 else 2
        return Move(f"{st}.fuse({', '.join(_leaf(k, j + d) for d in range(count))})")
    if kind == "reorder" and n >= 2:
        order = [int(x) for x in rng.permutation(n)]
        return Move(f"{st}.reorder({', '.join(_leaf(k, x) for x in order)})")
    if kind == "compute_at":
        consumers = [c for c in stages if c != k and _reads(s, c, k)] or \
            [c for c in stages if c != k]
        if consumers:
            c = _pick(rng, consumers)
            depth = int(rng.integers(len(s.stages[c].leaf_iter_vars)))
            return Move(f"{st}.compute_at({_stage(c)}, {_leaf(c, depth)})")
    if kind == "inline":
        return Move(f"{st}.compute_inline()")
    if kind == "root":
        return Move(f"{st}.compute_root()")
    if kind == "cache_read":
        inputs = [t for t in s.stages[k].op.input_tensors]
        if inputs:
            t = _pick(rng, inputs)
            name = t.name if t.name in placeholders else None
            src = name or _tensor_of(s, t)
            if src is not None:
                return Move(f"s.cache_read({src}, \"local\", [{st}.op.output(0)])")
    if kind == "cache_write":
        return Move(f"s.cache_write({st}.op.output(0), {_pick(rng, ('local', 'global'))!r})")
    if kind == "rfactor":
        reduce_leaves = [x for x, v in enumerate(leaves) if v.kind == "reduce"]
        if reduce_leaves:
            return Move(f"s.rfactor({st}.op.output(0), {_leaf(k, _pick(rng, reduce_leaves))})")
    if kind == "prefetch":
        inputs = [t for t in s.stages[k].op.input_tensors]
        if inputs:
            t = _pick(rng, inputs)
            src = t.name if t.name in placeholders else _tensor_of(s, t)
            if src is not None:
                return Move(f"{st}.prefetch({src}, {leaf}, {_pick(rng, (1, 2, 5, -1))})")
    if kind in ("parallel", "vectorize", "unroll"):
        return Move(f"{st}.{kind}({leaf})")
    return Move(f"{st}.split({leaf}, factor={_pick(rng, FACTORS)})")


def _tensor_of(s, t) -> str | None:
    for k, st in enumerate(s.stages):
        if s.data.key_of(t.op) is st._key:
            return f"{_stage(k)}.op.output(0)"
    return None


def bad_call(s, rng) -> Move:
    """A primitive called with a wrong argument."""
    stages = _computed(s) or [0]
    k = _pick(rng, stages)
    st = _stage(k)
    leaf = _leaf(k, 0) if s.stages[k].leaf_iter_vars else "None"
    other = [c for c in stages if c != k]
    calls = [f"{st}.split({leaf}, factor=0)", f"{st}.split({leaf}, factor=-3)",
             f"{st}.split({leaf}, factor='4')", f"{st}.split({leaf}, factor=2.5)",
             f"{st}.split({leaf}, factor=2, nparts=2)", f"{st}.split({leaf})",
             f"{st}.split({leaf}, nparts=0)", f"{st}.parallel(None)", f"{st}.vectorize(3)",
             f"{st}.reorder({leaf}, {leaf})", f"{st}.fuse({leaf})",
             f"{st}.tile({leaf}, {leaf}, 0, 2)", f"{st}.bind({leaf}, 'threadIdx.w')",
             f"{st}.compute_at({st}.op.output(0), {leaf})", f"{st}.compute_at({st}, {leaf})",
             f"s.cache_read({st}.op.output(0), 'nowhere', [{st}.op.output(0)])",
             f"s.cache_write({st}.op.output(0), 7)", f"s.rfactor({st}.op.output(0), None)",
             f"{st}.storage_align({leaf}, 0, 0)", "s['no such tensor']",
             f"{st}.prefetch(None, {leaf})", f"{st}.prefetch({st}.op.output(0), {leaf}, 0)"]
    if other:
        calls.append(f"{st}.split({_leaf(other[0], 0)}, factor=2)")
        calls.append(f"{st}.parallel({_leaf(other[0], 0)})")
    return Move(_pick(rng, calls), bad_call=True)
