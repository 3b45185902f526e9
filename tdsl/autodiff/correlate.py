"""A gather's bound guards turned into zero padding: the adjoint of a convolution with
respect to its input as a correlation of the zero-padded head with the flipped kernel.

The gather `adjoint.py` writes for a convolution's input is

    dX[n, c, a, b] = sum_{f, ry, rx} dY[n, f, a - ry, b - rx] * W[f, c, ry, rx]
                     where 0 <= a - ry < H_out and 0 <= b - rx < W_out

whose reduction domain depends on (a, b): a register tile cannot hold it (the accumulated
row shifts, the loops have bounds per point). The guards are exactly dY's own bounds, and
dY is a factor of the summand, so reading a zero-padded copy of dY instead is the same sum
(the padded elements are zeros), and flipping the filter offsets (ry -> K - 1 - ry) makes
every index of the padded head grow with the reduction axes:

    dX[n, c, a, b] = sum_{f, ry, rx} dYp[n, f, a + ry, b + rx] * W[f, c, K-1-ry, K-1-rx]

which is an ordinary convolution over a box (the textbook dX = conv(pad(dY, K-1-p),
flip(W)^T)), register-tiled by the same rules as a forward one. A stride s reads the head
at (a - ry) // s under the guard (a - ry) % s == 0: the head is then zero-inserted as well
as padded (dYz[k] = dY[k // s] where k % s == 0, else 0), the "dilated head" form; a
dilation d reads it at a - d ry, and the flip keeps d. Exact: the added terms are products
with zero.

`correlate(value, guards, free)` does this when it is provably the same sum and every
guard goes (a partial rewrite would keep a gather, and more work); otherwise it returns
None and the gather stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lang import dtypes
from ..lang.expr import BinOp, Cast, Const, Expr, IterVar, Load, UnaryOp, all_of, select
from ..lang.tensor import Tensor
from ..lang.visit import free_vars, substitute, transform, walk
from .affine import Form, axis_bounds, parse, provably_nonneg
from .stages import axis_names, fresh_reduce_axis, named_compute

Bounds = dict[int, tuple[Form, Form]]


@dataclass
class _Dim:
    """One dimension of the head read through guards: index = base (stride 1) or
    base // stride, the guards that keep base in [0, stride * size) (and divisible)."""

    base: Form
    stride: int
    guards: list[int]               # positions in the guard list


def correlate(value: Expr, guards: list[Expr], free: list[IterVar]
              ) -> tuple[Expr, list[IterVar]] | None:
    """(summand, reduction axes) of the same sum over a box, without `guards`; None when
    the rewrite does not apply. `value` is the summand over the adjoint's axes and `free`
    (the reduction axes), `guards` its affine where= conjuncts."""
    if not guards:
        return None
    bounds = _bounds(value, guards, free)
    if bounds is None:
        return None
    conditions = [_condition(g) for g in guards]
    for head in _factors(value):
        dims = _match(head, guards, conditions)
        if dims is None:
            continue
        used = {k for d in dims.values() for k in d.guards}
        if len(used) != len(guards):
            continue                                    # a guard the padding would not replace
        rewritten = _pad(value, head, dims, bounds, free)
        if rewritten is not None:
            return rewritten
    return None


def _bounds(value: Expr, guards: list[Expr], free: list[IterVar]) -> Bounds | None:
    """(lowest, highest) of every axis mentioned, as forms over sizes."""
    bounds: Bounds = {}
    for e in (value, *guards):
        for v in free_vars(e):
            if isinstance(v, IterVar) and id(v) not in bounds:
                b = axis_bounds(v)
                if b is None:
                    return None
                bounds[id(v)] = b
    return bounds


def _condition(g: Expr) -> tuple[str, Form] | None:
    """A guard as ("nonneg", form) meaning form >= 0, or ("divisible", (form, s)) for
    form % s == 0; None for anything else."""
    match g:
        case BinOp(op="ge", a=a, b=b) if dtypes.is_int(a.dtype):
            return "nonneg", parse(a) - parse(b)
        case BinOp(op="gt", a=a, b=b) if dtypes.is_int(a.dtype):
            return "nonneg", parse(a) - parse(b) - Form((), 1)
        case BinOp(op="le", a=a, b=b) if dtypes.is_int(a.dtype):
            return "nonneg", parse(b) - parse(a)
        case BinOp(op="lt", a=a, b=b) if dtypes.is_int(a.dtype):
            return "nonneg", parse(b) - parse(a) - Form((), 1)
        case BinOp(op="eq", a=BinOp(op="mod", a=n, b=Const(value=s)), b=Const(value=0)) \
                if dtypes.is_int(n.dtype) and int(s) > 0:
            return "divisible", (parse(n), int(s))
    return None


def _zero(f: Form) -> bool:
    return not f.terms and f.const == 0


def _factors(value: Expr) -> list[Load]:
    """The float loads that are factors of `value`: where one reads 0, value is 0."""
    match value:
        case Load() if dtypes.is_float(value.dtype):
            return [value]
        case BinOp(op="mul", a=a, b=b):
            return _factors(a) + _factors(b)
        case BinOp(op="truediv", a=a):
            return _factors(a)
        case UnaryOp(op="neg", value=v):
            return _factors(v)
        case Cast(value=v) if dtypes.is_float(v.dtype):
            return _factors(v)
    return []


