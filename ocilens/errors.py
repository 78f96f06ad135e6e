"""The exceptions ocilens raises.

Every error names the thing at fault (reference, digest, layer, path) and says what to do.
Context travels as keyword-only attributes, so callers can act on it without parsing text::

    OcilensError
    ├── ImageReferenceError        a reference or transport that cannot be understood
    │   └── InvalidReference       bad grammar: names the rule that failed
    ├── SourceError                the image cannot be found where the reference points
    │   ├── SourceNotFound         no such file, directory or archive member
    │   ├── ImageNotFound          no such tag, digest or platform in the source
    │   └── UnsupportedImage       a manifest or media type ocilens does not read
    ├── RegistryError              an HTTP registry said no
    │   ├── AuthenticationError    401/403: credentials missing, wrong or insufficient
    │   ├── RegistryNotFound       404 (or Docker Hub's 401 for a missing repository)
    │   ├── RateLimited            429 beyond the retry budget
    │   └── RegistryUnavailable    connection refused, TLS failure, 5xx beyond the retry budget
    ├── IntegrityError             bytes that are not what their descriptor promised
    │   ├── DigestMismatch
    │   └── SizeMismatch
    ├── LayerDecodeError           a layer that is not a readable (compressed) tar stream
    ├── UnsafeEntryError           an entry that would escape the image root (strict extraction)
    ├── ExtractionError            the target directory cannot take the rootfs
    ├── AnalysisError              a request the analysis cannot answer (bad layer index, threshold)
    └── UsageError                 an argument that cannot be understood (a size, an age, a platform)
"""

from __future__ import annotations

__all__ = [
    "OcilensError",
    "ImageReferenceError",
    "InvalidReference",
    "SourceError",
    "SourceNotFound",
    "ImageNotFound",
    "UnsupportedImage",
    "RegistryError",
    "AuthenticationError",
    "RegistryNotFound",
    "RateLimited",
    "RegistryUnavailable",
    "IntegrityError",
    "DigestMismatch",
    "SizeMismatch",
    "LayerDecodeError",
    "UnsafeEntryError",
    "ExtractionError",
    "AnalysisError",
    "UsageError",
]


class OcilensError(Exception):
    """Root of every error ocilens raises on purpose."""

    def __init__(self, message: str, *, reference: str | None = None, hint: str | None = None) -> None:
        self.reference = reference
        self.message = message  # without the hint
        self.hint = hint
        text = message
        if hint:
            text = f"{message}\n  hint: {hint}"
        super().__init__(text)


class ImageReferenceError(OcilensError):
    """A reference or transport prefix that cannot be understood."""


class InvalidReference(ImageReferenceError):
    """A reference that breaks the grammar; ``rule`` names the rule that failed."""

    def __init__(self, message: str, *, reference: str | None = None, rule: str | None = None,
                 hint: str | None = None) -> None:
        self.rule = rule
        super().__init__(message, reference=reference, hint=hint)


class SourceError(OcilensError):
    """The image cannot be read from where the reference points."""


class SourceNotFound(SourceError):
    """A file, directory or archive member that does not exist."""

    def __init__(self, message: str, *, reference: str | None = None, path: str | None = None,
                 hint: str | None = None) -> None:
        self.path = path
        super().__init__(message, reference=reference, hint=hint)


class ImageNotFound(SourceError):
    """No image for the tag, digest or platform asked for."""


class UnsupportedImage(SourceError):
    """A manifest, config or media type that ocilens does not read."""


class RegistryError(OcilensError):
    """An HTTP registry refused or failed a request."""

    def __init__(self, message: str, *, reference: str | None = None, url: str | None = None,
                 status: int | None = None, codes: tuple[str, ...] = (), hint: str | None = None) -> None:
        self.url = url
        self.status = status
        self.codes = codes
        super().__init__(message, reference=reference, hint=hint)


class AuthenticationError(RegistryError):
    """401 or 403: credentials are missing, wrong, or do not grant the scope."""


class RegistryNotFound(RegistryError):
    """The repository, tag or blob does not exist (or is hidden behind authentication)."""


class RateLimited(RegistryError):
    """429 Too Many Requests beyond the retry budget."""


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached, or kept failing with 5xx."""


class IntegrityError(OcilensError):
    """Bytes that are not what their descriptor promised.

    ``evicted`` is True when the bad bytes were a copy in ocilens's blob cache (a disk fault, a power cut
    while it was written): the entry is gone, and reading the blob again fetches it from the registry."""

    evicted = False

    def __init__(self, message: str, *, reference: str | None = None, digest: str | None = None,
                 hint: str | None = None) -> None:
        self.digest = digest
        super().__init__(message, reference=reference, hint=hint)


class DigestMismatch(IntegrityError):
    """The content hashes to another digest than the one it was asked for by."""

    def __init__(self, message: str, *, reference: str | None = None, digest: str | None = None,
                 actual: str | None = None, hint: str | None = None) -> None:
        self.actual = actual
        super().__init__(message, reference=reference, digest=digest, hint=hint)


class SizeMismatch(IntegrityError):
    """The content is longer or shorter than its descriptor's size."""

    def __init__(self, message: str, *, reference: str | None = None, digest: str | None = None,
                 expected: int | None = None, actual: int | None = None, hint: str | None = None) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(message, reference=reference, digest=digest, hint=hint)


class LayerDecodeError(OcilensError):
    """A layer blob that is not a readable gzip, zstd or tar stream (truncated, corrupt)."""

    def __init__(self, message: str, *, reference: str | None = None, digest: str | None = None,
                 layer: int | None = None, hint: str | None = None) -> None:
        self.digest = digest
        self.layer = layer
        super().__init__(message, reference=reference, hint=hint)


class UnsafeEntryError(OcilensError):
    """A layer entry that would write outside the image root; raised by strict extraction."""

    def __init__(self, message: str, *, reference: str | None = None, path: str | None = None,
                 layer: int | None = None, hint: str | None = None) -> None:
        self.path = path
        self.layer = layer
        super().__init__(message, reference=reference, hint=hint)


class ExtractionError(OcilensError):
    """The target directory cannot take the rootfs (not empty, not writable, full, ...); ``path`` is the
    target or the image path it refused, ``layer`` the layer that path came from (if one did)."""

    def __init__(self, message: str, *, reference: str | None = None, path: str | None = None,
                 layer: int | None = None, hint: str | None = None) -> None:
        self.path = path
        self.layer = layer
        super().__init__(message, reference=reference, hint=hint)


class AnalysisError(OcilensError):
    """A question the analysis cannot answer as asked (layer index out of range, bad threshold)."""


class UsageError(OcilensError):
    """An argument that cannot be understood: a size, an age, a platform, an option value."""


for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, OcilensError):
        _cls.__module__ = "ocilens.errors"
