"""The two steps every analysis starts with, written once: resolve an image with its checks, and get the
scans of its layers (from the scan cache or by reading the blobs).

``ocilens.load`` calls them for one image; ``ocilens.audit`` calls the same functions for each image of a
fleet (and ``scan_layer_cached`` for each distinct layer, wherever its backend runs it), so a rule added
here holds for both. See docs/architecture.md.
"""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, MutableMapping

from .cache import ScanCache
from .cpus import usable_cpus
from .errors import DigestMismatch, ImageNotFound, IntegrityError, UnsupportedImage
from .manifest import Descriptor, ImageManifest, parse_json
from .platform import Platform
from .scan import LayerScan, scan_layer
from .sources import Source, open_source

__all__ = ["ResolvedImage", "open_image", "resolve_image", "known_scan", "scan_layer_cached", "scan_layers",
           "check_diff_ids", "check_platform"]

ProgressCallback = Callable[..., None]


@dataclass(frozen=True)
class ResolvedImage:
    """An image chosen and checked, before any layer is read: its source, manifest and parsed config."""

    source: Source
    manifest: ImageManifest
    config: dict[str, Any]
    config_raw: bytes

    @property
    def reference(self) -> str:
        return self.source.reference


def open_image(ref: Any, platform: Platform | None = None, **source_options: Any) -> ResolvedImage:
    """Open the source for ``ref`` and resolve it (``resolve_image``); the source is closed on failure."""
    source = open_source(ref, **source_options)
    try:
        return resolve_image(source, platform)
    except BaseException:
        source.close()
        raise


def resolve_image(source: Source, platform: Platform | None = None) -> ResolvedImage:
    """The manifest for ``platform`` and its config, checked: the config is a JSON object, and an image asked
    for by platform is that platform."""
    ref = source.reference
    manifest = source.resolve(platform)
    config_raw = source.read_blob(manifest.config)
    config = parse_json(config_raw, f"{ref}: config {manifest.config.digest}")
    if not isinstance(config, dict):
        raise UnsupportedImage(f"{ref}: the config {manifest.config.digest} is a JSON {type(config).__name__}, "
                               "not an object", reference=ref,
                               hint="the image is damaged or not a container image; push or copy it again")
    if platform is not None:
        check_platform(ref, platform, config)
    return ResolvedImage(source, manifest, config, config_raw)


def check_platform(ref: str, wanted: Platform, config: dict[str, Any]) -> None:
    """An image asked for by platform must be that platform, as docker and containerd refuse a single-platform
    image (or an index entry whose config says otherwise) that is not what was asked for."""
    actual = Platform.from_json(config)
    # a config that does not give its variant is the one the index entry gave, and chose
    if actual is None or wanted.serves(actual, variant_given=bool(config.get("variant"))):
        return
    raise ImageNotFound(f"{ref} is a {actual} image, not {wanted}", reference=ref,
                        hint="ask for its own platform, or name the multi-platform index (a tag or digest) that "
                             f"offers {wanted}")


def check_diff_ids(ref: str, config: dict[str, Any], scans: list[LayerScan]) -> None:
    """Each layer's uncompressed digest must be the config's ``rootfs.diff_ids`` entry, as runtimes check."""
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    if diff_ids and len(diff_ids) != len(scans):
        raise UnsupportedImage(f"{ref}: the config lists {len(diff_ids)} diff_ids for {len(scans)} layers",
                               reference=ref, hint="the manifest and config do not belong together")
    for i, (want, scan) in enumerate(zip(diff_ids, scans)):
        if scan.diff_id and want != scan.diff_id:
            raise DigestMismatch(f"{ref}: layer {i} ({scan.digest}) uncompresses to {scan.diff_id}, but the "
                                 f"config's diff_id is {want}", reference=ref, digest=str(want), actual=scan.diff_id,
                                 hint="the config does not describe this layer; the image is corrupt")


def known_scan(source: Source, desc: Descriptor, cache: ScanCache | None,
               memo: MutableMapping[str, LayerScan] | None = None) -> LayerScan | None:
    """The scan of the layer ``desc`` that needs no read of its blob, or None: the one the source made while
    it streamed the blob (kept in ``cache``), or a cached one. A cached scan stands for its blob, so the blob
    must still be there, whole (``Source.check_blob`` raises what reading it would). ``memo`` holds scans
    already read from the cache, so a fleet unpickles each layer once; the blob is checked every time."""
    scan = source.prescanned(desc)
    if scan is not None:
        if cache is not None:
            cache.put(desc.digest, scan)
    elif cache is None:
        return None
    else:
        scan = memo.get(desc.digest) if memo is not None else None
        if scan is None:
            got = cache.get(desc.digest)
            if not (isinstance(got, LayerScan) and got.digest == desc.digest):
                return None
            scan = got
        source.check_blob(desc)
    if memo is not None:
        memo[desc.digest] = scan
    return scan


def scan_layer_cached(source: Source, desc: Descriptor, index: int, cache: ScanCache | None,
                      on_bytes: Callable[[int], None] | None = None) -> LayerScan:
    """Read and scan one layer blob, and cache the scan; a corrupt copy in the blob cache (removed as it was
    read) is read once more, from the source."""
    try:
        scan = scan_layer(source, desc, index, on_bytes)
    except IntegrityError as exc:
        if not exc.evicted:
            raise
        scan = scan_layer(source, desc, index, on_bytes)
    if cache is not None:
        cache.put(desc.digest, scan)
    return scan


def scan_layers(source: Source, manifest: ImageManifest, cache: ScanCache | None,
                progress: ProgressCallback | None = None, workers: int | None = None) -> list[LayerScan]:
    """The scans of an image's layers, in layer order: cached ones from ``cache``, the others read in
    parallel (largest blobs first); the first failure in layer order is raised, and layers not started by
    then are not read at all."""
    descs = manifest.layers
    scans: list[LayerScan | None] = [None] * len(descs)
    todo: list[int] = []
    for i, d in enumerate(descs):
        cached = known_scan(source, d, cache)
        if cached is not None:
            scans[i] = cached
            if progress:
                progress("layer_done", index=i, digest=d.digest, size=d.size, entries=cached.members, cached=True)
        else:
            todo.append(i)

    def run(i: int) -> LayerScan:
        d = descs[i]
        on_bytes = None
        if progress:
            progress("layer_start", index=i, digest=d.digest, size=d.size)
            done = [0]

            def on_bytes(n: int) -> None:
                done[0] += n
                progress("layer_bytes", index=i, digest=d.digest, done=done[0], total=d.size)
        scan = scan_layer_cached(source, d, i, cache, on_bytes)
        if progress:
            progress("layer_done", index=i, digest=d.digest, size=d.size, entries=scan.members, cached=False)
        return scan

    if todo:
        n = workers or min(len(todo), usable_cpus())
        if n <= 1 or len(todo) == 1:
            for i in todo:
                scans[i] = run(i)
        else:
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="ocilens-scan") as pool:
                # largest blobs first, so that no big layer starts last and runs alone at the end
                started = {i: pool.submit(run, i) for i in sorted(todo, key=lambda i: -descs[i].size)}
                try:
                    wait(started.values(), return_when=FIRST_EXCEPTION)
                finally:  # a failure or Ctrl-C: the layers not started yet are not read at all
                    for future in started.values():
                        future.cancel()
                for i in todo:  # the first failure in layer order among those that ran, else every scan
                    future = started[i]
                    if future.done() and not future.cancelled() and future.exception() is not None:
                        raise future.exception()  # type: ignore[misc]
                for i in todo:
                    scans[i] = started[i].result()
    return scans  # type: ignore[return-value]
