"""From numbers to fixes (issue 16): ``img.bloat().advice``, checked on pairs of images.

Each kind of fix has a pair (``advice_images.pairs``): an image with the problem and one with the fix applied,
the same layers otherwise, built from real Debian package files, this machine's apt lists and logs, and real
wheels from PyPI, every layer compressed by the same ``gzip -6``. The truth is the difference between the two
images: their layer blob sizes (download) and the file bytes the fix removes (what the pair put in). For each
kind: ``bytes_saved`` is exact, ``download_bytes_saved`` is within 15% of the true download saving, and the
fixed image gets no row of that kind; an image with every problem at once ranks them by their true savings.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import ocilens
from advice_images import (BASE_PACKAGES, TOOLCHAIN_PACKAGES, Kit, LayerSpec, Pair, base_layer, blob_sizes,
                           combined, pairs, write_image)
from imagebuild import Entry, layout_from_tars, tar_layer, to_archive
from ocilens.advice import ADVICE_COLUMNS, KINDS, build_toolchain_packages, layer_name, short_instruction

PAIRED = [k for k in KINDS if k != "unappliable"]  # no runtime applies those entries: a unit test below


@dataclass
class Built:
    pair: Pair
    problem: ocilens.Image
    fixed: ocilens.Image
    true_download: int  # the problem image's layer blobs minus the fixed one's


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """The downloads, once per session."""
    return Kit.fetch(tmp_path_factory.mktemp("advice-kit"))


@pytest.fixture(scope="session")
def base(kit: Kit) -> LayerSpec:
    return base_layer(kit)


@pytest.fixture(scope="session")
def built(kit: Kit, base: LayerSpec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    work = tmp_path_factory.mktemp("advice-images")
    out = {}
    for kind, pair in pairs(kit, work / "scratch").items():
        problem = write_image(work / f"{kind}-problem", [base, *pair.problem])
        fixed = write_image(work / f"{kind}-fixed", [base, *pair.fixed])
        out[kind] = Built(pair, ocilens.load(f"oci:{problem}:t", progress=False),
                          ocilens.load(f"oci:{fixed}:t", progress=False), blob_sizes(problem) - blob_sizes(fixed))
    return out


@pytest.fixture(scope="session")
def everything(built: dict[str, Built], base: LayerSpec, tmp_path_factory: pytest.TempPathFactory) -> ocilens.Image:
    """Every problem at once: the base, then each pair's problem layers."""
    layout = write_image(tmp_path_factory.mktemp("advice-all") / "layout",
                         [base, *combined({k: b.pair for k, b in built.items()})])
    return ocilens.load(f"oci:{layout}:t", progress=False)


def test_every_kind_has_a_pair(built: dict[str, Built]) -> None:
    assert sorted(built) == sorted(PAIRED)


@pytest.mark.parametrize("kind", PAIRED)
def test_pair(built: dict[str, Built], kind: str) -> None:
    b = built[kind]
    advice = b.problem.bloat().advice
    assert tuple(advice.columns) == ADVICE_COLUMNS
    mine = advice[advice["kind"] == kind]
    assert len(mine) == 1, advice[["kind", "layer", "download_bytes_saved"]]
    row = mine.iloc[0]
    assert int(row["bytes_saved"]) == b.pair.bytes_saved
    assert b.true_download > 0
    got = int(row["download_bytes_saved"])
    assert abs(got - b.true_download) <= 0.15 * b.true_download, (kind, got, b.true_download)
    assert not (b.fixed.bloat().advice["kind"] == kind).any(), b.fixed.bloat().advice
    # the row names the layer the bytes ship in and the instruction to change, and its largest file
    layer = int(row["layer"])
    assert row["created_by"] == b.pair.problem[layer - 1].created_by
    assert short_instruction(row["created_by"]) in row["fix"]
    if kind != "layer_compression":
        files = b.problem.bloat().advice_files
        files = files[files["fix"] == mine.index[0]]
        assert int(files["size"].sum()) == b.pair.bytes_saved and len(files) == int(row["files"])
        assert row["example"] == files.sort_values("size", ascending=False)["path"].iloc[0]


def test_every_problem_at_once_ranks_by_the_true_savings(built: dict[str, Built], everything: ocilens.Image) -> None:
    advice = everything.bloat().advice
    assert list(advice["download_bytes_saved"]) == sorted(advice["download_bytes_saved"], reverse=True)
    per_kind = advice.groupby("kind")["download_bytes_saved"].sum().sort_values(ascending=False, kind="stable")
    truth = sorted(PAIRED, key=lambda k: -built[k].true_download)
    assert list(per_kind.index) == truth, {k: (int(per_kind.get(k, 0)), built[k].true_download) for k in truth}
    for kind in PAIRED:  # each kind's bytes, as in its pair
        assert int(advice.loc[advice["kind"] == kind, "bytes_saved"].max()) == built[kind].pair.bytes_saved


