"""Bad input to ``load`` gives a typed ``ocilens.errors`` error that names the thing at fault and says what to
do, never a raw traceback: malformed docker-archive and OCI layout JSON, wrong argument types and options,
bare local paths, and truncated or mis-addressed archives.

Archives are written by skopeo (``to_archive``) and then damaged with Python's tarfile, member by member, the
way a broken copy or a hostile file would be; layouts are written by ``layout_from_tars``.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import io
import json
import os
import tarfile
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

import ocilens
from imagebuild import Entry, blob_path, layout_from_tars, manifest_of, tar_layer, to_archive
from ocilens.errors import (ImageNotFound, ImageReferenceError, InvalidReference, OcilensError, SizeMismatch, SourceError,
                            SourceNotFound, UnsupportedImage, UsageError)
from ocilens.manifest import Descriptor, index_entries

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def small_layout(tmp_path: Path, tag: str = "t") -> Path:
    """A one-layer image holding ``/a``."""
    return layout_from_tars(tmp_path, [tar_layer([Entry.file("a", "a")])], tag=tag)


def rewrite_tar(src: Path, dest: Path, change: Callable[[str, bytes], bytes | None] = lambda n, d: d,
                extra: dict[str, bytes] | None = None) -> Path:
    """Copy ``src`` member by member; ``change(name, data)`` returns new data or ``None`` to drop the member."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin:
            data = tin.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            if m.isfile():
                new = change(m.name, data)
                if new is None:
                    continue
                m.size = len(new)
                tout.addfile(m, io.BytesIO(new))
            else:
                tout.addfile(m)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    return dest


def docker_archive(tmp_path: Path) -> Path:
    """``skopeo copy`` of a one-layer image to a docker-archive tagged example.com/app:1."""
    return to_archive(small_layout(tmp_path), "t", tmp_path / "docker.tar", "docker-archive",
                      dest_ref="example.com/app:1")


def manifest_json(archive: Path) -> list[dict[str, Any]]:
    with tarfile.open(archive) as tf:
        return json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]


def replace_manifest_json(archive: Path, dest: Path, entries: Any, extra: dict[str, bytes] | None = None) -> Path:
    raw = json.dumps(entries).encode()
    return rewrite_tar(archive, dest, lambda n, d: raw if n == "manifest.json" else d, extra)


def assert_clean(exc: OcilensError, *words: str) -> None:
    """The error names each of ``words`` and carries a hint."""
    text = str(exc)
    for word in words:
        assert word in text, (word, text)
    assert exc.hint, text


# ------------------------------------------------------------------------------------------ B3: malformed JSON


def test_docker_archive_layer_link_to_a_missing_member(tmp_path: Path) -> None:
    """skopeo writes ``<id>/layer.tar`` as a symlink to ``<digest>.tar``: drop the target, the link dangles."""
    archive = docker_archive(tmp_path)
    entry = manifest_json(archive)[0]
    layer_path = entry["Layers"][0]
    with tarfile.open(archive) as tf:
        link = next((m for m in tf if m.name == layer_path and m.issym()), None)
    target = (Path(layer_path).parent / link.linkname).as_posix() if link else layer_path
    target = os.path.normpath(target)
    broken = rewrite_tar(archive, tmp_path / "missing-layer.tar", lambda n, d: None if n == target else d)
    with pytest.raises(SourceNotFound) as info:
        ocilens.load(f"docker-archive:{broken}", cache=False)
    assert_clean(info.value, "layer 0", layer_path, str(broken))
    if link is not None:
        assert link.linkname in str(info.value)  # says the link is what dangles
    assert info.value.path == layer_path


def test_docker_archive_layer_path_not_in_the_tar(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path)
    entries = manifest_json(archive)
    entries[0]["Layers"] = ["nothere/layer.tar"]
    broken = replace_manifest_json(archive, tmp_path / "nothere.tar", entries)
    with pytest.raises(SourceNotFound) as info:
        ocilens.load(f"docker-archive:{broken}", cache=False)
    assert_clean(info.value, "layer 0", "nothere/layer.tar")


