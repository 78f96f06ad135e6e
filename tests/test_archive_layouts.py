"""Every docker-archive layout real writers produce, each written by the test from real layers (the bundled
sample's gzip blobs of Debian files, or their tars) as its writer writes it (``tests/archives.py`` cites each
writer's source): go-containerregistry's ``tarball`` (crane, kaniko), zstd layers, layers named by nothing,
docker save's symlinked duplicate layers, Docker 25+'s OCI-layout archive, and docker < 1.10's
``repositories``-only archive.

The engine is the truth: ``docker load`` (Debian's Docker 20.10.24, started by the suite) accepts each archive,
so what the engine then saves (``docker save``), and says (``docker image inspect``: its ID, its RootFS
diff_ids), is what ocilens must see. The saved archive's tree is checked against ``umoci unpack`` of it (through
``skopeo copy``), and ocilens's ``files`` and ``events`` of the written archive must equal those of the saved one.
Each archive is read from its file, from a FIFO (a writer thread) and from standard input (the CLI, in a
subprocess, with the archive piped in).

Last, "same content, any source": ``img.diff(other).shared_content_layers`` pairs the layers by ``diff_id``
where ``shared_layers`` pairs them by digest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ocilens
import registry_server as rs
from archives import (Member, crane_members, docker25_members, docker_save_members, hexof, legacy_members,
                      sample_parts, sha256, tar_bytes, through_fifo, with_repeated_layer, write_tar)
from engines import EngineImage, EngineProcess
from imagebuild import assert_tree, run, tree_of, umoci_unpack

FRAME_COLUMNS = ["path", "type", "size", "mode", "uid", "gid", "linkname", "digest"]
EVENT_COLUMNS = ["layer", "path", "event", *FRAME_COLUMNS[1:]]


# ------------------------------------------------------------------------------------------- the truth


@dataclass
class Truth:
    """What the engine made of an archive it loaded: its inspect, its own save, and that save's tree."""

    inspect: dict[str, Any]
    saved: Path
    tree: dict[str, dict[str, Any]]
    image: ocilens.Image  # the engine's save read by ocilens (compared frame by frame with the written archive)


_TRUTHS: dict[tuple[str, str], Truth] = {}


def engine_truth(engine: EngineProcess, archive: Path, tag: str, work: Path) -> Truth:
    """``docker load`` the archive (it must be accepted), then ``docker save`` and inspect the tag."""
    key = (str(archive), tag)
    if key not in _TRUTHS:
        work.mkdir(parents=True, exist_ok=True)
        engine.cli("load", "-i", archive)
        inspect = json.loads(engine.cli("image", "inspect", tag))[0]
        saved = work / "saved.tar"
        engine.cli("save", "-o", saved, tag)
        run("skopeo", "copy", "--quiet", f"docker-archive:{saved}", f"oci:{work / 'layout'}:t")
        tree = tree_of(umoci_unpack(work / "layout", "t", work / "bundle"))
        image = ocilens.load(f"docker-archive:{saved}", progress=False, cache=False)
        _TRUTHS[key] = Truth(inspect, saved, tree, image)
    return _TRUTHS[key]


def _norm(v: Any) -> Any:
    """A cell as a plain value: None for NA, int for numbers, str for the rest (names, timestamps)."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    return int(v) if isinstance(v, int) else str(v)


def rows(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """A frame's rows on ``columns`` as plain Python values (NA as None)."""
    return [tuple(_norm(v) for v in row) for row in df[columns].astype(object).itertuples(index=False)]


def json_rows(records: list[dict[str, Any]], columns: list[str]) -> list[tuple]:
    return [tuple(_norm(r[c]) for c in columns) for r in records]


def assert_as_the_engine_sees_it(img: ocilens.Image, truth: Truth, *, image_id: bool = True) -> None:
    """ocilens's reading of the written archive is the engine's: diff_ids, image ID, files and events."""
    assert img.layers["diff_id"].tolist() == truth.inspect["RootFS"]["Layers"]
    if image_id:
        assert img.image_id == truth.inspect["Id"]
    assert rows(img.files, [*FRAME_COLUMNS, "mtime"]) == rows(truth.image.files, [*FRAME_COLUMNS, "mtime"])
    assert rows(img.events, EVENT_COLUMNS) == rows(truth.image.events, EVENT_COLUMNS)
    assert_tree(img, truth.tree)


