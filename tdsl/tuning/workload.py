"""What is tuned: an algorithm, its arguments, the sizes it is measured at, a target.

The workload key names a tuning problem in a log: the algorithm's canonical text (the
fingerprint of its unscheduled program, without tdsl's own version, so a log outlives a
release), the sizes, the target and the machine. The oracle a candidate's output is
checked against is `td.reference` where NumPy can evaluate it cheaply, else the
unscheduled kernel (every stage at the root, loops in axis order: no transformation to
get wrong); symbolic workloads are also checked at small ragged sizes against
`td.reference`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import TdslError, TdslTypeError, TdslValueError
from ..lang.expr import Var
from ..lang.graph import as_tensor_list
from ..lang.reference import evaluate_scalar
from ..lang.tensor import ComputeOp, PlaceholderOp, UpdateOp
from ..target import Target, target as parse_target

# NumPy evaluates td.reference over whole iteration grids: beyond this many points per
# stage the unscheduled kernel is the oracle instead
REFERENCE_POINTS = 1 << 24
SMALL_SIZE = 11                 # symbolic sizes for the small check (ragged for most tiles)


@dataclass(frozen=True)
class Checked:
    """Arrays for one call (in the order of `args`; outputs zero-filled) and the outputs
    expected from it, with the tolerance of each output."""

    arrays: tuple
    outputs: tuple               # positions of the outputs in `arrays`
    expected: tuple
    tolerances: tuple            # (rtol, atol) per output
    label: str


class Workload:
    """`outputs` computed from `args` at `sizes` (name or td.var -> int) on `target`."""

    def __init__(self, outputs, args, sizes=None, target=None):
        self.outputs = as_tensor_list(outputs, "outputs")
        self.args = as_tensor_list(args, "args")
        self.target: Target = parse_target(target)
        if self.target.kind != "c":
            raise TdslError(f"td.tune measures kernels for C targets on this machine; got "
                            f"target {self.target}")
        self.params = _size_params(self.args)
        self.sizes = _bind_sizes(self.params, sizes)

    # -- identity -------------------------------------------------------------------------
    @cached_property
    def algorithm(self) -> str:
        """The canonical text of the unscheduled program (not of tdsl's version)."""
        from ..schedule import create_schedule
        from ..schedule.fingerprint import fingerprint
        text = fingerprint(create_schedule(self.outputs).data, self.args, "kernel")
        return text.split("\n", 1)[1]

    @cached_property
    def key(self) -> str:
        blob = json.dumps({"algorithm": self.algorithm, "sizes": self.size_names,
                           "target": str(self.target), "machine": machine()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    @property
    def size_names(self) -> dict[str, int]:
        return {v.name: n for v, n in self.sizes.items()}

    def describe(self) -> dict:
        return {"key": self.key, "sizes": self.size_names, "target": str(self.target),
                "machine": machine(),
                "outputs": [t.name for t in self.outputs], "args": [t.name for t in self.args]}

    # -- data -----------------------------------------------------------------------------
    def checks(self, seed: int = 0) -> tuple[Checked, list[Checked]]:
        """(the full-size call with its expected outputs, small-size checks)."""
        full = self._checked(self.sizes, seed, "full size")
        small = []
        if self.params:
            sizes = {v: min(n, SMALL_SIZE) for v, n in self.sizes.items()}
            if sizes != self.sizes:
                small.append(self._checked(sizes, seed + 1, "small sizes",
                                           force_reference=True))
        return full, small

    def _checked(self, sizes, seed, label, force_reference=False) -> Checked:
        from ..testing import random_array, tolerance
        rng = np.random.default_rng(seed)
        feeds = {t: random_array(t, sizes, rng) for t in self.args
                 if isinstance(t.op, PlaceholderOp)}
        outs = [t for t in self.args if not isinstance(t.op, PlaceholderOp)]
        arrays = []
        for t in self.args:
            if isinstance(t.op, PlaceholderOp):
                arrays.append(feeds[t])
            else:
                shape = tuple(int(evaluate_scalar(d, sizes)) for d in t.shape)
                arrays.append(np.zeros(shape, dtype=t.dtype))
        if force_reference or self._reference_points(sizes) <= REFERENCE_POINTS:
            from ..lang.reference import reference
            expected = reference(outs, {t: a.copy() for t, a in feeds.items()}, sizes)
            label += ", against td.reference"
        else:
            expected = self._unscheduled(arrays, outs)
            label += ", against the unscheduled kernel"
        expected = tuple(np.asarray(e, dtype=t.dtype) for e, t in zip(expected, outs))
        tolerances = tuple(tolerance(t.dtype) for t in outs)
        positions = tuple(k for k, t in enumerate(self.args)
                          if not isinstance(t.op, PlaceholderOp))
        return Checked(tuple(arrays), positions, expected, tolerances, label)

    def _unscheduled(self, arrays, outs) -> list[np.ndarray]:
        from ..build import build
        from ..schedule import create_schedule
        call = [a.copy() for a in arrays]
        build(create_schedule(self.outputs), self.args, target=self.target)(*call)
        return [a for a, t in zip(call, self.args) if not isinstance(t.op, PlaceholderOp)]

    def _reference_points(self, sizes) -> int:
        from ..lang.graph import topo_order
        most = 0
        for op in topo_order(self.outputs):
            if isinstance(op, (ComputeOp, UpdateOp)):
                points = 1
                for d in op.output(0).shape:
                    points *= int(evaluate_scalar(d, sizes))
                for r in getattr(op, "reduce_axis", ()):
                    points *= int(evaluate_scalar(r.extent, sizes))
                most = max(most, points)
        return most


def machine() -> str:
    """The CPU this process runs on, for the workload key."""
    from ..target import host_description
    return host_description()


def _size_params(args) -> tuple:
    from ..schedule.program import size_params
    return size_params(args)


def _bind_sizes(params, sizes) -> dict:
    given = {}
    for key, value in (sizes or {}).items():
        name = key.name if isinstance(key, Var) else key
        if not isinstance(name, str):
            raise TdslTypeError(f"sizes= maps size names (or td.var) to integers; got the key "
                                f"{key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise TdslValueError(f"sizes= gives {name} the value {value!r}; expected an "
                                 f"integer of at least 1")
        given[name] = int(value)
    known = {v.name for v in params}
    unknown = sorted(set(given) - known)
    if unknown:
        raise TdslValueError(f"sizes= names {', '.join(unknown)}, which no argument's shape "
                             f"uses (the symbolic sizes are: "
                             f"{', '.join(sorted(known)) or 'none'})")
    missing = [v.name for v in params if v.name not in given]
    if missing:
        example = ", ".join(f"{m!r}: ..." for m in missing)
        raise TdslError(f"the arguments have symbolic sizes {', '.join(missing)} and sizes= "
                        f"does not bind them; pass sizes={{{example}}} with the sizes to "
                        f"measure at")
    return {v: given[v.name] for v in params}
