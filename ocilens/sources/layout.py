"""OCI image layouts: a directory (``oci:DIR[:TAG]``) or a tar of one (``oci-archive:FILE[:TAG]``)."""

from __future__ import annotations

from typing import Any, BinaryIO

from ..digest import VerifiedReader, parse_digest, verify_bytes
from ..errors import ImageNotFound, SizeMismatch, SourceError, UnsupportedImage
from ..manifest import (INDEX_TYPES, MANIFEST_TYPES, REF_NAME, Descriptor, ImageManifest, index_entries,
                        media_type_of, parse_json, parse_manifest, select_manifest)
from ..platform import Platform
from .base import Source
from .storage import Storage, open_storage

__all__ = ["LayoutSource"]


def blob_path(digest: str) -> str:
    algo, hexpart = parse_digest(digest)
    return f"blobs/{algo}/{hexpart}"


class StorageBlobs(Source):
    """A source whose blobs are files ``blobs/<algo>/<hex>`` in a storage."""

    storage: Storage

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        raw = self.storage.open(blob_path(desc.digest))
        return VerifiedReader(raw, desc.digest, desc.size, what=f"{self.reference}: blob")  # type: ignore[return-value]

    def check_blob(self, desc: Descriptor) -> None:
        _check_size(self.reference, desc, self.storage.size(blob_path(desc.digest)), blob_path(desc.digest))

    def read_blob(self, desc: Descriptor) -> bytes:
        data = self.storage.read(blob_path(desc.digest))
        return verify_bytes(data, desc.digest, desc.size, what=f"{self.reference}: blob")

    def close(self) -> None:
        self.storage.close()


def _check_size(reference: str, desc: Descriptor, size: int, where: str) -> None:
    """A blob on disk whose size is not its descriptor's: the ``SizeMismatch`` reading it would end in."""
    if size != desc.size:
        raise SizeMismatch(f"{reference}: {where} is {size:,} bytes, but {desc.digest} is {desc.size:,}",
                           reference=reference, digest=desc.digest, expected=desc.size, actual=size,
                           hint="the blob was truncated or replaced; copy the image again")


