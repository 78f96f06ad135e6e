"""The self-contained HTML report, rendered from Jinja2 templates (``ocilens/templates/``) with autoescaping.

One image: the headline (one sentence: the download and uncompressed size, the waste in bytes and percent,
the biggest fix), the list of fixes, the numbers (ours; dive's labelled as dive's, secondary), the layers
(what each changed, in the diff's words: added, modified, removed), each layer's largest changes as a
``<details>`` tree, waste by cause with the top files, the largest files and directories, packages,
duplicates, junk, anomalies, and the image's metadata last. Compared with a second image (``compare``), the
page opens with an A-vs-B table and what it means, then what changed, then the report of the first image.

Everything from an image is attacker-controlled and goes into the templates as plain values, escaped by
Jinja2 (``autoescape``) after ``printable``; the only markup passed in is built by our own escaping code:
the charts' SVG (matplotlib's, from our figures), the layer trees and package sections (``ocilens.tree``,
``ocilens.packages.show``, which escape every name), and the filters ``path``/``cmd``/``prose``
(``ocilens.html``). Charts are inline SVG; no script, no URL. jinja2 is imported when a page is rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import plots
from .html import CSS, HtmlDocument, command_html, human, path_html, pct, printable, prose_html, signed, svg_of, words
from .tree import TREE_CSS, LABELS, LayerViews, Tree, change_text, diff_entries, layers_html, tree_html

if TYPE_CHECKING:
    import pandas as pd

    from .diff import ImageDiff
    from .image import Image

__all__ = ["Report", "headline", "advice_table", "image_cards", "layers_table", "layer_changes", "render",
           "Column", "DataTable", "frame_table", "image_html", "bloat_html"]

TEMPLATES = Path(__file__).parent / "templates"
#: The columns of the layers table (report, notebook, CLI): changes in the diff's words, as ``layer_diff``,
#: the explorer and the report's trees count them (``ocilens.diff.change_counts``).
CHANGE_COLUMNS = ("added", "modified", "removed")


# ------------------------------------------------------------------------------------------ templates


def _finalize(value: Any) -> Any:
    """What every ``{{ ... }}`` prints: markup built by our escaping code as it is; anything else as
    ``printable`` text (NA and None empty), which autoescape then escapes."""
    if hasattr(value, "__html__"):
        return value
    return "" if value is None or _missing(value) else printable(value)


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, finalize=_finalize, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update({
        "path": lambda v: Markup(path_html(v)),  # breaks only after a /
        "cmd": lambda v: Markup(command_html(v)),  # breaks only at spaces
        "prose": lambda v: Markup(prose_html(v)),  # `code` as commands, paths broken at /
        "human": human, "signed": signed, "pct": pct, "words": words,
        "num": lambda v: "" if _missing(v) else f"{int(v):,}",
    })
    env.globals.update(zip=zip)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``ocilens/templates/<template>`` with autoescaping."""
    return _environment().get_template(template).render(**context)


def _markup(html: str) -> Any:
    """Mark HTML built by our own escaping code (``ocilens.html``, ``ocilens.tree``, matplotlib's SVG of our
    figures) as safe for the templates."""
    from markupsafe import Markup

    return Markup(html)


@dataclass
class Column:
    """A column of a ``DataTable``: its header and how its cells show: ``n`` a number (right-aligned), ``t``
    text, ``p`` a path (breaks after ``/``), ``c`` a command (breaks at spaces), ``m`` monospace that never
    breaks (a short digest), ``w`` a word or two that never breaks (a cause, a kind), ``x`` a sentence
    (``prose``)."""

    header: str
    kind: str = "t"
    ref: bool = False  # the header is an image's reference (breaks after a /)


@dataclass
class DataTable:
    """A table for the templates: plain values (escaped when rendered); ``more`` rows left out."""

    columns: list[Column]
    rows: list[list[Any]]
    more: int = 0
    total: int = 0


Spec = tuple[Any, ...]  # (column, header, kind) or (column, header, kind, format)


