"""Automatic scheduling: `td.auto_schedule` (rules, no search).

    analysis.py   what each stage is (injective, reduction with reuse, row reduction...)
    rules.py      the rules, applied with public primitives, each checked by isl
"""

from .rules import auto_schedule

__all__ = ["auto_schedule"]
