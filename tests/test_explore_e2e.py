"""End to end, in a real browser: the explorer widget (an anywidget) in a JupyterLab server this test starts
on 127.0.0.1, driven by Playwright in Debian's headless Chromium, and the report's ``<details>`` trees
opened and folded with JavaScript off and no network.

One notebook runs once per module (the explorer on the sample, a ``layer_diff`` display, a progress panel
fed by hand); each test then starts from the state it needs (it clicks its layer first). What the widget
must show is computed here from the same image by ``ExplorerModel`` / ``layer_diff``, never read back from
the widget. Tested: the keys (↑/↓, →/←, space, Tab, ``/``, Escape hands the keys back to the notebook) and
that a click on a layer keeps them; each row's colour and mark, with a WCAG contrast of 4.5 or more on the
light and the dark theme; the mode, uid:gid, size and "what changed" columns; the whole command on hover
and wrapped at spaces only; dive's bottom line; the layer counts equal to ``layer_diff``'s; the
``layer_diff`` display's alignment and breaks; the progress panel's bars and tqdm-style text. The same
widget also runs in a real Notebook 7 (its keys, and Escape back to the notebook).

Playwright's own browsers are never downloaded: it drives ``/usr/bin/chromium``. Screenshots are written
under pytest's temporary directory and their paths printed at the end of the module; set
``OCILENS_KEEP_SCREENSHOTS=DIR`` to copy them there too.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

import ocilens
from browsers import offline_page
from ocilens.diff import change_counts, counts_text
from ocilens.explore import ExplorerModel, _command, row_data
from ocilens.html import CHANGE_COLOURS, CHANGE_COLOURS_DARK
from ocilens.tree import KINDS, MARKS, printable

REPO = Path(__file__).resolve().parent.parent


def _keep(path: Path) -> None:
    keep = os.environ.get("OCILENS_KEEP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _assert_png(path: Path, min_bytes: int) -> None:
    assert path.is_file(), f"no screenshot at {path}"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > min_bytes, f"a {len(data)} byte screenshot is (nearly) blank"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A JupyterLab server (or, ``app="notebook"``, a Notebook 7 one) on 127.0.0.1 serving ``root``, with
    its own settings, runtime and workspaces."""

    def __init__(self, root: Path, state: Path, app: str = "lab") -> None:
        self.root, self.state, self.app = root, state, app
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.log = state / "jupyter.log"
        settings = state / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        # No "would you like news?" toast over the page, no fetch of the news feed.
        (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                                "checkForUpdates": False}))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                   JUPYTER_RUNTIME_DIR=str(state / "runtime"), IPYTHONDIR=str(state / "ipython"))
        env.pop("JUPYTER_TOKEN", None)
        opt = "LabApp" if app == "lab" else "JupyterNotebookApp"
        cmd = [sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root", f"--port={self.port}",
               "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--notebook-dir={root}", f"--{opt}.expose_app_in_browser=True",  # window.jupyterapp: its commands
               f"--{opt}.user_settings_dir={state / 'settings'}", f"--{opt}.workspaces_dir={state / 'workspaces'}"]
        if app == "lab":
            cmd += ["--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=root, start_new_session=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab did not answer on {self.base} in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # the server shuts its kernels down
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        try:  # anything of this server's session still alive (a kernel): ours, ended by its group id
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --------------------------------------------------------------------------------------- the notebook

PROGRESS_CELL = """\
import time
from ocilens.progress import WidgetProgress
a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
p = WidgetProgress()
p("resolve", reference="demo:progress")
p("download", digest="sha256:" + "c" * 64, done=3_000_000, total=None)  # a stream of unknown size
p("manifest", layers=[(a, 2_000_000), (b, 500_000)])
p("layer_start", index=0, digest=a, size=2_000_000)
time.sleep(0.5)
p("layer_bytes", index=0, digest=a, done=800_000, total=2_000_000)
time.sleep(0.2)
p("download", digest="sha256:" + "c" * 64, done=3_500_000, total=None)
"""
CELLS = {
    "explorer": "import ocilens\nx = ocilens.sample_image(progress=False).explore()\nx",
    "layer-diff": "ocilens.sample_image(progress=False).layer_diff(4)",
    "progress": PROGRESS_CELL,
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("notebooks")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, id=name) for name, src in CELLS.items()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "explore.ipynb")
    server = Lab(root, tmp_path_factory.mktemp("jupyter-state"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where the screenshots go; their paths are printed when the module ends."""
    where = tmp_path_factory.mktemp("explorer-screenshots")
    yield where
    taken = sorted(where.glob("*.png"))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if taken and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for shot in taken:
                reporter.write_line(f"explorer screenshot: {shot}")


@pytest.fixture(scope="module")
def sample() -> ocilens.Image:
    return ocilens.sample_image(progress=False)


class Page:
    """The notebook open in JupyterLab, its cells run once; ``step`` turns a failure into one assertion with
    a screenshot, the cells' outputs and the server's log."""

    def __init__(self, page: Any, lab: Lab, shots: Path) -> None:
        self.page, self.lab, self.shots = page, lab, shots
        self.started = time.monotonic()

    def step(self, what: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:  # any failure becomes one clear assertion
            fail = self.shots / f"failure-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}.png"
            try:
                self.page.screenshot(path=str(fail))
                _keep(fail)
                outputs = "\n".join(self.page.locator(".jp-OutputArea-output").all_inner_texts())[-3000:]
            except Exception as inner:  # noqa: BLE001 - the page may be gone: say so
                outputs = f"(could not read the page: {inner})"
            raise AssertionError(f"{what} failed after {time.monotonic() - self.started:.0f}s: {exc}\n"
                                 f"screenshot: {fail}\ncell output:\n{outputs}\nserver log:\n{self.lab.log_tail()}"
                                 ) from exc

    def shot(self, name: str, locator: Any = None, min_bytes: int = 20_000) -> Path:
        path = self.shots / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        _keep(path)
        _assert_png(path, min_bytes)
        return path

    def wait(self, what: str, js: str, arg: Any = None, timeout: float = 30_000) -> None:
        self.step(what, lambda: self.page.wait_for_function(js, arg=arg, timeout=timeout))

    def state(self) -> dict[str, Any]:
        """What the explorer shows now: the selected layer, where the focus is, the tree's lines."""
        return self.page.evaluate(STATE_JS)

    def command(self, name: str, args: dict[str, Any] | None = None) -> None:
        self.page.evaluate("([n, a]) => window.jupyterapp.commands.execute(n, a)", [name, args or {}])


STATE_JS = """() => {
  const root = document.querySelector('.ocx');
  const a = document.activeElement;
  const rows = [...root.querySelectorAll('.ocx-tree .ocx-row')];
  const cell = a && a.closest ? a.closest('.jp-Cell') : null;
  return {
    layer: Number((root.querySelector('.ocx-layer.ocx-selected') || {dataset: {layer: -1}}).dataset.layer),
    focus: a === root.querySelector('.ocx-layers') ? 'layers' : a === root.querySelector('.ocx-tree') ? 'tree'
         : a === root.querySelector('.ocx-search') ? 'search' : root.contains(a) ? 'widget' : 'outside',
    cursor: rows.findIndex(r => r.classList.contains('ocx-cursor')),
    paths: rows.map(r => r.title),
    expanded: rows.map(r => r.getAttribute('aria-expanded')),
    describe: root.querySelector('.ocx-describe').textContent,
    counts: root.querySelector('.ocx-layerinfo').children.length
      ? [...root.querySelectorAll('.ocx-layerinfo > div')].map(d => d.textContent) : [],
    status: root.querySelector('.ocx-status').textContent,
    activeCell: [...document.querySelectorAll('.jp-Notebook .jp-Cell')]
      .findIndex(c => c.classList.contains('jp-mod-active')),
    focusInCell: cell ? [...document.querySelectorAll('.jp-Notebook .jp-Cell')].indexOf(cell) : -1,
    commandMode: !!document.querySelector('.jp-Notebook.jp-mod-commandMode'),
  };
}"""


@pytest.fixture(scope="module")
def page(lab: Lab, browser: Any, shots: Path) -> Iterator[Page]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    foreign: list[str] = []
    pw = context.new_page()
    pw.on("request", lambda r: None if r.url.startswith((lab.base, "data:", "blob:")) else foreign.append(r.url))
    p = Page(pw, lab, shots)
    p.step("opening the notebook", lambda: pw.goto(f"{lab.base}/lab/tree/explore.ipynb?token={lab.token}",
                                                  wait_until="domcontentloaded", timeout=60_000))
    p.step("JupyterLab showing the cells",
           lambda: pw.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=60_000))
    p.step("the kernel starting", lambda: pw.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000))
    for attempt in range(2):  # a run sent while the kernel was still connecting is lost: send it once more
        p.command("notebook:run-all-cells")
        try:
            pw.wait_for_selector(".ocx .ocx-layer", timeout=30_000)
            break
        except PlaywrightTimeout:  # retried once, then reported
            if attempt:
                raise AssertionError(f"the explorer never appeared:\n{lab.log_tail()}")
    p.step("the layer_diff display", lambda: pw.wait_for_selector(".ocilens-nb table.ocd", timeout=60_000))
    p.step("the progress panel", lambda: pw.wait_for_selector(".ocilens-progress .ocilens-progress-row",
                                                              timeout=60_000))
    pw.wait_for_timeout(500)  # the progress cell's last event
    yield p
    assert foreign == [], f"the page reached beyond the server: {foreign}"
    errors = pw.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    assert not any("Traceback" in e or "Error" in e for e in errors), errors
    context.close()