def frame_table(df: "pd.DataFrame", spec: Sequence[Spec], limit: int | None = None, *,
                drop_empty: bool = False) -> DataTable:
    """``df``'s columns as a ``DataTable``: ``spec`` is ``(column, header, kind[, format])`` each; the first
    ``limit`` rows. ``drop_empty`` leaves out the columns with no value in any row shown."""
    rows_df = df.head(limit) if limit else df
    columns = [Column(s[1], s[2], bool(s[4]) if len(s) > 4 else False) for s in spec]
    cells: list[list[Any]] = [[] for _ in range(len(rows_df))]
    keep = []
    for k, s in enumerate(spec):
        fmt = s[3] if len(s) > 3 else None
        values = [None if _missing(v) else (fmt(v) if fmt else v) for v in rows_df[s[0]].tolist()]
        keep.append(not drop_empty or any(v not in (None, "") for v in values))
        for row, v in zip(cells, values):
            row.append(v)
    if drop_empty:
        columns = [c for c, k in zip(columns, keep) if k]
        cells = [[v for v, k in zip(row, keep) if k] for row in cells]
    return DataTable(columns, cells, max(len(df) - len(rows_df), 0), len(df))


def _chart(draw: Callable[[Any], Any], size: tuple[float, float], label: str) -> dict[str, Any]:
    return {"svg": _markup(svg_of(draw, size=size)), "label": label}


# ------------------------------------------------------------------------------------------- numbers


def layer_changes(img: "Image", views: LayerViews | None = None) -> "pd.DataFrame":
    """What each layer changed, as ``layer_diff`` counts it (``ocilens.diff.change_counts``): ``layer``,
    ``added``, ``modified`` (``metadata_only`` of them), ``removed``. A directory listed again with only a new
    mtime is no change; a file listed again is a (metadata-only) modification. The events' own words
    (``added``, ``overwritten``, ``whited_out``: what each tar listed) stay in ``img.events`` and the
    ``layers`` frame."""
    import pandas as pd

    from .diff import change_counts

    rows = []
    for i in range(len(img.scans)):
        c = views.counts(i) if views is not None else change_counts(img.layer_diff(i))
        rows.append((i, c["added"], c["modified"], c["metadata_only"], c["removed"]))
    return pd.DataFrame(rows, columns=["layer", "added", "modified", "metadata_only", "removed"])


def headline(img: "Image") -> str:
    """One sentence (plain text): the image's download and uncompressed size, its waste in bytes, percent
    of the bytes shipped and download, and the biggest fix with what it saves."""
    layers = img.layers
    b = img.bloat()
    download, unpacked = int(layers["compressed_size"].sum()), int(layers["uncompressed_size"].sum())
    shipped, wasted = b.shipped_bytes, b.wasted_bytes
    text = (f"{img.reference} is {human(download)} to download ({human(unpacked)} uncompressed); "
            f"{human(wasted)} of the {human(shipped)} of files it ships are waste ({pct(wasted / shipped if shipped else 0)}"
            f", {human(b.wasted_download_bytes)} of the download)")
    advice = b.advice
    if advice.empty:
        return text + "; ocilens finds nothing to fix."
    top = advice.iloc[0]
    total = int(advice["download_bytes_saved"].sum())
    more = f" ({len(advice)} fixes save {human(total)} in all)" if len(advice) > 1 else ""
    return (f"{text}; the biggest fix saves {human(int(top['download_bytes_saved']))} of download"
            f"{more}: {top['fix']}")


def _fixes(img: "Image", top: int | None) -> dict[str, Any]:
    advice = img.bloat().advice
    shown = advice.head(top) if top else advice
    return {"items": [{"download": human(int(r.download_bytes_saved)), "bytes": human(int(r.bytes_saved)),
                       "kind": words(r.kind), "fix": r.fix} for r in shown.itertuples(index=False)],
            "more": len(advice) - len(shown), "total": human(int(advice["download_bytes_saved"].sum()))
            if len(advice) else ""}


def advice_table(img: "Image", top: int | None = None) -> str:
    """The fixes as an escaped HTML list, largest download saving first (``top``: that many)."""
    return render("fixes.html.j2", fixes=_fixes(img, top))


def _cards(img: "Image") -> dict[str, Any]:
    s = img.bloat().summary()
    layers = img.layers
    shipped = s["shipped_bytes"]
    cards = [
        ("download", human(int(layers["compressed_size"].sum())),
         f"{human(int(layers['uncompressed_size'].sum()))} uncompressed, {len(img.scans)} layers"),
        ("wasted", human(s["wasted_bytes"]), f"{pct(s['wasted_bytes'] / shipped if shipped else 0)} of "
                                              f"{human(shipped)} shipped; {human(s['wasted_download_bytes'])} "
                                              f"of download"),
        ("efficiency", pct(s["efficiency"]), "visible / shipped bytes"),
        ("final tree", human(s["visible_bytes"]), f"{len(img.files):,} paths"),
        ("duplicates", human(s["duplicate_bytes"]), "savable, still visible"),
        ("junk", human(s["junk_bytes"]), "caches and leftovers, still visible"),
    ]
    dive = (f"dive efficiency {pct(s['dive_efficiency'])}, wasted {human(s['dive_wasted_bytes'])}, user wasted "
            f"{pct(s['dive_user_wasted_percent'])}")
    return {"cards": cards, "dive": dive}


