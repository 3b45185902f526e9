"""Every schedule primitive against NumPy, alone and in combination.

Each test schedules one of the programs below (matmul, conv2d NCHW with a padding
stage, the two-stage 3x3 blur, softmax, a prefix sum, an IIR filter, a row sum, a
stencil chain) and runs `verify`: for several size combinations, some dividing the
split factors and some not (sizes of 1 included), the scheduled build must equal the
unscheduled build, `td.reference` (via `tests.helpers.check`) and an independent NumPy
computation written here. Sizes are symbolic, so one compile serves every size combo.

The program builders are reused by tests/schedule/test_property.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import tdsl as td
from tdsl.lang.reference import evaluate_scalar
from tdsl.testing import random_array
from tests.helpers import assert_close, check

# ---------------------------------------------------------------------------------------
# Programs: tensors, size combos, and an independent NumPy implementation
# ---------------------------------------------------------------------------------------

@dataclass
class Prog:
    args: list                                   # kernel arguments, inputs first
    outputs: list                                # what create_schedule gets
    sizes: list[dict]                            # size combos verify() runs
    numpy: Callable[[dict, dict], list]          # (arrays by name, sizes by name) -> outputs
    t: dict = field(default_factory=dict)        # named tensors and axes for scheduling

    def __getattr__(self, name):
        try:
            return self.__dict__["t"][name]
        except KeyError:
            raise AttributeError(name) from None

    def schedule(self) -> td.Schedule:
        return td.create_schedule(self.outputs)


def matmul() -> Prog:
    n, m, l = td.var("n"), td.var("m"), td.var("l")  # noqa: E741
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return Prog([A, B, C], [C],
                [{n: 37, m: 20, l: 9}, {n: 16, m: 16, l: 8}, {n: 1, m: 1, l: 1},
                 {n: 3, m: 50, l: 17}],
                lambda a, z: [a["A"].astype(np.float64) @ a["B"]],
                dict(n=n, m=m, l=l, A=A, B=B, C=C, k=k))


def conv2d(inline_pad: bool = False) -> Prog:
    N, Ci, Co, H, W = (td.var(x) for x in ("N", "Ci", "Co", "H", "W"))
    A = td.placeholder((N, Ci, H, W), name="A")
    Wt = td.placeholder((Co, Ci, 3, 3), name="Wt")
    Apad = td.compute((N, Ci, H + 2, W + 2), lambda b, c, y, x: td.select(
        td.all(y >= 1, y <= H, x >= 1, x <= W), A[b, c, y - 1, x - 1], 0.0), name="Apad")
    rc = td.reduce_axis(Ci, name="rc")
    ry = td.reduce_axis(3, name="ry")
    rx = td.reduce_axis(3, name="rx")
    O = td.compute((N, Co, H, W), lambda b, f, y, x: td.sum(  # noqa: E741
        Apad[b, rc, y + ry, x + rx] * Wt[f, rc, ry, rx], axis=[rc, ry, rx]), name="O")

    def ref(a, z):
        x = np.pad(a["A"].astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
        h, w = z["H"], z["W"]
        out = np.zeros((z["N"], z["Co"], h, w))
        for dy in range(3):
            for dx in range(3):
                out += np.einsum("bcyx,fc->bfyx", x[:, :, dy:dy + h, dx:dx + w],
                                 a["Wt"][:, :, dy, dx])
        return [out]

    return Prog([A, Wt, O], [O],
                [{N: 2, Ci: 3, Co: 4, H: 7, W: 9}, {N: 1, Ci: 1, Co: 1, H: 1, W: 1},
                 {N: 1, Ci: 2, Co: 3, H: 8, W: 8}],
                ref, dict(A=A, Wt=Wt, Apad=Apad, O=O, rc=rc, ry=ry, rx=rx))


def blur() -> Prog:
    h, w = td.var("h"), td.var("w")
    I = td.placeholder((h + 2, w + 2), name="I")  # noqa: E741
    bx = td.compute((h + 2, w), lambda y, x: (I[y, x] + I[y, x + 1] + I[y, x + 2]) / 3,
                    name="bx")
    by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) / 3,
                    name="by")

    def ref(a, z):
        i = a["I"].astype(np.float64)
        x = (i[:, :-2] + i[:, 1:-1] + i[:, 2:]) / 3
        return [(x[:-2] + x[1:-1] + x[2:]) / 3]

    return Prog([I, by], [by],
                [{h: 37, w: 70}, {h: 32, w: 64}, {h: 1, w: 1}, {h: 5, w: 33}],
                ref, dict(h=h, w=w, I=I, bx=bx, by=by))


def softmax() -> Prog:
    n, m = td.var("n"), td.var("m")
    X = td.placeholder((n, m), name="X")
    k = td.reduce_axis(m, name="k")
    mx = td.compute((n,), lambda i: td.max(X[i, k], axis=k), name="mx")
    e = td.compute((n, m), lambda i, j: td.exp(X[i, j] - mx[i]), name="e")
    k2 = td.reduce_axis(m, name="k2")
    ssum = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="ssum")
    sm = td.compute((n, m), lambda i, j: e[i, j] / ssum[i], name="sm")

    def ref(a, z):
        x = a["X"].astype(np.float64)
        ex = np.exp(x - x.max(axis=1, keepdims=True))
        return [ex / ex.sum(axis=1, keepdims=True)]

    return Prog([X, sm], [sm], [{n: 37, m: 19}, {n: 8, m: 16}, {n: 1, m: 1}], ref,
                dict(X=X, mx=mx, e=e, ssum=ssum, sm=sm, k=k, k2=k2))


def prefix_sum() -> Prog:
    n = td.var("n")
    X = td.placeholder((n,), name="X")
    r = td.reduce_axis((1, n), name="r")
    Y = td.compute((n,), lambda i: X[i], name="Y")
    Y0 = Y
    Y = td.update(Y, lambda: (r,), lambda: Y[r - 1] + X[r])
    return Prog([X, Y], [Y], [{n: 37}, {n: 32}, {n: 1}, {n: 2}],
                lambda a, z: [np.cumsum(a["X"].astype(np.float64))],
                dict(n=n, X=X, Y0=Y0, Y=Y, r=r))


def iir() -> Prog:
    """y[i, 0] = x[i, 0]; y[i, r] = 0.5 y[i, r - 1] + x[i, r]: a recurrence along axis 1."""
    h, w = td.var("h"), td.var("w")
    X = td.placeholder((h, w), name="X")
    r = td.reduce_axis((1, w), name="r")
    Y = td.compute((h, w), lambda i, j: X[i, j], name="Y")
    Y0 = Y
    Y = td.update(Y, lambda i: (i, r), lambda i: Y[i, r - 1] * 0.5 + X[i, r])

    def ref(a, z):
        x = a["X"].astype(np.float64)
        y = x.copy()
        for c in range(1, x.shape[1]):
            y[:, c] = 0.5 * y[:, c - 1] + x[:, c]
        return [y]

    return Prog([X, Y], [Y], [{h: 37, w: 13}, {h: 16, w: 16}, {h: 1, w: 1}, {h: 9, w: 2}],
                ref, dict(h=h, w=w, X=X, Y0=Y0, Y=Y, r=r))


def row_sum() -> Prog:
    n, l = td.var("n"), td.var("l")  # noqa: E741
    A = td.placeholder((n, l), name="A")
    k = td.reduce_axis(l, name="k")
    S = td.compute((n,), lambda i: td.sum(A[i, k], axis=k), name="S")
    return Prog([A, S], [S],
                [{n: 37, l: 9}, {n: 5, l: 100}, {n: 1, l: 1}, {n: 3, l: 112}],
                lambda a, z: [a["A"].astype(np.float64).sum(axis=1)],
                dict(n=n, l=l, A=A, S=S, k=k))


def stencil_chain(stages: int = 3) -> Prog:
    """X -> P1 -> ... -> P<stages> -> Z, each stage a 2-point stencil along rows."""
    h, w = td.var("h"), td.var("w")
    X = td.placeholder((h + stages, w), name="X")
    cur, chain = X, []
    for s in range(stages):
        cur = _shift_sum(cur, (h + stages - 1 - s, w), f"P{s + 1}")
        chain.append(cur)
    last = cur
    Z = td.compute((h, w), lambda i, j: last[i, j] * 2.0, name="Z")

    def ref(a, z):
        v = a["X"].astype(np.float64)
        for _ in range(stages):
            v = v[:-1] + v[1:] * 0.5
        return [v * 2.0]

    return Prog([X, Z], [Z], [{h: 13, w: 17}, {h: 8, w: 16}, {h: 1, w: 1}], ref,
                dict(h=h, w=w, X=X, Z=Z, chain=chain))


def _shift_sum(prev, shape, name):
    return td.compute(shape, lambda i, j: prev[i, j] + prev[i + 1, j] * 0.5, name=name)


def two_consumers(both_outputs: bool = False) -> Prog:
    """P read by Q and R; either both outputs, or both read by Z."""
    h, w = td.var("h"), td.var("w")
    X = td.placeholder((h, w), name="X")
    P = td.compute((h, w), lambda i, j: X[i, j] * 3.0 + 1.0, name="P")
    Q = td.compute((h, w), lambda i, j: P[i, j] * P[i, j], name="Q")
    R = td.compute((h, w), lambda i, j: P[i, j] - 2.0, name="R")
    sizes = [{h: 13, w: 17}, {h: 8, w: 8}, {h: 1, w: 1}]

    def parts(a):
        p = a["X"].astype(np.float64) * 3 + 1
        return p * p, p - 2

    if both_outputs:
        return Prog([X, Q, R], [Q, R], sizes, lambda a, z: list(parts(a)),
                    dict(X=X, P=P, Q=Q, R=R))
    Z = td.compute((h, w), lambda i, j: Q[i, j] + R[i, j], name="Z")
    return Prog([X, Z], [Z], sizes, lambda a, z: [sum(parts(a))],
                dict(X=X, P=P, Q=Q, R=R, Z=Z))


GUARD = 4096          # elements of canary before and after every array
CANARY = 1.0e6        # large, so that reading it also shows in the results


def verify(p: Prog, s: td.Schedule, sizes: list[dict] | None = None) -> None:
    """Scheduled == unscheduled == td.reference == NumPy at each size combo.

    The scheduled kernel first runs on arrays embedded in canaries: it must write
    nothing outside its outputs (inputs and canaries intact) and match NumPy. This
    comes first so that an out-of-bounds write fails the test instead of corrupting
    the heap during the unguarded runs of `check`.
    """
    module = td.build(s, p.args)
    for combo in sizes or p.sizes:
        rng = np.random.default_rng(0)
        feeds = {t: random_array(t, combo, rng) for t in p.args
                 if isinstance(t.op, td.lang.PlaceholderOp)}
        arrays = {t.name: a for t, a in feeds.items()}
        want = p.numpy(arrays, {v.name: n for v, n in combo.items()})
        guarded = run_guarded(module, p.args, combo, feeds)
        assert len(guarded) == len(want)
        for got, exp in zip(guarded, want):
            assert got.shape == exp.shape
            assert_close(got, exp)
        _, outs = check(s, p.args, combo, inputs=feeds)
        for got, exp in zip(outs, want):
            assert_close(got, exp)


def run_guarded(module, args, combo: dict, feeds: dict) -> list[np.ndarray]:
    """Run `module` on views into larger buffers filled with canaries; assert that the
    canaries and the inputs are unchanged; return the outputs."""
    bigs, views, outs = [], [], []
    for t in args:
        shape = tuple(int(evaluate_scalar(d, combo)) for d in t.shape)
        big = np.full(int(np.prod(shape)) + 2 * GUARD, CANARY, dtype=t.dtype)
        view = big[GUARD:GUARD + int(np.prod(shape))].reshape(shape)
        if t in feeds:
            view[...] = feeds[t]
        else:
            view[...] = 7
            outs.append(view)
        bigs.append(big)
        views.append(view)
    module(*views)
    for t, big, view in zip(args, bigs, views):
        assert (big[:GUARD] == CANARY).all() and (big[-GUARD:] == CANARY).all(), \
            f"the kernel wrote outside {t.name} (canaries overwritten) at sizes {combo}"
        if t in feeds:
            np.testing.assert_array_equal(view, feeds[t], err_msg=f"input {t.name} changed")
    return outs


def kinds(s: td.Schedule, args) -> str:
    return str(td.lower(s, args))


# ---------------------------------------------------------------------------------------
# matmul
# ---------------------------------------------------------------------------------------

def test_default_schedule_matches_numpy():
    for p in (matmul(), blur(), softmax(), prefix_sum(), iir(), conv2d(), row_sum()):
        verify(p, p.schedule(), p.sizes[:2])


@pytest.mark.parametrize("axis,factor", [("i", 8), ("j", 3), ("k", 4), ("k", 1), ("i", 64)],
                         ids=["i8", "j3", "k4", "k1", "i64-larger-than-extent"])
def test_matmul_split(axis, factor):
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    target = {"i": i, "j": j, "k": p.k}[axis]
    outer, inner = s[p.C].split(target, factor=factor)
    assert (outer.name, inner.name) == (f"{target.name}_outer", f"{target.name}_inner")
    assert [v.name for v in s[p.C].leaf_iter_vars].count(f"{target.name}_inner") == 1
    verify(p, s)


@pytest.mark.parametrize("order", ["kij", "jki", "jik", "kji"])
def test_matmul_reorder(order):
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    axes = {"i": i, "j": j, "k": p.k}
    s[p.C].reorder(*(axes[c] for c in order))
    assert [v.name for v in s[p.C].leaf_iter_vars] == list(order)
    verify(p, s)


@pytest.mark.parametrize("fx,fy", [(16, 8), (3, 5), (1, 1)], ids=["tile16x8", "tile3x5",
                                                                  "tile1x1"])
def test_matmul_tile(fx, fy):
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    io, jo, ii, ji = s[p.C].tile(i, j, fx, fy)
    assert list(s[p.C].leaf_iter_vars) == [io, jo, ii, ji, p.k]
    verify(p, s)


@pytest.mark.parametrize("kind", ["parallel", "vectorize", "unroll"])
def test_matmul_loop_kind_alone(kind):
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    axis = {"parallel": i, "vectorize": j, "unroll": p.k}[kind]
    getattr(s[p.C], kind)(axis)
    assert f"# {kind}" in kinds(s, p.args)
    verify(p, s)


@pytest.mark.parametrize("tiles", [(16, 8, 4), (4, 4, 3), (8, 16, 16)],
                         ids=["tile16x8+k4", "tile4x4+k3", "tile8x16+k16"])
def test_matmul_tile_split_reorder_parallel_vectorize_unroll(tiles):
    fx, fy, fk = tiles
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    io, jo, ii, ji = s[p.C].tile(i, j, fx, fy)
    ko, ki = s[p.C].split(p.k, factor=fk)
    s[p.C].reorder(io, jo, ko, ii, ki, ji)
    s[p.C].parallel(io)
    s[p.C].vectorize(ji)
    s[p.C].unroll(ki)
    text = kinds(s, p.args)
    assert "# parallel" in text and "# vectorize" in text and "# unroll" in text
    source = td.build(s, p.args).source
    assert "#pragma omp parallel for" in source and "#pragma omp simd" in source
    verify(p, s)


def test_matmul_cache_write_register_tile():
    p = matmul()
    s = p.schedule()
    CC = s.cache_write(p.C, "local")
    i, j = p.C.op.axis
    io, jo, ii, ji = s[p.C].tile(i, j, 8, 8)
    s[CC].compute_at(s[p.C], jo)
    ci, cj = CC.op.axis
    (kc,) = CC.op.reduce_axis
    ko, ki = s[CC].split(kc, factor=4)
    s[CC].reorder(ko, ki, ci, cj)
    s[CC].unroll(ki)
    s[CC].vectorize(cj)
    s[p.C].parallel(io)
    lowered = td.lower(s, p.args)
    (local,) = [b for b in _allocs(lowered) if b.name == CC.name]
    assert local.scope == "local"
    assert [int(d.value) for d in local.shape] == [8, 8]          # one register tile
    verify(p, s)


def test_matmul_cache_write_at_root():
    p = matmul()
    s = p.schedule()
    CC = s.cache_write(p.C, "local")
    assert CC.name == "C_local"
    s[p.C].parallel(p.C.op.axis[0])
    verify(p, s, p.sizes[:2])


@pytest.mark.parametrize("attach", ["k_outer", "j_outer", "root"])
def test_matmul_cache_read_tiles(attach):
    p = matmul()
    s = p.schedule()
    AA = s.cache_read(p.A, "local", [p.C])
    BB = s.cache_read(p.B, "local", [p.C])
    i, j = p.C.op.axis
    io, jo, ii, ji = s[p.C].tile(i, j, 8, 8)
    ko, ki = s[p.C].split(p.k, factor=4)
    s[p.C].reorder(io, jo, ko, ii, ki, ji)
    if attach != "root":
        loop = {"k_outer": ko, "j_outer": jo}[attach]
        s[AA].compute_at(s[p.C], loop)
        s[BB].compute_at(s[p.C], loop)
    s[p.C].vectorize(ji)
    lowered = td.lower(s, p.args)
    if attach == "k_outer":
        shapes = {b.name: [int(d.value) for d in b.shape] for b in _allocs(lowered)}
        assert shapes == {"A_local": [8, 4], "B_local": [4, 8]}
    verify(p, s)


def test_matmul_cache_read_and_cache_write_together():
    p = matmul()
    s = p.schedule()
    CC = s.cache_write(p.C, "local")
    AA = s.cache_read(p.A, "local", [CC])
    i, j = p.C.op.axis
    io, jo, ii, ji = s[p.C].tile(i, j, 4, 8)
    s[CC].compute_at(s[p.C], jo)
    s[AA].compute_at(s[p.C], jo)
    s[p.C].parallel(io)
    verify(p, s)


def _allocs(lowered):
    """Buffers allocated inside loops (private per iteration), from the IR, each once (a
    tile's code may be generated twice, full and partial, each allocating it)."""
    from tdsl.ir import nodes as ir
    found = []

    def visit(node):
        if isinstance(node, ir.Alloc) and all(b is not node.buffer for b in found):
            found.append(node.buffer)
        for child in _children(node):
            visit(child)

    visit(lowered.kernel.body)
    return found


def _children(node):
    import dataclasses

    from tdsl.ir import nodes as ir
    out = []
    if not dataclasses.is_dataclass(node):
        return out
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        items = value if isinstance(value, tuple) else (value,)
        out += [x for x in items if isinstance(x, ir.Stmt)]
    return out


# ---------------------------------------------------------------------------------------
# conv2d NCHW with a padding stage
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("pad", ["inline", "root", "at_y", "at_f"])
def test_conv2d_padding_stage(pad):
    p = conv2d()
    s = p.schedule()
    b, f, y, x = p.O.op.axis
    if pad == "inline":
        s[p.Apad].compute_inline()
    elif pad == "at_y":
        s[p.Apad].compute_at(s[p.O], y)
    elif pad == "at_f":
        s[p.Apad].compute_at(s[p.O], f)
    verify(p, s)


def pad1d() -> Prog:
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    P = td.compute((n + 2,), lambda i: td.select(td.all(i >= 1, i <= n), A[i - 1], 0.0),
                   name="P")
    return Prog([A, P], [P], [{n: 5}, {n: 4}, {n: 1}],
                lambda a, z: [np.pad(a["A"].astype(np.float64), 1)], dict(n=n, A=A, P=P))


@pytest.mark.parametrize("kind", ["unroll", "vectorize"])
def test_padding_stage_split_and_unrolled(kind):
    """Guarded loads in isolated full tiles: isl once failed here (`void expression`) and
    the failure corrupted the heap."""
    p = pad1d()
    s = p.schedule()
    io, ii = s[p.P].split(p.P.op.axis[0], factor=2)
    getattr(s[p.P], kind)(ii)
    verify(p, s)


def test_conv2d_padding_stage_vectorized_unsplit():
    p = conv2d()
    s = p.schedule()
    s[p.Apad].vectorize(p.Apad.op.axis[3])
    s[p.O].parallel(p.O.op.axis[1])
    verify(p, s)


@pytest.mark.parametrize("pad", ["inline", "at_x_outer"])
def test_conv2d_tiled_parallel_vectorized(pad):
    p = conv2d()
    s = p.schedule()
    b, f, y, x = p.O.op.axis
    xo, xi = s[p.O].split(x, factor=4)
    s[p.O].reorder(b, f, y, xo, p.rc, p.ry, p.rx, xi)
    s[p.O].parallel(f)
    s[p.O].vectorize(xi)
    s[p.O].unroll(p.rx)
    if pad == "inline":
        s[p.Apad].compute_inline()
    else:
        s[p.Apad].compute_at(s[p.O], xo)
    verify(p, s)


# ---------------------------------------------------------------------------------------
# two-stage 3x3 blur
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["y", "x", "y_outer", "x_outer", "y_inner", "x_inner"])
def test_blur_compute_at(where):
    """Tiles overlap by the 2-row halo of bx; each tile recomputes it."""
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    if where in ("y", "x"):
        s[p.bx].compute_at(s[p.by], {"y": y, "x": x}[where])
    else:
        yo, xo, yi, xi = s[p.by].tile(y, x, 8, 16)
        loops = dict(y_outer=yo, x_outer=xo, y_inner=yi, x_inner=xi)
        s[p.bx].compute_at(s[p.by], loops[where])
    verify(p, s)


