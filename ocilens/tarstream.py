"""A streaming tar reader over decompressed chunks: ustar, GNU and PAX headers, names kept as bytes.

GNU sparse members (old GNU type ``S`` and the PAX formats 0.0, 0.1 and 1.0 that ``tar --sparse`` writes) read
as the regular files they stand for: their real name and size, and their data with the holes as zeros, as
Go's archive/tar (so runtimes and umoci) and Python's tarfile read them.

Written here rather than using ``tarfile`` because layers need raw byte names (non-UTF-8 names exist),
one pass over a non-seekable stream, and speed on images with a million entries.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import TYPE_CHECKING, Callable, Iterator

from .errors import LayerDecodeError

if TYPE_CHECKING:
    from .tarbatch import PlainParser, PlainRun

__all__ = ["TarHeader", "TarReader", "TruncatedTar", "REGULAR_TYPES"]

BLOCK = 512
REGULAR_TYPES = frozenset(b"0\x007")
_ZERO_BLOCK = bytes(BLOCK)
_NO_DATA = frozenset(b"123456")  # links, devices, directories, fifos: no data whatever the size field says
# the leading fields of a header, as far as the magic (name mode uid gid size mtime chksum typeflag
# linkname magic): what ``TarReader._plain_header`` reads
_FAST_HEADER = struct.Struct("100s8s8s8s12s12s8sB100s6s")
_SLOW_TYPES = frozenset(b"LKxgS34")  # meta records, old GNU sparse and devices: ``TarReader._general_header``
_GNU_SPARSE = 0x53  # 'S'
_ZEROS_SIZE = 1 << 20  # the holes of a sparse member are fed as zeros this much at a time
# Go's archive/tar (so every runtime) refuses long-name and PAX records above 1 MiB; so do we, rather than
# buffer whatever size a header claims. Sparse maps get the same bound.
MAX_META = 1 << 20


class TruncatedTar(LayerDecodeError):
    """The stream ends inside a member: in a header (``in_header``) or in its data."""

    def __init__(self, message: str, *, in_header: bool) -> None:
        super().__init__(message)
        self.in_header = in_header


class TarHeader:
    """One archive member's metadata, after long-name and PAX records are folded in."""

    __slots__ = ("name", "linkname", "type", "size", "mode", "uid", "gid", "mtime", "devmajor",
                 "devminor", "xattrs", "offset", "sparse", "mtime_ns")

    def __init__(self, name: bytes, linkname: bytes, type_: int, size: int, mode: int, uid: int, gid: int,
                 mtime: int, devmajor: int, devminor: int, xattrs: dict[str, bytes] | None,
                 offset: int, sparse: bool = False, mtime_ns: int = 0) -> None:
        self.name = name
        self.linkname = linkname
        self.type = type_  # the typeflag byte as an int: ord('0'), ord('5'), ...
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.devmajor = devmajor
        self.devminor = devminor
        self.xattrs = xattrs
        self.offset = offset  # where the header starts in the uncompressed stream
        self.sparse = sparse  # a GNU sparse file: ``size`` is its real size, its data has holes
        self.mtime_ns = mtime_ns  # nanoseconds past ``mtime`` (whole seconds, floored): PAX times have them

    def __repr__(self) -> str:
        return f"<TarHeader {self.name!r} type={chr(self.type)!r} size={self.size}>"


