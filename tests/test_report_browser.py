"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) opens it with no network,
and what it parsed (the DOM) shows the title and tables, with names from the layers as text, never markup."""

from __future__ import annotations

import html.parser
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import ocilens
from imagebuild import Entry, layout_from_tars, tar_layer

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = "<script>alert(1)</script>"
ATTR = "\"'><img src=x onerror=alert(2)>"
CREATED_BY = "RUN echo '<script>alert(3)</script>' > /app/x"
ESCAPING = "../<b>escape</b>"  # an unsafe name: listed among the anomalies


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``old``: two layers whose names are HTML; ``new``: one more layer that changes and removes them."""
    tmp = tmp_path_factory.mktemp("hostile")
    base = tar_layer([
        Entry.dir("app"), Entry.file(f"app/{SCRIPT}", b"s" * 40_000), Entry.file(f"app/{ATTR}", b"a" * 30_000),
        Entry.file("app/plain.txt", b"p" * 1000), Entry.file(ESCAPING, b"e"),
    ])
    second = tar_layer([Entry.file(f"app/{SCRIPT}", b"S" * 42_000), Entry.file("app/x", b"x" * 10)])
    third = tar_layer([Entry.whiteout(f"app/{ATTR}"), Entry.file(f"app/{SCRIPT}", b"T" * 1_000)])
    history = ["ADD app /app", CREATED_BY, "RUN tidy"]
    old = layout_from_tars(tmp, [base, second], history=history[:2])
    new = layout_from_tars(tmp, [base, second, third], history=history)
    return old, new