def _layer(page: Page, i: int) -> Any:
    return page.page.locator(f".ocx .ocx-layer[data-layer='{i}']")


def _expected(sample: ocilens.Image, layer: int, **filters: Any) -> ExplorerModel:
    m = ExplorerModel(sample, layer=layer)
    if filters:
        m.set_filters(**filters)
    return m


def _wait_tree(page: Page, what: str, model: ExplorerModel) -> dict[str, Any]:
    """Wait until the tree shows exactly ``model``'s lines (by path) and its description; return the state."""
    want = {"paths": [printable(r.path) for r in model.rows()], "describe": model.describe()}
    page.wait(what, """(want) => {
        const root = document.querySelector('.ocx');
        const got = [...root.querySelectorAll('.ocx-tree .ocx-row')].map(r => r.title);
        return root.querySelector('.ocx-describe').textContent === want.describe
            && got.length === want.paths.length && got.every((t, i) => t === want.paths[i]);
    }""", want)
    return page.state()


def _select_layer(page: Page, sample: ocilens.Image, i: int, **filters: Any) -> dict[str, Any]:
    """Click layer ``i`` (fold all, clear the search) and wait for its tree."""
    _layer(page, i).click()
    page.page.locator(".ocx .ocx-button", has_text="fold all").click()
    search = page.page.locator(".ocx .ocx-search")
    if search.input_value():
        search.fill("")
        search.press("Enter")
    _layer(page, i).click()
    return _wait_tree(page, f"the tree of layer {i}", _expected(sample, i))


