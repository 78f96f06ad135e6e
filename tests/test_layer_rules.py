"""The OCI layer rules on hostile and edge-case layers written byte by byte with ``tarfile``.

Each test builds its layers from ``Entry`` lists, so the expected events and final tree follow from the
construction and the rules (docs/layer-rules.md, ``ocilens/assemble.py``); where umoci accepts the layers too
(``umoci raw add-layer`` on an empty umoci image), the final tree is also compared with ``umoci unpack``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pytest

import ocilens
from imagebuild import (EPOCH, Entry, Layer, add_raw_layer, layout_from_tars, tar_layer, tree_of, umoci_image,
                        umoci_unpack)

ROOT = os.geteuid() == 0


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def load(tmp_path: Path, *layers: Sequence[Entry] | bytes, fmt: str = "pax", **kw: Any) -> ocilens.Image:
    """An image of these layers (Entry lists or ready tars), loaded through ``oci:`` without the cache."""
    tars = [layer if isinstance(layer, bytes) else tar_layer(layer, format=fmt) for layer in layers]
    layout = layout_from_tars(tmp_path, tars, **kw)
    img = ocilens.load(f"oci:{layout}:t", cache=False)
    assert not img.events.duplicated(["layer", "path"]).any(), "more than one event for a path in a layer"
    return img


def umoci_tree(tmp_path: Path, *layers: Sequence[Entry] | bytes, fmt: str = "pax") -> dict[str, dict[str, Any]]:
    """The same layers through umoci: an empty umoci image, each tar added verbatim, unpacked."""
    work = Path(tempfile.mkdtemp(prefix="umoci-truth-", dir=tmp_path))
    layout = umoci_image(work, [Layer("empty", [])], tag="t")
    for layer in layers:
        add_raw_layer(layout, "t", layer if isinstance(layer, bytes) else tar_layer(layer, format=fmt))
    return tree_of(umoci_unpack(layout, "t", work / "bundle", rootless=not ROOT))


def events(img: ocilens.Image, layer: int) -> dict[str, dict[str, Any]]:
    """The events of one layer, by path."""
    ev = img.events
    return {r["path"]: r for r in ev[ev["layer"] == layer].to_dict("records")}


def files(img: ocilens.Image) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in img.files.to_dict("records")}


def anomalies(img: ocilens.Image) -> list[tuple[int, str, str]]:
    return [(int(r["layer"]), r["path"], r["kind"]) for r in img.anomalies.to_dict("records")]


def is_true(v: Any) -> bool:
    return v is not pd.NA and not pd.isna(v) and bool(v) is True


def is_false(v: Any) -> bool:
    return v is not pd.NA and not pd.isna(v) and bool(v) is False


def files_view(img: ocilens.Image) -> dict[str, tuple]:
    """``img.files`` as (type, size, mode, uid, gid, symlink target, sha256), hardlinks as files."""
    out = {}
    for p, r in files(img).items():
        t = "file" if r["type"] == "hardlink" else str(r["type"])
        out[p] = (t, int(r["size"]), int(r["mode"]), int(r["uid"]) if ROOT else None,
                  int(r["gid"]) if ROOT else None, r["linkname"] if t == "symlink" else None,
                  r["digest"] if t == "file" else None)
    return out


def truth_view(tree: dict[str, dict[str, Any]]) -> dict[str, tuple]:
    return {p: (n["type"], n["size"], n["mode"], n["uid"] if ROOT else None, n["gid"] if ROOT else None,
                n["linkname"], n["sha256"]) for p, n in tree.items()}


def assert_same(got: dict, want: dict, what: str) -> None:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    differ = {p: (got[p], want[p]) for p in set(got) & set(want) if got[p] != want[p]}
    assert not (missing or extra or differ), f"{what}: missing {missing}, extra {extra}, differ (got, want) {differ}"


def extracted(img: ocilens.Image, dest: Path, **kw: Any) -> dict[str, dict[str, Any]]:
    img.extract(dest, **kw)
    return tree_of(dest)


# ------------------------------------------------------------------------------------------ whiteouts


@pytest.mark.parametrize("order", ["whiteout-after", "whiteout-before"])
def test_same_layer_whiteout_never_removes_its_own_layer(tmp_path: Path, order: str) -> None:
    lower = [Entry.dir("a"), Entry.file("a/x", "old"), Entry.file("a/keep", "keep")]
    pair = [Entry.file("a/x", "new!!"), Entry.whiteout("a/x")]
    only_here = [Entry.file("b", "bbb"), Entry.whiteout("b")]  # a whiteout of a path no lower layer has
    if order == "whiteout-before":
        pair, only_here = pair[::-1], only_here[::-1]
    upper = [*pair, *only_here]
    img = load(tmp_path, lower, upper)
    f = files(img)
    assert f["/a/x"]["digest"] == sha("new!!") and int(f["/a/x"]["layer"]) == 1
    assert f["/b"]["digest"] == sha("bbb") and "/a/keep" in f
    ev = events(img, 1)
    assert sorted(ev) == ["/a/x", "/b"]
    x = ev["/a/x"]
    assert (x["event"], x["type"], int(x["size"]), int(x["prev_layer"]), int(x["prev_size"])) == \
        ("overwritten", "file", 5, 0, 3)
    assert is_true(x["content_changed"]) and pd.isna(x["cause"])
    assert ev["/b"]["event"] == "added" and pd.isna(ev["/b"]["prev_layer"])
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, lower, upper)), "vs umoci")
    disk = extracted(img, tmp_path / "out")
    assert disk["/a/x"]["sha256"] == sha("new!!") and disk["/b"]["sha256"] == sha("bbb")


@pytest.mark.parametrize("order", ["opaque-last", "opaque-first", "opaque-between"])
def test_opaque_marker_applies_first_and_spares_same_layer_children(tmp_path: Path, order: str) -> None:
    lower = [Entry.dir("d"), Entry.file("d/a", "aaa"), Entry.file("d/b", "bb"), Entry.dir("d/sub"),
             Entry.file("d/sub/c", "c"), Entry.file("dd/x", "prefix sibling"), Entry.file("other", "o")]
    kids = [Entry.file("d/new", "new"), Entry.file("d/b", "BBBB")]
    marker = Entry.opaque("d")
    upper = {"opaque-last": [*kids, marker], "opaque-first": [marker, *kids],
             "opaque-between": [kids[0], marker, kids[1]]}[order]
    img = load(tmp_path, lower, upper)
    assert sorted(files(img)) == ["/d", "/d/b", "/d/new", "/dd", "/dd/x", "/other"]
    assert files(img)["/d/b"]["digest"] == sha("BBBB")
    ev = events(img, 1)
    assert sorted(ev) == ["/d/a", "/d/b", "/d/new", "/d/sub", "/d/sub/c"]
    for path, size, type_ in (("/d/a", 3, "file"), ("/d/sub", 0, "dir"), ("/d/sub/c", 1, "file")):
        r = ev[path]
        assert (r["event"], r["cause"], r["type"], int(r["size"]), int(r["prev_size"]), int(r["prev_layer"])) \
            == ("whited_out", "opaque", type_, size, size, 0), path
    b = ev["/d/b"]
    assert (b["event"], int(b["prev_layer"]), int(b["prev_size"]), int(b["size"])) == ("overwritten", 0, 2, 4)
    assert ev["/d/new"]["event"] == "added"
    assert not any(k == "opaque" for *_, k in anomalies(img))
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, lower, upper)), "vs umoci")


def test_whiteout_of_a_directory_records_every_removed_path(tmp_path: Path) -> None:
    lower = [Entry.dir("gone", mode=0o750), Entry.file("gone/a", b"a" * 10), Entry.dir("gone/sub"),
             Entry.file("gone/sub/b", b"b" * 20), Entry.dir("gone/sub/deeper"),
             Entry.symlink("gone/sub/deeper/l", "../b"), Entry.file("gone/sub/deeper/c", b"c" * 5),
             Entry.file("gonex", "prefix sibling"), Entry.file("keep", "k")]
    upper = [Entry.whiteout("gone"), Entry.whiteout("never-existed")]
    img = load(tmp_path, lower, upper)
    assert sorted(files(img)) == ["/gonex", "/keep"]
    ev = events(img, 1)
    want = {"/gone": ("dir", 0, 0o750), "/gone/a": ("file", 10, 0o644), "/gone/sub": ("dir", 0, 0o755),
            "/gone/sub/b": ("file", 20, 0o644), "/gone/sub/deeper": ("dir", 0, 0o755),
            "/gone/sub/deeper/l": ("symlink", 0, 0o777), "/gone/sub/deeper/c": ("file", 5, 0o644)}
    assert sorted(ev) == sorted(want)
    for path, (type_, size, mode) in want.items():
        r = ev[path]
        assert (r["event"], r["cause"], r["type"], int(r["size"]), int(r["prev_size"]), int(r["prev_layer"]),
                int(r["mode"])) == ("whited_out", "whiteout", type_, size, size, 0, mode), path
    assert ev["/gone/sub/deeper/l"]["linkname"] == "../b"
    assert ev["/gone/a"]["digest"] == sha(b"a" * 10)
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, lower, upper)), "vs umoci")


def test_whiteout_reports_the_version_it_removes(tmp_path: Path) -> None:
    """A whiteout in layer 2 removes layer 1's version: prev_layer 1 and that version's size."""
    img = load(tmp_path, [Entry.file("f", "v0")], [Entry.file("f", "version one")], [Entry.whiteout("f")])
    r = events(img, 2)["/f"]
    assert (r["event"], int(r["prev_layer"]), int(r["size"]), int(r["prev_size"]), r["digest"]) == \
        ("whited_out", 1, 11, 11, sha("version one"))
    assert "/f" not in files(img)


def test_whiteout_then_recreate_directory_in_one_layer(tmp_path: Path) -> None:
    """``rm -rf d && mkdir d``: the old children go, the directory itself is overwritten."""
    lower = [Entry.dir("d", mode=0o755), Entry.file("d/old", "old")]
    upper = [Entry.whiteout("d"), Entry.dir("d", mode=0o700), Entry.file("d/new", "new")]
    img = load(tmp_path, lower, upper)
    assert sorted(files(img)) == ["/d", "/d/new"] and int(files(img)["/d"]["mode"]) == 0o700
    ev = events(img, 1)
    assert (ev["/d/old"]["event"], ev["/d/old"]["cause"]) == ("whited_out", "whiteout")
    assert (ev["/d"]["event"], int(ev["/d"]["prev_layer"])) == ("overwritten", 0)
    assert ev["/d/new"]["event"] == "added"
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, lower, upper)), "vs umoci")


def test_bare_whiteout_is_invalid_and_removes_nothing(tmp_path: Path) -> None:
    lower = [Entry.file("x", "x"), Entry.dir("d"), Entry.file("d/y", "y")]
    upper = [Entry.file(".wh."), Entry.file("d/.wh.")]
    img = load(tmp_path, lower, upper)
    assert sorted(files(img)) == ["/d", "/d/y", "/x"]
    assert events(img, 1) == {}
    bad = [(layer, kind) for layer, _, kind in anomalies(img) if kind == "invalid_whiteout"]
    assert bad == [(1, "invalid_whiteout"), (1, "invalid_whiteout")]
    assert not any(p.rsplit("/", 1)[-1].startswith(".wh.") for p in files(img))


def test_whiteout_markers_never_appear_in_the_result(tmp_path: Path) -> None:
    lower = [Entry.file("d/f", "f"), Entry.file("d/g", "g")]
    upper = [Entry.whiteout("d/f"), Entry.opaque("e"), Entry.file("e/h", "h")]
    img = load(tmp_path, lower, upper)
    assert not any(".wh." in p for p in img.events["path"]) and not any(".wh." in p for p in img.files["path"])
    disk = extracted(img, tmp_path / "out")
    assert sorted(disk) == ["/d", "/d/g", "/e", "/e/h"]


# ------------------------------------------------------------------------------------------ duplicates


def test_duplicate_path_in_one_layer_last_wins(tmp_path: Path) -> None:
    lower = [Entry.file("dup", "lower")]
    upper = [Entry.file("dup", "first", mode=0o600), Entry.dir("dir", mode=0o700), Entry.file("dup", "second!"),
             Entry.dir("dir", mode=0o750), Entry.file("fresh", "a"), Entry.file("fresh", "bb")]
    img = load(tmp_path, lower, upper)
    f = files(img)
    assert (f["/dup"]["digest"], int(f["/dup"]["mode"]), int(f["/dup"]["size"])) == (sha("second!"), 0o644, 7)
    assert int(f["/dir"]["mode"]) == 0o750 and f["/fresh"]["digest"] == sha("bb")
    dups = sorted((layer, path) for layer, path, kind in anomalies(img) if kind == "duplicate_path")
    assert dups == [(1, "/dir"), (1, "/dup"), (1, "/fresh")]
    ev = events(img, 1)
    assert sorted(ev) == ["/dir", "/dup", "/fresh"]
    d = ev["/dup"]
    assert (d["event"], int(d["size"]), int(d["prev_layer"]), int(d["prev_size"])) == ("overwritten", 7, 0, 5)
    assert (ev["/fresh"]["event"], int(ev["/fresh"]["size"])) == ("added", 2)
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, lower, upper)), "vs umoci")
    assert extracted(img, tmp_path / "out")["/dup"]["sha256"] == sha("second!")


# ------------------------------------------------------------------------------------------ type changes


def test_file_replaced_by_directory_and_back(tmp_path: Path) -> None:
    l0 = [Entry.file("p", "file0"), Entry.dir("q"), Entry.file("q/c1", "c1"), Entry.dir("q/s"),
          Entry.file("q/s/c2", "c2!")]
    l1 = [Entry.dir("p"), Entry.file("p/c", "c"), Entry.file("q", "now a file")]
    l2 = [Entry.file("p", "file two"), Entry.dir("q", mode=0o711), Entry.file("q/n", "n")]
    img = load(tmp_path, l0, l1, l2)
    ev1, ev2 = events(img, 1), events(img, 2)
    assert sorted(ev1) == ["/p", "/p/c", "/q", "/q/c1", "/q/s", "/q/s/c2"]
    p = ev1["/p"]
    assert (p["event"], p["type"], int(p["prev_layer"]), int(p["prev_size"])) == ("overwritten", "dir", 0, 5)
    assert is_true(p["content_changed"])
    assert (ev1["/q"]["event"], ev1["/q"]["type"], int(ev1["/q"]["size"])) == ("overwritten", "file", 10)
    for path, size in (("/q/c1", 2), ("/q/s", 0), ("/q/s/c2", 3)):
        r = ev1[path]
        assert (r["event"], r["cause"], int(r["size"]), int(r["prev_layer"])) == \
            ("whited_out", "replaced", size, 0), path
    assert sorted(ev2) == ["/p", "/p/c", "/q", "/q/n"]
    assert (ev2["/p"]["event"], ev2["/p"]["type"], int(ev2["/p"]["prev_layer"])) == ("overwritten", "file", 1)
    pc = ev2["/p/c"]
    assert (pc["event"], pc["cause"], int(pc["prev_layer"]), int(pc["size"])) == ("whited_out", "replaced", 1, 1)
    assert (ev2["/q"]["event"], ev2["/q"]["type"]) == ("overwritten", "dir")
    f = files(img)
    assert sorted(f) == ["/p", "/q", "/q/n"] and f["/p"]["digest"] == sha("file two")
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, l0, l1, l2)), "vs umoci")


def test_symlink_replacing_a_directory_does_not_keep_its_children(tmp_path: Path) -> None:
    l0 = [Entry.dir("etc/conf"), Entry.file("etc/conf/a", "a"), Entry.dir("target")]
    l1 = [Entry.symlink("etc/conf", "/target")]
    img = load(tmp_path, l0, l1)
    f = files(img)
    assert sorted(f) == ["/etc", "/etc/conf", "/target"]
    assert (f["/etc/conf"]["type"], f["/etc/conf"]["linkname"]) == ("symlink", "/target")
    r = events(img, 1)["/etc/conf/a"]
    assert (r["event"], r["cause"]) == ("whited_out", "replaced")
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, l0, l1)), "vs umoci")


# ------------------------------------------------------------------------------------------ parents


def test_missing_parent_directories_are_created_and_marked_implicit(tmp_path: Path) -> None:
    l0 = [Entry.file("a/b/c/f.txt", "f")]  # no directory entries at all
    l1 = [Entry.file("x/y/z", "z"), Entry.file("a/b/new", "n"), Entry.dir("a/b", mode=0o700)]
    img = load(tmp_path, l0, l1)
    f = files(img)
    for path in ("/a", "/a/b/c", "/x", "/x/y"):
        assert f[path]["type"] == "dir" and f[path]["implicit"], path
    assert not f["/a/b/c/f.txt"]["implicit"] and not f["/a/b"]["implicit"]
    assert int(f["/a/b"]["mode"]) == 0o700
    ev0 = events(img, 0)
    assert sorted(ev0) == ["/a", "/a/b", "/a/b/c", "/a/b/c/f.txt"]
    assert [bool(ev0[p]["implicit"]) for p in sorted(ev0)] == [True, True, True, False]
    assert all(ev0[p]["event"] == "added" for p in ev0)
    ev1 = events(img, 1)
    assert sorted(ev1) == ["/a/b", "/a/b/new", "/x", "/x/y", "/x/y/z"]
    assert ev1["/x"]["implicit"] and ev1["/x/y"]["implicit"] and not ev1["/a/b"]["implicit"]
    assert (ev1["/a/b"]["event"], int(ev1["/a/b"]["prev_layer"])) == ("overwritten", 0)
    # umoci creates missing parents too; same types, modes and owners
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, l0, l1)), "vs umoci")
    disk = extracted(img, tmp_path / "out")
    assert disk["/x/y"]["type"] == "dir" and disk["/x/y/z"]["sha256"] == sha("z")


def test_entries_under_symlinked_parents_resolve_inside_the_root_as_umoci_does(tmp_path: Path) -> None:
    l0 = [Entry.dir("real"), Entry.symlink("link", "real"), Entry.symlink("abs", "/real"),
          Entry.symlink("chain", "link"), Entry.dir("sub"), Entry.symlink("sub/up", "../real"),
          Entry.symlink("climb", "../../../real")]
    l1 = [Entry.file("link/x", "x"), Entry.file("abs/y", "y"), Entry.file("chain/z", "z"),
          Entry.file("sub/up/w", "w"), Entry.file("climb/v", "v"), Entry.file("link/deep/er/u", "u"),
          Entry.symlink("same-layer", "/real"), Entry.file("same-layer/t", "t")]
    img = load(tmp_path, l0, l1)
    f = files(img)
    for name in "xyzwvt":
        assert f[f"/real/{name}"]["digest"] == sha(name), name
    assert f["/real/deep/er/u"]["digest"] == sha("u") and f["/real/deep"]["implicit"]
    for link in ("/link", "/abs", "/chain", "/sub/up", "/climb", "/same-layer"):
        assert f[link]["type"] == "symlink", link
    assert not any(p.startswith(("/link/", "/abs/", "/chain/", "/climb/", "/same-layer/")) for p in f)
    ev = events(img, 1)
    assert ev["/real/x"]["event"] == "added" and "/link/x" not in ev
    truth = umoci_tree(tmp_path, l0, l1)
    assert_same(files_view(img), truth_view(truth), "vs umoci")
    disk = extracted(img, tmp_path / "out")
    assert_same(truth_view(disk), truth_view(truth), "extraction vs umoci")


# ------------------------------------------------------------------------------------------ names


LONG_150 = "dir-" + "a" * 60 + "/" + "b" * 85  # 150 bytes: more than the 100 of a plain header
LONG_300 = "/".join(["c" * 99, "d" * 99, "e" * 100])  # 300 bytes: more than ustar's 255 with prefix


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_long_names_and_link_targets(tmp_path: Path, fmt: str) -> None:
    target = "/" + "t" * 180
    l0 = [Entry.file(LONG_150, "one-fifty"), Entry.file(LONG_300, "three hundred"),
          Entry.symlink("s" * 120, target), Entry.hardlink("h" * 110, LONG_300)]
    l1 = [Entry.file(LONG_150, "one-fifty, again", mode=0o600)]
    img = load(tmp_path, l0, l1, fmt=fmt)
    f = files(img)
    assert f["/" + LONG_150]["digest"] == sha("one-fifty, again")
    assert f["/" + LONG_300]["digest"] == sha("three hundred")
    assert f["/" + "s" * 120]["linkname"] == target
    h = f["/" + "h" * 110]
    assert (h["type"], h["linkname"], h["digest"]) == ("hardlink", "/" + LONG_300, sha("three hundred"))
    assert events(img, 1)["/" + LONG_150]["event"] == "overwritten"
    truth = umoci_tree(tmp_path, l0, l1, fmt=fmt)
    assert_same(files_view(img), truth_view(truth), "vs umoci")
    disk = extracted(img, tmp_path / "out")
    assert_same(truth_view(disk), truth_view(truth), "extraction vs umoci")


def test_ustar_prefix_field_names(tmp_path: Path) -> None:
    name = "p" * 90 + "/" + "q" * 90 + "/file"  # 186 bytes: fits ustar's prefix + name fields
    img = load(tmp_path, [Entry.file(name, "ustar")], fmt="ustar")
    assert files(img)["/" + name]["digest"] == sha("ustar")


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_non_utf8_names_are_kept_as_bytes(tmp_path: Path, fmt: str) -> None:
    l0 = [Entry.file(b"caf\xe9/na\xefve", "latin-1"), Entry.file(b"\xff\xfe-binary", "ff fe"),
          Entry.symlink(b"link-\xe9", b"caf\xe9/na\xefve"), Entry.file("日本語.txt", "utf-8 is fine")]
    l1 = [Entry.file(b"caf\xe9/na\xefve", "changed"), Entry.whiteout(os.fsdecode(b"\xff\xfe-binary"))]
    img = load(tmp_path, l0, l1, fmt=fmt)
    f = files(img)
    assert {os.fsencode(p) for p in f} == {b"/caf\xe9", b"/caf\xe9/na\xefve", b"/link-\xe9", "/日本語.txt".encode()}
    assert f[os.fsdecode(b"/caf\xe9/na\xefve")]["digest"] == sha("changed")
    assert os.fsencode(f[os.fsdecode(b"/link-\xe9")]["linkname"]) == b"caf\xe9/na\xefve"
    ev1 = events(img, 1)
    assert ev1[os.fsdecode(b"/caf\xe9/na\xefve")]["event"] == "overwritten"
    assert ev1[os.fsdecode(b"/\xff\xfe-binary")]["event"] == "whited_out"
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, l0, l1, fmt=fmt)), "vs umoci")
    img.extract(tmp_path / "out")
    root = os.fsencode(tmp_path / "out")
    assert sorted(os.listdir(root)) == sorted([b"caf\xe9", b"link-\xe9", "日本語.txt".encode()])
    assert os.listdir(os.path.join(root, b"caf\xe9")) == [b"na\xefve"]
    assert os.readlink(os.path.join(root, b"link-\xe9")) == b"caf\xe9/na\xefve"
    with open(os.path.join(root, b"caf\xe9", b"na\xefve"), "rb") as fh:
        assert fh.read() == b"changed"


# ------------------------------------------------------------------------------------------ special files


DEVICES = [Entry.char("dev/null", 1, 3, mode=0o666), Entry.block("dev/loop0", 7, 0, mode=0o660),
           Entry.fifo("run/pipe", mode=0o600)]


def test_device_nodes_and_fifos(tmp_path: Path) -> None:
    img = load(tmp_path, DEVICES)
    f = files(img)
    assert (f["/dev/null"]["type"], f["/dev/loop0"]["type"], f["/run/pipe"]["type"]) == ("char", "block", "fifo")
    assert [int(f[p]["mode"]) for p in ("/dev/null", "/dev/loop0", "/run/pipe")] == [0o666, 0o660, 0o600]
    result = img.extract(tmp_path / "out")
    disk = tree_of(tmp_path / "out")
    assert disk["/run/pipe"]["type"] == "fifo" and disk["/run/pipe"]["mode"] == 0o600
    if ROOT:
        assert (disk["/dev/null"]["type"], disk["/dev/null"]["rdev"], disk["/dev/null"]["mode"]) == ("char", (1, 3), 0o666)
        assert (disk["/dev/loop0"]["type"], disk["/dev/loop0"]["rdev"]) == ("block", (7, 0))
        assert result.skipped == []
        truth = umoci_tree(tmp_path, DEVICES)
        assert {p: (n["type"], n["rdev"], n["mode"]) for p, n in disk.items()} == \
            {p: (n["type"], n["rdev"], n["mode"]) for p, n in truth.items()}
    else:
        assert sorted(p for p, _ in result.skipped) == ["/dev/loop0", "/dev/null"]


def test_devices_false_skips_and_reports_device_nodes(tmp_path: Path) -> None:
    img = load(tmp_path, DEVICES)
    result = img.extract(tmp_path / "out", devices=False)
    assert sorted(p for p, _ in result.skipped) == ["/dev/loop0", "/dev/null"]
    assert all(reason for _, reason in result.skipped)
    disk = tree_of(tmp_path / "out")
    assert "/dev/null" not in disk and "/dev/loop0" not in disk
    assert disk["/run/pipe"]["type"] == "fifo" and disk["/dev"]["type"] == "dir"


# ------------------------------------------------------------------------------------------ re-adds


def test_metadata_only_re_add_versus_content_change(tmp_path: Path) -> None:
    l0 = [Entry.file("m", "same"), Entry.file("u", "same"), Entry.file("t", "same"), Entry.file("c", "v1"),
          Entry.file("n", "abc"), Entry.symlink("s", "target"), Entry.symlink("s2", "a"), Entry.dir("dm"),
          Entry.file("ty", "now a file, then a link"), Entry.file("e", b"")]
    l1 = [Entry.file("m", "same", mode=0o755), Entry.file("u", "same", uid=1000, gid=1000),
          Entry.file("t", "same", mtime=EPOCH + 100), Entry.file("c", "v2 longer"), Entry.file("n", "abd"),
          Entry.symlink("s", "target", uid=5), Entry.symlink("s2", "b"), Entry.dir("dm", mode=0o700),
          Entry.symlink("ty", "m"), Entry.file("e", b"", mode=0o600)]
    img = load(tmp_path, l0, l1)
    ev = events(img, 1)
    assert all(r["event"] == "overwritten" and int(r["prev_layer"]) == 0 for r in ev.values())
    unchanged = {"/m", "/u", "/t", "/s", "/dm", "/e"}
    changed = {"/c", "/n", "/s2", "/ty"}
    assert set(ev) == unchanged | changed
    for p in unchanged:
        assert is_false(ev[p]["content_changed"]), p
    for p in changed:
        assert is_true(ev[p]["content_changed"]), p
    assert int(ev["/m"]["mode"]) == 0o755 and int(ev["/u"]["uid"]) == 1000
    assert ev["/t"]["mtime"] == pd.Timestamp(EPOCH + 100, unit="s", tz="UTC")
    # content_changed is only for overwritten rows
    img2 = load(tmp_path, [Entry.file("a", "a"), Entry.file("b", "b")], [Entry.file("new", "n"), Entry.whiteout("a")])
    ev2 = events(img2, 1)
    assert pd.isna(ev2["/new"]["content_changed"]) and pd.isna(ev2["/a"]["content_changed"])


# ------------------------------------------------------------------------------------------ hardlinks


def test_hardlink_to_a_lower_layer_file(tmp_path: Path) -> None:
    l0 = [Entry.file("lower", "lower content", mode=0o640, uid=7, gid=8), Entry.file("orig", "orig content"),
          Entry.hardlink("orig-link", "orig"), Entry.file("old", "old version")]
    l1 = [Entry.hardlink("link", "lower", mode=0o640, uid=7, gid=8),
          Entry.hardlink("keeps-old", "old"), Entry.file("old", "new version"),  # link first, then replace
          Entry.whiteout("orig")]  # the other name of orig's inode survives, with its content
    img = load(tmp_path, l0, l1)
    f = files(img)
    link = f["/link"]
    assert (link["type"], link["linkname"], int(link["size"]), link["digest"]) == \
        ("hardlink", "/lower", len("lower content"), sha("lower content"))
    assert f["/keeps-old"]["digest"] == sha("old version") and f["/old"]["digest"] == sha("new version")
    assert f["/orig-link"]["digest"] == sha("orig content") and "/orig" not in f
    ev = events(img, 1)
    assert (ev["/link"]["event"], ev["/link"]["type"]) == ("added", "hardlink")
    truth = umoci_tree(tmp_path, l0, l1)
    assert_same(files_view(img), truth_view(truth), "vs umoci")
    disk = extracted(img, tmp_path / "out")
    assert disk["/link"]["inode"] == disk["/lower"]["inode"]
    assert disk["/keeps-old"]["inode"] != disk["/old"]["inode"]
    assert_same(truth_view(disk), truth_view(truth), "extraction vs umoci")
    assert disk["/orig-link"]["sha256"] == sha("orig content")


def test_hardlink_counts_content_once_in_layer_bytes(tmp_path: Path) -> None:
    """Hardlinks share content: a layer's file bytes count it once (docs/layer-rules.md "Hardlinks")."""
    content = b"x" * 1000
    img = load(tmp_path, [Entry.file("a", content), Entry.hardlink("b", "a"), Entry.hardlink("c", "a")])
    layer = img.layers.iloc[0]
    assert int(layer["added_bytes"]) == 1000
    assert int(layer["shipped_bytes"]) == 1000 and int(layer["visible_bytes"]) == 1000


