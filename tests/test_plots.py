"""The charts read back: what each helper drew (bar heights, widths, labels, colours) against the DataFrames
it draws from, on Axes of a ``matplotlib.figure.Figure`` owned by the test (Agg, no pyplot state)."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import ocilens  # noqa: E402
from imagebuild import Entry, layout_from_tars, tar_layer  # noqa: E402
from ocilens import plots  # noqa: E402


@pytest.fixture(scope="module")
def img() -> ocilens.Image:
    """The sample: its layer 0 has bytes of all four fates, so every stacked segment is drawn."""
    return ocilens.sample_image(progress=False)


@pytest.fixture
def ax() -> Axes:
    return Figure(figsize=(7, 3.5)).subplots()


def bars(ax: Axes) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def ytick_texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


# ------------------------------------------------------------------------------------------ layer_sizes


def test_layer_sizes_segments_are_the_per_layer_columns(img: ocilens.Image, ax: Axes) -> None:
    per = img.bloat().per_layer
    assert plots.layer_sizes(img, ax) is ax
    drawn = bars(ax)
    # The sample has no unappliable entry: that segment is left out, the other four are drawn.
    assert int(per["wasted_unappliable"].sum()) == 0
    shown = [s for s in plots.SEGMENTS if s[0] != "wasted_unappliable"]
    assert [c.get_label() for c in drawn] == [label for _, label, _ in shown]
    # The legend speaks the causes' words, as the report's tables do (no identifiers).
    assert [label for _, label, _ in plots.SEGMENTS] == ["visible", "overwritten", "deleted later", "metadata only",
                                                         "unappliable"]
    bottoms = [0] * len(per)
    for container, (column, _, colour) in zip(drawn, shown):
        assert [p.get_height() for p in container.patches] == [int(v) for v in per[column]], column
        assert [p.get_y() for p in container.patches] == bottoms, f"{column} is not stacked on the ones below"
        assert {to_hex(p.get_facecolor()) for p in container.patches} == {colour}
        bottoms = [b + int(v) for b, v in zip(bottoms, per[column])]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in img.layers["layer"]]
    # Each stack is the layer's shipped bytes, and the fates really occur in this image.
    assert bottoms == [int(v) for v in img.layers["shipped_bytes"]]
    assert all(sum(int(v) for v in per[column]) > 0 for column, _, _ in shown)


def test_layer_sizes_draws_unappliable_bytes_when_there_are_some(tmp_path: Path, ax: Axes) -> None:
    """A file under a path that is a file in a lower layer cannot be applied: it ships and is never visible."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("x", b"x" * 100)]),
                                         tar_layer([Entry.file("x/under", b"u" * 700)])])
    img = ocilens.load(f"oci:{layout}:t", progress=False)
    plots.layer_sizes(img, ax)
    drawn = {c.get_label(): [p.get_height() for p in c.patches] for c in bars(ax)}
    assert drawn["unappliable"] == [0, 700]
    totals = [sum(h) for h in zip(*drawn.values())]
    assert totals == [100, 700] == [int(v) for v in img.layers["shipped_bytes"]]


def test_layer_sizes_stacks_sum_to_shipped_bytes(img: ocilens.Image, ax: Axes) -> None:
    plots.layer_sizes(img, ax)
    totals = [sum(p.get_height() for p in stack) for stack in zip(*(c.patches for c in bars(ax)))]
    assert totals == [int(v) for v in img.layers["shipped_bytes"]]
    assert ax.get_legend() is not None and ax.get_title()


# --------------------------------------------------------------------------------------- waste_by_cause