def _match(head: Load, guards: list[Expr], conditions) -> dict[int, _Dim] | None:
    """{dimension: _Dim} for the head's dimensions that guards keep in bounds (each guard
    claimed by one dimension); None if no guard is the head's."""
    dims: dict[int, _Dim] = {}
    size_of = head.tensor.shape
    for d, index in enumerate(head.indices):
        base, stride = parse(index), 1
        if isinstance(index, BinOp) and index.op == "floordiv" and \
                isinstance(index.b, Const) and int(index.b.value) > 1:
            base, stride = parse(index.a), int(index.b.value)
        size = parse(size_of[d]) * stride
        claimed, divisible = [], stride == 1
        for k, cond in enumerate(conditions):
            if cond is None:
                continue
            kind, form = cond
            if kind == "nonneg" and (_zero(form - base) or
                                     _zero(form - (size - Form((), 1) - base))):
                claimed.append(k)
            elif kind == "divisible" and stride > 1 and form[1] == stride and \
                    _zero(form[0] - base):
                claimed.append(k)
                divisible = True
        if claimed:
            if not divisible:
                return None                      # a strided read kept without its stride
            dims[d] = _Dim(base, stride, claimed)
    return dims or None


def _extreme(form: Form, bounds: Bounds, lowest: bool) -> Form | None:
    total = Form((), form.const)
    for atom, c in form.terms:
        if all(not isinstance(n, (IterVar, Load)) for n in walk(atom)):
            total = total + Form(((atom, c),), 0)      # a size
            continue
        if id(atom) not in bounds:
            return None
        lo, hi = bounds[id(atom)]
        total = total + (lo if (c > 0) == lowest else hi) * c
    return total


def _pad(value: Expr, head: Load, dims: dict[int, _Dim], bounds: Bounds,
         free: list[IterVar]) -> tuple[Expr, list[IterVar]] | None:
    """The summand reading a padded (and zero-inserted) head, its reduction axes flipped
    where they entered the head's index negatively; None if not provably the same sum."""
    t = head.tensor
    pads: dict[int, tuple[int, int]] = {}
    for d, dim in dims.items():
        lo, hi = _extreme(dim.base, bounds, True), _extreme(dim.base, bounds, False)
        if lo is None or hi is None:
            return None
        below = -lo
        above = hi - (parse(t.shape[d]) * dim.stride - Form((), 1))
        if below.terms or above.terms:
            return None                                  # sizes that do not cancel
        pads[d] = (max(0, below.const), max(0, above.const))
    # Without the guards, every other read must stay in bounds on the whole box.
    for load in (n for n in walk(value) if isinstance(n, Load)):
        if load is head:
            continue
        for d, index in enumerate(load.indices):
            i = parse(index)
            if not (provably_nonneg(i, bounds) and provably_nonneg(
                    parse(load.tensor.shape[d]) - Form((), 1) - i, bounds)):
                return None
    for d, index in enumerate(head.indices):
        if d in dims:
            continue
        i = parse(index)
        if not (provably_nonneg(i, bounds) and
                provably_nonneg(parse(t.shape[d]) - Form((), 1) - i, bounds)):
            return None
    padded = _padded_head(t, {d: (pads[d], dims[d].stride) for d in dims})
    indices = tuple((dims[d].base + Form((), pads[d][0])).expr() if d in dims else index
                    for d, index in enumerate(head.indices))
    new_head = padded[indices]
    summand = transform(value, lambda n: new_head if n is head else None)
    # Flip the reduction axes that enter the head's index with a negative coefficient.
    flips = {}
    for r in free:
        coefficients = [dims[d].base.coefficient(r) for d in dims]
        if any(c < 0 for c in coefficients) and all(c <= 0 for c in coefficients) and \
                isinstance(r.start, Const):
            flips[r] = r.start + (r.start + r.extent - 1) - r   # start + last - r
    if flips:
        flipped_axes = {r: fresh_reduce_axis(r, set()) for r in flips}
        mapping = {r: substitute(e, flipped_axes) for r, e in flips.items()}
        summand = substitute(summand, mapping)
        summand = _simplify_indices(summand)
        free = [flipped_axes.get(r, r) for r in free]
    return summand, free


def _simplify_indices(e: Expr) -> Expr:
    """Integer index expressions rewritten as their affine forms (`a - (2 - r) + 2` is
    `a + r`): the register-tile analysis reads the coefficients."""
    def fold(node: Expr) -> Expr | None:
        if isinstance(node, Load):
            return Load(node.tensor, tuple(
                parse(i).expr() if dtypes.is_int(i.dtype) else i for i in node.indices))
        return None
    return transform(e, fold)


def _padded_head(t: Tensor, dims: dict[int, tuple[tuple[int, int], int]]) -> Tensor:
    """`t` zero-padded by (below, above) and, with stride s > 1, zero-inserted along each
    dimension of `dims`: element k of a padded dimension is t's (k - below) / s when that
    is an index of t, else 0."""
    shape = list(t.shape)
    for d, ((below, above), stride) in dims.items():
        shape[d] = t.shape[d] * stride + (below + above) if stride > 1 else \
            t.shape[d] + (below + above)

    def body(*k):
        conditions, index = [], list(k)
        for d, ((below, _), stride) in dims.items():
            shifted = k[d] - below if below else k[d]
            conditions += [shifted >= 0, shifted < t.shape[d] * stride]
            if stride > 1:
                conditions.append(shifted % stride == 0)
                shifted = shifted // stride
            index[d] = shifted
        return select(all_of(*conditions), t[tuple(index)], Const(0.0, t.dtype))

    names = axis_names(t)
    suffix = "_pad" if all(s == 1 for _, s in dims.values()) else "_dilated"
    return named_compute(tuple(shape), body, names, f"{t.name}{suffix}")
