"""The explorer without a browser: the tree model (``ocilens.tree``), the ``ExplorerModel`` behind the widget,
the widget itself driven as clicks would drive it, and the report's ``<details>`` trees.

The truth for a layer's tree is ``layer_diff`` (paths, kinds, sizes); for the aggregated mode it is the
final tree of an image made of the first layers only; for waste it is ``bloat().causes``.
"""

from __future__ import annotations

import html.parser
import re
import time
from pathlib import Path

import ipywidgets
import pandas as pd
import pytest
from imagebuild import EPOCH, Entry, layout_from_tars, tar_layer
from ipywidgets.widgets.widget import _instances

import ocilens
from ocilens.errors import AnalysisError, UsageError
from ocilens.explore import DiffExplorer, Explorer, ExplorerModel, row_label
from ocilens.html import human
from ocilens.tree import DEFAULT_KINDS, KINDS, LayerViews, Tree, layers_html, printable, tree_html

SCRIPT = "<script>alert(1)</script>"
ATTR = "\"'><img src=x onerror=alert(2)>"
BIDI = "invoice\u202etxt.exe"
CREATED_BY = "RUN echo '<script>alert(3)</script>' > /app/x"


def _tars() -> list[bytes]:
    """Three layers that between them make every kind of change (see each line)."""
    base = tar_layer([
        Entry.dir("app"), Entry.dir("app/lib"), Entry.file("app/a", b"a" * 100), Entry.file("app/b", b"b" * 200),
        Entry.file("app/lib/x.so", b"x" * 5000), Entry.dir("etc"), Entry.file("etc/conf", b"c" * 10),
        Entry.symlink("app/link", "a"), Entry.file("app/gone", b"g" * 300), Entry.dir("app/dir"),
        Entry.file("app/dir/f1", b"1" * 50), Entry.file("app/dir/sub/f2", b"2" * 60),  # sub: an implicit dir
        Entry.file("opt/big", b"B" * 7000), Entry.hardlink("opt/big2", "opt/big"),
    ])
    change = tar_layer([
        Entry.file("app/a", b"A" * 150),  # overwritten
        Entry.file("app/b", b"b" * 200, mode=0o755),  # metadata only
        Entry.whiteout("app/gone"),  # whited out
        Entry.file("etc/conf", b"c" * 10, mtime=EPOCH + 5),  # unchanged: only the mtime
        Entry.file("app/new", b"n" * 400),  # added (and deleted by the next layer: wasted)
        Entry.symlink("app/link", "b"),  # overwritten: a new target
        Entry.opaque("app/dir"), Entry.file("app/dir/f3", b"3" * 70),  # f1, sub, sub/f2 whited out
        Entry.dir("srv"), Entry.file("srv/data", b"d" * 9000),
    ])
    tidy = tar_layer([Entry.whiteout("app/new"), Entry.file("srv/data", b"D" * 9000)])
    return [base, change, tidy]


