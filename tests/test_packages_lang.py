"""Python, npm and rpm packages written by the real tools into a rootfs, layer by layer (umoci makes the
layers); the truth is what each tool lists (``pip show -f``, ``npm ls``, ``rpm -qa`` / ``rpm -ql``) in
the rootfs each layer was made from. apk has no tool on Debian: its database is written here from the
format's specification, and the truth is what was written.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from matplotlib.figure import Figure

import ocilens
from imagebuild import Entry, layout_from_tars, run, tar_layer
from ocilens.packages import layer_package_diff, package_causes, packages_at
from test_packages_dpkg import build_layers

pytestmark = pytest.mark.timeout(600)

PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
TARGET = f"/usr/local/lib/{PY}/site-packages"
VENV = "/opt/venv"
VENV_SITE = f"{VENV}/lib/{PY}/site-packages"


@dataclass
class State:
    """One ecosystem's packages in one rootfs state, as its own tool lists them."""

    versions: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, location) -> version
    owners: dict[str, tuple[str, str]] = field(default_factory=dict)  # non-dir path -> (name, location)
    bytes: dict[tuple[str, str], int] = field(default_factory=dict)
    files: dict[tuple[str, str], int] = field(default_factory=dict)
    arch: dict[tuple[str, str], str] = field(default_factory=dict)
    size: dict[tuple[str, str], int] = field(default_factory=dict)
    requires: dict[str, list[str]] = field(default_factory=dict)  # name -> what the package file requires

    def own(self, root: Path, key: tuple[str, str], paths: list[str]) -> None:
        """Count the existing non-directories among ``paths`` (image-absolute) for ``key``."""
        inodes: dict[tuple[int, int], int] = {}
        n = 0
        for p in dict.fromkeys(paths):
            try:
                st = os.lstat(root / p.lstrip("/"))
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            self.owners[p] = key
            n += 1
            if stat.S_ISREG(st.st_mode):
                inodes[(st.st_dev, st.st_ino)] = st.st_size
        self.files[key] = n
        self.bytes[key] = sum(inodes.values())


def image_path(root: Path, host_path: str) -> str:
    rel = os.path.relpath(os.path.normpath(host_path), root)
    assert not rel.startswith(".."), host_path
    return "/" + rel


def check_final(img: ocilens.Image, eco: str, truth: State, under: str) -> None:
    """The final image's packages of ``eco`` and the owner of every non-directory under ``under`` are the
    tool's."""
    pk = img.packages
    present = pk[(pk["fate"] == "present") & (pk["ecosystem"] == eco)]
    got = {(r.name, r.location): r.version for r in present.itertuples()}
    assert got == truth.versions
    by_key = present.set_index(["name", "location"])
    assert {k: int(v) for k, v in by_key["bytes"].items()} == truth.bytes
    assert {k: int(v) for k, v in by_key["files"].items()} == truth.files
    files = img.files
    mine = files[files["path"].str.startswith(under + "/") & (files["type"] != "dir")]
    key_of = {int(r.Index): (r.name, r.location) for r in present.itertuples()}
    got_owner = {p: key_of.get(int(i)) if pd.notna(i) else None for p, i in zip(mine["path"], mine["package_id"])}
    want_owner = {p: truth.owners.get(p) for p in mine["path"]}
    wrong = {p: (got_owner[p], want_owner[p]) for p in got_owner if got_owner[p] != want_owner[p]}
    assert not wrong, list(wrong.items())[:10]
    assert {p for p in truth.owners if p.startswith(under + "/")} <= set(mine["path"])


# ---------------------------------------------------------------------------------------------- Python


