"""Tuning: `td.tune` searches the knobs of the scheduling rules, `td.apply_best` replays
the best candidate of a log.

    workload.py   what is tuned (algorithm, sizes, target) and its key; the oracles
    space.py      candidates: knob configurations realized as schedules (isl-checked)
    features.py   what the cost model sees of a candidate
    model.py      the cost model (LightGBM), trained online
    runner.py     where candidates are compiled and timed: local processes or Ray
    measure.py    timing one candidate inside a worker
    log.py        the JSON-lines log (append as results arrive; resume)
    search.py     the search loop, td.tune and td.apply_best
"""

from .runner import LocalRunner, RayRunner
from .search import TuneResult, apply_best, tune

__all__ = ["LocalRunner", "RayRunner", "TuneResult", "apply_best", "tune"]
