"""A blob's bytes from the registry as a stream that survives broken connections by resuming with Range."""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterator

import httpx

from ..errors import RegistryError, RegistryUnavailable, SizeMismatch
from .session import BROKEN_CONNECTION, RegistrySession

__all__ = ["ResumableBody", "Progress"]

Progress = Callable[..., None]


class ResumableBody:
    """The raw (unverified) bytes of ``GET url``, resumed with ``Range: bytes=N-`` when the connection breaks.

    At most ``session.retry.resumes`` resumptions per download. A server that ignores ``Range`` and answers
    200 is handled by skipping the bytes already delivered. A body that ends early without a broken
    connection is resumed too; the registry's 416 then proves the blob shorter than its descriptor.
    Verification is the caller's job (wrap it in a ``VerifiedReader``).
    """

    def __init__(self, session: RegistrySession, url: str, *, digest: str, size: int | None,
                 scopes: tuple[str, ...], reference: str | None = None,
                 progress: Progress | None = None) -> None:
        self._session = session
        self._url = url
        self._digest = digest
        self._size = size if size is not None and size >= 0 else None
        self._scopes = scopes
        self._reference = reference
        self._progress = progress
        self._resp: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._parts: deque[bytes] = deque()  # received, not yet read: kept as chunks, joined once per read
        self._buffered = 0
        self._received = 0
        self._skip = 0
        self._resumes = 0
        self._eof = False
        self.closed = False

    @property
    def resumes(self) -> int:
        """How many times the download was resumed after a broken connection."""
        return self._resumes

    def readable(self) -> bool:
        return True

    def _what(self) -> str:
        return f"blob {self._digest}"

    def start(self) -> "ResumableBody":
        """Send the GET now, so that a missing blob or refused credentials raise before the first read."""
        if self._chunks is None and not self._eof:
            self._open()
        return self

    def _open(self) -> None:
        """Start (or resume) the GET from the first byte not yet received."""
        headers = {"Accept-Encoding": "identity"}
        if self._received:
            headers["Range"] = f"bytes={self._received}-"
        resp = self._session.request("GET", self._url, headers=headers, scopes=self._scopes, what=self._what(),
                                     reference=self._reference, accept=frozenset({416}))
        if resp.status_code == 416:
            resp.close()
            raise SizeMismatch(f"blob {self._digest} ends after {self._received} bytes, its descriptor says "
                               f"{self._size}", reference=self._reference, digest=self._digest,
                               expected=self._size, actual=self._received,
                               hint="the registry holds a different blob than the manifest describes")
        self._skip = 0
        if self._received:
            if resp.status_code == 206:
                start = resp.headers.get("content-range", "").removeprefix("bytes ").split("-", 1)[0]
                if start != str(self._received):
                    resp.close()
                    raise RegistryError(f"blob {self._digest}: asked to resume at byte {self._received}, the "
                                        f"registry answered Content-Range {resp.headers.get('content-range')!r}",
                                        reference=self._reference, url=str(resp.request.url), status=206)
            else:
                self._skip = self._received  # Range ignored: the whole blob again; drop what we have
        self._resp = resp
        if resp.is_stream_consumed:  # a transport that hands over bodies already read (mocks, caches)
            self._chunks = iter([resp.content])
        else:
            self._chunks = resp.iter_raw()  # as the network delivers: a cut loses nothing already received

    def _drop_response(self) -> None:
        if self._resp is not None:
            self._resp.close()
        self._resp = None
        self._chunks = None

    def _resume(self, cause: BaseException | None) -> None:
        """Count a resumption (bounded), wait the backoff, and let the next read reopen with Range."""
        self._drop_response()
        policy = self._session.retry
        if self._resumes >= policy.resumes:
            why = f" ({cause!r})" if cause is not None else " (the body ended early)"
            raise RegistryUnavailable(
                f"blob {self._digest} of {self._reference}: the download broke {self._resumes + 1} times; "
                f"got {self._received} of {self._size} bytes{why}",
                reference=self._reference, url=self._session.url(self._url),
                hint="the network or the registry is unstable; try again")
        policy.sleep(policy.delay(self._resumes))
        self._resumes += 1

    def _fill(self) -> None:
        """Get the next chunk into the buffer, resuming if the connection broke."""
        if self._chunks is None:
            self._open()
        assert self._chunks is not None
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._drop_response()
            if self._size is not None and self._received < self._size:
                self._resume(None)
            else:
                self._eof = True
            return
        except BROKEN_CONNECTION as exc:
            self._resume(exc)
            return
        if self._skip:
            drop = min(self._skip, len(chunk))
            self._skip -= drop
            chunk = chunk[drop:]
            if not chunk:
                return
        self._received += len(chunk)
        self._parts.append(chunk)
        self._buffered += len(chunk)
        if self._progress is not None:
            self._progress("download", digest=self._digest, done=self._received, total=self._size)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n`` < 0); ``b""`` at the end."""
        if n is None or n < 0:
            while not self._eof:
                self._fill()
            n = self._buffered
        while self._buffered < n and not self._eof:
            self._fill()
        parts = self._parts
        if len(parts) == 1 and len(parts[0]) <= n:  # the network's chunk as it came: no copy
            self._buffered = 0
            return parts.popleft()
        out = []
        want = min(n, self._buffered)
        self._buffered -= want
        while want:
            part = parts.popleft()
            if len(part) > want:
                parts.appendleft(part[want:])
                part = part[:want]
            out.append(part)
            want -= len(part)
        return b"".join(out)

    def close(self) -> None:
        self._drop_response()
        self.closed = True

    def __enter__(self) -> "ResumableBody":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
