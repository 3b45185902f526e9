"""The C library of a compiled network: several kernels, one prelude, the weights as
read-only data, and one entry point that runs the kernels in order.

    [prelude]                        once, for every kernel (render.prelude)
    [kernel functions]               int <network>_<stage>(buffers...), as render gives them
    [weights]                        .incbin of one file per network, a symbol per constant
    int <network>(inputs..., outputs...)
        one arena for the planned intermediates (graph/plan.py), the kernels called in
        order with pointers into it, into the caller's arrays and into the weights
    [runtime + <network>_call + manifest]   entry.py, the same as for one kernel

The graph compiler (tdsl/graph) decides what is fused and where each intermediate lives;
this module only writes C. The weights are assembled in with `.incbin` (gcc passes the
file to the assembler), so a 45 MB ResNet costs no C parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ... import cache
from ...runtime.signature import Signature
from .build import compile_shared
from .entry import library_source
from .render import c_type, prelude

ALIGN = 64


@dataclass(frozen=True)
class Call:
    """One kernel call of the network: its function, and the buffer of each parameter
    (a network argument, a constant or an intermediate, by tensor name)."""

    function: str           # the kernel's C function (render.render_function)
    name: str               # its C name
    buffers: tuple[str, ...]


@dataclass(frozen=True)
class Constant:
    name: str               # the tensor's name
    symbol: str             # the C symbol of its data
    dtype: str
    shape: tuple[int, ...]
    offset: int             # in the weights file
    nbytes: int

    def to_json(self) -> dict:
        return {"name": self.name, "symbol": self.symbol, "dtype": self.dtype,
                "shape": list(self.shape)}


def weights_file(arrays: list[tuple[str, object]], prefix: str) -> tuple[Path | None,
                                                                          list[Constant]]:
    """The weights in one file (each 64-byte aligned), stored in the cache under the
    digest of their bytes, and where each one is; (None, []) without weights."""
    import numpy as np
    constants, chunks, offset = [], [], 0
    for k, (name, value) in enumerate(arrays):
        data = np.ascontiguousarray(value).tobytes()
        pad = -offset % ALIGN
        chunks += [b"\0" * pad, data]
        offset += pad
        constants.append(Constant(name, f"{prefix}_c{k}", str(value.dtype),
                                  tuple(int(d) for d in value.shape), offset, len(data)))
        offset += len(data)
    if not constants:
        return None, []
    blob = b"".join(chunks)
    key = cache.digest("weights", blob)
    entry = cache.lookup(key, "weights")
    if entry is None:
        def write(tmp: Path) -> list[str]:
            (tmp / "weights.bin").write_bytes(blob)
            return ["weights.bin"]
        entry = cache.store(key, "weights", write)
    return entry / "weights.bin", constants


def network_source(sig: Signature, calls: list[Call], constants: list[Constant],
                   weights: Path | None, arena: dict[str, int], arena_bytes: int,
                   dtypes: dict[str, str], manifest: dict, vector_bytes: int) -> str:
    """The C of the whole library (see the module docstring). `arena` gives each
    intermediate's offset, `dtypes` every tensor's dtype."""
    functions = [c.function for c in calls]
    parts = [prelude(functions, vector_bytes), *functions, _weights_asm(constants, weights),
             _network_function(sig, calls, constants, arena, arena_bytes, dtypes)]
    return library_source(["\n".join(parts)], [sig], manifest)


def _weights_asm(constants: list[Constant], weights: Path | None) -> str:
    if not constants:
        return ""
    path = str(weights).replace("\\", "\\\\").replace('"', '\\"')
    lines = ['__asm__(".section .rodata\\n"']
    for c in constants:
        lines += [f'        ".balign {ALIGN}\\n"', f'        ".globl {c.symbol}\\n"',
                  f'        ".type {c.symbol}, @object\\n"', f'        "{c.symbol}:\\n"',
                  f'        ".incbin \\"{path}\\", {c.offset}, {c.nbytes}\\n"',
                  f'        ".size {c.symbol}, {c.nbytes}\\n"']
    lines.append('        ".previous\\n");')
    lines += [f"extern const {c_type(c.dtype)} {c.symbol}[];" for c in constants]
    return "\n".join(lines) + "\n"


def _network_function(sig: Signature, calls, constants, arena, arena_bytes, dtypes) -> str:
    params = ", ".join(f"{'' if a.is_output else 'const '}{c_type(a.dtype)}* restrict arg{k}"
                       for k, a in enumerate(sig.args)) or "void"
    where = {a.name: f"arg{k}" for k, a in enumerate(sig.args)}
    where.update({c.name: c.symbol for c in constants})
    for name, offset in arena.items():
        where[name] = f"(tdsl_arena + {offset})"
    # <network>_tdsl_nanos[k]: nanoseconds spent in kernel k over all calls (the time shares
    # `print(net)` reports; two clock reads per kernel, ~40 ns).
    lines = ["#include <time.h>", f"int64_t {sig.name}_tdsl_nanos[{max(len(calls), 1)}];",
             "static inline int64_t tdsl_now(void) {",
             "  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);",
             "  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;", "}",
             f"int {sig.name}({params}) {{", "  int rc = 0;", "  int64_t tdsl_t;"]
    if arena_bytes:
        lines += [f"  char* tdsl_arena = (char*)tdsl_alloc({arena_bytes}, 1);",
                  "  if (!tdsl_arena) return 1;"]
    for k, call in enumerate(calls):
        args = ", ".join(f"({c_type(dtypes[b])}*){where[b]}" for b in call.buffers)
        lines += ["  tdsl_t = tdsl_now();", f"  rc = {call.name}({args});",
                  f"  __atomic_fetch_add(&{sig.name}_tdsl_nanos[{k}], tdsl_now() - tdsl_t, "
                  "__ATOMIC_RELAXED);", "  if (rc) goto done;"]
    lines += ["done:"]
    if arena_bytes:
        lines.append("  tdsl_free(tdsl_arena);")
    lines += ["  return rc;", "}"]
    return "\n".join(lines) + "\n"


def build_network(source: str, target) -> Path:
    """The shared library of a network's source (from the cache when built before)."""
    return compile_shared(source, target)
