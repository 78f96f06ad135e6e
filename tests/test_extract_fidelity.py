"""Extraction details checked against ``umoci unpack`` of the same layout, and extraction failures.

The truth is umoci's rootfs (attributes to the nanosecond, xattrs) or, for failures, what the brief asks of
every bad input: a typed error naming the layer and path, and no partial tree left behind.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import ocilens
from imagebuild import Entry, blob_path, layout_from_tars, manifest_of, tar_layer, umoci_unpack
from ocilens.errors import DigestMismatch, ExtractionError, LayerDecodeError
from ocilens.extract import ExtractResult, _set_xattrs

E = Entry


def _both(tmp_path: Path, layers: list[list[Entry]], target: Path | None = None) -> tuple[ocilens.Image, Path, Path]:
    layout = layout_from_tars(tmp_path, [tar_layer(layer) for layer in layers])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    ours = target or tmp_path / "ours"
    img.extract(ours)
    return img, ours, umoci_unpack(layout, "t", tmp_path / "bundle")


def _attrs(path: Path) -> tuple[str, int, int, int]:
    st = os.lstat(path)
    return oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid, st.st_mtime_ns


def _xattrs(path: Path) -> dict[str, bytes]:
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in os.listxattr(path, follow_symlinks=False)}


def test_subsecond_pax_times_are_kept_to_the_nanosecond(tmp_path: Path) -> None:
    layers = [[E.file("f", b"f", pax={"mtime": "1700000000.75"}), E.dir("d", pax={"mtime": "1700000001.5"}),
               E.symlink("s", "f", pax={"mtime": "1700000002.123456789"}),
               E.file("old", b"o", pax={"mtime": "-1.5"})]]
    img, ours, theirs = _both(tmp_path, layers)
    for name in ("f", "d", "s", "old"):
        assert os.lstat(ours / name).st_mtime_ns == os.lstat(theirs / name).st_mtime_ns, name
    assert os.lstat(ours / "old").st_mtime_ns == -1_500_000_000
    mtimes = img.files.set_index("path")["mtime"]  # the tables keep whole seconds, floored
    assert mtimes["/f"] == pd.Timestamp(1700000000, unit="s", tz="UTC")
    assert mtimes["/old"] == pd.Timestamp(-2, unit="s", tz="UTC")


def test_the_root_gets_umocis_attributes_when_no_layer_sets_them(tmp_path: Path) -> None:
    """No ``./`` entry (most images): 0755 and 0:0 as umoci, even on an existing target; the mtime is left as
    the writing made it, as umoci leaves it."""
    target = tmp_path / "existing"
    target.mkdir(mode=0o700)
    os.chown(target, 1234, 1234)
    _, ours, theirs = _both(tmp_path, [[E.file("etc/motd", b"hi")]], target)
    assert _attrs(ours)[:3] == _attrs(theirs)[:3] == ("0o755", 0, 0)


def test_a_dot_entry_sets_the_root(tmp_path: Path) -> None:
    _, ours, theirs = _both(tmp_path, [[E.dir(".", mode=0o750, uid=7, gid=8, mtime=1_600_000_000), E.file("x", b"x")]])
    assert _attrs(ours) == _attrs(theirs)


def test_host_specific_and_overlay_xattrs_are_not_unpacked(tmp_path: Path) -> None:
    """umoci refuses security.selinux and trusted.overlay.* (an opaque directory in disguise); the rest land."""
    pax = {"SCHILY.xattr.security.selinux": "system_u:object_r:etc_t:s0",
           "SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.trusted.overlay.redirect": "/x",
           "SCHILY.xattr.user.kept": "1", "SCHILY.xattr.trusted.kept": "2"}
    layout = layout_from_tars(tmp_path, [tar_layer([E.dir("d", pax=pax), E.file("d/f", b"f")])])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    result = img.extract(tmp_path / "ours")
    theirs = umoci_unpack(layout, "t", tmp_path / "bundle")
    assert _xattrs(tmp_path / "ours" / "d") == _xattrs(theirs / "d") == {"user.kept": b"1", "trusted.kept": b"2"}
    skipped = {reason.split(":")[0] for path, reason in result.skipped if path == "/d"}
    assert skipped == {"xattr security.selinux", "xattr trusted.overlay.opaque", "xattr trusted.overlay.redirect"}


def test_without_root_user_xattrs_are_set_and_the_rest_listed(tmp_path: Path) -> None:
    """What a non-root extraction can set (``user.*``, as ``umoci --rootless``) it sets; the rest is listed."""
    f = tmp_path / "f"
    f.write_bytes(b"x")
    result = ExtractResult(tmp_path)
    _set_xattrs(str(f), "/f", {"user.a": b"1", "security.capability": b"\x01\x00\x00\x02"}, False, result)
    assert _xattrs(f) == {"user.a": b"1"}
    assert result.skipped == [("/f", "xattr security.capability: needs root")]


def test_bytes_changed_after_load_fail_the_extraction_and_leave_nothing(tmp_path: Path) -> None:
    """The layer is read to its end and verified again: a blob changed since ``load()`` is a DigestMismatch,
    not a tree with the new bytes in it; the target it created is gone."""
    tar = tar_layer([E.file("etc/motd", b"GOOD-CONTENT"), E.file("z/rest", b"r" * 5000)])
    layout = layout_from_tars(tmp_path, [tar], "none")
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    blob = blob_path(layout, manifest_of(layout, "t")["layers"][0]["digest"])
    blob.write_bytes(blob.read_bytes().replace(b"GOOD-CONTENT", b"EVIL-CONTENT"))
    target = tmp_path / "new" / "rootfs"
    with pytest.raises(DigestMismatch):
        img.extract(target)
    assert not target.exists()


@pytest.mark.parametrize("where", ["file", "directory"])
def test_a_name_the_file_system_refuses_is_a_typed_error_and_the_target_is_emptied(tmp_path: Path,
                                                                                    where: str) -> None:
    long = "n" * 300  # over NAME_MAX (255)
    entry = E.file(f"a/{long}", b"x") if where == "file" else E.file(f"a/{long}/f", b"x")
    layout = layout_from_tars(tmp_path, [tar_layer([E.file("first", b"1")]), tar_layer([entry])])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    target = tmp_path / "empty"
    target.mkdir()
    with pytest.raises(ExtractionError) as info:
        img.extract(target)
    assert info.value.layer == 1 and info.value.path == f"/a/{long}"
    assert "layer 1" in str(info.value)
    assert target.is_dir() and list(target.iterdir()) == []  # the caller's directory stays, emptied


def test_an_xattr_the_kernel_rejects_is_a_typed_error(tmp_path: Path) -> None:
    pax = {"SCHILY.xattr.user." + "n" * 300: "1"}  # a name over XATTR_NAME_MAX: ERANGE
    layout = layout_from_tars(tmp_path, [tar_layer([E.file("f", b"x", pax=pax)])])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    with pytest.raises(ExtractionError) as info:
        img.extract(tmp_path / "out")
    assert info.value.path == "/f" and info.value.layer == 0
    assert not (tmp_path / "out").exists()


def test_a_nul_in_a_pax_path_is_a_decode_error_as_go_reads_it(tmp_path: Path) -> None:
    for key in ("path", "linkpath"):
        entry = E.symlink("s", "t", pax={key: "bad\x00name"})
        layout = layout_from_tars(tmp_path, [tar_layer([entry])])
        with pytest.raises(LayerDecodeError, match="NUL"):
            ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
        proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:t", tmp_path / f"b-{key}"],
                              capture_output=True, text=True)
        assert proc.returncode != 0  # umoci (Go's archive/tar) refuses it too


def test_a_link_made_before_its_target_is_whited_out_keeps_the_file(tmp_path: Path) -> None:
    """Layer 1: ``b`` links to the lower ``a``, then ``.wh.a``. In tar order, as umoci and runtimes apply it,
    the link is made first: ``/b`` survives with a's content, and that content is not waste."""
    img, ours, theirs = _both(tmp_path, [[E.file("a", b"lower content")], [E.hardlink("b", "a"), E.whiteout("a")]])
    assert sorted(os.listdir(theirs)) == sorted(os.listdir(ours)) == ["b"]
    assert (ours / "b").read_bytes() == (theirs / "b").read_bytes() == b"lower content"
    assert img.anomalies.empty
    events = img.events.set_index("path")["event"].to_dict()
    assert events == {"/a": "whited_out", "/b": "added"}  # layer 0 added /a, layer 1 both of these
    files = img.files.set_index("path")
    assert list(files.index) == ["/b"] and files.loc["/b", "size"] == len(b"lower content")
    assert img.bloat().wasted_bytes == 0


