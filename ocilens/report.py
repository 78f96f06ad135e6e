"""The self-contained HTML report: identity, headline numbers (ours and dive's), layers with
``created_by`` and each layer's largest changes as a ``<details>`` tree, waste by cause with the top files,
the largest files and directories, duplicates, junk, anomalies, and a diff section when two images are
compared. Charts are inline SVG; no script, no URL."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from . import plots
from .html import CSS, cards as html_cards, HtmlDocument, document, esc, human, kv_table, pct, svg_of, table
from .tree import TREE_CSS, DIFF_LABELS, Tree, diff_entries, layers_html, tree_html

if TYPE_CHECKING:
    from .image import Image

__all__ = ["Report", "image_cards", "layers_table"]


def image_cards(img: "Image") -> str:
    """The headline numbers as cards: ours and dive's."""
    s = img.bloat().summary()
    cards = [
        ("efficiency", pct(s["efficiency"]), "visible / shipped bytes"),
        ("wasted", human(s["wasted_bytes"]), f"of {human(s['shipped_bytes'])} shipped"),
        ("visible", human(s["visible_bytes"]), f"{len(img.files):,} paths in the final tree"),
        ("dive efficiency", pct(s["dive_efficiency"]), "as dive computes it"),
        ("dive wasted", human(s["dive_wasted_bytes"]), f"user wasted {pct(s['dive_user_wasted_percent'])}"),
        ("duplicates", human(s["duplicate_bytes"]), "savable, still visible"),
        ("junk", human(s["junk_bytes"]), "caches and leftovers, still visible"),
    ]
    return html_cards(cards)


def layers_table(img: "Image") -> str:
    layers = img.layers.copy()
    layers["digest"] = layers["digest"].str.slice(7, 19)
    return table(layers, ["layer", "digest", "compressed_size", "uncompressed_size", "added", "overwritten",
                          "whited_out", "wasted_bytes", "created_by"],
                 formats={"compressed_size": human, "uncompressed_size": human, "wasted_bytes": human},
                 numeric=["layer", "compressed_size", "uncompressed_size", "added", "overwritten", "whited_out",
                          "wasted_bytes"], mono=["created_by"], nowrap=["digest"],
                 headers={"compressed_size": "compressed", "uncompressed_size": "uncompressed",
                          "whited_out": "removed", "wasted_bytes": "wasted"})


