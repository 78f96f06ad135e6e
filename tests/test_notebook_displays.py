"""What a notebook shows, in a real kernel (nbclient runs the cells): an ``OcilensError`` as its message and
hint alone (IPython's ``_render_traceback_``) and the documented ways to see every frame; the progress line
of a load that fails before it resolves (the reference kept); ``layer_diff``'s rich display with one
missing-value style; the explorer's static view in a notebook exported without widget state; the rich
displays of an image and its bloat audit, in the kernel and in a real JupyterLab (Playwright in Debian's
Chromium): text left-aligned and broken only at spaces or after a ``/``, numbers right-aligned.

(``test_explore_e2e.py`` checks the ``layer_diff`` display's alignment, breaks and colours in JupyterLab.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import ocilens
from ocilens.diff import LayerDiff, change_counts, counts_text

ANSI = re.compile(r"\x1b\[[0-9;]*m")
MISSING = "/nonexistent/ocilens-image"
HINT = "  hint: check the path; an image reference for a registry is host/repository:tag"


def run(cells: list[str], kernel: str, tmp_path: Path, **client: Any) -> nbformat.NotebookNode:
    """Run ``cells`` in a fresh kernel (errors do not stop it) and return the executed notebook."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name=kernel, timeout=120, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}, **client).execute()
    return nb


