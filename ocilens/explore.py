"""The explorer: dive's layer-by-layer browsing as a notebook widget.

``img.explore()`` returns an ``Explorer``: the layers on the left (index, compressed size, wasted bytes,
``created_by``); on the right, what the selected layer changed as a directory tree with aggregated sizes,
filters (kinds of change, waste only, a path search), a sort and dive's "aggregated" mode (the stack up
to the selected layer). ``img.diff(other).explore()`` returns a ``DiffExplorer`` with the same tree over
the two final trees.

The tree is one ``Select`` whose lines are the expanded part of the tree (``ocilens.tree.Tree`` computes a
directory's children only when it is opened), so an image of 100,000 files costs a few dozen widgets.
Clicking a directory opens or folds it; clicking a file shows its details. All the state lives in an
``ExplorerModel``, which tests (and scripts) drive without a browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from .errors import UsageError
from .html import esc, human
from .tree import (
    DEFAULT_KINDS,
    DIFF_LABELS,
    KINDS,
    LAYER_LABELS,
    MARKS,
    SORTS,
    LayerViews,
    Row,
    Tree,
    diff_entries,
    empty_view,
    printable,
)

if TYPE_CHECKING:
    from .diff import ImageDiff
    from .image import Image

__all__ = ["ExplorerModel", "Explorer", "DiffExplorer", "row_label"]

# With a search that matches at most this many paths, every directory holding a match opens.
AUTO_EXPAND = 500


class ExplorerModel:
    """What an explorer shows, without any widget: the selected layer, the filters, the open directories.

    ``ExplorerModel(image)`` browses the layers of an image; ``ExplorerModel(image_diff)`` the difference
    of two images (no layers: ``layer`` is None, and "waste only" and "aggregated" do not apply).
    ``rows()`` gives the visible lines of the tree (``ocilens.tree.Row``).
    """

    def __init__(self, source: "Image | ImageDiff", *, layer: int = 0, aggregated: bool = False,
                 kinds: Iterable[str] | None = None, waste_only: bool = False, search: str = "",
                 sort: str = "size", limit: int = 200, max_rows: int = 3000) -> None:
        from .diff import ImageDiff

        self.source = source
        self.is_diff = isinstance(source, ImageDiff)
        self.views: LayerViews | None = None if self.is_diff else LayerViews(source)  # type: ignore[arg-type]
        self._diff_view: pd.DataFrame | None = None
        self.labels = DIFF_LABELS if self.is_diff else LAYER_LABELS
        self.layer: int | None = None
        self.aggregated = False
        self.kinds: tuple[str, ...] = DEFAULT_KINDS
        self.waste_only = False
        self.search = ""
        self.sort = "size"
        self.limit = int(limit)
        self.max_rows = int(max_rows)
        self.expanded: set[str] = set()
        self._opened_by_search: set[str] = set()
        self.limits: dict[str, int] = {}
        self.selected: str | None = None
        self._tree: tuple[tuple[Any, ...], Tree] | None = None
        if self.n_layers:
            self.select_layer(layer)
        if kinds is None:
            kinds = KINDS if aggregated else DEFAULT_KINDS
        self.set_filters(kinds=kinds, waste_only=waste_only, search=search, sort=sort, aggregated=aggregated)

    # -- what is shown

    @property
    def n_layers(self) -> int:
        return 0 if self.views is None else len(self.views)

    @property
    def entries(self) -> pd.DataFrame:
        """Every change of the current view, unfiltered (``ocilens.tree.COLUMNS``)."""
        if self.views is None:
            if self._diff_view is None:
                self._diff_view = diff_entries(self.source)  # type: ignore[arg-type]
            return self._diff_view
        if self.layer is None:  # an image without layers
            return empty_view()
        return self.views.view(self.layer, self.aggregated)

    @property
    def tree(self) -> Tree:
        """The current view, filtered and sorted (rebuilt only when the layer or a filter changes)."""
        key = (self.layer, self.aggregated, self.kinds, self.waste_only, self.search, self.sort)
        if self._tree is None or self._tree[0] != key:
            self._tree = (key, Tree(self.entries, kinds=self.kinds, waste_only=self.waste_only, search=self.search,
                                    sort=self.sort))
        return self._tree[1]

    def rows(self) -> list[Row]:
        """The visible lines: the root's children and, under each open directory, its children."""
        return self.tree.rows(self.expanded, limit=self.limit, limits=self.limits, max_rows=self.max_rows)

    def row(self, path: str) -> Row | None:
        """The visible line of ``path`` (None when it is not shown)."""
        return next((r for r in self.rows() if r.path == path and not r.more), None)

    def layer_table(self) -> pd.DataFrame:
        """The layer list: ``layer``, ``compressed_size``, ``changes`` (paths added, overwritten or whited
        out), ``wasted_bytes`` and ``created_by``."""
        if self.is_diff:
            return pd.DataFrame(columns=["layer", "compressed_size", "changes", "wasted_bytes", "created_by"])
        layers = self.source.layers  # type: ignore[union-attr]
        out = layers[["layer", "compressed_size", "wasted_bytes", "created_by"]].copy()
        out.insert(2, "changes", layers["added"] + layers["overwritten"] + layers["whited_out"])
        return out

    # -- changing it

    def select_layer(self, index: int) -> None:
        """Show layer ``index`` (negative counts from the top). Open directories stay open."""
        if self.views is None:
            raise UsageError("a diff of two images has no layers to select")
        self.layer = self.views.resolve(index)
        self.selected = None

    def set_filters(self, *, kinds: Iterable[str] | None = None, waste_only: bool | None = None,
                    search: str | None = None, sort: str | None = None, aggregated: bool | None = None) -> None:
        """Change any of the filters; the others stay. A search matching at most ``AUTO_EXPAND`` paths
        opens every directory that holds a match (until the search changes). Turning ``aggregated`` on (without ``kinds``) shows the
        ``unchanged`` paths too, so the whole stack is there; turning it off hides them again."""
        if kinds is not None:
            ks = tuple(k for k in KINDS if k in set(kinds))
            bad = sorted(set(kinds) - set(KINDS))
            if bad:
                raise UsageError(f"unknown change kinds {bad}", hint=f"choose among {', '.join(KINDS)}")
            self.kinds = ks
        if sort is not None:
            if sort not in SORTS:
                raise UsageError(f"cannot sort by {sort!r}", hint="sort by 'size' or 'name'")
            self.sort = sort
        if waste_only is not None:
            if waste_only and self.is_diff:
                raise UsageError("'waste only' needs layers: a diff of two images has none")
            self.waste_only = bool(waste_only)
        if aggregated is not None:
            if aggregated and self.is_diff:
                raise UsageError("'aggregated' needs layers: a diff of two images has none")
            if kinds is None and bool(aggregated) != self.aggregated:
                shown = set(self.kinds) | {"unchanged"} if aggregated else set(self.kinds) - {"unchanged"}
                self.kinds = tuple(k for k in KINDS if k in shown)
            self.aggregated = bool(aggregated)
        if search is not None and str(search) != self.search:
            self.search = str(search)
            self.expanded -= self._opened_by_search  # what the last search opened folds again
            self._opened_by_search = set()
            if self.search and len(self.tree) <= AUTO_EXPAND:
                self._opened_by_search = self.tree.directories() - self.expanded
                self.expanded |= self._opened_by_search

    def toggle(self, path: str) -> bool:
        """Open ``path`` if it is folded, fold it if it is open; returns whether it is open now."""
        if path in self.expanded:
            self.expanded.discard(path)
            return False
        self.expanded.add(path)
        return True

    def expand(self, path: str) -> None:
        self.expanded.add(path)

    def collapse(self, path: str) -> None:
        self.expanded.discard(path)

    def collapse_all(self) -> None:
        self.expanded.clear()
        self._opened_by_search.clear()
        self.limits.clear()

    def expand_all(self, limit: int = 10_000) -> None:
        """Open every directory of the current tree, if it holds at most ``limit`` changes."""
        if len(self.tree) > limit:
            raise UsageError(f"{len(self.tree):,} changes are too many to open at once",
                             hint="filter them first (kinds, waste only, search), or open directories one by one")
        self.expanded |= self.tree.directories()

    def show_more(self, directory: str) -> None:
        """Show ``limit`` more children of ``directory``."""
        self.limits[directory] = self.limits.get(directory, self.limit) + self.limit

    def describe(self) -> str:
        """One line: what is shown."""
        t = self.tree
        if not self.is_diff and self.layer is None:
            return "no layers"
        where = ("the diff" if self.is_diff else
                 f"layers 0..{self.layer}" if self.aggregated else f"layer {self.layer}")
        what = "paths" if self.aggregated else "changes"
        return f"{where}: {len(t):,} {what}, {human(t.total_bytes)}" + (
            f", {human(t.total_wasted)} wasted" if t.total_wasted else "")