def test_no_byte_in_two_rows(everything: ocilens.Image) -> None:
    b = everything.bloat()
    advice, files = b.advice, b.advice_files
    assert not files.duplicated(["layer", "path"]).any()
    by_row = files.groupby("fix")["size"].sum()
    for i, row in advice.iterrows():
        if row["kind"] != "layer_compression":
            assert by_row[i] == row["bytes_saved"]
    waste = advice[advice["kind"].isin(["delete_in_same_layer", "metadata_only_copy", "overwritten"])]
    assert int(waste["bytes_saved"].sum()) == b.wasted_bytes  # every wasted byte in one fix, once
    visible = advice[~advice.index.isin(waste.index)]
    assert int(visible["bytes_saved"].sum()) <= b.visible_bytes


def test_toolchain_and_the_libraries_only_it_needs(built: dict[str, Built]) -> None:
    """From dpkg's Depends: the build packages, and libpkgconf3, which only pkgconf-bin needs; the C library,
    which zstd in the base needs too, stays."""
    img = built["build_toolchain"].problem
    found = build_toolchain_packages(img)
    names = {img.packages.loc[pid, "name"]: why for pid, why in found.items()}
    assert names == {"make": "toolchain", "pkgconf": "toolchain", "pkgconf-bin": "toolchain",
                     "linux-libc-dev": "toolchain", "libpkgconf3": "only needed by the toolchain"}
    assert set(TOOLCHAIN_PACKAGES) == set(names) and not set(BASE_PACKAGES) & set(names)
    fix = img.bloat().advice.set_index("kind").at["build_toolchain", "fix"]
    assert "linux-libc-dev" in fix and "separate stage" in fix


def test_fix_names_a_layer_without_history(tmp_path: Path) -> None:
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("var/cache/apt/archives/x.deb", b"\x1f\x8b" * 40_000)]),
                                         tar_layer([Entry.whiteout("var/cache/apt/archives/x.deb")])],
                              history=[], config={"history": []})
    img = ocilens.load(f"oci:{layout}:t", progress=False)
    row = img.bloat().advice.iloc[0]
    assert row["kind"] == "delete_in_same_layer" and pd.isna(row["created_by"])
    digests = [d.digest.split(":")[1][:12] for d in img.manifest.layers]
    assert f"layer 0 ({digests[0]})" in row["fix"] and f"layer 1 ({digests[1]})" in row["fix"]
    assert layer_name(img.layers, 1) == f"layer 1 ({digests[1]})"


@pytest.mark.parametrize("created_by,shown", [
    ("/bin/sh -c #(nop) COPY file:0f3a in /app ", "COPY file:0f3a in /app"),
    ("/bin/sh -c apt-get update &&     apt-get install -y curl", "RUN apt-get update && apt-get install -y curl"),
    ("RUN /bin/sh -c pip install -r requirements.txt # buildkit", "RUN pip install -r requirements.txt"),
    ("RUN |2 VERSION=1.2 TARGET=x /bin/sh -c make install # buildkit", "RUN make install"),
    ("COPY . /src # buildkit", "COPY . /src"),
    ("x" * 100, "x" * 100),  # one word is never cut
    ("/bin/sh -c cp /usr/local/bin/something-long /usr/local/bin/somewhere-else && chmod 0755 /usr/local/bin/s",
     "RUN cp /usr/local/bin/something-long /usr/local/bin/somewhere-else …"),  # cut at a space
    (None, None), ("  ", None),
])
def test_short_instruction(created_by: str | None, shown: str | None) -> None:
    assert short_instruction(created_by) == shown


def test_layer_compression_is_not_proposed_for_docker_archives(built: dict[str, Built], tmp_path: Path) -> None:
    """A docker-archive's layers are uncompressed by its format: nothing to recompress."""
    src = built["layer_compression"].problem.source.reference
    layout = Path(src.removeprefix("oci:").rpartition(":")[0])
    archive = to_archive(layout, "t", tmp_path / "a.tar", kind="docker-archive")
    img = ocilens.load(f"docker-archive:{archive}", progress=False)
    assert img.source.transport == "docker-archive" and set(img.layers["compression"]) == {"tar"}
    assert "layer_compression" not in set(img.bloat().advice["kind"])


def test_layer_compression_of_a_gzip_layer_stored_at_level_0(built: dict[str, Built], base: LayerSpec,
                                                               tmp_path: Path) -> None:
    """A gzip blob made at level 0 (gzip's format, nothing compressed): measured against what the start of
    its tar took in the blob, the gain of gzip -6 is the true one within 15%."""
    pair = built["layer_compression"].pair
    stored = LayerSpec(pair.problem[0].created_by, pair.problem[0].items, "gzip-0")
    problem = write_image(tmp_path / "problem", [base, stored])
    fixed = write_image(tmp_path / "fixed", [base, *pair.fixed])
    truth = blob_sizes(problem) - blob_sizes(fixed)
    img = ocilens.load(f"oci:{problem}:t", progress=False)
    assert img.layers["compression"].tolist() == ["gzip", "gzip"]
    row = img.bloat().advice.set_index("kind").loc["layer_compression"]
    assert abs(int(row["download_bytes_saved"]) - truth) <= 0.15 * truth and int(row["bytes_saved"]) == 0
    assert "gzip" in row["fix"] and "layer 1" in row["fix"]


