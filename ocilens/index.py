"""One index resolver for every source: from what a reference names down to one image manifest.

A source supplies only ``fetch``: the verified bytes of a descriptor (a layout's ``read_blob``, a registry's
manifest-by-digest). What is chosen is then the same everywhere: nested indexes are followed, at most
``MAX_INDEX_DEPTH`` deep, as containerd and go-containerregistry follow them; the image manifests under an index
(at any depth) are the candidates, and ``select_manifest`` chooses among them by platform (this machine's when
none is given and there are several); artifacts are never chosen, and a chosen manifest that packages an
artifact is refused (``require_image``) before any blob is read as a layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

from .errors import UnsupportedImage
from .manifest import (INDEX_TYPES, MANIFEST_TYPES, Descriptor, ImageManifest, index_entries, is_image_entry,
                       media_type_of, parse_json, parse_manifest, require_image, select_manifest)
from .platform import Platform

__all__ = ["MAX_INDEX_DEPTH", "Fetch", "Top", "find_descriptor", "list_platforms", "resolve_manifest",
           "walk_index"]

#: How many indexes deep (the top one counting as 1) an image manifest is looked for; deeper is refused.
MAX_INDEX_DEPTH = 8

#: The verified bytes of the blob a descriptor names (a manifest, an index, a config).
Fetch = Callable[[Descriptor], bytes]
#: What a reference names: a descriptor (a manifest or an index), or the entries of an index already read (a
#: layout's index.json, which lists images as a registry lists tags).
Top = Descriptor | Sequence[Descriptor]


def _memo(fetch: Fetch) -> Fetch:
    """``fetch``, reading each digest once (an untyped entry is read to learn its kind, then read as itself)."""
    seen: dict[str, bytes] = {}

    def cached(desc: Descriptor) -> bytes:
        if desc.digest not in seen:
            seen[desc.digest] = fetch(desc)
        return seen[desc.digest]

    return cached


def _kind(fetch: Fetch, desc: Descriptor, *, what: str, reference: str | None) -> str:
    """An entry's media type: its descriptor's, else what its content says it is (mediaType is optional in old
    layouts)."""
    if desc.media_type:
        return desc.media_type
    obj = parse_json(fetch(desc), f"{what}: {desc.digest}", reference=reference)
    kind = media_type_of(obj) if isinstance(obj, dict) else ""
    return kind if kind in MANIFEST_TYPES + INDEX_TYPES else ""


def _children(fetch: Fetch, desc: Descriptor, depth: int, *, what: str, reference: str | None) -> list[Descriptor]:
    """The entries of the index ``desc``, read as the ``depth``-th index on the way down; too deep is refused."""
    if depth > MAX_INDEX_DEPTH:
        raise UnsupportedImage(f"{what}: indexes nested more than {MAX_INDEX_DEPTH} levels deep (level {depth}: "
                               f"index {desc.digest}); ocilens follows at most {MAX_INDEX_DEPTH}", reference=reference,
                               hint="the index is malformed (nested deeper than any tool writes); name an image "
                                    "manifest inside it by its digest (REF@sha256:...)")
    where = f"{what}: index {desc.digest}"
    return index_entries(parse_json(fetch(desc), where, reference=reference), where=where, reference=reference)


def walk_index(fetch: Fetch, entries: Sequence[Descriptor], *, what: str, reference: str | None = None,
               depth: int = 1) -> Iterator[Descriptor]:
    """Every descriptor under an index's ``entries``, depth first, each before what it holds: image entries that
    are indexes are followed (``depth``: how many indexes were read to get ``entries``), an untyped entry gets
    the type its content says, and an entry without a platform takes its index entry's."""
    for entry in entries:
        kind = _kind(fetch, entry, what=what, reference=reference)
        if kind != entry.media_type:
            entry = replace(entry, media_type=kind)
        yield entry
        if kind in INDEX_TYPES and is_image_entry(entry):
            for child in walk_index(fetch, _children(fetch, entry, depth + 1, what=what, reference=reference),
                                    what=what, reference=reference, depth=depth + 1):
                yield child if child.platform is not None or entry.platform is None else \
                    replace(child, platform=entry.platform)


