"""Content digests: parsing ``algo:hex`` strings and verifying streams while they are read."""

from __future__ import annotations

import hashlib
import re
from typing import Any, BinaryIO

from .errors import DigestMismatch, IntegrityError, SizeMismatch

__all__ = ["parse_digest", "hasher_for", "VerifiedReader", "HashAside", "digest_bytes", "verify_bytes"]

_ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]+$")


def parse_digest(digest: str) -> tuple[str, str]:
    """Split ``sha256:abc...`` into algorithm and hex, checking both (OCI descriptor rules)."""
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo not in _ALGORITHMS:
        raise IntegrityError(f"unsupported or malformed digest {digest!r}", digest=digest,
                             hint="digests look like sha256:<64 hex digits> or sha512:<128 hex digits>")
    if len(hexpart) != _ALGORITHMS[algo] or not _HEX.match(hexpart):
        raise IntegrityError(f"malformed digest {digest!r}: expected {_ALGORITHMS[algo]} lowercase hex digits",
                             digest=digest)
    return algo, hexpart


def hasher_for(digest: str) -> "hashlib._Hash":
    """A fresh hash object of the digest's algorithm."""
    return hashlib.new(parse_digest(digest)[0])


def digest_bytes(data: bytes, algo: str = "sha256") -> str:
    """The ``algo:hex`` digest of ``data``."""
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


def verify_bytes(data: bytes, digest: str, size: int | None = None, *, what: str = "blob") -> bytes:
    """Return ``data`` if it matches ``digest`` (and ``size``), else raise naming ``what``."""
    if size is not None and size >= 0 and len(data) != size:
        raise SizeMismatch(f"{what} {digest}: got {len(data)} bytes, its descriptor says {size}",
                           digest=digest, expected=size, actual=len(data),
                           hint="the source is corrupt or was changed after the manifest was written")
    algo, _ = parse_digest(digest)
    actual = digest_bytes(data, algo)
    if actual != digest:
        raise DigestMismatch(f"{what} {digest} hashes to {actual}", digest=digest, actual=actual,
                             hint="the source is corrupt or was tampered with; nothing was used")
    return data


class HashAside:
    """A thread that hashes for others: ``update(hasher, data)`` queues the work (a few chunks ahead at most),
    ``sync()`` waits until everything queued is hashed, ``close()`` finishes the queue and ends the thread.
    After ``close`` an update is hashed at once, in the caller's thread, so nothing is ever lost or reordered.
    hashlib releases the GIL on large buffers: the hashing overlaps the caller's own work."""

    DEPTH = 8

    def __init__(self) -> None:
        import queue
        import threading

        self._queue: "queue.Queue[tuple[Any, Any] | None]" = queue.Queue(self.DEPTH)
        self._lock = threading.Lock()  # closing, against an update between its check and its put
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ocilens-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        get = self._queue.get
        while (item := get()) is not None:
            hasher, data = item
            if hasher is None:
                data.set()  # a sync: everything before it is hashed
            else:
                hasher.update(data)

    def update(self, hasher: "hashlib._Hash", data: bytes | memoryview) -> None:
        """``hasher.update(data)``, in the hashing thread (in order with every other update)."""
        with self._lock:
            if not self._closed:
                self._queue.put((hasher, data))
                return
        hasher.update(data)

    def sync(self) -> None:
        """Wait until every update queued so far is done."""
        import threading

        done = threading.Event()
        with self._lock:
            if self._closed:
                return
            self._queue.put((None, done))
        done.wait()

    def close(self) -> None:
        """Hash what is queued, then end the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()


class VerifiedReader:
    """A read-only stream that hashes what passes through and checks digest and size at the end.

    The check runs when the underlying stream reports EOF; reading past ``size`` bytes is an error
    at once, so a lying source cannot make the reader consume unbounded data.
    """

    def __init__(self, raw: BinaryIO, digest: str, size: int | None, *, what: str = "blob",
                 close_raw: bool = True) -> None:
        self._raw = raw
        self._digest = digest
        self._hash = hasher_for(digest)
        self._size = size if size is not None and size >= 0 else None
        self._what = what
        self._seen = 0
        self._done = False
        self._close_raw = close_raw
        self._failure: BaseException | None = None  # re-raised on every later read
        self._aside: "HashAside | None" = None
        self.verified = False

    def hash_aside(self, aside: "HashAside") -> None:
        """Hash in ``aside``'s thread from now on (the reading thread then only reads); the digest is still
        checked when the end is read, once ``aside`` has caught up."""
        self._aside = aside

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._failure is not None:
            raise self._failure
        if self._done:
            return b""
        if n is None or n < 0:
            chunks = []
            while True:
                chunk = self._raw.read(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                self._account(chunk)
            data = b"".join(chunks)
            self._finish()
            return data
        data = self._raw.read(n)
        if data:
            self._account(data)
        else:
            self._finish()
        return data

    def readinto(self, buf: memoryview | bytearray) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def _account(self, data: bytes) -> None:
        self._seen += len(data)
        if self._size is not None and self._seen > self._size:
            self._done = True
            self._failure = SizeMismatch(f"{self._what} {self._digest} is longer than its descriptor's {self._size} bytes",
                               digest=self._digest, expected=self._size, actual=self._seen)
            raise self._failure
        if self._aside is not None:
            self._aside.update(self._hash, data)
        else:
            self._hash.update(data)

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._size is not None and self._seen != self._size:
            self._failure = SizeMismatch(
                f"{self._what} {self._digest}: got {self._seen} bytes, its descriptor says {self._size}",
                digest=self._digest, expected=self._size, actual=self._seen,
                hint="the blob is truncated or the descriptor is wrong")
            raise self._failure
        if self._aside is not None:
            self._aside.sync()
        algo = self._digest.partition(":")[0]
        actual = f"{algo}:{self._hash.hexdigest()}"
        if actual != self._digest:
            self._failure = DigestMismatch(f"{self._what} {self._digest} hashes to {actual}", digest=self._digest,
                                           actual=actual, hint="the source is corrupt or was tampered with")
            raise self._failure
        self.verified = True

    def drain(self) -> None:
        """Read and verify whatever is left (a tar's zero padding after end-of-archive)."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        if self._close_raw:
            self._raw.close()

    def __enter__(self) -> "VerifiedReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
