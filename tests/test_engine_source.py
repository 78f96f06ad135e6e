"""``docker-daemon:NAME`` and ``podman:NAME``: images read from real Docker and Podman engines the suite starts
(``tests/engines.py``), built there with RUN steps that delete, chmod and hardlink.

The truth for an engine's image is the engine's own ``docker save`` / ``podman save``, copied to an OCI layout
by skopeo and unpacked by umoci: the final tree ocilens reads through the engine's API must be that tree.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ocilens
from engines import EngineImage, EngineProcess, build
from imagebuild import assert_tree, run, tree_of, umoci_unpack
from ocilens.errors import EngineImageNotFound, EngineNotRunning, SourceError

ENGINES = ["docker", "podman"]
TRANSPORT = {"docker": "docker-daemon", "podman": "podman"}


@pytest.fixture
def engine_image(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EngineImage:
    """The test's engine image, with the environment pointing at that engine and a cache of its own."""
    kind = request.param
    image: EngineImage = request.getfixturevalue(f"{kind}_image")
    monkeypatch.setenv("DOCKER_HOST" if kind == "docker" else "CONTAINER_HOST", image.engine.host)
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    return image


def ref_of(image: EngineImage, name: str | None = None) -> str:
    return f"{TRANSPORT[image.engine.kind]}:{name or image.tag}"


