"""End to end, in a real browser: the explorer widget in a JupyterLab server this test starts on 127.0.0.1,
driven by Playwright in Debian's headless Chromium (click a layer, open a directory, take a screenshot),
and the report's ``<details>`` trees opened and folded with JavaScript off and no network.

Playwright's own browsers are never downloaded: it drives ``/usr/bin/chromium``. Set
``OCILENS_KEEP_SCREENSHOTS=DIR`` to keep the screenshots.
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
from ocilens.explore import ExplorerModel, row_label

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-extensions",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # no name resolves but the server's
NBSP = "\xa0"  # ipywidgets shows a Select's spaces as no-break spaces


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


@pytest.fixture(scope="module")
def browser(socket_dir: Path) -> Iterator[Any]:
    assert CHROMIUM.exists(), "Debian's chromium is not installed: make debian-deps"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Chromium's singleton socket goes under $TMPDIR: a short directory, whatever the test's tmp path
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000,
                              env={**os.environ, "TMPDIR": str(socket_dir)})
        try:
            yield b
        finally:
            b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A JupyterLab server on 127.0.0.1 serving ``root``, with its own settings, runtime and workspaces."""

    def __init__(self, root: Path, state: Path) -> None:
        self.root, self.state = root, state
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
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={self.port}",
               "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--notebook-dir={root}", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               f"--LabApp.user_settings_dir={state / 'settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}"]
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


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("notebooks")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import ocilens\nocilens.sample_image().explore()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "explore.ipynb")
    server = Lab(root, tmp_path_factory.mktemp("jupyter-state"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _labels(page: Any, selector: str) -> list[str]:
    return [t.replace(NBSP, " ") for t in page.locator(selector).all_text_contents()]


def test_explorer_in_jupyterlab(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = time.monotonic()
    sample = ocilens.sample_image(progress=False)
    expect = ExplorerModel(sample, layer=1)  # what the widget must show, computed here
    status_layer1 = expect.describe()
    expect.toggle("/usr")
    opened = [row_label(r) for r in expect.rows()]

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((lab.base, "data:", "blob:")) else foreign.append(r.url))
    shot = tmp_path / "explorer.png"

    def step(what: str, action: Callable[[], Any]) -> Any:
        """Run one step; if it fails, say which, with a screenshot, the cell's output and the server log."""
        try:
            return action()
        except Exception as exc:  # any failure becomes one clear assertion
            fail = tmp_path / "failure.png"
            try:
                page.screenshot(path=str(fail))
                _keep(fail)
                outputs = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())[-3000:]
            except Exception as inner:  # noqa: BLE001 - the page may be gone: say so
                outputs = f"(could not read the page: {inner})"
            raise AssertionError(f"{what} failed after {time.monotonic() - started:.0f}s: {exc}\n"
                                 f"screenshot: {fail}\ncell output:\n{outputs}\nserver log:\n{lab.log_tail()}") from exc

    step("opening the notebook", lambda: page.goto(f"{lab.base}/lab/tree/explore.ipynb?token={lab.token}",
                                                   wait_until="domcontentloaded", timeout=60_000))
    step("JupyterLab showing the cell",
         lambda: page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=60_000))
    step("the kernel starting", lambda: page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000))
    cell = page.locator(".jp-NotebookPanel .jp-CodeCell").first
    prompt = cell.locator(".jp-InputArea-prompt")
    for attempt in range(2):  # a run sent while the kernel was still connecting is lost: send it once more
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("(el) => /\\[(\\*|1)\\]/.test(el.textContent)", arg=prompt.element_handle(),
                                   timeout=15_000)
            break
        except PlaywrightTimeout:  # retried once, then reported
            if attempt:
                raise AssertionError(f"the cell never ran (prompt {prompt.inner_text()!r}):\n{lab.log_tail()}")
    step("the explorer appearing", lambda: page.wait_for_selector(".ocilens-layers select", timeout=60_000))
    layers = _labels(page, ".ocilens-layers select option")
    assert len(layers) == 5 and "apt-get install -y less sed" in layers[1], layers

    page.locator(".ocilens-layers select option").nth(1).click()  # click layer 1
    step(f"the tree of layer 1 ({status_layer1!r})",
         lambda: page.get_by_text(status_layer1, exact=True).wait_for(timeout=30_000))
    tree = _labels(page, ".ocilens-tree select option")
    usr = next((k for k, t in enumerate(tree) if "▸ usr/" in t), None)
    assert usr is not None, f"no folded usr/ line in {tree}"

    page.locator(".ocilens-tree select option").nth(usr).click()  # open /usr
    step("usr/ opening", lambda: page.wait_for_function(
        """(want) => {
            const got = [...document.querySelectorAll('.ocilens-tree select option')]
                .map(o => o.textContent.replace(/\\u00a0/g, ' '));
            return got.length === want.length && got.every((t, i) => t === want[i]);
        }""", arg=opened, timeout=30_000))
    tree = _labels(page, ".ocilens-tree select option")
    assert tree == opened
    child = next(t for t in tree if "▸ bin/" in t)
    assert tree.index(child) > tree.index(next(t for t in tree if "▾ usr/" in t)), tree
    details = page.locator(".ocilens-explorer").inner_text()
    assert "/usr/" in details and "changes below" in details  # the details of the opened directory

    page.screenshot(path=str(shot))
    _keep(shot)
    _assert_png(shot, 30_000)
    assert foreign == [], f"the page reached beyond the server: {foreign}"
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    assert not any("Traceback" in e or "Error" in e for e in errors), errors
    context.close()
    assert time.monotonic() - started < 120


def test_report_trees_open_and_fold_without_script_or_network(browser: Any, tmp_path: Path) -> None:
    sample = ocilens.sample_image(progress=False)
    report = sample.report().to_html(tmp_path / "report.html")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1200, "height": 1400})
    context.set_default_timeout(15_000)
    page = context.new_page()
    requests: list[str] = []

    def route(r: Any) -> None:
        requests.append(r.request.url)
        r.continue_() if r.request.url.startswith("file://") else r.abort()

    page.route("**/*", route)
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