def pip(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode:
        raise RuntimeError(f"pip {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc.stdout


def pip_show(root: Path, names: list[str], state: State, *, venv: bool) -> None:
    """``pip show -f`` for ``names`` (in the venv, or on PYTHONPATH=the --target dir) into ``state``."""
    if venv:
        out = pip("--python", str(root / VENV.lstrip("/") / "bin" / "python"), "show", "-f", *names)
    else:
        out = pip("show", "-f", *names, env={"PYTHONPATH": str(root / TARGET.lstrip("/"))})
    for block in out.split("\n---\n"):
        fields: dict[str, str] = {}
        files: list[str] = []
        in_files = False
        for line in block.splitlines():
            if in_files and line.startswith("  "):
                files.append(line.strip())
                continue
            in_files = line.startswith("Files:")
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        location = image_path(root, fields["Location"])
        key = (fields["Name"], location)
        state.versions[key] = fields["Version"]
        state.own(root, key, [os.path.normpath(f"{location}/{f}") for f in files])


@dataclass
class PyImage:
    layout: Path
    truths: dict[int, State]


@pytest.fixture(scope="session")
def py_image(tmp_path_factory: pytest.TempPathFactory) -> PyImage:
    work = tmp_path_factory.mktemp("py-image")
    truths: dict[int, State] = {}
    venv_python = lambda root: str(root / VENV.lstrip("/") / "bin" / "python")  # noqa: E731

    def base(root: Path) -> None:
        (root / "etc").mkdir(exist_ok=True)
        (root / "etc" / "os-release").write_text("ID=ocilens-test\n")

    def target(root: Path) -> None:
        pip("install", "-q", "--no-cache-dir", "--target", str(root / TARGET.lstrip("/")), "six==1.16.0", "idna==3.6")
        truths[1] = s = State()
        pip_show(root, ["six", "idna"], s, venv=False)

    def venv(root: Path) -> None:
        run(sys.executable, "-m", "venv", "--without-pip", root / VENV.lstrip("/"))
        pip("--python", venv_python(root), "install", "-q", "--no-cache-dir", "idna==3.6", "six==1.16.0")
        truths[2] = s = State()
        pip_show(root, ["six", "idna"], s, venv=False)
        pip_show(root, ["six", "idna"], s, venv=True)

    def upgrade(root: Path) -> None:
        pip("--python", venv_python(root), "install", "-q", "--no-cache-dir", "idna==3.7")
        pip("--python", venv_python(root), "uninstall", "-y", "-q", "six")
        truths[3] = s = State()
        pip_show(root, ["six", "idna"], s, venv=False)
        pip_show(root, ["idna"], s, venv=True)

    layout = build_layers(work, [
        ("base", base, None),
        (f"pip install --target {TARGET} six==1.16.0 idna==3.6", target, None),
        (f"python -m venv {VENV} && pip install idna==3.6 six==1.16.0", venv, "venv"),
        ("pip install idna==3.7 && pip uninstall -y six", upgrade, "final"),
    ])
    return PyImage(layout, truths)


def test_python_distributions(py_image: PyImage) -> None:
    img = ocilens.load(f"oci:{py_image.layout}:final", progress=False)
    t2, t3 = py_image.truths[2], py_image.truths[3]
    check_final(img, "python", t3, "/usr/local/lib")
    check_final(img, "python", t3, VENV)
    pk = img.packages.set_index(["name", "location", "version"])
    six = pk.loc[("six", VENV_SITE, "1.16.0")]
    assert (six["layer"], six["removed_layer"], six["fate"], six["files"], six["bytes"]) == (2, 3, "removed", 0, 0)
    # uninstalled: all it shipped in layer 2 is waste, and its own
    assert six["wasted_bytes"] == t2.bytes[("six", VENV_SITE)] > 0
    old = pk.loc[("idna", VENV_SITE, "3.6")]
    assert (old["layer"], old["removed_layer"], old["fate"], old["next_version"]) == (2, 3, "upgraded", "3.7")
    assert pk.loc[("idna", TARGET, "3.6"), "fate"] == "present"  # the --target copy is another install
    causes = package_causes(img)
    old_files = {p for p, k in t2.owners.items() if k == ("idna", VENV_SITE)}
    mine = causes[causes["path"].isin(old_files) & (causes["layer"] == 2)]
    assert len(mine) and (mine["package"] == "idna").all()
    assert (mine["package_id"] == img.packages.index[(img.packages["name"] == "idna")
                                                     & (img.packages["version"] == "3.6")
                                                     & (img.packages["location"] == VENV_SITE)][0]).all()
    d = layer_package_diff(img, 3)
    assert {(r.name, str(r.change), r.version_a, r.version_b) for r in d.itertuples()} == {
        ("six", "removed", "1.16.0", pd.NA), ("idna", "upgraded", "3.6", "3.7")}
    assert d.set_index("name").at["six", "size_delta"] == -t2.bytes[("six", VENV_SITE)]
    at2 = packages_at(img, 2).set_index(["name", "location"])
    assert {k: int(v) for k, v in at2["bytes"].items()} == t2.bytes
    older = ocilens.load(f"oci:{py_image.layout}:venv", progress=False)
    diff = older.diff(img).packages
    assert {(r.name, str(r.change)) for r in diff.itertuples()} == {("six", "removed"), ("idna", "upgraded")}


# ------------------------------------------------------------------------------------------------- npm


def npm(*args: str) -> str:
    return run("npm", "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error", *args)


def npm_state(root: Path, prefix: str) -> State:
    """``npm ls --all --parseable --long``: each package's directory, name and version."""
    state = State()
    out = npm("ls", "--prefix", str(root / prefix.lstrip("/")), "--all", "--parseable", "--long")
    for line in out.splitlines()[1:]:  # the first line is the project itself
        directory, _, spec = line.partition(":")
        name, _, version = spec.split(":")[0].rpartition("@")
        location = image_path(root, directory)
        key = (name, location)
        state.versions[key] = version
        paths = []
        for dirpath, dirnames, filenames in os.walk(directory):
            if dirpath == directory and "node_modules" in dirnames:
                dirnames.remove("node_modules")  # nested packages are their own
            paths += [image_path(root, os.path.join(dirpath, n)) for n in filenames]
            paths += [image_path(root, os.path.join(dirpath, n)) for n in dirnames
                      if os.path.islink(os.path.join(dirpath, n))]
        state.own(root, key, paths)
    return state


@pytest.fixture(scope="session")
def npm_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, State]]:
    work = tmp_path_factory.mktemp("npm-image")
    truths: dict[int, State] = {}

    def step(layer: int, *args: str) -> Callable[[Path], None]:
        def change(root: Path) -> None:
            (root / "app").mkdir(exist_ok=True)
            npm(*args, "--prefix", str(root / "app"))
            truths[layer] = npm_state(root, "/app")
        return change

    layout = build_layers(work, [
        ("npm install is-number@6.0.0 is-odd@3.0.1", step(0, "install", "is-number@6.0.0", "is-odd@3.0.1"), "first"),
        ("npm install is-number@7.0.0", step(1, "install", "is-number@7.0.0"), None),
        ("npm uninstall is-odd", step(2, "uninstall", "is-odd"), "final"),
    ])
    return layout, truths


