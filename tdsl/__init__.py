"""tdsl: a tensor compiler embedded in Python.

Write what to compute with `td.compute`, how with `td.create_schedule`, and run
it with `td.build`. Nothing is defined here; this module re-exports the public API.
"""

from .errors import (CompileError, ScheduleError, TdslError, TdslIndexError, TdslMemoryError,
                     TdslTypeError, TdslValueError)
from .lang import (Tensor, all_of as all, any_of as any, comm_reducer, compute, const,  # noqa: A004
                   placeholder, reduce_axis, reference, select, update, var)
from .lang import max_reducer as max, min_reducer as min, sum_reducer as sum  # noqa: A004
from .lang.intrinsics import (abs, cast, ceil, cos, exp, floor, log, maximum, minimum, power,  # noqa: A004
                              sigmoid, sin, sqrt, tanh)

__version__ = "0.1.0"
from .target import Target, target
from .build import build
from .module import Module, Timing
from .schedule import Schedule, Stage, create_schedule, lower
from . import poly as _poly  # noqa: F401  (td.poly: the polyhedral layer, for teaching)
from . import examples, testing  # noqa: E402


def __getattr__(name: str):
    # td.viz imports matplotlib, so it loads on first use rather than with tdsl
    if name == "viz":
        import importlib
        return importlib.import_module(".viz", __name__)
    raise AttributeError(f"module 'tdsl' has no attribute {name!r}")
