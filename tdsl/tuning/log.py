"""The tuning log: one JSON object per line, appended as each measurement arrives.

A record holds the workload (key, sizes, target, machine), the candidate's choices (the
knobs of `tdsl/auto/knobs.py`), the fingerprint of its schedule, and the result: the
median seconds and the repeats, or an error kind and message. A confirmation (the
fastest few of a run measured again) is a record with no trial number whose result
holds the median of all that candidate's times and `confirmed`, the confirmation's
number. Each line is written with one `write` on a file opened for appending, so a run
killed at any moment leaves whole lines (a torn last line, from a machine that lost
power, is skipped with a warning), and a new run on the same log resumes where the last
one stopped.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

from ..errors import TdslError

VERSION = 1


def append(path, record: dict) -> None:
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(path) -> list[dict]:
    """The records of a log (none if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    try:
        text = path.read_text()
    except OSError as exc:
        raise TdslError(f"cannot read the tuning log {path}: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{number} is not a whole JSON record (a run stopped while "
                          f"writing it?); skipped", stacklevel=2)
            continue
        if not isinstance(record, dict) or record.get("version") != VERSION:
            warnings.warn(f"{path}:{number} is not a tdsl tuning record of version {VERSION}; "
                          f"skipped", stacklevel=2)
            continue
        records.append(record)
    return records


def for_workload(path, key: str) -> list[dict]:
    return [r for r in read(path) if r.get("workload", {}).get("key") == key]


def best(records: list[dict]) -> dict | None:
    """The fastest record: among those of the latest confirmation (the fastest few of a
    run measured again, `result["confirmed"]` its number) if there is one, else among
    every timed record."""
    order = ranked(records)
    return order[0] if order else None


def ranked(records: list[dict]) -> list[dict]:
    """The timed records, best first: the latest confirmation's by time, then the others
    by time (`best` is the first)."""
    timed = [r for r in records if "seconds" in r.get("result", {})]
    latest = max((r["result"].get("confirmed", 0) for r in timed), default=0)
    first = [r for r in timed if latest and r["result"].get("confirmed") == latest]
    rest = [r for r in timed if not (latest and r["result"].get("confirmed") == latest)]
    return sorted(first, key=lambda r: r["result"]["seconds"]) + \
        sorted(rest, key=lambda r: r["result"]["seconds"])


def record(workload, trial: int, choices: dict, fingerprint: str, result: dict,
           features: dict | None = None) -> dict:
    return {"version": VERSION, "workload": workload.describe(), "trial": trial,
            "choices": choices, "fingerprint": fingerprint, "result": result,
            "features": features or {},
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
