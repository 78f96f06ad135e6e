"""The explorer: dive's layer-by-layer browsing as a notebook widget with its own front end.

``img.explore()`` returns an ``Explorer``: the layers on the left (index, compressed size, wasted bytes,
``created_by``, whole on hover and wrapped at spaces below); on the right, what the selected layer changed
as a directory tree with dive's columns (mode, uid:gid, size) and what changed (``mode 0755 → 0700``,
``owner``, ``content``), each row in its change's colour and mark; filters (kinds of change, waste only,
a path search), a sort and dive's "aggregated" mode (the stack up to the selected layer); and dive's
bottom line: the image's efficiency and wasted bytes beside the selected layer's.
``img.diff(other).explore()`` returns a ``DiffExplorer`` with the same tree over the two final trees.

The widget is an anywidget (``ocilens/explorer/explorer.js`` and ``.css``, shipped with the package, no
build step), so it runs in JupyterLab, Notebook 7 and VS Code. It is driven by the keyboard while it has
the focus: ↑/↓ move through the layers or the tree, → opens a directory, ← folds it, space toggles, Tab
switches between the layer list and the tree, ``/`` goes to the search box, Escape hands the keys back to
the notebook. A notebook exported without widget state (nbconvert, GitHub) shows the ``text/html`` the
widget carries beside its view: the layer list and the selected layer's tree as static HTML.

The tree's lines are only the expanded part of the tree (``ocilens.tree.Tree`` computes a directory's
children only when it is opened), so an image of 100,000 files sends a few hundred lines. All the state
lives in an ``ExplorerModel``, which tests (and scripts) drive without a browser; the front end sends
messages (``Explorer.handle``) and draws the traits the model's state is pushed to.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import pandas as pd
import traitlets

from .diff import counts_text
from .html import change_colour_vars, esc, human
from .tree import (
    DEFAULT_KINDS,
    KINDS,
    LABELS,
    MARKS,
    SORTS,
    LayerViews,
    Row,
    Tree,
    change_text,
    diff_entries,
    empty_view,
    kind_counts,
    mode_text,
    normalize_kinds,
    owner_text,
    printable,
    tree_html,
)
from .errors import OcilensError, UsageError

if TYPE_CHECKING:
    from .diff import ImageDiff
    from .image import Image

__all__ = ["ExplorerModel", "Explorer", "DiffExplorer", "row_label", "row_data", "path_key", "key_path", "STATIC"]

# The front end's files, installed with the package (pyproject's package-data).
STATIC = Path(__file__).parent / "explorer"

# With a search that matches at most this many paths, every directory holding a match opens.
AUTO_EXPAND = 500


def path_key(path: str) -> str:
    """A path as the front end names it: itself when it is printable text, else ``#`` and the hex of its
    bytes (a name's non-UTF-8 bytes, kept as lone surrogates, cannot travel in a UTF-8 message)."""
    if path.isprintable():
        return path
    return "#" + os.fsencode(path).hex()


def key_path(key: str) -> str:
    """The path a front end's key names (``path_key``'s inverse)."""
    return os.fsdecode(bytes.fromhex(key[1:])) if key.startswith("#") else key


def _signed(n: int) -> str:
    return ("+" if n > 0 else "−" if n < 0 else "±") + human(abs(n))


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
        self.labels = LABELS  # one vocabulary for a layer and for a diff
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
        """The layer list: ``layer``, ``compressed_size``, ``changes`` (paths added, modified or removed:
        ``layer_diff``'s count, so a directory listed again with only a new mtime is not one),
        ``wasted_bytes`` and ``created_by``."""
        if self.is_diff:
            return pd.DataFrame(columns=["layer", "compressed_size", "changes", "wasted_bytes", "created_by"])
        layers = self.source.layers  # type: ignore[union-attr]
        out = layers[["layer", "compressed_size", "wasted_bytes", "created_by"]].copy()
        changes = []
        for i in range(len(out)):
            c = self.views.counts(i)  # type: ignore[union-attr]
            changes.append(c["added"] + c["modified"] + c["removed"])
        out.insert(2, "changes", pd.array(changes, dtype="Int64"))
        return out

    def counts(self) -> dict[str, int]:
        """What the selected layer (or the diff) changed, counted as ``ocilens.diff.change_counts`` counts
        ``layer_diff``: ``added``, ``modified`` (``metadata_only`` of them), ``removed``."""
        if self.views is None:
            return kind_counts(self.entries)
        if self.layer is None:
            return {"added": 0, "modified": 0, "metadata_only": 0, "removed": 0}
        return self.views.counts(self.layer)

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
            self.kinds = normalize_kinds(kinds)
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
        net = f", net {_signed(t.total_delta)}" if self.is_diff else ""
        return f"{where}: {len(t):,} {what}, {human(t.total_bytes)}{net}" + (
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


def _details(row: Row, aggregated: bool) -> str:
    """What a line is, in full, as text (the front end shows it under the tree)."""
    if row.more:
        return f"{row.more:,} more entries of {printable(row.path)}/"
    gone = row.kind == "removed"
    bits = [printable(row.path) + ("/" if row.is_dir else "")]
    if row.kind:
        bits.append(LABELS[row.kind])
    typ = row.prev_type if gone else row.type
    if typ:
        bits.append(typ)
    if row.is_dir and row.expandable:
        bits.append(f"{row.changes:,} change{'' if row.changes == 1 else 's'} below, {human(row.bytes)}")
    elif gone:
        bits.append(f"removed {human(row.prev_size)}" if row.prev_size is not None else "removed")
    elif row.size is not None:
        bits.append(human(row.size))
    mode = mode_text(row.prev_mode if gone else row.mode, typ)
    own = owner_text(row.prev_uid, row.prev_gid) if gone else owner_text(row.uid, row.gid)
    if mode:
        bits.append(f"{mode} {own}")
    what = change_text(row)
    if what:
        bits.append(what)
    if row.linkname and not gone:
        bits.append(f"→ {printable(row.linkname)}")
    if aggregated and row.layer is not None:
        bits.append(f"last changed by layer {row.layer}")
    if row.wasted:
        cause = (f" ({row.waste_cause}" + (f", by layer {row.waste_by}" if row.waste_by is not None else "") + ")"
                 if row.waste_cause else "")
        bits.append(f"{human(row.wasted)} wasted{cause}")
    return " · ".join(bits)


def row_data(row: Row, *, aggregated: bool = False) -> dict[str, Any]:
    """One line of the tree as the front end draws it (every text already ``printable``)."""
    if row.more:
        return {"p": path_key(row.path), "more": row.more, "d": row.depth, "n": "", "k": "", "mk": "", "x": False,
                "o": False, "dir": False, "info": _details(row, aggregated), "title": ""}
    gone = row.kind == "removed"
    typ = row.prev_type if gone else row.type
    own_entry = row.kind is not None
    if row.is_dir and row.expandable:
        size = human(row.bytes)
    elif gone:
        size = "" if row.prev_size is None or typ != "file" else human(row.prev_size)
    else:
        size = "" if row.size is None or typ not in ("file", "hardlink") else human(row.size)
    return {
        "p": path_key(row.path), "n": printable(row.name), "d": row.depth, "dir": row.is_dir, "x": row.expandable,
        "o": row.expanded, "k": row.kind or "", "mk": MARKS.get(row.kind, " ") if row.kind else " ",
        "mode": mode_text(row.prev_mode if gone else row.mode, typ) if own_entry else "",
        "own": (owner_text(row.prev_uid, row.prev_gid) if gone else owner_text(row.uid, row.gid)) if own_entry else "",
        "sz": size, "what": change_text(row) if own_entry else ("" if not row.is_dir else f"{row.changes:,} below"),
        "ln": printable(row.linkname) if row.linkname and typ in ("symlink", "hardlink") and not gone else "",
        "w": human(row.wasted) if row.wasted else "", "lay": row.layer if aggregated else None,
        "more": 0, "title": printable(row.path), "info": _details(row, aggregated),
    }


def _command(text: Any) -> str:
    """A ``created_by`` shown whole: each line printable, the line breaks kept."""
    if text is None or text is pd.NA or (isinstance(text, float) and text != text):
        return ""
    return "\n".join(printable(line) for line in str(text).split("\n"))


# -------------------------------------------------------------------------------------- widgets


class _ExplorerWidget(anywidget.AnyWidget):
    """The front end's traits and messages, shared by ``Explorer`` and ``DiffExplorer``."""

    _esm = (STATIC / "explorer.js").read_text(encoding="utf-8")
    _css = (STATIC / "explorer.css").read_text(encoding="utf-8") + "\n" + change_colour_vars(".ocx") + "\n"

    head = traitlets.Dict().tag(sync=True)
    layers = traitlets.List().tag(sync=True)
    layer = traitlets.Int(-1).tag(sync=True)
    layer_info = traitlets.Dict().tag(sync=True)
    kinds = traitlets.List().tag(sync=True)
    options = traitlets.Dict().tag(sync=True)
    rows = traitlets.List().tag(sync=True)
    describe = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Dict().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    model: ExplorerModel

    def _start(self, model: ExplorerModel, head: dict[str, Any]) -> None:
        self.model = model
        self.head = head
        self.on_msg(self._on_msg)
        self._push()

    # -- messages from the front end

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict):
            self.handle(content)

    def handle(self, msg: dict[str, Any]) -> None:
        """Do what the front end asks (``{"do": "layer" | "toggle" | "expand" | "collapse" | "more" |
        "select" | "filters" | "fold_all", ...}``), then send the new state. Bad requests are ignored."""
        m = self.model
        do = msg.get("do")
        path = key_path(msg["path"]) if isinstance(msg.get("path"), str) else None
        try:
            if do == "layer" and not m.is_diff:
                m.select_layer(int(msg["layer"]))
            elif do in ("toggle", "expand", "collapse", "more") and isinstance(path, str):
                {"toggle": m.toggle, "expand": m.expand, "collapse": m.collapse, "more": m.show_more}[do](path)
            elif do == "select" and isinstance(path, str):
                m.selected = path
                self.selected = path_key(path)
                return
            elif do == "filters":
                opts = {k: msg[k] for k in ("kinds", "search", "sort", "waste_only", "aggregated") if k in msg}
                if m.is_diff:
                    opts.pop("waste_only", None)
                    opts.pop("aggregated", None)
                m.set_filters(**opts)
            elif do == "fold_all":
                m.collapse_all()
            else:
                return
        except (OcilensError, KeyError, TypeError, ValueError):  # a request the model refuses changes nothing
            pass
        self._push()

    # -- what the front end draws

    def _push(self) -> None:
        m = self.model
        rows = m.rows()
        counts = m.entries["kind"].value_counts() if len(m.entries) else {}
        with self.hold_sync():
            self.kinds = [{"kind": k, "mark": MARKS[k], "label": LABELS[k], "on": k in m.kinds,
                           "count": int(counts.get(k, 0))} for k in KINDS]
            self.options = {"search": m.search, "sort": m.sort, "waste_only": m.waste_only,
                            "aggregated": m.aggregated}
            self.rows = [row_data(r, aggregated=m.aggregated) for r in rows]
            cut = f" (the first {len(rows):,} lines: fold some directories)" if len(rows) >= m.max_rows else ""
            self.describe = m.describe() + cut
            self.layer = -1 if m.layer is None else int(m.layer)
            self.layer_info = self._layer_info()
            self.status = self._status()
            self.selected = path_key(m.selected) if m.selected else ""

    def _layer_info(self) -> dict[str, Any]:
        return {}

    def _status(self) -> dict[str, str]:
        return {}

    # -- select as the front end would

    def select_layer(self, index: int) -> None:
        """Select a layer as a click would."""
        self.handle({"do": "layer", "layer": self.model.views.resolve(index)})  # type: ignore[union-attr]

    def toggle(self, path: str) -> None:
        """Open or fold a directory as a click would."""
        self.handle({"do": "toggle", "path": path})

    def set_filters(self, **filters: Any) -> None:
        """Change filters as the front end's controls would (``kinds``, ``search``, ``sort``, ...)."""
        self.model.set_filters(**filters)
        self._push()

    # -- a notebook saved without widget state

    def static_html(self) -> str:
        """The same tree as self-contained HTML with no script (what an exported notebook shows)."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = {**data, "text/plain": repr(self), "text/html": self.static_html()}
        return data, meta


class Explorer(_ExplorerWidget):
    """Browse an image layer by layer (``img.explore()``): pick a layer, see its changes as a tree.

    ``explorer.model`` is the ``ExplorerModel`` behind it. Options: ``layer`` (the first shown),
    ``aggregated``, ``kinds``, ``waste_only``, ``search``, ``sort``, ``rows`` (lines of the tree shown
    before it scrolls).
    """

    def __init__(self, image: "Image", *, layer: int = 0, rows: int = 24, **options: Any) -> None:
        super().__init__()
        model = ExplorerModel(image, layer=layer, **options)
        self.image = image
        layers = image.layers
        self.layers = [{"i": int(r.layer), "size": human(r.compressed_size),
                        "wasted": human(r.wasted_bytes) if r.wasted_bytes else "-",
                        "cmd": " ".join(_command(r.created_by).split()), "full": _command(r.created_by)}
                       for r in layers.itertuples(index=False)]
        self._start(model, {"mode": "layers", "title": "ocilens explorer", "reference": printable(image.reference),
                            "subtitle": f"· {model.n_layers} layers", "rows": int(rows)})

    def _layer_info(self) -> dict[str, Any]:
        m = self.model
        if m.layer is None:
            return {"title": "This image has no layers."}
        lr = self.image.layers.iloc[m.layer]
        return {"title": f"layer {m.layer}", "digest": str(lr["digest"]), "command": _command(lr["created_by"]),
                "counts": counts_text(m.counts()),
                "sizes": f"{human(lr['compressed_size'])} compressed, {human(lr['uncompressed_size'])} uncompressed"}

    def _status(self) -> dict[str, str]:
        b = self.image.bloat()
        d = b.dive
        image = (f"image: efficiency {b.efficiency:.1%} · wasted {human(b.wasted_bytes)}"
                 f" (dive: {d.efficiency:.1%}, {human(d.wasted_bytes)})")
        m = self.model
        if m.layer is None:
            return {"image": image, "layer": ""}
        lr = self.image.layers.iloc[m.layer]
        shipped, visible, wasted = int(lr["shipped_bytes"]), int(lr["visible_bytes"]), int(lr["wasted_bytes"])
        eff = f"efficiency {visible / shipped:.1%} · " if shipped else ""
        return {"image": image,
                "layer": f"layer {m.layer}: {eff}wasted {human(wasted)} of {human(shipped)} shipped"}

    def static_html(self) -> str:
        """The layer list, the selected layer's tree (its largest changes) and the bottom line, as HTML."""
        from .html import CSS
        from .tree import TREE_CSS

        m = self.model
        items = "".join(
            f'<tr title="{esc(l["full"])}"{" class=sel" if l["i"] == self.layer else ""}><td class="n">{l["i"]}</td>'
            f'<td class="n">{esc(l["size"])}</td><td class="n">{esc(l["wasted"])}</td>'
            f'<td class="cmd">{esc(l["cmd"])}</td></tr>' for l in self.layers)
        info = self.layer_info
        status = self.status
        tree = tree_html(m.tree, 50) if m.layer is not None else ""
        return (f"<style>{CSS}{TREE_CSS}{_STATIC_CSS}</style><div class=\"ocilens ocx-static\">"
                f"<b>ocilens explorer</b> <code>{esc(printable(self.image.reference))}</code>"
                f'<table><thead><tr><th>#</th><th>size</th><th>wasted</th><th>command</th></tr></thead>'
                f"<tbody>{items}</tbody></table>"
                f'<p><b>{esc(info.get("title", ""))}</b>: {esc(info.get("counts", ""))}</p>'
                f'<pre class="cmd">{esc(info.get("command", ""))}</pre>{tree}'
                f'<p class="status">{esc(status.get("image", ""))} │ {esc(status.get("layer", ""))}</p></div>')

    def __repr__(self) -> str:
        return f"<ocilens.Explorer {self.model.source.reference}: {self.model.describe()}>"  # type: ignore[union-attr]


class DiffExplorer(_ExplorerWidget):
    """Browse the difference of two images (``img.diff(other).explore()``) as one tree."""

    def __init__(self, diff: "ImageDiff", *, rows: int = 24, **options: Any) -> None:
        super().__init__()
        model = ExplorerModel(diff, **options)
        self.diff = diff
        c = diff.summary()
        self._start(model, {"mode": "diff", "title": "ocilens diff", "rows": int(rows),
                            "reference": f"{printable(diff.a.reference)} → {printable(diff.b.reference)}",
                            "subtitle": f"· {c['shared_layers']} shared layers"})

    def _status(self) -> dict[str, str]:
        s = self.diff.summary()
        return {"image": f"{counts_text(self.model.counts())}",
                "layer": f"size change {_signed(s['size_delta'])} ({s['size_delta']:+,} B) · "
                         f"{s['shared_layers']} shared layers"}

    def static_html(self) -> str:
        """The diff's tree (its largest changes) as HTML."""
        from .html import CSS
        from .tree import TREE_CSS

        status = self.status
        return (f"<style>{CSS}{TREE_CSS}{_STATIC_CSS}</style><div class=\"ocilens ocx-static\">"
                f"<b>ocilens diff</b> <code>{esc(self.head.get('reference', ''))}</code>"
                f'<p>{esc(status.get("image", ""))} · {esc(status.get("layer", ""))}</p>'
                f"{tree_html(self.model.tree, 50, labels=LABELS)}</div>")

    def __repr__(self) -> str:
        d = self.model.source
        return f"<ocilens.DiffExplorer {d.a.reference} -> {d.b.reference}: {self.model.describe()}>"  # type: ignore[union-attr]


_STATIC_CSS = """
.ocx-static table td.cmd{max-width:48em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.ocx-static tr.sel td{font-weight:600}
.ocx-static pre.cmd{white-space:pre-wrap;word-break:normal;overflow-wrap:normal;font-size:.85em}
.ocx-static .status{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em}
"""
