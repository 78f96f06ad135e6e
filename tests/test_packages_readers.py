"""The database readers on formats no tool on this machine writes (so the files are written here, from the
formats' documentation): distroless's ``/var/lib/dpkg/status.d``, old-style ``*.egg-info`` (a directory
with ``installed-files.txt``, one with only ``top_level.txt``, a single file), dpkg status states. The
scan does not capture ``status.d`` or single-file ``.egg-info`` yet, so these read ``DbFiles`` directly."""

from __future__ import annotations

import hashlib

from ocilens.packages import apk, dpkg, python
from ocilens.packages.base import DbFiles, join, relation_names, stanzas


def db(files: dict[str, str | bytes]) -> DbFiles:
    data = {p: (c.encode() if isinstance(c, str) else c) for p, c in files.items()}
    paths = list(data)
    return DbFiles({p: (0, i) for i, p in enumerate(paths)}, lambda _layer, i: data[paths[i]],
                   lambda _layer, i: hashlib.sha256(data[paths[i]]).hexdigest())


def test_distroless_status_d() -> None:
    pkgs = dpkg.read(db({
        "/var/lib/dpkg/status.d/libc6": "Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n"
                                        "Source: glibc\nInstalled-Size: 12345\n",
        "/var/lib/dpkg/status.d/libc6.md5sums": "0123456789abcdef0123456789abcdef  lib/x86_64-linux-gnu/libc.so.6\n"
                                                "0123456789abcdef0123456789abcdef  usr/share/doc/libc6/copyright\n",
        "/var/lib/dpkg/status.d/tzdata": "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
    }))
    by = {p.name: p for p in pkgs}
    assert set(by) == {"libc6", "tzdata"}
    assert by["libc6"].paths == ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/share/doc/libc6/copyright")
    libc = by["libc6"]
    assert (libc.source, libc.installed_size, libc.architecture) == ("glibc", 12345 * 1024, "amd64")
    assert by["tzdata"].paths == () and by["tzdata"].source == "tzdata"


def test_dpkg_states_and_multiarch_lists() -> None:
    status = ("Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n\n"
              "Package: libfoo\nStatus: install ok installed\nMulti-Arch: same\nVersion: 1:2.0-1\n"
              "Architecture: amd64\nDescription: a\n long\n .\n description\n\n"
              "Package: half\nStatus: install reinstreq half-installed\nVersion: 3\nArchitecture: all\n")
    pkgs = dpkg.read(db({"/var/lib/dpkg/status": status,
                         "/var/lib/dpkg/info/libfoo:amd64.list": "/.\n/usr\n/usr/lib/libfoo.so.2\n",
                         "/var/lib/dpkg/info/half.list": "/usr/bin/half\n"}))
    by = {p.name: p for p in pkgs}
    assert set(by) == {"libfoo", "half"}  # config-files: only its conffiles are left, it is not installed
    assert by["libfoo"].paths == ("/usr", "/usr/lib/libfoo.so.2")
    assert by["half"].paths == ("/usr/bin/half",)
    assert list(stanzas("A: 1\n b\nB: 2\n\n\nA: 3\n")) == [{"A": "1\nb", "B": "2"}, {"A": "3"}]


def test_dpkg_dependency_fields() -> None:
    """Pre-Depends and Depends as names (versions, architecture qualifiers and build profiles dropped,
    alternatives kept together), Provides, Essential: as dpkg's status writes them."""
    status = ("Package: tar\nStatus: install ok installed\nEssential: yes\nVersion: 1.34+dfsg-1.2\nArchitecture: amd64\n"
              "Pre-Depends: libacl1 (>= 2.2.23), libc6 (>= 2.34), libselinux1 (>= 3.1~)\n\n"
              "Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\nArchitecture: amd64\n"
              "Provides: python3-profiler\nDepends: python3.11 (>= 3.11.2-1~), libpython3-stdlib (= 3.11.2-1+b1),\n"
              " python3-minimal:any | python3-minimal-alt [amd64], debconf (>= 0.5) | debconf-2.0 <!nocheck>\n")
    by = {p.name: p for p in dpkg.read(db({"/var/lib/dpkg/status": status}))}
    assert by["tar"].depends == ("libacl1", "libc6", "libselinux1") and by["tar"].essential
    py = by["python3"]
    assert py.depends == ("python3.11", "libpython3-stdlib", "python3-minimal|python3-minimal-alt", "debconf|debconf-2.0")
    assert py.provides == ("python3-profiler",) and not py.essential
    assert relation_names("") == () and relation_names("a:native (>= 1)") == ("a",)


