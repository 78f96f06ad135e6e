"""An image archive read once, front to back, from a stream that cannot seek: standard input, a FIFO, a pipe,
or a Docker or Podman engine's export.

The archives docker, podman and skopeo write put their index (``manifest.json``, ``index.json``) last, so
nothing says which member is a layer until the stream ends. Each member is therefore handled as it passes:
- small members (JSON: configs, manifests, indexes) are kept in memory;
- a member that looks like a layer (gzip or zstd magic, whatever its size, or a tar's ``ustar`` magic) is
  written into the blob cache under the digest of its bytes and scanned on the way, in the same pass; its scan
  is handed out only for the members that the index then names as layers (``Source.prescanned``: the sources
  ask only for the layers they resolved);
- links between members (docker save links identical layers) are followed.

A member's blob is committed to the cache only once it has been read whole; a stream cut short inside a member
leaves nothing half-written behind and raises ``SourceError`` naming the stream. A stream that ends between
members without tar's end-of-archive block was cut short too: that is recorded (``damage``) and said when a
member the image needs is missing, as for an archive file (``TarStorage``). The members are then served by
path, like the ``Storage`` of a file or a directory, so the docker-archive and OCI-layout sources read them
unchanged.
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO, Callable, Iterator

from ..cache import BlobStore
from ..codec import GZIP, TAR, ZSTD, sniff
from ..errors import LayerDecodeError, OcilensError, SourceError, SourceNotFound
from ..scan import LayerScan, scan_blob
from ..tarstream import REGULAR_TYPES, TarReader, TruncatedTar
from .storage import Storage, link_member, member_path

__all__ = ["StreamStorage", "LayerNotKept", "MEMORY_LIMIT"]

#: Members up to this size that do not look like layers are kept in memory; larger ones go to the blob cache.
MEMORY_LIMIT = 16 << 20
_READ = 1 << 20


class _Tee(io.RawIOBase):
    """A member's bytes as they stream: hashed, counted and written into a blob-cache writer."""

    def __init__(self, member: BinaryIO, sink: Callable[[bytes], None], on_bytes: Callable[[int], None] | None,
                 head: bytes = b"") -> None:
        self._member = member
        self._sink = sink
        self._head = head
        self._on_bytes = on_bytes
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
        else:
            data = self._member.read(_READ if n is None or n < 0 else n)
        if data:
            self.sha.update(data)
            self._sink(data)
            self.size += len(data)
            if self._on_bytes is not None:
                self._on_bytes(len(data))
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(_READ):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha.hexdigest()}"