# ------------------------------------------------------------------------------------------ dtypes


def test_events_and_files_dtypes(tmp_path: Path) -> None:
    img = load(tmp_path, [Entry.file("a", "a"), Entry.dir("d")], [Entry.file("a", "b"), Entry.whiteout("d")])
    ev = img.events
    want = {"layer": "Int16", "path": "string", "size": "Int64", "mode": "Int64", "uid": "Int64", "gid": "Int64",
            "linkname": "string", "digest": "string", "prev_layer": "Int16", "prev_size": "Int64",
            "content_changed": "boolean", "mtime": "datetime64[s, UTC]"}
    for col, dtype in want.items():
        assert str(ev[col].dtype) == dtype, col
    for col, cats in (("event", ["added", "overwritten", "whited_out"]), ("cause", ["whiteout", "opaque", "replaced"]),
                      ("type", ["file", "dir", "symlink", "hardlink", "char", "block", "fifo"])):
        assert isinstance(ev[col].dtype, pd.CategoricalDtype), col
        assert set(ev[col].cat.categories) == set(cats), col
    assert ev["mtime"].iloc[0] == pd.Timestamp(EPOCH, unit="s", tz="UTC")
    fl = img.files
    for col, dtype in {"path": "string", "size": "Int64", "mode": "Int64", "uid": "Int64", "gid": "Int64",
                       "mtime": "datetime64[s, UTC]", "linkname": "string", "digest": "string",
                       "layer": "Int16"}.items():
        assert str(fl[col].dtype) == dtype, col
    assert isinstance(fl["type"].dtype, pd.CategoricalDtype)
    # every column docs/architecture.md "The tables" names is there
    assert {"layer", "path", "event", "type", "size", "mode", "uid", "gid", "mtime", "linkname", "digest",
            "prev_layer", "prev_size", "content_changed", "cause"} <= set(ev.columns)
    assert {"path", "type", "size", "mode", "uid", "gid", "mtime", "linkname", "digest", "layer"} <= set(fl.columns)
    # paths are normalized absolute paths
    assert all(p.startswith("/") and not p.endswith("/") for p in ev["path"])


