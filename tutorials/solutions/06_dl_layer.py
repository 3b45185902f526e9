"""Notebook 6, "Try it": pad computed at the rows of out, next to conv. One output row's
3 x 3 convolution reads 3 rows of pad (every input channel, WIDTH + 2 columns), so every
iteration of y pads 3 rows, 2 of them also padded by its neighbours (a halo, as in
notebook 4). And y is inside the loop over output channels k: every channel pads its
rows again. In all 3 x COUT times the work of padding once at the root, a poor
placement (a loop outside k would do better). Same layer at a smaller size."""

import numpy as np

import tdsl as td

BATCH, CIN, HEIGHT, WIDTH, COUT = 1, 4, 10, 12, 8

x = td.placeholder((BATCH, CIN, HEIGHT, WIDTH), name="x")
w = td.placeholder((COUT, CIN, 3, 3), name="w")
bias = td.placeholder((COUT,), name="bias")
pad = td.compute((BATCH, CIN, HEIGHT + 2, WIDTH + 2), lambda n, c, y, xx: td.select(
    td.all(y >= 1, y <= HEIGHT, xx >= 1, xx <= WIDTH), x[n, c, y - 1, xx - 1], 0.0),
    name="pad")
rc, ry, rx = (td.reduce_axis(CIN, name="rc"), td.reduce_axis(3, name="ry"),
              td.reduce_axis(3, name="rx"))
conv = td.compute((BATCH, COUT, HEIGHT, WIDTH), lambda n, k, y, xx: td.sum(
    pad[n, rc, y + ry, xx + rx] * w[k, rc, ry, rx], axis=[rc, ry, rx]), name="conv")
out = td.compute((BATCH, COUT, HEIGHT, WIDTH),
                 lambda n, k, y, xx: td.maximum(conv[n, k, y, xx] + bias[k], 0.0), name="out")
args = [x, w, bias, out]

s = td.create_schedule(out)
n, k, y, xx = out.op.axis
s[conv].compute_at(s[out], y)
root = td.poly.count(s, {}, writes="pad")
s[pad].compute_at(s[out], y)
print(td.lower(s, args))

# per iteration of y, inside n and k: 3 rows of pad, every input channel, WIDTH + 2 columns
expected = BATCH * COUT * HEIGHT * 3 * CIN * (WIDTH + 2)
counted = td.poly.count(s, {}, writes="pad")
print(f"pad values computed: at the root {root}, at the rows of out {counted}")
assert root == BATCH * CIN * (HEIGHT + 2) * (WIDTH + 2)
assert counted == expected, (counted, expected)

td.testing.assert_equivalent(s, args)
rng = np.random.default_rng(0)
xv = rng.standard_normal((BATCH, CIN, HEIGHT, WIDTH), dtype=np.float32)
wv = rng.standard_normal((COUT, CIN, 3, 3), dtype=np.float32)
bv = rng.standard_normal(COUT, dtype=np.float32)
res = np.empty((BATCH, COUT, HEIGHT, WIDTH), np.float32)
td.build(s, args)(xv, wv, bv, res)
xp = np.pad(xv, ((0, 0), (0, 0), (1, 1), (1, 1)))
want = np.zeros_like(res)
for dy in range(3):
    for dx in range(3):
        want += np.einsum("nchw,kc->nkhw", xp[:, :, dy:dy + HEIGHT, dx:dx + WIDTH],
                          wv[:, :, dy, dx])
assert np.allclose(res, np.maximum(want + bv[None, :, None, None], 0), rtol=1e-4, atol=1e-4)
print(f"pad at the rows of out: 3 rows per output row and channel, "
      f"{counted / root:.0f}x the root's work; result unchanged")