def image_cards(img: "Image") -> str:
    """The headline numbers as cards (ocilens's), then dive's numbers on a secondary line, labelled as dive's."""
    return render("cards.html.j2", numbers=_cards(img))


def _layers_data(img: "Image", views: LayerViews | None = None) -> DataTable:
    layers = img.layers.copy()
    changes = layer_changes(img, views)
    for c in CHANGE_COLUMNS:
        layers[c] = changes[c].to_numpy()
    layers["digest"] = layers["digest"].str.slice(7, 19)
    return frame_table(layers, [
        ("layer", "layer", "n"), ("digest", "digest", "m"), ("compressed_size", "compressed", "n", human),
        ("uncompressed_size", "uncompressed", "n", human), ("added", "added", "n", "{:,}".format),
        ("modified", "modified", "n", "{:,}".format), ("removed", "removed", "n", "{:,}".format),
        ("wasted_bytes", "wasted", "n", human), ("created_by", "command", "c")])


def layers_table(img: "Image", views: LayerViews | None = None) -> str:
    """The layers: sizes, what each changed (added, modified, removed: ``layer_diff``'s counts), its wasted
    bytes and its command."""
    return render("table.html.j2", table=_layers_data(img, views))


# ---------------------------------------------------------------------------------------- comparison


def _short_name(ref: str) -> str:
    """An image's reference without its directories (``oci:/a/b/app:1`` -> ``app:1``)."""
    return ref.rstrip("/").rsplit("/", 1)[-1] or ref


def _names(a: "Image", b: "Image") -> tuple[str, str]:
    na, nb = _short_name(a.reference), _short_name(b.reference)
    if na == nb:
        na, nb = a.reference, b.reference
    if na == nb:
        na, nb = f"{na} (A)", f"{nb} (B)"
    return na, nb


def _n(x: int) -> str:
    return f"{x:+,}" if x else "0"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if abs(n) == 1 else (many or one + 's')}"