def test_path_normalization(tmp_path: Path) -> None:
    """``./usr/bin``, ``/usr/bin``, ``usr/bin/`` and ``usr//bin`` are one path."""
    layer = [Entry.dir("./usr"), Entry.dir("usr/bin/"), Entry.file("./usr/bin/a", "1"), Entry.file("usr//bin/b", "2"),
             Entry.file("usr/./bin/c", "3")]
    img = load(tmp_path, layer, [Entry.file("usr/bin/a", "one")])
    assert sorted(files(img)) == ["/usr", "/usr/bin", "/usr/bin/a", "/usr/bin/b", "/usr/bin/c"]
    assert events(img, 1)["/usr/bin/a"]["event"] == "overwritten"
    assert not any(k == "duplicate_path" for *_, k in anomalies(img))


def test_hardlink_to_a_symlink_links_the_symlink_itself(tmp_path: Path) -> None:
    """link(2) never follows a symlink (Linux, and so umoci, containerd, GNU tar): a tar hardlink to a
    symlink makes another name of the symlink, not of the file it points to."""
    l0 = [Entry.file("real", "r"), Entry.symlink("sl", "real")]
    l1 = [Entry.hardlink("hl", "sl")]
    img = load(tmp_path, l0, l1)
    truth = umoci_tree(tmp_path, l0, l1)
    assert (truth["/hl"]["type"], truth["/hl"]["linkname"]) == ("symlink", "real")  # the construction
    disk = extracted(img, tmp_path / "out")
    assert (disk["/hl"]["type"], disk["/hl"]["linkname"]) == ("symlink", "real"), "extraction"
    assert_same(files_view(img), truth_view(truth), "img.files vs umoci")


