"""A measurement function for the fault-injection test: the worker runs it by name.

Counts its calls in the file named by TDSL_TEST_FAULTS; the second call kills the worker
with SIGSEGV, the third hangs, the others measure for real."""

import os
import signal
import time

from tdsl.tuning.measure import measure as real_measure


def measure(library, full, small):
    path = os.environ["TDSL_TEST_FAULTS"]
    calls = int(open(path).read() or 0) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(calls + 1))
    if calls == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    if calls == 2:
        time.sleep(3600)
    return real_measure(library, full, small)
