"""Extraction never writes outside its target, whatever the layers say; and every attempt is on record.

Layout of each test: ``tmp_path/jail/out`` is the target, ``tmp_path/jail/outside`` a sibling holding a
sentinel file (its name shares the prefix ``out``: a string-prefix containment check would accept it).
Everything under ``tmp_path`` but the target is snapshotted (names, types, sizes, contents, mtimes of
non-directories, inode numbers) before and after; names under the host's ``/etc`` and ``/tmp`` are unique
per run and must not appear on the host. Escapes through a symlink must land inside the root, where
``umoci unpack`` puts them (securejoin semantics).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import uuid
from pathlib import Path
from typing import Any, Sequence

import pytest

import ocilens
from imagebuild import Entry, Layer, add_raw_layer, layout_from_tars, tar_layer, tree_of, umoci_image, umoci_unpack

ROOT = os.geteuid() == 0
UNSAFE = {"unsafe_path", "unsafe_link", "link_escapes_root"}


def sha_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(top: Path, skip: Path) -> dict[str, tuple]:
    """Everything under ``top`` except the subtree ``skip``."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if Path(dirpath) == skip:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                out[full] = ("dir", st.st_ino, stat.S_IMODE(st.st_mode))
            elif stat.S_ISLNK(st.st_mode):
                out[full] = ("link", st.st_ino, os.readlink(full))
            else:
                out[full] = ("file", st.st_ino, st.st_size, st.st_mtime_ns, st.st_nlink,
                             sha_file(full) if stat.S_ISREG(st.st_mode) else None)
    return out


def host_state(paths: Sequence[str]) -> dict[str, Any]:
    """What the host has at these absolute paths (None when absent), plus /etc/passwd's identity."""
    state: dict[str, Any] = {p: os.path.lexists(p) for p in paths}
    st = os.stat("/etc/passwd")
    state["/etc/passwd"] = (st.st_ino, st.st_nlink, st.st_mtime_ns, sha_file("/etc/passwd"))
    return state


class Jail:
    """A target inside a jail, with an ``outside`` sibling; checks nothing escaped."""

    def __init__(self, tmp_path: Path, host_paths: Sequence[str] = ()) -> None:
        self.tmp = tmp_path
        self.jail = tmp_path / "jail"
        self.outside = self.jail / "outside"
        self.outside.mkdir(parents=True)
        (self.outside / "sentinel").write_text("do not touch\n")
        self.target = self.jail / "out"
        self.host_paths = list(host_paths)

    def arm(self) -> None:
        """Take the 'before' pictures (call after building and loading the image)."""
        self.before = snapshot(self.tmp, self.target)
        self.host_before = host_state(self.host_paths)
        assert not any(self.host_before[p] for p in self.host_paths), "unique host names already exist"

    def check(self) -> None:
        after = snapshot(self.tmp, self.target)
        added = sorted(set(after) - set(self.before))
        removed = sorted(set(self.before) - set(after))
        changed = sorted(p for p in set(after) & set(self.before) if after[p] != self.before[p])
        assert not (added or removed or changed), f"outside the target: added {added}, removed {removed}, changed {changed}"
        assert host_state(self.host_paths) == self.host_before, "the host filesystem changed"

    def tree(self) -> dict[str, dict[str, Any]]:
        return tree_of(self.target)


def load(tmp_path: Path, *layers: Sequence[Entry]) -> ocilens.Image:
    layout = layout_from_tars(tmp_path, [tar_layer(list(layer)) for layer in layers])
    return ocilens.load(f"oci:{layout}:t", cache=False)


def kinds(img: ocilens.Image) -> set[tuple[int, str, str]]:
    return {(int(r["layer"]), r["path"], r["kind"]) for r in img.anomalies.to_dict("records")}


def uniq(prefix: str) -> str:
    return f"{prefix}/ocilens-escape-{uuid.uuid4().hex}"


# ------------------------------------------------------------------------------------------ names


def test_dotdot_names_stay_inside(tmp_path: Path) -> None:
    deep_tmp = uniq("/tmp")
    j = Jail(tmp_path, [deep_tmp])
    # enough ".." to climb from the target to the host's root, however deep the temporary directory is
    up = "../" * (len(j.target.resolve().parts) + 2)
    layer = [Entry.file("../x", "1"), Entry.file("../../y", "2"), Entry.file("../outside/z", "3"),
             Entry.file("a/../../w", "4"), Entry.file(up + deep_tmp.lstrip("/"), "5"),
             Entry.dir("../../d"), Entry.symlink("../../s", "target")]
    img = load(tmp_path, layer)
    j.arm()
    img.extract(j.target)
    j.check()
    got = {p: n["sha256"] for p, n in j.tree().items()}
    assert got["/x"] is not None and got["/y"] is not None and got["/outside/z"] is not None and got["/w"]
    assert deep_tmp in got and "/d" in got and "/s" in got
    unsafe = {(layer, path) for layer, path, kind in kinds(img) if kind == "unsafe_path"}
    assert unsafe == {(0, "/x"), (0, "/y"), (0, "/outside/z"), (0, "/w"), (0, deep_tmp), (0, "/d"), (0, "/s")}


