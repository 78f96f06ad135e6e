"""Shared fixtures: an isolated cache for the whole session, the bundled sample image, and a short
directory for Unix sockets."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["engines", "browsers"]  # docker_engine, docker_image, ... (engines.py); browser, kernel (browsers.py)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point ``OCILENS_CACHE_DIR`` at a fresh temp dir so tests never read or fill the user's cache."""
    cache = tmp_path_factory.mktemp("ocilens-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCILENS_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session")
def sample_layout() -> Path:
    """The bundled sample OCI layout (``oci:<this>:sample``), built by ``scripts/build_sample.py``."""
    return REPO / "ocilens" / "_sample"


@pytest.fixture(scope="session")
def socket_dir() -> Iterator[Path]:
    """A directory with a short path (``/tmp/ocl-XXXXXXXX``), for programs that put Unix sockets under
    ``$TMPDIR`` (Chromium's ``SingletonSocket``): a socket path may not exceed 107 bytes, so it must not
    depend on where the test's temporary directory is or how long its path is. Give such a program
    ``TMPDIR=<this>``. Removed at the end of the session."""
    path = Path(tempfile.mkdtemp(prefix="ocl-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