# ------------------------------------------------------------------------------------------- the keys


def test_keys_drive_the_explorer(page: Page, sample: ocilens.Image) -> None:
    kb = page.page.keyboard
    st = _select_layer(page, sample, 0)
    assert st["layer"] == 0 and st["focus"] == "layers", "a click on a layer keeps the keys in the widget"
    cell_before = st["activeCell"]

    kb.press("ArrowDown")  # ↓ in the layer list: the next layer
    st = _wait_tree(page, "↓ to layer 1", _expected(sample, 1))
    assert st["layer"] == 1 and st["focus"] == "layers"
    assert st["activeCell"] == cell_before, "the notebook took the arrow key"
    kb.press("ArrowDown")
    st = _wait_tree(page, "↓ to layer 2", _expected(sample, 2))
    kb.press("ArrowUp")
    st = _wait_tree(page, "↑ back to layer 1", _expected(sample, 1))
    assert st["layer"] == 1

    kb.press("Tab")  # Tab: to the tree, its cursor on the first line
    st = page.state()
    assert st["focus"] == "tree" and st["cursor"] == 0, st
    model = _expected(sample, 1)
    usr = [r.path for r in model.rows()].index("/usr")
    for _ in range(usr):
        kb.press("ArrowDown")  # ↓ in the tree: the next line
    st = page.state()
    assert st["cursor"] == usr and st["paths"][usr] == "/usr" and st["expanded"][usr] == "false", st
    kb.press("ArrowRight")  # → opens the directory
    model.toggle("/usr")
    st = _wait_tree(page, "→ opening /usr", model)
    assert st["expanded"][usr] == "true" and st["cursor"] == usr
    kb.press("ArrowRight")  # → on an open directory: into it
    assert page.state()["cursor"] == usr + 1
    kb.press("ArrowLeft")  # ← on a child: up to its directory
    assert page.state()["cursor"] == usr
    kb.press("ArrowLeft")  # ← on an open directory: folds it
    model.toggle("/usr")
    st = _wait_tree(page, "← folding /usr", model)
    assert st["expanded"][usr] == "false"
    kb.press(" ")  # space toggles: open
    model.toggle("/usr")
    _wait_tree(page, "space opening /usr", model)
    kb.press(" ")  # and folded again
    model.toggle("/usr")
    st = _wait_tree(page, "space folding /usr", model)
    assert st["activeCell"] == cell_before and st["focus"] == "tree"

    kb.press("Tab")  # Tab again: back to the layer list, and its arrows move the layers
    assert page.state()["focus"] == "layers"
    kb.press("ArrowDown")
    _wait_tree(page, "↓ to layer 2 after Tab", _expected(sample, 2))
    kb.press("Tab")
    assert page.state()["focus"] == "tree"

    kb.press("/")  # / goes to the search box
    assert page.state()["focus"] == "search"
    kb.type("lesskey")
    _wait_tree(page, "searching lesskey", _expected(sample, 2, search="lesskey"))
    kb.press("Escape")  # in the search box, Escape goes back to the tree
    assert page.state()["focus"] == "tree"
    kb.press("/")
    kb.press("Control+a")
    kb.press("Backspace")
    kb.press("Enter")
    st = _wait_tree(page, "clearing the search", _expected(sample, 2))
    assert st["focus"] == "tree" and st["activeCell"] == cell_before
    page.shot("explorer-keys")

    kb.press("Escape")  # Escape hands the keys back to the notebook
    st = page.state()
    assert st["focus"] == "outside" and st["focusInCell"] == cell_before and st["commandMode"], st
    kb.press("j")  # the notebook's own key (command mode): the next cell
    page.wait("the notebook taking j", "(n) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
              ".findIndex(c => c.classList.contains('jp-mod-active')) === n", cell_before + 1)
    assert page.state()["layer"] == 2, "the widget took a key after Escape"


