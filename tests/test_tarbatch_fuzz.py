"""Property tests for runs of plain tar headers (``tarbatch``): for ANY byte stream, scanning with runs must
give exactly what scanning header by header gives (the same ``LayerScan``, or the same exception), and for
valid archives every member must read as Python's ``tarfile`` (the independent truth) reads it.

Archives are written by ``tarfile`` in GNU, PAX and USTAR formats (many tiny files mixed with everything a
layer holds), optionally *respelled* (numbers padded with spaces or left-justified, other checksum spellings,
signed checksums, ``\\0``/``7`` type flags, GNU/POSIX/V7 magic: all still valid), optionally *mutated* (bytes
flipped, fields overwritten, blocks zeroed, the stream truncated), then fed to ``TarReader`` in chunks of
fixed or irregular sizes so runs start and end at every kind of boundary.

What the fuzzing found (fixed) is kept as plain regression tests at the end of the file.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from collections.abc import Iterator
from typing import Self

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ocilens.errors import LayerDecodeError
from ocilens.scan import LayerScan, _read_entries, normalize_path
from ocilens.tarstream import TarReader

BLOCK = 512
EMPTY = hashlib.sha256(b"").hexdigest()
REGULAR = (0x30, 0x00, 0x37)
LINKS = (0x31, 0x32)
DEVICES = (0x33, 0x34)
FORMATS = (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT)
# Anomaly kinds compared apart from the rest (none: every anomaly is compared in tar order; a run once put
# its link anomalies after its path anomalies).
LINK_ANOMALIES: tuple[str, ...] = ()  # anomalies compared in tar order, all of them

# the whole file runs in about 10 s; no example database (derandomized anyway), no explain phase (slow)
SETTINGS = {"deadline": None, "derandomize": True, "database": None, "print_blob": False,
            "phases": (Phase.explicit, Phase.generate, Phase.shrink), "suppress_health_check": list(HealthCheck)}


# -- feeding and reading -------------------------------------------------------------------------------------

def _split(data: bytes, chunking: int | tuple[int, int]) -> Iterator[bytes]:
    """Fixed-size chunks, or irregular ones: ``(seed, largest)``."""
    if isinstance(chunking, int):
        return iter([data[i : i + chunking] for i in range(0, len(data), chunking)])
    seed, largest = chunking
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rnd.choice((rnd.randint(1, 600), rnd.randint(1, largest), largest, 512 * rnd.randint(1, 40)))
        out.append(data[i : i + n])
        i += n
    return iter(out)


class _Patched:
    """Runs disabled (``take_plain`` always None) or counted, restored on exit."""

    def __init__(self, batch: bool) -> None:
        self.batch, self.in_runs, self.runs = batch, 0, 0

    def __enter__(self) -> Self:
        self._orig = take = TarReader.take_plain
        if self.batch:
            def counted(reader: TarReader, hash_data: bool = False):  # type: ignore[no-untyped-def]
                run = take(reader, hash_data)
                if run is not None:
                    self.in_runs += len(run.names)
                    self.runs += 1
                return run

            TarReader.take_plain = counted  # type: ignore[method-assign]
        else:
            TarReader.take_plain = lambda reader, hash_data=False: None  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        TarReader.take_plain = self._orig  # type: ignore[method-assign]


def _scan(data: bytes, chunking: int | tuple[int, int], batch: bool) -> tuple[dict | tuple, int]:
    """The scan as a dict of columns (or the exception as (type, message)), and how many members went in runs."""
    scan = LayerScan(digest="sha256:x")
    with _Patched(batch) as p:
        try:
            _read_entries(TarReader(_split(data, chunking)), scan)
        except Exception as exc:  # noqa: BLE001 - any exception must be the same on both paths
            return (type(exc), str(exc)), p.in_runs
    out = dict(vars(scan))
    out["ordinals"] = list(scan.ordinals)
    anomalies = out.pop("anomalies")
    out["anomalies[link]"] = [a for a in anomalies if a[1] in LINK_ANOMALIES]
    out["anomalies[other]"] = [a for a in anomalies if a[1] not in LINK_ANOMALIES]
    return out, p.in_runs


def _members(data: bytes, chunking: int | tuple[int, int], batch: bool) -> tuple[list, int]:
    """Every member as the reader gives it (runs via ``take_plain``, the rest via ``next``); an exception
    ends the list as ("error", type, message)."""
    reader = TarReader(_split(data, chunking))
    out: list = []
    in_runs = 0
    try:
        while True:
            run = reader.take_plain(hash_data=True) if batch else None
            if run is not None:
                n = len(run.names)
                in_runs += n
                columns = (run.offsets, run.names, run.linknames, run.types, run.sizes, run.modes, run.uids,
                           run.gids, run.mtimes, run.digests, run.data_starts)
                assert all(len(c) == n for c in columns)
                buf = reader.buffer
                for k in range(n):
                    t, size, start = run.types[k], run.sizes[k], run.data_starts[k]
                    digest = None
                    if t in REGULAR:
                        digest = run.digests[k] or EMPTY
                        assert hashlib.sha256(buf[start : start + size]).hexdigest() == digest
                        assert start + size <= len(buf)
                    else:
                        assert run.digests[k] is None and size == 0
                    assert start == run.offsets[k] - reader._offset + BLOCK  # data follows its header
                    out.append((run.offsets[k], run.names[k], run.linknames[k] if t in LINKS else b"", t, size,
                                run.modes[k], run.uids[k], run.gids[k], run.mtimes[k], 0, 0, None, digest))
                continue
            h = reader.next()
            if h is None:
                break
            if h.type == 0 and h.name.endswith(b"/"):  # V7 directory: runs report it as one, the scan reads it so
                h.type, h.size = 0x35, 0
            digest = reader.data_digest() if h.type in REGULAR else None
            dev = (h.devmajor, h.devminor) if h.type in DEVICES else (0, 0)
            out.append((h.offset, h.name, h.linkname if h.type in LINKS else b"", h.type, h.size, h.mode, h.uid,
                        h.gid, h.mtime, *dev, h.xattrs or None, digest))
    except Exception as exc:  # noqa: BLE001
        out.append(("error", type(exc), str(exc)))
    return out, in_runs


def _truth(data: bytes) -> list[tuple]:
    """tarfile's reading, in the shape of ``_members`` (without offsets and xattrs)."""
    out: list[tuple] = []
    if not data.strip(b"\0"):  # no members at all: tarfile calls that an "empty file"
        return out
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="surrogateescape") as tf:
        for m in tf:
            body = tf.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            t = ord(m.type)
            out.append((m.name.encode("utf-8", "surrogateescape").rstrip(b"/"),
                        m.linkname.encode("utf-8", "surrogateescape") if t in LINKS else b"", t,
                        m.size if m.isreg() else 0, m.mode & 0o7777, m.uid, m.gid, int(m.mtime),
                        m.devmajor if t in DEVICES else 0, m.devminor if t in DEVICES else 0,
                        hashlib.sha256(body).hexdigest() if body is not None else None))
    return out


