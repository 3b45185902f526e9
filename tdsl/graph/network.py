"""`Network`: what `td.compile` returns. One call per inference, its kernels described.

The library (one file: kernels, weights, entry point) is called through a
`runtime.network.NetworkModule`, so a wrong input array raises exactly what a Module
call raises. Everything else here is description, plain data that the compile cache
stores beside the library (a cached network prints the same).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

from ..runtime.network import NetworkModule
from .fold import Folded
from .plan import MemoryPlan, Slot


@dataclass(frozen=True)
class KernelInfo:
    """One fused kernel: its C function, the stages fused into it (producers first) with
    their patterns, how it was scheduled and what crosses its boundary."""

    name: str
    stages: tuple[str, ...]
    patterns: tuple[str, ...]
    schedule: str                 # the primitives applied (`print(s)`'s first part)
    tuned: bool                   # from a tuning log record, else td.auto_schedule
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    work: int                     # points of its iteration domains

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @staticmethod
    def from_json(d: dict) -> "KernelInfo":
        return KernelInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class Network:
    """A compiled network: `net(x)` runs it (NumPy in, NumPy out; a list for several
    outputs), `print(net)` shows its kernels and memory plan, `net.export(path)` writes
    one shared library with the weights inside.

    >>> net = td.compile([y], inputs=[x], params={w: w_array})
    >>> out = net(x_array)
    """

    def __init__(self, module: NetworkModule, kernels: tuple[KernelInfo, ...],
                 plan: MemoryPlan, folded: tuple[Folded, ...], choices: tuple[str, ...],
                 constants: tuple[str, ...], compile_seconds: float, cached: bool):
        self.module = module
        self.kernels = kernels
        self.plan = plan
        self.folded = folded
        self.choices = choices            # recompute-or-materialize decisions, as text
        self.constants = constants        # the weights embedded in the library
        self.compile_seconds = compile_seconds
        self.cached = cached              # the whole library came from the compile cache
        self.name = module.signature.name
        self.inputs = tuple(t for t in module.args if t not in module.outputs)
        self.outputs = tuple(module.outputs)
        self.library_path = Path(module.library.path)

    def __call__(self, *inputs, num_threads: int | None = None):
        return self.module(*inputs, num_threads=num_threads)

    def run(self, *arrays, num_threads: int | None = None) -> None:
        """Inputs then preallocated outputs, written in place (no allocation)."""
        self.module.run(*arrays, num_threads=num_threads)

    def time(self, *inputs, repeat: int = 5, number: int = 1):
        return self.module.time(*inputs, repeat=repeat, number=number)

    def export(self, path) -> Path:
        """One shared library at `path` (kernels, weights, entry point, manifest) and a C
        header beside it; `td.load(path)` runs it without a compiler. Returns the
        header's path."""
        return self.module.export(path)

    @property
    def source(self) -> str:
        return (self.library_path.parent / "kernel.c").read_text()

    def kernel_seconds(self) -> list[float]:
        """Seconds spent in each kernel over every call so far (the library counts)."""
        array = (ctypes.c_int64 * max(len(self.kernels), 1)).in_dll(
            self.module.library.handle, f"{self.name}_tdsl_nanos")
        return [array[k] / 1e9 for k in range(len(self.kernels))]

    def __str__(self) -> str:
        seconds = self.kernel_seconds()
        total = sum(seconds)
        lines = [f"network {self.name}: ({', '.join(t.name for t in self.inputs)}) -> "
                 f"({', '.join(t.name for t in self.outputs)}), {len(self.kernels)} kernels, "
                 f"{len(self.constants)} weights embedded"]
        constant = [s for f in self.folded if f.what == "constant" for s in f.stages]
        if constant:
            lines.append(f"  evaluated at compile time: {', '.join(constant)}")
        lines += [f"  folded: {f}" for f in self.folded if f.what != "constant"]
        lines += [f"  fusion choice: {c}" for c in self.choices]
        for k, info in enumerate(self.kernels):
            share = f"{100 * seconds[k] / total:5.1f}% of the time" if total else \
                "time share: not run yet"
            how = "tuned (from the log)" if info.tuned else "td.auto_schedule"
            lines.append(f"kernel {k}: {info.name}  [{share}]")
            lines.append("  stages: " + ", ".join(f"{s} ({p})" for s, p in
                                                  zip(info.stages, info.patterns)))
            lines.append(f"  reads {', '.join(info.inputs)} -> writes {', '.join(info.outputs)}")
            lines.append(f"  schedule ({how}):")
            lines += ["    " + line for line in info.schedule.splitlines()] or ["    (none)"]
        lines.append(str(self.plan))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Network {self.name}: {len(self.kernels)} kernels, peak " \
               f"{self.plan.peak:,} bytes of intermediates>"


def plan_to_json(plan: MemoryPlan) -> dict:
    return {"slots": [s.__dict__ for s in plan.slots], "peak": plan.peak, "total": plan.total}


def plan_from_json(d: dict) -> MemoryPlan:
    return MemoryPlan(tuple(Slot(**s) for s in d["slots"]), d["peak"], d["total"])
