"""What each configuration of a workload realizes to, kept between runs of `td.tune`.

A resumed `td.tune` keeps only the records whose choices still give the schedule they
measured (`search._Tuner._current`). Telling them apart means realizing every record
(the rules applied and each primitive proven legal by isl): minutes for a log of a few
hundred records. The answer, configuration -> schedule fingerprint, depends only on the
workload and on tdsl's code, so it is kept in the cache directory under a digest of
tdsl's sources (`rules_version`: the digest every schedule fingerprint carries): any
change to tdsl starts a new map, a conservative rule (most changes leave every schedule
as it was) that can never reuse a stale answer.

One JSON file per workload and version, replaced whole (a write to a temporary file,
then a rename), so a reader sees the old map or the new one and never half of one.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import cache
from ..schedule.fingerprint import source_digest

NAMESPACE = "tune-realized"


def rules_version() -> str:
    """A digest of tdsl's sources (what realizes a configuration: the rules, the
    primitives, isl's checks, the fingerprint)."""
    return source_digest()


def _path(workload_key: str) -> Path:
    return cache.cache_root() / NAMESPACE / rules_version() / f"{workload_key}.json"


def load(workload_key: str) -> dict[str, str]:
    """config key -> fingerprint for `workload_key` under this version of tdsl; empty
    where nothing is kept (or the file cannot be read: it is only a shortcut)."""
    try:
        data = json.loads(_path(workload_key).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def save(workload_key: str, fingerprints: dict[str, str]) -> None:
    """Add `fingerprints` (config key -> fingerprint) to what is kept for the workload.
    A failure to write is ignored: the next run realizes again."""
    if not fingerprints:
        return
    path = _path(workload_key)
    merged = {**load(workload_key), **fingerprints}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        cache.replace_file(path, json.dumps(merged, sort_keys=True).encode())
    except OSError:
        pass
