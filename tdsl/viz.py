"""Pictures of loops and dependences, for teaching (matplotlib, headless-safe).

- `domain(s, C, sizes)`: a 2-D slice of a stage's iteration domain as points, with
  its dependences as arrows; `carried_by=k` draws in red the ones loop k carries
  (the reason `parallel(k)` is refused).
- `order(s, C, sizes)`: the order a schedule visits a 2-D domain: tiles shaded,
  points numbered, the path drawn; a parallel loop's iterations shown as lanes.
- `roofline(...)` and `bars(...)`: measured kernels against the machine's peak and
  bandwidth, which `measure_machine()` measures with probes written in C
  (`td.machine`: an FMA-throughput loop for the target's vector width, a STREAM triad).

Every function returns a `matplotlib.figure.Figure` (no pyplot state, so it works
without a display); Jupyter shows it, `fig.savefig("x.png")` writes it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .errors import TdslValueError
from .lang.expr import Var
from .lang.tensor import Tensor
from .poly import teach


def _sizes(sizes: dict) -> dict[str, int]:
    out = {}
    for k, v in (sizes or {}).items():
        out[k.name if isinstance(k, Var) else str(k)] = int(v)
    return out


def _statement(schedule, stage) -> tuple:
    """(statement model, stage name) of the main statement of a stage (the update of a
    reduction)."""
    name = stage.name if isinstance(stage, Tensor) else getattr(stage, "name", stage)
    model = schedule.analysis().model
    candidates = [sm for sm in model.stmts.values() if sm.stmt.stage == name]
    if not candidates:
        raise TdslValueError(f"{name} is not a stage of this schedule")
    chosen = [sm for sm in candidates if sm.stmt.kind != "init"] or candidates
    return chosen[-1], name


def _plane(sm, dims) -> tuple[int, int, list[str]]:
    names = [d.name for d in sm.stmt.dims]
    offset = len(sm.outer)
    if dims is None:
        dims = names[:2] if len(names) >= 2 else names + names
    picked = []
    for d in dims:
        dname = d.name if hasattr(d, "name") else str(d)
        if dname not in names:
            raise TdslValueError(f"{dname} is not an axis of {sm.stmt.stage} ({', '.join(names)})")
        picked.append(offset + names.index(dname))
    return picked[0], picked[1], [names[p - offset] for p in picked]


def _in_slice(point, keep: tuple[int, int], base: dict[int, int]) -> bool:
    return all(v == base[d] for d, v in enumerate(point) if d not in keep)


def domain(schedule, stage, sizes: dict, dims=None, carried_by=None) -> Figure:
    """The iteration domain of `stage` (2 of its axes; the others at their first value)
    with its self-dependences as arrows; `carried_by=axis` marks those that loop carries.

    >>> td.viz.domain(s, C, {n: 4, m: 1, l: 5}, dims=("i", "k"), carried_by=k)
    """
    sz = _sizes(sizes)
    sm, name = _statement(schedule, stage)
    x, y, labels = _plane(sm, dims)
    pts = teach.points(sm.domain, sz)
    if not pts:
        raise TdslValueError(f"{name} has no iterations at these sizes")
    base = {d: min(p[d] for p in pts) for d in range(len(pts[0]))}
    keep = (x, y)
    shown = [p for p in pts if _in_slice(p, keep, base)]
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.scatter([p[x] for p in shown], [p[y] for p in shown], s=60, color="#3465a4", zorder=3)
    carried = set()
    if carried_by is not None:
        for dep, src, dst in teach.carried_pairs(schedule, name, carried_by, sz):
            if dep.source == sm.name and dep.sink == sm.name:
                carried.add((src, dst))
    drawn = set()
    for dep in schedule.analysis().deps:
        if dep.source != sm.name or dep.sink != sm.name:
            continue
        for src, dst in teach.pairs(dep.relation, sz):
            if not (_in_slice(src, keep, base) and _in_slice(dst, keep, base)):
                continue
            if not _adjacent(src, dst, keep):
                continue
            key = (src, dst)
            if key in drawn:
                continue
            drawn.add(key)
            bad = key in carried
            ax.annotate("", xy=(dst[x], dst[y]), xytext=(src[x], src[y]),
                        arrowprops=dict(arrowstyle="->", color="#cc0000" if bad else "#888888",
                                        lw=2.0 if bad else 1.0, shrinkA=6, shrinkB=6), zorder=2)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    title = f"{name}: iteration domain and dependences"
    if carried_by is not None:
        title += f"\nred: carried by loop {carried_by.name}"
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)
    return fig


def _adjacent(src, dst, keep) -> bool:
    """Draw only dependences between neighbours (transitive ones clutter the picture)."""
    return sum(abs(a - b) for a, b in zip(src, dst)) == 1 or \
        max(abs(src[d] - dst[d]) for d in keep) <= 1


def order(schedule, stage, sizes: dict, dims=None) -> Figure:
    """The order in which the schedule runs a 2-D slice of `stage`: tiles shaded by the
    outer loops, points numbered, the path drawn; a parallel loop's iterations as lanes.

    >>> td.viz.order(s, C, {n: 16, m: 16, l: 1})
    """
    sz = _sizes(sizes)
    sm, name = _statement(schedule, stage)
    y, x, labels = _plane(sm, dims)          # first axis down the rows, like a matrix
    labels = labels[::-1]
    times = teach.times(schedule, sm.name, sz)
    if not times:
        raise TdslValueError(f"{name} has no iterations at these sizes")
    base = {d: min(p[d] for p in times) for d in range(len(next(iter(times))))}
    shown = sorted((t, p) for p, t in times.items() if _in_slice(p, (x, y), base))
    loops = list(sm.path)
    lane_dim = next((2 * k + 1 for k, loop in enumerate(loops) if loop.kind == "parallel"), None)
    tile_dims = [2 * k + 1 for k, loop in enumerate(loops[:-2])] if len(loops) > 2 else []
    fig = Figure(figsize=(6, 5.5))
    ax = fig.subplots()
    key_dims = [lane_dim] if lane_dim is not None else tile_dims
    groups = sorted({tuple(t[d] for d in key_dims) for t, _ in shown})
    colors = {g: k for k, g in enumerate(groups)}
    cmap = _colormap(len(groups))
    xs = [p[x] for _, p in shown]
    ys = [p[y] for _, p in shown]
    ax.plot(xs, ys, color="#555555", lw=0.8, alpha=0.6, zorder=1)
    for rank, (t, p) in enumerate(shown):
        g = tuple(t[d] for d in key_dims)
        ax.scatter([p[x]], [p[y]], s=180, color=cmap[colors[g]], zorder=2)
        if len(shown) <= 400:
            ax.text(p[x], p[y], str(rank), ha="center", va="center", fontsize=6, zorder=3)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    what = (f"color: iteration of parallel loop {loops[(lane_dim - 1) // 2].var.name}"
            if lane_dim is not None else "color: tile (outer loops)")
    ax.set_title(f"{name}: execution order\n{what}")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    return fig


def _colormap(n: int) -> list:
    from matplotlib import colormaps
    cmap = colormaps["tab20"] if n > 10 else colormaps["tab10"]
    return [cmap(k % cmap.N) for k in range(max(n, 1))]


def roofline(kernels: list[tuple[str, float, float, float]], peak_gflops: float,
             bandwidth_gbs: float) -> Figure:
    """A roofline: each kernel `(name, flops, bytes, seconds)` at its arithmetic intensity
    against the measured peak (GFLOP/s) and bandwidth (GB/s)."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    intensities = [f / b for _, f, b, _ in kernels if b > 0] or [1.0]
    lo, hi = min(intensities + [0.05]) / 2, max(intensities + [peak_gflops / bandwidth_gbs]) * 4
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(xs, np.minimum(peak_gflops, bandwidth_gbs * xs), color="black", lw=2,
              label=f"roof: {peak_gflops:.0f} GFLOP/s, {bandwidth_gbs:.0f} GB/s")
    for name, flops, nbytes, seconds in kernels:
        ax.scatter([flops / nbytes], [flops / seconds / 1e9], s=60, zorder=3)
        ax.annotate(name, (flops / nbytes, flops / seconds / 1e9), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("GFLOP/s")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("roofline (measured)")
    return fig


def bars(results: dict[str, float], unit: str = "GFLOP/s", peak: float | None = None,
         title: str = "") -> Figure:
    """A bar chart of measured results (e.g. GFLOP/s per schedule), with a peak line."""
    fig = Figure(figsize=(max(5, 0.9 * len(results) + 2), 4))
    ax = fig.subplots()
    names = list(results)
    ax.bar(names, [results[k] for k in names], color="#3465a4")
    if peak is not None:
        ax.axhline(peak, color="#cc0000", ls="--", label=f"peak {peak:.0f} {unit}")
        ax.legend(fontsize=8)
    for k, name in enumerate(names):
        ax.text(k, results[name], f"{results[name]:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


def measure_machine(target=None) -> dict:
    """The machine's ceilings, measured by probes that are not tdsl kernels (so no
    schedule can beat them): `td.machine.measure()`, i.e. `peak_gflops` (independent
    float32 vector FMAs of the target's width on every OpenMP thread), `bandwidth_gbs`
    (a STREAM triad on arrays far larger than the caches), `lanes`, `threads` and `cpu`
    (the CPU they were measured on). A busy machine measures low: run it when nothing
    else runs."""
    from . import machine
    return machine.measure(target)
