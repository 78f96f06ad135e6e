"""Sources: transports, selecting an image (tag, docker-archive ``:REF``/``:@N``, nested index, platform),
the bad inputs each gives a typed error for, and what the image exposes (config, manifest digest, history).

The expected values come from the files themselves (index.json, the manifest and config blobs, read here)
or from skopeo reading the same source, never from ocilens.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ocilens
from imagebuild import (EmptyLayer, Entry, Layer, Op, blob_path, config_of, layout_from_tars, manifest_of, run,
                        tar_layer, to_archive, umoci_image)

REF_NAME = "org.opencontainers.image.ref.name"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SAMPLE = Path(ocilens.__file__).resolve().parent / "_sample"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = sha(data)
    blob_path(layout, digest).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def small_layout(tmp_path: Path, name: str, tag: str = "t", arch: str = "amd64") -> Path:
    """A one-layer image whose only file is ``/name`` holding ``name``."""
    return layout_from_tars(tmp_path, [tar_layer([Entry.file(name, name)])], tag=tag,
                            config={"architecture": arch, "os": "linux"})


def file_names(img: ocilens.Image) -> list[str]:
    return sorted(img.files["path"])


# ------------------------------------------------------------------------------------------ bad references


@pytest.mark.parametrize("ref", ["docker-daemon:", "podman:", "containers-storage:alpine", "dir:/tmp/some-dir",
                                 "ftp://example.com/image", "bogus:/some/path", "oci:", "oci-archive:",
                                 "docker-archive:"])
def test_unknown_or_unsupported_transports(ref: str) -> None:
    with pytest.raises(ocilens.ImageReferenceError) as info:
        ocilens.load(ref)
    assert ref.split(":")[0] in str(info.value)


@pytest.mark.parametrize("transport", ["oci", "oci-archive", "docker-archive"])
def test_missing_path(tmp_path: Path, transport: str) -> None:
    missing = tmp_path / f"nothing-{uuid.uuid4().hex}" / "image"
    with pytest.raises(ocilens.SourceNotFound) as info:
        ocilens.load(f"{transport}:{missing}:sometag" if transport != "docker-archive" else f"{transport}:{missing}")
    assert str(missing) in str(info.value)


def test_missing_bare_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ocilens.SourceNotFound) as info:
        ocilens.load(str(missing))
    assert str(missing) in str(info.value)


def test_missing_tag_lists_the_tags(tmp_path: Path) -> None:
    layout = small_layout(tmp_path, "a", tag="alpha")
    run("umoci", "tag", "--image", f"{layout}:alpha", "beta")
    tags = [m["annotations"][REF_NAME] for m in json.loads((layout / "index.json").read_text())["manifests"]]
    assert sorted(tags) == ["alpha", "beta"]  # the construction
    with pytest.raises(ocilens.ImageNotFound) as info:
        ocilens.load(f"oci:{layout}:gamma")
    msg = str(info.value)
    assert "gamma" in msg and "alpha" in msg and "beta" in msg
    assert file_names(ocilens.load(f"oci:{layout}:beta")) == ["/a"]
    archive = to_archive(layout, "alpha", tmp_path / "oci.tar")
    with pytest.raises(ocilens.ImageNotFound) as info:
        ocilens.load(f"oci-archive:{archive}:gamma")
    assert "gamma" in str(info.value) and "alpha" in str(info.value)


def test_missing_ref_in_docker_archive_lists_the_tags(tmp_path: Path) -> None:
    layout = small_layout(tmp_path, "a")
    archive = to_archive(layout, "t", tmp_path / "d.tar", "docker-archive", dest_ref="example.com/app:1")
    with pytest.raises(ocilens.ImageNotFound) as info:
        ocilens.load(f"docker-archive:{archive}:example.com/other:9")
    assert "example.com/other:9" in str(info.value) and "example.com/app:1" in str(info.value)
    with pytest.raises(ocilens.ImageNotFound):
        ocilens.load(f"docker-archive:{archive}:@1")


def test_not_a_layout_or_archive(tmp_path: Path) -> None:
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(ocilens.SourceError) as info:
        ocilens.load(f"oci:{empty}")
    assert str(empty) in str(info.value) and "index.json" in str(info.value)
    junk = tmp_path / "junk-dir"
    junk.mkdir()
    (junk / "README").write_text("not an image\n")
    (junk / "blobs").mkdir()
    with pytest.raises(ocilens.SourceError):
        ocilens.load(f"oci:{junk}")
    afile = tmp_path / "a-file"
    afile.write_text("hello\n")
    for ref in (f"oci:{afile}", f"oci-archive:{afile}", f"docker-archive:{afile}", f"oci-archive:{empty}"):
        with pytest.raises(ocilens.SourceError) as info:
            ocilens.load(ref)
        assert str(afile if "a-file" in ref else empty) in str(info.value), ref
    # the wrong archive kind for the transport
    layout = small_layout(tmp_path, "a")
    oci_tar = to_archive(layout, "t", tmp_path / "oci.tar")
    docker_tar = to_archive(layout, "t", tmp_path / "docker.tar", "docker-archive")
    with pytest.raises(ocilens.SourceError) as info:
        ocilens.load(f"docker-archive:{oci_tar}")
    assert "manifest.json" in str(info.value)
    with pytest.raises(ocilens.SourceError) as info:
        ocilens.load(f"oci-archive:{docker_tar}")
    assert "index.json" in str(info.value)


def test_invalid_index_json(tmp_path: Path) -> None:
    layout = small_layout(tmp_path, "a")
    (layout / "index.json").write_text("{not json")
    with pytest.raises(ocilens.SourceError) as info:  # UnsupportedImage is a SourceError
        ocilens.load(f"oci:{layout}:t")
    assert "index.json" in str(info.value)


def test_missing_blob(tmp_path: Path) -> None:
    layout = small_layout(tmp_path, "a")
    digest = manifest_of(layout, "t")["layers"][0]["digest"]
    blob_path(layout, digest).unlink()
    with pytest.raises(ocilens.SourceNotFound) as info:
        ocilens.load(f"oci:{layout}:t", cache=False)
    assert digest.split(":")[1] in str(info.value)


# ------------------------------------------------------------------------------------------ selecting


def test_paths_with_colons_and_bare_paths(tmp_path: Path) -> None:
    built = small_layout(tmp_path, "a", tag="v1")
    digest = json.loads((built / "index.json").read_text())["manifests"][0]["digest"]
    oci_tar = to_archive(built, "v1", tmp_path / "image.tar")  # skopeo cannot use paths with colons:
    docker_tar = to_archive(built, "v1", tmp_path / "docker.tar", "docker-archive")  # move them afterwards
    base = tmp_path / "with:colon"
    base.mkdir()
    layout = Path(shutil.move(built, base / "lay:out"))
    archive = Path(shutil.move(oci_tar, base / "image:x.tar"))
    assert ocilens.load(f"oci:{layout}:v1").manifest_digest == digest
    assert ocilens.load(f"oci:{layout}").manifest_digest == digest  # the only image
    assert ocilens.load(str(layout)).manifest_digest == digest  # a bare path: sniffed
    assert ocilens.load(f"oci-archive:{archive}:v1").manifest_digest == digest
    assert ocilens.load(f"oci-archive:{archive}").manifest_digest == digest
    assert ocilens.load(str(archive)).source.transport == "oci-archive"
    assert ocilens.load(str(docker_tar)).source.transport == "docker-archive"
    with pytest.raises(ocilens.ImageNotFound):
        ocilens.load(f"oci:{layout}:v2")


def _merge_docker_archives(dest: Path, *archives: Path) -> Path:
    """One ``docker save``-style tar holding the images of several single-image ones."""
    members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    manifest: list[Any] = []
    repositories: dict[str, dict[str, str]] = {}
    for archive in archives:
        with tarfile.open(archive) as tf:
            for m in tf:
                data = tf.extractfile(m).read() if m.isfile() else None
                if m.name == "manifest.json":
                    manifest += json.loads(data)
                elif m.name == "repositories":
                    for repo, tags in json.loads(data).items():
                        repositories.setdefault(repo, {}).update(tags)
                else:
                    members.setdefault(m.name, (m, data))
    with tarfile.open(dest, "w") as out:
        for m, data in members.values():
            out.addfile(m, io.BytesIO(data) if data is not None else None)
        for name, obj in (("manifest.json", manifest), ("repositories", repositories)):
            raw = json.dumps(obj).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            out.addfile(info, io.BytesIO(raw))
    return dest


def test_docker_archive_with_two_images(tmp_path: Path) -> None:
    a, b = small_layout(tmp_path, "a"), small_layout(tmp_path, "b")
    ta = to_archive(a, "t", tmp_path / "a.tar", "docker-archive", dest_ref="example.com/a:1")
    tb = to_archive(b, "t", tmp_path / "b.tar", "docker-archive", dest_ref="example.com/b:2")
    both = _merge_docker_archives(tmp_path / "both.tar", ta, tb)
    # skopeo reads the merged archive as two images: the construction is a valid multi-image archive
    skopeo_b = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{both}:@1"))
    assert skopeo_b == config_of(b, "t")
    assert json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{both}:example.com/a:1")) == config_of(a, "t")
    for ref, name in ((f"docker-archive:{both}:@0", "a"), (f"docker-archive:{both}:@1", "b"),
                      (f"docker-archive:{both}:example.com/a:1", "a"), (f"docker-archive:{both}:example.com/b:2", "b")):
        img = ocilens.load(ref)
        assert file_names(img) == [f"/{name}"], ref
        assert img.config == config_of(a if name == "a" else b, "t"), ref
    with pytest.raises(ocilens.ImageNotFound) as info:
        ocilens.load(f"docker-archive:{both}")
    assert "example.com/a:1" in str(info.value) and "example.com/b:2" in str(info.value)
    with pytest.raises(ocilens.ImageNotFound):
        ocilens.load(f"docker-archive:{both}:@2")
    with pytest.raises(ocilens.ImageNotFound):
        ocilens.load(f"docker-archive:{both}:example.com/c:3")


def test_docker_archive_additional_tags_and_familiar_names(tmp_path: Path) -> None:
    layout = small_layout(tmp_path, "a")
    archive = tmp_path / "tags.tar"
    run("skopeo", "copy", "--quiet", "--additional-tag", "example.com/extra:2", f"oci:{layout}:t",
        f"docker-archive:{archive}:alpine:3")
    with tarfile.open(archive) as tf:
        tags = json.loads(tf.extractfile("manifest.json").read())[0]["RepoTags"]
    assert tags == ["docker.io/library/alpine:3", "example.com/extra:2"]  # the construction
    for sel in ("alpine:3", "docker.io/library/alpine:3", "library/alpine:3", "example.com/extra:2", "@0"):
        assert file_names(ocilens.load(f"docker-archive:{archive}:{sel}")) == ["/a"], sel


def _nested_layout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A layout whose tag ``multi`` names an index (amd64, arm64) nested in an index (and one more level
    for ``deep``); returns the layout and the manifest digest of each architecture."""
    amd, arm = small_layout(tmp_path, "amd", arch="amd64"), small_layout(tmp_path, "arm", arch="arm64")
    for blob in (arm / "blobs" / "sha256").iterdir():
        shutil.copy(blob, amd / "blobs" / "sha256" / blob.name)
    digests, entries = {}, []
    for arch, layout in (("amd64", amd), ("arm64", arm)):
        desc = json.loads((layout / "index.json").read_text())["manifests"][0]
        digests[arch] = desc["digest"]
        entries.append({"mediaType": OCI_MANIFEST, "digest": desc["digest"], "size": desc["size"],
                        "platform": {"architecture": arch, "os": "linux"}})
    inner = write_blob(amd, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode())
    outer = write_blob(amd, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                        "manifests": [{"mediaType": OCI_INDEX, **inner}]}).encode())
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, **inner, "annotations": {REF_NAME: "multi"}},
        {"mediaType": OCI_INDEX, **outer, "annotations": {REF_NAME: "deep"}}]}
    (amd / "index.json").write_text(json.dumps(index))
    return amd, digests


