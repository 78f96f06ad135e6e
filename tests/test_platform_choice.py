"""A platform asked for is the platform analysed: a single-platform image of another platform is refused,
as ``docker pull --platform`` and containerd refuse it, instead of analysing what is there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import ocilens
from imagebuild import Entry, layout_from_tars, tar_layer
from ocilens.errors import ImageNotFound
from ocilens.manifest import OCI_MANIFEST, Descriptor, select_manifest
from ocilens.platform import Platform


@pytest.fixture()
def amd64_layout(tmp_path: Path) -> Path:
    return layout_from_tars(tmp_path, [tar_layer([Entry.file("f", b"x")])])  # config: linux/amd64


def test_the_image_own_platform_is_accepted(amd64_layout: Path) -> None:
    img = ocilens.load(f"oci:{amd64_layout}:t", platform="linux/amd64", cache=False, progress=False)
    assert str(img.platform) == "linux/amd64"


@pytest.mark.parametrize("wanted", ["linux/s390x", "linux/arm64", "windows/amd64"])
def test_another_platform_is_refused(amd64_layout: Path, wanted: str) -> None:
    with pytest.raises(ImageNotFound, match=f"is a linux/amd64 image, not {wanted}"):
        ocilens.load(f"oci:{amd64_layout}:t", platform=wanted, cache=False, progress=False)


def test_the_cli_exits_2(amd64_layout: Path) -> None:
    proc = subprocess.run(["ocilens", "analyze", f"oci:{amd64_layout}:t", "--platform", "linux/s390x", "--no-cache"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not linux/s390x" in proc.stderr and "Traceback" not in proc.stderr


def test_an_arm64_request_takes_any_arm64_variant(tmp_path: Path) -> None:
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("f", b"x")])],
                              config={"architecture": "arm64", "variant": "v8"})
    img = ocilens.load(f"oci:{layout}:t", platform="linux/arm64", cache=False, progress=False)
    assert img.platform.architecture == "arm64"


def _entry(n: int, platform: str) -> Descriptor:
    return Descriptor(OCI_MANIFEST, "sha256:" + f"{n:x}" * 64, 100, Platform.parse(platform))


def test_an_arm64_variant_asked_for_by_name_is_that_variant_only() -> None:
    """``linux/arm64`` (v8) takes an index's only arm64 entry whatever its variant, as before; ``arm64/v9``
    asked for by name does not fall back to a v8 image (containerd would not run it as v9 either)."""
    v8_only = [_entry(1, "linux/amd64"), _entry(2, "linux/arm64/v8")]
    assert select_manifest(v8_only, Platform.parse("linux/arm64"), what="index") is v8_only[1]
    with pytest.raises(ImageNotFound, match="linux/arm64/v9"):
        select_manifest(v8_only, Platform.parse("linux/arm64/v9"), what="index")
    v9_only = [_entry(3, "linux/arm64/v9")]
    assert select_manifest(v9_only, Platform.parse("linux/arm64/v9"), what="index") is v9_only[0]


def test_the_host_default_is_named_when_it_is_not_offered() -> None:
    """No platform given and the index lacks this machine's: the error says the platform was the default."""
    host = ocilens.platform.host_platform()
    other = "linux/s390x" if host.architecture != "s390x" else "linux/amd64"
    with pytest.raises(ImageNotFound, match=r"\(this machine's, as no platform was given\)"):
        select_manifest([_entry(4, other), _entry(5, "linux/riscv64")], None, what="index")
    with pytest.raises(ImageNotFound) as info:
        select_manifest([_entry(4, other)], Platform.parse("linux/riscv64"), what="index")
    assert "this machine" not in str(info.value)


def test_a_config_without_a_variant_is_not_another_variant(tmp_path: Path) -> None:
    """An arm/v6 image whose config leaves the variant out (the index says v6): asking for linux/arm/v6 is
    that image, not "a linux/arm/v7 image" by arm's default variant."""
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("f", b"x")])], config={"architecture": "arm"})
    img = ocilens.load(f"oci:{layout}:t", platform="linux/arm/v6", cache=False, progress=False)
    assert img.platform.architecture == "arm"
    with pytest.raises(ImageNotFound):
        ocilens.load(f"oci:{layout}:t", platform="linux/arm64", cache=False, progress=False)


def test_artifacts_never_chosen_and_no_default_among_one_image() -> None:
    """An entry with ``artifactType`` or an attestation is never chosen, even on the platform asked for or listed
    first; beside one image they do not make this machine's platform the default (that image is the only one)."""
    host = ocilens.platform.host_platform()
    foreign = "linux/s390x" if host.architecture != "s390x" else "linux/riscv64"
    sbom = Descriptor(OCI_MANIFEST, "sha256:" + "6" * 64, 100, Platform.parse(foreign),
                      artifact_type="application/spdx+json")
    attestation = Descriptor(OCI_MANIFEST, "sha256:" + "7" * 64, 100, Platform("unknown", "unknown"),
                             {"vnd.docker.reference.type": "attestation-manifest"})
    image = _entry(8, foreign)
    for entries in ([sbom, attestation, image], [attestation, image], [image]):
        assert select_manifest(entries, None, what="index") is image
        assert select_manifest(entries, Platform.parse(foreign), what="index") is image
    with pytest.raises(ImageNotFound, match="lists no image manifests; its 2 entries are not images"):
        select_manifest([sbom, attestation], None, what="index")
