"""GNU sparse members: read as the regular files they stand for, extracted with their holes.

The real cases are tars that GNU tar writes with ``--sparse`` from real sparse files, in all four formats
(old GNU ``S`` headers with extension blocks, and PAX 0.0, 0.1 and 1.0). The truth is the original file
(name, size, sha256 of its bytes) and, for the PAX formats, ``umoci unpack`` of the same image. Old GNU
``S`` members are read as GNU tar, Go's archive/tar and Python's tarfile read them; umoci 0.4 refuses them
(``unknown typeflag 'S'``), so for those the original file is the only truth.

The hostile cases (maps that overlap, run past the file, disagree with the stored bytes, or are not
numbers) are written by hand: no tool writes them. Each must be a ``LayerDecodeError``.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import tarfile
from pathlib import Path

import pandas as pd
import pytest

import ocilens
from ocilens.errors import LayerDecodeError
from imagebuild import add_raw_layer, layout_from_tars, tree_of, umoci_image, umoci_unpack

KB = 1024
MB = 1024 * KB
FORMATS = {  # name -> GNU tar options
    "gnu": ["--format=gnu"],
    "pax-1.0": ["--format=posix", "--sparse-version=1.0"],
    "pax-0.1": ["--format=posix", "--sparse-version=0.1"],
    "pax-0.0": ["--format=posix", "--sparse-version=0.0"],
}


def _sparse_files(root: Path) -> dict[str, Path]:
    """Real sparse files: 30 islands of data (more than an old GNU header and its first extension block
    hold), data then a trailing hole, and nothing but a hole; plain files around them."""
    rnd = random.Random(6)
    root.mkdir()
    (root / "a-before.txt").write_bytes(b"before\n")
    islands = root / "islands.bin"
    with open(islands, "wb") as f:
        for k in range(30):  # 4 KiB-aligned, so that the file system (and tar's SEEK_DATA) keeps the holes
            f.seek(k * 192 * KB + (k % 3) * 4 * KB)
            f.write(rnd.randbytes(4 * KB * (1 + k % 5)))
        f.truncate(6 * MB + 123)
    tail = root / "tailhole.bin"
    with open(tail, "wb") as f:
        f.write(rnd.randbytes(1 * MB + 8 * KB))  # crosses the 1 MiB read chunks
        f.truncate(3 * MB)
    empty = root / "allhole.bin"
    with open(empty, "wb") as f:
        f.truncate(2 * MB)
    (root / "z-after.txt").write_bytes(b"after\n")
    return {"/islands.bin": islands, "/tailhole.bin": tail, "/allhole.bin": empty}


@pytest.fixture(scope="module")
def sparse_tars(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, bytes]]:
    base = tmp_path_factory.mktemp("sparse")
    files = _sparse_files(base / "root")
    tars = {}
    for name, opts in FORMATS.items():
        out = base / f"{name}.tar"
        subprocess.run(["tar", "--sparse", *opts, "-cf", out, "-C", base / "root",
                        "a-before.txt", "islands.bin", "tailhole.bin", "allhole.bin", "z-after.txt"], check=True)
        tars[name] = out.read_bytes()
    return files, tars


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_gnu_tar_wrote_what_the_cases_claim(sparse_tars) -> None:
    """The inputs exercise the formats: tarfile sees sparse members, old GNU ones with extension blocks."""
    _, tars = sparse_tars
    for name, data in tars.items():
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            members = {m.name: m for m in t}
        islands = members["islands.bin"]
        assert islands.sparse is not None, name
        assert len([s for s in islands.sparse if s[1]]) > 25, name  # > 4 + 21 entries: two extension blocks
        if name == "gnu":
            assert islands.type == tarfile.GNUTYPE_SPARSE
        else:
            assert islands.type == tarfile.REGTYPE


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_sparse_members_are_their_real_files(tmp_path: Path, sparse_tars, fmt: str) -> None:
    """Path, size and content digest are those of the original file; no anomaly; extraction gives back the
    same bytes, with the holes left as holes."""
    files, tars = sparse_tars
    layout = umoci_image(tmp_path, [])
    add_raw_layer(layout, "t", tars[fmt])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    rows = img.files.set_index("path")
    assert sorted(rows.index) == ["/a-before.txt", "/allhole.bin", "/islands.bin", "/tailhole.bin", "/z-after.txt"]
    for path, original in files.items():
        assert rows.loc[path, "type"] == "file"
        assert rows.loc[path, "size"] == original.stat().st_size, path
        assert rows.loc[path, "digest"] == _sha(original), path
    assert img.anomalies.empty, img.anomalies

    out = tmp_path / "ours"
    img.extract(out)
    for path, original in files.items():
        assert _sha(out / path.lstrip("/")) == _sha(original), path
        assert (out / path.lstrip("/")).stat().st_size == original.stat().st_size
    hole = (out / "allhole.bin").stat()
    assert hole.st_blocks * 512 < hole.st_size  # a hole, not 2 MiB of zeros written out

    if fmt != "gnu":  # umoci reads the PAX formats (Go's archive/tar); its tree is the truth
        theirs = tree_of(umoci_unpack(layout, "t", tmp_path / "bundle"))
        mine = tree_of(out)
        keys = ("type", "size", "sha256", "mode")
        assert {p: [n[k] for k in keys] for p, n in mine.items()} == \
               {p: [n[k] for k in keys] for p, n in theirs.items()}


def test_a_cached_scan_keeps_the_sparse_reading(tmp_path: Path, sparse_tars, monkeypatch) -> None:
    """The scan cache round-trips the real sizes (and a second load reads it)."""
    files, tars = sparse_tars
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    layout = layout_from_tars(tmp_path, [tars["pax-1.0"]], "zstd")
    first = ocilens.load(f"oci:{layout}:t", progress=False).files.set_index("path")
    second = ocilens.load(f"oci:{layout}:t", progress=False).files.set_index("path")
    assert second.loc["/islands.bin", "size"] == files["/islands.bin"].stat().st_size
    assert first.equals(second)


# ----------------------------------------------------------------------------------- hostile tars


def _octal(value: int, width: int) -> bytes:
    """An octal field, or GNU base-256 (high bit set) for a value octal digits cannot hold."""
    if value >= 8 ** (width - 1):
        return b"\x80" + value.to_bytes(width - 1, "big")
    return f"{value:0{width - 1}o}".encode() + b"\x00"


def _block(name: bytes, size: int, typeflag: bytes, fields: dict[int, bytes] | None = None,
           magic: bytes = b"ustar  \x00") -> bytes:
    """One header block with a correct checksum; ``fields`` are (offset -> bytes) written in."""
    b = bytearray(512)
    b[0:len(name)] = name
    b[100:108], b[108:116], b[116:124] = _octal(0o644, 8), _octal(0, 8), _octal(0, 8)
    b[124:136], b[136:148] = _octal(size, 12), _octal(1_700_000_000, 12)
    b[156:157] = typeflag
    b[257:265] = magic
    for offset, data in (fields or {}).items():
        b[offset:offset + len(data)] = data
    b[148:156] = b" " * 8
    b[148:156] = f"{sum(b):06o}".encode() + b"\x00 "
    return bytes(b)


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def _old_gnu(pieces: list[tuple[int, int]], realsize: int, stored: bytes, name: bytes = b"f") -> bytes:
    fields = {483: _octal(realsize, 12)}
    for k, (offset, length) in enumerate(pieces[:4]):
        fields[386 + 24 * k] = _octal(offset, 12)
        fields[398 + 24 * k] = _octal(length, 12)
    return _block(name, len(stored), b"S", fields) + _pad(stored) + bytes(1024)


def _pax(records: dict[str, str] | list[tuple[str, str]], data: bytes, name: bytes = b"GNUSparseFile.0/f") -> bytes:
    body = b""
    for key, value in (records.items() if isinstance(records, dict) else records):
        rec = f" {key}={value}\n".encode()
        n = len(rec) + 1
        while len(str(n)) + len(rec) != n:
            n += 1
        body += str(n).encode() + rec
    return (_block(b"PaxHeaders/f", len(body), b"x", magic=b"ustar\x0000") + _pad(body)
            + _block(name, len(data), b"0", magic=b"ustar\x0000") + _pad(data) + bytes(1024))


def _v1(realsize: int, map_text: bytes, stored: bytes) -> bytes:
    return _pax({"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "f",
                 "GNU.sparse.realsize": str(realsize)}, _pad(map_text) + stored)


def _load_files(tmp_path: Path, tar: bytes):
    layout = layout_from_tars(tmp_path, [tar])
    return ocilens.load(f"oci:{layout}:t", cache=False, progress=False).files.set_index("path")


def test_hand_written_sparse_members_read_as_tarfile_reads_them(tmp_path: Path) -> None:
    """The builders below are right: a well-formed member of each kind reads as tarfile expands it."""
    stored = b"A" * 600 + b"B" * 100
    for tar in (_old_gnu([(1000, 600), (5000, 100)], 8000, stored),
                _v1(8000, b"2\n1000\n600\n5000\n100\n", stored),
                _pax({"GNU.sparse.size": "8000", "GNU.sparse.numblocks": "2", "GNU.sparse.name": "f",
                      "GNU.sparse.map": "1000,600,5000,100"}, stored)):
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            member = next(m for m in t if m.name == "f")
            expected = t.extractfile(member).read()
        assert len(expected) == 8000
        rows = _load_files(tmp_path, tar)
        assert rows.loc["/f", "size"] == 8000
        assert rows.loc["/f", "digest"] == hashlib.sha256(expected).hexdigest()


STORED = b"x" * 700
HOSTILE = {
    "overlapping pieces": _old_gnu([(1000, 600), (1500, 100)], 8000, STORED),
    "a piece past the real size": _old_gnu([(1000, 600), (7950, 100)], 8000, STORED),
    "pieces that are not the stored bytes": _old_gnu([(1000, 600), (5000, 50)], 8000, STORED),
    "a 1.0 map longer than the data": _v1(8000, b"900\n" + b"1\n1\n" * 10, b""),
    "a 1.0 map that is not numbers": _v1(8000, b"2\n1000\nsix hundred\n5000\n100\n", STORED),
    "a negative 1.0 count": _v1(8000, b"-1\n", STORED),
    "a 1.0 map over 1 MiB": _v1(8000, b"1\n" + b"0" * ((1 << 20) + 1024), STORED),
    "a 0.1 map of odd length": _pax({"GNU.sparse.size": "8000", "GNU.sparse.map": "1000,600,5000"}, STORED),
    "a 0.1 map disagreeing with numblocks": _pax({"GNU.sparse.size": "8000", "GNU.sparse.numblocks": "3",
                                                  "GNU.sparse.map": "1000,600,5000,100"}, STORED),
    "0.0 records out of turn": _pax({"GNU.sparse.size": "8000", "GNU.sparse.numbytes": "600"}, STORED),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_malformed_sparse_maps_are_decode_errors(tmp_path: Path, case: str) -> None:
    with pytest.raises(LayerDecodeError, match="sparse") as info:
        _load_files(tmp_path, HOSTILE[case])
    assert info.value.layer == 0


def test_meta_records_over_1_mib_are_refused_as_go_refuses_them(tmp_path: Path) -> None:
    """A PAX record set bigger than Go's archive/tar accepts (so no runtime could pull the image) is an error
    naming its offset, not a buffer of whatever size the header claims."""
    with pytest.raises(LayerDecodeError, match="over the 1 MiB") as info:
        _load_files(tmp_path, _pax({"comment": "x" * (1 << 20)}, STORED, name=b"f"))
    assert "offset 0" in str(info.value)


def test_unknown_sparse_version_is_the_plain_file_it_claims_to_be(tmp_path: Path) -> None:
    """A PAX sparse version this reader does not know is left alone, as Go's archive/tar leaves it."""
    tar = _pax({"GNU.sparse.major": "2", "GNU.sparse.minor": "0", "GNU.sparse.name": "f",
                "GNU.sparse.realsize": "8000"}, STORED, name=b"plain")
    rows = _load_files(tmp_path, tar)
    assert list(rows.index) == ["/plain"]
    assert rows.loc["/plain", "size"] == len(STORED)
    assert rows.loc["/plain", "digest"] == hashlib.sha256(STORED).hexdigest()