@pytest.mark.parametrize("tile", [(32, 32), (7, 5)], ids=["tile32x32", "tile7x5"])
def test_blur_overlapping_tiles_parallel(tile):
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, xo, yi, xi = s[p.by].tile(y, x, *tile)
    s[p.bx].compute_at(s[p.by], xo)
    s[p.by].parallel(yo)
    s[p.by].vectorize(xi)
    bx_x = p.bx.op.axis[1]
    s[p.bx].vectorize(bx_x)
    lowered = td.lower(s, p.args)
    (buf,) = [b for b in _allocs(lowered) if b.name == "bx"]
    assert [int(d.value) for d in buf.shape] == [tile[0] + 2, tile[1]]
    verify(p, s)


def test_blur_compute_root_after_compute_at():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, yi = s[p.by].split(y, factor=4)
    s[p.bx].compute_at(s[p.by], yo)
    s[p.bx].compute_root()
    lowered = td.lower(s, p.args)
    assert [b.name for b in lowered.kernel.temps] == ["bx"]     # one global buffer again
    assert _allocs(lowered) == []                              # nothing private per loop
    s[p.by].parallel(yo)
    s[p.bx].parallel(p.bx.op.axis[0])
    verify(p, s)


def test_blur_compute_inline():
    p = blur()
    s = p.schedule()
    s[p.bx].compute_inline()
    y, x = p.by.op.axis
    yo, yi = s[p.by].split(y, factor=8)
    s[p.by].parallel(yo)
    s[p.by].vectorize(x)
    assert "bx" not in kinds(s, p.args)
    verify(p, s)