@pytest.mark.parametrize("entries, words", [
    ([1], ["manifest.json entry 0", "a number, not an object"]),
    (["x"], ["manifest.json entry 0", "a string, not an object"]),
    ([[{"Config": "c.json"}]], ["manifest.json entry 0", "an array, not an object"]),
    ([{"Config": 5, "Layers": []}], ["entry 0", "Config is a number"]),
    ([{"Config": "c.json", "Layers": "a/layer.tar"}], ["entry 0", "Layers is a string"]),
    ([{"Config": "c.json", "Layers": [1]}], ["entry 0", "Layers holds something other than strings"]),
    ([{"Config": "c.json", "Layers": [], "RepoTags": "app:1"}], ["entry 0", "RepoTags is a string"]),
    ({"Config": "c.json"}, ["manifest.json lists no images"]),
])
def test_docker_archive_manifest_json_entries_that_are_not_objects(tmp_path: Path, entries: Any,
                                                                    words: list[str]) -> None:
    broken = replace_manifest_json(docker_archive(tmp_path), tmp_path / "bad.tar", entries)
    with pytest.raises(UnsupportedImage) as info:
        ocilens.load(f"docker-archive:{broken}")
    assert_clean(info.value, f"docker-archive:{broken}", *words)


@pytest.mark.parametrize("config, words", [
    ([1, 2], ["is an array, not an object"]),
    ({"architecture": "amd64", "os": "linux"}, ["no rootfs.diff_ids"]),
    ({"rootfs": {"diff_ids": "sha256:abc"}}, ["no rootfs.diff_ids"]),
])
def test_docker_archive_config_that_is_not_an_image_config(tmp_path: Path, config: Any, words: list[str]) -> None:
    archive = docker_archive(tmp_path)
    raw = json.dumps(config).encode()
    name = hashlib.sha256(raw).hexdigest() + ".json"  # named by its digest, as docker save names configs
    entries = manifest_json(archive)
    entries[0]["Config"] = name
    broken = replace_manifest_json(archive, tmp_path / "cfg.tar", entries, extra={name: raw})
    with pytest.raises(UnsupportedImage) as info:
        ocilens.load(f"docker-archive:{broken}")
    assert_clean(info.value, f"config {name}", *words)


@pytest.mark.parametrize("manifests, words", [
    ([1], ["index.json manifests[0]", "a JSON number, not an object"]),
    (["sha256:abc"], ["index.json manifests[0]", "a JSON string, not an object"]),
    ([{"digest": "sha256:" + "0" * 64}], ["index.json manifests[0]", "without a valid digest and size"]),
    ([{"digest": "sha256:" + "0" * 64, "size": "12"}], ["without a valid digest and size"]),
    ("nope", ["index.json", "has no manifests list"]),
])
def test_layout_index_json_with_entries_that_are_not_descriptors(tmp_path: Path, manifests: Any,
                                                                  words: list[str]) -> None:
    layout = small_layout(tmp_path)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    with pytest.raises(UnsupportedImage) as info:
        ocilens.load(f"oci:{layout}:t")
    assert_clean(info.value, str(layout), "index.json", *words[1:])


def test_layout_index_entry_with_a_platform_that_is_not_an_object(tmp_path: Path) -> None:
    layout = small_layout(tmp_path)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["platform"] = ["linux", "amd64"]
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(UnsupportedImage) as info:
        ocilens.load(f"oci:{layout}:t")
    assert_clean(info.value, "index.json", "platform is a JSON array")


def test_oci_archive_index_json_with_non_object_entries(tmp_path: Path) -> None:
    archive = to_archive(small_layout(tmp_path), "t", tmp_path / "oci.tar")
    bad = json.dumps({"schemaVersion": 2, "manifests": [1]}).encode()
    broken = rewrite_tar(archive, tmp_path / "bad.tar", lambda n, d: bad if n == "index.json" else d)
    with pytest.raises(UnsupportedImage) as info:
        ocilens.load(f"oci-archive:{broken}")
    assert_clean(info.value, f"oci-archive:{broken}", "index.json manifests[0]", "not an object")


