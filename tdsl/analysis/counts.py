"""`td.counts`: machine-independent counts of a schedule, and a cache model.

    c = td.counts(s, [A, B, C], sizes={"n": 1024, "l": 1024, "m": 1024})
    c.flops, c.ops                      # floating-point operations (a multiply-add is 2)
    c.loads, c.stores, c.footprint      # element accesses per array; distinct bytes
    c.traffic(cache_bytes=32 * 1024)    # bytes moved into a cache of that size, per array
    c.vector_fraction, c.parallel_work  # share of work in vector loops; work per task
    print(c)                            # a table; c.as_dict() for graders

Every count is exact (an upper bound only where an index or a condition is not affine:
`notes` says where): isl counts the instances of each statement of the scheduled
program (tdsl/poly/counts.py), so what the lowered kernel runs is what is counted
(tests/analysis/test_counts_executed.py walks the lowered loop nest to check it):
the copies of a cache_read/cache_write stage, an inlined producer's operations in each
consumer, the partial stage of an rfactor, the halo a compute_at recomputes. Counts
are taken at concrete sizes (islpy here has no barvinok, so no polynomials in the
sizes): `sizes=` gives every symbolic size.

**The cache model** (`Counts.traffic`). Data moves in lines of `line_bytes` (64) along
the last dimension of an array (rows assumed to start on a line). For a loop L, the
footprint of one iteration is the number of distinct lines all statements under L touch
in it (isl, averaged over L's iterations). Reuse carried by L (the same line in two
iterations of L) is kept when one iteration of L fits in the cache: the data touched
between the two uses is about one iteration. The traffic is computed from the root down:
if the whole program fits, it is the compulsory footprint. Otherwise each child of a
node that does not fit is counted on its own: a child loop whose iteration fits moves
its distinct lines once per iteration of the node (`Level.lines_outside`: reuse across
the child's iterations kept, reuse with its siblings lost); a child that does not fit is
opened the same way; a statement moves its lines once per iteration of the node.
Assumptions: a fully associative LRU-like cache, no prefetching and no hardware reuse
beyond that rule, a written line counts once (no separate write-back), private buffers
(compute_at, cache_write at a loop) are the same memory in every iteration, and the
traffic of an array is never below its footprint. It ranks schedules (loop order, tiles,
packing); it is not a cycle-accurate cache simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TdslValueError
from ..lang.expr import Var

LINE_BYTES = 64


@dataclass(frozen=True)
class Machine:
    """What a roofline needs: the attainable peak (all threads, vector FMA), the number
    of threads and vector lanes (a serial or scalar statement gets 1/threads or 1/lanes
    of the peak), and the bandwidth into each level of cache, `{cache_bytes: GB/s}`
    (the last level's is the memory bandwidth)."""

    peak_gflops: float
    bandwidth_gbs: dict[int, float]
    threads: float = 1
    lanes: float = 1


@dataclass(frozen=True)
class Counts:
    """Exact counts of one schedule at given sizes; see the module docstring."""

    kernel: str
    sizes: dict[str, int]
    flops: int
    ops: dict[str, int]
    loads: dict[str, int]
    stores: dict[str, int]
    footprint: dict[str, int]           # bytes, per array (compulsory traffic)
    instances: dict[str, int]           # per statement
    vector_fraction: float              # share of statement instances in vectorized loops
    parallel_fraction: float            # share of statement instances in parallel loops
    parallel_tasks: int                 # iterations of the outermost parallel loops
    parallel_work: float                # instances per parallel task (work per thread
                                        # with one task per thread); 0 without one
    line_bytes: int
    exact: bool
    notes: tuple[str, ...]              # why a count is an upper bound, if one is
    levels: object = field(repr=False, compare=False)       # poly.counts.Level, the root
    statements: tuple = field(repr=False, compare=False)    # poly.counts.StatementCount
    arrays: dict = field(repr=False, compare=False)         # poly.counts.ArrayCount

    # -- the cache model --------------------------------------------------------------
    def traffic(self, cache_bytes: int) -> dict[str, int]:
        """Bytes moved into a cache of `cache_bytes`, per array (module docstring)."""
        lines = self._traffic_lines(_positive(cache_bytes, "cache_bytes"))[0]
        return {name: max(lines.get(name, 0) * self.line_bytes, self.footprint[name])
                for name in self.footprint}

    def total_traffic(self, cache_bytes: int) -> int:
        """The sum of `traffic(cache_bytes)` over the arrays."""
        return sum(self.traffic(cache_bytes).values())

    def reuse_levels(self, cache_bytes: int) -> list[str]:
        """Where the model counted the traffic at this cache size: the loops (and
        statements) whose lines were counted once per iteration of their parent."""
        return self._traffic_lines(_positive(cache_bytes, "cache_bytes"))[1]

    def _traffic_lines(self, cache_bytes: int) -> tuple[dict[str, int], list[str]]:
        root = self.levels
        total: dict[str, int] = {}
        where: list[str] = []

        def add(lines: dict[str, int]) -> None:
            for name, n in lines.items():
                total[name] = total.get(name, 0) + n

        def fits(level) -> bool:
            per_iteration = sum(level.lines.values()) / max(level.iterations, 1)
            return per_iteration * self.line_bytes <= cache_bytes

        def open_(level) -> None:
            for child in level.children:
                if child.kind == "statement" or fits(child):
                    add(child.lines_outside)
                    where.append(child.name)
                else:
                    open_(child)

        if fits(root):
            add(root.lines)
            where.append("root")
        else:
            open_(root)
        return total, where

    def intensity(self, cache_bytes: int) -> float:
        """Flops per byte of traffic into a cache of `cache_bytes`."""
        moved = self.total_traffic(cache_bytes)
        return self.flops / moved if moved else float("inf")

    # -- a roofline ---------------------------------------------------------------------
    def roofline_time(self, machine: Machine, warm: bool = False) -> float:
        """Predicted seconds: the largest of `time_bounds(machine, warm)`."""
        return max(self.time_bounds(machine, warm).values())

    def time_bounds(self, machine: Machine, warm: bool = False) -> dict:
        """Seconds each resource needs: "compute" (each statement's flops at the peak,
        divided by the lanes if it is not vectorized and by the threads if it is not
        parallel) and, per cache size, the traffic into it over its bandwidth. `warm`:
        the kernel runs again and again (as when it is timed), so a cache that holds
        the whole footprint keeps it from one run to the next and moves nothing."""
        compute = 0.0
        for st in self.statements:
            share = 1.0 if st.vector else 1.0 / machine.lanes
            share *= 1.0 if st.parallel else 1.0 / machine.threads
            compute += sum(st.ops.values()) / (machine.peak_gflops * 1e9 * share)
        bounds: dict = {"compute": compute}
        for size, gbs in machine.bandwidth_gbs.items():
            resident = warm and sum(self.levels.lines.values()) * self.line_bytes <= size
            bounds[size] = 0.0 if resident else self.total_traffic(size) / (gbs * 1e9)
        return bounds

    # -- reading ------------------------------------------------------------------------
    def as_dict(self, cache_bytes: tuple[int, ...] = (32 * 1024, 1024 * 1024)) -> dict:
        """Plain data (ints, floats, dicts) for graders and JSON, with the traffic at each
        of `cache_bytes`."""
        return {"kernel": self.kernel, "sizes": dict(self.sizes), "flops": self.flops,
                "ops": dict(self.ops), "loads": dict(self.loads), "stores": dict(self.stores),
                "footprint": dict(self.footprint), "instances": dict(self.instances),
                "vector_fraction": self.vector_fraction,
                "parallel_fraction": self.parallel_fraction,
                "parallel_tasks": self.parallel_tasks, "parallel_work": self.parallel_work,
                "line_bytes": self.line_bytes, "exact": self.exact, "notes": list(self.notes),
                "traffic": {int(c): self.traffic(c) for c in cache_bytes}}

    def __str__(self) -> str:
        caches = (32 * 1024, 1024 * 1024)
        traffic = {c: self.traffic(c) for c in caches}
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        ops = ", ".join(f"{k} {v:,}" for k, v in sorted(self.ops.items())) or "none"
        lines = [f"counts of {self.kernel}" + (f" at {sizes}" if sizes else ""),
                 f"  flops {self.flops:,} ({ops})",
                 f"  vector fraction {self.vector_fraction:.2f}, parallel fraction "
                 f"{self.parallel_fraction:.2f} ({self.parallel_tasks:,} tasks, "
                 f"{self.parallel_work:,.0f} instances each)"]
        header = ("array", "loads", "stores", "footprint", "traffic@32K", "traffic@1M")
        rows = [(name, f"{self.loads[name]:,}", f"{self.stores[name]:,}",
                 _bytes(self.footprint[name]), *(_bytes(traffic[c][name]) for c in caches))
                for name in self.footprint]
        rows.append(("(all)", f"{sum(self.loads.values()):,}", f"{sum(self.stores.values()):,}",
                     _bytes(sum(self.footprint.values())),
                     *(_bytes(sum(traffic[c].values())) for c in caches)))
        widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
        for n, row in enumerate([header, *rows]):
            lines.append("  " + "  ".join(str(c).rjust(w) if k else str(c).ljust(w)
                                          for k, (c, w) in enumerate(zip(row, widths))))
            if n == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        if self.notes:
            lines += ["  upper bounds:"] + [f"    {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):       # IPython shows the table
        p.text(str(self))


def counts(schedule, args, sizes: dict | None = None, line_bytes: int = LINE_BYTES,
           name: str = "kernel") -> Counts:
    """Exact counts of what the kernel of `schedule` taking `args` runs, at `sizes` (by
    td.var or by name; needed only for symbolic sizes).

    >>> c = td.counts(s, [A, B, C], sizes={"n": 1024, "l": 1024, "m": 1024})
    >>> c.flops == 2 * 1024 ** 3
    True
    """
    from .. import poly
    from ..poly.counts import count
    from ..schedule.program import build_program, check_args
    data = schedule.data
    args = check_args(data, args)
    program = build_program(data, args, name)
    with poly.isl_lessons(f"td.counts of the schedule of "
                          f"{', '.join(t.name for t in data.outputs)}"):
        model = poly.Model(program)
        given = _sizes(sizes, model.param_names)
        found = count(model, given, _positive(line_bytes, "line_bytes"))
    return _summarize(name, given, found, line_bytes)


def _sizes(sizes: dict | None, needed: list[str]) -> dict[str, int]:
    given: dict[str, int] = {}
    for key, value in (sizes or {}).items():
        label = key.name if isinstance(key, Var) else key
        if not isinstance(label, str):
            raise TdslValueError(f"sizes are keyed by td.var or by name; got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TdslValueError(f"sizes[{label!r}] must be an int >= 1; got {value!r}")
        given[label] = int(value)
    missing = [p for p in needed if p not in given]
    if missing:
        example = ", ".join(f'"{p}": ...' for p in missing)
        raise TdslValueError(
            f"td.counts needs a value for every symbolic size of the kernel: missing "
            f"{', '.join(missing)} (pass sizes={{{example}}}); counts are exact at concrete "
            f"sizes (this islpy has no barvinok for polynomials in the sizes)")
    # sizes the kernel does not use are ignored (one dict may serve several kernels; a
    # misspelled size is caught as a missing one)
    return {p: given[p] for p in needed}


def _summarize(name: str, sizes: dict[str, int], found, line_bytes: int) -> Counts:
    ops: dict[str, int] = {}
    for st in found.statements:
        for kind, n in st.ops.items():
            ops[kind] = ops.get(kind, 0) + n
    ops = {kind: n for kind, n in ops.items() if n}     # e.g. a branch that never runs
    total = sum(st.instances for st in found.statements)
    vector = sum(st.instances for st in found.statements if st.vector)
    parallel = sum(st.instances for st in found.statements if st.parallel)
    arrays = found.arrays
    return Counts(
        kernel=name, sizes=sizes, flops=sum(ops.values()), ops=dict(sorted(ops.items())),
        loads={a: c.loads for a, c in arrays.items()},
        stores={a: c.stores for a, c in arrays.items()},
        footprint={a: c.footprint * c.itemsize for a, c in arrays.items()},
        instances={st.name: st.instances for st in found.statements},
        vector_fraction=vector / total if total else 0.0,
        parallel_fraction=parallel / total if total else 0.0,
        parallel_tasks=found.parallel_tasks,
        parallel_work=parallel / found.parallel_tasks if found.parallel_tasks else 0.0,
        line_bytes=line_bytes, exact=not found.inexact, notes=found.inexact,
        levels=found.root, statements=found.statements, arrays=arrays)


def _positive(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TdslValueError(f"{what} must be an int >= 1; got {value!r}")
    return value


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
