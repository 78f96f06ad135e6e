"""Images in the local Docker or Podman engine (``docker-daemon:NAME``, skopeo's transport name, and
``podman:NAME``), read through the engine's HTTP API.

The engine is asked first for the image (inspect: its ID, which is its config's digest, and its layers'
diff_ids). An image analysed before, whose config and layer scans are all in the cache, needs nothing more:
the inspect names the same ID only while the tag still points at the same build, so a rebuilt tag is read
afresh, never served stale. Otherwise the engine exports the image (``docker save`` over the API) and the
archive is read as it streams (``StreamStorage``): each layer is scanned while its bytes arrive. The layers'
bytes are not kept: an engine's layers are uncompressed and large, writing them costs more than the rest of
the analysis, and the engine can export them again. ``extract()`` does so once, keeping them in the blob cache
by digest this time (``ocilens cache prune`` reclaims them); the config is kept, and the scans.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .. import warmup
from ..cache import BlobStore, CachedBlobReader, ScanCache, cache_dir
from ..errors import ImageNotFound, ImageReferenceError, IntegrityError, UnsupportedImage
from ..manifest import DOCKER_CONFIG, Descriptor, ImageManifest, parse_json
from ..platform import Platform
from .base import Source
from .docker_archive import DockerArchiveSource

__all__ = ["EngineSource", "ENGINES", "RECORD_FORMAT"]

#: transport name -> the engine that serves it
ENGINES = {"docker-daemon": "docker", "podman": "podman"}
#: The format of the engine records (`engine/v<N>/`); `ocilens cache prune` removes the records of other formats.
RECORD_FORMAT = 1
#: What the next read of a blob whose cached copy was corrupt (and removed) does.
_REEXPORT = "the next read exports the image from the engine again"


class EngineSource(Source):
    """One image of a local engine: ``name`` is ``NAME[:TAG]``, ``NAME@sha256:...``, an image ID or a short ID."""

    def __init__(self, reference: str, transport: str, name: str, *, cache: BlobStore | None = None,
                 progress: Callable[..., None] | None = None, env: dict[str, str] | None = None) -> None:
        from ..engine.client import EngineClient

        super().__init__(reference)
        if not name:
            raise ImageReferenceError(f"{reference!r}: the {transport}: transport needs an image name",
                                      reference=reference, hint=f"write {transport}:NAME[:TAG] or {transport}:IMAGE_ID")
        self.transport = transport
        self.engine = ENGINES[transport]
        self.name = name
        self.store = cache if cache is not None else BlobStore()
        self.progress = progress
        self.client = EngineClient.for_engine(self.engine, env)  # type: ignore[arg-type]
        self._archive: DockerArchiveSource | None = None
        self._archive_layers: frozenset[str] = frozenset()  # the layer digests of the export in _archive
        self._image_id: str | None = None
        self._lock = threading.Lock()  # one export at a time (extract reads layers from several threads)

    # --- the engine ------------------------------------------------------------------------------------

    def _inspect(self) -> dict[str, Any]:
        info = self.client.inspect(self.name, reference=self.reference)
        image_id = info.get("Id")
        if not isinstance(image_id, str) or not image_id:
            raise UnsupportedImage(f"{self.reference}: the {self.engine} engine's inspect has no image Id",
                                   reference=self.reference)
        self._image_id = image_id if ":" in image_id else f"sha256:{image_id}"
        return info

    def _exported(self, *, keep_layers: bool = False, need: str | None = None) -> DockerArchiveSource:
        """The image as the engine exports it, read once as it streams, layers scanned on the way; their bytes
        are kept (in the blob cache) only when asked for (``extract``), since another export can give them.
        ``need``: a blob that must be in the blob cache; an export that kept it, but whose copy is gone since
        (evicted as corrupt, pruned), is made again."""
        with self._lock:
            return self._export_once(keep_layers, need)

    def _export_once(self, keep_layers: bool, need: str | None = None) -> DockerArchiveSource:
        kept = self._archive is not None and self._archive.storage.keep_layers  # type: ignore[attr-defined]
        # a layer the kept export wrote into the blob cache, removed since: only another export gives it again
        lost = need is not None and need in self._archive_layers and not self.store.has(need)
        if self._archive is None or keep_layers and (not kept or lost):
            from .stream import StreamStorage

            assert self._image_id is not None
            on_bytes = None
            if self.progress is not None:
                done = [0]

                def on_bytes(n: int) -> None:
                    done[0] += n
                    self.progress("download", digest=self._image_id, done=done[0], total=None)  # type: ignore[misc]
            with self.client.export(self._image_id, reference=self.reference, sent=warmup.start) as stream:
                storage = StreamStorage(stream, self.reference, store=self.store, on_bytes=on_bytes,
                                        what=f"the {self.engine} engine's export of {self.name}",
                                        keep_layers=keep_layers)
            if self._archive is not None:
                self._archive.close()
            self._archive = DockerArchiveSource(self.reference, None, None, storage=storage)
            manifest = self._archive.resolve(None)  # maps digests to members
            self._archive_layers = frozenset(d.digest for d in manifest.layers)
        return self._archive

    # --- a record of what the export said, so an unchanged image needs no export -------------------------

    def _record_path(self) -> Path:
        assert self._image_id is not None
        return cache_dir() / "engine" / f"v{RECORD_FORMAT}" / f"{self._image_id.replace(':', '-')}.json"

    def _remember(self, manifest: ImageManifest) -> None:
        """Keep the manifest of this image ID (the config is in the blob cache already)."""
        record = {"manifest": manifest.raw.decode("utf-8", "surrogateescape"), "media_type": manifest.media_type,
                  "config": [manifest.config.digest, manifest.config.size],
                  "layers": [[d.media_type, d.digest, d.size] for d in manifest.layers]}
        path = self._record_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.partial")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache costs an export next time, nothing else

    def _recalled(self) -> ImageManifest | None:
        """The manifest of this image ID from an earlier export, if its config and every layer's scan are
        still cached (else None: the image is exported)."""
        try:
            record = json.loads(self._record_path().read_text())
            config = Descriptor(DOCKER_CONFIG, record["config"][0], int(record["config"][1]))
            layers = tuple(Descriptor(mt, d, int(size)) for mt, d, size in record["layers"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        scans = ScanCache()
        if config.digest != self._image_id or not self.store.has(config.digest) or \
                not all(scans.path(d.digest).is_file() for d in layers):
            return None
        raw = record["manifest"].encode("utf-8", "surrogateescape")
        return ImageManifest(raw=raw, digest=None, media_type=record["media_type"], config=config, layers=layers,
                             json=parse_json(raw, "manifest"))

    # --- Source --------------------------------------------------------------------------------------

    def resolve(self, platform: Platform | None = None) -> ImageManifest:
        info = self._inspect()
        actual = Platform.from_json({"os": info.get("Os"), "architecture": info.get("Architecture"),
                                     "variant": info.get("Variant")})
        if platform is not None and actual is not None and not platform.serves(actual):
            raise ImageNotFound(f"{self.reference} is a {actual} image, not {platform}", reference=self.reference,
                                hint="an engine holds one platform per image name; pull the one you want "
                                     f"(docker pull --platform {platform} NAME) or leave the platform out")
        manifest = self._recalled()
        if manifest is None:
            manifest = self._exported().resolve(platform)
            if manifest.config.digest != self._image_id:
                raise UnsupportedImage(f"{self.reference}: the engine exported the config {manifest.config.digest}"
                                       f" for the image {self._image_id}", reference=self.reference,
                                       hint="the image changed during the export; run again")
            self._keep_config(manifest.config)
            self._remember(manifest)
        return manifest

    def _keep_config(self, desc: Descriptor) -> None:
        """The config into the blob cache (it was read from the export, and verified), for the next time."""
        if self.store.has(desc.digest) or self._archive is None:
            return
        data = self._archive.read_blob(desc)
        try:
            writer = self.store.writer(desc.digest)
        except OSError:
            return
        try:
            writer.write(data)
            writer.commit()
        except OSError:
            writer.abort()

    def read_blob(self, desc: Descriptor) -> bytes:
        """A whole blob (the config): from the blob cache, else from an export; a corrupt cached copy is
        removed and the blob read from an export (and kept) at once, as the registry source fetches an evicted
        manifest again."""
        if self.store.has(desc.digest):
            try:
                with self.open_blob(desc) as f:
                    return f.read()
            except IntegrityError as exc:
                if not exc.evicted:
                    raise
                data = self._exported().read_blob(desc)
                self._keep_config(desc)
                return data
        return self._exported().read_blob(desc)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """From the blob cache (an export that kept its layers put them there), re-verified as it is read (a
        corrupt copy is removed: the next call exports again), else from an export that keeps them."""
        if self.store.has(desc.digest):
            try:
                return CachedBlobReader(self.store, desc, self.reference, then=_REEXPORT,  # type: ignore[return-value]
                                        what=f"{self.reference}: cached layer")
            except FileNotFoundError:
                pass  # removed since has() (a prune, another reader's eviction): export it again
        return self._exported(keep_layers=True, need=desc.digest).open_blob(desc)

    def prescanned(self, desc: Descriptor) -> "Any":
        return self._archive.prescanned(desc) if self._archive is not None else None

    def check_blob(self, desc: Descriptor) -> None:
        """A cached scan stands for a layer of the image just inspected: nothing more to check."""

    def platforms(self) -> list[Platform]:
        info = self._inspect()
        plat = Platform.from_json({"os": info.get("Os"), "architecture": info.get("Architecture"),
                                   "variant": info.get("Variant")})
        return [plat] if plat is not None else []

    def close(self) -> None:
        self.client.close()
        if self._archive is not None:
            self._archive.close()

