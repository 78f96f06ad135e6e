"""dive's numbers (issue 4, part 2): efficiency, wasted bytes and user wasted percent exactly as dive 0.13
computes them (docs/layer-rules.md "dive's numbers", wagoodman/dive ``filetree/efficiency.go``,
``image/docker/image_archive.go``, ``image/analysis.go``).

Two truths: (a) the real ``dive`` binary on the same images exported with skopeo as docker-archive, and
(b) the values worked out by hand from dive's rules on small images, blind spots included. Each small case
is checked against both, so a wrong hand computation shows up as a disagreement with dive itself.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import ocilens
from imagebuild import Entry, Layer, Op, layout_from_tars, tar_layer, to_archive, umoci_image
from test_bloat import build_bloat_image

REPO = Path(__file__).resolve().parent.parent
INF = math.inf
NAN = math.nan


def run_dive_json(layout: Path, tag: str, work: Path) -> dict[str, Any]:
    """``dive --source docker-archive`` on ``oci:layout:tag`` copied to a docker-archive; its ``--json``."""
    work.mkdir(parents=True, exist_ok=True)
    archive = to_archive(layout, tag, work / "image.tar", kind="docker-archive")
    out = work / "dive.json"
    proc = subprocess.run(["dive", "--source", "docker-archive", str(archive), "--json", str(out)],
                          capture_output=True, text=True, env={**os.environ, "CI": "true"}, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def dive_user_wasted_percent(j: dict[str, Any]) -> float:
    """As dive's analysis: inefficientBytes / Σ sizeBytes of layers 1..n-1 (Go float division: x/0 is
    +Inf, 0/0 NaN)."""
    wasted = j["image"]["inefficientBytes"]
    user = sum(layer["sizeBytes"] for layer in j["layer"][1:])
    if user == 0:
        return NAN if wasted == 0 else INF
    return wasted / user


def same_float(a: float, b: float, tol: float = 1e-12) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


def assert_matches_dive(img: ocilens.Image, j: dict[str, Any]) -> None:
    d = img.bloat().dive
    problems = []
    if not same_float(d.efficiency, j["image"]["efficiencyScore"]):
        problems.append(f"efficiency: ocilens {d.efficiency!r}, dive {j['image']['efficiencyScore']!r}")
    if d.wasted_bytes != j["image"]["inefficientBytes"]:
        problems.append(f"wasted bytes: ocilens {d.wasted_bytes}, dive {j['image']['inefficientBytes']}")
    if d.image_bytes != j["image"]["sizeBytes"]:
        problems.append(f"image bytes: ocilens {d.image_bytes}, dive {j['image']['sizeBytes']}")
    user = sum(layer["sizeBytes"] for layer in j["layer"][1:])
    if d.user_bytes != user:
        problems.append(f"user bytes: ocilens {d.user_bytes}, dive {user}")
    want_pct = dive_user_wasted_percent(j)
    if not same_float(d.user_wasted_percent, want_pct):
        problems.append(f"user wasted percent: ocilens {d.user_wasted_percent!r}, dive {want_pct!r}")
    ours = sorted((str(r.path), int(r.count), int(r.cumulative_bytes)) for r in d.inefficient_paths.itertuples())
    theirs = sorted((f["file"], f["count"], f["sizeBytes"]) for f in j["image"]["fileReference"])
    if ours != theirs:
        problems.append(f"inefficient paths: ocilens {ours}, dive {theirs}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------- hand-computed cases


def F(name: str, n: int, seed: str = "", **kw: Any) -> Entry:
    """A file of ``n`` bytes whose content depends on ``seed`` (default: the name)."""
    unit = (seed or name).encode() + b"."
    return Entry.file(name, (unit * (n // len(unit) + 1))[:n], **kw)


@dataclass
class Case:
    """Layers, and dive's numbers worked out by hand from its rules (comments give the sums)."""

    layers: list[list[Entry]]
    efficiency: Fraction | float
    wasted: int
    user_bytes: int
    user_pct: float
    inefficient: set[tuple[str, int, int]] = field(default_factory=set)  # (path, count, cumulative bytes)
    ours: tuple[int, int] | None = None  # ocilens's (shipped, visible), to show the difference


