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


# -- runs of plain members (tarbatch): the scan must come out the same as header by header ----------------

def _scan(data: bytes, chunk: int, batch: bool, monkeypatch: pytest.MonkeyPatch) -> dict:
    from ocilens.scan import LayerScan, _read_entries

    runs = []
    if batch:
        take = TarReader.take_plain

        def counted(self: TarReader, hash_data: bool = False):  # type: ignore[no-untyped-def]
            run = take(self, hash_data)
            if run is not None:
                runs.append(len(run.names))
            return run

        monkeypatch.setattr(TarReader, "take_plain", counted)
    else:
        monkeypatch.setattr(TarReader, "take_plain", lambda self, hash_data=False: None)
    scan = LayerScan(digest="sha256:x")
    try:
        _read_entries(TarReader(_chunks(data, chunk)), scan)
    finally:
        monkeypatch.undo()
    out = dict(vars(scan))
    out["ordinals"] = list(scan.ordinals)
    out["_in_runs"] = sum(runs)  # members read in runs (not compared)
    return out


def _mixed(fmt: int, seed: int = 0) -> bytes:
    """Tiny files in their thousands, with everything else a layer holds mixed in."""
    rnd = __import__("random").Random(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=fmt) as tf:
        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object) -> None:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            ti.mode, ti.mtime = kw.pop("mode", 0o644), kw.pop("mtime", 1_700_000_000)
            for k, v in kw.items():
                setattr(ti, k, v)
            tf.addfile(ti, io.BytesIO(data) if ti.size else None)

        add("./", tarfile.DIRTYPE, mode=0o755)
        for i in range(3000):
            d = f"./srv/d{i % 13}"
            if i % 13 == i % 7:
                add(d + "/", tarfile.DIRTYPE, mode=0o755)
            roll = rnd.random()
            if roll < 0.70:
                add(f"{d}/f{i}.txt", data=rnd.randbytes(rnd.choice((0, 1, 100, 511, 512, 513, 4000))),
                    uid=rnd.choice((0, 0, 33, 65534)), mtime=1_700_000_000 + rnd.choice((0, 0, i)))
            elif roll < 0.75:
                add(f"{d}/big{i}", data=rnd.randbytes(rnd.choice((70_000, 300_000))))
            elif roll < 0.80:
                add(f"{d}/ln{i}", tarfile.SYMTYPE, linkname=rnd.choice(("f1.txt", "../../../../etc", "/abs")))
            elif roll < 0.83:
                add(f"{d}/hl{i}", tarfile.LNKTYPE, linkname="srv/d0/f0.txt")
            elif roll < 0.85:
                add(f"{d}/.wh.f{i - 1}.txt")
            elif roll < 0.86:
                add(f"{d}/.wh..wh..opq")
            elif roll < 0.87:
                add(f"{d}/" + "long-" * 30 + f"{i}", data=b"long name")
            elif roll < 0.88:
                add(f"{d}/fifo{i}", tarfile.FIFOTYPE)
            elif roll < 0.89:
                add(f"dev/null{i}", tarfile.CHRTYPE, devmajor=1, devminor=3)
            elif roll < 0.90:
                add(f"{d}/../../escape{i}", data=b"x")
            elif roll < 0.91:
                add(f"{d}/big-uid{i}", data=b"y", uid=3_000_000)  # base-256 (GNU) or PAX
            elif roll < 0.92:
                add(f"{d}/x{i}", data=b"z", pax_headers={"SCHILY.xattr.user.k": "v"}) \
                    if fmt == tarfile.PAX_FORMAT else add(f"{d}/x{i}", data=b"z")
            else:
                add(f"{d}/e{i}", data=b"")
        add("var/lib/dpkg/status", data=b"Package: x\nVersion: 1\n\n")
        add("usr/lib/python3/dist-packages/a-1.dist-info/METADATA", data=b"Name: a\nVersion: 1\n")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1 << 20, 65536, 4096, 700])
def test_runs_and_single_headers_tabulate_the_same(fmt: int, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        data = _mixed(fmt)
    except ValueError:  # ustar cannot hold what some entries need
        data = _mixed(fmt, seed=1) if fmt != tarfile.USTAR_FORMAT else _archive(fmt, 3000)
    batched = _scan(data, chunk, True, monkeypatch)
    single = _scan(data, chunk, False, monkeypatch)
    in_runs = batched.pop("_in_runs")
    assert single.pop("_in_runs") == 0
    assert batched == single
    if chunk >= 65536:  # smaller chunks hold fewer blocks than a run is worth
        assert in_runs > batched["members"] // 2  # most of them, here, went the fast way
    # and against tarfile: every member, in order
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(data))]
    assert batched["members"] == len(names)


def test_a_bad_header_inside_a_run_is_still_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytearray(_archive(tarfile.GNU_FORMAT, 400))
    # corrupt the name of a header deep inside what would be one run: the checksum no longer matches
    offsets = [m.offset for m in tarfile.open(fileobj=io.BytesIO(bytes(data)))]
    data[offsets[250]] ^= 0x01
    for batch in (True, False):
        with pytest.raises(LayerDecodeError, match="checksum"):
            _scan(bytes(data), 1 << 20, batch, monkeypatch)


def test_numbers_written_with_spaces_are_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Old tars pad numbers with spaces ("   644 \\0"): such headers leave the run and read as before."""
    out = bytearray()
    for i in range(100):
        ti = tarfile.TarInfo(f"f{i}")
        ti.size = 3
        block = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
        if i % 3 == 0:
            block[100:108] = b"   644 \0"
            block[148:156] = b" " * 8
            block[148:156] = b"%6o\0 " % sum(block) + b""
            block[148:156] = block[148:156][:8]
        out += block + b"abc".ljust(512, b"\0")
    out += bytes(1024)
    data = bytes(out)
    batched, single = _scan(data, 1 << 20, True, monkeypatch), _scan(data, 1 << 20, False, monkeypatch)
    assert batched.pop("_in_runs") > 0
    single.pop("_in_runs")
    assert batched == single
    assert _scan(data, 1 << 20, True, monkeypatch)["modes"] == [0o644] * 100


@pytest.mark.parametrize("count", [1, 40])  # alone (header by header) and inside a run
def test_old_style_directories_are_directories(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A V7 tar marks a directory as a regular entry whose name ends in "/": tarfile and Go's archive/tar
    (so runtimes and umoci) read a directory, and so does the scan."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.GNU_FORMAT) as tf:
        for i in range(count):
            d = tarfile.TarInfo(f"old{i}/")
            d.type = tarfile.AREGTYPE
            d.mode = 0o755
            tf.addfile(d)
            f = tarfile.TarInfo(f"old{i}/file")
            f.size = 2
            tf.addfile(f, io.BytesIO(b"hi"))
    data = buf.getvalue()
    truth = {m.name: m.type for m in tarfile.open(fileobj=io.BytesIO(data))}
    assert truth["old0"] == tarfile.DIRTYPE
    for batch in (True, False):
        scan = _scan(data, 1 << 20, batch, monkeypatch)
        kinds = dict(zip(scan["paths"], scan["types"]))
        assert kinds["/old0"] == "d" and kinds["/old0/file"] == "f"
        assert scan["digests"][scan["paths"].index("/old0")] is None
