"""Where each buffer allocated inside a kernel lives, and the accesses rewritten for it.

- "shared" scope, or the default scope, allocated outside the thread loops: one
  `__shared__` array per block (Halide's rule: a stage computed at a block loop is
  shared by the block's threads).
- "local" scope, or any buffer allocated inside the thread loops: private to each thread
  (registers when every index is a constant after unrolling).

A private buffer allocated outside some thread loops that use it must be used so that
each element belongs to one thread. For each such thread loop (threadIdx.e) one dimension
of the buffer must be indexed, in every access, as `c * threadIdx.e + r` with
0 <= r < c (c = 1 for an accumulator tile indexed by (threadIdx.y, threadIdx.x)): each
thread keeps c elements of that dimension, indexed by r. Anything else is refused.

Every array gets a static shape: the largest the region can be (isl sizes regions of
constant tiles by constants).
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass

import numpy as np

from ...errors import ScheduleError
from ...ir import nodes as ir
from ...ir.simplify import simplify_index
from ...lang.expr import Const, Expr, Var
from ...lang.visit import children, rebuild, substitute
from . import bounds

THREAD_VARS = {d: Var(f"threadIdx.{d}", "int64") for d in ("x", "y", "z")}


@dataclass(frozen=True)
class Allocation:
    buffer: ir.Buffer
    uniform: bool                   # outside every thread loop
    tvars: tuple                    # thread loops around the Alloc: (dim, var, start)
    at: str                         # "C's loop j_outer", for messages


@dataclass(frozen=True)
class Access:
    node: object                    # the Store or BufferLoad
    indices: tuple[Expr, ...]
    where: object                   # kernels.Where


def place(allocs: dict[int, Allocation], accesses: dict[int, list[Access]], sizes: dict):
    """(shared buffers, private buffers, {id(buffer): new buffer},
    {id(access node): new indices})."""
    shared, private, mapping, overrides = [], [], {}, {}
    for a in allocs.values():
        b = a.buffer
        uses = accesses.get(id(b), [])
        if a.uniform and b.scope in ("shared", "global"):
            new = _static(b, [None] * len(b.shape), "shared memory", sizes)
            shared.append(new)
        else:
            tiles, remainders = _private_layout(a, uses, sizes)
            new = _static(b, tiles, "a private (per-thread) array", sizes)
            private.append(new)
            for access, indices in zip(uses, remainders):
                overrides[id(access.node)] = indices
        mapping[id(b)] = new
    return shared, private, mapping, overrides


def _private_layout(a: Allocation, uses: list[Access], sizes: dict):
    """Per dimension, the elements each thread keeps (c, or None for all of them), and
    per access the indices into the thread's part."""
    b = a.buffer
    outer = {d for d, _, _ in a.tvars}
    tiles: list = ["?"] * len(b.shape)
    decomposed = []
    ok = True
    for use in uses:
        extra = [(d, v, start) for d, v, start in use.where.tvars if d not in outer]
        env = {v: start + THREAD_VARS[d] for d, v, start in extra}
        parts = []
        for k, index in enumerate(use.indices):
            part = _split_index(simplify_index(substitute(index, env)) if env else index,
                                [d for d, _, _ in extra])
            if part is None:
                ok = False
                part = (None, index)
            cand = part[0]
            if tiles[k] == "?":
                tiles[k] = cand
            ok = ok and tiles[k] == cand
            parts.append(part if cand is not None else (None, index))
        decomposed.append((use, extra, parts))
    tiles = [None if t == "?" else t for t in tiles]
    dims = [t[0] for t in tiles if t is not None]
    ok = ok and len(set(dims)) == len(dims)
    for use, extra, parts in decomposed:
        ok = ok and sorted(dims) == sorted(d for d, _, _ in extra)
        env = use.where.env(sizes)
        for (tile, r) in parts:
            if tile is not None and env is not None and ok:
                lo = bounds.lower_bound(r, env, use.where.facts)
                hi = bounds.upper_bound(r, env, use.where.facts)
                ok = 0 <= lo and hi <= tile[1] - 1
    if not ok:
        raise ScheduleError(
            f"{b.name} (scope {b.scope!r}) is computed at {a.at}, outside the threadIdx "
            f"loops that use it, so it is private to each thread, but its elements are not "
            f"each used by one thread: for each threadIdx loop around an access, one "
            f"dimension of {b.name} must be indexed by c * threadIdx + (0..c-1), the same way "
            f"in every access (a register tile). Bind its own loops to the same threads, "
            f"compute it inside the threadIdx loops, or make it 'shared'")
    counts = [t[1] if t is not None else None for t in tiles]
    return counts, [tuple(r for _, r in parts) for _, _, parts in decomposed]