def test_hardlink_row_carries_its_inode_metadata(tmp_path: Path) -> None:
    """A hardlink names an existing inode: its own header's mode and owner change nothing on disk
    (umoci, GNU tar), so img.files must show the inode's metadata for both names."""
    l0 = [Entry.file("a", "a", mode=0o644)]
    l1 = [Entry.hardlink("b", "a", mode=0o600, uid=9, gid=9)]
    img = load(tmp_path, l0, l1)
    truth = umoci_tree(tmp_path, l0, l1)
    assert (truth["/b"]["mode"], truth["/b"]["uid"], truth["/b"]["link_group"]) == (0o644, 0, "/a")
    disk = extracted(img, tmp_path / "out")
    assert_same(truth_view(disk), truth_view(truth), "extraction vs umoci")
    assert_same(files_view(img), truth_view(truth), "img.files vs umoci")


HARDLINK_CASES = {
    "original-deleted": [[Entry.file("a", "one"), Entry.hardlink("b", "a")], [Entry.whiteout("a")]],
    "original-recreated": [[Entry.file("a", "one"), Entry.hardlink("b", "a")], [Entry.whiteout("a")],
                           [Entry.file("a", "two")]],
    "original-replaced-same-layer": [[Entry.file("a", "one"), Entry.hardlink("b", "a")], [Entry.file("a", "two")]],
    "group-of-three-loses-original": [[Entry.file("a", "one"), Entry.hardlink("b", "a"), Entry.hardlink("c", "a")],
                                      [Entry.whiteout("a")]],
    "chain-loses-middle": [[Entry.file("a", "one"), Entry.hardlink("b", "a"), Entry.hardlink("c", "b")],
                           [Entry.whiteout("b")]],
}


