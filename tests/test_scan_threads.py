"""A layer scan runs in three threads (read and inflate; hash the tar stream; walk the tar): an error or
Ctrl-C in any stage stops every stage promptly, and no thread is left behind, blocked on a full queue."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

import ocilens
from imagebuild import Entry, layout_from_tars, tar_layer
from ocilens.errors import LayerDecodeError
from ocilens.tarstream import TarReader


def ocilens_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ocilens-")]


def big_layout(tmp_path: Path) -> Path:
    noise = random.Random(7).randbytes(3_000_000)
    files = [Entry.file(f"f{i}", bytes([i]) + noise) for i in range(12)]  # 36 MB of blob: many chunks
    return layout_from_tars(tmp_path, [tar_layer(files)], "gzip")


def test_ctrl_c_in_the_tar_walk_stops_every_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = big_layout(tmp_path)
    calls = [0]
    real = TarReader.next

    def interrupted(self: TarReader):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(TarReader, "next", interrupted)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    assert time.monotonic() - started < 10
    assert ocilens_threads() == []


def test_a_corrupt_stream_stops_every_stage(tmp_path: Path) -> None:
    layout = big_layout(tmp_path)
    blob = next(p for p in (layout / "blobs" / "sha256").iterdir() if p.stat().st_size > 100_000)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64  # inflate fails midway (and the digest too)
    blob.write_bytes(bytes(data))
    with pytest.raises(ocilens.OcilensError):
        ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    assert ocilens_threads() == []


def test_the_stages_give_the_same_scan_as_one_thread(tmp_path: Path) -> None:
    """The diff_id hashed beside the walk is the digest of the whole tar stream, as the config says."""
    tar = tar_layer([Entry.file("a", b"x" * 5_000_000), Entry.file("b", b"y" * 10)])
    layout = layout_from_tars(tmp_path, [tar], "gzip")
    img = ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    import hashlib

    assert img.scans[0].diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert img.scans[0].uncompressed_size == len(tar)
    assert ocilens_threads() == []


def test_hash_aside_keeps_each_hashers_order_and_loses_nothing() -> None:
    """Two threads feed one HashAside (as the reading and the walking threads do): each hasher sees its own
    chunks in order, ``sync`` waits for them, and after ``close`` updates are hashed at once."""
    import hashlib

    from ocilens.digest import HashAside

    rng = random.Random(3)
    parts = {name: [rng.randbytes(rng.randrange(1, 200_000)) for _ in range(60)] for name in ("blob", "tar")}
    hashers = {name: hashlib.sha256() for name in parts}
    aside = HashAside()

    def feed(name: str) -> None:
        for chunk in parts[name]:
            aside.update(hashers[name], chunk)
        aside.sync()

    threads = [threading.Thread(target=feed, args=(name,)) for name in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    aside.close()
    late = b"after the close"
    aside.update(hashers["blob"], late)
    aside.sync()  # closed: returns at once
    assert hashers["blob"].hexdigest() == hashlib.sha256(b"".join(parts["blob"]) + late).hexdigest()
    assert hashers["tar"].hexdigest() == hashlib.sha256(b"".join(parts["tar"])).hexdigest()
    assert ocilens_threads() == []


def test_a_lying_blob_is_caught_when_its_digest_is_taken_aside(tmp_path: Path) -> None:
    """One gzip layer (a core to spare: the blob's digest is taken in the hashing thread): a blob whose bytes
    are not its digest's still fails, naming the digest, and every stage stops."""
    layout = big_layout(tmp_path)
    blob = next(p for p in (layout / "blobs" / "sha256").iterdir() if p.stat().st_size > 100_000)
    data = bytearray(blob.read_bytes())
    data[4:8] = b"\x01\x02\x03\x04"  # the gzip header's mtime: the same layer, the same size, other bytes
    blob.write_bytes(bytes(data))
    with pytest.raises(ocilens.DigestMismatch) as info:
        ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    assert blob.name in str(info.value)
    assert ocilens_threads() == []