# ----------------------------------------------------------------------------------------- text


def row_label(row: Row, *, aggregated: bool = False, width: int = 90) -> str:
    """A line of the tree as plain text (sizes first, as ``du`` prints them): size, kind mark, indent,
    fold arrow, name. Names go through ``printable``."""
    indent = "  " * row.depth
    if row.more:
        return f"{'':>9}   {indent}  … {row.more:,} more (click to show more)"
    mark = MARKS.get(row.kind, " ") if row.kind else " "
    arrow = ("▾ " if row.expanded else "▸ ") if row.expandable else "  "
    name = printable(row.name)
    if len(name) > width:
        name = name[: width - 1] + "…"
    text = f"{human(row.bytes):>9} {mark} {indent}{arrow}{name}{'/' if row.is_dir else ''}"
    if row.is_dir and row.expandable:
        text += f"  ({row.changes:,})"
    if row.type == "symlink" and row.linkname:
        text += f" -> {printable(row.linkname)[:width]}"
    if row.wasted:
        text += f"  wasted {human(row.wasted)}"
    if aggregated and row.layer is not None:
        text += f"  [layer {row.layer}]"
    return text


_CSS = """
.ocilens-explorer select{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.ocilens-explorer .widget-html-content{line-height:1.4;overflow-wrap:anywhere}
.ocilens-x .mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.ocilens-x .muted{color:#656d76}.ocilens-x .waste{color:#a40e26}
.ocilens-x .k{display:inline-block;padding:0 .35em;border-radius:3px;margin-right:.3em;font-size:.9em}
.ocilens-x .k-added{background:#dafbe1;color:#116329}.ocilens-x .k-overwritten{background:#fff8c5;color:#7d4e00}
.ocilens-x .k-metadata_only{background:#ddf4ff;color:#0550ae}.ocilens-x .k-whited_out{background:#ffebe9;color:#a40e26}
.ocilens-x .k-unchanged{background:#f6f8fa;color:#656d76}
"""