def _as_truth(members: list) -> list[tuple]:
    return [(m[1].rstrip(b"/"), m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9], m[10], m[12]) for m in members]


_CODES = {0x30: "f", 0x00: "f", 0x37: "f", 0x31: "h", 0x32: "l", 0x33: "c", 0x34: "b", 0x35: "d", 0x36: "p"}


def _check_scan_against_truth(scan: dict, data: bytes) -> None:
    """The scan's entries are tarfile's members, markers (``.wh.*``) left out, paths normalized."""
    entries, markers, bodies = [], 0, {}
    if not data.strip(b"\0"):
        assert not scan["paths"] and scan["members"] == 0
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:", encoding="utf-8", errors="surrogateescape") as tf:
        members = tf.getmembers()
        for m in members:
            path = normalize_path(m.name.encode("utf-8", "surrogateescape"))[0]
            if path.rpartition("/")[2].startswith(".wh."):
                markers += 1
                continue
            t = ord(m.type)
            body = tf.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            if body is not None:
                bodies[len(entries)] = body
            link = None
            if t == 0x32:
                link = m.linkname
            elif t == 0x31:
                link = normalize_path(m.linkname)[0]
            entries.append((path, _CODES[t], len(body) if body is not None else 0, m.mode & 0o7777, m.uid, m.gid,
                            int(m.mtime), link, hashlib.sha256(body).hexdigest() if body is not None else None,
                            (m.devmajor, m.devminor) if t in DEVICES else None))
    got = [(scan["paths"][i], scan["types"][i], scan["sizes"][i], scan["modes"][i], scan["uids"][i],
            scan["gids"][i], scan["mtimes"][i], scan["linknames"][i], scan["digests"][i], scan["devices"].get(i))
           for i in range(len(scan["paths"]))]
    assert got == entries
    assert scan["members"] == len(members)
    assert len(scan["whiteouts"]) + len(scan["opaques"]) <= markers
    for i, content in scan["captured"].items():
        assert content == bodies[i]
    for i, path in enumerate(scan["paths"]):
        if path in CAPTURED_PATHS and scan["types"][i] == "f":
            assert scan["captured"].get(i) == bodies[i], path


