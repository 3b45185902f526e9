"""The register tiles the tutorials build fit the vector registers of both x86-64
levels they describe, AVX2 (16 ymm) and AVX-512 (32 zmm), on any machine: each
schedule is compiled for each target (not run) and the full-width vector moves to and
from the stack in gcc's assembly of the kernel are counted. A tile that fits moves each
accumulator to the stack at most once, when the finished tile is written to its local
buffer; a tile that spills moves accumulators in and out at every step of the
reduction, many times more.

The schedules are those of notebooks 2 (the matmul register tile, shaped by
td.examples.register_tile_shape) and 6 (the conv tile of 14 pixels x LANES channels).
The 8 x 32 matmul tile, the one the tutorials used on every CPU before they read the
shape from the target, is the control: it fits AVX-512 and spills on AVX2.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

import pytest

import tdsl as td
from tdsl.backends.c.build import cflags, compiler

TARGETS = ("c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4")


def stack_vector_moves(source: str, target) -> int:
    flags = [f for f in cflags(target) if f not in ("-shared", "-fPIC")]
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "k.c"), "w") as f:
            f.write(source)
        result = subprocess.run([compiler(), *flags, "-S", "-o", "k.s", "k.c"], cwd=d,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[:2000]
        assert "warning" not in result.stderr, result.stderr[:2000]
        with open(os.path.join(d, "k.s")) as f:
            asm = f.read()
    body = asm[asm.index("\nkernel:"):]
    body = body[:body.index(".cfi_endproc")]
    return sum(1 for line in body.splitlines()
               if re.search(r"%[yz]mm\d+", line) and re.search(r"\(%r[sb]p\)", line))


def _matmul(n, rows, cols):
    A = td.placeholder((n, n), name="A")
    B = td.placeholder((n, n), name="B")
    k = td.reduce_axis(n, name="k")
    C = td.compute((n, n), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)                         # notebook 2, section 7
    td.examples.register_tile(s, C, rows, cols, parallel=False)
    return s, [A, B, C]


def _conv(lanes, strip=14, cin=32, height=56, width=56, cout=64):
    x = td.placeholder((1, cin, height, width), name="x")          # notebook 6, section 4
    w = td.placeholder((cout, cin, 3, 3), name="w")
    bias = td.placeholder((cout,), name="bias")
    pad = td.compute((1, cin, height + 2, width + 2), lambda n, c, y, xx: td.select(
        td.all(y >= 1, y <= height, xx >= 1, xx <= width), x[n, c, y - 1, xx - 1], 0.0),
        name="pad")
    wt = td.compute((cout // lanes, cin, 3, 3, lanes),
                    lambda ko, c, ry, rx, ki: w[ko * lanes + ki, c, ry, rx], name="wt")
    rc, ry, rx = (td.reduce_axis(cin, name="rc"), td.reduce_axis(3, name="ry"),
                  td.reduce_axis(3, name="rx"))
    block = td.compute((1, cout // lanes, height, width, lanes),
                       lambda n, ko, y, xx, ki: td.sum(
                           pad[n, rc, y + ry, xx + rx] * wt[ko, rc, ry, rx, ki],
                           axis=[rc, ry, rx]), name="block")
    out = td.compute((1, cout, height, width), lambda n, k, y, xx: td.maximum(
        block[n, k // lanes, y, xx, k % lanes] + bias[k], 0.0), name="out")
    s = td.create_schedule(out)
    n, k, y, xx = out.op.axis
    ko, ki = s[out].split(k, factor=lanes)
    xo, xi = s[out].split(xx, factor=strip)
    s[out].reorder(n, ko, y, xo, ki, xi)
    s[block].compute_at(s[out], xo)
    bn, bko, by, bxx, bki = block.op.axis
    s[block].reorder(bn, bko, by, rc, ry, rx, bxx, bki)
    s[block].unroll(bxx)
    s[block].vectorize(bki)
    s[pad].vectorize(pad.op.axis[3])
    return s, [x, w, bias, out]


@pytest.mark.parametrize("spec", TARGETS, ids=["avx2", "avx512"])
def test_the_matmul_register_tile_fits_each_target(spec):
    t = td.target(spec)
    rows, cols = td.examples.register_tile_shape(t)
    assert cols == 2 * t.lanes("float32")
    s, args = _matmul(1024, rows, cols)
    accumulators = rows * cols // t.lanes("float32")
    assert stack_vector_moves(td.build(s, args, target=t).source, t) <= accumulators


@pytest.mark.parametrize("spec", TARGETS, ids=["avx2", "avx512"])
def test_the_old_8x32_tile_spills_on_avx2_only(spec):
    t = td.target(spec)
    s, args = _matmul(1024, 8, 32)
    moves = stack_vector_moves(td.build(s, args, target=t).source, t)
    accumulators = 8 * 32 // t.lanes("float32")
    assert (moves > accumulators) == (t.vector_registers == 16), moves


@pytest.mark.parametrize("spec", TARGETS, ids=["avx2", "avx512"])
def test_the_conv_register_tile_fits_each_target(spec):
    t = td.target(spec)
    s, args = _conv(t.lanes("float32"))
    assert stack_vector_moves(td.build(s, args, target=t).source, t) <= 14   # one per pixel
