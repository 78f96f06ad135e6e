"""The scan cache's format is derived from the code that scans (no number bumped by hand), scans and frames of
other formats are never read, and ``ocilens cache ls`` / ``prune`` show and remove them."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

import ocilens
import ocilens.cache as cache_module
from ocilens.cache import SCAN_SOURCES, FrameCache, ScanCache, code_fingerprint, scan_format, source_format
from ocilens.cache_cli import list_cache, prune_cache
from ocilens.image import SAMPLE_REF
from ocilens.packages.capture import signature

PACKAGE = Path(ocilens.__file__).parent


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_package(tmp_path: Path) -> Path:
    """A copy of the scan's modules and of one unrelated module."""
    root = tmp_path / "pkg"
    root.mkdir()
    for name in SCAN_SOURCES + ("bloat.py",):
        shutil.copy(PACKAGE / name, root / name)
    return root


def _format_of(root: Path, extra: str = "capture") -> str:
    return source_format([root / name for name in SCAN_SOURCES], extra)


def test_the_format_is_the_content_of_the_scan_modules(tmp_path: Path) -> None:
    assert scan_format() == source_format([PACKAGE / name for name in SCAN_SOURCES], signature())
    assert ScanCache().root.name == scan_format()
    root = _fake_package(tmp_path)
    before = _format_of(root)

    os.utime(root / "scan.py", (1, 1))  # a fresh clone, an installed copy: other mtimes, same format
    assert _format_of(root) == before
    (root / "bloat.py").write_text((root / "bloat.py").read_text() + "\n# an unrelated change\n")
    assert _format_of(root) == before
    (root / "scan.py").write_text((root / "scan.py").read_text().replace("\n", "\r\n"))  # CRLF checkout
    assert _format_of(root) == before

    for name in SCAN_SOURCES:
        path = root / name
        text = path.read_text()
        path.write_text(text + "\n# a change\n")
        assert _format_of(root) != before, f"a change to {name} kept the scan format"
        path.write_text(text)
    assert _format_of(root) == before
    assert _format_of(root, "another capture pattern") != before, "the capture patterns are part of the format"


def test_the_format_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scan_format()
    monkeypatch.setattr(cache_module, "source_format", lambda *a: pytest.fail("computed again"))
    assert scan_format() == scan_format()


def _cached_scans(cache: Path) -> dict[str, Path]:
    return {p.stem: p for p in (cache / "scans").rglob("*.pickle")}


def _tamper(path: Path) -> None:
    """Rewrite a cached scan so that reading it shows: its paths gain a marker."""
    scan = pickle.loads(path.read_bytes())
    path.write_bytes(pickle.dumps(replace(scan, paths=[p + "-from-cache" for p in scan.paths])))


def test_a_scan_of_another_format_is_not_read_and_prune_removes_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "first"
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(first))
    fresh = sorted(ocilens.load(SAMPLE_REF, progress=False).files["path"])
    made = _cached_scans(first)
    assert made and {p.parent.parent.name for p in made.values()} == {scan_format()}

    # The same scans, tampered with, under the current format (read: the test can see a cached scan) and
    # under an old one (never read), each in a cache of its own so no frames short-cut the scans.
    for folder, read in ((scan_format(), True), ("v8", False)):
        cache = tmp_path / f"cache-{folder}"
        for stem, path in made.items():
            dest = cache / "scans" / folder / "sha256" / f"{stem}.pickle"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
            _tamper(dest)
        monkeypatch.setenv("OCILENS_CACHE_DIR", str(cache))
        paths = sorted(ocilens.load(SAMPLE_REF, progress=False).files["path"])
        assert (paths != fresh) is read, folder
        if not read:
            assert paths == fresh
            old = cache / "scans" / "v8"
            rows = list_cache()
            stale = [r for r in rows if r["stale"]]
            assert {Path(r["path"]).parent.parent for r in stale} == {old}
            assert all(r["kind"] == "scan" and r["content"] == "stale" for r in stale)
            assert {r["content"] for r in rows if r["kind"] == "scan" and not r["stale"]} == {"scan"}
            assert all(not r["stale"] for r in rows if r["kind"] == "frames")
            # A prune by age or size that would keep everything current still removes the stale folder.
            removed = prune_cache(older_than="30d", keep="1TB")
            assert {r["path"] for r in removed} == {r["path"] for r in stale}
            assert not old.exists()
            assert _cached_scans(cache) and all(p.parent.parent.name == scan_format()
                                                for p in _cached_scans(cache).values())
            assert not any(r["stale"] for r in list_cache())


def test_a_dry_run_removes_no_stale_folder(cache_dir: Path) -> None:
    old = cache_dir / "scans" / "v7" / "sha256"
    old.mkdir(parents=True)
    (old / f"{'a' * 64}.pickle").write_bytes(b"old")
    assert [r["digest"] for r in prune_cache(older_than="1d", dry_run=True)] == [f"sha256:{'a' * 64}"]
    assert (old / f"{'a' * 64}.pickle").exists()


def test_a_fresh_partial_keeps_its_stale_folder(cache_dir: Path) -> None:
    old = cache_dir / "scans" / "v7" / "sha256"
    old.mkdir(parents=True)
    (old / f"{'a' * 64}.pickle").write_bytes(b"old")
    (old / ".b.pickle.x.partial").write_bytes(b"being written by other code")
    prune_cache(older_than="1d")
    assert sorted(p.name for p in old.iterdir()) == [".b.pickle.x.partial"]
    stale_time = time.time() - 7200
    os.utime(old / ".b.pickle.x.partial", (stale_time, stale_time))
    prune_cache(older_than="1d")
    assert not (cache_dir / "scans" / "v7").exists() and (cache_dir / "scans").exists()


