"""Notebook 9, gradients: the adjoints of a matmul and of a 3x3 convolution derived by
hand and by td.grad (the same stages), the scatter turned into a gather on the iteration
domain, and a digits MLP trained with tdsl kernels: forward, loss, td.grad, SGD."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 9. Gradients

    Training a network needs the gradient of a loss with respect to every weight. A
    deep-learning framework gets it by reverse-mode differentiation: walk the program
    backwards, and give every tensor an *adjoint*, the derivative of the loss with
    respect to it. `td.grad` does this on tdsl's own programs, and what it returns is
    more tdsl stages: you can print them, schedule them, and build them like the
    kernels of the earlier notebooks.

    This notebook is the assignment a systems course gives (implement the operators,
    differentiate them, train), with tdsl as the compiler:

    1. the adjoint of a matrix multiply, by hand and by `td.grad`;
    2. the adjoint of a 3x3 convolution, whose reads overlap;
    3. why every adjoint is a *gather*, drawn on the iteration domain;
    4. a two-layer network trained on handwritten digits with tdsl kernels only.
    """),
    code("""
    %matplotlib inline
    import statistics
    import time

    import matplotlib.pyplot as plt
    import numpy as np

    import tdsl as td
    from tdsl import nn
    """),
    code(NP_TIME),
    md("""
    ## 1. The adjoint of a matrix multiply

    `Y[i, j] = sum_k X[i, k] * W[k, j]`. Suppose the loss's derivative with respect to
    Y is a given tensor `dY` (the *head*). One instance `(i, j, k)` of the sum
    multiplies `X[i, k]` by `W[k, j]`, so it contributes `dY[i, j] * W[k, j]` to the
    adjoint of `X[i, k]` and `dY[i, j] * X[i, k]` to that of `W[k, j]`. Collect the
    instances that touch one element and you get two matrix multiplies:

        dX[i, k] = sum_j dY[i, j] * W[k, j]        (dX = dY W^T)
        dW[k, j] = sum_i X[i, k] * dY[i, j]        (dW = X^T dY)

    Written by hand in tdsl:
    """),
    code("""
    n, l, m = td.var("n"), td.var("l"), td.var("m")
    X = td.placeholder((n, l), "float64", name="X")
    W = td.placeholder((l, m), "float64", name="W")
    k = td.reduce_axis(l, name="k")
    Y = td.compute((n, m), lambda i, j: td.sum(X[i, k] * W[k, j], axis=k), name="Y")
    dY = td.placeholder((n, m), "float64", name="dY")

    jj, ii = td.reduce_axis(m, name="j"), td.reduce_axis(n, name="i")
    dX_hand = td.compute((n, l), lambda i, k: td.sum(dY[i, jj] * W[k, jj], axis=jj), name="dX")
    dW_hand = td.compute((l, m), lambda k, j: td.sum(X[ii, k] * dY[ii, j], axis=ii), name="dW")
    print(td.lower(td.create_schedule([dX_hand, dW_hand]), [X, W, dY, dX_hand, dW_hand]))
    """),
    md("""
    `td.grad(Y, [X, W], head=dY)` derives the same two stages. It names each adjoint
    `<tensor>_grad`, and for each read `X[i, k]` it solves the index equations
    `i = a0, k = a1` for the consumer's variables: `j` is left free, so it becomes the
    sum.
    """),
    code("""
    dX, dW = td.grad(Y, [X, W], head=dY)
    print(td.lower(td.create_schedule([dX, dW]), [X, W, dY, dX, dW]))

    mod = td.build(td.create_schedule([dX, dW]), [X, W, dY, dX, dW])
    rng = np.random.default_rng(0)
    x, w, dy = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    dx, dw = np.empty((5, 4)), np.empty((4, 3))
    mod(x, w, dy, dx, dw)
    np.testing.assert_allclose(dx, dy @ w.T)
    np.testing.assert_allclose(dw, x.T @ dy)
    print("td.grad == dY W^T and X^T dY")
    """),
    md("""
    ## 2. The adjoint of a 3x3 convolution

    A convolution reads its input through overlapping windows:
    `O[y, x] = sum_{ry, rx} P[y + ry, x + rx] * K[ry, rx]`, with `P` the input padded
    by one pixel (here a stage of its own, as `nn.conv2d` does). Element `P[a, b]` is
    read by every output whose window covers it: `y = a - ry`, `x = b - rx`, for the
    `ry, rx` that keep `y` and `x` inside the output. So

        dP[a, b] = sum_{ry, rx} dO[a - ry, b - rx] * K[ry, rx]    (0 <= a - ry < H, ...)
        dK[ry, rx] = sum_{y, x} dO[y, x] * P[y + ry, x + rx]

    The input's adjoint is a convolution of the head with the kernel flipped, the
    "transposed convolution" of the textbooks; the border conditions become loop
    bounds. By hand first:
    """),
    code("""
    H, Wd = td.var("H"), td.var("W")
    I = td.placeholder((H, Wd), "float64", name="I")
    K = td.placeholder((3, 3), "float64", name="K")
    P = td.compute((H + 2, Wd + 2), lambda y, x: td.select(
        td.all(y >= 1, y <= H, x >= 1, x <= Wd), I[y - 1, x - 1], 0.0), name="P")
    ry, rx = td.reduce_axis(3, name="ry"), td.reduce_axis(3, name="rx")
    O = td.compute((H, Wd), lambda y, x: td.sum(P[y + ry, x + rx] * K[ry, rx], axis=[ry, rx]),
                   name="O")
    dO = td.placeholder((H, Wd), "float64", name="dO")

    qy, qx = td.reduce_axis(3, name="ry"), td.reduce_axis(3, name="rx")
    dP_hand = td.compute((H + 2, Wd + 2), lambda a, b: td.sum(
        dO[a - qy, b - qx] * K[qy, qx], axis=[qy, qx],
        where=td.all(a - qy >= 0, a - qy < H, b - qx >= 0, b - qx < Wd)), name="dP")
    print(td.lower(td.create_schedule(dP_hand), [dO, K, dP_hand]))
    """),
    md("""
    The `where=` is a condition on the reduction's domain, and isl turned it into the
    bounds `max(0, ...)` and `min(3, ...)` of the `ry` and `rx` loops: no test runs
    inside the loop. Now `td.grad`, asked for the adjoints of the image `I` and of the
    kernel `K`. It goes through the padding stage too, so `I_grad` reads `P_grad` one
    pixel in, where `P` read `I`:
    """),
    code("""
    dI, dK = td.grad(O, [I, K], head=dO)
    s_conv = td.create_schedule([dI, dK])
    print(td.lower(s_conv, [I, K, dO, dI, dK]))
    """),
    md("""
    The same stages as by hand: `P_grad` is `dP` (the loop bounds are isl's), `I_grad`
    crops it, `K_grad` is the correlation of the head with the padded input. Checked
    against NumPy:
    """),
    code("""
    conv_grads = td.build(s_conv, [I, K, dO, dI, dK])
    img, ker, d_out = rng.normal(size=(6, 7)), rng.normal(size=(3, 3)), rng.normal(size=(6, 7))
    d_img, d_ker = np.empty((6, 7)), np.empty((3, 3))
    conv_grads(img, ker, d_out, d_img, d_ker)

    padded = np.pad(img, 1)
    want_dk = np.array([[np.sum(d_out * padded[a:a + 6, b:b + 7]) for b in range(3)]
                        for a in range(3)])
    d_pad = np.zeros((8, 9))
    for a in range(3):
        for b in range(3):
            d_pad[a:a + 6, b:b + 7] += d_out * ker[a, b]
    np.testing.assert_allclose(d_ker, want_dk)
    np.testing.assert_allclose(d_img, d_pad[1:-1, 1:-1])
    print("td.grad of the convolution == NumPy by hand")
    """),
    md("""
    ## 3. From scatter to gather

    Reverse mode is naturally a *scatter*: each instance of the forward computation
    adds its contribution to the adjoint of what it read. Run in parallel, a scatter
    needs atomic additions, because many instances add to one element. A *gather*
    turns it around: each element of the adjoint sums over the instances that read
    it, and writes only itself, so its loop is parallel and vectorizes.

    Take a 1-D convolution, `Y[i] = sum_r A[i + r] * w[r]`. isl holds its read of `A`
    as a map from the iteration domain to the elements of `A`; its inverse, the
    *preimage*, says which instances read each element:
    """),
    code("""
    n1 = td.var("n")
    A = td.placeholder((n1 + 2,), "float64", name="A")
    w1 = td.placeholder((3,), "float64", name="w")
    r = td.reduce_axis(3, name="r")
    Y1 = td.compute((n1,), lambda i: td.sum(A[i + r] * w1[r], axis=r), name="Y")
    s1 = td.create_schedule(Y1)
    read = td.poly.accesses(s1)["Y_update"]["reads"][1]
    print("read     ", read)
    print("preimage ", read.reverse())
    """),
    md("""
    On the left, the iteration domain `(i, r)` at `n = 6`, each instance coloured by
    the element `A[i + r]` it reads; the arrows of one colour all land on one element
    (the scatter). On the right, the same instances grouped by that element: the
    preimage of `A[x]` is the anti-diagonal `i = x - r`, clipped by `0 <= i < n`. That
    is the loop over `r` in the gather `td.grad` writes (printed below the picture,
    where the element of `A_grad` is called `i`, the default name of A's first axis):
    `for r in range(max(0, -n + i + 1), min(3, i + 1))`.
    """),
    code("""
    sizes = {"n": 6}
    points = td.poly.points(td.poly.domains(s1)["Y_update"], sizes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = plt.cm.viridis(np.linspace(0, 1, sizes["n"] + 2))
    for i, rr in points:
        left.scatter(i, rr, color=colors[i + rr], s=80, zorder=2)
        left.annotate("", xy=(i + rr, -1.2), xytext=(i, rr),
                      arrowprops=dict(arrowstyle="->", color=colors[i + rr], alpha=0.5))
    left.scatter(range(sizes["n"] + 2), [-1.2] * (sizes["n"] + 2), marker="s", s=120,
                 color=colors, zorder=2)
    left.set(title="scatter: each instance (i, r) adds to A[i + r]", xlabel="i",
             ylabel="r  (squares: A[0..n+1])", yticks=[-1.2, 0, 1, 2],
             yticklabels=["A", "0", "1", "2"])
    for x in range(sizes["n"] + 2):
        pre = [(i, rr) for i, rr in points if i + rr == x]
        right.plot([x] * len(pre), [rr for _, rr in pre], "-o", color=colors[x], ms=8)
    right.set(title="gather: A_grad[x] sums its preimage i = x - r", xlabel="x (element of A)",
              ylabel="r", yticks=[0, 1, 2])
    fig.tight_layout()

    dY1 = td.placeholder((n1,), "float64", name="dY")
    dA, dw1 = td.grad(Y1, [A, w1], head=dY1)
    print(td.lower(td.create_schedule(dA), [dY1, w1, dA]))
    """),
    md("""
    Each element of `A_grad` is written by one iteration of the `i` loop, so the loop
    can run in parallel; isl proves it like any other:
    """),
    code("""
    s_dA = td.create_schedule(dA)
    (x_axis,) = dA.op.axis
    print(td.poly.explain(s_dA[dA], x_axis))
    """),
    md("""
    ## 4. Training a network on the digits

    scikit-learn ships 1797 handwritten digits of 8 x 8 pixels (no download). The
    network: 64 pixels, a dense layer of 64 units with ReLU, a dense layer of 10,
    softmax cross-entropy, the mean over a batch. The loss is a scalar, so `td.grad`
    needs no head: it starts from 1.
    """),
    code("""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.data / 16).astype("float32")
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[:360], order[360:]
    onehot = np.eye(10, dtype="float32")[digits.target]

    B, HIDDEN = 64, 64
    x = td.placeholder((B, 64), name="x")
    target = td.placeholder((B, 10), name="target")
    w1 = td.placeholder((HIDDEN, 64), name="w1")
    b1 = td.placeholder((HIDDEN,), name="b1")
    w2 = td.placeholder((10, HIDDEN), name="w2")
    b2 = td.placeholder((10,), name="b2")
    params = [w1, b1, w2, b2]

    def forward(x):
        hidden = nn.relu(nn.dense(x, w1, b1, name="fc1"), name="act1")
        return nn.dense(hidden, w2, b2, name="fc2")

    logp = nn.log_softmax(forward(x))
    i, c = td.reduce_axis(B, name="i"), td.reduce_axis(10, name="c")
    loss = td.compute((), lambda: td.sum(-target[i, c] * logp[i, c] / B, axis=[i, c]),
                      name="loss")
    grads = td.grad(loss, params)
    print([g.name for g in grads])
    """),
    md("""
    Three kernels, compiled once: the step (forward, loss and all four adjoints in one
    kernel, scheduled by `td.auto_schedule`), the SGD update `p - lr * dp` of every
    parameter, and the forward pass at any batch size for the accuracy. The update
    writes into a second set of arrays (a kernel's output may not share memory with
    its inputs), and the two sets swap after each step.
    """),
    code("""
    start = time.perf_counter()
    s_step = td.auto_schedule([loss, *grads])
    step = td.build(s_step, [x, target, *params, loss, *grads])

    lr = td.placeholder((), name="lr")
    dps = [td.placeholder(p.shape, name=f"{p.name}_dp") for p in params]
    updated = [td.compute(p.shape, lambda *ix, p=p, g=g: p[ix] - lr[()] * g[ix],
                          name=f"{p.name}_next") for p, g in zip(params, dps)]
    sgd = td.build(td.auto_schedule(updated), [lr, *params, *dps, *updated])

    nb = td.var("nb")
    xs = td.placeholder((nb, 64), name="xs")
    logits = forward(xs)
    predict = td.build(td.create_schedule(logits), [xs, *params, logits])
    print(f"compiled in {time.perf_counter() - start:.1f} s")
    """),
    code("""
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, np.sqrt(2 / 64), (HIDDEN, 64)).astype("float32"),
               np.zeros(HIDDEN, "float32"),
               rng.normal(0, np.sqrt(1 / HIDDEN), (10, HIDDEN)).astype("float32"),
               np.zeros(10, "float32")]
    spare = [np.empty_like(p) for p in weights]
    dws = [np.empty_like(p) for p in weights]
    loss_value, rate = np.empty((), "float32"), np.array(0.2, "float32")

    def accuracy():
        out = np.empty((len(test), 10), "float32")
        predict(images[test], *weights, out)
        return np.mean(out.argmax(1) == digits.target[test])

    for epoch in range(8):
        losses = []
        for start in range(0, len(train) - B + 1, B):
            rows = train[start:start + B]
            step(images[rows], onehot[rows], *weights, loss_value, *dws)
            sgd(rate, *weights, *dws, *spare)
            weights, spare = spare, weights
            losses.append(float(loss_value))
        rng.shuffle(train)
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, held-out accuracy {accuracy():.1%}")
    """),
    md("""
    `examples/train_mlp.py` is this loop as a program (30 epochs reach about 97%), and
    `examples/train_cnn.py` trains a small convolutional network the same way (about
    98%).

    ## 5. Check and time

    The gradients of one step against the chain rule written in NumPy: the softmax
    cross-entropy's adjoint is `(softmax - target) / B`, then back through the two
    dense layers and the ReLU.
    """),
    code("""
    xb, tb = images[train[:B]], onehot[train[:B]]
    step(xb, tb, *weights, loss_value, *dws)

    def numpy_grads(xb, tb, w1_, b1_, w2_, b2_):
        z1 = xb @ w1_.T + b1_
        h = np.maximum(z1, 0)
        z2 = h @ w2_.T + b2_
        p = np.exp(z2 - z2.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz2 = (p - tb) / len(xb)
        dz1 = (dz2 @ w2_) * (z1 >= 0)
        return [dz1.T @ xb, dz1.sum(0), dz2.T @ h, dz2.sum(0)]

    want = numpy_grads(xb.astype(np.float64), tb, *[p.astype(np.float64) for p in weights])
    for _, got, ref in zip(params, dws, want):
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-6 * np.abs(ref).max())
    print("every gradient matches NumPy")

    def tdsl_step():
        step(xb, tb, *weights, loss_value, *dws)
        sgd(rate, *weights, *dws, *spare)

    timings = {"tdsl step + sgd (auto_schedule)": np_time(tdsl_step),
               "NumPy by hand (gradients only)": np_time(lambda: numpy_grads(xb, tb, *weights))}
    print_table(("training step, batch 64", "ms"),
                [(name, f"{t * 1e3:.3f}") for name, t in timings.items()])
    """),
    md("""
    **What to remember.** An adjoint is ordinary tdsl: `td.grad` inverts each read's
    index map into a gather (a sum over the preimage, with isl's loop bounds), so the
    backward pass is stages you print, schedule and build like any other. A whole
    training step, forward, loss, backward, is one kernel, and the update another;
    the loop only calls them. `benchmarks/training.py` times such steps against JAX and
    NumPy.
    """),
]
