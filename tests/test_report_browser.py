"""The HTML report in a real browser: Debian's headless Chromium, driven by Playwright (its own browsers are
never downloaded), opens the reports with no network.

Three pages: the sample's report, a compare report of two hostile images (names that are HTML, quotes and
``&``, built with Python's tarfile) where the newer one is worse in two ways but has a smaller final tree, and a
compare report of an image with its zstd copy (identical content, different downloads). At 1280 and 390 px
wide: the page is never wider than the window (wide tables scroll in their own box), commands break only at
spaces and paths only after a ``/``, numbers are right-aligned and text left-aligned; names from the layers
are text, never markup. What the pages must say (the headline, the A-vs-B table, "identical") is computed here
from the images' frames. Screenshots are kept under pytest's temporary directory and their paths printed at
the end of the module (``OCILENS_KEEP_SCREENSHOTS=DIR`` copies them there too).
"""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocilens
from browsers import offline_page
from imagebuild import Entry, layout_from_tars, tar_layer
from ocilens.units import human_bytes

SCRIPT = "<script>alert(1)</script>"
ATTR = "\"'><img src=x onerror=alert(2)>"
AMP = "fish & chips &amp; more"  # an & and what would be an entity if it were not escaped
CREATED_BY = "RUN echo '<script>alert(3)</script>' > /app/x"
ESCAPING = "../<b>escape</b>"  # an unsafe name: listed among the anomalies
WIDTHS = (1280, 390)
REPORTS = ("sample", "compare", "identical")