class Report(HtmlDocument):
    """An HTML report of one image, optionally compared with another (``compare``, the newer one)."""

    def __init__(self, image: "Image", compare: "Image | None" = None, top: int = 25) -> None:
        self.image = image
        self.compare = compare
        self.top = top

    @cached_property
    def html(self) -> str:
        """The whole document (built once)."""
        img = self.image
        parts = [self._identity(), "<h2>Headline</h2>", image_cards(img), self._layers(), self._explore(),
                 self._waste(), self._largest(), self._packages(), self._findings(), self._anomalies()]
        if self.compare is not None:
            parts.append(self._diff())
        return document(f"ocilens report: {img.reference}", parts, CSS + TREE_CSS)

    def _identity(self) -> str:
        img = self.image
        created = img.config.get("created")
        return "<h2>Image</h2>" + kv_table([
            ("reference", img.reference), ("transport", img.source.transport),
            ("platform", img.platform or "unknown"), ("manifest digest", img.manifest_digest or "(none)"),
            ("image id (config digest)", img.image_id), ("media type", img.manifest.media_type),
            ("created", created or ""), ("layers", len(img.scans)),
            ("compressed size", human(int(img.layers["compressed_size"].sum()))),
            ("uncompressed size", human(int(img.layers["uncompressed_size"].sum()))),
        ])

    def _layers(self) -> str:
        img = self.image
        chart = svg_of(lambda ax: plots.layer_sizes(img, ax))
        return f"<h2>Layers</h2><div class=\"charts\">{chart}</div>{layers_table(img)}"

    def _explore(self) -> str:
        """Each layer as a ``<details>`` tree of its largest changes (opens and folds without script)."""
        return "<h2>Explore the layers</h2>" + layers_html(self.image, top=self.top)

    def _waste(self) -> str:
        b = self.image.bloat()
        if b.causes.empty:
            return "<h2>Waste</h2><p>No wasted bytes: every file version shipped is in the final image.</p>"
        chart = svg_of(lambda ax: plots.waste_by_cause(self.image, ax), size=(9, 3.5))
        by = table(b.by_cause, ["cause", "by_layer", "by_created_by", "files", "bytes"], formats={"bytes": human},
                   numeric=["by_layer", "files", "bytes"], mono=["by_created_by"],
                   headers={"by_layer": "made by layer", "by_created_by": "instruction"})
        files = table(b.causes, ["path", "layer", "size", "cause", "by_layer", "by_created_by"],
                      formats={"size": human}, numeric=["layer", "size", "by_layer"], mono=["path", "by_created_by"],
                      limit=self.top, headers={"layer": "shipped by layer", "by_layer": "made waste by layer",
                                               "by_created_by": "instruction"})
        return (f"<h2>Waste by cause</h2><div class=\"charts\">{chart}</div>{by}"
                f"<h3>Top wasted files</h3>{files}")

    def _largest(self) -> str:
        img = self.image
        files = img.files[img.files["type"] == "file"].sort_values("size", ascending=False, kind="stable")
        dirs = plots.directory_sizes(img.files)
        chart = svg_of(lambda ax: plots.largest_dirs(img, ax), size=(7, 4))
        return ("<h2>Largest files and directories</h2>"
                + table(files, ["path", "size", "layer", "mode"], formats={"size": human, "mode": lambda m: f"{m:o}"},
                        numeric=["size", "layer"], mono=["path"], limit=self.top)
                + f"<div class=\"charts\">{chart}</div>"
                + table(dirs, ["path", "bytes"], formats={"bytes": human}, numeric=["bytes"], mono=["path"],
                        limit=self.top))

    def _packages(self) -> str:
        """Packages: the largest, the waste they carry, the ones later layers removed (``ocilens.packages``)."""
        from .packages.show import packages_html

        return packages_html(self.image, self.top)

    def _findings(self) -> str:
        b = self.image.bloat()
        dup = b.duplicates
        out = ["<h2>Savings still visible</h2>"]
        if len(dup):
            shown = dup.assign(paths=dup["paths"].map(lambda ps: ", ".join(ps)))
            out.append("<h3>Duplicate content (same bytes at several paths, not hardlinked)</h3>")
            out.append(table(shown, ["size", "copies", "savable_bytes", "paths"],
                             formats={"size": human, "savable_bytes": human}, numeric=["size", "copies", "savable_bytes"],
                             mono=["paths"], limit=self.top))
        if len(b.junk):
            out.append("<h3>Well-known junk</h3>")
            out.append(table(b.junk, ["path", "kind", "size", "layer"], formats={"size": human},
                             numeric=["size", "layer"], mono=["path"], limit=self.top))
        if len(out) == 1:
            out.append("<p>No duplicate content and no well-known junk found.</p>")
        return "".join(out)

    def _anomalies(self) -> str:
        a = self.image.anomalies
        if a.empty:
            return ""
        return ("<h2>Anomalies</h2><p>Entries that are unsafe, invalid or ambiguous; a runtime handles them "
                "specially or refuses them.</p>"
                + table(a, ["layer", "kind", "path", "detail"], numeric=["layer"], mono=["path"], limit=100))

    def _diff(self) -> str:
        other = self.compare
        assert other is not None
        d = self.image.diff(other)
        s = d.summary()
        chart = svg_of(lambda ax: plots.diff_sizes(d, ax), size=(9, 4))
        out = [f"<h2>Compared with {esc(other.reference)}</h2>",
               f"<p>{s['added']:,} added, {s['modified']:,} modified, {s['removed']:,} removed; size change "
               f"{esc(human(s['size_delta']) if s['size_delta'] >= 0 else '-' + human(-s['size_delta']))}; "
               f"{s['shared_layers']} shared layers.</p>", f"<div class=\"charts\">{chart}</div>"]
        f = d.files.reindex(d.files["size_delta"].abs().sort_values(ascending=False).index)
        out.append(table(f, ["change", "path", "prev_size", "size", "size_delta", "content_changed", "mode_changed",
                             "owner_changed", "type_changed"],
                         formats={"prev_size": human, "size": human}, numeric=["prev_size", "size", "size_delta"],
                         mono=["path"], limit=self.top))
        if len(d.files):
            out.append("<h3>Explore the changes</h3><details class=\"layer\"><summary>the largest changes as a "
                       "tree</summary>" + tree_html(Tree(diff_entries(d)), self.top, labels=DIFF_LABELS)
                       + "</details>")
        from .packages.show import package_diff_html

        out.append(package_diff_html(d.packages, self.top))
        if len(d.shared_layers):
            out.append("<h3>Shared layers</h3>" + table(d.shared_layers, formats={"compressed_size": human},
                                                       mono=["digest"]))
        if len(d.config):
            out.append("<h3>Config</h3>" + table(d.config, mono=["a", "b"]))
        if len(d.history):
            out.append("<h3>History</h3>" + table(d.history, mono=["a", "b"]))
        return "".join(out)

    def __repr__(self) -> str:
        return f"<ocilens.Report {self.image.reference}{' vs ' + self.compare.reference if self.compare else ''}>"
