"""rpm: the sqlite database (``rpmdb.sqlite``, rpm >= 4.16: Fedora 33+, RHEL 9, openSUSE, Amazon Linux
2023...) in ``/var/lib/rpm`` or ``/usr/lib/sysimage/rpm``. Its ``Packages`` table holds one rpm *header*
blob per installed package; the header format is parsed here (no librpm needed):

    il (u32 BE), dl (u32 BE), il index entries of (tag, type, offset, count) as 4 x u32 BE, then dl bytes
    of data that the entries point into.

Files are ``DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]`` (or the old flat ``OLDFILENAMES``). Berkeley DB
(``Packages``) and ndb (``Packages.db``) databases of older or other systems are not read.

Versions compare with ``rpmvercmp`` (as ``rpmdev-vercmp``), epoch, then version, then release.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from .base import Capture, DbFiles, Package, read_records, compare_evr

if TYPE_CHECKING:  # sqlite3 loads when a database is read, not when the scan imports the capture patterns
    import sqlite3

__all__ = ["DATABASES", "CAPTURE", "read", "parse_header", "parse_database", "compare", "rpmvercmp", "evr",
           "is_database"]

DATABASES = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
#: The databases, and their write-ahead logs beside them.
CAPTURE = Capture(r"/(var/lib|usr/lib/sysimage)/rpm/rpmdb\.sqlite(-wal)?",
                  suffixes=("rpmdb.sqlite", "rpmdb.sqlite-wal"))

NAME, VERSION, RELEASE, EPOCH, SIZE, ARCH = 1000, 1001, 1002, 1003, 1009, 1022
OLDFILENAMES, FILESIZES, SOURCERPM, PROVIDENAME, REQUIRENAME = 1027, 1028, 1044, 1047, 1049
DIRINDEXES, BASENAMES, DIRNAMES, LONGSIZE = 1116, 1117, 1118, 5009
_WANTED = {NAME, VERSION, RELEASE, EPOCH, SIZE, ARCH, OLDFILENAMES, SOURCERPM, DIRINDEXES, BASENAMES, DIRNAMES,
           LONGSIZE, PROVIDENAME, REQUIRENAME}
_MAGIC = b"\x8e\xad\xe8\x01"
_INT = {2: (1, "B"), 3: (2, "H"), 4: (4, "I"), 5: (8, "Q")}  # type -> (width, struct code)


def is_database(path: str) -> bool:
    return path in DATABASES


class HeaderError(ValueError):
    pass


def parse_header(blob: bytes, wanted: set[int] | None = None) -> dict[int, Any]:
    """The tags of one rpm header blob: ints as lists, strings as str, string arrays as lists of str."""
    if blob[:4] == _MAGIC:
        blob = blob[8:]
    if len(blob) < 8:
        raise HeaderError("header too short")
    il, dl = struct.unpack_from(">II", blob, 0)
    start = 8 + 16 * il
    if il > 0x10000 or start + dl > len(blob):
        raise HeaderError(f"header claims {il} entries and {dl} data bytes in {len(blob)} bytes")
    data = bytes(blob[start:start + dl])
    out: dict[int, Any] = {}
    for k in range(il):
        tag, typ, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * k)
        if (wanted is not None and tag not in wanted) or offset < 0 or offset > dl:
            continue
        if typ in _INT:
            width, code = _INT[typ]
            if offset + width * count > dl:
                raise HeaderError(f"tag {tag} runs past the data")
            out[tag] = list(struct.unpack_from(f">{count}{code}", data, offset))
        elif typ in (6, 8, 9):  # STRING, STRING_ARRAY, I18NSTRING
            values = []
            pos = offset
            for _ in range(count if typ != 6 else 1):
                end = data.find(b"\0", pos)
                if end < 0:
                    raise HeaderError(f"tag {tag}: unterminated string")
                values.append(data[pos:end].decode("utf-8", "surrogateescape"))
                pos = end + 1
            out[tag] = values[0] if typ == 6 else values
        elif typ in (1, 7):  # CHAR, BIN
            out[tag] = data[offset:offset + count]
    return out


def _files(h: dict[int, Any]) -> tuple[str, ...]:
    if BASENAMES in h:
        dirs, idx, bases = h.get(DIRNAMES, []), h.get(DIRINDEXES, []), h[BASENAMES]
        return tuple(dirs[i] + b if i < len(dirs) else "/" + b for i, b in zip(idx, bases))
    return tuple(h.get(OLDFILENAMES, ()))


def _first(h: dict[int, Any], tag: int) -> Any:
    v = h.get(tag)
    return v[0] if isinstance(v, list) and v and not isinstance(v[0], str) else v


def _strings(h: dict[int, Any], tag: int) -> tuple[str, ...]:
    v = h.get(tag)
    if isinstance(v, str):
        v = [v]
    return tuple(x for x in v or () if isinstance(x, str))


def _requires(h: dict[int, Any]) -> tuple[str, ...]:
    """The names a package requires, without rpm's own features (``rpmlib(...)``), each once, in order."""
    return tuple(dict.fromkeys(r for r in _strings(h, REQUIRENAME) if not r.startswith("rpmlib(")))