def test_nested_index_in_a_layout(tmp_path: Path) -> None:
    layout, digests = _nested_layout(tmp_path)
    for tag in ("multi", "deep"):
        for arch in ("amd64", "arm64"):
            # skopeo resolves the nesting the same way (its "Digest" is the top index's; compare configs)
            out = json.loads(run("skopeo", "inspect", "--config", "--override-os", "linux", "--override-arch",
                                 arch, f"oci:{layout}:{tag}"))
            assert out["architecture"] == arch
            img = ocilens.load(f"oci:{layout}:{tag}", platform=f"linux/{arch}")
            assert img.manifest_digest == digests[arch], (tag, arch)
            assert img.config == out
            assert file_names(img) == ["/amd" if arch == "amd64" else "/arm"]
    # no platform asked: the host's, as skopeo (and a runtime on this machine) would choose
    host = json.loads(run("skopeo", "inspect", "--config", f"oci:{layout}:multi"))
    assert ocilens.load(f"oci:{layout}:multi").config == host
    with pytest.raises(ocilens.ImageNotFound) as info:
        ocilens.load(f"oci:{layout}:multi", platform="linux/s390x")
    assert "s390x" in str(info.value) and "linux/amd64" in str(info.value) and "linux/arm64" in str(info.value)


# ------------------------------------------------------------------------------------------ what an image exposes


