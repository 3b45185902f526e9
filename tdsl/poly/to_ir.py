"""The isl AST, translated into tdsl's loop IR with every statement instantiated.

A user node of the AST names a statement and gives its coordinates as
expressions of the loop iterators; the statement's store is instantiated by
substituting them, loads and stores become buffer accesses (rebased for
buffers private to a loop iteration), and loads isl could not prove in bounds
are marked for a run-time check. Loops are named after the axes they run
(`i_outer`), through the marks the schedule tree carries.
"""

from __future__ import annotations

import islpy as isl

from ..ir import nodes as ir
from ..ir.simplify import simplify_index
from ..lang import dtypes
from ..lang.expr import Const, Expr, Load, Var
from ..lang.printer import expr_str
from ..lang.visit import children, rebuild, substitute, walk
from .ast_expr import from_ast, plus_one
from .codegen import Marks
from .model import Model, StmtModel

_N = isl.ast_node_type


class Names:
    """C identifiers for loop variables: the axis name, else stage-qualified, unique
    among the loops in scope (sibling loops may reuse a name, as C allows)."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)          # buffers and sizes: never reused

    def fresh(self, base: str, stage: str = "") -> str:
        for candidate in (base, f"{stage}_{base}" if stage else base):
            if candidate not in self.taken:
                return candidate
        k = 1
        while f"{base}_{k}" in self.taken:
            k += 1
        return f"{base}_{k}"


class Translator:
    def __init__(self, model: Model, marks: Marks, buffers: dict[str, ir.Buffer],
                 layouts: dict, names: Names):
        self.model, self.marks, self.buffers, self.layouts = model, marks, buffers, layouts
        self.names = names
        self.ids: dict[str, Expr] = {p.name: p for p in model.params}
        self.active: dict[int, Var] = {}      # id(Loop) -> variable of its AST loop in scope
        self.proven = {}
        for sm in model.stmts.values():
            for acc in sm.reads:
                self.proven[(sm.name, id(acc.load))] = acc.proven_in_bounds

    def stmt(self, node: isl.AstNode, pending=None) -> ir.Stmt:
        kind = node.get_type()
        if kind == _N.block:
            children = node.block_get_children()
            return ir.seq(*[self.stmt(children.get_at(k), pending)
                            for k in range(children.n_ast_node())])
        if kind == _N.mark:
            key = node.mark_get_id().get_name()
            inner = node.mark_get_node()
            if key in self.marks.loops:
                return self.stmt(inner, self.marks.loops[key])
            body = self.stmt(inner, pending)
            for array in reversed(self.marks.allocs[key]):
                body = ir.Alloc(self.buffers[array.name], body)
            return body
        if kind == _N.for_:
            return self._for(node, pending)
        if kind == _N.if_:
            cond = from_ast(node.if_get_cond(), self.ids)
            then = self.stmt(node.if_get_then_node(), pending)
            other = self.stmt(node.if_get_else_node(), pending) if node.if_has_else_node() \
                else None
            return ir.If(cond, then, other)
        if kind == _N.user:
            return self._user(node)
        raise NotImplementedError(f"isl AST node {kind}")

    def _for(self, node: isl.AstNode, loop) -> ir.Stmt:
        iterator = node.for_get_iterator().get_id().get_name()
        base = loop.var.name if loop is not None else "c"
        var = Var(self.names.fresh(base, loop.stage if loop is not None else ""), dtypes.INDEX)
        start = from_ast(node.for_get_init(), self.ids)
        inc = from_ast(node.for_get_inc(), self.ids)
        if not isinstance(getattr(inc, "value", None), int) or inc.value < 1:
            raise NotImplementedError(f"isl generated a loop with step {inc}")
        cond = node.for_get_cond()
        op = cond.get_op_type()
        bound_arg = cond.get_op_arg(1)
        if cond.get_op_arg(0).get_id().get_name() != iterator or \
                op not in (isl.ast_expr_op_type.le, isl.ast_expr_op_type.lt):
            raise NotImplementedError(f"isl loop condition {cond.to_C_str()}")
        self.ids[iterator] = var
        stop = from_ast(bound_arg, self.ids)
        if op == isl.ast_expr_op_type.le:
            stop = plus_one(stop)
        self.names.taken.add(var.name)
        if loop is not None:
            self.active[id(loop)] = var
        body = self.stmt(node.for_get_body(), None)
        if loop is not None:
            del self.active[id(loop)]
        self.names.taken.discard(var.name)
        del self.ids[iterator]
        return ir.For(var, start, stop, body, loop.kind if loop is not None else "serial",
                      inc.value)

    # -- statements --------------------------------------------------------------------
    def _user(self, node: isl.AstNode) -> ir.Stmt:
        call = node.user_get_expr()
        name = call.get_op_arg(0).get_id().get_name()
        sm = self.model.stmts[name]
        exprs = self.marks.indices[node.get_annotation().get_name()]
        # isl's index expressions, by access: the write is access 0, reads follow
        self.isl_index = {id(acc.load): exprs[k + 1] for k, acc in enumerate(sm.reads)
                          if k + 1 in exprs}
        coords = [from_ast(call.get_op_arg(k), self.ids) for k in range(1, call.get_op_n_arg())]
        n_o = len(sm.outer)
        env: dict = {d: c for d, c in zip(sm.stmt.dims, coords[n_o:])}
        # Every enclosing loop's value, by preference the variable of its AST loop (offsets
        # of private buffers are written in these loops' values).
        for loop, c in zip(sm.outer, coords[:n_o]):
            env[loop.var] = self.active.get(id(loop), c)
        for loop in sm.path[n_o:]:
            if any(loop.var is d for d in sm.stmt.dims):
                continue        # a root axis: its coordinate, not the loop's (rebased) value
            active = self.active.get(id(loop))
            env[loop.var] = active if active is not None else \
                substitute(loop.values[name], self._relative_dims(sm, env))
        stmt = sm.stmt
        value = self._expr(sm, stmt.value, env)
        target = self.buffers[stmt.target.name]
        if 0 in exprs:
            index = tuple(simplify_index(from_ast(e, self.ids)) for e in exprs[0])
        else:
            index = self._index(stmt.target, [self._expr(sm, i, env) for i in stmt.index], env)
        checked = () if sm.writes[0].proven_in_bounds else (True,) * len(index)
        store: ir.Stmt = ir.seq(*self._prefetches(sm, env), ir.Store(target, index, value,
                                                                      checked))
        if sm.guard is not None:
            store = ir.If(self._expr(sm, sm.guard, env), store)
        return store

    def _prefetches(self, sm: StmtModel, env: dict) -> list[ir.Prefetch]:
        """The statement's prefetch hints: each read of a hinted array (for a write hint,
        the statement's own store) with the hint's axis moved ahead, unless the statement
        accesses that address itself (a stencil's next row) or another hint asks for it
        already."""
        hints, seen = [], set()
        for hint in sm.stmt.prefetches:
            ahead = dict(env)
            ahead[hint.dim] = env[hint.dim] + Const(hint.shift, dtypes.INDEX)
            if hint.write:                      # the statement's own store, moved ahead
                accesses = [sm.stmt.index]
            else:
                accesses = [n.indices for n in walk(sm.stmt.value) if isinstance(n, Load) and
                            self.model.program.array_of[id(n.tensor.op)] is hint.array]
            now = {self._key(self._index(hint.array, [self._expr(sm, i, env) for i in idx],
                                         env))
                   for idx in accesses}
            for idx in accesses:
                index = self._index(hint.array, [self._expr(sm, i, ahead) for i in idx], ahead)
                key = self._key(index)
                if key not in now and key not in seen:
                    seen.add(key)
                    hints.append(ir.Prefetch(self.buffers[hint.array.name], index,
                                             hint.write))
        return hints

    @staticmethod
    def _key(index) -> tuple[str, ...]:
        return tuple(expr_str(i) for i in index)

    def _relative_dims(self, sm: StmtModel, env: dict) -> dict:
        """The statement's dims as its own loops see them: relative to the start of the
        region for a stage computed at another stage's loop (Model.rebase_at_region)."""
        if sm.name not in self.model.rebased:
            return env
        layout, dims_of = self.model.rebased[sm.name]
        relative = dict(env)
        for k, d in dims_of.items():
            dim = sm.stmt.dims[k]
            relative[dim] = simplify_index(env[dim] - substitute(layout.offset[d], env))
        return relative

    def _expr(self, sm: StmtModel, e: Expr, env: dict) -> Expr:
        """`e` with the statement's coordinates substituted and loads made buffer loads."""
        memo: dict[int, Expr] = {}

        def convert(node: Expr) -> Expr:
            if id(node) in memo:
                return memo[id(node)]
            if isinstance(node, Load):
                array = self.model.program.array_of[id(node.tensor.op)]
                if id(node) in self.isl_index:
                    index = tuple(simplify_index(from_ast(e, self.ids))
                                  for e in self.isl_index[id(node)])
                else:
                    index = self._index(array, [convert(i) for i in node.indices], env)
                proven = self.proven.get((sm.name, id(node)), True)
                result: Expr = ir.BufferLoad(self.buffers[array.name], index,
                                             () if proven else (True,) * len(index))
            elif node in env:
                result = env[node]
            else:
                result = rebuild(node, tuple(convert(c) for c in children(node)))
            memo[id(node)] = result
            return result

        return convert(e)

    def _index(self, array, index: list[Expr], env: dict) -> tuple[Expr, ...]:
        layout = self.layouts.get(array.name)
        if layout is not None:
            index = [i - substitute(off, env) for i, off in zip(index, layout.offset)]
        return tuple(simplify_index(i) for i in index)


def translate(model: Model, ast: isl.AstNode, marks: Marks, buffers, layouts,
              taken_names: set[str]) -> ir.Stmt:
    """The IR of the whole AST."""
    return Translator(model, marks, buffers, layouts, Names(taken_names)).stmt(ast)
