"""Assignment 3, training: relu and its gradient by hand, an MLP's loss, its gradients
with td.grad, and the MLP trained on scikit-learn's digits with the student's kernels."""

from . import code, md, solution, tests

CELLS = [
    md("""
    # Assignment 3: training a network with your kernels

    A network is trained by gradient descent: run it forward, compute the loss, compute
    the gradient of the loss with respect to every weight, step the weights against
    it, repeat. In this assignment you write the forward pass of a two-layer
    perceptron (MLP) with `td.compute`, get its gradients from `td.grad` (reverse-mode
    differentiation of your compute stages: it returns more compute stages), build
    both into one kernel, and train the MLP to recognize handwritten digits
    (scikit-learn's 8 x 8 `load_digits`) with a plain NumPy loop around that kernel.

    All tensors are float32; the batch size `n` is symbolic, so one kernel serves the
    training set and the test set.
    """),
    code("""
    import numpy as np
    from sklearn.datasets import load_digits

    import tdsl as td

    N = td.var("n")                                   # the batch size
    FEATURES, HIDDEN, CLASSES = 64, 32, 10
    """),
    md("""
    ## 1. ReLU and its gradient (1 point)

    `relu(X)` is `max(X, 0)` elementwise. Its gradient: for a loss `L` that depends on
    `Y = relu(X)`, `dL/dX = dL/dY` where `X > 0` and `0` elsewhere. Write both for a
    tensor `X` of shape `(n, HIDDEN)`; `relu_grad(X, dY)` takes the adjoint `dY` of the
    output. The test compares your gradient with NumPy and with `td.grad(relu(X), X,
    head=dY)`, which differentiates your `relu` for you.
    """),
    solution("""
    def relu(X):
        ### BEGIN SOLUTION
        return td.compute(X.shape, lambda i, j: td.maximum(X[i, j], 0.0), name="relu")
        ### END SOLUTION


    def relu_grad(X, dY):
        ### BEGIN SOLUTION
        return td.compute(X.shape, lambda i, j: td.select(X[i, j] > 0, dY[i, j], 0.0),
                          name="relu_grad")
        ### END SOLUTION
    """, "relu"),
    code("""
    def run(outputs, inputs, arrays, n):
        \"\"\"Build the default schedule of `outputs` from placeholders `inputs`, run it on
        `arrays` (batch size n) and return the outputs (float32 arrays).\"\"\"
        mod = td.build(td.create_schedule(outputs), [*inputs, *outputs])
        results = [np.empty(shape_of(t, n), np.float32) for t in outputs]
        mod(*arrays, *results)
        return results


    def shape_of(t, n):
        \"\"\"The shape of `t` as ints, with the batch size n for the symbolic N.\"\"\"
        return tuple(n if getattr(d, "name", None) == "n" else int(d.value) for d in t.shape)
    """),
    tests("""
    X = td.placeholder((N, HIDDEN), name="X")
    dY = td.placeholder((N, HIDDEN), name="dY")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((13, HIDDEN), dtype=np.float32)
    dy = rng.standard_normal((13, HIDDEN), dtype=np.float32)
    (y,) = run([relu(X)], [X], [x], 13)
    np.testing.assert_allclose(y, np.maximum(x, 0), err_msg="relu(X) is not max(X, 0)")
    (mine,) = run([relu_grad(X, dY)], [X, dY], [x, dy], 13)
    np.testing.assert_allclose(mine, np.where(x > 0, dy, 0), err_msg="relu_grad is wrong")
    (auto,) = run([td.grad(relu(X), X, head=dY)], [X, dY], [x, dy], 13)
    np.testing.assert_allclose(mine, auto, err_msg="relu_grad differs from td.grad of relu")
    print("relu and relu_grad: correct")
    """, "test_relu", 1),
    md("""
    ## 2. The loss of the MLP (2 points)

    `mlp_loss(X, Y, W1, b1, W2, b2)` for a batch `X (n, 64)` with one-hot labels
    `Y (n, 10)`:

    - `H = relu(X @ W1.T + b1)` with `W1 (32, 64)`, `b1 (32,)`;
    - logits `Z = H @ W2.T + b2` with `W2 (10, 32)`, `b2 (10,)`;
    - the loss: the mean over the batch of the softmax cross-entropy,
      `mean_i( log sum_j exp(Z[i, j]) - sum_j Y[i, j] Z[i, j] )`, a scalar
      (`td.compute((), lambda: ...)`), computed with the row maximum subtracted as in
      assignment 1. Divide by the batch size as `td.cast(N, "float32")`.

    Also return the logits (for predictions): `mlp_loss` returns `(loss, Z)`.
    """),
    solution("""
    def mlp_loss(X, Y, W1, b1, W2, b2):
        ### BEGIN SOLUTION
        k1 = td.reduce_axis(FEATURES, "k1")
        pre = td.compute((N, HIDDEN), lambda i, h: td.sum(X[i, k1] * W1[h, k1], axis=k1),
                         name="pre")
        H = td.compute((N, HIDDEN), lambda i, h: td.maximum(pre[i, h] + b1[h], 0.0), name="H")
        k2 = td.reduce_axis(HIDDEN, "k2")
        zw = td.compute((N, CLASSES), lambda i, c: td.sum(H[i, k2] * W2[c, k2], axis=k2),
                        name="zw")
        Z = td.compute((N, CLASSES), lambda i, c: zw[i, c] + b2[c], name="Z")
        c1, c2 = td.reduce_axis(CLASSES, "c1"), td.reduce_axis(CLASSES, "c2")
        mx = td.compute((N,), lambda i: td.max(Z[i, c1], axis=c1), name="mx")
        lse = td.compute((N,), lambda i: td.sum(td.exp(Z[i, c2] - mx[i]), axis=c2), name="lse")
        i, c = td.reduce_axis(N, "i"), td.reduce_axis(CLASSES, "c")
        count = td.cast(N, "float32")
        loss = td.compute((), lambda: td.sum(
            Y[i, c] * (td.log(lse[i]) + mx[i] - Z[i, c]) / count, axis=[i, c]), name="loss")
        return loss, Z
        ### END SOLUTION
    """, "mlp_loss"),
    code("""
    X = td.placeholder((N, FEATURES), name="X")
    Y = td.placeholder((N, CLASSES), name="Y")
    W1, b1 = td.placeholder((HIDDEN, FEATURES), name="W1"), td.placeholder((HIDDEN,), name="b1")
    W2, b2 = td.placeholder((CLASSES, HIDDEN), name="W2"), td.placeholder((CLASSES,), name="b2")
    PARAMS = [W1, b1, W2, b2]


    def numpy_mlp(x, y, w1, c1, w2, c2):
        \"\"\"(loss, logits, gradients of the loss) in float64 NumPy: the reference.\"\"\"
        x, y, w1, c1, w2, c2 = (a.astype(np.float64) for a in (x, y, w1, c1, w2, c2))
        pre = x @ w1.T + c1
        h = np.maximum(pre, 0)
        z = h @ w2.T + c2
        zs = z - z.max(axis=1, keepdims=True)
        p = np.exp(zs) / np.exp(zs).sum(axis=1, keepdims=True)
        loss = (np.log(np.exp(zs).sum(axis=1)) - (y * zs).sum(axis=1)).mean()
        dz = (p - y) / len(x)
        dh = (dz @ w2) * (pre > 0)
        return loss, z, [dh.T @ x, dh.sum(0), dz.T @ h, dz.sum(0)]


    def random_batch(rows, seed):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 1, (rows, FEATURES)).astype(np.float32)
        y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, rows)]
        weights = [(0.3 * rng.standard_normal(s)).astype(np.float32)
                   for s in [(HIDDEN, FEATURES), (HIDDEN,), (CLASSES, HIDDEN), (CLASSES,)]]
        return [x, y, *weights]
    """),
    tests("""
    loss, Z = mlp_loss(X, Y, *PARAMS)
    for rows, seed in ((17, 1), (3, 2)):
        arrays = random_batch(rows, seed)
        got_loss, got_z = run([loss, Z], [X, Y, *PARAMS], arrays, rows)
        want_loss, want_z, _ = numpy_mlp(*arrays)
        np.testing.assert_allclose(got_z, want_z, rtol=1e-4, atol=1e-4,
                                   err_msg=f"the logits Z are wrong for a batch of {rows}")
        np.testing.assert_allclose(got_loss, want_loss, rtol=1e-4, atol=1e-5,
                                   err_msg=f"the loss is wrong for a batch of {rows}")
    print("mlp_loss: correct")
    """, "test_mlp_loss", 2),
    md("""
    ## 3. Gradients with `td.grad` (2 points)

    `mlp_gradients(loss)` returns the gradients of the loss with respect to
    `W1, b1, W2, b2`, each shaped like its weight: one call of `td.grad`. The test checks
    them against the backpropagation written out in NumPy above (`numpy_mlp`).
    """),
    solution("""
    def mlp_gradients(loss):
        ### BEGIN SOLUTION
        return td.grad(loss, PARAMS)
        ### END SOLUTION
    """, "mlp_gradients"),
    tests("""
    loss, Z = mlp_loss(X, Y, *PARAMS)
    grads = mlp_gradients(loss)
    assert len(grads) == 4, f"expected 4 gradients (W1, b1, W2, b2), got {len(grads)}"
    arrays = random_batch(11, 3)
    got = run(list(grads), [X, Y, *PARAMS], arrays, 11)
    for name, g, want in zip(["W1", "b1", "W2", "b2"], got, numpy_mlp(*arrays)[2]):
        np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-5,
                                   err_msg=f"the gradient of the loss for {name} is wrong")
    print("mlp_gradients: correct")
    """, "test_mlp_gradients", 2),
    md("""
    ## 4. Training on the digits (2 points)

    One kernel computes the loss, the logits and the four gradients in one call. The
    loop below (given) runs it on the whole training set and takes gradient steps;
    `train_step` is yours: it updates the weights in place, `w -= lr * g`. The test
    asks for at least 90% accuracy on the 360 held-out digits.
    """),
    code("""
    digits = load_digits()
    data = (digits.data / 16.0).astype(np.float32)
    labels = digits.target
    order = np.random.default_rng(0).permutation(len(data))
    train, test = order[:-360], order[-360:]
    onehot = np.eye(CLASSES, dtype=np.float32)[labels]

    loss, Z = mlp_loss(X, Y, *PARAMS)
    outputs = [loss, Z, *mlp_gradients(loss)]
    step_kernel = td.build(td.create_schedule(outputs), [X, Y, *PARAMS, *outputs])
    print(f"one kernel: {len(outputs)} outputs")
    """),
    solution("""
    def train_step(weights, gradients, lr):
        ### BEGIN SOLUTION
        for w, g in zip(weights, gradients):
            w -= lr * g
        ### END SOLUTION
    """, "train_step"),
    code("""
    def run_step(x, y, weights):
        results = [np.empty(shape_of(t, len(x)), np.float32) for t in outputs]
        step_kernel(x, y, *weights, *results)
        return results


    rng = np.random.default_rng(1)
    weights = [(s ** -0.5 * rng.standard_normal(shape)).astype(np.float32) if len(shape) == 2
               else np.zeros(shape, np.float32)
               for shape, s in [((HIDDEN, FEATURES), FEATURES), ((HIDDEN,), 1),
                                ((CLASSES, HIDDEN), HIDDEN), ((CLASSES,), 1)]]
    for epoch in range(300):
        loss_value, _, *gradients = run_step(data[train], onehot[train], weights)
        train_step(weights, gradients, lr=0.5)
        if epoch % 100 == 0:
            print(f"epoch {epoch}: loss {float(loss_value):.3f}")
    _, logits, *_ = run_step(data[test], onehot[test], weights)
    accuracy = float((logits.argmax(axis=1) == labels[test]).mean())
    print(f"test accuracy: {accuracy:.1%}")
    """),
    tests("""
    assert accuracy >= 0.9, f"test accuracy {accuracy:.1%} is below 90%"
    """, "test_training", 2),
    md("""
    Your kernels trained a network. Try `td.auto_schedule(outputs)` instead of the
    default schedule for `step_kernel` and time an epoch; or schedule the two matrix
    multiplies with what you learned in assignment 2.
    """),
]
