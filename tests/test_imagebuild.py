"""Self-tests of the image-building helpers: the images they make are valid for umoci and skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
import zstandard
from imagebuild import (
    Compression,
    EmptyLayer,
    Entry,
    Layer,
    Op,
    add_raw_layer,
    config_of,
    gzip_members,
    layer_blob_paths,
    layout_from_tars,
    manifest_of,
    run,
    tar_layer,
    to_archive,
    tree_of,
    umoci_image,
    umoci_unpack,
    zstd_frames,
)

ROOT = os.geteuid() == 0


def members(tar_bytes: bytes) -> list[tarfile.TarInfo]:
    """The members of an uncompressed tar, names as surrogate-escaped str."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), encoding="utf-8", errors="surrogateescape") as tf:
        return tf.getmembers()


def layer_names(blob: Path) -> list[str]:
    """The member names of a gzip layer blob, as written."""
    return [m.name for m in members(gzip.decompress(blob.read_bytes()))]


def write_plain(root: Path) -> None:
    """A bare callable layer spec."""
    (root / "plain.txt").write_text("from a callable")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One umoci image exercising every op, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("built")
    return umoci_image(tmp, [
        Layer("ADD base", [
            Op.write("/etc/hosts", "127.0.0.1 localhost\n"),
            Op.write("/usr/bin/tool", b"\x7fELF tool", mode=0o755),
            Op.hardlink("/usr/bin/tool2", "/usr/bin/tool"),
            Op.symlink("/bin", "usr/bin"),
            Op.symlink("/etc/abs", "/etc/hosts"),
            Op.mkdir("/srv/data", mode=0o2770, uid=1000, gid=1000),
            Op.write("/srv/data/x", "x", uid=1000, gid=1000, mtime=1_000_000_000),
            Op.mkdir("/gone/deep"), Op.write("/gone/deep/f", "f"), Op.write("/tmp.junk", "junk"),
            *([Op.mknod("/dev/null", "char", 1, 3, 0o666), Op.mknod("/dev/loop0", "block", 7, 0, 0o660)]
              if ROOT else []),
            Op.mknod("/run/fifo", "fifo"),
        ]),
        EmptyLayer("ENV A=1", ("--config.env", "A=1")),
        Layer("RUN chmod u+s tool", [Op.chmod("/usr/bin/tool", 0o4755)]),
        Layer("RUN rm", [Op.remove("/gone"), Op.remove("/tmp.junk"), Op.write("/etc/hosts", "::1 localhost\n")]),
        write_plain,
        EmptyLayer('CMD ["/bin/sh"]', ("--config.cmd", "/bin/sh")),
    ], tag="v1")


def test_umoci_image_history_and_layers(built: Path) -> None:
    cfg = config_of(built, "v1")
    assert [h["created_by"] for h in cfg["history"]] == [
        "ADD base", "ENV A=1", "RUN chmod u+s tool", "RUN rm", "layer 5", 'CMD ["/bin/sh"]']
    assert [bool(h.get("empty_layer")) for h in cfg["history"]] == [False, True, False, False, False, True]
    assert len(cfg["rootfs"]["diff_ids"]) == len(manifest_of(built, "v1")["layers"]) == 4
    assert cfg["config"]["Env"][-1] == "A=1"
    out = json.loads(run("skopeo", "inspect", f"oci:{built}:v1"))
    assert len(out["Layers"]) == 4


def test_umoci_writes_what_we_expect(built: Path) -> None:
    blobs = layer_blob_paths(built, "v1")
    assert layer_names(blobs[1]) == ["usr/bin/tool", "usr/bin/tool2"]  # chmod: both names of the inode
    assert ".wh.gone" in layer_names(blobs[2]) and ".wh.tmp.junk" in layer_names(blobs[2])
    assert not any("deep" in n for n in layer_names(blobs[2]))  # one whiteout for a whole directory