def error_of(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert len(errors) == 1, cell.outputs
    return errors[0]


def lines(error: nbformat.NotebookNode) -> list[str]:
    return [ANSI.sub("", line) for part in error.traceback for line in part.split("\n")]


# ------------------------------------------------------------------------------------------- errors


def test_an_ocilens_error_shows_its_message_and_hint_alone(kernel: str, tmp_path: Path) -> None:
    load = f"import ocilens\nocilens.load({MISSING!r}, progress=False)"
    nb = run([load,  # the default: message and hint
              f"%xmode Verbose\n{load}",  # IPython's own switch shows every frame
              f"%xmode Context\n{load}",  # and back
              f"ocilens.errors.full_tracebacks(True)\n{load}",  # ocilens's switch
              f"ocilens.errors.full_tracebacks(None)\nimport os\nos.environ['OCILENS_TRACEBACK'] = 'full'\n{load}",
              f"del os.environ['OCILENS_TRACEBACK']\n{load}"], kernel, tmp_path)
    short = error_of(nb.cells[0])
    assert short.ename == "SourceNotFound"
    assert lines(short) == [f"SourceNotFound: '{MISSING}': no such file or directory",
                            HINT + " (or docker://host/repository:tag)"], short.traceback
    for k in (1, 3, 4):
        full = lines(error_of(nb.cells[k]))
        text = "\n".join(full)
        assert len(full) > 10 and "open_source(ref" in text and "ocilens/sources/__init__.py" in text, (k, text[-2000:])
        assert "no such file or directory" in text
    for k in (2, 5):
        assert lines(error_of(nb.cells[k])) == lines(short), k


def test_render_traceback_follows_the_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocilens.errors import full_tracebacks

    err = ocilens.errors.UsageError("bad size '12QB'", hint="use 20MB or 1.5GiB")
    assert [ANSI.sub("", t) for t in err._render_traceback_()] == ["UsageError: bad size '12QB'",
                                                                   "  hint: use 20MB or 1.5GiB"]
    monkeypatch.setenv("OCILENS_TRACEBACK", "full")
    assert not hasattr(err, "_render_traceback_")  # IPython then shows the usual traceback
    monkeypatch.delenv("OCILENS_TRACEBACK")
    full_tracebacks(True)
    try:
        assert not hasattr(err, "_render_traceback_")
    finally:
        full_tracebacks(None)
    assert hasattr(err, "_render_traceback_")
    assert ocilens.errors.__doc__ and "OCILENS_TRACEBACK=full" in ocilens.errors.__doc__
    assert "%xmode Verbose" in ocilens.errors.__doc__


# ------------------------------------------------------------------------------------------ progress


def test_a_failed_load_names_its_reference(kernel: str, tmp_path: Path) -> None:
    """It used to print "ocilens: : failed after 0.0s": the error comes before "resolve"."""
    nb = run([f"import ocilens\ntry:\n    ocilens.load({MISSING!r}, progress='text')\nexcept ocilens.OcilensError:\n"
              "    pass",
              f"try:\n    ocilens.load({MISSING!r}, progress='widget')\nexcept ocilens.OcilensError:\n    pass"],
             kernel, tmp_path)
    text = "".join(o.text for o in nb.cells[0].outputs if o.output_type == "stream")
    assert f"ocilens: {MISSING}: failed after " in text, text
    shown = "".join(o.data.get("text/plain", "") for o in nb.cells[1].outputs if o.output_type == "display_data")
    assert f"ocilens: {MISSING}: failed after " in shown, nb.cells[1].outputs


# ---------------------------------------------------------------------------------------- layer_diff


def test_layer_diff_has_one_missing_value_style_and_a_rich_display(kernel: str, tmp_path: Path) -> None:
    sample = ocilens.sample_image(progress=False)
    d = sample.layer_diff(3)
    assert isinstance(d, LayerDiff) and isinstance(d, __import__("pandas").DataFrame)
    assert type(d.head()).__name__ == "DataFrame", "operations give plain frames"
    assert "NaN" not in d.to_string(), "a column shows its missing values as NaN, not <NA>"
    for name, dtype in d.dtypes.items():
        assert name == "change" or str(dtype) in ("string", "Int64", "boolean"), (name, dtype)
    nb = run(["import ocilens\nocilens.sample_image(progress=False).layer_diff(2)"], kernel, tmp_path)
    (result,) = [o for o in nb.cells[0].outputs if o.output_type == "execute_result"]
    html = result.data["text/html"]
    want = change_counts(sample.layer_diff(2))
    assert 'class="ocilens-nb"' in html and counts_text(want) in html
    assert html.count("mode 0755 → 0700") == 3 and html.count('class="k k-metadata_only"') == 3
    assert "/<wbr>usr/<wbr>bin/<wbr>less" in html  # paths break after a /, nowhere else
    assert "<NA>" in result.data["text/plain"] and "NaN" not in result.data["text/plain"]


# -------------------------------------------------------------------------------------- the explorer


def test_explorer_in_an_exported_notebook_is_static_html(kernel: str, tmp_path: Path) -> None:
    """A notebook saved without widget state (JupyterLab's default) still shows the explorer: nbconvert
    skips the widget view whose state it lacks and takes the ``text/html`` the widget carries."""
    from nbconvert import HTMLExporter

    nb = run(["import ocilens\nocilens.sample_image(progress=False).explore(layer=2)"], kernel, tmp_path,
             store_widget_state=False)
    (result,) = [o for o in nb.cells[0].outputs if o.output_type == "execute_result"]
    assert {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"} <= set(result.data)
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert "ocilens explorer" in page and "chmod 0700" in page
    assert "lesskey" in page and "mode 0755 → 0700" in page  # layer 2's tree, with what changed
    assert "image: efficiency" in page
    fragment = result.data["text/html"]
    assert "<script" not in fragment.lower()


# ------------------------------------------------------------------- the rich displays in JupyterLab

DISPLAY_CELLS = ["import ocilens\nimg = ocilens.sample_image(progress=False)\nimg", "img.bloat()"]


def test_image_and_bloat_displays_in_a_kernel_use_the_report_tables(kernel: str, tmp_path: Path) -> None:
    """What the kernel sends: our tables (class ``t``: text left, numbers right), the layers in the diff's
    words, causes as words, and nothing that breaks words anywhere (``break-all``)."""
    nb = run(DISPLAY_CELLS, kernel, tmp_path)
    views = [o.data["text/html"] for cell in nb.cells for o in cell.outputs if o.output_type == "execute_result"]
    assert len(views) == 2
    for html in views:
        assert 'class="ocilens ocilens-view"' in html and '<table class="t">' in html
        assert "break-all" not in html
        assert "<script" not in html.lower()
    image, bloat = views
    assert "<th class=\"n\">modified</th>" in image and "overwritten</th>" not in image
    assert "deleted later" in bloat and ">deleted_later<" not in bloat


def test_image_and_bloat_displays_in_jupyterlab(tmp_path_factory: pytest.TempPathFactory, socket_dir: Path,
                                                request: pytest.FixtureRequest) -> None:
    """In a real JupyterLab (whose own rules right-align every cell and fix the table layout): text cells
    left-aligned, numbers right-aligned, tables laid out automatically; narrowed to 520 px, commands break only
    at spaces and paths only after a ``/`` (some do wrap). Screenshots of both displays are kept (their paths
    printed; ``OCILENS_KEEP_SCREENSHOTS=DIR`` copies them there)."""
    from playwright.sync_api import sync_playwright
    from browsers import CHROMIUM, CHROMIUM_ARGS
    from test_explore_e2e import Lab, _keep
    from test_report_browser import LAYOUT_JS

    assert CHROMIUM.exists(), "Debian's chromium is not installed: make debian-deps"
    root = tmp_path_factory.mktemp("displays")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in DISPLAY_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "displays.ipynb")
    shots = tmp_path_factory.mktemp("display-screenshots")
    taken: list[Path] = []
    server = Lab(root, tmp_path_factory.mktemp("displays-state"))
    try:
        server.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000,
                                        env={**os.environ, "TMPDIR": str(socket_dir)})
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{server.base}/lab/tree/displays.ipynb?token={server.token}", wait_until="domcontentloaded",
                          timeout=60_000)
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=60_000)
                page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)
                for attempt in range(3):  # a run sent while the kernel was still connecting is lost: send it again
                    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                    try:
                        page.wait_for_function("() => document.querySelectorAll('.ocilens-view').length === 2",
                                               timeout=30_000)
                        break
                    except Exception:  # noqa: BLE001 - retried, then reported
                        if attempt == 2:
                            raise AssertionError(f"the displays never appeared:\n{server.log_tail()}")
                wide = page.evaluate(LAYOUT_JS)
                layout = page.evaluate("() => [...document.querySelectorAll('.ocilens-view table.t')]"
                                       ".map(t => getComputedStyle(t).tableLayout)")
                jupyter_rule = page.evaluate(
                    "() => { const t = document.createElement('table'); const td = t.insertRow().insertCell();"
                    " const host = document.querySelector('.jp-RenderedHTMLCommon'); host.appendChild(t);"
                    " const a = getComputedStyle(td).textAlign; t.remove(); return a; }")
                page.evaluate("() => document.querySelectorAll('.ocilens-view').forEach(v => {"
                              " v.style.width = '520px'; v.style.maxWidth = '520px'; })")
                narrow = page.evaluate(LAYOUT_JS)
                page.set_viewport_size({"width": 1400, "height": 4000})  # the whole display in view
                for k, view in enumerate(page.locator(".ocilens-view").all()):
                    shot = shots / f"notebook-display-{('image', 'bloat')[k]}-520px.png"
                    view.screenshot(path=str(shot))
                    assert shot.stat().st_size > 20_000
                    _keep(shot)  # OCILENS_KEEP_SCREENSHOTS=DIR copies it there
                    taken.append(shot)
            finally:
                browser.close()
    finally:
        server.stop()
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if taken and reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                for shot in taken:
                    reporter.write_line(f"\nnotebook display screenshot: {shot}")
    assert jupyter_rule == "right", "JupyterLab no longer right-aligns table cells: the test proves nothing"
    assert layout and set(layout) == {"auto"}, layout
    for got in (wide, narrow):
        assert got["align"] == [], got["align"]
        assert got["problems"] == [], "\n".join(got["problems"])
        assert got["commands"] > 0 and got["paths"] > 0
    assert narrow["wrappedCommands"] > 0 and narrow["wrappedPaths"] > 0, narrow
