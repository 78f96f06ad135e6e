"""Progress front ends driven by real loads of a multi-layer test image: the ipywidgets panel (its bars,
labels and states), the text bar, silence, a plain callable, and how ``progress="auto"`` picks."""

from __future__ import annotations

import io
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import ocilens
from imagebuild import Entry, blob_path, layout_from_tars, manifest_of, tar_layer
from ocilens.progress import TextProgress, WidgetProgress, in_notebook, make_progress, short_digest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No progress switches from the outer environment, and a cache of our own (first loads are cold)."""
    for name in ("OCILENS_PROGRESS", "TQDM_DISABLE", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))


def noise(n: int, seed: int) -> bytes:
    """Incompressible bytes: the compressed layer stays big enough to be read in several chunks."""
    return random.Random(seed).randbytes(n)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three layers of very different sizes; the first one needs several 1 MiB reads."""
    tmp = tmp_path_factory.mktemp("progress")
    return layout_from_tars(tmp, [
        tar_layer([Entry.dir("data"), Entry.file("data/big", noise(2_300_000, 1))]),
        tar_layer([Entry.file("data/mid", noise(200_000, 2)), Entry.file("data/note", "x")]),
        tar_layer([Entry.whiteout("data/note"), Entry.file("etc/motd", "hello\n")]),
    ], history=["ADD big", "ADD mid", "RUN rm note"])


@pytest.fixture(scope="module")
def ref(layout: Path) -> str:
    return f"oci:{layout}:t"


@pytest.fixture(scope="module")
def descriptors(layout: Path) -> list[tuple[str, int]]:
    """The manifest's layers, (digest, compressed size), read from the layout itself."""
    return [(d["digest"], d["size"]) for d in manifest_of(layout, "t")["layers"]]