def test_npm_packages(npm_image: tuple[Path, dict[int, State]]) -> None:
    layout, truths = npm_image
    img = ocilens.load(f"oci:{layout}:final", progress=False)
    check_final(img, "npm", truths[2], "/app")
    nested = "/app/node_modules/is-odd/node_modules/is-number"
    assert ("is-number", nested) in truths[1].versions  # npm nested the older is-number under is-odd
    pk = img.packages
    rows = {(r.name, r.location, r.version): r for r in pk.itertuples()}
    top = rows[("is-number", "/app/node_modules/is-number", "6.0.0")]
    assert (top.layer, top.removed_layer, top.fate, top.next_version) == (0, 1, "upgraded", "7.0.0")
    odd = rows[("is-odd", "/app/node_modules/is-odd", "3.0.1")]
    assert (odd.layer, odd.removed_layer, odd.fate) == (0, 2, "removed")
    assert odd.wasted_bytes == truths[0].bytes[("is-odd", "/app/node_modules/is-odd")]
    inner = rows[("is-number", nested, "6.0.0")]
    assert (inner.layer, inner.removed_layer, inner.fate) == (1, 2, "removed")
    assert inner.wasted_bytes == truths[1].bytes[("is-number", nested)]
    # the nested package's files are its own, not is-odd's
    ev = img.events
    nested_ev = ev[(ev["layer"] == 1) & ev["path"].str.startswith(nested + "/") & (ev["type"] == "file")]
    assert len(nested_ev) and (nested_ev["package_id"] == inner.Index).all()
    d1 = layer_package_diff(img, 1)
    assert {(r.name, r.location_b, str(r.change)) for r in d1.itertuples()} == {
        ("is-number", "/app/node_modules/is-number", "upgraded"), ("is-number", nested, "added")}
    labels = [t.get_text() for t in img.plot.packages(Figure().subplots()).get_yticklabels()]
    assert len(labels) == len(set(labels)) == 4  # is-number 6.0.0 twice (two places), told apart
    assert f"is-number 6.0.0 (npm) {nested}" in labels
    first = ocilens.load(f"oci:{layout}:first", progress=False)
    d = first.diff(img).packages
    assert {(r.name, str(r.change)) for r in d.itertuples()} == {("is-number", "upgraded"), ("is-odd", "removed")}
    assert d.set_index("name").at["is-odd", "size_delta"] == -truths[0].bytes[("is-odd", "/app/node_modules/is-odd")]