def test_waste_in_both_units(built: dict[str, Built]) -> None:
    """The layers and the bloat summary give waste in file bytes and in download; a wasted version's download
    is its share of the blob of the layer that shipped it."""
    img = built["delete_in_same_layer"].problem
    b = img.bloat()
    s = b.summary()
    debs = sum(i.data.__len__() for i in built["delete_in_same_layer"].pair.problem[0].items
               if i.path.endswith(".deb"))
    assert s["wasted_bytes"] == debs
    assert s["wasted_download_bytes"] == int(img.layers["wasted_compressed_bytes"].sum()) == int(
        b.causes["compressed_bytes"].sum())
    assert abs(s["wasted_download_bytes"] - debs) <= 0.15 * debs  # .debs are compressed already
    assert {"wasted_compressed_bytes", "shipped_compressed_bytes"} <= set(b.per_layer.columns)


# ------------------------------------------------------------------------------------------ where it shows


def test_cli_analyze_prints_the_top_three_and_json_has_the_advice(built: dict[str, Built],
                                                                   everything: ocilens.Image,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    proc = subprocess.run([sys.executable, "-m", "ocilens", "analyze", everything.reference, "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    advice = everything.bloat().advice
    lines = [ln for ln in proc.stdout.splitlines() if re.match(r"\s*\d+\. ", ln)]
    assert len(lines) == 3
    for line, fix in zip(lines, advice["fix"].head(3)):
        assert line.endswith(fix)
    doc = json.loads(out.read_text())
    assert [r["kind"] for r in doc["advice"]] == list(advice["kind"])
    assert set(doc["advice"][0]) == set(ADVICE_COLUMNS)
    assert doc["image"]["wasted_download_bytes"] == everything.bloat().wasted_download_bytes


def test_check_highest_download_savings(built: dict[str, Built], tmp_path: Path) -> None:
    img = built["package_cache"].problem
    total = int(img.bloat().advice["download_bytes_saved"].sum())

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ocilens", "check", img.reference, "--lowest-efficiency", "0",
                               "--highest-user-wasted-percent", "disabled", *args], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)

    assert check("--highest-download-savings", str(total)).returncode == 0
    failed = check("--highest-download-savings", str(total - 1))
    assert failed.returncode == 1 and "FAIL  highestDownloadSavings" in failed.stdout
    assert img.bloat().advice["fix"].iloc[0] in failed.stdout  # the fixes that would meet it
    (tmp_path / ".dive-ci").write_text(f"rules:\n  lowestEfficiency: 0\n  highestDownloadSavings: {total // 2}B\n")
    assert check().returncode == 1


def test_report_and_notebook_views_lead_with_the_fixes(built: dict[str, Built]) -> None:
    img = built["package_lists"].problem
    advice = img.bloat().advice
    top = html_lib.escape(advice["fix"].iloc[0], quote=True)
    html = img.report().html
    body = html[html.index("<h2>Headline</h2>"):]
    assert html.index("<h2>Headline</h2>") < html.index("<h2>Fixes</h2>") < html.index("<h2>Image</h2>")
    sentence = body[body.index("<p"):body.index("</p>")]
    assert "to download" in sentence and "uncompressed" in sentence and "waste" in sentence and top in sentence
    for view in (img._repr_html_(), img.bloat()._repr_html_()):
        assert top in view and view.index(top) < view.index("efficiency")


def test_audit_gets_the_top_fix(built: dict[str, Built]) -> None:
    refs = [built[k].problem.reference for k in ("package_lists", "temp_files")]
    fleet = ocilens.audit(refs, executor="thread", progress=False)
    rows = fleet.images.set_index("reference")
    for ref in refs:
        advice = ocilens.load(ref, progress=False).bloat().advice
        row = rows.loc[ref]
        assert (row["top_fix_kind"], row["top_fix"]) == (advice["kind"].iloc[0], advice["fix"].iloc[0])
        assert row["advice_download_bytes"] == int(advice["download_bytes_saved"].sum())


def test_items_are_what_the_pairs_say(kit: Kit) -> None:
    """The helper's own check: the pairs' content sets do not overlap (each kind's bytes are its own)."""
    seen: dict[bytes, str] = {}
    for kind, pair in pairs(kit, kit.root / "check").items():
        for spec in pair.problem:
            for it in spec.items:
                if it.kind == "file" and len(it.data) > 4096:
                    assert seen.setdefault(it.data, kind) == kind, (it.path, kind, seen[it.data])
