"""The cells of the tdsl tutorials, one module per notebook (`CELLS`, a list).

`md(...)` is a markdown cell, `code(...)` a code cell; both are dedented, so the text
can be indented like the code around it. `NP_TIME` is the code cell every notebook
uses to time NumPy and print its timing table. tutorials/make_notebooks.py writes
the notebooks from these lists.
"""

from __future__ import annotations

import textwrap

import nbformat


def md(text: str):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str):
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n"))


# Every notebook times NumPy the way Module.time times a kernel: one warm-up call,
# then the median of a few.
NP_TIME = '''
def np_time(fn, repeat=5):
    """Median seconds per call of fn(), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(header, rows):
    """A plain-text table: one row per tuple, columns as wide as their widest cell."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if k else c.ljust(w) for k, (c, w) in
                        enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
'''
