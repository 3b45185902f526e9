"""Barrier insertion: where a block's threads must wait for each other.

Runs on a kernel body from kernels.py. Code outside thread regions is uniform (every
thread of the block runs it in step), so barriers can only go there. Walking the body in
order, it keeps the accesses to memory other threads see (shared arrays and global
buffers the kernel writes) made since the last barrier; a region or statement that
conflicts with them (one of the two writes, and not both are run by thread 0 alone) gets
a `__syncthreads()` before it. A serial loop gets one at the end of its body when the
next iteration's first accesses conflict with this iteration's last ones (a tile that is
read, then overwritten). Private buffers never need one.

>>> body = insert_barriers(body, private={"C_local"}, readonly={"A", "B"})   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses

from ...errors import ScheduleError
from ...ir import nodes as ir
from ...ir.simplify import simplify_index
from ...lang.visit import free_vars, substitute, walk
from .storage import THREAD_VARS

# An access: (buffer name, "r" | "w", who: "all" threads or thread "t0" alone, and for a
# write the id of the Store: a statement writes each element once, so two writes by the
# same Store never touch the same element; a read-modify-write also reads).
Access = tuple[str, str, str, int]


def insert_barriers(body: ir.Stmt, private: set[str], readonly: set[str]) -> ir.Stmt:
    """`body` with ir.Sync() where the threads of a block must wait for each other.

    `private` buffers belong to one thread, `readonly` ones are never written; a buffer
    written by a single store and never read in the kernel (a pure stage's output: one
    write per element) needs no barrier either.
    """
    stores: dict[str, int] = {}
    loaded: set[str] = set()
    for node in _stmt_nodes(body):
        if isinstance(node, ir.Store):
            stores[node.buffer.name] = stores.get(node.buffer.name, 0) + 1
        elif isinstance(node, ir.BufferLoad):
            loaded.add(node.buffer.name)
    write_once = {name for name, n in stores.items() if n == 1 and name not in loaded}
    skip = private | write_once | readonly
    _check_regions(body, skip)
    return _Barriers(private | write_once, readonly).stmt(body, frozenset())[0]


def _check_regions(s: ir.Stmt, skip: set[str]) -> None:
    """Refuse a thread region in which threads would have to wait for each other: a
    buffer written under some thread loops and used at another element under others (two
    sibling loops bound to threadIdx.y inside one threadIdx.x loop), since no barrier can
    go there. Accesses under the same thread loops are ordered by legality already."""
    match s:
        case ir.Seq(stmts=stmts):
            for c in stmts:
                _check_regions(c, skip)
        case ir.For(kind=kind) if kind.startswith("threadIdx."):
            found: list = []
            _region_accesses(s, (), {}, skip, found)
            for name, mode, loops, index in found:
                for name2, mode2, loops2, index2 in found:
                    if name == name2 and "w" in (mode, mode2) and \
                            [id(v) for v in loops] != [id(v) for v in loops2] and \
                            (index is None or index != index2):
                        names = ", ".join(sorted({v.name for v in (*loops, *loops2)}))
                        raise ScheduleError(
                            f"{name} is written inside the threadIdx loops starting at "
                            f"{s.var.name} and used by other threads in the same loops (loops "
                            f"{names}): they would have to wait for each other "
                            "(__syncthreads) inside the thread loops, where not every thread "
                            "arrives. Compute the producer at a loop outside the threadIdx "
                            "loops, or bind producer and consumer to the same thread loops")
        case ir.For(body=body):
            _check_regions(body, skip)
        case ir.If(then=then, otherwise=other):
            _check_regions(then, skip)
            if other is not None:
                _check_regions(other, skip)


def _region_accesses(s: ir.Stmt, loops: tuple, env: dict, skip: set[str], found: list) -> None:
    """(buffer, "r" | "w", thread loops around it, its indices as text in threadIdx, or None
    if they depend on a serial loop of the region) of every shared-visible access."""
    def canon(indices):
        if any(id(v) in env and env[id(v)] is None for e in indices for v in free_vars(e)):
            return None
        mapping = {v: env[id(v)] for e in indices for v in free_vars(e) if id(v) in env}
        return tuple(str(simplify_index(substitute(e, mapping))) for e in indices)

    def reads(exprs):
        for e in exprs:
            for n in walk(e):
                if isinstance(n, ir.BufferLoad) and n.buffer.name not in skip:
                    found.append((n.buffer.name, "r", loops, canon(n.indices)))
    match s:
        case ir.Seq(stmts=stmts):
            for c in stmts:
                _region_accesses(c, loops, env, skip, found)
        case ir.For(var=v, start=start, stop=stop, body=body, kind=kind):
            reads((start, stop))
            if kind.startswith("threadIdx."):
                inner = {**env, id(v): start + THREAD_VARS[kind[-1]]}
                _region_accesses(body, loops + (v,), inner, skip, found)
            else:
                _region_accesses(body, loops, {**env, id(v): None}, skip, found)
        case ir.Store(buffer=b, indices=idx, value=value):
            reads((*idx, value))
            if b.name not in skip:
                found.append((b.name, "w", loops, canon(idx)))
        case ir.If(cond=cond, then=then, otherwise=other):
            reads((cond,))
            _region_accesses(then, loops, env, skip, found)
            if other is not None:
                _region_accesses(other, loops, env, skip, found)


def conflicts(before, after) -> bool:
    """True if an access in `after` must wait for one in `before`."""
    for name, mode, who, store in before:
        for name2, mode2, who2, store2 in after:
            if name == name2 and "w" in (mode, mode2) and not (who == who2 == "t0") \
                    and not (mode == mode2 == "w" and store == store2):
                return True
    return False


class _Barriers:
    def __init__(self, private: set[str], readonly: set[str]):
        self.skip = private | readonly

    def stmt(self, s: ir.Stmt, pending: frozenset) -> tuple[ir.Stmt, frozenset]:
        """(s with barriers, the accesses pending after it), given those pending before."""
        match s:
            case ir.Seq(stmts=stmts):
                out = []
                for child in stmts:
                    new, pending = self.stmt(child, pending)
                    out.append(new)
                return ir.seq(*out), pending
            case ir.Sync():
                return s, frozenset()
            case ir.For(kind=kind) if kind.startswith("blockIdx."):
                body, pending = self.stmt(s.body, pending)     # blocks never wait on blocks
                return dataclasses.replace(s, body=body), pending
            case ir.For(kind=kind) if not kind.startswith("threadIdx."):
                # one barrier before the loop rather than one per iteration inside it
                if conflicts(pending, self.all_accesses(s)):
                    new, after = self.loop(s, frozenset())
                    return ir.seq(ir.Sync(), new), after
                return self.loop(s, pending)
            case ir.If(cond=cond, then=then, otherwise=other):
                prefix = []
                if conflicts(pending, self.all_accesses(s)):
                    prefix, pending = [ir.Sync()], frozenset()
                pending = pending | self.reads_of([cond], "all")
                then, p1 = self.stmt(then, pending)
                p2 = pending
                if other is not None:
                    other, p2 = self.stmt(other, pending)
                return ir.seq(*prefix, ir.If(cond, then, other)), p1 | p2
        # a leaf: a thread region (a threadIdx loop) or a statement run by the block
        accesses = self.accesses(s)
        if conflicts(pending, accesses):
            return ir.seq(ir.Sync(), s), accesses
        return s, pending | accesses

    def loop(self, s: ir.For, pending: frozenset) -> tuple[ir.Stmt, frozenset]:
        body, end = self.stmt(s.body, pending)
        if conflicts(end, self.head(body)):
            # the next iteration would overwrite what this one still reads (or read what
            # it wrote before every thread is done)
            body = ir.seq(body, ir.Sync())
            after = pending                       # with no iteration, nothing changed
        else:
            after = pending | end
        return dataclasses.replace(s, body=body), after

    def head(self, body: ir.Stmt) -> frozenset:
        """Accesses a loop body makes before its first unconditional barrier."""
        found: frozenset = frozenset()
        for child in body.stmts if isinstance(body, ir.Seq) else (body,):
            if isinstance(child, ir.Sync):
                break
            found |= self.all_accesses(child)
        return found

    def all_accesses(self, s: ir.Stmt) -> frozenset:
        match s:
            case ir.Seq(stmts=stmts):
                return frozenset().union(*(self.all_accesses(c) for c in stmts))
            case ir.For(kind=kind) if not kind.startswith("threadIdx."):
                return self.all_accesses(s.body)
            case ir.If(cond=cond, then=then, otherwise=other):
                found = self.reads_of([cond], "all") | self.all_accesses(then)
                return found | (self.all_accesses(other) if other is not None else frozenset())
            case ir.Sync():
                return frozenset()
        return self.accesses(s)

    def accesses(self, s: ir.Stmt) -> frozenset:
        """The shared-visible accesses of a leaf run from uniform code."""
        if isinstance(s, ir.Store):
            who = "all" if s.buffer.name in self.skip else "t0"
            found = self.reads_of([*s.indices, s.value], who)
            if s.buffer.name not in self.skip:
                found |= {(s.buffer.name, "w", who, id(s))}
            return found
        found: set[Access] = set()
        for node in _stmt_nodes(s):
            if isinstance(node, ir.Store) and node.buffer.name not in self.skip:
                found.add((node.buffer.name, "w", "all", id(node)))
            elif isinstance(node, ir.BufferLoad) and node.buffer.name not in self.skip:
                found.add((node.buffer.name, "r", "all", 0))
        return frozenset(found)

    def reads_of(self, exprs, who: str) -> frozenset:
        return frozenset((n.buffer.name, "r", who, 0) for e in exprs for n in walk(e)
                         if isinstance(n, ir.BufferLoad) and n.buffer.name not in self.skip)


def _stmt_nodes(s: ir.Stmt):
    """Every Store and every expression node under `s`."""
    match s:
        case ir.Seq(stmts=stmts):
            for c in stmts:
                yield from _stmt_nodes(c)
        case ir.For(start=start, stop=stop, body=body):
            yield from walk(start)
            yield from walk(stop)
            yield from _stmt_nodes(body)
        case ir.Store(indices=idx, value=value):
            yield s
            for e in (*idx, value):
                yield from walk(e)
        case ir.If(cond=cond, then=then, otherwise=other):
            yield from walk(cond)
            yield from _stmt_nodes(then)
            if other is not None:
                yield from _stmt_nodes(other)
