"""Layer decoding: gzip (several members), zstd (several frames), plain tar, chosen by the bytes; broken
streams and blobs that are not what their descriptor says raise typed errors naming the layer."""

from __future__ import annotations

import gzip
import io
import hashlib
import json
import os
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

import ocilens
from imagebuild import (Entry, Layer, add_raw_layer, blob_path, gzip_members, layer_blob_paths, layout_from_tars,
                        manifest_of, tar_layer, to_archive, umoci_image, umoci_unpack, zstd_frames)

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
ZST = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR = "application/vnd.oci.image.layer.v1.tar"


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def payload_entries(n_small: int = 40) -> list[Entry]:
    """A directory, many small files and a few large incompressible ones (so member and frame boundaries
    fall inside file data, and across the decoder's 1 MiB and 128 KiB chunks)."""
    rnd = random.Random(7)
    entries = [Entry.dir("data")]
    entries += [Entry.file(f"data/small-{i:03d}", f"file {i}\n" * (i + 1)) for i in range(n_small)]
    entries += [Entry.file(f"data/big-{i}", rnd.randbytes(size)) for i, size in enumerate((300_000, 1_200_000, 70_001))]
    entries += [Entry.symlink("data/link", "small-000"), Entry.file("data/empty", b"")]
    return entries


ENTRIES = payload_entries()
TAR_BYTES = tar_layer(ENTRIES)


def load(layout: Path, **kw: Any) -> ocilens.Image:
    return ocilens.load(f"oci:{layout}:t", cache=False, **kw)


def _uncompressed(blob: bytes) -> bytes | None:
    """The tar inside ``blob`` (every gzip member, every zstd frame), or None when it does not decode."""
    try:
        if blob[:2] == b"\x1f\x8b":
            return gzip.decompress(blob)
        if blob[:4] == b"\x28\xb5\x2f\xfd":
            out, rest = [], blob
            while rest:
                d = zstandard.ZstdDecompressor().decompressobj()
                out.append(d.decompress(rest))
                if not d.eof:
                    return None
                rest = d.unused_data
            return b"".join(out)
    except (OSError, EOFError, zstandard.ZstdError):
        return None
    return blob


def layout_with_blob(tmp_path: Path, blob: bytes, media_type: str = GZ) -> Path:
    """A one-layer layout whose layer blob is exactly ``blob`` (descriptor digest and size match it), and
    whose config's diff_id is the digest of the tar inside it when that decodes (as the spec asks)."""
    tar = _uncompressed(blob)
    config = {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}} if tar else None
    return layout_from_tars(tmp_path, [blob], "none", media_types=[media_type], config=config)


def layer_digest(layout: Path, i: int = 0) -> str:
    return manifest_of(layout, "t")["layers"][i]["digest"]


# ------------------------------------------------------------------------------------------ read fully


@pytest.mark.parametrize("compression,fmt", [("gzip", "gzip"), ("gzip-multi", "gzip"), ("zstd", "zstd"),
                                             ("zstd-multi", "zstd"), ("none", "tar")])
def test_every_encoding_is_read_to_the_end(tmp_path: Path, compression: str, fmt: str) -> None:
    layout = layout_from_tars(tmp_path, [TAR_BYTES], compression)
    blob = layer_blob_paths(layout, "t")[0].read_bytes()
    if compression == "gzip-multi":  # the construction: really several members
        assert blob.count(b"\x1f\x8b\x08") >= 3 and gzip.decompress(blob) == TAR_BYTES
    if compression == "zstd-multi":
        assert blob.count(b"\x28\xb5\x2f\xfd") >= 3
    img = load(layout)
    ev = img.events
    assert len(ev) == len(ENTRIES) and set(ev["event"]) == {"added"}
    files = {r["path"]: r for r in img.files.to_dict("records")}
    for e in ENTRIES:
        if e.type == "file":
            assert files["/" + str(e.name)]["digest"] == sha(e.content), e.name
    layer = img.layers.iloc[0]
    assert layer["compression"] == fmt
    assert int(layer["uncompressed_size"]) == len(TAR_BYTES)
    assert int(layer["compressed_size"]) == len(blob)
    assert int(layer["entries"]) == len(ENTRIES)


