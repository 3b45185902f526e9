"""The training steps tdsl is compared with in benchmarks/training.py: the digits MLP and
CNN of examples/ written by hand in NumPy (forward, backward and update derived by hand),
and in JAX (`jax.jit` of `jax.value_and_grad`, XLA on the CPU).

Every step function takes the parameters (a list of arrays in the layout of
examples/train_mlp.py and examples/train_cnn.py), a batch x, one-hot targets t and the
learning rate. `*_grads` return (loss, gradients); the NumPy steps update the parameters
in place, the JAX steps return new ones (XLA arrays are immutable).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ---------------------------------------------------------------------------------------
# NumPy, by hand
# ---------------------------------------------------------------------------------------


def _softmax_cross_entropy(logits: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean loss -sum(t * log_softmax(z)) / B and its gradient in z:
    (softmax(z) * sum_c t - t) / B (softmax - t for one-hot rows)."""
    batch = len(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    loss = -np.sum(t * (shifted - np.log(total))) / batch
    return float(loss), (e / total * t.sum(axis=1, keepdims=True) - t) / batch


def mlp_grads(params, x, t):
    """z1 = x w1^T + b1, h = relu(z1), z = h w2^T + b2; the chain rule backwards:
    dw2 = dz^T h, db2 = sum_i dz, dh = dz w2, dz1 = dh [z1 >= 0], dw1 = dz1^T x."""
    w1, b1, w2, b2 = params
    z1 = x @ w1.T + b1
    h = np.maximum(z1, 0)
    loss, dz = _softmax_cross_entropy(h @ w2.T + b2, t)
    dz1 = (dz @ w2) * (z1 >= 0)          # relu passes the adjoint where z1 >= 0, as tdsl
    return loss, [dz1.T @ x, dz1.sum(axis=0), dz.T @ h, dz.sum(axis=0)]


def _windows(x: np.ndarray) -> np.ndarray:
    """im2col of a 3x3, padding 1 convolution: (B * H * W, C * 9), rows in (b, y, x)
    order, columns in (c, ky, kx) order (the weights' layout)."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))            # (B, C, H, W, 3, 3)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(b * h * w, c * 9)


def _conv(x, w, bias):
    """3x3 convolution with padding 1, NCHW: the windows times the weights."""
    b, _, h, wd = x.shape
    cols = _windows(x)
    out = cols @ w.reshape(len(w), -1).T + bias                   # (B * H * W, F)
    return out.reshape(b, h, wd, -1).transpose(0, 3, 1, 2), cols


def _conv_backward(dout, cols, w, x_shape):
    """The adjoints of a 3x3 padding-1 convolution: dw = dout^T cols, db = sum dout, and
    dx by scattering dout w back over the nine shifted windows (col2im)."""
    b, c, h, wd = x_shape
    d = dout.transpose(0, 2, 3, 1).reshape(b * h * wd, -1)        # (B * H * W, F)
    dw = (d.T @ cols).reshape(w.shape)
    dcols = (d @ w.reshape(len(w), -1)).reshape(b, h, wd, c, 3, 3)
    dxp = np.zeros((b, c, h + 2, wd + 2), dout.dtype)
    for ky in range(3):
        for kx in range(3):
            dxp[:, :, ky:ky + h, kx:kx + wd] += dcols[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return dxp[:, :, 1:-1, 1:-1], dw, d.sum(axis=0)


def _pool(a):
    """2x2 max pool and the index (0..3, row-major in the window) of the first maximum,
    the element tdsl's adjoint of max gives the gradient to."""
    b, c, h, w = a.shape
    win = a.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(b, c, h // 2, w // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], -1)[..., 0], arg


def _unpool(dp, arg, shape):
    b, c, h, w = shape
    dwin = np.zeros((b, c, h // 2, w // 2, 4), dp.dtype)
    np.put_along_axis(dwin, arg[..., None], dp[..., None], -1)
    return dwin.reshape(b, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def cnn_grads(params, x, t):
    """conv, relu, conv, relu, 2x2 max pool, flatten, dense; backwards by hand."""
    w1, b1, w2, b2, w3, b3 = params
    z1, cols1 = _conv(x, w1, b1)
    a1 = np.maximum(z1, 0)
    z2, cols2 = _conv(a1, w2, b2)
    a2 = np.maximum(z2, 0)
    p, arg = _pool(a2)
    f = p.reshape(len(x), -1)
    loss, dz = _softmax_cross_entropy(f @ w3.T + b3, t)
    da2 = _unpool((dz @ w3).reshape(p.shape), arg, a2.shape)
    da1, dw2, db2 = _conv_backward(da2 * (z2 >= 0), cols2, w2, a1.shape)
    _, dw1, db1 = _conv_backward(da1 * (z1 >= 0), cols1, w1, x.shape)
    return loss, [dw1, db1, dw2, db2, dz.T @ f, dz.sum(axis=0)]


def numpy_step(grads_fn):
    """A training step in NumPy: the gradients, then p -= lr * dp in place."""
    def step(params, x, t, lr):
        loss, grads = grads_fn(params, x, t)
        for p, g in zip(params, grads):
            p -= lr * g
        return loss
    return step


# ---------------------------------------------------------------------------------------
# JAX: the same networks, differentiated by jax.value_and_grad and compiled by XLA
# ---------------------------------------------------------------------------------------


def jax_step(kind: str):
    """jax.jit(step) for "mlp" or "cnn": (params, x, t, lr) -> (loss, new params)."""
    import jax
    import jax.numpy as jnp

    def relu(h):
        # The adjoint passes where h >= 0, as in tdsl and the NumPy rows: jnp.maximum
        # gives half of it at h == 0, which a zero bias and a blank pixel hit exactly.
        return jnp.where(h >= 0, h, 0.0)

    def mlp(params, x):
        w1, b1, w2, b2 = params
        return relu(x @ w1.T + b1) @ w2.T + b2

    def cnn(params, x):
        w1, b1, w2, b2, w3, b3 = params
        dn = ("NCHW", "OIHW", "NCHW")
        conv = lambda h, w: jax.lax.conv_general_dilated(  # noqa: E731
            h, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn)
        h = relu(conv(x, w1) + b1[None, :, None, None])
        h = relu(conv(h, w2) + b2[None, :, None, None])
        h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return h.reshape(h.shape[0], -1) @ w3.T + b3

    forward = {"mlp": mlp, "cnn": cnn}[kind]

    def loss_fn(params, x, t):
        return -jnp.sum(t * jax.nn.log_softmax(forward(params, x))) / x.shape[0]

    @jax.jit
    def step(params, x, t, lr):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, t)
        return loss, [p - lr * g for p, g in zip(params, grads)]

    return step, jax.jit(jax.value_and_grad(loss_fn))
