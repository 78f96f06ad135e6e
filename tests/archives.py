"""Write docker-archive tars in the layouts real writers produce, for the layouts no tool installed here writes
(Debian has Docker 20.10, Podman 4.3 and skopeo 1.9): go-containerregistry's ``pkg/v1/tarball`` (crane, kaniko),
``docker save`` of Docker 1.10 to 24 (with its symlinked duplicate layers), of Docker 25+ (an OCI layout too), and
of docker < 1.10 (``repositories`` only). Each follows its writer's source:

- go-containerregistry ``pkg/v1/tarball/write.go`` (``writeImagesToTar``): the config as ``sha256:<hex>``
  (``ConfigName().String()``), then each layer once as ``<hex>.tar.gz`` (hex of the compressed blob), then
  ``manifest.json``; regular files, mode 0644.
- moby ``image/tarexport/save.go``, v1.10 to v24: ``<v1 id>/VERSION``, ``<v1 id>/json``, ``<v1 id>/layer.tar``
  per layer, a layer seen before (same diff_id) written as a symlink ``../<first id>/layer.tar``, the config as
  ``<image id hex>.json``, ``manifest.json`` and ``repositories``; the directory walked in name order.
- moby ``image/tarexport/save.go``, v25+: ``blobs/sha256/<hex>`` for the v1 JSONs, the layer tars (named by
  their diff_id), the config and the OCI manifest; ``index.json`` (``io.containerd.image.name`` and
  ``org.opencontainers.image.ref.name`` annotations), ``manifest.json`` (with ``LayerSources``), ``oci-layout``
  and ``repositories``.
- docker < 1.10 (``repositories`` only): ``<id>/VERSION``, ``<id>/json`` (v1 image JSON: ``id``, ``parent``,
  ``created``, ``container_config``, ``docker_version``, ``config``, ``architecture``, ``os``), ``<id>/layer.tar``
  and ``repositories`` = ``{"repo": {"tag": "<top id>"}}``.

The layers are real: the bundled sample's gzip blobs (Debian files, built by umoci), decompressed or
recompressed (zstd) where a layout wants that.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import zstandard

SAMPLE = Path(__file__).resolve().parent.parent / "ocilens" / "_sample"

__all__ = ["SAMPLE", "ImageParts", "Member", "sample_parts", "with_repeated_layer", "tar_bytes", "write_tar",
           "crane_members", "docker_save_members", "docker25_members", "legacy_members", "sha256", "hexof",
           "member_offsets"]


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(digest: str) -> str:
    return digest.partition(":")[2]


@dataclass(frozen=True)
class ImageParts:
    """One image: its config as written, its layer blobs (as a registry would ship them) and their tars."""

    config: bytes
    blobs: tuple[bytes, ...]
    tars: tuple[bytes, ...]

    @property
    def config_json(self) -> dict:
        return json.loads(self.config)

    @property
    def image_id(self) -> str:
        return sha256(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [sha256(t) for t in self.tars]

    def recompressed(self, how: Literal["zstd", "gzip", "none"]) -> "ImageParts":
        """The same image (same config, same tars) with its blobs compressed another way."""
        if how == "zstd":
            blobs = tuple(zstandard.ZstdCompressor(level=3).compress(t) for t in self.tars)
        elif how == "gzip":
            blobs = tuple(gzip.compress(t, mtime=0) for t in self.tars)
        else:
            blobs = self.tars
        return replace(self, blobs=blobs)


def sample_parts() -> ImageParts:
    """The bundled sample (5 gzip layers of Debian files; config with history and empty layers)."""
    index = json.loads((SAMPLE / "index.json").read_text())
    blob = lambda d: (SAMPLE / "blobs" / "sha256" / hexof(d)).read_bytes()  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    blobs = tuple(blob(layer["digest"]) for layer in manifest["layers"])
    return ImageParts(config=blob(manifest["config"]["digest"]), blobs=blobs,
                      tars=tuple(gzip.decompress(b) for b in blobs))


def with_repeated_layer(parts: ImageParts, index: int = 0) -> ImageParts:
    """``parts`` with layer ``index`` applied once more on top (an image holding the same layer twice), its
    config's diff_ids and history extended to match."""
    config = parts.config_json
    config["rootfs"]["diff_ids"].append(parts.diff_ids[index])
    config["history"].append({"created": "2026-05-16T20:33:45Z", "created_by": f"COPY again # layer {index}",
                              "author": "ocilens tests"})
    return ImageParts(config=json.dumps(config, separators=(",", ":")).encode(),
                      blobs=parts.blobs + (parts.blobs[index],), tars=parts.tars + (parts.tars[index],))


