"""``docker save`` tarballs (``docker-archive:FILE[:REF|:@N]``), in every layout real writers produce:

- ``manifest.json`` naming the config and the layer members: docker save 1.10 to 24 (``<id>/layer.tar``,
  identical layers as symlinks to the first), skopeo and podman (``<hex>.tar``), Docker 25+ (an OCI layout
  too: ``blobs/sha256/<hex>``, ``index.json``, ``oci-layout``), go-containerregistry's ``tarball`` (crane,
  kaniko: gzip ``<hex>.tar.gz`` named by the compressed digest, config ``sha256:<hex>``), and layers gzip or
  zstd under any name (hashed);
- only ``repositories`` (docker < 1.10): ``<id>/json`` (the v1 image JSON, with its ``parent``) and
  ``<id>/layer.tar`` per layer; the config is made from the top layer's JSON exactly as ``docker load`` makes
  it (``_legacy_config``), so its digest is the image ID docker gives the image.

A compressed layer's own digest is the one its name states (verified as it is read: a name its bytes do not
match is a ``DigestMismatch`` naming the member), else its bytes' hash; its ``diff_id`` is checked on the
decompressed stream (``pipeline.check_diff_ids``), as docker and go-containerregistry check it."""

from __future__ import annotations

import hashlib
import io
import json
import re
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable

from ..codec import GZIP, TAR, decompressed_chunks, sniff
from ..digest import VerifiedReader, digest_bytes, verify_bytes
from ..errors import DigestMismatch, ImageNotFound, InvalidReference, SourceError, UnsupportedImage
from ..index import walk_index
from ..manifest import (DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, MANIFEST_TYPES, OCI_LAYER_ZSTD,
                        Descriptor, ImageManifest, index_entries, json_type, media_type_of, parse_json)
from ..platform import Platform
from ..reference import familiar_name
from .base import Source
from .storage import Storage, open_storage

if TYPE_CHECKING:
    from ..scan import LayerScan

__all__ = ["DockerArchiveSource"]

_BLOB_NAME = re.compile(r"(?:^|/)blobs/(sha256)/([a-f0-9]{64})$")
_HEX_JSON = re.compile(r"^(?:sha256:)?([a-f0-9]{64})(?:\.json)?$")  # docker save; crane names it sha256:<hex>
#: A layer member named by its own digest: ``<hex>.tar.gz`` (kaniko, crane), ``<hex>.tar``, ``<hex>``.
_LAYER_NAME = re.compile(r"^(?:sha256:)?([a-f0-9]{64})(?:\.tar)?(?:\.gz|\.gzip|\.zst|\.zstd)?$")


def _images(n: int) -> str:
    """``1 image``, ``2 images``."""
    return f"{n} image" if n == 1 else f"{n} images"


