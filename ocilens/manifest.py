"""Manifests, indexes and descriptors (OCI image-spec and Docker v2 schema 2), shared by every source."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .errors import ImageNotFound, SizeMismatch, UnsupportedImage
from .platform import Platform, host_platform

__all__ = [
    "OCI_MANIFEST", "OCI_INDEX", "OCI_CONFIG", "OCI_EMPTY", "DOCKER_MANIFEST", "DOCKER_LIST", "DOCKER_CONFIG",
    "MANIFEST_TYPES", "INDEX_TYPES", "IMAGE_CONFIG_TYPES", "ACCEPT_MANIFESTS", "Descriptor", "ImageManifest",
    "index_entries", "is_image_entry", "is_layer_type", "json_type", "parse_json", "parse_manifest",
    "require_image", "select_manifest",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
#: The empty descriptor's media type (image-spec ``manifest.md``, "Guidance for an Empty Descriptor"): ``{}``.
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
#: The configs of container images; any other config media type is an artifact's (image-spec, "Guidelines for
#: Artifact Usage").
IMAGE_CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
ACCEPT_MANIFESTS = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a blob is, its digest and its size."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    #: An index entry's ``artifactType`` (image-spec 1.1): set, the entry is an artifact, not an image.
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "manifest", reference: str | None = None) -> "Descriptor":
        """A descriptor from its JSON object; anything else is ``UnsupportedImage`` naming ``where``."""
        hint = "the file is damaged or was not written by an image tool; copy the image again (skopeo copy)"
        if not isinstance(obj, Mapping):
            raise UnsupportedImage(f"{where}: a descriptor is a JSON {json_type(obj)}, not an object: "
                                   f"{_excerpt(obj)}", reference=reference, hint=hint)
        digest, size = obj.get("digest"), obj.get("size")
        if not isinstance(digest, str) or not digest or isinstance(size, bool) or not isinstance(size, int):
            raise UnsupportedImage(f"{where}: descriptor without a valid digest and size: {_excerpt(obj)}",
                                   reference=reference, hint=hint)
        platform, annotations, urls = obj.get("platform"), obj.get("annotations"), obj.get("urls")
        media_type, artifact_type = obj.get("mediaType", ""), obj.get("artifactType")
        for name, value, kind, wanted in (("platform", platform, Mapping, "an object"),
                                          ("annotations", annotations, Mapping, "an object"),
                                          ("urls", urls, list, "an array"), ("mediaType", media_type, str, "a string"),
                                          ("artifactType", artifact_type, str, "a string")):
            if value is not None and not isinstance(value, kind):
                raise UnsupportedImage(f"{where}: descriptor {digest}: {name} is a JSON {json_type(value)}, "
                                       f"not {wanted}", reference=reference, hint=hint)
        return cls(
            media_type=str(media_type or ""),
            digest=digest,
            size=size,
            platform=Platform.from_json(platform),
            annotations={str(k): str(v) for k, v in (annotations or {}).items()},
            urls=tuple(str(u) for u in urls or ()),
            artifact_type=artifact_type or None,
        )

    def check_size(self, size: int, *, where: str, reference: str | None = None) -> None:
        """A blob on disk (at ``where``) of another size than this descriptor's: the ``SizeMismatch`` that reading
        it would end in, raised before reading (a cached layer scan stands for a blob that must still be there)."""
        if size != self.size:
            raise SizeMismatch(f"{reference}: {where} is {size:,} bytes, but {self.digest} is {self.size:,}",
                               reference=reference, digest=self.digest, expected=self.size, actual=size,
                               hint="the blob was truncated or replaced; copy the image again")


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages: "object", "array", "null"..."""
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(type(value),
                                                                                             type(value).__name__)


