"""``ocilens.audit`` applies ``ocilens.load``'s rules: for every bad input of one image that ``load`` refuses,
the audit records the same error type for that image, and goes on with the others.

Both call the same resolve-and-scan steps (``ocilens.pipeline``); these cases are the ones that drifted
apart when the audit had copies of them (a platform the image is not; a cached scan whose blob was since
deleted), and the other ways one image of a layout can be bad.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import pytest

import ocilens
from imagebuild import Entry, blob_path, layout_from_tars, manifest_of, tar_layer
from ocilens.errors import OcilensError, UsageError


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layout(tmp_path: Path) -> Path:
    """A two-layer image tagged ``t``, written from tars made here; its second layer is this test's own (the
    scan cache is shared by the session: no other test's scan may stand for it)."""
    (tmp_path / "img").mkdir(exist_ok=True)
    own = str(tmp_path).encode().ljust(7000, b"b")[:7000]
    return layout_from_tars(tmp_path / "img", [tar_layer([Entry.file("a", b"a" * 3000)]),
                                               tar_layer([Entry.file("b", own)])])


def layer_blob(path: Path, index: int = 1) -> Path:
    return blob_path(path, manifest_of(path, "t")["layers"][index]["digest"])


def warm(ref: str) -> None:
    """Analyse once, so the scan and frame caches hold this image."""
    ocilens.load(ref, progress=False).files  # noqa: B018


