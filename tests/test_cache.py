"""The on-disk kernel cache and the gcc toolchain: hits, corrupt and half-written
entries, the key's inputs (TDSL_CFLAGS), and compiler failures as CompileError.

Each test gets an empty cache directory; gcc runs are counted by wrapping the
`subprocess.run` that `tdsl.backends.c.build` calls.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess

import numpy as np
import pytest

import tdsl as td

# The module, not the `build` function that tdsl.backends.c re-exports under that name.
cbuild = importlib.import_module("tdsl.backends.c.build")

N = td.var("n")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TDSL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TDSL_CC", raising=False)
    monkeypatch.delenv("TDSL_CFLAGS", raising=False)
    return tmp_path


RUNTIME_RUNS: list = []          # the runtime object's compiles, counted by gcc_runs


@pytest.fixture
def gcc_runs(monkeypatch):
    """The list of library builds run (not `cc --version`, nor the runtime object's compile:
    `runtime_runs`)."""
    runs = []
    real = subprocess.run

    def counting(cmd, *args, **kwargs):
        if "kernel.c" in cmd:
            runs.append(list(cmd))
        elif "runtime.c" in cmd:
            RUNTIME_RUNS.append(list(cmd))
        return real(cmd, *args, **kwargs)

    RUNTIME_RUNS.clear()

    monkeypatch.setattr(cbuild.subprocess, "run", counting)
    return runs


def _kernel(scale: float = 3.0):
    A = td.placeholder((N,), name="A")
    C = td.compute((N,), lambda i: A[i] * scale + 1.0, name="C")
    return td.create_schedule(C), [A, C]


def _check(mod, scale: float = 3.0):
    a = np.arange(7, dtype="float32")
    c = np.zeros(7, "float32")
    mod(a, c)
    np.testing.assert_allclose(c, a * np.float32(scale) + 1)


def _populate(s, args):
    """Compile into the cache without loading the library into this process (a loaded
    library's file must not be damaged under it: that would be our bug, not tdsl's)."""
    from tdsl.backends.c import library_text
    return cbuild.compile_shared(library_text(td.lower(s, args)))


def _replace(path, data: bytes):
    """Damage a file the way another process would: write a new file over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _entries(cache_dir):
    root = cache_dir / "c"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() \
        else []


def test_rebuild_hits_the_cache(cache_dir, gcc_runs):
    s, args = _kernel()
    first = td.build(s, args)
    assert len(gcc_runs) == 1
    (entry,) = _entries(cache_dir)
    stamp = (entry / "kernel.so").stat().st_mtime_ns
    again = td.build(*_kernel())                 # a new, identical algorithm and schedule
    assert len(gcc_runs) == 1, "the second build ran the compiler"
    assert again.source == first.source
    assert again.library_path == first.library_path
    assert (entry / "kernel.so").stat().st_mtime_ns == stamp
    _check(again)


def test_the_runtime_is_compiled_once_and_linked_into_every_library(cache_dir, gcc_runs):
    for scale in (3.0, 4.0):
        s, args = _kernel(scale)
        _check(td.build(s, args), scale)
    assert len(gcc_runs) == 2 and len(RUNTIME_RUNS) == 1
    assert "-c" in RUNTIME_RUNS[0] and "-shared" not in RUNTIME_RUNS[0]
    runtime = [part for part in gcc_runs[0] if part.endswith("runtime.o")]
    assert len(runtime) == 1 and all(runtime[0] in run for run in gcc_runs)
    # another target's flags get their own runtime object
    s, args = _kernel(5.0)
    _check(td.build(s, args, target="c -mcpu=x86-64"), 5.0)
    assert len(RUNTIME_RUNS) == 2 and "-march=x86-64" in RUNTIME_RUNS[1]


def test_different_kernel_is_a_different_entry(cache_dir, gcc_runs):
    _check(td.build(*_kernel(3.0)), 3.0)
    _check(td.build(*_kernel(5.0)), 5.0)
    assert len(gcc_runs) == 2
    assert len(_entries(cache_dir)) == 2


def test_entry_is_complete(cache_dir, gcc_runs):
    td.build(*_kernel())
    (entry,) = _entries(cache_dir)
    manifest = json.loads((entry / "manifest.json").read_text())
    assert set(manifest) >= {"kernel.so"}
    assert not [p for p in (cache_dir / "c").iterdir() if p.name.startswith(".")], \
        "a temporary build directory was left behind"


@pytest.mark.parametrize("damage", ["truncate", "overwrite", "delete", "manifest-garbage",
                                    "manifest-missing"])
