"""Assignment 1, operators: elementwise with broadcasting, matmul with transposes, conv2d,
softmax and cross-entropy, each written with td.compute and graded against NumPy."""

from . import code, md, solution, tests

CELLS = [
    md("""
    # Assignment 1: operators with `td.compute`

    A deep-learning framework is a library of operators. In this assignment you write
    five of them as tdsl compute definitions: *what* each output element is, as a
    Python lambda over its indices. You do not schedule anything yet (that is
    assignment 2): every operator is built with the default schedule, run on random
    inputs and compared with NumPy at several shapes, some of them deliberately odd.

    Each exercise is a function that takes tdsl tensors (placeholders) with constant
    shapes and returns the output tensor. `dims(t)` gives a tensor's shape as ints.
    Run the cell under each exercise to check your work; the autograder runs the same
    checks and a few more shapes.
    """),
    code("""
    import numpy as np

    import tdsl as td


    def dims(t):
        \"\"\"The shape of a tensor with constant sizes, as a tuple of ints.\"\"\"
        return tuple(int(d.value) for d in t.shape)


    def kernel(inputs, output):
        \"\"\"(schedule, args) of `output` with the default schedule: what grading builds.\"\"\"
        return td.create_schedule(output), [*inputs, output]


    def check(make, expected, shapes, dtype="float32", name=None):
        \"\"\"Build `make(*inputs)` for each list of input shapes and compare it with
        NumPy's `expected(*arrays)` (td.testing.grade); raise with its report if wrong.\"\"\"
        for shape_list in shapes:
            inputs = [td.placeholder(s, dtype, name="ABCD"[k]) for k, s in enumerate(shape_list)]
            result = td.testing.grade(lambda inputs=inputs: kernel(inputs, make(*inputs)),
                                      expected=expected, sizes=[{}])
            what = f"{name or make.__name__}, input shapes {shape_list}"
            assert result.passed, f"{what}:\\n{result}"
        print(f"{name or make.__name__}: correct at {len(shapes)} shape(s)")
    """),
    md("""
    ## 1. Elementwise addition with broadcasting (1 point)

    `broadcast_add(A, B)` is `A + B` with NumPy's broadcasting: shapes are aligned on
    the right, a dimension of size 1 stretches to the other's size, and a missing
    dimension counts as 1. For `A` of shape `(5, 1)` and `B` of shape `(1, 7)` the
    output is `(5, 7)` with `C[i, j] = A[i, 0] + B[0, j]`.

    Hint: `td.compute(shape, lambda *index: ...)` takes any number of indices.
    """),
    solution("""
    def broadcast_add(A, B):
        ### BEGIN SOLUTION
        a, b = dims(A), dims(B)
        rank = max(len(a), len(b))
        full_a, full_b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
        shape = tuple(max(x, y) for x, y in zip(full_a, full_b))

        def read(T, own, index):
            index = index[rank - len(own):]            # the dimensions T has
            return T[tuple(0 if size == 1 else i for size, i in zip(own, index))]

        return td.compute(shape, lambda *index: read(A, a, index) + read(B, b, index),
                          name="C")
        ### END SOLUTION
    """, "broadcast_add"),
    tests("""
    check(broadcast_add, np.add, [[(3, 4), (3, 4)], [(5, 1), (1, 7)], [(2, 3, 4), (3, 1)]])
    ### BEGIN HIDDEN TESTS
    check(broadcast_add, np.add, [[(4,), (6, 4)], [(1,), (3, 2)], [(2, 1, 5), (7, 1)]])
    ### END HIDDEN TESTS
    """, "test_broadcast_add", 1),
    md("""
    ## 2. Matrix multiply with transposes (2 points)

    `matmul(A, B, transpose_a, transpose_b)` is `op(A) @ op(B)` where `op` transposes
    its argument when asked, as in BLAS: four cases, one reduction axis
    (`td.reduce_axis`). Read the transposed matrix in place: do not build a transposed
    copy.
    """),
    solution("""
    def matmul(A, B, transpose_a=False, transpose_b=False):
        ### BEGIN SOLUTION
        n, l = dims(A)[::-1] if transpose_a else dims(A)
        m = dims(B)[0] if transpose_b else dims(B)[1]
        k = td.reduce_axis(l, name="k")

        def a(i):
            return A[k, i] if transpose_a else A[i, k]

        def b(j):
            return B[j, k] if transpose_b else B[k, j]

        return td.compute((n, m), lambda i, j: td.sum(a(i) * b(j), axis=k), name="C")
        ### END SOLUTION
    """, "matmul"),
    tests("""
    for ta in (False, True):
        for tb in (False, True):
            a_shape = (7, 5) if ta else (5, 7)
            b_shape = (3, 7) if tb else (7, 3)
            check(lambda A, B, ta=ta, tb=tb: matmul(A, B, ta, tb),
                  lambda a, b, ta=ta, tb=tb: (a.T if ta else a) @ (b.T if tb else b),
                  [[a_shape, b_shape]], name=f"matmul(transpose_a={ta}, transpose_b={tb})")
    ### BEGIN HIDDEN TESTS
    check(lambda A, B: matmul(A, B, True, True), lambda a, b: a.T @ b.T, [[(1, 9), (4, 1)]],
          name="matmul(transpose_a=True, transpose_b=True)")
    ### END HIDDEN TESTS
    """, "test_matmul", 2),
    md("""
    ## 3. Convolution (2 points)

    `conv2d(X, W, padding)`: `X` is a batch of images `(N, C, H, W)`, `W` the filters
    `(K, C, R, S)`, stride 1, `padding` zeros on each side:

    `out[n, k, y, x] = sum over c, r, s of Xpad[n, c, y + r, x + s] * W[k, c, r, s]`

    with output size `(N, K, H + 2 padding - R + 1, W + 2 padding - S + 1)`. Write the
    padding as its own stage with `td.select` (a read under a `select` only happens
    where its condition holds, so `X[n, c, y - 1, x - 1]` is safe there).
    """),
    code("""
    def conv2d_numpy(x, w, padding):
        \"\"\"The reference: a direct loop over the filter taps, in float64.\"\"\"
        p = padding
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
        n, c, h, wd = xp.shape
        k, _, r, s = w.shape
        out = np.zeros((n, k, h - r + 1, wd - s + 1))
        for dr in range(r):
            for ds in range(s):
                patch = xp[:, :, dr:dr + h - r + 1, ds:ds + wd - s + 1]
                out += np.einsum("nchw,kc->nkhw", patch, w[:, :, dr, ds])
        return out
    """),
    solution("""
    def conv2d(X, W, padding=0):
        ### BEGIN SOLUTION
        n, c, h, w = dims(X)
        k, _, r, s = dims(W)
        p = padding
        pad = td.compute((n, c, h + 2 * p, w + 2 * p), lambda b, ci, y, x: td.select(
            td.all(y >= p, y < h + p, x >= p, x < w + p), X[b, ci, y - p, x - p], 0.0),
            name="pad")
        rc, ry, rx = td.reduce_axis(c, "rc"), td.reduce_axis(r, "ry"), td.reduce_axis(s, "rx")
        return td.compute((n, k, h + 2 * p - r + 1, w + 2 * p - s + 1),
                          lambda b, f, y, x: td.sum(pad[b, rc, y + ry, x + rx] * W[f, rc, ry, rx],
                                                    axis=[rc, ry, rx]), name="out")
        ### END SOLUTION
    """, "conv2d"),
    tests("""
    check(lambda X, W: conv2d(X, W, 1), lambda x, w: conv2d_numpy(x, w, 1),
          [[(2, 3, 7, 6), (4, 3, 3, 3)]], name="conv2d(padding=1)")
    check(lambda X, W: conv2d(X, W, 0), lambda x, w: conv2d_numpy(x, w, 0),
          [[(1, 2, 5, 5), (3, 2, 2, 3)]], name="conv2d(padding=0)")
    ### BEGIN HIDDEN TESTS
    check(lambda X, W: conv2d(X, W, 2), lambda x, w: conv2d_numpy(x, w, 2),
          [[(1, 1, 4, 3), (2, 1, 3, 3)]], name="conv2d(padding=2)")
    ### END HIDDEN TESTS
    """, "test_conv2d", 2),
    md("""
    ## 4. Softmax and cross-entropy (3 points)

    `softmax(X)` normalizes each row of `X` `(n, m)`:
    `softmax(X)[i, j] = exp(X[i, j] - max_j X[i, :]) / sum_j exp(X[i, j] - max_j X[i, :])`.
    Subtracting the row's maximum changes nothing mathematically and keeps `exp` from
    overflowing. Use one stage per step (a max reduction, the exponentials, a sum
    reduction, the division): a reduction must be the whole body of its `td.compute`.

    `cross_entropy(X, Y)` is the mean over the rows of `-sum_j Y[i, j] log softmax(X)[i, j]`,
    a scalar: `td.compute((), lambda: ...)`. Compute `log softmax` as
    `X[i, j] - max - log(sum of exp)` (the log-sum-exp trick): never the log of a
    probability that may have rounded to 0.
    """),
    solution("""
    def softmax(X):
        ### BEGIN SOLUTION
        n, m = dims(X)
        k1, k2 = td.reduce_axis(m, "k1"), td.reduce_axis(m, "k2")
        mx = td.compute((n,), lambda i: td.max(X[i, k1], axis=k1), name="mx")
        e = td.compute((n, m), lambda i, j: td.exp(X[i, j] - mx[i]), name="e")
        total = td.compute((n,), lambda i: td.sum(e[i, k2], axis=k2), name="total")
        return td.compute((n, m), lambda i, j: e[i, j] / total[i], name="softmax")
        ### END SOLUTION


    def cross_entropy(X, Y):
        ### BEGIN SOLUTION
        n, m = dims(X)
        k1, k2 = td.reduce_axis(m, "k1"), td.reduce_axis(m, "k2")
        mx = td.compute((n,), lambda i: td.max(X[i, k1], axis=k1), name="mx")
        lse = td.compute((n,), lambda i: td.sum(td.exp(X[i, k2] - mx[i]), axis=k2), name="lse")
        i, j = td.reduce_axis(n, "i"), td.reduce_axis(m, "j")
        return td.compute((), lambda: td.sum(Y[i, j] * (td.log(lse[i]) + mx[i] - X[i, j]) / n,
                                             axis=[i, j]), name="loss")
        ### END SOLUTION
    """, "softmax"),
    code("""
    def softmax_numpy(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


    def cross_entropy_numpy(x, y):
        x = x.astype(np.float64)
        log_p = x - x.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        return np.array(-(y * log_p).sum() / x.shape[0])
    """),
    tests("""
    check(softmax, softmax_numpy, [[(4, 10)], [(1, 3)], [(7, 1)]])
    ### BEGIN HIDDEN TESTS
    check(softmax, softmax_numpy, [[(3, 130)]])
    ### END HIDDEN TESTS
    """, "test_softmax", 1),
    tests("""
    check(cross_entropy, cross_entropy_numpy, [[(6, 10), (6, 10)], [(1, 4), (1, 4)]])
    ### BEGIN HIDDEN TESTS
    big = td.placeholder((2, 3), name="A"), td.placeholder((2, 3), name="B")
    loss = cross_entropy(*big)
    mod = td.build(*kernel(big, loss))
    out = np.empty((), np.float32)
    mod(np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], np.float32),
        np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], np.float32), out)
    assert np.isfinite(out) and abs(float(out) - (2000 + np.log(3)) / 2) < 1e-2, \\
        f"cross_entropy overflows or loses precision for large logits: got {float(out)}"
    ### END HIDDEN TESTS
    """, "test_cross_entropy", 2),
    md("""
    That is all: your operators compute what NumPy computes, at every shape tried.
    They are slow, though, since the default schedule runs the loops as written.
    Assignment 2 makes them fast.
    """),
]