def _num(field: bytes, what: str) -> int:
    """A numeric header field: octal ASCII, or GNU base-256 when the high bit is set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:  # negative, two's complement
            value -= 1 << (8 * (len(field) - 1))
        return value
    try:
        return int(field.rstrip(b"\x00 ") or b"0", 8)  # the common case: digits, then NUL or space
    except ValueError:
        pass
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise LayerDecodeError(f"tar header field {what} is not a number: {field!r}") from None


def _cstr(field: bytes) -> bytes:
    return field.split(b"\x00", 1)[0]


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    """PAX extended header records ``"<len> key=value\\n"``; values stay bytes.

    The repeated ``GNU.sparse.offset`` / ``GNU.sparse.numbytes`` records of GNU sparse format 0.0 are joined
    into one ``GNU.sparse.map`` (``"offset,numbytes,..."``, format 0.1's record), as Go's archive/tar does."""
    out: dict[bytes, bytes] = {}
    sparse: list[bytes] = []  # GNU sparse 0.0: offset, numbytes, offset, ... in record order
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise LayerDecodeError("malformed PAX header record (no length)")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise LayerDecodeError(f"malformed PAX header record length {data[pos:sp]!r}") from None
        if length <= 0 or pos + length > n:
            raise LayerDecodeError("malformed PAX header record (bad length)")
        record = data[sp + 1 : pos + length - 1]  # without the trailing newline
        key, eq, value = record.partition(b"=")
        if not eq:
            raise LayerDecodeError(f"malformed PAX header record {record[:40]!r}")
        pos += length
        if key == b"GNU.sparse.offset" or key == b"GNU.sparse.numbytes":
            if (key == b"GNU.sparse.offset") != (len(sparse) % 2 == 0):
                raise LayerDecodeError("malformed GNU sparse map in a PAX header (offset and numbytes out of turn)")
            if b"," in value:
                raise LayerDecodeError("malformed GNU sparse map in a PAX header (a comma in a 0.0 record)")
            sparse.append(value)
            continue
        out[key] = value
    if sparse:
        out[b"GNU.sparse.map"] = b",".join(sparse)
    return out


class TarReader:
    """Iterate headers with ``next()``; consume the current member's data with ``read_data`` or let
    the next ``next()`` skip it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._offset = 0  # stream offset of self._buf[0]
        self._remaining = 0  # data bytes of the current member not yet consumed
        self._padding = 0
        self._global_pax: dict[bytes, bytes] = {}
        self.finished = False
        self.end_marker = False  # whether the archive ended with its end-of-archive block (else at EOF)
        self.buffer = b""  # the buffer the last ``take_plain`` run points into
        # the current member's sparse map ((offset, length) of each stored piece) and real size, if sparse
        self._sparse: list[tuple[int, int]] | None = None
        self._sparse_size = 0
        # raw octal field -> value: modes, owners, mtimes and small sizes repeat (and one int object each
        # serves them all)
        self._numbers: dict[bytes, int] = {}
        self._modes: dict[bytes, int] = {}
        self._plain: "PlainParser | None" = None

    # -- buffer -----------------------------------------------------------------------------------
    def _fill(self, need: int) -> bool:
        """Make at least ``need`` bytes available at ``_pos``; False at end of stream."""
        avail = len(self._buf) - self._pos
        if avail >= need:
            return True
        parts = [self._buf[self._pos :]] if avail else []
        self._offset += self._pos
        have = avail
        for chunk in self._chunks:
            parts.append(chunk)
            have += len(chunk)
            if have >= need:
                break
        self._buf = b"".join(parts) if len(parts) != 1 else bytes(parts[0])
        self._pos = 0
        return have >= need

    def _take(self, n: int) -> bytes:
        if not self._fill(n):
            raise TruncatedTar("tar stream ends inside a member (truncated layer)", in_header=True)
        start = self._pos
        self._pos += n
        return self._buf[start : self._pos]

    def _span(self, n: int) -> tuple[bytes, int, int]:
        """Up to ``n`` bytes of data from the buffer, as ``(buffer, start, length)``, consumed; the next chunk
        is taken when the buffer is spent."""
        avail = len(self._buf) - self._pos
        if not avail:
            if not self._fill(1):
                raise TruncatedTar("tar stream ends inside a member's data (truncated layer)", in_header=False)
            avail = len(self._buf) - self._pos
        buf, pos = self._buf, self._pos
        k = avail if avail < n else n
        self._pos = pos + k
        return buf, pos, k

    def _consume(self, n: int, sink: Callable[[memoryview], None] | None) -> None:
        """Pass ``n`` bytes to ``sink`` (or drop them) without joining them into one buffer."""
        while n:
            buf, pos, k = self._span(n)
            if sink is not None:
                sink(memoryview(buf)[pos : pos + k])
            n -= k

    # -- members ----------------------------------------------------------------------------------
    def take_plain(self, hash_data: bool = False) -> "PlainRun | None":
        """The plain members from here whose data is all buffered, read at once (``tarbatch``), or None when
        the next member needs ``next()``. Each member's data can be sliced from ``buffer``."""
        if self.finished or self._global_pax:
            return None
        if self._remaining or self._padding:
            self._skip_rest()
        if self._pos == len(self._buf) and not self._fill(1):  # nothing buffered: the next chunk (no copy)
            return None
        if self._plain is None:
            from .tarbatch import PlainParser  # numpy: imported by the first reader that wants runs

            self._plain = PlainParser()
        run = self._plain.run(self._buf, self._pos, hash_data)
        if run is None:
            return None
        base = self._offset
        run.offsets = [base + o for o in run.offsets]
        self.buffer = self._buf
        self._pos = run.end
        return run

    @property
    def holes(self) -> int:
        """Bytes of holes in the current member, if it is sparse and not read yet (else 0)."""
        if self._sparse is None:
            return 0
        return self._sparse_size - sum(length for _, length in self._sparse)

    def read_data(self, sink: Callable[[memoryview], None], hole: Callable[[int], object] | None = None) -> None:
        """Feed the current member's data to ``sink`` in pieces. A sparse member's holes go to ``hole(n)`` if
        given (to seek over them), else to ``sink`` as zeros."""
        if self._sparse is not None:
            self._read_sparse(sink, hole)
            return
        n = self._remaining
        self._remaining = 0
        self._consume(n, sink)

    def _read_sparse(self, sink: Callable[[memoryview], None], hole: Callable[[int], object] | None) -> None:
        segments, size = self._sparse, self._sparse_size
        self._sparse = None
        at = 0
        for offset, length in segments:  # type: ignore[union-attr]
            if offset > at:
                _zeros(offset - at, sink, hole)
            self._remaining -= length  # the lengths add up to the stored data: checked with the map
            self._consume(length, sink)
            at = offset + length
        if size > at:
            _zeros(size - at, sink, hole)

    def data_pieces(self) -> Iterator[bytes]:
        """The current member's data as it streams, in pieces: a buffered chunk that lies wholly inside the
        member is handed on as it is, without a copy (for members too large to hold, such as an image
        archive's layers). Data not taken when the iterator is dropped is skipped by the next ``next()``."""
        if self._sparse is not None:
            raise LayerDecodeError("a sparse member where a whole file was expected")
        n, self._remaining = self._remaining, 0
        try:
            while n:
                buf, pos, k = self._span(n)
                n -= k
                yield buf if pos == 0 and k == len(buf) else buf[pos : pos + k]
        finally:
            self._remaining += n

    def read_bytes(self) -> bytes:
        """The current member's whole data (for small files the caller wants to keep)."""
        parts: list[bytes] = []
        self.read_data(lambda mv: parts.append(bytes(mv)))
        return b"".join(parts)

    def data_digest(self) -> str:
        """sha256 hex of the current member's data, consuming it and its padding (one slice when buffered)."""
        n = self._remaining
        end = self._pos + n + self._padding
        if end <= len(self._buf) and self._sparse is None:
            digest = hashlib.sha256(memoryview(self._buf)[self._pos : self._pos + n]).hexdigest()
            self._pos = end
            self._remaining = self._padding = 0
            return digest
        hasher = hashlib.sha256()
        self.read_data(hasher.update)
        return hasher.hexdigest()

    def _skip_rest(self) -> None:
        self._sparse = None
        if self._remaining:
            n = self._remaining
            self._remaining = 0
            self._consume(n, None)
        if self._padding:
            n = self._padding
            self._padding = 0
            self._consume(n, None)

    def next(self) -> TarHeader | None:
        """The next member's header (long names and PAX applied), or None at end of archive."""
        if self.finished:
            return None
        self._skip_rest()
        return self._plain_header() or self._general_header()

    def _plain_header(self) -> TarHeader | None:
        """A plain ustar/GNU header (nearly all of them), parsed inline with its numeric fields memoized; None
        for anything else (long names, PAX, devices, odd numbers or checksums, the end of the buffer or
        archive), which ``_general_header`` then reads from the same place."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < BLOCK or self._global_pax:
            return None
        block = buf[pos : pos + BLOCK]
        name, f_mode, f_uid, f_gid, f_size, f_mtime, f_chk, typeflag, f_link, magic = _FAST_HEADER.unpack_from(block)
        if typeflag in _SLOW_TYPES or (magic == b"ustar\x00" and block[345]):
            return None
        numbers, modes = self._numbers, self._modes
        try:
            size = numbers.get(f_size)
            if size is None:
                size = _memo(numbers, f_size)
            stored = int(f_chk.rstrip(b"\x00 ") or b"0", 8)
            mode = modes.get(f_mode)
            if mode is None:
                mode = _memo(modes, f_mode, 0o7777)
            uid = numbers.get(f_uid)
            if uid is None:
                uid = _memo(numbers, f_uid)
            gid = numbers.get(f_gid)
            if gid is None:
                gid = _memo(numbers, f_gid)
            mtime = numbers.get(f_mtime)
            if mtime is None:
                mtime = _memo(numbers, f_mtime)
        except ValueError:
            return None
        # adler32's low half is 1 + the byte sum mod 65521: exact while fewer than 256 bytes are set
        if size < 0 or stored != ((zlib.adler32(block) & 0xFFFF) - 1 - sum(f_chk) + 256) % 65521 \
                or block.count(0) <= BLOCK - 256:
            return None
        if typeflag in _NO_DATA:
            self._remaining = self._padding = size = 0
        else:
            self._remaining = size
            self._padding = -size % BLOCK
        self._pos = pos + BLOCK
        return TarHeader(name.split(b"\x00", 1)[0], f_link.split(b"\x00", 1)[0], typeflag, size, mode, uid, gid,
                         mtime, 0, 0, None, self._offset + pos)

    def _general_header(self) -> TarHeader | None:
        """The next header whatever it is: long-name and PAX records folded in, numbers in any encoding,
        both checksums; errors for what is broken."""
        long_name: bytes | None = None
        long_link: bytes | None = None
        pax: dict[bytes, bytes] = {}
        while True:
            if not self._fill(BLOCK):
                if len(self._buf) - self._pos == 0:
                    # EOF on a block boundary without end-of-archive blocks: accepted, as GNU tar does.
                    self.finished = True
                    return None
                raise TruncatedTar("tar stream ends inside a header (truncated layer)", in_header=True)
            offset = self._offset + self._pos
            block = self._take(BLOCK)
            if block == _ZERO_BLOCK:
                self.finished = self.end_marker = True
                return None
            f_size, f_chk, typeflag = block[124:136], block[148:156], block[156]
            try:  # the common case: octal digits ending in NUL or space
                size = int(f_size.rstrip(b"\x00 ") or b"0", 8)
                stored = int(f_chk.rstrip(b"\x00 ") or b"0", 8)
            except ValueError:
                size = _num(f_size, "size")
                stored = _num(f_chk, "chksum")
            self._check_sum(block, offset, stored, f_chk)
            if size < 0:
                raise LayerDecodeError(f"tar header at offset {offset} has a negative size")
            padding = -size % BLOCK
            if typeflag in (0x4C, 0x4B, 0x78, 0x67):  # 'L' 'K' 'x' 'g': meta records for the next member
                if size > MAX_META:
                    raise LayerDecodeError(f"the {chr(typeflag)!r} record at offset {offset} is {size:,} bytes: "
                                           f"over the 1 MiB that Go's archive/tar (and so runtimes) accept")
                data = self._take(size)
                self._consume(padding, None)
                if typeflag == 0x4C:
                    long_name = _cstr(data)
                elif typeflag == 0x4B:
                    long_link = _cstr(data)
                elif typeflag == 0x78:
                    pax.update(_parse_pax(data))
                else:
                    self._global_pax.update(_parse_pax(data))
                continue
            return self._header(block, offset, typeflag, size, padding, long_name, long_link, pax)

    def _check_sum(self, block: bytes, offset: int, stored: int, field_bytes: bytes) -> None:
        # adler32's low half is 1 + the byte sum modulo 65521: a C-speed byte sum for the common case.
        field = sum(field_bytes)
        if stored == ((zlib.adler32(block) & 0xFFFF) - 1 - field + 256) % 65521 and \
                255 * (BLOCK - block.count(0)) + 256 < 65521:
            return  # the sum cannot reach the modulus, so the residue is the exact sum
        unsigned = sum(block) - field + 8 * 0x20
        # old Sun and BSD tars summed the bytes as signed chars: each byte above 127 counts 256 less
        signed = unsigned - 256 * (sum(1 for b in block if b > 127) - sum(1 for b in field_bytes if b > 127))
        if stored not in (unsigned, signed):
            raise LayerDecodeError(f"tar header checksum mismatch at offset {offset} (corrupt layer)")

    def _header(self, block: bytes, offset: int, typeflag: int, size: int, padding: int,
                long_name: bytes | None, long_link: bytes | None, pax: dict[bytes, bytes]) -> TarHeader:
        if self._global_pax:
            pax = {**self._global_pax, **pax}
        if long_name is not None:
            name = long_name
        else:
            name = _cstr(block[0:100])
            if block[257:263] == b"ustar\x00" and block[345] != 0:  # POSIX ustar prefix (not GNU)
                name = _cstr(block[345:500]) + b"/" + name
        linkname = long_link if long_link is not None else _cstr(block[157:257])
        mode = _num(block[100:108], "mode") & 0o7777
        uid = _num(block[108:116], "uid")
        gid = _num(block[116:124], "gid")
        mtime = _num(block[136:148], "mtime")
        devmajor = devminor = mtime_ns = 0
        if typeflag in (0x33, 0x34):  # '3' char, '4' block
            devmajor = _num(block[329:337], "devmajor")
            devminor = _num(block[337:345], "devminor")
        xattrs: dict[str, bytes] | None = None
        if pax:
            if b"path" in pax:
                name = pax[b"path"]
            if b"linkpath" in pax:
                linkname = pax[b"linkpath"]
            try:
                if b"size" in pax:
                    size = int(pax[b"size"])
                    padding = -size % BLOCK
                if b"uid" in pax:
                    uid = int(pax[b"uid"])
                if b"gid" in pax:
                    gid = int(pax[b"gid"])
                if b"mtime" in pax:
                    mtime, mtime_ns = _pax_time(pax[b"mtime"])
            except (ValueError, OverflowError):  # not a number, or inf / nan
                raise LayerDecodeError(f"malformed numeric PAX value in the header at offset {offset}") from None
            for key, value in pax.items():
                if key.startswith(b"SCHILY.xattr."):
                    if xattrs is None:
                        xattrs = {}
                    xattrs[key[13:].decode("utf-8", "surrogateescape")] = value
        if not -(1 << 63) <= mtime < 1 << 63:  # base-256 fields hold more; Go's int64 does not
            raise LayerDecodeError(f"the mtime of the header at offset {offset} is out of range ({mtime})")
        if typeflag in _NO_DATA:  # as tarfile
            size = padding = 0
        self._remaining = size
        self._padding = padding
        sparse = None
        if typeflag == _GNU_SPARSE:
            sparse, size = self._old_gnu_sparse(block, offset)
            typeflag = 0x30  # a regular file with holes
        elif pax and (b"GNU.sparse.major" in pax or b"GNU.sparse.map" in pax):
            sparse, size, name = self._pax_sparse(pax, name, size, offset)
        if sparse is not None:
            self._sparse, self._sparse_size = sparse, size
        # only PAX path, linkpath and GNU.sparse.name can hold one (header fields end at it); Go refuses them
        if b"\x00" in name or b"\x00" in linkname:
            raise LayerDecodeError(f"the path or link target of the header at offset {offset} holds a NUL byte: "
                                   f"{name[:60]!r}")
        return TarHeader(name, linkname, typeflag, size, mode, uid, gid, mtime, devmajor, devminor, xattrs,
                         offset, sparse is not None, mtime_ns)

    # -- GNU sparse members ---------------------------------------------------------------------------
    def _old_gnu_sparse(self, block: bytes, offset: int) -> tuple[list[tuple[int, int]], int]:
        """An old GNU ``S`` header's map (4 entries in the header, 21 per extension block after it) and
        real size. An entry whose offset field starts with NUL ends the map, as in GNU tar and Go."""
        segments: list[tuple[int, int]] = []
        entries, more = block[386:482], block[482]
        while True:
            for k in range(0, len(entries), 24):
                if entries[k] == 0:
                    break
                segments.append((_num(entries[k:k + 12], "sparse offset"), _num(entries[k + 12:k + 24],
                                                                                  "sparse numbytes")))
            if not more:
                break
            if len(segments) > MAX_META // 24:
                raise LayerDecodeError(f"the GNU sparse map of the member at offset {offset} is over 1 MiB")
            ext = self._take(BLOCK)  # extension blocks come before the data and are not counted in its size
            entries, more = ext[:504], ext[504]
        size = _num(block[483:495], "sparse realsize")
        self._check_sparse(segments, size, offset)
        return segments, size

    def _pax_sparse(self, pax: dict[bytes, bytes], name: bytes, size: int,
                    offset: int) -> tuple[list[tuple[int, int]] | None, int, bytes]:
        """PAX GNU sparse formats 0.0 and 0.1 (the map in ``GNU.sparse.map``) and 1.0 (the map in text at the
        start of the data); an unknown version is left as the plain file it claims to be, as Go does."""
        major, minor = pax.get(b"GNU.sparse.major"), pax.get(b"GNU.sparse.minor")
        if major is not None or minor is not None:
            if (major, minor) not in ((b"0", b"0"), (b"0", b"1"), (b"1", b"0")):
                return None, size, name
        v1 = major == b"1"
        real = pax.get(b"GNU.sparse.size", pax.get(b"GNU.sparse.realsize"))
        try:
            size = int(real) if real is not None else size
            if v1:
                segments = self._sparse_map_in_data(offset)
            else:
                fields = [int(v) for v in pax.get(b"GNU.sparse.map", b"").split(b",") if v != b""]
                blocks = pax.get(b"GNU.sparse.numblocks")
                if len(fields) % 2 or (blocks is not None and int(blocks) * 2 != len(fields)):
                    raise ValueError("odd sparse map")
                segments = list(zip(fields[0::2], fields[1::2]))
        except ValueError:
            raise LayerDecodeError(f"malformed GNU sparse map in the PAX header at offset {offset}") from None
        name = pax.get(b"GNU.sparse.name") or name
        self._check_sparse(segments, size, offset)
        return segments, size, name

    def _sparse_map_in_data(self, offset: int) -> list[tuple[int, int]]:
        """Format 1.0: decimal numbers, one per line (the count, then offset and length of each piece), in
        whole blocks at the start of the member's data."""
        blocks: list[bytes] = []
        newlines, want = 0, 1  # lines complete so far; lines needed (the count, then two per piece)
        while newlines < want:
            if self._remaining < BLOCK:
                raise LayerDecodeError(f"the GNU sparse map of the member at offset {offset} runs past its data")
            if len(blocks) * BLOCK >= MAX_META:
                raise LayerDecodeError(f"the GNU sparse map of the member at offset {offset} is over 1 MiB")
            block = self._take(BLOCK)
            self._remaining -= BLOCK
            blocks.append(block)
            newlines += block.count(b"\n")
            if want == 1 and newlines:
                count = int(b"".join(blocks).split(b"\n", 1)[0])  # ValueError: reported by the caller
                if count < 0:
                    raise ValueError("negative count")
                want = 1 + 2 * count
        lines = b"".join(blocks).split(b"\n", want)
        numbers = [int(line) for line in lines[1:want]]
        return list(zip(numbers[0::2], numbers[1::2]))

    def _check_sparse(self, segments: list[tuple[int, int]], size: int, offset: int) -> None:
        """Pieces in order, inside the real size, not overlapping, and exactly the stored data (Go's rules)."""
        end = 0
        for start, length in segments:
            if start < 0 or length < 0 or start < end or start + length > size:
                raise LayerDecodeError(f"the GNU sparse map of the member at offset {offset} is malformed "
                                       f"(piece {start}+{length} in a file of {size} bytes)")
            end = start + length
        if sum(length for _, length in segments) != self._remaining:
            raise LayerDecodeError(f"the GNU sparse map of the member at offset {offset} does not match its "
                                   f"{self._remaining} stored bytes")

    def __iter__(self) -> Iterator[TarHeader]:
        while (h := self.next()) is not None:
            yield h


def _pax_time(value: bytes) -> tuple[int, int]:
    """A PAX time ``[-]SECONDS[.FRACTION]`` as (whole seconds, floored; nanoseconds past them), as Go reads
    it: digits past the ninth decimal are dropped. Not a number (or inf, nan) raises ValueError."""
    text = value.decode("ascii")
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("+-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(value)
    total = int(whole) * 10**9 + int((frac[:9] or "0").ljust(9, "0"))  # past int64: refused with the header
    return divmod(-total if negative else total, 10**9)


_zero_chunk: bytes | None = None


def _zeros(n: int, sink: Callable[[memoryview], None], hole: Callable[[int], object] | None) -> None:
    """A hole of ``n`` bytes: to ``hole`` if given, else to ``sink`` as zeros."""
    global _zero_chunk
    if hole is not None:
        hole(n)
        return
    if _zero_chunk is None:
        _zero_chunk = bytes(_ZEROS_SIZE)
    view = memoryview(_zero_chunk)
    while n:
        k = n if n < _ZEROS_SIZE else _ZEROS_SIZE
        sink(view[:k])
        n -= k


def _memo(numbers: dict[bytes, int], field: bytes, mask: int = -1) -> int:
    value = int(field.rstrip(b"\x00 ") or b"0", 8) & mask
    if len(numbers) < 4096:
        numbers[field] = value
    return value