def test_blur_producer_split_and_reordered_inside_tile():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, xo, yi, xi = s[p.by].tile(y, x, 16, 16)
    s[p.bx].compute_at(s[p.by], xo)
    by_, bx_ = p.bx.op.axis
    s[p.bx].reorder(bx_, by_)
    s[p.bx].unroll(by_)
    verify(p, s)


def test_storage_align_on_intermediate():
    p = blur()
    s = p.schedule()
    s[p.bx].storage_align(p.bx.op.axis[0], 16, 1)
    (buf,) = td.lower(s, p.args).kernel.temps
    for w in (16, 33, 1):
        stride = evaluate_scalar(buf.strides[0], {p.w: w})
        assert stride >= w and stride % 16 == 1
        assert evaluate_scalar(buf.strides[1], {p.w: w}) == 1
    s[p.by].parallel(p.by.op.axis[0])
    verify(p, s)


def test_storage_align_on_private_tile():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, xo, yi, xi = s[p.by].tile(y, x, 8, 16)
    s[p.bx].compute_at(s[p.by], xo)
    s[p.bx].storage_align(p.bx.op.axis[0], 8, 3)
    (buf,) = [b for b in _allocs(td.lower(s, p.args)) if b.name == "bx"]
    assert evaluate_scalar(buf.strides[0], {}) % 8 == 3
    verify(p, s)