class StreamStorage(Storage):
    """The members of a tar read once from ``stream`` (see the module docstring); ``stream`` is read to its end
    here, so the object is complete (or raised) when the constructor returns."""

    def __init__(self, stream: BinaryIO, reference: str, *, store: BlobStore | None = None,
                 what: str = "the stream", on_bytes: Callable[[int], None] | None = None,
                 keep_layers: bool = True) -> None:
        self.reference = reference
        self.what = what
        self.store = store if store is not None else BlobStore()
        self._memory: dict[str, bytes] = {}
        self._blobs: dict[str, tuple[str, int]] = {}  # member path -> (digest, size) in the blob store
        self._scans: dict[str, LayerScan] = {}  # member path -> the scan made while it streamed
        self._links: dict[str, str] = {}
        self._heads: dict[str, bytes] = {}  # member path -> its first bytes (its magic), for members not in memory
        self._unkept: set[str] = set()  # layers scanned as they passed but not written (keep_layers=False)
        self.keep_layers = keep_layers
        self._on_bytes = on_bytes
        self._read_all(stream)

    # --- reading the stream -----------------------------------------------------------------------------

    def _read_all(self, stream: BinaryIO) -> None:
        incoming = _Incoming(stream)
        reader = TarReader(iter(incoming))
        count = 0
        self.damage: str | None = None
        try:
            while (h := reader.next()) is not None:
                count += 1
                name = member_path(h.name.decode("utf-8", "surrogateescape"))
                if h.type in REGULAR_TYPES and not (h.type == 0 and h.name.endswith(b"/")):
                    self._take(name, _Member(reader.data_pieces()), h.size)
                elif h.type in _LINK_TYPES:
                    target = link_member(name, h.linkname.decode("utf-8", "surrogateescape"), hard=h.type == 0x31)
                    if target is not None:
                        self._links[name] = target
        except _Cut as cut:
            raise self._truncated(count - 1) from cut.__cause__
        except TruncatedTar as exc:
            if count == 0:
                raise self._unreadable(str(exc), incoming) from None
            if not exc.in_header:
                raise self._truncated(count - 1) from None
            self.damage = f"it ended inside a tar header, after {_members(count)}: it was truncated"
        except LayerDecodeError as exc:  # a header that is no tar header
            if count == 0:
                raise self._unreadable(str(exc), incoming) from None
            self.damage = f"after its {_members(count)} it holds data that is not a tar header: it is damaged"
        if self.damage is None and not reader.end_marker:
            if count == 0:
                raise self._unreadable("empty file", incoming)
            self.damage = f"it ended right after its {_members(count)}, without tar's end-of-archive blocks: it " \
                          "was truncated"
        incoming.drain()
        for name, target in list(self._links.items()):
            self._alias(name, target)

    def _truncated(self, whole: int) -> SourceError:
        """The error for a stream that ended inside a member's data."""
        return SourceError(f"{self.reference}: {self.what} ended inside a member, after {_members(whole)} whole: "
                           "the archive is truncated", reference=self.reference,
                           hint="the export or copy was cut short (nothing half-written was cached); run it again")

    def _unreadable(self, detail: str, incoming: "_Incoming") -> SourceError:
        """The error for a stream with no tar member in it: empty, compressed, or not a tar."""
        where = f"{self.reference}: {self.what}"
        transport = self.reference.partition(":")[0]
        transport = transport if transport in ("docker-archive", "oci-archive") else "docker-archive"
        if incoming.seen == 0:
            return SourceError(f"{where} is empty: no archive came through it", reference=self.reference,
                               hint=f"pipe an archive into it, e.g. docker save IMAGE | ocilens analyze {transport}:-")
        if sniff(incoming.head) != TAR:
            tool = "gzip -dc" if sniff(incoming.head) == GZIP else "zstd -dc"
            return SourceError(f"{where} is a compressed archive ({sniff(incoming.head)}), not a tar",
                               reference=self.reference,
                               hint=f"decompress it on the way: ... | {tool} | ocilens analyze {transport}:-")
        return SourceError(f"{where} is not a readable tar archive: {detail}", reference=self.reference,
                           hint=_TAR_HINT)

    def _take(self, name: str, member: "_Member", size: int) -> None:
        """One regular member: in memory, or into the blob store (scanned when it looks like a layer)."""
        head = _read_exactly(member, min(size, 512))
        # gzip and zstd are layers at any size (a compressed layer of a few files is a few hundred bytes); a tar
        # is one when it has a whole header with ustar magic
        layer_like = sniff(head) in (GZIP, ZSTD) or (size >= 512 and head[257:262] == b"ustar")
        if not layer_like and size <= MEMORY_LIMIT:
            self._memory[name] = head + member.read()
            return
        # named by its digest once it is known (commit); a layer is not written at all when the caller can read
        # the stream again (an engine exports it again for extract())
        writer = self.store.writer(f"sha256:{'0' * 64}") if self.keep_layers or not layer_like else None
        tee = _Tee(member, writer.write if writer is not None else _discard, self._on_bytes, head)
        try:
            scan: LayerScan | None = None
            if layer_like:
                try:
                    scan = scan_blob(tee, "", size, -1, what=f"{self.reference}: member {name}")
                except LayerDecodeError:
                    scan = None  # not a layer after all, or a bad one: read again if the index names it
            tee.drain()
            digest = tee.digest
            if writer is not None:
                writer.commit(self.store.path(digest))
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        self._heads[name] = head[:8]
        if writer is None:
            self._unkept.add(name)
        self._blobs[name] = (digest, size)
        if scan is not None:
            scan.digest = digest
            if scan.diff_id in (None, ""):
                scan.diff_id = digest
            self._scans[name] = scan

    def _alias(self, name: str, target: str, depth: int = 0) -> None:
        """A link member: the same bytes as its target (itself maybe a link)."""
        if target in self._memory:
            self._memory[name] = self._memory[target]
        elif target in self._blobs:
            self._blobs[name] = self._blobs[target]
            self._heads[name] = self._heads[target]
            if target in self._unkept:
                self._unkept.add(name)
            if target in self._scans:
                self._scans[name] = self._scans[target]
        elif target in self._links and depth < 8:
            self._alias(name, self._links[target], depth + 1)

    # --- Storage ------------------------------------------------------------------------------------------

    def exists(self, relpath: str) -> bool:
        key = member_path(relpath)
        return key in self._memory or key in self._blobs

    def size(self, relpath: str) -> int:
        key = member_path(relpath)
        if key in self._memory:
            return len(self._memory[key])
        if key in self._blobs:
            return self._blobs[key][1]
        raise self.missing(relpath)

    def open(self, relpath: str) -> BinaryIO:
        key = member_path(relpath)
        if key in self._memory:
            return io.BytesIO(self._memory[key])
        if key in self._unkept:
            raise LayerNotKept(f"{self.reference}: {relpath} of {self.what} was scanned as it passed, not kept",
                               reference=self.reference, path=relpath,
                               hint="read the source again to get the layer's bytes")
        if key in self._blobs:
            try:
                return open(self.store.path(self._blobs[key][0]), "rb")  # noqa: SIM115
            except FileNotFoundError:
                raise SourceError(f"{self.reference}: {relpath} of {self.what} was removed from the blob cache "
                                  "since it was read", reference=self.reference,
                                  hint="read the image again (a cache prune ran meanwhile)") from None
        raise self.missing(relpath)

    def magic(self, relpath: str) -> bytes:
        """The first bytes of a member, remembered as it passed (a layer not kept can still be told apart)."""
        key = member_path(relpath)
        if key in self._heads:
            return self._heads[key]
        return super().magic(relpath)

    def missing(self, relpath: str, what: str | None = None) -> OcilensError:
        """The error for a member that did not come through the stream, with the likely reason."""
        message = f"{self.reference}: {what or relpath} is missing from {self.what}"
        if self.damage:
            return SourceNotFound(f"{message}; {self.damage}", reference=self.reference, path=relpath,
                                  hint="the export or copy was cut short (nothing half-written was cached); run "
                                       "it again")
        return SourceNotFound(message, reference=self.reference, path=relpath,
                              hint="the archive is incomplete or not of this kind; save or copy it again")

    def scan_of(self, relpath: str, digest: str) -> LayerScan | None:
        """The scan made while ``relpath`` streamed, if its bytes are ``digest``."""
        scan = self._scans.get(member_path(relpath))
        return scan if scan is not None and scan.digest == digest else None

    def digest_of(self, relpath: str) -> str | None:
        """The digest of a member kept in the blob store (a layer), hashed as it streamed; None for the others
        (small members kept in memory are hashed when asked: they are small)."""
        got = self._blobs.get(member_path(relpath))
        return got[0] if got is not None else None


