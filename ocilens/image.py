"""``ocilens.load``: resolve a reference, scan its layers (cached, in parallel), assemble, and expose the
result as an ``Image`` with DataFrames."""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .assemble import Assembly, assemble
from .cache import FrameCache, ScanCache, frames_key
from .manifest import ImageManifest
from .pipeline import check_diff_ids, resolve_image, scan_layers
from .platform import Platform
from .scan import LayerScan
from . import warmup
from .sources import ENGINE_TRANSPORTS, Source, open_source

if TYPE_CHECKING:  # annotations only; the explorer imports ipywidgets, so nothing here loads at run time
    import pandas as pd

    from .bloat import Bloat
    from .diff import ImageDiff
    from .explore import Explorer
    from .extract import ExtractResult
    from .packages.model import PackageModel
    from .plots import PlotAccessor
    from .report import Report

__all__ = ["Image", "load", "platforms", "sample_image", "SAMPLE_REF"]

ProgressCallback = Callable[..., None]
SAMPLE_DIR = Path(__file__).parent / "_sample"
SAMPLE_REF = f"oci:{SAMPLE_DIR}:sample"


#: Frames kept in the frame cache; an image with more events than this is re-assembled instead (its
#: pickle would cost more to write on every cold load than assembling saves).
CACHED_FRAMES = ("events", "files", "layers", "anomalies")
#: The frames an image's layer stack alone decides: images with the same layers share them.
CONTENT_FRAMES = ("events", "files", "anomalies")
FRAME_CACHE_MAX_ROWS = 300_000


def _frames() -> Any:
    """The frame builders (and pandas with them), imported when a frame is first asked for: ``import
    ocilens`` and the layer scans do not need them."""
    from . import frames

    return frames


def analysis_frame(func: Callable[["Image"], pd.DataFrame]) -> property:
    """A frame computed once per image, or read from the frame cache a previous analysis filled."""
    name = func.__name__

    def get(self: "Image") -> pd.DataFrame:
        value = self.__dict__.get(name)
        if value is None:
            stored = self._stored_frames.get(name) if self._stored_frames else None
            if stored is None and self._twin is not None and name in CONTENT_FRAMES:
                stored = getattr(self._twin, name)
            if stored is not None:
                value = self.__dict__[name] = stored
            else:
                with gc_paused():  # tables of many short-lived objects: nothing cyclic to collect
                    value = self.__dict__[name] = func(self)
                    self._remember(name)
        return value

    get.__doc__ = func.__doc__
    get.__name__ = name
    return property(get)


