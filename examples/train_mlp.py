"""Train a multilayer perceptron on the digits with tdsl kernels end to end.

    python examples/train_mlp.py --epochs 30

64 pixels -> dense(128) -> relu -> dense(10) -> softmax cross-entropy. The forward pass,
the loss, the backward pass (td.grad) and the SGD update are tdsl kernels compiled once,
before the first step (examples/digits.py: `Trainer`); the loop only calls them. Prints
the loss, the held-out accuracy and the time per step after each epoch.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

import tdsl as td
from tdsl import nn

if __package__ in (None, ""):          # run as a file: python examples/train_mlp.py
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from examples import digits  # noqa: E402

HIDDEN = 128


def model(hidden: int = HIDDEN, dtype: str = "float32") -> digits.Model:
    """dense(64 -> hidden), relu, dense(hidden -> 10); weights in PyTorch's layout."""
    w1 = td.placeholder((hidden, 64), dtype, name="w1")
    b1 = td.placeholder((hidden,), dtype, name="b1")
    w2 = td.placeholder((digits.CLASSES, hidden), dtype, name="w2")
    b2 = td.placeholder((digits.CLASSES,), dtype, name="b2")

    def forward(x, params):
        w1, b1, w2, b2 = params
        h = nn.relu(nn.dense(x, w1, b1, name="fc1"), name="act1")
        return nn.dense(h, w2, b2, name="fc2")

    def init(rng: np.random.Generator) -> list[np.ndarray]:
        # He initialization for the relu layer, Glorot-like for the output layer.
        return [rng.normal(0, np.sqrt(2 / 64), (hidden, 64)), np.zeros(hidden),
                rng.normal(0, np.sqrt(1 / hidden), (digits.CLASSES, hidden)),
                np.zeros(digits.CLASSES)]

    return digits.Model("mlp", (64,), (w1, b1, w2, b2), forward, init)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--hidden", type=int, default=HIDDEN)
    parser.add_argument("--schedule", choices=digits.SCHEDULES, default="auto",
                        help="td.auto_schedule, the rules of examples/schedules.py, or loops "
                        "in axis order (default: auto)")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)
    data = digits.load((64,), seed=opts.seed)
    trainer = digits.Trainer(model(opts.hidden), opts.batch, how=opts.schedule, seed=opts.seed)
    print(f"compiled the step, update and predict kernels in {trainer.compile_s:.1f} s "
          f"({opts.schedule} schedules); {len(data.y_train)} training images, "
          f"{len(data.y_test)} held out")
    history = digits.train(trainer, data, epochs=opts.epochs, lr=opts.lr, seed=opts.seed)
    print(f"held-out accuracy after {opts.epochs} epochs: "
          f"{100 * history[-1]['test_accuracy']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
