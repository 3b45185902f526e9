"""Operators that move data without arithmetic: reshape, flatten, transpose, concat, pad,
slice. Each is one stage whose body is a single read of its input (or a `td.select` among
reads); what differs is the index arithmetic.

With constant sizes every index is quasi-affine (`+`, `*`, `//` and `%` by constants), so
isl sees exactly what each stage reads. A reshape that splits or merges symbolic
dimensions divides by a symbolic size: isl then takes the whole input as read and the
kernel checks the index at run time.
"""

from __future__ import annotations

from typing import Sequence

import tdsl as td
from tdsl.errors import TdslTypeError, TdslValueError
from tdsl.lang.expr import Expr
from tdsl.lang.tensor import Tensor, shape_str

from . import _checks as check

# An ONNX Slice end this large means "to the end" (ONNX writes INT64_MAX, exporters
# INT32_MAX); with a constant size it is clamped anyway.
_TO_THE_END = 2**31 - 1


def reshape(x: Tensor, shape: Sequence, *, name: str | None = None) -> Tensor:
    """The same elements in row-major order with a new shape; one entry may be -1 (inferred):

        out[i...] = x[unravel(ravel(i, out.shape), x.shape)]

    Leading and trailing dimensions that keep their size are read directly; only the
    dimensions in between go through the flat index (`//` and `%`).

    >>> y = nn.reshape(x, (n, -1))     # (n, 3, 4) -> (n, 12)
    """
    op, name = "nn.reshape", check.name(name, "reshape")
    x = check.tensor(x, op, "x")
    out_shape = _target_shape(op, x, shape)
    # Matching sizes at the start and at the end map index to index.
    lead = 0
    while lead < min(x.ndim, len(out_shape)) and \
            check.same_size(x.shape[lead], out_shape[lead]):
        lead += 1
    trail = 0
    while trail < min(x.ndim, len(out_shape)) - lead and \
            check.same_size(x.shape[-1 - trail], out_shape[-1 - trail]):
        trail += 1
    x_mid = x.shape[lead:x.ndim - trail]
    out_mid = out_shape[lead:len(out_shape) - trail]

    def body(*i):
        mid = i[lead:len(i) - trail]
        return x[(*i[:lead], *_unravel(_ravel(mid, out_mid), x_mid), *i[len(i) - trail:])]

    return td.compute(out_shape, body, name=name)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1, *, name: str | None = None
            ) -> Tensor:
    """The axes start_dim..end_dim merged into one (PyTorch's torch.flatten), a reshape:

        (N, C, H, W) with start_dim=1  ->  (N, C * H * W)

    >>> y = nn.flatten(x)
    """
    op, name = "nn.flatten", check.name(name, "flatten")
    x = check.tensor(x, op, "x")
    if x.ndim == 0:
        return reshape(x, (1,), name=name)
    first = check.axis(start_dim, x.ndim, op, "start_dim")
    last = check.axis(end_dim, x.ndim, op, "end_dim")
    if first > last:
        raise TdslValueError(f"{op}: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"(x has {x.ndim} dimensions)")
    merged = check.product(x.shape[first:last + 1])
    return reshape(x, (*x.shape[:first], merged, *x.shape[last + 1:]), name=name)


def transpose(x: Tensor, axes: Sequence[int] | None = None, *, name: str | None = None
              ) -> Tensor:
    """The axes permuted (NumPy's transpose): output axis d is input axis axes[d], so

        out[i_0, ..., i_{r-1}] = x[j]  with  j[axes[d]] = i_d

    The default reverses the axes (a matrix transpose for 2-D).

    >>> y = nn.transpose(x, (0, 2, 3, 1))       # NCHW -> NHWC
    """
    op, name = "nn.transpose", check.name(name, "transpose")
    x = check.tensor(x, op, "x")
    if axes is None:
        perm = tuple(reversed(range(x.ndim)))
    else:
        if not isinstance(axes, (tuple, list)):
            raise TdslTypeError(f"{op}: axes must be a sequence of ints; got {axes!r}")
        perm = tuple(check.axis(a, x.ndim, op) for a in axes)
        if sorted(perm) != list(range(x.ndim)):
            raise TdslValueError(f"{op}: axes {tuple(axes)!r} is not a permutation of the "
                                 f"{x.ndim} axes of x {shape_str(x.shape)}")
    inverse = [perm.index(d) for d in range(x.ndim)]     # where input axis d went
    return td.compute(tuple(x.shape[a] for a in perm),
                      lambda *i: x[tuple(i[p] for p in inverse)], name=name)


def concat(tensors: Sequence[Tensor], axis: int = 0, *, name: str | None = None) -> Tensor:
    """The tensors joined along `axis` (NumPy's concatenate); the other sizes must agree:

        out[.., k, ..] = t_0[.., k, ..]          for k < s_0
                         t_1[.., k - s_0, ..]    for s_0 <= k < s_0 + s_1,  ...

    >>> y = nn.concat([a, b], axis=1)
    """
    op, name = "nn.concat", check.name(name, "concat")
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TdslValueError(f"{op}: needs a non-empty list of tensors; got {tensors!r}")
    tensors = [check.tensor(t, op, f"tensors[{p}]") for p, t in enumerate(tensors)]
    first = tensors[0]
    ax = check.axis(axis, first.ndim, op) if first.ndim else None
    if ax is None:
        raise TdslValueError(f"{op}: cannot concatenate 0-dimensional tensors")
    for p, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim:
            raise TdslValueError(f"{op}: all tensors must have the same number of dimensions; "
                                 f"tensors[0] has {first.ndim} {shape_str(first.shape)}, "
                                 f"tensors[{p}] has {t.ndim} {shape_str(t.shape)}")
        for d in range(first.ndim):
            if d != ax and not check.same_size(t.shape[d], first.shape[d]):
                raise TdslValueError(
                    f"{op}: sizes must match except along axis {ax}: tensors[0] "
                    f"{shape_str(first.shape)} and tensors[{p}] {shape_str(t.shape)} differ "
                    f"in dimension {d}")
    starts = [check.size(0)]                    # where each tensor begins along the axis
    for t in tensors:
        starts.append(_add_sizes(starts[-1], t.shape[ax]))
    shape = tuple(starts[-1] if d == ax else first.shape[d] for d in range(first.ndim))

    def read(t, start, i):
        return t[tuple(k - start if d == ax else k for d, k in enumerate(i))]

    def body(*i):
        # The last tensor is the default; each earlier one takes over below its end.
        value = read(tensors[-1], starts[-2], i)
        for p in range(len(tensors) - 2, -1, -1):
            value = td.select(i[ax] < starts[p + 1], read(tensors[p], starts[p], i), value)
        return value

    return td.compute(shape, body, name=name)


def pad(x: Tensor, pads: Sequence[tuple[int, int]], value: float = 0.0, *,
        name: str | None = None) -> Tensor:
    """x surrounded by `value` (NumPy's np.pad, constant mode); pads holds one
    (before, after) pair per axis:

        out[i...] = x[i - before]   where every i_d - before_d is inside x, else value

    >>> y = nn.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)])
    """
    op, name = "nn.pad", check.name(name, "pad")
    x = check.tensor(x, op, "x")
    if not isinstance(pads, (list, tuple)) or len(pads) != x.ndim:
        got = len(pads) if isinstance(pads, (list, tuple)) else repr(pads)
        raise TdslValueError(f"{op}: pads needs one (before, after) pair per axis of x "
                             f"{shape_str(x.shape)}, {x.ndim} in all; got {got}")
    pairs = []
    for d, p in enumerate(pads):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise TdslValueError(f"{op}: pads[{d}] must be a pair (before, after); got {p!r}")
        pairs.append(tuple(check.positive_int(v, op, f"pads[{d}]", 0) for v in p))
    fill = td.const(value, x.dtype)
    padded = [d for d, (before, after) in enumerate(pairs) if before or after]

    def body(*i):
        inner = x[tuple(k - pairs[d][0] for d, k in enumerate(i))]
        if not padded:
            return inner
        inside = td.all(*(c for d in padded for c in (i[d] >= pairs[d][0],
                                                      i[d] < x.shape[d] + pairs[d][0])))
        # isl restricts the load to `inside`: the border never reads x.
        return td.select(inside, inner, fill)

    shape = tuple(_add_sizes(s, before + after) for s, (before, after) in zip(x.shape, pairs))
    return td.compute(shape, body, name=name)


def slice(x: Tensor, starts: Sequence[int], ends: Sequence[int],    # noqa: A001
          axes: Sequence[int] | None = None, steps: Sequence[int] | None = None, *,
          name: str | None = None) -> Tensor:
    """Every steps-th element from starts up to (not including) ends along `axes` (ONNX
    Slice with positive steps; Python's x[start:end:step]):

        out[.., i, ..] = x[.., start + i * step, ..]     (along each sliced axis)

    Negative starts and ends count from the end; with a constant size both are clamped to
    it, as in ONNX. With a symbolic size they are taken as given, except that an end of
    2**31 - 1 or more means "to the end".

    >>> y = nn.slice(x, starts=[1], ends=[-1], axes=[2])      # x[:, :, 1:-1]
    """
    op, name = "nn.slice", check.name(name, "slice")
    x = check.tensor(x, op, "x")
    starts, ends = _ints(starts, op, "starts"), _ints(ends, op, "ends")
    axes = tuple(range(len(starts))) if axes is None else _ints(axes, op, "axes")
    steps = (1,) * len(starts) if steps is None else _ints(steps, op, "steps")
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise TdslValueError(f"{op}: starts, ends, axes and steps must have the same length; "
                             f"got {len(starts)}, {len(ends)}, {len(axes)}, {len(steps)}")
    axes = tuple(check.axis(a, x.ndim, op) for a in axes)
    if len(set(axes)) != len(axes):
        raise TdslValueError(f"{op}: an axis is repeated in axes={axes!r}")
    first = [check.size(0)] * x.ndim            # per axis: the first element read, the step
    step = [1] * x.ndim
    shape = list(x.shape)
    for a, s, e, k in zip(axes, starts, ends, steps):
        if k < 1:
            raise TdslValueError(f"{op}: steps must be positive (got {k} for axis {a}); "
                                 "negative steps are not supported")
        first[a], shape[a] = _slice_range(op, a, x.shape[a], s, e, k)
        step[a] = k
    return td.compute(tuple(shape), lambda *i: x[tuple(
        first[d] + i[d] * step[d] for d in range(x.ndim))], name=name)


def _slice_range(op: str, a: int, size: Expr, start: int, end: int, step: int):
    """(first index, length) of start:end:step along a dimension of `size`."""
    n = check.const_value(size)
    if n is not None:
        lo = min(max(start + n if start < 0 else start, 0), n)
        hi = min(max(end + n if end < 0 else end, 0), n)
        length = max(0, -(-(hi - lo) // step))
        if length == 0:
            raise TdslValueError(f"{op}: the slice {start}:{end}:{step} of axis {a} (size {n}) "
                                 "is empty; tdsl tensors have at least one element per axis")
        return check.size(lo), check.size(length)
    lo = size + start if start < 0 else check.size(start)
    hi = size if end >= _TO_THE_END else (size + end if end < 0 else check.size(end))
    span = hi - lo
    return lo, span if step == 1 else (span + (step - 1)) // step


def _ints(values, op: str, what: str) -> tuple[int, ...]:
    if not isinstance(values, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise TdslTypeError(f"{op}: {what} must be a list of ints; got {values!r}")
    return tuple(values)


def _target_shape(op: str, x: Tensor, shape) -> tuple[Expr, ...]:
    """The reshape target with -1 resolved; TdslValueError unless it holds as many elements
    as x (constants multiply out, symbolic sizes must appear on both sides)."""
    if not isinstance(shape, (list, tuple)):
        shape = (shape,)
    dims = []
    for d, s in enumerate(shape):
        if isinstance(s, Expr):
            dims.append(s)
        elif isinstance(s, bool) or not isinstance(s, int):
            raise TdslTypeError(f"{op}: shape[{d}] must be an int or a size expression; "
                                f"got {s!r}")
        elif s == -1 or s >= 1:
            dims.append(s)
        else:
            raise TdslValueError(f"{op}: shape[{d}] must be at least 1 or -1 (inferred); "
                                 f"got {s}")
    if sum(1 for s in dims if isinstance(s, int) and s == -1) > 1:
        raise TdslValueError(f"{op}: only one dimension can be -1 (inferred); got shape "
                             f"{tuple(shape)!r}")
    have_const, have_sym = check.factors(x.shape)
    known = [check.size(s) for s in dims if not (isinstance(s, int) and s == -1)]
    want_const, want_sym = check.factors(known)
    left = list(have_sym)                      # x's symbolic sizes not matched in the target
    unmatched = []
    for s in want_sym:
        hit = next((j for j, t in enumerate(left) if check.same_size(s, t)), None)
        if hit is None:
            unmatched.append(s)
        else:
            left.pop(hit)
    target = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    elements = check.product(x.shape)
    what = f"{op}: cannot reshape x of shape {shape_str(x.shape)} ({elements} elements) " \
           f"into shape {target}"
    if unmatched:
        raise TdslValueError(f"{what}: the size {unmatched[0]} is not a size of x (a symbolic "
                             "size must appear in both shapes)")
    if len(dims) == len(known):
        if left or have_const != want_const:
            raise TdslValueError(f"{what} ({check.product(known)} elements)")
        return tuple(known)
    if have_const % want_const:
        raise TdslValueError(f"{what}: {elements} is not a multiple of {check.product(known)}")
    inferred = check.product([*left, check.size(have_const // want_const)])
    return tuple(inferred if isinstance(s, int) and s == -1 else check.size(s) for s in dims)


def _ravel(index: Sequence[Expr], shape: Sequence[Expr]) -> Expr:
    """The row-major flat position of `index` in `shape` (Horner: ((i0 d1 + i1) d2 + i2)).
    Axes of size 1 always sit at 0 and are left out."""
    flat = None
    for i, n in zip(index, shape):
        if check.const_value(n) != 1:
            flat = i if flat is None else flat * n + i
    return check.size(0) if flat is None else flat


def _unravel(flat: Expr, shape: Sequence[Expr]) -> tuple:
    """The index in `shape` of the flat position `flat`: (flat // stride) % size per axis,
    without the % on the first axis (it cannot overflow) nor the // where stride is 1."""
    index = []
    for d, n in enumerate(shape):
        if check.const_value(n) == 1:
            index.append(0)
            continue
        stride = check.product(shape[d + 1:])
        value = flat // stride if check.const_value(stride) != 1 else flat
        first = all(check.const_value(m) == 1 for m in shape[:d])
        index.append(value if first else value % n)
    return tuple(index)


def _add_sizes(a: Expr, b: Expr | int) -> Expr:
    """a + b, folded when both are constants."""
    av, bv = check.const_value(a), check.const_value(check.size(b))
    return check.size(av + bv) if av is not None and bv is not None else a + b
