"""Automatic scheduling: `td.auto_schedule` (rules, no search).

    analysis.py   what each stage is (injective, reduction with reuse, row reduction...)
    rules.py      the rules, applied with public primitives, each checked by isl
    tiles.py      the tiling rules: register, dot-product, column and transpose tiles,
                  epilogues computed in the tile
"""

from .rules import auto_schedule

__all__ = ["auto_schedule"]
