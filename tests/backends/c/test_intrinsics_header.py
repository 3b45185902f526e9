"""The x86 intrinsics header that kernels with native min/max or streamed stores include is
precompiled once per compiler and flags (build.intrinsics_header) and force-included
ahead of the source: the kernels built with it equal NumPy, the source itself is
unchanged (it still includes the header it needs), a second kernel reuses the
precompiled header, and a precompiled header gcc cannot use (here: made for other
flags, or truncated) costs time, never a build or a result."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import tdsl as td

build = importlib.import_module("tdsl.backends.c.build")

TARGETS = {"avx2": "c -mcpu=x86-64-v3", "avx512": "c -mcpu=x86-64-v4"}


def _relu_of_centered(width: int):
    """z = max(x - max(x over the row), 0): a max reduction and a max, native min/max."""
    n = td.var("n")
    x = td.placeholder((n, width), name="x")
    k = td.reduce_axis(width, name="k")
    y = td.compute((n,), lambda i: td.max(x[i, k], axis=k), name="y")
    z = td.compute((n, width), lambda i, j: td.maximum(x[i, j] - y[i], 0.0), name="z")
    s = td.create_schedule(z)
    _, ji = s[z].split(z.op.axis[1], 16)
    s[z].vectorize(ji)
    return s, [x, z]


def _check(mod, width: int):
    a = np.random.default_rng(width).standard_normal((37, width)).astype("float32")
    out = np.empty_like(a)
    mod(a, out)
    np.testing.assert_array_equal(out, np.maximum(a - a.max(1, keepdims=True), 0))


@pytest.mark.parametrize("target", list(TARGETS))
def test_kernels_use_the_precompiled_header(target, private_cache, monkeypatch):
    if "gcc" not in build._compiler_identity(build.compiler()).lower():
        pytest.skip("the C compiler is not gcc")
    flags = build.cflags(TARGETS[target])
    header = build.intrinsics_header(build.compiler(), flags)
    assert header is not None and header.with_suffix(".h.gch").stat().st_size > 0
    commands, run = [], build.subprocess.run

    def recording(cmd, *args, **kwargs):
        if "kernel.c" in cmd:
            commands.append(list(cmd))
        return run(cmd, *args, **kwargs)
    monkeypatch.setattr(build.subprocess, "run", recording)
    for width in (64, 48):
        mod = td.build(*_relu_of_centered(width), target=TARGETS[target])
        assert build.INTRINSICS_INCLUDE in mod.source       # the source stays whole
        # gcc is asked to read the precompiled header first
        assert commands[-1][commands[-1].index("-include") + 1] == str(header)
        if td.target(TARGETS[target]).runs_here():
            _check(mod, width)
    # one precompiled header for both kernels
    assert build.intrinsics_header(build.compiler(), flags) == header


def test_an_unusable_precompiled_header_is_read_as_text(private_cache):
    """gcc reads the text header when the .gch does not match (another target's, here)
    or is damaged: the build succeeds and its result is right."""
    if "gcc" not in build._compiler_identity(build.compiler()).lower():
        pytest.skip("the C compiler is not gcc")
    v3, v4 = (build.cflags(TARGETS[t]) for t in ("avx2", "avx512"))
    made_for_v4 = build.intrinsics_header(build.compiler(), v4).with_suffix(".h.gch")
    mine = build.intrinsics_header(build.compiler(), v3).with_suffix(".h.gch")
    mine.chmod(0o644)
    mine.write_bytes(made_for_v4.read_bytes())
    mod = td.build(*_relu_of_centered(80), target=TARGETS["avx2"])
    _check(mod, 80)
    mine.write_bytes(b"not a precompiled header")
    mod = td.build(*_relu_of_centered(96), target=TARGETS["avx2"])
    _check(mod, 96)