# ---------------------------------------------------------------------------------------
# softmax
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("e_at", ["inline", "row", "root"])
def test_softmax_rows(e_at):
    p = softmax()
    s = p.schedule()
    i, j = p.sm.op.axis
    if e_at == "inline":
        s[p.e].compute_inline()
    if e_at != "root":
        s[p.ssum].compute_at(s[p.sm], i)       # consumers first: e is read by ssum and sm
    if e_at == "row":
        s[p.e].compute_at(s[p.sm], i)
    if e_at != "root":
        s[p.mx].compute_at(s[p.sm], i)
    s[p.sm].parallel(i)
    jo, ji = s[p.sm].split(j, factor=8)
    s[p.sm].vectorize(ji)
    verify(p, s)


def test_softmax_reductions_split_and_unrolled():
    p = softmax()
    s = p.schedule()
    i, _ = p.sm.op.axis
    s[p.e].compute_inline()
    s[p.ssum].compute_at(s[p.sm], i)
    s[p.mx].compute_at(s[p.sm], i)
    ko, ki = s[p.mx].split(p.k, factor=4)
    s[p.mx].unroll(ki)
    k2o, k2i = s[p.ssum].split(p.k2, factor=3)
    s[p.sm].parallel(i)
    verify(p, s)


# ---------------------------------------------------------------------------------------
# recurrences: prefix sum and IIR
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("factor,unroll", [
    (4, True), (1, True), (64, True), (1, False), (4, False), (64, False)],
    ids=["4-unroll", "1-unroll", "64-unroll", "1-serial", "4-serial", "64-serial"])
