"""The explorer without a browser: the tree model (``ocilens.tree``), the ``ExplorerModel`` behind the widget,
the widget itself driven by the messages its front end sends, its static HTML, and the report's
``<details>`` trees. (``test_explore_e2e.py`` drives the front end in a real JupyterLab.)

The truth for a layer's tree is ``layer_diff`` (paths, kinds, sizes, counts); for the aggregated mode it is
the final tree of an image made of the first layers only; for waste it is ``bloat().causes``.
"""

from __future__ import annotations

import html.parser
import json
import re
import time
from pathlib import Path

import anywidget
import pandas as pd
import pytest
from imagebuild import EPOCH, Entry, layout_from_tars, tar_layer
from ipywidgets.widgets.widget import _instances

import ocilens
from ocilens.diff import change_counts, counts_text, metadata_only
from ocilens.errors import AnalysisError, UsageError
from ocilens.explore import DiffExplorer, Explorer, ExplorerModel, key_path, row_label
from ocilens.html import CHANGE_COLOURS, human
from ocilens.tree import (DEFAULT_KINDS, KINDS, MARKS, LayerViews, Tree, change_text, kind_counts, layers_html,
                          mode_text, printable, tree_html)

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
        Entry.file("etc/conf", b"c" * 10, mtime=EPOCH + 5),  # metadata only: a file shipped again, new mtime
        Entry.dir("etc", mtime=EPOCH + 5),  # unchanged: a directory listed again with only a new mtime
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
    meta = metadata_only(diff)
    return pd.Series([c if c != "modified" else "metadata_only" if m else "modified"
                      for c, m in zip(diff["change"].astype(str), meta)], index=diff.index)


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
    assert model.counts() == change_counts(truth), f"layer {i}: the counts"
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


def test_counts_of_each_sample_layer_are_layer_diffs(sample: ocilens.Image) -> None:
    """One vocabulary, one count: the explorer's counts (its model, its layer list, what its front end
    shows, the report's trees) are ``layer_diff``'s for every layer. Layer 1 lists 47 paths again (the
    events' ``overwritten``), 46 of them directories with only a new mtime: no change; one file with new
    content. Layer 4 ships two files again unchanged: metadata-only changes, as the audit's waste says."""
    views = LayerViews(sample)
    x = sample.explore()
    table = x.model.layer_table()
    for i in range(len(sample.scans)):
        want = change_counts(sample.layer_diff(i))
        assert views.counts(i) == kind_counts(views.layer(i)) == want, f"layer {i}"
        assert int(table["changes"].iloc[i]) == want["added"] + want["modified"] + want["removed"]
        x.select_layer(i)
        assert x.layer_info["counts"] == counts_text(want)
        shown = {k["kind"]: k["count"] for k in x.kinds}
        assert shown["modified"] + shown["metadata_only"] == want["modified"]
        assert (shown["added"], shown["removed"]) == (want["added"], want["removed"])
    assert change_counts(sample.layer_diff(1)) == {"added": 85, "modified": 1, "metadata_only": 0, "removed": 0}
    assert int(sample.layers["overwritten"].iloc[1]) == 47  # the events say what the tar listed again
    assert change_counts(sample.layer_diff(4))["metadata_only"] == 2
    causes = sample.bloat().causes
    assert set(causes.loc[(causes["cause"] == "metadata_only") & (causes["by_layer"] == 4), "path"]) == set(
        sample.layer_diff(4).query("change == 'modified'")["path"])
    report = layers_html(sample, top=5)
    for i in range(len(sample.scans)):
        assert counts_text(change_counts(sample.layer_diff(i))) in report
    x.close()


def test_every_kind_is_marked(built: ocilens.Image) -> None:
    model = ExplorerModel(built, layer=1, kinds=KINDS)
    kinds = dict(zip(*_leaves(model)[["path", "kind"]].T.to_numpy()))
    assert kinds == {
        "/app/a": "modified", "/app/b": "metadata_only", "/app/gone": "removed", "/etc/conf": "metadata_only",
        "/etc": "unchanged", "/app/new": "added", "/app/link": "modified", "/app/dir/f1": "removed",
        "/app/dir/sub": "removed", "/app/dir/sub/f2": "removed", "/app/dir/f3": "added", "/srv": "added",
        "/srv/data": "added"}
    shown = _leaves(ExplorerModel(built, layer=1))
    assert "/etc" not in set(shown["path"]), "unchanged is hidden by default"
    assert "/etc/conf" in set(shown["path"]), "a file shipped again with a new mtime is a (metadata-only) change"
    assert ExplorerModel(built, layer=1, kinds=["overwritten", "whited_out"]).kinds == ("modified", "removed"), (
        "the events' words are accepted as filters")
    assert set(MARKS) == set(KINDS) == set(CHANGE_COLOURS)


