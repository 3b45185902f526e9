"""Notebook 5, "Try it": (a) the shared tiles computed at k_inner, (b) an 8 x 8 register
tile per thread, checked on the CPU emulator (or a GPU, if there is one)."""

import warnings

import numpy as np

import tdsl as td

GPU, why, NVCC = td.cuda_status()


def build(schedule, args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return td.build(schedule, args, target="cuda", emulate=not GPU)


def matmul():
    M, N, K = td.var("M"), td.var("N"), td.var("K")
    A = td.placeholder((M, K), name="A")
    B = td.placeholder((K, N), name="B")
    k = td.reduce_axis(K, name="k")
    C = td.compute((M, N), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    return A, B, C


def register_tiled(per_thread, at_inner=False):
    """Section 5's schedule with a per_thread x per_thread block of outputs per thread."""
    A, B, C = matmul()
    s = td.create_schedule(C)
    CC = s.cache_write(C, "local")
    AS = s.cache_read(A, "shared", [CC])
    BS = s.cache_read(B, "shared", [CC])
    tile = 16 * per_thread
    io, jo, ii, ji = s[C].tile(*C.op.axis, tile, tile)
    iio, iii = s[C].split(ii, factor=per_thread)
    jio, jii = s[C].split(ji, factor=per_thread)
    s[C].reorder(io, jo, iio, jio, iii, jii)
    for axis, tag in ((io, "blockIdx.y"), (jo, "blockIdx.x"), (iio, "threadIdx.y"),
                      (jio, "threadIdx.x")):
        s[C].bind(axis, tag)
    s[CC].compute_at(s[C], jo)
    ko, ki = s[CC].split(CC.op.reduce_axis[0], factor=16)
    ico, ici = s[CC].split(CC.op.axis[0], factor=per_thread)
    jco, jci = s[CC].split(CC.op.axis[1], factor=per_thread)
    s[CC].reorder(ko, ico, jco, ki, ici, jci)
    s[CC].bind(ico, "threadIdx.y")
    s[CC].bind(jco, "threadIdx.x")
    s[CC].unroll(ici)
    s[CC].unroll(jci)
    for stage in (AS, BS):
        s[stage].compute_at(s[CC], ki if at_inner else ko)
        rows, cols = stage.op.axis
        ro, ri = s[stage].split(rows, factor=16)
        co, ci = s[stage].split(cols, factor=16)
        s[stage].reorder(ro, co, ri, ci)
        s[stage].bind(ri, "threadIdx.y")
        s[stage].bind(ci, "threadIdx.x")
    return s, [A, B, C]


# (a) At k_inner the tiles would be reloaded at every single step of k (16 times as many
# copies, each with its two barriers), even if tdsl accepted it; print what it says.
try:
    s, args = register_tiled(4, at_inner=True)
    mod = build(s, args)
    src = mod.source
    print("accepted; __syncthreads() calls in the source:", src.count("__syncthreads()"))
except td.TdslError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])

# (b) 8 x 8 outputs per thread: 64 accumulators in registers, a 128 x 128 tile per block
s, args = register_tiled(8)
mod = build(s, args)
assert "C_local[64]" in mod.source
rng = np.random.default_rng(0)
for M_, N_, K_ in ((100, 37, 53), (17, 33, 16)):
    a = rng.standard_normal((M_, K_), dtype=np.float32)
    b = rng.standard_normal((K_, N_), dtype=np.float32)
    c = np.full((M_, N_), np.nan, dtype=np.float32)
    mod(a, b, c)
    assert np.allclose(c, a @ b, rtol=1e-4, atol=1e-4), (M_, N_, K_)
print("8 x 8 register tile per thread agrees with NumPy" + ("" if GPU else " (emulated)"))
if mod.resources is not None:
    for name, r in mod.resources.items():
        print(name, r)