def saved_tree(image: EngineImage, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The engine's own save of the image, through skopeo and umoci unpack: the truth."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    archive = tmp_path / "saved.tar"
    image.engine.cli("save", "-o", archive, image.tag)
    layout = tmp_path / "layout"
    run("skopeo", "copy", "--quiet", f"docker-archive:{archive}", f"oci:{layout}:t")
    return tree_of(umoci_unpack(layout, "t", tmp_path / "bundle"))


@pytest.mark.parametrize("engine_image", ENGINES, indirect=True)
def test_the_engine_image_is_what_the_engine_saves(engine_image: EngineImage, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import ocilens.pipeline as pipeline

    scanned: list[str] = []
    real = pipeline.scan_layer
    monkeypatch.setattr(pipeline, "scan_layer", lambda *a, **k: scanned.append(a[1].digest) or real(*a, **k))
    img = ocilens.load(ref_of(engine_image), progress=False)
    assert scanned == []  # every layer was scanned while the export streamed, none read again
    assert img.image_id == engine_image.id
    assert img.layers["diff_id"].tolist() == engine_image.inspect_cli()["RootFS"]["Layers"]
    assert_tree(img, saved_tree(engine_image, tmp_path))
    # what the RUN steps did, as events: /etc/motd removed, ls re-shipped by chmod, cat linked
    events = img.events.set_index(["layer", "path"])
    assert events.loc[(1, "/etc/motd"), "event"] == "whited_out"
    assert events.loc[(2, "/usr/bin/ls"), "event"] == "overwritten"
    assert not events.loc[(2, "/usr/bin/ls"), "content_changed"]
    files = img.files.set_index("path")  # the engine commits a link to a lower file as that file's bytes
    assert files.loc["/usr/bin/cat-hardlink", "digest"] == files.loc["/usr/bin/cat", "digest"]


@pytest.mark.parametrize("engine_image", ENGINES, indirect=True)
def test_by_id_short_id_and_again_without_an_export(engine_image: EngineImage, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first = ocilens.load(ref_of(engine_image), progress=False)
    from ocilens.engine.client import EngineClient

    def no_export(*a: Any, **k: Any) -> Any:
        raise AssertionError("exported again")
    monkeypatch.setattr(EngineClient, "export", no_export)
    hexid = engine_image.id.partition(":")[2]
    for name in (engine_image.id, hexid[:12]):
        again = ocilens.load(ref_of(engine_image, name), progress=False)  # inspected, then all from the cache
        assert again.image_id == first.image_id
        assert again.files["path"].tolist() == first.files["path"].tolist()


@pytest.mark.parametrize("engine_image", ENGINES, indirect=True)
def test_a_rebuilt_tag_is_read_afresh(engine_image: EngineImage, tmp_path: Path) -> None:
    engine = engine_image.engine
    tag = f"localhost/ocilens-test/rebuilt-{engine.kind}:1"
    build(engine, tag, tmp_path / "one", f"FROM {engine_image.tag}\nRUN echo one > /one\n")
    first = ocilens.load(ref_of(engine_image, tag), progress=False)
    assert "/one" in set(first.files["path"]) and "/two" not in set(first.files["path"])
    build(engine, tag, tmp_path / "two", f"FROM {engine_image.tag}\nRUN echo two > /two\n")
    second = ocilens.load(ref_of(engine_image, tag), progress=False)
    assert second.image_id != first.image_id
    assert "/two" in set(second.files["path"]) and "/one" not in set(second.files["path"])


@pytest.mark.parametrize("engine_image", ["docker"], indirect=True)
def test_the_analysis_keeps_no_layer_and_extract_exports_once(engine_image: EngineImage, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine's layers are large and the engine can give them again: the analysis keeps none; extract()
    exports once more, keeping them, and writes what the engine saves."""
    from ocilens.cache import BlobStore
    from ocilens.engine.client import EngineClient

    img = ocilens.load(ref_of(engine_image), progress=False)
    store = BlobStore()
    assert not any(store.has(d.digest) for d in img.manifest.layers)
    assert store.has(img.image_id)  # the config is kept, for the next analysis
    exports = [0]
    real = EngineClient.export

    def counted(self: EngineClient, *a: Any, **k: Any) -> Any:
        exports[0] += 1
        return real(self, *a, **k)
    monkeypatch.setattr(EngineClient, "export", counted)
    img.extract(tmp_path / "rootfs")
    assert exports[0] == 1
    assert all(store.has(d.digest) for d in img.manifest.layers)
    ours = tree_of(tmp_path / "rootfs")
    truth = saved_tree(engine_image, tmp_path / "truth")
    assert {p: (n["type"], n["sha256"], n["mode"]) for p, n in ours.items()} == \
        {p: (n["type"], n["sha256"], n["mode"]) for p, n in truth.items()}


def test_errors_name_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_image: EngineImage) -> None:
    missing = tmp_path / "nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{missing}")
    with pytest.raises(EngineNotRunning) as not_running:
        ocilens.load("docker-daemon:alpine", progress=False)
    assert str(missing) in str(not_running.value)
    monkeypatch.setenv("DOCKER_HOST", docker_image.engine.host)
    with pytest.raises(EngineImageNotFound) as absent:
        ocilens.load("docker-daemon:localhost/no/such:image", progress=False)
    assert str(docker_image.engine.socket) in str(absent.value)
    assert "docker pull" in (absent.value.hint or "") or "docker images" in (absent.value.hint or "")


def test_an_export_cut_short_caches_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         docker_image: EngineImage) -> None:
    """The engine dies mid-export (its stream ends inside a layer): a clear error, and no partial blob."""
    monkeypatch.setenv("DOCKER_HOST", docker_image.engine.host)
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(cache))
    whole = docker_image.engine.cli_bytes("save", docker_image.tag)
    from ocilens.engine.client import EngineClient

    monkeypatch.setattr(EngineClient, "export", lambda *a, **k: io.BytesIO(whole[: len(whole) // 2]))
    with pytest.raises(SourceError, match="truncated"):
        ocilens.load(f"docker-daemon:{docker_image.tag}", progress=False)
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.name.endswith(".partial")]
    assert leftovers == []
    assert not list((cache / "scans").rglob("*.pickle")) if (cache / "scans").exists() else True


def test_audit_and_the_cli_take_engine_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              docker_image: EngineImage, podman_image: EngineImage) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_image.engine.host)
    monkeypatch.setenv("CONTAINER_HOST", podman_image.engine.host)
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    refs = [f"docker-daemon:{docker_image.tag}", f"podman:{podman_image.tag}"]
    fleet = ocilens.audit(refs, executor="thread", progress=False)
    assert fleet.images["error"].isna().all(), fleet.images["error"].tolist()
    assert fleet.images["image_id"].tolist() == [docker_image.id, podman_image.id]
    out = tmp_path / "a.json"
    env = {**os.environ, "DOCKER_HOST": docker_image.engine.host, "OCILENS_CACHE_DIR": str(tmp_path / "cli")}
    done = subprocess.run([sys.executable, "-m", "ocilens", "analyze", "--source", "docker", docker_image.tag,
                           "--json", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"docker-daemon:{docker_image.tag}" in done.stdout
    assert json.loads(out.read_text())


def test_a_bare_name_stays_a_registry_reference_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            docker_image: EngineImage) -> None:
    """``localhost:1/...`` is a registry nobody serves: the error says the local engine has that name."""
    monkeypatch.setenv("DOCKER_HOST", docker_image.engine.host)
    name = "localhost:1/ocilens-test/app:1"
    docker_image.engine.cli("tag", docker_image.tag, name)
    with pytest.raises(ocilens.RegistryUnavailable) as exc:
        ocilens.load(name, progress=False)
    assert f"docker-daemon:{name}" in (exc.value.hint or "")