# ------------------------------------------------------------------------------------------------- rpm

SPEC = """Name: {name}
{epoch}Version: {version}
Release: 1
Summary: ocilens test package
License: MIT
BuildArch: noarch
{requires}%description
A package for the ocilens tests.
%install
mkdir -p %{{buildroot}}/usr/share/{name} %{{buildroot}}/usr/bin
{files}
%files
/usr/share/{name}
/usr/bin/{name}
"""
RPMDB = "/var/lib/rpm"


def rpmbuild(work: Path, name: str, version: str, files: dict[str, str | tuple[str, int]],
             epoch: int | None = None, requires: str | None = None) -> Path:
    """A noarch rpm by ``rpmbuild -bb``; a file is a printf format, or (character, count) for filler."""
    top = work / f"rpmbuild-{name}-{version}"
    (top / "SPECS").mkdir(parents=True)
    lines = [f"head -c {c[1]} /dev/zero | tr '\\0' '{c[0]}' > %{{buildroot}}{path}" if isinstance(c, tuple)
             else f"printf '{c}' > %{{buildroot}}{path}" for path, c in files.items()]
    lines.append(f"chmod 755 %{{buildroot}}/usr/bin/{name}")
    spec = top / "SPECS" / f"{name}.spec"
    spec.write_text(SPEC.format(name=name, version=version, files="\n".join(lines),
                                epoch=f"Epoch: {epoch}\n" if epoch is not None else "",
                                requires=f"Requires: {requires}\n" if requires else ""))
    run("rpmbuild", "-bb", "--define", f"_topdir {top}", spec)
    return next((top / "RPMS" / "noarch").glob("*.rpm"))


def rpm_state(root: Path) -> State:
    state = State()
    db = ("--root", str(root), "--dbpath", RPMDB)
    fmt = "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SIZE}\\n"
    out = run("rpm", *db, "-qa", "--qf", fmt)
    for line in out.splitlines():
        name, evr, arch, size = line.split("\t")
        key = (name, f"{RPMDB}/rpmdb.sqlite")
        state.versions[key] = evr
        state.arch[key] = arch
        state.size[key] = int(size)
        state.own(root, key, run("rpm", *db, "-ql", name).splitlines())
    return state