def test_a_click_on_a_layer_keeps_the_keys(page: Page, sample: ocilens.Image) -> None:
    _select_layer(page, sample, 1)
    _layer(page, 3).click()
    st = _wait_tree(page, "the tree of layer 3", _expected(sample, 3))
    assert st["focus"] == "layers" and st["layer"] == 3
    page.page.keyboard.press("ArrowUp")
    st = _wait_tree(page, "↑ after a click", _expected(sample, 2))
    assert st["focus"] == "layers" and st["layer"] == 2
    page.page.locator(".ocx .ocx-tree .ocx-row").first.click()  # a click in the tree keeps them too
    assert page.state()["focus"] == "tree"
    page.page.keyboard.press("ArrowDown")
    assert page.state()["cursor"] in (0, 1)


# ------------------------------------------------------------------------------------------- colours

COLOURS_JS = """() => {
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const kindOf = (el) => [...el.classList].find(c => c.startsWith('k-')).slice(2);
  const rows = [...document.querySelectorAll('.ocx .ocx-tree .ocx-row')]
    .filter(r => [...r.classList].some(c => c.startsWith('k-')));
  const legend = [...document.querySelectorAll('.ocx .ocx-kind')];
  return [...rows, ...legend].map(el => {
    const mark = el.querySelector('.ocx-mk');
    return {kind: kindOf(el), legend: el.classList.contains('ocx-kind'), mark: mark.textContent,
            color: getComputedStyle(el).color, markBg: getComputedStyle(mark).backgroundColor,
            markColor: getComputedStyle(mark).color, pageBg: bg(el)};
  });
}"""