def test_prefix_sum_split_recurrence_in_order(factor, unroll):
    p = prefix_sum()
    s = p.schedule()
    ro, ri = s[p.Y].split(p.r, factor=factor)
    if unroll:
        s[p.Y].unroll(ri)
    verify(p, s)


@pytest.mark.parametrize("factor", [4, 3])
def test_iir_split_recurrence_axis_in_order(factor):
    p = iir()
    s = p.schedule()
    ro, ri = s[p.Y].split(p.r, factor=factor)
    s[p.Y].parallel(p.Y.op.axis[0])
    verify(p, s)


def test_prefix_sum_init_stage_parallel():
    p = prefix_sum()
    s = p.schedule()
    (i,) = p.Y0.op.axis
    io, ii = s[p.Y0].split(i, factor=8)
    s[p.Y0].parallel(io)
    s[p.Y0].vectorize(ii)
    verify(p, s)


@pytest.mark.parametrize("factor", [8, 3])
def test_iir_split_pure_axis_parallel_vectorize(factor):
    p = iir()
    s = p.schedule()
    i = p.Y.op.axis[0]
    io, ii = s[p.Y].split(i, factor=factor)
    s[p.Y].parallel(io)
    s[p.Y].vectorize(ii)
    verify(p, s)


def test_iir_reorder_recurrence_outside_pure_axis():
    """Running r outside i is legal (the dependence is along r only); then the pure
    axis, innermost, may be vectorized: the classic way to vectorize an IIR."""
    p = iir()
    s = p.schedule()
    i = p.Y.op.axis[0]
    s[p.Y].reorder(p.r, i)
    io, ii = s[p.Y].split(i, factor=8)
    s[p.Y].parallel(io)
    s[p.Y].vectorize(ii)
    text = kinds(s, p.args)
    assert text.index("for r in") < text.index("for i_outer in")
    verify(p, s)


