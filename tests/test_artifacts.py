"""OCI artifacts (image-spec ``manifest.md``, "Guidelines for Artifact Usage") are refused when an image is
resolved, naming their type, instead of failing later as a truncated tar; real images of every layer media
type the specs define still load.

Artifacts are written by hand as the spec's examples and the tools that make them (oras, helm, cosign) write
them; the same bytes are pushed to a real registry (CNCF distribution 2.8 accepts every one of them).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest

import ocilens
from imagebuild import Entry, blob_path, layout_from_tars, manifest_of, tar_layer
from oci_content import (OCI_CONFIG, OCI_EMPTY, OCI_MANIFEST, dumps, push_tag, sha, tag, write_blob)
from ocilens.errors import UnsupportedImage
from ocilens.manifest import (DOCKER_CONFIG, DOCKER_MANIFEST, Descriptor, is_layer_type, parse_manifest,
                              require_image)
from ocilens.sources import open_source

try:
    from . import registry_server as rs
except ImportError:
    import registry_server as rs

REPO = "team/artifacts"
README = "application/vnd.ocilens.test.readme.v1"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
COSIGN = "application/vnd.dev.cosign.simplesigning.v1+json"


def _chart() -> bytes:
    """A Helm chart archive: a gzip of a tar holding Chart.yaml."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"apiVersion: v2\nname: demo\nversion: 0.1.0\n"
        info = tarfile.TarInfo("demo/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def _manifest(layout: Path, config: dict[str, Any], layers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    raw = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, **extra, "config": config, "layers": layers})
    return write_blob(layout, raw, OCI_MANIFEST)


def build(layout: Path) -> dict[str, str]:
    """One artifact per tag; the type each one's error must name."""
    layout.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    empty = write_blob(layout, b"{}", OCI_EMPTY, data="e30=")
    named: dict[str, str] = {}
    # the spec's "artifact without config": artifactType, the empty config, a text/plain blob
    tag(layout, _manifest(layout, empty, [write_blob(layout, b"hello\n", "text/plain")], artifactType=README),
        "readme")
    named["readme"] = README
    # the spec's minimal artifact: nothing but annotations, the empty descriptor as config and only layer
    tag(layout, _manifest(layout, empty, [empty], artifactType=README, annotations={"com.example.data": "x"}),
        "minimal")
    named["minimal"] = README
    # helm push: no artifactType, the chart's own config type, the chart as a tar+gzip layer
    helm_config = write_blob(layout, dumps({"name": "demo", "version": "0.1.0", "apiVersion": "v2"}), HELM_CONFIG)
    tag(layout, _manifest(layout, helm_config, [write_blob(layout, _chart(), HELM_CHART)]), "helm")
    named["helm"] = HELM_CONFIG
    # the empty config without artifactType (which the spec requires with it): the config type is all there is
    tag(layout, _manifest(layout, empty, [write_blob(layout, b"payload", "application/octet-stream")]), "untyped")
    named["untyped"] = OCI_EMPTY
    # cosign's signatures: an image config over a JSON payload (the historical, non-conformant artifact)
    payload = dumps({"critical": {"type": "cosign container image signature"}, "optional": None})
    config = write_blob(layout, dumps({"architecture": "", "os": "", "config": {},
                                       "rootfs": {"type": "layers", "diff_ids": [sha(payload)]}}), OCI_CONFIG)
    layer = write_blob(layout, payload, COSIGN, annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="})
    tag(layout, _manifest(layout, config, [layer]), "cosign")
    named["cosign"] = COSIGN
    return named


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], str]]:
    """The artifacts in a layout, and in a registry as ``team/artifacts:TAG`` (the layout's bytes)."""
    layout = tmp_path_factory.mktemp("artifacts") / "layout"
    named = build(layout)
    with rs.RegistryServer(tmp_path_factory.mktemp("artifact-registry")) as server:
        for name in named:
            answer = push_tag(server.host, layout, name, REPO, name)
            assert answer.status_code == 201, (name, answer.status_code, answer.text)
        yield layout, named, server.host


NAMES = ["readme", "minimal", "helm", "untyped", "cosign"]


@pytest.mark.parametrize("source", ["layout", "registry"])
@pytest.mark.parametrize("name", NAMES)
def test_an_artifact_is_refused_naming_its_type(artifacts: tuple[Path, dict[str, str], str], source: str,
                                                name: str) -> None:
    layout, named, host = artifacts
    ref = f"oci:{layout}:{name}" if source == "layout" else f"{host}/{REPO}:{name}"
    with open_source(ref) as src, pytest.raises(UnsupportedImage) as info:
        src.resolve()
    err = info.value
    assert named[name] in str(err) and "ocilens reads container images" in str(err), str(err)
    assert err.reference == ref and err.hint
    with pytest.raises(UnsupportedImage, match="ocilens reads container images"):
        ocilens.load(ref, cache=False, progress=False)  # refused before any layer is read
    with pytest.raises(UnsupportedImage, match="ocilens reads container images"):
        ocilens.platforms(ref)