@dataclass
class _Offer:
    """What a top offers: one image manifest (read), or the manifests under an index (not read yet)."""

    name: str  # the index, for messages
    manifest: ImageManifest | None = None
    images: list[Descriptor] = field(default_factory=list)


def _image(fetch: Fetch, desc: Descriptor, *, what: str, reference: str | None) -> ImageManifest:
    """The image manifest ``desc`` names, parsed; an artifact is refused."""
    name = f"{what}: manifest {desc.digest}"
    manifest = parse_manifest(fetch(desc), desc.digest, what=name, reference=reference)
    return require_image(manifest, what=name, reference=reference)


def _offer(fetch: Fetch, top: Top, *, what: str, reference: str | None) -> _Offer:
    """Read what ``top`` names: an image manifest, or an index whose image manifests (any depth) are listed."""
    if isinstance(top, Descriptor):
        if top.media_type and top.media_type not in MANIFEST_TYPES + INDEX_TYPES:
            raise UnsupportedImage(f"{what}: {top.digest} has media type {top.media_type!r}, neither an image "
                                   "manifest nor an index", reference=reference,
                                   hint="the reference names another kind of blob; name an image's tag or digest")
        obj = parse_json(fetch(top), f"{what}: {top.digest}", reference=reference)
        kind = media_type_of(obj, top.media_type) if isinstance(obj, dict) else top.media_type
        if kind not in INDEX_TYPES:
            return _Offer(what, manifest=_image(fetch, top, what=what, reference=reference))
        name, depth = f"{what} (index {top.digest})", 1
        entries = index_entries(obj, where=f"{what}: index {top.digest}", reference=reference)
    else:
        name, depth, entries = what, 0, list(top)
    images = [d for d in walk_index(fetch, entries, what=what, reference=reference, depth=depth)
              if d.media_type in MANIFEST_TYPES]
    return _Offer(name, images=images)


def resolve_manifest(fetch: Fetch, top: Top, platform: Platform | None, *, what: str,
                     reference: str | None = None) -> ImageManifest:
    """The image manifest ``top`` stands for on ``platform`` (``None``: the only image, else this machine's).

    ``what`` names the reference in messages. Errors: ``ImageNotFound`` (no image for the platform, none at
    all), ``UnsupportedImage`` (not JSON, not a manifest, nested deeper than ``MAX_INDEX_DEPTH``, an artifact).
    """
    fetch = _memo(fetch)
    offer = _offer(fetch, top, what=what, reference=reference)
    if offer.manifest is not None:
        return offer.manifest
    chosen = select_manifest(offer.images, platform, what=offer.name, reference=reference)
    return _image(fetch, chosen, what=what, reference=reference)


def list_platforms(fetch: Fetch, top: Top, *, what: str, reference: str | None = None,
                   read_config: Fetch | None = None) -> list[Platform]:
    """The platforms of the images ``top`` offers (nested indexes followed), sorted; for a single image, the
    platform its descriptor or else its config (read with ``read_config``, default ``fetch``) gives."""
    fetch = _memo(fetch)
    offer = _offer(fetch, top, what=what, reference=reference)
    if offer.manifest is not None:
        if isinstance(top, Descriptor) and top.platform is not None:
            return [top.platform]
        manifest = offer.manifest
    else:
        images = [d for d in offer.images if is_image_entry(d)]
        found = sorted({d.platform for d in images if d.platform is not None}, key=str)
        if found or len(images) != 1:
            return found
        manifest = _image(fetch, images[0], what=what, reference=reference)  # one image, no platform said
    config = parse_json((read_config or fetch)(manifest.config), f"{what}: config {manifest.config.digest}",
                        reference=reference)
    platform = Platform.from_json(config) if isinstance(config, dict) else None
    return [platform] if platform is not None else []

def find_descriptor(fetch: Fetch, entries: Sequence[Descriptor], digest: str, *, what: str,
                    reference: str | None = None) -> Descriptor | None:
    """The descriptor of ``digest`` among an index's ``entries`` or in the indexes they nest; None if absent."""
    walked = walk_index(_memo(fetch), entries, what=what, reference=reference, depth=0)
    return next((d for d in walked if d.digest == digest), None)