def _index_digest(layout: Path, tag: str) -> str:
    for m in json.loads((layout / "index.json").read_text())["manifests"]:
        if m.get("annotations", {}).get(REF_NAME) == tag:
            return m["digest"]
    raise KeyError(tag)


def test_sample_config_manifest_and_history(tmp_path: Path) -> None:
    img = ocilens.sample_image()
    digest = _index_digest(SAMPLE, "sample")
    raw = blob_path(SAMPLE, digest).read_bytes()
    assert img.manifest_digest == digest == sha(raw)
    assert img.manifest.raw == raw
    manifest = json.loads(raw)
    config_raw = blob_path(SAMPLE, manifest["config"]["digest"]).read_bytes()
    config = json.loads(config_raw)
    assert img.config == config
    assert img.image_id == manifest["config"]["digest"] == sha(config_raw)
    assert list(img.layers["digest"]) == [layer["digest"] for layer in manifest["layers"]]
    assert list(img.layers["compressed_size"]) == [layer["size"] for layer in manifest["layers"]]
    assert list(img.layers["diff_id"]) == config["rootfs"]["diff_ids"]
    _check_history(img, config)
    assert any(h.get("empty_layer") for h in config["history"]), "the sample must have empty_layer rows"


def _check_history(img: ocilens.Image, config: dict[str, Any]) -> None:
    history = config.get("history", [])
    h = img.history
    assert len(h) == len(history)
    assert list(h["created_by"]) == [row.get("created_by") for row in history]
    assert list(h["empty_layer"]) == [bool(row.get("empty_layer")) for row in history]
    want_layers, n = [], 0
    for row in history:
        if row.get("empty_layer"):
            want_layers.append(None)
        else:
            want_layers.append(n)
            n += 1
    assert [None if pd.isna(x) else int(x) for x in h["layer"]] == want_layers
    assert list(h["created"]) == [pd.Timestamp(row["created"]) for row in history]
    made = [row for row in history if not row.get("empty_layer")]
    assert n == len(img.layers)
    assert list(img.layers["created_by"]) == [row.get("created_by") for row in made]
    assert list(img.layers["created"]) == [pd.Timestamp(row["created"]) for row in made]