def test_corrupt_entry_is_detected_and_rebuilt(cache_dir, gcc_runs, damage):
    _populate(*_kernel())
    (entry,) = _entries(cache_dir)
    so, manifest = entry / "kernel.so", entry / "manifest.json"
    good = so.read_bytes()
    if damage == "truncate":
        _replace(so, good[: len(good) // 2])
    elif damage == "overwrite":
        _replace(so, b"\x7fELF" + b"\0" * (len(good) - 4))     # same size, wrong content
    elif damage == "delete":
        so.unlink()
    elif damage == "manifest-garbage":
        manifest.write_text("{not json")
    else:
        manifest.unlink()                   # an entry directory without its manifest
    mod = td.build(*_kernel())
    assert len(gcc_runs) == 2, "the damaged entry was used instead of rebuilt"
    (entry2,) = _entries(cache_dir)
    assert entry2 == entry
    assert json.loads((entry / "manifest.json").read_text())["kernel.so"]
    assert len((entry / "kernel.so").read_bytes()) > 0
    _check(mod)
    td.build(*_kernel())                    # and the rebuilt entry is a hit again
    assert len(gcc_runs) == 2


def test_half_written_temp_directory_is_ignored(cache_dir, gcc_runs):
    _populate(*_kernel())
    (entry,) = _entries(cache_dir)
    # A build killed mid-way leaves `.<key prefix>-XXXX` with partial files.
    stale = cache_dir / "c" / f".{entry.name[:16]}-killed"
    stale.mkdir()
    (stale / "kernel.c").write_text("int kernel(")
    (stale / "kernel.so").write_bytes(b"\x7fELF partial")
    mod = td.build(*_kernel())
    assert len(gcc_runs) == 1, "a stale temporary directory disturbed a cache hit"
    _check(mod)
    assert _entries(cache_dir) == [entry]


def test_half_written_temp_directory_before_first_build(cache_dir, gcc_runs):
    root = cache_dir / "c"
    root.mkdir()
    (root / ".0123456789abcdef-xyz").mkdir()
    (root / ".0123456789abcdef-xyz" / "kernel.so").write_bytes(b"garbage")
    _check(td.build(*_kernel()))
    assert len(gcc_runs) == 1


def test_cflags_change_the_key(cache_dir, gcc_runs, monkeypatch):
    td.build(*_kernel())
    monkeypatch.setenv("TDSL_CFLAGS", cbuild.DEFAULT_CFLAGS + " -DTDSL_TEST_FLAG=1")
    mod = td.build(*_kernel())
    assert len(gcc_runs) == 2, "a build with other flags was served from the cache"
    assert "-DTDSL_TEST_FLAG=1" in gcc_runs[-1]
    assert len(_entries(cache_dir)) == 2
    _check(mod)
    monkeypatch.setenv("TDSL_CFLAGS", cbuild.DEFAULT_CFLAGS)
    td.build(*_kernel())
    assert len(gcc_runs) == 2          # the default flags' entry is still there


def test_cflags_are_used(cache_dir, gcc_runs, monkeypatch):
    monkeypatch.setenv("TDSL_CFLAGS", "-O1 -fPIC -shared -fopenmp")
    _check(td.build(*_kernel()))
    assert gcc_runs[-1][1:5] == ["-O1", "-fPIC", "-shared", "-fopenmp"]


def test_missing_compiler_is_a_clear_compile_error(cache_dir, monkeypatch):
    monkeypatch.setenv("TDSL_CC", "/nonexistent/bin/tdsl-no-such-gcc")
    with pytest.raises(td.CompileError) as info:
        td.build(*_kernel())
    message = str(info.value)
    assert "/nonexistent/bin/tdsl-no-such-gcc" in message
    assert "TDSL_CC" in message
    monkeypatch.delenv("TDSL_CC")
    _check(td.build(*_kernel()))       # and with the compiler back, building works


def test_compile_failure_carries_source_and_output(cache_dir, monkeypatch):
    # Turning the kernel's name into an invalid identifier breaks the generated C.
    monkeypatch.setenv("TDSL_CFLAGS", "-O1 -fPIC -shared -Dkernel=1kernel")
    with pytest.raises(td.CompileError) as info:
        td.build(*_kernel())
    err = info.value
    assert isinstance(err, td.TdslError)
    assert "int kernel(" in err.source
    assert "error" in err.output
    assert "-Dkernel=1kernel" in err.command
    assert "failed to compile" in str(err) and "error" in str(err)
    leftovers = list((cache_dir / "c").iterdir()) if (cache_dir / "c").exists() else []
    assert leftovers == [], f"a failed build left {leftovers} in the cache"
    monkeypatch.delenv("TDSL_CFLAGS")
    _check(td.build(*_kernel()))


def test_invalid_flag_is_a_compile_error(cache_dir, monkeypatch):
    monkeypatch.setenv("TDSL_CFLAGS", "-fPIC -shared -fno-such-flag-for-tdsl")
    with pytest.raises(td.CompileError) as info:
        td.build(*_kernel())
    assert "-fno-such-flag-for-tdsl" in info.value.output
    assert info.value.source


def test_cache_dir_is_created(tmp_path, monkeypatch, gcc_runs):
    target = tmp_path / "deep" / "er" / "cache"
    monkeypatch.setenv("TDSL_CACHE_DIR", str(target))
    _check(td.build(*_kernel()))
    assert (target / "c").is_dir() and len(os.listdir(target / "c")) == 1