class TTY(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


# ------------------------------------------------------------------------------------------------ widget


class RecordingWidget(WidgetProgress):
    """The real panel, with a snapshot of what it showed after each render."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, int, list[int]]] = []
        super().__init__()

    def render(self, event: str) -> None:
        super().render(event)
        with self.lock:
            self.shown.append((event, self.overall.value, [b.value for b in self.bars]))


def test_widget_panel_follows_a_real_load(ref: str, descriptors, capsys: pytest.CaptureFixture[str]) -> None:
    assert not in_notebook()
    wp = RecordingWidget()  # outside a kernel, IPython's display() just prints the panel's repr
    img = ocilens.load(ref, progress=wp, workers=1)
    assert "VBox" in capsys.readouterr().out

    sizes = [s for _, s in descriptors]
    assert list(img.layers["compressed_size"]) == sizes
    assert len(wp.bars) == len(wp.states) == len(wp.rows.children) == 3
    assert wp.panel.children == (wp.title, wp.stream_rows, wp.overall_row, wp.rows)
    total_label, total_bar, total_numbers = wp.overall_row.children
    assert total_bar is wp.overall and total_label.value == "total"
    for i, ((digest, size), bar, state, row) in enumerate(zip(descriptors, wp.bars, wp.states, wp.rows.children)):
        label, row_bar, numbers, row_state = row.children
        assert row_bar is bar and row_state is state
        # the total's bar and label are as long as every layer's
        assert (bar.layout.width, label.layout.width) == (total_bar.layout.width, total_label.layout.width)
        assert re.fullmatch(r"100% [\d.]+ [kM]?B/[\d.]+ [kM]?B \[\d\d:\d\d<00:00, [\d.]+ [kMG]?B/s\]", numbers.value), (
            numbers.value)
        assert (bar.min, bar.max, bar.value) == (0, size, size), f"layer {i}"
        assert bar.bar_style == "success"
        assert state.value == "done"
        assert label.value.split()[:2] == [str(i), digest.removeprefix("sha256:")[:12]]
        assert short_digest(digest) in label.value
    assert (wp.overall.max, wp.overall.value, wp.overall.bar_style) == (sum(sizes), sum(sizes), "success")
    assert ref in wp.title.value and "done" in wp.title.value
    assert "3 layers (0 cached)" in repr(wp) and ref in repr(wp)
    assert f"{int(img.layers['entries'].sum()):,} entries" in repr(wp)

    # While loading, the bars moved forward layer by layer (workers=1: one layer after the other).
    overall = [o for _, o, _ in wp.shown]
    assert overall == sorted(overall) and overall[0] == 0
    done_at = [(o, bars) for e, o, bars in wp.shown if e == "layer_done"]
    assert [o for o, _ in done_at] == [sum(sizes[:k + 1]) for k in range(3)]
    assert done_at[0][1] == [sizes[0], 0, 0]
    assert [e for e, _, _ in wp.shown][:2] == ["resolve", "manifest"] and wp.shown[-1][0] == "done"


def test_widget_panel_shows_cached_layers(ref: str, descriptors) -> None:
    ocilens.load(ref, progress=False)  # fills the cache
    wp = WidgetProgress()
    ocilens.load(ref, progress=wp)
    assert [s.value for s in wp.states] == ["cached"] * 3
    assert [(b.value, b.max) for b in wp.bars] == [(s, s) for _, s in descriptors]
    assert "3 layers (3 cached)" in repr(wp)


def test_widget_panel_escapes_the_reference(tmp_path: Path) -> None:
    """The title is an ``HTML`` widget: a reference (a path, a name from a list) must not become markup."""
    hostile = tmp_path / "x<img src=x onerror=alert(1)>y"
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a", "a")])])
    layout.rename(hostile)
    wp = WidgetProgress()
    ocilens.load(f"oci:{hostile}:t", progress=wp)
    assert "<img" not in wp.title.value
    assert "&lt;img src=x onerror=alert(1)&gt;" in wp.title.value


def test_widget_panel_reports_a_failure(tmp_path: Path) -> None:
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a", noise(5000, 3))])])
    blob = blob_path(layout, manifest_of(layout, "t")["layers"][0]["digest"])
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    wp = WidgetProgress()
    with pytest.raises(ocilens.OcilensError) as caught:
        ocilens.load(f"oci:{layout}:t", progress=wp)
    assert wp.overall.bar_style == "danger"
    assert "failed" in wp.title.value and "failed" in repr(wp)
    assert str(caught.value) in repr(wp)


# -------------------------------------------------------------------------------------------------- text


def test_text_bar_writes_to_its_stream_and_ends_with_a_summary(ref: str, capsys) -> None:
    stream = io.StringIO()
    ocilens.load(ref, progress=TextProgress(stream=stream))
    out = stream.getvalue()
    assert capsys.readouterr() == ("", ""), "the text bar wrote outside its stream"
    assert out.startswith("\r") and out.endswith("\n") and out.count("\n") == 1
    frames = out.rstrip("\n").split("\r")[1:]
    assert any("[" in f and "%" in f and "/3 layers" in f for f in frames[:-1])
    # the line before the summary: the last layer's (always drawn) or the assembling one drawn after it
    # (drawn when a tenth of a second has passed): both count every layer done
    assert "3/3 layers" in frames[-2], frames[-2]
    summary = frames[-1].rstrip()
    assert summary.startswith(f"ocilens: {ref}: ")
    assert "3 layers (0 cached)" in summary, f"the summary lost the layer count: {summary!r}"


#: The live bar's lines are cut to this many columns (``TextProgress.render``); the summary is not.
LIVE_WIDTH = 100


def test_text_summary_is_not_cut(layout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line is the record of what happened: it must be whole, however long the reference
    (the live bar may be fitted to the terminal; the summary that stays behind should not be).

    The reference is made long on purpose, and relative (a link under the test's own directory, which
    is the working directory), so its length is this test's and not the temporary directory's."""
    name = "a-layout-whose-name-alone-is-wider-than-the-live-bar-" + "x" * LIVE_WIDTH
    (tmp_path / name).symlink_to(layout, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    ref = f"oci:{name}:t"
    assert len(ref) > LIVE_WIDTH  # the construction: a summary cut like a live line would lose its end
    stream = io.StringIO()
    img = ocilens.load(ref, progress=TextProgress(stream=stream))
    out = stream.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1
    summary = out.rstrip("\n").split("\r")[-1].rstrip()
    assert summary.startswith(f"ocilens: {ref}: 3 layers (0 cached), "), f"the summary lost its start: {summary!r}"
    assert summary.endswith("s") and f"{int(img.layers['entries'].sum()):,} entries in " in summary, (
        f"the summary was cut: {summary!r}")
    assert len(summary) > LIVE_WIDTH


# ----------------------------------------------------------------------------------------------- silence


def test_progress_false_prints_nothing(ref: str, monkeypatch, capsys) -> None:
    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    ocilens.load(ref, progress=False)
    assert tty.getvalue() == ""
    assert capsys.readouterr() == ("", "")


def test_auto_is_text_on_a_terminal_and_silent_elsewhere(ref: str, monkeypatch, capsys) -> None:
    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    ocilens.load(ref)  # progress="auto"
    assert tty.getvalue().endswith("\n") and "ocilens:" in tty.getvalue()

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe
    assert make_progress("auto") is None
    ocilens.load(ref)
    assert sys.stderr.getvalue() == ""
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false"])
def test_env_off_silences_auto(ref: str, monkeypatch, value: str) -> None:
    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("OCILENS_PROGRESS", value)
    assert make_progress("auto") is None
    ocilens.load(ref)
    assert tty.getvalue() == ""


@pytest.mark.parametrize("env", [{"CI": "true"}, {"TQDM_DISABLE": "1"}])
def test_ci_silences_auto(ref: str, monkeypatch, env: dict[str, str]) -> None:
    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ocilens.load(ref)
    assert tty.getvalue() == ""


def test_env_forces_a_front_end(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    monkeypatch.setenv("OCILENS_PROGRESS", "text")
    assert isinstance(make_progress("auto"), TextProgress)
    monkeypatch.setenv("OCILENS_PROGRESS", "widget")
    assert isinstance(make_progress("auto"), WidgetProgress)
    # An explicit choice is not overridden by the environment.
    monkeypatch.setenv("OCILENS_PROGRESS", "off")
    assert isinstance(make_progress("text"), TextProgress)


def test_bad_progress_value_is_refused() -> None:
    with pytest.raises(ValueError, match="progress must be"):
        make_progress("loud")


def test_missing_ipywidgets_falls_back_to_text(ref: str, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    with pytest.warns(UserWarning, match=r"ipywidgets is not installed.*pip install ipywidgets"):
        p = make_progress("widget")
    assert isinstance(p, TextProgress)

    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("OCILENS_PROGRESS", "widget")
    with pytest.warns(UserWarning, match="ipywidgets"):
        ocilens.load(ref)
    assert "3 layers" in tty.getvalue() and tty.getvalue().endswith("\n")


# ---------------------------------------------------------------------------------------------- callable


def test_callable_receives_the_documented_events_in_order(ref: str, descriptors) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    img = ocilens.load(ref, progress=lambda event, **info: seen.append((event, info)))
    names = [e for e, _ in seen]
    assert names[:2] == ["resolve", "manifest"] and names[-2:] == ["assemble", "done"]
    assert set(names[2:-2]) == {"layer_start", "layer_bytes", "layer_done"}
    assert seen[0][1]["reference"] == ref
    assert [tuple(x) for x in seen[1][1]["layers"]] == descriptors
    assert seen[1][1]["digest"] == img.manifest_digest

    for i, (digest, size) in enumerate(descriptors):
        mine = [(e, info) for e, info in seen if info.get("index") == i]
        kinds = [e for e, _ in mine]
        assert kinds[0] == "layer_start" and kinds[-1] == "layer_done"
        assert set(kinds[1:-1]) == {"layer_bytes"}, f"layer {i}: {kinds}"
        assert all(info["digest"] == digest for _, info in mine)
        done = [info["done"] for e, info in mine if e == "layer_bytes"]
        assert done == sorted(done) and done[-1] == size, f"layer {i}: compressed bytes read {done}"
        assert all(info["total"] == size for e, info in mine if e == "layer_bytes")
        end = mine[-1][1]
        assert (end["size"], end["entries"], end["cached"]) == (size, int(img.layers["entries"][i]), False)
    big = [info["done"] for e, info in seen if e == "layer_bytes" and info["index"] == 0]
    assert len(big) >= 3, "a 2.3 MB layer read in 1 MiB chunks reports its bytes more than once"

    again: list[tuple[str, dict[str, Any]]] = []
    ocilens.load(ref, progress=lambda event, **info: again.append((event, info)))
    names = [e for e, _ in again]
    assert names == ["resolve", "manifest", "layer_done", "layer_done", "layer_done", "assemble", "done"]
    assert [info["cached"] for e, info in again if e == "layer_done"] == [True] * 3


def test_callable_hears_the_error(tmp_path: Path) -> None:
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a", noise(5000, 4))])])
    blob = blob_path(layout, manifest_of(layout, "t")["layers"][0]["digest"])
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    seen: list[tuple[str, dict[str, Any]]] = []
    with pytest.raises(ocilens.OcilensError) as caught:
        ocilens.load(f"oci:{layout}:t", progress=lambda event, **info: seen.append((event, info)))
    assert seen[-1][0] == "error" and seen[-1][1]["error"] is caught.value
    assert "done" not in [e for e, _ in seen]

    seen.clear()
    with pytest.raises(ocilens.OcilensError) as caught:
        ocilens.load(f"oci:{tmp_path / 'nothing-here'}:t", progress=lambda event, **info: seen.append((event, info)))
    assert [e for e, _ in seen][-1] == "error" and seen[-1][1]["error"] is caught.value


# ------------------------------------------------------------------------------------ tqdm's conventions


def test_numbers_follow_tqdm() -> None:
    from ocilens.progress import tqdm_stats

    assert tqdm_stats(800_000, 2_000_000, 2.0) == " 40% 800.0 kB/2.0 MB [00:02<00:03, 400.0 kB/s]"
    assert tqdm_stats(0, 2_000_000, 0.0) == "  0% 0 B/2.0 MB [00:00<?, ? B/s]"
    assert tqdm_stats(3_500_000, None, 3725.0) == "3.5 MB [1:02:05, 940 B/s]"  # unknown total: no percentage


def test_text_bar_is_tqdm_style(ref: str) -> None:
    stream = io.StringIO()
    ocilens.load(ref, progress=TextProgress(stream=stream), workers=1)
    frames = [f.rstrip() for f in stream.getvalue().rstrip("\n").split("\r")[1:-1]]
    live = [f for f in frames if "layers" in f]
    pattern = (r"ocilens: \w+ +\d+%\|[█▏▎▍▌▋▊▉ ]{24}\| [\d.]+ [kM]?B/[\d.]+ [kM]?B "
               r"\[\d\d:\d\d<([\d:]+|\?), (\? |[\d.]+ [kMG]?)B/s\] \d/3 layers")
    assert live and all(re.fullmatch(pattern, f) for f in live), live
    assert live[-1].startswith("ocilens: scanning 100%|" + "█" * 24 + "|")


def test_a_stream_of_unknown_size_shows_bytes_and_rate() -> None:
    """Standard input or an engine's export: ``download`` events with ``total=None`` before any manifest."""
    stream = io.StringIO()
    text = TextProgress(stream=stream)
    text("resolve", reference="docker-daemon:app:1")
    text("download", digest="sha256:" + "c" * 64, done=3_000_000, total=None)
    line = text.line()
    assert re.fullmatch(r"ocilens: docker-daemon:app:1: reading 3\.0 MB \[00:00, [\d.]+ [kMG]?B/s\]", line), line
    assert "%" not in line
    wp = WidgetProgress()
    wp("resolve", reference="docker-daemon:app:1")
    wp("download", digest="sha256:" + "c" * 64, done=3_000_000, total=None)
    wp.render("assemble")  # drawn now, not a tenth of a second later
    (row,) = wp.stream_rows.children
    label, numbers = row.children
    assert label.value == "reading " + "c" * 12
    assert re.fullmatch(r"3\.0 MB \[00:00, [\d.]+ [kMG]?B/s\]", numbers.value), numbers.value


@pytest.mark.parametrize("front", ["text", "widget"])
def test_a_failure_before_resolving_names_the_reference(front: str, tmp_path: Path) -> None:
    """A missing path fails before "resolve": the line used to read "ocilens: : failed after 0.0s"."""
    missing = str(tmp_path / "no-such-layout")
    reporter = TextProgress(stream=io.StringIO()) if front == "text" else WidgetProgress()
    with pytest.raises(ocilens.SourceNotFound):
        ocilens.load(f"oci:{missing}:t", progress=reporter)
    assert reporter.summary().startswith(f"ocilens: oci:{missing}:t: failed after "), reporter.summary()
    bare = TextProgress(stream=io.StringIO())
    bare("error", error=RuntimeError("boom"))
    assert bare.summary().startswith("ocilens: failed after ")