def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type with its article, for messages: "an object", "null"."""
    name = json_type(value)
    return name if name == "null" else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


_DAMAGED = "the archive is damaged or was not written by docker save / skopeo; save or copy it again"
#: The media type of the manifest a ``docker save`` entry stands for (no manifest is in such an archive).
ENTRY_TYPE = "application/vnd.docker.archive.manifest-entry+json"
#: The same for an image of a ``repositories``-only archive (docker < 1.10).
LEGACY_TYPE = "application/vnd.docker.archive.repositories+json"


class DockerArchiveSource(Source):
    """An image inside a ``docker save`` tar, read in place (or from a ``StreamStorage``: a stream read once)."""

    transport = "docker-archive"

    def __init__(self, reference: str, path: str | None, selector: str | None, *,
                 storage: Storage | None = None) -> None:
        """The archive at ``path``, or the one ``storage`` already holds (a stream read once)."""
        super().__init__(reference)
        self.storage = storage if storage is not None else open_storage(str(path), reference, want_dir=False)
        self._paths: dict[str, str] = {}  # digest -> member path (of the config and the layers resolved)
        self._made: dict[str, bytes] = {}  # digest -> bytes made here (a repositories-only archive's config)
        self._named: dict[str, str] = {}  # digest -> member path, for layers whose member name states it
        self._layers: set[str] = set()  # the member paths resolve named as layers
        if self.storage.exists("manifest.json"):
            entries = parse_json(self.storage.read("manifest.json"), f"{reference}: manifest.json")
            if not isinstance(entries, list) or not entries:
                raise UnsupportedImage(f"{reference}: manifest.json lists no images", reference=reference,
                                       hint=_DAMAGED)
            for i, e in enumerate(entries):
                self._check_entry(i, e)
        elif self.storage.exists("repositories"):
            entries = self._legacy_entries()
        else:
            if self.storage.damage:
                raise self.storage.missing("manifest.json")
            raise SourceError(f"{reference}: {path or 'the archive'} has no manifest.json (nor the repositories "
                              "file of docker < 1.10), so it is not a docker-archive", reference=reference,
                              hint="for an OCI layout tar use oci-archive:")
        self.entry = self._select(entries, selector)

    def _check_entry(self, i: int, entry: Any) -> None:
        """An entry of manifest.json must be an object with a Config path, a Layers list and RepoTags."""
        where = f"{self.reference}: manifest.json entry {i}"
        if not isinstance(entry, dict):
            raise UnsupportedImage(f"{where} is {_json_kind(entry)}, not an object", reference=self.reference,
                                   hint=_DAMAGED)
        for key, kind, wanted in (("Config", str, "a string"), ("Layers", list, "an array"),
                                  ("RepoTags", list, "an array")):
            value = entry.get(key)
            if value is not None and not isinstance(value, kind):
                raise UnsupportedImage(f"{where}: {key} is {_json_kind(value)}, not {wanted}",
                                       reference=self.reference, hint=_DAMAGED)
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                raise UnsupportedImage(f"{where}: {key} holds something other than strings",
                                       reference=self.reference, hint=_DAMAGED)

    def _select(self, entries: list[dict[str, Any]], selector: str | None) -> dict[str, Any]:
        n_images = _images(len(entries))
        positions = "@0" if len(entries) == 1 else f"@0 to @{len(entries) - 1}"
        if selector is None:
            if len(entries) == 1:
                return entries[0]
            tags = ", ".join(t for e in entries for t in e.get("RepoTags") or []) or "untagged"
            raise ImageNotFound(f"{self.reference}: the archive holds {n_images} ({tags})",
                                reference=self.reference,
                                hint="name one: docker-archive:FILE:REPO:TAG or docker-archive:FILE:@INDEX")
        if selector.startswith("@"):
            if not selector[1:].isdigit():  # also @sha256:...: docker-archive selects by tag or position only
                raise InvalidReference(f"{self.reference}: {selector!r} is not an image position: @N must be a "
                                       f"number, the image's index in manifest.json", reference=self.reference,
                                       hint=f"the archive holds {n_images}: use {positions}, "
                                            "or name a tag (docker-archive:FILE:REPO:TAG)")
            n = int(selector[1:])
            if n >= len(entries):
                raise ImageNotFound(f"{self.reference}: the archive holds {n_images}; no @{n}",
                                    reference=self.reference,
                                    hint=f"@N counts from 0: use {positions}")
            return entries[n]
        want = familiar_name(selector)
        for e in entries:
            if any(familiar_name(t) == want for t in e.get("RepoTags") or []):
                return e
        tags = ", ".join(t for e in entries for t in e.get("RepoTags") or []) or "none"
        raise ImageNotFound(f"{self.reference}: no image tagged {selector!r} in the archive; tags: {tags}",
                            reference=self.reference)

    def _config_digest(self, path: str, data: bytes) -> str:
        m = _BLOB_NAME.search(path) or _HEX_JSON.match(path.rpartition("/")[2])
        if m:
            digest = f"sha256:{m.groups()[-1]}"
            verify_bytes(data, digest, what=f"{self.reference}: config {path}")
            return digest
        return digest_bytes(data)

    def resolve(self, platform: Platform | None = None) -> ImageManifest:
        if "Top" in self.entry:
            return self._resolve_legacy(self.entry)
        e = self.entry
        config_path = str(e.get("Config") or "")
        if not config_path:
            raise UnsupportedImage(f"{self.reference}: manifest.json entry has no Config", reference=self.reference,
                                   hint=_DAMAGED)
        if not self.storage.exists(config_path):
            raise self.storage.missing(config_path, f"config {config_path}")
        config_raw = self.storage.read(config_path)
        config_digest = self._config_digest(config_path, config_raw)
        self._paths[config_digest] = config_path
        what = f"{self.reference}: config {config_path}"
        config = parse_json(config_raw, what)
        if not isinstance(config, dict):
            raise UnsupportedImage(f"{what} is {_json_kind(config)}, not an object", reference=self.reference,
                                   hint=_DAMAGED)
        rootfs = config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        layer_paths = list(e.get("Layers") or [])
        if diff_ids is None and not layer_paths:
            diff_ids = []  # an image of no layers (FROM scratch, then only metadata): docker writes no diff_ids
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
            raise UnsupportedImage(f"{what} has no rootfs.diff_ids list of digests", reference=self.reference,
                                   hint=_DAMAGED)
        if len(diff_ids) != len(layer_paths):
            raise UnsupportedImage(f"{self.reference}: config lists {len(diff_ids)} diff_ids for "
                                   f"{len(layer_paths)} layers", reference=self.reference)
        layers = []
        for i, (path, diff_id) in enumerate(zip(layer_paths, diff_ids)):
            if not self.storage.exists(path):
                raise self.storage.missing(path, f"layer {i} ({path})")
            desc = self._layer_descriptor(path, diff_id)
            self._paths[desc.digest] = path
            self._layers.add(path)
            layers.append(desc)
        config_desc = Descriptor(DOCKER_CONFIG, config_digest, len(config_raw))
        raw, digest, media_type, real_layers = self._real_manifest(config_digest)
        if raw is None:
            raw = json.dumps(e, sort_keys=True).encode()
            media_type = ENTRY_TYPE
        elif [d.digest for d in real_layers] == [d.digest for d in layers]:
            layers = list(real_layers)  # Docker 25+: the OCI manifest's own descriptors (its media types)
        return ImageManifest(raw=raw, digest=digest, media_type=media_type, config=config_desc,
                             layers=tuple(layers), json=parse_json(raw, "manifest"))

    def _layer_descriptor(self, path: str, diff_id: str) -> Descriptor:
        """A layer member's descriptor, as go-containerregistry's ``tarball`` reads them: an uncompressed tar
        (``<id>/layer.tar``, docker save) is its own diff_id; a compressed one (``<hex>.tar.gz``, as kaniko and
        crane write) is named by its own digest where its name states one, else hashed here. The diff_id is
        checked on the decompressed stream in either case (``pipeline.check_diff_ids``)."""
        kind = sniff(self.storage.magic(path))
        blob = _BLOB_NAME.search(path)
        size = self.storage.size(path)
        if kind == TAR:  # blobs/sha256/<hex> (Docker 25) is named by its digest; an uncompressed tar is its diff_id
            return Descriptor(DOCKER_LAYER_TAR, f"sha256:{blob.group(2)}" if blob else diff_id, size)
        media_type = DOCKER_LAYER_GZIP if kind == GZIP else OCI_LAYER_ZSTD
        named = blob or _LAYER_NAME.match(path.rpartition("/")[2])
        stated = f"sha256:{named.groups()[-1]}" if named else None
        if stated == diff_id:
            stated = None  # a compressed member named by its diff_id (the uncompressed digest): hash it
        known = self.storage.digest_of(path)  # a stream hashed it as it passed
        if stated is None:
            return Descriptor(media_type, known or self._hash(path), size)
        if known is not None and known != stated:
            raise self._misnamed(path, stated, known)
        self._named[stated] = path
        return Descriptor(media_type, stated, size)

    def _misnamed(self, path: str, stated: str, actual: str) -> DigestMismatch:
        """The error for a layer member whose name states a digest its bytes do not have."""
        return DigestMismatch(f"{self.reference}: layer member {path} is named by the digest {stated}, but its "
                              f"bytes hash to {actual}", reference=self.reference, digest=stated, actual=actual,
                              hint="the archive is corrupt or was tampered with (the member's name is its digest, "
                                   "as go-containerregistry and kaniko write them); save or pull the image again")

    def _hash(self, path: str) -> str:
        """The sha256 of a member whose name does not state its digest (one read of it)."""
        h = hashlib.sha256()
        with self.storage.open(path) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return f"sha256:{h.hexdigest()}"

    def prescanned(self, desc: Descriptor) -> "LayerScan | None":
        """The scan made while a layer member streamed, only for a layer ``resolve`` named (a member that looks
        like a layer but is no layer of the image is never handed out)."""
        path = self._paths.get(desc.digest)
        if path is None or path not in self._layers:
            return None
        return self.storage.scan_of(path, desc.digest)

    # --- repositories only (docker < 1.10) ---------------------------------------------------------------

    def _legacy_entries(self) -> list[dict[str, Any]]:
        """The images the ``repositories`` file tags, as entries ``{"RepoTags": [...], "Top": id}`` in the
        file's order (docker < 1.10: ``{"repo": {"tag": "<id of the top layer>"}}``)."""
        what = f"{self.reference}: repositories"
        repos = parse_json(self.storage.read("repositories"), what)
        if not isinstance(repos, dict) or not all(isinstance(tags, dict) and
                                                  all(isinstance(i, str) for i in tags.values())
                                                  for tags in repos.values()):
            raise UnsupportedImage(f"{what} is not an object of repositories, each an object of tags naming "
                                   "layer IDs", reference=self.reference, hint=_DAMAGED)
        tops: dict[str, list[str]] = {}
        for repo, tags in repos.items():
            for tag, top in tags.items():
                tops.setdefault(top, []).append(f"{repo}:{tag}")
        if not tops:
            raise UnsupportedImage(f"{what} tags no image", reference=self.reference,
                                   hint="the archive is damaged or holds no tagged image; save it again with a tag")
        return [{"RepoTags": tags, "Top": top} for top, tags in tops.items()]

    def _legacy_chain(self, top: str) -> list[tuple[str, bytes, dict[str, Any]]]:
        """``(id, raw json, parsed json)`` of each layer from the base up to ``top``, by their ``parent``s."""
        chain: list[tuple[str, bytes, dict[str, Any]]] = []
        layer_id: Any = top
        while layer_id:
            if not isinstance(layer_id, str) or "/" in layer_id or layer_id in (".", ".."):
                raise UnsupportedImage(f"{self.reference}: {layer_id!r} is not a layer ID (a directory of the "
                                       "archive)", reference=self.reference, hint=_DAMAGED)
            if any(layer_id == c[0] for c in chain):
                raise UnsupportedImage(f"{self.reference}: the layers' parents form a cycle at {layer_id}",
                                       reference=self.reference, hint=_DAMAGED)
            path = f"{layer_id}/json"
            if not self.storage.exists(path):
                below = f": the parent of layer {chain[-1][0]}" if chain else ""
                raise self.storage.missing(path, f"{path}{below}")
            raw = self.storage.read(path)
            v1 = parse_json(raw, f"{self.reference}: {path}")
            if not isinstance(v1, dict):
                raise UnsupportedImage(f"{self.reference}: {path} is {_json_kind(v1)}, not an object",
                                       reference=self.reference, hint=_DAMAGED)
            chain.append((layer_id, raw, v1))
            layer_id = v1.get("parent")
        return chain[::-1]

    def _resolve_legacy(self, entry: dict[str, Any]) -> ImageManifest:
        """The image whose top layer is ``entry["Top"]``, with the config ``docker load`` makes for it."""
        chain = self._legacy_chain(entry["Top"])
        layers, diff_ids = [], []
        for layer_id, _, _ in chain:
            path = f"{layer_id}/layer.tar"
            if not self.storage.exists(path):
                raise self.storage.missing(path, f"layer {layer_id} ({path})")
            desc, diff_id = self._legacy_layer(path)
            self._paths[desc.digest] = path
            self._layers.add(path)
            layers.append(desc)
            diff_ids.append(diff_id)
        try:
            config_raw = legacy_config(chain[-1][1], diff_ids, [v1 for _, _, v1 in chain])
        except ValueError as exc:  # JSON that json.loads read but not as UTF-8 text (UTF-16): docker refuses it too
            raise UnsupportedImage(f"{self.reference}: {chain[-1][0]}/json cannot be made into a config: {exc}",
                                   reference=self.reference, hint=_DAMAGED) from None
        config_digest = digest_bytes(config_raw)
        self._made[config_digest] = config_raw
        raw = json.dumps({"RepoTags": entry["RepoTags"], "Layers": [self._paths[d.digest] for d in layers],
                          "Ids": [c[0] for c in chain]}, sort_keys=True).encode()
        return ImageManifest(raw=raw, digest=None, media_type=LEGACY_TYPE,
                             config=Descriptor(DOCKER_CONFIG, config_digest, len(config_raw)),
                             layers=tuple(layers), json=parse_json(raw, "manifest"))

    def _legacy_layer(self, path: str) -> tuple[Descriptor, str]:
        """A ``layer.tar`` member's descriptor and diff_id: an uncompressed tar is its own (hashed here, or as it
        streamed); a compressed one (docker load accepts it) is hashed and decompressed."""
        kind = sniff(self.storage.magic(path))
        size = self.storage.size(path)
        digest = self.storage.digest_of(path) or self._hash(path)
        if kind == TAR:
            return Descriptor(DOCKER_LAYER_TAR, digest, size), digest
        scan = self.storage.scan_of(path, digest)
        diff_id = scan.diff_id if scan is not None and scan.diff_id else self._decompressed_digest(path, digest)
        return Descriptor(DOCKER_LAYER_GZIP if kind == GZIP else OCI_LAYER_ZSTD, digest, size), diff_id

    def _decompressed_digest(self, path: str, digest: str) -> str:
        """The sha256 of a compressed member's decompressed bytes (its diff_id)."""
        h = hashlib.sha256()
        with self.storage.open(path) as f:
            _, chunks = decompressed_chunks(f, what=f"{self.reference}: layer {path}", digest=digest)
            for chunk in chunks:
                h.update(chunk)
        return f"sha256:{h.hexdigest()}"

    # --- Docker 25+: the OCI manifest beside manifest.json ------------------------------------------------

    def _real_manifest(self, config_digest: str) -> tuple[bytes | None, str | None, str, tuple[Descriptor, ...]]:
        """Newer ``docker save`` also writes index.json and the real manifests: find ours, for its digest (and
        its layer descriptors)."""
        if not self.storage.exists("index.json"):
            return None, None, "", ()
        try:
            index = parse_json(self.storage.read("index.json"), "index.json")
            entries = index_entries(index, where=f"{self.reference}: index.json", reference=self.reference)
            for d in walk_index(self._index_blob, entries, what=self.reference, reference=self.reference, depth=0):
                if d.media_type not in MANIFEST_TYPES or not self._has_blob(d):
                    continue
                raw = self._index_blob(d)
                obj = parse_json(raw, "manifest")
                config = obj.get("config") if isinstance(obj, dict) else None
                if isinstance(config, dict) and config.get("digest") == config_digest:
                    layers = obj.get("layers")
                    found = tuple(Descriptor.from_json(x, where=f"{self.reference}: manifest {d.digest}",
                                                       reference=self.reference)
                                  for x in layers) if isinstance(layers, list) else ()
                    return raw, d.digest, media_type_of(obj, d.media_type), found
        except (SourceError, UnsupportedImage):
            return None, None, "", ()
        return None, None, "", ()

    @staticmethod
    def _blob_member(desc: Descriptor) -> str | None:
        """The archive member of a ``sha256`` blob (``blobs/sha256/<hex>``); None for another digest."""
        m = _BLOB_NAME.search(f"blobs/{desc.digest.replace(':', '/')}")
        return f"blobs/sha256/{m.group(2)}" if m else None

    def _has_blob(self, desc: Descriptor) -> bool:
        """True when the archive holds the blob (a manifest whose blob is missing is skipped, not an error)."""
        member = self._blob_member(desc)
        return member is not None and self.storage.exists(member)

    def _index_blob(self, desc: Descriptor) -> bytes:
        """A manifest or index of index.json's tree, verified (what the index walk fetches)."""
        member = self._blob_member(desc)
        if member is None or not self.storage.exists(member):
            raise self.storage.missing(member or desc.digest, f"blob {desc.digest}")
        return verify_bytes(self.storage.read(member), desc.digest, desc.size)

    # --- blobs -----------------------------------------------------------------------------------------

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        reader: Any
        if desc.digest in self._made:
            reader = VerifiedReader(io.BytesIO(self._made[desc.digest]), desc.digest, desc.size,
                                    what=f"{self.reference}: config")
            return reader
        path = self._paths.get(desc.digest)
        if path is None:
            raise ImageNotFound(f"{self.reference}: no blob {desc.digest} in the archive", reference=self.reference)
        reader = VerifiedReader(self.storage.open(path), desc.digest, desc.size, what=f"{self.reference}: {path}")
        if self._named.get(desc.digest) == path:  # a mismatch is then the member's name lying
            reader = _NamedMember(reader, lambda actual: self._misnamed(path, desc.digest, actual))
        return reader

    def check_blob(self, desc: Descriptor) -> None:
        if desc.digest in self._made:
            return
        path = self._paths.get(desc.digest)
        if path is None:
            raise ImageNotFound(f"{self.reference}: no blob {desc.digest} in the archive", reference=self.reference)
        desc.check_size(self.storage.size(path), where=path, reference=self.reference)

    def platforms(self) -> list[Platform]:
        return []

    def close(self) -> None:
        self.storage.close()