def test_history_alignment_with_empty_layers_anywhere(tmp_path: Path) -> None:
    layout = umoci_image(tmp_path, [
        EmptyLayer("ARG first", ("--config.env", "A=1")),
        Layer("RUN one", [Op.write("/one", "1")]),
        EmptyLayer("ENV B=2", ("--config.env", "B=2")),
        EmptyLayer("ENV C=3", ("--config.env", "C=3")),
        Layer("RUN two", [Op.write("/two", "2")]),
        Layer("RUN three", [Op.write("/three", "3")]),
        EmptyLayer('CMD ["x"]', ("--config.cmd", "x")),
    ], tag="h")
    config = config_of(layout, "h")
    assert [bool(r.get("empty_layer")) for r in config["history"]] == [True, False, True, True, False, False, True]
    for ref in (f"oci:{layout}:h",
                f"docker-archive:{to_archive(layout, 'h', tmp_path / 'h.tar', 'docker-archive')}"):
        img = ocilens.load(ref)
        _check_history(img, config_of(layout, "h"))
        assert list(img.layers["created_by"]) == ["RUN one", "RUN two", "RUN three"]


def test_history_rows_from_a_hand_written_config(tmp_path: Path) -> None:
    history = [{"created_by": "FROM scratch", "empty_layer": True},
               {"created_by": "ADD a /"},
               {"created_by": "ENV X=1", "empty_layer": True},
               {"created_by": "ADD b /"}]
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a", "a")]), tar_layer([Entry.file("b", "b")])],
                              history=history)
    img = ocilens.load(f"oci:{layout}:t")
    _check_history(img, config_of(layout, "t"))
    assert list(img.layers["created_by"]) == ["ADD a /", "ADD b /"]