def test_many_tiny_gzip_members_and_zstd_frames(tmp_path: Path) -> None:
    """Hundreds of members/frames, some holding only part of a header."""
    tar = tar_layer([Entry.file(f"f{i}", f"{i}") for i in range(30)])
    for blob, media_type in ((gzip_members(tar, parts=300), GZ), (zstd_frames(tar, parts=300), ZST)):
        img = load(layout_with_blob(tmp_path, blob, media_type))
        assert len(img.events) == 30
        assert {r["path"]: r["digest"] for r in img.files.to_dict("records")}["/f29"] == sha("29")


def test_zstd_with_skippable_frame_and_checksums(tmp_path: Path) -> None:
    """A skippable frame (magic 0x184D2A5?) between data frames is allowed by RFC 8878."""
    half = len(TAR_BYTES) // 2
    cctx = zstandard.ZstdCompressor(write_checksum=True)
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    blob = cctx.compress(TAR_BYTES[:half]) + skippable + cctx.compress(TAR_BYTES[half:])
    img = load(layout_with_blob(tmp_path, blob, ZST))
    assert len(img.events) == len(ENTRIES)


def test_gzip_with_trailing_zero_padding(tmp_path: Path) -> None:
    """Zero bytes after the last member (tape-style padding) are tolerated, as ``gzip -dc`` does."""
    img = load(layout_with_blob(tmp_path, gzip.compress(TAR_BYTES) + bytes(1024), GZ))
    assert len(img.events) == len(ENTRIES)


def test_tar_without_end_of_archive_blocks(tmp_path: Path) -> None:
    """``umoci insert`` style tars end right after the last member."""
    tar = tar_layer([Entry.file("a", "a"), Entry.file("b", "b" * 600)], eof=False)
    for comp in ("gzip", "none", "zstd"):
        img = load(layout_from_tars(tmp_path, [tar], comp))
        assert sorted(img.files["path"]) == ["/a", "/b"]


@pytest.mark.parametrize("honest,lie", [("gzip", ZST), ("gzip", TAR), ("zstd", GZ), ("zstd", TAR), ("none", GZ),
                                        ("none", ZST), ("gzip", "application/vnd.docker.image.rootfs.diff.tar")])
def test_media_types_that_lie_still_decode(tmp_path: Path, honest: str, lie: str) -> None:
    layout = layout_from_tars(tmp_path, [TAR_BYTES], honest, media_types=[lie])
    assert manifest_of(layout, "t")["layers"][0]["mediaType"] == lie
    img = load(layout)
    assert len(img.events) == len(ENTRIES)
    assert img.layers.iloc[0]["compression"] == {"gzip": "gzip", "zstd": "zstd", "none": "tar"}[honest]
    assert img.layers.iloc[0]["media_type"] == lie


# ------------------------------------------------------------------------------------------ broken streams


def _assert_decode_error(layout: Path, index: int, exc_info: pytest.ExceptionInfo) -> None:
    err = exc_info.value
    digest = layer_digest(layout, index)
    assert err.digest == digest and err.layer == index
    assert digest in str(err)


def _two_layer_layout(tmp_path: Path, broken: bytes, media_type: str) -> Path:
    """Layer 0 healthy, layer 1 ``broken`` (so the error must name layer 1, not the first one)."""
    good = gzip.compress(tar_layer([Entry.file("ok", "ok")]))
    return layout_from_tars(tmp_path, [good, broken], "none", media_types=[GZ, media_type])