@dataclass(frozen=True)
class Member:
    """One member of an archive: a regular file (``data``), a directory or a symlink to ``target``."""

    name: str
    data: bytes = b""
    kind: Literal["file", "dir", "symlink", "hardlink"] = "file"
    target: str = ""
    mode: int = 0o644


def tar_bytes(members: Sequence[Member]) -> bytes:
    """The members as a tar, in order, as Go's archive/tar writes them (ustar, mtime 0, owner 0:0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = m.mode
            if m.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            elif m.kind in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if m.kind == "symlink" else tarfile.LNKTYPE
                info.linkname, info.mode = m.target, 0o777 if m.kind == "symlink" else m.mode
                tf.addfile(info)
            else:
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
    return buf.getvalue()


def write_tar(dest: Path, members: Sequence[Member]) -> Path:
    dest.write_bytes(tar_bytes(members))
    return dest


def member_offsets(data: bytes) -> dict[str, tuple[int, int]]:
    """Each member of a tar: (offset of its data, size), to cut an archive inside one."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: (m.offset_data, m.size) for m in tf}


# ---------------------------------------------------------------------------------------- the writers


def crane_members(parts: ImageParts, repo_tag: str, *, config_name: Literal["sha256", "json"] = "sha256",
                  layer_names: Sequence[str] | None = None) -> list[Member]:
    """go-containerregistry ``tarball.Write`` (``crane pull --format=tarball``, kaniko ``--tar-path``): config
    first, each distinct layer once, ``manifest.json`` last. ``config_name="json"`` names the config
    ``<hex>.json`` as docker save does; ``layer_names`` replaces the ``<hex>.tar.gz`` names (layers named by
    nothing, or by a lie)."""
    cfg_hex = hexof(parts.image_id)
    cfg_name = f"sha256:{cfg_hex}" if config_name == "sha256" else f"{cfg_hex}.json"
    names = list(layer_names) if layer_names is not None else [f"{hexof(sha256(b))}.tar.gz" for b in parts.blobs]
    members = [Member(cfg_name, parts.config)]
    seen = set()
    for name, blob in zip(names, parts.blobs):
        if name not in seen:
            seen.add(name)
            members.append(Member(name, blob))
    manifest = [{"Config": cfg_name, "RepoTags": [repo_tag], "Layers": names}]
    members.append(Member("manifest.json", json.dumps(manifest, separators=(",", ":")).encode()))
    return members


def _v1_ids(diff_ids: Sequence[str]) -> list[str]:
    """Stable v1 layer IDs for a chain of diff_ids (docker derives them from the chain and the parent too)."""
    ids, parent = [], ""
    for i, d in enumerate(diff_ids):
        parent = hashlib.sha256(f"{parent}|{d}|{i}".encode()).hexdigest()
        ids.append(parent)
    return ids


def _repositories(repo_tag: str, top: str) -> bytes:
    repo, _, tag = repo_tag.rpartition(":")
    return json.dumps({repo: {tag: top}}).encode() + b"\n"


