"""The runtime: `Module` (checked calls of a compiled kernel), the library format
(`Module.export`, `td.load`) and the threads kernels run on.

Imports no isl, no schedule layer and no compiler: a deployed kernel needs only this
package, `tdsl.lang` (the checks' messages), NumPy and the exported library.
"""

import os

# GNU OpenMP's threads spin at the end of a parallel region waiting for the next one
# (OMP_WAIT_POLICY unset: GOMP_SPINCOUNT 300,000). On a machine whose cores are shared with
# other programs, the spinning thread takes the time slice the working one needs, and
# every barrier waits for a thread that is not running: measured on a shared 2-core Zen 3,
# an MLP at batch 64 took 44 ms a call with spinning and 1.9 ms with sleeping threads,
# ResNet-18 94 ms against 54 ms, and a training step 164 ms against 19 ms. Sleeping costs
# a wake-up per parallel region (microseconds) where the cores are idle. libgomp reads the
# variable when the first kernel library loads it, so it is set here, unless the user
# chose a policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT; `OMP_WAIT_POLICY=active` restores
# spinning). Like any environment variable it is inherited by child processes.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"

from .module import ERROR_CODES, Module, Timing, load  # noqa: E402

__all__ = ["ERROR_CODES", "Module", "Timing", "load"]