def _rgb(css: str) -> tuple[int, int, int]:
    m = re.match(r"rgba?\((\d+), (\d+), (\d+)", css)
    assert m, css
    return int(m[1]), int(m[2]), int(m[3])


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio."""
    def lum(c: tuple[int, int, int]) -> float:
        ch = [v / 255 for v in c]
        ch = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _check_colours(page: Page, palette: dict[str, tuple[str, str]]) -> set[str]:
    """Every coloured row and legend entry: its kind's text colour and mark background, its mark, and a
    contrast of at least 4.5 against what is behind it; returns the kinds seen in the tree."""
    seen = page.page.evaluate(COLOURS_JS)
    assert seen, "no coloured rows"
    for s in seen:
        bg, fg = palette[s["kind"]]
        where = f"{'legend' if s['legend'] else 'row'} {s['kind']}"
        assert _rgb(s["color"]) == _hex(fg), f"{where}: text {s['color']}, not {fg}"
        assert _rgb(s["markBg"]) == _hex(bg), f"{where}: mark background {s['markBg']}, not {bg}"
        assert s["mark"] == MARKS[s["kind"]], f"{where}: mark {s['mark']!r}"
        assert _contrast(_rgb(s["color"]), _rgb(s["pageBg"])) >= 4.5, f"{where}: {s['color']} on {s['pageBg']}"
        assert _contrast(_rgb(s["markColor"]), _rgb(s["markBg"])) >= 4.5, (
            f"{where}: mark {s['markColor']} on {s['markBg']}")
    assert {s["kind"] for s in seen if s["legend"]} == set(KINDS), "the legend names every kind"
    return {s["kind"] for s in seen if not s["legend"]}


def _show_every_kind(page: Page, sample: ocilens.Image) -> None:
    """Layer 4 with every directory open and unchanged paths shown: added aside, every kind is there."""
    _select_layer(page, sample, 4)
    page.page.locator(".ocx .ocx-kind.k-unchanged input").check()
    page.page.locator(".ocx .ocx-search").fill("/")  # a search of few matches opens their directories
    _wait_tree(page, "layer 4, everything open", _expected(sample, 4, kinds=KINDS, search="/"))


def _hide_unchanged(page: Page) -> None:
    page.page.locator(".ocx .ocx-kind.k-unchanged input").uncheck()


def test_rows_are_coloured_by_change_on_light_and_dark(page: Page, sample: ocilens.Image) -> None:
    _select_layer(page, sample, 1)
    page.page.locator(".ocx .ocx-search").fill("/")
    _wait_tree(page, "layer 1, everything open", _expected(sample, 1, search="/"))
    assert {"added", "modified"} <= _check_colours(page, CHANGE_COLOURS)
    _show_every_kind(page, sample)
    try:
        assert {"metadata_only", "removed", "unchanged"} <= _check_colours(page, CHANGE_COLOURS)
        page.shot("explorer-light", page.page.locator(".ocx"))
        page.command("apputils:change-theme", {"theme": "JupyterLab Dark"})
        page.wait("the dark theme", "() => document.body.dataset.jpThemeLight === 'false' && "
                  "getComputedStyle(document.querySelector('.ocx')).getPropertyValue('--ocilens-added-fg').trim()"
                  f" === '{CHANGE_COLOURS_DARK['added'][1]}'")
        page.page.wait_for_timeout(300)  # the theme's own stylesheet applied
        assert {"metadata_only", "removed", "unchanged"} <= _check_colours(page, CHANGE_COLOURS_DARK)
        page.shot("explorer-dark", page.page.locator(".ocx"))
    finally:
        page.command("apputils:change-theme", {"theme": "JupyterLab Light"})
        page.wait("the light theme", "() => document.body.dataset.jpThemeLight === 'true'")
        _hide_unchanged(page)


# ---------------------------------------------------------------------------------------- attributes


ROW_JS = """() => [...document.querySelectorAll('.ocx .ocx-tree .ocx-row')].map(r => ({
  path: r.title, mark: r.querySelector('.ocx-mk').textContent, mode: r.querySelector('.ocx-mode').textContent,
  own: r.querySelector('.ocx-own').textContent, size: r.querySelector('.ocx-sz').textContent,
  what: r.querySelector('.ocx-what').textContent}))"""


def test_attributes_are_columns_and_changes_are_named(page: Page, sample: ocilens.Image) -> None:
    """dive's columns (mode, uid:gid, size) and, for a modified path, what changed: chmod 0700 in layer 2,
    new content in layer 1."""
    for layer, search, path, what in ((2, "less", "/usr/bin/less", "mode 0755 → 0700"),
                                      (1, "services", "/etc/services", "content 12.8 kB → 12.9 kB")):
        _select_layer(page, sample, layer)
        page.page.locator(".ocx .ocx-search").fill(search)
        model = _expected(sample, layer, search=search)
        _wait_tree(page, f"layer {layer}, searching {search}", model)
        want = [row_data(r) for r in model.rows()]
        got = page.page.evaluate(ROW_JS)
        assert [g["path"] for g in got] == [w["title"] for w in want]
        for g, w in zip(got, want):
            wasted = f" · wasted {w['w']}" if w["what"] and w["w"] else f"wasted {w['w']}" if w["w"] else ""
            assert (g["mark"], g["mode"], g["own"], g["size"], g["what"]) == (
                w["mk"], w["mode"], w["own"], w["sz"], w["what"] + wasted), g["path"]
        row = next(g for g in got if g["path"] == path)
        assert row["what"].startswith(what), row
        assert row["own"] == "0:0" and re.fullmatch(r"-[rwx-]{9}", row["mode"]), row
    less = next(g for g in page.page.evaluate(ROW_JS) if g["path"] == "/etc/services")
    assert less["mode"] == "-rw-r--r--" and less["size"] == "12.9 kB"
    page.shot("explorer-attributes", page.page.locator(".ocx"))


# -------------------------------------------------------------------------------------------- commands


def test_commands_show_whole_on_hover_and_wrap_at_spaces(page: Page, sample: ocilens.Image) -> None:
    titles = page.page.locator(".ocx .ocx-layer").evaluate_all("els => els.map(e => e.title)")
    assert titles == [_command(c) for c in sample.layers["created_by"]]
    cut = page.page.locator(".ocx .ocx-layer .ocx-lcmd").evaluate_all(
        "els => els.map(e => e.scrollWidth > e.clientWidth)")
    assert any(cut), "no command is long enough to be cut: the hover test proves nothing"
    _layer(page, 1).hover()
    assert page.page.evaluate("() => document.querySelector('.ocx .ocx-layer:hover').title") == titles[1]

    page.page.set_viewport_size({"width": 760, "height": 1000})
    try:
        _select_layer(page, sample, 1)
        cmd = page.page.locator(".ocx .ocx-cmd")
        assert cmd.inner_text() == _command(sample.layers["created_by"][1])
        style = cmd.evaluate("e => { const s = getComputedStyle(e); return [s.whiteSpace, s.wordBreak, s.overflowWrap,"
                             " e.getBoundingClientRect().height, parseFloat(s.lineHeight) || 16]; }")
        assert style[:3] == ["pre-wrap", "normal", "normal"], style
        assert style[3] > 1.5 * style[4], f"the command does not wrap at this width: {style}"
        # No word broken: each word's text lies on one line (one box top), wherever the lines break.
        broken = cmd.evaluate("""e => {
            const out = [];
            const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              const text = node.textContent, re = /\\S+/g; let m;
              while ((m = re.exec(text))) {
                const r = document.createRange(); r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
                const lines = new Set([...r.getClientRects()].map(b => Math.round(b.top)));
                if (lines.size > 1) out.push(m[0]);
              }
            }
            return out;
        }""")
        words = cmd.evaluate("e => e.querySelectorAll('.ocx-w').length")
        assert words == len(_command(sample.layers["created_by"][1]).split()), "a word is not kept whole"
        assert broken == [], f"words broken across lines: {broken}"
        page.shot("explorer-command-wrapped", page.page.locator(".ocx"))
    finally:
        page.page.set_viewport_size({"width": 1400, "height": 1000})


# ---------------------------------------------------------------------------- status line and counts


def test_status_line_and_counts_are_the_image_and_layer_numbers(page: Page, sample: ocilens.Image) -> None:
    """dive's bottom line (the image's efficiency and wasted bytes beside the layer's), and each layer's
    counts exactly ``layer_diff``'s: layer 1 restates 46 directories with a new mtime, which are no change."""
    x = sample.explore()
    for i in range(len(sample.scans)):
        x.select_layer(i)
        _select_layer(page, sample, i)
        want = change_counts(sample.layer_diff(i))
        st = page.state()
        assert st["status"] == f"{x.status['image']}│{x.status['layer']}", st["status"]
        assert st["status"].startswith(f"image: efficiency {sample.bloat().efficiency:.1%} · wasted ")
        assert f"layer {i}: " in st["status"]
        assert counts_text(want) in st["counts"], (i, st["counts"], want)
        legend = page.page.locator(".ocx .ocx-kind").all_inner_texts()
        shown = {k: int(re.search(r"\(([\d,]+)\)", t)[1].replace(",", "")) for k, t in zip(KINDS, legend)}
        assert shown["added"] == want["added"] and shown["removed"] == want["removed"]
        assert shown["modified"] + shown["metadata_only"] == want["modified"], (i, shown, want)
    assert counts_text(change_counts(sample.layer_diff(1))) == "85 added, 1 modified, 0 removed"
    x.close()
    page.shot("explorer-status", page.page.locator(".ocx .ocx-status"), min_bytes=2_000)