def docker_save_members(parts: ImageParts, repo_tag: str) -> list[Member]:
    """``docker save`` of Docker 1.10 to 24: one directory per layer (``VERSION``, ``json``, ``layer.tar``); a
    layer whose diff_id was written before is a symlink to that ``layer.tar`` (save.go's ``diffIDPaths``)."""
    config = parts.config_json
    ids = _v1_ids(parts.diff_ids)
    members: list[Member] = []
    first_path: dict[str, str] = {}
    layer_names = []
    for i, (layer_id, diff_id, tar) in enumerate(zip(ids, parts.diff_ids, parts.tars)):
        v1: dict = {"id": layer_id, "created": "1970-01-01T00:00:00Z", "os": config.get("os", "linux"),
                    "container_config": {"Cmd": None}}
        if i:
            v1["parent"] = ids[i - 1]
        if i == len(ids) - 1:
            v1.update({k: config[k] for k in ("architecture", "config", "created", "author") if k in config})
        members += [Member(f"{layer_id}", kind="dir"), Member(f"{layer_id}/VERSION", b"1.0"),
                    Member(f"{layer_id}/json", json.dumps(v1, separators=(",", ":")).encode())]
        if diff_id in first_path:
            members.append(Member(f"{layer_id}/layer.tar", kind="symlink", target=f"../{first_path[diff_id]}"))
        else:
            first_path[diff_id] = f"{layer_id}/layer.tar"
            members.append(Member(f"{layer_id}/layer.tar", tar))
        layer_names.append(f"{layer_id}/layer.tar")
    cfg_name = f"{hexof(parts.image_id)}.json"
    members.append(Member(cfg_name, parts.config))
    members.append(Member("manifest.json", json.dumps(
        [{"Config": cfg_name, "RepoTags": [repo_tag], "Layers": layer_names}]).encode() + b"\n"))
    members.append(Member("repositories", _repositories(repo_tag, ids[-1])))
    return sorted(members, key=lambda m: m.name)  # archive.Tar walks the directory in name order


OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def docker25_members(parts: ImageParts, repo_tag: str) -> tuple[list[Member], str]:
    """``docker save`` of Docker 25+: an OCI image layout (uncompressed layers named by their diff_id) that is
    also a docker-archive (``manifest.json`` names ``blobs/sha256/<hex>`` members). Returns the members and the
    OCI manifest's digest."""
    blobs: dict[str, bytes] = {}
    config = parts.config_json
    ids = _v1_ids(parts.diff_ids)
    for i, layer_id in enumerate(ids):  # the v1 JSONs (saveConfig), blobs no index names
        v1 = {"id": layer_id, "created": "1970-01-01T00:00:00Z", "os": config.get("os", "linux"),
              **({"parent": ids[i - 1]} if i else {})}
        data = json.dumps(v1, separators=(",", ":")).encode()
        blobs[hexof(sha256(data))] = data
    sources, layers = {}, []
    for diff_id, tar in zip(parts.diff_ids, parts.tars):
        blobs[hexof(diff_id)] = tar
        desc = {"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": len(tar)}
        sources[diff_id] = desc
        layers.append(desc)
    blobs[hexof(parts.image_id)] = parts.config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": parts.image_id, "size": len(parts.config)},
                           "layers": layers}, separators=(",", ":")).encode()
    manifest_digest = sha256(manifest)
    blobs[hexof(manifest_digest)] = manifest
    repo, _, tag = repo_tag.rpartition(":")
    domain = repo.split("/")[0]
    full = repo if "/" in repo and ("." in domain or ":" in domain or domain == "localhost") else \
        f"docker.io/{repo}" if "/" in repo else f"docker.io/library/{repo}"  # reference.ParseNormalizedNamed
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
         "size": len(manifest), "annotations": {"io.containerd.image.name": f"{full}:{tag}",
                                                "org.opencontainers.image.ref.name": tag}}]}
    members = [Member("blobs", kind="dir"), Member("blobs/sha256", kind="dir")]
    members += [Member(f"blobs/sha256/{h}", blobs[h], mode=0o444) for h in sorted(blobs)]
    members += [
        Member("index.json", json.dumps(index, separators=(",", ":")).encode()),
        Member("manifest.json", json.dumps([{"Config": f"blobs/sha256/{hexof(parts.image_id)}",
                                             "RepoTags": [repo_tag],
                                             "Layers": [f"blobs/sha256/{hexof(d)}" for d in parts.diff_ids],
                                             "LayerSources": sources}]).encode() + b"\n"),
        Member("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        Member("repositories", _repositories(repo_tag, hexof(parts.diff_ids[-1]))),
    ]
    return members, manifest_digest


@dataclass(frozen=True)
class LegacyImage:
    """What a repositories-only archive holds: its members and the v1 IDs of its layers, base first."""

    members: list[Member]
    ids: list[str]
    jsons: list[dict]


def legacy_members(parts: ImageParts, tags: dict[str, int], *, docker_version: str = "1.9.1") -> LegacyImage:
    """A ``docker save`` of docker < 1.10: one directory per layer, whose ``json`` is the v1 image JSON, and
    ``repositories`` tagging layers (``tags``: ``"repo:tag"`` -> index of the layer that is the image's top).
    Each layer's JSON carries the history row of the config's non-empty step that made it (as docker 1.9's
    ``container_config.Cmd``, ``created``, ``author``), the top one the config's ``config``."""
    config = parts.config_json
    steps = [h for h in config.get("history", []) if not h.get("empty_layer")]
    ids = _v1_ids(parts.diff_ids)
    members, jsons = [], []
    for i, (layer_id, tar) in enumerate(zip(ids, parts.tars)):
        step = steps[i] if i < len(steps) else {}
        v1: dict = {"id": layer_id}
        if i:
            v1["parent"] = ids[i - 1]
        v1.update({
            "created": step.get("created", config.get("created")),
            "container": hashlib.sha256(layer_id.encode()).hexdigest(),
            "container_config": {"Hostname": layer_id[:12], "Env": config.get("config", {}).get("Env"),
                                 "Cmd": ["/bin/sh", "-c", step.get("created_by", "")]},
            "docker_version": docker_version,
            "author": step.get("author", ""),
            "config": config.get("config", {}),
            "architecture": config.get("architecture", "amd64"),
            "os": config.get("os", "linux"),
            "Size": len(tar),
        })
        jsons.append(v1)
        # docker 1.9 wrote its JSON with json.Marshal: compact, keys in struct order
        members += [Member(layer_id, kind="dir"), Member(f"{layer_id}/VERSION", b"1.0"),
                    Member(f"{layer_id}/json", json.dumps(v1, separators=(",", ":")).encode()),
                    Member(f"{layer_id}/layer.tar", tar)]
    repos: dict[str, dict[str, str]] = {}
    for repo_tag, top in tags.items():
        repo, _, tag = repo_tag.rpartition(":")
        repos.setdefault(repo, {})[tag] = ids[top]
    members.append(Member("repositories", json.dumps(repos).encode()))
    return LegacyImage(sorted(members, key=lambda m: m.name), ids, jsons)


def through_fifo(tmp: Path, data: bytes, read: Callable[[Path], Any]) -> Any:
    """``read(fifo)`` while a thread writes ``data`` into a new FIFO (which cannot seek: read once or fail)."""
    fifo = tmp / f"fifo-{len(list(tmp.glob('fifo-*')))}"
    os.mkfifo(fifo)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with open(fifo, "wb") as f:
                f.write(data)
        except BrokenPipeError:
            pass  # the reader gave up (an error under test)
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        return read(fifo)
    finally:
        if writer.is_alive():  # the reader failed before opening it: let the writer's open return
            try:
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            except OSError:
                pass
        writer.join(30)
        assert not failure, failure
