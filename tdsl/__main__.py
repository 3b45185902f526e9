"""`python -m tdsl`: the main example. Builds a matrix multiply and a softmax,
prints their lowered loops, checks them against NumPy and times them."""

from __future__ import annotations

import numpy as np

import tdsl as td


def matmul_example(size: int = 1024):
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    A = td.placeholder((n, l), name="A")
    B = td.placeholder((l, m), name="B")
    k = td.reduce_axis(l, name="k")
    C = td.compute((n, m), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")

    s = td.create_schedule(C)
    # An 8 x 32 block of C accumulates in registers over the whole k loop: computed in a
    # local buffer (cache_write) per tile, its rows unrolled and its columns vectorized.
    CL = s.cache_write(C, "local")
    i, j = C.op.axis
    io, jo, ii, ji = s[C].tile(i, j, 8, 32)
    s[CL].compute_at(s[C], jo)
    ic, jc = CL.op.axis
    s[CL].reorder(CL.op.reduce_axis[0], ic, jc)
    s[CL].unroll(ic)
    s[CL].vectorize(jc)
    s[C].vectorize(ji)
    s[C].parallel(io)
    return s, [A, B, C], (size, size), (size, size)


def softmax_example():
    n, m = td.var("n"), td.var("m")
    X = td.placeholder((n, m), name="X")
    k1, k2 = td.reduce_axis(m, name="k1"), td.reduce_axis(m, name="k2")
    row_max = td.compute((n,), lambda i: td.max(X[i, k1], axis=k1), name="row_max")
    e = td.compute((n, m), lambda i, j: td.exp(X[i, j] - row_max[i]), name="e")
    total = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
    Y = td.compute((n, m), lambda i, j: e[i, j] / total[i], name="Y")

    s = td.create_schedule(Y)
    row = Y.op.axis[0]
    # Consumers first: total reads e, e reads row_max, and all of them live in one row.
    s[total].compute_at(s[Y], row)
    s[e].compute_at(s[Y], row)
    s[row_max].compute_at(s[Y], row)
    s[Y].parallel(row)
    return s, [X, Y]


def main() -> None:
    rng = np.random.default_rng(0)
    print("== matmul: C[i, j] = sum_k A[i, k] * B[k, j], an 8 x 32 register tile ==")
    s, args, a_shape, b_shape = matmul_example()
    print(s)
    print(td.lower(s, args))
    mod = td.build(s, args)
    a = rng.standard_normal(a_shape, dtype=np.float32)
    b = rng.standard_normal(b_shape, dtype=np.float32)
    c = np.empty((a_shape[0], b_shape[1]), dtype=np.float32)
    mod(a, b, c)
    err = np.abs(c - a @ b).max()
    t_td = mod.time(a, b, c, repeat=10).median
    t_np = _time(lambda: a @ b)
    flops = 2 * a_shape[0] * a_shape[1] * b_shape[1]
    print(f"max |C - A @ B| = {err:.2e}")
    print(f"tdsl {t_td * 1e3:.2f} ms ({flops / t_td / 1e9:.1f} GFLOP/s)   "
          f"NumPy {t_np * 1e3:.2f} ms ({flops / t_np / 1e9:.1f} GFLOP/s)\n")

    print("== softmax over rows, four stages computed per row ==")
    s, args = softmax_example()
    print(td.lower(s, args))
    mod = td.build(s, args)
    x = rng.standard_normal((1024, 1000), dtype=np.float32)
    y = np.empty_like(x)
    mod(x, y)
    ex = np.exp(x - x.max(axis=1, keepdims=True))
    want = ex / ex.sum(axis=1, keepdims=True)
    print(f"max |Y - softmax(X)| = {np.abs(y - want).max():.2e}")
    t_td = mod.time(x, y, repeat=10).median

    def numpy_softmax():
        ex = np.exp(x - x.max(axis=1, keepdims=True))
        return ex / ex.sum(axis=1, keepdims=True)
    t_np = _time(numpy_softmax)
    print(f"tdsl {t_td * 1e3:.2f} ms   NumPy {t_np * 1e3:.2f} ms   "
          f"({t_np / t_td:.1f}x NumPy)")


def _time(fn, repeat: int = 10) -> float:
    import time
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


if __name__ == "__main__":
    main()