# ------------------------------------------------------------------------------- notebook displays


def test_layer_diff_display_aligns_text_left_and_breaks_paths_at_slashes(page: Page) -> None:
    table = page.page.locator(".ocilens-nb table.ocd")
    cells = table.evaluate("""t => {
        const s = (e) => getComputedStyle(e);
        return {
          th: [...t.querySelectorAll('th:not(.n)')].map(e => s(e).textAlign),
          text: [...t.querySelectorAll('td:not(.n)')].map(e => s(e).textAlign),
          num: [...t.querySelectorAll('td.n')].map(e => s(e).textAlign),
          path: [...t.querySelectorAll('td.p')].map(e => [s(e).wordBreak, s(e).overflowWrap]),
        };
    }""")
    assert set(cells["th"]) == set(cells["text"]) == {"left"}, cells
    assert set(cells["num"]) == {"right"}
    assert {tuple(p) for p in cells["path"]} == {("normal", "normal")}
    table.evaluate("t => { t.style.width = '520px'; }")  # narrow: the paths must wrap
    result = table.evaluate("""t => {
        let wrapped = 0; const broken = [];
        for (const td of t.querySelectorAll('td.p')) {
          const lines = new Set();
          for (const node of td.childNodes) {
            if (node.nodeType !== Node.TEXT_NODE) continue;
            const r = document.createRange(); r.selectNodeContents(node);
            const tops = new Set([...r.getClientRects()].map(b => Math.round(b.top)));
            if (tops.size > 1) broken.push(node.textContent);
            tops.forEach(x => lines.add(x));
          }
          if (lines.size > 1) wrapped += 1;
        }
        return {wrapped, broken};
    }""")
    assert result["broken"] == [], f"path parts broken inside: {result['broken']}"
    assert result["wrapped"] > 0, "no path wrapped at 520 px: the test proves nothing"
    page.shot("layer-diff-display", table, min_bytes=10_000)
    table.evaluate("t => { t.style.width = ''; }")


