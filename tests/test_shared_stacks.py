"""Tags of one build share their layers: a fleet audit computes each layer stack's results once, and an image
whose layers are another's shares them, yet every image's rows are exactly what ``ocilens.load`` of it alone
gives: its own digests, history and fixes (a layer whose instruction differs gets its own sentence)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

import ocilens
import ocilens.advice
from imagebuild import config_of, layer_blob_paths, layout_from_tars

SAMPLE = Path(ocilens.__file__).parent / "_sample"


def _sample_tars() -> tuple[list[bytes], list[dict]]:
    """The bundled sample image's layer tars (real Debian files, real waste) and its history."""
    tars = [gzip.decompress(p.read_bytes()) for p in layer_blob_paths(SAMPLE, "sample")]
    return tars, config_of(SAMPLE, "sample")["history"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Three images on one layer stack: ``a``; ``b``, the same build retagged with a label (another config,
    the same history); ``c``, whose second layer's history names another instruction."""
    tmp = tmp_path_factory.mktemp("stack")
    tars, history = _sample_tars()
    other = [dict(h) for h in history]
    layer1 = [i for i, h in enumerate(other) if not h.get("empty_layer")][1]
    other[layer1]["created_by"] = "RUN /bin/sh -c apt-get install -y less sed  # built again, other words"
    refs = {
        "a": layout_from_tars(tmp, tars, history=history),
        "b": layout_from_tars(tmp, tars, history=history, config={"config": {"Labels": {"tag": "b"}}}),
        "c": layout_from_tars(tmp, tars, history=other),
    }
    return {k: f"oci:{v}:t" for k, v in refs.items()}


def test_the_three_images_share_layers_not_configs(stack: dict[str, str]) -> None:
    alone = {k: ocilens.load(ref, cache=False, progress=False) for k, ref in stack.items()}
    assert len({tuple(alone[k].layers["digest"]) for k in alone}) == 1
    assert len({alone[k].image_id for k in alone}) == 3
    assert alone["a"].layers["created_by"].equals(alone["b"].layers["created_by"])
    assert not alone["a"].layers["created_by"].equals(alone["c"].layers["created_by"])
    assert len(alone["a"].bloat().advice) > 0  # the sample has fixes to share


def test_audit_rows_equal_each_image_alone_and_advice_is_computed_once_per_history(
        stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = ocilens.advice.advise

    def counted(bloat):  # type: ignore[no-untyped-def]
        calls.append(bloat.image.reference)
        return real(bloat)

    monkeypatch.setattr(ocilens.advice, "advise", counted)
    audit = ocilens.audit(list(stack.values()), executor="thread", progress=False, cache=False)
    rows = audit.images.set_index("reference")
    assert sorted(calls) == sorted([stack["a"], stack["c"]])  # b's history is a's: a's fixes are b's

    monkeypatch.setattr(ocilens.advice, "advise", real)
    for key, ref in stack.items():
        img = ocilens.load(ref, cache=False, progress=False)
        row = rows.loc[ref]
        for k, v in img.bloat().summary().items():
            assert row[k] == pytest.approx(v), (key, k)
        advice = img.bloat().advice
        assert (row["top_fix_kind"], row["top_fix"], row["top_fix_download_bytes"]) == (
            advice["kind"].iloc[0], advice["fix"].iloc[0], advice["download_bytes_saved"].iloc[0]), key
        assert row["image_id"] == img.image_id


def test_a_twin_shares_content_but_keeps_its_own_layer_columns(stack: dict[str, str]) -> None:
    """``Image(same_layers_as=)`` as the fleet uses it: the shared layers frame carries the twin's own digests,
    diff_ids and history, equal to what the image alone computes."""
    from ocilens.pipeline import resolve_image, scan_layers
    from ocilens.sources import open_source

    first = ocilens.load(stack["a"], cache=False, progress=False)
    for key in ("b", "c"):
        source = open_source(stack[key])
        resolved = resolve_image(source, None)
        scans = scan_layers(source, resolved.manifest, None, None, None)
        twin = ocilens.Image(source, resolved.manifest, resolved.config, resolved.config_raw, scans,
                             same_layers_as=first)
        alone = ocilens.load(stack[key], cache=False, progress=False)
        pd.testing.assert_frame_equal(twin.layers, alone.layers, obj=key)
        pd.testing.assert_frame_equal(twin.bloat().advice, alone.bloat().advice, obj=key)
        pd.testing.assert_frame_equal(twin.bloat().per_layer, alone.bloat().per_layer, obj=key)
        assert twin.assembly is first.assembly  # the content was shared, not recomputed
    assert json.loads(first.config_raw)["history"]  # (the sample keeps its history)
