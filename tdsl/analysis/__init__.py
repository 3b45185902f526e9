"""Analyses of a schedule that read the polyhedral layer's counts: `td.counts`
(`counts.py`: exact operation and access counts, footprints, the cache model and a
roofline). `tdsl.poly.counts` asks isl; this package only sums and models."""

from .counts import Counts, Machine, counts

__all__ = ["Counts", "Machine", "counts"]
