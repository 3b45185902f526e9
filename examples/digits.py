"""What the digits examples share: the data, the loss, and a `Trainer` that compiles a
network's training step once and then only calls kernels.

The data is scikit-learn's copy of the UCI handwritten digits (1797 images of 8 x 8
pixels, 16 grey levels, ten classes), shipped inside the package: no download. The split
is fixed (a seeded permutation, 1438 images to train, 359 held out).

A `Model` says how to compute the logits from a batch of images and its parameters
(placeholders) and how to draw initial values. The `Trainer` compiles three kernels from
it, once:

    step     (x, target, *params) -> (loss, *grads)    forward, loss and td.grad, at a
                                                       constant batch size
    sgd      (lr, *params, *grads) -> (*new_params)    p - lr * dp, every parameter at once
    predict  (x, *params) -> logits                    forward only, any batch size

and the training loop calls them with NumPy arrays: nothing is compiled, traced or
allocated per step. The new parameters are written into a second set of arrays, and the
two sets swap roles after each step (a kernel's output may not share memory with its
inputs; the swap costs nothing).
"""

from __future__ import annotations

import ctypes
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

import tdsl as td
from tdsl import nn

from .schedules import plain_schedule

CLASSES = 10
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Data:
    """Images as float arrays scaled to [0, 1] (shape (n, *image_shape)), labels as int64."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load(image_shape: Sequence[int] = (64,), dtype: str = "float32", seed: int = 0) -> Data:
    """The digits, split into train and held-out sets by a permutation drawn with `seed`;
    each image reshaped to `image_shape` ((64,) for a dense layer, (1, 8, 8) for a conv)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.data / 16.0).astype(dtype).reshape(-1, *image_shape)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * TEST_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return Data(x[train], y[train], x[test], y[test])


def one_hot(labels: np.ndarray, dtype: str = "float32") -> np.ndarray:
    return np.eye(CLASSES, dtype=dtype)[labels]


def cross_entropy(logits: td.Tensor, target: td.Tensor) -> td.Tensor:
    """The mean softmax cross-entropy of a batch, a scalar:

        loss = -sum_{i, c} target[i, c] * log_softmax(logits)[i, c] / batch

    `target` holds one-hot rows (any distribution over the classes works)."""
    batch, classes = logits.shape
    logp = nn.log_softmax(logits)
    i, c = td.reduce_axis(batch, name="i"), td.reduce_axis(classes, name="c")
    count = td.cast(batch, logits.dtype)
    # The division sits inside the sum: a reduction must be the whole body of a stage.
    return td.compute((), lambda: td.sum(-target[i, c] * logp[i, c] / count, axis=[i, c]),
                      name="loss")


@dataclass(frozen=True)
class Model:
    """A network: its parameters (placeholders), how to compute logits from a batch x and
    the parameters, and how to draw the initial parameters."""
    name: str
    image_shape: tuple[int, ...]
    params: tuple[td.Tensor, ...]
    forward: Callable[[td.Tensor, Sequence[td.Tensor]], td.Tensor]
    init: Callable[[np.random.Generator], list[np.ndarray]]


SCHEDULES = ("auto", "plain", "default")


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory in the process: a kernel allocates its intermediate
    tensors at each call and frees them at the end, and by default glibc hands blocks
    over 128 KiB back to the OS (mmap, trimming), so the next call faults every page in
    again: 2,700 page faults per CNN step at batch 256, 40% of its CPU time. Raising the
    mmap threshold to its maximum (32 MiB) and the trim threshold makes the next call
    reuse the same pages. Process-wide (NumPy's temporaries benefit too); glibc only."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3          # <malloc.h>
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 32 << 20)


def schedule(outputs: list[td.Tensor], how: str):
    """td.auto_schedule(outputs) ("auto"), the rules of examples/schedules.py ("plain"),
    or the default schedule, loops in axis order ("default")."""
    if how == "auto":
        return td.auto_schedule(outputs)
    if how == "plain":
        return plain_schedule(outputs)
    if how == "default":
        return td.create_schedule(outputs)
    raise ValueError(f"schedule must be one of {SCHEDULES}, not {how!r}")


