"""Images in an OCI / Docker registry (skopeo's ``docker://`` transport), pulled through the blob cache.

Blobs are served from the cache when present (re-verified as they are read), else streamed from the
registry while being teed into the cache; the cache entry is committed only once the stream has been
verified, so a layer can be scanned while it downloads and nothing half-downloaded is ever cached.
Manifests are cached by digest too, so an image pulled before by digest loads offline.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping

import httpx

from ..cache import AtomicBlobWriter, BlobStore, CachedBlobReader
from ..digest import VerifiedReader
from ..errors import IntegrityError, RegistryError, RegistryNotFound, RegistryUnavailable
from ..index import list_platforms, resolve_manifest
from ..manifest import INDEX_TYPES, MANIFEST_TYPES, Descriptor, ImageManifest, index_entries, media_type_of, parse_json
from ..platform import Platform
from ..reference import Reference, ambiguity_hint, parse_reference
from ..registry.client import RegistryClient, is_digest
from ..registry.responses import add_hint
from ..registry.retry import RetryPolicy
from ..registry.session import CredentialsArg
from .base import Source

__all__ = ["RegistrySource", "TRANSPORT_PREFIX"]

TRANSPORT_PREFIX = "docker://"
ProgressFn = Callable[..., None]
#: What the next read of a blob whose cached copy was corrupt (and removed) does.
_REFETCH = "the next read fetches the blob from the registry"


class _CachingReader(VerifiedReader):
    """A network blob verified as it is read and teed into the cache; committed only once verified."""

    def __init__(self, raw: BinaryIO, desc: Descriptor, writer: AtomicBlobWriter | None, *, reference: str,
                 url: str) -> None:
        super().__init__(raw, desc.digest, desc.size, what=f"{reference} blob")
        self._writer = writer
        self._reference = reference
        self._url = url

    def _account(self, data: bytes) -> None:
        super()._account(data)
        if self._writer is not None:
            try:
                self._writer.write(data)
            except OSError as exc:  # a full disk costs the cache entry, not the analysis
                warnings.warn(f"ocilens: not caching {self._digest}: {exc}", stacklevel=2)
                self._discard()

    def _finish(self) -> None:
        if self._done:
            return
        super()._finish()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.commit()
            except OSError as exc:
                writer.abort()
                warnings.warn(f"ocilens: not caching {self._digest}: {exc}", stacklevel=2)

    def read(self, n: int = -1) -> bytes:
        try:
            return super().read(n)
        except IntegrityError as exc:
            self._discard()
            exc.reference = self._reference
            exc.add_note(f"downloaded from {self._url}; nothing was cached")
            raise
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()

    def close(self) -> None:
        self._discard()
        super().close()


class RegistrySource(Source):
    """One image reference in a registry: ``host[:port]/repo[:tag][@digest]``, or a Docker Hub name.

    ``auth`` is ``(user, password)`` (else docker's config is consulted when the registry asks),
    ``insecure`` allows plain HTTP / unverified TLS (``None``: loopback and $OCILENS_INSECURE_REGISTRIES
    only), ``progress(event, **info)`` is called from download threads with ``"download"`` (``digest``,
    ``done``, ``total`` bytes) as bytes arrive and ``"cached"`` (``digest``, ``total``) for cache hits.
    ``retry``, ``transport`` and ``timeout`` tune or replace the HTTP layer (tests, proxies).
    """

    transport = "docker"

    def __init__(self, reference: str | Reference, *, auth: CredentialsArg = None, insecure: bool | None = None,
                 cache: BlobStore | None = None, progress: ProgressFn | None = None, max_workers: int = 4,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 timeout: float | httpx.Timeout | None = None) -> None:
        if isinstance(reference, str) and reference.startswith(TRANSPORT_PREFIX):
            reference = reference[len(TRANSPORT_PREFIX):]
        self.ref = parse_reference(reference)
        #: Why the reference may not mean what was meant (``host:port`` without a repository, ``UPPER/x``).
        self.ambiguity = ambiguity_hint(reference) if isinstance(reference, str) else None
        #: The name as typed, when it was a bare name: the local engine may have an image of that name.
        self.typed = reference if isinstance(reference, str) else None
        super().__init__(str(self.ref))
        self.cache = cache if cache is not None else BlobStore()
        self.progress = progress
        self.max_workers = max(1, int(max_workers))
        self._client_kw: dict[str, Any] = dict(auth=auth, insecure=insecure, retry=retry, transport=transport,
                                               timeout=timeout, max_connections=max(16, 2 * self.max_workers))
        self._client: RegistryClient | None = None
        self._lock = threading.Lock()
        self._top: tuple[bytes, str, str] | None = None
        #: The digest of the image manifest chosen by the last ``resolve``.
        self.digest: str | None = None

    # --- plumbing ------------------------------------------------------------------------------------

    @property
    def client(self) -> RegistryClient:
        """The registry client, created on first use (an image cached by digest needs no network)."""
        with self._lock:
            if self._client is None:
                self._client = RegistryClient(self.ref.registry, **self._client_kw)
            return self._client

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """Registry errors for an ambiguous reference carry the hint of how docker's grammar read it; a
        reference the registry does not have, or a registry out of reach, names the local engine's image of
        that name when there is one (a bare name stays a registry reference, as in docker)."""
        try:
            yield
        except RegistryError as exc:
            if self.ambiguity and self.ambiguity not in (exc.hint or ""):
                add_hint(exc, self.ambiguity)
            if isinstance(exc, (RegistryNotFound, RegistryUnavailable)):
                local = self._in_local_engine()
                if local:
                    add_hint(exc, f"the local {local[0]} engine has an image {self.typed!r}: load {local[1]}")
            raise

    def _in_local_engine(self) -> tuple[str, str] | None:
        """``(engine, reference)`` of a local engine's image named as this reference was typed, or None."""
        if not self.typed:
            return None
        from ..engine.client import has_image

        for engine, transport in (("docker", "docker-daemon"), ("podman", "podman")):
            if has_image(engine, self.typed):  # type: ignore[arg-type]
                return engine, f"{transport}:{self.typed}"
        return None

    def _emit(self, event: str, **info: Any) -> None:
        if self.progress is not None:
            self.progress(event, **info)

    def _store(self, digest: str, raw: bytes) -> None:
        """Cache a verified manifest under its digest; a read-only cache only costs speed."""
        if self.cache.has(digest):
            return
        try:
            writer = self.cache.writer(digest)
        except OSError:
            return
        try:
            writer.write(raw)
            writer.commit()
        except OSError:
            writer.abort()

    def _manifest(self, ref: str, *, size: int | None = None) -> tuple[bytes, str, str]:
        """``(bytes, media type, digest)`` of a manifest or index: cached by digest, else fetched and cached."""
        if is_digest(ref) and ref.partition(":")[0] in ("sha256", "sha512") and self.cache.has(ref):
            desc = Descriptor("", ref, size if size is not None else -1)
            try:
                with CachedBlobReader(self.cache, desc, str(self.ref), then=_REFETCH) as f:
                    raw = f.read()
                obj = parse_json(raw, f"cached manifest {ref}")
                return raw, media_type_of(obj) if isinstance(obj, dict) else "", ref
            except (IntegrityError, FileNotFoundError):
                pass  # evicted by CachedBlobReader (or pruned meanwhile): fetch it again
        fetched = self.client.manifest(self.ref.repository, ref, reference=str(self.ref), size=size)
        self._store(fetched.digest, fetched.raw)
        return fetched.raw, fetched.media_type, fetched.digest

    def _top_manifest(self) -> tuple[bytes, str, str]:
        """What the reference names (an image manifest or an index), fetched once per source."""
        if self._top is None:
            self._top = self._manifest(self.ref.pinned)
        return self._top

    def _top_descriptor(self) -> Descriptor:
        """The descriptor of what the reference names; its media type only when the registry gave a known one (the
        document's own ``mediaType`` decides otherwise)."""
        raw, media_type, digest = self._top_manifest()
        known = media_type if media_type in MANIFEST_TYPES + INDEX_TYPES else ""
        return Descriptor(known, digest, len(raw))

    def _fetch(self, desc: Descriptor) -> bytes:
        """A manifest or index by descriptor, verified: the top one as fetched, others from the cache or registry."""
        raw, _, digest = self._top_manifest()
        if desc.digest == digest:
            return raw
        return self._manifest(desc.digest, size=desc.size)[0]

    def _entries(self, obj: Mapping[str, Any], what: str) -> list[Descriptor]:
        """The descriptors of an index document, as every source reads them (``index_entries``)."""
        return index_entries(obj, where=what, reference=str(self.ref))

    # --- Source --------------------------------------------------------------------------------------

    def resolve(self, platform: Platform | str | None = None) -> ImageManifest:
        """The image manifest for this reference (an index is resolved by ``platform``), verified."""
        plat = Platform.parse(platform, reference=str(self.ref)) if platform is not None else None
        with self._explained():
            manifest = resolve_manifest(self._fetch, self._top_descriptor(), plat, what=str(self.ref),
                                        reference=str(self.ref))
        self.digest = manifest.digest
        return manifest

    def platforms(self) -> list[Platform]:
        """The platforms an index offers (nested indexes followed), or the single image's (from its config)."""
        with self._explained():
            return list_platforms(self._fetch, self._top_descriptor(), what=str(self.ref), reference=str(self.ref),
                                  read_config=self.read_blob)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """The blob, verified as it is read: from the cache if there, else streamed and cached once verified."""
        if self.cache.has(desc.digest):
            try:
                cached = CachedBlobReader(self.cache, desc, str(self.ref), then=_REFETCH)
            except FileNotFoundError:
                pass  # removed since has() (a prune, another reader's eviction): download it
            else:
                self._emit("cached", digest=desc.digest, total=desc.size)
                return cached  # type: ignore[return-value]
        with self._explained():
            body = self.client.open_blob(self.ref.repository, desc.digest, desc.size, reference=str(self.ref),
                                         progress=self.progress)
        try:
            writer: AtomicBlobWriter | None = self.cache.writer(desc.digest)
        except OSError as exc:
            warnings.warn(f"ocilens: blob cache {self.cache.root} is not writable ({exc}); not caching",
                          stacklevel=2)
            writer = None
        url = self.client.session.url(f"/v2/{self.ref.repository}/blobs/{desc.digest}")
        return _CachingReader(body, desc, writer, reference=str(self.ref), url=url)  # type: ignore[arg-type,return-value]

    def prefetch(self, descs: Iterable[Descriptor]) -> list[Path]:
        """Download several blobs into the cache in parallel (at most ``max_workers`` threads); their paths.

        The first failure cancels what has not started and is raised once running downloads end.
        """
        unique = list({d.digest: d for d in descs}.values())
        todo = [d for d in unique if not self.cache.has(d.digest)]

        def pull(desc: Descriptor) -> None:
            with self.open_blob(desc) as stream:
                stream.drain()  # type: ignore[attr-defined]

        if todo:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(todo)),
                                    thread_name_prefix="ocilens-pull") as pool:
                futures = [pool.submit(pull, d) for d in todo]
                try:
                    for future in as_completed(futures):
                        future.result()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        return [self.cache.path(d.digest) for d in unique]

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

