"""One vocabulary, the same numbers everywhere (issue 17): every surface that counts what a layer did says it in
the diff's words (added, modified, removed) with ``layer_diff``'s numbers, and the events keep their own words
(added, overwritten, whited_out) where they count events; no table mixes the two.

The expected numbers are computed here, from ``layer_diff``'s ``change`` column and flags and from ``events``,
never read back from the surface under test: the ``layers`` DataFrame, ``ocilens analyze``'s output, the
report's layers table and trees, the notebook display of an image, the explorer's model and widget, and the
header and tree of an image diff in the report, the CLI and the explorer.
"""

from __future__ import annotations

import html
import html.parser
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ocilens
from imagebuild import Entry, layout_from_tars, tar_layer
from ocilens.explore import Explorer, ExplorerModel
from ocilens.units import human_bytes

EVENT_WORDS = ("added", "overwritten", "whited_out")
CHANGE_WORDS = ("added", "modified", "removed")


@pytest.fixture(scope="module")
def sample() -> ocilens.Image:
    return ocilens.sample_image(progress=False)


def expected_changes(img: ocilens.Image) -> list[dict[str, int]]:
    """Per layer, from ``layer_diff`` directly: rows by ``change``, and the modified rows whose content and
    type did not change (metadata only)."""
    out = []
    for i in range(len(img.scans)):
        d = img.layer_diff(i)
        change = d["change"].astype(str)
        content = (d["content_changed"].fillna(False) | d["type_changed"].fillna(False)).astype(bool)
        out.append({"added": int((change == "added").sum()), "modified": int((change == "modified").sum()),
                    "metadata_only": int(((change == "modified") & ~content).sum()),
                    "removed": int((change == "removed").sum())})
    return out


def expected_events(img: ocilens.Image) -> list[dict[str, int]]:
    ev = img.events
    return [{w: int(((ev["layer"] == i) & (ev["event"] == w)).sum()) for w in EVENT_WORDS}
            for i in range(len(img.scans))]


def counts_words(c: dict[str, int]) -> str:
    meta = f" ({c['metadata_only']:,} metadata only)" if c["metadata_only"] else ""
    return f"{c['added']:,} added, {c['modified']:,} modified{meta}, {c['removed']:,} removed"


