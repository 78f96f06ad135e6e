"""Diffs (issue 4, part 3): what one layer did to the stack below (``img.layer_diff(i)``), and how two
images differ (``img.diff(other)``: final-tree files with size deltas, layers shared by digest, config and
history), and ``ocilens diff A B --json/--csv``.

The images are built with umoci from a list of known changes; every expected row is derived from that
list. Layer digests and configs are read from the layouts themselves (``manifest_of``/``config_of``), not
from ocilens.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ocilens
from imagebuild import (EPOCH, EmptyLayer, Entry, Layer, Op, config_of, layout_from_tars, manifest_of, tar_layer,
                        umoci_image, umoci_unpack)

FLAGS = ("type_changed", "content_changed", "mode_changed", "owner_changed", "linkname_changed")


def blob(n: int, seed: str) -> bytes:
    unit = hashlib.sha256(seed.encode()).digest()
    return (unit * (n // len(unit) + 1))[:n]


def na(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def flags_of(row: Any) -> set[str] | None:
    """The names of the attributes flagged as changed, or None when every flag is NA (added/removed)."""
    values = {f: row[f] for f in FLAGS}
    if all(na(v) for v in values.values()):
        return None
    assert not any(na(v) for v in values.values()), f"mixed NA flags for {row['path']}: {values}"
    return {f for f, v in values.items() if bool(v)}


def rows_by_path(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    assert not df["path"].duplicated().any()
    return {r["path"]: r for r in df.to_dict("records")}


# ------------------------------------------------------------------------------------------ layer_diff

CONF1, CONF2 = blob(1000, "conf1"), blob(1200, "conf2")
RUN_SH, OWN, THING, INNER, NEW = blob(300, "run"), blob(50, "own"), blob(20, "thing"), blob(10, "inner"), blob(30, "new")
D1, D2 = blob(2000, "d1"), blob(3000, "d2")

LAYER_STEPS = [
    Layer("base", [Op.write("/etc/conf", CONF1), Op.write("/app/run.sh", RUN_SH, mode=0o644),
                   Op.write("/app/own", OWN), Op.symlink("/app/link", "target1"),
                   Op.write("/app/thing", THING, mode=0o644), Op.write("/data/d1", D1), Op.write("/data/sub/d2", D2)]),
    Layer("RUN chmod 755 /app/run.sh", [Op.chmod("/app/run.sh", 0o755)]),
    Layer("RUN chown 1000:1000 /app/own", [Op.chown("/app/own", 1000, 1000)]),
    Layer("RUN ln -sf target2 /app/link", [Op.remove("/app/link"), Op.symlink("/app/link", "target2")]),
    Layer("RUN rm /app/thing && mkdir /app/thing", [Op.remove("/app/thing"), Op.mkdir("/app/thing", 0o755),
                                                    Op.write("/app/thing/inner", INNER)]),
    Layer("RUN rm -rf /data", [Op.remove("/data")]),
    Layer("RUN echo v2 > /etc/conf", [Op.write("/etc/conf", CONF2), Op.write("/etc/new", NEW)]),
]

# layer -> path -> (change, flags set or None, type, prev_type, size, prev_size)
LAYER_EXPECT: dict[int, dict[str, tuple]] = {
    1: {"/app/run.sh": ("modified", {"mode_changed"}, "file", "file", 300, 300)},
    2: {"/app/own": ("modified", {"owner_changed"}, "file", "file", 50, 50)},
    3: {"/app/link": ("modified", {"linkname_changed", "content_changed"}, "symlink", "symlink", 0, 0)},
    4: {"/app/thing": ("modified", {"type_changed", "content_changed", "mode_changed"}, "dir", "file", 0, 20),
        "/app/thing/inner": ("added", None, "file", None, 10, None)},
    5: {"/data": ("removed", None, None, "dir", None, 0), "/data/d1": ("removed", None, None, "file", None, 2000),
        "/data/sub": ("removed", None, None, "dir", None, 0),
        "/data/sub/d2": ("removed", None, None, "file", None, 3000)},
    6: {"/etc/conf": ("modified", {"content_changed"}, "file", "file", 1200, 1000),
        "/etc/new": ("added", None, "file", None, 30, None)},
}


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> ocilens.Image:
    layout = umoci_image(tmp_path_factory.mktemp("layered"), LAYER_STEPS)
    return ocilens.load(f"oci:{layout}:t", cache=False)


def test_layer_diff_base_layer_adds_everything(layered: ocilens.Image) -> None:
    d = layered.layer_diff(0)
    assert set(d["change"].astype(str)) == {"added"}
    files = rows_by_path(d)
    for path, content in (("/etc/conf", CONF1), ("/app/run.sh", RUN_SH), ("/data/sub/d2", D2)):
        assert int(files[path]["size"]) == len(content) == int(files[path]["size_delta"])
    assert files["/app/link"]["linkname"] == "target1"
    assert {"/app", "/data", "/data/sub", "/etc"} <= set(files)


@pytest.mark.parametrize("layer", sorted(LAYER_EXPECT))
def test_layer_diff_changes_and_attributes(layered: ocilens.Image, layer: int) -> None:
    d = layered.layer_diff(layer)
    got = {}
    for path, r in rows_by_path(d).items():
        got[path] = (str(r["change"]), flags_of(r), None if na(r["type"]) else str(r["type"]),
                     None if na(r["prev_type"]) else str(r["prev_type"]),
                     None if na(r["size"]) else int(r["size"]), None if na(r["prev_size"]) else int(r["prev_size"]))
    assert got == LAYER_EXPECT[layer]
    for path, r in rows_by_path(d).items():
        size = LAYER_EXPECT[layer][path][4] or 0
        prev = LAYER_EXPECT[layer][path][5] or 0
        assert int(r["size_delta"]) == size - prev, path


def test_layer_diff_removed_rows_carry_the_cause(layered: ocilens.Image) -> None:
    d = layered.layer_diff(5)
    assert set(d["cause"].astype(str)) == {"whiteout"}
    assert int(d["size_delta"].sum()) == -(len(D1) + len(D2))


def test_layer_diff_owner_and_link_values(layered: ocilens.Image) -> None:
    own = rows_by_path(layered.layer_diff(2))["/app/own"]
    assert (int(own["uid"]), int(own["gid"])) == (1000, 1000)
    link = rows_by_path(layered.layer_diff(3))["/app/link"]
    assert link["linkname"] == "target2"


def test_layer_diff_unchanged_rows_on_request(layered: ocilens.Image) -> None:
    """umoci re-lists /app when its mtime changes: an 'unchanged' row, hidden unless asked for."""
    d = layered.layer_diff(3, include_unchanged=True)
    rows = rows_by_path(d)
    assert str(rows["/app"]["change"]) == "unchanged"
    assert flags_of(rows["/app"]) == set()
    assert "/app" not in set(layered.layer_diff(3)["path"])


def test_layer_diff_negative_index_and_out_of_range(layered: ocilens.Image) -> None:
    n = len(LAYER_STEPS)
    pd.testing.assert_frame_equal(layered.layer_diff(-1), layered.layer_diff(n - 1))
    for bad in (n, n + 5, -n - 1):
        with pytest.raises(ocilens.AnalysisError) as exc:
            layered.layer_diff(bad)
        assert str(n - 1) in str(exc.value)


def test_layer_diff_tar_layer_cases(tmp_path: Path) -> None:
    """Hand-written tars: a symlink that changes target and mode, a dir that becomes a file, an opaque
    directory (removed rows with cause 'opaque'), a hardlink compared as the file it names."""
    a = blob(64, "a")
    layout = layout_from_tars(tmp_path, [
        tar_layer([Entry.symlink("s", "x"), Entry.dir("d"), Entry.file("d/f", a), Entry.dir("o"),
                   Entry.file("o/old", a), Entry.file("h", a)]),
        tar_layer([replace(Entry.symlink("s", "y"), mode=0o755), Entry.file("d", a[:7]), Entry.opaque("o"),
                   Entry.file("o/new", a), Entry.file("h2", a), Entry.hardlink("h", "h2")]),
    ])
    img = ocilens.load(f"oci:{layout}:t", cache=False)
    rows = rows_by_path(img.layer_diff(1))
    got = {p: (str(r["change"]), flags_of(r), None if na(r["cause"]) else str(r["cause"])) for p, r in rows.items()}
    assert got == {
        "/s": ("modified", {"linkname_changed", "content_changed", "mode_changed"}, None),
        "/d": ("modified", {"type_changed", "content_changed", "mode_changed"}, None),
        "/d/f": ("removed", None, "replaced"),
        "/o/old": ("removed", None, "opaque"),
        "/o/new": ("added", None, None),
        "/h2": ("added", None, None),
        # /h: a hardlink to /h2 over a file with the same bytes, mode and owner. The bytes compare equal,
        # but /h now names /h2's inode: its own 64 bytes are gone from the image (the link adds none).
        "/h": ("modified", {"linkname_changed"}, None),
    }
    h = rows["/h"]  # sizes of the two versions (the link's is its file's); the delta counts content bytes
    assert (str(h["type"]), h["linkname"], int(h["prev_size"]), int(h["size"]), int(h["size_delta"])) == (
        "hardlink", "/h2", len(a), len(a), -len(a))


def test_layer_diff_vocabulary_mtime_and_missing_values(tmp_path: Path) -> None:
    """One vocabulary (added / modified / removed) and one count: a directory listed again with only a new
    mtime is no change; a file listed again ships its bytes again, so it is a metadata-only change even
    with only a new mtime, as the audit counts its waste. Every column is nullable: missing is <NA>."""
    a = blob(64, "a")
    layout = layout_from_tars(tmp_path, [
        tar_layer([Entry.dir("d"), Entry.file("d/f", a), Entry.file("d/g", a[:9]), Entry.symlink("d/s", "f"),
                   Entry.file("d/gone", a[:5])]),
        tar_layer([Entry.dir("d", mtime=EPOCH + 9), Entry.file("d/f", a, mtime=EPOCH + 9),
                   Entry.file("d/g", a[:9], uid=1000, gid=1000), Entry.symlink("d/s", "f", mtime=EPOCH + 9),
                   Entry.whiteout("d/gone"), Entry.file("d/new", a[:3])]),
    ])
    img = ocilens.load(f"oci:{layout}:t", cache=False)
    d = img.layer_diff(1, include_unchanged=True)
    assert isinstance(d, ocilens.diff.LayerDiff) and isinstance(d, pd.DataFrame)
    rows = rows_by_path(d)
    assert {p: str(r["change"]) for p, r in rows.items()} == {
        "/d": "unchanged", "/d/s": "unchanged", "/d/f": "modified", "/d/g": "modified", "/d/gone": "removed",
        "/d/new": "added"}
    assert flags_of(rows["/d/f"]) == set() and bool(rows["/d/f"]["mtime_changed"]) is True
    assert flags_of(rows["/d/g"]) == {"owner_changed"}
    assert (int(rows["/d/g"]["prev_uid"]), int(rows["/d/g"]["uid"])) == (0, 1000)
    assert (rows["/d/gone"]["prev_type"], int(rows["/d/gone"]["prev_mode"]), int(rows["/d/gone"]["prev_size"])) == (
        "file", 0o644, 5)
    assert list(ocilens.diff.metadata_only(d)[d["path"].isin(["/d/f", "/d/g"])]) == [True, True]
    counts = ocilens.diff.change_counts(img.layer_diff(1))
    assert counts == ocilens.diff.change_counts(d) == {"added": 1, "modified": 2, "metadata_only": 2, "removed": 1}
    assert ocilens.diff.counts_text(counts) == "1 added, 2 modified (2 metadata only), 1 removed"
    causes = img.bloat().causes
    assert set(causes.loc[causes["cause"] == "metadata_only", "path"]) == {"/d/f", "/d/g"}  # the audit agrees
    for name, dtype in d.dtypes.items():
        assert name == "change" or str(dtype) in ("string", "Int64", "boolean"), (name, dtype)
    assert "NaN" not in d.to_string() and "<NA>" in d.to_string()
    files = img.diff(img).files
    assert all(name == "change" or str(t) in ("string", "Int64", "boolean") for name, t in files.dtypes.items())
    html = d._repr_html_()
    assert "1 added, 2 modified (2 metadata only), 1 removed" in html and "owner 0:0 → 1000:1000" in html
    assert "mtime only" in html and "/<wbr>d/<wbr>new" in html


# ------------------------------------------------------------------------------------------ image diff

OS_RELEASE, LIBC, SH, TOOL = blob(100, "os"), blob(5000, "libc"), blob(800, "sh"), blob(700, "tool")
MAIN1, MAIN2, OLD, NEWF, SAME = blob(1000, "main1"), blob(1500, "main2"), blob(300, "old"), blob(250, "new"), blob(40, "same")
RUN, CFG, CFGX, OWNED = blob(60, "run"), blob(25, "cfg"), blob(12, "cfgx"), blob(15, "owned")

BASE = [
    Layer("FROM debian:bookworm", [Op.write("/etc/os-release", OS_RELEASE), Op.write("/usr/lib/libc.so", LIBC),
                                   Op.write("/usr/bin/sh", SH, mode=0o755)]),
    Layer("RUN apt-get install -y tool", [Op.write("/usr/bin/tool", TOOL, mode=0o755)]),
]
CONFIG_A = {"User": "1000", "Env": ["A=1"], "Entrypoint": ["/app/main"], "WorkingDir": "/app",
            "Labels": {"version": "1"}, "ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/data": {}}}
CONFIG_B = {"User": "0:0", "Env": ["A=2"], "Entrypoint": ["/app/main", "--v2"], "WorkingDir": "/srv",
            "Labels": {"version": "2", "extra": "1"}, "ExposedPorts": {"9090/tcp": {}}, "Volumes": {"/cache": {}}}


def config_flags(cfg: dict[str, Any]) -> tuple[str, ...]:
    flags: list[str] = ["--config.user", cfg["User"], "--config.workingdir", cfg["WorkingDir"]]
    for e in cfg["Env"]:
        flags += ["--config.env", e]
    for e in cfg["Entrypoint"]:
        flags += ["--config.entrypoint", e]
    for k, v in cfg["Labels"].items():
        flags += ["--config.label", f"{k}={v}"]
    for p in cfg["ExposedPorts"]:
        flags += ["--config.exposedports", p]
    for v in cfg["Volumes"]:
        flags += ["--config.volume", v]
    return tuple(flags)


IMAGE_A = BASE + [
    Layer("COPY app/ /app/", [Op.write("/app/main", MAIN1, mode=0o755), Op.write("/app/old", OLD),
                              Op.write("/app/same", SAME), Op.write("/app/run.sh", RUN, mode=0o644),
                              Op.write("/app/cfg", CFG), Op.symlink("/app/current", "v1"),
                              Op.write("/app/owned", OWNED)]),
    EmptyLayer("CONFIG", config_flags(CONFIG_A)),
]
IMAGE_B = BASE + [
    Layer("COPY app-v2/ /app/", [Op.write("/app/main", MAIN2, mode=0o755), Op.write("/app/new", NEWF),
                                 Op.write("/app/same", SAME), Op.write("/app/run.sh", RUN, mode=0o755),
                                 Op.mkdir("/app/cfg"), Op.write("/app/cfg/x", CFGX),
                                 Op.symlink("/app/current", "v2"), Op.write("/app/owned", OWNED, uid=1000, gid=1000)]),
    EmptyLayer("CONFIG", config_flags(CONFIG_B)),
    Layer("RUN rm /usr/bin/tool", [Op.remove("/usr/bin/tool")]),
]
HISTORY_A = [s.created_by for s in IMAGE_A]
HISTORY_B = [s.created_by for s in IMAGE_B]

# path -> (change, flags or None, size, prev_size) for a.diff(b)
FILES_EXPECT: dict[str, tuple] = {
    "/app/main": ("modified", {"content_changed"}, len(MAIN2), len(MAIN1)),
    "/app/old": ("removed", None, None, len(OLD)),
    "/app/new": ("added", None, len(NEWF), None),
    "/app/run.sh": ("modified", {"mode_changed"}, len(RUN), len(RUN)),
    "/app/cfg": ("modified", {"type_changed", "content_changed", "mode_changed"}, 0, len(CFG)),
    "/app/cfg/x": ("added", None, len(CFGX), None),
    "/app/current": ("modified", {"linkname_changed", "content_changed"}, 0, 0),
    "/app/owned": ("modified", {"owner_changed"}, len(OWNED), len(OWNED)),
    "/usr/bin/tool": ("removed", None, None, len(TOOL)),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ocilens.Image, ocilens.Image]:
    work = tmp_path_factory.mktemp("pair")
    la = umoci_image(work, IMAGE_A, tag="a")
    lb = umoci_image(work, IMAGE_B, tag="b")
    return la, lb, ocilens.load(f"oci:{la}:a", cache=False), ocilens.load(f"oci:{lb}:b", cache=False)


def files_view(df: pd.DataFrame) -> dict[str, tuple]:
    return {p: (str(r["change"]), flags_of(r), None if na(r["size"]) else int(r["size"]),
                None if na(r["prev_size"]) else int(r["prev_size"])) for p, r in rows_by_path(df).items()}


def test_image_diff_files(pair) -> None:
    _, _, a, b = pair
    d = a.diff(b)
    assert files_view(d.files) == FILES_EXPECT
    for path, r in rows_by_path(d.files).items():
        size, prev = FILES_EXPECT[path][2] or 0, FILES_EXPECT[path][3] or 0
        assert int(r["size_delta"]) == size - prev, path
    s = d.summary()
    assert (s["added"], s["modified"], s["removed"]) == tuple(
        sum(v[0] == k for v in FILES_EXPECT.values()) for k in ("added", "modified", "removed"))
    assert s["size_delta"] == sum((v[2] or 0) - (v[3] or 0) for v in FILES_EXPECT.values())
    assert not d.empty


def test_image_diff_attribute_values(pair) -> None:
    _, _, a, b = pair
    rows = rows_by_path(a.diff(b).files)
    assert (int(rows["/app/run.sh"]["prev_mode"]), int(rows["/app/run.sh"]["mode"])) == (0o644, 0o755)
    assert (rows["/app/current"]["prev_linkname"], rows["/app/current"]["linkname"]) == ("v1", "v2")
    assert (str(rows["/app/cfg"]["prev_type"]), str(rows["/app/cfg"]["type"])) == ("file", "dir")


def test_image_diff_unchanged_on_request(pair) -> None:
    _, _, a, b = pair
    rows = rows_by_path(a.diff(b, include_unchanged=True).files)
    assert str(rows["/app/same"]["change"]) == "unchanged"
    assert str(rows["/usr/lib/libc.so"]["change"]) == "unchanged"
    assert int(rows["/app/same"]["size_delta"]) == 0


def test_image_diff_is_antisymmetric(pair) -> None:
    _, _, a, b = pair
    fwd = files_view(a.diff(b).files)
    back = files_view(b.diff(a).files)
    swap = {"added": "removed", "removed": "added", "modified": "modified"}
    assert back == {p: (swap[c], f, prev, size) for p, (c, f, size, prev) in fwd.items()}


def test_image_diff_shared_layers(pair) -> None:
    la, lb, a, b = pair
    ma, mb = manifest_of(la, "a")["layers"], manifest_of(lb, "b")["layers"]
    # the two base layers are the same blobs in both images; the app layers differ
    assert [x["digest"] for x in ma[:2]] == [x["digest"] for x in mb[:2]]
    shared = a.diff(b).shared_layers
    assert list(shared["digest"]) == [x["digest"] for x in ma[:2]]
    assert list(shared["layer_a"]) == [0, 1] and list(shared["layer_b"]) == [0, 1]
    assert list(shared["compressed_size"]) == [x["size"] for x in ma[:2]]


def test_image_diff_config(pair) -> None:
    la, lb, a, b = pair
    assert {k: config_of(la, "a")["config"].get(k) for k in CONFIG_A} == CONFIG_A  # the build did what we asked
    assert {k: config_of(lb, "b")["config"].get(k) for k in CONFIG_B} == CONFIG_B
    cfg = a.diff(b).config
    got = {r.field: (json.loads(r.a), json.loads(r.b)) for r in cfg.itertuples(index=False)}
    assert got == {k: (CONFIG_A[k], CONFIG_B[k]) for k in CONFIG_A}


def test_image_diff_history(pair) -> None:
    _, _, a, b = pair
    h = a.diff(b).history
    got = [(r.change, None if na(r.a) else r.a, None if na(r.b) else r.b) for r in h.itertuples(index=False)]
    # A: FROM, RUN tool, COPY app/, CONFIG      B: FROM, RUN tool, COPY app-v2/, CONFIG, RUN rm
    assert got == [("changed", HISTORY_A[2], HISTORY_B[2]), ("added", None, HISTORY_B[4])]
    back = b.diff(a).history
    assert [(r.change, None if na(r.a) else r.a, None if na(r.b) else r.b) for r in back.itertuples(index=False)] == \
        [("changed", HISTORY_B[2], HISTORY_A[2]), ("removed", HISTORY_B[4], None)]


def test_diff_with_itself_is_empty(pair) -> None:
    la, _, a, _ = pair
    d = a.diff(a)
    assert d.empty
    assert d.files.empty and d.config.empty and d.history.empty
    assert len(d.shared_layers) == len(manifest_of(la, "a")["layers"])
    again = ocilens.load(f"oci:{la}:a", cache=False)
    assert a.diff(again).empty
    s = d.summary()
    assert (s["added"], s["modified"], s["removed"], s["size_delta"]) == (0, 0, 0, 0)


def test_diff_repr(pair) -> None:
    _, _, a, b = pair
    text = repr(a.diff(b))
    assert "added" in text and "shared layers" in text


# -------------------------------------------------------------------------------------------- the CLI


def test_cli_diff_writes_json_and_csv(pair, tmp_path: Path) -> None:
    la, lb, a, b = pair
    out_json, out_csv = tmp_path / "d.json", tmp_path / "d.csv"
    proc = subprocess.run([sys.executable, "-m", "ocilens", "diff", f"oci:{la}:a", f"oci:{lb}:b",
                           "--json", str(out_json), "--csv", str(out_csv)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    d = a.diff(b)
    assert "/app/main" in proc.stdout
    doc = json.loads(out_json.read_text())
    assert doc["summary"] == d.summary()
    got = {r["path"]: (r["change"], r["size"], r["prev_size"], r["size_delta"]) for r in doc["files"]}
    want = {p: (v[0], v[2], v[3], (v[2] or 0) - (v[3] or 0)) for p, v in FILES_EXPECT.items()}
    assert got == want
    flags = {r["path"]: {f for f in FLAGS if r[f]} if r["change"] == "modified" else None for r in doc["files"]}
    assert flags == {p: v[1] for p, v in FILES_EXPECT.items()}
    assert [x["digest"] for x in doc["shared_layers"]] == list(d.shared_layers["digest"])
    assert {r["field"] for r in doc["config"]} == set(CONFIG_A)
    assert [(r["change"], r["a"], r["b"]) for r in doc["history"]] == \
        [("changed", HISTORY_A[2], HISTORY_B[2]), ("added", None, HISTORY_B[4])]
    csv = pd.read_csv(out_csv)
    assert sorted(csv["path"]) == sorted(FILES_EXPECT)
    assert dict(zip(csv["path"], csv["change"])) == {p: v[0] for p, v in FILES_EXPECT.items()}
    assert dict(zip(csv["path"], csv["size_delta"].astype(int))) == {p: want[p][3] for p in want}
    assert list(csv.columns) == list(d.files.columns)


def test_cli_diff_bad_reference_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ocilens", "diff", f"oci:{tmp_path}/nope:a", f"oci:{tmp_path}/nope:b"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "ocilens: error" in proc.stderr


def test_history_diff_labels_match_their_sides(tmp_path: Path) -> None:
    """A history row is 'changed' when both sides have a step, 'removed' when only A has one and 'added'
    when only B has one, also when the two sides of a difference have different lengths."""
    tars = [tar_layer([Entry.file("f", b"x")])]
    la = layout_from_tars(tmp_path, tars, history=["FROM base", {"created_by": "RUN a", "empty_layer": True},
                                                   {"created_by": "RUN b", "empty_layer": True}])
    lb = layout_from_tars(tmp_path, tars, history=["FROM base", {"created_by": "RUN c", "empty_layer": True}])
    a, b = ocilens.load(f"oci:{la}:t", cache=False), ocilens.load(f"oci:{lb}:t", cache=False)
    d = a.diff(b)
    assert d.files.empty and len(d.shared_layers) == 1
    rows = [(r.change, None if na(r.a) else r.a, None if na(r.b) else r.b) for r in d.history.itertuples(index=False)]
    assert {r[1] for r in rows} - {None} == {"RUN a", "RUN b"} and {r[2] for r in rows} - {None} == {"RUN c"}
    for change, old, new in rows:
        assert change == {(True, True): "changed", (True, False): "removed", (False, True): "added"}[
            (old is not None, new is not None)], rows


# ------------------------------------------------------------------------ hardlinks add no content bytes
#
# A hardlink is another name of bytes some other path already carries: a diff's size_delta counts it 0, as
# the bloat audit's visible bytes count each inode once (its size column shows the size of the file it
# names, as in files and events). The truth is umoci's own extraction: the regular-file bytes of the
# unpacked rootfs, each inode (st_ino) once.


def content_bytes(rootfs: Path) -> int:
    """The regular-file bytes of an unpacked rootfs, each inode once."""
    inodes: dict[tuple[int, int], int] = {}
    for dirpath, _dirs, names in os.walk(rootfs):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                inodes[(st.st_dev, st.st_ino)] = st.st_size
    return sum(inodes.values())


BIG1, BIG2, SMALL = blob(3_000_000, "big1"), blob(2_000_000, "big2"), blob(1234, "small")
HL_BASE = [Layer("ADD rootfs /", [Op.write("/opt/big1", BIG1), Op.write("/opt/big2", BIG2),
                                  Op.write("/opt/copy", BIG2), Op.write("/etc/os-release", OS_RELEASE)])]
# image B: the base, then hardlinks to the large files already there, and one small new regular file
LINKS = {"/opt/big1.link": "/opt/big1", "/usr/lib/big1": "/opt/big1", "/usr/lib/big2": "/opt/big2"}
HL_B = HL_BASE + [Layer("RUN ln ... && echo small > /opt/small.txt",
                        [*(Op.hardlink(p, t) for p, t in LINKS.items()), Op.write("/opt/small.txt", SMALL)])]
# image C: the base, then the separate copy of big2 replaced by a hardlink to it (what a build that links
# identical files does, where another build copies them)
HL_C = HL_BASE + [Layer("RUN ln -f /opt/big2 /opt/copy",
                        [Op.remove("/opt/copy"), Op.hardlink("/opt/copy", "/opt/big2")])]


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, ocilens.Image, int]]:
    """name -> (layout, tag, image, the truth: umoci unpack's regular-file bytes, each inode once)."""
    work = tmp_path_factory.mktemp("linked")
    out = {}
    for tag, steps in (("a", HL_BASE), ("b", HL_B), ("c", HL_C)):
        layout = umoci_image(work, steps, tag=tag)
        truth = content_bytes(umoci_unpack(layout, tag, work / f"unpacked-{tag}"))
        out[tag] = (layout, tag, ocilens.load(f"oci:{layout}:{tag}", cache=False), truth)
    return out


def test_hardlinks_to_existing_files_add_no_bytes(linked) -> None:
    """B adds three hardlinks (8 MB, counted at their files' sizes) to files A already has, and one small
    file: the image grew by the small file's bytes, as the bloat audit and umoci's extraction both say."""
    (_, _, a, truth_a), (_, _, b, truth_b) = linked["a"], linked["b"]
    assert (truth_a, truth_b - truth_a) == (len(BIG1) + 2 * len(BIG2) + len(OS_RELEASE), len(SMALL))  # the build
    d = a.diff(b)
    s = d.summary()
    assert s["size_delta"] == len(SMALL)
    assert s["size_delta"] == b.bloat().visible_bytes - a.bloat().visible_bytes
    assert s["size_delta"] == truth_b - truth_a
    assert int(d.files["size_delta"].sum()) == s["size_delta"]
    rows = rows_by_path(d.files)
    assert set(rows) == {*LINKS, "/opt/small.txt", "/usr", "/usr/lib"}
    # Each link is listed, added, with its target: the size of the file it names, and no bytes of its own.
    sizes = {"/opt/big1": len(BIG1), "/opt/big2": len(BIG2)}
    for path, target in LINKS.items():
        r = rows[path]
        assert (str(r["change"]), str(r["type"]), r["linkname"], int(r["size"]), int(r["size_delta"])) == (
            "added", "hardlink", target, sizes[target], 0), path
    small = rows["/opt/small.txt"]
    assert (str(small["change"]), int(small["size"]), int(small["size_delta"])) == ("added", len(SMALL), len(SMALL))
    # And back: the same bytes, the other way.
    back = b.diff(a).summary()
    assert back["size_delta"] == -len(SMALL) == a.bloat().visible_bytes - b.bloat().visible_bytes


def test_a_copy_replaced_by_a_hardlink_frees_its_bytes(linked) -> None:
    """/opt/copy, a separate copy of /opt/big2 in A, is a hardlink to it in C: same bytes, same path,
    yet C holds one copy less. The row is listed (its link target changed) and carries the bytes."""
    (_, _, a, truth_a), (_, _, c, truth_c) = linked["a"], linked["c"]
    assert truth_c - truth_a == -len(BIG2)  # the build did what we asked
    d = a.diff(c)
    assert d.summary()["size_delta"] == truth_c - truth_a == c.bloat().visible_bytes - a.bloat().visible_bytes
    rows = rows_by_path(d.files)
    assert set(rows) == {"/opt/copy"}  # /opt/big2 is the file it was (umoci re-ships it: same bytes, mode, owner)
    link = rows["/opt/copy"]
    assert (str(link["change"]), flags_of(link), str(link["prev_type"]), str(link["type"]), link["linkname"]) == (
        "modified", {"linkname_changed"}, "file", "hardlink", "/opt/big2")
    assert (int(link["prev_size"]), int(link["size"]), int(link["size_delta"])) == (len(BIG2), len(BIG2), -len(BIG2))
    back = rows_by_path(c.diff(a).files)["/opt/copy"]  # and back: a hardlink becomes a file of its own again
    assert (str(back["change"]), flags_of(back), int(back["size_delta"])) == (
        "modified", {"linkname_changed"}, len(BIG2))


def test_layer_diffs_of_a_hardlinked_build_add_up(linked) -> None:
    """Each layer's diff adds up to what that layer did to the visible bytes, the hardlink layer too."""
    for tag in ("b", "c"):
        _, _, img, truth = linked[tag]
        deltas = [int(img.layer_diff(i)["size_delta"].sum()) for i in range(len(img.scans))]
        assert sum(deltas) == img.bloat().visible_bytes == truth, tag
    _, _, b, _ = linked["b"]
    top = rows_by_path(b.layer_diff(-1, include_unchanged=True))
    assert int(sum(r["size_delta"] for r in top.values())) == len(SMALL)
    for path in LINKS:
        assert (str(top[path]["type"]), int(top[path]["size_delta"])) == ("hardlink", 0), path


# Hand-written layers for what a build tool rarely writes but a tar may hold: a hardlinked file's first
# name removed while another name stays, a file overwritten under a surviving link, a link broken by a
# re-listed file, links removed one by one, a link that keeps a file its own layer replaced.
A, C_OLD, C_NEW, E = b"A" * 1000, b"c" * 300, b"C" * 70, b"e" * 50
H1, H2 = b"h" * 10, b"H" * 20
LINK_LAYERS = [
    [Entry.dir("opt"), Entry.file("opt/a", A), Entry.hardlink("opt/b", "opt/a"), Entry.file("opt/c", C_OLD),
     Entry.hardlink("opt/d", "opt/c"), Entry.file("opt/e", E)],
    # /opt/a goes, /opt/b keeps its bytes; /opt/c gets new bytes, /opt/d keeps the old; /opt/f links /opt/e
    [Entry.whiteout("opt/a"), Entry.file("opt/c", C_NEW), Entry.hardlink("opt/f", "opt/e")],
    # the last name of A's bytes goes; /opt/e re-listed (new mtime only): now a copy apart from /opt/f
    [Entry.whiteout("opt/b"), Entry.file("opt/e", E, mtime=EPOCH + 5)],
    # the last names of C_OLD and of the first E go; a link to the new /opt/c adds nothing
    [Entry.whiteout("opt/d"), Entry.whiteout("opt/f"), Entry.hardlink("opt/g", "opt/c")],
    # /opt/i links the first /opt/h, which this layer then replaces: /opt/i alone keeps H1
    [Entry.file("opt/h", H1), Entry.hardlink("opt/i", "opt/h"), Entry.file("opt/h", H2)],
]
LINK_DELTAS = [len(A) + len(C_OLD) + len(E), len(C_NEW), -len(A) + len(E), -len(C_OLD) - len(E), len(H1) + len(H2)]


def test_layer_diffs_with_hardlinks_match_umoci(tmp_path: Path) -> None:
    """Per layer: the layer diff's size delta is the change of umoci's extracted bytes (each inode once)
    from the image without that layer to the image with it, and so is the image diff of the two."""
    tars = [tar_layer(entries) for entries in LINK_LAYERS]
    images, truth = [], []
    for k in range(1, len(tars) + 1):
        layout = layout_from_tars(tmp_path, tars[:k])
        truth.append(content_bytes(umoci_unpack(layout, "t", tmp_path / f"unpacked-{k}")))
        images.append(ocilens.load(f"oci:{layout}:t", cache=False))
    steps = [truth[0]] + [truth[k] - truth[k - 1] for k in range(1, len(truth))]
    assert steps == LINK_DELTAS  # the layers do what the comments say, as umoci applies them
    img = images[-1]
    for k, want in enumerate(LINK_DELTAS):
        d = img.layer_diff(k)
        assert int(d["size_delta"].sum()) == want, f"layer {k}: {d[['path', 'change', 'size', 'prev_size']]}"
        assert images[k].bloat().visible_bytes == truth[k]
        if k:
            assert images[k - 1].diff(images[k]).summary()["size_delta"] == want, f"image diff to layer {k}"
    rows = {k: rows_by_path(img.layer_diff(k)) for k in range(len(LINK_LAYERS))}
    assert int(rows[1]["/opt/a"]["size_delta"]) == 0  # its bytes live on as /opt/b
    assert int(rows[2]["/opt/b"]["size_delta"]) == -len(A)  # until the last name goes
    e = rows[2]["/opt/e"]  # the same bytes, mode and owner: but now a second copy of them
    assert (str(e["change"]), flags_of(e), int(e["size_delta"])) == ("modified", set(), len(E))
    assert int(rows[3]["/opt/g"]["size_delta"]) == 0 and str(rows[3]["/opt/g"]["type"]) == "hardlink"


# ------------------------------------------------------------------------ layer_diff's index, built once

def _plain(v: Any) -> Any:
    """A cell as a plain Python value (None for any missing value), for comparing across dtypes."""
    return None if na(v) else (int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))