def test_iir_tile_pure_and_recurrence_axes_in_order():
    p = iir()
    s = p.schedule()
    i = p.Y.op.axis[0]
    io, ro, ii, ri = s[p.Y].tile(i, p.r, 4, 4)     # r_outer before r_inner: legal
    s[p.Y].parallel(io)
    s[p.Y].vectorize(ii)
    verify(p, s)


# ---------------------------------------------------------------------------------------
# rfactor
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [16, 7])
@pytest.mark.parametrize("which", ["inner", "outer"])
def test_rfactor_row_sum(factor, which):
    p = row_sum()
    s = p.schedule()
    ko, ki = s[p.S].split(p.k, factor=factor)
    SF = s.rfactor(p.S, ki if which == "inner" else ko)
    a = SF.op.axis[0]                         # the factored loop: now a data axis
    assert a.name == ("k_inner" if which == "inner" else "k_outer")
    if which == "inner":
        _, i, rest = s[SF].leaf_iter_vars
        s[SF].reorder(i, rest, a)
        s[SF].vectorize(a)
    else:
        s[SF].parallel(a)
    s[p.S].parallel(p.S.op.axis[0])
    verify(p, s)


@pytest.mark.parametrize("which", ["k_outer", "k_inner_outer"])
def test_rfactor_after_nested_ragged_split(which):
    p = row_sum()
    s = p.schedule()
    ko, ki = s[p.S].split(p.k, factor=3)
    kio, kii = s[p.S].split(ki, factor=2)
    s.rfactor(p.S, {"k_outer": ko, "k_inner_outer": kio}[which])
    verify(p, s, p.sizes[:2])