# -- archives ------------------------------------------------------------------------------------------------

CAPTURED_PATHS = {"/var/lib/dpkg/status", "/usr/lib/python3/dist-packages/x-1.dist-info/METADATA",
                  "/usr/lib/python3/dist-packages/x-1.dist-info/RECORD", "/var/lib/dpkg/info/x.list",
                  "/lib/apk/db/installed", "/var/lib/dpkg/status.d/base"}
SEGMENTS = ("usr", "bin", "lib", "etc", "d0", "d1", "a.txt", "b", "caf\udce9", "\udcff\udcfe", "\u00e9t\u00e9",
            ".", "..", "", ".wh.a.txt", ".wh..wh..opq", ".wh..wh.plnk", ".wh.", ".hidden", "sp ace", "x" * 60,
            "y" * 99, "z" * 140)
PREFIXES = ("", "", "", "./", "/", ".//", "../")
SUFFIXES = ("", "", "", "/", "//")
SPECIAL_NAMES = tuple(p.lstrip("/") for p in CAPTURED_PATHS) + (
    "./var/lib/dpkg/status", "n" * 100, "m" * 99, "o" * 101, "p/" * 50, "q" * 155 + "/" + "r" * 99,
    "s" * 254, "a/.wh..wh..opq", "./a/.wh.b", ".wh.top", "a/.wh.dir/", "x/../../../esc")
LINK_TARGETS = ("a.txt", "../../etc/passwd", "/abs/target", "..", "./x", "usr//bin/sh", "l" * 100, "k" * 120,
                "caf\udce9", "../" * 6 + "x", "", "/")
SIZES = (0, 1, 100, 511, 512, 513, 1023, 1024, 1025, 1536, 2000)
MODES = (0o644, 0o755, 0o4755, 0o7777, 0o600, 0o000, 0o1777)
IDS = (0, 0, 0, 33, 1000, 65534, 2097151, 2097152, 3_000_000, 2**31)
MTIMES = (0, 1_700_000_000, 1_700_000_000, 8**11 - 1, 8**11, 2**40, -1)
KINDS = ("f",) * 6 + ("d", "d", "l", "l", "h", "h", "p", "c", "b", "7", "big")

_name = st.one_of(
    st.builds(lambda p, segs, s: p + "/".join(segs) + s, st.sampled_from(PREFIXES),
              st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4), st.sampled_from(SUFFIXES)),
    st.sampled_from(SPECIAL_NAMES))


