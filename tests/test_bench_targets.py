"""benchmarks/run.py --target: target lists, per-target peer widths, refusals, and the
per-target sections of RESULTS.md and the JSON (nothing here times anything)."""

import json
import os

import pytest

import tdsl as td
from benchmarks import report, run, targets

AVX2, AVX512 = "c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4"


def test_target_list_and_shorthands():
    assert targets.parse_list("avx2,avx512") == [AVX2, AVX512]
    assert targets.parse_list("native, c -mcpu=x86-64-v3 ,avx2") == ["c", AVX2]
    assert targets.parse_list("c -mcpu=znver3") == ["c -mcpu=znver3"]


def test_peer_widths_and_tiles_follow_the_target():
    v3, v4 = targets.peer_shape(td.target(AVX2)), targets.peer_shape(td.target(AVX512))
    assert (v3.lanes, v3.gemm_rows, v3.gemm_cols) == (8, 4, 24)
    assert (v4.lanes, v4.gemm_rows, v4.gemm_cols) == (16, 8, 48)
    for sh, regs in ((v3, 16), (v4, 32)):       # accumulators + B vectors + a broadcast fit
        assert sh.gemm_rows * sh.gemm_vectors + sh.gemm_vectors + 1 <= regs
        assert sh.conv_channels == sh.lanes
    assert targets.peer_shape(td.target(AVX2), "tvm").conv_pixels == 8
    h3 = targets.peer_shape(td.target(AVX2), "halide")
    assert (h3.gemm_rows, h3.gemm_cols, h3.gemm_row_block) == (6, 16, 24)
    assert h3.gemm_rows * h3.gemm_vectors + h3.gemm_vectors + 1 <= 16
    assert targets.halide_features(td.target(AVX2)) == ["sse41", "avx", "avx2", "f16c", "fma"]
    assert {"avx512", "avx512_skylake"} <= set(targets.halide_features(td.target(AVX512)))
    assert targets.halide_features(td.target("c")) is None          # Halide's host target


def test_schedule_descriptions_name_the_widths():
    from benchmarks.peers import halide_impl, numpy_impl, tvm_impl
    assert "into 8 vector lanes" in tvm_impl.schedules(td.target(AVX2))["W7"]
    assert "into 16 vector lanes" in tvm_impl.schedules(td.target(AVX512))["W7"]
    assert "16x6" in halide_impl.schedules(td.target(AVX2))["W1"]
    assert "48x8" in halide_impl.schedules(td.target(AVX512))["W1"]
    assert set(numpy_impl.schedules()) == set(tvm_impl.schedules(td.target(AVX2)))


@pytest.fixture
def saved_environ():
    """run.main sets TDSL_TARGET, thread counts and a fresh TDSL_CACHE_DIR: put them back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_target_this_cpu_cannot_run_is_refused(capsys, saved_environ):
    t = td.target(AVX512)
    if t.runs_here():
        pytest.skip("this CPU runs AVX-512")
    why = targets.refusal(t)
    assert "cannot run on this CPU" in why and "avx512f" in why
    assert run.main(["--target", "avx512", "--quick"]) == 2
    assert run.main(["--target", "avx2,avx512", "--quick"]) == 2      # nothing runs
    assert "refused" in capsys.readouterr().err
    assert run.main(["--target", "c -mcpu=no-such-cpu"]) == 2


def test_sections_per_target_are_merged():
    a = report.markdown_section(AVX2, "avx2 desc", {}, {}, {}, {}, {})
    b = report.markdown_section(AVX512, "avx512 desc", {}, {}, {}, {}, {})
    md = report.merge_markdown(report.merge_markdown("", AVX2, a), AVX512, b)
    a2 = a.replace("avx2 desc", "avx2 again")
    md2 = report.merge_markdown(md, AVX2, a2)
    secs = report.split_sections(md2)
    assert list(secs) == [AVX2, AVX512]
    assert "avx2 again" in secs[AVX2] and "avx2 desc" not in md2 and "avx512 desc" in md2
    other = "<!-- overhead.py: begin -->\n## Call overhead\n<!-- overhead.py: end -->\n"
    md3 = report.merge_markdown(md2 + "\n" + other, AVX512, b.replace("avx512 desc", "new"))
    assert other in md3 and "new" in md3 and "avx2 again" in md3
    assert md3.index("new") < md3.index("Call overhead")      # targets stay together
    md4 = report.merge_markdown(md2 + "\n" + other, "c", a.replace(AVX2, "c"))
    assert list(report.split_sections(md4)) == [AVX2, AVX512, "c"]
    assert md4.index("<!-- end target: c -->") < md4.index("Call overhead")
    js = report.merge_json(json.dumps(report.merge_json("", AVX512, {"x": 1})), AVX2, {"y": 2})
    assert js == {"targets": {AVX512: {"x": 1}, AVX2: {"y": 2}}}