@pytest.mark.parametrize("nested, words", [
    ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [1]}, ["manifests[0]", "not an object"]),
    ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": 5}, ["manifests is a JSON number"]),
    ([1, 2], ["a JSON array, not an object"]),
])
def test_nested_index_that_is_not_an_index(tmp_path: Path, nested: Any, words: list[str]) -> None:
    """index.json points at an index blob whose content is not a list of descriptors."""
    layout = small_layout(tmp_path)
    raw = json.dumps(nested).encode()
    blob_path(layout, sha(raw)).write_bytes(raw)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_INDEX, "digest": sha(raw), "size": len(raw),
                                                "annotations": {"org.opencontainers.image.ref.name": "t"}}]}
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(UnsupportedImage) as info:
        ocilens.load(f"oci:{layout}:t")
    assert_clean(info.value, sha(raw), *words)
    with pytest.raises(UnsupportedImage):
        ocilens.platforms(f"oci:{layout}:t")


@pytest.mark.parametrize("change, words", [
    ({"config": [1]}, ["no config descriptor", "array"]),
    ({"config": "sha256:abc"}, ["no config descriptor", "string"]),
    ({"layers": {"digest": "x"}}, ["layers is a JSON object, not an array"]),
    ({"layers": [7]}, ["layers[0]", "a JSON number, not an object"]),
])
def test_manifest_with_config_or_layers_of_the_wrong_shape(tmp_path: Path, change: dict[str, Any],
                                                           words: list[str]) -> None:
    layout = small_layout(tmp_path)
    manifest = {**manifest_of(layout, "t"), **change}
    raw = json.dumps(manifest).encode()
    blob_path(layout, sha(raw)).write_bytes(raw)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=sha(raw), size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(UnsupportedImage) as info:
        ocilens.load(f"oci:{layout}:t")
    assert_clean(info.value, sha(raw), *words)


@pytest.mark.parametrize("obj", [1, "sha256:abc", None, [1], True])
def test_descriptor_from_json_refuses_what_is_not_an_object(obj: Any) -> None:
    """The one place every source (layout, archives, registry indexes) turns JSON into descriptors."""
    with pytest.raises(UnsupportedImage) as info:
        Descriptor.from_json(obj, where="index of example.com/app:1", reference="example.com/app:1")
    assert_clean(info.value, "index of example.com/app:1", "not an object")
    assert info.value.reference == "example.com/app:1"


def test_registry_index_with_non_object_entries() -> None:
    """A registry index is read by the same code: RegistrySource's entries of an index with ``[1]``.
    (No request is made: the index is given, the client is created lazily.)"""
    from ocilens.sources.registry import RegistrySource

    src = RegistrySource("127.0.0.1:1/team/app:1")
    with pytest.raises(UnsupportedImage) as info:
        src._entries({"schemaVersion": 2, "manifests": [1]}, "index of 127.0.0.1:1/team/app:1")
    assert_clean(info.value, "index of 127.0.0.1:1/team/app:1", "not an object")
    with pytest.raises(UnsupportedImage):
        index_entries({"manifests": {"a": 1}}, where="index")
    with pytest.raises(UnsupportedImage):
        index_entries([1], where="index")


# ------------------------------------------------------------------------------------------ B5 / A7: arguments


@pytest.mark.parametrize("ref", [None, 123, 1.5, b"oci:layout:t", ["oci:layout:t"]])
def test_load_of_something_that_is_not_a_reference(ref: Any) -> None:
    with pytest.raises(InvalidReference) as info:
        ocilens.load(ref)
    assert_clean(info.value, "a reference is a string", type(ref).__name__)
    with pytest.raises(InvalidReference):
        ocilens.platforms(ref)


def test_empty_reference_is_not_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = small_layout(tmp_path)
    monkeypatch.chdir(layout)  # a layout right here must not be what "" means
    with pytest.raises(InvalidReference) as info:
        ocilens.load("")
    assert "empty" in str(info.value)


def test_load_of_a_path_object(tmp_path: Path) -> None:
    layout = small_layout(tmp_path)
    assert sorted(ocilens.load(layout).files["path"]) == ["/a"]
    with pytest.raises(SourceNotFound):
        ocilens.load(tmp_path / "alpine")  # a Path is never a registry reference


@pytest.mark.parametrize("auth", ["alice:wonderland", ("alice", "wonder", "land"), ("alice",), ("alice", 5),
                                  {"user": "alice", "password": "wonderland"}])