@st.composite
def _member(draw: st.DrawFn) -> tuple:
    kind = draw(st.sampled_from(KINDS))
    size = 0
    if kind in ("f", "7"):
        size = draw(st.one_of(st.sampled_from(SIZES), st.integers(0, 2000)))
    elif kind == "big":
        size = draw(st.sampled_from((8191, 8192, 70_000, 200_001)))
    dev = draw(st.sampled_from(((1, 3), (0, 0), (259, 65535), (2**21, 1)))) if kind in "cb" else (0, 0)
    return (kind, draw(_name), size, draw(st.sampled_from(LINK_TARGETS)) if kind in "lh" else "",
            draw(st.sampled_from(MODES)), draw(st.sampled_from(IDS)), draw(st.sampled_from(IDS)),
            draw(st.sampled_from(MTIMES)), dev)


def _tiny_run(seed: int, count: int, group: int) -> list[tuple]:
    """Plain members, mostly tiny files: what runs are made of (with markers, links and odd names inside)."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        roll = rnd.random()
        name = f"t{group}/d{i % 5}/f{i}.txt"
        kind, link = "f", ""
        if roll < 0.06:
            kind, name = "d", f"t{group}/d{i % 5}/"
        elif roll < 0.11:
            kind, link = "l", rnd.choice(LINK_TARGETS[:6] + LINK_TARGETS[9:10])
        elif roll < 0.14:
            kind, link = "h", rnd.choice(("t0/d0/f0.txt", "/abs", "../../up", "./t0//x"))
        elif roll < 0.16:
            kind = "p"
        elif roll < 0.19:
            name = f"t{group}/d{i % 5}/.wh.f{i - 1}.txt"
        elif roll < 0.21:
            name = f"t{group}/d{i % 5}/.wh..wh..opq"
        elif roll < 0.22:
            name = rnd.choice((f"t{group}/.wh..wh.plnk{i}", f"t{group}/.wh."))
        elif roll < 0.26:
            name = rnd.choice(("./", "/", ".//", "../../", "t/./", "t//", "caf\udce9/")) + name
        elif roll < 0.28:
            name = rnd.choice(sorted(CAPTURED_PATHS)).lstrip("/")
        elif roll < 0.30:
            name = "u" * rnd.choice((99, 100))
        elif roll < 0.34:  # longer than 100: a ustar prefix (plain to no one), a GNU long name or a PAX path
            name = f"t{group}/" + "w" * rnd.choice((80, 97, 150)) + f"/f{i}"
        elif roll < 0.36:
            name = f"t{group}/v{i}/"  # an empty regular file named with a slash: respelled, a V7 directory
        size = rnd.choice(SIZES + (rnd.randint(0, 2000),)) if kind == "f" else 0
        if roll > 0.985 and kind == "f":  # large, in a run once the window has grown (hashed from a memoryview)
            size = rnd.choice((65536, 65537, 70_000, 140_000))
        elif name.endswith("/"):
            size = 0
        uid = rnd.choice((0, 0, 0, 33, 1000 + i))
        out.append((kind, name, size, link, rnd.choice(MODES), uid, uid, rnd.choice((0, 1_700_000_000 + i)),
                    (0, 0)))
    return out


_GROUP = st.one_of(
    st.lists(_member(), min_size=1, max_size=3),
    st.builds(_tiny_run, st.integers(0, 2**32),
              st.one_of(st.sampled_from((16, 40, 90, 150, 300)), st.integers(1, 120)), st.integers(0, 9)))

_TYPES = {"f": tarfile.REGTYPE, "big": tarfile.REGTYPE, "7": tarfile.CONTTYPE, "d": tarfile.DIRTYPE,
          "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE, "p": tarfile.FIFOTYPE, "c": tarfile.CHRTYPE,
          "b": tarfile.BLKTYPE}


def _build(fmt: int, specs: list[tuple], seed: int, trailer: int) -> bytes:
    """The archive tarfile writes; members tarfile cannot write in this format are left out. ``trailer``:
    0 no end-of-archive blocks, 1 one zero block, 2 tarfile's own (two blocks and record padding)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=fmt, encoding="utf-8", errors="surrogateescape") as tf:
        for i, (kind, name, size, link, mode, uid, gid, mtime, (major, minor)) in enumerate(specs):
            ti = tarfile.TarInfo(name)
            ti.type = _TYPES[kind]
            ti.linkname, ti.mode, ti.uid, ti.gid, ti.mtime = link, mode, uid, gid, mtime
            ti.devmajor, ti.devminor = major, minor
            data = random.Random(seed * 7919 + i).randbytes(size) if size else b""
            ti.size = len(data)
            try:
                tf.addfile(ti, io.BytesIO(data) if data else None)
            except ValueError:  # ustar limits (long names, big numbers): leave the member out
                continue
        end = tf.offset  # before close() writes the end-of-archive blocks
    data = buf.getvalue()
    return data if trailer == 2 else data[:end] + bytes(BLOCK * trailer)


