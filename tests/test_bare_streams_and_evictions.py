"""Leftovers in the sources: bare paths the transports already read, and corrupt engine layers in the blob cache.

1. A bare path (no transport) to docker < 1.10's ``repositories``-only archive is a docker-archive, as
   ``docker-archive:PATH`` reads it; a bare path to a FIFO (``mkfifo p; docker save IMAGE > p &; ocilens analyze
   p``) is read once, as it streams, and served as the kind of archive its index says. The truth is what real
   tools made of the same bytes: ``docker load`` (Debian's Docker 20.10, started by the suite) and its inspect
   (image ID, RootFS diff_ids), skopeo's archives of the bundled sample and ``umoci unpack`` of the sample.
2. A layer of a ``docker-daemon:`` image kept in the blob cache whose copy went bad is removed, with a typed
   error, and the next read exports the image again (docs/architecture.md, "Caches": the blob store's copies are
   re-verified on every read; a corrupt copy is removed and fetched again). The truth for a layer's bytes is the
   engine's own inspect: its layers are uncompressed, so each one's digest is its diff_id (image-spec
   config.md, ``rootfs.diff_ids``).

Every FIFO is written by a thread or a subprocess with a timeout: no test can hang on one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

import ocilens
import ocilens.pipeline as pipeline
from archives import SAMPLE, legacy_members, sample_parts, tar_bytes, through_fifo
from engines import EngineImage, EngineProcess, load_archive
from imagebuild import assert_tree, run, tree_of, umoci_unpack
from ocilens.cache import BlobStore, CachedBlobReader
from ocilens.errors import DigestMismatch
from ocilens.manifest import DOCKER_LAYER_GZIP, Descriptor
from ocilens.sources import open_source

LEGACY_TAG = "localhost/ocilens-leftovers/legacy:1"
FIFO_TIMEOUT = 120.0


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of the test's own, cold."""
    path = tmp_path / "cache"
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(path))
    return path


