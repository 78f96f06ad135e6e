"""Parity with umoci: images built by umoci from real files, read by ocilens, compared with ``umoci unpack``.

The truth is always umoci's own unpack of the same image (``tree_of``), never ocilens's output. Each image
is read through every local transport: the OCI layout umoci wrote, an ``oci-archive`` and a
``docker-archive`` made from it by skopeo, and a zstd copy made by skopeo (umoci cannot read zstd, so that
one is compared with the gzip original's unpack: the layer contents are the same tars).

Compared per path: type (an ocilens ``hardlink`` row is a regular file sharing an inode in umoci's tree),
size, mode (permission, setuid/setgid/sticky bits), uid, gid, symlink target, sha256 of the content,
mtime, and hardlink groups; and ``img.extract(dir)`` must produce the same tree on disk
(device numbers too).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ocilens
from imagebuild import (EPOCH, EmptyLayer, Layer, Op, config_of, manifest_of, run, to_archive, tree_of,
                        umoci_image, umoci_unpack)

ROOT = os.geteuid() == 0
TAG = "parity"
SAMPLE = Path(ocilens.__file__).resolve().parent / "_sample"

# ---------------------------------------------------------------------------------------------- inputs


def _real(path: str) -> bytes:
    """The bytes of a real file of this system (following symlinks, like ``cat``)."""
    return Path(path).read_bytes()


def _copy_real_tree(src: str, dest: str):
    """A rootfs change copying a real directory tree of this system, symlinks kept as symlinks."""
    def fn(root: Path) -> None:
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, target, symlinks=True)
    fn.__name__ = f"copytree {src} -> {dest}"
    return fn


REAL_DOCS = [d for d in ("base-files", "apt", "bash") if Path("/usr/share/doc", d).is_dir()]
BIG = random.Random(20231114).randbytes(1_500_000)  # crosses the 1 MiB read/decompress chunk boundaries


LONG_FILE = "/long/" + "n" * 120 + "/" + "f" * 200  # 327 bytes: > 255


def set_xattr(root: Path) -> None:
    """A file with a user xattr (umoci stores it as a SCHILY.xattr PAX record)."""
    p = root / "etc/xattr-file"
    p.write_text("has an xattr\n")
    os.setxattr(p, "user.ocilens", b"value")


def parity_layers() -> list:
    """Every layer rule umoci writes itself, over real files of this Debian system and generated ones."""
    base = [
        # real files
        Op.write("/etc/debian_version", _real("/etc/debian_version")),
        Op.write("/usr/lib/os-release", _real("/usr/lib/os-release")),
        Op.symlink("/etc/os-release", os.readlink("/etc/os-release")),  # the real relative link
        Op.write("/usr/bin/true", _real("/usr/bin/true"), mode=0o755),
        Op.hardlink("/usr/bin/true-again", "/usr/bin/true"),
        Op.write("/usr/share/common-licenses/GPL-3", _real("/usr/share/common-licenses/GPL-3")),
        *[_copy_real_tree(f"/usr/share/doc/{d}", f"/usr/share/doc/{d}") for d in REAL_DOCS],
        Op.write("/etc/hosts", "127.0.0.1 localhost\n"),
        Op.write("/opt/big.bin", BIG),
        # special bits, owners
        Op.write("/usr/bin/suid", b"#!/bin/sh\necho suid\n", mode=0o4755),
        Op.write("/usr/bin/sgid", b"#!/bin/sh\necho sgid\n", mode=0o2711),
        Op.mkdir("/tmp", mode=0o1777),
        Op.mkdir("/var/local", mode=0o2775, gid=50),
        Op.mkdir("/home/user", mode=0o750, uid=1000, gid=1000),
        Op.write("/home/user/.profile", "PATH=$HOME/bin:$PATH\n", mode=0o600, uid=1000, gid=1000),
        Op.write("/srv/nobody", "owned by nobody\n", uid=65534, gid=65534),
        Op.write("/srv/touched", "only its mtime will change\n"),
        # empty files, nested directories
        Op.write("/etc/empty", b""),
        Op.write("/var/lib/empty-private", b"", mode=0o600),
        Op.write("/a/b/c/d/e/f/g/deep.txt", "deep\n"),
        Op.mkdir("/a/b/empty-dir", mode=0o700),
        # symlinks: relative, absolute, dangling, to a directory
        Op.symlink("/bin", "usr/bin"),
        Op.symlink("/etc/abs-hosts", "/etc/hosts"),
        Op.symlink("/etc/dangling", "/nonexistent/target"),
        Op.symlink("/usr/share/doc/rel-true", "../../bin/true"),
        # hardlinks: a pair whose original is deleted later, a group of three that loses one
        Op.write("/data/orig", "shared content\n"),
        Op.hardlink("/data/link", "/data/orig"),
        Op.write("/data/h1", "three names\n"),
        Op.hardlink("/data/h2", "/data/h1"),
        Op.hardlink("/data/h3", "/data/h1"),
        # things to change type or disappear later
        Op.write("/opt/thing", "a file first\n"),
        Op.write("/srv/d/inner", "inside a directory first\n"),
        Op.write("/gone/deep/f", "in a directory that is deleted\n"),
        Op.write("/gone/x", "x\n"),
        Op.write("/junk", "deleted later\n"),
        Op.mknod("/run/fifo", "fifo", mode=0o620),
        # names: not UTF-8, longer than 100 and 255 bytes (PAX records, as umoci writes them)
        Op.write(b"/caf\xe9/na\xefve", "latin-1 names\n"),
        Op.write(LONG_FILE, "a long name\n"),
        Op.symlink("/long-target", "/" + "t" * 150),
        # a group of three whose original name is deleted later; a directory that only changes mode
        Op.write("/data/k1", "first name goes\n"),
        Op.hardlink("/data/k2", "/data/k1"),
        Op.hardlink("/data/k3", "/data/k1"),
        Op.mkdir("/srv/mode-only", mode=0o755),
        set_xattr,
    ]
    if ROOT:
        base += [Op.mknod("/dev/null", "char", 1, 3, 0o666), Op.mknod("/dev/loop0", "block", 7, 0, 0o660)]

    def replace_file_with_dir(root: Path) -> None:
        (root / "opt/thing").unlink()
        (root / "opt/thing").mkdir(mode=0o755)
        (root / "opt/thing/inside").write_text("a directory now\n")

    def retarget(root: Path) -> None:
        (root / "etc/abs-hosts").unlink()
        os.symlink("/etc/debian_version", root / "etc/abs-hosts")

    change = [
        Op.write("/etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"),  # new content
        Op.chmod("/usr/bin/true", 0o4755),  # chmod only: umoci re-adds both names of the inode
        Op.chown("/srv/nobody", 1000, 1000),  # chown only
        Op.remove("/data/orig"),  # the hardlink /data/link survives, alone
        Op.remove("/gone"),  # whiteout of a whole directory
        Op.remove("/junk"),  # whiteout of a file
        replace_file_with_dir,
        Op.write("/srv/d", "a file now\n"),  # a directory replaced by a file
        retarget,
        Op.mkdir("/tmp/newdir", mode=0o755),
        Op.write("/usr/share/doc/new-empty", b""),
        Op.remove("/data/k1"),
        Op.chmod("/srv/mode-only", 0o700),
    ]
    back = [
        Op.write("/opt/thing", "a file again\n", mode=0o640),  # directory -> file
        Op.remove("/srv/d"),
        Op.mkdir("/srv/d", mode=0o711),  # file -> directory
        Op.write("/srv/d/again", "inside a directory again\n"),
        Op.touch("/srv/touched", EPOCH - 12345),  # mtime only
        Op.remove("/data/h2"),
        Op.write("/etc/empty", b"not empty any more\n"),
    ]
    return [
        Layer("ADD rootfs /", base),
        EmptyLayer("ENV A=1", ("--config.env", "A=1")),
        Layer("RUN change things", change),
        Layer("RUN change them back", back),
        EmptyLayer('CMD ["/bin/sh"]', ("--config.cmd", "/bin/sh")),
    ]


# ---------------------------------------------------------------------------------------------- views


def ocilens_view(files: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``img.files`` in ``tree_of`` terms: hardlink rows become files, hardlink groups are recomputed from
    the ``linkname`` edges of hardlink rows (through paths that may no longer exist)."""
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        while parent.get(p, p) != p:
            p = parent[p]
        return p

    rows = files.to_dict("records")
    for r in rows:
        if r["type"] == "hardlink":
            a, b = find(r["path"]), find(r["linkname"])
            if a != b:
                parent[a] = b
    members: dict[str, list[str]] = {}
    for r in rows:
        if r["type"] in ("file", "hardlink"):
            members.setdefault(find(r["path"]), []).append(r["path"])
    group_of = {p: (min(ps) if len(ps) > 1 else None) for ps in members.values() for p in ps}
    out = {}
    for r in rows:
        t = "file" if r["type"] == "hardlink" else str(r["type"])
        out[r["path"]] = {
            "type": t, "size": int(r["size"]), "mode": int(r["mode"]), "uid": int(r["uid"]), "gid": int(r["gid"]),
            "linkname": r["linkname"] if t == "symlink" else None,
            "sha256": r["digest"] if t == "file" else None,
            "mtime": int(r["mtime"].timestamp()),
            "link_group": group_of.get(r["path"]),
        }
    return out


