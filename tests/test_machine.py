"""td.machine: the ceilings the tutorials chart against come from C probes for the
target's vector width (not from a tdsl kernel, which a better tdsl kernel could beat)."""

import pytest

import tdsl as td
from tdsl import machine


def test_the_fma_probe_uses_the_targets_vectors_and_every_thread():
    lib = machine._library("")
    assert lib.probe_lanes() == td.target().lanes("float32")
    assert lib.probe_chains() == (24 if td.target().vector_registers >= 32 else 12)
    assert lib.probe_threads() >= 1
    assert machine.fma_peak(repeat=1, max_iters=1 << 14) > 0.1


def test_measure_says_what_and_where():
    m = td.viz.measure_machine()
    assert set(m) == {"peak_gflops", "bandwidth_gbs", "lanes", "threads", "cpu"}
    assert m["peak_gflops"] > 0 and m["bandwidth_gbs"] > 0
    assert m["lanes"] == td.target().lanes("float32")
    assert "cores" in m["cpu"] and td.target().describe() in m["cpu"]


def test_small_bandwidth_probe():
    assert machine.bandwidth(n=1 << 16, repeat=1) > 0


def test_a_target_this_cpu_cannot_run_is_refused_with_the_reason():
    avx512 = td.target("c -mcpu=x86-64-v4")
    if avx512.runs_here():
        pytest.skip("this CPU runs AVX-512")
    with pytest.raises(td.TdslValueError, match="cannot measure"):
        machine.fma_peak(avx512)