@contextmanager
def command_into_fifo(fifo: Path, argv: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """``argv > fifo`` in a subprocess (its shell opens the FIFO, so nothing here blocks), killed after
    ``FIFO_TIMEOUT``; a writer still waiting when the block ends (the reader never came) is let go."""
    proc = subprocess.Popen(["sh", "-c", 'out="$1"; shift; exec "$@" > "$out"', "sh", str(fifo), *argv], env=env,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killer = threading.Timer(FIFO_TIMEOUT, proc.kill)
    killer.start()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            try:
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            except OSError:
                pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        killer.cancel()


@contextmanager
def watchdog(where: Path) -> Iterator[None]:
    """Fail instead of hanging: after ``FIFO_TIMEOUT``, whoever is still blocked opening a FIFO under ``where``
    (a reader opening it a second time with no writer left, a writer whose reader never came) is released, again
    and again until the block ends, and the test fails."""
    fired: list[bool] = []
    done = threading.Event()

    def release() -> None:
        if done.wait(FIFO_TIMEOUT):
            return
        fired.append(True)
        while not done.is_set():
            for fifo in where.rglob("*"):
                if fifo.is_fifo():
                    for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
                        try:
                            os.close(os.open(fifo, flags))
                        except OSError:
                            pass
            done.wait(0.2)

    guard = threading.Thread(target=release, daemon=True)
    guard.start()
    try:
        yield
    finally:
        done.set()
        guard.join()
    assert not fired, f"something blocked on a FIFO for more than {FIFO_TIMEOUT:.0f} s"


def load_through_fifo(tmp: Path, data: bytes, ref: Any = None) -> ocilens.Image:
    """``ocilens.load`` of a bare FIFO path (``ref(fifo)``, default its path as a string) while a thread writes
    ``data`` into it, under the watchdog."""
    with watchdog(tmp):
        return through_fifo(tmp, data, lambda fifo: ocilens.load(ref(fifo) if ref else str(fifo), progress=False))


# ---------------------------------------------------------------------------- a repositories-only archive


@pytest.fixture(scope="module")
def legacy(docker_engine: EngineProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """docker < 1.10's archive of the sample (no manifest.json, no index.json) and what ``docker load`` made of
    it: the archive's bytes and path, and the engine's inspect of its tag."""
    image = legacy_members(sample_parts(), {LEGACY_TAG: 4})
    assert not any(m.name in ("manifest.json", "index.json") for m in image.members)
    data = tar_bytes(image.members)
    archive = tmp_path_factory.mktemp("legacy") / "legacy.tar"
    archive.write_bytes(data)
    load_archive(docker_engine, archive)
    inspect = json.loads(docker_engine.cli("image", "inspect", LEGACY_TAG))[0]
    return {"data": data, "archive": archive, "inspect": inspect}


def assert_as_docker_loaded_it(img: ocilens.Image, inspect: dict[str, Any]) -> None:
    """The image is the one ``docker load`` made: its ID (the config's digest) and its layers' diff_ids."""
    assert img.source.transport == "docker-archive"
    assert img.image_id == inspect["Id"]
    assert img.layers["diff_id"].tolist() == inspect["RootFS"]["Layers"]


def test_a_bare_path_to_a_repositories_only_archive_is_a_docker_archive(legacy: dict[str, Any], tmp_path: Path,
                                                                        cache: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    archive: Path = legacy["archive"]
    explicit = ocilens.load(f"docker-archive:{archive}", progress=False)
    assert_as_docker_loaded_it(explicit, legacy["inspect"])
    monkeypatch.chdir(archive.parent)
    for ref in (str(archive), archive, "./legacy.tar", "legacy.tar"):
        img = ocilens.load(ref, progress=False)  # type: ignore[arg-type]
        assert_as_docker_loaded_it(img, legacy["inspect"])
        assert img.source.reference == f"docker-archive:{ref}"
        assert img.files.equals(explicit.files) and img.events.equals(explicit.events)
    # the CLI: `ocilens analyze ./legacy.tar`
    out = tmp_path / "legacy.json"
    done = subprocess.run([sys.executable, "-m", "ocilens", "analyze", "./legacy.tar", "--json", str(out)],
                          cwd=archive.parent, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OCILENS_CACHE_DIR": str(tmp_path / "cli-cache")})
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["image"]["image_id"] == legacy["inspect"]["Id"]


def test_a_bare_fifo_path_with_a_repositories_only_archive(legacy: dict[str, Any], tmp_path: Path,
                                                           cache: Path) -> None:
    img = load_through_fifo(tmp_path, legacy["data"])
    assert_as_docker_loaded_it(img, legacy["inspect"])
    assert img.source.reference.startswith("docker-archive:") and "fifo-" in img.source.reference
    explicit = ocilens.load(f"docker-archive:{legacy['archive']}", progress=False)
    assert img.files.equals(explicit.files)


def test_a_bare_fifo_path_that_docker_save_writes_into(legacy: dict[str, Any], docker_engine: EngineProcess,
                                                       tmp_path: Path, cache: Path) -> None:
    """``mkfifo p; docker save IMAGE > p &; ocilens.load("p")`` and ``ocilens analyze p``: what docker 20.10's save
    writes (manifest.json, repositories, ``<id>/layer.tar``) read once from the FIFO, as docker loaded it."""
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    save = docker_engine.cli_args("save", LEGACY_TAG)
    with watchdog(tmp_path), command_into_fifo(fifo, save, docker_engine.cli_env) as writer:
        img = ocilens.load(str(fifo), progress=False)
    assert writer.returncode == 0, writer.stderr.read().decode() if writer.stderr else ""
    assert_as_docker_loaded_it(img, legacy["inspect"])
    explicit = ocilens.load(f"docker-archive:{legacy['archive']}", progress=False)
    assert img.files.equals(explicit.files)

    out = tmp_path / "p.json"
    with command_into_fifo(fifo, save, docker_engine.cli_env) as writer:
        done = subprocess.run([sys.executable, "-m", "ocilens", "analyze", "p", "--json", str(out)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=FIFO_TIMEOUT,
                              env={**os.environ, "OCILENS_CACHE_DIR": str(tmp_path / "cli-cache")})
    assert done.returncode == 0, done.stderr
    assert writer.returncode == 0
    doc = json.loads(out.read_text())
    assert doc["image"]["image_id"] == legacy["inspect"]["Id"]
    assert [layer["diff_id"] for layer in doc["layers"]] == legacy["inspect"]["RootFS"]["Layers"]


# --------------------------------------------------------------------- a bare FIFO, either kind of archive


def _index_of(archive: bytes, name: str) -> Any:
    """A JSON member of an archive, as its writer wrote it."""
    import io

    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        member = tf.extractfile(name)
        assert member is not None
        return json.loads(member.read())


@pytest.mark.parametrize("kind", ["docker-archive", "oci-archive"])
def test_a_bare_fifo_path_is_read_once_and_served_as_its_index_says(kind: str, skopeo_archives: dict[str, bytes],
                                                                    sample_truth: dict, tmp_path: Path, cache: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The kind of archive is learnt by reading the stream (an index comes last): manifest.json makes it a
    docker-archive, index.json an oci-archive; each layer is scanned as it streams and never read again."""
    read_again: list[str] = []
    real_scan_layer = pipeline.scan_layer
    monkeypatch.setattr(pipeline, "scan_layer",
                        lambda source, desc, *a, **k: read_again.append(desc.digest) or real_scan_layer(source, desc,
                                                                                                     *a, **k))
    data = skopeo_archives[kind]
    img = load_through_fifo(tmp_path, data, lambda fifo: fifo)  # a Path, as os.PathLike
    assert img.source.transport == kind and img.source.reference.startswith(f"{kind}:")
    assert read_again == []
    assert_tree(img, sample_truth)
    sample_index = json.loads((SAMPLE / "index.json").read_text())
    sample_manifest = json.loads((SAMPLE / "blobs" / "sha256" /
                                  sample_index["manifests"][0]["digest"].partition(":")[2]).read_text())
    assert img.image_id == sample_manifest["config"]["digest"]
    if kind == "oci-archive":
        written = _index_of(data, "index.json")["manifests"][0]["digest"]  # what skopeo wrote
        assert img.manifest_digest == written
        assert img.layers["digest"].tolist() == [d["digest"] for d in sample_manifest["layers"]]
    else:
        written = _index_of(data, "manifest.json")[0]  # skopeo: uncompressed <hex>.tar layers
        assert img.layers["digest"].tolist() == [f"sha256:{p.partition('.')[0]}" for p in written["Layers"]]


def test_a_bare_fifo_path_without_an_image_index(tmp_path: Path, cache: Path) -> None:
    """A tar that is no image archive, and a stream cut short before its index: typed errors naming the FIFO."""
    from archives import Member

    not_an_image = tar_bytes([Member("hello.txt", b"hello\n")])
    with pytest.raises(ocilens.SourceError) as neither:
        load_through_fifo(tmp_path, not_an_image)
    assert "fifo-0" in str(neither.value) and "manifest.json" in str(neither.value) and neither.value.hint
    with pytest.raises(ocilens.SourceNotFound) as cut:
        load_through_fifo(tmp_path, not_an_image[:1024])
    assert "fifo-1" in str(cut.value) and "truncated" in str(cut.value)
    with pytest.raises(ocilens.SourceError) as empty:
        load_through_fifo(tmp_path, b"")
    assert "empty" in str(empty.value)
    # PATH:TAG with PATH a FIFO: the transport is needed to select an image; the hint names both
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    with pytest.raises(ocilens.ImageReferenceError) as tagged:
        ocilens.load(f"{fifo}:1", progress=False)
    hint = tagged.value.hint or ""
    assert f"docker-archive:{fifo}:1" in hint and f"oci-archive:{fifo}:1" in hint


def test_a_bare_path_to_a_terminal_is_refused() -> None:
    """A terminal is a character device like a pipe's ``/dev/stdin``, but it would wait for typing: refused (a
    timer hangs the terminal up, so a regression fails instead of waiting)."""
    import pty

    main, tty = pty.openpty()
    hung_up: list[bool] = []

    def hang_up() -> None:
        hung_up.append(True)
        os.close(main)

    timer = threading.Timer(FIFO_TIMEOUT, hang_up)
    timer.start()
    try:
        with pytest.raises(ocilens.SourceError) as info:
            ocilens.load(os.ttyname(tty), progress=False)
    finally:
        timer.cancel()
        timer.join()
        os.close(tty)
        if not hung_up:
            os.close(main)
    assert not hung_up
    assert "terminal" in str(info.value) and info.value.hint


# ---------------------------------------------------------------------------------- the blob cache's reader


def _corrupt(path: Path) -> None:
    """Flip bytes in the middle of a cached blob, keeping its size (as a torn write or a disk fault would)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def test_the_cached_blob_reader_evicts_a_corrupt_entry(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = sample_parts().blobs[0]
    desc = Descriptor(DOCKER_LAYER_GZIP, sha256(blob), len(blob))  # the digest is the content's sha256
    writer = store.writer(desc.digest)
    writer.write(blob)
    writer.commit()
    with CachedBlobReader(store, desc, "example.com/x:1", then="the next read does X") as reader:
        assert reader.read() == blob and reader.verified
    _corrupt(store.path(desc.digest))
    reader = CachedBlobReader(store, desc, "example.com/x:1", then="the next read does X")
    with pytest.raises(DigestMismatch) as info:
        reader.read()
    exc = info.value
    assert exc.evicted and exc.reference == "example.com/x:1" and not store.has(desc.digest)
    assert exc.__notes__ == [f"the corrupt cache entry {store.path(desc.digest)} was removed; the next read does X"]
    with pytest.raises(DigestMismatch):
        reader.read()  # the same failure again, noted once
    assert len(exc.__notes__) == 1
    reader.close()
    with pytest.raises(FileNotFoundError):
        CachedBlobReader(store, desc, "example.com/x:1", then="")


# ------------------------------------------------------------------------------ an engine's cached layers


@pytest.fixture
def docker_app(docker_image: EngineImage, monkeypatch: pytest.MonkeyPatch, cache: Path) -> EngineImage:
    """The suite's docker image, the environment pointing at its engine, a cold cache of the test's own."""
    monkeypatch.setenv("DOCKER_HOST", docker_image.engine.host)
    return docker_image


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many exports the engine was asked for (``[n]``)."""
    from ocilens.engine.client import EngineClient

    count = [0]
    real = EngineClient.export

    def counted(self: EngineClient, *a: Any, **k: Any) -> Any:
        count[0] += 1
        return real(self, *a, **k)
    monkeypatch.setattr(EngineClient, "export", counted)
    return count


def _read(source: Any, desc: Descriptor) -> bytes:
    with source.open_blob(desc) as f:
        return f.read()


def test_a_corrupt_cached_engine_layer_is_evicted_and_exported_again(docker_app: EngineImage,
                                                                     exports: list[int]) -> None:
    ref = f"docker-daemon:{docker_app.tag}"
    diff_ids = docker_app.inspect_cli()["RootFS"]["Layers"]
    store = BlobStore()
    with open_source(ref) as source:
        manifest = source.resolve()
        assert [d.digest for d in manifest.layers] == diff_ids  # uncompressed: each layer's digest is its diff_id
        layer = max(manifest.layers, key=lambda d: d.size)
        assert sha256(_read(source, layer)) == layer.digest  # an export that keeps the layers
        assert exports[0] == 2 and store.has(layer.digest)
        assert sha256(_read(source, layer)) == layer.digest  # from the cache now
        assert exports[0] == 2
        _corrupt(store.path(layer.digest))
        with pytest.raises(DigestMismatch) as info:
            _read(source, layer)
        exc = info.value
        assert exc.evicted and exc.reference == ref and layer.digest in str(exc)
        assert any("exports the image from the engine again" in note for note in exc.__notes__)
        assert not store.has(layer.digest)
        # the same source (whose export kept the layers) exports again: no failing forever
        assert sha256(_read(source, layer)) == layer.digest
        assert exports[0] == 3
        assert sha256(store.path(layer.digest).read_bytes()) == layer.digest


def test_extract_after_an_engine_layer_went_bad_in_the_cache(docker_app: EngineImage, exports: list[int],
                                                             tmp_path: Path) -> None:
    """What a user meets: an extraction over a corrupt cached layer fails with a typed error and leaves nothing,
    the next one exports once and writes the tree the engine saves (skopeo + umoci unpack of ``docker save``)."""
    ref = f"docker-daemon:{docker_app.tag}"
    ocilens.load(ref, progress=False).extract(tmp_path / "first")  # keeps the layers in the blob cache
    store = BlobStore()
    img = ocilens.load(ref, progress=False)  # inspected, all from the cache
    layer = max(img.manifest.layers, key=lambda d: d.size)
    assert store.has(layer.digest)
    _corrupt(store.path(layer.digest))
    before = exports[0]
    with pytest.raises(DigestMismatch) as info:
        img.extract(tmp_path / "rootfs")
    assert info.value.evicted and not store.has(layer.digest) and not (tmp_path / "rootfs").exists()
    img.extract(tmp_path / "rootfs")
    assert exports[0] == before + 1
    saved = tmp_path / "saved.tar"
    docker_app.engine.cli("save", "-o", saved, docker_app.tag)
    run("skopeo", "copy", "--quiet", f"docker-archive:{saved}", f"oci:{tmp_path / 'layout'}:t")
    truth = tree_of(umoci_unpack(tmp_path / "layout", "t", tmp_path / "bundle"))
    ours = tree_of(tmp_path / "rootfs")
    assert {p: (n["type"], n["sha256"], n["mode"]) for p, n in ours.items()} == \
        {p: (n["type"], n["sha256"], n["mode"]) for p, n in truth.items()}


def test_a_corrupt_cached_engine_config_is_read_again_from_an_export(docker_app: EngineImage,
                                                                    exports: list[int]) -> None:
    """The config kept so that an unchanged image needs no export: a bad copy is removed and the export gives
    it again, in the same load; its digest is the engine's image ID."""
    ref = f"docker-daemon:{docker_app.tag}"
    first = ocilens.load(ref, progress=False)
    store = BlobStore()
    assert first.image_id == docker_app.id and store.has(docker_app.id)
    _corrupt(store.path(docker_app.id))
    before = exports[0]
    again = ocilens.load(ref, progress=False)
    assert again.image_id == docker_app.id and exports[0] == before + 1
    assert sha256(store.path(docker_app.id).read_bytes()) == docker_app.id  # kept again, whole