def test_rfactor_after_nested_dividing_split():
    p = row_sum()
    s = p.schedule()
    ko, ki = s[p.S].split(p.k, factor=4)
    kio, kii = s[p.S].split(ki, factor=2)
    SF = s.rfactor(p.S, kio)
    s[SF].parallel(SF.op.axis[0])
    verify(p, s, p.sizes[:2])


def test_rfactor_matmul_k_parallel():
    p = matmul()
    s = p.schedule()
    ko, ki = s[p.C].split(p.k, factor=4)
    CF = s.rfactor(p.C, ko)
    s[CF].parallel(CF.op.axis[0])
    verify(p, s)


# ---------------------------------------------------------------------------------------
# fuse, nparts
# ---------------------------------------------------------------------------------------

def test_fuse_tile_loops_then_parallel():
    p = blur()
    s = p.schedule()
    s[p.bx].compute_inline()
    y, x = p.by.op.axis
    yo, xo, yi, xi = s[p.by].tile(y, x, 4, 8)
    f = s[p.by].fuse(yi, xi)
    assert f.name == "y_inner_x_inner_fused"
    s[p.by].parallel(f)
    verify(p, s)


def test_fuse_constant_shape_outer_loops_parallel():
    h = td.var("h")
    X = td.placeholder((h, 6, 5), name="X")
    Y = td.compute((h, 6, 5), lambda a, b, c: X[a, b, c] * 2.0 + c, name="Y")
    p = Prog([X, Y], [Y], [{h: 3}, {h: 1}],
             lambda arr, z: [arr["X"] * 2.0 + np.arange(5)])
    s = p.schedule()
    a, b, c = Y.op.axis
    f = s[Y].fuse(a, b, c)
    fo, fi = s[Y].split(f, factor=8)
    s[Y].parallel(fo)
    s[Y].vectorize(fi)
    verify(p, s)


def test_fuse_reduction_pieces():
    p = row_sum()
    s = p.schedule()
    ko, ki = s[p.S].split(p.k, factor=4)
    kio, kii = s[p.S].split(ki, factor=2)
    s[p.S].fuse(kio, kii)
    s[p.S].parallel(p.S.op.axis[0])
    verify(p, s)