def test_frames_of_other_code_are_stale_and_pruned(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = ocilens.load(SAMPLE_REF, progress=False)
    img.events, img.files, img.layers
    frames = [r for r in list_cache() if r["kind"] == "frames"]
    assert frames and not any(r["stale"] for r in frames) and {r["content"] for r in frames} == {"frames"}
    assert FrameCache().root.name == code_fingerprint()[:16]

    monkeypatch.setattr(cache_module, "_CODE_FINGERPRINT", "0123456789abcdef" * 4)  # another version of ocilens
    rows = list_cache()
    assert {r["path"] for r in rows if r["stale"]} == {r["path"] for r in frames}
    assert {r["content"] for r in rows if r["stale"]} == {"stale"}
    removed = prune_cache(keep="1TB")
    assert {r["path"] for r in removed} == {r["path"] for r in frames}
    assert [p.name for p in (cache_dir / "frames").iterdir()] == []
    assert any(r["kind"] == "scan" for r in list_cache()), "the scans (of the same format) are kept"


# ----------------------------------------------------------------------------------------- engine records


def _engine_record(cache_dir: Path, tmp_path: Path) -> tuple[str, Path]:
    """An engine record written by ``EngineSource._remember`` itself, for the bundled sample's manifest (no
    engine runs: the source's client points at a socket that does not exist and is never used). Returns the
    image ID, read from the layout's own manifest, and the record's path."""
    from imagebuild import manifest_of
    from ocilens.sources.engine import EngineSource

    image_id = manifest_of(PACKAGE / "_sample", "sample")["config"]["digest"]
    img = ocilens.load(SAMPLE_REF, progress=False, cache=False)
    source = EngineSource("docker-daemon:sample", "docker-daemon", "sample",
                          env={"DOCKER_HOST": f"unix://{tmp_path / 'no-engine.sock'}"})
    try:
        source._image_id = image_id  # what the engine's inspect would have said (EngineSource._inspect)
        source._remember(img.manifest)
    finally:
        source.close()
        img.close()
    algo, _, hex_ = image_id.partition(":")
    record = cache_dir / "engine" / "v1" / f"{algo}-{hex_}.json"
    assert record.is_file() and json.loads(record.read_text())["config"][0] == image_id
    return image_id, record


def test_cache_ls_lists_engine_records_and_prune_treats_them_as_the_other_kinds(
        cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ocilens cache ls`` counts and lists the engine records (kind ``engine``, the image ID as digest, their
    size on disk); a record of another format is ``stale`` and every prune removes it with its folder; a
    current one goes by age, by size or with ``--all``, like a blob or a scan."""
    from ocilens.cli import main

    image_id, record = _engine_record(cache_dir, tmp_path)
    stale = cache_dir / "engine" / "v0" / f"sha256-{'b' * 64}.json"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"old": "format"}')
    partial = record.with_name(f"sha256-{'c' * 64}.4242.partial")  # as _remember names its temp file
    partial.write_text("{")
    # the truth: the files on disk, walked here
    on_disk = [Path(d) / f for d, _, files in os.walk(cache_dir) for f in files]
    assert set(on_disk) == {record, stale, partial}

    rows = {r["path"]: r for r in list_cache()}
    assert set(rows) == {str(p) for p in on_disk}
    assert (rows[str(record)]["kind"], rows[str(record)]["digest"], rows[str(record)]["size"],
            rows[str(record)]["content"], rows[str(record)]["stale"]) == (
        "engine", image_id, record.stat().st_size, "engine", False)
    assert (rows[str(stale)]["kind"], rows[str(stale)]["digest"], rows[str(stale)]["content"],
            rows[str(stale)]["stale"]) == ("engine", f"sha256:{'b' * 64}", "stale", True)
    assert (rows[str(partial)]["kind"], rows[str(partial)]["digest"]) == ("partial", None)

    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    total = sum(p.stat().st_size for p in on_disk)
    assert 1000 <= total < 10_000  # so shown in kB (SI, one decimal, as dive and docker print sizes)
    assert out.splitlines()[0] == f"{cache_dir}: 3 entries, {total / 1000:.1f} kB"
    line = next(line for line in out.splitlines() if image_id in line)
    assert line.split()[:4] == ["engine", image_id, str(record.stat().st_size), "engine"]

    # Prune: the stale folder goes even when everything current is kept; the fresh partial stays.
    removed = prune_cache(older_than="30d", keep="1TB")
    assert [r["path"] for r in removed] == [str(stale)]
    assert not stale.parent.exists() and record.is_file() and partial.is_file()
    # By age, as any entry: a record last used 40 days ago goes.
    old = time.time() - 40 * 86400
    os.utime(record, (old, old))
    assert [r["digest"] for r in prune_cache(older_than="30d", dry_run=True)] == [image_id]
    assert record.is_file()
    os.utime(record, None)
    # By size, least recently used first; and --all empties the cache of them.
    assert [r["digest"] for r in prune_cache(keep=0, dry_run=True)] == [image_id]
    assert main(["cache", "prune", "--all"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out  # the fresh partial is kept, as for other kinds
    assert not record.exists() and partial.is_file()
