"""Archives that cannot seek: ``docker-archive:-`` and ``oci-archive:-`` on standard input, ``/dev/stdin``, FIFOs and
pipes. Each is read once, front to back; the layers are scanned while they stream (no layer is read and scanned a
second time); a stream cut short is a clear ``SourceError`` naming the stream, with nothing half-written left in
the cache; garbage or nothing at all is a typed error (exit 2 from the CLI, one error line).

The archives are skopeo's (``skopeo copy`` of the bundled sample into ``docker-archive:`` and ``oci-archive:``);
the truth for what they hold is ``umoci unpack`` of the sample and the sample's own manifest and config.
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import ocilens
import ocilens.pipeline as pipeline
import ocilens.sources.layout as layout_module
import ocilens.sources.stream as stream_module
from archives import Member, member_offsets, sample_parts, sha256, tar_bytes, through_fifo
from ocilens.errors import SourceError
from ocilens.manifest import DOCKER_LAYER_GZIP, Descriptor
from ocilens.sources import DockerArchiveSource, LayoutSource
from ocilens.sources.stream import StreamStorage

FRAME_COLUMNS = ["path", "type", "size", "mode", "uid", "gid", "linkname", "digest"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of the test's own, cold."""
    path = tmp_path / "cache"
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(path))
    return path


def expected_digests(transport: str) -> list[str]:
    """The layer digests each archive must give: skopeo's docker-archive holds the tars (their diff_ids), its
    oci-archive the sample's gzip blobs."""
    parts = sample_parts()
    return parts.diff_ids if transport == "docker-archive" else [sha256(b) for b in parts.blobs]


def tree_rows(files: list[dict[str, Any]]) -> dict[str, tuple]:
    return {f["path"]: ("file" if f["type"] == "hardlink" else f["type"], f["mode"] & 0o7777, f["uid"], f["gid"],
                        f["size"] if f["type"] in ("file", "hardlink") else 0,
                        f["digest"] if f["type"] in ("file", "hardlink") else None,
                        f["linkname"] if f["type"] == "symlink" else None) for f in files}


def truth_rows(tree: dict[str, dict[str, Any]]) -> dict[str, tuple]:
    return {p: (n["type"], n["mode"], n["uid"], n["gid"], n["size"], n["sha256"], n["linkname"])
            for p, n in tree.items()}


def frame_records(img: ocilens.Image) -> list[dict[str, Any]]:
    """The ``files`` frame as the CLI's JSON records (NA as None)."""
    files = img.files.astype(object)
    return files.where(files.notna(), None).to_dict("records")


def cli(args: list[str], stdin: Any, cache: Path) -> subprocess.CompletedProcess[bytes]:
    """``python -m ocilens ARGS``; ``stdin`` is bytes (piped in) or a file descriptor."""
    env = {**os.environ, "OCILENS_CACHE_DIR": str(cache), "OCILENS_PROGRESS": "off"}
    kw: dict[str, Any] = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
    return subprocess.run([sys.executable, "-m", "ocilens", *args], capture_output=True, env=env, timeout=300, **kw)


def one_error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """A failed CLI run: exit 2, no traceback, exactly one ``ocilens: error:`` line (which is returned)."""
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("ocilens: error:")]
    assert len(lines) == 1, err
    return lines[0]


