"""Where layer scans run: in this process (threads), in a local process pool, on any
``concurrent.futures.Executor``, or on a Dask distributed cluster. Each backend yields ``ScanResult``s as
they complete; a task that dies with its worker becomes a failed result, never an exception."""

from __future__ import annotations

import os
import pickle
import re
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence

from ..cpus import usable_cpus
from ..errors import UsageError
from .worker import ScanResult, ScanTask, SourcePool, scan_task, worker_id

__all__ = ["Backend", "backend_for", "is_dask_client"]

# A Dask scheduler address: scheme://anything (tcp, tls, ucx, inproc, ...) or host:port (tcp).
_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://.+|(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}")
_EXECUTORS = "process, thread, or a Dask scheduler address like tcp://host:8786"
BytesFactory = Callable[[ScanTask], "Callable[[int], None] | None"]


def is_dask_client(obj: Any) -> bool:
    """True for a ``distributed.Client`` (checked without importing Dask when it is not in use)."""
    mod = type(obj).__module__ or ""
    if not mod.startswith("distributed"):
        return False
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - an object of that module exists, so the module imports
        return False
    return isinstance(obj, Client)


def _failed(task: ScanTask, exc: BaseException) -> ScanResult:
    return ScanResult(task.digest, "failed", None, error_type=type(exc).__name__, error=str(exc) or repr(exc),
                      worker="?")


class Backend:
    """Runs scan tasks. ``local`` backends share this machine's caches (tasks name the cache root)."""

    name = "?"
    local = True

    def run(self, tasks: Sequence[ScanTask], on_bytes: BytesFactory | None = None) -> Iterator[ScanResult]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def check_picklable(self, options: dict[str, Any]) -> None:
        try:
            pickle.dumps(options)
        except Exception as exc:
            raise UsageError(f"the registry options cannot be sent to {self.name} workers ({exc})",
                             hint="pass picklable options (auth=(user, password), insecure=...), or "
                                  "executor='thread' to keep every scan in this process") from None


class InlineBackend(Backend):
    """In the calling thread, one after another (one task, or ``workers=1``)."""

    name = "inline"

    def __init__(self) -> None:
        self.pool = SourcePool()

    def check_picklable(self, options: dict[str, Any]) -> None:
        pass

    def run(self, tasks: Sequence[ScanTask], on_bytes: BytesFactory | None = None) -> Iterator[ScanResult]:
        for task in tasks:
            yield scan_task(task, self.pool, on_bytes(task) if on_bytes else None)

    def close(self) -> None:
        self.pool.close()


class ThreadBackend(Backend):
    """A thread pool in this process; sources are shared between threads, bytes progress is reported."""

    name = "thread"

    def __init__(self, workers: int | None) -> None:
        self.workers = workers
        self.pool = SourcePool()

    def check_picklable(self, options: dict[str, Any]) -> None:
        pass

    def run(self, tasks: Sequence[ScanTask], on_bytes: BytesFactory | None = None) -> Iterator[ScanResult]:
        n = self.workers or min(len(tasks), max(4, 2 * usable_cpus()))
        with ThreadPoolExecutor(max_workers=max(1, n), thread_name_prefix="ocilens-fleet") as ex:
            futures = {ex.submit(scan_task, t, self.pool, on_bytes(t) if on_bytes else None): t for t in tasks}
            yield from _completed(futures)

    def close(self) -> None:
        self.pool.close()


def _completed(futures: dict[Future, ScanTask]) -> Iterator[ScanResult]:
    try:
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # a worker process that died, an unpicklable result
                yield _failed(futures[future], exc)
    finally:
        for future in futures:
            future.cancel()


def _warm() -> int:
    """Nothing: submitted to each new worker process so that it starts (and imports ocilens) at once."""
    return os.getpid()


class ProcessBackend(Backend):
    """A local process pool (``spawn``: safe with the threads the caller runs, and each worker sees the
    environment, caches and credentials of the moment the audit starts).

    ``start()`` launches the workers ahead of the tasks, so that their start-up (an interpreter importing
    ocilens) overlaps the resolution of the manifests in the driver.
    """

    name = "process"

    def __init__(self, workers: int | None) -> None:
        self.workers = workers or usable_cpus()
        self._ex: ProcessPoolExecutor | None = None
        self._used = False

    def start(self) -> None:
        if self._ex is None:
            import multiprocessing

            self._ex = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
            for _ in range(self.workers):
                self._ex.submit(_warm)

    def run(self, tasks: Sequence[ScanTask], on_bytes: BytesFactory | None = None) -> Iterator[ScanResult]:
        if not tasks:
            return
        self.start()
        assert self._ex is not None
        self._used = True
        futures = {self._ex.submit(scan_task, t): t for t in tasks}
        yield from _completed(futures)

    def close(self) -> None:
        if self._ex is not None:
            # Unused (every scan was cached): let the workers finish starting and exit on their own.
            self._ex.shutdown(wait=self._used, cancel_futures=True)
            self._ex = None


