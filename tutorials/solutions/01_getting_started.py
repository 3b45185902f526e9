"""Notebook 1, "Try it": a row softmax, checked against td.reference and NumPy."""

import numpy as np

import tdsl as td

n, m = td.var("n"), td.var("m")
X = td.placeholder((n, m), name="X")
k1 = td.reduce_axis(m, name="k1")
MX = td.compute((n,), lambda i: td.max(X[i, k1], axis=k1), name="MX")          # row max
E = td.compute((n, m), lambda i, j: td.exp(X[i, j] - MX[i]), name="E")        # shifted exp
k2 = td.reduce_axis(m, name="k2")
SUM = td.compute((n,), lambda i: td.sum(E[i, k2], axis=k2), name="SUM")       # row sum
SM = td.compute((n, m), lambda i, j: E[i, j] / SUM[i], name="SM")

s = td.create_schedule(SM)
td.testing.assert_equivalent(s, [X, SM], sizes={n: 37, m: 19})

mod = td.build(s, [X, SM])
x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32) * 10
sm = np.empty_like(x)
mod(x, sm)
e = np.exp(x - x.max(axis=1, keepdims=True))
assert np.allclose(sm, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
assert np.allclose(sm.sum(axis=1), 1.0, atol=1e-5)
print("softmax: equivalent to the reference and to NumPy; every row sums to 1")