def test_tree_of_matches_ops(built: Path, tmp_path: Path) -> None:
    tree = tree_of(umoci_unpack(built, "v1", tmp_path / "b"))
    assert tree["/etc/hosts"]["sha256"] == hashlib.sha256(b"::1 localhost\n").hexdigest()
    assert tree["/usr/bin/tool"]["mode"] == 0o4755 and tree["/usr/bin/tool"]["type"] == "file"
    assert tree["/usr/bin/tool"]["link_group"] == tree["/usr/bin/tool2"]["link_group"] == "/usr/bin/tool"
    assert tree["/bin"]["type"] == "symlink"
    assert tree["/bin"]["linkname"] == "usr/bin" and tree["/etc/abs"]["linkname"] == "/etc/hosts"
    assert (tree["/srv/data"]["mode"], tree["/srv/data"]["uid"]) == (0o2770, 1000)
    assert tree["/srv/data/x"]["mtime"] == 1_000_000_000
    assert tree["/run/fifo"]["type"] == "fifo"
    assert "/gone" not in tree and "/gone/deep/f" not in tree and "/tmp.junk" not in tree
    assert tree["/plain.txt"]["size"] == len("from a callable")
    if ROOT:
        assert tree["/dev/null"]["type"] == "char" and tree["/dev/null"]["rdev"] == (1, 3)
        assert tree["/dev/loop0"]["type"] == "block" and tree["/dev/loop0"]["rdev"] == (7, 0)


def test_rootless_unpack_flattens_owners_and_skips_devices(built: Path, tmp_path: Path) -> None:
    tree = tree_of(umoci_unpack(built, "v1", tmp_path / "b", rootless=True))
    assert tree["/srv/data"]["uid"] == os.geteuid() and tree["/srv/data"]["mode"] == 0o2770
    assert tree["/usr/bin/tool"]["mode"] == 0o4755
    assert tree["/run/fifo"]["type"] == "fifo"
    if ROOT:  # a device node becomes an empty regular file that keeps the device's mode
        assert tree["/dev/null"] | {"inode": None} == tree["/dev/null"] | {
            "type": "file", "size": 0, "mode": 0o666, "rdev": None, "inode": None}


def test_umoci_image_is_reproducible(tmp_path: Path) -> None:
    def build() -> str:
        layout = umoci_image(tmp_path, [Layer("a", [Op.write("/a", "a")]), Layer("b", [Op.chmod("/a", 0o600)])])
        return manifest_of(layout, "t")["config"]["digest"]
    assert build() == build()


def test_tar_layer_writes_names_verbatim() -> None:
    long = "l/" + "x" * 150 + "/" + "y" * 120
    data = tar_layer([
        Entry.dir("d"), Entry.file("d/a", "hi", mode=0o4755, uid=7, gid=8, mtime=5),
        Entry.file(b"bad\xff\xfe", "x"), Entry.file("../esc", "x"), Entry.file("/abs/x"), Entry.file(long, "L"),
        Entry.symlink("s", "/etc/passwd"), Entry.hardlink("h", "d/a"), Entry.char("dev/null"),
        Entry.block("dev/loop0"), Entry.fifo("p"), Entry.whiteout("d/gone"), Entry.opaque("d"),
        Entry.whiteout("top"), Entry.file("dup", "1"), Entry.file("dup", "2"),
        Entry.file("x", "c", pax={"SCHILY.xattr.user.k": "v"}),
    ])
    assert len(data) % 10240 == 0 and data[-1024:] == bytes(1024)
    ms = members(data)
    assert [m.name for m in ms] == [
        "d", "d/a", "bad\udcff\udcfe", "../esc", "/abs/x", long, "s", "h", "dev/null", "dev/loop0", "p",
        "d/.wh.gone", "d/.wh..wh..opq", ".wh.top", "dup", "dup", "x"]
    a = ms[1]
    assert (a.mode, a.uid, a.gid, a.mtime, a.size) == (0o4755, 7, 8, 5, 2)
    assert ms[6].issym() and ms[6].linkname == "/etc/passwd" and ms[7].islnk() and ms[7].linkname == "d/a"
    assert ms[8].ischr() and (ms[8].devmajor, ms[8].devminor) == (1, 3) and ms[9].isblk() and ms[10].isfifo()
    assert b"hdrcharset=BINARY" in data and b"bad\xff\xfe" in data  # the raw bytes, not re-encoded
    assert ms[-1].pax_headers["SCHILY.xattr.user.k"] == "v"