class LayoutSource(StorageBlobs):
    """An OCI image layout (image-spec ``image-layout.md``), read in place."""

    def __init__(self, reference: str, path: str, selector: str | None, *, archive: bool) -> None:
        super().__init__(reference)
        self.transport = "oci-archive" if archive else "oci"
        self.selector = selector
        self.path = path
        self.storage = open_storage(path, reference, want_dir=not archive)
        if not self.storage.exists("index.json"):
            kind = "archive" if archive else "directory"
            if self.storage.damage:
                raise self.storage.missing("index.json")
            raise SourceError(f"{reference}: {path} is not an OCI image layout (no index.json in the {kind})",
                              reference=reference,
                              hint="for a `docker save` tar use docker-archive:; for a registry use host/repo:tag")
        if self.storage.exists("oci-layout"):
            marker = parse_json(self.storage.read("oci-layout"), f"{reference}: oci-layout")
            version = marker.get("imageLayoutVersion") if isinstance(marker, dict) else None
            if version != "1.0.0":
                raise UnsupportedImage(f"{reference}: unsupported imageLayoutVersion {version!r}", reference=reference)
        self.index = self._read_index_json()

    def _read_index_json(self) -> dict[str, Any]:
        obj = parse_json(self.storage.read("index.json"), f"{self.reference}: index.json")
        if not isinstance(obj, dict) or not isinstance(obj.get("manifests"), list):
            raise UnsupportedImage(f"{self.reference}: index.json of {self.path} has no manifests list",
                                   reference=self.reference,
                                   hint="the layout is damaged or not an OCI image layout; copy it again (skopeo copy)")
        return obj

    def _top_entries(self) -> list[Descriptor]:
        return index_entries(self.index, where=f"{self.reference}: index.json", reference=self.reference)

    def _tag_hint(self) -> str:
        """How to name a tag of this layout, in this reference's own transport."""
        return f"name one of those tags after the path: {self.transport}:{self.path}:TAG"

    def tags(self) -> list[str]:
        """The ``org.opencontainers.image.ref.name`` annotations of index.json."""
        return [d.annotations[REF_NAME] for d in self._top_entries() if REF_NAME in d.annotations]

    def _pick_top(self) -> Descriptor | list[Descriptor]:
        entries = self._top_entries()
        sel = self.selector
        if sel is None:
            return entries
        if sel.startswith("@"):
            found = self._find_digest(entries, sel[1:])
            if found is None:
                raise ImageNotFound(f"{self.reference}: no manifest {sel[1:]} in the layout", reference=self.reference)
            return found
        exact = [d for d in entries if d.annotations.get(REF_NAME) == sel]
        if not exact:  # a full reference in the annotation: match its tag
            exact = [d for d in entries if d.annotations.get(REF_NAME, "").rpartition(":")[2] == sel
                     and ":" in d.annotations.get(REF_NAME, "")]
        if not exact:
            tags = ", ".join(self.tags()) or "none"
            raise ImageNotFound(f"{self.reference}: no image tagged {sel!r} in the layout; tags: {tags}",
                                reference=self.reference, hint=self._tag_hint())
        return exact if len(exact) > 1 else exact[0]

    def _find_digest(self, entries: list[Descriptor], digest: str, depth: int = 0) -> Descriptor | None:
        for d in entries:
            if d.digest == digest:
                return d
            if d.media_type in INDEX_TYPES and depth < 8:
                found = self._find_digest(self._index_entries(d), digest, depth + 1)
                if found is not None:
                    return found
        return None

    def _index_entries(self, desc: Descriptor) -> list[Descriptor]:
        raw = self.read_blob(desc)
        what = f"{self.reference}: index {desc.digest}"
        return index_entries(parse_json(raw, what), where=what, reference=self.reference)

    def _descend(self, desc: Descriptor, platform: Platform | None, depth: int = 0) -> Descriptor:
        """From an index entry down to an image manifest (nested indexes resolved by platform)."""
        if desc.media_type in MANIFEST_TYPES:
            return desc
        if desc.media_type in INDEX_TYPES or depth == 0 and not desc.media_type:
            if depth > 8:
                raise UnsupportedImage(f"{self.reference}: indexes nested too deep", reference=self.reference)
            raw = self.read_blob(desc)
            what = f"{self.reference}: {desc.digest}"
            obj = parse_json(raw, what)
            if isinstance(obj, dict) and media_type_of(obj, desc.media_type) in MANIFEST_TYPES:
                return Descriptor(media_type_of(obj), desc.digest, desc.size, desc.platform, desc.annotations)
            entries = index_entries(obj, where=what, reference=self.reference)
            chosen = select_manifest(entries, platform, what=f"{self.reference} (index {desc.digest})",
                                     reference=self.reference)
            return self._descend(chosen, platform, depth + 1)
        raise UnsupportedImage(f"{self.reference}: {desc.digest} has media type {desc.media_type!r}, "
                               "neither an image manifest nor an index", reference=self.reference)

    def resolve(self, platform: Platform | None = None) -> ImageManifest:
        top = self._pick_top()
        if isinstance(top, list):
            candidates = [d for d in top if d.media_type in MANIFEST_TYPES + INDEX_TYPES or not d.media_type]
            if not candidates:
                raise ImageNotFound(f"{self.reference}: index.json of {self.path} lists no images",
                                    reference=self.reference,
                                    hint="the layout is empty or holds only artifacts; copy an image into it")
            if len(candidates) == 1:
                top = candidates[0]
            else:
                flat = [d for d in candidates if d.media_type in MANIFEST_TYPES]
                if flat and len(flat) == len(candidates) and (platform is not None or
                                                              len({d.platform for d in flat}) == len(flat)):
                    top = select_manifest(flat, platform, what=self.reference, reference=self.reference)
                else:
                    tags = ", ".join(self.tags()) or "untagged"
                    raise ImageNotFound(f"{self.reference}: the layout holds {len(candidates)} images ({tags})",
                                        reference=self.reference,
                                        hint=f"name one: {self.transport}:{self.path}:TAG")
        desc = self._descend(top, platform)
        raw = self.read_blob(desc)
        return parse_manifest(raw, desc.digest, what=f"{self.reference}: manifest {desc.digest}")

    def platforms(self) -> list[Platform]:
        top = self._pick_top()
        entries = top if isinstance(top, list) else [top]
        out: list[Platform] = []
        for d in entries:
            if d.media_type in INDEX_TYPES:
                out.extend(e.platform for e in self._index_entries(d) if e.platform)
            elif d.platform:
                out.append(d.platform)
        return sorted(set(out), key=str)