def _excerpt(value: Any, limit: int = 120) -> str:
    """``repr`` of a value, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def index_entries(obj: Any, *, where: str, reference: str | None = None) -> list[Descriptor]:
    """The ``manifests`` descriptors of an index (or index.json); ``UnsupportedImage`` when it has none to read."""
    if not isinstance(obj, Mapping):
        raise UnsupportedImage(f"{where} is a JSON {json_type(obj)}, not an object", reference=reference,
                               hint="the file is damaged or not an image index; copy the image again")
    entries = obj.get("manifests")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise UnsupportedImage(f"{where}: manifests is a JSON {json_type(entries)}, not an array",
                               reference=reference, hint="the file is damaged or not an image index; copy the image again")
    return [Descriptor.from_json(m, where=f"{where} manifests[{i}]", reference=reference)
            for i, m in enumerate(entries)]


@dataclass(frozen=True)
class ImageManifest:
    """One image: its manifest (raw bytes as served, so its digest holds), config and layers."""

    raw: bytes
    digest: str | None
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    json: Mapping[str, Any]


def parse_json(data: bytes, what: str, *, reference: str | None = None) -> Any:
    """``json.loads`` with an error that names what was being read."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsupportedImage(f"{what} is not valid JSON: {exc}", reference=reference) from exc


def media_type_of(obj: Mapping[str, Any], fallback: str = "") -> str:
    """The document's mediaType, inferred from its shape when the field is missing (it is optional in OCI)."""
    mt = obj.get("mediaType") or fallback
    if not mt:
        if "manifests" in obj:
            mt = OCI_INDEX
        elif "layers" in obj and "config" in obj:
            mt = OCI_MANIFEST
    return str(mt)


def parse_manifest(raw: bytes, digest: str | None, *, what: str = "manifest",
                   reference: str | None = None) -> ImageManifest:
    """An image manifest from its bytes (OCI or Docker v2 schema 2)."""
    damaged = "the manifest is damaged; copy the image again (skopeo copy)"
    obj = parse_json(raw, what, reference=reference)
    if not isinstance(obj, dict):
        raise UnsupportedImage(f"{what} is a JSON {json_type(obj)}, not an object", reference=reference, hint=damaged)
    mt = media_type_of(obj)
    if mt not in MANIFEST_TYPES:
        if obj.get("schemaVersion") == 1:
            raise UnsupportedImage(f"{what} is a Docker schema 1 manifest, which ocilens does not read",
                                   reference=reference,
                                   hint="re-push the image with a current client (schema 2 or OCI)")
        raise UnsupportedImage(f"{what} has media type {mt!r}, not an image manifest", reference=reference)
    if not isinstance(obj.get("config"), Mapping):
        raise UnsupportedImage(f"{what} has no config descriptor (config is a JSON {json_type(obj.get('config'))})",
                               reference=reference, hint=damaged)
    raw_layers = obj.get("layers") or []
    if not isinstance(raw_layers, list):
        raise UnsupportedImage(f"{what}: layers is a JSON {json_type(raw_layers)}, not an array",
                               reference=reference, hint=damaged)
    config = Descriptor.from_json(obj["config"], where=f"{what} config", reference=reference)
    layers = tuple(Descriptor.from_json(layer, where=f"{what} layers[{i}]", reference=reference)
                   for i, layer in enumerate(raw_layers))
    return ImageManifest(raw=raw, digest=digest, media_type=mt, config=config, layers=layers, json=obj)


# --- images, not artifacts -------------------------------------------------------------------------------

#: A filesystem layer's subtype: a tar, maybe gzip or zstd compressed (``vnd.oci.image.layer.v1.tar+gzip``,
#: ``vnd.docker.image.rootfs.diff.tar.gzip``, ``...nondistributable.v1.tar+zstd``, ``x-tar``).
_TAR_SUBTYPE = re.compile(r"(?:^|[-.+])tar(?:[.+](?:gzip|gz|zstd|zst))?$")
_ARTIFACT_HINT = ("the reference names an artifact stored beside images (a signature, an SBOM, an attestation, "
                  "a Helm chart...); name the image itself (its tag or digest; `ocilens platforms REF` lists what "
                  "an index offers)")


def _bare_type(media_type: str) -> str:
    """A media type without parameters, lowercased (media types compare case-insensitively)."""
    return media_type.split(";", 1)[0].strip().lower()


