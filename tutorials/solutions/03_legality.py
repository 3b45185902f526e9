"""Notebook 3, "Try it": a prefix sum. parallel(r) and vectorize(r) are refused (each
step reads the previous one's result: a read-after-write dependence carried by r), and
so is running the pieces of a split r inside out; split alone, in order, is legal."""

import numpy as np

import tdsl as td

L = td.var("L")
X = td.placeholder((L,), name="X")
r = td.reduce_axis((1, L), name="r")
Y = td.compute((L,), lambda t: X[t], name="Y")
P = td.update(Y, lambda: (r,), lambda: Y[r - 1] + X[r])


def refused(attempt) -> bool:
    try:
        attempt()
    except td.ScheduleError as e:
        print(str(e).splitlines()[0])
        return True
    return False


s = td.create_schedule(P)
assert "cannot run in parallel" in td.poly.explain(s[P], r)
assert refused(lambda: s[P].parallel(r))
assert refused(lambda: s[P].vectorize(r))
ro, ri = s[P].split(r, factor=4)
assert refused(lambda: s[P].reorder(ri, ro))

td.testing.assert_equivalent(s, [X, P], sizes={L: 11})      # the split, in order: legal
mod = td.build(s, [X, P])
x = np.arange(1, 11, dtype=np.float32)
y = np.empty_like(x)
mod(x, y)
assert np.allclose(y, np.cumsum(x))
print("prefix sum: the three refusals, and the legal split equals np.cumsum")