@st.composite
def _archives(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(FORMATS))
    groups = draw(st.lists(_GROUP, min_size=1, max_size=6))
    specs = [m for g in groups for m in g]
    return _build(fmt, specs, draw(st.integers(0, 2**16)), draw(st.sampled_from((0, 1, 2, 2))))


# runs need 16 buffered blocks: small chunks mostly check that nothing changes without them
_CHUNKING = st.one_of(st.sampled_from((512, 700, 4096, 9000, 65536, 65536, 1 << 20, 1 << 20, 1 << 20)),
                      st.tuples(st.integers(0, 2**32), st.sampled_from((5000, 20000, 100_000, 100_000))))


# -- respelling: the same archive written the ways other tar writers write it ---------------------------------

def _header_offsets(data: bytes) -> list[tuple[int, bool]]:
    """(offset of each member's own header, whether extension headers precede it)."""
    if not data.strip(b"\0"):
        return []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return [(m.offset_data - BLOCK, m.offset != m.offset_data - BLOCK) for m in tf]


def _spell(value: int, width: int, style: int) -> bytes | None:
    o = b"%o" % value
    spellings = (o.zfill(width - 1) + b"\0", o.zfill(width - 1) + b" ", o.rjust(width - 2) + b" \0",
                 (o + b"\0").ljust(width, b"\0"), o.zfill(width), o.rjust(width - 1) + b"\0",
                 b"\0" * width if value == 0 else None, b" " * width if value == 0 else None)
    s = spellings[style % len(spellings)]
    return s if s is not None and len(s) == width and len(o) <= width else None


def _checksum(block: bytearray, style: int, signed: int = 0) -> None:
    """Store the checksum in one of its spellings: the unsigned sum (``signed`` 0), the sum of signed bytes as
    old tars wrote it (1), or what the reader once took for that sum (2: wrong, and rejected)."""
    block[148:156] = b" " * 8
    value = sum(block)
    if signed == 1:
        value -= 256 * sum(1 for b in block if b > 127)
    elif signed == 2:
        value -= 2 * sum(b for b in block if b > 127)
    spellings = (b"%06o\0 ", b"%07o\0", b"%06o  ", b"%6o\0 ", b"%o\0", b"%08o")
    s = spellings[style % len(spellings)] % value
    block[148:156] = s.ljust(8, b"\0")[:8]


