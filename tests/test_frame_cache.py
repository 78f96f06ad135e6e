"""Re-analysing an image reads its finished frames from the cache instead of assembling again."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import ocilens
import ocilens.cache as cache_module
from ocilens.image import SAMPLE_REF


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_warm_load_serves_the_same_frames_without_assembling(cache_dir: Path) -> None:
    cold = ocilens.load(SAMPLE_REF, progress=False)
    frames = {n: getattr(cold, n) for n in ("events", "files", "layers", "anomalies")}
    assert list((cache_dir / "frames").rglob("*.pickle")), "the first analysis stores its frames"

    warm = ocilens.load(SAMPLE_REF, progress=False)
    for name, df in frames.items():
        pd.testing.assert_frame_equal(getattr(warm, name), df)
    assert "assembly" not in warm.__dict__, "frames came from the cache: nothing was assembled"
    # What needs the tree still works, assembling on demand.
    pd.testing.assert_frame_equal(warm.bloat().causes, cold.bloat().causes)
    assert "assembly" in warm.__dict__


def test_no_frames_are_kept_without_the_cache(cache_dir: Path) -> None:
    img = ocilens.load(SAMPLE_REF, cache=False, progress=False)
    img.events, img.files, img.layers
    assert not list(cache_dir.rglob("*.pickle"))


def test_frames_made_by_other_code_are_not_used(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ocilens.load(SAMPLE_REF, progress=False)
    first.events, first.files, first.layers
    monkeypatch.setattr(cache_module, "_CODE_FINGERPRINT", "another version of ocilens")
    again = ocilens.load(SAMPLE_REF, progress=False)
    assert again._stored_frames is None and "assembly" in again.__dict__


def test_a_corrupt_frame_cache_entry_is_ignored(cache_dir: Path) -> None:
    first = ocilens.load(SAMPLE_REF, progress=False)
    first.events, first.files, first.layers
    for f in (cache_dir / "frames").rglob("*.pickle"):
        f.write_bytes(b"not a pickle")
    again = ocilens.load(SAMPLE_REF, progress=False)
    pd.testing.assert_frame_equal(again.files, first.files)
