"""tdsl's schedules for the benchmark workloads, one module per workload.

Each module defines the algorithm and its schedule for any size (the tests in
tests/test_benchmark_schedules.py build them small and check them against NumPy),
and `prepare(inputs)`, the harness's contract: `(run, result, compile_s)`.
"""
