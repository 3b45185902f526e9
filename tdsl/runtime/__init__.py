"""The runtime: `Module` (checked calls of a compiled kernel), the library format
(`Module.export`, `td.load`) and the threads kernels run on.

Imports no isl, no schedule layer and no compiler: a deployed kernel needs only this
package, `tdsl.lang` (the checks' messages), NumPy and the exported library.
"""

from .module import ERROR_CODES, Module, Timing, load

__all__ = ["ERROR_CODES", "Module", "Timing", "load"]
