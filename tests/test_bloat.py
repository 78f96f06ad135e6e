"""The bloat audit (issue 4, part 1): shipped, visible and wasted bytes, efficiency, the cause of every
wasted file version, per-layer waste, duplicates and junk.

Every expected number is computed here from what the test wrote into the image (docs/layer-rules.md
"Waste"), never read back from ocilens. Images come from umoci (realistic layers: umoci decides what goes in
each tar) and, where exact tar content matters (hardlinks across layers, opaque markers), from tars written
entry by entry.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ocilens
from imagebuild import EmptyLayer, Entry, Layer, Op, add_raw_layer, layout_from_tars, tar_layer, umoci_image


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(n: int, seed: str) -> bytes:
    """``n`` bytes that differ from every other seed's (so digests differ even at equal sizes)."""
    unit = hashlib.sha256(seed.encode()).digest()
    return (unit * (n // len(unit) + 1))[:n]


def load_tars(tmp_path: Path, *layers: list[Entry], history: list[str] | None = None) -> ocilens.Image:
    layout = layout_from_tars(tmp_path, [tar_layer(entries) for entries in layers], history=history)
    return ocilens.load(f"oci:{layout}:t", cache=False)


def causes_rows(b: Any) -> list[tuple]:
    c = b.causes
    return sorted((str(r.path), int(r.layer), int(r.size), str(r.cause), int(r.by_layer))
                  for r in c.itertuples(index=False))


# ------------------------------------------------------------------------------------------- the image


# Contents written by the build below; the expectations are computed from these alone.
CONF_V1 = blob(1000, "conf v1")
CONF_V2 = blob(1200, "conf v2")
RUN_SH = blob(300, "run.sh")
MOTD = blob(120, "motd")
OWNED = blob(60, "owned")
D1 = blob(2000, "data d1")
D2 = blob(3000, "data d2")
DUP = blob(1500, "duplicate")
H1 = blob(700, "hardlinked")
X_PY = blob(100, "x.py")
X_PYC = blob(250, "x.pyc")
Y_PY = blob(90, "y.py")
Y_PYC = blob(260, "y.pyc")
DEB = blob(5000, "pkg.deb")
LISTS = blob(640, "apt lists")
PKG_BIN = blob(800, "pkg binary")
NEW_BIN = blob(400, "new binary")
KEEP_BIN = blob(33, "kept binary")

LISTS_PATH = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
DEB_PATH = "/var/cache/apt/archives/pkg_1.0-1_amd64.deb"
ORPHAN_PYC = "/app/__pycache__/x.cpython-311.pyc"
KEPT_PYC = "/app/__pycache__/y.cpython-311.pyc"

CREATED_BY = [  # the created_by of layers 0..6 (history also holds one empty-layer row, after layer 1)
    "ADD rootfs.tar /",
    "RUN chmod 755 /app/run.sh && touch /etc/motd && chown 1000:1000 /srv/owned",
    "RUN rm -rf /data",
    "RUN echo v2 > /etc/conf",
    "RUN apt-get update && apt-get install -y pkg",
    "RUN rm /app/x.py",
    "COPY --link bin/ /usr/bin/  (opaque)",
]


@dataclass(frozen=True)
class Version:
    """One file version the build ships: path, layer, content; ``fate`` None when it stays visible."""

    path: str
    layer: int
    content: bytes
    fate: tuple[str, int] | None = None  # (cause, layer that made it waste)


# Every regular-file version the build ships, in the layer that ships it (a hardlink ships nothing).
VERSIONS = [
    Version("/etc/conf", 0, CONF_V1, ("overwritten", 3)),
    Version("/app/run.sh", 0, RUN_SH, ("metadata_only", 1)),
    Version("/etc/motd", 0, MOTD, ("metadata_only", 1)),
    Version("/srv/owned", 0, OWNED, ("metadata_only", 1)),
    Version("/data/d1", 0, D1, ("deleted_later", 2)),
    Version("/data/sub/d2", 0, D2, ("deleted_later", 2)),
    Version("/srv/one", 0, DUP),
    Version("/srv/two", 0, DUP),
    Version("/opt/h1", 0, H1),  # /opt/h2 is a hardlink to it: no bytes of its own
    Version("/app/x.py", 0, X_PY, ("deleted_later", 5)),
    Version(ORPHAN_PYC, 0, X_PYC),
    Version("/app/y.py", 0, Y_PY),
    Version(KEPT_PYC, 0, Y_PYC),
    Version("/app/run.sh", 1, RUN_SH),
    Version("/etc/motd", 1, MOTD),
    Version("/srv/owned", 1, OWNED),
    Version("/etc/conf", 3, CONF_V2),
    Version(DEB_PATH, 4, DEB),
    Version(LISTS_PATH, 4, LISTS),
    Version("/usr/bin/pkg", 4, PKG_BIN, ("deleted_later", 6)),  # hidden by layer 6's opaque /usr/bin
    Version("/usr/bin/keep", 6, KEEP_BIN),
    Version("/usr/bin/new", 6, NEW_BIN),
]


def build_bloat_image(tmp_path: Path) -> Path:
    """The image of ``VERSIONS``: umoci layers 0..5 (with an empty-layer history row after layer 1), then a
    hand-written layer 6 that makes ``/usr/bin`` opaque and adds two files in it."""
    layout = umoci_image(tmp_path, [
        Layer(CREATED_BY[0], [
            Op.write("/etc/conf", CONF_V1), Op.write("/app/run.sh", RUN_SH, mode=0o644),
            Op.write("/etc/motd", MOTD), Op.write("/srv/owned", OWNED),
            Op.write("/data/d1", D1), Op.write("/data/sub/d2", D2),
            Op.write("/srv/one", DUP), Op.write("/srv/two", DUP),
            Op.write("/opt/h1", H1), Op.hardlink("/opt/h2", "/opt/h1"),
            Op.write("/app/x.py", X_PY), Op.write(ORPHAN_PYC, X_PYC),
            Op.write("/app/y.py", Y_PY), Op.write(KEPT_PYC, Y_PYC),
            Op.write("/etc/empty1", b""), Op.write("/usr/lib/empty2", b""),
        ]),
        Layer(CREATED_BY[1], [Op.chmod("/app/run.sh", 0o755), Op.touch("/etc/motd", 1_600_000_000),
                              Op.chown("/srv/owned", 1000, 1000)]),
        EmptyLayer("ENV LANG=C.UTF-8", ("--config.env", "LANG=C.UTF-8")),
        Layer(CREATED_BY[2], [Op.remove("/data")]),
        Layer(CREATED_BY[3], [Op.write("/etc/conf", CONF_V2)]),
        Layer(CREATED_BY[4], [Op.write(DEB_PATH, DEB), Op.write(LISTS_PATH, LISTS),
                              Op.write("/usr/bin/pkg", PKG_BIN)]),
        Layer(CREATED_BY[5], [Op.remove("/app/x.py")]),
    ], tag="t")
    # The opaque marker follows a new child in tar order, yet applies first (docs/layer-rules.md "Opaque directories").
    add_raw_layer(layout, "t", tar_layer([
        Entry.dir("usr/bin"), Entry.file("usr/bin/keep", KEEP_BIN), Entry.opaque("usr/bin"),
        Entry.file("usr/bin/new", NEW_BIN),
    ]), created_by=CREATED_BY[6])
    return layout


@pytest.fixture(scope="module")
def bloat_image(tmp_path_factory: pytest.TempPathFactory) -> ocilens.Image:
    layout = build_bloat_image(tmp_path_factory.mktemp("bloat"))
    return ocilens.load(f"oci:{layout}:t", cache=False)


def expected_totals(versions: list[Version]) -> tuple[int, int, int]:
    shipped = sum(len(v.content) for v in versions)
    visible = sum(len(v.content) for v in versions if v.fate is None)
    return shipped, visible, shipped - visible


def test_shipped_visible_wasted_and_efficiency(bloat_image: ocilens.Image) -> None:
    b = bloat_image.bloat()
    shipped, visible, wasted = expected_totals(VERSIONS)
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes) == (shipped, visible, wasted)
    assert b.efficiency == pytest.approx(visible / shipped, abs=1e-15)
    # the visible bytes are the final tree's regular files, each inode once
    final = {v.path: v for v in VERSIONS if v.fate is None}
    files = bloat_image.files.set_index("path")
    assert sorted(p for p, r in files.iterrows() if r["type"] == "file" and r["size"] > 0) == sorted(final)
    assert str(files.at["/opt/h2", "type"]) == "hardlink"


def test_every_wasted_version_has_its_cause(bloat_image: ocilens.Image) -> None:
    b = bloat_image.bloat()
    expected = sorted((v.path, v.layer, len(v.content), v.fate[0], v.fate[1]) for v in VERSIONS if v.fate)
    assert causes_rows(b) == expected
    c = b.causes
    assert int(c["size"].sum()) == b.wasted_bytes
    assert list(c["size"]) == sorted(c["size"], reverse=True)  # biggest first
    by_path_layer = {(r.path, int(r.layer)): r for r in c.itertuples(index=False)}
    for v in VERSIONS:
        if v.fate is None:
            continue
        row = by_path_layer[(v.path, v.layer)]
        assert row.digest == sha(v.content)
        # docs/layer-rules.md "Waste": each cause points at the instruction of the layer that made the version waste
        assert row.by_created_by == CREATED_BY[v.fate[1]]
        assert row.created_by == CREATED_BY[v.layer]


def test_cause_dtypes(bloat_image: ocilens.Image) -> None:
    c = bloat_image.bloat().causes
    assert list(c["cause"].cat.categories) == ["deleted_later", "overwritten", "metadata_only", "unappliable"]
    assert str(c["layer"].dtype) == "Int16" and str(c["by_layer"].dtype) == "Int16"
    assert str(c["size"].dtype) == "Int64" and str(c["compressed_bytes"].dtype) == "Int64"


def test_per_layer(bloat_image: ocilens.Image) -> None:
    b = bloat_image.bloat()
    per = b.per_layer
    n = len(CREATED_BY)
    assert list(per["layer"]) == list(range(n))
    assert list(per["created_by"]) == CREATED_BY  # the empty-layer history row is skipped
    for i in range(n):
        shipped = sum(len(v.content) for v in VERSIONS if v.layer == i)
        visible = sum(len(v.content) for v in VERSIONS if v.layer == i and v.fate is None)
        row = per.iloc[i]
        assert (int(row["shipped_bytes"]), int(row["visible_bytes"]), int(row["wasted_bytes"])) == \
            (shipped, visible, shipped - visible), f"layer {i}"
        for cause in ("deleted_later", "overwritten", "metadata_only"):
            want = sum(len(v.content) for v in VERSIONS if v.layer == i and v.fate and v.fate[0] == cause)
            assert int(row[f"wasted_{cause}"]) == want, (i, cause)
        made = sum(len(v.content) for v in VERSIONS if v.fate and v.fate[1] == i)
        assert int(row["waste_made"]) == made, f"waste made by layer {i}"
    assert int(per["wasted_bytes"].sum()) == b.wasted_bytes
    assert int(per["waste_made"].sum()) == b.wasted_bytes


def test_by_cause(bloat_image: ocilens.Image) -> None:
    got = {(str(r.cause), int(r.by_layer), r.by_created_by): (int(r.files), int(r.bytes))
           for r in bloat_image.bloat().by_cause.itertuples(index=False)}
    want: dict[tuple, list[int]] = {}
    for v in VERSIONS:
        if v.fate:
            acc = want.setdefault((v.fate[0], v.fate[1], CREATED_BY[v.fate[1]]), [0, 0])
            acc[0] += 1
            acc[1] += len(v.content)
    assert got == {k: tuple(v) for k, v in want.items()}


def test_duplicates_are_reported_beside_waste(bloat_image: ocilens.Image) -> None:
    b = bloat_image.bloat()
    d = b.duplicates
    # one group: DUP at /srv/one and /srv/two. Not the hardlinked pair /opt/h1 /opt/h2 (one inode), and
    # not the two empty files (no bytes to save).
    assert len(d) == 1
    row = d.iloc[0]
    assert row["digest"] == sha(DUP)
    assert (int(row["size"]), int(row["copies"]), int(row["savable_bytes"])) == (len(DUP), 2, len(DUP))
    assert list(row["paths"]) == ["/srv/one", "/srv/two"]
    # duplicates are visible bytes: not in the waste
    assert not b.causes["path"].isin(["/srv/one", "/srv/two"]).any()
    assert b.summary()["duplicate_bytes"] == len(DUP)


def test_junk_still_visible(bloat_image: ocilens.Image) -> None:
    b = bloat_image.bloat()
    got = sorted((r.path, r.kind, int(r.size), int(r.layer)) for r in b.junk.itertuples(index=False))
    assert got == sorted([
        (DEB_PATH, "apt_cache", len(DEB), 4),
        (LISTS_PATH, "apt_lists", len(LISTS), 4),
        (ORPHAN_PYC, "orphan_bytecode", len(X_PYC), 0),  # its x.py was removed by layer 5
    ])  # y.cpython-311.pyc keeps its y.py: not junk
    assert b.summary()["junk_bytes"] == len(DEB) + len(LISTS) + len(X_PYC)
    # junk is visible: none of it is waste
    assert not b.causes["path"].isin([DEB_PATH, LISTS_PATH, ORPHAN_PYC]).any()


def test_summary_and_repr(bloat_image: ocilens.Image) -> None:
    b = bloat_image.bloat()
    s = b.summary()
    shipped, visible, wasted = expected_totals(VERSIONS)
    assert s["shipped_bytes"] == shipped and s["visible_bytes"] == visible and s["wasted_bytes"] == wasted
    assert s["efficiency"] == pytest.approx(visible / shipped)
    d = b.dive
    assert (s["dive_efficiency"], s["dive_wasted_bytes"]) == (d.efficiency, d.wasted_bytes)
    assert bloat_image.bloat() is b  # cached on the image
    assert "efficiency" in repr(b)


# --------------------------------------------------------------------------- hardlinks, opaque, edge cases


def test_hardlink_counts_once(tmp_path: Path) -> None:
    a = blob(4000, "a")
    img = load_tars(tmp_path, [Entry.dir("lib"), Entry.file("lib/a", a), Entry.hardlink("lib/b", "lib/a"),
                               Entry.hardlink("lib/c", "lib/a")])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes, b.efficiency) == (4000, 4000, 0, 1.0)
    assert b.causes.empty and b.duplicates.empty