_TAR_HINT = ("docker-archive: and oci-archive: read the uncompressed tar that docker save, podman save and skopeo "
             "copy write")


_LINK_TYPES = (0x31, 0x32)  # tar's hardlink and symlink typeflags
_DRAIN_LIMIT = 16 << 20  # what is read past the end-of-archive block, at most (docker pads nothing; tar a record)


class _Incoming:
    """The stream's bytes in chunks of about 1 MiB, counted, its first bytes kept (what a stream that is no tar
    holds)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.seen = 0
        self.head = b""

    def __iter__(self) -> Iterator[bytes]:
        read = self._stream.read
        while chunk := read(_READ):
            if not self.seen:
                self.head = chunk[:512]
            self.seen += len(chunk)
            yield chunk

    def drain(self) -> None:
        """Read what follows the archive to the stream's end (a pipe's writer then ends cleanly, and an
        engine's export checks its own end), a bounded amount."""
        left = _DRAIN_LIMIT
        while left > 0 and (chunk := self._stream.read(min(_READ, left))):
            left -= len(chunk)


def _members(n: int) -> str:
    return f"{n} member{'s' if n != 1 else ''}"


class _Cut(Exception):
    """The stream ended inside a member's data. Not a ``LayerDecodeError``: a scan reading the member must not
    take it for a bad layer."""


class _Member:
    """One member's data as it streams (``TarReader.data_pieces``), read once; ``read(n)`` never returns more
    than ``n`` bytes, and fewer only at the member's end or at a piece boundary."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._pending = b""

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._pending]
            self._pending = b""
            while piece := self._next():
                parts.append(piece)
            return b"".join(parts)
        if not self._pending:
            self._pending = self._next()
        if n >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def _next(self) -> bytes:
        try:
            return next(self._pieces, b"")
        except TruncatedTar as exc:
            raise _Cut() from exc


class LayerNotKept(SourceNotFound):
    """A layer that went by in a stream read with ``keep_layers=False``: scanned, but its bytes are gone."""


def _discard(data: bytes) -> None:
    """Where the bytes of a layer not kept go."""


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    """``n`` bytes of ``f`` (fewer only at its end)."""
    parts, left = [], n
    while left > 0:
        data = f.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)
