"""A constant right operand of a matrix product packed into panels once, at compile time.

`td.auto_schedule` gives `c[i, j] = sum_k a[i, k] * b[k, j]` a register tile of R rows x C
columns held over the whole k loop, and copies the tile's panel of b (its C columns, all
k rows: `b[k, j]` walks down a column, C floats of a 4 KiB-apart row each step) into
contiguous storage per column tile (cache_read), as GotoBLAS and TVM's matmul tutorial
pack B. When b is a weight of the network, that copy is the same at every call: one more
pass over b per inference, as large as b itself. Here it is made once (TVM's
AlterOpLayout does this for dense layers on x86, ONNX Runtime's MLAS prepacks its GEMM's
B at session creation):

    bp[jo, k, ji] = b[k, jo * C + ji]        (zeros past the last column)
    c[i, j]       = sum_k a[i, k] * bp[j // C, k, j % C]

C is the target's register-tile width (`register_tile_shape`: two vectors); the tile
rule then reads bp's rows in place (`tiles._packed_already`), and a tuned schedule with
another width copies from bp, which stays correct.
"""

from __future__ import annotations

from ..examples import register_tile_shape
from ..lang.expr import BinOp, Const, Load, Reduce
from ..lang.graph import topo_order
from ..lang.tensor import ComputeOp, Tensor
from ..lang.visit import free_vars
from .blocks import Packer
from .fold import Folded
from .rewrite import rebuild


def pack_panels(outputs: list[Tensor], params: dict, folded: list, target):
    """(outputs, params) with the constant right operand of every 2-D matrix product at
    least a panel wide read from panels packed once (module docstring); appends a
    `Folded("layout", ...)` record per product. Weights no longer read are dropped."""
    columns = register_tile_shape(target)[1]
    order = topo_order(outputs)
    packer = Packer(dict(params), {op.name for op in order} | {p.name for p in params})
    new: dict[Tensor, Tensor] = {}
    for op in order:
        t = op.output(0)
        new[t] = rebuild([t], new)[t]
        found = _constant_operand(op, packer.params, columns)
        if found is None:
            continue
        j, k = op.axis[-1], found.indices[0]
        read = Load(packer.panels(found.tensor, columns), (j // columns, k, j % columns))
        new[t] = _redirected(new[t].op, found, read).output(0)
        folded.append(Folded("layout", (op.name,),
                             f"{found.tensor.name} packed in panels of {columns} columns"))
    outputs = [new[o] for o in outputs]
    read = {op.output(0) for op in topo_order(outputs)}
    return outputs, {t: v for t, v in packer.params.items() if t in read}


def _constant_operand(op, params: dict, columns: int):
    """The load `b[k, j]` of `c[i, j] = sum_k a[i, k] * b[k, j]` (2-D, a plain sum),
    b a constant at least `columns` wide read at (the reduction axis, the last axis);
    None for anything else."""
    if not isinstance(op, ComputeOp) or len(op.axis) != 2 or \
            not isinstance(op.body, Reduce) or op.body.reducer.name != "sum" or \
            op.body.where is not None or len(op.body.axes) != 1:
        return None
    body, (k,) = op.body.body, op.body.axes
    if not (isinstance(body, BinOp) and body.op == "mul" and
            isinstance(body.a, Load) and isinstance(body.b, Load)):
        return None
    i, j = op.axis
    for b, a in ((body.b, body.a), (body.a, body.b)):
        if b.tensor not in params or len(b.indices) != 2 or b.indices[0] is not k or \
                b.indices[1] is not j:
            continue
        if any(v is j for x in a.indices for v in free_vars(x)):
            continue
        width = b.tensor.shape[1]
        if isinstance(width, Const) and width.value >= columns and \
                isinstance(b.tensor.shape[0], Const):
            return b
    return None


def _redirected(op: ComputeOp, old: Load, read: Load) -> ComputeOp:
    """`op` with the load of `old`'s tensor replaced by `read`."""
    from ..lang.visit import transform

    def swap(e):
        if isinstance(e, Load) and e.tensor is old.tensor:
            return read
        return None
    return ComputeOp(op.name, op.axis, transform(op.body, swap))