def test_absolute_names_stay_inside(tmp_path: Path) -> None:
    etc, tmp = uniq("/etc"), uniq("/tmp")
    j = Jail(tmp_path, [etc, tmp])
    layer = [Entry.file(etc, "etc"), Entry.file(tmp, "tmp"), Entry.file(str(j.outside / "abs"), "abs")]
    tar = tar_layer(layer)
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        assert [m.name for m in tf][:2] == [etc, tmp]  # the construction: names really are absolute
    img = load(tmp_path, layer)
    j.arm()
    img.extract(j.target)
    j.check()
    tree = j.tree()
    assert {etc, tmp, str(j.outside / "abs")} <= set(tree)
    assert {(0, etc, "unsafe_path"), (0, tmp, "unsafe_path"), (0, str(j.outside / "abs"), "unsafe_path")} <= kinds(img)


# ------------------------------------------------------------------------------------------ symlinks


@pytest.mark.parametrize("target_kind", ["root", "climb", "host-tmp", "outside-abs", "outside-rel"])
@pytest.mark.parametrize("same_layer", [False, True], ids=["next-layer", "same-layer"])
def test_planted_symlink_parent_lands_inside(tmp_path: Path, target_kind: str, same_layer: bool) -> None:
    name = f"ocilens-escape-{uuid.uuid4().hex}"
    j = Jail(tmp_path, [f"/{name}", f"/tmp/{name}"])
    link_target = {"root": "/", "climb": "../../..", "host-tmp": "/tmp", "outside-abs": str(j.outside),
                   "outside-rel": "../outside"}[target_kind]
    plant = [Entry.symlink("evil", link_target)]
    write = [Entry.file(f"evil/{name}", "payload"), Entry.dir("evil/sub"), Entry.file("evil/sub/f", "f")]
    layers = [plant + write] if same_layer else [plant, write]
    img = load(tmp_path, *layers)
    j.arm()
    img.extract(j.target)
    j.check()
    tree = j.tree()
    inside = {"root": "", "climb": "", "host-tmp": "/tmp", "outside-abs": str(j.outside),
              "outside-rel": "/outside"}[target_kind]
    assert tree["/evil"]["type"] == "symlink" and tree["/evil"]["linkname"] == link_target
    assert tree[f"{inside}/{name}"]["type"] == "file", f"the payload is not at {inside}/{name} inside the root"
    assert tree[f"{inside}/sub/f"]["type"] == "file"
    if target_kind in ("climb", "outside-rel"):
        assert (0, "/evil", "link_escapes_root") in kinds(img)
    # umoci (securejoin) puts the entries at the same place
    work = tmp_path / "umoci"
    work.mkdir()
    layout = umoci_image(work, [Layer("empty", [])], tag="t")
    for layer in layers:
        add_raw_layer(layout, "t", tar_layer(layer))
    truth = tree_of(umoci_unpack(layout, "t", work / "bundle", rootless=not ROOT))
    assert sorted(tree) == sorted(truth)


def test_symlink_as_final_component_is_replaced_not_followed(tmp_path: Path) -> None:
    host = uniq("/tmp")
    j = Jail(tmp_path, [host])
    l0 = [Entry.symlink("victim", host), Entry.symlink("victim2", str(j.outside / "sentinel"))]
    l1 = [Entry.file("victim", "replaced"), Entry.file("victim2", "replaced too")]
    img = load(tmp_path, l0, l1)
    j.arm()
    img.extract(j.target)
    j.check()
    tree = j.tree()
    assert tree["/victim"]["type"] == "file" and tree["/victim2"]["type"] == "file"


def test_symlink_loops_are_recorded_and_skipped(tmp_path: Path) -> None:
    j = Jail(tmp_path)
    l0 = [Entry.symlink("a", "b"), Entry.symlink("b", "a"), Entry.symlink("self", "self"),
          Entry.symlink("abs-loop", "/abs-loop/x")]
    l1 = [Entry.file("a/x", "x"), Entry.file("self/y", "y"), Entry.file("abs-loop/z", "z"),
          Entry.hardlink("h", "a/nothing"), Entry.file("fine", "fine")]
    img = load(tmp_path, l0, l1)
    found = kinds(img)
    for path in ("/a/x", "/self/y", "/abs-loop/z"):
        assert (1, path, "symlink_loop") in found, path
    j.arm()
    img.extract(j.target)
    j.check()
    tree = j.tree()
    assert sorted(tree) == ["/a", "/abs-loop", "/b", "/fine", "/self"]
    assert all(tree[p]["type"] == "symlink" for p in ("/a", "/b", "/self", "/abs-loop"))


# ------------------------------------------------------------------------------------------ hardlinks


@pytest.mark.parametrize("has_passwd", [True, False], ids=["image-has-etc-passwd", "image-lacks-it"])
@pytest.mark.parametrize("linkname", ["../../../etc/passwd", "/etc/passwd", "evil/passwd",
                                      "{up-to-host-root}etc/passwd"])
