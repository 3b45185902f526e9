"""Notebook 2, "Try it": register tiles of other shapes. How many vector registers each
needs, which fit this CPU's register file, and a check that each is still a matrix
multiply. Run with --time to also time each tile at N = 1024 (slow on a busy machine)."""

import sys

import numpy as np

import tdsl as td

target = td.target()
LANES = target.lanes("float32")


def matmul(n):
    A = td.placeholder((n, n), name="A")
    B = td.placeholder((n, n), name="B")
    k = td.reduce_axis(n, name="k")
    C = td.compute((n, n), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return A, B, C, k


def register_tile(A, B, C, k, rows, cols):
    """The notebook's register tile (td.examples.register_tile is that schedule)."""
    s = td.create_schedule(C)
    td.examples.register_tile(s, C, rows, cols, parallel=False)
    return s


def registers(rows, cols):
    """Accumulators (rows x cols / LANES), the vectors of B (cols / LANES), the
    broadcast element of A (1)."""
    return rows * cols // LANES + cols // LANES + 1


shapes = [(4, 2 * LANES), (8, 2 * LANES), (12, 2 * LANES), (4, 4 * LANES)]
fits = {shape: registers(*shape) <= target.vector_registers for shape in shapes}
for (rows, cols), ok in fits.items():
    print(f"{rows} x {cols}: {registers(rows, cols)} registers of "
          f"{target.vector_registers}: {'fits' if ok else 'spills'}")
if target.vector_registers == 16:                 # AVX2: 8 lanes, 16 ymm registers
    assert fits == {(4, 16): True, (8, 16): False, (12, 16): False, (4, 32): False}
else:                                              # AVX-512: 16 lanes, 32 zmm registers
    assert fits == {(4, 32): True, (8, 32): True, (12, 32): True, (4, 64): True}

small = matmul(48)
for rows, cols in shapes:
    td.testing.assert_equivalent(register_tile(*small, rows, cols), list(small[:3]))
print("every tile computes A @ B")

if "--time" in sys.argv:
    N = 1024
    big = matmul(N)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((N, N), dtype=np.float32) for _ in range(2))
    c = np.empty((N, N), np.float32)
    for rows, cols in shapes:
        mod = td.build(register_tile(*big, rows, cols), list(big[:3]))
        t = mod.time(a, b, c, repeat=3).median
        print(f"{rows} x {cols}: {2 * N ** 3 / t / 1e9:.1f} GFLOP/s")
