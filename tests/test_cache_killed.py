"""A build killed mid-compile leaves its temporary directory; the next build removes it.

The compiler is a script that announces it started and then waits, so the test can
kill the building process (and its compiler) exactly mid-compile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from tdsl import cache

BUILD = textwrap.dedent("""
    import tdsl as td
    A = td.placeholder((16,), name="A")
    C = td.compute((16,), lambda i: A[i] * 5.0 + 2.0, name="C")
    td.build(td.create_schedule(C), [A, C])
""")


def _slow_compiler(tmp_path):
    ready = tmp_path / "compiling"
    script = tmp_path / "slowcc"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$1" in --version) exec gcc --version;; esac
        case "$*" in *kernel.c*) touch {ready}; sleep 120;; esac   # the library: slow
        exec gcc "$@"          # td.target's ISA probe, the runtime object: not slow
        """))
    script.chmod(0o755)
    return script, ready


def _temporaries(root):
    c = root / "c"
    return sorted(p for p in c.iterdir() if p.name.startswith(".")) if c.exists() else []


def test_killed_build_leaves_nothing_after_the_next_build(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    script, ready = _slow_compiler(tmp_path)
    env = dict(os.environ, TDSL_CACHE_DIR=str(root), TDSL_CC=str(script))
    proc = subprocess.Popen([sys.executable, "-c", BUILD], env=env, start_new_session=True)
    try:
        for _ in range(1200):
            if ready.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), "the build never reached the compiler"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left = _temporaries(root)
    assert len(left) == 1 and (left[0] / "kernel.c").exists()   # what a kill leaves

    monkeypatch.setenv("TDSL_CACHE_DIR", str(root))
    monkeypatch.delenv("TDSL_CC", raising=False)
    import tdsl as td
    A = td.placeholder((16,), name="A")
    C = td.compute((16,), lambda i: A[i] * 5.0 + 2.0, name="C")
    mod = td.build(td.create_schedule(C), [A, C])
    a, c = np.arange(16, dtype="float32"), np.zeros(16, "float32")
    mod(a, c)
    np.testing.assert_allclose(c, a * 5 + 2)
    assert _temporaries(root) == []
    assert [p for p in (root / "c").iterdir() if (p / "kernel.so").exists()]


def test_sweep_keeps_live_builds_and_removes_old_ones(tmp_path):
    live = tmp_path / f".abc-{os.getpid()}@{cache._host()}-x1"
    dead = tmp_path / f".abc-{2**22 + 12345}@{cache._host()}-x2"    # above pid_max
    other_host = tmp_path / f".abc-{2**22 + 12345}@ffffffff-x3"
    old_name = tmp_path / ".abc-x4"
    entry = tmp_path / "abc"
    for p in (live, dead, other_host, old_name, entry):
        p.mkdir()
    assert sorted(p.name for p in cache.sweep(tmp_path)) == [dead.name]
    later = time.time() + cache.STALE_AFTER_S + 1
    assert sorted(p.name for p in cache.sweep(tmp_path, now=later)) == sorted(
        [live.name, other_host.name, old_name.name])
    assert entry.exists()