@pytest.fixture(scope="module")
def report(layouts: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    old, new = layouts
    a = ocilens.load(f"oci:{old}:t", progress=False)
    b = ocilens.load(f"oci:{new}:t", progress=False)
    assert SCRIPT in set(a.bloat().causes["path"].str.removeprefix("/app/"))  # it is in the waste tables too
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert a.report(compare=b).to_html(out) == out
    return out


def chromium(*args: str, tmp: Path, socket_dir: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with everything that could reach the network switched off. Its singleton socket
    goes under ``$TMPDIR``: a short directory of its own (``socket_dir``), whatever the test's tmp path."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=tmp,
                          env={**os.environ, "TMPDIR": str(socket_dir)})
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


class DOM(html.parser.HTMLParser):
    """What the browser built: elements (with attributes), text, title, and each table's header row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.title = ""
        self.headers: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.stack.append(tag)
        if tag == "table":
            self.headers.append([])

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] == "title":
            self.title += data
        if self.stack and self.stack[-1] == "th" and "thead" in self.stack and self.headers:
            self.headers[-1].append(data)


def parse(markup: str) -> DOM:
    dom = DOM()
    dom.feed(markup)
    dom.close()
    return dom


@pytest.fixture(scope="module")
def dom(report: Path, tmp_path_factory: pytest.TempPathFactory, socket_dir: Path) -> tuple[str, DOM]:
    assert CHROMIUM.exists(), "Debian's chromium is not installed: make debian-deps"
    tmp = tmp_path_factory.mktemp("chromium")
    markup = chromium("--dump-dom", report.as_uri(), tmp=tmp, socket_dir=socket_dir).stdout
    return markup, parse(markup)


def test_report_file_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "<link" not in text.lower() and "@import" not in text
    assert re.findall(r"url\((?!#)[^)]*\)", text) == []  # SVG clip paths point inside the page only
    assert text.count("<svg") >= 4  # layers, waste, directories, diff: inline, no files beside it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_browser_shows_title_and_tables(dom: tuple[str, DOM], layouts: tuple[Path, Path]) -> None:
    markup, d = dom
    old, new = layouts
    assert d.title == f"ocilens report: oci:{old}:t"
    h1 = markup.split("<h1>", 1)[1].split("</h1>", 1)[0]
    assert parse(h1).text == [d.title]
    headings = [t for t in ("Image", "Headline", "Layers", "Waste by cause", "Top wasted files",
                            "Largest files and directories", "Savings still visible", "Anomalies",
                            f"Compared with oci:{new}:t") if t not in d.text]
    assert headings == [], f"headings missing from the page: {headings}"
    tables = d.headers
    assert ["layer", "digest", "compressed", "uncompressed", "added", "overwritten", "removed", "wasted",
            "created_by"] in tables
    assert ["cause", "made by layer", "instruction", "files", "bytes"] in tables
    assert ["path", "shipped by layer", "size", "cause", "made waste by layer", "instruction"] in tables
    assert ["path", "size", "layer", "mode"] in tables and ["path", "bytes"] in tables
    assert ["layer", "kind", "path", "detail"] in tables
    assert ["change", "path", "prev_size", "size", "size_delta", "content_changed", "mode_changed",
            "owner_changed", "type_changed"] in tables
    assert sum(1 for tag, _ in d.tags if tag == "svg") >= 4
    assert "efficiency" in d.text and "dive efficiency" in d.text


def test_hostile_names_are_text_in_the_browser(dom: tuple[str, DOM]) -> None:
    markup, d = dom
    assert "<script" not in markup.lower(), "the page has a <script> element"
    assert [tag for tag, _ in d.tags if tag in ("script", "img", "iframe", "object", "embed")] == []
    handlers = [(tag, k) for tag, attrs in d.tags for k in attrs if k.startswith("on")]
    assert handlers == [], f"event handler attributes in the page: {handlers}"
    text = "".join(d.text)
    for name in (f"/app/{SCRIPT}", f"/app/{ATTR}", CREATED_BY):
        assert name in text, f"{name!r} is not shown as text"
    cells = [t for t in d.text if SCRIPT in t]
    assert len(cells) >= 3  # top wasted files, largest files, the diff: every table that lists it
    assert any("escape" in t and "../" in t for t in d.text), "the unsafe name is not listed as text"


def test_browser_screenshot(report: Path, tmp_path: Path, socket_dir: Path) -> None:
    png = tmp_path / "report.png"
    chromium(f"--screenshot={png}", "--window-size=1200,2000", "--hide-scrollbars", report.as_uri(), tmp=tmp_path,
             socket_dir=socket_dir)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 2000)
    assert len(data) > 30_000, f"a {len(data)} byte screenshot is (nearly) blank"
    if os.environ.get("OCILENS_KEEP_SCREENSHOT"):
        Path(os.environ["OCILENS_KEEP_SCREENSHOT"]).write_bytes(data)


def test_cli_writes_the_report(layouts: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = layouts
    out = tmp_path / "cli.html"
    proc = subprocess.run([sys.executable, "-m", "ocilens", "analyze", f"oci:{old}:t", "--html", str(out),
                           "--compare", f"oci:{new}:t"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    text = out.read_text(encoding="utf-8")
    assert f"<title>ocilens report: oci:{old}:t</title>" in text
    assert f"Compared with oci:{new}:t" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script" not in text.lower()
    assert "http://" not in text and "https://" not in text


def test_cli_report_of_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "sample.html"
    proc = subprocess.run([sys.executable, "-m", "ocilens", "analyze", "--html", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert f"ocilens report: {ocilens.SAMPLE_REF}" in text
    assert "localepurge" in text and "Compared with" not in text


def test_report_survives_names_with_dollar_signs(tmp_path: Path) -> None:
    """matplotlib typesets ``$...$`` in labels as math: a directory named ``$\\x$`` must not break the report."""
    odd = "opt/$\\notacommand$"
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.dir("opt"), Entry.dir(odd),
                                                    Entry.file(f"{odd}/big", b"b" * 20_000)])])
    img = ocilens.load(f"oci:{layout}:t", progress=False)
    out = img.report().to_html(tmp_path / "dollars.html")
    assert "/opt/$\\notacommand$/big" in out.read_text(encoding="utf-8")


def test_diff_table_shows_whole_bytes(dom: tuple[str, DOM], layouts: tuple[Path, Path]) -> None:
    """Sizes are whole bytes everywhere (Int64 in every frame): the diff's too, with files added or removed."""
    old, new = layouts
    d = ocilens.load(f"oci:{old}:t", progress=False).diff(ocilens.load(f"oci:{new}:t", progress=False))
    assert set(d.files["change"]) == {"modified", "removed"}
    assert {c: str(d.files[c].dtype) for c in ("size", "prev_size", "size_delta")} == {
        "size": "Int64", "prev_size": "Int64", "size_delta": "Int64"}
    _, page = dom
    assert [t for t in page.text if re.fullmatch(r"-?\d+\.0", t.strip())] == [], "sizes shown as floats"
