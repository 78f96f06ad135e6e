"""Layer decoding: gzip, zstd or plain tar, chosen by the blob's magic bytes (media types lie).

Yields the decompressed stream as chunks. Multi-member gzip and multi-frame zstd are read to the end;
a truncated or corrupt stream raises ``LayerDecodeError`` naming the layer.
"""

from __future__ import annotations

import queue
import threading
import zlib
from typing import BinaryIO, Iterator

import zstandard

from .errors import LayerDecodeError

try:  # ISA-L's inflate is 2-3x faster than zlib's; same API.
    from isal import isal_zlib as _zlib  # type: ignore[import-untyped]

    _ZLIB_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _zlib.error)
except ImportError:  # pragma: no cover - isal is a declared dependency
    _zlib = zlib  # type: ignore[assignment]
    _ZLIB_ERRORS = (zlib.error,)

__all__ = ["sniff", "decompressed_chunks", "prefetched", "GZIP", "ZSTD", "TAR", "GZIP_MAGIC", "ZSTD_MAGIC"]

GZIP, ZSTD, TAR = "gzip", "zstd", "tar"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_SIZE = 1 << 20
OUT_SIZE = 1 << 20
ZSTD_SLICE = 1 << 15
GZIP_SLICE = 1 << 14  # a mark every 16 KiB of compressed input: a file's download cost is priced that finely


def sniff(head: bytes) -> str:
    """The compression of a stream from its first bytes (``GZIP``, ``ZSTD``, else ``TAR``)."""
    if head.startswith(GZIP_MAGIC):
        return GZIP
    if head.startswith(ZSTD_MAGIC):
        return ZSTD
    return TAR


def decompressed_chunks(raw: BinaryIO, *, what: str, digest: str | None = None, layer: int | None = None,
                        on_read=None, marks: list[tuple[int, int]] | None = None) -> tuple[str, Iterator[bytes]]:
    """Sniff ``raw`` and return ``(format, chunks)`` of its decompressed bytes.

    ``on_read(n)`` is called with the count of compressed bytes consumed, for progress. A compressed stream
    appends to ``marks``, as each chunk comes out, ``(uncompressed bytes out, compressed bytes consumed)``
    so far: where the decompressor's input stood, which prices each file's bytes in download.
    """
    first = raw.read(READ_SIZE)
    fmt = sniff(first)
    if fmt == GZIP:
        gen = _gunzip(raw, first, what, digest, layer, on_read, marks)
    elif fmt == ZSTD:
        gen = _unzstd(raw, first, what, digest, layer, on_read, marks)
    else:
        gen = _plain(raw, first, on_read)
    return fmt, gen


def _decode_error(what: str, digest: str | None, layer: int | None, detail: str) -> LayerDecodeError:
    return LayerDecodeError(f"{what} is not a readable layer stream: {detail}", digest=digest, layer=layer,
                            hint="the blob is truncated or corrupt; re-pull it or rebuild the image")


def _plain(raw: BinaryIO, first: bytes, on_read) -> Iterator[bytes]:
    data = first
    while data:
        if on_read:
            on_read(len(data))
        yield data
        data = raw.read(READ_SIZE)