def test_a_link_after_the_whiteout_of_its_target_has_nothing_to_link(tmp_path: Path) -> None:
    """The other tar order: the target is gone when the link comes, which umoci refuses and ocilens skips."""
    layers = [[E.file("a", b"lower content")], [E.whiteout("a"), E.hardlink("b", "a")]]
    layout = layout_from_tars(tmp_path, [tar_layer(layer) for layer in layers])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    assert img.files.empty
    assert img.anomalies["kind"].tolist() == ["bad_hardlink"]
    proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:t", tmp_path / "bundle"], capture_output=True)
    assert proc.returncode != 0


def test_directories_made_under_a_setgid_directory_inherit_it(tmp_path: Path) -> None:
    """``d/x/y`` without a ``d/x`` entry, ``d`` setgid in group 50: mkdir gives ``d/x`` (and ``d/x/z``) the
    setgid bit and group 50, as umoci's tree has them; the files table says so too."""
    img, ours, theirs = _both(tmp_path, [[E.dir("d", mode=0o2775, gid=50)], [E.file("d/x/z/y", b"y")]])
    for rel in ("d/x", "d/x/z"):
        assert _attrs(ours / rel)[:3] == _attrs(theirs / rel)[:3] == ("0o2755", 0, 50), rel
    files = img.files.set_index("path")
    assert (files.loc["/d/x", "mode"] & 0o7777, files.loc["/d/x", "gid"]) == (0o2755, 50)


