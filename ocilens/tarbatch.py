"""Runs of plain tar headers parsed a buffer at a time with numpy, for layers of many small files.

A layer of tiny files is one 512-byte header and a block or two of data per entry, so the Python work per
header dominates its scan. Here the blocks of a window of the buffer are read as if each were a header, in
array arithmetic (type and size); a Python loop walks from header to header by their sizes; then the
headers it landed on are checked together (zero-padded octal fields, the checksum, no ustar prefix). The
run stops before the first member that is not plain (long names, PAX, devices, numbers written otherwise,
a bad checksum, the end-of-archive block) or whose data goes past the buffer: ``TarReader.next`` parses
that one, and checks and reports whatever is wrong with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

__all__ = ["PlainRun", "PlainParser", "MIN_BLOCKS"]

BLOCK = 512
MIN_BLOCKS = 16  # fewer blocks buffered than this: not worth the array set-up
_PLAIN_TYPES = np.zeros(256, dtype=bool)
_PLAIN_TYPES[list(b"0\x0012567")] = True  # files, links, directories, fifos (devices need their numbers)
_NO_DATA = np.zeros(256, dtype=bool)
_NO_DATA[list(b"123456")] = True
_NO_DATA_BYTES = frozenset(b"123456")
_REGULAR = np.zeros(256, dtype=bool)
_REGULAR[list(b"0\x007")] = True
_USTAR_POSIX = np.frombuffer(b"ustar\x00", dtype=np.uint8)


@dataclass
class PlainRun:
    """Consecutive plain members, all of their data inside the buffer; columns in tar order."""

    offsets: list[int]  # stream offset of each header
    names: list[bytes]
    linknames: list[bytes]  # b"" unless a link
    types: list[int]  # typeflag bytes
    sizes: list[int]  # 0 for members that carry no data
    modes: list[int]  # permission bits (& 0o7777)
    uids: list[int]
    gids: list[int]
    mtimes: list[int]
    digests: list[str | None]  # sha256 hex of a regular file's data, None for the rest
    data_starts: list[int]  # where each member's data begins in the buffer
    end: int  # buffer position after the last member's data and padding


def _octal(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ASCII octal digits -> (values, all digits valid); a row with another byte gets a meaningless
    value. Shift-and-add a column at a time: an int64 matrix product has no BLAS behind it, and is 3x slower."""
    d = digits - np.uint8(48)  # in uint8 a byte below "0" wraps far past 7
    valid = (d < 8).all(axis=1)
    value = np.zeros(len(d), dtype=np.int64)
    for k in range(d.shape[1]):
        value <<= 3
        value += d[:, k]
    return value, valid


def _terminated(col: np.ndarray) -> np.ndarray:
    return (col == 0) | (col == 32)


def _field_len(rows: np.ndarray) -> np.ndarray:
    """Length of each NUL-terminated field (its full width when no NUL)."""
    zero = rows == 0
    return np.where(zero.any(axis=1), zero.argmax(axis=1), rows.shape[1])