class Tables(html.parser.HTMLParser):
    """Each table's header row and body rows (cell texts), and every ``<summary>``'s text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict[str, list]] = []
        self.summaries: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False
        self._summary: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append({"head": [], "rows": []})
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "summary":
            self._summary, self._depth = [], 0
        elif self._summary is not None:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            (self.tables[-1]["head"] if self._in_head else self.tables[-1]["rows"]).append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "summary" and self._summary is not None:
            self.summaries.append(" ".join("".join(self._summary).split()))
            self._summary = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._summary is not None:
            self._summary.append(data)


def parse(markup: str) -> Tables:
    t = Tables()
    t.feed(markup)
    t.close()
    return t


def layers_rows(markup: str) -> list[dict[str, str]]:
    """The layers table of a page (the table whose header has ``modified`` and ``command``), as dicts."""
    (table,) = [t for t in parse(markup).tables if t["head"] and "modified" in t["head"][0] and "command" in t["head"][0]]
    head = table["head"][0]
    return [dict(zip(head, row)) for row in table["rows"]]


def assert_one_vocabulary(markup: str) -> None:
    for t in parse(markup).tables:
        head = set(t["head"][0]) if t["head"] else set()
        events = head & {"overwritten", "whited_out", "whited out", "overwr"}
        assert not (events and "modified" in head), f"a table mixes events and changes: {sorted(head)}"


# ----------------------------------------------------------------------------------------------- truth


def test_the_two_vocabularies_count_different_things(sample: ocilens.Image) -> None:
    """The issue's example: layer 1 lists 47 paths again (events) but changes one (46 directories restated
    with only a new mtime): so the two words must never share a column."""
    ev, ch = expected_events(sample), expected_changes(sample)
    assert ev[1]["overwritten"] == 47 and ch[1]["modified"] == 1
    assert [e["added"] for e in ev] == [c["added"] for c in ch]  # "added" means the same in both
    assert sum(e["whited_out"] for e in ev) == sum(c["removed"] for c in ch)


def test_layers_frame_keeps_the_events_words_and_numbers(sample: ocilens.Image) -> None:
    layers = sample.layers
    for i, want in enumerate(expected_events(sample)):
        assert {w: int(layers[w].iloc[i]) for w in EVENT_WORDS} == want
    assert "modified" not in layers.columns  # the frame counts events only


def test_layer_diff_and_explorer_count_the_same(sample: ocilens.Image) -> None:
    from ocilens.diff import change_counts

    want = expected_changes(sample)
    model = ExplorerModel(sample)
    table = model.layer_table()
    x = Explorer(sample)
    try:
        for i, c in enumerate(want):
            assert change_counts(sample.layer_diff(i)) == c
            model.select_layer(i)
            assert model.counts() == c, i
            assert int(table["changes"].iloc[i]) == c["added"] + c["modified"] + c["removed"]
            x.select_layer(i)
            assert x.layer_info["counts"] == counts_words(c)
            legend = {k["kind"]: k["count"] for k in x.kinds}
            assert legend["added"] == c["added"] and legend["removed"] == c["removed"]
            assert legend["modified"] + legend["metadata_only"] == c["modified"]
            assert legend["metadata_only"] == c["metadata_only"]
    finally:
        x.close()


def test_report_layers_table_and_trees(sample: ocilens.Image) -> None:
    markup = sample.report().html
    want = expected_changes(sample)
    rows = layers_rows(markup)
    assert [r["layer"] for r in rows] == [str(i) for i in range(len(want))]
    for row, c in zip(rows, want):
        assert {w: int(row[w].replace(",", "")) for w in CHANGE_WORDS} == {w: c[w] for w in CHANGE_WORDS}
    # each layer's tree summary says the same, in the same words
    summaries = [s for s in parse(markup).summaries if re.match(r"layer \d+:", s)]
    assert len(summaries) == len(want)
    for i, (s, c) in enumerate(zip(summaries, want)):
        assert counts_words(c) in s, (i, s)
    assert_one_vocabulary(markup)
    text = " ".join(" ".join(r) for t in parse(markup).tables for r in t["rows"])
    for identifier in ("deleted_later", "metadata_only", "whited_out", "delete_in_same_layer"):
        assert identifier not in text, f"{identifier} shown in a table instead of words"


def test_notebook_display_of_the_image(sample: ocilens.Image) -> None:
    markup = sample._repr_html_()
    for row, c in zip(layers_rows(markup), expected_changes(sample)):
        assert {w: int(row[w].replace(",", "")) for w in CHANGE_WORDS} == {w: c[w] for w in CHANGE_WORDS}
    assert_one_vocabulary(markup)
    bloat = sample.bloat()._repr_html_()
    assert_one_vocabulary(bloat)
    (causes,) = [t for t in parse(bloat).tables if t["head"] and "cause" in t["head"][0]]
    shown = {dict(zip(causes["head"][0], r))["cause"] for r in causes["rows"]}
    assert shown and shown <= {"deleted later", "overwritten", "metadata only", "unappliable"}


def test_cli_analyze(sample: ocilens.Image, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ocilens", "analyze"], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    ev, ch = expected_events(sample), expected_changes(sample)
    events = next(ln for ln in lines if ln.startswith("events "))
    for w in EVENT_WORDS:
        assert f"{sum(e[w] for e in ev):,} {w}" in events
    changes = next(ln for ln in lines if ln.startswith("changes "))
    total = {k: sum(c[k] for c in ch) for k in ("added", "modified", "metadata_only", "removed")}
    assert counts_words(total) in changes
    k = next(n for n, ln in enumerate(lines) if ln.split()[:1] == ["#"])
    head = lines[k].split()
    assert head == ["#", "compressed", "size", "added", "modified", "removed", "wasted", "created_by"]
    for i, c in enumerate(ch):
        cells = lines[k + 1 + i].split()
        assert cells[0] == str(i)
        # layer, compressed (2 tokens), size (2 tokens), then the three counts
        assert [int(x.replace(",", "")) for x in cells[5:8]] == [c["added"], c["modified"], c["removed"]], cells


# ------------------------------------------------------------------------------------------ a diff


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> tuple[ocilens.Image, ocilens.Image]:
    """``b`` shrinks one file, removes another, adds a third and chmods a fourth: the net size change and the
    bytes written or removed differ, which is how the header and the tree came to disagree."""
    tmp = tmp_path_factory.mktemp("vocab-diff")
    base = tar_layer([Entry.dir("app"), Entry.file("app/big", b"b" * 42_000), Entry.file("app/old", b"o" * 30_000),
                      Entry.file("app/tool", b"t" * 5_000, mode=0o755)])
    change = tar_layer([Entry.file("app/big", b"B" * 1_000), Entry.whiteout("app/old"), Entry.file("app/new", b"n" * 800),
                        Entry.file("app/tool", b"t" * 5_000, mode=0o700)])
    a = layout_from_tars(tmp, [base])
    b = layout_from_tars(tmp, [base, change])
    return ocilens.load(f"oci:{a}:t", progress=False), ocilens.load(f"oci:{b}:t", progress=False)


def diff_truth(a: ocilens.Image, b: ocilens.Image) -> dict[str, object]:
    """From the two final trees (``files``), not from the diff: counts, the bytes written or removed (each
    change's new file, or the removed file), the net change of the visible bytes."""
    fa = a.files.set_index("path")
    fb = b.files.set_index("path")
    added = sorted(set(fb.index) - set(fa.index))
    removed = sorted(set(fa.index) - set(fb.index))
    both = sorted(set(fa.index) & set(fb.index))
    modified = [p for p in both if any(str(fa.loc[p, c]) != str(fb.loc[p, c]) for c in ("digest", "mode", "uid", "gid"))]
    written = sum(int(fb.loc[p, "size"]) for p in added + modified if fb.loc[p, "type"] == "file")
    gone = sum(int(fa.loc[p, "size"]) for p in removed if fa.loc[p, "type"] == "file")
    net = int(fb.loc[fb["type"] == "file", "size"].sum()) - int(fa.loc[fa["type"] == "file", "size"].sum())
    return {"added": len(added), "modified": len(modified), "removed": len(removed), "weight": written + gone,
            "net": net}


def test_diff_header_agrees_with_its_tree(two: tuple[ocilens.Image, ocilens.Image], tmp_path: Path) -> None:
    a, b = two
    t = diff_truth(a, b)
    assert (t["added"], t["modified"], t["removed"]) == (1, 2, 1)
    assert t["weight"] == 1_000 + 800 + 5_000 + 30_000 and t["net"] == -41_000 + 800 - 30_000
    words = f"{t['added']} added, {t['modified']} modified (1 metadata only), {t['removed']} removed"
    signed = "-" + human_bytes(-t["net"])  # type: ignore[operator]
    # the report: the header sentence, and the tree's top directory under it
    page = a.report(compare=b).html
    head = re.search(r'<p class="diffhead">(.*?)</p>', page, re.S)[1]
    assert head.startswith(f"{words}: {human_bytes(t['weight'])} of files written or removed"), head
    assert f"a net size change of {signed}" in head
    tree = page.split("<h3>Explore the changes</h3>", 1)[1]
    first = parse(tree).summaries[1]  # [0] is the details' own summary; [1] the top directory, app/
    assert first.startswith(human_bytes(t["weight"])) and "app/ 4 changes" in first, first
    # the CLI
    proc = subprocess.run([sys.executable, "-m", "ocilens", "diff", a.reference, b.reference], capture_output=True,
                          text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("files: "))
    sentence = f"{words}: {human_bytes(t['weight'])} of files written or removed, a net size change of {signed}"
    assert line.startswith(f"files: {sentence}"), line
    # the notebook display of the diff: the same sentence
    assert sentence in html.unescape(a.diff(b)._repr_html_())
    # the explorer of the diff: the same counts, and its tree adds up to the same bytes
    m = ExplorerModel(a.diff(b))
    assert counts_words(m.counts()) == words
    assert m.tree.total_bytes == t["weight"] and m.tree.total_delta == t["net"]