def assert_cli_json(doc: dict[str, Any], truth: Truth) -> None:
    """The CLI's ``--json`` of the written archive (read from standard input) holds the engine's tables."""
    assert doc["image"]["image_id"] == truth.inspect["Id"]
    assert [layer["diff_id"] for layer in doc["layers"]] == truth.inspect["RootFS"]["Layers"]
    assert json_rows(doc["files"], FRAME_COLUMNS) == rows(truth.image.files, FRAME_COLUMNS)
    assert json_rows(doc["events"], EVENT_COLUMNS) == rows(truth.image.events, EVENT_COLUMNS)


# ------------------------------------------------------------------------------------------ the readers


def cli(args: list[str], data: bytes, cache: Path) -> subprocess.CompletedProcess[bytes]:
    """``python -m ocilens ARGS`` with ``data`` piped into its standard input."""
    env = {**os.environ, "OCILENS_CACHE_DIR": str(cache), "OCILENS_PROGRESS": "off"}
    return subprocess.run([sys.executable, "-m", "ocilens", *args], input=data, capture_output=True, env=env,
                          timeout=300)


def analyze_stdin(ref: str, data: bytes, tmp: Path) -> dict[str, Any]:
    """``ocilens analyze REF --json`` with the archive on standard input; the JSON it wrote."""
    out = tmp / f"out-{abs(hash(ref))}.json"
    done = cli(["analyze", ref, "--json", str(out)], data, tmp / "cli-cache")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(out.read_text())


# ----------------------------------------------------------------------------------------- the layouts


@dataclass(frozen=True)
class Case:
    """A layout: its members, the tag it loads as, and the digests its layers must have (what was written)."""

    id: str
    members: list[Member]
    tag: str
    digests: list[str]
    media_types: tuple[str, ...] = ()


def _cases() -> list[Case]:
    parts = sample_parts()
    zstd = parts.recompressed("zstd")
    blob_digests = [sha256(b) for b in parts.blobs]
    repeated = with_repeated_layer(parts)
    d25, _ = docker25_members(parts, "localhost/ocilens-layouts/docker25:1")
    tag = "localhost/ocilens-layouts/{}:1".format
    gzip_type = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    zstd_type = "application/vnd.oci.image.layer.v1.tar+zstd"
    return [
        # crane pull --format=tarball / kaniko: <hex>.tar.gz named by the compressed digest, config sha256:<hex>
        Case("crane", crane_members(parts, tag("crane")), tag("crane"), blob_digests, (gzip_type,) * 5),
        # the same with the config named <hex>.json, as docker save names it
        Case("crane-config-json", crane_members(parts, tag("crane-json"), config_name="json"), tag("crane-json"),
             blob_digests),
        # zstd layers under names that state nothing (Docker 20.10.24 loads zstd: pkg/archive detects it)
        Case("zstd", crane_members(zstd, tag("zstd"), layer_names=[f"layer{i}.tar.zst" for i in range(5)]),
             tag("zstd"), [sha256(b) for b in zstd.blobs], (zstd_type,) * 5),
        # gzip layers whose names state no digest: hashed
        Case("gzip-unnamed", crane_members(parts, tag("gzip-unnamed"),
                                           layer_names=[f"layers/{i}.tgz" for i in range(5)]),
             tag("gzip-unnamed"), blob_digests),
        # crane writes a layer the image holds twice once, and lists its name twice
        Case("crane-repeated", crane_members(repeated, tag("crane-repeated")), tag("crane-repeated"),
             [sha256(b) for b in repeated.blobs]),
        # docker save (1.10 to 24): <id>/layer.tar, the repeated layer a symlink to the first one's
        Case("docker-save-symlink", docker_save_members(repeated, tag("symlink")), tag("symlink"),
             repeated.diff_ids),
        # Docker 25+: an OCI layout with manifest.json naming blobs/sha256/<diff_id hex> members
        Case("docker25", d25, tag("docker25"), parts.diff_ids, ("application/vnd.oci.image.layer.v1.tar",) * 5),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_layout_is_what_the_engine_loads(case: Case, docker_engine: EngineProcess, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    data = tar_bytes(case.members)
    archive = tmp_path / f"{case.id}.tar"
    archive.write_bytes(data)
    truth = engine_truth(docker_engine, archive, case.tag, tmp_path / "truth")

    img = ocilens.load(f"docker-archive:{archive}", progress=False)  # from the file
    assert img.layers["digest"].tolist() == case.digests  # what was written: each blob's own digest
    if case.media_types:
        assert tuple(img.layers["media_type"]) == case.media_types
    assert_as_the_engine_sees_it(img, truth)

    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "fifo-cache"))  # cold: the stream's own scans
    from_fifo = through_fifo(tmp_path, data, lambda f: ocilens.load(f"docker-archive:{f}", progress=False))
    assert from_fifo.layers["digest"].tolist() == case.digests
    assert_as_the_engine_sees_it(from_fifo, truth)

    assert_cli_json(analyze_stdin("docker-archive:-", data, tmp_path), truth)