def test_waste_by_cause_widths_are_by_cause_bytes(img: ocilens.Image, ax: Axes) -> None:
    by = img.bloat().by_cause
    assert plots.waste_by_cause(img, ax) is ax
    (container,) = bars(ax)
    # Largest first from the top: barh draws bottom-up, so the rows read back reversed.
    widths = [p.get_width() for p in container.patches][::-1]
    assert widths == [int(v) for v in by["bytes"]]
    labels = ytick_texts(ax)[::-1]
    assert len(labels) == len(by)
    for label, row in zip(labels, by.itertuples(index=False)):
        first, second = label.split("\n")
        # The cause in words (never the identifier), and the layer whose instruction made the waste.
        assert first == f"{str(row.cause).replace('_', ' ')}, made by layer {row.by_layer}", label
        # The instruction as written in the history, less its /bin/sh -c: whole words only, none cut.
        command = " ".join(str(row.by_created_by).split()).replace("/bin/sh -c ", "")
        command = command.removesuffix(" # buildkit")
        shown = second.removesuffix(" …").split(" ")
        assert shown == command.split(" ")[:len(shown)], (second, command)
        assert second == command or second.endswith(" …"), (second, command)
        assert len(second) <= plots.LABEL_CHARS
    # The sample's chmod: "… /usr/bin/l" used to be cut mid-name; now the label stops at a whole word.
    chmod = next(t for t in labels if "chmod" in t)
    assert chmod.endswith("/usr/bin/less …"), chmod
    colours = {column.removeprefix("wasted_"): colour for column, _, colour in plots.SEGMENTS}
    drawn = [to_hex(p.get_facecolor()) for p in container.patches][::-1]
    assert drawn == [colours[str(c)] for c in by["cause"]]


@pytest.mark.parametrize("path, limit, want", [
    ("/usr/share/locale/ka/LC_MESSAGES/sed.mo", 30, "…/locale/ka/LC_MESSAGES/sed.mo"),
    ("/usr/bin/less", 30, "/usr/bin/less"),
    ("/opt/" + "n" * 50, 30, "…/" + "n" * 50),  # one name longer than the limit: kept whole
])
def test_short_path_cuts_at_slashes_only(path: str, limit: int, want: str) -> None:
    got = plots.short_path(path, limit)
    assert got == want
    assert got.startswith("…/") or got == path
    assert path.endswith(got.removeprefix("…"))  # a tail of whole names


def test_waste_by_cause_keeps_the_top(img: ocilens.Image, ax: Axes) -> None:
    by = img.bloat().by_cause
    assert len(by) > 2
    plots.waste_by_cause(img, ax, top=2)
    (container,) = bars(ax)
    assert [p.get_width() for p in container.patches][::-1] == [int(v) for v in by["bytes"].head(2)]


# ----------------------------------------------------------------------------------------- largest_dirs


def dir_bytes(files, max_depth: int = 3) -> dict[str, int]:
    """Bytes of regular files below each directory down to ``max_depth``, recomputed here from ``files``."""
    out: dict[str, int] = {}
    for path, kind, size in zip(files["path"], files["type"], files["size"]):
        if kind != "file":
            continue
        for parent in PurePosixPath(path).parents:
            depth = len(parent.parts) - 1
            if 1 <= depth <= max_depth:
                out[str(parent)] = out.get(str(parent), 0) + int(size)
    return out


def test_largest_dirs_are_directory_sizes_of_the_final_tree(img: ocilens.Image, ax: Axes) -> None:
    truth = dir_bytes(img.files)
    top = 12
    assert plots.largest_dirs(img, ax) is ax
    (container,) = bars(ax)
    drawn = dict(zip(ytick_texts(ax), (p.get_width() for p in container.patches)))
    assert len(drawn) == top
    assert drawn == {path: truth[path] for path in drawn}
    # The largest ones, largest at the top (ties may come in any order).
    assert sorted(drawn.values(), reverse=True) == sorted(truth.values(), reverse=True)[:top]
    assert [p.get_width() for p in container.patches][::-1] == sorted(drawn.values(), reverse=True)
    # plots.directory_sizes says the same, for every directory and depth.
    ds = plots.directory_sizes(img.files)
    assert dict(zip(ds["path"], (int(v) for v in ds["bytes"]))) == truth
    assert list(ds["depth"]) == [p.count("/") for p in ds["path"]]


def test_largest_dirs_depth_and_top(img: ocilens.Image, ax: Axes) -> None:
    plots.largest_dirs(img, ax, top=3, max_depth=1)
    truth = dir_bytes(img.files, max_depth=1)
    (container,) = bars(ax)
    drawn = dict(zip(ytick_texts(ax), (p.get_width() for p in container.patches)))
    assert all(p.count("/") == 1 for p in drawn)
    assert drawn == {p: truth[p] for p in drawn} and len(drawn) == min(3, len(truth))


# ------------------------------------------------------------------------------------------- diff_sizes


