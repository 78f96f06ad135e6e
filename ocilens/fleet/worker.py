"""The unit of work of a fleet audit: one layer scan, runnable in a thread, a process or on a Dask worker.

A task carries no open file or connection, only what any worker can act on: the layer's descriptor, the
image references that hold it (tried in turn), the registry options, and where the caches live. A
worker opens the source itself (kept in a small per-process pool, so a worker scanning many layers of
one repository authenticates once), checks its scan cache, scans, caches the scan, and returns it with
what happened. A failure is part of the result, never an exception: one bad layer never stops a fleet.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..cache import BlobStore, ScanCache
from ..errors import IntegrityError, LayerDecodeError, OcilensError
from ..manifest import Descriptor
from ..pipeline import known_scan, scan_layer_cached
from ..platform import Platform
from ..scan import LayerScan
from ..sources import Source, open_source, options_for

__all__ = ["ScanTask", "ScanResult", "SourcePool", "scan_task", "origin_of", "MAX_ATTEMPTS"]

#: At most this many image references are tried for one layer before its scan is reported as failed.
MAX_ATTEMPTS = 3
_LOCAL_TRANSPORTS = ("oci:", "oci-archive:", "docker-archive:")


def origin_of(ref: str) -> tuple[str, str]:
    """``(origin, source key)`` of a reference: the registry (or local file) its blobs come from, and the
    unit a source can be shared by (a registry repository serves every tag's blobs)."""
    if ref.startswith(_LOCAL_TRANSPORTS) or ref.startswith(("/", "./", "../", "~")):
        transport, _, rest = ref.partition(":")
        from ..sources import split_path_selector

        path = split_path_selector(rest)[0] if ref.startswith(_LOCAL_TRANSPORTS) else ref
        if transport == "docker-archive":
            return f"file:{path}", ref  # a docker archive maps digests to members per image: one source each
        return f"file:{path}", f"{transport}:{path}"
    from ..reference import parse_reference

    try:
        parsed = parse_reference(ref[len("docker://"):] if ref.startswith("docker://") else ref)
    except OcilensError:
        return ref, ref
    return parsed.registry, parsed.name


@dataclass(frozen=True)
class ScanTask:
    """Scan the layer ``desc`` (layer ``index`` of the first image in ``locators``)."""

    desc: Descriptor
    index: int
    locators: tuple[str, ...]
    platform: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    cache_root: str | None = None  # None: the worker's own default cache (a remote Dask worker's)
    use_cache: bool = True

    @property
    def digest(self) -> str:
        return self.desc.digest


@dataclass
class ScanResult:
    """What a worker did with a task: ``status`` is ``scanned``, ``cached`` (found in the worker's scan
    cache) or ``failed`` (``error_type`` and ``error`` say why; ``scan`` is None)."""

    digest: str
    status: str
    scan: LayerScan | None = None
    error_type: str | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""
    locator: str | None = None
    attempts: int = 0


class SourcePool:
    """Open sources by source key, least recently used closed beyond ``size``; thread-safe."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._sources: OrderedDict[tuple[Any, ...], Source] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ref: str, task: ScanTask) -> Source:
        key = (origin_of(ref)[1], task.cache_root, task.platform, repr(sorted(task.options.items())))
        with self._lock:
            src = self._sources.get(key)
            if src is not None:
                self._sources.move_to_end(key)
                return src
        options = dict(task.options)
        if task.cache_root is not None and "cache" not in options:
            options["cache"] = BlobStore(Path(task.cache_root))
        src = open_source(ref, **options_for(ref, options))
        try:
            if src.transport == "docker-archive":
                src.resolve(Platform.parse(task.platform) if task.platform else None)  # maps digests to members
        except BaseException:
            src.close()
            raise
        evicted: list[Source] = []
        with self._lock:
            if key in self._sources:  # another thread opened it meanwhile: keep one
                evicted.append(src)
                src = self._sources[key]
            else:
                self._sources[key] = src
                while len(self._sources) > self.size:
                    evicted.append(self._sources.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return src

    def discard(self, ref: str, task: ScanTask) -> None:
        key = (origin_of(ref)[1], task.cache_root, task.platform, repr(sorted(task.options.items())))
        with self._lock:
            src = self._sources.pop(key, None)
        if src is not None:
            src.close()

    def close(self) -> None:
        with self._lock:
            sources, self._sources = list(self._sources.values()), OrderedDict()
        for src in sources:
            src.close()


_PROCESS_POOL = SourcePool()  # for process and Dask workers: lives as long as the worker process


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _candidates(locators: tuple[str, ...]) -> list[str]:
    """The references to try: one per source key, at most MAX_ATTEMPTS, first come first."""
    seen: set[str] = set()
    out: list[str] = []
    for ref in locators:
        key = origin_of(ref)[1]
        if key not in seen:
            seen.add(key)
            out.append(ref)
    return out[:MAX_ATTEMPTS]


def scan_task(task: ScanTask, pool: SourcePool | None = None,
              on_bytes: Callable[[int], None] | None = None) -> ScanResult:
    """Run one layer scan (see the module docstring). Never raises for a bad image, only returns."""
    start = time.perf_counter()
    me = worker_id()
    pool = pool if pool is not None else _PROCESS_POOL
    desc = task.desc
    cache: ScanCache | None = None
    if task.use_cache:
        cache = ScanCache(Path(task.cache_root)) if task.cache_root else ScanCache()
    first: BaseException | None = None
    bad_origins: set[str] = set()
    attempts = 0
    for ref in _candidates(task.locators):
        origin = origin_of(ref)[0]
        if origin in bad_origins:
            continue  # the same bytes again: a corrupt blob is corrupt in every repository of that registry
        attempts += 1
        try:
            source = pool.get(ref, task)
            cached = known_scan(source, desc, cache)
            if cached is not None:  # (another worker's, since the driver looked): no scan attempted
                return ScanResult(desc.digest, "cached", cached, seconds=time.perf_counter() - start, worker=me,
                                  locator=ref, attempts=attempts - 1)
            scan = scan_layer_cached(source, desc, task.index, cache, on_bytes)
        except (IntegrityError, LayerDecodeError) as exc:
            first = first or exc
            bad_origins.add(origin)
            continue
        except OcilensError as exc:  # auth, not found, unreachable: another repository may serve it
            first = first or exc
            pool.discard(ref, task)
            continue
        except Exception as exc:  # noqa: BLE001 - a bug or an OS error must not abort the fleet either
            first = first or exc
            break
        return ScanResult(desc.digest, "scanned", scan, seconds=time.perf_counter() - start, worker=me,
                          locator=ref, attempts=attempts)
    err = first or RuntimeError("no reference to read the layer from")
    return ScanResult(desc.digest, "failed", None, error_type=type(err).__name__, error=str(err),
                      seconds=time.perf_counter() - start, worker=me, attempts=attempts)