def test_docker_saves_a_repeated_layer_as_a_symlink(docker_engine: EngineProcess, tmp_path: Path) -> None:
    """The truth behind the symlink layout: the engine's own save of an image holding a layer twice links the
    second ``layer.tar`` to the first, and ocilens reads that save as the image the engine holds."""
    case = next(c for c in CASES if c.id == "docker-save-symlink")
    archive = write_tar(tmp_path / "a.tar", case.members)
    truth = engine_truth(docker_engine, archive, case.tag, tmp_path / "truth")
    with tarfile.open(truth.saved) as tf:
        links = {m.name: m.linkname for m in tf if m.issym()}
    assert len(links) == 1 and next(iter(links.values())).endswith("/layer.tar"), links
    assert truth.image.layers["diff_id"].tolist() == truth.inspect["RootFS"]["Layers"]
    assert truth.image.layers["diff_id"].iloc[-1] == truth.image.layers["diff_id"].iloc[0]


def test_docker25_archive_is_an_oci_archive_too(docker_engine: EngineProcess, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    parts = sample_parts()
    tag = "localhost/ocilens-layouts/docker25:1"
    members, manifest_digest = docker25_members(parts, tag)
    data = tar_bytes(members)
    archive = tmp_path / "d25.tar"
    archive.write_bytes(data)
    truth = engine_truth(docker_engine, archive, tag, tmp_path / "truth")
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    as_docker = ocilens.load(f"docker-archive:{archive}", progress=False)
    assert as_docker.manifest_digest == manifest_digest  # the OCI manifest beside manifest.json
    for ref in (f"oci-archive:{archive}", f"oci-archive:{archive}:1"):  # the tag is index.json's ref.name
        img = ocilens.load(ref, progress=False)
        assert img.manifest_digest == manifest_digest
        assert img.layers["digest"].tolist() == parts.diff_ids
        assert_as_the_engine_sees_it(img, truth)
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "fifo-cache"))
    img = through_fifo(tmp_path, data, lambda f: ocilens.load(f"oci-archive:{f}", progress=False))
    assert_as_the_engine_sees_it(img, truth)
    assert_cli_json(analyze_stdin("oci-archive:-", data, tmp_path), truth)