@pytest.fixture(scope="module")
def two_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[ocilens.Image, ocilens.Image]:
    tmp = tmp_path_factory.mktemp("diff-plot")
    base = [Entry.dir("app"), Entry.file("app/grows", b"g" * 1000), Entry.file("app/shrinks", b"s" * 5000),
            Entry.file("app/goes", b"x" * 3000), Entry.file("app/same", b"=" * 100)]
    after = [Entry.file("app/grows", b"G" * 4000), Entry.file("app/shrinks", b"s" * 10),
             Entry.whiteout("app/goes"), Entry.file("app/new", b"n" * 700)]
    a = layout_from_tars(tmp, [tar_layer(base)])
    b = layout_from_tars(tmp, [tar_layer(base), tar_layer(after)])
    return ocilens.load(f"oci:{a}:t", progress=False), ocilens.load(f"oci:{b}:t", progress=False)


def test_diff_sizes_draws_the_largest_changes(two_images: tuple[ocilens.Image, ocilens.Image], ax: Axes) -> None:
    a, b = two_images
    d = a.diff(b)
    assert plots.diff_sizes(d, ax) is ax
    (container,) = bars(ax)
    drawn = dict(zip(ytick_texts(ax), (p.get_width() for p in container.patches)))
    expected = {f"{r.change}: {r.path}": int(r.size_delta) for r in d.files.itertuples(index=False)}  # short paths
    assert drawn == expected
    assert drawn == {"modified: /app/grows": 3000, "modified: /app/shrinks": -4990, "removed: /app/goes": -3000,
                     "added: /app/new": 700}
    widths = [p.get_width() for p in container.patches][::-1]
    assert [abs(w) for w in widths] == sorted((abs(w) for w in widths), reverse=True)
    for p in container.patches:
        assert to_hex(p.get_facecolor()) == ("#54a24b" if p.get_width() >= 0 else "#e45756")
    # The same chart from the diff result itself.
    other = Figure().subplots()
    assert d.plot(ax=other) is other
    assert [p.get_width() for p in bars(other)[0].patches] == [p.get_width() for p in container.patches]


def test_diff_sizes_shortens_long_paths_at_slashes(tmp_path: Path, ax: Axes) -> None:
    deep = "srv/" + "/".join(f"level{i}" for i in range(8)) + "/payload.bin"
    a = layout_from_tars(tmp_path, [tar_layer([Entry.file("x", b"x")])])
    b = layout_from_tars(tmp_path, [tar_layer([Entry.file("x", b"x")]), tar_layer([Entry.file(deep, b"p" * 900)])])
    d = ocilens.load(f"oci:{a}:t", progress=False).diff(ocilens.load(f"oci:{b}:t", progress=False))
    plots.diff_sizes(d, ax)
    (label,) = [t for t in ytick_texts(ax) if "payload" in t]
    change, shown = label.split(": ", 1)
    assert change == "added" and shown.startswith("…/") and ("/" + deep).endswith(shown[1:])
    assert len(label) <= plots.LABEL_CHARS


def test_diff_sizes_of_an_empty_diff_says_so(two_images: tuple[ocilens.Image, ocilens.Image], ax: Axes) -> None:
    a, _ = two_images
    d = a.diff(a)
    assert d.files.empty
    assert plots.diff_sizes(d, ax) is ax
    assert [t.get_text() for t in ax.texts] == ["no file changes"]
    assert not bars(ax) and not ax.axison


# ----------------------------------------------------------------------------------- the library contract


def helpers(img: ocilens.Image, two: tuple[ocilens.Image, ocilens.Image]) -> dict[str, Callable[..., Axes]]:
    d = two[0].diff(two[1])
    return {
        "layer_sizes": lambda ax=None: plots.layer_sizes(img, ax),
        "waste_by_cause": lambda ax=None: plots.waste_by_cause(img, ax),
        "largest_dirs": lambda ax=None: plots.largest_dirs(img, ax),
        "diff_sizes": lambda ax=None: plots.diff_sizes(d, ax),
        "img.plot.layer_sizes": lambda ax=None: img.plot.layer_sizes(ax=ax),
        "img.plot.waste_by_cause": lambda ax=None: img.plot.waste_by_cause(ax=ax),
        "img.plot.largest_dirs": lambda ax=None: img.plot.largest_dirs(ax=ax),
        "img.plot()": lambda ax=None: img.plot(ax=ax),
        "diff.plot()": lambda ax=None: d.plot(ax=ax),
    }