def test_tar_layer_gnu_and_no_eof() -> None:
    long = "z" * 300
    gnu = tar_layer([Entry.file(long, "x"), Entry.file(b"\xe9t\xe9", "y")], format="gnu")
    assert b"././@LongLink" in gnu and b"\xe9t\xe9" in gnu
    assert [m.name for m in members(gnu)] == [long, "\udce9t\udce9"]
    cut = tar_layer([Entry.file("a", "x")], eof=False)
    assert len(cut) == 1024 and cut[-512:] != bytes(512)  # header + one data block, nothing after


def test_multi_member_gzip_and_multi_frame_zstd() -> None:
    data = os.urandom(5000) + bytes(5000)
    gz = gzip_members(data, parts=3)
    assert gz.count(b"\x1f\x8b\x08") >= 3 and gzip.decompress(gz) == data
    assert len(zlib.decompressobj(wbits=31).decompress(gz)) < len(data)  # one member alone is short
    zs = zstd_frames(data, parts=3)
    assert zs.count(b"\x28\xb5\x2f\xfd") == 3
    assert len(zstandard.ZstdDecompressor().decompress(zs)) < len(data)  # first frame only
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(zs), read_across_frames=True).read() == data


@pytest.mark.parametrize("compression", ["gzip", "gzip-multi", "none"])
def test_layout_from_tars_unpacks_with_umoci(tmp_path: Path, compression: Compression) -> None:
    tars = [tar_layer([Entry.dir("d"), Entry.file("d/a", "A"), Entry.file("d/b", "B")]),
            tar_layer([Entry.whiteout("d/a"), Entry.file("d/c", "C", mode=0o600)])]
    layout = layout_from_tars(tmp_path, tars, compression,
                              history=["ADD d", {"created_by": "ENV X=1", "empty_layer": True}, "RUN x"])
    tree = tree_of(umoci_unpack(layout, "t", tmp_path / "b"))
    assert sorted(tree) == ["/d", "/d/b", "/d/c"] and tree["/d/c"]["mode"] == 0o600
    assert config_of(layout, "t")["history"][1]["empty_layer"] is True
    json.loads(run("skopeo", "inspect", f"oci:{layout}:t"))


@pytest.mark.parametrize("compression", ["zstd", "zstd-multi"])
def test_layout_from_tars_zstd_accepted_by_skopeo(tmp_path: Path, compression: Compression) -> None:
    tars = [tar_layer([Entry.file("a", "A" * 1000), Entry.file("b", os.urandom(3000))])]
    layout = layout_from_tars(tmp_path, tars, compression)
    assert manifest_of(layout, "t")["layers"][0]["mediaType"].endswith("+zstd")
    # skopeo 1.9 copies zstd layers into an oci-archive as they are, but refuses a docker-archive:
    # "zstd compression is not supported for docker images".
    archive = to_archive(layout, "t", tmp_path / "o.tar", "oci-archive")
    json.loads(run("skopeo", "inspect", f"oci-archive:{archive}"))
    with pytest.raises(RuntimeError, match="zstd compression is not supported"):
        to_archive(layout, "t", tmp_path / "d.tar", "docker-archive")


def test_layout_from_tars_media_type_lies(tmp_path: Path) -> None:
    layout = layout_from_tars(tmp_path, [tar_layer([Entry.file("a")])], "zstd",
                              media_types=["application/vnd.oci.image.layer.v1.tar+gzip"])
    blob = layer_blob_paths(layout, "t")[0].read_bytes()
    assert blob[:4] == b"\x28\xb5\x2f\xfd"
    assert manifest_of(layout, "t")["layers"][0]["mediaType"].endswith("+gzip")


def test_add_raw_layer_opaque_marker(tmp_path: Path) -> None:
    layout = umoci_image(tmp_path, [Layer("base", [Op.write("/d/a", "a"), Op.write("/d/sub/b", "b")])])
    tar = tar_layer([Entry.dir("d"), Entry.opaque("d"), Entry.file("d/new", "n")])
    add_raw_layer(layout, "t", tar, created_by="RUN purge")
    cfg = config_of(layout, "t")
    assert cfg["history"][-1]["created_by"] == "RUN purge"
    assert cfg["rootfs"]["diff_ids"][-1] == "sha256:" + hashlib.sha256(tar).hexdigest()  # verbatim
    assert gzip.decompress(layer_blob_paths(layout, "t")[-1].read_bytes()) == tar
    tree = tree_of(umoci_unpack(layout, "t", tmp_path / "b"))
    assert sorted(p for p in tree if p.startswith("/d/")) == ["/d/new"]