@pytest.mark.parametrize("nparts", [4, 1, 30, 7])
def test_split_nparts(nparts):
    h = td.var("h")
    X = td.placeholder((h, 30), name="X")
    Y = td.compute((h, 30), lambda i, j: X[i, j] + 1.0, name="Y")
    p = Prog([X, Y], [Y], [{h: 3}, {h: 1}], lambda arr, z: [arr["X"] + 1.0])
    s = p.schedule()
    jo, ji = s[Y].split(Y.op.axis[1], nparts=nparts)
    inner = -(-30 // nparts)                     # factor = ceil(30 / nparts)
    assert ji.extent.value == inner and jo.extent.value == -(-30 // inner) <= nparts
    s[Y].parallel(jo)
    verify(p, s)


# ---------------------------------------------------------------------------------------
# compute_at chains and shared producers
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["nested", "all_at_Z"])
def test_chain_of_three_compute_at_stages(layout):
    p = stencil_chain(3)
    s = p.schedule()
    P1, P2, P3 = p.chain
    i, j = p.Z.op.axis
    io, jo, ii, ji = s[p.Z].tile(i, j, 4, 8)
    if layout == "nested":
        s[P3].compute_at(s[p.Z], jo)
        s[P2].compute_at(s[P3], P3.op.axis[0])
        s[P1].compute_at(s[P2], P2.op.axis[0])
    else:
        s[P3].compute_at(s[p.Z], jo)
        s[P2].compute_at(s[p.Z], jo)
        s[P1].compute_at(s[p.Z], jo)
        buffers = {b.name: [int(d.value) for d in b.shape] for b in _allocs(td.lower(s, p.args))}
        assert buffers == {"P1": [6, 8], "P2": [5, 8], "P3": [4, 8]}    # growing halos
    s[p.Z].parallel(io)
    verify(p, s)


def test_producer_with_two_consumers_at_root():
    p = two_consumers(both_outputs=True)
    s = p.schedule()
    s[p.Q].parallel(p.Q.op.axis[0])
    s[p.R].vectorize(p.R.op.axis[1])
    verify(p, s)


def test_producer_with_two_consumers_attached_together():
    p = two_consumers()
    s = p.schedule()
    i, j = p.Z.op.axis
    io, ii = s[p.Z].split(i, factor=4)
    s[p.Q].compute_at(s[p.Z], io)
    s[p.R].compute_at(s[p.Z], io)
    s[p.P].compute_at(s[p.Z], io)
    s[p.Z].parallel(io)
    verify(p, s)


def test_producer_with_two_consumers_half_attached_is_refused():
    p = two_consumers(both_outputs=True)
    s = p.schedule()
    before = (list(s.history), kinds(s, p.args))
    with pytest.raises(td.ScheduleError, match=r"s\[P\]\.compute_at\(s\[Q\], i\) is illegal"
                       r"[\s\S]*R (also )?reads it,? outside that loop"):
        s[p.P].compute_at(s[p.Q], p.Q.op.axis[0])
    assert (list(s.history), kinds(s, p.args)) == before
    s[p.P].compute_inline()                    # a legal way out: both consumers recompute
    verify(p, s)


def test_parallel_loop_inside_vectorized_loop():
    """Either refused when scheduled, or built and correct: never a CompileError."""
    p = matmul()
    s = p.schedule()
    i, j = p.C.op.axis
    try:
        s[p.C].vectorize(i)
        s[p.C].parallel(j)
    except td.ScheduleError:
        return
    verify(p, s, p.sizes[:1])


@pytest.mark.parametrize("change", ["split", "fuse"])
def test_transforming_the_attach_loop_after_compute_at(change):
    """Either refused (the loop holds a producer), or the producer is still computed."""
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    try:
        if change == "split":
            s[p.bx].compute_at(s[p.by], y)
            s[p.by].split(y, factor=4)
        else:
            yo, xo, yi, xi = s[p.by].tile(y, x, 4, 4)
            s[p.bx].compute_at(s[p.by], yi)
            s[p.by].fuse(yi, xi)
    except td.ScheduleError:
        return
    verify(p, s, p.sizes[:1])


@pytest.mark.parametrize("program", ["blur", "two_consumers"])
def test_compute_at_loop_of_extent_one(program):
    if program == "blur":
        p = blur()
        s = p.schedule()
        yo, yi = s[p.by].split(p.by.op.axis[0], factor=1)
        s[p.bx].compute_at(s[p.by], yi)
    else:
        p = two_consumers()
        s = p.schedule()
        io, ii = s[p.Z].split(p.Z.op.axis[0], factor=1)
        s[p.Q].compute_at(s[p.Z], ii)
    verify(p, s, p.sizes[:1])


def test_compute_at_strided_footprint():
    """Either refused with a ScheduleError, or lowered and correct."""
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    xo, xi = s[p.by].split(x, factor=2)
    s[p.by].reorder(xi, y, xo)
    try:
        s[p.bx].compute_at(s[p.by], xi)
    except td.ScheduleError:
        return
    verify(p, s, p.sizes[:1])


def test_show_prints_history_and_nests():
    p = blur()
    s = p.schedule()
    y, x = p.by.op.axis
    yo, yi = s[p.by].split(y, factor=8)
    s[p.bx].compute_at(s[p.by], yo)
    s[p.by].parallel(yo)
    text = str(s)
    assert "y, x = by.op.axis\n  y_outer, y_inner = s[by].split(y, factor=8)" in text
    assert "s[bx].compute_at(s[by], y_outer)" in text
    assert "Stage bx (computed at by.y_outer" in text
    assert "for y_outer in range((h + 7) // 8):  # parallel" in text


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_rfactor_of_reduction_axis_not_starting_at_zero(split):
    """Issue 16, bug 3: the factored buffer is indexed from 0, whatever k's start."""
    n, m = td.var("n"), td.var("m")
    r = td.placeholder((n, m), name="r")
    k = td.reduce_axis((1, m), name="k")
    C = td.compute((n,), lambda i: td.sum(r[i, k], axis=k), name="C")
    s = td.create_schedule(C)
    axis = C.op.reduce_axis[0]
    if split:
        _, axis = s[C].split(axis, factor=3)
    CF = s.rfactor(C, axis)
    s[CF].parallel(CF.op.axis[0])
    feeds, (out,) = check(s, [r, C], {n: 4, m: 8})
    np.testing.assert_allclose(out, feeds[r][:, 1:].sum(axis=1), rtol=1e-5)