def _gunzip(raw: BinaryIO, first: bytes, what: str, digest: str | None, layer: int | None,
            on_read, marks: list[tuple[int, int]] | None = None) -> Iterator[bytes]:
    """Every gzip member to the end; zero padding after the last member is tolerated (as gzip -dc).

    Input goes in slices of ``GZIP_SLICE``, each leaving a mark, and output comes out in chunks of about
    ``OUT_SIZE``."""
    d = _zlib.decompressobj(31)
    data = first
    member_started = True
    pos, nread = 0, len(first)  # compressed offset of data[0], bytes read
    ready: list[bytes] = []  # output not yet handed out
    ready_size = out_total = 0
    try:
        while True:
            if not data:
                data = raw.read(READ_SIZE)
                if not data:
                    break
                pos, nread = nread, nread + len(data)
            if on_read:
                on_read(len(data))
            view = memoryview(data)
            while view:
                if not member_started:
                    if not bytes(view).strip(b"\x00"):
                        break  # trailing zero padding
                    if not bytes(view[:2]).startswith(GZIP_MAGIC[: len(view)]):
                        raise _decode_error(what, digest, layer, "garbage after the last gzip member")
                    d = _zlib.decompressobj(31)
                    member_started = True
                piece = view[:GZIP_SLICE]
                out = d.decompress(piece, OUT_SIZE)
                while True:
                    if out:
                        ready.append(out)
                        ready_size += len(out)
                        out_total += len(out)
                    if not d.unconsumed_tail:
                        break
                    if ready_size >= OUT_SIZE:
                        yield b"".join(ready)
                        ready, ready_size = [], 0
                    out = d.decompress(d.unconsumed_tail, OUT_SIZE)
                used = len(piece) - (len(d.unused_data) if d.eof else 0)
                pos += used
                view = view[used:]
                if marks is not None:
                    marks.append((out_total, pos))
                if d.eof:
                    member_started = False
                if ready_size >= OUT_SIZE:
                    yield b"".join(ready)
                    ready, ready_size = [], 0
            data = b""
        if ready:
            yield b"".join(ready)
    except _ZLIB_ERRORS as exc:
        raise _decode_error(what, digest, layer, f"gzip: {exc}") from None
    if member_started:
        raise _decode_error(what, digest, layer, "gzip stream ends early (truncated)")


def _unzstd(raw: BinaryIO, first: bytes, what: str, digest: str | None, layer: int | None,
            on_read, marks: list[tuple[int, int]] | None = None) -> Iterator[bytes]:
    """Every zstd frame to the end (skippable frames included).

    Input goes in slices so that one call's output (unbounded in zstandard's API) stays small.
    """
    d = zstandard.ZstdDecompressor().decompressobj()
    started = False
    consumed, out_total = 0, 0  # compressed bytes consumed, uncompressed bytes out
    pending = memoryview(first)
    ready: list[bytes] = []  # output not yet handed out: chunks of about OUT_SIZE go on
    ready_size = 0
    if on_read:
        on_read(len(first))
    try:
        while True:
            if not pending:
                more = raw.read(READ_SIZE)
                if not more:
                    break
                if on_read:
                    on_read(len(more))
                pending = memoryview(more)
            piece, pending = pending[:ZSTD_SLICE], pending[ZSTD_SLICE:]
            started = True
            out = d.decompress(piece)
            consumed += len(piece) - (len(d.unused_data) if d.eof else 0)
            if out:
                out_total += len(out)
                if marks is not None:
                    marks.append((out_total, consumed))
                ready.append(out)
                ready_size += len(out)
                if ready_size >= OUT_SIZE:
                    yield ready[0] if len(ready) == 1 else b"".join(ready)
                    ready, ready_size = [], 0
            if d.eof:
                rest = d.unused_data
                if rest:
                    pending = memoryview(bytes(rest) + bytes(pending))
                d = zstandard.ZstdDecompressor().decompressobj()
                started = False
        if ready:
            yield b"".join(ready)
    except zstandard.ZstdError as exc:
        raise _decode_error(what, digest, layer, f"zstd: {exc}") from None
    if started:
        raise _decode_error(what, digest, layer, "zstd stream ends early (truncated)")


_DONE = object()


def prefetched(chunks: Iterator[bytes], depth: int = 4) -> Iterator[bytes]:
    """Run ``chunks`` (reading and decompressing, which release the GIL) in a thread of its own, ``depth``
    chunks ahead of the consumer, so decompression overlaps parsing and hashing. Errors re-raise here;
    a consumer that stops early stops the producer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: object = _DONE
        except BaseException as exc:  # handed to the consumer, which re-raises it
            item = exc
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="ocilens-decompress", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