def test_a_layer_whose_name_lies_about_its_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``<hex>.tar.gz`` states its own digest: bytes that hash otherwise are a DigestMismatch naming the member
    (docker load, which ignores the names, would take them; go-containerregistry hashes the members)."""
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    parts = sample_parts()
    names = [f"{hexof(sha256(b))}.tar.gz" for b in parts.blobs]
    lie = hexof(sha256(b"not this layer"))
    names[2] = f"{lie}.tar.gz"
    data = tar_bytes(crane_members(parts, "localhost/ocilens-layouts/lie:1", layer_names=names))
    archive = tmp_path / "lie.tar"
    archive.write_bytes(data)
    for read in (lambda: ocilens.load(f"docker-archive:{archive}", progress=False, cache=False),
                 lambda: through_fifo(tmp_path, data,
                                      lambda f: ocilens.load(f"docker-archive:{f}", progress=False, cache=False))):
        with pytest.raises(ocilens.DigestMismatch) as info:
            read()
        err = info.value
        assert f"{lie}.tar.gz" in str(err) and err.reference and err.hint
        assert err.digest == f"sha256:{lie}" and err.actual == sha256(parts.blobs[2])
    done = cli(["analyze", "docker-archive:-"], data, tmp_path / "cli-cache")
    assert done.returncode == 2
    errors = [line for line in done.stderr.decode().splitlines() if line.startswith("ocilens: error:")]
    assert len(errors) == 1 and f"{lie}.tar.gz" in errors[0] and "Traceback" not in done.stderr.decode()


# ------------------------------------------------------------------------- repositories only (docker < 1.10)


def test_a_repositories_only_archive(docker_engine: EngineProcess, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """docker < 1.10's archive: ``repositories`` tags the top layer IDs, each layer's ``json`` names its parent.
    The config ocilens makes is the one docker load makes (the same image ID), for each tagged image."""
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    parts = sample_parts()
    top, base = "localhost/ocilens-layouts/legacy:1", "localhost/ocilens-layouts/legacy:base"
    legacy = legacy_members(parts, {top: 4, base: 1})
    data = tar_bytes(legacy.members)
    assert not any(m.name in ("manifest.json", "index.json") for m in legacy.members)
    archive = tmp_path / "legacy.tar"
    archive.write_bytes(data)
    for tag, n_layers in ((top, 5), (base, 2)):
        truth = engine_truth(docker_engine, archive, tag, tmp_path / f"truth-{n_layers}")
        img = ocilens.load(f"docker-archive:{archive}:{tag}", progress=False)
        assert len(img.layers) == n_layers
        assert img.layers["digest"].tolist() == parts.diff_ids[:n_layers]  # uncompressed: their own diff_ids
        assert_as_the_engine_sees_it(img, truth)
        saved_config = json.loads(truth.image.config_raw)  # the engine's config, as it saved it
        assert img.config == saved_config
        assert [h.get("created_by") for h in img.config["history"]] == \
            [" ".join(v1["container_config"]["Cmd"]) for v1 in legacy.jsons[:n_layers]]
    # the selection rules of every docker-archive: by tag (familiar or not), by position, or none for one image
    by_position = ocilens.load(f"docker-archive:{archive}:@1", progress=False)
    assert by_position.image_id == engine_truth(docker_engine, archive, base, tmp_path / "truth-2").inspect["Id"]
    with pytest.raises(ocilens.ImageNotFound) as several:
        ocilens.load(f"docker-archive:{archive}", progress=False)
    assert top in str(several.value) and base in str(several.value)
    truth = engine_truth(docker_engine, archive, top, tmp_path / "truth-5")
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "fifo-cache"))
    img = through_fifo(tmp_path, data, lambda f: ocilens.load(f"docker-archive:{f}:{top}", progress=False))
    assert_as_the_engine_sees_it(img, truth)
    assert_cli_json(analyze_stdin(f"docker-archive:-:{top}", data, tmp_path), truth)


def test_a_repositories_only_archive_that_is_broken(tmp_path: Path) -> None:
    parts = sample_parts()
    legacy = legacy_members(parts, {"localhost/ocilens-layouts/broken:1": 4})
    parent = legacy.ids[2]
    without_parent = [m for m in legacy.members if not m.name.startswith(parent)]
    archive = write_tar(tmp_path / "broken.tar", without_parent)
    with pytest.raises(ocilens.SourceNotFound) as missing:
        ocilens.load(f"docker-archive:{archive}", progress=False)
    assert f"{parent}/json" in str(missing.value) and missing.value.reference and missing.value.hint
    nothing = write_tar(tmp_path / "nothing.tar", [Member("repositories", b"{}")])
    with pytest.raises(ocilens.UnsupportedImage) as untagged:
        ocilens.load(f"docker-archive:{nothing}", progress=False)
    assert "tags no image" in str(untagged.value) and untagged.value.hint


# -------------------------------------------------------------------------------- same content, any source


def test_the_engine_image_and_its_registry_copy_share_every_layer_by_content(
        docker_image: EngineImage, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine holds uncompressed layers, the registry gzip ones (skopeo compresses them as it pushes): not a
    digest in common, every layer's content in common."""
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_HOST", docker_image.engine.host)
    with rs.RegistryServer(tmp_path_factory.mktemp("content-registry")) as server:
        dest = f"{server.host}/ocilens/app:1"
        run("skopeo", "copy", "--quiet", "--src-daemon-host", docker_image.engine.host, "--dest-tls-verify=false",
            f"docker-daemon:{docker_image.tag}", f"docker://{dest}")
        pushed = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest}"))
        from_engine = ocilens.load(f"docker-daemon:{docker_image.tag}", progress=False)
        from_registry = ocilens.load(dest, progress=False)
    diff_ids = docker_image.inspect_cli()["RootFS"]["Layers"]
    registry_digests = [layer["digest"] for layer in pushed["layers"]]
    assert not set(registry_digests) & set(diff_ids)  # the truth: different downloads
    d = from_engine.diff(from_registry)
    assert d.shared_layers.empty
    shared = d.shared_content_layers
    assert shared["diff_id"].tolist() == diff_ids
    assert shared["layer_a"].tolist() == shared["layer_b"].tolist() == list(range(len(diff_ids)))
    assert shared["digest_b"].tolist() == registry_digests
    assert d.summary()["shared_content_layers"] == len(diff_ids) and d.summary()["shared_layers"] == 0
    assert d.files.empty