def _compare(a: "Image", b: "Image", d: "ImageDiff", top: int) -> dict[str, Any]:
    """The A-vs-B table, the sentence that reads it, whether the images are identical, and what changed."""

    ba, bb = a.bloat(), b.bloat()

    def facts(img: "Image", bl: Any) -> dict[str, Any]:
        pk = img.packages
        return {"download": int(img.layers["compressed_size"].sum()),
                "uncompressed": int(img.layers["uncompressed_size"].sum()), "visible": bl.visible_bytes,
                "wasted": bl.wasted_bytes, "shipped": bl.shipped_bytes, "efficiency": bl.efficiency,
                "dive_efficiency": bl.dive.efficiency, "layers": len(img.scans), "files": len(img.files),
                "packages": int((pk["fate"] == "present").sum()) if len(pk) else 0}

    fa, fb = facts(a, ba), facts(b, bb)

    def wasted(f: dict[str, Any]) -> str:
        return f"{human(f['wasted'])} ({pct(f['wasted'] / f['shipped'] if f['shipped'] else 0)})"

    def points(x: float, y: float) -> str:
        delta = (y - x) * 100
        return "0" if abs(delta) < 0.05 else f"{delta:+.1f} points"

    rows = [
        ("download (compressed)", human(fa["download"]), human(fb["download"]), signed(fb["download"] - fa["download"]), False),
        ("uncompressed", human(fa["uncompressed"]), human(fb["uncompressed"]),
         signed(fb["uncompressed"] - fa["uncompressed"]), False),
        ("final tree (visible bytes)", human(fa["visible"]), human(fb["visible"]), signed(fb["visible"] - fa["visible"]),
         False),
        ("wasted (of the bytes shipped)", wasted(fa), wasted(fb), signed(fb["wasted"] - fa["wasted"]), False),
        ("efficiency", pct(fa["efficiency"]), pct(fb["efficiency"]), points(fa["efficiency"], fb["efficiency"]), False),
        ("efficiency (dive's)", pct(fa["dive_efficiency"]), pct(fb["dive_efficiency"]),
         points(fa["dive_efficiency"], fb["dive_efficiency"]), True),
        ("layers", f"{fa['layers']:,}", f"{fb['layers']:,}", _n(fb["layers"] - fa["layers"]), False),
        ("packages", f"{fa['packages']:,}", f"{fb['packages']:,}", _n(fb["packages"] - fa["packages"]), False),
        ("paths in the final tree", f"{fa['files']:,}", f"{fb['files']:,}", _n(fb["files"] - fa["files"]), False),
    ]
    name_a, name_b = _names(a, b)
    diff_ids_a = [str(x) for x in a.layers["diff_id"]]
    diff_ids_b = [str(x) for x in b.layers["diff_id"]]
    identical = a.image_id == b.image_id and diff_ids_a == diff_ids_b
    same_download = list(a.layers["digest"]) == list(b.layers["digest"])
    shared, shared_content = len(d.shared_layers), len(d.shared_content_layers)
    if identical:
        if same_download:
            downloads = "and the same download: every layer blob is the same."
        else:
            how = sorted({f"{ca} → {cb}" for ca, cb in zip(a.layers["compression"], b.layers["compression"])
                          if ca != cb})
            downloads = (f"but their downloads differ: {shared_content:,} of {fa['layers']:,} layers have the same "
                         f"content and {shared:,} the same blob"
                         + (f" (compression {', '.join(how)})" if how else "")
                         + f", {human(fa['download'])} against {human(fb['download'])}.")
        verdict = (f"{{A}} and {{B}} are identical: the same config ({a.image_id[:19]}) and the same layer "
                   f"content (diff_ids), {downloads}")
    else:
        verdict = _verdict(fa, fb)
    out: dict[str, Any] = {"a": a.reference, "b": b.reference, "name_a": name_a, "name_b": name_b, "rows": rows,
                           "verdict": _named(verdict, name_a, name_b), "identical": identical, "chart": None, "files": None, "tree": None,
                           "packages": None, "shared_layers": None, "config": None, "history": None}
    if identical:
        return out
    entries = diff_entries(d)
    tree = Tree(entries)
    out.update(d.header())
    if (d.files["size_delta"].fillna(0) != 0).any():
        n = int(min(15, (d.files["size_delta"].fillna(0) != 0).sum()))
        out["chart"] = _chart(lambda ax: plots.diff_sizes(d, ax), (6.4, 1.2 + 0.32 * n), "largest size changes")
    if len(entries):
        view = entries.assign(_abs=entries["delta"].abs()).sort_values(["_abs", "path"], ascending=[False, True],
                                                                        kind="stable")
        view = view.assign(what=[change_text(e) for e in view.itertuples(index=False)],
                           label=[LABELS[str(k)] for k in view["kind"]])
        out["files"] = frame_table(view, [
            ("label", "change", "w"), ("path", "path", "p"), ("prev_size", f"size in {name_a}", "n", human, True),
            ("size", f"size in {name_b}", "n", human, True), ("delta", "size change", "n", signed),
            ("what", "what changed", "t")], top, drop_empty=True)
        out["tree"] = _markup(tree_html(tree, top, labels=LABELS))
    from .packages.show import package_diff_html

    out["packages"] = _markup(package_diff_html(d.packages, top)) if len(d.packages) else None
    if len(d.shared_layers):
        sl = d.shared_layers.assign(digest=d.shared_layers["digest"].str.slice(7, 19))
        out["shared_layers"] = frame_table(sl, [("layer_a", f"layer in {name_a}", "n", None, True),
                                                ("layer_b", f"layer in {name_b}", "n", None, True),
                                                ("digest", "digest", "m"), ("compressed_size", "compressed", "n", human)])
    if len(d.config):
        out["config"] = frame_table(d.config, [("field", "field", "t"), ("a", name_a, "p", None, True),
                                                    ("b", name_b, "p", None, True)])
    if len(d.history):
        out["history"] = frame_table(d.history, [("change", "change", "w"), ("a", name_a, "c", None, True),
                                                     ("b", name_b, "c", None, True)],
                                     drop_empty=True)
    return out


def _named(sentence: str, name_a: str, name_b: str) -> list[tuple[bool, str]]:
    """``sentence`` with ``{A}`` and ``{B}`` replaced by the images' names, as (is a name, text) pieces: the
    template shows a name whole (broken only after a ``/``) and the rest as text."""
    pieces = []
    for k, part in enumerate(re.split(r"(\{[AB]\})", sentence)):
        if part:
            pieces.append((True, name_a if part == "{A}" else name_b) if k % 2 else (False, part))
    return pieces