def test_hardlink_keeps_content_visible_after_original_is_deleted(tmp_path: Path) -> None:
    a, c = blob(4000, "a"), blob(10, "c")
    base = [Entry.dir("lib"), Entry.file("lib/a", a), Entry.hardlink("lib/b", "lib/a"), Entry.file("lib/c", c)]
    img = load_tars(tmp_path, base, [Entry.whiteout("lib/a")])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes) == (4010, 4010, 0)
    assert b.efficiency == 1.0
    assert b.causes.empty
    # ... until the last name goes: then every byte of it is waste, made by that layer
    img = load_tars(tmp_path, base, [Entry.whiteout("lib/a")], [Entry.whiteout("lib/b")],
                    history=["base", "rm a", "rm b"])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes) == (4010, 10, 4000)
    assert causes_rows(b) == [("/lib/a", 0, 4000, "deleted_later", 2)]
    assert b.causes.iloc[0]["by_created_by"] == "rm b"


def test_hardlink_to_a_lower_layer_file(tmp_path: Path) -> None:
    """A hardlink in layer 1 to a layer-0 file ships no bytes; overwriting one name keeps the other's bytes."""
    a, a2 = blob(300, "a"), blob(200, "a2")
    img = load_tars(tmp_path, [Entry.file("a", a)], [Entry.hardlink("b", "a")], [Entry.file("a", a2)])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes) == (500, 500, 0)
    assert b.causes.empty
    layers = img.layers
    assert list(layers["shipped_bytes"]) == [300, 0, 200]


