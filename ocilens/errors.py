"""The exceptions ocilens raises.

Every error names the thing at fault (reference, digest, layer, path) and says what to do.
Context travels as keyword-only attributes, so callers can act on it without parsing text::

    OcilensError
    ├── ImageReferenceError        a reference or transport that cannot be understood
    │   └── InvalidReference       bad grammar: names the rule that failed
    ├── SourceError                the image cannot be found where the reference points
    │   ├── SourceNotFound         no such file, directory or archive member
    │   ├── ImageNotFound          no such tag, digest or platform in the source
    │   ├── UnsupportedImage       a manifest or media type ocilens does not read
    │   └── EngineError            a local Docker or Podman engine (names its endpoint) cannot serve the image
    │       ├── EngineEndpointError      the endpoint cannot be used as configured (ssh://, a missing context)
    │       ├── EngineNotRunning         no socket, or nothing accepts connections on it
    │       ├── EnginePermissionDenied   the socket exists, but this user may not connect to it
    │       ├── EngineImageNotFound      the engine has no such image (also an ImageNotFound)
    │       ├── EngineExportInterrupted  the export stream broke off before its end (the engine died)
    │       └── EngineAPIError           any other refusal, with the engine's own message
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

In IPython and Jupyter an ``OcilensError`` shows its message and hint alone, without the frames of ocilens's
own code that raised it (IPython's ``_render_traceback_`` hook). To see the full traceback when debugging,
any of: ``%xmode Verbose`` in the notebook, ``ocilens.errors.full_tracebacks(True)``, or the environment
variable ``OCILENS_TRACEBACK=full`` (set before the error is shown).
"""

from __future__ import annotations

import os
import sys
from typing import Callable

__all__ = [
    "full_tracebacks",
    "OcilensError",
    "ImageReferenceError",
    "InvalidReference",
    "SourceError",
    "SourceNotFound",
    "ImageNotFound",
    "UnsupportedImage",
    "EngineError",
    "EngineEndpointError",
    "EngineNotRunning",
    "EnginePermissionDenied",
    "EngineImageNotFound",
    "EngineExportInterrupted",
    "EngineAPIError",
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


_FULL_TRACEBACKS: bool | None = None


def full_tracebacks(on: bool | None = True) -> None:
    """Show the full traceback of an ``OcilensError`` in IPython (``False``: the message and hint alone;
    ``None``: back to the default, which ``OCILENS_TRACEBACK=full`` and ``%xmode Verbose`` decide)."""
    global _FULL_TRACEBACKS
    _FULL_TRACEBACKS = on


def _want_full_traceback() -> bool:
    """Whether IPython should show the frames: asked for in code, in the environment, or by ``%xmode Verbose``."""
    if _FULL_TRACEBACKS is not None:
        return _FULL_TRACEBACKS
    if os.environ.get("OCILENS_TRACEBACK", "").strip().lower() in ("full", "1", "verbose", "yes", "true"):
        return True
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    mode = getattr(getattr(shell, "InteractiveTB", None), "mode", None)
    return mode == "Verbose"


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

    @property
    def _render_traceback_(self) -> Callable[[], list[str]]:
        """IPython's hook: the message and hint alone. Absent (so IPython shows every frame) when full
        tracebacks are asked for (see the module's docstring)."""
        if _want_full_traceback():
            raise AttributeError("_render_traceback_")
        return self._short_traceback

    def _short_traceback(self) -> list[str]:
        """The lines IPython shows for this error: ``ErrorName: message``, then the hint."""
        lines = f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self.message}".split("\n")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return lines


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


class EngineError(SourceError):
    """A local container engine cannot serve the image; ``engine`` is ``"docker"`` or ``"podman"`` and
    ``endpoint`` the address asked (``unix:///run/docker.sock``), so the message can say which daemon."""

    def __init__(self, message: str, *, reference: str | None = None, engine: str | None = None,
                 endpoint: str | None = None, hint: str | None = None) -> None:
        self.engine = engine
        self.endpoint = endpoint
        super().__init__(message, reference=reference, hint=hint)


class EngineEndpointError(EngineError):
    """The engine's endpoint cannot be used as configured: ``ssh://``, an unknown scheme, a docker context
    that does not exist, TLS files that cannot be read."""


class EngineNotRunning(EngineError):
    """Nothing serves the engine's API at the endpoint: no socket file, connection refused, no answer."""


class EnginePermissionDenied(EngineError):
    """The engine's socket exists, but this user may not connect to it (not in its group)."""


class EngineImageNotFound(EngineError, ImageNotFound):
    """The engine has no image by that name, digest or ID (404 from the engine)."""


class EngineExportInterrupted(EngineError):
    """The export stream ended before the archive did: the engine died, closed the connection, went
    silent, or wrote an error into the stream; ``received`` is how many bytes had arrived."""

    def __init__(self, message: str, *, reference: str | None = None, engine: str | None = None,
                 endpoint: str | None = None, received: int | None = None, hint: str | None = None) -> None:
        self.received = received
        super().__init__(message, reference=reference, engine=engine, endpoint=endpoint, hint=hint)


class EngineAPIError(EngineError):
    """The engine refused a request; ``status`` is the HTTP status and ``api_message`` the engine's own
    ``message`` field (None when there was no answer to read, e.g. a response that broke off)."""

    def __init__(self, message: str, *, reference: str | None = None, engine: str | None = None,
                 endpoint: str | None = None, status: int | None = None, api_message: str | None = None,
                 hint: str | None = None) -> None:
        self.status = status
        self.api_message = api_message
        super().__init__(message, reference=reference, engine=engine, endpoint=endpoint, hint=hint)


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