BROKEN = {
    "gzip-truncated-mid-stream": (lambda: gzip.compress(TAR_BYTES)[: len(gzip.compress(TAR_BYTES)) // 2], GZ),
    "gzip-missing-trailer": (lambda: gzip.compress(TAR_BYTES)[:-8], GZ),
    "gzip-second-member-truncated": (lambda: gzip_members(TAR_BYTES, 3)[:-5000], GZ),
    "gzip-corrupt-middle": (lambda: _flip(gzip.compress(TAR_BYTES), 0.5), GZ),
    "gzip-garbage-after": (lambda: gzip.compress(TAR_BYTES) + b"not gzip at all", GZ),
    "zstd-truncated": (lambda: zstandard.ZstdCompressor().compress(TAR_BYTES)[:-1000], ZST),
    "zstd-truncated-frame-boundary": (lambda: zstd_frames(TAR_BYTES, 3)[: len(zstd_frames(TAR_BYTES, 3)) // 2], ZST),
    "zstd-corrupt-middle": (lambda: _flip(zstandard.ZstdCompressor(write_checksum=True).compress(TAR_BYTES), 0.5), ZST),
    "tar-truncated-in-data": (lambda: TAR_BYTES[: len(TAR_BYTES) // 2 + 100], TAR),
    "tar-corrupt-header": (lambda: _flip(TAR_BYTES, 0, offset=512 * 3 + 20), TAR),
    "tar-truncated-in-header": (lambda: TAR_BYTES[:512 + 200], TAR),
}


def _flip(data: bytes, frac: float, offset: int | None = None) -> bytes:
    """``data`` with bytes near ``frac`` of its length (or at ``offset``) inverted."""
    at = int(len(data) * frac) if offset is None else offset
    b = bytearray(data)
    for i in range(at, at + 4):
        b[i] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_streams_raise_layer_decode_error_naming_the_layer(tmp_path: Path, case: str) -> None:
    make, media_type = BROKEN[case]
    layout = _two_layer_layout(tmp_path, make(), media_type)
    with pytest.raises(ocilens.LayerDecodeError) as info:
        load(layout)
    _assert_decode_error(layout, 1, info)


def test_tar_members_must_be_complete_even_when_the_tar_is_a_prefix_of_blocks(tmp_path: Path) -> None:
    """A plain tar cut on a 512-byte boundary inside a member's data is truncated, not finished."""
    tar = tar_layer([Entry.file("big", b"x" * 5000)])
    layout = _two_layer_layout(tmp_path, tar[: 512 * 4], TAR)
    with pytest.raises(ocilens.LayerDecodeError) as info:
        load(layout)
    _assert_decode_error(layout, 1, info)


# ------------------------------------------------------------------------------------------ integrity


def _flip_file(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_layer_blob_that_does_not_match_its_digest(tmp_path: Path) -> None:
    """A flipped byte the decoder cannot notice (in the gzip header's mtime, in plain file data)."""
    for comp, offset in (("gzip", 5), ("none", 1024 + 3)):  # gzip MTIME; small-000's data
        layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("ok", "ok")]), TAR_BYTES], comp)
        digest = layer_digest(layout, 1)
        _flip_file(blob_path(layout, digest), offset)
        with pytest.raises(ocilens.DigestMismatch) as info:
            load(layout)
        assert info.value.digest == digest and digest in str(info.value)
        assert info.value.actual == "sha256:" + sha(blob_path(layout, digest).read_bytes())


def test_corrupt_layer_blob_is_reported_as_a_digest_mismatch_or_names_the_digest(tmp_path: Path) -> None:
    """A flip in the middle of a gzip layer breaks both the stream and the digest; either error is typed
    and names the layer's digest."""
    layout = layout_from_tars(tmp_path, [TAR_BYTES], "gzip")
    digest = layer_digest(layout)
    path = blob_path(layout, digest)
    _flip_file(path, path.stat().st_size // 2)
    with pytest.raises((ocilens.DigestMismatch, ocilens.LayerDecodeError)) as info:
        load(layout)
    assert info.value.digest == digest and digest in str(info.value)


@pytest.mark.parametrize("which", ["config", "manifest"])
def test_config_and_manifest_blobs_are_verified(tmp_path: Path, which: str) -> None:
    layout = layout_from_tars(tmp_path, [TAR_BYTES])
    index = json.loads((layout / "index.json").read_text())
    man_digest = index["manifests"][0]["digest"]
    digest = man_digest if which == "manifest" else manifest_of(layout, "t")["config"]["digest"]
    path = blob_path(layout, digest)
    data = path.read_bytes()
    # swap two characters of a JSON string value: still valid JSON, same size, other digest
    i = data.index(b'"sha256:') + 10
    path.write_bytes(data[:i] + data[i + 1:i + 2] + data[i:i + 1] + data[i + 2:])
    assert path.read_bytes() != data and len(path.read_bytes()) == len(data)
    with pytest.raises(ocilens.DigestMismatch) as info:
        load(layout)
    assert info.value.digest == digest and digest in str(info.value)


@pytest.mark.parametrize("delta", [+1, -1, +100000])
def test_layer_size_that_lies_in_the_manifest(tmp_path: Path, delta: int) -> None:
    layout = layout_from_tars(tmp_path, [TAR_BYTES], "gzip")
    index = json.loads((layout / "index.json").read_text())
    manifest = manifest_of(layout, "t")
    true_size = manifest["layers"][0]["size"]
    manifest["layers"][0]["size"] = true_size + delta
    raw = json.dumps(manifest).encode()
    digest = "sha256:" + sha(raw)
    blob_path(layout, digest).write_bytes(raw)
    index["manifests"][0].update(digest=digest, size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(ocilens.SizeMismatch) as info:
        load(layout)
    err = info.value
    assert err.digest == manifest["layers"][0]["digest"] and err.digest in str(err)
    assert err.expected == true_size + delta
    if delta > 0:
        assert err.actual == true_size  # the whole blob was read: it is shorter than promised
    else:
        assert err.actual > err.expected  # stopped as soon as the blob ran long


def test_index_descriptor_size_that_lies(tmp_path: Path) -> None:
    layout = layout_from_tars(tmp_path, [TAR_BYTES])
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["size"] += 3
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(ocilens.SizeMismatch) as info:
        load(layout)
    assert info.value.digest == index["manifests"][0]["digest"]


def test_corrupt_blob_inside_an_oci_archive(tmp_path: Path) -> None:
    """The same verification through ``oci-archive:`` (the blob is read in place inside the tar)."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("ok", "ok")]), TAR_BYTES], "gzip")
    archive = to_archive(layout, "t", tmp_path / "image.tar")
    with tarfile.open(archive) as tf:
        index = json.load(tf.extractfile("index.json"))
        manifest = json.load(tf.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
        digest = manifest["layers"][1]["digest"]
        member = tf.getmember("blobs/sha256/" + digest.split(":")[1])
    data = bytearray(archive.read_bytes())
    assert data[member.offset_data:member.offset_data + 2] == b"\x1f\x8b"  # the construction: a gzip blob
    data[member.offset_data + 5] ^= 0x01  # its MTIME field: the stream still decodes
    archive.write_bytes(bytes(data))
    with pytest.raises(ocilens.DigestMismatch) as info:
        ocilens.load(f"oci-archive:{archive}:t", cache=False)
    assert info.value.digest == digest and digest in str(info.value)


def test_corrupt_layer_inside_a_docker_archive(tmp_path: Path) -> None:
    """docker-archive layers are named by their uncompressed digest (the diff_id): verified as well."""
    layout = layout_from_tars(tmp_path, [TAR_BYTES], "gzip")
    archive = to_archive(layout, "t", tmp_path / "docker.tar", "docker-archive")
    data = bytearray(archive.read_bytes())
    at = bytes(data).index(ENTRIES[5].content)
    data[at] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(ocilens.DigestMismatch) as info:
        ocilens.load(f"docker-archive:{archive}", cache=False)
    assert info.value.digest == "sha256:" + sha(TAR_BYTES)


def test_errors_are_caught_by_the_base_class(tmp_path: Path) -> None:
    layout = _two_layer_layout(tmp_path, BROKEN["gzip-missing-trailer"][0](), GZ)
    with pytest.raises(ocilens.OcilensError):
        load(layout)
    assert issubclass(ocilens.DigestMismatch, ocilens.IntegrityError)
    assert issubclass(ocilens.SizeMismatch, ocilens.IntegrityError)


def test_a_failed_scan_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer that failed to decode is not remembered as good: fixing the blob fixes the load."""
    # A cache of this test's own, empty: the session's may already hold a scan of these bytes (other tests
    # here load TAR_BYTES too), and then nothing would be tested.
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(cache))
    good = gzip.compress(TAR_BYTES)
    layout = layout_with_blob(tmp_path, good, GZ)
    digest = layer_digest(layout)
    path = blob_path(layout, digest)
    path.write_bytes(good[:-8])  # now the blob is wrong (and truncated)
    with pytest.raises(ocilens.OcilensError):
        ocilens.load(f"oci:{layout}:t")
    assert not list(cache.rglob("*.pickle")), "a failed scan was stored"
    path.write_bytes(good)
    assert len(ocilens.load(f"oci:{layout}:t").events) == len(ENTRIES)
    assert list((cache / "scans").rglob("*.pickle")), "the good scan was not stored"


def _bad_checksum_tar() -> bytes:
    """A one-file tar whose first header's checksum field is off by exactly 65521 (still valid octal)."""
    tar = bytearray(tar_layer([Entry.file("f", "content")], format="gnu"))
    header = tar[:512]
    true_sum = sum(header[:148]) + 8 * 0x20 + sum(header[156:])
    tar[148:156] = b"%06o\x00 " % (true_sum + 65521)
    return bytes(tar)


def test_tar_header_with_a_wrong_checksum_is_rejected(tmp_path: Path) -> None:
    """Any checksum that is not the header's byte sum (unsigned or signed) is a corrupt header, as for GNU
    tar, Go's archive/tar (so umoci) and Python's tarfile; no modular shortcut may accept it."""
    tar = _bad_checksum_tar()
    with pytest.raises(tarfile.ReadError):  # the construction: tarfile refuses it too
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.getmembers()
    work = tmp_path / "umoci"
    work.mkdir()
    umoci_layout = umoci_image(work, [Layer("empty", [])], tag="t")
    add_raw_layer(umoci_layout, "t", tar)
    with pytest.raises(RuntimeError, match="invalid tar header"):  # umoci (Go's archive/tar) refuses it
        umoci_unpack(umoci_layout, "t", work / "bundle")
    layout = _two_layer_layout(tmp_path, tar, TAR)
    with pytest.raises(ocilens.LayerDecodeError) as info:
        load(layout)
    _assert_decode_error(layout, 1, info)


def test_a_failing_layer_stops_the_layers_not_yet_started(tmp_path: Path) -> None:
    """Layers are scanned largest first on a pool; the first failure cancels what has not started, and the
    error that comes out is that failure (here: a progress callback that gives up, as Ctrl-C would)."""
    tars = [tar_layer([Entry.file(f"f{i}", os.urandom(1000 * (i + 1)))]) for i in range(8)]  # sizes grow with i
    layout = layout_from_tars(tmp_path, tars, "gzip")
    started: list[int] = []

    class GiveUp(Exception):
        pass

    def progress(event: str, **info: Any) -> None:
        if event == "layer_start":
            started.append(info["index"])
            raise GiveUp(info["index"])

    with pytest.raises(GiveUp):
        load(layout, progress=progress, workers=2)
    assert started and len(started) <= 3, started  # the two workers' first layers (and a race), not all eight
    assert started[0] == 7  # the largest blob went first


def test_two_corrupt_layers_report_one_of_them_by_name(tmp_path: Path) -> None:
    tars = [tar_layer([Entry.file(f"f{i}", os.urandom(200_000))]) for i in range(4)]
    layout = layout_from_tars(tmp_path, tars, "gzip")
    paths = layer_blob_paths(layout, "t")
    for p in (paths[1], paths[3]):
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))
    with pytest.raises(ocilens.IntegrityError) as err:
        load(layout, workers=2)
    assert err.value.digest in {f"sha256:{p.name}" for p in (paths[1], paths[3])}