def test_opaque_directory_waste(tmp_path: Path) -> None:
    old1, old2, other, new = blob(600, "old1"), blob(400, "old2"), blob(50, "other"), blob(70, "new")
    img = load_tars(tmp_path,
                    [Entry.dir("d"), Entry.file("d/old1", old1), Entry.dir("d/sub"), Entry.file("d/sub/old2", old2),
                     Entry.dir("e"), Entry.file("e/other", other)],
                    # d/old1 comes back with the same bytes (only its mode differs): metadata_only
                    [Entry.dir("d"), Entry.file("d/new", new), Entry.file("d/old1", old1, mode=0o600),
                     Entry.opaque("d")],
                    history=["base", "opaque d"])
    b = img.bloat()
    shipped = 600 + 400 + 50 + 70 + 600
    visible = 50 + 70 + 600
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes) == (shipped, visible, shipped - visible)
    assert causes_rows(b) == sorted([("/d/old1", 0, 600, "metadata_only", 1),
                                     ("/d/sub/old2", 0, 400, "deleted_later", 1)])


def test_file_replaced_by_directory_and_parent_replaced_by_file(tmp_path: Path) -> None:
    """A file whose path becomes a directory is overwritten; files under a directory that becomes a file
    are deleted with it."""
    f, g, h, x = blob(123, "f"), blob(45, "g"), blob(67, "h"), blob(8, "x")
    img = load_tars(tmp_path, [Entry.file("f", f), Entry.dir("d"), Entry.file("d/g", g), Entry.file("d/h", h)],
                    [Entry.dir("f"), Entry.file("f/inner", x), Entry.file("d", x)])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes) == (123 + 45 + 67 + 16, 16)
    assert causes_rows(b) == sorted([("/f", 0, 123, "overwritten", 1), ("/d/g", 0, 45, "deleted_later", 1),
                                     ("/d/h", 0, 67, "deleted_later", 1)])