def test_what_changed_is_named(built: ocilens.Image, sample: ocilens.Image) -> None:
    m = ExplorerModel(built, layer=1, kinds=KINDS)
    m.expand_all()
    rows = {r.path: r for r in m.rows() if not r.more}
    assert change_text(rows["/app/b"]) == "mode 0644 → 0755"
    assert change_text(rows["/app/a"]) == "content 100 B → 150 B"
    assert change_text(rows["/app/link"]) == "link a → b"
    assert change_text(rows["/etc/conf"]) == "mtime only"
    assert change_text(rows["/app/new"]) == "" and change_text(rows["/app/gone"]) == ""
    assert mode_text(rows["/app/b"].mode, "file") == "-rwxr-xr-x" and mode_text(0o700, "dir") == "drwx------"
    s = ExplorerModel(sample, layer=2)
    s.expand_all()
    less = s.row("/usr/bin/less")
    assert (change_text(less), mode_text(less.mode, less.type), less.uid, less.gid, less.size) == (
        "mode 0755 → 0700", "-rwx------", 0, 0, 198960)
    again = ExplorerModel(sample, layer=4)
    again.expand_all()
    assert change_text(again.row("/usr/share/locale/de/LC_MESSAGES/sed.mo")) == "shipped again"


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
    m.set_filters(kinds=["removed"])
    assert {r.path for r in m.rows()} == {"/app", "/app/dir", "/app/gone"}
    m.expand_all()
    assert {r.path for r in m.rows() if r.kind} == {"/app/gone", "/app/dir/f1", "/app/dir/sub", "/app/dir/sub/f2"}
    assert all(r.kind == "removed" for r in m.rows() if r.kind)
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
    assert m.describe() == "layer 1: 12 changes, 10.2 kB, 9.4 kB wasted"  # /etc/conf (new mtime) is one
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
        present = view[view["kind"] != "removed"].set_index("path").sort_index()
        files = alone.files.set_index("path").sort_index()
        assert list(present.index) == list(files.index), f"layers 0..{i}"
        assert present["layer"].astype(int).tolist() == files["layer"].astype(int).tolist()
        assert present["size"].equals(files["size"])
        removed = set(view.loc[view["kind"] == "removed", "path"])
        diff = built.layer_diff(i)
        assert removed == set(diff.loc[diff["change"] == "removed", "path"])
        m.set_filters(aggregated=False)
    m.select_layer(2)
    m.set_filters(aggregated=True)
    assert m.describe().startswith("layers 0..2: ")
    m.expand_all()
    assert m.row("/app/a").layer == 1 and m.row("/app/lib/x.so").layer == 0 and m.row("/app/new").kind == "removed"
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


def _labels(x: Explorer | DiffExplorer) -> list[str]:
    """The tree's lines as the front end draws them: arrow, name, mark."""
    return [f"{'▾' if r['o'] else '▸' if r['x'] else ' '} {r['n']}{'/' if r['dir'] else ''} {r['mk']}"
            for r in x.rows]