def is_layer_type(media_type: str) -> bool:
    """True for a filesystem layer's media type (a tar, maybe compressed), or for none given (the bytes decide)."""
    subtype = _bare_type(media_type).rpartition("/")[2]
    return not subtype or bool(_TAR_SUBTYPE.search(subtype))


def is_image_entry(desc: Descriptor) -> bool:
    """True for an index entry that may be an image: a manifest or index, not an artifact beside images
    (``artifactType``, buildkit's attestations: ``vnd.docker.reference.type``, platform ``unknown/unknown``)."""
    return ((desc.media_type in MANIFEST_TYPES + INDEX_TYPES or not desc.media_type)
            and desc.artifact_type is None
            and "vnd.docker.reference.type" not in desc.annotations
            and not (desc.platform is not None and desc.platform.os == "unknown"))


def _artifact_reason(manifest: ImageManifest) -> str | None:
    """Why a manifest packages an artifact and not a container image (image-spec ``manifest.md``, "Guidelines
    for Artifact Usage"); None for an image."""
    artifact_type = manifest.json.get("artifactType")
    if artifact_type not in (None, "") and _bare_type(str(artifact_type)) not in IMAGE_CONFIG_TYPES:
        return f"an OCI artifact of type {artifact_type!r}, not a container image"
    config_type = _bare_type(manifest.config.media_type)
    if config_type and config_type not in IMAGE_CONFIG_TYPES:  # the empty config included: artifacts only
        return f"an OCI artifact of type {manifest.config.media_type!r} (its config media type), not a container image"
    for i, layer in enumerate(manifest.layers):
        if not is_layer_type(layer.media_type):  # an image config over blobs that are not tars: cosign, attestations
            return (f"not a container image: layer {i} ({layer.digest}) has media type {layer.media_type!r}, "
                    "not a filesystem layer (a tar)")
    return None


def require_image(manifest: ImageManifest, *, what: str, reference: str | None = None) -> ImageManifest:
    """The manifest, if it is a container image's; an artifact is ``UnsupportedImage`` naming its type, before
    its blobs would be read as layers."""
    reason = _artifact_reason(manifest)
    if reason is not None:
        raise UnsupportedImage(f"{what} is {reason}; ocilens reads container images", reference=reference,
                               hint=_ARTIFACT_HINT)
    return manifest


def select_manifest(entries: Sequence[Descriptor], platform: Platform | None, *, what: str,
                    reference: str | None = None) -> Descriptor:
    """Choose one entry of an index: the one for ``platform``, or the only image there is.

    Artifacts (``is_image_entry``: attestations, signatures) are never chosen. With no platform given and
    several images, this machine's platform is the one asked for, as a runtime here would pull it.
    """
    images = [e for e in entries if is_image_entry(e)]
    defaulted = platform is None and len(images) > 1
    if defaulted:
        platform = host_platform()
    if platform is not None:
        # the exact platform first; else another arm64 variant for plain arm64 (arm64/v9 asked for by name is
        # that variant only)
        hits = [e for e in images if platform.matches(e.platform)] or \
            [e for e in images if platform.serves(e.platform)]
        if hits:
            return hits[0]
        if len(images) == 1 and images[0].platform is None:
            return images[0]
        offered = ", ".join(sorted({str(e.platform) for e in images if e.platform})) or "none"
        whose = " (this machine's, as no platform was given)" if defaulted else ""
        raise ImageNotFound(f"{what} has no image for platform {platform}{whose}; it offers: {offered}",
                            reference=reference, hint="pass platform= (CLI: --platform) with one of those")
    if len(images) == 1:
        return images[0]
    n = len(entries)
    what_they_are = "its one entry is not an image" if n == 1 else f"its {n} entries are not images"
    besides = f"; {what_they_are} (attestations, signatures, other artifacts)" if n else ""
    raise ImageNotFound(f"{what} lists no image manifests{besides}", reference=reference,
                        hint="the index holds no container image; name an image (a tag or digest) instead")
