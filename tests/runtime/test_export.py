"""`Module.export` and `td.load`: the round trip in a process without isl or a compiler,
the same checks and errors after loading, the C header with a C program calling the
library directly, and damaged files refused with a message saying what is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tdsl as td
from tdsl import TdslError

N, L, M, H = td.var("n"), td.var("l"), td.var("m"), td.var("H")


def _matmul():
    A = td.placeholder((N, L), name="A")
    B = td.placeholder((L, M), name="B")
    k = td.reduce_axis(L, name="k")
    C = td.compute((N, M), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = td.create_schedule(C)
    s[C].parallel(C.op.axis[0])
    return td.build(s, [A, B, C], name="matmul")


def _add():
    X = td.placeholder((N,), name="X")
    Y = td.placeholder((N,), name="Y")
    Z = td.compute((N,), lambda i: X[i] + Y[i], name="Z")
    return td.build(td.create_schedule(Z), [X, Y, Z], name="add")


def _padded():
    """A size bound through an expression: B has H + 2 rows."""
    B = td.placeholder((H + 2, 3), dtype="int32", name="B")
    C = td.compute((H, 3), lambda i, j: B[i, j] + B[i + 1, j] + B[i + 2, j], name="C")
    return td.build(td.create_schedule(C), [B, C], name="padded")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    mods = {"matmul": _matmul(), "add": _add(), "padded": _padded()}
    for name, mod in mods.items():
        header = mod.export(folder / f"{name}.so")
        assert header == folder / f"{name}.h"
    return folder, mods


def _bad_calls():
    """(name, arguments) of calls every matmul Module must refuse."""
    f = np.float32
    a, b, c = np.ones((3, 4), f), np.ones((4, 5), f), np.zeros((3, 5), f)
    ro = c.copy()
    ro.flags.writeable = False
    return [("count", (a, b)), ("dtype", (a, b.astype("float64"), c)),
            ("rank", (a, np.ones(4, f), c)), ("fortran", (a, np.asfortranarray(b), c)),
            ("shape", (a, b, np.zeros((3, 6), f))), ("binding", (a, np.ones((5, 5), f), c)),
            ("zero", (np.ones((0, 4), f), b, np.zeros((0, 5), f))), ("readonly", (a, b, ro)),
            ("alias", (np.ones((4, 4), f), np.ones((4, 4), f), None)),
            ("not-an-array", ([[1.0] * 4] * 3, b, c))]


def _error(mod, args):
    if args[-1] is None:                              # the output aliases the first input
        args = (args[0], args[1], args[0][:])
    try:
        mod(*args)
    except TdslError as e:
        return type(e).__name__, str(e)
    return None


def test_loaded_module_makes_the_same_checks(exported):
    folder, mods = exported
    loaded = td.load(folder / "matmul.so")
    for name, args in _bad_calls():
        want = _error(mods["matmul"], args)
        assert want is not None, name
        assert _error(loaded, args) == want, name
    a, b = np.random.rand(7, 9).astype("float32"), np.random.rand(9, 4).astype("float32")
    c = np.zeros((7, 4), "float32")
    loaded(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    assert [t.name for t in loaded.args] == ["A", "B", "C"]
    assert [t.name for t in loaded.outputs] == ["C"]
    assert "matmul" in repr(loaded)
    with pytest.raises(TdslError, match="loaded from a library"):
        _ = loaded.kernel


CHILD = textwrap.dedent("""
    import sys, json
    class NoCompiler:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("islpy", "cgen"):
                raise ImportError("blocked for this test: " + name)
    sys.meta_path.insert(0, NoCompiler())
    import numpy as np
    import tdsl as td
    folder, errors = sys.argv[1], json.loads(sys.argv[2])
    rng = np.random.default_rng(0)
    mm = td.load(folder + "/matmul.so")
    for n, l, m in ((1, 1, 1), (5, 3, 7), (33, 17, 9)):
        a, b = rng.random((n, l), "float32"), rng.random((l, m), "float32")
        c = np.zeros((n, m), "float32")
        mm(a, b, c)
        assert np.allclose(c, a @ b, rtol=1e-5), (n, l, m)
    try:
        mm(np.ones((3, 4), "float32"), np.ones((4, 5), "float32"), np.zeros((3, 6), "float32"))
    except td.TdslValueError as e:
        assert [type(e).__name__, str(e)] == errors["shape"], (str(e), errors["shape"])
    else:
        raise AssertionError("no error")
    add = td.load(folder + "/add.so")
    x, y, z = np.arange(5, dtype="float32"), np.ones(5, "float32"), np.zeros(5, "float32")
    add(x, y, z, num_threads=1)
    assert (z == x + y).all()
    padded = td.load(folder + "/padded.so")
    B = rng.integers(-9, 9, (8, 3)).astype("int32")
    C = np.zeros((6, 3), "int32")
    padded(B, C)
    assert (C == B[:-2] + B[1:-1] + B[2:]).all()
    try:
        padded(B, np.zeros((5, 3), "int32"))
    except td.TdslValueError as e:
        assert [type(e).__name__, str(e)] == errors["padded"], (str(e), errors["padded"])
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] in ("islpy", "cgen") or m.startswith(("tdsl.schedule",
                      "tdsl.poly", "tdsl.backends", "tdsl.ir")))
    assert not heavy, heavy
    print("loaded and checked")