CASES: dict[str, Case] = {
    # /f: 100 then 150 -> cumulative 250, min 100; user = 150
    "overwritten_file": Case([[F("f", 100, "a")], [F("f", 150, "b")]],
                             Fraction(100, 250), 250, 150, 250 / 150, {("/f", 2, 250)}, ours=(250, 150)),
    # a chmod re-ships the same 100 bytes: cumulative 200, min 100
    "chmod_only": Case([[F("f", 100)], [F("f", 100, mode=0o755)]],
                       Fraction(1, 2), 200, 100, 2.0, {("/f", 2, 200)}, ours=(200, 100)),
    # blind spot: rm -rf data counts the whole subtree (300) once at /data, a path seen once: no waste
    "deleted_directory": Case([[Entry.dir("data"), F("data/a", 100), F("data/b", 200), F("x", 10)],
                               [Entry.whiteout("data"), F("y", 40)]],
                              1.0, 0, 40, 0.0, set(), ours=(350, 50)),
    # a file whiteout counts 0: /f cumulative 100, min 0; user bytes 0 and waste > 0 -> +Inf in Go
    "deleted_file_only": Case([[F("big", 10000), F("f", 100)], [Entry.whiteout("f")]],
                              Fraction(10000, 10100), 100, 0, INF, {("/f", 2, 100)}, ours=(10100, 10000)),
    # blind spot: opaque markers are ignored; layer 1's only leaf is /d/new
    "opaque_directory": Case([[Entry.dir("d"), F("d/old1", 600), Entry.dir("d/sub"), F("d/sub/old2", 400),
                               Entry.dir("e"), F("e/other", 50)],
                              [Entry.dir("d"), F("d/new", 70), Entry.opaque("d")]],
                             1.0, 0, 70, 0.0, set(), ours=(1120, 120)),
    # one layer: user bytes 0, waste 0 -> NaN
    "one_layer": Case([[F("a", 100), F("b", 50), Entry.dir("c")]], 1.0, 0, 0, NAN, set(), ours=(150, 150)),
    # blind spot: a symlink retarget is two 0-byte nodes at /s: listed, but 0 bytes of waste
    "symlink_retarget": Case([[F("f", 100), Entry.symlink("s", "f")], [Entry.symlink("s", "g"), F("g", 30)]],
                             1.0, 0, 30, 0.0, {("/s", 2, 0)}, ours=(130, 130)),
    # a hardlink counts 0; overwriting it with 100 bytes: /b cumulative 100, min 0
    "hardlink_then_file": Case([[F("a", 100), Entry.hardlink("b", "a")], [F("b", 100, "other")]],
                               Fraction(100, 200), 100, 100, 1.0, {("/b", 2, 100)}, ours=(200, 200)),
    # whiteout, then the path comes back: 100 + 0 + 80, min 0
    "deleted_then_readded": Case([[F("f", 100)], [Entry.whiteout("f")], [F("f", 80, "again")]],
                                 Fraction(0, 180), 180, 80, 180 / 80, {("/f", 3, 180)}, ours=(180, 80)),
    # a directory removed in layer 2 counts what the stack of layers 0..1 holds under it (100 + 20)
    "deleted_directory_two_layers": Case([[F("d/x", 100)], [F("d/y", 20)], [Entry.whiteout("d")]],
                                         1.0, 0, 20, 0.0, set(), ours=(120, 0)),
    # a directory replaced by a file: the file is a new leaf, the old children are never revisited
    "directory_becomes_file": Case([[F("d/a", 100)], [F("d", 5)]], 1.0, 0, 5, 0.0, set(), ours=(105, 5)),
    # the same layer blob twice (one digest): /f 100 + 100, /g 10; user bytes 10 + 100
    "repeated_layer": Case([[F("f", 100)], [F("g", 10)], [F("f", 100)]],
                           Fraction(110, 210), 200, 110, 200 / 110, {("/f", 2, 200)}, ours=(210, 110)),
    # an empty directory listed again by a later layer: a 0-byte leaf seen twice
    "empty_dir_relisted": Case([[Entry.dir("e"), F("x", 5)], [Entry.dir("e", mode=0o700), F("y", 7)]],
                               1.0, 0, 7, 0.0, {("/e", 2, 0)}, ours=(12, 12)),
    # dive does not resolve symlinks: /lib/a (through /lib -> usr/lib) is a new path of its own
    "symlinked_parent": Case([[Entry.dir("usr"), Entry.dir("usr/lib"), F("usr/lib/a", 100), Entry.symlink("lib", "usr/lib")],
                              [F("lib/a", 50, "b"), F("usr/lib/b", 10)]],
                             1.0, 0, 60, 0.0, set(), ours=(160, 60)),
    # a whiteout of a path that is not in the stack below: dive's visitor fails on it, which stops the walk
    # of that layer (".wh.nothere" sorts before "a" and "zz", so they are never counted), and the map entry
    # it already made keeps minDiscoveredSize = -1: efficiency = (50 + 10 - 1) / (50 + 10)
    "whiteout_of_missing_path": Case([[F("a", 50), F("zz", 10)],
                                      [Entry.whiteout("nothere"), F("zz", 100, "b"), F("a", 30, "b")]],
                                     Fraction(59, 60), 0, 130, 0.0, set(), ours=(190, 130)),
    # old aufs-built layers: .wh..wh.aufs and the empty .wh..wh.orph/ and .wh..wh.plnk/ directories are, to dive,
    # whiteouts of /.wh.aufs ... that are not there: the same -1 record and abandoned walk as above (runtimes,
    # and ocilens's own numbers, ignore the metadata)
    "aufs_metadata": Case([[F("a", 50), F("zz", 10)],
                           [Entry.file(".wh..wh.aufs"), Entry.dir(".wh..wh.orph"), Entry.dir(".wh..wh.plnk"),
                            F("zz", 100, "b"), F("a", 30, "b")]],
                          Fraction(59, 60), 0, 130, 0.0, set(), ours=(190, 130)),
}