def test_a_sparse_file_of_huge_holes_is_not_hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Holes beyond the hashing budget (a few hundred bytes of tar can claim exabytes): no digest, an anomaly
    that says why, no waiting; a second such file is not "the same content" as the first; extraction still
    writes it, holes as holes."""
    import ocilens.scan

    monkeypatch.setattr(ocilens.scan, "SPARSE_HASH_LIMIT", 1 << 20)  # the rule, at a size a test can check
    huge = 1 << 62
    member = _old_gnu([(0, 600), (huge - 100, 100)], huge, STORED)
    layout = layout_from_tars(tmp_path, [member, member])  # the same file twice: added, then overwritten
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    rows = img.files.set_index("path")
    assert rows.loc["/f", "size"] == huge and pd.isna(rows.loc["/f", "digest"])
    events = img.events
    assert list(events["event"]) == ["added", "overwritten"]
    assert bool(events["content_changed"].iloc[1]) is True  # unknown content is not "metadata only"
    kinds = img.anomalies[["path", "kind"]].drop_duplicates()
    assert kinds.values.tolist() == [["/f", "sparse_unhashed"]]
    assert f"{huge - 700:,}" in img.anomalies["detail"].iloc[0]
    out = tmp_path / "out"
    try:
        img.extract(out)
    except ocilens.errors.ExtractionError as exc:  # file systems cap file sizes (ext4: 16 TiB)
        assert exc.path == "/f" and "layer 1" in str(exc)
    else:
        assert (out / "f").stat().st_size == huge


def test_extraction_of_a_sparse_member_stays_inside_its_file(tmp_path: Path) -> None:
    """Holes are seeks inside the file being written: nothing else in the target changes size."""
    tar = _old_gnu([(0, 600), (5000, 100)], 1 << 28, STORED)
    layout = layout_from_tars(tmp_path, [tar])
    out = tmp_path / "out"
    ocilens.load(f"oci:{layout}:t", cache=False, progress=False).extract(out)
    st = os.stat(out / "f")
    assert st.st_size == 1 << 28
    assert st.st_blocks * 512 < 1 << 20
    with open(out / "f", "rb") as f:
        assert f.read(600) == STORED[:600]
        f.seek(5000)
        assert f.read(100) == STORED[600:]
    assert sorted(os.listdir(out)) == ["f"]


def test_times_beyond_int64_are_decode_errors(tmp_path: Path) -> None:
    """A PAX mtime or a base-256 mtime field past int64 (Go's limit) is a LayerDecodeError, not an overflow
    in the tables or the extraction."""
    for tar in (_pax({"mtime": str(1 << 64)}, STORED, name=b"f"),
                _block(b"f", 0, b"0", {136: b"\x80" + (1 << 70).to_bytes(11, "big")}) + bytes(1024)):
        with pytest.raises(LayerDecodeError, match="mtime|numeric"):
            _load_files(tmp_path, tar)


def test_sparse_0_0_records_are_read_in_linear_time(tmp_path: Path) -> None:
    """Tens of thousands of GNU.sparse.offset/numbytes records (format 0.0) in one header are joined once,
    not re-joined per record."""
    pieces = [(k * 4096, 1) for k in range(15_000)]
    records = [("GNU.sparse.size", str(15_000 * 4096)), ("GNU.sparse.name", "f")]
    records += [kv for o, n in pieces for kv in (("GNU.sparse.offset", str(o)), ("GNU.sparse.numbytes", str(n)))]
    rows = _load_files(tmp_path, _pax(records, b"x" * len(pieces)))
    assert rows.loc["/f", "size"] == 15_000 * 4096


def test_the_hole_hashing_budget_is_per_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many files just under the limit are no way around it: the budget is the layer's, and the file that
    would pass it is not hashed."""
    import ocilens.scan

    monkeypatch.setattr(ocilens.scan, "SPARSE_HASH_LIMIT", 3 << 20)
    files = b"".join(_old_gnu([(0, 700)], 1 << 20, STORED, f"f{k}".encode())[:-1024] for k in range(5)) + bytes(1024)
    img = ocilens.load(f"oci:{layout_from_tars(tmp_path, [files])}:t", cache=False, progress=False)
    digests = img.files.set_index("path")["digest"]
    hashed = [p for p in digests.index if not pd.isna(digests[p])]
    assert len(hashed) == 3  # 3 MiB of holes in all, about 1 MiB each
    assert sorted(img.anomalies["path"]) == sorted(set(digests.index) - set(hashed))
