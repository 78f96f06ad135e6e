"""OCI image layouts: a directory (``oci:DIR[:TAG]``) or a tar of one (``oci-archive:FILE[:TAG]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO

from ..digest import VerifiedReader, parse_digest, verify_bytes
from ..errors import ImageNotFound, SourceError, UnsupportedImage
from ..index import Top, find_descriptor, list_platforms, resolve_manifest
from ..manifest import MANIFEST_TYPES, REF_NAME, Descriptor, ImageManifest, index_entries, is_image_entry, parse_json
from ..platform import Platform
from .base import Source
from .storage import Storage, open_storage

if TYPE_CHECKING:
    from ..scan import LayerScan

__all__ = ["LayoutSource"]


def blob_path(digest: str) -> str:
    algo, hexpart = parse_digest(digest)
    return f"blobs/{algo}/{hexpart}"


class StorageBlobs(Source):
    """A source whose blobs are files ``blobs/<algo>/<hex>`` in a storage."""

    storage: Storage
    #: The layer digests of the manifests resolved: the only blobs whose stream scans are handed out.
    resolved_layers: frozenset[str] = frozenset()

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        raw = self.storage.open(blob_path(desc.digest))
        return VerifiedReader(raw, desc.digest, desc.size, what=f"{self.reference}: blob")  # type: ignore[return-value]

    def prescanned(self, desc: Descriptor) -> "LayerScan | None":
        """The scan made while the blob streamed (``oci-archive:-``), for a layer of a manifest resolved only: a
        blob that looks like a layer but that no resolved manifest names is never handed out as one."""
        if desc.digest not in self.resolved_layers:
            return None
        return self.storage.scan_of(blob_path(desc.digest), desc.digest)

    def check_blob(self, desc: Descriptor) -> None:
        path = blob_path(desc.digest)
        desc.check_size(self.storage.size(path), where=path, reference=self.reference)

    def read_blob(self, desc: Descriptor) -> bytes:
        data = self.storage.read(blob_path(desc.digest))
        return verify_bytes(data, desc.digest, desc.size, what=f"{self.reference}: blob")

    def close(self) -> None:
        self.storage.close()


class LayoutSource(StorageBlobs):
    """An OCI image layout (image-spec ``image-layout.md``), read in place."""

    def __init__(self, reference: str, path: str, selector: str | None, *, archive: bool,
                 storage: Storage | None = None) -> None:
        """``storage``: the archive's members when they were read already (a stream read once to learn its kind);
        else ``path`` is opened."""
        super().__init__(reference)
        self.transport = "oci-archive" if archive else "oci"
        self.selector = selector
        self.path = path
        self.storage = storage if storage is not None else open_storage(path, reference, want_dir=not archive)
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
        """The entry the selector names (a tag, ``@digest``), or the entries it leaves to choose from."""
        entries = self._top_entries()
        sel = self.selector
        if sel is None:
            return entries
        if sel.startswith("@"):
            found = find_descriptor(self.read_blob, entries, sel[1:], what=self.reference, reference=self.reference)
            if found is None:
                raise ImageNotFound(f"{self.reference}: no manifest {sel[1:]} in the layout", reference=self.reference,
                                    hint="the layout's index.json lists its images' digests; or name a tag: "
                                         f"{self.transport}:{self.path}:TAG")
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

    def _top(self) -> Top:
        """What to resolve: the entry picked, or index.json's images when they are one multi-platform set."""
        top = self._pick_top()
        if not isinstance(top, list):
            return top
        candidates = [d for d in top if is_image_entry(d)]
        if not candidates:
            raise ImageNotFound(f"{self.reference}: index.json of {self.path} lists no images",
                                reference=self.reference,
                                hint="the layout is empty or holds only artifacts; copy an image into it")
        if len(candidates) == 1:
            return candidates[0]
        if all(d.media_type in MANIFEST_TYPES and d.platform for d in candidates) and \
                len({d.platform for d in candidates}) == len(candidates):
            return candidates  # one image per platform: index.json serves as a multi-platform index
        raise ImageNotFound(f"{self.reference}: the layout holds {len(candidates)} images "
                            f"({self._labels(candidates)})", reference=self.reference,
                            hint=f"name one: {self.transport}:{self.path}:TAG, or {self.transport}:{self.path}@DIGEST "
                                 "for one without a tag of its own")

    @staticmethod
    def _labels(candidates: list[Descriptor]) -> str:
        """Each candidate by its tag, or by its digest when it has none (or shares it): as many as there are."""
        tags = [d.annotations.get(REF_NAME) for d in candidates]
        return ", ".join(t if t and tags.count(t) == 1 else d.digest for t, d in zip(tags, candidates))

    def resolve(self, platform: Platform | None = None) -> ImageManifest:
        manifest = resolve_manifest(self.read_blob, self._top(), platform, what=self.reference,
                                    reference=self.reference)
        self.resolved_layers = self.resolved_layers | {d.digest for d in manifest.layers}
        return manifest

    def platforms(self) -> list[Platform]:
        return list_platforms(self.read_blob, self._pick_top(), what=self.reference, reference=self.reference)
