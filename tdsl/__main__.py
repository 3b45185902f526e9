"""`python -m tdsl`: the main example. Builds a matrix multiply and a softmax,
prints their lowered loops, checks them against NumPy and times them."""

from __future__ import annotations

import numpy as np

import tdsl as td


def main() -> None:
    rng = np.random.default_rng(0)
    print("== matmul: C[i, j] = sum_k A[i, k] * B[k, j], an 8 x 32 register tile ==")
    s, args = td.examples.matmul()
    a_shape = b_shape = (1024, 1024)
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
    s, args = td.examples.softmax()
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
