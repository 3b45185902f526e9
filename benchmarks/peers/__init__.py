"""Peer implementations of W1-W8: numpy (the 1.00x baseline), TVM and Halide.

Each module exposes `prepare(workload_id, inputs) -> (run, result, compile_s)`, where
`run()` computes into outputs allocated once, `result()` returns the output as a numpy
array, and `compile_s` is the time spent compiling (0 for numpy). A peer that cannot be
imported raises `PeerUnavailable` with the reason.
"""


class PeerUnavailable(RuntimeError):
    """The peer's library is missing or broken here; the message says why."""