def test_a_gzip_and_a_zstd_copy_share_every_layer_by_content_and_none_by_digest(tmp_path: Path,
                                                                              sample_layout: Path) -> None:
    zstd_layout = tmp_path / "zstd"  # a fresh layout: skopeo would reuse the gzip blobs of one that has them
    run("skopeo", "copy", "--quiet", "--dest-compress-format", "zstd", f"oci:{sample_layout}:sample",
        f"oci:{zstd_layout}:sample")
    index = json.loads((zstd_layout / "index.json").read_text())
    manifest = json.loads((zstd_layout / "blobs" / "sha256" / hexof(index["manifests"][0]["digest"])).read_bytes())
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    parts = sample_parts()
    gzip_img = ocilens.load(f"oci:{sample_layout}:sample", progress=False)
    zstd_img = ocilens.load(f"oci:{zstd_layout}:sample", progress=False)
    d = gzip_img.diff(zstd_img)
    assert d.shared_layers.empty
    assert d.shared_content_layers["diff_id"].tolist() == parts.diff_ids
    assert d.shared_content_layers["digest_a"].tolist() == [sha256(b) for b in parts.blobs]
    assert d.shared_content_layers["digest_b"].tolist() == [layer["digest"] for layer in manifest["layers"]]
    assert d.shared_content_layers["uncompressed_size"].tolist() == [len(t) for t in parts.tars]


def test_shared_content_counts_only_what_both_hold(tmp_path: Path, sample_layout: Path) -> None:
    """An image holding the sample's layers plus one of them again shares the sample's five by content, each
    once, at its first position in the other image."""
    parts = sample_parts()
    repeated = with_repeated_layer(parts, 0)
    archive = write_tar(tmp_path / "r.tar", crane_members(repeated, "localhost/x/r:1"))
    a = ocilens.load(f"oci:{sample_layout}:sample", progress=False)
    b = ocilens.load(f"docker-archive:{archive}", progress=False)
    forward, back = a.diff(b).shared_content_layers, b.diff(a).shared_content_layers
    assert forward["layer_b"].tolist() == [0, 1, 2, 3, 4]
    assert back["layer_a"].tolist() == [0, 1, 2, 3, 4, 5] and back["layer_b"].tolist() == [0, 1, 2, 3, 4, 0]
    assert a.diff(b).shared_layers["digest"].tolist() == [sha256(x) for x in parts.blobs]  # same gzip blobs too