def _verdict(fa: dict[str, Any], fb: dict[str, Any]) -> str:
    """What the A-vs-B table means, in one sentence (``{A}`` and ``{B}`` for the names): where B is worse and
    where it is better, and above all when B is worse in one way while its final tree is smaller."""
    worse, better = [], []
    dl = fb["layers"] - fa["layers"]
    if dl:
        (worse if dl > 0 else better).append(_plural(abs(dl), "more layer" if dl > 0 else "fewer layer",
                                                     "more layers" if dl > 0 else "fewer layers"))
    dw = fb["wasted"] - fa["wasted"]
    if dw:
        (worse if dw > 0 else better).append(f"{human(abs(dw))} {'more' if dw > 0 else 'less'} waste")
    dd = fb["download"] - fa["download"]
    if dd:
        (worse if dd > 0 else better).append(f"a {human(abs(dd))} {'bigger' if dd > 0 else 'smaller'} download")
    dv = fb["visible"] - fa["visible"]
    tree = f"its final tree is {human(abs(dv))} {'smaller' if dv < 0 else 'larger'}"
    if dv < 0 and worse:
        return (f"{{B}} is worse than {{A}} in one way or more ({', '.join(worse)}), but {tree}: what a later "
                f"layer deletes or replaces still ships in the layer that added it.")
    if dv > 0 and better:
        return f"{{B}} is better than {{A}} in one way or more ({', '.join(better)}), but {tree}."
    if not dv and not worse and not better:
        return "{B} and {A} have the same sizes, waste and number of layers."
    parts = worse + better
    return ("Compared with {A}, {B} has " + (", ".join(parts) if parts else "the same download")
            + (f", and {tree}." if dv else ", and its final tree is the same size."))


# --------------------------------------------------------------------------------------------- report


