"""What the browser and notebook tests share (a pytest plugin, see ``conftest.py``): Debian's Chromium with the
flags a closed network needs, a headless browser per test module, and a registered ``python3`` kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-extensions",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # no name resolves but the server's


@pytest.fixture(scope="module")
def browser(socket_dir: Path) -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never ``playwright install``), one per test module: a
    module that drives Playwright itself must not find another sync Playwright running."""
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


@pytest.fixture(scope="session")
def kernel() -> str:
    """The ``python3`` kernel, registered for this Python if jupyter_client cannot find one."""
    from jupyter_client.kernelspec import NoSuchKernel, get_kernel_spec

    try:
        get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", "python3"], check=True,
                       capture_output=True)
        get_kernel_spec("python3")
    return "python3"


def offline_page(context: Any) -> tuple[Any, list[str]]:
    """A new page of the Playwright ``context`` that may load ``file://`` URLs only: every request is recorded,
    and any other is aborted (a self-contained page needs none)."""
    page = context.new_page()
    requests: list[str] = []

    def route(r: Any) -> None:
        requests.append(r.request.url)
        r.continue_() if r.request.url.startswith("file://") else r.abort()

    page.route("**/*", route)
    return page, requests
