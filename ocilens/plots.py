"""matplotlib charts, library style: each takes ``ax=`` (a new figure when None), draws, and returns the Axes.
Nothing here calls ``plt.show()``; reports pass an Axes of a ``matplotlib.figure.Figure`` they own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .diff import ImageDiff
    from .image import Image

__all__ = ["layer_sizes", "waste_by_cause", "largest_dirs", "diff_sizes", "PlotAccessor", "directory_sizes",
           "SEGMENTS", "package_sizes", "literal", "axes_or_new", "bytes_axis", "short_path"]

# (column of Bloat.per_layer, legend label, colour): the stacked parts of a layer's shipped bytes. The labels
# are the waste causes as words, as the report's tables show them. The last one, ``unappliable`` (entries no
# runtime can apply), is drawn only when an image has such bytes.
SEGMENTS = (
    ("visible_bytes", "visible", "#4c78a8"),
    ("wasted_overwritten", "overwritten", "#f58518"),
    ("wasted_deleted_later", "deleted later", "#e45756"),
    ("wasted_metadata_only", "metadata only", "#b279a2"),
    ("wasted_unappliable", "unappliable", "#79706e"),
)
#: Labels longer than this many characters are shortened at a ``/`` or a space, never inside a name or word.
LABEL_CHARS = 44


def literal(text: object) -> str:
    """Image data as a label: matplotlib would read ``$...$`` as mathtext (and fail on hostile names)."""
    return str(text).replace("$", r"\$")


def short_path(path: object, limit: int = LABEL_CHARS) -> str:
    """``path`` at most ``limit`` characters long when it can be, shortened at ``/`` boundaries from the left
    with a leading ``…/`` (``…/LC_MESSAGES/sed.mo``): never cut inside a name. A last name longer than
    ``limit`` is kept whole."""
    text = str(path)
    if len(text) <= limit:
        return text
    parts = text.rstrip("/").split("/")
    tail = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 1 + len(tail) + 2 > limit:
            break
        tail = f"{part}/{tail}"
    return "…/" + tail


def axes_or_new(ax: "Axes | None", size: tuple[float, float] = (7, 3.5)) -> "Axes":
    """``ax``, or when None the Axes of a new pyplot figure of ``size`` inches (a chart's ``ax=`` rule)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def bytes_axis(ax: "Axes", axis: str = "y") -> None:
    """Tick ``axis`` (``"x"`` or ``"y"``) of ``ax`` in bytes (``1.5 MB``), with a few round ticks."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def fmt(v: float, _pos: Any) -> str:
        for unit in ("B", "kB", "MB", "GB", "TB"):
            if abs(v) < 1000 or unit == "TB":
                return f"{v:.0f} {unit}" if unit == "B" else f"{v:.3g} {unit}"
            v /= 1000
        return str(v)

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(nbins=5 if axis == "y" else 4))
    target.set_major_formatter(FuncFormatter(fmt))


def layer_sizes(image: "Image", ax: "Axes | None" = None) -> "Axes":
    """Stacked bars per layer: the bytes it shipped that stay visible, are overwritten later, are deleted
    later, were re-added only to change metadata, or could not be applied (drawn only when some were). The
    bar heights sum to the layer's shipped bytes."""
    ax = axes_or_new(ax)
    per = image.bloat().per_layer
    x = [str(i) for i in per["layer"]]
    bottom = [0] * len(per)
    for column, label, colour in SEGMENTS:
        values = [int(v) for v in per[column]] if column in per else [0] * len(per)
        if column == "wasted_unappliable" and not any(values):
            continue
        ax.bar(x, values, bottom=bottom, label=label, color=colour, width=0.7)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xlabel("layer")
    ax.set_ylabel("shipped bytes")
    ax.set_title("Layer sizes and their fate")
    bytes_axis(ax)
    ax.legend(fontsize="small", frameon=False)
    return ax


def waste_by_cause(image: "Image", ax: "Axes | None" = None, top: int = 10) -> "Axes":
    """Horizontal bars: wasted bytes per (cause, instruction that made the waste), largest first. Each label
    is two lines: the cause in words and the layer whose instruction made the waste, then that instruction
    as the Dockerfile line (``RUN rm -rf ...``), shortened at a space, never inside a word."""
    from .advice import short_instruction
    from .units import short_words

    ax = axes_or_new(ax)
    by = image.bloat().by_cause.head(top)
    labels = [literal(f"{str(c).replace('_', ' ')}, made by layer {layer}\n"
                      f"{short_words(short_instruction(cb, limit=10**6) or '(no history)', LABEL_CHARS)}")
              for c, layer, cb in zip(by["cause"], by["by_layer"], by["by_created_by"])]
    colours = {s[0].replace("wasted_", ""): s[2] for s in SEGMENTS}
    ax.barh(labels[::-1], [int(v) for v in by["bytes"]][::-1],
            color=[colours.get(str(c), "#888888") for c in by["cause"]][::-1])
    ax.set_xlabel("wasted bytes")
    ax.set_title("Waste by cause")
    bytes_axis(ax, "x")
    ax.tick_params(axis="y", labelsize="small")
    return ax


def directory_sizes(files: pd.DataFrame, max_depth: int = 3) -> pd.DataFrame:
    """Bytes of regular files below each directory, down to ``max_depth`` levels (``/usr/lib`` is 2)."""
    regular = files[files["type"] == "file"]
    totals: dict[str, int] = {}
    for path, size in zip(regular["path"], regular["size"]):
        parts = path.split("/")[1:-1]
        for depth in range(1, min(len(parts), max_depth) + 1):
            d = "/" + "/".join(parts[:depth])
            totals[d] = totals.get(d, 0) + int(size)
    df = pd.DataFrame({"path": pd.array(list(totals), dtype="string"),
                       "bytes": pd.array(list(totals.values()), dtype="Int64")})
    df["depth"] = df["path"].str.count("/")
    return df.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)


