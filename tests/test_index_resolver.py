"""One index resolver for every source: nested indexes, the depth bound, attestations and artifacts beside
images, and a layout holding several images, each checked the same way in an OCI layout and in a real
registry (CNCF distribution) holding the same bytes.

Images are built with umoci; the indexes, attestations and artifacts around them are written by hand as the
image-spec describes them, and pushed byte for byte through the registry API (``skopeo copy --all`` refuses
an index inside an index). The truth is what was written: the digests umoci gave each image and the
platforms its config was built for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import ocilens
from oci_content import (OCI_CONFIG, OCI_EMPTY, OCI_MANIFEST, dumps, index_json, push_tag, sha, tag,
                         tagged, write_blob, write_index)
from ocilens.errors import ImageNotFound, UnsupportedImage
from ocilens.index import MAX_INDEX_DEPTH
from ocilens.platform import Platform, host_platform
from ocilens.sources import open_source

try:
    from . import registry_server as rs
except ImportError:
    import registry_server as rs

REPO = "team/idx"
ATTESTATION = {"vnd.docker.reference.type": "attestation-manifest"}
#: An architecture this machine is not: an image of it is never this machine's default.
FOREIGN = "s390x" if host_platform().architecture != "s390x" else "riscv64"


@dataclass
class Content:
    layout: Path
    digests: dict[str, str]  # image name -> manifest digest, as umoci wrote it
    chain: dict[int, list[str]]  # chain length -> index digests, top first
    host: str = ""

    def ref(self, source: str, name: str) -> str:
        return f"oci:{self.layout}:{name}" if source == "layout" else f"{self.host}/{REPO}:{name}"


def _attestation(layout: Path, subject: str) -> dict[str, object]:
    """A buildkit-style attestation manifest for ``subject``: an image config of platform unknown/unknown over an
    in-toto statement; its index entry as buildkit writes it."""
    statement = dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": {"sha256": subject}}],
                       "predicateType": "https://slsa.dev/provenance/v0.2", "predicate": {}})
    layer = write_blob(layout, statement, "application/vnd.in-toto+json",
                       annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})
    config = write_blob(layout, dumps({"architecture": "unknown", "os": "unknown", "config": {},
                                       "rootfs": {"type": "layers", "diff_ids": [sha(statement)]}}), OCI_CONFIG)
    manifest = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]})
    return write_blob(layout, manifest, OCI_MANIFEST, platform={"architecture": "unknown", "os": "unknown"},
                      annotations={**ATTESTATION, "vnd.docker.reference.digest": f"sha256:{subject}"})


def _sbom(layout: Path, platform: dict[str, str]) -> dict[str, object]:
    """An OCI 1.1 artifact (artifactType, empty config, an SPDX layer), listed with a real platform."""
    empty = write_blob(layout, b"{}", OCI_EMPTY)
    layer = write_blob(layout, dumps({"spdxVersion": "SPDX-2.3", "name": "sbom"}), "application/spdx+json")
    manifest = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
                      "config": empty, "layers": [layer]})
    return write_blob(layout, manifest, OCI_MANIFEST, artifactType="application/spdx+json", platform=platform)


def _image_entry(content_layout: Path, name: str, arch: str | None) -> dict[str, object]:
    desc = {k: v for k, v in tagged(content_layout, name).items() if k != "annotations"}
    return {**desc, "platform": {"architecture": arch, "os": "linux"}} if arch else desc


def build(root: Path) -> Content:
    """amd64, arm64 and FOREIGN images, and the indexes over them that the tests name by tag."""
    layout = root / "layout"
    nonce = os.urandom(8).hex().encode()
    for name, arch in (("amd", "amd64"), ("arm", "arm64"), ("foreign", FOREIGN)):
        rs.umoci_image(layout, name, [rs.layer_tar({"etc/arch": arch.encode() + b"\n" + nonce})], arch=arch)
    digests = {name: tagged(layout, name)["digest"] for name in ("amd", "arm", "foreign")}
    amd, arm = _image_entry(layout, "amd", "amd64"), _image_entry(layout, "arm", "arm64")

    inner = write_index(layout, [amd, arm])
    tag(layout, write_index(layout, [inner]), "nested")  # index -> index -> manifest
    # each platform in an index of its own, the platform given only on the nested index's entry
    split = [write_index(layout, [_image_entry(layout, name, None)], platform={"architecture": arch, "os": "linux"})
             for name, arch in (("amd", "amd64"), ("arm", "arm64"))]
    tag(layout, write_index(layout, split), "split")

    # artifacts first, each with a platform that would otherwise match
    beside = [_sbom(layout, {"architecture": "amd64", "os": "linux"}), _attestation(layout, digests["amd"][7:]),
              _sbom(layout, {"architecture": "arm64", "os": "linux"}), _attestation(layout, digests["arm"][7:])]
    tag(layout, write_index(layout, [*beside[:2], amd, *beside[2:], arm]), "attested")
    tag(layout, write_index(layout, [write_index(layout, [beside[1], amd, beside[3], arm])]), "attested-nested")
    foreign = _image_entry(layout, "foreign", FOREIGN)
    tag(layout, write_index(layout, [_attestation(layout, digests["foreign"][7:]), foreign]), "attested-one")
    tag(layout, write_index(layout, [foreign]), "one")
    tag(layout, write_index(layout, beside), "only-artifacts")

    chain: dict[int, list[str]] = {}
    for length in (MAX_INDEX_DEPTH, MAX_INDEX_DEPTH + 1):
        desc, digests_down = _image_entry(layout, "amd", "amd64"), []
        for _ in range(length):
            desc = write_index(layout, [desc])
            digests_down.insert(0, desc["digest"])
        tag(layout, desc, f"chain-{length}")
        chain[length] = digests_down
    return Content(layout, digests, chain)


TAGS = ["nested", "split", "attested", "attested-nested", "attested-one", "one", "only-artifacts",
        f"chain-{MAX_INDEX_DEPTH}", f"chain-{MAX_INDEX_DEPTH + 1}"]


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Content]:
    """The content in a layout, and the same bytes in a real registry (every tag pushed as ``team/idx:TAG``)."""
    built = build(tmp_path_factory.mktemp("index-resolver"))
    with rs.RegistryServer(tmp_path_factory.mktemp("index-registry")) as server:
        for name in TAGS:
            answer = push_tag(server.host, built.layout, name, REPO, name)
            assert answer.status_code == 201, (name, answer.status_code, answer.text)
        built.host = server.host
        yield built


SOURCES = ["layout", "registry"]


def resolve(ref: str, platform: str | None = None):  # noqa: ANN201 - an ImageManifest
    with open_source(ref) as source:
        return source.resolve(Platform.parse(platform) if platform else None)


def platforms(ref: str) -> list[Platform]:
    with open_source(ref) as source:
        return source.platforms()


# --- nested indexes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", ["nested", "split"])
def test_a_nested_index_resolves_by_platform(content: Content, source: str, name: str) -> None:
    """index -> index -> manifest: each platform gets its own image, in a layout and from a registry alike."""
    ref = content.ref(source, name)
    assert resolve(ref, "linux/amd64").digest == content.digests["amd"]
    assert resolve(ref, "linux/arm64").digest == content.digests["arm"]
    assert resolve(ref, "linux/arm64/v8").digest == content.digests["arm"]
    assert platforms(ref) == [Platform("linux", "amd64"), Platform("linux", "arm64")]
    with pytest.raises(ImageNotFound) as info:
        resolve(ref, f"linux/{FOREIGN}")
    assert f"linux/{FOREIGN}" in str(info.value) and "linux/amd64, linux/arm64" in str(info.value)
    assert info.value.reference == ref and info.value.hint
    host = host_platform().architecture
    if host in ("amd64", "arm64"):  # no platform asked: this machine's, as a runtime here would pull
        assert resolve(ref).digest == content.digests["amd" if host == "amd64" else "arm"]


def test_the_nested_image_loads_with_its_own_layer(content: Content) -> None:
    """End to end: the image chosen through two indexes is the arm64 one, files and config included."""
    for source in SOURCES:
        img = ocilens.load(content.ref(source, "nested"), platform="linux/arm64", cache=False, progress=False)
        assert img.manifest_digest == content.digests["arm"]
        assert (img.config["os"], img.config["architecture"]) == ("linux", "arm64")
        assert sorted(img.files["path"]) == ["/etc", "/etc/arch"]


@pytest.mark.parametrize("source", SOURCES)
def test_a_chain_of_max_depth_resolves(content: Content, source: str) -> None:
    ref = content.ref(source, f"chain-{MAX_INDEX_DEPTH}")
    assert resolve(ref, "linux/amd64").digest == content.digests["amd"]
    assert resolve(ref).digest == content.digests["amd"]
    assert platforms(ref) == [Platform("linux", "amd64")]


@pytest.mark.parametrize("source", SOURCES)
def test_a_chain_deeper_than_the_bound_is_refused(content: Content, source: str) -> None:
    """One index more than MAX_INDEX_DEPTH: UnsupportedImage naming the index past the bound, not a recursion."""
    ref = content.ref(source, f"chain-{MAX_INDEX_DEPTH + 1}")
    past = content.chain[MAX_INDEX_DEPTH + 1][MAX_INDEX_DEPTH]  # the (MAX + 1)-th index from the top
    for call in (lambda: resolve(ref, "linux/amd64"), lambda: resolve(ref), lambda: platforms(ref)):
        with pytest.raises(UnsupportedImage) as info:
            call()
        message = str(info.value)
        assert past in message and f"at most {MAX_INDEX_DEPTH}" in message, message
        assert info.value.reference == ref and info.value.hint


# --- attestations and artifacts beside images ----------------------------------------------------------------

@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", ["attested", "attested-nested"])
def test_attestations_and_artifacts_are_never_chosen(content: Content, source: str, name: str) -> None:
    """Listed before the images, with the same platform (an SBOM) or unknown/unknown (buildkit's attestations):
    the images are chosen, and only their platforms are offered."""
    ref = content.ref(source, name)
    assert resolve(ref, "linux/amd64").digest == content.digests["amd"]
    assert resolve(ref, "linux/arm64").digest == content.digests["arm"]
    assert platforms(ref) == [Platform("linux", "amd64"), Platform("linux", "arm64")]
    with pytest.raises(ImageNotFound) as info:
        resolve(ref, "unknown/unknown")
    assert "unknown/unknown" not in str(info.value).partition("offers:")[2]


@pytest.mark.parametrize("source", SOURCES)
def test_an_attestation_does_not_change_which_image_is_the_only_one(content: Content, source: str) -> None:
    """An index of one FOREIGN image, with or without its attestation: no platform given, that image (the only
    one; this machine's platform is the default only among several images)."""
    for name in ("one", "attested-one"):
        assert resolve(content.ref(source, name)).digest == content.digests["foreign"]
        assert platforms(content.ref(source, name)) == [Platform("linux", FOREIGN)]


@pytest.mark.parametrize("source", SOURCES)
def test_an_index_of_artifacts_only_holds_no_image(content: Content, source: str) -> None:
    ref = content.ref(source, "only-artifacts")
    with pytest.raises(ImageNotFound) as info:
        resolve(ref)
    assert "lists no image manifests" in str(info.value) and "its 4 entries are not images" in str(info.value)
    assert info.value.hint
    with pytest.raises(ImageNotFound):
        resolve(ref, "linux/amd64")
    assert platforms(ref) == []


@pytest.mark.parametrize("source", SOURCES)
def test_an_attestation_named_by_digest_is_not_an_image(content: Content, source: str) -> None:
    """Named directly, an attestation (an image config over an in-toto statement) is refused at resolve time,
    naming its layer's media type, instead of failing as a truncated tar."""
    attested = index_json(content.layout)
    entry = next(m for m in attested["manifests"] if m.get("annotations", {}).get(
        "org.opencontainers.image.ref.name") == "attested")
    index = json.loads((content.layout / "blobs" / "sha256" / entry["digest"][7:]).read_bytes())
    attestation = next(m for m in index["manifests"] if m.get("annotations", {}).get("vnd.docker.reference.type"))
    ref = (f"oci:{content.layout}@{attestation['digest']}" if source == "layout"
           else f"{content.host}/{REPO}@{attestation['digest']}")
    with pytest.raises(UnsupportedImage) as info:
        resolve(ref)
    message = str(info.value)
    assert "application/vnd.in-toto+json" in message and "ocilens reads container images" in message, message
    assert "tar" in message and "truncated" not in message and info.value.hint


# --- several images in a layout --------------------------------------------------------------------------------

def test_a_layout_of_several_images_lists_as_many_as_it_counts(tmp_path: Path) -> None:
    """Two tagged images, one untagged, and an artifact tagged ``sig``: the message counts the three images
    and lists exactly them (tags, and the digest of the untagged one); the artifact is not among them."""
    layout = tmp_path / "layout"
    for name in ("a", "b", "c"):
        rs.umoci_image(layout, name, [rs.layer_tar({f"etc/{name}": name.encode()})])
    index = index_json(layout)
    untagged = tagged(layout, "c")
    untagged.pop("annotations")
    index["manifests"] = [m for m in index["manifests"] if m["digest"] != untagged["digest"]] + [untagged]
    (layout / "index.json").write_text(json.dumps(index))
    tag(layout, _sbom(layout, {"architecture": "amd64", "os": "linux"}), "sig")
    written = ["a", "b", untagged["digest"]]  # the images, as a reader of index.json names them
    for platform in (None, "linux/amd64"):
        with pytest.raises(ImageNotFound) as info:
            resolve(f"oci:{layout}", platform)
        match = re.search(r"holds (\d+) images \(([^)]*)\)", str(info.value))
        assert match, str(info.value)
        listed = match.group(2).split(", ")
        assert int(match.group(1)) == len(listed) == len(written)
        assert sorted(listed) == sorted(written) and "sig" not in listed
        assert info.value.hint and f"oci:{layout}:TAG" in info.value.hint
    for name in ("a", "b"):  # each is still there by its tag, the untagged one by its digest
        assert resolve(f"oci:{layout}:{name}").digest == tagged(layout, name)["digest"]
    assert resolve(f"oci:{layout}@{untagged['digest']}").digest == untagged["digest"]


def test_index_json_of_one_image_per_platform_is_a_multi_platform_index(content: Content, tmp_path: Path) -> None:
    """index.json listing one manifest per platform (no tag asked): chosen by platform, as an index is."""
    index = index_json(content.layout)
    index["manifests"] = [_image_entry(content.layout, "amd", "amd64"), _image_entry(content.layout, "arm", "arm64"),
                          _attestation(content.layout, content.digests["arm"][7:])]
    shutil.copytree(content.layout / "blobs", tmp_path / "lay" / "blobs")
    (tmp_path / "lay" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (tmp_path / "lay" / "index.json").write_text(json.dumps(index))
    ref = f"oci:{tmp_path / 'lay'}"
    assert resolve(ref, "linux/arm64").digest == content.digests["arm"]
    assert resolve(ref, "linux/amd64").digest == content.digests["amd"]
    assert platforms(ref) == [Platform("linux", "amd64"), Platform("linux", "arm64")]