class _NamedMember(io.RawIOBase):
    """A layer member named by its digest, read verified: a mismatch is the member's name lying
    (``DockerArchiveSource._misnamed``), not a generic one."""

    def __init__(self, reader: VerifiedReader, misnamed: Callable[[str | None], DigestMismatch]) -> None:
        self._reader = reader
        self._misnamed = misnamed

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            return self._reader.read(n)
        except DigestMismatch as exc:
            if exc.reference is not None:
                raise
            raise self._misnamed(exc.actual) from None

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._reader.close()
        super().close()


# --- the config docker load makes for a repositories-only archive ------------------------------------------
#
# image/tarexport/load.go legacyLoadImage and image/v1/imagev1.go MakeConfigFromV1Config (Docker 1.10 to 20.10):
# the top layer's v1 JSON as a map of raw values without "id", "parent", "Size", "parent_id", "layer_id" and
# "throwaway", plus "rootfs" (the diff_ids) and "history" (one row per layer, from its JSON's "created",
# "author", container_config.Cmd and "comment"), marshalled by Go's encoding/json: keys sorted, raw values
# compacted, "<", ">", "&", U+2028 and U+2029 escaped. Its sha256 is the image ID docker load gives the image.
# (A JSON older than docker 1.8.3, by its docker_version, docker first re-marshals through its own V1Image
# struct; that is not reproduced: such an image gets the same layers and tree, under another config digest.)

