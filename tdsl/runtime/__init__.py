"""The runtime: `Module` (checked calls of a compiled kernel), the library format
(`Module.export`, `td.load`) and the threads kernels run on.

Imports no isl, no schedule layer and no compiler: a deployed kernel needs only this
package, `tdsl.lang` (the checks' messages), NumPy and the exported library.
"""

import os

# GNU OpenMP's threads spin at the end of a parallel region waiting for the next one
# (GOMP_SPINCOUNT 300,000 by default). Where the cores are shared with other programs the
# spinning thread takes the time slice the working one needs and every barrier waits for
# a thread that is not running: a shared 2-core Zen 3 ran an MLP at batch 64 in 44 ms a
# call with libgomp's default, 1.9 ms with sleeping threads (OMP_WAIT_POLICY=passive).
# Sleeping costs a futex wake-up per parallel region, which a network of small kernels
# pays on idle cores (that MLP: 1.70 ms passive, 0.95 ms spinning). A short spin keeps
# both: the same MLP, measured on that machine quiet and beside two busy processes,
# took 0.85 and 0.9-1.2 ms with GOMP_SPINCOUNT=5000, against 0.95 and 0.75-8.9 ms with
# the default and 1.7 and 1.4-2.2 ms passive. libgomp reads the variable when the first
# kernel library loads it, so it is set here, unless the user chose (OMP_WAIT_POLICY or
# GOMP_SPINCOUNT). Like any environment variable it is inherited by child processes.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "5000"

from .module import ERROR_CODES, Module, Timing, load  # noqa: E402

__all__ = ["ERROR_CODES", "Module", "Timing", "load"]
