"""Small programs the search tests tune with made-up runners (no gcc)."""

from __future__ import annotations

import tdsl as td


def blur():
    """An 18 x 34 blur of a 20 x 36 input: its space holds 104 schedules."""
    inp = td.placeholder((20, 36), name="inp")
    bx = td.compute((20, 34), lambda y, x: (inp[y, x] + inp[y, x + 1] + inp[y, x + 2]) / 3.0,
                    name="bx")
    by = td.compute((18, 34), lambda y, x: (bx[y, x] + bx[y + 1, x] + bx[y + 2, x]) / 3.0,
                    name="by")
    return inp, by