def test_egg_info_forms() -> None:
    site = "/usr/lib/python3/dist-packages"
    pkgs = python.read(db({
        f"{site}/Old_Thing-1.0-py3.11.egg-info/PKG-INFO": "Metadata-Version: 1.1\nName: Old_Thing\nVersion: 1.0\n",
        f"{site}/Old_Thing-1.0-py3.11.egg-info/installed-files.txt": "../old_thing/__init__.py\n./\nPKG-INFO\n",
        f"{site}/tops-2.1.egg-info/PKG-INFO": "Name: tops\nVersion: 2.1\n",
        f"{site}/tops-2.1.egg-info/top_level.txt": "tops\n_tops_c\n",
        f"{site}/single-0.3.egg-info": "Metadata-Version: 1.0\nName: single\nVersion: 0.3\n",
    }))
    by = {p.name: p for p in pkgs}
    old = by["Old_Thing"]
    assert (old.version, old.location, old.key_name) == ("1.0", site, "old-thing")
    assert old.paths == (f"{site}/old_thing/__init__.py", f"{site}/Old_Thing-1.0-py3.11.egg-info",
                         f"{site}/Old_Thing-1.0-py3.11.egg-info/PKG-INFO")
    assert old.trees == (f"{site}/Old_Thing-1.0-py3.11.egg-info",)
    tops = by["tops"]
    assert set(tops.trees) == {f"{site}/tops-2.1.egg-info", f"{site}/tops", f"{site}/_tops_c"}
    assert set(tops.paths) == {f"{site}/tops.py", f"{site}/_tops_c.py"}
    single = by["single"]
    assert (single.version, single.paths, single.trees) == ("0.3", (f"{site}/single-0.3.egg-info",), ())


def test_apk_paragraphs() -> None:
    text = ("C:Q1abc=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nS:500000\nI:900000\nT:Size optimized toolbox\n"
            "o:busybox\nD:so:libc.musl-x86_64.so.1 !busybox-extras musl>=1.2\np:/bin/sh cmd:busybox=1.36.1-r15 cmd:sh\n"
            "F:bin\nR:busybox\na:0:0:755\nZ:Q1def=\nF:etc\nR:securetty\nZ:Q1ghi=\nF:etc/busybox-paths.d\n"
            "R:busybox\n\nP:empty\nV:1-r0\n\n")
    pkgs = apk.read(db({"/lib/apk/db/installed": text}))
    assert [(p.name, p.version, p.architecture, p.installed_size) for p in pkgs] == [
        ("busybox", "1.36.1-r15", "x86_64", 900000), ("empty", "1-r0", None, None)]
    assert pkgs[0].paths == ("/bin/busybox", "/etc/securetty", "/etc/busybox-paths.d/busybox")
    # D: dependencies (a ! conflict is not one, versions dropped) and p: provides
    assert pkgs[0].depends == ("so:libc.musl-x86_64.so.1", "musl")
    assert pkgs[0].provides == ("/bin/sh", "cmd:busybox", "cmd:sh")
    assert (pkgs[1].depends, pkgs[1].provides) == ((), ())


def test_join() -> None:
    assert join("/usr/lib/python3.11/site-packages", "../../../bin/tool") == "/usr/bin/tool"
    assert join("/a", "/abs/x") == "/abs/x"
    assert join("/", "x/./y//z") == "/x/y/z"
    assert join("/a", "../../..") == "/"
