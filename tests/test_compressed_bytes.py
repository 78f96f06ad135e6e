"""Every row of ``events`` and ``files`` carries ``compressed_bytes``: its share of its layer's blob, the download
its bytes cost. Checked against what the test wrote: each layer's rows add up to the blob's size in the
manifest, and a file's share is near what the same compressor makes of that file alone (random bytes cost
their size, text a fraction of it)."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import pytest
import zstandard

import ocilens
from imagebuild import Entry, layout_from_tars, manifest_of, tar_layer


def text(n: int, seed: int) -> bytes:
    """``n`` bytes of word salad: compresses about as well as real text."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out[:n])


def layers(tmp_path: Path) -> tuple[list[bytes], dict[str, bytes]]:
    files = {
        "noise.bin": os.urandom(3_000_000),  # already compressed, as a wheel or a .deb is
        "words.txt": text(6_000_000, 1),
        "small.txt": text(20_000, 2),
        "more-noise.bin": os.urandom(700_000),
    }
    first = tar_layer([Entry.dir("d"), *(Entry.file(f"d/{name}", data) for name, data in files.items())])
    second = tar_layer([Entry.file("d/words.txt", text(6_000_000, 3)), Entry.whiteout("d/small.txt")])
    return [first, second], files


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_each_layer_adds_up_to_its_blob(tmp_path: Path, compression: str) -> None:
    tars, _ = layers(tmp_path)
    layout = layout_from_tars(tmp_path, tars, compression)
    img = ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    blob_sizes = [d["size"] for d in manifest_of(layout, "t")["layers"]]
    sums = img.events.groupby("layer")["compressed_bytes"].sum().tolist()
    assert sums == blob_sizes
    assert img.events["compressed_bytes"].notna().all() and (img.events["compressed_bytes"] >= 0).all()
    if compression == "none":  # a plain tar layer prices a file at its own bytes, headers spread over them
        row = img.events.set_index(["layer", "path"]).loc[(0, "/d/noise.bin")]
        assert 3_000_000 <= row["compressed_bytes"] <= 3_000_000 * 1.01


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_file_costs_what_its_bytes_compress_to(tmp_path: Path, compression: str) -> None:
    tars, files = layers(tmp_path)
    layout = layout_from_tars(tmp_path, tars, compression)
    img = ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    got = img.events[img.events["layer"] == 0].set_index("path")["compressed_bytes"]

    def alone(data: bytes) -> int:
        return len(gzip.compress(data, 6)) if compression == "gzip" else len(zstandard.ZstdCompressor().compress(data))

    for name in ("noise.bin", "words.txt", "more-noise.bin"):
        truth = alone(files[name])
        assert abs(got[f"/d/{name}"] - truth) <= 0.15 * truth, (name, got[f"/d/{name}"], truth)
    # the text costs a fraction of its size, the noise all of it
    assert got["/d/words.txt"] < 0.6 * len(files["words.txt"]) and got["/d/noise.bin"] > 0.95 * 3_000_000


def test_files_carry_the_share_of_the_version_they_show(tmp_path: Path) -> None:
    tars, _ = layers(tmp_path)
    layout = layout_from_tars(tmp_path, tars, "gzip")
    img = ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    files = img.files.set_index("path")
    events = img.events.set_index(["layer", "path"])
    for path in ("/d/words.txt", "/d/noise.bin"):
        layer = int(files.loc[path, "layer"])
        assert files.loc[path, "compressed_bytes"] == events.loc[(layer, path), "compressed_bytes"]
    assert "/d/small.txt" not in files.index  # whited out: the removal row costs only its marker's share
    removal = events.loc[(1, "/d/small.txt")]
    assert removal["event"] == "whited_out" and removal["compressed_bytes"] < 1000


def test_cached_scans_keep_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    tars, _ = layers(tmp_path)
    layout = layout_from_tars(tmp_path, tars, "zstd")
    cold = ocilens.load(f"oci:{layout}:t", progress=False)
    cold_events = cold.events.copy()
    warm = ocilens.load(f"oci:{layout}:t", progress=False)
    assert all(s.compressed for s in warm.scans)  # read from the scan cache, shares included
    assert warm.events["compressed_bytes"].tolist() == cold_events["compressed_bytes"].tolist()
    layers_frame = warm.layers
    assert (layers_frame["wasted_compressed_bytes"] == layers_frame["shipped_compressed_bytes"]
            - layers_frame["visible_compressed_bytes"]).all()
    # the first layer's words.txt and small.txt are waste (overwritten, whited out): priced in download too
    assert layers_frame.loc[0, "wasted_compressed_bytes"] > 0