@pytest.mark.parametrize("where", ["registry", "local"])
def test_auth_that_is_not_a_user_password_pair(tmp_path: Path, auth: Any, where: str) -> None:
    """Refused before any request (the registry is not even reachable); the message never shows the secret."""
    ref = "127.0.0.1:1/team/app:1" if where == "registry" else f"oci:{small_layout(tmp_path)}:t"
    with pytest.raises(UsageError) as info:
        ocilens.load(ref, auth=auth)
    assert_clean(info.value, "auth=", "(user, password)", ref)
    assert "wonder" not in str(info.value)
    if isinstance(auth, str):
        assert "split 'user:password'" in str(info.value)


def test_insecure_that_is_not_a_bool() -> None:
    with pytest.raises(UsageError) as info:
        ocilens.load("127.0.0.1:1/team/app:1", insecure="yes")
    assert_clean(info.value, "insecure=", "True, False or None")


def _sources(tmp_path: Path) -> dict[str, str]:
    layout = small_layout(tmp_path)
    return {
        "oci": f"oci:{layout}:t",
        "oci-archive": f"oci-archive:{to_archive(layout, 't', tmp_path / 'oci.tar')}",
        "docker-archive": f"docker-archive:{to_archive(layout, 't', tmp_path / 'd.tar', 'docker-archive')}",
        "registry": "127.0.0.1:1/team/app:1",  # refused before connecting
        "bare path": str(layout),
    }


def test_misspelled_options_are_refused_by_every_source(tmp_path: Path) -> None:
    for kind, ref in _sources(tmp_path).items():
        with pytest.raises(UsageError) as info:
            ocilens.load(ref, platfrom="linux/arm64")
        assert_clean(info.value, "unknown option platfrom=", "did you mean platform=?", "insecure")
        with pytest.raises(UsageError) as info:
            ocilens.load(ref, insecur=True, retries=3)
        assert "insecur=" in str(info.value) and "retries=" in str(info.value), kind
        with pytest.raises(UsageError):
            ocilens.platforms(ref, platfrom="linux/arm64")


def test_registry_only_options_on_a_local_source_warn(tmp_path: Path) -> None:
    """auth=/insecure= are passed to every reference of a mixed list (CLI --insecure, audit): a warning."""
    for kind, ref in _sources(tmp_path).items():
        if kind == "registry":
            continue
        with pytest.warns(UserWarning, match=r"auth= and insecure= only apply to registries") as record:
            img = ocilens.load(ref, auth=("alice", "wonderland"), insecure=True)
        assert sorted(img.files["path"]) == ["/a"]
        assert "wonderland" not in str(record[0].message)
        assert record[0].filename == __file__  # points at the caller's line, not inside ocilens
        with pytest.warns(UserWarning, match=r"insecure= only applies to registries"):
            ocilens.load(ref, insecure=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # defaults and tuning options say nothing
            ocilens.load(ref, auth=None, insecure=False, max_workers=2, timeout=5.0)


def test_registry_options_match_the_registry_source() -> None:
    """The option names a local source accepts (a constant: no HTTP import) are RegistrySource's."""
    from ocilens.sources import REGISTRY_OPTIONS
    from ocilens.sources.registry import RegistrySource

    params = inspect.signature(RegistrySource.__init__).parameters
    assert set(REGISTRY_OPTIONS) == {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}


# ------------------------------------------------------------------------------------------ C4: bare paths


def test_bare_path_that_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for ref in (str(tmp_path / "nope"), "./nope", "../nope-x/y", "nope.tar", "~/nope-ocilens-test-dir"):
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SourceNotFound) as info:
            ocilens.load(ref)
        assert_clean(info.value, repr(ref), "no such file or directory")
        assert "is not an image layout" not in str(info.value)