@pytest.mark.parametrize("case", sorted(HARDLINK_CASES))
def test_files_hardlink_rows_describe_the_final_inodes(tmp_path: Path, case: str) -> None:
    """In the final tree (``img.files``) a ``hardlink`` row means "another name of the inode at
    ``linkname``". When the original name is whited out (or re-created as a different file), a surviving
    name that is alone is a plain file, and surviving names that still share an inode stay linked, as
    umoci's unpack shows them."""
    layers = HARDLINK_CASES[case]
    img = load(tmp_path, *layers)
    truth = umoci_tree(tmp_path, *layers)
    assert truth["/b" if "/b" in truth else "/c"]["sha256"] == sha("one")  # the construction
    disk = extracted(img, tmp_path / "out")
    assert {p: (n["sha256"], n["link_group"]) for p, n in disk.items()} == \
        {p: (n["sha256"], n["link_group"]) for p, n in truth.items()}, "extraction"
    f = files(img)
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        while parent.get(p, p) != p:
            p = parent[p]
        return p

    for path, row in f.items():
        if row["type"] == "hardlink":
            other = row["linkname"]
            assert other in f and truth[other]["inode"] == truth[path]["inode"], (
                f"{path} is listed as a hardlink of {other}, which is "
                f"{'gone' if other not in f else 'another inode'} in the final tree")
            parent[find(path)] = find(other)
    groups: dict[str, set[str]] = {}
    for path, row in f.items():
        if row["type"] in ("file", "hardlink"):
            groups.setdefault(find(path), set()).add(path)
    got = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    want_groups: dict[Any, set[str]] = {}
    for path, n in truth.items():
        if n["link_group"]:
            want_groups.setdefault(n["link_group"], set()).add(path)
    assert got == sorted(sorted(g) for g in want_groups.values()), "hardlink groups in img.files vs umoci"


