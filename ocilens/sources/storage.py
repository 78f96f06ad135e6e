"""Files by relative path, from a directory or from inside an uncompressed tar (read in place)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..codec import TAR, sniff
from ..errors import SourceError, SourceNotFound
from ..paths import normalize_path

if TYPE_CHECKING:
    from ..scan import LayerScan

__all__ = ["Storage", "DirStorage", "TarStorage", "open_storage", "open_stream", "is_stream"]


class Storage:
    """Read-only files by relative, ``/``-separated path."""

    reference: str = ""
    #: Why the container looks damaged (a truncated archive), or None; said when a member is missing.
    damage: str | None = None

    def missing(self, relpath: str, what: str | None = None) -> SourceNotFound:
        """The error for a file that is not there (``what`` names it for the message, default the path)."""
        return SourceNotFound(f"{self.reference}: {what or relpath} is missing", reference=self.reference,
                              path=relpath, hint="the image is incomplete; copy it again (skopeo copy)")

    def open(self, relpath: str) -> BinaryIO:
        raise NotImplementedError

    def exists(self, relpath: str) -> bool:
        raise NotImplementedError

    def size(self, relpath: str) -> int:
        raise NotImplementedError

    def read(self, relpath: str) -> bytes:
        with self.open(relpath) as f:
            return f.read()

    def magic(self, relpath: str) -> bytes:
        """The first bytes of a file (its compression's magic), for telling a gzip or zstd layer from a tar."""
        with self.open(relpath) as f:
            return f.read(8)

    def digest_of(self, relpath: str) -> str | None:
        """The digest of a file when the storage already knows it without reading (a stream hashed it as it
        passed), else None."""
        return None

    def scan_of(self, relpath: str, digest: str) -> "LayerScan | None":
        """The layer scan made while the file streamed by, if its bytes are ``digest``; None for files read
        in place (they are scanned when read)."""
        return None

    def close(self) -> None:
        pass


def member_path(relpath: str) -> str:
    """``relpath`` normalized as every path in an image is (``paths.normalize_path``), relative to the
    layout or archive; a path that climbs out of it is refused."""
    path, escaped = normalize_path(relpath.replace("\\", "/"))
    if escaped:
        raise SourceError(f"refusing a path that climbs out of the image: {relpath!r}")
    return path[1:]


def link_member(name: str, target: str, *, hard: bool) -> str | None:
    """The member a link member of an archive names (``docker save`` links identical layers): a symlink's
    target is relative to its directory, a hardlink's to the archive; None when it climbs out."""
    base = name.rpartition("/")[0]
    joined = target if hard or target.startswith("/") else f"{base}/{target}"
    try:
        return member_path(joined)
    except SourceError:
        return None


class DirStorage(Storage):
    """Files under a directory; paths are confined to it."""

    def __init__(self, root: Path, reference: str) -> None:
        self.root = root
        self.reference = reference

    def _path(self, relpath: str) -> Path:
        return self.root / member_path(relpath)

    def missing(self, relpath: str, what: str | None = None) -> SourceNotFound:
        return SourceNotFound(f"{self.reference}: {what or relpath} is missing from {self.root}",
                              reference=self.reference, path=str(self._path(relpath)),
                              hint="the layout is incomplete; copy it again (skopeo copy)")

    def open(self, relpath: str) -> BinaryIO:
        try:
            return open(self._path(relpath), "rb")
        except FileNotFoundError:
            raise self.missing(relpath) from None

    def exists(self, relpath: str) -> bool:
        return self._path(relpath).is_file()

    def size(self, relpath: str) -> int:
        try:
            return self._path(relpath).stat().st_size
        except FileNotFoundError:
            raise self.missing(relpath) from None


class _Slice(io.RawIOBase):
    """A window ``[start, start+length)`` of a file, with its own file handle (thread-safe)."""

    def __init__(self, path: Path, start: int, length: int) -> None:
        self._f = open(path, "rb", buffering=0)  # reads go straight to the file: no hidden copy
        self._f.seek(start)
        self._left = length

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if n is None or n < 0 or n > self._left:
            n = self._left
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


class TarStorage(Storage):
    """Members of an uncompressed tar archive, read in place without extracting."""

    def __init__(self, path: Path, reference: str) -> None:
        self.path = path
        self.reference = reference
        self._members: dict[str, tuple[int, int]] = {}
        self._dangling: dict[str, str] = {}  # link member -> its target, which is not in the archive
        self._lock = threading.Lock()
        try:
            with open(path, "rb") as f:
                head = f.read(4)
            if sniff(head) != TAR:
                raise SourceError(f"{reference}: {path} is a compressed archive",
                                  reference=reference, hint=f"decompress it first (gzip -dc / zstd -dc {path} > image.tar)")
            with tarfile.open(path, "r:") as tf:
                links: dict[str, tuple[str, bool]] = {}
                for m in tf:
                    name = member_path(m.name)
                    if m.isfile():
                        self._members[name] = (m.offset_data, m.size)
                    elif m.issym() or m.islnk():
                        links[name] = (m.linkname, m.islnk())
                for name, (target, hard) in links.items():  # docker save links identical layers
                    resolved = link_member(name, target, hard=hard)
                    if resolved is None:
                        continue
                    if resolved in self._members:
                        self._members[name] = self._members[resolved]
                    else:
                        self._dangling[name] = target
                self.damage = self._check_end(tf.offset, len(tf.getmembers()))
        except FileNotFoundError:
            raise SourceNotFound(f"{reference}: no such file {path}", reference=reference, path=str(path),
                                 hint="check the path; archives are written by skopeo copy or docker save") from None
        except IsADirectoryError:
            raise SourceError(f"{reference}: {path} is a directory, not an archive", reference=reference,
                              hint="use the oci: transport for an image layout directory") from None
        except tarfile.TarError as exc:
            if "unexpected end of data" in str(exc):
                raise SourceError(f"{reference}: {path} is truncated: it ends inside a member ({exc})",
                                  reference=reference,
                                  hint="the copy or download was cut short; copy or save the image again") from None
            raise SourceError(f"{reference}: {path} is not a readable tar archive: {exc}", reference=reference,
                              hint="oci-archive: and docker-archive: read uncompressed tar files "
                                   "(skopeo copy, docker save)") from None

    def _check_end(self, offset: int, count: int) -> str | None:
        """Why the archive does not end with tar's end-of-archive block after its last member, or None."""
        with open(self.path, "rb") as f:
            f.seek(offset)
            block = f.read(512)
        members = f"{count} member{'s' if count != 1 else ''}"
        if len(block) == 512 and not block.strip(b"\0"):
            return None
        if not block:
            return f"it ends right after its {members}, without tar's end-of-archive blocks: it was truncated"
        if len(block) < 512:
            return f"it ends inside the tar header at offset {offset}, after {members}: it was truncated"
        return f"after its {members} it holds data that is not a tar header (offset {offset}): it is damaged"

    def missing(self, relpath: str, what: str | None = None) -> SourceNotFound:
        """The error for a member that is not in the archive, with the likely reason."""
        key = member_path(relpath)
        what = what or relpath
        if key in self._dangling:
            message = (f"{self.reference}: {what} is missing from archive {self.path}: {relpath} is a link to "
                       f"{self._dangling[key]}, which is not in the archive")
        else:
            message = f"{self.reference}: {what} is missing from archive {self.path}"
        if self.damage:
            return SourceNotFound(f"{message}; {self.damage}", reference=self.reference, path=relpath,
                                  hint="the copy or download was cut short; copy or save the image again")
        return SourceNotFound(message, reference=self.reference, path=relpath,
                              hint="the archive is incomplete or not of this kind; save or copy it again")

    def open(self, relpath: str) -> BinaryIO:
        key = member_path(relpath)
        if key not in self._members:
            raise self.missing(relpath)
        start, length = self._members[key]
        # Consumers read in large chunks: no extra buffer layer (and no extra copy) over the slice.
        return _Slice(self.path, start, length)  # type: ignore[return-value]

    def exists(self, relpath: str) -> bool:
        return member_path(relpath) in self._members

    def size(self, relpath: str) -> int:
        member = self._members.get(member_path(relpath))
        if member is None:
            raise self.missing(relpath)
        return member[1]


def open_storage(path: str, reference: str, *, want_dir: bool) -> Storage:
    """A DirStorage or TarStorage for ``path``, with a clear error when it is neither; an archive that cannot
    seek (``-`` for standard input, a FIFO, a pipe, ``/dev/stdin``) is read once, as it streams."""
    p = Path(os.path.expanduser(path))
    if not want_dir and (path == "-" or is_stream(p)):
        return open_stream(path, reference)
    if want_dir:
        if not p.exists():
            raise SourceNotFound(f"{reference}: no such directory {p}", reference=reference, path=str(p),
                                 hint="check the path; oci: takes an OCI layout directory "
                                      "(skopeo copy ... oci:DIR:TAG writes one)")
        if not p.is_dir():
            raise SourceError(f"{reference}: {p} is not a directory", reference=reference,
                              hint="use oci-archive: or docker-archive: for a tar file")
        return DirStorage(p, reference)
    return TarStorage(p, reference)


def is_stream(path: Path) -> bool:
    """Whether ``path`` is something that can be read only once, front to back: a FIFO, a pipe, a socket or
    a character device (``/dev/stdin`` on a pipe)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def open_stream(path: str, reference: str, *, what: str | None = None) -> Storage:
    """The archive on standard input (``-``) or at a FIFO / pipe, read through once (``what`` names it in
    messages; default: the path)."""
    import sys

    from .stream import StreamStorage

    if path == "-":
        stdin = sys.stdin.buffer if sys.stdin is not None else None
        if stdin is None or stdin.isatty():
            raise SourceError(f"{reference}: standard input is {'closed' if stdin is None else 'a terminal'}, "
                              "not an archive", reference=reference,
                              hint="pipe an archive into it, e.g. docker save IMAGE | ocilens analyze "
                                   "docker-archive:-, or name the file instead of -")
        return StreamStorage(stdin, reference, what="standard input")
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SourceError(f"{reference}: cannot open {path}: {exc.strerror}", reference=reference,
                          hint="check the path and its permissions") from None
    with f:
        if f.isatty():  # a terminal (/dev/tty, /dev/stdin left on one) would wait for typing, never for an archive
            raise SourceError(f"{reference}: {path} is a terminal, not an archive", reference=reference,
                              hint="pipe an archive into ocilens, or name the file")
        return StreamStorage(f, reference, what=what or path)