def evr(h: dict[int, Any]) -> str:
    """``[epoch:]version-release`` of a parsed header."""
    epoch = _first(h, EPOCH)
    return (f"{epoch}:" if epoch is not None else "") + f"{h.get(VERSION, '')}-{h.get(RELEASE, '')}"


def _connect(data: bytes) -> sqlite3.Connection:
    import sqlite3

    buf = bytearray(data)
    if len(buf) >= 20 and buf[18:20] == b"\x02\x02":
        buf[18:20] = b"\x01\x01"  # WAL mode -> rollback journal: an in-memory copy has no WAL file beside it
    con = sqlite3.connect(":memory:")
    con.deserialize(bytes(buf))
    return con


def parse_database(data: bytes) -> tuple[tuple[Any, ...], ...]:
    """(name, [epoch:]version-release, arch, size, source rpm, files, requires, provides) of each package in
    an rpmdb.sqlite; requires are names (``libc.so.6()(64bit)``, ``/bin/sh``), provides too."""
    import sqlite3

    con = _connect(data)
    try:
        rows = con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    except sqlite3.DatabaseError:
        return ()
    finally:
        con.close()
    out = []
    for _, blob in rows:
        try:
            h = parse_header(bytes(blob), _WANTED)
        except (HeaderError, struct.error):
            continue
        name = h.get(NAME)
        if not isinstance(name, str) or name == "gpg-pubkey":  # imported signing keys, not packages
            continue
        size = _first(h, LONGSIZE)
        if size is None:
            size = _first(h, SIZE)
        arch = h.get(ARCH)
        out.append((name, evr(h), arch if isinstance(arch, str) else None, size, h.get(SOURCERPM), _files(h),
                    _requires(h), _strings(h, PROVIDENAME)))
    return tuple(out)


def read(db: DbFiles) -> list[Package]:
    return read_records(db, "rpm", DATABASES, parse_database)


# ------------------------------------------------------------------------------------------- versions


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """rpm's ``rpmvercmp`` (4.18): alphanumeric segments, ``~`` sorts before and ``^`` after the end."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < lb and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        if ca.isdigit():
            while i < la and a[i].isascii() and a[i].isdigit():
                i += 1
            while j < lb and b[j].isascii() and b[j].isdigit():
                j += 1
            isnum = True
        else:
            while i < la and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < lb and b[j].isascii() and b[j].isalpha():
                j += 1
            isnum = False
        one, two = a[si:i], b[sj:j]
        if not two:
            return 1 if isnum else -1
        if isnum:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as rpm orders ``[epoch:]version-release`` strings."""
    return compare_evr(a, b, rpmvercmp)
