"""ir.passes.unswitch and drop_constant_guards, on loop IR built by hand."""

from tdsl.ir import nodes as ir
from tdsl.ir.passes import drop_constant_guards, unroll_loop, unswitch
from tdsl.lang.expr import Const, Var, binary

I64 = "int64"


def _buffer(name="out"):
    return ir.Buffer(name, "float32", (Const(8, I64),), role="output")


def _store(buf, index, value=1.0):
    return ir.Store(buf, (index,), Const(value, "float32"))


def test_unswitch_hoists_a_guard_that_does_not_read_the_loop():
    f, k = Var("f"), Var("k")
    out = _buffer()
    cond = binary("ge", f, 3)
    loop = ir.For(k, Const(0, I64), Const(8, I64),
                  ir.If(cond, _store(out, k), _store(out, k, 2.0)), "serial")
    result = unswitch(loop)
    assert isinstance(result, ir.If) and result.cond is cond
    assert isinstance(result.then, ir.For) and result.then.var is k
    assert isinstance(result.then.body, ir.Store) and result.then.body.value.value == 1.0
    assert isinstance(result.otherwise, ir.For) and result.otherwise.body.value.value == 2.0


def test_unswitch_goes_through_an_else_if_chain():
    f, k = Var("f"), Var("k")
    out = _buffer()
    inner = ir.If(binary("eq", f, 5), _store(out, k, 2.0))
    loop = ir.For(k, Const(0, I64), Const(8, I64),
                  ir.If(binary("ge", f, 3), _store(out, k), inner), "serial")
    result = unswitch(loop)
    assert isinstance(result.otherwise, ir.If)
    assert isinstance(result.otherwise.then, ir.For)
    assert result.otherwise.otherwise is None


def test_unswitch_keeps_guards_that_depend_on_the_loop_or_on_memory():
    f, k = Var("f"), Var("k")
    out = _buffer()
    on_k = ir.For(k, Const(0, I64), Const(8, I64),
                  ir.If(binary("lt", k + f, 5), _store(out, k)), "serial")
    assert isinstance(unswitch(on_k), ir.For)
    reads = ir.BufferLoad(out, (Const(0, I64),))
    on_memory = ir.For(k, Const(0, I64), Const(8, I64),
                       ir.If(binary("gt", reads, 0.0), _store(out, k)), "serial")
    assert isinstance(unswitch(on_memory), ir.For)


def test_unswitch_leaves_gpu_loops_and_loops_with_more_than_the_guard():
    f, k = Var("f"), Var("k")
    out = _buffer()
    guard = ir.If(binary("ge", f, 3), _store(out, k))
    gpu = ir.For(k, Const(0, I64), Const(8, I64), guard, "threadIdx.x")
    assert isinstance(unswitch(gpu), ir.For)
    more = ir.For(k, Const(0, I64), Const(8, I64), ir.seq(guard, _store(out, k)), "serial")
    assert isinstance(unswitch(more), ir.For)


def test_unrolled_copies_keep_only_the_branch_their_constant_guard_takes():
    j = Var("j")
    out = _buffer()
    loop = ir.For(j, Const(0, I64), Const(2, I64),
                  ir.If(binary("eq", j, 0), _store(out, j, 1.0), _store(out, j, 2.0)), "unroll")
    copies = unroll_loop(loop, 2)
    assert [s.value.value for s in copies.stmts] == [1.0, 2.0]
    assert not any(isinstance(s, ir.If) for s in copies.stmts)


def test_drop_constant_guards_without_an_else_drops_the_statement():
    out = _buffer()
    never = ir.If(binary("eq", Const(1, I64), Const(0, I64)), _store(out, Const(0, I64)))
    result = drop_constant_guards(never)
    assert isinstance(result, ir.Seq) and result.stmts == ()


def test_unrolled_copies_fold_the_bounds_of_the_loops_inside():
    """A ragged strip's pixel loop `xx < min(4, 5 - rx)` inside an rx loop: each copy of
    the rx loop gets a constant bound (4, 4, 3), so the pixel loop can be unrolled too."""
    from tdsl.lang.expr import unary
    rx, xx = Var("rx"), Var("xx")
    out = _buffer()
    stop = binary("min", Const(4, I64), binary("add", unary("neg", rx), Const(5, I64)))
    inner = ir.For(xx, Const(0, I64), stop, _store(out, xx, 1.0), "unroll")
    copies = unroll_loop(ir.For(rx, Const(0, I64), Const(3, I64), inner, "serial"), 3)
    assert all(isinstance(s.stop, Const) for s in copies.stmts)
    assert [s.stop.value for s in copies.stmts] == [4, 4, 3]
