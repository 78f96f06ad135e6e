"""The tar reader's inline fast path must read every header exactly as Python's ``tarfile`` does (the
independent truth), in every format tarfile writes, and hand anything unusual to the general parser."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from ocilens.errors import LayerDecodeError
from ocilens.tarstream import TarReader


def _chunks(data: bytes, size: int):
    return iter([data[i : i + size] for i in range(0, len(data), size)])


def _ours(data: bytes, chunk: int = 1 << 20) -> list[tuple]:
    reader = TarReader(_chunks(data, chunk))
    out = []
    for h in reader:
        body = reader.read_bytes() if h.type in (0x30, 0x00, 0x37) else b""
        name = h.name.rstrip(b"/")  # tarfile drops a directory's trailing slash
        out.append((name, h.linkname, h.type, h.size, h.mode, h.uid, h.gid, h.mtime, h.devmajor, h.devminor,
                    body))
    return out


def _truth(data: bytes) -> list[tuple]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            body = tf.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            out.append((m.name.encode("utf-8", "surrogateescape"), m.linkname.encode("utf-8", "surrogateescape"),
                        ord(m.type), m.size if m.isreg() else 0, m.mode & 0o7777, m.uid, m.gid, int(m.mtime),
                        m.devmajor if m.ischr() or m.isblk() else 0, m.devminor if m.ischr() or m.isblk() else 0,
                        body))
    return out


def _archive(fmt: int, count: int = 300) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=fmt) as tf:
        for i in range(count):
            ti = tarfile.TarInfo(f"usr/share/d{i % 7}/file-{i:05d}.txt")
            data = (b"%d " % i) * (i % 97)
            ti.size = len(data)
            ti.mode = (0o644, 0o755, 0o4711, 0o600)[i % 4]
            ti.uid, ti.gid = (0, 0) if i % 3 else (1000 + i, 2000 + i)  # past the memo of repeated values
            ti.mtime = 1_700_000_000 + (i if i % 2 else 0)
            tf.addfile(ti, io.BytesIO(data))
        for kind, name in ((tarfile.DIRTYPE, "usr/share/d0"), (tarfile.SYMTYPE, "usr/bin/sh"),
                           (tarfile.LNKTYPE, "usr/share/d1/hard"), (tarfile.CHRTYPE, "dev/null"),
                           (tarfile.FIFOTYPE, "run/fifo")):
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.linkname = {"usr/bin/sh": "dash", "usr/share/d1/hard": "usr/share/d1/file-00001.txt"}.get(name, "")
            ti.devmajor, ti.devminor = (1, 3) if kind == tarfile.CHRTYPE else (0, 0)
            tf.addfile(ti)
        long = tarfile.TarInfo("opt/" + "x" * 150 + "/long-name.txt")  # GNU longname, PAX path or ustar prefix
        long.size = 3
        tf.addfile(long, io.BytesIO(b"abc"))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1 << 20, 700, 512])
def test_every_header_reads_as_tarfile_reads_it(fmt: int, chunk: int) -> None:
    data = _archive(fmt)
    assert _ours(data, chunk) == _truth(data)


def test_gnu_headers_with_access_times_in_the_prefix_area() -> None:
    """Old GNU headers keep atime/ctime where ustar keeps its name prefix. GNU tar (the truth here; Python's
    tarfile reads them as a prefix) does not prefix the name with them, and neither do we."""
    ti = tarfile.TarInfo("etc/hostname")
    ti.size = 5
    block = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    assert block[257:265] == b"ustar  \0"
    block[345:357] = b"14557244250\0"  # atime
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    data = bytes(block) + b"hello".ljust(512, b"\0") + bytes(1024)
    listed = subprocess.run(["tar", "-tf", "-"], input=data, capture_output=True, check=True).stdout
    assert listed == b"etc/hostname\n"
    assert _ours(data) == [(b"etc/hostname", b"", 0x30, 5, 0o644, 0, 0, 0, 0, 0, b"hello")]


def test_base256_numbers_and_a_bad_checksum_go_to_the_general_parser() -> None:
    ti = tarfile.TarInfo("big")
    ti.uid = 8**8 + 5  # too large for octal: GNU base-256
    data = ti.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024)
    assert _ours(data) == _truth(data)
    corrupt = bytearray(data)
    corrupt[0] ^= 1  # the name changes, the stored checksum does not
    with pytest.raises(LayerDecodeError, match="checksum"):
        _ours(bytes(corrupt))
