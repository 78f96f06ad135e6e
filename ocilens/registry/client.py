"""The registry API ocilens uses: manifests (negotiated and verified), blobs (streamed, resumable), and the
catalog and tag lists (paginated) that a fleet audit enumerates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx

from ..digest import digest_bytes
from ..errors import DigestMismatch, IntegrityError, RegistryError, SizeMismatch
from ..manifest import ACCEPT_MANIFESTS
from .auth import pull_scope
from .blobs import Progress, ResumableBody
from .retry import RetryPolicy
from .session import API_VERSION_HEADER, CredentialsArg, RegistrySession

__all__ = ["RegistryClient", "FetchedManifest", "MAX_MANIFEST_BYTES", "MAX_LIST_BYTES"]

#: The distribution spec asks registries to accept manifests of at least 4 MiB; nothing larger is read.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: A catalog or tag-list page read whole is capped too (a page of 10,000 long names is well under this).
MAX_LIST_BYTES = 16 * 1024 * 1024
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_SUPPORTED = ("sha256", "sha512")


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index as served: its bytes, the Content-Type, and the digest they were checked against."""

    raw: bytes
    media_type: str
    digest: str
    url: str


_LINK_RE = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def _next_link(values: list[str]) -> str | None:
    """The URL of an RFC 8288 ``Link`` header value whose ``rel`` is ``next`` (None when there is none)."""
    for value in values:
        for m in _LINK_RE.finditer(value):
            for param in m.group(2).split(";"):
                name, _, val = param.strip().partition("=")
                if name.strip().lower() == "rel" and "next" in val.strip().strip('"').lower().split():
                    return m.group(1).strip()
    return None


def _looks_like_manifest(raw: bytes) -> bool:
    """True for a JSON object with a manifest's or index's fields (the test for answers without the API header)."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(obj, dict) and any(k in obj for k in ("schemaVersion", "mediaType", "manifests", "layers"))


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
        if not resp.headers.get(API_VERSION_HEADER) and not _looks_like_manifest(raw):
            odd = self.session.not_a_registry(
                what="manifest", reference=reference,
                answer=f"the manifest request got HTTP {resp.status_code} {media_type or 'without a Content-Type'}, "
                       "not a manifest")
            if odd is not None:
                raise odd
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

    def catalog(self, *, page_size: int | None = None) -> list[str]:
        """Every repository name the registry lists (``GET /v2/_catalog``), all pages followed.

        Pages follow the ``Link: <...>; rel="next"`` header (``n`` and ``last``); ``page_size`` asks for
        ``n`` names per page (the registry may cap it). Needs the ``registry:catalog:*`` scope where the
        registry authenticates; Docker Hub and most hosted registries do not offer a catalog at all.
        """
        return self._paged("/v2/_catalog", "repositories", page_size, scopes=("registry:catalog:*",),
                           what="catalog", reference=self.registry)

    def tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of ``repository`` (``GET /v2/<name>/tags/list``), all pages followed."""
        return self._paged(f"/v2/{repository}/tags/list", "tags", page_size, scopes=(pull_scope(repository),),
                           what="tag list", reference=f"{self.registry}/{repository}")

    def _paged(self, path: str, key: str, page_size: int | None, *, scopes: tuple[str, ...], what: str,
               reference: str) -> list[str]:
        out: list[str] = []
        seen_urls: set[str] = set()
        params: list[tuple[str, str]] | None = [("n", str(page_size))] if page_size else None
        target: str = path
        while True:
            resp, raw = self.session.fetch("GET", target, params=params, scopes=scopes, what=what,
                                           reference=reference, limit=MAX_LIST_BYTES)
            url = str(resp.request.url)
            try:
                obj = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if not resp.headers.get(API_VERSION_HEADER):
                    odd = self.session.not_a_registry(what=what, reference=reference,
                                                      answer=f"the {what} answer is not JSON")
                    if odd is not None:
                        raise odd from None
                raise RegistryError(f"{what} of {reference}: the answer from {url} is not JSON ({exc})",
                                    reference=reference, url=url, status=resp.status_code) from None
            names = obj.get(key) if isinstance(obj, dict) else None
            if names is None:
                names = []  # distribution answers {"name": ..., "tags": null} for a repository without tags
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise RegistryError(f"{what} of {reference}: {key!r} in the answer from {url} is not a list of "
                                    f"names", reference=reference, url=url, status=resp.status_code)
            out.extend(names)
            nxt = _next_link(resp.headers.get_list("link"))
            if nxt is None or not names:
                break
            # The next page, relative to this one; its own query (n, last) replaces ours.
            absolute = str(resp.request.url.join(nxt))
            if absolute in seen_urls:
                break  # a registry that links a page to itself would loop forever
            seen_urls.add(absolute)
            parts = urlsplit(absolute)
            target = absolute.split("?", 1)[0]
            params = parse_qsl(parts.query, keep_blank_values=True) or None
        return list(dict.fromkeys(out))  # a page boundary moved by a concurrent push may repeat a name

    def close(self) -> None:
        """Close the connections."""
        self.session.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