def truth_view(tree: dict[str, dict[str, Any]], owners: bool = True) -> dict[str, dict[str, Any]]:
    """``tree_of`` reduced to what ``img.files`` carries."""
    out = {}
    for path, n in tree.items():
        out[path] = {
            "type": n["type"], "size": n["size"], "mode": n["mode"],
            "uid": n["uid"] if owners else None, "gid": n["gid"] if owners else None,
            "linkname": n["linkname"], "sha256": n["sha256"],
            "mtime": n["mtime"], "link_group": n["link_group"],
        }
    return out


def disk_view(tree: dict[str, dict[str, Any]], owners: bool = True) -> dict[str, dict[str, Any]]:
    """``tree_of`` of an extraction, for comparing two extractions (device numbers included)."""
    view = truth_view(tree, owners)
    for path, n in tree.items():
        view[path]["rdev"] = n["rdev"]
    return view


def root_attrs(rootfs: Path) -> tuple:
    """The root directory's own mode, owner and mtime (umoci applies the layers' ``./`` entries to it)."""
    st = os.stat(rootfs)
    return (stat.S_IMODE(st.st_mode), st.st_uid if ROOT else None, st.st_gid if ROOT else None, int(st.st_mtime))


def assert_same_tree(got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]], what: str) -> None:
    """Equal trees, with a readable account of the differences."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = {p: {k: (got[p][k], want[p][k]) for k in want[p] if got[p].get(k) != want[p][k]}
              for p in sorted(set(got) & set(want))}
    differ = {p: d for p, d in differ.items() if d}
    assert not (missing or extra or differ), (
        f"{what}: missing {missing[:20]}, extra {extra[:20]}, differing (got, want) "
        f"{dict(list(differ.items())[:20])}")


# ---------------------------------------------------------------------------------------------- fixtures


class Built:
    """One image: its layout, umoci's unpack of it, and copies in the other transports (made on demand)."""

    def __init__(self, tmp: Path, layout: Path, tag: str) -> None:
        self.tmp, self.layout, self.tag = tmp, layout, tag
        self.truth = tree_of(umoci_unpack(layout, tag, tmp / "umoci-bundle", rootless=not ROOT))
        self._refs: dict[str, str] = {}

    def ref(self, kind: str) -> str:
        if kind not in self._refs:
            if kind == "oci":
                ref = f"oci:{self.layout}:{self.tag}"
            elif kind == "oci-archive":
                ref = f"oci-archive:{to_archive(self.layout, self.tag, self.tmp / 'image-oci.tar')}:{self.tag}"
            elif kind == "docker-archive":
                ref = f"docker-archive:{to_archive(self.layout, self.tag, self.tmp / 'image-docker.tar', 'docker-archive')}"
            elif kind == "zstd":
                dest = self.tmp / "zstd-layout"
                run("skopeo", "copy", "--quiet", "--dest-compress-format", "zstd",
                    f"oci:{self.layout}:{self.tag}", f"oci:{dest}:{self.tag}")
                ref = f"oci:{dest}:{self.tag}"
            else:
                raise ValueError(kind)
            self._refs[kind] = ref
        return self._refs[kind]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("parity")
    return Built(tmp, umoci_image(tmp, parity_layers(), tag=TAG), TAG)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The bundled sample, copied so that umoci and skopeo never touch the package's own files."""
    tmp = tmp_path_factory.mktemp("sample")
    layout = tmp / "layout"
    shutil.copytree(SAMPLE, layout)
    return Built(tmp, layout, "sample")