def test_every_helper_returns_the_axes_it_was_given(img, two_images, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("a library chart called plt.show()"))
    before = plt.get_fignums()
    for name, draw in helpers(img, two_images).items():
        fig = Figure()
        ax = fig.subplots()
        assert draw(ax) is ax, name
        assert ax.has_data() or ax.texts, f"{name} drew nothing"
        fig.savefig(io.BytesIO(), format="png")
    assert plt.get_fignums() == before, "a helper given an Axes opened a pyplot figure"


def test_every_helper_makes_its_own_axes_when_none(img, two_images, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("a library chart called plt.show()"))
    for name, draw in helpers(img, two_images).items():
        before = set(plt.get_fignums())
        ax = draw()
        try:
            assert isinstance(ax, Axes), name
            assert ax.figure.number not in before, f"{name} drew on an existing figure"
            assert ax.has_data() or ax.texts, f"{name} drew nothing"
        finally:
            plt.close(ax.figure)
    assert plt.get_fignums() == []


def test_bloat_result_reaches_its_chart(img: ocilens.Image, ax: Axes) -> None:
    """Issue 5: charts are "reachable as img.plot.<name>() and from the bloat and diff results" — the diff has
    ``d.plot(ax=)``; the bloat result should have the same (its chart is the waste by cause)."""
    b = img.bloat()
    assert callable(getattr(b, "plot", None)), "Bloat has no .plot (ImageDiff has one)"
    assert b.plot(ax=ax) is ax
    (container,) = bars(ax)
    assert [p.get_width() for p in container.patches][::-1] == [int(v) for v in b.by_cause["bytes"]]


# --------------------------------------------------------------------------- labels that come from the image


@pytest.fixture(scope="module")
def dollar_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[ocilens.Image, ocilens.Image]:
    """Names and instructions with ``$``: matplotlib reads ``$...$`` as mathtext unless told not to.
    Shell instructions are full of ``$VAR``; names in layers are attacker-controlled."""
    tmp = tmp_path_factory.mktemp("dollars")
    odd = "opt/$\\notacommand$"
    base = [Entry.dir("opt"), Entry.dir(odd), Entry.file(f"{odd}/big.bin", b"b" * 50_000),
            Entry.file("etc/app.conf", b"c" * 2000)]
    after = [Entry.file("etc/app.conf", b"d" * 2100), Entry.file(f"{odd}/big.bin", b"B" * 60_000)]
    history = ["ADD rootfs /", "RUN cp $SRC/app.conf $HOME/ && echo done"]
    a = layout_from_tars(tmp, [tar_layer(base)], history=history[:1])
    b = layout_from_tars(tmp, [tar_layer(base), tar_layer(after)], history=history)
    return ocilens.load(f"oci:{a}:t", progress=False), ocilens.load(f"oci:{b}:t", progress=False)


@pytest.mark.parametrize("chart", ["largest_dirs", "waste_by_cause", "diff_sizes"])
def test_labels_from_the_image_are_drawn_literally(dollar_images, chart: str) -> None:
    a, b = dollar_images
    fig = Figure(figsize=(9, 4))
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    if chart == "diff_sizes":
        plots.diff_sizes(a.diff(b), ax)
    else:
        getattr(plots, chart)(b, ax)
    canvas.draw()  # a label that is bad mathtext raises here (ValueError: ParseFatalException)
    renderer = canvas.get_renderer()
    dollars = [t for t in ax.get_yticklabels() if "$" in t.get_text() or "\\$" in t.get_text()]
    assert dollars, f"{chart}: no label with a $ was drawn: {ytick_texts(ax)}"
    for t in dollars:
        literal = Text(0, 0, t.get_text().replace("\\$", "$"), parse_math=False,
                       fontproperties=t.get_fontproperties())
        literal.set_figure(fig)
        assert t.get_window_extent(renderer).width == pytest.approx(literal.get_window_extent(renderer).width, abs=1), (
            f"{chart}: {t.get_text()!r} was typeset as math, not shown as the text it is")
