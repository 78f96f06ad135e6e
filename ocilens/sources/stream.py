"""An image archive read once, front to back, from a stream that cannot seek: standard input, a FIFO, a pipe,
or a Docker or Podman engine's export.

The archives docker, podman and skopeo write put their index (``manifest.json``, ``index.json``) last, so
nothing says which member is a layer until the stream ends. Each member is therefore handled as it passes:
- small members (JSON: configs, manifests, indexes) are kept in memory;
- a member that looks like a layer (gzip, zstd or tar magic) is written into the blob cache under the digest
  of its bytes and scanned on the way, in the same pass; its scan is handed out only for the members that the
  index then names as layers (``Source.prescanned``);
- links between members (docker save links identical layers) are followed.

A member's blob is committed to the cache only once it has been read whole; a stream cut short leaves
nothing half-written behind and raises ``SourceError`` naming it. The members are then served by path, like
the ``Storage`` of a file or a directory, so the docker-archive and OCI-layout sources read them unchanged.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import BinaryIO, Callable

from ..cache import BlobStore
from ..codec import TAR, sniff
from ..errors import LayerDecodeError, OcilensError, SourceError
from ..scan import LayerScan, scan_blob
from .storage import Storage, link_member, member_path

__all__ = ["StreamStorage", "MEMORY_LIMIT"]

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
                 what: str = "the stream", on_bytes: Callable[[int], None] | None = None) -> None:
        self.reference = reference
        self.what = what
        self.store = store if store is not None else BlobStore()
        self._memory: dict[str, bytes] = {}
        self._blobs: dict[str, tuple[str, int]] = {}  # member path -> (digest, size) in the blob store
        self._scans: dict[str, LayerScan] = {}  # member path -> the scan made while it streamed
        self._links: dict[str, str] = {}
        self._on_bytes = on_bytes
        self._read_all(stream)

    # --- reading the stream -----------------------------------------------------------------------------

    def _read_all(self, stream: BinaryIO) -> None:
        try:
            with tarfile.open(fileobj=stream, mode="r|", bufsize=_READ) as tf:
                count = 0
                for m in tf:
                    count += 1
                    name = member_path(m.name)
                    if m.isfile():
                        member = tf.extractfile(m)
                        assert member is not None
                        self._take(name, member, m.size)
                    elif m.issym() or m.islnk():
                        target = link_member(name, m.linkname, hard=m.islnk())
                        if target is not None:
                            self._links[name] = target
                if count == 0:
                    raise SourceError(f"{self.reference}: {self.what} holds no tar members (empty input?)",
                                      reference=self.reference,
                                      hint="pipe an archive into it, e.g. docker save IMAGE | ocilens analyze "
                                           "docker-archive:-")
        except tarfile.ReadError as exc:
            if "unexpected end of data" in str(exc) or "truncated" in str(exc).lower():
                raise SourceError(f"{self.reference}: {self.what} ended inside a member: the archive is truncated",
                                  reference=self.reference,
                                  hint="the export or copy was cut short (nothing half-written was cached); run it "
                                       "again"
                                  ) from None
            raise SourceError(f"{self.reference}: {self.what} is not a readable tar archive: {exc}",
                              reference=self.reference,
                              hint="docker-archive: and oci-archive: read the uncompressed tar that docker save "
                                   "and skopeo copy write") from None
        except tarfile.TarError as exc:
            raise SourceError(f"{self.reference}: {self.what} is not a readable tar archive: {exc}",
                              reference=self.reference) from None
        for name, target in list(self._links.items()):
            self._alias(name, target)

    def _take(self, name: str, member: BinaryIO, size: int) -> None:
        """One regular member: in memory, or into the blob store (scanned when it looks like a layer)."""
        head = _read_exactly(member, min(size, 512))
        layer_like = size >= 512 and (sniff(head) != TAR or head[257:262] == b"ustar")
        if not layer_like and size <= MEMORY_LIMIT:
            rest = member.read()
            if len(head) + len(rest) != size:
                raise tarfile.ReadError("unexpected end of data")
            self._memory[name] = head + rest
            return
        writer = self.store.writer(f"sha256:{'0' * 64}")  # named by its digest once it is known (commit)
        tee = _Tee(member, writer.write, self._on_bytes, head)
        try:
            scan: LayerScan | None = None
            if layer_like:
                try:
                    scan = scan_blob(tee, "", size, -1, what=f"{self.reference}: member {name}")
                except LayerDecodeError:
                    scan = None  # not a layer after all, or a bad one: read again if the index names it
            tee.drain()
            if tee.size != size:
                raise tarfile.ReadError("unexpected end of data")
            digest = tee.digest
            writer.commit(self.store.path(digest))
        except BaseException:
            writer.abort()
            raise
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
        if key in self._blobs:
            try:
                return open(self.store.path(self._blobs[key][0]), "rb")  # noqa: SIM115
            except FileNotFoundError:
                raise SourceError(f"{self.reference}: {relpath} of {self.what} was removed from the blob cache "
                                  "since it was read", reference=self.reference,
                                  hint="read the image again (a cache prune ran meanwhile)") from None
        raise self.missing(relpath)

    def missing(self, relpath: str, what: str | None = None) -> OcilensError:
        from ..errors import SourceNotFound

        return SourceNotFound(f"{self.reference}: {what or relpath} is missing from {self.what}",
                              reference=self.reference, path=relpath,
                              hint="the archive is incomplete or not of this kind; save or copy it again")

    def scan_of(self, relpath: str, digest: str) -> LayerScan | None:
        """The scan made while ``relpath`` streamed, if its bytes are ``digest``."""
        scan = self._scans.get(member_path(relpath))
        return scan if scan is not None and scan.digest == digest else None

    def blob_digest(self, relpath: str) -> str | None:
        """The digest of a member kept in the blob store (a layer), or None."""
        got = self._blobs.get(member_path(relpath))
        return got[0] if got is not None else None


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
