"""The one compiled part of the package: tdsl.runtime._fastcall, the per-call fast path of
a Module (NumPy C API). `optional=True`: without a C compiler the package still installs
and Modules use the pure-Python path (tdsl/runtime/plan.py), with the same checks."""

import numpy
from setuptools import Extension, setup

setup(ext_modules=[Extension("tdsl.runtime._fastcall", ["tdsl/runtime/_fastcall.c"],
                             include_dirs=[numpy.get_include()],
                             extra_compile_args=["-O2", "-std=gnu11"], optional=True)])
