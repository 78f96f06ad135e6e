"""The fleet's charts and HTML report: wasted bytes per image, the most shared layers, the layers that carry
the most waste across the fleet, and the tables behind them. Same building blocks as the image report
(``ocilens.html``: escaped tables, inline SVG, scoped CSS; no script, no URL)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..html import CSS, cards as html_cards, HtmlDocument, document, esc, human, pct, svg_of, table
from ..plots import axes_or_new, bytes_axis, literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .core import FleetAudit

__all__ = ["FleetPlots", "FleetReport", "wasted_per_image", "shared_layers", "layer_waste", "fleet_cards",
           "fleet_html_snippet"]


def _short(digest: Any) -> str:
    text = str(digest)
    return text.partition(":")[2][:12] or text[:12]


def _cut(text: Any, n: int) -> str:
    s = "" if text is None or text is pd.NA else str(text).replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _empty(ax: "Axes", what: str) -> "Axes":
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return ax


def wasted_per_image(audit: "FleetAudit", ax: "Axes | None" = None, top: int = 20) -> "Axes":
    """Horizontal bars: each audited image's visible and wasted bytes, most wasted first."""
    ax = axes_or_new(ax, (7, 0.9 + 0.28 * min(top, max(len(audit.images), 1))))
    ok = audit.images[audit.images["error"].isna()]
    if ok.empty:
        return _empty(ax, "no image could be audited")
    ok = ok.sort_values(["wasted_bytes", "reference"], ascending=[False, True], kind="stable").head(top)[::-1]
    labels = [literal(_cut(r, 48)) for r in ok["reference"]]
    wasted = [int(v) for v in ok["wasted_bytes"]]
    visible = [int(v) for v in ok["visible_bytes"]]
    ax.barh(labels, visible, color="#4c78a8", label="visible")
    ax.barh(labels, wasted, left=visible, color="#e45756", label="wasted")
    ax.set_xlabel("shipped bytes")
    ax.set_title("Wasted bytes per image")
    bytes_axis(ax, "x")
    ax.tick_params(axis="y", labelsize="small")
    ax.legend(fontsize="small", frameon=False, loc="lower right")
    return ax


def shared_layers(audit: "FleetAudit", ax: "Axes | None" = None, top: int = 15) -> "Axes":
    """Horizontal bars: the layers held by the most images, shared ones only (label: digest, size, the
    instruction that made it in the first image holding it)."""
    ax = axes_or_new(ax, (7, 0.9 + 0.28 * min(top, max(len(audit.layers), 1))))
    layers = audit.layers[audit.layers["images"] > 1]
    if layers.empty:
        return _empty(ax, "no layer is shared by two images")
    top_layers = layers.sort_values(["images", "compressed_size"], ascending=False, kind="stable").head(top)[::-1]
    labels = [literal(f"{_short(d)} {human(int(s))} {_cut(c, 36)}") for d, s, c in
              zip(top_layers["digest"], top_layers["compressed_size"], top_layers["created_by"])]
    ax.barh(labels, [int(v) for v in top_layers["images"]], color="#54a24b")
    ax.set_xlabel("images holding the layer")
    ax.set_title("Most shared layers")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize="small")
    return ax


def layer_waste(audit: "FleetAudit", ax: "Axes | None" = None, top: int = 15) -> "Axes":
    """Horizontal bars: the layers whose bytes are lost most across the fleet (summed over the images)."""
    ax = axes_or_new(ax, (7, 0.9 + 0.28 * min(top, max(len(audit.layers), 1))))
    layers = audit.layers[audit.layers["wasted_bytes"].fillna(0) > 0]
    if layers.empty:
        return _empty(ax, "no layer ships wasted bytes")
    top_layers = layers.sort_values("wasted_bytes", ascending=False, kind="stable").head(top)[::-1]
    labels = [literal(f"{_short(d)} ×{int(n)} {_cut(c, 36)}") for d, n, c in
              zip(top_layers["digest"], top_layers["images"], top_layers["created_by"])]
    ax.barh(labels, [int(v) for v in top_layers["wasted_bytes"]], color="#f58518")
    ax.set_xlabel("wasted bytes, summed over the images holding the layer")
    ax.set_title("Layers carrying the most waste")
    bytes_axis(ax, "x")
    ax.tick_params(axis="y", labelsize="small")
    return ax


class FleetPlots:
    """``audit.plot.wasted_per_image()``, ``.shared_layers()``, ``.layer_waste()``."""

    def __init__(self, audit: "FleetAudit") -> None:
        self._audit = audit

    def wasted_per_image(self, ax: "Axes | None" = None, top: int = 20) -> "Axes":
        return wasted_per_image(self._audit, ax, top)

    def shared_layers(self, ax: "Axes | None" = None, top: int = 15) -> "Axes":
        return shared_layers(self._audit, ax, top)

    def layer_waste(self, ax: "Axes | None" = None, top: int = 15) -> "Axes":
        return layer_waste(self._audit, ax, top)

    def __call__(self, ax: "Axes | None" = None) -> "Axes":
        return self.wasted_per_image(ax)


def fleet_cards(audit: "FleetAudit") -> str:
    s = audit.summary()
    saved = s["compressed_bytes"] - s["distinct_compressed_bytes"]
    cards = [
        ("images", f"{s['audited']:,} / {s['images']:,}", f"audited; {s['failed']:,} failed"),
        ("distinct layers", f"{s['distinct_layers']:,}",
         f"{s['scanned_layers']:,} scanned ({s['failed_layers']:,} failed), {s['cached_layers']:,} cached"),
        ("stored", human(s["distinct_compressed_bytes"]), f"compressed; sharing saves {human(max(saved, 0))}"),
        ("wasted", human(s["wasted_bytes"]), f"of {human(s['shipped_bytes'])} shipped, over all images"),
        ("efficiency", pct(s["efficiency"]), "visible / shipped, over all images"),
        ("dive wasted", human(s["dive_wasted_bytes"]), "summed over the images, as dive counts"),
    ]
    return html_cards(cards)


