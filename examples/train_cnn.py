"""Train a small convolutional network on the digits with tdsl kernels end to end.

    python examples/train_cnn.py --epochs 20

(1, 8, 8) image -> conv 3x3 (8 filters, padding 1) -> relu -> conv 3x3 (16 filters,
padding 1) -> relu -> max pool 2x2 -> flatten (256) -> dense(10) -> softmax cross-entropy.
As in train_mlp.py, the forward pass, the loss, td.grad's backward pass and the SGD
update are tdsl kernels compiled once (examples/digits.py: `Trainer`).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

import tdsl as td
from tdsl import nn

if __package__ in (None, ""):          # run as a file: python examples/train_cnn.py
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from examples import digits  # noqa: E402

IMAGE = (1, 8, 8)


def model(filters: tuple[int, int] = (8, 16), dtype: str = "float32") -> digits.Model:
    """Two 3x3 convolutions with padding 1 (sizes kept at 8 x 8), a 2x2 max pool, a dense
    layer; weights in PyTorch's layout (conv (F, C, 3, 3), dense (out, in))."""
    f1, f2 = filters
    features = f2 * 4 * 4
    w1 = td.placeholder((f1, 1, 3, 3), dtype, name="w1")
    b1 = td.placeholder((f1,), dtype, name="b1")
    w2 = td.placeholder((f2, f1, 3, 3), dtype, name="w2")
    b2 = td.placeholder((f2,), dtype, name="b2")
    w3 = td.placeholder((digits.CLASSES, features), dtype, name="w3")
    b3 = td.placeholder((digits.CLASSES,), dtype, name="b3")

    def forward(x, params):
        w1, b1, w2, b2, w3, b3 = params
        h = nn.relu(nn.conv2d(x, w1, b1, padding=1, name="conv1"), name="act1")
        h = nn.relu(nn.conv2d(h, w2, b2, padding=1, name="conv2"), name="act2")
        h = nn.flatten(nn.max_pool2d(h, 2, name="pool"), name="flat")
        return nn.dense(h, w3, b3, name="fc")

    def init(rng: np.random.Generator) -> list[np.ndarray]:
        # He initialization: fan-in 9 and 9 * f1 for the convolutions, Glorot-like last.
        return [rng.normal(0, np.sqrt(2 / 9), (f1, 1, 3, 3)), np.zeros(f1),
                rng.normal(0, np.sqrt(2 / (9 * f1)), (f2, f1, 3, 3)), np.zeros(f2),
                rng.normal(0, np.sqrt(1 / features), (digits.CLASSES, features)),
                np.zeros(digits.CLASSES)]

    return digits.Model("cnn", IMAGE, (w1, b1, w2, b2, w3, b3), forward, init)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--schedule", choices=digits.SCHEDULES, default="plain",
                        help="td.auto_schedule, the rules of examples/schedules.py, or loops "
                        "in axis order (default: plain)")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)
    data = digits.load(IMAGE, seed=opts.seed)
    trainer = digits.Trainer(model(), opts.batch, how=opts.schedule, seed=opts.seed)
    print(f"compiled the step, update and predict kernels in {trainer.compile_s:.1f} s "
          f"({opts.schedule} schedules); {len(data.y_train)} training images, "
          f"{len(data.y_test)} held out")
    history = digits.train(trainer, data, epochs=opts.epochs, lr=opts.lr, seed=opts.seed)
    print(f"held-out accuracy after {opts.epochs} epochs: "
          f"{100 * history[-1]['test_accuracy']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