_DROPPED = ("id", "parent", "Size", "parent_id", "layer_id", "throwaway")
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_HTML = re.compile("[<>&\u2028\u2029]")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


def legacy_config(top_json: bytes, diff_ids: list[str], layer_jsons: Iterable[dict[str, Any]]) -> bytes:
    """The image config ``docker load`` makes from a ``repositories``-only archive: ``top_json`` is the top
    layer's v1 JSON as written, ``diff_ids`` and ``layer_jsons`` the layers' from the base up."""
    values = _raw_members(top_json.decode("utf-8", "replace"))
    for key in _DROPPED:
        values.pop(key, None)
    values["rootfs"] = '{"type":"layers","diff_ids":[' + ",".join(_go_string(d) for d in diff_ids) + "]}"
    values["history"] = "[" + ",".join(_history_row(v1) for v1 in layer_jsons) + "]"
    out = ",".join(f"{_go_string(k)}:{values[k]}" for k in sorted(values, key=lambda k: k.encode("utf-8", "replace")))
    return _GO_HTML.sub(lambda m: _GO_ESCAPES[m.group()], "{" + out + "}").encode()


def _raw_members(text: str) -> dict[str, str]:
    """A JSON object's members as raw, compacted values (Go's ``map[string]*json.RawMessage``)."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    i = ws.match(text, 0).end()  # type: ignore[union-attr]
    if text[i:i + 1] != "{":
        raise ValueError("not a JSON object")
    members: dict[str, str] = {}
    i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
    if text[i:i + 1] == "}":
        return members
    while True:
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = ws.match(text, i).end() + 1  # type: ignore[union-attr]  (past the ":")
        i = ws.match(text, i).end()  # type: ignore[union-attr]
        _, end = decoder.raw_decode(text, i)
        members[key] = _compact(text[i:end])
        i = ws.match(text, end).end()  # type: ignore[union-attr]
        if text[i:i + 1] != ",":
            return members
        i = ws.match(text, i + 1).end()  # type: ignore[union-attr]


def _compact(raw: str) -> str:
    """JSON text without the whitespace between tokens (Go's ``json.Compact``); strings are kept as written."""
    out, in_string, escaped = [], False, False
    for ch in raw:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch in " \t\n\r":
            continue
        else:
            out.append(ch)
            in_string = ch == '"'
    return "".join(out)


def _go_string(s: str) -> str:
    """A string as Go's encoding/json writes it (before the HTML escaping applied to the whole)."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _go_time(value: Any) -> str:
    """A v1 JSON's ``created`` as Go re-marshals a parsed time (RFC 3339, nanoseconds without trailing zeros,
    ``Z`` for a zero offset); missing or unreadable, Go's zero time."""
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if m is None:
        return "0001-01-01T00:00:00Z"
    date, clock, fraction, zulu, sign, hh, mm = m.groups()
    fraction = (fraction or "")[:9].rstrip("0")
    zone = "Z" if zulu or int(hh) == int(mm) == 0 else f"{sign}{hh}:{mm}"
    return f"{date}T{clock}{'.' + fraction if fraction else ''}{zone}"


def _history_row(v1: dict[str, Any]) -> str:
    """One history row as ``v1.HistoryFromConfig`` makes it and Go marshals ``image.History``."""
    cmd = (v1.get("container_config") or {}).get("Cmd") if isinstance(v1.get("container_config"), dict) else None
    if isinstance(cmd, str):
        cmd = [cmd]
    created_by = " ".join(c for c in cmd if isinstance(c, str)) if isinstance(cmd, list) else ""
    parts = [f'"created":{_go_string(_go_time(v1.get("created")))}']
    for key, value in (("author", v1.get("author")), ("created_by", created_by), ("comment", v1.get("comment"))):
        if isinstance(value, str) and value:
            parts.append(f"{_go_string(key)}:{_go_string(value)}")
    return "{" + ",".join(parts) + "}"
