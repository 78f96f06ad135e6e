"""The registry API ocilens uses: manifests (negotiated and verified) and blobs (streamed, resumable)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from ..digest import digest_bytes
from ..errors import DigestMismatch, IntegrityError, SizeMismatch
from ..manifest import ACCEPT_MANIFESTS
from .auth import pull_scope
from .blobs import Progress, ResumableBody
from .retry import RetryPolicy
from .session import CredentialsArg, RegistrySession

__all__ = ["RegistryClient", "FetchedManifest", "MAX_MANIFEST_BYTES"]

#: The distribution spec asks registries to accept manifests of at least 4 MiB; nothing larger is read.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_SUPPORTED = ("sha256", "sha512")


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index as served: its bytes, the Content-Type, and the digest they were checked against."""

    raw: bytes
    media_type: str
    digest: str
    url: str


def is_digest(ref: str) -> bool:
    """True when a manifest reference is a digest (``algo:hex``) rather than a tag."""
    return ":" in ref and bool(_DIGEST_RE.fullmatch(ref))


class RegistryClient:
    """One registry (``host[:port]``, or ``docker.io``): thread-safe, synchronous, safe inside Jupyter."""

    def __init__(self, registry: str, *, auth: CredentialsArg = None, insecure: bool | None = None,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 timeout: float | httpx.Timeout | None = None, max_connections: int = 16) -> None:
        self.registry = registry
        self.session = RegistrySession(registry, auth=auth, insecure=insecure, retry=retry, transport=transport,
                                       timeout=timeout, max_connections=max_connections)

    def manifest(self, repository: str, ref: str, *, reference: str | None = None,
                 size: int | None = None) -> FetchedManifest:
        """``GET /v2/<repository>/manifests/<ref>`` with every manifest type accepted, verified.

        By digest: the bytes must hash to it (and match ``size`` when known). By tag: they must hash to
        ``Docker-Content-Digest`` when the registry sends one; the digest returned is what they hash to.
        """
        path = f"/v2/{repository}/manifests/{ref}"
        resp, raw = self.session.fetch("GET", path, headers={"Accept": ACCEPT_MANIFESTS},
                                       scopes=(pull_scope(repository),), what="manifest", reference=reference,
                                       limit=MAX_MANIFEST_BYTES)
        url = str(resp.request.url)
        media_type = resp.headers.get("content-type", "").split(";", 1)[0].strip()
        claimed = resp.headers.get("docker-content-digest", "").strip() or None
        expected = ref if is_digest(ref) else claimed
        if size is not None and size >= 0 and len(raw) != size:
            raise SizeMismatch(f"manifest {ref} of {reference}: {len(raw)} bytes from {url}, its descriptor says "
                               f"{size}", reference=reference, digest=expected, expected=size, actual=len(raw))
        if expected is not None and expected.partition(":")[0] in _SUPPORTED:
            actual = digest_bytes(raw, expected.partition(":")[0])
            if actual != expected:
                source = "it was asked for by" if expected == ref else "the registry's Docker-Content-Digest says"
                raise DigestMismatch(f"manifest of {reference} from {url} hashes to {actual}, but {source} {expected}",
                                     reference=reference, digest=expected, actual=actual,
                                     hint="the registry or something between it and you altered the manifest; "
                                          "nothing was used")
            return FetchedManifest(raw, media_type, expected, url)
        if expected is not None and expected == ref:
            raise IntegrityError(f"cannot verify manifest {ref} of {reference}: unsupported digest algorithm",
                                 reference=reference, digest=ref, hint="use a sha256 or sha512 digest")
        return FetchedManifest(raw, media_type, digest_bytes(raw), url)

    def open_blob(self, repository: str, digest: str, size: int | None, *, reference: str | None = None,
                  progress: Progress | None = None) -> ResumableBody:
        """The blob's raw bytes, requested at once (errors raise here), resumable; unverified: wrap it."""
        return ResumableBody(self.session, f"/v2/{repository}/blobs/{digest}", digest=digest, size=size,
                             scopes=(pull_scope(repository),), reference=reference, progress=progress).start()

    def close(self) -> None:
        """Close the connections."""
        self.session.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
