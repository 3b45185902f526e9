"""Notebook 1b, "Try it": (a) 2 x 2 tiles visited column of tiles by column of tiles,
(b) the leftover loop of a split by 3 at w = 10."""

import tdsl as td

h, w = td.var("h"), td.var("w")
A = td.placeholder((h, w), name="A")
F = td.compute((h, w), lambda y, x: A[y, x] * 2.0 + 1.0, name="F")
y, x = F.op.axis

# (a) tile, then put the loop over tile columns (x_outer) outside the loop over tile rows
s = td.create_schedule(F)
yo, xo, yi, xi = s[F].tile(y, x, 2, 2)
s[F].reorder(xo, yo, yi, xi)
print(td.lower(s, [A, F]))
first = td.poly.order(s, F, {h: 4, w: 4})[:8]
assert first == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)], first
td.testing.assert_equivalent(s, [A, F], sizes={h: 7, w: 13})

# (b) split by 3 and unroll: a main loop over w // 3 = 3 full groups (columns 0..8),
# unrolled, and a leftover loop over w % 3 = 1 column: column 9
s = td.create_schedule(F)
xo, xi = s[F].split(x, factor=3)
s[F].unroll(xi)
print(td.lower(s, [A, F]))
order = td.poly.order(s, F, {h: 2, w: 10})
row1 = order.index((1, 0))
leftover = [p for p in order[:row1] if p[1] >= 3 * (10 // 3)]
assert leftover == [(0, 9)] and order[row1 - 1] == (0, 9), leftover
td.testing.assert_equivalent(s, [A, F], sizes={h: 3, w: 10})
print("both answers check")