def _respell(data: bytes, seed: int, share: float, signed: bool = False) -> bytes:
    """Respell a ``share`` of the member headers; ``signed`` checksums only when asked (ocilens rejects the
    right ones once: see test_signed_checksum_is_accepted)."""
    rnd = random.Random(seed)
    out = bytearray(data)
    for off, extended in _header_offsets(data):
        if rnd.random() >= share:
            continue
        block = bytearray(out[off : off + BLOCK])
        plain = rnd.random() < 0.5  # only spellings runs take (zero-padded octal, the usual checksum)
        for lo, width in ((100, 8), (108, 8), (116, 8), (124, 12), (136, 12)):
            field = bytes(block[lo : lo + width])
            if field[0] & 0x80 or rnd.random() < 0.3:
                continue
            text = field.split(b"\0", 1)[0].strip()
            value = int(text or b"0", 8)
            if lo == 100:
                value &= 0o7777  # tarfile masks it too
            spelled = _spell(value, width, rnd.randrange(2 if plain else 8))
            if spelled is not None:
                block[lo : lo + width] = spelled
        name_field = bytes(block[:100]).split(b"\0", 1)[0]
        if block[156] == 0x30 and not extended and rnd.random() < 0.5:
            if not name_field.endswith(b"/"):
                block[156] = rnd.choice((0x00, 0x37))  # old-style and contiguous regular files
            elif not any(block[124:136].strip(b"0 \0")):
                block[156] = 0x00  # empty and named with a slash: an old-style (V7) directory
        if block[156] in b"1256" and rnd.random() < 0.3:  # a size on what carries no data: ignored by all
            block[124:136] = b"%011o\0" % rnd.choice((1, 511, 512, 513, 4096, 8**10))
        if not any(block[345:500]) and rnd.random() < 0.5:
            block[257:265] = rnd.choice((b"ustar  \0", b"ustar\x0000", bytes(8)))
        high = signed and not plain and any(b > 127 for b in block) and rnd.random() < 0.7
        _checksum(block, 0 if plain else rnd.randrange(6), rnd.choice((1, 2)) if high else 0)
        out[off : off + BLOCK] = block
    return bytes(out)


# -- mutations: anything at all -----------------------------------------------------------------------------