def _images_table(audit: "FleetAudit", limit: int | None) -> str:
    df = audit.images.sort_values(["wasted_bytes", "reference"], ascending=[False, True], kind="stable",
                                  na_position="last")
    return table(df, ["reference", "platform", "layers", "compressed_size", "wasted_bytes", "efficiency",
                      "dive_efficiency", "dive_wasted_bytes", "top_cause", "top_cause_created_by", "shared_layers",
                      "error_type"],
                 formats={"compressed_size": human, "wasted_bytes": human, "dive_wasted_bytes": human,
                          "efficiency": pct, "dive_efficiency": pct},
                 numeric=["layers", "compressed_size", "wasted_bytes", "efficiency", "dive_efficiency",
                          "dive_wasted_bytes", "shared_layers"], mono=["reference", "top_cause_created_by"],
                 limit=limit, headers={"compressed_size": "compressed", "wasted_bytes": "wasted",
                                       "dive_efficiency": "dive efficiency", "dive_wasted_bytes": "dive wasted",
                                       "top_cause_created_by": "instruction", "shared_layers": "shared layers",
                                       "error_type": "error"})


def _layers_table(df: pd.DataFrame, limit: int | None) -> str:
    shown = df.assign(digest=df["digest"].map(_short))
    return table(shown, ["digest", "compressed_size", "uncompressed_size", "images", "repositories", "wasted_bytes",
                         "images_with_waste", "created_by", "first_image", "status"],
                 formats={"compressed_size": human, "uncompressed_size": human, "wasted_bytes": human},
                 numeric=["compressed_size", "uncompressed_size", "images", "repositories", "wasted_bytes",
                          "images_with_waste"], mono=["created_by", "first_image"], nowrap=["digest"], limit=limit,
                 headers={"compressed_size": "compressed", "uncompressed_size": "uncompressed",
                          "wasted_bytes": "wasted (fleet)", "images_with_waste": "images losing bytes"})


def fleet_html_snippet(audit: "FleetAudit") -> str:
    """A compact view for notebooks: the cards and the wasted-bytes chart."""
    chart = svg_of(lambda ax: wasted_per_image(audit, ax, 12), size=(7, 3.6))
    return (f"<style>{CSS}</style><div class=\"ocilens\"><b>Fleet audit</b> <span class=\"muted\">"
            f"{esc(audit.executor)} · {audit.elapsed:.1f}s</span>{fleet_cards(audit)}"
            f"<div class=\"charts\">{chart}</div></div>")


class FleetReport(HtmlDocument):
    """The self-contained HTML report of a fleet audit."""

    def __init__(self, audit: "FleetAudit", top: int = 25) -> None:
        self.audit = audit
        self.top = top

    @cached_property
    def html(self) -> str:
        a = self.audit
        return document(f"ocilens fleet audit: {len(a.images):,} images",
                        ["<h2>Headline</h2>", fleet_cards(a), self.section()])

    def section(self) -> str:
        """The fleet section alone (charts and tables), for embedding in another report."""
        a = self.audit
        n_img = min(self.top, max(len(a.images), 1))
        out = ["<h2>Wasted bytes per image</h2>",
               f"<div class=\"charts\">{svg_of(lambda ax: wasted_per_image(a, ax, self.top), (8, 1 + 0.3 * n_img))}</div>",
               _images_table(a, self.top),
               "<h2>Most shared layers</h2>"]
        shared = a.layers[a.layers["images"] > 1]
        if shared.empty:
            out.append("<p>No layer is shared by two images.</p>")
        else:
            n_shared = min(15, len(shared))
            out.append(f"<div class=\"charts\">{svg_of(lambda ax: shared_layers(a, ax, 15), (8, 1 + 0.3 * n_shared))}"
                       "</div>")
            out.append(_layers_table(shared.sort_values(["images", "compressed_size"], ascending=False,
                                                        kind="stable"), self.top))
        out.append("<h2>Layers carrying the most waste</h2>")
        wasteful = a.layers[a.layers["wasted_bytes"].fillna(0) > 0]
        if wasteful.empty:
            out.append("<p>No layer ships bytes that the images holding it lose.</p>")
        else:
            n_waste = min(15, len(wasteful))
            out.append(f"<div class=\"charts\">{svg_of(lambda ax: layer_waste(a, ax, 15), (8, 1 + 0.3 * n_waste))}"
                       "</div>")
            out.append(_layers_table(wasteful.sort_values("wasted_bytes", ascending=False, kind="stable"), self.top))
        if len(a.errors):
            out.append("<h2>Errors</h2><p>These images (or registries and repositories) could not be audited; "
                       "the rest of the fleet was.</p>")
            out.append(table(a.errors, ["reference", "stage", "error_type", "message", "layer"], numeric=["layer"],
                             mono=["reference", "message"], limit=200,
                             headers={"error_type": "error"}))
        s = a.summary()
        out.append(f"<p class=\"muted\">{s['images']:,} images, {s['distinct_layers']:,} distinct layers "
                   f"({s['scanned_layers']:,} scanned, {s['cached_layers']:,} from the scan cache) on "
                   f"{esc(a.executor)}{' (' + str(len(a.workers)) + ' workers)' if a.workers else ''} in "
                   f"{a.elapsed:.1f}s.</p>")
        return "".join(out)

    def __repr__(self) -> str:
        return f"<ocilens.FleetReport {len(self.audit.images)} images>"
