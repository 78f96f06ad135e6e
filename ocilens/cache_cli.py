"""What ``ocilens cache ls`` and ``ocilens cache prune`` do: list the cache, and shrink it by age or size.

Rows are plain dicts (``pandas.DataFrame(list_cache())`` shows them). "Last used" is the access time,
which ``RegistrySource`` refreshes when it serves a blob from the cache, so pruning is least-recently-used.
Temporary ``.partial`` files are listed too; left behind by a crash, they are always pruned once stale.
Scans, frames and engine records made by other code (a folder of another format, which this code never
reads) are ``stale``: every prune removes them, with their folders. Engine records (``engine/v<N>/``, one
small JSON file per image ID, see ``sources/engine.py``) let an unchanged engine image skip its export; they
are listed and pruned as the other kinds are.
"""

from __future__ import annotations

import math
import os
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from .cache import FrameCache, ScanCache, cache_dir
from .codec import TAR, sniff
from .errors import UsageError
from .units import parse_size

__all__ = ["list_cache", "prune_cache", "parse_age", "parse_size", "touch"]

ENGINE_DIR = "engine"  # the engine records' folder under the cache directory (sources/engine.py)
_PARTIAL_STALE = 3600.0  # a temp file untouched this long belongs to a download that died
_AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _not_negative(what: str, number: float, shown: Any) -> float:
    """``number`` when it is 0 or more; a negative or NaN age or size would select every entry."""
    if math.isnan(number) or number < 0:
        raise UsageError(f"{what} must be 0 or more, not {shown!r}",
                         hint="a negative age or size would select every entry; write e.g. 30d or 5GB")
    return number