@pytest.fixture(scope="session")
def rpm_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, State]]:
    version = run("rpm", "--version").split()[-1]
    assert tuple(int(x) for x in re.findall(r"\d+", version)[:2]) >= (4, 16), version
    assert run("rpm", "--eval", "%{_db_backend}").strip() == "sqlite"
    work = tmp_path_factory.mktemp("rpm-image")
    demo10 = rpmbuild(work, "ocidemo", "1.0", {"/usr/share/ocidemo/data.txt": ("1", 12000),
                                               "/usr/share/ocidemo/old.txt": ("o", 4000),
                                               "/usr/bin/ocidemo": "#!/bin/sh\\necho 1.0\\n"})
    demo11 = rpmbuild(work, "ocidemo", "1.1", {"/usr/share/ocidemo/data.txt": ("2", 14000),
                                               "/usr/bin/ocidemo": "#!/bin/sh\\necho 1.1\\n"})
    extra = rpmbuild(work, "ocidemo-extra", "2.0~beta1", {"/usr/share/ocidemo-extra/x.txt": ("x", 5000),
                                                          "/usr/bin/ocidemo-extra": "#!/bin/sh\\n"}, epoch=2,
                     requires="ocidemo >= 1.0")
    truths: dict[int, State] = {}

    def rpm(layer: int, *args: str) -> Callable[[Path], None]:
        def change(root: Path) -> None:
            if not (root / RPMDB.lstrip("/") / "rpmdb.sqlite").exists():
                run("rpm", "--root", root, "--dbpath", RPMDB, "--initdb")
            run("rpm", "--root", root, "--dbpath", RPMDB, *args)
            assert (root / RPMDB.lstrip("/") / "rpmdb.sqlite").stat().st_size > 0
            truths[layer] = rpm_state(root)
        return change

    layout = build_layers(work, [
        ("rpm -i ocidemo-1.0 ocidemo-extra-2.0~beta1", rpm(0, "-i", "--nodeps", str(demo10), str(extra)), "first"),
        ("rpm -U ocidemo-1.1", rpm(1, "-U", "--nodeps", str(demo11)), None),
        ("rpm -e ocidemo-extra", rpm(2, "-e", "--nodeps", "ocidemo-extra"), "final"),
    ])
    truths[0].requires = {name: run("rpm", "-qp", "--requires", str(rpm)).splitlines()
                          for name, rpm in (("ocidemo", demo10), ("ocidemo-extra", extra))}
    return layout, truths


def test_rpm_requires(rpm_image: tuple[Path, dict[int, State]]) -> None:
    """Each package's requires, as ``rpm -qp --requires`` lists them (names only; rpm's own ``rpmlib(...)``
    features left out), and its provides."""
    from ocilens.packages.model import model_of

    layout, truths = rpm_image
    img = ocilens.load(f"oci:{layout}:first", progress=False)
    got = {r.package.name: r.package for r in model_of(img).records}
    for name, lines in truths[0].requires.items():
        want = list(dict.fromkeys(ln.split()[0] for ln in lines if not ln.startswith("rpmlib(")))
        assert list(got[name].depends) == want, name
    assert "ocidemo" in got["ocidemo-extra"].depends and "/bin/sh" in got["ocidemo-extra"].depends
    assert "ocidemo-extra" in got["ocidemo-extra"].provides


def test_rpm_packages(rpm_image: tuple[Path, dict[int, State]]) -> None:
    layout, truths = rpm_image
    img = ocilens.load(f"oci:{layout}:final", progress=False)
    check_final(img, "rpm", truths[2], "/usr")
    pk = img.packages
    present = pk[pk["fate"] == "present"]
    for r in present.itertuples():
        key = (r.name, r.location)
        assert (r.architecture, r.installed_size) == (truths[2].arch[key], truths[2].size[key])
    rows = {(r.name, r.version): r for r in pk.itertuples()}
    loc = f"{RPMDB}/rpmdb.sqlite"
    assert truths[0].versions[("ocidemo-extra", loc)] == "2:2.0~beta1-1"  # the epoch, as rpm prints it
    extra = rows[("ocidemo-extra", "2:2.0~beta1-1")]
    assert (extra.layer, extra.removed_layer, extra.fate) == (0, 2, "removed")
    assert extra.wasted_bytes == truths[0].bytes[("ocidemo-extra", loc)] > 0
    old = rows[("ocidemo", "1.0-1")]
    assert (old.layer, old.removed_layer, old.fate, old.next_version) == (0, 1, "upgraded", "1.1-1")
    assert old.wasted_bytes == truths[0].bytes[("ocidemo", loc)]  # every file rewritten or removed
    causes = package_causes(img).set_index("path")
    assert causes.at["/usr/share/ocidemo/old.txt", "cause"] == "deleted_later"
    assert causes.at["/usr/share/ocidemo/old.txt", "package_id"] == old.Index
    d = ocilens.load(f"oci:{layout}:first", progress=False).diff(img).packages.set_index("name")
    assert d["change"].to_dict() == {"ocidemo": "upgraded", "ocidemo-extra": "removed"}
    assert d.at["ocidemo", "size_delta"] == truths[2].bytes[("ocidemo", loc)] - truths[0].bytes[("ocidemo", loc)]