def rewrite_config(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Give tag ``t`` a new config (``change`` of the old one), and a new manifest naming it."""
    manifest = manifest_of(path, "t")
    config = json.loads(blob_path(path, manifest["config"]["digest"]).read_bytes())
    raw = json.dumps(change(config)).encode()
    blob_path(path, sha(raw)).write_bytes(raw)
    manifest["config"].update(digest=sha(raw), size=len(raw))
    mraw = json.dumps(manifest).encode()
    blob_path(path, sha(mraw)).write_bytes(mraw)
    index = json.loads((path / "index.json").read_text())
    index["manifests"][0].update(digest=sha(mraw), size=len(mraw))
    (path / "index.json").write_text(json.dumps(index))


def platform_not_offered(tmp_path: Path) -> tuple[str, str | None]:
    return f"oci:{layout(tmp_path)}:t", "linux/s390x"


def blob_deleted_after_a_cached_scan(tmp_path: Path) -> tuple[str, str | None]:
    path = layout(tmp_path)
    warm(f"oci:{path}:t")
    layer_blob(path).unlink()
    return f"oci:{path}:t", None


def blob_cut_short_after_a_cached_scan(tmp_path: Path) -> tuple[str, str | None]:
    path = layout(tmp_path)
    warm(f"oci:{path}:t")
    blob = layer_blob(path)
    blob.write_bytes(blob.read_bytes()[:-100])
    return f"oci:{path}:t", None


def blob_corrupted(tmp_path: Path) -> tuple[str, str | None]:
    path = layout(tmp_path)
    blob = layer_blob(path)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    return f"oci:{path}:t", None


def blob_is_not_a_layer(tmp_path: Path) -> tuple[str, str | None]:
    """A layer blob that matches its digest but holds no tar: rewritten, with its descriptor and diff_id."""
    path = layout(tmp_path)
    junk = b"\x1f\x8b" + b"not deflate" * 50
    blob_path(path, sha(junk)).write_bytes(junk)
    manifest = manifest_of(path, "t")
    manifest["layers"][1].update(digest=sha(junk), size=len(junk))
    mraw = json.dumps(manifest).encode()
    blob_path(path, sha(mraw)).write_bytes(mraw)
    index = json.loads((path / "index.json").read_text())
    index["manifests"][0].update(digest=sha(mraw), size=len(mraw))
    (path / "index.json").write_text(json.dumps(index))
    return f"oci:{path}:t", None


def tag_missing(tmp_path: Path) -> tuple[str, str | None]:
    return f"oci:{layout(tmp_path)}:nope", None


def path_missing(tmp_path: Path) -> tuple[str, str | None]:
    return f"oci:{tmp_path / 'nowhere'}:t", None


def config_not_an_object(tmp_path: Path) -> tuple[str, str | None]:
    path = layout(tmp_path)
    rewrite_config(path, lambda config: [config])
    return f"oci:{path}:t", None


def diff_id_wrong(tmp_path: Path) -> tuple[str, str | None]:
    path = layout(tmp_path)

    def change(config: dict[str, Any]) -> dict[str, Any]:
        config["rootfs"]["diff_ids"][1] = sha(b"some other layer")
        return config
    rewrite_config(path, change)
    return f"oci:{path}:t", None


def diff_ids_too_few(tmp_path: Path) -> tuple[str, str | None]:
    path = layout(tmp_path)

    def change(config: dict[str, Any]) -> dict[str, Any]:
        config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][:1]
        return config
    rewrite_config(path, change)
    return f"oci:{path}:t", None


CASES = [platform_not_offered, blob_deleted_after_a_cached_scan, blob_cut_short_after_a_cached_scan,
         blob_corrupted, blob_is_not_a_layer, tag_missing, path_missing, config_not_an_object, diff_id_wrong,
         diff_ids_too_few]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_audit_records_what_load_raises(tmp_path: Path, case: Callable[[Path], tuple[str, str | None]]) -> None:
    ref, platform = case(tmp_path)
    with pytest.raises(OcilensError) as refused:
        ocilens.load(ref, platform=platform, progress=False)
    (tmp_path / "good").mkdir()
    good_layout = layout_from_tars(tmp_path / "good", [tar_layer([Entry.file("g", b"g")])])
    good = f"oci:{good_layout}:t"
    fleet = ocilens.audit([ref, good], platform=platform, executor="thread", progress=False)
    rows = fleet.images.set_index("reference")
    assert rows.loc[ref, "error_type"] == type(refused.value).__name__
    assert fleet.errors.set_index("reference").loc[ref, "error_type"] == type(refused.value).__name__
    if platform is None:  # the other image is audited as usual
        assert pd_isna(rows.loc[good, "error"]) and rows.loc[good, "visible_bytes"] == 1


def test_in_a_worker_process_too(tmp_path: Path) -> None:
    """The process backend's workers take the same path: a blob deleted after its scan was cached."""
    ref, _ = blob_deleted_after_a_cached_scan(tmp_path)
    with pytest.raises(OcilensError) as refused:
        ocilens.load(ref, progress=False)
    fleet = ocilens.audit([ref], executor="process", workers=2, progress=False)
    assert fleet.images.loc[0, "error_type"] == type(refused.value).__name__


def test_arguments_of_the_call_itself_still_raise(tmp_path: Path) -> None:
    """A malformed ``platform=`` is the caller's mistake, not one image's: it raises, as in ``load``."""
    ref = f"oci:{layout(tmp_path)}:t"
    with pytest.raises(UsageError):
        ocilens.load(ref, platform="linux", progress=False)
    with pytest.raises(UsageError):
        ocilens.audit([ref], platform="linux", executor="thread", progress=False)


def test_images_of_one_stack_share_results_and_keep_their_own_config(tmp_path: Path) -> None:
    """Two tags with the same layers and different configs: the second shares the first's tree (passed in
    through the constructor), and each row keeps its own image ID."""
    path = layout(tmp_path)
    old = json.loads((path / "index.json").read_text())["manifests"][0]
    rewrite_config(path, lambda config: {**config, "author": "someone else"})
    index = json.loads((path / "index.json").read_text())
    index["manifests"].append({**old, "annotations": {"org.opencontainers.image.ref.name": "old"}})
    (path / "index.json").write_text(json.dumps(index))
    fleet = ocilens.audit([f"oci:{path}:old", f"oci:{path}:t"], executor="thread", progress=False, cache=False)
    rows = fleet.images
    assert rows["error"].isna().all()
    assert rows["image_id"].nunique() == 2
    assert rows["visible_bytes"].tolist() == [10000, 10000]


def pd_isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
