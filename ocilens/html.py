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

__all__ = ["esc", "printable", "HtmlDocument", "document", "cards", "human", "pct", "table", "svg_of", "CSS", "kv_table"]

CSS = """
.ocilens{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;max-width:1200px}
.ocilens h1{font-size:1.5em;margin:.2em 0}.ocilens h2{font-size:1.2em;border-bottom:1px solid #d0d7de;
padding-bottom:.2em;margin-top:1.4em}.ocilens table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
.ocilens table th,.ocilens table td{border:1px solid #d0d7de;padding:.2em .5em;text-align:left;vertical-align:top}
.ocilens table th{background:#f6f8fa}.ocilens table td.n{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}.ocilens table td.nw{white-space:nowrap}
.ocilens code,.ocilens .mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.95em;
word-break:break-all}.ocilens .cards{display:flex;flex-wrap:wrap;gap:.6em}.ocilens .card{border:1px solid #d0d7de;
border-radius:6px;padding:.5em .8em;min-width:10em}.ocilens .card b{display:block;font-size:1.4em}
.ocilens .muted{color:#656d76;font-size:.85em}.ocilens svg{max-width:100%;height:auto}
.ocilens .charts{display:flex;flex-wrap:wrap;gap:1em}
"""


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


def esc(value: Any) -> str:
    """Text for HTML, with unprintable characters shown as escapes; NA and None become an empty string.
    (A lone surrogate, a name's non-UTF-8 byte, could not even be written to a UTF-8 file.)"""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(printable(value), quote=True)


def pct(x: Any) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{float(x):.1%}"


Formatter = Callable[[Any], str]


def table(df: pd.DataFrame, columns: Sequence[str] | None = None, *, formats: dict[str, Formatter] | None = None,
          numeric: Iterable[str] = (), mono: Iterable[str] = (), nowrap: Iterable[str] = (),
          limit: int | None = None,
          headers: dict[str, str] | None = None) -> str:
    """An escaped HTML table of ``df``'s ``columns``; ``formats`` maps a column to a value -> text function
    (its output is escaped too)."""
    columns = list(columns or df.columns)
    formats = formats or {}
    numeric, mono, nowrap = set(numeric), set(mono), set(nowrap)
    headers = headers or {}
    rows = df.head(limit) if limit else df
    out = ["<table><thead><tr>"]
    out += [f"<th>{esc(headers.get(c, c))}</th>" for c in columns]
    out.append("</tr></thead><tbody>")
    for row in rows[columns].itertuples(index=False, name=None):
        out.append("<tr>")
        for c, v in zip(columns, row):
            text = esc(formats[c](v)) if c in formats else esc(v)
            cls = (' class="n"' if c in numeric else ' class="mono"' if c in mono else
                   ' class="mono nw"' if c in nowrap else "")
            out.append(f"<td{cls}>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if limit and len(df) > limit:
        out.append(f'<p class="muted">{len(df) - limit:,} more rows not shown.</p>')
    return "".join(out)


def kv_table(pairs: Sequence[tuple[str, Any]]) -> str:
    """A two-column key/value table, escaped."""
    body = "".join(f"<tr><th>{esc(k)}</th><td class=\"mono\">{esc(v)}</td></tr>" for k, v in pairs)
    return f"<table>{body}</table>"


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