def parse_age(value: float | timedelta | str) -> float:
    """Seconds from ``timedelta``, a number of seconds, or ``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``."""
    if isinstance(value, timedelta):
        return _not_negative("older_than", value.total_seconds(), value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _not_negative("older_than", float(value), value)
    if not isinstance(value, str):
        raise UsageError(f"older_than must be a timedelta, a number of seconds or a string like '30d', "
                         f"not {type(value).__name__} {value!r}")
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*", value)
    if not m:
        raise UsageError(f"cannot read {value!r} as an age", hint="write e.g. 30d, 12h, 90m or 2w")
    return float(m.group(1)) * _AGES[m.group(2) or "s"]


def _budget(value: int | str) -> int:
    """The bytes ``keep`` allows: a size (``5GB``) or a number of bytes, never negative."""
    if not isinstance(value, (int, float, str)) or isinstance(value, bool):
        raise UsageError(f"keep must be a number of bytes or a string like '5GB', "
                         f"not {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"keep must be a finite number of bytes, not {value!r}", hint="write e.g. 5GB")
    return int(_not_negative("keep", parse_size(value), value))


def touch(path: Path) -> None:
    """Mark a cache entry as used now (its access time); a read-only cache is left as it is."""
    try:
        st = path.stat()
        os.utime(path, (time.time(), st.st_mtime))
    except OSError:
        pass


def _head(path: Path, st: os.stat_result) -> bytes:
    """The first bytes of a file, read without making it look recently used (its atime is kept)."""
    noatime = getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, os.O_RDONLY | noatime)
    except PermissionError:  # O_NOATIME needs ownership: read normally, then put the times back
        fd, noatime = os.open(path, os.O_RDONLY), 0
    try:
        return os.read(fd, 262)
    finally:
        os.close(fd)
        if not noatime:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _content(path: Path, st: os.stat_result) -> str:
    """What a blob looks like from its first bytes: gzip, zstd, json (manifest or config), tar, other."""
    try:
        head = _head(path, st)
    except OSError:
        return "unreadable"
    compression = sniff(head)
    if compression != TAR:
        return compression  # gzip, zstd
    if head.startswith(b"{"):
        return "json"
    return "tar" if head[257:262] == b"ustar" else "other"


def _engine_format() -> str:
    """The folder name of the engine records this code reads and writes (``v1``)."""
    from .sources.engine import RECORD_FORMAT

    return f"v{RECORD_FORMAT}"


def _places(root: Path) -> list[tuple[str, Path, bool]]:
    """``(kind, folder, stale)`` of every folder of entries: the blobs, and the scans, frames and engine records
    of each format (stale: not the format this code reads)."""
    places = [("blob", root / "blobs", False)]
    kinds: tuple[tuple[str, str, Callable[[], str]], ...] = (
        ("scan", ScanCache.kind, ScanCache.format), ("frames", FrameCache.kind, FrameCache.format),
        ("engine", ENGINE_DIR, _engine_format))
    for kind, name, current in kinds:
        folder = root / name
        if folder.is_dir():
            fmt = current()
            places += [(kind, d, d.name != fmt) for d in sorted(folder.iterdir()) if d.is_dir()]
    return places


def _entries(kind: str, base: Path) -> list[tuple[str, Path]]:
    """``(algorithm, file)`` of a folder's entries: ``<algo>/<hex>...`` for blobs, scans and frames; for engine
    records the files themselves, named ``<algo>-<hex>.json`` after the image ID."""
    if kind == "engine":
        return [(f.name.partition("-")[0], f) for f in sorted(base.iterdir())]
    return [(algo_dir.name, f) for algo_dir in sorted(p for p in base.iterdir() if p.is_dir())
            for f in sorted(algo_dir.iterdir())]


def _rows(root: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind, base, stale in _places(root):
        if not base.is_dir():
            continue
        for algo, f in _entries(kind, base):
            if not f.is_file():
                continue
            st = f.stat()
            # engine records are written as <algo>-<hex>.<pid>.partial, the other kinds as .<name>...partial
            partial = f.name.startswith(".") or (kind == "engine" and f.name.endswith(".partial"))
            name = f.name.split(".")[0] if not partial else f.name
            if kind == "engine":
                name = name.partition("-")[2]
            if partial:
                content = "incomplete"
            elif kind != "blob":
                content = "stale" if stale else kind  # stale: made by other code, never read
            else:
                content = _content(f, st)
            rows.append({
                "kind": "partial" if partial else kind,
                "digest": None if partial else f"{algo}:{name}",
                "size": st.st_size,
                "content": content,
                "stale": stale and not partial,
                "last_used": datetime.fromtimestamp(max(st.st_atime, st.st_mtime), tz=timezone.utc),
                "modified": datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
                "path": str(f),
            })
    return rows


def _remove_stale_folders(root: Path) -> None:
    """Remove the folders of other formats that pruning emptied (one still holding a fresh ``.partial``, being
    written by a process running other code, stays until a later prune)."""
    for _, base, stale in _places(root):
        if stale:
            for folder in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True) + [base]:
                try:
                    folder.rmdir()
                except OSError:
                    pass


def list_cache(root: Path | None = None) -> list[dict[str, Any]]:
    """Every file in the cache: ``kind`` (blob, scan, frames, engine, partial), ``digest`` (an engine record's:
    the image ID), ``size``, ``content`` (``stale`` for scans, frames and engine records of other code),
    ``stale``, times, ``path``."""
    return _rows(root or cache_dir())


def prune_cache(older_than: float | timedelta | str | None = None, keep: int | str | None = None, *,
                root: Path | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Remove cache entries; return the rows removed (or that would be, with ``dry_run``).

    ``older_than`` removes entries not used for that long; ``keep`` then removes the least recently used
    until at most that many bytes remain. With neither, everything goes (it is only a cache). Stale
    ``.partial`` files, and scans, frames and engine records made by other code (``stale``), are always
    removed. Both are checked before anything is read or removed.
    """
    age_limit = parse_age(older_than) if older_than is not None else None
    budget = _budget(keep) if keep is not None else None
    root = root or cache_dir()
    rows = _rows(root)
    now = time.time()
    doomed: list[dict[str, Any]] = []
    alive: list[dict[str, Any]] = []
    for row in rows:
        age = now - row["last_used"].timestamp()
        if row["kind"] == "partial":
            (doomed if age > _PARTIAL_STALE else alive).append(row)
        elif row["stale"]:
            doomed.append(row)
        elif age_limit is None and budget is None:
            doomed.append(row)
        elif age_limit is not None and age > age_limit:
            doomed.append(row)
        else:
            alive.append(row)
    if budget is not None:
        total = sum(r["size"] for r in alive if r["kind"] != "partial")
        for row in sorted((r for r in alive if r["kind"] != "partial"), key=lambda r: r["last_used"]):
            if total <= budget:
                break
            doomed.append(row)
            total -= row["size"]
    if not dry_run:
        for row in doomed:
            Path(row["path"]).unlink(missing_ok=True)
        _remove_stale_folders(root)
    return doomed