def test_strict_refuses_an_entry_that_replaces_the_root(tmp_path: Path) -> None:
    """umoci aborts on it ("refusing to change type of root directory"); ocilens skips it, and strict refuses."""
    layout = layout_from_tars(tmp_path, [tar_layer([E.file("keep", b"k")]), tar_layer([E.symlink(".", "/tmp")])])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    assert img.anomalies["kind"].tolist() == ["root_not_directory"]
    with pytest.raises(ocilens.errors.UnsafeEntryError, match="layer 1"):
        img.extract(tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()
    img.extract(tmp_path / "lenient")
    assert (tmp_path / "lenient").is_dir() and not (tmp_path / "lenient").is_symlink()
    proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:t", tmp_path / "bundle"], capture_output=True)
    assert proc.returncode != 0


@pytest.mark.parametrize("marker", [".wh..", ".wh..."])
def test_whiteouts_of_dot_and_dotdot_name_nothing(tmp_path: Path, marker: str) -> None:
    layout = layout_from_tars(tmp_path, [tar_layer([E.file("sub/f", b"f")]), tar_layer([E.file(f"sub/{marker}")])])
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    assert img.files["path"].tolist() == ["/sub", "/sub/f"]
    assert img.anomalies[["path", "kind"]].values.tolist() == [[f"/sub/{marker}", "invalid_whiteout"]]


def test_a_surviving_link_keeps_its_inodes_xattrs_and_time(tmp_path: Path) -> None:
    """``y`` links to the lower ``x`` (its header with other xattrs and time), then ``x`` is whited out: ``/y`` is
    the inode ``x`` made, with ``x``'s xattrs and sub-second mtime, as umoci leaves it."""
    lower = [E.file("x", b"content", pax={"SCHILY.xattr.user.from_target": "1", "mtime": "1000000000.25"})]
    upper = [E.hardlink("y", "x", pax={"SCHILY.xattr.user.from_link": "1", "mtime": "1000000001.75"}),
             E.whiteout("x")]
    _, ours, theirs = _both(tmp_path, [lower, upper])
    assert _xattrs(ours / "y") == _xattrs(theirs / "y") == {"user.from_target": b"1"}
    assert os.lstat(ours / "y").st_mtime_ns == os.lstat(theirs / "y").st_mtime_ns == 1_000_000_000_250_000_000


def test_bytes_corrupted_after_load_are_a_digest_mismatch_not_a_decode_error(tmp_path: Path) -> None:
    """A gzip layer flipped in the middle after ``load()``: extraction fails with what is wrong (the digest),
    naming it, rather than with the inflate error the flipped bytes cause."""
    tar = tar_layer([E.file(f"f{i}", os.urandom(20_000)) for i in range(20)])
    layout = layout_from_tars(tmp_path, [tar], "gzip")
    img = ocilens.load(f"oci:{layout}:t", cache=False, progress=False)
    digest = manifest_of(layout, "t")["layers"][0]["digest"]
    blob = blob_path(layout, digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch) as info:
        img.extract(tmp_path / "out")
    assert info.value.digest == digest


CLEANUP = """
import os, sys
import ocilens
img = ocilens.load(sys.argv[1], cache=False, progress=False)
try:
    img.extract(sys.argv[2])
except ocilens.errors.ExtractionError as exc:
    print("ExtractionError", exc.path, exc.layer)
"""


def _without_capabilities(*args: str) -> subprocess.CompletedProcess:
    """Run Python as root without capabilities (file permissions then bind it as they bind a user), or as the
    user the tests run as."""
    drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    return subprocess.run([*drop, sys.executable, "-c", CLEANUP, *args], capture_output=True, text=True)


def test_a_failed_extraction_cleans_up_what_it_wrote_and_nothing_else(tmp_path: Path) -> None:
    """The image leaves a 0000 directory and a 0555 one, then an xattr the kernel refuses fails the metadata
    pass. Without root's override, the cleanup still empties the target, gives an existing target back its
    mode, removes the parents it made for a new one, and never touches what is above."""
    bad = {"SCHILY.xattr.user." + "n" * 300: "1"}  # over XATTR_NAME_MAX: ERANGE, in the last pass
    layers = [[E.dir("locked", mode=0o000), E.file("locked/f", b"f"), E.dir("ro", mode=0o555), E.file("ro/g", b"g"),
               E.file("a", b"a", pax=bad)]]
    layout = layout_from_tars(tmp_path, [tar_layer(layer) for layer in layers])
    parent = tmp_path / "parent"
    parent.mkdir(mode=0o755)
    existing = parent / "existing"
    existing.mkdir(mode=0o750)
    proc = _without_capabilities(f"oci:{layout}:t", str(existing))
    assert proc.stdout.split() == ["ExtractionError", "/a", "0"], proc.stdout + proc.stderr
    assert list(existing.iterdir()) == []
    assert stat.S_IMODE(existing.stat().st_mode) == 0o750 and stat.S_IMODE(parent.stat().st_mode) == 0o755
    fresh = parent / "new" / "deeper" / "rootfs"
    proc = _without_capabilities(f"oci:{layout}:t", str(fresh))
    assert proc.stdout.split() == ["ExtractionError", "/a", "0"], proc.stdout + proc.stderr
    assert sorted(p.name for p in parent.iterdir()) == ["existing"]


def test_a_root_mode_without_search_permission_comes_last(tmp_path: Path) -> None:
    """A ``./`` entry of mode 0600: set before the top-level entries, it would lock the extraction out of
    them without root's override. Their modes and times are set first, as umoci's tree has them."""
    layers = [[E.dir(".", mode=0o600), E.file("a", b"a", mode=0o640, mtime=1_500_000_000)]]
    layout = layout_from_tars(tmp_path, [tar_layer(layer) for layer in layers])
    script = f"""
import os, ocilens
ocilens.load("oci:{layout}:t", cache=False, progress=False).extract("{tmp_path / 'ours'}")
"""
    drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    proc = subprocess.run([*drop, sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    theirs = umoci_unpack(layout, "t", tmp_path / "bundle")
    assert _attrs(tmp_path / "ours") == _attrs(theirs)
    assert _attrs(tmp_path / "ours" / "a") == _attrs(theirs / "a")


@pytest.mark.parametrize("marker", [E.whiteout("d/x"), E.opaque("d"), E.whiteout("d")],
                         ids=["whiteout of the target", "opaque parent", "whiteout of the parent"])
def test_a_link_made_before_any_marker_removes_its_target_keeps_the_file(tmp_path: Path, marker: Entry) -> None:
    """In tar order the link comes first, whichever later marker of the layer takes its target away."""
    lower = [E.dir("d"), E.file("d/x", b"lower content"), E.dir("e")]
    img, ours, theirs = _both(tmp_path, [lower, [E.hardlink("y", "d/x"), marker]])
    assert (ours / "y").read_bytes() == (theirs / "y").read_bytes() == b"lower content"
    assert sorted(p.name for p in ours.rglob("*")) == sorted(p.name for p in theirs.rglob("*"))
    assert img.anomalies.empty