def test_root_entry_attributes_reach_the_rootfs_as_umoci_does(tmp_path: Path) -> None:
    """A layer's ``./`` entry carries the root directory's mode and owner; umoci applies them to rootfs/."""
    l0 = [Entry.dir("./", mode=0o750, uid=5, gid=6), Entry.file("f", "f")]
    img = load(tmp_path, l0)
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    layout = umoci_image(work, [Layer("empty", [])], tag="t")
    add_raw_layer(layout, "t", tar_layer(l0))
    rootfs = umoci_unpack(layout, "t", work / "bundle", rootless=not ROOT)
    want = os.stat(rootfs)
    assert stat.S_IMODE(want.st_mode) == 0o750  # the construction, as umoci applies it
    img.extract(tmp_path / "out")
    got = os.stat(tmp_path / "out")
    assert (stat.S_IMODE(got.st_mode), got.st_uid if ROOT else None, got.st_gid if ROOT else None) == \
        (stat.S_IMODE(want.st_mode), want.st_uid if ROOT else None, want.st_gid if ROOT else None)


def test_large_ids_and_mtimes(tmp_path: Path) -> None:
    """uid/gid beyond the octal field (PAX records, GNU base-256) and an mtime far in the future."""
    for fmt in ("pax", "gnu"):
        layer = [Entry.file("big", "b", uid=3_000_000, gid=3_000_001, mtime=2**33 + 7)]
        img = load(tmp_path, layer, fmt=fmt)
        r = files(img)["/big"]
        assert (int(r["uid"]), int(r["gid"])) == (3_000_000, 3_000_001), fmt
        assert r["mtime"] == pd.Timestamp(2**33 + 7, unit="s", tz="UTC"), fmt
        disk = extracted(img, tmp_path / f"out-{fmt}")
        if ROOT:
            assert (disk["/big"]["uid"], disk["/big"]["gid"]) == (3_000_000, 3_000_001)
        assert disk["/big"]["mtime"] == 2**33 + 7


