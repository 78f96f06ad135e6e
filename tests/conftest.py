"""Shared fixtures: an isolated cache for the whole session, the bundled sample image, and a short
directory for Unix sockets."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

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
def skopeo_archives(tmp_path_factory: pytest.TempPathFactory, sample_layout: Path) -> dict[str, bytes]:
    """The sample as skopeo writes it into a docker-archive and an oci-archive (bytes)."""
    d = tmp_path_factory.mktemp("skopeo-archives")
    for transport, name, tag in (("docker-archive", "docker.tar", "app:1"), ("oci-archive", "oci.tar", "sample")):
        subprocess.run(["skopeo", "copy", "--quiet", f"oci:{sample_layout}:sample", f"{transport}:{d / name}:{tag}"],
                       check=True, capture_output=True)
    return {"docker-archive": (d / "docker.tar").read_bytes(), "oci-archive": (d / "oci.tar").read_bytes()}


@pytest.fixture(scope="session")
def sample_truth(tmp_path_factory: pytest.TempPathFactory, sample_layout: Path) -> dict[str, dict[str, Any]]:
    """``umoci unpack`` of the sample: the final tree any reading of it must give (``imagebuild.tree_of``)."""
    from imagebuild import tree_of, umoci_unpack

    return tree_of(umoci_unpack(sample_layout, "sample", tmp_path_factory.mktemp("sample-truth") / "bundle"))


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