FIELDS = ((0, 100), (100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (148, 8), (156, 1), (157, 100),
          (257, 8), (329, 8), (337, 8), (345, 155))
GARBAGE = (b" ", b"\0", b"9", b"8", b"\x80", b"\xff", b"+", b"-", b"_", b"x", b"7", b"0", b"L", b"x",
           b"g", b"K", b"5", b"3", b"=", b"\n", b"1")


@st.composite
def _mutation(draw: st.DrawFn) -> tuple:
    kind = draw(st.sampled_from(("flip", "flip", "field", "field", "field", "truncate", "zero", "flip_any")))
    return (kind, draw(st.integers(0, 2**32)), draw(st.sampled_from((True, True, True, False))))  # fix checksum


def _mutate(data: bytes, mutations: list[tuple]) -> bytes:
    out = bytearray(data)
    heads: list[int] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data + bytes(BLOCK)), mode="r:") as tf:
            for m in tf:  # every block from a member's first (extension) header to its data
                heads.extend(range(m.offset, m.offset_data, BLOCK))
    except tarfile.TarError:  # respelled with a checksum tarfile rejects: blocks anywhere, then
        pass
    for kind, seed, fix in mutations:
        rnd = random.Random(seed)
        if not out:
            break
        if kind == "truncate":
            del out[rnd.randrange(len(out)) :]
            continue
        if kind == "zero":
            b = rnd.randrange(max(1, len(out) // BLOCK))
            out[b * BLOCK : (b + 1) * BLOCK] = bytes(len(out[b * BLOCK : (b + 1) * BLOCK]))
            continue
        if kind == "flip_any":
            i = rnd.randrange(len(out))
            out[i] ^= rnd.randint(1, 255)
            continue
        head = rnd.choice(heads) if heads and rnd.random() < 0.9 else rnd.randrange(len(out) // BLOCK + 1) * BLOCK
        if head + BLOCK > len(out):
            continue
        block = bytearray(out[head : head + BLOCK])
        if kind == "flip":
            block[rnd.randrange(BLOCK)] ^= rnd.randint(1, 255)
        else:
            lo, width = rnd.choice(FIELDS)
            style = rnd.randrange(6)
            if style == 0:
                value = rnd.choice((b" ", b"\0")) * width
            elif style == 1:
                value = bytes(rnd.choice(GARBAGE)[0] for _ in range(width))
            elif style == 2:  # base-256, positive or negative
                value = bytes([rnd.choice((0x80, 0xFF))]) + rnd.randbytes(width - 1)
            elif style == 3:  # an octal number of any size, any padding
                value = _spell(rnd.choice((0, 1, 7, 511, 512, 513, 8**6, rnd.randrange(8**11))), width,
                               rnd.randrange(8)) or b"\0" * width
            elif style == 4:  # one character of a field replaced
                value = bytes(block[lo : lo + width])
                j = rnd.randrange(width)
                value = value[:j] + rnd.choice(GARBAGE) + value[j + 1 :]
            else:
                value = rnd.randbytes(width)
            block[lo : lo + width] = value[:width].ljust(width, b"\0")
            fix = fix and lo != 148
        if fix:
            _checksum(block, 0)
        out[head : head + BLOCK] = block
    return bytes(out)


# -- the properties -------------------------------------------------------------------------------------------

def _same_both_ways(data: bytes, chunking: int | tuple[int, int]) -> tuple:
    batched, in_runs = _scan(data, chunking, True)
    single, none = _scan(data, chunking, False)
    assert none == 0
    assert batched == single
    members_b, member_runs = _members(data, chunking, True)
    members_s, _ = _members(data, chunking, False)
    assert members_b == members_s
    return batched, members_b, in_runs + member_runs


@settings(max_examples=100, **SETTINGS)
@given(data=_archives(), chunking=_CHUNKING)
def test_valid_archives_read_the_same_with_runs_and_as_tarfile(data: bytes, chunking) -> None:
    scan, members, _ = _same_both_ways(data, chunking)
    assert isinstance(scan, dict), scan
    assert _as_truth(members) == _truth(data)
    _check_scan_against_truth(scan, data)


@settings(max_examples=80, **SETTINGS)
@given(data=_archives(), seed=st.integers(0, 2**32), share=st.sampled_from((0.2, 0.7, 1.0)),
       chunking=_CHUNKING)
def test_respelled_archives_read_the_same_with_runs_and_as_tarfile(data: bytes, seed: int, share: float,
                                                                   chunking) -> None:
    data = _respell(data, seed, share)
    scan, members, _ = _same_both_ways(data, chunking)
    assert isinstance(scan, dict), scan
    assert _as_truth(members) == _truth(data)
    _check_scan_against_truth(scan, data)


@settings(max_examples=250, **SETTINGS)
@given(data=_archives(), respell=st.one_of(st.none(), st.integers(0, 2**32)),
       mutations=st.lists(_mutation(), min_size=1, max_size=3), chunking=_CHUNKING)
def test_mutated_streams_read_the_same_with_runs(data: bytes, respell, mutations, chunking) -> None:
    if respell is not None:
        data = _respell(data, respell, 0.5, signed=True)
    data = _mutate(data, mutations)
    scan, members, _ = _same_both_ways(data, chunking)
    if isinstance(scan, tuple):  # an error: the same on both paths (checked), and a decode error
        assert issubclass(scan[0], LayerDecodeError), scan
        assert members[-1][:3] == ("error", *scan)


@settings(max_examples=80, **SETTINGS)
@given(data=_archives(), respell=st.one_of(st.none(), st.integers(0, 2**32)),
       mutations=st.lists(_mutation(), max_size=2), chunking=_CHUNKING,
       small=st.sampled_from((1, 2, 3, 8, 32)), large=st.sampled_from((1, 4, 16, 64)),
       min_blocks=st.sampled_from((1, 2, 5, 16)))
def test_any_window_gives_the_same_scan(data: bytes, respell, mutations, chunking, small: int, large: int,
                                        min_blocks: int) -> None:
    """The window sizes and the least number of buffered blocks are tuning only: any values read the same
    (small ones make runs stop at a window's end all the time)."""
    from ocilens import tarbatch

    if respell is not None:
        data = _respell(data, respell, 0.5, signed=True)
    data = _mutate(data, mutations)
    saved = tarbatch.PlainParser.SMALL, tarbatch.PlainParser.LARGE, tarbatch.MIN_BLOCKS
    tarbatch.PlainParser.SMALL, tarbatch.PlainParser.LARGE = small, max(small, large)
    tarbatch.MIN_BLOCKS = min_blocks
    try:
        _same_both_ways(data, chunking)
    finally:
        tarbatch.PlainParser.SMALL, tarbatch.PlainParser.LARGE, tarbatch.MIN_BLOCKS = saved


# -- plain tests: the generators above really do exercise runs -------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("chunking", [1 << 20, 65536, 9000, (3, 20000)])
def test_runs_happen_and_end_anywhere(fmt: int, chunking) -> None:
    specs = _tiny_run(1, 120, 0) + [("f", "z" * 140, 5, "", 0o644, 0, 0, 0, (0, 0))] + _tiny_run(2, 200, 1) + \
        [("big", "big", 70_000, "", 0o644, 0, 0, 0, (0, 0))] + _tiny_run(3, 60, 2)
    data = _build(fmt, specs, 5, 2)
    scan, members, in_runs = _same_both_ways(data, chunking)
    assert isinstance(scan, dict)
    assert _as_truth(members) == _truth(data)
    _check_scan_against_truth(scan, data)
    assert in_runs > 0
    corrupt = bytearray(data)
    corrupt[_header_offsets(data)[300][0]] ^= 0x20  # a name byte deep inside a run: checksum mismatch
    scan, members, _ = _same_both_ways(bytes(corrupt), chunking)
    assert scan[0] is LayerDecodeError and "checksum" in scan[1]


def test_respelled_headers_stay_valid_for_tarfile() -> None:
    data = _build(tarfile.GNU_FORMAT, _tiny_run(9, 80, 0), 1, 2)
    respelled = _respell(data, 4, 1.0)
    assert respelled != data

    def listing(archive: bytes) -> list[tuple]:
        return [(m.name.rstrip("/"), m.size if m.isreg() else 0, m.mode, m.uid, m.mtime)  # V7 dirs: slash gone
                for m in tarfile.open(fileobj=io.BytesIO(archive))]

    assert listing(respelled) == listing(data)


# -- what the fuzzing found, fixed: regression tests ----------------------------------------------------------

def test_anomalies_keep_tar_order_with_runs() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.GNU_FORMAT) as tf:
        link = tarfile.TarInfo("a/l")
        link.type, link.linkname = tarfile.SYMTYPE, "../../x"  # link_escapes_root
        tf.addfile(link)
        tf.addfile(tarfile.TarInfo("/abs"))  # unsafe_path
    data = buf.getvalue()  # 2 headers + end blocks + record padding: 20 blocks, enough for a run

    def anomalies(batch: bool) -> list:
        scan = LayerScan(digest="sha256:x")
        with _Patched(batch) as p:
            _read_entries(TarReader(iter([data])), scan)
        assert p.in_runs == (2 if batch else 0)
        return [kind for _, kind, _ in scan.anomalies]

    assert anomalies(False) == ["link_escapes_root", "unsafe_path"]
    assert anomalies(True) == ["link_escapes_root", "unsafe_path"]  # got ["unsafe_path", "link_escapes_root"]


def test_pax_mtime_infinity_is_a_decode_error() -> None:
    ti = tarfile.TarInfo("f")
    ti.pax_headers = {"mtime": "inf"}
    data = ti.tobuf(format=tarfile.PAX_FORMAT) + bytes(1024)
    for batch in (True, False):
        scan, _ = _scan(data, 1 << 20, batch)
        assert isinstance(scan, tuple) and scan[0] is LayerDecodeError, scan  # got OverflowError


def test_signed_checksum_is_accepted() -> None:
    ti = tarfile.TarInfo("caf\udce9")  # one byte > 127 in the name
    block = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"))
    _checksum(block, 0, signed=1)
    data = bytes(block) + bytes(1024)
    assert _truth(data) == [(b"caf\xe9", b"", 0x30, 0, 0o644, 0, 0, 0, 0, 0, hashlib.sha256(b"").hexdigest())]
    for batch in (True, False):
        members, _ = _members(data, 1 << 20, batch)
        assert _as_truth(members) == _truth(data), members  # got a LayerDecodeError: checksum mismatch
