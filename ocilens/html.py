"""HTML building blocks for reports and rich display: escaped tables, inline SVG charts, scoped CSS.

Every string from an image (paths, link targets, history, labels) is attacker-controlled: it goes
through ``html.escape`` here and nowhere is raw text concatenated into markup.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
import math
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from .units import human_bytes as human

__all__ = ["esc", "printable", "HtmlDocument", "document", "cards", "human", "signed", "pct", "words", "table",
           "svg_of", "CSS", "kv_table", "path_html", "command_html", "prose_html", "LONG_SEGMENT"]

_MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"
# Selectors carry a table class (``table.t``) so they outrank JupyterLab's and Notebook 7's own table rules
# (``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td`` right-aligns every cell, and its tables are
# ``table-layout: fixed``). Text is left-aligned and numbers right-aligned; paths break only after a ``/``
# (``path_html``: ``<wbr>`` in ``white-space: nowrap``), commands only at spaces (``command_html``); a single
# segment longer than ``LONG_SEGMENT`` may break anywhere (``.lw``), the last resort. Wide tables scroll in a
# box of their own (``.tw``), so the page never grows wider than the screen.
CSS = f"""
.ocilens{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--jp-ui-font-color1,#1f2328);
max-width:1200px;line-height:1.45}}
.ocilens h1{{font-size:1.5em;margin:.2em 0;overflow-wrap:break-word}}.ocilens h2{{font-size:1.2em;
border-bottom:1px solid var(--jp-border-color2,#d0d7de);padding-bottom:.2em;margin-top:1.4em}}
.ocilens h3{{font-size:1.05em}}.ocilens p,.ocilens li{{overflow-wrap:break-word}}
.ocilens .tw{{overflow-x:auto;max-width:100%;margin:.4em 0}}
.ocilens table{{border-collapse:collapse;font-size:.85em;margin:.4em 0}}.ocilens table th,.ocilens table td{{
border:1px solid var(--jp-border-color2,#d0d7de);padding:.2em .5em;text-align:left;vertical-align:top}}
.ocilens table th{{background:var(--jp-layout-color2,#f6f8fa)}}.ocilens table td.n{{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}}
.ocilens table.t{{border-collapse:collapse;font-size:.85em;margin:0;table-layout:auto;width:auto}}
.ocilens table.t th,.ocilens table.t td{{border:1px solid var(--jp-border-color2,#d0d7de);padding:.2em .5em;
text-align:left;vertical-align:top;white-space:normal;word-break:normal;overflow-wrap:normal;max-width:none}}
.ocilens table.t th{{background:var(--jp-layout-color2,#f6f8fa);font-weight:600}}
.ocilens table.t td.n,.ocilens table.t th.n{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}
.ocilens table.t td.nw{{white-space:nowrap}}.ocilens table.t td.cm{{min-width:14em}}
.ocilens h1 .p,.ocilens h2 .p,.ocilens th .p,.ocilens .verdict .p{{font-family:inherit;font-size:inherit}}
.ocilens code,.ocilens .mono,.ocilens .p,.ocilens .c{{font-family:{_MONO};font-size:.95em}}
.ocilens code,.ocilens .mono{{word-break:normal;overflow-wrap:break-word}}
.ocilens .p,.ocilens .c{{white-space:nowrap;word-break:normal;overflow-wrap:normal}}
.ocilens .lw{{white-space:normal;overflow-wrap:anywhere}}
.ocilens .cards{{display:flex;flex-wrap:wrap;gap:.6em}}.ocilens .card{{border:1px solid var(--jp-border-color2,#d0d7de);
border-radius:6px;padding:.5em .8em;flex:1 1 8em;min-width:0;max-width:20em}}.ocilens .card b{{display:block;font-size:1.4em}}
.ocilens .muted{{color:var(--jp-ui-font-color2,#656d76);font-size:.85em}}
.ocilens .charts{{display:flex;flex-wrap:wrap;gap:1em;max-width:100%}}
.ocilens .chart{{overflow-x:auto;max-width:100%}}.ocilens svg{{max-width:100%;height:auto}}
.ocilens p.headline{{font-size:1.1em;max-width:60em}}.ocilens ol.fixes{{padding-left:1.6em;max-width:60em}}
.ocilens ol.fixes li{{margin:.3em 0}}.ocilens .secondary{{color:var(--jp-ui-font-color2,#656d76)}}
.ocilens .verdict{{font-size:1.05em}}.ocilens b.ref{{overflow-wrap:break-word}}
@media (max-width:640px){{.ocilens .chart svg{{min-width:32em;max-width:none}}.ocilens h1{{font-size:1.25em}}}}
"""
LONG_SEGMENT = 40  # a path segment or a word of a command at least this long may break anywhere (.lw)


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def _escape_char(m: re.Match[str]) -> str:
    o = ord(m.group())
    if 0xDC80 <= o <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def printable(name: Any) -> str:
    """A name as text that shows what it is: control characters, bidi overrides and bytes that are not
    UTF-8 become ``\\x..``/``\\u....`` escapes. Still text: HTML needs ``esc()`` on top."""
    return _UNPRINTABLE.sub(_escape_char, "" if name is None or name is pd.NA else str(name))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def esc(value: Any) -> str:
    """Text for HTML, with unprintable characters shown as escapes; NA and None become an empty string.
    (A lone surrogate, a name's non-UTF-8 byte, could not even be written to a UTF-8 file.)"""
    if _missing(value):
        return ""
    return html.escape(printable(value), quote=True)


def _segment(text: str, long: int) -> str:
    """One escaped piece of a path or a command; a piece of ``long`` characters or more may break anywhere."""
    return f'<span class="lw">{esc(text)}</span>' if len(text) >= long else esc(text)


def path_html(path: Any, long: int = LONG_SEGMENT) -> str:
    """A path (or a reference) as escaped HTML inside ``<span class="p">`` (``white-space: nowrap``): it
    breaks only after a ``/`` (a ``<wbr>``), never inside a name, not even at a hyphen or a space in it."""
    if _missing(path):
        return ""
    return f'<span class="p">{_slashed(printable(path), long)}</span>'


def _slashed(text: str, long: int) -> str:
    """``text`` escaped, with a ``<wbr>`` after each ``/`` that follows a name (not after a leading one)."""
    out = []
    for part in text.split("/"):
        if out:
            out.append("/<wbr>" if out[-1] else "/")
        out.append(_segment(part, long) if part else "")
    return "".join(out)


_SPACES = re.compile(r"(\s+)")


def command_html(text: Any, long: int = LONG_SEGMENT) -> str:
    """A command as escaped HTML inside ``<span class="c">`` (``white-space: nowrap``): it breaks only at
    its spaces (a ``<wbr>`` after each), never inside a word (``apt-get`` stays whole); a word of ``long``
    characters or more breaks after its ``/`` and, as the last resort, anywhere."""
    if _missing(text):
        return ""
    out = []
    for piece in _SPACES.split(printable(text)):
        if not piece:
            continue
        if piece.isspace():
            out.append(" <wbr>")
        elif len(piece) >= long:
            out.append(_slashed(piece, long))
        else:
            out.append(esc(piece))
    return f'<span class="c">{"".join(out)}</span>'


_CODE = re.compile(r"`([^`]*)`")
_PATHS = re.compile(r"(?<![\w/])(/[^\s`,;:()]+)")


def prose_html(text: Any) -> str:
    """A sentence as escaped HTML: its `backticked` parts as commands (``<code>``, broken only at spaces),
    the absolute paths in it broken only after a ``/``; the rest wraps as text does."""
    if _missing(text):
        return ""
    out = []
    for k, part in enumerate(_CODE.split(printable(text))):
        if k % 2:
            out.append(f"<code>{command_html(part)}</code>")
            continue
        for j, bit in enumerate(_PATHS.split(part)):
            out.append(path_html(bit) if j % 2 else esc(bit))
    return "".join(out)


def pct(x: Any) -> str:
    if _missing(x):
        return "n/a"
    return f"{float(x):.1%}"


def signed(n: Any) -> str:
    """A change in bytes for people: ``+1.2 kB``, ``-41.0 kB``, ``0 B``; empty for NA."""
    if _missing(n):
        return ""
    v = int(n)
    return human(v) if v <= 0 else "+" + human(v)


def words(name: Any) -> str:
    """An identifier as words: ``deleted_later`` -> ``deleted later``."""
    return "" if _missing(name) else str(name).replace("_", " ")


Formatter = Callable[[Any], str]


def table(df: pd.DataFrame, columns: Sequence[str] | None = None, *, formats: dict[str, Formatter] | None = None,
          numeric: Iterable[str] = (), mono: Iterable[str] = (), nowrap: Iterable[str] = (),
          paths: Iterable[str] = (), commands: Iterable[str] = (), limit: int | None = None,
          headers: dict[str, str] | None = None) -> str:
    """An escaped HTML table of ``df``'s ``columns`` in a box that scrolls sideways when it is too wide;
    ``formats`` maps a column to a value -> text function (its output is escaped too). Headers are the
    ``headers`` given, else the column's name as words (``wasted_bytes`` -> ``wasted bytes``). ``paths``
    break only after a ``/``, ``commands`` only at spaces; ``mono`` is monospace text that wraps as text does."""
    columns = list(columns or df.columns)
    formats = formats or {}
    numeric, mono, nowrap, paths, commands = set(numeric), set(mono), set(nowrap), set(paths), set(commands)
    headers = headers or {}
    rows = df.head(limit) if limit else df
    out = ['<div class="tw"><table class="t"><thead><tr>']
    out += [f'<th{" class=n" if c in numeric else ""}>{esc(headers.get(c, words(c)))}</th>' for c in columns]
    out.append("</tr></thead><tbody>")
    for row in rows[columns].itertuples(index=False, name=None):
        out.append("<tr>")
        for c, v in zip(columns, row):
            value = formats[c](v) if c in formats else v
            if c in paths:
                out.append(f'<td class="pa">{path_html(value)}</td>')
            elif c in commands:
                out.append(f'<td class="cm">{command_html(value)}</td>')
            else:
                cls = (' class="n"' if c in numeric else ' class="mono"' if c in mono else
                       ' class="mono nw"' if c in nowrap else "")
                out.append(f"<td{cls}>{esc(value)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    if limit and len(df) > limit:
        out.append(f'<p class="muted">{len(df) - limit:,} more rows not shown.</p>')
    return "".join(out)


def kv_table(pairs: Sequence[tuple[str, Any]]) -> str:
    """A two-column key/value table, escaped."""
    body = "".join(f"<tr><th>{esc(k)}</th><td class=\"mono\">{esc(v)}</td></tr>" for k, v in pairs)
    return f'<div class="tw"><table class="t">{body}</table></div>'


def cards(items: Sequence[tuple[str, str, str]]) -> str:
    """Headline cards: (label, value, note) each, escaped."""
    return '<div class="cards">' + "".join(
        f'<div class="card">{esc(k)}<b>{esc(v)}</b><span class="muted">{esc(note)}</span></div>'
        for k, v, note in items) + "</div>"


def document(title: str, body: list[str], css: str = CSS) -> str:
    """A whole self-contained page: escaped title, inline CSS, the body parts, the units footer."""
    return "\n".join([
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{css}</style></head><body><div class=\"ocilens\">", f"<h1>{esc(title)}</h1>", *body,
        '<p class="muted">Made by ocilens. Sizes in SI units (1 kB = 1000 B).</p></div></body></html>'])


class HtmlDocument:
    """A report's file and notebook faces, for a subclass that builds ``html`` (the whole document)."""

    html: str

    def to_html(self, path: str | Path) -> Path:
        """Write the document as one UTF-8 file; returns its path."""
        out = Path(path)
        out.write_text(self.html, encoding="utf-8")
        return out

    def _repr_html_(self) -> str:
        return self.html


def svg_of(draw: Callable[[Any], Any], size: tuple[float, float] = (7, 3.5)) -> str:
    """Run ``draw(ax)`` on a fresh ``Figure`` (not pyplot) and return reproducible inline SVG markup."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": "ocilens", "svg.fonttype": "path"}):
        fig = Figure(figsize=size, layout="constrained")
        draw(fig.subplots())
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[max(text.find("<svg"), 0):]
    # Inline SVG in HTML needs no namespaces or RDF metadata: drop them so the page names no URL at all.
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    return text


# The colours of a change (the kinds of ``ocilens.tree.KINDS``), defined once: the report's trees, the explorer
# and the notebook displays all take them from here. kind -> (background, text), on a light page and on a dark
# one (JupyterLab's dark theme, VS Code's dark themes); every pair, and each text colour on its page's
# background, has a WCAG contrast of at least 4.5 (tests/test_explore_e2e.py measures it in Chromium).
CHANGE_COLOURS = {"added": ("#dafbe1", "#116329"), "modified": ("#fff8c5", "#7d4e00"),
                  "metadata_only": ("#ddf4ff", "#0550ae"), "removed": ("#ffebe9", "#a40e26"),
                  "unchanged": ("#f6f8fa", "#656d76")}
CHANGE_COLOURS_DARK = {"added": ("#12361f", "#7ee787"), "modified": ("#3b2d05", "#e3b341"),
                       "metadata_only": ("#0d2a4d", "#79c0ff"), "removed": ("#4c1a1d", "#ffa198"),
                       "unchanged": ("#262c36", "#9198a1")}
# The selectors of a dark page: JupyterLab (and Notebook 7) say it on <body>, VS Code with a class.
DARK_PAGE = ('body[data-jp-theme-light="false"]', "body.vscode-dark",
             "body.vscode-high-contrast:not(.vscode-high-contrast-light)")


def change_colour_vars(scope: str) -> str:
    """CSS custom properties ``--ocilens-<kind>-bg`` / ``-fg`` on ``scope``, with their dark-page values."""
    def decls(colours: dict[str, tuple[str, str]]) -> str:
        return "".join(f"--ocilens-{k.replace('_', '-')}-bg:{bg};--ocilens-{k.replace('_', '-')}-fg:{fg};"
                       for k, (bg, fg) in colours.items())
    dark = ",".join(f"{page} {scope}" for page in DARK_PAGE)
    return f"{scope}{{{decls(CHANGE_COLOURS)}}}{dark}{{{decls(CHANGE_COLOURS_DARK)}}}"


def change_badge_css(scope: str) -> str:
    """``.k-<kind>`` badges under ``scope`` in the change colours (light values, the report's page)."""
    return "".join(f"{scope} .k-{k}{{background:{bg};color:{fg}}}" for k, (bg, fg) in CHANGE_COLOURS.items())