class Image:
    """One image: manifest, config, per-layer scans and the assembled tree, as DataFrames.

    ``layers``, ``events``, ``files``, ``history`` and ``anomalies`` are computed on first use and kept.
    """

    def __init__(self, source: Source, manifest: ImageManifest, config: dict[str, Any],
                 config_raw: bytes, scans: list[LayerScan], *, frames_key: str | None = None,
                 stored_frames: dict[str, pd.DataFrame] | None = None,
                 same_layers_as: "Image | None" = None) -> None:
        """``frames_key``: where the finished frames are kept (None: not kept); ``stored_frames``: the frames a
        previous analysis kept there; ``same_layers_as``: an analysed image with the same layer stack, whose
        content results (tree, events, files, dive's numbers) this one shares instead of computing them."""
        self.source = source
        self.reference = source.reference
        self.manifest = manifest
        self.config = config
        self.config_raw = config_raw
        self.scans = scans
        self._bloat: "Bloat | None" = None
        self._frames_key = frames_key
        self._stored_frames = stored_frames
        self._twin = same_layers_as

    def _remember(self, name: str) -> None:
        """Once events, files and layers exist, store them (and the cheap anomalies) for the next analysis."""
        if self._frames_key is None or self._stored_frames is not None or name == "anomalies":
            return
        if any(self.__dict__.get(n) is None for n in ("events", "files", "layers")):
            return
        if len(self.__dict__["events"]) > FRAME_CACHE_MAX_ROWS:
            return
        done = {n: getattr(self, n) for n in CACHED_FRAMES}
        FrameCache().put(self._frames_key, done)
        self._stored_frames = done

    @property
    def manifest_digest(self) -> str | None:
        """The manifest's digest (None for a classic ``docker save`` archive, which has no manifest)."""
        return self.manifest.digest

    @property
    def image_id(self) -> str:
        """The config's digest: what ``docker images`` calls the image ID."""
        return self.manifest.config.digest

    @property
    def platform(self) -> Platform | None:
        return Platform.from_json(self.config)

    @cached_property
    def assembly(self) -> Assembly:
        """The layers folded into the final tree, with one event per path per layer (``ocilens.assemble``)."""
        if self._twin is not None:
            return self._twin.assembly
        with gc_paused():
            return assemble(self.scans)

    @analysis_frame
    def events(self) -> pd.DataFrame:
        """One row per path per layer that touched it: ``added``, ``overwritten``, ``whited_out``; the
        ``package`` columns name the package owning the path at that layer (see ``packages``)."""
        from .packages import add_package_columns

        return add_package_columns(self, _frames().events_frame(self.assembly, self.scans), "events")

    @analysis_frame
    def files(self) -> pd.DataFrame:
        """The final tree, one row per path; ``package``, ``ecosystem`` and ``package_id`` name the package
        that owns it (NA: no package database claims it)."""
        from .packages import add_package_columns

        return add_package_columns(self, _frames().files_frame(self.assembly, self.scans), "files")

    @cached_property
    def package_model(self) -> "PackageModel":
        """Which package owns each path at each layer, from the package databases the layers carry (shared
        with an image of the same layers)."""
        if self._twin is not None:
            return self._twin.package_model
        from .packages.model import PackageModel

        return PackageModel(self.scans, self.assembly)

    @cached_property
    def packages(self) -> pd.DataFrame:
        """One row per version of a package any layer installed (dpkg, apk, rpm, Python, npm): the layer
        that installed it and the one that removed or replaced it, files and bytes in the final image,
        and the wasted bytes it shipped. Index: ``package_id`` (as in ``files`` and ``events``)."""
        from .packages import packages_frame

        return packages_frame(self)

    @analysis_frame
    def layers(self) -> pd.DataFrame:
        """One row per layer: digest, sizes, event counts and bytes, waste, ``created_by``."""
        twin = self._twin.layers if self._twin is not None else None
        return _frames().layers_frame(self.assembly, self.scans, self.manifest.layers, self.config, self.events,
                                      same_stack=twin)

    @cached_property
    def history(self) -> pd.DataFrame:
        """The config's history rows, empty-layer rows included, each with the layer it made."""
        return _frames().history_frame(self.config, len(self.scans))

    @analysis_frame
    def anomalies(self) -> pd.DataFrame:
        """Entries that are unsafe, invalid or ambiguous (escaping names, bad links, duplicates...)."""
        return _frames().anomalies_frame(self.assembly)

    @property
    def plot(self) -> "PlotAccessor":
        """Charts: ``img.plot.layer_sizes(ax=None)``, ``.waste_by_cause()``, ``.largest_dirs()``."""
        from .plots import PlotAccessor

        return PlotAccessor(self)

    def bloat(self) -> "Bloat":
        """The bloat audit: efficiency, wasted bytes and their causes, duplicates, junk, dive's numbers."""
        from .bloat import Bloat

        if self._bloat is None:
            self._bloat = Bloat(self, same_files_as=self._twin.bloat() if self._twin is not None else None)
        return self._bloat

    def layer_diff(self, index: int, *, include_unchanged: bool = False) -> pd.DataFrame:
        """What layer ``index`` added, modified (and how) and removed, relative to the layers below."""
        from .diff import layer_diff

        return layer_diff(self, index, include_unchanged=include_unchanged)

    def diff(self, other: "Image", *, include_unchanged: bool = False) -> "ImageDiff":
        """Compare this image (old) with ``other`` (new): files, shared layers, config, history."""
        from .diff import image_diff

        return image_diff(self, other, include_unchanged=include_unchanged)

    def explore(self, layer: int = 0, **options: Any) -> "Explorer":
        """A notebook widget to browse the layers as dive does: pick a layer, see what it changed as a
        directory tree with sizes; filter by kind of change, waste, path; ``aggregated=True`` shows the
        stack up to the layer. Options: ``aggregated``, ``kinds``, ``waste_only``, ``search``, ``sort``
        (``"size"`` or ``"name"``), ``rows``. ``.model`` holds the state (``ocilens.explore.ExplorerModel``)."""
        from .explore import Explorer

        return Explorer(self, layer=layer, **options)

    def extract(self, target: str | os.PathLike[str], *, strict: bool = False,
                devices: bool | None = None) -> "ExtractResult":
        """Write the final rootfs under ``target`` (empty or new), as ``umoci unpack`` would."""
        from .extract import extract

        return extract(self, Path(target), strict=strict, devices=devices)

    def report(self, compare: "Image | None" = None, top: int = 25) -> "Report":
        """An HTML report (``.to_html(path)``); ``compare`` adds a diff with that (newer) image."""
        from .report import Report

        return Report(self, compare=compare, top=top)

    def _repr_html_(self) -> str:
        """The notebook view: the headline and the top fixes first, then the numbers, the layer sizes and
        the layers (what each changed: added, modified, removed, as ``layer_diff`` counts). Text is
        left-aligned and breaks only at spaces (commands) or after a ``/`` (paths); numbers right-aligned."""
        from .report import image_html

        return image_html(self)

    def close(self) -> None:
        self.source.close()

    def __repr__(self) -> str:
        total = sum(d.size for d in self.manifest.layers)
        return (f"<ocilens.Image {self.reference} platform={self.platform} layers={len(self.scans)} "
                f"compressed={total:,}B digest={self.manifest_digest or self.image_id}>")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small acyclic objects are made (scans, trees,
    frames): its generational passes would rescan them again and again, for nothing to collect."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            # what was made meanwhile would all be young, and the next allocation would trace it at once (0.3 s
            # for a million-file tree): moved to the oldest generation instead, as long-lived objects get to be
            # (freeze, then unfreeze: two list splices). Not if the caller froze objects of its own.
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def load(ref: str, platform: str | Platform | None = None, *, cache: bool = True,
         progress: Any = "auto", workers: int | None = None, **source_options: Any) -> Image:
    """Load an image: ``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:REF]``,
    ``docker://REF`` or a registry reference ``host/repo:tag``.

    ``platform`` (``"linux/arm64"``) picks from a multi-platform index (default: this machine's);
    ``cache=False`` skips the scan cache; ``progress`` is ``"auto"`` (a widget in a notebook, a text bar
    on a terminal, silence in CI), ``"widget"``, ``"text"``, ``False``, or a callable ``(event, **info)``.
    Registry options (``auth=``, ``insecure=``) pass through to the registry source.
    """
    from .progress import make_progress

    plat = None
    if platform is not None:
        plat = Platform.parse(platform, reference=ref if isinstance(ref, str) else None)
    progress = make_progress(progress)
    # pandas imports beside the opening, the resolving and the scans (``warmup``); an engine source starts it
    # once its export request is out
    if not (isinstance(ref, str) and ref.partition(":")[0] in ENGINE_TRANSPORTS):
        warmup.start()
    try:
        source = open_source(ref, **source_options)
    except BaseException as exc:
        warmup.join()
        if progress:
            progress("error", error=exc)
        raise
    try:
        if progress:
            progress("resolve", reference=ref)
        resolved = resolve_image(source, plat)
        manifest = resolved.manifest
        if progress:
            progress("manifest", reference=ref, digest=manifest.digest,
                     layers=[(d.digest, d.size) for d in manifest.layers])
        with gc_paused():
            scans = scan_layers(source, manifest, ScanCache() if cache else None, progress, workers)
        warmup.start()  # (if no source started it)
        warmup.join()  # pandas is complete before the frame cache (or the caller) unpickles with it
        check_diff_ids(ref, resolved.config, scans)
        key = frames_key(manifest.config.digest, [d.digest for d in manifest.layers]) if cache else None
        image = Image(source, manifest, resolved.config, resolved.config_raw, scans, frames_key=key,
                      stored_frames=FrameCache().get(key) if key is not None else None)
        if progress:
            progress("assemble", reference=ref)
        if image._stored_frames is None:
            image.assembly  # noqa: B018 - assemble now, so load() reports errors and timing up front
        if progress:
            progress("done", reference=ref)
        return image
    except BaseException as exc:
        source.close()
        warmup.join()  # no import left running behind an error (a fork after it would inherit its locks)
        if progress:
            progress("error", error=exc)
        raise


def platforms(ref: str, **source_options: Any) -> list[Platform]:
    """The platforms a reference offers: each entry of a multi-platform index (one for a plain image)."""
    with open_source(ref, **source_options) as source:
        found = source.platforms()
        if not found:
            plat = Platform.from_json(resolve_image(source).config)
            found = [plat] if plat else []
        return found


def sample_image(**kwargs: Any) -> Image:
    """The small image bundled with ocilens, whose layers show every event kind."""
    return load(SAMPLE_REF, **kwargs)
