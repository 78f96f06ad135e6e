"""Manifests, indexes and descriptors (OCI image-spec and Docker v2 schema 2), shared by every source."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .errors import ImageNotFound, UnsupportedImage
from .platform import Platform, host_platform

__all__ = [
    "OCI_MANIFEST", "OCI_INDEX", "DOCKER_MANIFEST", "DOCKER_LIST", "MANIFEST_TYPES", "INDEX_TYPES",
    "ACCEPT_MANIFESTS", "Descriptor", "ImageManifest", "index_entries", "json_type", "parse_json", "parse_manifest",
    "select_manifest",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
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
        media_type = obj.get("mediaType", "")
        for name, value, kind, wanted in (("platform", platform, Mapping, "an object"),
                                          ("annotations", annotations, Mapping, "an object"),
                                          ("urls", urls, list, "an array"), ("mediaType", media_type, str, "a string")):
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
        )


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


def parse_json(data: bytes, what: str) -> Any:
    """``json.loads`` with an error that names what was being read."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsupportedImage(f"{what} is not valid JSON: {exc}") from exc


def media_type_of(obj: Mapping[str, Any], fallback: str = "") -> str:
    """The document's mediaType, inferred from its shape when the field is missing (it is optional in OCI)."""
    mt = obj.get("mediaType") or fallback
    if not mt:
        if "manifests" in obj:
            mt = OCI_INDEX
        elif "layers" in obj and "config" in obj:
            mt = OCI_MANIFEST
    return str(mt)


def parse_manifest(raw: bytes, digest: str | None, *, what: str = "manifest") -> ImageManifest:
    """An image manifest from its bytes (OCI or Docker v2 schema 2)."""
    obj = parse_json(raw, what)
    if not isinstance(obj, dict):
        raise UnsupportedImage(f"{what} is not a JSON object")
    mt = media_type_of(obj)
    if mt not in MANIFEST_TYPES:
        if obj.get("schemaVersion") == 1:
            raise UnsupportedImage(f"{what} is a Docker schema 1 manifest, which ocilens does not read",
                                   hint="re-push the image with a current client (schema 2 or OCI)")
        raise UnsupportedImage(f"{what} has media type {mt!r}, not an image manifest")
    if not isinstance(obj.get("config"), Mapping):
        raise UnsupportedImage(f"{what} has no config descriptor (config is a JSON {json_type(obj.get('config'))})",
                               hint="the manifest is damaged; copy the image again (skopeo copy)")
    raw_layers = obj.get("layers") or []
    if not isinstance(raw_layers, list):
        raise UnsupportedImage(f"{what}: layers is a JSON {json_type(raw_layers)}, not an array",
                               hint="the manifest is damaged; copy the image again (skopeo copy)")
    config = Descriptor.from_json(obj["config"], where=f"{what} config")
    layers = tuple(Descriptor.from_json(layer, where=f"{what} layers[{i}]") for i, layer in enumerate(raw_layers))
    return ImageManifest(raw=raw, digest=digest, media_type=mt, config=config, layers=layers, json=obj)


def select_manifest(entries: Sequence[Descriptor], platform: Platform | None, *, what: str,
                    reference: str | None = None) -> Descriptor:
    """Choose one entry of an index: the one for ``platform``, or the only image there is.

    Attestation manifests (``unknown/unknown``, buildkit's ``vnd.docker.reference.type``) are never chosen.
    """
    defaulted = platform is None and len(entries) > 1
    if defaulted:
        platform = host_platform()  # what a runtime on this machine would pull
    images = [e for e in entries
              if "vnd.docker.reference.type" not in e.annotations
              and not (e.platform and e.platform.os == "unknown")]
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
    if not images:
        raise ImageNotFound(f"{what} lists no image manifests", reference=reference)
    offered = ", ".join(sorted({str(e.platform) for e in images if e.platform})) or "several images"
    raise ImageNotFound(f"{what} holds several images ({offered})", reference=reference,
                        hint="pass platform= (CLI: --platform) or name a tag")