""")


def test_load_in_a_process_without_isl_or_compiler(exported, tmp_path):
    folder, mods = exported
    errors = {"shape": _error(mods["matmul"], (np.ones((3, 4), "float32"),
                                               np.ones((4, 5), "float32"),
                                               np.zeros((3, 6), "float32"))),
              "padded": _error(mods["padded"], (np.zeros((8, 3), "int32"),
                                                np.zeros((5, 3), "int32")))}
    env = {"PATH": str(tmp_path), "TDSL_CC": "/nonexistent/cc",        # no compiler in reach
           "TDSL_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder), json.dumps(errors)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded and checked" in result.stdout
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


C_PROGRAM = textwrap.dedent(r"""
    #include <stdio.h>
    #include <string.h>
    #include "matmul.h"

    int main(void) {
      enum { n = 3, l = 4, m = 5 };
      float a[n * l], b[l * m], c[n * m + 8];
      for (int i = 0; i < n * l; ++i) a[i] = (float)(i % 7) - 3.0f;
      for (int i = 0; i < l * m; ++i) b[i] = (float)(i % 5) * 0.5f;
      for (int i = 0; i < n * m + 8; ++i) c[i] = -1.0f;
      void* data[3] = {a, b, c};
      const int64_t sa[2] = {n, l}, sb[2] = {l, m}, sc[2] = {n, m};
      const int64_t* shapes[3] = {sa, sb, sc};
      char err[512];
      int rc = matmul_call(data, shapes, 2, err, sizeof err);
      if (rc != TDSL_OK) { printf("unexpected error %d: %s\n", rc, err); return 1; }
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < m; ++j) {
          float want = 0.0f;
          for (int k = 0; k < l; ++k) want += a[i * l + k] * b[k * m + j];
          if (c[i * m + j] != want) { printf("wrong C[%d][%d]\n", i, j); return 1; }
        }
      /* C claims 4 rows where A has 3: refused before anything is written. */
      const int64_t big[2] = {n + 1, m};
      const int64_t* wrong[3] = {sa, sb, big};
      for (int i = 0; i < n * m + 8; ++i) c[i] = -1.0f;
      rc = matmul_call(data, wrong, 0, err, sizeof err);
      if (rc != TDSL_ERR_ARGUMENT) { printf("wrong shape accepted (%d)\n", rc); return 1; }
      for (int i = 0; i < n * m + 8; ++i)
        if (c[i] != -1.0f) { printf("wrote C despite the error\n"); return 1; }
      printf("refused: %s\n", err);
      /* An output overlapping an input. */
      void* alias[3] = {a, b, a};
      const int64_t* same[3] = {sa, sb, sa};
      const int64_t sq[2] = {l, l};
      same[1] = sq;
      rc = matmul_call(alias, same, 0, err, sizeof err);
      printf("alias: %d %s\n", rc, err);
      if (strstr(tdsl_manifest(), "\"matmul_call\"") == NULL) { printf("no manifest\n"); return 1; }
      printf("ok\n");
      return 0;
    }