def test_existing_file_that_is_not_an_image_is_not_looked_up_on_docker_hub(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notatar.tar").write_text("hello\n")
    Path("notes").write_text("hello\n")  # a valid Docker Hub name too
    for ref in ("notatar.tar", "./notatar.tar", str(tmp_path / "notatar.tar"), "notes"):
        with pytest.raises(SourceError) as info:
            ocilens.load(ref)
        assert_clean(info.value, repr(ref), "exists, but is neither an OCI image layout nor an image archive")
    with pytest.raises(SourceError) as info:
        ocilens.load("notes")
    assert "docker://notes" in str(info.value)  # how to mean the registry


def test_existing_paths_of_the_wrong_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("emptydir").mkdir()
    with pytest.raises(SourceError) as info:
        ocilens.load("./emptydir")
    assert_clean(info.value, "is a directory, but not an OCI image layout", "index.json")
    with tarfile.open("plain.tar", "w") as tf:
        tf.add("emptydir")
    with pytest.raises(SourceError) as info:
        ocilens.load("plain.tar")
    assert_clean(info.value, "is a tar archive, but neither", "index.json", "manifest.json")
    archive = to_archive(small_layout(tmp_path), "t", tmp_path / "oci.tar")
    Path("oci.tar.gz").write_bytes(gzip.compress(archive.read_bytes()))
    with pytest.raises(SourceError) as info:
        ocilens.load("./oci.tar.gz")
    assert_clean(info.value, "compressed", "gzip -dc")
    os.symlink(tmp_path / "gone", "dangling")
    with pytest.raises(SourceNotFound) as info:
        ocilens.load("./dangling")
    assert_clean(info.value, "symbolic link", "gone")


def test_bare_path_with_a_tag_hints_the_transport(tmp_path: Path) -> None:
    layout = small_layout(tmp_path)
    oci_tar = to_archive(layout, "t", tmp_path / "oci.tar")
    docker_tar = to_archive(layout, "t", tmp_path / "d.tar", "docker-archive")
    for ref, suggestion in ((f"{layout}:t", f"oci:{layout}:t"), (f"{oci_tar}:t", f"oci-archive:{oci_tar}:t"),
                            (f"{docker_tar}:@0", f"docker-archive:{docker_tar}:@0")):
        with pytest.raises(ImageReferenceError) as info:
            ocilens.load(ref)
        assert_clean(info.value, "no such file or directory", suggestion)
        assert sorted(ocilens.load(suggestion).files["path"]) == ["/a"]  # the hint works


def test_oci_transport_on_a_missing_directory_has_a_hint(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound) as info:
        ocilens.load(f"oci:{tmp_path / 'nonexistent'}")
    assert_clean(info.value, "no such directory")


# ------------------------------------------------------------------------------------------ C8: archives


def _cut_before(archive: Path, member: str, dest: Path) -> Path:
    """``archive`` cut exactly at the header of ``member``: a copy that stopped at a member boundary."""
    with tarfile.open(archive) as tf:
        offset = tf.getmember(member).offset
    dest.write_bytes(archive.read_bytes()[:offset])
    return dest


def test_archive_truncated_at_a_member_boundary(tmp_path: Path) -> None:
    layout = small_layout(tmp_path)
    oci_tar = to_archive(layout, "t", tmp_path / "oci.tar")
    cut = _cut_before(oci_tar, "index.json", tmp_path / "oci-cut.tar")
    with pytest.raises(SourceNotFound) as info:
        ocilens.load(f"oci-archive:{cut}")
    assert_clean(info.value, "index.json is missing", "truncated", "copy or save the image again")
    assert "not an OCI image layout" not in str(info.value)
    with pytest.raises(SourceNotFound) as info:
        ocilens.load(str(cut))  # bare: the sniffer found index.json missing too
    docker_tar = to_archive(layout, "t", tmp_path / "d.tar", "docker-archive")
    cut = _cut_before(docker_tar, "manifest.json", tmp_path / "d-cut.tar")
    with pytest.raises(SourceNotFound) as info:
        ocilens.load(f"docker-archive:{cut}")
    assert_clean(info.value, "manifest.json is missing", "truncated")


def test_archive_truncated_inside_a_member(tmp_path: Path) -> None:
    oci_tar = to_archive(small_layout(tmp_path), "t", tmp_path / "oci.tar")
    with tarfile.open(oci_tar) as tf:
        blob = next(m for m in tf if m.isfile() and m.size > 100)
    cut = tmp_path / "mid.tar"
    cut.write_bytes(oci_tar.read_bytes()[:blob.offset_data + 50])
    with pytest.raises(SourceError) as info:
        ocilens.load(f"oci-archive:{cut}")
    assert_clean(info.value, str(cut), "truncated", "copy or save the image again")


def test_intact_archives_still_load(tmp_path: Path) -> None:
    """The end-of-archive check accepts what skopeo and Python's tarfile write."""
    layout = small_layout(tmp_path)
    oci_tar = to_archive(layout, "t", tmp_path / "oci.tar")
    rewritten = rewrite_tar(oci_tar, tmp_path / "py.tar")
    for ref in (f"oci-archive:{oci_tar}", f"oci-archive:{rewritten}"):
        assert sorted(ocilens.load(ref).files["path"]) == ["/a"]


def test_oci_archive_tag_hint_names_its_own_transport(tmp_path: Path) -> None:
    layout = small_layout(tmp_path)
    oci_tar = to_archive(layout, "t", tmp_path / "oci.tar")
    with pytest.raises(ImageNotFound) as info:
        ocilens.load(f"oci-archive:{oci_tar}:nope")
    assert f"oci-archive:{oci_tar}:TAG" in info.value.hint  # type: ignore[operator]
    with pytest.raises(ImageNotFound) as info:
        ocilens.load(f"oci:{layout}:nope")
    assert f"oci:{layout}:TAG" in info.value.hint  # type: ignore[operator]


def test_docker_archive_position_must_be_a_number(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path)
    for sel in (":@x", ":@-1", "@sha256:" + "0" * 64):
        with pytest.raises(InvalidReference) as info:
            ocilens.load(f"docker-archive:{archive}{sel}")
        assert_clean(info.value, "@N must be a number", "@0")
    with pytest.raises(ImageNotFound) as info:
        ocilens.load(f"docker-archive:{archive}:@3")
    assert_clean(info.value, "holds 1 image;", "no @3", "use @0")
    assert "1 images" not in str(info.value)


def test_a_config_that_is_not_an_object(tmp_path: Path) -> None:
    """A manifest whose config blob is a JSON array is an UnsupportedImage naming the config, not an image
    analysed with an empty config."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("f", b"x")])])
    manifest = manifest_of(layout, "t")
    config = b"[1, 2]"
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    blob_path(layout, digest).write_bytes(config)
    manifest["config"].update(digest=digest, size=len(config))
    raw = json.dumps(manifest).encode()
    mdigest = "sha256:" + hashlib.sha256(raw).hexdigest()
    blob_path(layout, mdigest).write_bytes(raw)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=mdigest, size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(UnsupportedImage, match=f"config {digest} is a JSON list, not an object"):
        ocilens.load(f"oci:{layout}:t", cache=False, progress=False)


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_cached_scan_does_not_hide_a_damaged_layout(tmp_path: Path, damage: str) -> None:
    """Analysed once (scans cached), then a layer blob is deleted or cut short: the next analysis says so, as
    it would without the cache, instead of passing on the strength of the cached scan."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("f", b"x" * 5000)])])
    ocilens.load(f"oci:{layout}:t", progress=False).files  # noqa: B018 - fills the scan and frame caches
    blob = blob_path(layout, manifest_of(layout, "t")["layers"][0]["digest"])
    if damage == "deleted":
        blob.unlink()
        expected: type[Exception] = SourceNotFound
    else:
        blob.write_bytes(blob.read_bytes()[:-10])
        expected = SizeMismatch
    with pytest.raises(expected):
        ocilens.load(f"oci:{layout}:t", progress=False)


def test_a_docker_archive_of_an_image_without_layers(tmp_path: Path) -> None:
    """``FROM scratch`` plus metadata only: docker save writes no ``rootfs.diff_ids`` at all; it loads, empty,
    as dive reads it."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"a": "b"}},
                         "rootfs": {"type": "layers"}}).encode()
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": ["x:1"], "Layers": []}]).encode()
    archive = tmp_path / "empty.tar"
    with tarfile.open(archive, "w") as tf:
        for member, data in ((name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    img = ocilens.load(f"docker-archive:{archive}", cache=False, progress=False)
    assert len(img.layers) == 0 and img.files.empty