def _badge(kind: str, labels: dict[str, str]) -> str:
    return f'<span class="k k-{esc(kind)}">{esc(MARKS[kind])} {esc(labels[kind])}</span>'


def _details_html(model: ExplorerModel, row: Row) -> str:
    """What the selected line is, in full (escaped)."""
    head = f'<span class="mono">{esc(printable(row.path))}{"/" if row.is_dir else ""}</span>'
    bits = []
    if row.kind:
        bits.append(_badge(row.kind, model.labels))
    if row.type:
        bits.append(esc(row.type))
    if row.is_dir:
        bits.append(f"{row.changes:,} change{'' if row.changes == 1 else 's'} below, {esc(human(row.bytes))}")
    else:
        if row.kind == "whited_out":
            bits.append(f"removed {esc(human(row.prev_size))}" if row.prev_size is not None else "removed")
        elif row.size is not None:
            bits.append(esc(human(row.size)) + (f" (was {esc(human(row.prev_size))})"
                                                 if row.prev_size is not None and row.kind != "added" else ""))
    if row.linkname:
        bits.append(f'→ <span class="mono">{esc(printable(row.linkname))}</span>')
    if row.layer is not None and model.aggregated:
        bits.append(f"last changed by layer {row.layer}")
    if row.wasted:
        cause = f" ({esc(row.waste_cause)}" + (f", by layer {row.waste_by}" if row.waste_by is not None else "") + ")" \
            if row.waste_cause else ""
        bits.append(f'<span class="waste">{esc(human(row.wasted))} wasted{cause}</span>')
    return f'<div class="ocilens-x">{head}<br>{" · ".join(bits)}</div>'


# -------------------------------------------------------------------------------------- widgets


