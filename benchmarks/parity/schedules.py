"""Every parity pair, in the order of the table: each one schedule written twice, in
Halide's Python API and in tdsl, side by side in the family's module.

| module | pairs |
|---|---|
| `dense.py` | GEMM register tiles (dividing, ragged, packed, TVM's fused idiom), conv2d NCHW |
| `rows.py` | softmax and layernorm (rfactor into lanes at the row), row and column reductions |
| `images.py` | blur (compute_at tiles, strips), transpose (two-level tiles), elementwise |

A `Pair` (common.py) carries the workload (sizes, inputs, the NumPy reference) and the
two builders `tdsl(target, sizes)` and `halide(target, sizes)`.
"""

from __future__ import annotations

from .common import AVX2, AVX512, TARGETS, Pair, Target
from .dense import CONV_PAIRS, GEMM_PAIRS
from .images import IMAGE_PAIRS
from .rows import ROW_PAIRS

PAIRS: list[Pair] = GEMM_PAIRS + CONV_PAIRS + ROW_PAIRS + IMAGE_PAIRS
BY_NAME = {p.name: p for p in PAIRS}
assert len(BY_NAME) == len(PAIRS), "pair names must be unique"

__all__ = ["AVX2", "AVX512", "BY_NAME", "PAIRS", "TARGETS", "Pair", "Target"]