""")


def test_c_program_calls_the_exported_kernel(exported, tmp_path):
    folder, _ = exported
    (tmp_path / "main.c").write_text(C_PROGRAM)
    build = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "main.c", f"-I{folder}",
                            str(folder / "matmul.so"), f"-Wl,-rpath,{folder}", "-o", "main"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused: argument C should have shape (3, 5) (declared (n, m)); got (4, 5)" \
        in run.stdout
    assert "alias: 3 argument C (an output) shares memory with A" in run.stdout


def test_header_describes_the_arguments(exported):
    folder, _ = exported
    text = (folder / "matmul.h").read_text()
    assert "int matmul_call(void* const* data, const int64_t* const* shapes" in text
    assert "int matmul(const float* A, const float* B, float* C, int64_t n, int64_t l, " \
           "int64_t m);" in text
    assert "[2] C        float32  (n, m) output" in text


def test_export_of_a_loaded_module(exported, tmp_path):
    folder, _ = exported
    loaded = td.load(folder / "add.so")
    loaded.export(tmp_path / "again.so")
    again = td.load(tmp_path / "again.so")
    x, y, z = np.ones(3, "float32"), np.ones(3, "float32"), np.zeros(3, "float32")
    again(x, y, z)
    assert (z == 2).all()
    assert (tmp_path / "again.so").stat().st_size == (folder / "add.so").stat().st_size


def _damaged(folder, tmp_path, how: str):
    data = (folder / "add.so").read_bytes()
    path = tmp_path / f"{how}.so"
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped":
        mid = len(data) // 3
        path.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:])
    elif how == "not-elf":
        path.write_bytes(b"#!/bin/sh\necho hello\n" * 50)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "no-trailer":                    # the library as gcc wrote it
        path.write_bytes(data[:int.from_bytes(data[-56:-48], "little")])
    elif how == "trailer-length":
        path.write_bytes(data[:-56] + b"\0" * 16 + data[-56:])
    return path


@pytest.mark.parametrize("how, message", [
    ("truncated", "truncated"), ("flipped", "corrupt: its SHA-256 does not match"),
    ("not-elf", "not an ELF shared object"), ("empty", "not an ELF shared object"),
    ("no-trailer", "does not end with the tdsl trailer"),
    ("trailer-length", "the trailer records a library of"),
])
def test_damaged_library_is_refused(exported, tmp_path, how, message):
    folder, _ = exported
    path = _damaged(folder, tmp_path, how)
    with pytest.raises(TdslError, match=message):
        td.load(path)


def test_missing_file_and_foreign_library(tmp_path):
    with pytest.raises(TdslError, match="cannot read the library"):
        td.load(tmp_path / "nothing.so")
    import ctypes.util
    from tdsl.runtime import library
    libm = ctypes.util.find_library("m")
    found = [p for p in ("/lib/x86_64-linux-gnu/" + str(libm), "/usr/lib/" + str(libm))
             if libm and __import__("os").path.exists(p)]
    if not found:
        pytest.skip("no libm to wrap")
    library.export(found[0], tmp_path / "libm-wrapped.so")
    with pytest.raises(TdslError, match="not a tdsl library"):
        td.load(tmp_path / "libm-wrapped.so")


def test_export_again_to_the_same_path_loads_the_new_kernel(tmp_path):
    """The dynamic loader caches libraries by name; a re-export must not run the old one."""
    X = td.placeholder((N,), name="X")
    path = tmp_path / "k.so"
    x, y = np.arange(4, dtype="float32"), np.zeros(4, "float32")

    def scaled(scale):
        return td.compute((N,), lambda i: X[i] * scale, name="Y")
    for scale in (2.0, 3.0):
        Y = scaled(scale)
        td.build(td.create_schedule(Y), [X, Y]).export(path)
        td.load(path)(x, y)
        np.testing.assert_array_equal(y, x * scale)