class Trainer:
    """The compiled kernels of one model at one training batch size, and the parameters.

    >>> trainer = Trainer(train_mlp.model(), batch=64)
    >>> loss = trainer.step(x_batch, one_hot(y_batch), lr=0.1)
    >>> accuracy = trainer.accuracy(data.x_test, data.y_test)
    """

    def __init__(self, model: Model, batch: int, *, how: str = "auto", dtype: str = "float32",
                 seed: int = 0):
        self.model, self.batch, self.dtype = model, batch, dtype
        keep_freed_memory()
        params = list(model.params)
        start = time.perf_counter()
        # The training step: forward, loss, adjoints, at the batch size of training.
        x = td.placeholder((batch, *model.image_shape), dtype, name="x")
        target = td.placeholder((batch, CLASSES), dtype, name="target")
        loss = cross_entropy(model.forward(x, params), target)
        grads = td.grad(loss, params)
        self.step_outputs = [loss, *grads]
        self.step_schedule = schedule(self.step_outputs, how)
        self.step_kernel = td.build(self.step_schedule, [x, target, *params, loss, *grads])
        # The update: every parameter in one kernel, p_next = p - lr * dp.
        lr = td.placeholder((), dtype, name="lr")
        dps = grads_like(params)
        updated = [td.compute(p.shape, lambda *i, p=p, g=g: p[i] - lr[()] * g[i],
                              name=f"{p.name}_next") for p, g in zip(params, dps)]
        self.sgd_kernel = td.build(schedule(updated, how), [lr, *params, *dps, *updated])
        # Prediction at any batch size.
        n = td.var("n")
        xs = td.placeholder((n, *model.image_shape), dtype, name="x")
        logits = model.forward(xs, params)
        self.predict_kernel = td.build(schedule([logits], how), [xs, *params, logits])
        self.compile_s = time.perf_counter() - start
        self.params = [np.ascontiguousarray(p, dtype) for p in
                       model.init(np.random.default_rng(seed))]
        self._spare = [np.empty_like(p) for p in self.params]
        self.grads = [np.empty_like(p) for p in self.params]
        self._loss = np.empty((), dtype)
        self._lr = np.empty((), dtype)

    def set_threads(self, threads: int | None) -> None:
        """The OpenMP team of every kernel (None: the process's budget, shared among
        concurrent calls)."""
        for kernel in (self.step_kernel, self.sgd_kernel, self.predict_kernel):
            kernel.num_threads = threads

    def gradients(self, x: np.ndarray, target: np.ndarray) -> float:
        """Forward, loss and backward on one batch: fills self.grads, returns the loss."""
        self.step_kernel(x, target, *self.params, self._loss, *self.grads)
        return float(self._loss)

    def update(self, lr: float) -> None:
        """One SGD update with the gradients of the last `gradients` call."""
        self._lr[()] = lr
        self.sgd_kernel(self._lr, *self.params, *self.grads, *self._spare)
        self.params, self._spare = self._spare, self.params

    def step(self, x: np.ndarray, target: np.ndarray, lr: float) -> float:
        """One training step (gradients, then the update); the loss before the update."""
        loss = self.gradients(x, target)
        self.update(lr)
        return loss

    def predict(self, x: np.ndarray) -> np.ndarray:
        logits = np.empty((len(x), CLASSES), self.dtype)
        self.predict_kernel(np.ascontiguousarray(x, self.dtype), *self.params, logits)
        return logits

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(np.argmax(self.predict(x), axis=1) == labels))


def grads_like(params: Sequence[td.Tensor]) -> list[td.Tensor]:
    """A placeholder `<name>_dp` shaped like each parameter: the gradient the update reads."""
    return [td.placeholder(p.shape, p.dtype, name=f"{p.name}_dp") for p in params]


def train(trainer: Trainer, data: Data, *, epochs: int, lr: float, seed: int = 0,
          log: Callable[[str], None] | None = print) -> list[dict]:
    """Plain minibatch SGD: each epoch visits the training set in a new random order, in
    full batches (the remainder waits for the next epoch's order). Returns one record per
    epoch: mean loss, held-out accuracy, median seconds per step."""
    rng = np.random.default_rng(seed)
    batch = trainer.batch
    target = one_hot(data.y_train, trainer.dtype)
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(data.y_train))
        losses, times = [], []
        for start in range(0, len(order) - batch + 1, batch):
            rows = order[start:start + batch]
            xb, tb = data.x_train[rows], target[rows]     # the gather is NumPy's, untimed
            t0 = time.perf_counter()
            losses.append(trainer.step(xb, tb, lr))
            times.append(time.perf_counter() - t0)
        record = {"epoch": epoch, "loss": float(np.mean(losses)),
                  "test_accuracy": trainer.accuracy(data.x_test, data.y_test),
                  "step_ms": 1e3 * float(np.median(times))}
        history.append(record)
        if log:
            log(f"epoch {epoch:3d}  loss {record['loss']:.4f}  held-out accuracy "
                f"{100 * record['test_accuracy']:.2f}%  {record['step_ms']:.3f} ms/step")
    return history
