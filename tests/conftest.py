"""Shared fixtures: an isolated cache for the whole session, and the bundled sample image."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent


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