# ------------------------------------------------------------------------------------------------- apk

# Per package: P name, V version, A arch, S package size, I installed size, T description, o origin,
# then F (a directory, relative) with the R files in it, each followed by its Z checksum.
APK_BASE = {
    "musl": ("1.2.4_git20230717-r4", {"lib/ld-musl-x86_64.so.1": b"\x7fELF" + b"m" * 9000}),
    "zlib": ("1.3.1-r0", {"lib/libz.so.1.3.1": b"\x7fELF" + b"z" * 4000, "usr/share/doc/zlib/README": b"zlib\n"}),
    "zlib-dev": ("1.3.1-r0", {"usr/include/zlib.h": b"/* zlib */\n" * 100}),
}
APK_CURL = {"libcurl": ("8.5.0-r0", {"usr/lib/libcurl.so.4.8.0": b"\x7fELF" + b"c" * 7000})}
APK_ZLIB_NEW = {"zlib": ("1.3.1-r1", {"lib/libz.so.1.3.1": b"\x7fELF" + b"Z" * 4100})}


def apk_installed(packages: dict[str, tuple[str, dict[str, bytes]]]) -> bytes:
    out = []
    for name, (version, files) in packages.items():
        lines = [f"C:Q1{'A' * 27}=", f"P:{name}", f"V:{version}", "A:x86_64", f"S:{sum(map(len, files.values())) // 2}",
                 f"I:{sum(map(len, files.values()))}", f"T:{name} for the ocilens tests", "U:https://ocilens.invalid",
                 "L:MIT", f"o:{name}", "m:ocilens tests <tests@ocilens.invalid>", "t:1700000000", "c:0"]
        by_dir: dict[str, list[str]] = {}
        for path in files:
            d, _, base = path.rpartition("/")
            by_dir.setdefault(d, []).append(base)
        for d, bases in by_dir.items():
            lines.append(f"F:{d}")
            for b in bases:
                lines += [f"R:{b}", f"Z:Q1{'B' * 27}="]
        out.append("\n".join(lines) + "\n")
    return ("\n".join(out) + "\n").encode()


def apk_layer(packages: dict[str, tuple[str, dict[str, bytes]]], db: dict[str, tuple[str, dict[str, bytes]]],
              remove: list[str] = ()) -> bytes:
    entries = [Entry.dir("lib"), Entry.dir("lib/apk"), Entry.dir("lib/apk/db")]
    for _, files in packages.values():
        for path, content in files.items():
            entries.append(Entry.file(path, content, mode=0o755 if ".so" in path else 0o644))
    entries += [Entry.whiteout(p) for p in remove]
    entries.append(Entry.file("lib/apk/db/installed", apk_installed(db)))
    return tar_layer(entries)