def test_progress_panel_in_jupyterlab(page: Page) -> None:
    panel = page.page.locator(".ocilens-progress")
    rows = panel.locator(".ocilens-progress-row")
    assert rows.count() == 3  # total, then the two layers
    widths = rows.evaluate_all("rs => rs.map(r => r.querySelector('.widget-hprogress .progress')"
                               ".getBoundingClientRect().width)")
    assert max(widths) - min(widths) < 1 and widths[0] > 50, f"bars of different lengths: {widths}"
    texts = rows.evaluate_all("rs => rs.map(r => r.innerText.replace(/\\s+/g, ' ').trim())")
    assert texts[0].startswith("total") and re.search(r"\d+% [\d.]+ kB/2\.5 MB \[\d\d:\d\d<[\d:?]+, [\d.]+ [kMG]?B/s\]",
                                                      texts[0]), texts[0]
    assert re.search(r"40% 800\.0 kB/2\.0 MB \[\d\d:\d\d<\d\d:\d\d, [\d.]+ [kMG]?B/s\]", texts[1]), texts[1]
    assert re.search(r"0% 0 B/500\.0 kB", texts[2]), texts[2]
    stream = panel.inner_text()
    assert re.search(r"reading c{12}\s+3\.5 MB \[\d\d:\d\d, [\d.]+ [kMG]?B/s\]", stream), stream
    assert "%" not in re.search(r"reading c{12}[^\n]*", stream)[0], "a percentage for an unknown total"
    page.shot("progress-panel", panel, min_bytes=5_000)


