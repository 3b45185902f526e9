"""benchmarks/networks.py's report: the table from measured rows, and the RESULTS.md section
replaced in place between its markers (the rest of the file kept)."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks import networks

INFO = {"date": "2026-12-02 03:00 UTC", "cpu": "AMD EPYC", "march": "znver3", "cores": 2,
        "onnxruntime": "1.32.0", "jax": "0.10.2", "tvm": "0.27", "load": "1.0 1.0 1.0",
        "omp_wait_policy": "unset"}
SKIP = "td.compile is not available in this tdsl"


def _records(ort_ms: float):
    rows = {"tdsl": {"status": "skipped", "reason": SKIP, "compile_s": None},
            "onnxruntime": {"status": "ok", "reason": "", "compile_s": 0.1,
                            "median_ms": ort_ms, "p10_ms": ort_ms * 0.9},
            "jax": {"status": "wrong", "reason": "max error 1e-2", "compile_s": 1.0},
            "tvm": {"status": "ok", "reason": "", "compile_s": 2.0, "median_ms": 9.0,
                    "p10_ms": 8.0}}
    return [{"model": "mlp", "title": "MLP", "rows": rows}]


def test_section_replaced_in_place(tmp_path):
    args = SimpleNamespace(quick=True)
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\nbefore\n")
    networks.write_section(path, networks.markdown(_records(1.5), INFO, args, 10.0))
    path.write_text(path.read_text() + "\nafter\n")
    networks.write_section(path, networks.markdown(_records(2.5), INFO, args, 10.0))
    text = path.read_text()
    begin, end = networks.markers(None)
    assert text.count(begin) == 1 and text.count(end) == 1
    assert text.startswith("# Results\n\nbefore\n") and text.rstrip().endswith("after")
    assert "| MLP | skipped | 2.5 (2.25) | wrong | 9 (8) | - |" in text
    assert "1.5 (" not in text
    assert "**Quick run**" in text and "gcc -march=native = znver3" in text
    assert f"- tdsl, skipped on every model: {SKIP}" in text
    assert "- JAX jit (XLA), wrong on every model: max error 1e-2" in text
    assert "- MLP: no tdsl time (skipped)" in text
    # A run with OMP_WAIT_POLICY set has its own section beside the default one.
    passive = dict(INFO, omp_wait_policy="passive")
    networks.write_section(path, networks.markdown(_records(3.5), passive, args, 10.0))
    text = path.read_text()
    assert "## Networks (benchmarks/networks.py, OMP_WAIT_POLICY=passive)" in text
    assert "2.5 (2.25)" in text and "3.5 (3.15)" in text and text.count(begin) == 1


def test_targets_say_what_was_not_met():
    records = _records(1.5)
    records[0]["rows"]["tdsl"] = {"status": "ok", "reason": "", "compile_s": 40.0,
                                  "median_ms": 2.0, "p10_ms": 1.8, "cached_compile_s": 0.4}
    records[0]["model"] = "resnet18"
    assert networks.target_lines(records) == [
        "- MLP: tdsl 2 ms, not met: slower than ONNX Runtime 1.5 ms",
        "- ResNet-18 cold compile 40.0 s: not met (target 30 s)",
        "- ResNet-18 second compile (cache) 0.40 s: met (target 1 s)"]