def test_same_layer_removal_is_not_waste_of_that_layer(tmp_path: Path) -> None:
    """A whiteout never removes an entry of its own layer (docs/layer-rules.md "Whiteouts"): the new file stays."""
    v1, v2 = blob(90, "v1"), blob(91, "v2")
    img = load_tars(tmp_path, [Entry.file("x", v1)], [Entry.file("x", v2), Entry.whiteout("x")])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes) == (181, 91)
    # layer 1 both removed and rewrote /x: the old version was replaced by a new one at the same path
    assert causes_rows(b) == [("/x", 0, 90, "overwritten", 1)]


def test_entries_no_runtime_applies_are_waste_with_a_cause(tmp_path: Path) -> None:
    """A file entry the assembly skips (a parent that is a file, a symlink loop) ships and is never visible:
    it is waste, and ``causes`` says so (``unappliable``), so the causes add up to ``wasted_bytes``."""
    f, x, ok, y = blob(10, "f"), blob(100, "x"), blob(5, "ok"), blob(30, "y")
    img = load_tars(tmp_path, [Entry.file("f", f), Entry.symlink("loop", "loop")],
                    [Entry.file("f/x", x), Entry.file("ok", ok), Entry.file("loop/y", y)],
                    history=["base", "COPY . /"])
    assert set(img.anomalies["kind"]) == {"parent_not_directory", "symlink_loop"}
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes) == (145, 15, 130)
    assert causes_rows(b) == sorted([("/f/x", 1, 100, "unappliable", 1), ("/loop/y", 1, 30, "unappliable", 1)])
    assert int(b.causes["size"].sum()) == b.wasted_bytes
    assert list(b.per_layer["wasted_unappliable"]) == [0, 130]
    assert b.causes["by_created_by"].tolist() == ["COPY . /", "COPY . /"]
    advice = b.advice
    assert advice.set_index("kind").at["unappliable", "bytes_saved"] == 130


