"""Make tests/tuning/data/softmax_random.jsonl (run from the repository root, on a quiet
machine): a random search over the whole knob space of the softmax workload."""

import tdsl as td
from tests.tuning.test_tune import softmax

if __name__ == "__main__":
    x, out = softmax()
    td.tune(out, [x, out], trials=64, sizes={"n": 128, "m": 4096}, search="random", seed=11,
            log="tests/tuning/data/softmax_random.jsonl", progress=False)
