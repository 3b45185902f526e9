"""The on-disk cache of compiled artifacts (shared libraries, cubins).

An entry is a directory named by the hex digest of everything that determines
the artifact (source, compiler identity, flags). It is built in a temporary
directory next to it and renamed into place, so concurrent builds and killed
processes never leave a half-written entry; each file is stored with its
SHA-256 so a corrupted entry is detected on load and rebuilt.

A process killed mid-build cannot remove its temporary directory, so the name
says who owns it (`.<key>-<pid>@<host>-<random>`) and every `store` first sweeps
the namespace: a temporary directory of this host whose process is gone, or any
one older than `STALE_AFTER_S` (no build takes that long; covers reused pids and
other hosts), is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable

import platformdirs

_MANIFEST = "manifest.json"
STALE_AFTER_S = 3600.0


def cache_root() -> Path:
    """The cache directory: `$TDSL_CACHE_DIR`, else the platform's user cache."""
    override = os.environ.get("TDSL_CACHE_DIR")
    root = Path(override) if override else Path(platformdirs.user_cache_dir("tdsl"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def digest(*parts: str | bytes) -> str:
    """A stable hex key of `parts` (each length-prefixed, so ("ab","c") != ("a","bc"))."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def replace_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` atomically: into a temporary file beside it, then renamed
    over it, so a reader sees the old file or the new one, never half of one. Raises
    OSError; the temporary file is removed on any failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lookup(key: str, namespace: str) -> Path | None:
    """The directory of a valid entry `key`, or None (missing or corrupt; corrupt is removed)."""
    entry = cache_root() / namespace / key
    manifest = entry / _MANIFEST
    try:
        recorded = json.loads(manifest.read_text())
        for name, sha in recorded.items():
            if _file_sha(entry / name) != sha:
                raise ValueError(f"{name} does not match its checksum")
    except FileNotFoundError:
        if entry.exists():
            _remove(entry)
        return None
    except (OSError, ValueError):
        _remove(entry)
        return None
    return entry


def store(key: str, namespace: str, build: Callable[[Path], list[str]]) -> Path:
    """Build an entry with `build(tmpdir) -> [file names]` and publish it atomically.

    Returns the entry's directory. If another process published the same key
    first, its entry is kept and ours is discarded.
    """
    parent = cache_root() / namespace
    parent.mkdir(parents=True, exist_ok=True)
    sweep(parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-{os.getpid()}@{_host()}-", dir=parent))
    try:
        names = build(tmp)
        manifest = {name: _file_sha(tmp / name) for name in names}
        (tmp / _MANIFEST).write_text(json.dumps(manifest))
        entry = parent / key
        try:
            os.rename(tmp, entry)
        except OSError:
            # Someone else won the race, or a corrupt entry is in the way.
            if lookup(key, namespace) is None:
                _remove(entry)
                os.rename(tmp, entry)
        return entry
    finally:
        if tmp.exists():
            _remove(tmp)


def sweep(parent: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary directories in `parent` left by killed builds; return them."""
    now = time.time() if now is None else now
    removed = []
    try:
        children = list(parent.iterdir())
    except OSError:
        return removed
    for path in children:
        if path.name.startswith(".") and _is_stale(path, now):
            _remove(path)
            removed.append(path)
    return removed


def _is_stale(path: Path, now: float) -> bool:
    try:
        age = now - path.stat().st_mtime
    except OSError:                         # already gone
        return False
    if age > STALE_AFTER_S:
        return True
    owner = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
    pid, _, host = owner.partition("@")
    if not pid.isdigit() or host != _host():
        return False                        # another host's, or an old name: by age only
    return not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                         # exists, owned by someone else
        return True
    return True


def _host() -> str:
    """A short id of this host for temporary names (a pid means nothing elsewhere)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