def test_hardlink_out_of_the_root_links_inside_or_nothing(tmp_path: Path, linkname: str, has_passwd: bool) -> None:
    j = Jail(tmp_path)
    # enough ".." to climb from the target to the host's root (the host's /etc/passwd), however deep the
    # temporary directory is
    linkname = linkname.replace("{up-to-host-root}", "../" * (len(j.target.resolve().parts) + 2))
    base = [Entry.symlink("evil", "/etc"), Entry.dir("etc")]
    if has_passwd:
        base += [Entry.file("etc/passwd", "root:x:0:0:image:/root:/bin/sh\n")]
    img = load(tmp_path, base, [Entry.hardlink("pw", linkname)])
    j.arm()
    img.extract(j.target)
    j.check()
    tree = j.tree()
    host = os.stat("/etc/passwd")
    if has_passwd:
        assert tree["/pw"]["sha256"] == hashlib.sha256(b"root:x:0:0:image:/root:/bin/sh\n").hexdigest()
        assert tree["/pw"]["inode"] == tree["/etc/passwd"]["inode"]
        assert tree["/pw"]["inode"] != (host.st_dev, host.st_ino)
    else:
        assert "/pw" not in tree
        assert (1, "/pw", "bad_hardlink") in kinds(img)
    if linkname != "evil/passwd":
        assert (1, "/pw", "unsafe_link") in kinds(img)


# ------------------------------------------------------------------------------------------ strict


STRICT_CASES = {
    "dotdot": ([[Entry.file("ok", "ok"), Entry.file("../../escape", "x")]], 0, "/escape", "unsafe_path"),
    "absolute": ([[Entry.file("ok", "ok")], [Entry.file("/etc/ocilens-abs", "x")]], 1, "/etc/ocilens-abs",
                 "unsafe_path"),
    "hardlink": ([[Entry.file("etc/passwd", "p")], [Entry.hardlink("pw", "../../etc/passwd")]], 1, "/pw",
                 "unsafe_link"),
    "symlink-climb": ([[Entry.file("ok", "ok")], [Entry.symlink("up", "../../../.."), Entry.file("up/x", "x")]], 1,
                      "/up", "link_escapes_root"),
}


@pytest.mark.parametrize("case", sorted(STRICT_CASES))
def test_strict_extraction_refuses_and_writes_nothing(tmp_path: Path, case: str) -> None:
    layers, layer, path, kind = STRICT_CASES[case]
    j = Jail(tmp_path)
    img = load(tmp_path, *layers)
    assert (layer, path, kind) in kinds(img)
    j.arm()
    with pytest.raises(ocilens.UnsafeEntryError) as info:
        img.extract(j.target, strict=True)
    err = info.value
    assert (err.path, err.layer) == (path, layer)
    assert path in str(err) and f"layer {layer}" in str(err)
    assert not j.target.exists(), "strict extraction created its target before refusing"
    j.check()
    # into an existing empty directory: refused too, and it stays empty
    j.target.mkdir()
    with pytest.raises(ocilens.UnsafeEntryError):
        img.extract(j.target, strict=True)
    assert list(j.target.iterdir()) == []


def test_strict_extraction_of_a_clean_image_works(tmp_path: Path) -> None:
    img = load(tmp_path, [Entry.file("etc/hosts", "h"), Entry.symlink("bin", "usr/bin"), Entry.dir("usr/bin")])
    assert not (kinds(img) and {k for *_, k in kinds(img)} & UNSAFE)
    img.extract(tmp_path / "out", strict=True)
    assert sorted(tree_of(tmp_path / "out")) == ["/bin", "/etc", "/etc/hosts", "/usr", "/usr/bin"]


# ------------------------------------------------------------------------------------------ target


def test_extraction_into_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    img = load(tmp_path, [Entry.file("f", "new")])
    target = tmp_path / "busy"
    target.mkdir()
    (target / "f").write_text("mine\n")
    before = snapshot(tmp_path, tmp_path / "nothing")
    with pytest.raises(ocilens.ExtractionError) as info:
        img.extract(target)
    assert str(target) in str(info.value) and info.value.path == str(target)
    assert snapshot(tmp_path, tmp_path / "nothing") == before
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(ocilens.ExtractionError):
        img.extract(afile)
    assert afile.read_text() == "x"


def test_unsafe_entries_are_listed_with_layer_path_kind_and_detail(tmp_path: Path) -> None:
    img = load(tmp_path, [Entry.file("../a", "a")], [Entry.hardlink("h", "/../../etc/shadow"),
                                                     Entry.symlink("s", "../../x")])
    an = img.anomalies
    assert {"layer", "path", "kind", "detail"} <= set(an.columns)
    rows = {(int(r["layer"]), r["path"], r["kind"]): r["detail"] for r in an.to_dict("records")}
    assert (0, "/a", "unsafe_path") in rows and "../a" in rows[(0, "/a", "unsafe_path")]
    assert (1, "/h", "unsafe_link") in rows and "shadow" in rows[(1, "/h", "unsafe_link")]
    assert (1, "/s", "link_escapes_root") in rows and "../../x" in rows[(1, "/s", "link_escapes_root")]