KINDS = ["oci", "oci-archive", "docker-archive", "zstd"]
_images: dict[tuple[int, str], ocilens.Image] = {}


def load(b: Built, kind: str) -> ocilens.Image:
    key = (id(b), kind)
    if key not in _images:
        _images[key] = ocilens.load(b.ref(kind), cache=False)
    return _images[key]


# ---------------------------------------------------------------------------------------------- tests


def test_construction_is_what_the_tests_claim(built: Built) -> None:
    """The built image really exercises the cases (checked on umoci's unpack and umoci's own blobs)."""
    t = built.truth
    assert t["/usr/bin/true"]["mode"] == 0o4755 and t["/usr/bin/true"]["link_group"] == "/usr/bin/true"
    assert t["/data/link"]["type"] == "file" and t["/data/link"]["nlink"] == 1 and "/data/orig" not in t
    assert t["/data/h1"]["link_group"] == t["/data/h3"]["link_group"] == "/data/h1" and "/data/h2" not in t
    assert t["/opt/thing"]["type"] == "file" and t["/srv/d"]["type"] == "dir" and "/srv/d/inner" not in t
    assert not any(p.startswith("/gone") for p in t) and "/junk" not in t
    assert t["/etc/dangling"]["linkname"] == "/nonexistent/target"
    assert t["/home/user/.profile"]["uid"] == (1000 if ROOT else os.geteuid())
    assert t["/srv/touched"]["mtime"] == EPOCH - 12345
    assert t["/usr/share/doc/base-files/FAQ"]["type"] == "symlink"
    assert os.fsencode("/caf\udce9/na\udcefve") in {os.fsencode(p) for p in t} and LONG_FILE in t
    assert t["/data/k2"]["link_group"] == t["/data/k3"]["link_group"] == "/data/k2" and "/data/k1" not in t
    cfg = config_of(built.layout, TAG)
    assert [bool(h.get("empty_layer")) for h in cfg["history"]] == [False, True, False, False, True]
    assert len(manifest_of(built.layout, TAG)["layers"]) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_files_match_umoci_unpack(built: Built, kind: str) -> None:
    img = load(built, kind)
    assert_same_tree(ocilens_view(img.files), truth_view(built.truth, owners=ROOT), f"img.files over {kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_transport_really_differs(built: Built, kind: str) -> None:
    """Each transport is what it says: zstd layers are zstd, docker-archive layers are plain tars."""
    img = load(built, kind)
    want = {"oci": "gzip", "oci-archive": "gzip", "docker-archive": "tar", "zstd": "zstd"}[kind]
    assert list(img.layers["compression"]) == [want] * 3
    assert list(img.layers["created_by"]) == ["ADD rootfs /", "RUN change things", "RUN change them back"]


@pytest.mark.parametrize("kind", KINDS)
def test_extract_matches_umoci_unpack(built: Built, kind: str, tmp_path: Path) -> None:
    img = load(built, kind)
    result = img.extract(tmp_path / "rootfs")
    got = tree_of(tmp_path / "rootfs")
    assert_same_tree(disk_view(got, owners=ROOT), disk_view(built.truth, owners=ROOT), f"extract over {kind}")
    assert root_attrs(tmp_path / "rootfs") == root_attrs(built.tmp / "umoci-bundle" / "rootfs")
    # hardlinks are real hardlinks: the same inode on disk
    assert got["/usr/bin/true"]["inode"] == got["/usr/bin/true-again"]["inode"]
    assert got["/data/h1"]["inode"] == got["/data/h3"]["inode"]
    assert got["/data/k2"]["inode"] == got["/data/k3"]["inode"]
    assert os.path.exists(os.path.join(os.fsencode(tmp_path / "rootfs"), b"caf\xe9", b"na\xefve"))
    if ROOT:
        want = os.getxattr(built.tmp / "umoci-bundle/rootfs/etc/xattr-file", "user.ocilens")
        assert os.getxattr(tmp_path / "rootfs/etc/xattr-file", "user.ocilens") == want == b"value"
    assert not result.skipped if ROOT else True


@pytest.mark.parametrize("kind", KINDS)
def test_sample_files_match_umoci_unpack(sample: Built, kind: str) -> None:
    img = load(sample, kind)
    assert_same_tree(ocilens_view(img.files), truth_view(sample.truth, owners=ROOT), f"sample over {kind}")


def test_sample_extract_matches_umoci_unpack(sample: Built, tmp_path: Path) -> None:
    img = load(sample, "oci")
    img.extract(tmp_path / "rootfs")
    got = tree_of(tmp_path / "rootfs")
    assert_same_tree(disk_view(got, owners=ROOT), disk_view(sample.truth, owners=ROOT), "sample extract")
    assert root_attrs(tmp_path / "rootfs") == root_attrs(sample.tmp / "umoci-bundle" / "rootfs")
    groups = [n["link_group"] for n in got.values() if n["link_group"]]
    assert groups, "the sample has a hardlink pair; the extraction lost it"


def flag(value: Any) -> bool:
    """A ``boolean`` cell that must not be NA."""
    assert value is not pd.NA and not pd.isna(value), "content_changed is NA"
    return bool(value)


def test_event_kinds_of_the_parity_image(built: Built) -> None:
    """The events of the umoci-built image, for the changes made by construction."""
    ev = load(built, "oci").events
    by = {(int(r.layer), r.path): r for r in ev.itertuples()}

    def row(layer: int, path: str):
        assert (layer, path) in by, f"no event for {path} in layer {layer}"
        return by[(layer, path)]

    hosts = row(1, "/etc/hosts")
    assert (hosts.event, int(hosts.prev_layer), flag(hosts.content_changed)) == ("overwritten", 0, True)
    assert int(hosts.size) == len("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    assert int(hosts.prev_size) == len("127.0.0.1 localhost\n")
    for p in ("/usr/bin/true", "/usr/bin/true-again"):  # chmod only
        r = row(1, p)
        assert r.event == "overwritten" and flag(r.content_changed) is False and int(r.mode) == 0o4755
    assert flag(row(1, "/srv/nobody").content_changed) is False and int(row(1, "/srv/nobody").uid) == 1000
    for p in ("/gone", "/gone/deep", "/gone/deep/f", "/gone/x", "/junk", "/data/orig"):
        r = row(1, p)
        assert (r.event, r.cause, int(r.prev_layer)) == ("whited_out", "whiteout", 0), p
    assert int(row(1, "/gone/deep/f").size) == len("in a directory that is deleted\n")
    assert int(row(1, "/gone/deep").size) == 0
    r = row(1, "/opt/thing")
    assert (r.event, r.type, flag(r.content_changed)) == ("overwritten", "dir", True)
    assert row(1, "/opt/thing/inside").event == "added"
    # umoci writes an explicit whiteout (srv/d/.wh.inner beside the new file srv/d): applied first
    r = row(1, "/srv/d/inner")
    assert (r.event, r.cause) == ("whited_out", "whiteout")
    r = row(1, "/srv/d")
    assert (r.event, r.type, int(r.prev_layer)) == ("overwritten", "file", 0)
    r = row(1, "/etc/abs-hosts")
    assert (r.event, r.linkname, flag(r.content_changed)) == ("overwritten", "/etc/debian_version", True)
    r = row(2, "/opt/thing/inside")
    assert (r.event, r.cause) == ("whited_out", "whiteout")
    r = row(2, "/srv/d")
    assert (r.event, r.type, int(r.prev_layer)) == ("overwritten", "dir", 1)
    r = row(2, "/data/h2")
    assert (r.event, r.cause) == ("whited_out", "whiteout")
    assert flag(row(2, "/srv/touched").content_changed) is False
    r = row(2, "/etc/empty")
    assert (int(r.prev_size), int(r.size), flag(r.content_changed)) == (0, len("not empty any more\n"), True)
    # one event per path per layer
    assert not ev.duplicated(["layer", "path"]).any()
