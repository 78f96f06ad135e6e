"""One HTTP/1.0 GET over an engine's unix socket, for the export's body: megabytes a read, at C speed.

An export is hundreds of megabytes. Asked in HTTP/1.1, Docker and Podman (Go's ``net/http``) send it chunked, in
32 KiB chunks, and httpx hands each one through h11's parser: measured, that Python work held the interpreter
for about 0.3 s of a 543 MB export, on the thread that also feeds the scans. Asked in HTTP/1.0, the server
sends the body as it is and closes the connection at its end, so the body is read straight off the socket
into 1 MiB buffers (``BufferedReader.read`` reads into its result, the GIL released). The end is the tar's own
end marker, which ``ExportStream`` checks. Every other request, and every engine reached over TCP, goes
through httpx (``EngineClient``).
"""

from __future__ import annotations

import http.client
import socket
from typing import BinaryIO, Callable, Iterator, Mapping

__all__ = ["UnixResponse", "unix_get"]

_MAX_HEAD = 64 * 1024


class UnixResponse:
    """The status and headers of an answer, and its body as it comes off the socket (``iter_raw``)."""

    def __init__(self, sock: socket.socket, file: BinaryIO, status: int, headers: http.client.HTTPMessage) -> None:
        self._sock = sock
        self._file = file
        self.status_code = status
        self.headers = headers

    def iter_raw(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The body in pieces of ``size`` bytes (the last shorter), until the server closes the connection.
        A read that waits longer than the socket's timeout raises ``TimeoutError``; a broken one ``OSError``."""
        read = self._file.read
        while chunk := read(size):
            yield chunk

    def read_some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body (an error answer's text; a body that breaks off loses detail)."""
        try:
            return self._file.read(limit)
        except OSError:
            return b""

    def close(self) -> None:
        """Drop the connection (an unfinished export is abandoned: the engine sees the socket close)."""
        try:
            self._file.close()
        finally:
            self._sock.close()


def unix_get(path: str, target: str, headers: Mapping[str, str], *, connect_timeout: float,
             read_timeout: float | None, sent: Callable[[], None] | None = None) -> UnixResponse:
    """``GET target`` in HTTP/1.0 on the unix socket at ``path``; returns once the status and headers are in,
    calling ``sent()`` while it waits for them. Connection failures raise the ``OSError`` (``connect_failure``
    types it), a garbled answer ``http.client.HTTPException``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(connect_timeout)
        sock.connect(path)
        sock.settimeout(read_timeout)
        lines = [f"GET {target} HTTP/1.0", "Host: localhost", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        sock.sendall("\r\n".join(lines).encode("latin-1"))
        if sent is not None:
            sent()
        file = sock.makefile("rb")
        status = _status(file.readline(_MAX_HEAD))
        message = http.client.parse_headers(file)
    except BaseException:
        sock.close()
        raise
    return UnixResponse(sock, file, status, message)


def _status(line: bytes) -> int:
    """The code of an ``HTTP/1.x NNN Reason`` status line."""
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise http.client.BadStatusLine(line.decode("latin-1", "replace").strip() or "(nothing: the connection closed)")
    return int(parts[1])
