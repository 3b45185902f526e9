"""The td.grad tests build with -fno-tree-loop-if-convert added to the C flags.

gcc 12.2 (Debian 12.2.0-14) at -O3 -mavx2 miscompiles a select in a loop nest whose
innermost loop has a small odd constant trip count once it is unrolled completely and the
loop around it is if-converted and vectorized: in plain C, outside tdsl,

    for (i = 0; i < 3; ++i) for (j = 0; j < 4; ++j) for (c = 0; c < 5; ++c)
      g[20 * i + 5 * j + c] = (j == a[5 * i + c]) ? h[5 * i + c] : 0.0;

writes 4 wrong elements (right at -O2, or with -fno-tree-loop-if-convert). Adjoints are
full of such selects (bounds guards of gathers, the first extremum of a max), so at
constant sizes the default schedule hits it (a keepdims max over (3, 4, 5), a 5-row MLP).
The flag belongs in the C backend's defaults (tdsl/backends/c/build.py, not ours to edit);
until it is there, these tests add it, so that they test td.grad rather than gcc.
"""

import os

import pytest

from tdsl.backends.c.build import DEFAULT_CFLAGS

WORKAROUND = "-fno-tree-loop-if-convert"


@pytest.fixture(autouse=True)
def _gcc12_if_conversion_workaround():
    old = os.environ.get("TDSL_CFLAGS")
    flags = old if old is not None else DEFAULT_CFLAGS
    if WORKAROUND not in flags.split():
        os.environ["TDSL_CFLAGS"] = f"{flags} {WORKAROUND}"
    yield
    if old is None:
        os.environ.pop("TDSL_CFLAGS", None)
    else:
        os.environ["TDSL_CFLAGS"] = old
