"""The exceptions tdsl raises; every one derives from `TdslError`.

Argument errors also derive from the matching builtin (`TypeError`,
`ValueError`, `IndexError`, `MemoryError`) so code written against NumPy
habits catches them.
"""

from __future__ import annotations


class TdslError(Exception):
    """Base class of every error tdsl raises on purpose."""


class ScheduleError(TdslError):
    """A schedule primitive was refused: illegal, or applied to the wrong axis/stage."""


class CompileError(TdslError):
    """The C or CUDA compiler rejected generated source.

    `source` is the generated program, `output` what the compiler printed and
    `command` the command line that ran.
    """

    def __init__(self, message: str, *, source: str = "", output: str = "", command: str = ""):
        super().__init__(message)
        self.source = source
        self.output = output
        self.command = command


class TdslTypeError(TdslError, TypeError):
    """A value of the wrong type: an expression, a dtype, or an argument."""


class TdslValueError(TdslError, ValueError):
    """A value of the right type but wrong content: a shape, a size, a factor."""


class TdslIndexError(TdslError, IndexError):
    """A kernel read or wrote outside a tensor."""


class TdslMemoryError(TdslError, MemoryError):
    """The generated code could not allocate an intermediate buffer."""


class UnsupportedError(TdslError, NotImplementedError):
    """A model uses an operator, attribute or form that tdsl does not implement (an ONNX
    operator the importer has no converter for, say); the message names it and where."""