@pytest.fixture(scope="module")
def case_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ocilens.Image]]:
    out = {}
    for name, case in CASES.items():
        layout = layout_from_tars(tmp_path_factory.mktemp(name), [tar_layer(layer) for layer in case.layers])
        out[name] = (layout, ocilens.load(f"oci:{layout}:t", cache=False))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_hand_computed(name: str, case_images: dict[str, tuple[Path, ocilens.Image]]) -> None:
    case = CASES[name]
    d = case_images[name][1].bloat().dive
    got = (d.efficiency, d.wasted_bytes, d.user_bytes, d.user_wasted_percent)
    want = (float(case.efficiency), case.wasted, case.user_bytes, case.user_pct)
    assert same_float(got[0], want[0]) and got[1:3] == want[1:3] and same_float(got[3], want[3]), \
        f"{name}: got (efficiency, wasted, user bytes, user %) {got}, dive's rules give {want}"
    assert {(str(r.path), int(r.count), int(r.cumulative_bytes)) for r in d.inefficient_paths.itertuples()} \
        == case.inefficient


@pytest.mark.parametrize("name", list(CASES))
def test_hand_cases_agree_with_real_dive(name: str, case_images: dict[str, tuple[Path, ocilens.Image]],
                                         tmp_path: Path) -> None:
    """The hand computations above are dive's: the binary says the same (guards the expectations)."""
    case = CASES[name]
    j = run_dive_json(case_images[name][0], "t", tmp_path)
    assert same_float(j["image"]["efficiencyScore"], float(case.efficiency))
    assert j["image"]["inefficientBytes"] == case.wasted
    assert sum(layer["sizeBytes"] for layer in j["layer"][1:]) == case.user_bytes
    assert same_float(dive_user_wasted_percent(j), case.user_pct)


@pytest.mark.parametrize("name", list(CASES))
def test_ocilens_vs_real_dive_small(name: str, case_images: dict[str, tuple[Path, ocilens.Image]],
                                    tmp_path: Path) -> None:
    layout, img = case_images[name]
    assert_matches_dive(img, run_dive_json(layout, "t", tmp_path))


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.ours])
def test_documented_differences(name: str, case_images: dict[str, tuple[Path, ocilens.Image]]) -> None:
    """ocilens's own numbers beside dive's on the same image: shipped/visible from the construction."""
    case = CASES[name]
    b = case_images[name][1].bloat()
    shipped, visible = case.ours  # type: ignore[misc]
    assert (b.shipped_bytes, b.visible_bytes) == (shipped, visible)
    assert b.efficiency == (1.0 if shipped == 0 else visible / shipped)


def test_blind_spots_side_by_side(case_images: dict[str, tuple[Path, ocilens.Image]]) -> None:
    """A deleted directory and an opaque directory: waste for ocilens, none for dive."""
    for name, waste in (("deleted_directory", 300), ("opaque_directory", 1000)):
        s = case_images[name][1].bloat().summary()
        assert s["wasted_bytes"] == waste and s["dive_wasted_bytes"] == 0 and s["dive_efficiency"] == 1.0


# --------------------------------------------------------------------------- real dive, bigger images


def test_real_dive_on_bloat_image(tmp_path: Path) -> None:
    layout = build_bloat_image(tmp_path)
    img = ocilens.load(f"oci:{layout}:t", cache=False)
    assert_matches_dive(img, run_dive_json(layout, "t", tmp_path / "dive"))


def test_real_dive_on_sample_image(tmp_path: Path) -> None:
    img = ocilens.sample_image(cache=False)
    assert_matches_dive(img, run_dive_json(REPO / "ocilens" / "_sample", "sample", tmp_path))


def test_real_dive_on_umoci_image(tmp_path: Path) -> None:
    """umoci's own layers: re-shipped parents, rm -rf with whiteouts, chmod, symlinks, hardlinks."""
    layout = umoci_image(tmp_path, [
        Layer("base", [Op.write("/usr/lib/libx.so", b"x" * 5000), Op.write("/usr/bin/tool", b"t" * 700),
                       Op.symlink("/usr/bin/t", "tool"), Op.write("/etc/a", b"a" * 30),
                       Op.write("/var/cache/c/1", b"1" * 64), Op.write("/var/cache/c/2/3", b"3" * 128)]),
        Layer("chmod", [Op.chmod("/usr/bin/tool", 0o700)]),
        Layer("rm cache", [Op.remove("/var/cache/c")]),
        Layer("hardlink", [Op.hardlink("/usr/lib/libx.so.1", "/usr/lib/libx.so")]),
        Layer("retarget", [Op.remove("/usr/bin/t"), Op.symlink("/usr/bin/t", "/usr/bin/tool")]),
        Layer("rewrite", [Op.write("/etc/a", b"b" * 31), Op.mkdir("/srv/empty")]),
    ])
    img = ocilens.load(f"oci:{layout}:t", cache=False)
    assert_matches_dive(img, run_dive_json(layout, "t", tmp_path / "dive"))
