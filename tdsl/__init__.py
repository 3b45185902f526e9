"""tdsl: a tensor compiler embedded in Python.

Write what to compute with `td.compute`, how with `td.create_schedule`, and run
it with `td.build`. Nothing is defined here; this module re-exports the public API.
"""

from .errors import (CompileError, ScheduleError, TdslError, TdslIndexError, TdslMemoryError,
                     TdslTypeError, TdslValueError, UnsupportedError)
from .lang import (Tensor, all_of as all, any_of as any, comm_reducer, compute, const,  # noqa: A004
                   placeholder, reduce_axis, reference, select, update, var)
from .lang import max_reducer as max, min_reducer as min, sum_reducer as sum  # noqa: A004
from .lang.intrinsics import (abs, cast, ceil, cos, exp, floor, log, maximum, minimum, power,  # noqa: A004
                              sigmoid, sin, sqrt, tanh)

__version__ = "0.1.0"
from .target import Target, target
from .build import build            # imports the compiler when first called
from .runtime import Module, Timing, load

# The compiler (isl, the schedule layer, the backends) loads on first use, so that a
# process that only runs exported kernels (`td.load`) never imports islpy or cgen; td.viz
# imports matplotlib. Attribute -> (module, name in it or None for the module itself).
_LAZY = {"auto_schedule": (".auto", "auto_schedule"),
         "tune": (".tuning", "tune"), "apply_best": (".tuning", "apply_best"),
         "Schedule": (".schedule", "Schedule"), "Stage": (".schedule", "Stage"),
         "create_schedule": (".schedule", "create_schedule"), "lower": (".schedule", "lower"),
         "poly": (".poly", None), "examples": (".examples", None),
         "testing": (".testing", None), "viz": (".viz", None), "nn": (".nn", None),
         "machine": (".machine", None),
         "grad": (".autodiff", "grad"), "compile": (".graph", "compile"), "graph": (".graph", None),
         "Network": (".graph", "Network"), "counts": (".analysis", "counts"),
         "cuda_status": (".backends.cuda", "status")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name, __name__)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tdsl' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
