"""The interface every image source implements (layout, archives, registry)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, BinaryIO

from ..errors import IntegrityError
from ..manifest import Descriptor, ImageManifest
from ..platform import Platform

if TYPE_CHECKING:
    from ..scan import LayerScan

__all__ = ["Source"]


class Source(ABC):
    """Where one image reference's manifest and blobs come from.

    ``resolve`` picks the image (tag, digest, platform) and returns its manifest; ``open_blob`` streams a
    blob **verified** against its descriptor: the stream raises ``DigestMismatch``/``SizeMismatch`` at EOF
    (or as soon as it runs long), so a consumer that reads to the end has checked every byte.
    Sources are thread-safe for ``open_blob``: layers are read in parallel.
    """

    #: skopeo's transport name: ``oci``, ``oci-archive``, ``docker-archive``, ``docker``.
    transport: str = ""

    def __init__(self, reference: str) -> None:
        self.reference = reference

    @abstractmethod
    def resolve(self, platform: Platform | None = None) -> ImageManifest:
        """The image manifest for this reference and platform (``None``: the only image, or the host's)."""

    @abstractmethod
    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """A verified stream of the blob's bytes."""

    def prescanned(self, desc: Descriptor) -> "LayerScan | None":
        """The scan of a layer this source made while it streamed the blob (a stream read once, an engine's
        export), or None: the blob is then read and scanned as usual."""
        return None

    def check_blob(self, desc: Descriptor) -> None:
        """Raise what reading the blob would if it is missing or of the wrong size, without reading it: a
        cached layer scan stands for a blob that must still be there. A registry holds its blobs: no check."""

    def read_blob(self, desc: Descriptor) -> bytes:
        """The whole blob, verified (for configs and manifests: small); read twice if the first copy was a
        corrupt cache entry, which reading removed."""
        try:
            with self.open_blob(desc) as stream:
                return stream.read()
        except IntegrityError as exc:
            if not exc.evicted:
                raise
        with self.open_blob(desc) as stream:
            return stream.read()

    def platforms(self) -> list[Platform]:
        """The platforms this reference offers (one, for a plain image manifest)."""
        return []

    def close(self) -> None:
        """Release files and connections."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.reference!r}>"