HISTORY = ["ADD base /", "RUN change", "RUN tidy"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ocilens.Image:
    tmp = tmp_path_factory.mktemp("explore")
    return ocilens.load(f"oci:{layout_from_tars(tmp, _tars(), history=HISTORY)}:t", progress=False)


@pytest.fixture(scope="module")
def sample() -> ocilens.Image:
    return ocilens.sample_image(progress=False)


def _leaves(model: ExplorerModel) -> pd.DataFrame:
    """Every changed path the tree shows once all its directories are open."""
    model.expand_all()
    rows = [r for r in model.rows() if r.kind is not None and not r.more]
    return pd.DataFrame({"path": [r.path for r in rows], "kind": [r.kind for r in rows],
                         "size": pd.array([r.size for r in rows], dtype="Int64"),
                         "prev_size": pd.array([r.prev_size for r in rows], dtype="Int64"),
                         "bytes": [r.bytes for r in rows]})


def _expected_kind(diff: pd.DataFrame) -> pd.Series:
    content = diff["content_changed"].fillna(False) | diff["type_changed"].fillna(False)
    return pd.Series([
        {"added": "added", "removed": "whited_out", "unchanged": "unchanged"}.get(c)
        or ("overwritten" if bool(cc) else "metadata_only")
        for c, cc in zip(diff["change"].astype(str), content)], index=diff.index)


def _check_layer(img: ocilens.Image, i: int) -> None:
    model = ExplorerModel(img, layer=i, limit=10_000)
    shown = _leaves(model).set_index("path").sort_index()
    truth = img.layer_diff(i).set_index("path").sort_index()
    assert list(shown.index) == list(truth.index), f"layer {i}: the tree shows other paths than layer_diff"
    assert list(shown["kind"]) == list(_expected_kind(truth.reset_index()).to_numpy()), f"layer {i}: kinds"
    assert shown["size"].equals(truth["size"].astype("Int64")), f"layer {i}: sizes"
    assert shown["prev_size"].equals(truth["prev_size"].astype("Int64")), f"layer {i}: previous sizes"
    # A directory's size is the sum of the regular files changed below it (removed ones by their old size).
    rows = model.rows()
    weight = truth["size"].where(truth["change"] != "removed", truth["prev_size"]).fillna(0)
    regular = truth["type"].where(truth["change"] != "removed", truth["prev_type"]).astype(str) == "file"
    for r in rows:
        if r.expandable:
            below = truth.index.str.startswith(r.path + "/")
            assert r.bytes == int(weight[below & regular].sum()), f"layer {i}: total of {r.path}"
            assert r.changes == int(below.sum()) + (r.path in truth.index), f"layer {i}: count of {r.path}"


@pytest.mark.parametrize("i", [0, 1, 2])
def test_tree_of_a_layer_is_its_layer_diff(built: ocilens.Image, i: int) -> None:
    _check_layer(built, i)


def test_tree_of_each_sample_layer_is_its_layer_diff(sample: ocilens.Image) -> None:
    for i in range(len(sample.scans)):
        _check_layer(sample, i)


def test_every_kind_is_marked(built: ocilens.Image) -> None:
    model = ExplorerModel(built, layer=1, kinds=KINDS)
    kinds = dict(zip(*_leaves(model)[["path", "kind"]].T.to_numpy()))
    assert kinds == {
        "/app/a": "overwritten", "/app/b": "metadata_only", "/app/gone": "whited_out", "/etc/conf": "unchanged",
        "/app/new": "added", "/app/link": "overwritten", "/app/dir/f1": "whited_out", "/app/dir/sub": "whited_out",
        "/app/dir/sub/f2": "whited_out", "/app/dir/f3": "added", "/srv": "added", "/srv/data": "added"}
    assert "/etc/conf" not in set(_leaves(ExplorerModel(built, layer=1))["path"]), "unchanged is hidden by default"


def test_model_follows_selection_and_filters(built: ocilens.Image) -> None:
    m = ExplorerModel(built)
    assert m.layer == 0 and m.kinds == DEFAULT_KINDS and m.sort == "size"
    assert [r.name for r in m.rows()] == ["opt", "app", "etc"]  # by size: 7000, 5660, 10 bytes
    m.set_filters(sort="name")
    assert [r.name for r in m.rows()] == ["app", "etc", "opt"]
    m.toggle("/app")
    names = [(r.depth, r.name) for r in m.rows()]
    assert names[:2] == [(0, "app"), (1, "a")] and (1, "lib") in names and (0, "etc") in names
    assert m.row("/app").expanded and not m.row("/app/lib").expanded
    m.select_layer(-2)  # the layer "RUN change": open directories stay open
    assert m.layer == 1 and m.row("/app").expanded
    assert {r.path for r in m.rows() if r.depth == 1} == {"/app/a", "/app/b", "/app/dir", "/app/gone", "/app/link",
                                                          "/app/new"}
    m.set_filters(kinds=["whited_out"])
    assert {r.path for r in m.rows()} == {"/app", "/app/dir", "/app/gone"}
    m.expand_all()
    assert {r.path for r in m.rows() if r.kind} == {"/app/gone", "/app/dir/f1", "/app/dir/sub", "/app/dir/sub/f2"}
    assert all(r.kind == "whited_out" for r in m.rows() if r.kind)
    m.set_filters(kinds=DEFAULT_KINDS, waste_only=True)
    m.expand_all()
    causes = built.bloat().causes
    assert {r.path for r in m.rows() if r.kind} == set(causes.loc[causes["layer"] == 1, "path"]) == {
        "/app/new", "/srv/data"}
    assert m.row("/app/new").waste_cause == "deleted_later" and m.row("/app/new").waste_by == 2
    m.collapse_all()
    m.set_filters(waste_only=False, search="F2")  # case-insensitive; few matches: their directories open
    assert [r.path for r in m.rows()] == ["/app", "/app/dir", "/app/dir/sub", "/app/dir/sub/f2"]
    m.collapse("/app/dir")
    assert [r.path for r in m.rows()] == ["/app", "/app/dir"]
    m.expand("/srv")
    m.set_filters(search="")  # what the search opened folds again; what the user opened stays open
    assert m.expanded == {"/srv"}
    assert m.describe() == "layer 1: 11 changes, 10.2 kB, 9.4 kB wasted"
    with pytest.raises(UsageError):
        m.set_filters(kinds=["moved"])
    with pytest.raises(UsageError):
        m.set_filters(sort="mtime")
    with pytest.raises(AnalysisError):
        m.select_layer(3)


def test_sizes_sort_largest_first(sample: ocilens.Image) -> None:
    m = ExplorerModel(sample, layer=1)
    m.expand_all()
    rows = m.rows()
    for parent in {r.path for r in rows if r.expanded} | {"/"}:
        sizes = [r.bytes for r in rows if r.path.rpartition("/")[0] == ("" if parent == "/" else parent)]
        assert sizes == sorted(sizes, reverse=True), parent


def test_aggregated_is_the_stack_up_to_the_layer(built: ocilens.Image, tmp_path: Path) -> None:
    """dive's aggregated mode: layer i shows the final tree of an image made of layers 0..i, each path
    with the layer that last wrote it, plus what layer i itself whited out."""
    tars = _tars()
    m = ExplorerModel(built, kinds=KINDS)
    for i in range(len(tars)):
        alone = ocilens.load(f"oci:{layout_from_tars(tmp_path, tars[: i + 1], history=HISTORY[: i + 1])}:t",
                             progress=False)
        m.select_layer(i)
        m.set_filters(aggregated=True)
        view = m.entries
        present = view[view["kind"] != "whited_out"].set_index("path").sort_index()
        files = alone.files.set_index("path").sort_index()
        assert list(present.index) == list(files.index), f"layers 0..{i}"
        assert present["layer"].astype(int).tolist() == files["layer"].astype(int).tolist()
        assert present["size"].equals(files["size"])
        removed = set(view.loc[view["kind"] == "whited_out", "path"])
        diff = built.layer_diff(i)
        assert removed == set(diff.loc[diff["change"] == "removed", "path"])
        m.set_filters(aggregated=False)
    m.select_layer(2)
    m.set_filters(aggregated=True)
    assert m.describe().startswith("layers 0..2: ")
    m.expand_all()
    assert m.row("/app/a").layer == 1 and m.row("/app/lib/x.so").layer == 0 and m.row("/app/new").kind == "whited_out"
    assert "[layer 1]" in row_label(m.row("/app/a"), aggregated=True)


def test_aggregated_mode_shows_unchanged_paths_unless_told(built: ocilens.Image) -> None:
    m = ExplorerModel(built, layer=1)
    assert "unchanged" not in m.kinds
    m.set_filters(aggregated=True)
    assert "unchanged" in m.kinds  # the whole stack is there
    m.set_filters(aggregated=False)
    assert m.kinds == DEFAULT_KINDS
    assert "unchanged" in ExplorerModel(built, aggregated=True).kinds
    assert ExplorerModel(built, aggregated=True, kinds=["added"]).kinds == ("added",)


def test_widget_follows_clicks(built: ocilens.Image) -> None:
    x = built.explore()
    assert isinstance(x, Explorer) and isinstance(x, ipywidgets.VBox) and x.model.layer == 0
    assert [o[1] for o in x.layers.options] == [0, 1, 2]
    assert "ADD base /" in x.layers.options[0][0] and "RUN tidy" in x.layers.options[2][0]
    tree = x.pane.list
    labels = [o[0] for o in tree.options]
    assert len(labels) == 3 and "▸ opt/" in labels[0] and "7.0 kB" in labels[0]
    x.layers.value = 1  # a click on layer 1
    assert x.model.layer == 1 and "RUN change" in x.layer_info.value and "1 unchanged" in x.layer_info.value
    labels = [o[0] for o in tree.options]
    k = next(i for i, t in enumerate(labels) if "▸ srv/" in t)
    tree.index = k  # a click on the directory opens it
    labels = [o[0] for o in tree.options]
    assert "▾ srv/" in labels[k] and "data" in labels[k + 1] and "+" in labels[k + 1]
    assert tree.index is None, "the list keeps no selection, so the same line can be clicked again"
    assert "/srv/" in x.pane.details.value
    tree.index = k  # a second click folds it
    assert "▸ srv/" in tree.options[k][0] and len(tree.options) == len(labels) - 1
    x.pane.kind_boxes["added"].value = False
    assert "added" not in x.model.kinds and all("srv" not in o[0] for o in tree.options)
    x.pane.aggregated.value = True
    assert x.model.aggregated and x.pane.kind_boxes["unchanged"].value and x.pane.kind_boxes["added"].value is False
    x.pane.kind_boxes["added"].value = True
    x.pane.search.value = "data"
    assert [o[0].split()[-1] for o in tree.options][-1].endswith("]")  # aggregated lines name their layer
    assert any("data" in o[0] for o in tree.options)
    x.pane.collapse.click()
    assert x.model.expanded == set()
    x.pane.sort.value = "name"
    assert x.model.sort == "name"
    x.pane.waste.value = True
    assert x.model.waste_only
    assert repr(x).startswith("<ocilens.Explorer oci:") and "layers 0..1" in repr(x)
    assert x._repr_mimebundle_()["text/plain"].startswith("<ocilens.Explorer oci:")  # kept without widget state


def test_diff_explorer_has_the_same_tree(tmp_path: Path) -> None:
    tars = _tars()
    a = ocilens.load(f"oci:{layout_from_tars(tmp_path, tars[:1], history=HISTORY[:1])}:t", progress=False)
    b = ocilens.load(f"oci:{layout_from_tars(tmp_path, tars, history=HISTORY)}:t", progress=False)
    d = a.diff(b)
    x = d.explore()
    assert isinstance(x, DiffExplorer) and x.model.is_diff and x.model.layer is None
    shown = _leaves(x.model).set_index("path").sort_index()
    truth = d.files.set_index("path").sort_index()
    assert list(shown.index) == list(truth.index)
    assert list(shown["kind"]) == list(_expected_kind(truth.reset_index()).to_numpy())
    assert shown["size"].equals(truth["size"].astype("Int64"))
    assert "modified" in x.pane.kind_boxes["overwritten"].description  # a diff says modified/removed
    assert "removed" in x.pane.kind_boxes["whited_out"].description
    assert "srv/" in " ".join(o[0] for o in x.pane.list.options)
    with pytest.raises(UsageError):
        x.model.set_filters(waste_only=True)
    with pytest.raises(UsageError):
        x.model.select_layer(0)
    assert repr(x).startswith("<ocilens.DiffExplorer ")


# ----------------------------------------------------------------------------------- hostile names


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> ocilens.Image:
    tmp = tmp_path_factory.mktemp("hostile")
    base = tar_layer([
        Entry.dir("app"), Entry.file(f"app/{SCRIPT}", b"s" * 4000), Entry.file(f"app/{ATTR}", b"a" * 3000),
        Entry.file(f"app/{BIDI}", b"b" * 10), Entry.file("app/line\nbreak", b"n"), Entry.file(b"app/\xff\xfe", b"z"),
        Entry.symlink("app/ln", SCRIPT), Entry.dir(f"{SCRIPT}"), Entry.file(f"{SCRIPT}/{ATTR}", b"q" * 20),
    ])
    second = tar_layer([Entry.file(f"app/{SCRIPT}", b"S" * 4200), Entry.whiteout(f"app/{ATTR}")])
    layout = layout_from_tars(tmp, [base, second], history=["ADD app /app", CREATED_BY])
    return ocilens.load(f"oci:{layout}:t", progress=False)


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(markup: str) -> _Tags:
    p = _Tags()
    p.feed(markup)
    p.close()
    return p


def _assert_inert(markup: str) -> _Tags:
    p = _parse(markup)
    assert [t for t, _ in p.tags if t in ("script", "img", "iframe", "object", "embed")] == []
    assert [(t, k) for t, a in p.tags for k in a if k.startswith("on")] == []
    return p


def test_printable_shows_what_a_name_is() -> None:
    assert printable("a\nb") == "a\\x0ab"
    assert printable(BIDI) == "invoice\\u202etxt.exe"
    assert printable("app/\udcff\udcfe") == "app/\\xff\\xfe"  # bytes that are not UTF-8, as os.fsdecode keeps them
    assert printable(SCRIPT) == SCRIPT  # printable text stays itself: HTML escaping is esc()'s job
    assert printable(pd.NA) == "" and printable("ünïcödé") == "ünïcödé"


def test_hostile_names_are_text_in_the_widget(hostile: ocilens.Image) -> None:
    x = hostile.explore(kinds=KINDS)
    x.model.expand_all()
    x.pane.refresh()
    labels = [o[0] for o in x.pane.list.options]
    text = "\n".join(labels)
    assert SCRIPT in text and ATTR in text  # a Select shows text (textContent): no escaping needed there
    assert "invoice\\u202etxt.exe" in text and "line\\x0abreak" in text and "\\xff\\xfe" in text
    assert all(ch.isprintable() or ch == "\xa0" for t in labels for ch in t), "a control character in a line"
    for k, row in enumerate(x.pane._rows):  # the details panel of every line is inert HTML
        x.pane.list.index = k if not row.expandable else None
        if not row.expandable:
            p = _assert_inert(x.pane.details.value)
            assert printable(row.path) in "".join(p.text)
    x.layers.value = 1
    for w in (x.layer_info, x.pane.status):
        p = _assert_inert(w.value)
    assert CREATED_BY in "".join(_parse(x.layer_info.value).text)
    assert all("\n" not in o[0] for o in x.layers.options)


def test_hostile_names_are_text_in_the_report(hostile: ocilens.Image) -> None:
    markup = layers_html(hostile, top=50)
    p = _assert_inert(markup)
    text = "".join(p.text)
    for name in (SCRIPT, ATTR, "invoice\\u202etxt.exe", "line\\x0abreak", "\\xff\\xfe", CREATED_BY):
        assert name in text, f"{name!r} is not shown as text"
    assert "\u202e" not in markup and "\udcff" not in markup
    section = hostile.report().html.split("<h2>Explore the layers</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<script" not in section.lower() and "<img" not in section.lower()
    section.encode("utf-8")  # no lone surrogate left to break the file


# ------------------------------------------------------------------------------------ the report


def test_report_has_a_details_tree_per_layer(sample: ocilens.Image) -> None:
    page = sample.report(top=10).html
    assert "<h2>Explore the layers</h2>" in page
    section = page.split("<h2>Explore the layers</h2>", 1)[1].split("<h2>", 1)[0]
    p = _assert_inert(section)
    layers = [a for t, a in p.tags if t == "details" and a.get("class") == "layer"]
    assert [a["id"] for a in layers] == [f"layer-{i}" for i in range(5)]
    assert all("open" not in a for a in layers), "layers start folded"
    assert sum(1 for t, a in p.tags if t == "details" and "open" in a) > 5  # directories inside start open
    for i in range(5):
        part = section.split(f'id="layer-{i}"', 1)[1].split('<details class="layer"', 1)[0]
        # The changes shown: files and links as leaves, changed directories with changes below as branches.
        shown = part.count("<li><span") + len(re.findall(r'<summary><span class="sz">[^<]*</span><span class="k k-', part))
        tree = Tree(LayerViews(sample).layer(i))
        assert shown == min(10, len(tree)), f"layer {i}: top 10 of {len(tree)} changes"
    # Layer 1's tree: usr/ first (the heaviest), with the total of all its changes, not only those shown.
    part = section.split('id="layer-1"', 1)[1].split('<details class="layer"', 1)[0]
    usr = Tree(LayerViews(sample).layer(1)).summary("/usr")
    assert f'<span class="sz">{human(usr["bytes"])}</span><span class="k"></span><span class="nm">usr/' in part
    assert "The 10 largest of 86 changes" in part


def test_tree_html_groups_the_largest_changes(built: ocilens.Image) -> None:
    markup = tree_html(Tree(LayerViews(built).layer(1)), top=3)
    text = _parse(markup).text
    assert [t for t in text if t.endswith("/")] == ["app/"]  # and srv/data, the only file changed under srv/
    assert text.index("srv/data") < text.index("app/")  # 9 kB before 1.2 kB
    assert "new" in text and "gone" in text and "f3" not in text
    assert "The 3 largest of 11 changes; a directory shows the total of all its changes." in "".join(text)
    chain = _parse(tree_html(Tree(LayerViews(built).layer(0), search="f2"))).text
    assert "app/dir/sub/f2" in chain  # directories down to the one file changed below them are joined
    assert "No changes" in tree_html(Tree(LayerViews(built).layer(0), kinds=["whited_out"]))


# ---------------------------------------------------------------------------------- 100,000 files


def _raw_tar(entries: list[tuple[str, bytes]]) -> bytes:
    """A tar written header by header (ustar; ``tarfile`` takes seconds for 100,000 members)."""
    out = bytearray()
    for name, data in entries:
        is_dir = name.endswith("/")
        h = bytearray(512)
        raw = name.encode()
        h[0:len(raw)] = raw
        h[100:108] = b"%07o\0" % (0o755 if is_dir else 0o644)
        h[108:116] = h[116:124] = b"0000000\0"
        h[124:136] = b"%011o\0" % len(data)
        h[136:148] = b"%011o\0" % EPOCH
        h[148:156] = b" " * 8
        h[156:157] = b"5" if is_dir else b"0"
        h[257:265] = b"ustar\x0000"
        h[148:156] = b"%06o\0 " % sum(h)
        out += h + data + bytes(-len(data) % 512)
    return bytes(out + bytes(1024))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> ocilens.Image:
    """100,000 files: 900 directories of 100, and one flat directory of 10,000; a second layer changes 100."""
    files = [(f"data/d{d:03d}/f{f:03d}.bin", b"x" * ((d + f) % 97)) for d in range(900) for f in range(100)]
    files += [(f"flat/f{f:05d}", b"y" * (f % 13)) for f in range(10_000)]
    top = [(f"data/d{d:03d}/f000.bin", b"z" * 10) for d in range(0, 900, 9)]
    layout = layout_from_tars(tmp_path_factory.mktemp("big"), [_raw_tar(files), _raw_tar(top)], compression="none")
    img = ocilens.load(f"oci:{layout}:t", progress=False, cache=False)
    assert len(img.files) >= 100_000
    return img


def test_lazy_expansion_on_100000_files(big: ocilens.Image) -> None:
    t0 = time.perf_counter()
    m = ExplorerModel(big)
    rows = m.rows()
    first = time.perf_counter() - t0
    assert [r.name for r in rows] == ["data", "flat"] and rows[0].changes == 90_901  # 900 dirs + 90,000 files + data
    assert first < 10, f"opening the explorer took {first:.1f}s"
    times: dict[str, float] = {}
    for d in ("/data", "/flat", "/data/d450"):
        for _ in range(3):  # the best of three fresh computations: other work on the machine adds noise
            tree = Tree(m.entries)
            t = time.perf_counter()
            ch = tree.children(d)
            times[d] = min(times.get(d, 1e9), time.perf_counter() - t)
        assert len(ch) == {"/data": 900, "/flat": 10_000, "/data/d450": 100}[d]
        m.tree.children(d)
    assert max(times.values()) < 0.5, f"children computed in {times}"
    assert set(m.tree._children) == {"/", "/data/", "/flat/", "/data/d450/"}, "only what was opened is computed"
    m.toggle("/flat")
    rows = m.rows()
    assert len(rows) == 2 + 200 + 1 and rows[-1].more == 9_800  # 200 children shown, then "9,800 more"
    assert "9,800 more" in row_label(rows[-1])
    m.show_more("/flat")
    assert m.rows()[-1].more == 9_600
    t = time.perf_counter()
    m.set_filters(search="f04321")
    assert [r.path for r in m.rows()] == ["/flat", "/flat/f04321"]
    assert time.perf_counter() - t < 2
    m.select_layer(1)
    m.set_filters(search="")
    assert len(m.tree) == 100 and m.tree.summary()["wasted"] == 0


def test_widget_on_100000_files_holds_few_widgets(big: ocilens.Image) -> None:
    before = len(_instances)
    t = time.perf_counter()
    x = big.explore()
    built = time.perf_counter() - t
    made = len(_instances) - before
    assert made < 150, f"the explorer made {made} widgets"
    assert built < 10
    tree = x.pane.list
    k = next(i for i, o in enumerate(tree.options) if "flat/" in o[0])
    t = time.perf_counter()
    tree.index = k
    assert time.perf_counter() - t < 2.0, "opening a directory of 10,000 files in the widget"
    assert len(tree.options) == 2 + 200 + 1
    assert "9,800 more" in tree.options[-1][0]
    tree.index = len(tree.options) - 1  # a click on "more"
    assert len(tree.options) == 2 + 400 + 1
    assert len(_instances) - before == made, "clicks made widgets"
    x.close()