def _keep(path: Path) -> None:
    keep = os.environ.get("OCILENS_KEEP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``old``: two layers whose names are HTML; ``new``: one more layer that shrinks one of them and removes
    another (more waste, one more layer, a smaller final tree), and another user; ``zstd``: ``old`` with its
    layers compressed with zstd (the same config and diff_ids, other blobs)."""
    tmp = tmp_path_factory.mktemp("hostile")
    base = tar_layer([
        Entry.dir("app"), Entry.file(f"app/{SCRIPT}", b"s" * 40_000), Entry.file(f"app/{ATTR}", b"a" * 30_000),
        Entry.file("app/plain.txt", b"p" * 1000), Entry.file(f"app/{AMP}", b"m" * 500), Entry.file(ESCAPING, b"e"),
    ])
    second = tar_layer([Entry.file(f"app/{SCRIPT}", b"S" * 42_000), Entry.file("app/x", b"x" * 10)])
    third = tar_layer([Entry.whiteout(f"app/{ATTR}"), Entry.file(f"app/{SCRIPT}", b"T" * 1_000)])
    history = ["ADD app /app", CREATED_BY, "RUN tidy"]
    return {"old": layout_from_tars(tmp, [base, second], history=history[:2]),
            "new": layout_from_tars(tmp, [base, second, third], history=history, config={
                "config": {"Env": ["PATH=/usr/bin"], "User": "app"}}),
            "zstd": layout_from_tars(tmp, [base, second], "zstd", history=history[:2])}


@pytest.fixture(scope="module")
def images(layouts: dict[str, Path]) -> dict[str, ocilens.Image]:
    out = {k: ocilens.load(f"oci:{v}:t", progress=False) for k, v in layouts.items()}
    out["sample"] = ocilens.sample_image(progress=False)
    return out


@pytest.fixture(scope="module")
def reports(images: dict[str, ocilens.Image], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report")
    old = images["old"]
    assert SCRIPT in set(old.bloat().causes["path"].str.removeprefix("/app/"))  # it is in the waste tables too
    out = {"sample": images["sample"].report().to_html(tmp / "sample.html"),
           "compare": old.report(compare=images["new"]).to_html(tmp / "compare.html"),
           "identical": old.report(compare=images["zstd"]).to_html(tmp / "identical.html")}
    assert all(p.is_file() for p in out.values())
    return out


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where the screenshots go; their paths are printed when the module ends."""
    where = tmp_path_factory.mktemp("report-screenshots")
    yield where
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    taken = sorted(where.glob("*.png"))
    if taken and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for shot in taken:
                reporter.write_line(f"report screenshot: {shot}")


def open_page(browser: Any, path: Path, width: int) -> tuple[Any, Any, list[str]]:
    """The page at ``width`` px (390: a phone, which honours the viewport meta tag), no network, no script."""
    phone = width < 600
    context = browser.new_context(viewport={"width": width, "height": 844 if phone else 1000},
                                  is_mobile=phone, has_touch=phone, java_script_enabled=False)
    page, requests = offline_page(context)
    page.goto(path.as_uri())
    return context, page, requests


class DOM(html.parser.HTMLParser):
    """What the browser built: elements (with attributes), text, title, and each table's header row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.title = ""
        self.headers: list[list[str]] = []
        self._th: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.stack.append(tag)
        if tag == "table":
            self.headers.append([])
        if tag == "th" and "thead" in self.stack:
            self._th = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._th is not None and self.headers:
            self.headers[-1].append("".join(self._th))
            self._th = None
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] == "title":
            self.title += data
        if self._th is not None:
            self._th.append(data)


def parse(markup: str) -> DOM:
    dom = DOM()
    dom.feed(markup)
    dom.close()
    return dom


@pytest.fixture(scope="module")
def doms(reports: dict[str, Path], browser: Any) -> dict[str, tuple[str, DOM, Any]]:
    """Each report as the browser parsed it (its serialized DOM), and the rendered text of the page."""
    out = {}
    for name, path in reports.items():
        context, page, requests = open_page(browser, path, 1280)
        markup = page.content()
        text = page.inner_text("body")
        assert [u for u in requests if not u.startswith("file://")] == [], f"the report reached out: {requests}"
        context.close()
        out[name] = (markup, parse(markup), text)
    return out


def sentence(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------------------------- the file


def test_report_file_is_self_contained(reports: dict[str, Path]) -> None:
    for name, path in reports.items():
        text = path.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text, name
        assert "http://" not in text and "https://" not in text, name
        assert "<script" not in text.lower() and "<img" not in text.lower(), name
        assert "<link" not in text.lower() and "@import" not in text, name
        assert re.findall(r"url\((?!#)[^)]*\)", text) == [], name  # SVG clip paths point inside the page only
    compare = reports["compare"].read_text(encoding="utf-8")
    assert compare.count("<svg") >= 4  # layers, waste, directories, diff: inline, no files beside it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in compare
    assert "fish &amp; chips &amp;amp; more" in compare  # & escaped once, an entity-looking name kept as text


def test_templates_escape_and_mark_nothing_safe() -> None:
    """Everything reaches the page through Jinja2's autoescape; the templates never say ``|safe``."""
    from ocilens.report import Column, DataTable, render

    templates = Path(ocilens.__file__).parent / "templates"
    sources = {p.name: p.read_text(encoding="utf-8") for p in templates.glob("*.j2")}
    assert "report.html.j2" in sources
    assert not [n for n, s in sources.items() if "|safe" in s.replace(" ", "") or "autoescape false" in s]
    out = render("table.html.j2", table=DataTable([Column(SCRIPT, "t"), Column("p", "p"), Column("c", "c")],
                                                  [[ATTR, f"/a/{SCRIPT}/b", f"echo {AMP}"]]))
    assert "<script" not in out and "<img" not in out
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(2)&gt;" in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "fish <wbr>&amp; <wbr>chips <wbr>&amp;amp; <wbr>more" in out


# ------------------------------------------------------------------------------------- what it says


def test_headline_first_then_fixes_then_numbers_and_metadata_last(doms: dict[str, tuple[str, DOM, Any]],
                                                                    images: dict[str, ocilens.Image]) -> None:
    markup, d, text = doms["sample"]
    img = images["sample"]
    h2 = [m for m in re.findall(r"<h2>(.*?)</h2>", markup)]
    assert h2[:4] == ["Headline", "Fixes", "Numbers", "Layers"], h2
    assert h2[-1] == "Image", "the metadata comes last"
    layers = img.layers
    shipped, visible = int(layers["shipped_bytes"].sum()), int(layers["visible_bytes"].sum())
    wasted = shipped - visible
    headline = html_text(re.search(r'<p class="headline">(.*?)</p>', markup, re.S)[1])
    want = (f"{img.reference} is {human_bytes(int(layers['compressed_size'].sum()))} to download "
            f"({human_bytes(int(layers['uncompressed_size'].sum()))} uncompressed); {human_bytes(wasted)} of the "
            f"{human_bytes(shipped)} of files it ships are waste ({wasted / shipped:.1%}, "
            f"{human_bytes(int(layers['wasted_compressed_bytes'].sum()))} of the download)")
    assert headline.startswith(want), headline
    advice = img.bloat().advice
    top = advice.iloc[0]
    assert f"the biggest fix saves {human_bytes(int(top['download_bytes_saved']))} of download" in headline
    assert html_text(top["fix"]) in headline
    # the list of fixes, in their order, each with its download saving
    fixes = re.search(r'<ol class="fixes">(.*?)</ol>', markup, re.S)[1]
    items = [sentence(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<li>(.*?)</li>", fixes, re.S)]
    assert len(items) == len(advice)
    for item, row in zip(items, advice.itertuples(index=False)):
        assert item.startswith(f"{human_bytes(int(row.download_bytes_saved))} of download"), item
        assert html_text(row.fix).replace("`", "") in html_text(item), item  # `commands` shown as code
    # dive's numbers: labelled as dive's, on a secondary line after ours
    page = sentence(text)
    s = img.bloat().summary()
    dive = f"dive's numbers, as dive 0.13 computes them: dive efficiency {s['dive_efficiency']:.1%}, wasted " \
           f"{human_bytes(s['dive_wasted_bytes'])}"
    assert dive in page
    assert page.index(f"efficiency {s['efficiency']:.1%}") < page.index("dive's numbers")
    assert page.count("dive efficiency") == 1  # once, labelled, after ocilens's own numbers
    assert re.search(r'<p class="secondary muted">dive\'s numbers', markup)


def html_text(s: str) -> str:
    import html as html_lib

    return sentence(html_lib.unescape(str(s)))


def test_causes_and_kinds_show_as_words(doms: dict[str, tuple[str, DOM, Any]]) -> None:
    for name, (_, _, text) in doms.items():
        for identifier in ("deleted_later", "metadata_only", "delete_in_same_layer", "package_lists",
                           "whited_out", "size_delta", "created_by"):
            assert identifier not in text, f"{name}: {identifier} shown instead of words"
    _, d, _ = doms["sample"]
    assert ["cause", "made by layer", "instruction", "files", "bytes"] in d.headers
    assert ["layer", "digest", "compressed", "uncompressed", "added", "modified", "removed", "wasted",
            "command"] in d.headers


def test_compare_report_opens_with_a_vs_b(doms: dict[str, tuple[str, DOM, Any]],
                                         images: dict[str, ocilens.Image]) -> None:
    markup, d, text = doms["compare"]
    a, b = images["old"], images["new"]
    name_a, name_b = a.reference.rsplit("/", 1)[1], b.reference.rsplit("/", 1)[1]
    assert d.title == f"ocilens report: {a.reference} compared with {b.reference}"
    body = markup.split("<h1>", 1)[1]
    first = body.index('<table class="t cmp">')
    assert first < body.index("<h2>Headline</h2>") and "<table" not in body[:first], "the A-vs-B table comes first"
    assert d.headers[0] == ["", name_a, name_b, "change"]
    rows = {r[0]: r[1:] for r in table_rows(markup, 0)}

    def facts(img: ocilens.Image) -> dict[str, int]:
        layers, files = img.layers, img.files
        shipped = int(layers["shipped_bytes"].sum())
        visible = int(files.loc[files["type"] == "file", "size"].sum())  # the final tree, each inode once
        return {"download": int(layers["compressed_size"].sum()), "uncompressed": int(layers["uncompressed_size"].sum()),
                "visible": visible, "wasted": shipped - visible, "shipped": shipped, "layers": len(layers)}

    fa, fb = facts(a), facts(b)
    assert rows["download (compressed)"] == [human_bytes(fa["download"]), human_bytes(fb["download"]),
                                             "+" + human_bytes(fb["download"] - fa["download"])]
    assert rows["uncompressed"][:2] == [human_bytes(fa["uncompressed"]), human_bytes(fb["uncompressed"])]
    assert rows["final tree (visible bytes)"] == [human_bytes(fa["visible"]), human_bytes(fb["visible"]),
                                                  "-" + human_bytes(fa["visible"] - fb["visible"])]
    assert rows["wasted (of the bytes shipped)"][:2] == [
        f"{human_bytes(f['wasted'])} ({f['wasted'] / f['shipped']:.1%})" for f in (fa, fb)]
    assert rows["layers"] == ["2", "3", "+1"]
    assert rows["packages"] == ["0", "0", "0"]
    assert set(rows) >= {"efficiency", "efficiency (dive's)"}
    # B is worse in two ways while its final tree is smaller: the page says so
    assert fb["layers"] > fa["layers"] and fb["wasted"] > fa["wasted"] and fb["visible"] < fa["visible"]
    verdict = sentence("".join(parse(re.search(r'<p class="verdict">(.*?)</p>', markup, re.S)[1]).text))
    assert verdict.startswith(f"{name_b} is worse than {name_a} in one way or more (1 more layer, "
                              f"{human_bytes(fb['wasted'] - fa['wasted'])} more waste"), verdict
    assert f"but its final tree is {human_bytes(fa['visible'] - fb['visible'])} smaller" in verdict
    # what changed: sizes in human units, no empty column, the config headed by the images' names
    assert f"Compared with {b.reference}" in sentence(text)
    files = next(h for h in d.headers if h[:2] == ["change", "path"])
    assert files == ["change", "path", f"size in {name_a}", f"size in {name_b}", "size change", "what changed"]
    k = d.headers.index(files)
    cells = table_rows(markup, k)
    assert cells, "no file changes listed"
    for col in range(len(files)):
        assert any(r[col] for r in cells), f"column {files[col]!r} is always empty"
    for r in cells:
        for v in r[2:5]:
            assert v == "" or re.fullmatch(r"[+-]?\d+(\.\d)? (B|kB|MB|GB)", v), f"not a human size: {v!r}"
    assert ["field", name_a, name_b] in d.headers
    assert "a" not in [h for hs in d.headers for h in hs] and "b" not in [h for hs in d.headers for h in hs]


def table_rows(markup: str, index: int) -> list[list[str]]:
    """The body rows (cell texts, ``th`` and ``td``) of the ``index``-th table of the page."""
    table = re.findall(r"<table.*?</table>", markup, re.S)[index]
    body = table.split("<tbody>", 1)[1]
    return [[sentence("".join(parse(c).text)) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_identical_images_say_identical(doms: dict[str, tuple[str, DOM, Any]], images: dict[str, ocilens.Image],
                                        tmp_path: Path) -> None:
    a, z = images["old"], images["zstd"]
    assert a.image_id == z.image_id and list(a.layers["diff_id"]) == list(z.layers["diff_id"])
    assert set(a.layers["digest"]).isdisjoint(z.layers["digest"])  # no blob in common
    markup, d, text = doms["identical"]
    page = sentence(text)
    assert "are identical: the same config" in page and "their downloads differ: 2 of 2 layers have the same " \
        "content and 0 the same blob (compression gzip → zstd)" in page, page[:2000]
    assert "Compared with" not in page and "Largest size changes" not in markup and "no file changes" not in page
    same = sentence(" ".join(parse(a.report(compare=a).html).text))
    assert "are identical" in same and "the same download: every layer blob is the same" in same


def test_hostile_names_are_text_in_the_browser(doms: dict[str, tuple[str, DOM, Any]]) -> None:
    markup, d, _ = doms["compare"]
    assert "<script" not in markup.lower(), "the page has a <script> element"
    assert [tag for tag, _ in d.tags if tag in ("script", "img", "iframe", "object", "embed")] == []
    handlers = [(tag, k) for tag, attrs in d.tags for k in attrs if k.startswith("on")]
    assert handlers == [], f"event handler attributes in the page: {handlers}"
    text = "".join(d.text)
    for name in (f"/app/{SCRIPT}", f"/app/{ATTR}", f"/app/{AMP}", CREATED_BY):
        assert name in text, f"{name!r} is not shown as text"
    assert any(CREATED_BY in sentence(t) for t in d.text)
    cells = [t for t in d.text if SCRIPT in t]
    assert len(cells) >= 3  # top wasted files, largest files, the diff: every table that lists it
    assert ESCAPING in text, "the unsafe name is not listed as text"


# ------------------------------------------------------------------------------------ layout in a browser

LAYOUT_JS = """() => {
  const problems = [], tables = [];
  let wrappedCommands = 0, wrappedPaths = 0, commands = 0, paths = 0;
  // each character of el's text with the top of its line box (text in .lw, the last resort, may break anywhere,
  // at its edges too: a segment too long for the line ends where the line does)
  const lines = (el, ok) => {
    const chars = [];
    let space = false;  // a space collapsed away (at the end of a line it takes no room)
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const long = !!n.parentElement.closest('.lw');
      for (let i = 0; i < n.length; i++) {
        const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
        const rects = r.getClientRects();
        if (rects.length && rects[0].width > 0) {
          chars.push({c: n.data[i], top: rects[0].top, long, space});
          space = false;
        } else if (/\\s/.test(n.data[i])) space = true;
      }
    }
    let count = chars.length ? 1 : 0;
    for (let k = 1; k < chars.length; k++) {
      if (chars[k].top > chars[k - 1].top + 4) {
        count++;
        const a = chars[k - 1], b = chars[k];
        if (!(a.long || b.long) && !ok(b.space ? ' ' : a.c, b.c))  // a .lw run may break anywhere, its edges too
          problems.push(`${el.className}: "${el.textContent.slice(0, 70)}" broken between "${a.c}" and "${b.c}"`);
      }
    }
    return count;
  };
  for (const el of document.querySelectorAll('.ocilens .c')) {
    const n = lines(el, (a, b) => /\\s/.test(a) || /\\s/.test(b));
    if (n) { commands++; if (n > 1) wrappedCommands++; }
  }
  for (const el of document.querySelectorAll('.ocilens .p')) {
    const n = lines(el, (a) => a === '/');
    if (n) { paths++; if (n > 1) wrappedPaths++; }
  }
  for (const el of document.querySelectorAll('.ocilens span.nm'))
    if (el.getClientRects().length) lines(el, () => false);  // a tree's names never break
  const align = [];
  for (const td of document.querySelectorAll('table.t td, table.t thead th')) {
    const a = getComputedStyle(td).textAlign;
    const want = td.classList.contains('n') ? 'right' : 'left';
    if (a !== want) align.push(`${td.tagName} "${td.textContent.slice(0, 30)}" is ${a}, not ${want}`);
  }
  const style = (sel) => [...document.querySelectorAll(sel)].slice(0, 1).map(e => {
    const s = getComputedStyle(e); return [s.whiteSpace, s.wordBreak, s.overflowWrap]; })[0];
  const tooWide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.right > innerWidth + 1 && !e.closest('.tw, .chart, ul.tree');
  }).slice(0, 5).map(e => `${e.tagName}.${e.className}`);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth, problems: problems.slice(0, 20),
          wrappedCommands, wrappedPaths, commands, paths, align: align.slice(0, 10), tooWide,
          cmdStyle: style('.ocilens .c'), pathStyle: style('.ocilens .p'),
          scrollBoxes: [...document.querySelectorAll('.tw')].filter(e => e.scrollWidth > e.clientWidth).length};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", REPORTS)
def test_layout_fits_the_window_and_breaks_only_between_words(reports: dict[str, Path], browser: Any, shots: Path,
                                                              name: str, width: int) -> None:
    context, page, requests = open_page(browser, reports[name], width)
    try:
        got = page.evaluate(LAYOUT_JS)
        shot = shots / f"report-{name}-{width}px.png"
        page.screenshot(path=str(shot), full_page=True)
        _keep(shot)
    finally:
        context.close()
    assert shot.stat().st_size > 20_000, f"a {shot.stat().st_size} byte screenshot is (nearly) blank"
    assert [u for u in requests if not u.startswith("file://")] == []
    assert got["scrollWidth"] <= got["innerWidth"] == width, (got["scrollWidth"], got["tooWide"])
    assert got["tooWide"] == [], got["tooWide"]
    assert got["problems"] == [], "\n".join(got["problems"])
    assert got["align"] == [], got["align"]
    assert got["cmdStyle"] == ["nowrap", "normal", "normal"] and got["pathStyle"] == ["nowrap", "normal", "normal"]
    assert got["commands"] > 0 and got["paths"] > 0
    if width == 390 and name in ("sample", "compare"):
        # the checks above mean something: at a phone's width commands and paths do wrap, and tables scroll
        assert got["wrappedCommands"] > 0 and got["wrappedPaths"] > 0, got
        assert got["scrollBoxes"] > 0, "no table is wider than a phone: the scroll boxes were not tested"


# -------------------------------------------------------------------------------------------- the CLI


def test_cli_writes_the_report(layouts: dict[str, Path], tmp_path: Path) -> None:
    old, new = layouts["old"], layouts["new"]
    out = tmp_path / "cli.html"
    proc = subprocess.run([sys.executable, "-m", "ocilens", "analyze", f"oci:{old}:t", "--html", str(out),
                           "--compare", f"oci:{new}:t"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    text = out.read_text(encoding="utf-8")
    assert f"<title>ocilens report: oci:{old}:t compared with oci:{new}:t</title>" in text
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
    assert "$\\notacommand$/<wbr>big" in out.read_text(encoding="utf-8")


def test_diff_sizes_are_human_units(doms: dict[str, tuple[str, DOM, Any]], images: dict[str, ocilens.Image]) -> None:
    """``size_delta`` is whole bytes in the frame (Int64); the page shows every size in human units."""
    d = images["old"].diff(images["new"])
    assert set(d.files["change"]) == {"modified", "removed"}
    assert {c: str(d.files[c].dtype) for c in ("size", "prev_size", "size_delta")} == {
        "size": "Int64", "prev_size": "Int64", "size_delta": "Int64"}
    _, page, _ = doms["compare"]
    assert [t for t in page.text if re.fullmatch(r"-?\d+\.0", t.strip())] == [], "sizes shown as floats"
    deltas = {human_bytes(int(v)) if v <= 0 else "+" + human_bytes(int(v)) for v in d.files["size_delta"]}
    assert deltas <= {t.strip() for t in page.text}
    raw = [t for t in page.text if re.fullmatch(r"[+-]?[1-9]\d{3,}", t.strip().replace(",", ""))]  # not modes (0644)
    assert raw == [], "raw bytes shown"