def largest_dirs(image: "Image", ax: "Axes | None" = None, top: int = 12, max_depth: int = 3) -> "Axes":
    """Horizontal bars: the directories holding the most visible bytes."""
    ax = axes_or_new(ax)
    dirs = directory_sizes(image.files, max_depth).head(top)
    ax.barh([literal(short_path(p)) for p in dirs["path"]][::-1], [int(v) for v in dirs["bytes"]][::-1],
            color="#4c78a8")
    ax.set_xlabel("bytes in the final image")
    ax.set_title("Largest directories")
    bytes_axis(ax, "x")
    ax.tick_params(axis="y", labelsize="small")
    return ax


def diff_sizes(diff: "ImageDiff", ax: "Axes | None" = None, top: int = 15) -> "Axes":
    """Horizontal bars: the files whose size changed most between two images (green grew, red shrank),
    labelled with the change and the path (shortened at a ``/``, ``…/lib/x.so``)."""
    ax = axes_or_new(ax)
    f = diff.files
    f = f[f["size_delta"] != 0]
    f = f.reindex(f["size_delta"].abs().sort_values(ascending=False).index).head(top)
    if f.empty:
        ax.text(0.5, 0.5, "no file changes", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    deltas = [int(v) for v in f["size_delta"]][::-1]
    labels = [literal(f"{c}: {short_path(p, LABEL_CHARS - len(str(c)) - 2)}") for c, p in zip(f["change"], f["path"])][::-1]
    ax.barh(labels, deltas, color=["#54a24b" if d >= 0 else "#e45756" for d in deltas])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("size change")
    ax.set_title("Largest size changes")
    bytes_axis(ax, "x")
    ax.tick_params(axis="y", labelsize="small")
    return ax


def package_sizes(image: "Image", ax: "Axes | None" = None, top: int = 12) -> "Axes":
    """Horizontal stacked bars per package version: its bytes in the final image and the wasted bytes it
    shipped. The ``top`` largest packages, plus the five carrying the most waste if they are not among them."""
    ax = axes_or_new(ax, (7, 4))
    pk = image.packages
    if pk.empty:
        ax.text(0.5, 0.5, "no package databases found", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    size = pk["bytes"].fillna(0).astype("int64")
    waste = pk["wasted_bytes"].fillna(0).astype("int64")
    chosen = size.nlargest(top).index.union(waste[waste > 0].nlargest(5).index)
    rows = pk.loc[chosen].assign(_w=(size + waste).loc[chosen]).sort_values("_w", kind="stable")
    labels = [f"{n} {v} ({e})" for n, v, e in zip(rows["name"], rows["version"], rows["ecosystem"])]
    # one name and version installed in several places (npm, Python): tell the bars apart by where
    labels = [literal(label + (f" {loc}" if labels.count(label) > 1 else ""))
              for label, loc in zip(labels, rows["location"])]
    kept = [int(v) for v in rows["bytes"].fillna(0)]
    ax.barh(labels, kept, color="#4c78a8", label="in the final image")
    ax.barh(labels, [int(v) for v in rows["wasted_bytes"].fillna(0)], left=kept, color="#e45756",
            label="wasted (shipped, then lost)")
    ax.set_xlabel("bytes")
    ax.set_title("Largest packages and the waste they carry")
    bytes_axis(ax, "x")
    ax.tick_params(axis="y", labelsize="small")
    ax.legend(fontsize="small", frameon=False)
    return ax


class PlotAccessor:
    """``img.plot.layer_sizes()``, ``img.plot.waste_by_cause()``, ``img.plot.largest_dirs()``."""

    def __init__(self, image: "Image") -> None:
        self._image = image

    def layer_sizes(self, ax: "Axes | None" = None) -> "Axes":
        return layer_sizes(self._image, ax)

    def waste_by_cause(self, ax: "Axes | None" = None, top: int = 10) -> "Axes":
        return waste_by_cause(self._image, ax, top)

    def largest_dirs(self, ax: "Axes | None" = None, top: int = 12, max_depth: int = 3) -> "Axes":
        return largest_dirs(self._image, ax, top, max_depth)

    def packages(self, ax: "Axes | None" = None, top: int = 12) -> "Axes":
        return package_sizes(self._image, ax, top)

    def __call__(self, ax: "Axes | None" = None) -> "Axes":
        return self.layer_sizes(ax)