def test_explorer_in_notebook_7(browser: Any, tmp_path_factory: pytest.TempPathFactory, shots: Path,
                                sample: ocilens.Image) -> None:
    """The same widget in Notebook 7 (its own page, JupyterLab's components): it draws, its keys work, and
    Escape hands them back to the notebook."""
    import notebook  # the test extras bring Notebook 7 (pyproject.toml): never skipped

    assert int(notebook.__version__.split(".")[0]) >= 7, notebook.__version__
    root = tmp_path_factory.mktemp("notebook7")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELLS["explorer"], id="explorer"), nbformat.v4.new_code_cell("1 + 1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "explore.ipynb")
    server = Lab(root, tmp_path_factory.mktemp("notebook7-state"), app="notebook")
    context = None
    try:
        server.wait_ready()
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pw = context.new_page()
        p = Page(pw, server, shots)
        p.step("opening the notebook in Notebook 7", lambda: pw.goto(
            f"{server.base}/notebooks/explore.ipynb?token={server.token}", wait_until="domcontentloaded",
            timeout=60_000))
        p.step("Notebook 7 showing the cells", lambda: pw.wait_for_selector(".jp-Notebook .jp-Cell .cm-content",
                                                                           timeout=60_000))
        p.step("the kernel starting", lambda: pw.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
            "window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'",
            timeout=60_000))
        for attempt in range(3):  # a run sent while the kernel was still connecting is lost: send it again
            p.command("notebook:run-all-cells")
            try:
                pw.wait_for_selector(".ocx .ocx-layer", timeout=20_000)
                break
            except Exception:  # noqa: BLE001 - retried, then reported
                if attempt == 2:
                    raise AssertionError(f"the explorer never appeared in Notebook 7:\n{server.log_tail()}")
        # every cell run (the notebook moves its focus while it runs them), before the keys are tried
        p.wait("the last cell's output", "() => [...document.querySelectorAll('.jp-Cell')].at(-1)"
               ".querySelector('.jp-OutputArea-output')?.textContent.trim() === '2'")
        pw.wait_for_timeout(300)
        _layer(p, 0).click()
        st = _wait_tree(p, "Notebook 7: layer 0", _expected(sample, 0))
        assert st["focus"] == "layers"
        pw.keyboard.press("ArrowDown")
        _wait_tree(p, "Notebook 7: ↓ to layer 1", _expected(sample, 1))
        pw.keyboard.press("Tab")
        model = _expected(sample, 1)
        assert p.state()["focus"] == "tree" and p.state()["paths"][0] == printable(model.rows()[0].path)
        pw.keyboard.press("ArrowRight")
        model.toggle(model.rows()[0].path)
        _wait_tree(p, "Notebook 7: → opening a directory", model)
        p.shot("notebook7-explorer", pw.locator(".ocx"))
        cell = p.state()["activeCell"]
        pw.keyboard.press("Escape")
        st = p.state()
        assert st["focus"] == "outside" and st["commandMode"], st
        pw.keyboard.press("j")
        p.wait("Notebook 7 taking j", "(n) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
               ".findIndex(c => c.classList.contains('jp-mod-active')) === n", cell + 1)
    finally:
        if context is not None:
            context.close()
        server.stop()


def test_report_trees_open_and_fold_without_script_or_network(browser: Any, tmp_path: Path) -> None:
    sample = ocilens.sample_image(progress=False)
    report = sample.report().to_html(tmp_path / "report.html")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1200, "height": 1400})
    context.set_default_timeout(15_000)
    page, requests = offline_page(context)
    page.goto(report.as_uri())
    assert page.locator("details.layer").count() == len(sample.scans)
    layer = page.locator("details.layer#layer-1")
    lesskey = layer.locator("li:has(> span.nm:text-is('lesskey'))")
    assert lesskey.count() == 1, "layer 1's tree does not list /usr/bin/lesskey"
    assert layer.get_attribute("open") is None and not lesskey.is_visible(), "a layer starts folded"
    layer.locator(":scope > summary").click()
    assert layer.get_attribute("open") is not None and lesskey.is_visible(), "a click on the layer opens it"
    bin_dir = layer.locator("summary:has(> span.nm:text-is('bin/'))")
    assert bin_dir.count() == 1, "no bin/ directory in layer 1's tree"
    folder = bin_dir.locator("xpath=..")
    assert folder.get_attribute("open") is not None, "directories start open"
    bin_dir.click()
    assert folder.get_attribute("open") is None and not lesskey.is_visible(), "a click on a directory folds it"
    bin_dir.click()
    assert lesskey.is_visible()
    shot = tmp_path / "report-layer.png"
    layer.screenshot(path=str(shot))
    _keep(shot)
    _assert_png(shot, 20_000)
    assert [u for u in requests if not u.startswith("file://")] == [], f"the report reached out: {requests}"
    context.close()