class Report(HtmlDocument):
    """An HTML report of one image, optionally compared with another (``compare``, the newer one)."""

    def __init__(self, image: "Image", compare: "Image | None" = None, top: int = 25) -> None:
        self.image = image
        self.compare = compare
        self.top = top

    @cached_property
    def html(self) -> str:
        """The whole document (built once)."""
        return render("report.html.j2", **self.context())

    def context(self) -> dict[str, Any]:
        """What the template shows: plain values (escaped when rendered) and markup built by our own code."""
        img = self.image
        views = LayerViews(img)
        title = f"ocilens report: {img.reference}"
        ctx: dict[str, Any] = {
            "title": title, "css": _markup(CSS + TREE_CSS), "reference": img.reference,
            "headline": headline(img), "fixes": _fixes(img, self.top), "numbers": _cards(img),
            "layers": {"chart": _chart(lambda ax: plots.layer_sizes(img, ax), (6.4, 3.2), "layer sizes"),
                       "table": _layers_data(img, views)},
            "explore": _markup(layers_html(img, top=self.top, views=views)),
            "waste": self._waste(), "largest": self._largest(), "packages": self._packages(),
            "findings": self._findings(), "anomalies": self._anomalies(), "identity": self._identity(),
            "compare": None,
        }
        if self.compare is not None:
            other = self.compare
            ctx["title"] = f"ocilens report: {img.reference} compared with {other.reference}"
            ctx["compare"] = _compare(img, other, img.diff(other), self.top)
        return ctx

    def _identity(self) -> DataTable:
        imgs = [self.image] + ([self.compare] if self.compare is not None else [])

        def facts(img: "Image") -> list[Any]:
            return [img.reference, img.source.transport, str(img.platform or "unknown"),
                    img.manifest_digest or "(none)", img.image_id, img.manifest.media_type,
                    img.config.get("created") or "", f"{len(img.scans):,}",
                    human(int(img.layers["compressed_size"].sum())), human(int(img.layers["uncompressed_size"].sum()))]

        fields = ["reference", "transport", "platform", "manifest digest", "image id (config digest)", "media type",
                  "created", "layers", "compressed size", "uncompressed size"]
        values = [facts(i) for i in imgs]
        columns = [Column("", "t")] + [Column(n, "p", True) for n in (_names(*imgs) if len(imgs) == 2 else [""])]
        return DataTable(columns, [[f, *(v[k] for v in values)] for k, f in enumerate(fields)])

    def _waste(self) -> dict[str, Any]:
        img = self.image
        b = img.bloat()
        if b.causes.empty:
            return {}
        by = b.by_cause
        chart = _chart(lambda ax: plots.waste_by_cause(img, ax), (6.4, 1.0 + 0.5 * min(len(by), 10)), "waste by cause")
        return {"chart": chart,
                "by_cause": frame_table(by, [("cause", "cause", "w", words), ("by_layer", "made by layer", "n"),
                                             ("by_created_by", "instruction", "c"), ("files", "files", "n", "{:,}".format),
                                             ("bytes", "bytes", "n", human)]),
                "files": frame_table(b.causes, [("path", "path", "p"), ("layer", "shipped by layer", "n"),
                                                ("size", "size", "n", human), ("compressed_bytes", "download", "n", human),
                                                ("cause", "cause", "w", words), ("by_layer", "made waste by layer", "n"),
                                                ("by_created_by", "instruction", "c")], self.top)}

    def _largest(self) -> dict[str, Any]:
        img = self.image
        files = img.files[img.files["type"] == "file"].sort_values("size", ascending=False, kind="stable")
        dirs = plots.directory_sizes(img.files)
        return {"files": frame_table(files, [("path", "path", "p"), ("size", "size", "n", human),
                                             ("layer", "layer", "n"), ("mode", "mode", "m", lambda m: f"{int(m):04o}")],
                                     self.top),
                "chart": _chart(lambda ax: plots.largest_dirs(img, ax), (6.4, 4), "largest directories")
                if len(dirs) else None,
                "dirs": frame_table(dirs, [("path", "directory", "p"), ("bytes", "bytes", "n", human)], self.top)}

    def _packages(self) -> Any:
        """Packages: the largest, the waste they carry, the ones later layers removed (``ocilens.packages``)."""
        from .packages.show import packages_html

        return _markup(packages_html(self.image, self.top))

    def _findings(self) -> dict[str, Any]:
        b = self.image.bloat()
        dup, junk = b.duplicates, b.junk
        out: dict[str, Any] = {"duplicates": None, "junk": None}
        if len(dup):
            shown = dup.assign(paths=dup["paths"].map(lambda ps: ", ".join(ps)))
            out["duplicates"] = frame_table(shown, [("size", "size", "n", human), ("copies", "copies", "n"),
                                                    ("savable_bytes", "savable", "n", human), ("paths", "paths", "x")],
                                            self.top)
        if len(junk):
            out["junk"] = frame_table(junk, [("path", "path", "p"), ("kind", "kind", "w", words),
                                             ("size", "size", "n", human), ("layer", "layer", "n")], self.top)
        return out

    def _anomalies(self) -> DataTable | None:
        a = self.image.anomalies
        if a.empty:
            return None
        return frame_table(a, [("layer", "layer", "n"), ("kind", "kind", "w", words), ("path", "path", "p"),
                               ("detail", "detail", "x")], 100)

    def __repr__(self) -> str:
        return f"<ocilens.Report {self.image.reference}{' vs ' + self.compare.reference if self.compare else ''}>"


# ------------------------------------------------------------------------------------ notebook views


def image_html(img: "Image") -> str:
    """``Image._repr_html_``: the headline and the top fixes first, then the numbers, the layer sizes and
    the layers (what each changed, in the diff's words)."""
    return render("image.html.j2", css=_markup(CSS), reference=img.reference,
                  subtitle=f"{img.platform or ''} · {img.manifest_digest or img.image_id} · {len(img.scans)} layers",
                  headline=headline(img), fixes=_fixes(img, 5), numbers=_cards(img),
                  chart=_chart(lambda ax: plots.layer_sizes(img, ax), (6, 2.6), "layer sizes"),
                  layers=_layers_data(img))


def bloat_html(img: "Image") -> str:
    """``Bloat._repr_html_``: the top fixes first, then the numbers, the waste by cause and its largest files."""
    b = img.bloat()
    waste = None
    if len(b.causes):
        waste = {"chart": _chart(lambda ax: plots.waste_by_cause(img, ax),
                                 (6.4, 1.0 + 0.5 * min(len(b.by_cause), 10)), "waste by cause"),
                 "files": frame_table(b.causes, [("path", "path", "p"), ("layer", "shipped by layer", "n"),
                                                 ("size", "size", "n", human), ("cause", "cause", "w", words),
                                                 ("by_layer", "made waste by layer", "n"),
                                                 ("by_created_by", "instruction", "c")], 10)}
    return render("bloat.html.j2", css=_markup(CSS), reference=img.reference, headline=headline(img),
                  fixes=_fixes(img, 5), numbers=_cards(img), waste=waste)