def test_widget_follows_messages(built: ocilens.Image) -> None:
    """The widget as its front end drives it: the messages a click or a key sends, and the traits it draws."""
    x = built.explore()
    assert isinstance(x, Explorer) and isinstance(x, anywidget.AnyWidget) and x.model.layer == 0 and x.layer == 0
    assert [l["i"] for l in x.layers] == [0, 1, 2]
    assert x.layers[0]["full"] == "ADD base /" and x.layers[2]["cmd"] == "RUN tidy"
    labels = _labels(x)
    assert len(labels) == 3 and labels[0].startswith("▸ opt/") and x.rows[0]["sz"] == "7.0 kB"
    x.handle({"do": "layer", "layer": 1})  # ↓ in the layer list, or a click on layer 1
    assert x.model.layer == 1 and x.layer == 1 and x.layer_info["command"] == "RUN change"
    assert x.layer_info["counts"] == counts_text(change_counts(built.layer_diff(1)))
    assert x.describe == x.model.describe()
    k = next(i for i, t in enumerate(_labels(x)) if t.startswith("▸ srv/"))
    x.handle({"do": "expand", "path": "/srv"})  # →
    labels = _labels(x)
    assert labels[k].startswith("▾ srv/") and labels[k + 1] == "  data +"
    data = x.rows[k + 1]
    assert (data["mode"], data["own"], data["sz"], data["k"]) == ("-rw-r--r--", "0:0", "9.0 kB", "added")
    assert data["info"].startswith("/srv/data · added · file · 9.0 kB")
    x.handle({"do": "select", "path": "/srv/data"})  # the cursor on a line
    assert x.model.selected == x.selected == "/srv/data"
    x.handle({"do": "collapse", "path": "/srv"})  # ←
    assert _labels(x)[k].startswith("▸ srv/") and len(x.rows) == len(labels) - 1
    x.handle({"do": "toggle", "path": "/srv"})  # space
    assert _labels(x)[k].startswith("▾ srv/")
    x.handle({"do": "filters", "kinds": ["modified", "metadata_only", "removed", "unchanged"]})
    assert "added" not in x.model.kinds and all("srv" not in t for t in _labels(x))
    assert [k["on"] for k in x.kinds] == [False, True, True, True, True]
    x.handle({"do": "filters", "aggregated": True})
    assert x.model.aggregated and x.options["aggregated"] and x.model.kinds == ("modified", "metadata_only",
                                                                                "removed", "unchanged")
    x.handle({"do": "filters", "kinds": KINDS, "search": "data"})
    assert x.options["search"] == "data" and any(r["n"] == "data" for r in x.rows)
    assert all(r["lay"] is not None for r in x.rows if r["k"]), "aggregated lines name their layer"
    x.handle({"do": "fold_all"})
    assert x.model.expanded == set()
    x.handle({"do": "filters", "sort": "name", "waste_only": True})
    assert x.model.sort == "name" and x.model.waste_only and x.options["waste_only"]
    x.handle({"do": "filters", "kinds": ["moved"]})  # a bad request changes nothing
    x.handle({"do": "layer", "layer": 9})
    x.handle({"do": "nonsense"})
    assert x.model.layer == 1 and "moved" not in x.model.kinds
    assert x.status["image"].startswith(f"image: efficiency {built.bloat().efficiency:.1%} · wasted ")
    assert x.status["layer"].startswith("layer 1: ")
    assert repr(x).startswith("<ocilens.Explorer oci:") and "layers 0..1" in repr(x)
    data, _meta = x._repr_mimebundle_()
    assert data["text/plain"].startswith("<ocilens.Explorer oci:")  # kept without widget state
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == x.model_id
    static = _assert_inert(data["text/html"])  # what an exported notebook shows: no script
    assert "RUN change" in "".join(static.text)
    x.close()


def test_widget_front_end_ships_with_the_package() -> None:
    from ocilens.explore import STATIC

    js, css = (STATIC / "explorer.js").read_text(), (STATIC / "explorer.css").read_text()
    assert "export default" in js and "data-lm-suppress-shortcuts" in js and "textContent" in js
    assert "innerHTML" not in js, "names from an image must never become markup"
    assert "--jp-layout-color0" in css and "--jp-ui-font-color1" in css
    assert Explorer._esm == (STATIC / "explorer.js").read_text()
    assert all(f"--ocilens-{k.replace('_', '-')}-fg:{fg}" in Explorer._css for k, (_, fg) in CHANGE_COLOURS.items())
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert any(d.startswith("anywidget") for d in project["project"]["dependencies"])
    data = project["tool"]["setuptools"]["package-data"]["ocilens"]
    assert "explorer/*.js" in data and "explorer/*.css" in data