def test_whiteout_and_opaque_through_symlinked_parents(tmp_path: Path) -> None:
    l0 = [Entry.dir("real"), Entry.file("real/x", "x"), Entry.file("real/y", "y"), Entry.symlink("link", "real"),
          Entry.dir("real2"), Entry.file("real2/a", "a"), Entry.symlink("d", "/real2")]
    l1 = [Entry.whiteout("link/x"), Entry.opaque("d"), Entry.file("d/new", "n"), Entry.whiteout("sl-gone")]
    img = load(tmp_path, l0, l1)
    f = files(img)
    assert sorted(f) == ["/d", "/link", "/real", "/real/y", "/real2", "/real2/new"]
    ev = events(img, 1)
    assert (ev["/real/x"]["event"], ev["/real/x"]["cause"]) == ("whited_out", "whiteout")
    assert (ev["/real2/a"]["event"], ev["/real2/a"]["cause"]) == ("whited_out", "opaque")
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, l0, l1)), "vs umoci")


def test_whiteout_of_a_symlink_removes_the_link_not_its_target(tmp_path: Path) -> None:
    l0 = [Entry.dir("real"), Entry.file("real/x", "x"), Entry.symlink("sl", "real")]
    img = load(tmp_path, l0, [Entry.whiteout("sl")])
    assert sorted(files(img)) == ["/real", "/real/x"]
    r = events(img, 1)["/sl"]
    assert (r["event"], r["type"], r["linkname"]) == ("whited_out", "symlink", "real")