def test_image_without_files(tmp_path: Path) -> None:
    img = load_tars(tmp_path, [Entry.dir("etc"), Entry.symlink("bin", "usr/bin")])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes, b.efficiency) == (0, 0, 0, 1.0)
    assert b.causes.empty and b.duplicates.empty and b.junk.empty and b.by_cause.empty
    assert list(b.per_layer["waste_made"]) == [0]
    assert not math.isnan(b.summary()["efficiency"])


def test_sample_image_is_consistent() -> None:
    """The bundled sample: totals add up across the frames (no construction to compare with here)."""
    img = ocilens.sample_image()
    b = img.bloat()
    assert b.wasted_bytes == int(b.causes["size"].sum()) == int(b.per_layer["wasted_bytes"].sum())
    assert b.wasted_download_bytes == int(b.causes["compressed_bytes"].sum())
    assert b.shipped_bytes == int(sum(len_ for s in img.scans for len_, t in zip(s.sizes, s.types) if t == "f"))
    assert set(b.causes["cause"].astype(str)) <= {"deleted_later", "overwritten", "metadata_only", "unappliable"}
    assert (b.causes["by_layer"] >= b.causes["layer"]).all()


def test_hardlinked_junk_counts_once(tmp_path: Path) -> None:
    """Two names of one cached .deb: the junk is its bytes once (hardlinked content counts once), and the
    surviving name of a hardlink whose first name was removed is a plain duplicate of a separate copy."""
    deb, c = blob(500, "deb"), blob(700, "c")
    img = load_tars(tmp_path,
                    [Entry.file("var/cache/apt/archives/p_1_amd64.deb", deb),
                     Entry.hardlink("var/cache/apt/archives/q_1_amd64.deb", "var/cache/apt/archives/p_1_amd64.deb"),
                     Entry.file("lib/a", c), Entry.hardlink("lib/b", "lib/a"), Entry.file("x", c)],
                    [Entry.whiteout("lib/a")])
    b = img.bloat()
    assert (b.shipped_bytes, b.visible_bytes, b.wasted_bytes) == (500 + 700 + 700, 500 + 700 + 700, 0)
    assert b.summary()["junk_bytes"] == len(deb)
    assert set(b.junk["kind"]) == {"apt_cache"}
    d = b.duplicates
    assert [(list(r.paths), int(r.savable_bytes)) for r in d.itertuples()] == [(["/lib/b", "/x"], len(c))]