def test_umoci_applies_opaque_before_same_layer_children(tmp_path: Path) -> None:
    layout = umoci_image(tmp_path, [Layer("base", [Op.write("/d/a", "a")])])
    add_raw_layer(layout, "t", tar_layer([Entry.file("d/new", "n"), Entry.opaque("d")]))
    tree = tree_of(umoci_unpack(layout, "t", tmp_path / "b"))
    assert sorted(p for p in tree if p.startswith("/d/")) == ["/d/new"]


def test_umoci_unpack_keeps_hostile_names_inside(tmp_path: Path) -> None:
    layout = umoci_image(tmp_path, [Layer("base", [Op.write("/a", "a")])])
    add_raw_layer(layout, "t", tar_layer([
        Entry.file("../esc", "x"), Entry.file("/abs/y", "y"), Entry.symlink("lnk", "/"),
        Entry.file("lnk/etc/z", "z")]))
    tree = tree_of(umoci_unpack(layout, "t", tmp_path / "b"))
    # umoci raw add-layer accepts anything; unpack resolves every name inside the rootfs, following
    # symlinks planted earlier as if the rootfs were "/".
    assert {"/esc", "/abs/y", "/etc/z"} <= set(tree) and tree["/lnk"]["linkname"] == "/"
    assert not (tmp_path / "esc").exists() and not (tmp_path / "b" / "esc").exists()


@pytest.mark.parametrize("kind", ["oci-archive", "docker-archive"])
def test_to_archive(built: Path, tmp_path: Path, kind: str) -> None:
    archive = to_archive(built, "v1", tmp_path / "img.tar", kind)  # type: ignore[arg-type]
    with tarfile.open(archive) as tf:
        names = tf.getnames()
    assert ("index.json" if kind == "oci-archive" else "manifest.json") in names
    out = json.loads(run("skopeo", "inspect", f"{kind}:{archive}"))
    assert len(out["Layers"]) == 4


def test_op_refuses_to_escape_through_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    Op.symlink("/etc", str(tmp_path))(root)  # /etc -> the host dir holding the rootfs
    with pytest.raises(ValueError, match="outside"):
        Op.write("/etc/x", "x")(root)
    assert not (tmp_path / "x").exists()


def test_sample_is_valid(sample_layout: Path, tmp_path: Path) -> None:
    cfg = config_of(sample_layout, "sample")
    assert sum(1 for h in cfg["history"] if not h.get("empty_layer")) == len(cfg["rootfs"]["diff_ids"]) == 5
    assert any(h.get("empty_layer") for h in cfg["history"])
    tree = tree_of(umoci_unpack(sample_layout, "sample", tmp_path / "b"))
    assert tree["/usr/bin/ash"]["link_group"] == tree["/usr/bin/busybox"]["link_group"]
    assert tree["/usr/bin/sh"]["linkname"] == "busybox" and tree["/bin"]["linkname"] == "usr/bin"
    assert tree["/usr/bin/less"]["mode"] == 0o700
    assert "/usr/share/info" not in tree and not any(p.endswith(".deb") for p in tree)
    assert sorted(p for p in tree if p.startswith("/usr/share/locale/")) == [
        "/usr/share/locale/de", "/usr/share/locale/de/LC_MESSAGES",
        "/usr/share/locale/de/LC_MESSAGES/hello.mo", "/usr/share/locale/de/LC_MESSAGES/sed.mo"]
    assert tree["/usr/local/bin/sed"]["sha256"] == tree["/usr/bin/sed"]["sha256"]
    assert tree["/usr/local/bin/sed"]["link_group"] is None
    assert sum(p.stat().st_size for p in sample_layout.rglob("*") if p.is_file()) < 3_000_000
    subprocess.run(["skopeo", "inspect", f"oci:{sample_layout}:sample"], check=True, capture_output=True)
