"""Pictures of loops and dependences, for teaching (matplotlib, headless-safe).

- `domain(s, C, sizes)`: a 2-D slice of a stage's iteration domain as points, with
  its dependences (arrows; a reduction's links between its updates dashed, without
  heads) and its init statement; `carried_by=k` draws in red the ones loop k carries
  (the reason `parallel(k)` is refused).
- `order(s, C, sizes)`: the order a schedule visits a 2-D domain: tiles shaded,
  points numbered, the path drawn; a parallel loop's iterations shown as lanes, each
  with its own path; with a vectorized loop, one colour per vector instruction.
- `regions(s, P, sizes)`: after `compute_at`, the region of the producer P each tile
  computes, and the elements more than one tile computes (the halo).
- `roofline(...)` and `bars(...)`: measured kernels against the machine's peak and
  bandwidth, which `measure_machine()` measures with probes written in C
  (`td.machine`: an FMA-throughput loop for the target's vector width, a STREAM triad).
- `traffic(counts)`: td.counts' traffic per array against the cache size, for one
  schedule or several; `counts_roofline(...)`: schedules on a roofline at their counted
  intensity, the predicted time next to the measured one.

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
    with its dependences between neighbours; `carried_by=axis` paints red those that
    loop carries (the pairs `parallel(axis)` would run at the same time).

    Two kinds of dependence look different, because they forbid different things:

    - a true dependence (a recurrence's read after write) is a solid arrow: its source
      must run before its sink, so no reorder may swap them;
    - a reduction's self-dependence (two updates of the same sum) is a dashed line
      without a head: the updates may run in any order (the sum is associative and
      commutative) but not at the same time.

    A reduction's `init` statement (the `= 0` before the sum) is drawn as squares one
    step before the first update, with its arrow into it. Ticks are integers.

    >>> td.viz.domain(s, C, {n: 4, m: 1, l: 5}, dims=("i", "k"), carried_by=k)
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    sz = _sizes(sizes)
    sm, name = _statement(schedule, stage)
    x, y, labels = _plane(sm, dims)
    pts = teach.points(sm.domain, sz)
    if not pts:
        raise TdslValueError(f"{name} has no iterations at these sizes")
    base = {d: min(p[d] for p in pts) for d in range(len(pts[0]))}
    keep = (x, y)
    shown = [p for p in pts if _in_slice(p, keep, base)]
    fig = Figure(figsize=(5.5, 6.5))
    ax = fig.subplots()
    ax.scatter([p[x] for p in shown], [p[y] for p in shown], s=60, color="#3465a4", zorder=3)
    carried = set()
    if carried_by is not None:
        for dep, src, dst in teach.carried_pairs(schedule, name, carried_by, sz):
            if dep.source == sm.name and dep.sink == sm.name:
                carried.add((src, dst))
    drawn, kinds = set(), set()
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
            kinds.add((dep.reduction, bad))
            ax.annotate("", xy=(dst[x], dst[y]), xytext=(src[x], src[y]),
                        arrowprops=dict(arrowstyle="-" if dep.reduction else "->",
                                        ls="--" if dep.reduction else "-",
                                        color="#cc0000" if bad else "#888888",
                                        lw=2.0 if bad else 1.0, shrinkA=6, shrinkB=6), zorder=2)
    init = _init_points(schedule, sm, sz, (x, y), base, shown)
    if init:
        ax.scatter([p[0] for p, _ in init], [p[1] for p, _ in init], s=60, marker="s",
                   color="#73d216", zorder=3)
        for p, first in init:
            ax.annotate("", xy=first, xytext=p, zorder=2,
                        arrowprops=dict(arrowstyle="->", color="#4e9a06", lw=1.0,
                                        shrinkA=6, shrinkB=6))
    handles = [Line2D([], [], marker="o", ls="", color="#3465a4", label=f"{sm.name} instance")]
    if init:
        handles.append(Line2D([], [], marker="s", ls="", color="#73d216",
                              label=f"{name}_init (= identity), then its first update"))
    for reduction, bad in sorted(kinds):
        what = ("reduction: any order, not at once" if reduction else
                "dependence: source before sink")
        handles.append(Line2D([], [], ls="--" if reduction else "-",
                              color="#cc0000" if bad else "#888888",
                              marker="" if reduction else ">",
                              label=what + (f" (carried by {carried_by.name})" if bad else "")))
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    title = f"{name}: iteration domain and dependences"
    if carried_by is not None:
        title += f"\nred: carried by loop {carried_by.name}"
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def _init_points(schedule, sm, sz, plane, base, shown) -> list:
    """The init statement of sm's stage in the plotted plane: [(position, position of the
    first update it flows into)]; a reduction axis it lacks is drawn one step before the
    first update. Empty when the stage has no init statement."""
    model = schedule.analysis().model
    inits = [m for m in model.stmts.values() if m.stmt.stage == sm.stmt.stage and
             m.stmt.kind == "init" and m.name != sm.name]
    if not inits:
        return []
    im = inits[0]
    update_names = [d.name for d in sm.stmt.dims]
    init_names = [d.name for d in im.stmt.dims]
    off_u, off_i = len(sm.outer), len(im.outer)
    found = []
    for q in teach.points(im.domain, sz):
        values = {n: q[off_i + k] for k, n in enumerate(init_names)}
        # the update instances this init point starts: same pure coordinates, in the slice
        firsts = [p for p in shown if all(p[off_u + k] == values[n]
                                          for k, n in enumerate(update_names) if n in values)]
        if not firsts:
            continue
        first = min(firsts, key=lambda p: tuple(p[d] for d in plane[::-1]))
        pos = []
        for d in plane:
            n = update_names[d - off_u]
            pos.append(values[n] if n in values else first[d] - 1)
        found.append((tuple(pos), (first[plane[0]], first[plane[1]])))
    return found


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
    vec = next((k for k, loop in enumerate(loops) if loop.kind == "vectorize"), None)
    if lane_dim is None and vec is not None:      # one colour per vector instruction
        tile_dims = [2 * k + 1 for k in range(vec)]
    key_dims = [lane_dim] if lane_dim is not None else tile_dims
    groups = sorted({tuple(t[d] for d in key_dims) for t, _ in shown})
    colors = {g: k for k, g in enumerate(groups)}
    cmap = _colormap(len(groups))
    # the path in execution order; with a parallel loop, one path per thread (iteration
    # of the parallel loop): the threads run at the same time, not one after the other
    paths = {}
    for t, p in shown:
        paths.setdefault(tuple(t[d] for d in key_dims) if lane_dim is not None else (),
                         []).append(p)
    for path in paths.values():
        ax.plot([p[x] for p in path], [p[y] for p in path], color="#555555", lw=0.8,
                alpha=0.6, zorder=1)
    for rank, (t, p) in enumerate(shown):
        g = tuple(t[d] for d in key_dims)
        ax.scatter([p[x]], [p[y]], s=180, color=cmap[colors[g]], zorder=2)
        if len(shown) <= 400:
            ax.text(p[x], p[y], str(rank), ha="center", va="center", fontsize=6, zorder=3)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    what = (f"color: iteration of parallel loop {loops[(lane_dim - 1) // 2].var.name}"
            if lane_dim is not None else
            f"color: one vector instruction (loop {loops[vec].var.name} vectorized)"
            if vec is not None else "color: tile (outer loops)")
    ax.set_title(f"{name}: execution order\n{what}")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    _integer_ticks(ax)
    return fig


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


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


def regions(schedule, producer, sizes: dict, dims=None) -> Figure:
    """The region of `producer` each iteration of the loop it is computed at computes
    (after `compute_at`): one outlined rectangle per tile, in the tile's colour, and
    every element computed by more than one tile shaded, with how many (the overlap, or
    halo, that compute_at recomputes). The regions are isl's: the producer's domain
    indexed by the consumer's loops around it (`td.poly.domains(s)`).

    >>> s[bx].compute_at(s[by], xo)
    >>> td.viz.regions(s, bx, {h: 8, w: 8})
    """
    from matplotlib.patches import Rectangle
    sz = _sizes(sizes)
    sm, name = _statement(schedule, producer)
    y, x, labels = _plane(sm, dims)          # first axis down the rows, like a matrix
    labels = labels[::-1]
    pts = teach.points(sm.domain, sz, limit=200000)
    if not pts:
        raise TdslValueError(f"{name} has no iterations at these sizes")
    n_outer = len(sm.outer)
    own = [d for d in range(n_outer, len(pts[0])) if d not in (x, y)]
    base = {d: min(p[d] for p in pts) for d in own}
    tiles: dict[tuple, list] = {}
    for p in pts:
        if all(p[d] == base[d] for d in own):
            tiles.setdefault(p[:n_outer], []).append((p[x], p[y]))
    count: dict[tuple, int] = {}
    for cells in tiles.values():
        for c in set(cells):
            count[c] = count.get(c, 0) + 1
    fig = Figure(figsize=(6, 5.5))
    ax = fig.subplots()
    most = max(count.values())
    for (cx, cy), k in count.items():
        shade = 0.78 - 0.3 * (k - 2) / max(most - 2, 1) if k > 1 else 1.0
        ax.add_patch(Rectangle((cx - 0.5, cy - 0.5), 1, 1, facecolor=(shade, shade, shade),
                               edgecolor="#dddddd", lw=0.5, zorder=1))
        if k > 1 and len(count) <= 400:
            ax.text(cx, cy, str(k), ha="center", va="center", fontsize=7, zorder=4)
    cmap = _colormap(len(tiles))
    inset = 0.35 / max(len(tiles), 1) ** 0.5
    for t, (_, cells) in enumerate(sorted(tiles.items())):
        xs, ys = [c[0] for c in cells], [c[1] for c in cells]
        pad = 0.5 - inset * (1 + t % 3)
        ax.add_patch(Rectangle((min(xs) - pad, min(ys) - pad), max(xs) - min(xs) + 2 * pad,
                               max(ys) - min(ys) + 2 * pad, fill=False, lw=2,
                               edgecolor=cmap[t], zorder=3))
    twice = sum(1 for k in count.values() if k > 1)
    evaluations = sum(len(c) for c in tiles.values())
    ax.set_xlim(min(c[0] for c in count) - 1, max(c[0] for c in count) + 1)
    ax.set_ylim(min(c[1] for c in count) - 1, max(c[1] for c in count) + 1)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(f"{name}: the region each of {len(tiles)} tiles computes (outlines)\n"
                 f"{evaluations} evaluations of {len(count)} elements; grey: computed by "
                 f"more than one tile ({twice})", fontsize=9)
    ax.set_aspect("equal")
    ax.invert_yaxis()
    _integer_ticks(ax)
    return fig


# ---------------------------------------------------------------------------------------
# Counts (td.counts)
# ---------------------------------------------------------------------------------------

_DASHES = ["-", "--", ":", "-."]


def traffic(counts: dict, caches: list[int] | None = None) -> Figure:
    """Bytes each array moves into a cache, against the cache size, for each schedule of
    `counts` (`{label: td.counts(...)}`): one color per array, one line style per
    schedule; the array's footprint (compulsory traffic) is where each line ends.

    >>> td.viz.traffic({"naive": td.counts(s1, args), "tiled": td.counts(s2, args)})
    """
    if not counts:
        raise TdslValueError("td.viz.traffic needs at least one schedule's counts")
    caches = caches or [1 << p for p in range(10, 26)]          # 1 KiB .. 32 MiB
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    arrays = list(dict.fromkeys(a for c in counts.values() for a in c.footprint))
    palette = _colormap(len(arrays))
    for k, (label, c) in enumerate(counts.items()):
        moved = [c.traffic(size) for size in caches]
        for a, name in enumerate(arrays):
            if name not in c.footprint:
                continue
            ys = [max(m[name], 1) for m in moved]
            ax.loglog(caches, ys, _DASHES[k % len(_DASHES)], color=palette[a], lw=1.8,
                      label=f"{name} ({label})")
    ax.set_xlabel("cache size (bytes)")
    ax.set_ylabel("traffic into the cache (bytes)")
    ax.set_title("traffic per array (td.counts' cache model)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def counts_roofline(schedules: dict, machine, cache_bytes: int | None = None) -> Figure:
    """Schedules on a roofline: `schedules` is `{label: (counts, measured_seconds)}`,
    `machine` a `tdsl.analysis.Machine`. Each schedule sits at its counted intensity
    (flops per byte of traffic into the cache of `cache_bytes`, the machine's largest by
    default): a hollow marker at the GFLOP/s `counts.roofline_time` predicts, a filled
    one at the GFLOP/s measured, joined by a line.

    >>> td.viz.counts_roofline({"tiled": (c, 0.012)}, machine)
    """
    if not schedules:
        raise TdslValueError("td.viz.counts_roofline needs at least one schedule")
    cache_bytes = cache_bytes or max(machine.bandwidth_gbs)
    if cache_bytes not in machine.bandwidth_gbs:
        raise TdslValueError(f"the machine has no bandwidth for a {cache_bytes}-byte cache; "
                             f"it has {sorted(machine.bandwidth_gbs)}")
    bandwidth = machine.bandwidth_gbs[cache_bytes]
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    points = []
    for label, (c, seconds) in schedules.items():
        if c.flops == 0:
            raise TdslValueError(f"{label} does no floating-point operations: a roofline "
                                 "places kernels by flops per byte")
        intensity = c.intensity(cache_bytes)
        points.append((label, intensity, c.flops / c.roofline_time(machine, warm=True) / 1e9,
                       c.flops / seconds / 1e9))
    xs = [p[1] for p in points]
    lo = min(xs + [machine.peak_gflops / bandwidth]) / 4
    hi = max(xs + [machine.peak_gflops / bandwidth]) * 4
    grid = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(grid, np.minimum(machine.peak_gflops, bandwidth * grid), color="black", lw=2,
              label=f"roof: {machine.peak_gflops:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
    palette = _colormap(len(points))
    for k, (label, x, predicted, measured) in enumerate(points):
        ax.plot([x, x], [predicted, measured], color=palette[k], lw=1, zorder=2)
        ax.scatter([x], [predicted], s=70, facecolors="none", edgecolors=[palette[k]], lw=1.5,
                   zorder=3)
        ax.scatter([x], [measured], s=70, color=palette[k], zorder=3, label=label)
    ax.set_xlabel(f"intensity: flops per byte moved into {_size_label(cache_bytes)}")
    ax.set_ylabel("GFLOP/s")
    ax.set_title("roofline: predicted (hollow) and measured (filled)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _size_label(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