class ExecutorBackend(Backend):
    """The caller's own ``concurrent.futures.Executor`` (left running afterwards)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.name = type(executor).__name__
        self.local = True

    def check_picklable(self, options: dict[str, Any]) -> None:
        if not isinstance(self.executor, ThreadPoolExecutor):
            super().check_picklable(options)

    def run(self, tasks: Sequence[ScanTask], on_bytes: BytesFactory | None = None) -> Iterator[ScanResult]:
        futures = {self.executor.submit(scan_task, t): t for t in tasks}
        yield from _completed(futures)


class DaskBackend(Backend):
    """A Dask distributed cluster: one task per distinct layer, keyed by its digest, results gathered here.

    Workers use their own caches (``$OCILENS_CACHE_DIR`` on their machines): a worker that scanned a layer
    before returns its cached scan.
    """

    name = "dask"
    local = False

    def __init__(self, client: Any, *, owned: bool) -> None:
        self.client = client
        self.owned = owned

    def run(self, tasks: Sequence[ScanTask], on_bytes: BytesFactory | None = None) -> Iterator[ScanResult]:
        import uuid

        from distributed import as_completed as dask_completed

        run_id = uuid.uuid4().hex[:8]
        keys = [f"ocilens-scan-{t.digest.partition(':')[2][:16]}-{run_id}-{i}" for i, t in enumerate(tasks)]
        futures = self.client.map(scan_task, list(tasks), key=keys, pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        try:
            for future in dask_completed(futures):
                task = by_key[future.key]
                try:
                    result = future.result()
                except Exception as exc:  # KilledWorker, a worker without ocilens, ...
                    result = _failed(task, exc)
                future.release()
                yield result
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        if self.owned:
            self.owned = False
            self.client.close()

    @property
    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info().get("workers", {}))


def _dask_client(address: str) -> Any:
    """A client of the scheduler at ``address``; anything that is not an address (a typo such as
    "threads") is a UsageError naming the accepted values, not Dask's ValueError."""
    if not _ADDRESS.fullmatch(address):
        raise UsageError(f"executor must be {_EXECUTORS}, not {address!r}",
                         hint="the number of local workers is workers= (--workers on the command line)")
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(f"executor={address!r} names a Dask scheduler, but Dask is not installed",
                         hint="pip install 'ocilens[dask]'") from None
    try:
        return Client(address, timeout=30)
    except ValueError as exc:
        raise UsageError(f"executor {address!r} is not a Dask scheduler address ({exc})",
                         hint=f"executor must be {_EXECUTORS}") from None
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot connect to the Dask scheduler at {address}: {exc}",
                         hint="is the scheduler running (dask scheduler), and is the address right?") from None


def backend_for(executor: Any, workers: int | None) -> Backend:
    """The backend for ``audit(executor=...)``: None/"process", "thread", "inline", an Executor, a
    ``distributed.Client``, or a scheduler address (``tcp://host:8786``). ``workers=1`` runs in this thread."""
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be at least 1, not {workers}")
    if is_dask_client(executor):
        return DaskBackend(executor, owned=False)
    if isinstance(executor, Executor):
        return ExecutorBackend(executor)
    if executor is None or executor == "process":
        return InlineBackend() if workers == 1 else ProcessBackend(workers)
    if executor == "thread":
        return InlineBackend() if workers == 1 else ThreadBackend(workers)
    if executor in ("inline", "serial"):
        return InlineBackend()
    if isinstance(executor, str) and executor:
        return DaskBackend(_dask_client(executor), owned=True)
    raise UsageError(f"executor must be None, 'process', 'thread', a concurrent.futures.Executor, a "
                     f"dask.distributed.Client or a scheduler address, not {executor!r}")


__all__ += ["InlineBackend", "ThreadBackend", "ProcessBackend", "ExecutorBackend", "DaskBackend", "worker_id"]