def _split_index(index: Expr, dims: list[str]):
    """((dim, c), r) with index == c * threadIdx.dim + r, or (None, index) if no thread
    variable appears, or None if the index mixes them otherwise."""
    found = []
    for d in dims:
        c = bounds.coefficient(index, THREAD_VARS[d])
        if c is None:
            return None
        if c:
            found.append((d, c))
    if not found:
        return None, index
    if len(found) > 1 or found[0][1] < 0:
        return None
    d, c = found[0]
    return (d, c), simplify_index(index - THREAD_VARS[d] * c)


def _static(b: ir.Buffer, tiles: list, what: str, sizes: dict) -> ir.Buffer:
    """`b` with a constant shape: `tiles[k]` elements in dimension k where given, else the
    largest size of the dimension; row-major strides unless they were constant already."""
    shape = []
    for k, tile in enumerate(tiles):
        if tile is not None:
            shape.append(Const(int(tile), "int64"))
            continue
        n = bounds.upper_bound(b.shape[k], sizes)
        if n == bounds.INF:
            raise ScheduleError(
                f"{b.name} would be {what} of shape [{', '.join(map(str, b.shape))}], which "
                "depends on the input sizes; CUDA needs its size at compile time. Compute it "
                "over constant tiles (split by a constant factor and compute_at the tile loop)")
        shape.append(Const(max(int(n), 1), "int64"))
    if all(t is None for t in tiles) and all(
            isinstance(x, Const) for x in (*b.shape, *(b.strides or ()))):
        return b                        # constant already (keeps storage_align's padding)
    strides = tuple(simplify_index(s) for s in ir.layout_strides(tuple(shape), (), b.order))
    return ir.Buffer(b.name, b.dtype, tuple(shape), b.role, b.scope, strides, order=b.order)


def elements(b: ir.Buffer) -> int:
    """Elements of a buffer with a constant shape (strides include any padding)."""
    return int(simplify_index(b.elements).value)


def itemsize(b: ir.Buffer) -> int:
    return np.dtype(b.dtype).itemsize


def rebuffer(s: ir.Stmt, mapping: dict, overrides: dict) -> ir.Stmt:
    """`s` without Allocs; accesses to the buffers in `mapping` go to the new buffers, with
    the indices in `overrides` (by the id of the original Store or BufferLoad)."""
    memo: dict[int, Expr] = {}

    def expr(e: Expr) -> Expr:
        if id(e) in memo:
            return memo[id(e)]
        if isinstance(e, ir.BufferLoad) and id(e.buffer) in mapping:
            indices = tuple(expr(i) for i in overrides.get(id(e), e.indices))
            result: Expr = ir.BufferLoad(mapping[id(e.buffer)], indices, e.checked)
        else:
            result = rebuild(e, tuple(expr(c) for c in children(e)))
        memo[id(e)] = result
        return result

    def go(s: ir.Stmt) -> ir.Stmt:
        match s:
            case ir.Seq(stmts=stmts):
                return ir.seq(*(go(c) for c in stmts))
            case ir.For(start=start, stop=stop, body=body):
                return dataclasses.replace(s, start=expr(start), stop=expr(stop), body=go(body))
            case ir.Store(buffer=b, indices=idx, value=value, checked=checked):
                idx = overrides.get(id(s), idx)
                return ir.Store(mapping.get(id(b), b), tuple(expr(i) for i in idx), expr(value),
                                checked)
            case ir.If(cond=cond, then=then, otherwise=other):
                return ir.If(expr(cond), go(then), go(other) if other is not None else None)
            case ir.Alloc(body=body):
                return go(body)
        return s

    return go(s)