class NoSeek(io.RawIOBase):
    """A stream that refuses to seek or tell, and counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, *a: Any) -> int:
        raise OSError("Illegal seek")

    def tell(self) -> int:
        raise OSError("Illegal seek")

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        b[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)


# ------------------------------------------------------------------------------------- where streams come from


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_standard_input(transport: str, skopeo_archives: dict[str, bytes], sample_truth: dict,
                        tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = cli(["analyze", f"{transport}:-", "--json", str(out)], skopeo_archives[transport], tmp_path / "cache")
    assert done.returncode == 0, done.stderr.decode()
    doc = json.loads(out.read_text())
    assert tree_rows(doc["files"]) == truth_rows(sample_truth)
    assert [layer["digest"] for layer in doc["layers"]] == expected_digests(transport)
    assert [layer["diff_id"] for layer in doc["layers"]] == sample_parts().diff_ids
    assert doc["image"]["image_id"] == sample_parts().image_id


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_dev_stdin_on_a_pipe(transport: str, skopeo_archives: dict[str, bytes], sample_truth: dict,
                             tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = cli(["analyze", f"{transport}:/dev/stdin", "--json", str(out)], skopeo_archives[transport],
               tmp_path / "c")
    assert done.returncode == 0, done.stderr.decode()
    assert tree_rows(json.loads(out.read_text())["files"]) == truth_rows(sample_truth)


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_fifo_and_pipe_read_once_and_scanned_as_they_stream(transport: str, skopeo_archives: dict[str, bytes],
                                                            sample_truth: dict, tmp_path: Path, cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """No layer is read again after the stream: ``pipeline.scan_layer`` (the read-and-scan of a blob) is never
    called, and the stream scans each layer member exactly once."""
    read_again: list[str] = []
    real_scan_layer = pipeline.scan_layer
    monkeypatch.setattr(pipeline, "scan_layer",
                        lambda source, desc, *a, **k: read_again.append(desc.digest) or real_scan_layer(source, desc,
                                                                                                     *a, **k))
    streamed: list[str] = []
    real_scan_blob = stream_module.scan_blob
    monkeypatch.setattr(stream_module, "scan_blob",
                        lambda raw, *a, what="", **k: streamed.append(what) or real_scan_blob(raw, *a, what=what, **k))
    data = skopeo_archives[transport]
    img = through_fifo(tmp_path, data, lambda f: ocilens.load(f"{transport}:{f}", progress=False))
    assert read_again == []
    assert len(streamed) == len(set(streamed)) == 5  # each of the five layers once, while it streamed
    assert tree_rows(frame_records(img)) == truth_rows(sample_truth)
    assert img.layers["digest"].tolist() == expected_digests(transport)

    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "pipe-cache"))
    streamed.clear()
    r, w = os.pipe()
    writer = threading.Thread(target=_write_all, args=(w, data), daemon=True)
    writer.start()
    try:
        piped = ocilens.load(f"{transport}:/dev/fd/{r}", progress=False)
    finally:
        writer.join(30)
        os.close(r)
    assert read_again == [] and len(streamed) == 5
    assert tree_rows(frame_records(piped)) == truth_rows(sample_truth)


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def test_a_stream_is_read_once_without_seeking(skopeo_archives: dict[str, bytes], cache: Path) -> None:
    data = skopeo_archives["docker-archive"]
    raw = NoSeek(data)
    storage = StreamStorage(raw, "docker-archive:-", what="the test stream")  # type: ignore[arg-type]
    assert raw.read_bytes == len(data)  # to the end, once
    source = DockerArchiveSource("docker-archive:-", None, None, storage=storage)
    manifest = source.resolve()
    scans = [source.prescanned(d) for d in manifest.layers]
    assert [s.digest for s in scans if s is not None] == expected_digests("docker-archive")
    assert raw.read_bytes == len(data)  # resolving read nothing more


# --------------------------------------------------------------------------------------------- cut short


def _cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def assert_nothing_half_written(cache: Path, cut_member: bytes | None = None) -> None:
    files = _cache_files(cache)
    assert [p for p in files if p.name.endswith(".partial")] == []
    assert [p for p in files if p.suffix == ".pickle"] == []  # no scan of anything, let alone of the cut member
    if cut_member is not None:
        assert not (cache / "blobs" / "sha256" / sha256(cut_member).partition(":")[2]).exists()


def _cuts(data: bytes) -> dict[str, tuple[int, bytes | None]]:
    """Where to cut skopeo's docker-archive: inside its largest layer, inside the final manifest.json (the
    index comes last), and right after a member (no end-of-archive block)."""
    members = member_offsets(data)
    layer = max((n for n in members if n.endswith(".tar")), key=lambda n: members[n][1])
    start, size = members[layer]
    whole = data[start:start + size]
    m_start, m_size = members["manifest.json"]
    return {"inside a layer": (start + size // 2, whole),
            "inside manifest.json": (m_start + m_size // 2, None),
            "between members": (m_start - 512, None)}


@pytest.mark.parametrize("where", ["inside a layer", "inside manifest.json", "between members"])
def test_a_truncated_stream(where: str, skopeo_archives: dict[str, bytes], tmp_path: Path, cache: Path) -> None:
    data = skopeo_archives["docker-archive"]
    cut, member = _cuts(data)[where]
    short = data[:cut]
    with pytest.raises(SourceError) as info:
        through_fifo(tmp_path, short, lambda f: ocilens.load(f"docker-archive:{f}", progress=False))
    err = info.value
    assert "fifo-0" in str(err) and "truncated" in str(err) and err.reference and err.hint
    assert_nothing_half_written(cache, member)

    done = cli(["analyze", "docker-archive:-"], short, tmp_path / "cli-cache")
    line = one_error_line(done)
    assert "standard input" in line and "truncated" in line
    assert_nothing_half_written(tmp_path / "cli-cache", member)


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
@pytest.mark.parametrize("what", ["nothing", "garbage", "a few bytes", "gzip"])
def test_empty_or_garbage_input(transport: str, what: str, skopeo_archives: dict[str, bytes], tmp_path: Path) -> None:
    import gzip

    data = {"nothing": b"", "garbage": os.urandom(100_000), "a few bytes": b"hello\n",
            "gzip": gzip.compress(skopeo_archives[transport][:200_000])}[what]
    line = one_error_line(cli(["analyze", f"{transport}:-"], data, tmp_path / "cache"))
    assert "standard input" in line
    if what == "nothing":
        assert "empty" in line
    elif what == "gzip":
        assert "compressed" in line
    else:
        assert "not a readable tar archive" in line
    with pytest.raises(SourceError):
        through_fifo(tmp_path, data, lambda f: ocilens.load(f"{transport}:{f}", progress=False))
    assert_nothing_half_written(tmp_path / "cache")


def test_a_terminal_on_standard_input_is_refused(tmp_path: Path) -> None:
    """``ocilens analyze docker-archive:-`` typed at a prompt, with nothing piped in: an error, not a hang."""
    main, tty = pty.openpty()
    try:
        line = one_error_line(cli(["analyze", "docker-archive:-"], tty, tmp_path / "cache"))
    finally:
        os.close(main)
        os.close(tty)
    assert "terminal" in line


# ------------------------------------------------------------------------- layers are what the index names


def _stray_layer() -> bytes:
    """A gzip layer of real files (a sample layer's tar, compressed anew: bytes no image of the test has)."""
    import gzip

    stray = gzip.compress(sample_parts().tars[2], compresslevel=1, mtime=0)
    assert sha256(stray) not in {sha256(b) for b in sample_parts().blobs}
    return stray


def test_a_layer_like_member_the_index_does_not_name_is_no_layer(skopeo_archives: dict[str, bytes], cache: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    stray = _stray_layer()
    stray_desc = Descriptor(DOCKER_LAYER_GZIP, sha256(stray), len(stray))
    # docker-archive: an extra member beside those manifest.json names (before it, as a layer would come)
    docker = skopeo_archives["docker-archive"]
    storage = StreamStorage(io.BytesIO(_with_member(docker, "stray/layer.tar.gz", stray)), "docker-archive:-")
    assert storage.scan_of("stray/layer.tar.gz", sha256(stray)) is not None  # it was scanned as it passed...
    source = DockerArchiveSource("docker-archive:-", None, None, storage=storage)
    manifest = source.resolve()
    assert source.prescanned(stray_desc) is None  # ...but is no layer of the image
    assert all(source.prescanned(d) is not None for d in manifest.layers)
    # oci-archive: a blob under blobs/sha256/ that no manifest names
    oci = skopeo_archives["oci-archive"]
    name = f"blobs/sha256/{sha256(stray).partition(':')[2]}"
    storage = StreamStorage(io.BytesIO(_with_member(oci, name, stray)), "oci-archive:-")
    monkeypatch.setattr(layout_module, "open_storage", lambda *a, **k: storage)  # the stream read already
    layout = LayoutSource("oci-archive:-", "-", None, archive=True)
    manifest = layout.resolve()
    assert stray_desc.digest not in {d.digest for d in manifest.layers}
    assert layout.prescanned(stray_desc) is None
    assert all(layout.prescanned(d) is not None for d in manifest.layers)


def test_a_stray_layer_member_is_not_cached_as_a_scan(skopeo_archives: dict[str, bytes], tmp_path: Path,
                                                      cache: Path) -> None:
    stray = _stray_layer()
    data = _with_member(skopeo_archives["oci-archive"], f"blobs/sha256/{sha256(stray).partition(':')[2]}", stray)
    img = through_fifo(tmp_path, data, lambda f: ocilens.load(f"oci-archive:{f}", progress=False))
    assert sha256(stray) not in set(img.layers["digest"])
    scans = {p.stem for p in (cache / "scans").rglob("*.pickle")}
    assert {d.partition(":")[2] for d in img.layers["digest"]} <= scans
    assert sha256(stray).partition(":")[2] not in scans


def _with_member(archive: bytes, name: str, data: bytes) -> bytes:
    """``archive`` with one more regular member, first (a stream meets it before the index)."""
    import tarfile

    out = [Member(name, data)]
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        for m in tf:
            if m.isfile():
                out.append(Member(m.name, tf.extractfile(m).read()))  # type: ignore[union-attr]
            elif m.issym():
                out.append(Member(m.name, kind="symlink", target=m.linkname))
            elif m.isdir():
                out.append(Member(m.name, kind="dir"))
    return tar_bytes(out)