def test_the_message_says_where_the_type_comes_from(artifacts: tuple[Path, dict[str, str], str]) -> None:
    """artifactType when there is one; else the config media type, said to be that; else the layer at fault."""
    layout, _, _ = artifacts
    messages = {}
    for name in ("readme", "helm", "cosign"):
        with open_source(f"oci:{layout}:{name}") as src, pytest.raises(UnsupportedImage) as info:
            src.resolve()
        messages[name] = str(info.value)
    assert f"an OCI artifact of type {README!r}, not a container image" in messages["readme"]
    assert f"of type {HELM_CONFIG!r} (its config media type)" in messages["helm"]
    assert f"layer 0" in messages["cosign"] and f"{COSIGN!r}, not a filesystem layer" in messages["cosign"]


# --- real images still load --------------------------------------------------------------------------------

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@pytest.mark.parametrize("compression, media_type", [
    ("none", OCI_LAYER), ("gzip", OCI_LAYER + "+gzip"), ("zstd", OCI_LAYER + "+zstd"),
    ("none", "application/vnd.oci.image.layer.nondistributable.v1.tar"),
    ("gzip", "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
    ("zstd", "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
    ("gzip", DOCKER_LAYER), ("gzip", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
    ("gzip", None),  # no mediaType at all: the bytes decide
])
def test_images_of_every_layer_media_type_load(tmp_path: Path, compression: str, media_type: str | None) -> None:
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("f", b"x")])], compression,  # type: ignore[arg-type]
                              media_types=[media_type])
    if media_type is None:
        manifest = manifest_of(layout, "t")
        del manifest["layers"][0]["mediaType"]
        _retag(layout, dumps(manifest))
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    assert sorted(img.files["path"]) == ["/f"]


def _retag(layout: Path, raw: bytes) -> None:
    """Point tag ``t`` at the manifest ``raw``."""
    blob_path(layout, sha(raw)).write_bytes(raw)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=sha(raw), size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))


def test_a_docker_v2_manifest_loads(tmp_path: Path) -> None:
    """The same image as a Docker v2 schema 2 manifest (Docker config and layer types), in a layout."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("f", b"x")])])
    manifest = manifest_of(layout, "t")
    manifest["mediaType"] = DOCKER_MANIFEST
    manifest["config"]["mediaType"] = DOCKER_CONFIG
    manifest["layers"][0]["mediaType"] = DOCKER_LAYER
    _retag(layout, dumps(manifest))
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    assert img.manifest.media_type == DOCKER_MANIFEST and sorted(img.files["path"]) == ["/f"]


def test_a_docker_v2_image_pushed_by_skopeo_loads(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """skopeo converts the image to Docker v2 schema 2 on push; resolved from the registry, it is an image."""
    layout = tmp_path / "layout"
    rs.umoci_image(layout, "t", [rs.layer_tar({"etc/f": b"x"})])
    with rs.RegistryServer(tmp_path_factory.mktemp("v2s2")) as server:
        rs.skopeo_copy(f"oci:{layout}:t", f"docker://{server.host}/team/v2:1", fmt="v2s2")
        img = ocilens.load(f"{server.host}/team/v2:1", cache=False, progress=False)
    assert img.manifest.media_type == DOCKER_MANIFEST
    assert [d.media_type for d in img.manifest.layers] == [DOCKER_LAYER]
    assert sorted(img.files["path"]) == ["/etc", "/etc/f"]


# --- the rule itself, on the media types the specs name -----------------------------------------------------

@pytest.mark.parametrize("media_type, layer", [
    (OCI_LAYER, True), (OCI_LAYER + "+gzip", True), (OCI_LAYER + "+zstd", True),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", True), (DOCKER_LAYER, True),
    ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", True), ("application/x-tar", True), ("", True),
    (HELM_CHART, True),  # a gzip of a tar: readable as one (its config makes it an artifact)
    (OCI_EMPTY, False), ("text/plain", False), (COSIGN, False), ("application/vnd.in-toto+json", False),
    ("application/vnd.cncf.notary.signature", False), ("application/octet-stream", False),
    (OCI_LAYER + "+gzip+encrypted", False), ("application/vnd.oci.image.layer.v1.tarball", False),
])
def test_which_media_types_are_filesystem_layers(media_type: str, layer: bool) -> None:
    assert is_layer_type(media_type) is layer


def test_require_image_returns_an_image_manifest() -> None:
    """The Docker v2 and OCI forms of an image pass unchanged; configs compare without parameters or case."""
    for manifest_type, config_type, layer_type in ((DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
                                                   (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER + "+gzip"),
                                                   (OCI_MANIFEST, OCI_CONFIG.upper() + "; charset=utf-8", "")):
        desc = {"digest": sha(b"x"), "size": 1}
        raw = dumps({"schemaVersion": 2, "mediaType": manifest_type, "config": {"mediaType": config_type, **desc},
                     "layers": [{"mediaType": layer_type, **desc}]})
        manifest = parse_manifest(raw, sha(raw))
        assert require_image(manifest, what="m") is manifest
    assert Descriptor.from_json({"digest": sha(b"x"), "size": 1, "artifactType": README}).artifact_type == README