def test_entry_under_a_file_is_skipped_and_recorded(tmp_path: Path) -> None:
    """``f/x`` when ``f`` is a file: no runtime can apply it (umoci refuses the layer); ocilens records it."""
    img = load(tmp_path, [Entry.file("f", "f")], [Entry.file("f/x", "x"), Entry.file("ok", "ok")])
    assert sorted(files(img)) == ["/f", "/ok"] and files(img)["/f"]["digest"] == sha("f")
    assert (1, "/f/x", "parent_not_directory") in anomalies(img)
    assert sorted(events(img, 1)) == ["/ok"]


def test_path_added_and_removed_in_one_layer_has_no_event(tmp_path: Path) -> None:
    """``d/y`` is added then swept away when ``d`` becomes a file later in the same layer: no event for it;
    the lower ``d/x`` is removed with cause ``replaced``."""
    l0 = [Entry.dir("d"), Entry.file("d/x", "xx")]
    l1 = [Entry.file("d/y", "y"), Entry.file("d", "now a file")]
    img = load(tmp_path, l0, l1)
    ev = events(img, 1)
    assert sorted(ev) == ["/d", "/d/x"]
    assert (ev["/d/x"]["event"], ev["/d/x"]["cause"], int(ev["/d/x"]["size"])) == ("whited_out", "replaced", 2)
    assert (ev["/d"]["event"], ev["/d"]["type"]) == ("overwritten", "file")
    assert sorted(files(img)) == ["/d"]
    assert_same(files_view(img), truth_view(umoci_tree(tmp_path, l0, l1)), "vs umoci")


def test_layer_rows_count_events_and_bytes(tmp_path: Path) -> None:
    l0 = [Entry.dir("gone"), Entry.file("gone/a", b"a" * 10), Entry.file("gone/b", b"b" * 20), Entry.file("keep", "k"),
          Entry.file("over", b"o" * 7)]
    l1 = [Entry.whiteout("gone"), Entry.file("over", b"O" * 9), Entry.file("new", b"n" * 4), Entry.hardlink("nl", "new")]
    img = load(tmp_path, l0, l1)
    rows = img.layers.set_index("layer")
    assert [int(rows.loc[0, k]) for k in ("added", "overwritten", "whited_out")] == [5, 0, 0]
    assert [int(rows.loc[1, k]) for k in ("added", "overwritten", "whited_out")] == [2, 1, 3]
    assert int(rows.loc[0, "added_bytes"]) == 10 + 20 + 1 + 7
    assert (int(rows.loc[1, "added_bytes"]), int(rows.loc[1, "overwritten_bytes"]),
            int(rows.loc[1, "whited_out_bytes"])) == (4, 9, 30)
    assert [int(rows.loc[i, "entries"]) for i in (0, 1)] == [len(l0), len(l1)]


def test_hardlinks_to_symlinks_fifos_and_devices_are_real_hardlinks(tmp_path: Path) -> None:
    """A tar hardlink to a symlink, fifo or device node is a second name of that inode (link(2)), as
    umoci's unpack shows (nlink 2, one inode); the issue asks for hardlinks as real hardlinks."""
    l0 = [Entry.symlink("s", "x"), Entry.hardlink("s2", "s"), Entry.fifo("p"), Entry.hardlink("p2", "p")]
    if ROOT:
        l0 += [Entry.char("dev/null", 1, 3), Entry.hardlink("dev/null2", "dev/null")]
    img = load(tmp_path, l0)
    truth = umoci_tree(tmp_path, l0)
    disk = extracted(img, tmp_path / "out")
    pairs = [("/s", "/s2"), ("/p", "/p2")] + ([("/dev/null", "/dev/null2")] if ROOT else [])
    for a, b in pairs:
        assert truth[a]["inode"] == truth[b]["inode"] and truth[a]["nlink"] == 2  # the construction, via umoci
        assert (disk[a]["type"], disk[a]["linkname"], disk[a]["rdev"]) == \
            (truth[a]["type"], truth[a]["linkname"], truth[a]["rdev"])
        assert disk[a]["inode"] == disk[b]["inode"], f"{b} is not another name of {a}"
