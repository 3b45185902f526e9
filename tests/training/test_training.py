"""Training end to end with tdsl kernels (examples/): short runs of the digits MLP and
CNN whose loss must fall and whose held-out accuracy must pass what a few epochs reach,
and one step's gradients and update checked against NumPy derived by hand
(benchmarks/training_peers.py, the NumPy row of the training benchmark).

The kernels here use the default schedules (compiled in seconds; td.auto_schedule of
the same adjoint stages is checked against td.reference in tests/autodiff).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn")

from benchmarks import training_peers  # noqa: E402
from examples import digits, train_cnn, train_mlp  # noqa: E402


@pytest.fixture(scope="module")
def mlp():
    return digits.Trainer(train_mlp.model(), batch=64, how="default")


@pytest.fixture(scope="module")
def cnn():
    return digits.Trainer(train_cnn.model(), batch=64, how="default")


@pytest.fixture(scope="module")
def cnn_plain():
    """The benchmark's CNN kernels: examples/schedules.py's rules (register tiles of the
    convolutions and of the filter gradients, rfactor, cache_write), at a smaller batch."""
    return digits.Trainer(train_cnn.model(), batch=64, how="plain")


def _trains(trainer, image_shape, epochs, lr, reach):
    data = digits.load(image_shape)
    history = digits.train(trainer, data, epochs=epochs, lr=lr, log=None)
    losses = [h["loss"] for h in history]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses
    assert history[-1]["test_accuracy"] >= reach, history


def test_mlp_learns_the_digits(mlp):
    """Four epochs: ~93% held out (the full example reaches >= 95%)."""
    _trains(mlp, (64,), epochs=4, lr=0.2, reach=0.88)


def test_cnn_learns_the_digits(cnn):
    """Three epochs: ~88% held out (the full example reaches >= 97%)."""
    _trains(cnn, train_cnn.IMAGE, epochs=3, lr=0.1, reach=0.80)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "cnn_plain"])
def test_step_matches_numpy_by_hand(kind, request):
    """On one batch: the loss and every gradient of the tdsl step kernel equal the NumPy
    chain rule (in float64; the kernels run in float32), and the sgd kernel writes
    p - lr * dp."""
    trainer = request.getfixturevalue(kind)
    kind = kind.removesuffix("_plain")
    grads_fn = {"mlp": training_peers.mlp_grads, "cnn": training_peers.cnn_grads}[kind]
    rng = np.random.default_rng(5)
    shape = {"mlp": (64,), "cnn": train_cnn.IMAGE}[kind]
    x = rng.random((64, *shape), dtype=np.float32)
    t = digits.one_hot(rng.integers(0, 10, 64))
    # Fresh parameters (the training tests moved them); biases nonzero to check them too.
    trainer.params = [(p + rng.normal(0, 0.1, p.shape)).astype(np.float32)
                      for p in trainer.model.init(np.random.default_rng(1))]
    before = [p.copy() for p in trainer.params]
    loss = trainer.gradients(x, t)
    want_loss, want = grads_fn([p.astype(np.float64) for p in before], x.astype(np.float64),
                               t.astype(np.float64))
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for p, got, g in zip(trainer.model.params, trainer.grads, want):
        np.testing.assert_allclose(got, g, rtol=2e-4, atol=2e-6 * np.abs(g).max(),
                                   err_msg=f"d loss / d {p.name}")
    trainer.update(0.5)
    for p, new, old, g in zip(trainer.model.params, trainer.params, before, trainer.grads):
        np.testing.assert_allclose(new, old - np.float32(0.5) * g, rtol=1e-6, atol=1e-7,
                                   err_msg=f"update of {p.name}")
