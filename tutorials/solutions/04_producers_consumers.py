"""Notebook 4, "Try it": bx computed at y_outer (a strip of full rows per tile) and at
y_inner (one output row at a time): the evaluations counted with isl, and the buffer."""

import tdsl as td

h, w = td.var("h"), td.var("w")
inp = td.placeholder((h + 2, w + 2), name="inp")
bx = td.compute((h + 2, w), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2]) / 3,
                name="bx")
by = td.compute((h, w), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) / 3,
                name="by")
args = [inp, by]


def bx_evaluations(schedule, sizes):
    return len(td.poly.points(td.poly.domains(schedule)["bx"], sizes, limit=10 ** 6))


def at(level, ty=16, tx=16):
    s = td.create_schedule(by)
    yo, xo, yi, xi = s[by].tile(*by.op.axis, ty, tx)
    s[bx].compute_at(s[by], {"y_outer": yo, "x_outer": xo, "y_inner": yi}[level])
    return s


H = W = 64
# (a) at y_outer: each strip of 16 output rows computes 18 full rows of bx (all w
# columns): (h / 16) * 18 * w evaluations, a buffer of 18 x w
s = at("y_outer")
assert bx_evaluations(s, {"h": H, "w": W}) == H // 16 * 18 * W == 4608
lowered = str(td.lower(s, args))
print(next(line.strip() for line in lowered.splitlines() if "bx = alloc" in line))
assert "bx = alloc float32[18, w]" in lowered
td.testing.assert_equivalent(s, args, sizes={h: 37, w: 19})

# (b) at y_inner: every output row computes the 3 rows of bx it reads, over the tile's
# 16 columns: 3 evaluations per output pixel, as many as inlining
s = at("y_inner")
assert bx_evaluations(s, {"h": H, "w": W}) == 3 * H * W
td.testing.assert_equivalent(s, args, sizes={h: 37, w: 19})
print("y_outer: 4608 evaluations (1.12 per output); y_inner: 3 per output")