def test_apk_database(tmp_path: Path) -> None:
    db0 = dict(APK_BASE)
    db1 = {**db0, **APK_CURL}
    db2 = {**db0, **APK_ZLIB_NEW}
    layout = layout_from_tars(tmp_path, [
        apk_layer(APK_BASE, db0), apk_layer(APK_CURL, db1),
        apk_layer(APK_ZLIB_NEW, db2, remove=["usr/lib/libcurl.so.4.8.0"]),
    ], history=["apk add musl zlib", "apk add libcurl", "apk upgrade zlib && apk del libcurl"])
    img = ocilens.load(f"oci:{layout}:t", progress=False)
    pk = img.packages
    rows = {(r.name, r.version): r for r in pk.itertuples()}
    assert set(rows) == {("musl", "1.2.4_git20230717-r4"), ("zlib", "1.3.1-r0"), ("libcurl", "8.5.0-r0"),
                         ("zlib", "1.3.1-r1"), ("zlib-dev", "1.3.1-r0")}
    assert rows[("zlib-dev", "1.3.1-r0")].dev and not rows[("zlib", "1.3.1-r1")].dev
    assert rows[("zlib-dev", "1.3.1-r0")].bytes == 1100
    assert {r.ecosystem for r in pk.itertuples()} == {"apk"}
    old = rows[("zlib", "1.3.1-r0")]
    assert (old.layer, old.removed_layer, old.fate, old.next_version) == (0, 2, "upgraded", "1.3.1-r1")
    assert old.wasted_bytes == len(APK_BASE["zlib"][1]["lib/libz.so.1.3.1"])
    new = rows[("zlib", "1.3.1-r1")]
    # the README the upgrade did not rewrite is still zlib's (the new version lists it too, here not)
    assert (new.files, new.bytes) == (1, 4104)
    curl = rows[("libcurl", "8.5.0-r0")]
    assert (curl.layer, curl.removed_layer, curl.fate, curl.files, curl.wasted_bytes) == (1, 2, "removed", 0, 7004)
    assert (curl.architecture, curl.installed_size, curl.source) == ("x86_64", 7004, "libcurl")
    files = img.files.set_index("path")
    assert files.at["/lib/ld-musl-x86_64.so.1", "package"] == "musl"
    assert files.at["/lib/libz.so.1.3.1", "package"] == "zlib"
    assert pd.isna(files.at["/usr/share/doc/zlib/README", "package"])  # zlib 1.3.1-r1 does not list it
    assert pd.isna(files.at["/lib/apk/db/installed", "package"])
    assert int(files.loc["/lib/libz.so.1.3.1", "package_id"]) == new.Index
    d = layer_package_diff(img, 2).set_index("name")
    assert d["change"].to_dict() == {"libcurl": "removed", "zlib": "upgraded"}
    assert d.at["zlib", "size_delta"] == 4104 - (4004 + 5)


# ------------------------------------------------------------------------------------------ precedence


def test_system_package_manager_owns_what_it_installed(tmp_path: Path) -> None:
    """Debian's python3-six installs a distribution: dpkg owns its files (a user removes the deb), the
    Python reader still lists it. Written by hand (no python3 in minbase)."""
    site = "usr/lib/python3/dist-packages"
    record = "six.py,sha256=x,34549\nsix-1.16.0.dist-info/METADATA,,\nsix-1.16.0.dist-info/RECORD,,\n"
    status = ("Package: python3-six\nStatus: install ok installed\nArchitecture: all\nVersion: 1.16.0-4\n"
              "Installed-Size: 60\nSource: six\n\n")
    lst = f"/.\n/usr\n/{site}\n/{site}/six.py\n/{site}/six-1.16.0.dist-info\n/{site}/six-1.16.0.dist-info/METADATA\n"
    layout = layout_from_tars(tmp_path, [tar_layer([
        Entry.file(f"{site}/six.py", b"s" * 34549),
        Entry.file(f"{site}/six-1.16.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\n"),
        Entry.file(f"{site}/six-1.16.0.dist-info/RECORD", record),
        Entry.file("var/lib/dpkg/status", status),
        Entry.file("var/lib/dpkg/info/python3-six.list", lst),
    ])])
    img = ocilens.load(f"oci:{layout}:t", progress=False)
    files = img.files.set_index("path")
    assert files.at[f"/{site}/six.py", "package"] == "python3-six"
    assert files.at[f"/{site}/six.py", "ecosystem"] == "dpkg"
    assert files.at[f"/{site}/six-1.16.0.dist-info/RECORD", "package"] == "six"  # only Python lists it
    pk = img.packages.set_index("name")
    assert pk.at["python3-six", "bytes"] == 34549 + len("Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\n")
    assert (pk.at["six", "ecosystem"], pk.at["six", "files"]) == ("python", 1)
    assert pk.at["python3-six", "source"] == "six"


def test_image_without_package_databases() -> None:
    img = ocilens.sample_image(progress=False)
    assert img.packages.empty and list(img.packages.columns)[:3] == ["ecosystem", "name", "version"]
    for frame in (img.files, img.events):
        assert frame["package"].isna().all() and frame["package_id"].isna().all()
        assert str(frame["package"].dtype) == "string" and str(frame["package_id"].dtype) == "Int32"
    by = img.bloat().by_package
    assert len(by) == 1 and pd.isna(by.at[0, "name"]) and by.at[0, "bytes"] == img.bloat().wasted_bytes
    assert img.diff(img).packages.empty
    assert "No package database found" in img.report().html
    assert img.plot.packages(Figure().subplots()).texts  # "no package databases found"