def test_diff_explorer_has_the_same_tree(tmp_path: Path) -> None:
    tars = _tars()
    a = ocilens.load(f"oci:{layout_from_tars(tmp_path, tars[:1], history=HISTORY[:1])}:t", progress=False)
    b = ocilens.load(f"oci:{layout_from_tars(tmp_path, tars, history=HISTORY)}:t", progress=False)
    d = a.diff(b)
    x = d.explore()
    assert isinstance(x, DiffExplorer) and x.model.is_diff and x.model.layer is None and x.layer == -1
    shown = _leaves(x.model).set_index("path").sort_index()
    truth = d.files.set_index("path").sort_index()
    assert list(shown.index) == list(truth.index)
    assert list(shown["kind"]) == list(_expected_kind(truth.reset_index()).to_numpy())
    assert shown["size"].equals(truth["size"].astype("Int64"))
    assert x.model.counts() == change_counts(d.files)
    assert [k["label"] for k in x.kinds][:4] == ["added", "modified", "metadata only", "removed"]
    assert "srv/" in " ".join(_labels(x))
    s = d.summary()
    assert x.status["image"] == counts_text(change_counts(d.files))
    assert f"({s['size_delta']:+,} B)" in x.status["layer"]
    x.model.set_filters(kinds=KINDS)
    assert x.model.tree.total_delta == s["size_delta"], "the tree's net change is the header's"
    with pytest.raises(UsageError):
        x.model.set_filters(waste_only=True)
    with pytest.raises(UsageError):
        x.model.select_layer(0)
    x.handle({"do": "filters", "waste_only": True})  # ignored: a diff has no waste
    assert not x.model.waste_only
    assert repr(x).startswith("<ocilens.DiffExplorer ")
    _assert_inert(x._repr_mimebundle_()[0]["text/html"])


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
    """The front end puts every text in with textContent (test_widget_front_end_ships_with_the_package checks
    it never uses innerHTML); what it gets is printable text, and the static HTML is inert."""
    x = hostile.explore(kinds=KINDS)
    x.model.expand_all()
    x._push()
    texts = [v for r in x.rows for v in r.values() if isinstance(v, str)]
    text = "\n".join(texts)
    assert SCRIPT in text and ATTR in text  # text, drawn as text
    assert "invoice\\u202etxt.exe" in text and "line\\x0abreak" in text and "\\xff\\xfe" in text
    assert all(ch.isprintable() for t in texts for ch in t), "a control character in a line"
    assert all(printable(key_path(r["p"])) in r["info"] for r in x.rows if not r["more"])
    odd = next(r for r in x.rows if r["n"] == "\\xff\\xfe")  # bytes that are not UTF-8: a key of hex
    assert odd["p"] == "#" + b"/app/\xff\xfe".hex() and key_path(odd["p"]) == "/app/\udcff\udcfe"
    x.handle({"do": "select", "path": odd["p"]})
    assert x.model.selected == "/app/\udcff\udcfe"
    json.dumps(x.get_state(), ensure_ascii=False).encode("utf-8")  # the state travels as UTF-8
    x.handle({"do": "layer", "layer": 1})
    assert x.layer_info["command"] == CREATED_BY
    assert all("\n" not in l["cmd"] for l in x.layers)
    p = _assert_inert(x._repr_mimebundle_()[0]["text/html"])
    assert CREATED_BY in "".join(p.text)
    x.close()


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
    assert "The 3 largest of 12 changes; a directory shows the total of all its changes." in "".join(text)
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


def test_widget_on_100000_files_sends_few_lines(big: ocilens.Image) -> None:
    before = len(_instances)
    t = time.perf_counter()
    x = big.explore()
    built = time.perf_counter() - t
    made = len(_instances) - before
    assert made < 5, f"the explorer made {made} widgets"
    assert built < 10
    assert [r["n"] for r in x.rows] == ["data", "flat"]
    t = time.perf_counter()
    x.handle({"do": "expand", "path": "/flat"})
    assert time.perf_counter() - t < 2.0, "opening a directory of 10,000 files in the widget"
    assert len(x.rows) == 2 + 200 + 1
    assert x.rows[-1]["more"] == 9_800 and "9,800 more" in x.rows[-1]["info"]
    x.handle({"do": "more", "path": "/flat"})  # space or a click on "more"
    assert len(x.rows) == 2 + 400 + 1
    assert len(_instances) - before == made, "messages made widgets"
    x.close()
