"""``ocilens.audit``: many images at once, each distinct layer downloaded and scanned once.

The driver (this process) enumerates the references, resolves every manifest and config (threads: small
requests), dedupes the layers by digest, and hands each layer that no scan cache holds to a backend as
one task. As scans come back, every image whose layers are all there is assembled here exactly as
``ocilens.load`` assembles it (the same ``Image`` class, the same diff_id check), summarized, and let go;
a scan is dropped as soon as no image still waits for it. Failures are rows, never exceptions.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

from ..cache import ScanCache, cache_dir
from ..manifest import Descriptor, ImageManifest
from ..pipeline import check_diff_ids, known_scan, open_image
from ..platform import Platform
from ..scan import LayerScan
from .execute import Backend, ProcessBackend, backend_for
from .progress import fleet_progress
from .refs import expand
from .worker import ScanResult, ScanTask, origin_of

if TYPE_CHECKING:

    from ..image import Image
    from .report import FleetReport

__all__ = ["audit", "FleetAudit", "IMAGE_COLUMNS", "LAYER_COLUMNS", "ERROR_COLUMNS"]

IMAGE_COLUMNS = {
    "reference": "string", "digest": "string", "image_id": "string", "platform": "string",
    "layers": "Int64", "compressed_size": "Int64", "uncompressed_size": "Int64",
    "shipped_bytes": "Int64", "visible_bytes": "Int64", "wasted_bytes": "Int64", "efficiency": "Float64",
    "shipped_download_bytes": "Int64", "visible_download_bytes": "Int64", "wasted_download_bytes": "Int64",
    "duplicate_bytes": "Int64", "junk_bytes": "Int64",
    "dive_efficiency": "Float64", "dive_wasted_bytes": "Int64", "dive_user_wasted_percent": "Float64",
    "top_cause": "string", "top_cause_layer": "Int16", "top_cause_created_by": "string",
    "top_cause_bytes": "Int64", "top_fix_kind": "string", "top_fix": "string", "top_fix_download_bytes": "Int64",
    "advice_download_bytes": "Int64", "shared_layers": "Int64", "unique_bytes": "Int64",
    "error_type": "string", "error": "string",
}
LAYER_COLUMNS = {
    "digest": "string", "media_type": "string", "compression": "string", "compressed_size": "Int64",
    "uncompressed_size": "Int64", "entries": "Int64", "images": "Int64", "repositories": "Int64",
    "first_image": "string", "first_index": "Int16", "created_by": "string", "wasted_bytes": "Int64",
    "waste_made": "Int64", "images_with_waste": "Int64", "status": "string", "error_type": "string",
    "error": "string", "worker": "string", "seconds": "Float64",
}
ERROR_COLUMNS = {"reference": "string", "stage": "string", "error_type": "string", "message": "string",
                 "digest": "string", "layer": "Int16"}
#: Columns that say how and where the work ran, not what was found: they differ between runs and backends.
RUN_COLUMNS = ("status", "worker", "seconds")


def _frame(rows: list[dict[str, Any]], schema: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.array([r.get(c) for r in rows], dtype=t) for c, t in schema.items()})


@dataclass
class _Member:
    """One image of the fleet: as resolved, then as audited."""

    reference: str
    manifest: ImageManifest | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_raw: bytes = b""
    source: Any = None
    error: tuple[str, str, str, str | None, int | None] | None = None  # stage, type, message, digest, layer
    row: dict[str, Any] | None = None
    events: pd.DataFrame | None = None
    done: bool = False


@dataclass
class _Layer:
    desc: Descriptor
    first: int  # index of the first image holding it (input order)
    index: int  # its layer index there
    users: list[int] = field(default_factory=list)  # images holding it (an image once)
    locators: list[str] = field(default_factory=list)
    status: str = "pending"
    result: ScanResult | None = None
    info: dict[str, Any] = field(default_factory=dict)  # sizes and counts kept after the scan is let go
    waste: int = 0
    made: int = 0
    with_waste: int = 0
    created_by: dict[int, str | None] = field(default_factory=dict)


def _scan_info(scan: LayerScan) -> dict[str, Any]:
    return {"compression": scan.format, "uncompressed_size": scan.uncompressed_size, "entries": scan.members}


def _error_of(stage: str, exc: BaseException, digest: str | None = None,
              layer: int | None = None) -> tuple[str, str, str, str | None, int | None]:
    return stage, type(exc).__name__, str(exc) or repr(exc), digest, layer


def _resolve(ref: str, platform: Platform | None, options: dict[str, Any], cache: ScanCache | None,
             memo: dict[str, LayerScan]) -> _Member:
    """Resolve the image and check its cached layer scans exactly as ``load`` does (``ocilens.pipeline``);
    the scans found go into ``memo``. The source is closed (a registry source re-opens lazily, should the
    Image need it again)."""
    from ..sources import options_for

    member = _Member(ref)
    try:
        resolved = open_image(ref, platform, **options_for(ref, options))
    except Exception as exc:  # noqa: BLE001 - a bad reference is one image's problem
        member.error = _error_of("resolve", exc)
        return member
    source = resolved.source
    try:
        for j, desc in enumerate(resolved.manifest.layers):
            try:
                known_scan(source, desc, cache, memo)
            except Exception as exc:  # noqa: BLE001 - a cached scan whose blob is gone: as load() fails
                member.error = _error_of("scan", exc, desc.digest, j)
                return member
        member.manifest, member.config, member.config_raw = resolved.manifest, resolved.config, resolved.config_raw
        member.source = source
    finally:
        source.close()
    return member


#: Analysed images kept per layer stack, for the fleet's images with the same layers (tags of one build).
SHARED_STACKS = 16


def _assemble(member: _Member, scans: list[LayerScan], stacks: dict[tuple[str, ...], "Image"] | None = None
              ) -> "Image":
    """The image as ``load`` makes it; one with the stack of an image analysed before shares its results."""
    from ..image import Image

    assert member.manifest is not None
    check_diff_ids(member.reference, member.config, scans)
    stack = tuple(d.digest for d in member.manifest.layers)
    twin = stacks.get(stack) if stacks is not None else None
    img = Image(member.source, member.manifest, member.config, member.config_raw, scans, same_layers_as=twin)
    if twin is not None:
        stacks[stack] = stacks.pop(stack)  # type: ignore[index] - most recently used last
    else:
        img.assembly  # noqa: B018 - errors here are this image's
        if stacks is not None:
            stacks[stack] = img
            while len(stacks) > SHARED_STACKS:  # bounded: a fleet of distinct stacks keeps memory flat
                stacks.pop(next(iter(stacks)))
    return img


def _summary_row(member: _Member, img: "Image") -> dict[str, Any]:
    b = img.bloat()
    s = b.summary()
    layers = img.layers
    row: dict[str, Any] = {
        "reference": member.reference, "digest": img.manifest_digest, "image_id": img.image_id,
        "platform": str(img.platform) if img.platform else None, "layers": len(img.scans),
        "compressed_size": int(layers["compressed_size"].sum()),
        "uncompressed_size": int(layers["uncompressed_size"].sum()),
        **{k: s[k] for k in ("shipped_bytes", "visible_bytes", "wasted_bytes", "efficiency", "shipped_download_bytes",
                             "visible_download_bytes", "wasted_download_bytes", "duplicate_bytes", "junk_bytes",
                             "dive_efficiency", "dive_wasted_bytes", "dive_user_wasted_percent")},
    }
    advice = b.advice  # the fixes: the first, and the download all of them would save
    row["advice_download_bytes"] = int(advice["download_bytes_saved"].sum()) if len(advice) else 0
    if len(advice):
        top_fix = advice.iloc[0]
        row.update(top_fix_kind=str(top_fix["kind"]), top_fix=str(top_fix["fix"]),
                   top_fix_download_bytes=int(top_fix["download_bytes_saved"]))
    by = b.by_cause
    if len(by):
        top = by.iloc[0]
        row.update(top_cause=str(top["cause"]), top_cause_layer=int(top["by_layer"]),
                   top_cause_created_by=None if pd.isna(top["by_created_by"]) else str(top["by_created_by"]),
                   top_cause_bytes=int(top["bytes"]))
    return row


def audit(refs: str | Iterable[str], *, platform: str | Platform | None = None, executor: Any = None,
          workers: int | None = None, progress: Any = "auto", cache: bool = True, events: bool = True,
          page_size: int | None = None, **registry_options: Any) -> "FleetAudit":
    """Audit a fleet of images; each distinct layer is downloaded and scanned once.

    ``refs``: a list of references, a registry repository (``host:port/repo``: every tag), a registry
    (``host:port``: every repository of its catalog, every tag), or a layout (``oci:DIR``: every tag).
    ``platform`` picks from multi-platform indexes (default: this machine's, as ``load``).
    ``executor``: ``None``/``"process"`` (a local process pool, ``workers`` processes, default all cores),
    ``"thread"``, a ``concurrent.futures.Executor``, a ``dask.distributed.Client``, or a Dask scheduler
    address (``"tcp://host:8786"``; ``pip install 'ocilens[dask]'``). ``cache=False`` neither reads nor
    fills the scan cache; ``events=False`` skips the fleet-wide events table (large for big fleets).
    ``progress`` as for ``load``; registry options (``auth=``, ``insecure=``) apply to every registry.

    Images that cannot be read (authentication, missing tag, corrupt layer) are rows of ``errors`` and
    carry an ``error`` in ``images``; they never stop the audit.
    """
    t0 = time.perf_counter()
    plat = None
    if platform is not None:
        plat = Platform.parse(platform, reference=refs if isinstance(refs, str) else None)
    emit = fleet_progress(progress)
    options = dict(registry_options)

    backend = backend_for(executor, workers)
    try:
        return _audit(refs, backend, plat, emit, options, cache=cache, events=events, page_size=page_size,
                      t0=t0)
    finally:
        backend.close()


def _audit(refs: str | Iterable[str], backend: Backend, plat: Platform | None, emit: Any, options: dict[str, Any],
           *, cache: bool, events: bool, page_size: int | None, t0: float) -> "FleetAudit":
    timings: dict[str, float] = {}
    if isinstance(backend, ProcessBackend):
        backend.start()  # the workers start up while the driver lists and resolves
    expanded = expand(refs, page_size=page_size, **options)
    errors: list[dict[str, Any]] = [
        {"reference": target, "stage": "enumerate", "error_type": etype, "message": msg}
        for target, etype, msg in expanded.errors]
    timings["enumerate"] = time.perf_counter() - t0
    references = expanded.references
    if emit:
        emit("resolve", reference=f"fleet of {len(references)} images")

    t = time.perf_counter()
    members: list[_Member] = []
    scan_cache = ScanCache() if cache else None
    scans: dict[str, LayerScan] = {}  # cached scans found while resolving, then those the backends return
    if references:
        with ThreadPoolExecutor(max_workers=min(8, len(references)), thread_name_prefix="ocilens-resolve") as ex:
            members = list(ex.map(lambda r: _resolve(r, plat, options, scan_cache, scans), references))
    timings["resolve"] = time.perf_counter() - t

    # Distinct layers, in order of first appearance.
    layers: dict[str, _Layer] = {}
    for i, m in enumerate(members):
        if m.manifest is None:
            continue
        for j, desc in enumerate(m.manifest.layers):
            layer = layers.get(desc.digest)
            if layer is None:
                layer = layers[desc.digest] = _Layer(desc, i, j)
            if not layer.users or layer.users[-1] != i:
                layer.users.append(i)
                layer.locators.append(m.reference)
    order = list(layers)
    position = {d: k for k, d in enumerate(order)}
    for d in [d for d in scans if d not in layers]:  # cached for images that failed a later check
        del scans[d]

    todo: list[str] = []
    for d in order:
        got = scans.get(d)
        if got is not None:
            layers[d].status = "cached"
            layers[d].info = _scan_info(got)
        else:
            todo.append(d)

    if todo:
        backend.check_picklable(options)
    root = str(cache_dir()) if backend.local else None
    tasks = [ScanTask(layers[d].desc, layers[d].index, tuple(layers[d].locators),
                      str(plat) if plat is not None else None, options, root, cache) for d in todo]

    state = _Progress(emit, len(members), len(order))
    if emit:
        emit("manifest", layers=[(d, layers[d].desc.size) for d in order])
        emit("fleet_start", images=len(members), layers=len(order), todo=len(todo), cached=len(order) - len(todo),
             bytes=sum(layers[d].desc.size for d in todo))
    for m in members:
        if m.error is not None:
            state.image_done(m)
    pending = {i: {d.digest for d in m.manifest.layers} for i, m in enumerate(members)  # type: ignore[union-attr]
               if m.manifest is not None}
    refcount = {d: len(layers[d].users) for d in order}
    shared = {d for d in order if len(layers[d].users) > 1}
    assembled: dict[str, tuple[dict[str, Any], pd.DataFrame | None, list[tuple[int, int, str | None]]]] = {}
    stacks: dict[tuple[str, ...], Image] = {}  # one analysed image per layer stack

    def release(i: int) -> None:
        for d in {x.digest for x in members[i].manifest.layers}:  # type: ignore[union-attr]
            refcount[d] -= 1
            if refcount[d] == 0:
                scans.pop(d, None)

    def finish(i: int) -> None:
        """Image ``i`` has every scan it needs, or a failed one: audit it or record why not."""
        m = members[i]
        pending.pop(i, None)
        failed = next((layers[d.digest] for d in m.manifest.layers  # type: ignore[union-attr]
                       if layers[d.digest].status == "failed"), None)
        if failed is not None:
            res = failed.result
            j = next(k for k, d in enumerate(m.manifest.layers) if d.digest == failed.desc.digest)  # type: ignore[union-attr]
            text = (res.error or "") if res is not None else ""
            if failed.desc.digest not in text:
                text = f"layer {j} ({failed.desc.digest}): {text}"
            m.error = ("scan", (res.error_type if res is not None else None) or "Error", text, failed.desc.digest, j)
        else:
            ta = time.perf_counter()
            mf = m.manifest
            assert mf is not None
            # Tags that name the same manifest (latest, 1, 1.2...) are the same image: assembled once.
            key = f"{mf.digest} {mf.config.digest}" if mf.digest else None
            try:
                if key is not None and key in assembled:
                    row, m.events, per = assembled[key]
                    m.row = dict(row, reference=m.reference)
                else:
                    img = _assemble(m, [scans[d.digest] for d in mf.layers], stacks)
                    m.row = _summary_row(m, img)
                    m.events = img.events if events else None
                    frame = img.bloat().per_layer
                    per = [(int(w), int(made), None if pd.isna(cb) else str(cb)) for w, made, cb in
                           zip(frame["wasted_bytes"], frame["waste_made"], frame["created_by"])]
                    if key is not None:
                        assembled[key] = (m.row, m.events, per)
                for d, (w, made, cb) in zip(mf.layers, per):
                    layer = layers[d.digest]
                    layer.waste += w
                    layer.made += made
                    layer.with_waste += int(w > 0)
                    layer.created_by.setdefault(i, cb)
                digests = [d.digest for d in mf.layers]
                m.row["shared_layers"] = sum(d in shared for d in digests)
                m.row["unique_bytes"] = sum(layers[d].desc.size for d in dict.fromkeys(digests) if d not in shared)
            except Exception as exc:  # noqa: BLE001
                m.error = _error_of("assemble", exc)
            state.assemble_seconds += time.perf_counter() - ta
        release(i)
        state.image_done(m)

    def ready() -> None:
        for i in [i for i, need in pending.items() if not need]:
            finish(i)

    for d in order:  # cached layers first: every image they complete is audited before any scan runs
        if layers[d].status == "cached":
            for i in layers[d].users:
                pending[i].discard(d)
            state.layer_done(layers[d], "cached")
    ready()

    t = time.perf_counter()
    on_bytes = state.bytes_callback(position) if emit and isinstance(backend, _thread_backends()) else None
    for result in backend.run(tasks, on_bytes):
        layer = layers[result.digest]
        layer.result = result
        layer.status = result.status
        if result.scan is not None:
            if refcount[result.digest] > 0:  # else every image holding it failed already
                scans[result.digest] = result.scan
            layer.info = _scan_info(result.scan)
            if scan_cache is not None and not backend.local and not scan_cache.path(result.digest).is_file():
                scan_cache.put(result.digest, result.scan)
        state.layer_done(layer, result.status, result)
        for i in layer.users:
            if i in pending:
                if result.status == "failed":
                    finish(i)
                else:
                    pending[i].discard(result.digest)
        ready()
    backend.close()  # (again in audit's finally: closing twice is harmless) before the scan time is taken
    timings["scan"] = time.perf_counter() - t - state.assemble_seconds
    timings["assemble"] = state.assemble_seconds
    for i in list(pending):  # cannot happen (every task yields a result); kept so no image is ever lost
        members[i].error = ("scan", "RuntimeError", "a layer scan never came back", None, None)
        state.image_done(members[i])

    fleet = FleetAudit._build(members, layers, order, errors, backend, plat, options,
                               scanned=sum(1 for d in order if _attempted(layers[d])),
                               timings=timings, started=t0, keep_events=events)
    if emit:
        emit("done", reference=f"fleet of {len(members)} images")
        emit("fleet_done", images=len(members), failed=int(fleet.images["error"].notna().sum()),
             scanned=fleet.scanned_layers, cached=fleet.cached_layers, seconds=fleet.elapsed)
    return fleet


def _attempted(layer: _Layer) -> bool:
    """Whether this audit downloaded and scanned the layer (successfully or not)."""
    return layer.status in ("scanned", "failed") and layer.result is not None and layer.result.attempts > 0


def _thread_backends() -> tuple[type, ...]:
    from .execute import InlineBackend, ThreadBackend

    return (InlineBackend, ThreadBackend)


class _Progress:
    """Counts for the fleet events."""

    def __init__(self, emit: Any, images: int, layers: int) -> None:
        self.emit = emit
        self.images = images
        self.layers = layers
        self.images_done = 0
        self.layers_done = 0
        self.assemble_seconds = 0.0

    def image_done(self, m: _Member) -> None:
        if m.done:
            return
        m.done = True
        self.images_done += 1
        if self.emit:
            self.emit("fleet_image_done", reference=m.reference, error=m.error[2] if m.error else None,
                      done=self.images_done, total=self.images)

    def layer_done(self, layer: _Layer, status: str, result: ScanResult | None = None) -> None:
        self.layers_done += 1
        if not self.emit:
            return
        d = layer.desc
        entries = result.scan.members if result is not None and result.scan is not None else 0
        self.emit("layer_done", digest=d.digest, size=d.size, entries=entries, cached=status == "cached")
        self.emit("fleet_layer_done", digest=d.digest, size=d.size, status=status,
                  error=result.error if result is not None else None, done=self.layers_done, total=self.layers)

    def bytes_callback(self, position: dict[str, int]) -> Any:
        def factory(task: ScanTask) -> Any:
            k = position[task.digest]
            total = task.desc.size
            done = [0]

            def on_bytes(n: int) -> None:
                done[0] += n
                self.emit("layer_bytes", index=k, digest=task.digest, done=done[0], total=total)
            return on_bytes
        return factory


class FleetAudit:
    """The result of ``ocilens.audit``: DataFrames of images, distinct layers, events and errors.

    ``images``: one row per image (failed ones too, with ``error``); ``layers``: one row per distinct layer
    (``images`` sharing it, ``wasted_bytes`` it ships that the images holding it lose, summed over them);
    ``events``: every audited image's events with an ``image`` column first; ``errors``: one row per
    failure (``stage``: enumerate, resolve, scan, assemble). ``scanned_layers`` counts the layers scanned
    by this audit (each distinct digest at most once); ``cached_layers`` those found in a scan cache.
    """

    images: pd.DataFrame
    layers: pd.DataFrame
    events: pd.DataFrame
    errors: pd.DataFrame

    def __init__(self, images: pd.DataFrame, layers: pd.DataFrame, events: pd.DataFrame, errors: pd.DataFrame,
                 *, scanned_layers: int, cached_layers: int, failed_layers: int, executor: str,
                 workers: list[str], timings: dict[str, float], elapsed: float, platform: Platform | None = None,
                 registry_options: dict[str, Any] | None = None) -> None:
        self.images = images
        self.layers = layers
        self.events = events
        self.errors = errors
        self.scanned_layers = scanned_layers
        self.cached_layers = cached_layers
        self.failed_layers = failed_layers
        self.executor = executor
        self.workers = workers
        self.timings = timings
        self.elapsed = elapsed
        self.platform = platform
        self._registry_options = dict(registry_options or {})

    @classmethod
    def _build(cls, members: list[_Member], layers: dict[str, _Layer], order: list[str],
               errors: list[dict[str, Any]], backend: Backend, plat: Platform | None,
               options: dict[str, Any], *, scanned: int, timings: dict[str, float], started: float,
               keep_events: bool) -> "FleetAudit":
        rows = []
        for m in members:
            row = dict(m.row or {"reference": m.reference})
            if m.manifest is not None and m.row is None:
                row.update(digest=m.manifest.digest, image_id=m.manifest.config.digest, layers=len(m.manifest.layers),
                           compressed_size=sum(d.size for d in m.manifest.layers))
            if m.error is not None:
                stage, etype, msg, digest, index = m.error
                row.update(error_type=etype, error=msg)
                errors.append({"reference": m.reference, "stage": stage, "error_type": etype, "message": msg,
                               "digest": digest, "layer": index})
            rows.append(row)
        images = _frame(rows, IMAGE_COLUMNS)

        lrows = []
        for d in order:
            layer = layers[d]
            res = layer.result
            first = members[layer.first].reference
            created_by = layer.created_by[min(layer.created_by)] if layer.created_by else None
            lrows.append({
                "digest": d, "media_type": layer.desc.media_type, "compressed_size": layer.desc.size,
                **layer.info, "images": len(layer.users),
                "repositories": len({origin_of(members[i].reference)[1] for i in layer.users}),
                "first_image": first, "first_index": layer.index, "created_by": created_by,
                "wasted_bytes": layer.waste, "waste_made": layer.made, "images_with_waste": layer.with_waste,
                "status": layer.status,
                "error_type": res.error_type if res else None, "error": res.error if res else None,
                "worker": res.worker if res else None, "seconds": res.seconds if res else None,
            })
        layers_df = _frame(lrows, LAYER_COLUMNS)

        events = _fleet_events(members) if keep_events else _fleet_events([])
        errors_df = _frame(errors, ERROR_COLUMNS)
        workers = sorted({layers[d].result.worker for d in order if layers[d].result is not None  # type: ignore[union-attr]
                          and layers[d].result.worker not in ("", "?")})  # type: ignore[union-attr]
        return cls(images, layers_df, events, errors_df, scanned_layers=scanned,
                   cached_layers=sum(1 for d in order if layers[d].status == "cached"),
                   failed_layers=sum(1 for d in order if layers[d].status == "failed"), executor=backend.name,
                   workers=workers, timings=timings, elapsed=time.perf_counter() - started, platform=plat,
                   registry_options=options)

    # --- numbers ------------------------------------------------------------------------------------

    @property
    def distinct_layers(self) -> int:
        return len(self.layers)

    def summary(self) -> dict[str, Any]:
        """The fleet's headline numbers."""
        ok = self.images[self.images["error"].isna()]
        total_refs = int(ok["layers"].sum()) if len(ok) else 0
        shipped = int(ok["shipped_bytes"].sum()) if len(ok) else 0
        visible = int(ok["visible_bytes"].sum()) if len(ok) else 0
        return {
            "images": len(self.images),
            "audited": len(ok),
            "failed": int(self.images["error"].notna().sum()),
            "distinct_layers": self.distinct_layers,
            "layer_references": total_refs,
            "scanned_layers": self.scanned_layers,
            "cached_layers": self.cached_layers,
            "failed_layers": self.failed_layers,
            "distinct_compressed_bytes": int(self.layers["compressed_size"].sum()) if len(self.layers) else 0,
            "compressed_bytes": int(ok["compressed_size"].sum()) if len(ok) else 0,
            "shipped_bytes": shipped,
            "visible_bytes": visible,
            "wasted_bytes": shipped - visible,
            "efficiency": 1.0 if shipped == 0 else visible / shipped,
            "dive_wasted_bytes": int(ok["dive_wasted_bytes"].sum()) if len(ok) else 0,
            "errors": len(self.errors),
            "executor": self.executor,
            "seconds": round(self.elapsed, 3),
        }

    # --- views ----------------------------------------------------------------------------------------

    def image(self, reference: str, **kwargs: Any) -> "Image":
        """One image of the fleet as an ``ocilens.Image`` (its layer scans come from the scan cache)."""
        from ..image import load
        from ..sources import options_for

        options = {**options_for(reference, self._registry_options), **kwargs}
        options.setdefault("platform", self.platform)
        options.setdefault("progress", False)
        return load(reference, **options)

    @property
    def plot(self) -> "FleetPlots":
        """Charts: ``.wasted_per_image()``, ``.shared_layers()``, ``.layer_waste()`` (``ax=`` in, Axes out)."""
        from .report import FleetPlots

        return FleetPlots(self)

    def report(self, top: int = 25) -> "FleetReport":
        """The HTML report of the fleet (``.to_html(path)``)."""
        from .report import FleetReport

        return FleetReport(self, top=top)

    def to_json(self, path: str | Path) -> Path:
        """Summary, images, layers and errors as one JSON document (schema ``ocilens.audit/v1``)."""
        import json

        from ..export import frame_records

        doc = {"schema": "ocilens.audit/v1", "summary": self.summary(), "images": frame_records(self.images),
               "layers": frame_records(self.layers), "errors": frame_records(self.errors)}
        out = Path(path)
        with open(out, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        return out

    def to_csv(self, directory: str | Path) -> list[Path]:
        """``images.csv``, ``layers.csv``, ``events.csv`` and ``errors.csv`` in ``directory`` (made if needed)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("images", "layers", "events", "errors"):
            p = out / f"{name}.csv"
            getattr(self, name).to_csv(p, index=False)
            written.append(p)
        return written

    def _repr_html_(self) -> str:
        from .report import fleet_html_snippet

        return fleet_html_snippet(self)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"<ocilens.FleetAudit {s['images']} images ({s['failed']} failed), {s['distinct_layers']} distinct "
                f"layers ({s['scanned_layers']} scanned, {s['cached_layers']} cached), wasted "
                f"{s['wasted_bytes']:,} B of {s['shipped_bytes']:,} B shipped; {self.executor}, {s['seconds']}s>")


def _fleet_events(members: list[_Member]) -> pd.DataFrame:
    """Every audited image's events, in fleet order, with a categorical ``image`` column first."""
    frames = [(m.reference, m.events) for m in members if m.events is not None]
    if frames:
        df = pd.concat([f for _, f in frames], ignore_index=True)
        lengths = [len(f) for _, f in frames]
    else:
        from .. import frames as fr
        from ..assemble import assemble

        df = fr.events_frame(assemble([]))
        lengths = []
    refs = [r for r, _ in frames]
    codes = np.repeat(np.arange(len(refs), dtype=np.int32), lengths)
    df.insert(0, "image", pd.Categorical.from_codes(codes, categories=pd.Index(refs, dtype="string")))
    return df


from .report import FleetPlots  # noqa: E402  (annotations)
