"""``docker save`` tarballs (``docker-archive:FILE[:REF|:@N]``): the classic ``<id>/layer.tar`` layout
and the newer one with ``blobs/sha256/...``, both described by ``manifest.json``."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, BinaryIO

from ..codec import GZIP, TAR, sniff
from ..digest import VerifiedReader, digest_bytes, verify_bytes
from ..errors import ImageNotFound, InvalidReference, SourceError, UnsupportedImage
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


class DockerArchiveSource(Source):
    """An image inside a ``docker save`` tar, read in place."""

    transport = "docker-archive"

    def __init__(self, reference: str, path: str | None, selector: str | None, *,
                 storage: Storage | None = None) -> None:
        """The archive at ``path``, or the one ``storage`` already holds (a stream read once)."""
        super().__init__(reference)
        self.storage = storage if storage is not None else open_storage(str(path), reference, want_dir=False)
        if not self.storage.exists("manifest.json"):
            if self.storage.damage:
                raise self.storage.missing("manifest.json")
            raise SourceError(f"{reference}: {path} has no manifest.json, so it is not a docker-archive",
                              reference=reference, hint="for an OCI layout tar use oci-archive:")
        entries = parse_json(self.storage.read("manifest.json"), f"{reference}: manifest.json")
        if not isinstance(entries, list) or not entries:
            raise UnsupportedImage(f"{reference}: manifest.json lists no images", reference=reference,
                                   hint=_DAMAGED)
        for i, e in enumerate(entries):
            self._check_entry(i, e)
        self.entry = self._select(entries, selector)
        self._paths: dict[str, str] = {}  # digest -> member path

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
            layers.append(desc)
        config_desc = Descriptor(DOCKER_CONFIG, config_digest, len(config_raw))
        raw, digest, media_type = self._real_manifest(config_digest)
        if raw is None:
            raw = json.dumps(e, sort_keys=True).encode()
            media_type = "application/vnd.docker.archive.manifest-entry+json"
        return ImageManifest(raw=raw, digest=digest, media_type=media_type, config=config_desc,
                             layers=tuple(layers), json=parse_json(raw, "manifest"))

    def _layer_descriptor(self, path: str, diff_id: str) -> Descriptor:
        """A layer member's descriptor, as go-containerregistry's ``tarball`` reads them: an uncompressed tar
        (``<id>/layer.tar``, docker save) is its own diff_id; a compressed one (``<hex>.tar.gz``, as kaniko and
        crane write) is named by its own digest where its name states one, else hashed here. The diff_id is
        checked on the decompressed stream in either case (``pipeline.check_diff_ids``)."""
        with self.storage.open(path) as f:
            kind = sniff(f.read(4))
        blob = _BLOB_NAME.search(path)
        size = self.storage.size(path)
        if kind == TAR:  # blobs/sha256/<hex> (Docker 25) is named by its digest; an uncompressed tar is its diff_id
            return Descriptor(DOCKER_LAYER_TAR, f"sha256:{blob.group(2)}" if blob else diff_id, size)
        named = blob or _LAYER_NAME.match(path.rpartition("/")[2])
        digest = f"sha256:{named.groups()[-1]}" if named else self.storage.digest_of(path) or self._hash(path)
        return Descriptor(DOCKER_LAYER_GZIP if kind == GZIP else OCI_LAYER_ZSTD, digest, size)

    def _hash(self, path: str) -> str:
        """The sha256 of a member whose name does not state its digest (one read of it)."""
        h = hashlib.sha256()
        with self.storage.open(path) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return f"sha256:{h.hexdigest()}"

    def prescanned(self, desc: Descriptor) -> "LayerScan | None":
        path = self._paths.get(desc.digest)
        return self.storage.scan_of(path, desc.digest) if path is not None else None

    def _real_manifest(self, config_digest: str) -> tuple[bytes | None, str | None, str]:
        """Newer ``docker save`` also writes index.json and the real manifests: find ours, for its digest."""
        if not self.storage.exists("index.json"):
            return None, None, ""
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
                    return raw, d.digest, media_type_of(obj, d.media_type)
        except (SourceError, UnsupportedImage):
            return None, None, ""
        return None, None, ""

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

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        path = self._paths.get(desc.digest)
        if path is None:
            raise ImageNotFound(f"{self.reference}: no blob {desc.digest} in the archive", reference=self.reference)
        return VerifiedReader(self.storage.open(path), desc.digest, desc.size,  # type: ignore[return-value]
                              what=f"{self.reference}: {path}")

    def check_blob(self, desc: Descriptor) -> None:
        path = self._paths.get(desc.digest)
        if path is None:
            raise ImageNotFound(f"{self.reference}: no blob {desc.digest} in the archive", reference=self.reference)
        desc.check_size(self.storage.size(path), where=path, reference=self.reference)

    def platforms(self) -> list[Platform]:
        return []

    def close(self) -> None:
        self.storage.close()