def test_layer_diff_builds_its_version_index_once_per_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every layer's diff reads the previous versions from one (layer, path) index, built once per image; the
    prev_* values agree with a plain lookup in ``img.events`` and the frames equal an uncached recomputation."""
    import ocilens.diff as diff_mod

    img = ocilens.sample_image(cache=False, progress=False)
    n = len(img.scans)
    calls: list[int] = []
    real = diff_mod._build_versions

    def counting(events: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(events))
        return real(events)

    monkeypatch.setattr(diff_mod, "_build_versions", counting)
    cached = [img.layer_diff(i, include_unchanged=True) for i in range(n)]
    cached += [img.layer_diff(i) for i in range(n)]
    assert calls == [len(img.events)]  # one build for 2 x n diffs

    # Straightforward recomputation from the events: each path's version by (layer, path), whiteouts excluded.
    records = img.events.to_dict("records")
    version = {(int(r["layer"]), r["path"]): r for r in records if str(r["event"]) != "whited_out"}
    checked = {"overwritten": 0, "whited_out": 0}
    for i in range(n):
        mine = [r for r in records if int(r["layer"]) == i]
        rows = rows_by_path(cached[i])
        assert set(rows) == {r["path"] for r in mine}
        for r in mine:
            got, event = rows[r["path"]], str(r["event"])
            want_change = {"added": "added", "whited_out": "removed"}.get(event)
            if want_change:
                assert str(got["change"]) == want_change
            else:
                assert str(got["change"]) in ("modified", "unchanged")
            if event == "added":
                assert all(na(got[c]) for c in ("prev_type", "prev_mode", "prev_uid", "prev_gid", "prev_linkname"))
                continue
            checked[event] += 1
            old = version[(int(r["prev_layer"]), r["path"])]
            assert _plain(got["prev_type"]) == _plain(r["type"] if event == "whited_out" else old["type"])
            for col in ("mode", "uid", "gid", "linkname"):
                assert _plain(got[f"prev_{col}"]) == _plain(old[col]), (i, r["path"], col)
            if event == "overwritten":
                assert bool(got["mode_changed"]) == (_plain(r["mode"]) != _plain(old["mode"]))
    assert checked["overwritten"] and checked["whited_out"]  # both kinds of lookup were exercised

    # The same frames as building the index afresh on every call (the behaviour before the cache).
    for i in range(n):
        diff_mod._VERSIONS.pop(img, None)
        pd.testing.assert_frame_equal(img.layer_diff(i, include_unchanged=True), cached[i])
    assert len(calls) == 1 + n