class _Blocks:
    """Every block of a window of one buffer read as if it were a header, as far as walking needs: the
    type and the size. The other fields are parsed (and checked) for the headers the walk lands on."""

    __slots__ = ("buf", "pos0", "a", "size", "plain", "blocks")

    def __init__(self, buf: bytes, pos0: int, n: int) -> None:
        self.buf, self.pos0 = buf, pos0
        a = self.a = np.frombuffer(buf, dtype=np.uint8, count=n * BLOCK, offset=pos0).reshape(n, BLOCK)
        typeflag = a[:, 156]
        self.size, ok_size = _octal(a[:, 124:135])
        plain = _PLAIN_TYPES[typeflag] & ok_size & _terminated(a[:, 135])
        self.plain: list[bool] = plain.tolist()
        self.blocks: list[int] = np.where(_NO_DATA[typeflag], 0, (self.size + BLOCK - 1) // BLOCK).tolist()


def _valid(rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """(mode, uid, gid, mtime, valid) of header rows: zero-padded octal with a NUL or space after it, as
    Go's archive/tar, GNU tar and tarfile write them (mode, uid, gid in 7 digits, mtime in 11, the checksum
    in 6 then NUL and space), the unsigned checksum right, and no POSIX ustar name prefix to join."""
    mode, ok_mode = _octal(rows[:, 100:107])
    uid, ok_uid = _octal(rows[:, 108:115])
    gid, ok_gid = _octal(rows[:, 116:123])
    mtime, ok_mtime = _octal(rows[:, 136:147])
    stored, ok_chk = _octal(rows[:, 148:154])
    ok = ok_mode & ok_uid & ok_gid & ok_mtime & ok_chk
    ok &= _terminated(rows[:, 107]) & _terminated(rows[:, 115]) & _terminated(rows[:, 123])
    ok &= _terminated(rows[:, 147]) & (rows[:, 154] == 0) & (rows[:, 155] == 32)
    ok &= rows.sum(axis=1, dtype=np.int64) - rows[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32 == stored
    ok &= ~((rows[:, 257:263] == _USTAR_POSIX).all(axis=1) & (rows[:, 345] != 0))
    return mode, uid, gid, mtime, ok


class PlainParser:
    """Finds runs of plain members. Blocks are parsed in a window that grows while runs fill it (a layer of
    tiny files) and starts small again when a run ends early (small files between large ones)."""

    SMALL, LARGE = 32, 4096

    def __init__(self) -> None:
        self._blocks: _Blocks | None = None
        self._window = self.SMALL

    def run(self, buf: bytes, pos: int, hash_data: bool) -> PlainRun | None:
        """The run of plain members starting at ``buf[pos]`` (a header boundary), or None if the first one
        is not plain or not wholly buffered, or fewer than ``MIN_BLOCKS`` blocks are buffered."""
        n = (len(buf) - pos) // BLOCK
        if n < MIN_BLOCKS:
            return None
        try:  # the first member must fit, or there is no run: found without parsing any block
            first = int(buf[pos + 124 : pos + 135], 8)
        except ValueError:
            return None
        if buf[pos + 156] not in _NO_DATA_BYTES and 1 + (first + BLOCK - 1) // BLOCK > n:
            return None
        b = self._blocks
        for _ in range(2):
            if b is None or b.buf is not buf or pos < b.pos0 or (pos - b.pos0) % BLOCK:
                b = self._blocks = _Blocks(buf, pos, min(n, self._window))
            run, window_end = _walk(b, (pos - b.pos0) // BLOCK, hash_data)
            if window_end and len(b.plain) < n:
                self._window = min(self._window * 4, self.LARGE)  # more of the same: a wider window
                if run is None:
                    b = None  # the member is plain but its data runs past the window: parse from here
                    continue
            elif run is None or not window_end:
                self._window = self.SMALL
            return run
        return None


def _walk(b: _Blocks, i: int, hash_data: bool) -> tuple[PlainRun | None, bool]:
    """From header block ``i``, header to header by their sizes, while plain and inside the parsed blocks;
    also whether the walk stopped only because the parsed blocks ended."""
    plain_l, blocks_l = b.plain, b.blocks
    n = len(plain_l)
    heads: list[int] = []
    window_end = False
    while i < n and plain_l[i]:
        j = i + 1 + blocks_l[i]
        if j > n:
            window_end = True
            break
        heads.append(i)
        i = j
    else:
        window_end = i >= n
    if not heads:
        return None, window_end
    buf, pos0 = b.buf, b.pos0
    h = np.asarray(heads, dtype=np.int64)
    rows = b.a[h]
    mode, uid, gid, mtime, ok = _valid(rows)
    if not ok.all():  # the run ends before the first header that is not plain after all: next() reads it
        k = int(ok.argmin())
        if k == 0:
            return None, False
        i, window_end = heads[k], False
        h, rows, mode, uid, gid, mtime = h[:k], rows[:k], mode[:k], uid[:k], gid[:k], mtime[:k]
        heads = heads[:k]
    starts = pos0 + h * BLOCK
    name_len = _field_len(rows[:, 0:100])
    types = rows[:, 156]
    # an old-style (V7) directory: a "regular" entry whose name ends in a slash, as Go's archive/tar and
    # tarfile read it (its data blocks, if any, were walked over all the same)
    v7_dir = (types == 0) & (rows[np.arange(len(heads)), np.maximum(name_len - 1, 0)] == ord("/"))
    types = np.where(v7_dir, ord("5"), types)
    sizes = np.where(_NO_DATA[types], 0, b.size[h])
    link_len = np.where((types == ord("1")) | (types == ord("2")), _field_len(rows[:, 157:257]), 0)
    starts_l, sizes_l = starts.tolist(), sizes.tolist()
    names = [buf[s : s + k] for s, k in zip(starts_l, name_len.tolist())]
    linknames = [buf[s + 157 : s + 157 + k] if k else b"" for s, k in zip(starts_l, link_len.tolist())]
    data_starts = [s + BLOCK for s in starts_l]
    digests: list[str | None] = [None] * len(heads)
    if hash_data:
        sha256 = hashlib.sha256
        view = memoryview(buf)
        regular = (_REGULAR[types] & (sizes > 0)).tolist()
        for k, (d, s, r) in enumerate(zip(data_starts, sizes_l, regular)):
            if r:
                digests[k] = sha256(buf[d : d + s] if s <= 65536 else view[d : d + s]).hexdigest()
    return PlainRun(offsets=starts_l, names=names, linknames=linknames, types=types.tolist(), sizes=sizes_l,
                    modes=(mode & 0o7777).tolist(), uids=uid.tolist(), gids=gid.tolist(),
                    mtimes=mtime.tolist(), digests=digests, data_starts=data_starts,
                    end=pos0 + i * BLOCK), window_end
