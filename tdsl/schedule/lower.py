"""The lowering pipeline: a schedule and its arguments in, one loop-nest kernel out.

    program = build_program(...)        stages -> statements in a loop tree (inlining done)
    model   = poly.Model(program)       isl domains, accesses, footprints, time
    check(...)                          the whole schedule proven legal once more
    ast     = poly.generate_ast(model)  isl's AST generator, full tiles isolated
    body    = poly.translate(...)       AST -> tdsl IR, statements instantiated

`TDSL_DEBUG=1` prints what each step produced.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .. import poly
from ..errors import TdslValueError
from ..ir import nodes as ir
from ..ir.passes import merge_allocs, unswitch
from ..lang.tensor import Tensor
from . import legality
from .program import build_program, check_args


@dataclass(frozen=True)
class Lowered:
    """A lowered kernel with the tensors its parameters stand for."""

    kernel: ir.Kernel
    args: tuple[Tensor, ...]
    timings: dict

    @property
    def sizes(self) -> tuple:
        return self.kernel.sizes

    @property
    def name(self) -> str:
        return self.kernel.name

    def __str__(self) -> str:
        return str(self.kernel)

    def _repr_pretty_(self, p, cycle):       # IPython shows the loop nest
        p.text(str(self))


class LazyLowered:
    """A kernel fetched from the cache by its schedule's fingerprint: the arguments and
    sizes are known; the loop nest is lowered again only if someone asks for it."""

    def __init__(self, name: str, args, sizes, make):
        self.name, self.args, self.sizes = name, tuple(args), tuple(sizes)
        self._make, self._lowered = make, None

    @property
    def kernel(self) -> ir.Kernel:
        if self._lowered is None:
            self._lowered = self._make()
        return self._lowered.kernel

    def __str__(self) -> str:
        return str(self.kernel)


def lower(schedule, args, name: str = "kernel") -> Lowered:
    """The loop nest of `schedule` as a kernel taking `args` (inputs and outputs).

    >>> print(td.lower(s, [A, B, C]))
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(label: str, value):
        nonlocal clock
        now = time.perf_counter()
        timings[label] = now - clock
        clock = now
        if os.environ.get("TDSL_DEBUG"):
            print(f"--- {label} ({timings[label] * 1e3:.1f} ms)\n{value}")
        return value

    data = schedule.data
    args = check_args(data, args)
    program = step("build_program", build_program(data, args, _c_name(name)))
    with poly.isl_lessons(f"td.lower of the schedule of {_names(data.outputs)}"):
        return _lower_program(data, program, args, step, timings)


def _names(tensors) -> str:
    return ", ".join(t.name for t in tensors)


def _lower_program(data, program, args, step, timings) -> Lowered:
    model = step("model", poly.Model(program))
    unbound = [p for p in model.params if all(p is not q for q in program.params)]
    if unbound:
        raise TdslValueError(
            f"the size {unbound[0].name} is used by the kernel but no argument's shape "
            f"mentions it, so a call could not bind it; pass a tensor whose shape uses it")
    deps = poly.compute_dependences(model)
    # the whole schedule, checked once more as built (DESIGN.md): order and parallel loops
    legality.verify(data, legality.Analysis(program, model, deps), "the schedule")
    ast, marks = poly.generate_ast(model)
    step("isl_ast", ast.to_C_str())
    buffers = make_buffers(program, model.layouts)
    clash = sorted({b.name for b in buffers.values()} & {p.name for p in model.params})
    if clash:
        raise TdslValueError(
            f"the size {clash[0]} (td.var({clash[0]!r})) and the tensor {clash[0]} have the same "
            f"name, and the kernel needs both as C identifiers; rename one of them (e.g. "
            f"td.var({clash[0] + '_size'!r}))")
    taken = {b.name for b in buffers.values()} | {p.name for p in program.params}
    body = step("ir", unswitch(merge_allocs(poly.translate(model, ast, marks, buffers,
                                                           model.layouts, taken))))
    params = tuple(buffers[program.array_of[id(t.op)].name] for t in args)
    # intermediates at the root are allocated at entry; private ones where their loop is
    temps = tuple(b for b in buffers.values() if b.role == "temp" and
                  b.name not in program.attach)
    kernel = ir.Kernel(program.name, params, tuple(model.params), body, temps)
    return Lowered(kernel, tuple(args), timings)


def _c_name(name: str) -> str:
    if not name.isidentifier():
        raise TdslValueError(f"a kernel name must be an identifier; got {name!r}")
    return name


def make_buffers(program: poly.Program, layouts: dict) -> dict[str, ir.Buffer]:
    """One IR buffer per array: private ones shaped by their isl-computed regions."""
    buffers = {}
    for arr in program.arrays:
        layout = layouts.get(arr.name)
        shape = layout.shape if layout is not None else arr.shape
        buffers[arr.name] = ir.Buffer(arr.name, arr.dtype, tuple(shape), arr.role, arr.scope,
                                      ir.layout_strides(shape, arr.align, arr.storage_order),
                                      bool(arr.align), arr.storage_order)
    return buffers
