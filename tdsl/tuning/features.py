"""What the cost model sees of a candidate: its knobs and the shape of its loop nests.

Per stage (by name): whether it is inlined or computed at a consumer's loop, how many
loops it has, the extent of its innermost loop, its vector width, how much is unrolled,
how many iterations run in parallel, and the volume of its innermost three loops (the
tile whose data should stay in cache); extents are evaluated at the workload's sizes.
Every knob is a feature too (yes/no as 0/1, numbers as log2). Features are a dict, so
candidates with different stages (a stage inlined in one, not in another) compare by
name; the model fills what a candidate lacks with NaN.

`isl_features` adds what isl counts exactly in the whole kernel (`td.counts`): flops,
loads and stores, the bytes each level of cache must bring in under its reuse model
(the per-loop footprints: a loop whose distinct lines fit in the cache moves them once),
the flops per byte into L1 and L2, the shares of work that is vectorized and parallel,
and the parallel tasks and the work in each. The tuner adds them where counting is cheap
(search.py: `ISL_FEATURE_SECONDS`).
"""

from __future__ import annotations

import math

from ..lang.reference import evaluate_scalar


def features(candidate, sizes: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in candidate.choices.items():
        out[f"knob:{name}"] = _number(value)
    for stage in candidate.schedule.stages:
        state = stage.state
        prefix = f"stage:{stage.name}"
        if state.inlined:
            out[f"{prefix}.inline"] = 1.0
            continue
        out[f"{prefix}.inline"] = 0.0
        out[f"{prefix}.attached"] = 1.0 if isinstance(state.attach, tuple) else 0.0
        leaves = list(state.leaves)
        extents = [_extent(iv, sizes) for iv in leaves]
        out[f"{prefix}.loops"] = float(len(leaves))
        if not leaves:
            continue
        out[f"{prefix}.inner"] = _log(extents[-1])
        vector = unroll = parallel = 1.0
        for iv, extent in zip(leaves, extents):
            kind = state.kind_of(iv)
            if kind == "vectorize":
                vector *= extent
            elif kind == "unroll":
                unroll *= extent
            elif kind == "parallel":
                parallel *= extent
        out[f"{prefix}.vector"] = _log(vector)
        out[f"{prefix}.unroll"] = _log(unroll)
        out[f"{prefix}.parallel"] = _log(parallel)
        out[f"{prefix}.tile"] = _log(math.prod(extents[-3:]))
        out[f"{prefix}.work"] = _log(math.prod(extents))
    return out


# the caches the footprint features are counted for: L1, L2 and a slice of L3
CACHE_BYTES = {"l1": 32 * 1024, "l2": 512 * 1024, "l3": 8 * 1024 * 1024}


def isl_features(schedule, args, sizes: dict) -> dict[str, float]:
    """What isl counts of `schedule`'s kernel at `sizes` (module docstring), as features."""
    from ..analysis import counts
    c = counts(schedule, args, sizes)
    out = {"isl:flops": _log(c.flops), "isl:loads": _log(sum(c.loads.values())),
           "isl:stores": _log(sum(c.stores.values())),
           "isl:footprint": _log(sum(c.footprint.values())),
           "isl:vector_fraction": c.vector_fraction,
           "isl:parallel_fraction": c.parallel_fraction,
           "isl:parallel_tasks": _log(c.parallel_tasks),
           "isl:parallel_work": _log(c.parallel_work)}
    for level, size in CACHE_BYTES.items():
        moved = c.total_traffic(size)
        out[f"isl:traffic_{level}"] = _log(moved)
        out[f"isl:intensity_{level}"] = _log(c.flops / moved) if moved and c.flops else 0.0
    return out


def _extent(iv, sizes) -> float:
    try:
        return float(max(1, int(evaluate_scalar(iv.extent, sizes))))
    except Exception:                       # noqa: BLE001  (an extent we cannot evaluate)
        return float("nan")


def _log(x: float) -> float:
    return math.log2(x) if x == x and x > 0 else float("nan")


def _number(value) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return _log(float(value)) if value > 0 else float(value)
    return float(hash(value) % 997)
