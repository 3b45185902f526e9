"""A compiled network exported as one library: td.load runs it in a process without isl
or a compiler, and a C program runs it through the generated header, without Python."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tdsl as td

from . import common


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("net")
    outputs, inputs, params, oracle = common.cnn()
    net = td.compile(outputs, inputs=inputs, params=params)
    header = net.export(folder / "cnn.so")
    assert header == folder / "cnn.h"
    x = np.random.default_rng(7).standard_normal((1, 3, 12, 12)).astype("float32")
    return folder, net, x, oracle(x)


def test_manifest_lists_kernels_constants_and_one_entry(exported):
    folder, net, _, _ = exported
    loaded = td.load(folder / "cnn.so")
    m = loaded.library.manifest
    assert m["kernels"] == [k.name for k in net.kernels]
    assert [c["name"] for c in m["constants"]] == list(net.constants)
    assert {c["name"]: c["shape"] for c in m["constants"]}["w_bn"] == [8, 3, 3, 3]
    assert [e["symbol"] for e in m["entries"]] == ["network_call"]
    assert [(a["name"], a["role"]) for a in m["entries"][0]["args"]] == [("x", "input"),
                                                                        ("dense", "output")]
    assert m["network"] == {"name": "network", "inputs": ["x"], "outputs": ["dense"]}


def test_load_roundtrip(exported):
    folder, net, x, want = exported
    loaded = td.load(folder / "cnn.so")
    np.testing.assert_allclose(loaded(x), want, rtol=2e-4, atol=2e-4)
    np.testing.assert_array_equal(loaded(x), net(x))
    out = np.empty((1, 5), "float32")
    loaded.run(x, out)
    np.testing.assert_array_equal(out, net(x))
    assert "NetworkModule network: (x) -> (dense)" in repr(loaded)


def _message(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - the message is what is compared
        return [type(e).__name__, str(e)]
    raise AssertionError("no error")


def test_wrong_inputs_raise_what_a_module_raises(exported):
    _, net, x, _ = exported
    shape = _message(net, np.ascontiguousarray(x[:, :, :11]))
    assert shape[0] == "TdslValueError" and "argument x" in shape[1] and \
        "(1, 3, 12, 12)" in shape[1]
    dtype = _message(net, x.astype("float64"))
    assert dtype[0] == "TdslTypeError" and "float32" in dtype[1]
    assert isinstance(_raised(net, np.ascontiguousarray(x[:, :, :11])), ValueError)
    assert isinstance(_raised(net, x.astype("float64")), TypeError)
    count = _message(net, x, x)
    assert count == ["TdslTypeError", "the network takes 1 input array(s) (x); got 2"]
    # the same words as a Module over the same arguments
    module = td.load(exported[0] / "cnn.so")
    assert _message(module.run, np.ascontiguousarray(x[:, :, :11]),
                    np.empty((1, 5), "float32")) == shape


def _raised(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001
        return e


CHILD = textwrap.dedent("""
    import sys, json
    class NoCompiler:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("islpy", "cgen"):
                raise ImportError("blocked for this test: " + name)
    sys.meta_path.insert(0, NoCompiler())
    import numpy as np
    import tdsl as td
    folder = sys.argv[1]
    net = td.load(folder + "/cnn.so")
    x = np.load(folder + "/x.npy")
    np.save(folder + "/child.npy", net(x))
    try:
        net(np.ascontiguousarray(x[:, :2]))
    except td.TdslValueError as e:
        print("refused:", e)
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] in ("islpy", "cgen") or m.startswith(("tdsl.schedule",
                      "tdsl.poly", "tdsl.backends", "tdsl.ir", "tdsl.graph", "tdsl.auto")))
    assert not heavy, heavy
    print("loaded and ran")
""")


def test_load_in_a_process_without_isl_or_compiler(exported, tmp_path):
    folder, _, x, want = exported
    np.save(folder / "x.npy", x)
    env = {"PATH": str(tmp_path), "TDSL_CC": "/nonexistent/cc",
           "TDSL_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded and ran" in result.stdout
    assert "refused: argument x should have shape (1, 3, 12, 12)" in result.stdout
    np.testing.assert_allclose(np.load(folder / "child.npy"), want, rtol=2e-4, atol=2e-4)


C_PROGRAM = textwrap.dedent(r"""
    #include <stdio.h>
    #include <string.h>
    #include "cnn.h"

    /* Reads x (1, 3, 12, 12) float32 from x.bin, runs the network, writes y.bin. */
    int main(void) {
      static float x[1 * 3 * 12 * 12], y[1 * 5];
      FILE* f = fopen("x.bin", "rb");
      if (!f || fread(x, sizeof x, 1, f) != 1) { printf("cannot read x.bin\n"); return 1; }
      fclose(f);
      void* data[2] = {x, y};
      const int64_t sx[4] = {1, 3, 12, 12}, sy[2] = {1, 5};
      const int64_t* shapes[2] = {sx, sy};
      char err[512];
      int rc = network_call(data, shapes, 1, err, sizeof err);
      if (rc != TDSL_OK) { printf("error %d: %s\n", rc, err); return 1; }
      f = fopen("y.bin", "wb");
      fwrite(y, sizeof y, 1, f);
      fclose(f);
      const int64_t bad[4] = {1, 3, 12, 11};
      const int64_t* wrong[2] = {bad, sy};
      rc = network_call(data, wrong, 1, err, sizeof err);
      printf("refused %d: %s\n", rc, err);
      if (!strstr(tdsl_manifest(), "\"symbol\":\"network_tdsl_w_c0\"")) {
        printf("no constants in the manifest\n");
        return 1;
      }
      printf("ok\n");
      return 0;
    }
""")


def test_c_program_runs_the_exported_network(exported, tmp_path):
    folder, _, x, want = exported
    (tmp_path / "main.c").write_text(C_PROGRAM)
    x.tofile(tmp_path / "x.bin")
    build = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "main.c", f"-I{folder}",
                            str(folder / "cnn.so"), f"-Wl,-rpath,{folder}", "-o", "main"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(tmp_path / "main")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused 3: argument x should have shape (1, 3, 12, 12) (declared (1, 3, 12, 12)); " \
        "got (1, 3, 12, 11)" in run.stdout
    y = np.fromfile(tmp_path / "y.bin", "float32").reshape(1, 5)
    np.testing.assert_allclose(y, want, rtol=2e-4, atol=2e-4)


def test_header_declares_the_entry(exported):
    text = (exported[0] / "cnn.h").read_text()
    assert "int network_call(void* const* data, const int64_t* const* shapes" in text
    assert "[0] x        float32  (1, 3, 12, 12) input" in text
    assert "[1] dense    float32  (1, 5) output" in text
    assert json.loads  # the manifest is JSON (read by td.load above)
