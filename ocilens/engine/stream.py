"""An engine's export (``GET /images/{name}/get``) as a read-once binary file that fails loudly when cut short."""

from __future__ import annotations

import io
from typing import Callable, Iterator

import httpx

from ..errors import EngineExportInterrupted
from .endpoint import Endpoint
from .failures import export_interrupted, in_stream_error

__all__ = ["ExportStream"]

_TAR_END = 1024          # a tar archive ends with two 512-byte zero blocks (Go's archive/tar writes them)
_TAIL = 8192             # kept from the end of the stream: the end marker, or an error the engine appended
_ZEROS = bytes(_TAR_END)


class ExportStream(io.BufferedIOBase):
    """The export's bytes, read once from the open response: ``read(n)`` returns ``n`` bytes until the end,
    ``read1(n)`` what has arrived. A connection that drops, a read that times out, or a stream that ends
    without the tar end marker (docker writes its error into the stream when it fails midway) raises
    :class:`~ocilens.errors.EngineExportInterrupted`. Close it (or use ``with``) to free the connection;
    the client it came from must stay open while it is read."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None], endpoint: Endpoint, image: str, *,
                 reference: str | None = None) -> None:
        super().__init__()
        self._close = close
        self._chunks = chunks
        self._endpoint = endpoint
        self._image = image
        self._reference = reference
        self._buf = memoryview(b"")
        self._tail = b""
        self._done = False
        self.received = 0  # bytes that came off the connection so far

    # -- io protocol

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        """``size`` bytes (fewer only at the end); everything left when ``size`` is None or negative."""
        self._check_open()
        if size is None or size < 0:
            parts = [bytes(self._buf)]
            self._buf = memoryview(b"")
            while self._fill():
                parts.append(bytes(self._buf))
                self._buf = memoryview(b"")
            return b"".join(parts)
        if not self._buf and self._fill() and len(self._buf) == size:
            out, self._buf = self._buf.obj, memoryview(b"")  # a whole chunk, as it came: no copy
            return out  # type: ignore[return-value]
        if len(self._buf) >= size:
            out = bytes(self._buf[:size])
            self._buf = self._buf[size:]
            return out
        parts, need = [], size
        while need > 0 and (self._buf or self._fill()):
            piece = self._buf[:need]
            parts.append(bytes(piece))
            self._buf = self._buf[len(piece):]
            need -= len(piece)
        return b"".join(parts)

    def read1(self, size: int = -1) -> bytes:
        """At most ``size`` bytes of what has arrived, waiting for more only when nothing is buffered."""
        self._check_open()
        if not self._buf and not self._fill():
            return b""
        n = len(self._buf) if size is None or size < 0 else min(size, len(self._buf))
        out = bytes(self._buf[:n])
        self._buf = self._buf[n:]
        return out

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``b`` as far as the stream goes (all of it unless the end comes first)."""
        self._check_open()
        view = memoryview(b).cast("B")
        filled = 0
        while filled < len(view) and (self._buf or self._fill()):
            n = min(len(view) - filled, len(self._buf))
            view[filled:filled + n] = self._buf[:n]
            self._buf = self._buf[n:]
            filled += n
        return filled

    def readinto1(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``b`` from what has arrived, waiting for more only when nothing is buffered."""
        self._check_open()
        if not self._buf and not self._fill():
            return 0
        view = memoryview(b).cast("B")
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        """Release the connection (an unfinished export is abandoned: the engine sees the socket close)."""
        if not self.closed:
            try:
                self._close()
            finally:
                super().close()

    # -- internals

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("read from a closed export stream")

    def _fill(self) -> bool:
        """Take the next chunk off the connection into the buffer; False at a complete end."""
        if self._done:
            return False
        try:
            chunk = next(self._chunks, None)
            while chunk is not None and not chunk:
                chunk = next(self._chunks, None)
        except (httpx.TimeoutException, TimeoutError) as exc:
            self._done = True
            raise self._interrupted("the engine stopped sending (read timeout)") from exc
        except (httpx.TransportError, httpx.StreamError, OSError) as exc:
            self._done = True
            raise self._interrupted(f"the connection broke before the archive's end ({exc or type(exc).__name__})"
                                    ) from exc
        if chunk is None:
            self._done = True
            self._check_end()
            return False
        self.received += len(chunk)
        self._tail = (self._tail + chunk)[-_TAIL:] if len(chunk) < _TAIL else chunk[-_TAIL:]
        self._buf = memoryview(chunk)
        return True

    def _check_end(self) -> None:
        """The stream ended cleanly: it must end as a tar archive does, else the engine gave up midway."""
        if self.received >= _TAR_END and self._tail[-_TAR_END:] == _ZEROS:
            return
        said = in_stream_error(self._tail)
        why = f"the engine reported: {said}" if said else "the stream ended before the archive's end marker"
        raise self._interrupted(why)

    def _interrupted(self, why: str) -> EngineExportInterrupted:
        return export_interrupted(self._endpoint, self._image, self.received, why, reference=self._reference)