class _TreePane:
    """The right-hand side: filters, a status line, the tree list and the details of the selected line."""

    def __init__(self, model: ExplorerModel, rows: int, on_change: Any = None) -> None:
        w = widgets
        self.model = model
        self._quiet = False
        self._rows: list[Row] = []
        self.kind_boxes = {k: w.Checkbox(value=k in model.kinds, description=f"{MARKS[k]} {model.labels[k]}",
                                         indent=False, layout=w.Layout(width="auto", margin="0 12px 0 0"))
                           for k in KINDS}
        self.search = w.Text(value=model.search, placeholder="path contains…", description="search",
                             continuous_update=True, layout=w.Layout(width="260px"))
        self.sort = w.Dropdown(options=[("size", "size"), ("name", "name")], value=model.sort, description="sort",
                               layout=w.Layout(width="150px"))
        self.waste = w.Checkbox(value=model.waste_only, description="waste only", indent=False,
                                layout=w.Layout(width="auto", margin="0 12px 0 0"))
        self.aggregated = w.Checkbox(value=model.aggregated, description="aggregated (layers 0..i)", indent=False,
                                     layout=w.Layout(width="auto", margin="0 12px 0 0"))
        self.collapse = w.Button(description="fold all", layout=w.Layout(width="auto"))
        self.status = w.HTML()
        self.list = w.Select(options=[], rows=rows, layout=w.Layout(width="auto"))
        self.list.add_class("ocilens-tree")
        self.details = w.HTML(layout=w.Layout(min_height="3em"))
        options = [self.search, self.sort] + ([] if model.is_diff else [self.waste, self.aggregated]) + [self.collapse]
        self.box = w.VBox([w.HBox(list(self.kind_boxes.values()), layout=w.Layout(flex_flow="row wrap")),
                           w.HBox(options, layout=w.Layout(flex_flow="row wrap", align_items="center")),
                           self.status, self.list, self.details], layout=w.Layout(flex="1 1 auto", min_width="0",
                                                                                   overflow="hidden"))
        for box in self.kind_boxes.values():
            box.observe(self._on_filters, "value")
        for ctl in (self.search, self.sort, self.waste, self.aggregated):
            ctl.observe(self._on_filters, "value")
        self.collapse.on_click(self._on_collapse)
        self.list.observe(self._on_pick, "index")
        self.refresh()

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        self._quiet, old = True, self._quiet
        try:
            yield
        finally:
            self._quiet = old

    def refresh(self) -> None:
        """Redraw the list from the model (the selection is cleared, so any line can be clicked again)."""
        m = self.model
        self._rows = m.rows()
        with self.quiet():
            self.list.index = None
            self.list.options = [(row_label(r, aggregated=m.aggregated), k) for k, r in enumerate(self._rows)]
        legend = " ".join(_badge(k, m.labels) for k in m.kinds)
        cut = (f' <span class="waste">(first {len(self._rows):,} lines shown: fold some directories)</span>'
               if len(self._rows) >= m.max_rows else "")
        self.status.value = (f'<div class="ocilens-x"><b>{esc(m.describe())}</b>{cut}<br>'
                             f'<span class="muted">{legend or "no kind selected"} · click a directory to open or '
                             f'fold it</span></div>')

    def _on_filters(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        m = self.model
        if change["owner"] is self.aggregated:  # the mode decides which kinds show, as the model says
            m.set_filters(aggregated=self.aggregated.value)
        else:
            m.set_filters(kinds=[k for k, b in self.kind_boxes.items() if b.value], search=self.search.value,
                          sort=self.sort.value, waste_only=None if m.is_diff else self.waste.value)
        with self.quiet():
            for k, box in self.kind_boxes.items():
                box.value = k in m.kinds
        self.refresh()

    def _on_collapse(self, _: Any) -> None:
        self.model.collapse_all()
        self.refresh()

    def _on_pick(self, change: dict[str, Any]) -> None:
        index = change["new"]
        if self._quiet or index is None or not 0 <= index < len(self._rows):
            return
        row = self._rows[index]
        if row.more:
            self.model.show_more(row.path)
            self.refresh()
            return
        self.model.selected = row.path
        self.details.value = _details_html(self.model, row)
        if row.expandable:
            self.model.toggle(row.path)
            self.refresh()


class Explorer(widgets.VBox):
    """Browse an image layer by layer (``img.explore()``): pick a layer, see its changes as a tree.

    ``explorer.model`` is the ``ExplorerModel`` behind it. Options: ``layer`` (the first shown),
    ``aggregated``, ``kinds``, ``waste_only``, ``search``, ``sort``, ``rows`` (lines of the tree list).
    """

    def __init__(self, image: "Image", *, layer: int = 0, rows: int = 24, **options: Any) -> None:
        w = widgets
        model = ExplorerModel(image, layer=layer, **options)
        self.model = model
        self.pane = _TreePane(model, rows)
        table = model.layer_table()
        self._layer_rows = table
        labels = [(self._layer_label(r), int(r.layer)) for r in table.itertuples(index=False)]
        self.layers = w.Select(options=labels, value=model.layer, rows=min(max(len(labels), 4), 14),
                               layout=w.Layout(width="auto"))
        self.layers.add_class("ocilens-layers")
        self.layer_info = w.HTML()
        head = w.HTML('<div class="ocilens-x mono muted" style="font-size:12px;white-space:pre">'
                      + esc(f"{'#':>3} {'size':>9} {'wasted':>9}  created_by") + "</div>")
        left = w.VBox([w.HTML("<b>Layers</b>"), head, self.layers, self.layer_info],
                      layout=w.Layout(flex="0 0 38%", width="38%", min_width="0", margin="0 16px 0 0",
                                      overflow="hidden"))
        title = w.HTML(f'<div class="ocilens-x"><b>ocilens explorer</b> <span class="mono muted">'
                       f'{esc(printable(image.reference))}</span> <span class="muted">· {model.n_layers} layers'
                       f'</span></div>')
        super().__init__([w.HTML(f"<style>{_CSS}</style>"), title,
                          w.HBox([left, self.pane.box], layout=w.Layout(width="100%"))])
        self.add_class("ocilens-explorer")
        self.layers.observe(self._on_layer, "value")
        self._show_layer_info()

    @staticmethod
    def _layer_label(r: Any) -> str:
        created = " ".join(printable(r.created_by).split()) if r.created_by is not pd.NA else ""
        wasted = human(r.wasted_bytes) if r.wasted_bytes else "-"
        return f"{int(r.layer):>3} {human(r.compressed_size):>9} {wasted:>9}  {created[:120]}"

    def _show_layer_info(self) -> None:
        m = self.model
        if m.layer is None:
            self.layer_info.value = '<div class="ocilens-x muted">This image has no layers.</div>'
            return
        r = self._layer_rows.iloc[m.layer]
        layers = m.source.layers  # type: ignore[union-attr]
        lr = layers.iloc[m.layer]
        created = "" if r["created_by"] is pd.NA else str(r["created_by"])
        counts = m.views.layer(m.layer)["kind"].value_counts()  # type: ignore[union-attr]
        kinds = ", ".join(f"{int(counts[k]):,} {LAYER_LABELS[k]}" for k in KINDS if counts.get(k, 0))
        self.layer_info.value = (
            f'<div class="ocilens-x"><b>layer {m.layer}</b> <span class="mono muted">{esc(lr["digest"])}</span><br>'
            f'<span class="mono">{esc(printable(created))}</span><br>'
            f'{esc(human(lr["compressed_size"]))} compressed, {esc(human(lr["uncompressed_size"]))} uncompressed · '
            f'{esc(kinds or "no changes")}'
            + (f' · <span class="waste">{esc(human(lr["wasted_bytes"]))} wasted</span>' if lr["wasted_bytes"] else "")
            + "</div>")

    def _on_layer(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        self.model.select_layer(int(change["new"]))
        self.pane.details.value = ""
        self._show_layer_info()
        self.pane.refresh()

    def select_layer(self, index: int) -> None:
        """Select a layer as a click would."""
        self.layers.value = self.model.views.resolve(index)  # type: ignore[union-attr]

    def __repr__(self) -> str:
        return f"<ocilens.Explorer {self.model.source.reference}: {self.model.describe()}>"  # type: ignore[union-attr]


class DiffExplorer(widgets.VBox):
    """Browse the difference of two images (``img.diff(other).explore()``) as one tree."""

    def __init__(self, diff: "ImageDiff", *, rows: int = 24, **options: Any) -> None:
        w = widgets
        model = ExplorerModel(diff, **options)
        self.model = model
        self.pane = _TreePane(model, rows)
        s = diff.summary()
        title = w.HTML(
            f'<div class="ocilens-x"><b>ocilens diff</b> <span class="mono muted">{esc(printable(diff.a.reference))} → '
            f'{esc(printable(diff.b.reference))}</span><br><span class="muted">{s["added"]:,} added, '
            f'{s["modified"]:,} modified, {s["removed"]:,} removed, {s["size_delta"]:+,} bytes; '
            f'{s["shared_layers"]} shared layers</span></div>')
        super().__init__([w.HTML(f"<style>{_CSS}</style>"), title, self.pane.box])
        self.add_class("ocilens-explorer")

    def __repr__(self) -> str:
        d = self.model.source
        return f"<ocilens.DiffExplorer {d.a.reference} -> {d.b.reference}: {self.model.describe()}>"  # type: ignore[union-attr]