@pytest.mark.parametrize("kind", ["oci", "oci-archive", "docker-archive"])
def test_config_and_manifest_digest_per_transport(tmp_path: Path, kind: str) -> None:
    layout = umoci_image(tmp_path, [Layer("RUN x", [Op.write("/x", "x")]), EmptyLayer("ENV A=1", ("--config.env", "A=1"))],
                         tag="c")
    if kind == "oci":
        ref, root = f"oci:{layout}:c", layout
    else:
        archive = to_archive(layout, "c", tmp_path / f"{kind}.tar", kind)  # type: ignore[arg-type]
        ref = f"{kind}:{archive}" + (":c" if kind == "oci-archive" else "")
        root = tmp_path / f"{kind}-unpacked"
        with tarfile.open(archive) as tf:
            tf.extractall(root)
    img = ocilens.load(ref)
    if kind == "docker-archive":
        entry = json.loads((root / "manifest.json").read_text())[0]
        config_raw = (root / entry["Config"]).read_bytes()
        assert img.config == json.loads(config_raw)
        assert img.image_id == sha(config_raw)
        assert img.manifest_digest is None  # a classic `docker save` tar stores no manifest blob
    else:
        digest = _index_digest(root, "c")
        raw = blob_path(root, digest).read_bytes()
        assert img.manifest_digest == digest == sha(raw)
        config_raw = blob_path(root, json.loads(raw)["config"]["digest"]).read_bytes()
        assert img.config == json.loads(config_raw)
        # skopeo computes the same manifest digest
        assert json.loads(run("skopeo", "inspect", ref))["Digest"] == digest
    assert img.config["config"]["Env"][-1] == "A=1"
    _check_history(img, img.config)


def _tar_dir(root: Path, dest: Path, extra: dict[str, bytes]) -> Path:
    """``root``'s files (relative names, no './') plus ``extra`` members, as an uncompressed tar."""
    with tarfile.open(dest, "w") as out:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out.add(p, arcname=str(p.relative_to(root)))
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return dest


def test_docker_archive_in_the_newer_oci_style(tmp_path: Path) -> None:
    """``docker save`` since Docker 25: an OCI layout plus manifest.json naming blobs/sha256/... paths."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a", "a")]), tar_layer([Entry.file("b", "b")])],
                              "none", tag="docker.io/library/app:1")
    manifest = manifest_of(layout, "docker.io/library/app:1")
    entry = [{"Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
              "RepoTags": ["app:1"],
              "Layers": ["blobs/sha256/" + layer["digest"].split(":")[1] for layer in manifest["layers"]]}]
    archive = _tar_dir(layout, tmp_path / "new-docker.tar", {"manifest.json": json.dumps(entry).encode()})
    assert json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}")) == \
        config_of(layout, "docker.io/library/app:1")  # skopeo reads the construction
    img = ocilens.load(f"docker-archive:{archive}:app:1")
    assert file_names(img) == ["/a", "/b"]
    assert img.manifest_digest == json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    assert list(img.layers["digest"]) == [layer["digest"] for layer in manifest["layers"]]


def test_docker_archive_in_the_classic_id_layer_tar_style(tmp_path: Path) -> None:
    """Older ``docker save``: ``<id>/layer.tar`` regular files, named by nothing but the config's diff_ids."""
    layout = small_layout(tmp_path, "a")
    flat = to_archive(layout, "t", tmp_path / "flat.tar", "docker-archive", dest_ref="example.com/old:1")
    root = tmp_path / "flat"
    with tarfile.open(flat) as tf:
        tf.extractall(root)
    entry = json.loads((root / "manifest.json").read_text())[0]
    extra, layers = {}, []
    for i, name in enumerate(entry["Layers"]):
        data = (root / name).resolve().read_bytes()
        extra[f"layer{i}id/layer.tar"] = data
        extra[f"layer{i}id/VERSION"] = b"1.0"
        layers.append(f"layer{i}id/layer.tar")
    config = (root / entry["Config"]).read_bytes()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    extra[cfg_name] = config
    extra["manifest.json"] = json.dumps([{"Config": cfg_name, "RepoTags": entry["RepoTags"], "Layers": layers}]).encode()
    empty = tmp_path / "nothing"
    empty.mkdir()
    archive = _tar_dir(empty, tmp_path / "classic.tar", extra)
    assert json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}")) == json.loads(config)
    img = ocilens.load(f"docker-archive:{archive}")
    assert file_names(img) == ["/a"]
    assert list(img.layers["digest"]) == json.loads(config)["rootfs"]["diff_ids"]
    # the layer.tar is verified against its diff_id
    with tarfile.open(archive) as tf:
        start = tf.getmember("layer0id/layer.tar").offset_data
    data = bytearray(archive.read_bytes())
    assert data[start + 512:start + 513] == b"a"  # the content of /a, after its header
    data[start + 512] = ord("b")
    archive.write_bytes(bytes(data))
    with pytest.raises(ocilens.DigestMismatch) as info:
        ocilens.load(f"docker-archive:{archive}", cache=False)
    assert info.value.digest == json.loads(config)["rootfs"]["diff_ids"][0]
