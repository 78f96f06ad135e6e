"""dpkg packages with a real Debian: ``debootstrap --variant=minbase bookworm`` is the base layer, then
real dpkg runs (chrooted) install, upgrade and purge packages, layer by layer. The truth is what dpkg
itself says in each state (``dpkg -L``, ``dpkg-query -W``), read from the rootfs each layer was made from.

Layers (``oci:LAYOUT:installed`` stops after layer 1):
  0  debootstrap --variant=minbase bookworm
  1  dpkg -i hello (Debian's .deb, by ``apt-get download``) ocilens-demo 1.0~rc1-1 (built here with dpkg-deb)
  2  dpkg -i ocilens-demo 1.0-1              (an upgrade: every file rewritten, one dropped, one new)
  3  dpkg --purge hello                        (tag ``final``)
  4  rm -rf /var/lib/dpkg/info /var/lib/dpkg/status*  (tag ``slim``: the database deleted, not the packages)
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from matplotlib.figure import Figure

import ocilens
from ocilens.html import signed
from ocilens.packages import layer_package_diff, package_causes, packages_at, waste_by_ecosystem
from ocilens.packages.show import diff_lines

from imagebuild import run

pytestmark = pytest.mark.timeout(600)

SUITE = "bookworm"
DEMO = "ocilens-demo"


# --------------------------------------------------------------------------------------------- helpers


def debian_mirror() -> str | None:
    """The Debian archive URI the machine's apt is configured with (sources.list or deb822 .sources)."""
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m[2] == SUITE:
                return m[1]
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for para in Path(path).read_text().split("\n\n"):
            fields = {}
            for line in para.splitlines():
                if ":" in line and not line.startswith((" ", "#")):
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.split()
            if "deb" in fields.get("types", []) and SUITE in fields.get("suites", []) and fields.get("uris"):
                return fields["uris"][0]
    return None


def resolve_in(root: Path, path: str) -> str:
    """``path``'s parent directories resolved inside ``root`` as a chroot would (the last name kept)."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while len(parts) > 1:
        comp = parts.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        here = root.joinpath(*done, comp)
        if here.is_symlink() and hops < 40:
            hops += 1
            target = os.readlink(here)
            parts = [p for p in target.split("/") if p] + parts
            if target.startswith("/"):
                done = []
            continue
        done.append(comp)
    return "/" + "/".join(done + parts)


@dataclass
class Truth:
    """What dpkg says about one rootfs state."""

    packages: dict[str, tuple[str, str, int]]  # name -> (version, arch, Installed-Size in bytes)
    owners: dict[str, set[str]] = field(default_factory=dict)  # resolved non-directory path -> packages
    files: dict[str, int] = field(default_factory=dict)  # package -> non-directory paths present
    bytes: dict[str, int] = field(default_factory=dict)  # package -> bytes of its regular files (inodes once)
    regular: dict[str, int] = field(default_factory=dict)  # package -> its regular files (inodes once)
    docs: dict[str, int] = field(default_factory=dict)  # package -> bytes of docs, man pages, translations
    listed: dict[str, list[str]] = field(default_factory=dict)  # package -> dpkg -L as printed
    # package -> (Pre-Depends, Depends, Provides, Essential) as dpkg-query prints them
    relations: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)


def dpkg_truth(root: Path) -> Truth:
    out = run("chroot", root, "dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\t${Installed-Size}\t"
              "${db:Status-Abbrev}\n")
    pkgs = {}
    for line in out.splitlines():
        name, version, arch, size, status = line.split("\t")
        if status.strip() in ("ii", "iU", "iF", "iW", "it", "hi"):
            pkgs[name] = (version, arch, int(size or 0) * 1024)
    truth = Truth(pkgs)
    out = run("chroot", root, "dpkg-query", "-W", "-f=${Package}\t${Pre-Depends}\t${Depends}\t${Provides}\t"
              "${Essential}\n")
    for line in out.splitlines():
        name, pre, dep, prov, essential = line.split("\t")
        if name in pkgs:
            truth.relations[name] = (pre, dep, prov, essential)
    kinds: dict[str, tuple[bool, tuple[int, int], int]] = {}  # path -> (regular?, inode, size)
    for name in pkgs:
        listed = [ln for ln in run("chroot", root, "dpkg", "-L", name).splitlines() if ln.startswith("/")]
        truth.listed[name] = listed
        for p in listed:
            rp = resolve_in(root, p)
            try:
                st = os.lstat(root / rp.lstrip("/"))
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                truth.owners.setdefault(rp, set()).add(name)
                kinds[rp] = (stat.S_ISREG(st.st_mode), (st.st_dev, st.st_ino), st.st_size)
    # a path several packages list is shared (a directory to dpkg): it counts for none of them
    for name in pkgs:
        mine = [p for p, o in truth.owners.items() if o == {name}]
        inodes = {kinds[p][1]: kinds[p][2] for p in mine if kinds[p][0]}
        truth.files[name] = len(mine)
        truth.bytes[name] = sum(inodes.values())
        truth.regular[name] = len(inodes)
        truth.docs[name] = sum({kinds[p][1]: kinds[p][2] for p in mine if kinds[p][0] and re.match(
            r"/usr/share/(doc|man|info|locale)/", p)}.values())
    return truth


def build_deb(workdir: Path, name: str, version: str, files: dict[str, bytes | str]) -> Path:
    """A real .deb by ``dpkg-deb --build`` (Architecture: all), with the given files."""
    root = workdir / f"{name}_{version}".replace("~", "_")
    (root / "DEBIAN").mkdir(parents=True)
    total = 0
    for path, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        p.chmod(0o755 if "/bin/" in path else 0o644)
        total += (len(data) + 1023) // 1024
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: ocilens tests <tests@ocilens.invalid>\n"
        f"Installed-Size: {total}\nSection: misc\nPriority: optional\nDescription: ocilens test package\n"
        " Built by the ocilens tests.\n")
    out = workdir / f"{root.name}.deb"
    run("dpkg-deb", "--root-owner-group", "--build", root, out)
    return out


def build_layers(tmp: Path, steps: list[tuple[str, Callable[[Path], None], str | None]]) -> Path:
    """An OCI layout made by umoci, one layer per step: (``created_by``, change to the rootfs, the tag to
    give the image as it is after the step, or None). One bundle is reused (``repack --refresh-bundle``);
    the image being built is tagged ``work``."""
    layout = tmp / "layout"
    image = f"{layout}:work"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", image)
    bundle = tmp / "bundle"
    run("umoci", "unpack", "--image", image, bundle)
    for created_by, change, tag in steps:
        change(bundle / "rootfs")
        run("umoci", "repack", "--refresh-bundle", "--image", image, "--history.created_by", created_by, bundle)
        if tag:
            run("umoci", "tag", "--image", image, tag)
    shutil.rmtree(bundle)
    return layout


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def debootstrap_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``debootstrap --variant=minbase bookworm`` from the configured mirror, once per test run."""
    root = tmp_path_factory.mktemp("debootstrap") / "root"
    mirror = debian_mirror()
    proc = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(root), *([mirror] if mirror else [])],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        log = root / "debootstrap" / "debootstrap.log"
        raise RuntimeError(f"debootstrap failed ({proc.returncode}):\n{proc.stderr[-3000:]}\n"
                           + (log.read_text()[-3000:] if log.exists() else ""))
    return root


@dataclass
class DpkgImage:
    layout: Path
    truths: dict[int, Truth]  # layer -> dpkg's view of the rootfs after it
    demo_rc: dict[str, bytes]
    demo_final: dict[str, bytes]

    def load(self, tag: str = "final") -> ocilens.Image:
        return ocilens.load(f"oci:{self.layout}:{tag}", progress=False)


@pytest.fixture(scope="session")
def dpkg_image(tmp_path_factory: pytest.TempPathFactory, debootstrap_root: Path) -> DpkgImage:
    work = tmp_path_factory.mktemp("dpkg-image")
    debs = work / "debs"
    debs.mkdir()
    proc = subprocess.run(["apt-get", "download", "hello"], cwd=debs, capture_output=True, text=True)
    if proc.returncode != 0:  # no package lists yet on this machine: fetch them, as apt-get install would
        run("apt-get", "update", "-q")
        proc = subprocess.run(["apt-get", "download", "hello"], cwd=debs, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    hello_deb = next(debs.glob("hello_*.deb"))
    demo_rc = {"/usr/share/ocilens-demo/data.txt": b"rc1 " * 6000, "/usr/share/ocilens-demo/old-only.txt": b"o" * 9000,
               "/usr/bin/ocilens-demo": "#!/bin/sh\necho 1.0~rc1\n",
               "/usr/share/doc/ocilens-demo/copyright": "ocilens-demo 1.0~rc1: Apache-2.0\n"}
    demo_final = {"/usr/share/ocilens-demo/data.txt": b"final " * 5000,
                  "/usr/share/ocilens-demo/new-only.txt": b"n" * 4000,
                  "/usr/bin/ocilens-demo": "#!/bin/sh\necho 1.0 final\n",
                  "/usr/share/doc/ocilens-demo/copyright": "ocilens-demo 1.0: Apache-2.0\n"}
    rc_deb = build_deb(debs, DEMO, "1.0~rc1-1", demo_rc)
    final_deb = build_deb(debs, DEMO, "1.0-1", demo_final)
    truths: dict[int, Truth] = {}

    def base(root: Path) -> None:
        run("cp", "-a", f"{debootstrap_root}/.", root)
        truths[0] = dpkg_truth(root)

    def dpkg_install(layer: int, *debfiles: Path) -> Callable[[Path], None]:
        def change(root: Path) -> None:
            names = []
            for deb in debfiles:
                shutil.copy(deb, root / "tmp" / deb.name)
                names.append(f"/tmp/{deb.name}")
            run("chroot", root, "dpkg", "-i", *names)
            for n in names:
                os.unlink(root / n.lstrip("/"))
            truths[layer] = dpkg_truth(root)
        return change

    def slim(root: Path) -> None:
        shutil.rmtree(root / "var/lib/dpkg/info")
        for p in (root / "var/lib/dpkg").glob("status*"):
            p.unlink()

    def purge(root: Path) -> None:
        run("chroot", root, "dpkg", "--purge", "hello")
        truths[3] = dpkg_truth(root)

    layout = build_layers(work, [
        (f"debootstrap --variant=minbase {SUITE}", base, None),
        (f"dpkg -i {hello_deb.name} {rc_deb.name}", dpkg_install(1, hello_deb, rc_deb), "installed"),
        (f"dpkg -i {final_deb.name}", dpkg_install(2, final_deb), None),
        ("dpkg --purge hello", purge, "final"),
        ("rm -rf /var/lib/dpkg/info /var/lib/dpkg/status*", slim, "slim"),
    ])
    return DpkgImage(layout, truths, demo_rc, demo_final)


@pytest.fixture(scope="session")
def final(dpkg_image: DpkgImage) -> ocilens.Image:
    return dpkg_image.load("final")


@pytest.fixture(scope="session")
def installed(dpkg_image: DpkgImage) -> ocilens.Image:
    return dpkg_image.load("installed")


# --------------------------------------------------------------------------------------------- tests


def test_packages_are_dpkgs_installed_list(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    truth = dpkg_image.truths[3]
    present = final.packages[final.packages["fate"] == "present"]
    assert set(present["ecosystem"]) == {"dpkg"}
    got = {r.name: (r.version, r.architecture, int(r.installed_size)) for r in present.itertuples()}
    assert got == truth.packages
    assert len(truth.packages) > 80  # minbase, plus the demo package


def _names(field: str) -> list[str]:
    """dpkg-query's relationship text as the names a requirement accepts: ``a (>= 1) | b:any`` -> ``a|b``."""
    out = []
    for item in filter(None, (x.strip() for x in field.split(","))):
        out.append("|".join(re.sub(r"\s*\(.*?\)", "", alt).strip().split(":")[0] for alt in item.split("|")))
    return out


def test_dependency_fields_are_dpkgs(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    """Each package's Pre-Depends and Depends, Provides and Essential, as dpkg-query gives them."""
    from ocilens.packages.model import model_of

    truth = dpkg_image.truths[3]
    present = {r.package.name: r.package for r in model_of(final).records if r.fate == "present"}
    assert set(present) == set(truth.relations)
    for name, (pre, dep, prov, essential) in truth.relations.items():
        pkg = present[name]
        assert list(pkg.depends) == _names(pre) + _names(dep), name
        assert list(pkg.provides) == _names(prov), name
        assert pkg.essential == (essential == "yes"), name
    assert sum(p.essential for p in present.values()) > 10 and present["bash"].essential  # minbase's essentials


def test_every_final_path_has_dpkgs_owner(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    truth = dpkg_image.truths[3]
    # Paths many packages list are directories to dpkg: on a merged-/usr image, /bin is a symlink every
    # package with a /bin file lists. They belong to no one package.
    shared = {p for p, owners in truth.owners.items() if len(owners) > 1}
    assert shared == {"/bin", "/sbin", "/lib"}
    files = final.files
    nondir = files[files["type"] != "dir"]
    expected = nondir["path"].map(lambda p: next(iter(truth.owners[p])) if len(truth.owners.get(p, ())) == 1 else None)
    both = pd.DataFrame({"path": nondir["path"], "got": nondir["package"].fillna("-").astype(object),
                         "expected": expected.fillna("-").astype(object)})
    wrong = both[both["got"] != both["expected"]]
    assert wrong.empty, wrong.head(20).to_string()
    assert set(truth.owners) <= set(nondir["path"])  # every path dpkg lists is in the image, and owned
    # merged /usr: dpkg says /bin/bash, the image holds /usr/bin/bash (through the /bin symlink)
    assert "/bin/bash" in truth.listed["bash"]
    assert files.set_index("path").at["/usr/bin/bash", "package"] == "bash"
    assert files[files["type"] == "dir"]["package"].isna().all()
    # what no package claims is a finding of its own: the package databases, alternatives, generated config
    unowned = set(nondir.loc[nondir["package"].isna(), "path"])
    assert {"/var/lib/dpkg/status", "/etc/alternatives/pager", "/etc/ld.so.cache"} <= unowned


def test_files_and_bytes_per_package(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    truth = dpkg_image.truths[3]
    present = final.packages[final.packages["fate"] == "present"].set_index("name")
    assert present["files"].to_dict() == truth.files
    assert present["bytes"].to_dict() == truth.bytes
    assert present["doc_bytes"].to_dict() == truth.docs
    assert not present["dev"].any()  # minbase builds nothing
    # everything visible is owned by one package or by none
    visible = int(final.files.loc[final.files["type"] == "file", "size"].sum())
    unowned = int(final.files.loc[(final.files["type"] == "file") & final.files["package"].isna(), "size"].sum())
    assert int(present["bytes"].sum()) + unowned == visible == final.bloat().visible_bytes


def test_package_history_installed_upgraded_purged(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    pk = final.packages
    t1, t3 = dpkg_image.truths[1], dpkg_image.truths[3]
    hello = pk[pk["name"] == "hello"].iloc[0]
    assert (hello["version"], hello["layer"], hello["removed_layer"], hello["fate"]) == (
        t1.packages["hello"][0], 1, 3, "removed")
    assert (hello["files"], hello["bytes"]) == (0, 0)
    # purged: every file hello shipped in layer 1 is waste, deleted later by layer 3
    assert hello["wasted_bytes"] == t1.bytes["hello"] > 0
    assert hello["wasted_files"] == t1.regular["hello"]
    demo = pk[pk["name"] == DEMO].sort_values("layer")
    assert demo["version"].tolist() == ["1.0~rc1-1", "1.0-1"]
    rc, new = demo.iloc[0], demo.iloc[1]
    assert (rc["layer"], rc["removed_layer"], rc["fate"], rc["next_version"]) == (1, 2, "upgraded", "1.0-1")
    assert (new["layer"], pd.isna(new["removed_layer"]), new["fate"]) == (2, True, "present")
    # every file of the rc was rewritten or dropped by the upgrade: all its bytes are waste, its own
    assert rc["wasted_bytes"] == t1.bytes[DEMO] == sum(len(c if isinstance(c, bytes) else c.encode())
                                                        for c in dpkg_image.demo_rc.values())
    assert new["bytes"] == t3.bytes[DEMO]
    base = pk[pk["layer"] == 0]
    assert (base["fate"] == "present").all() and len(base) == len(dpkg_image.truths[0].packages)


def test_causes_and_events_carry_the_package(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    causes = package_causes(final).set_index("path")
    assert causes.at["/usr/share/ocilens-demo/old-only.txt", "cause"] == "deleted_later"
    assert causes.at["/usr/share/ocilens-demo/old-only.txt", "package"] == DEMO
    assert causes.at["/usr/share/ocilens-demo/data.txt", "cause"] == "overwritten"
    assert causes.at["/usr/bin/hello", "package"] == "hello"
    rc_id = int(final.packages.index[(final.packages["name"] == DEMO) & (final.packages["layer"] == 1)][0])
    assert causes.at["/usr/share/ocilens-demo/data.txt", "package_id"] == rc_id
    status = causes.loc[["/var/lib/dpkg/status"]]  # rewritten by every layer: dpkg's own database, nobody's
    assert len(status) == 3 and status["package"].isna().all()

    ev = final.events
    hello_paths = {p for p, o in dpkg_image.truths[1].owners.items() if o == {"hello"}}
    added = ev[(ev["layer"] == 1) & (ev["event"] == "added") & ev["path"].isin(hello_paths)]
    assert len(added) == len(hello_paths) and (added["package"] == "hello").all()
    gone = ev[(ev["layer"] == 3) & (ev["event"] == "whited_out") & (ev["type"] != "dir")]
    owned = gone[gone["package"].notna()]
    assert set(owned["path"]) == hello_paths  # the owner of the version removed, not of the (empty) state after
    assert (owned["package"] == "hello").all()
    assert "/var/lib/dpkg/info/hello.list" in set(gone["path"])
    upgraded = ev[(ev["layer"] == 2) & (ev["path"] == "/usr/share/ocilens-demo/data.txt")].iloc[0]
    new_id = int(final.packages.index[(final.packages["name"] == DEMO) & (final.packages["layer"] == 2)][0])
    assert (upgraded["event"], upgraded["package_id"]) == ("overwritten", new_id)


def test_waste_by_package(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    by = final.bloat().by_package
    assert int(by["bytes"].sum()) == final.bloat().wasted_bytes
    rows = by.set_index(by["name"].fillna("(unowned)"))
    assert rows.at["hello", "bytes"] == dpkg_image.truths[1].bytes["hello"]
    assert rows.at["hello", "deleted_later"] == rows.at["hello", "bytes"]
    assert rows.at[DEMO, "overwritten"] > 0 and rows.at[DEMO, "deleted_later"] == 9000
    assert rows.at["(unowned)", "bytes"] > 0  # dpkg's status, rewritten by every layer
    eco = waste_by_ecosystem(final)
    assert int(eco["bytes"].sum()) == final.bloat().wasted_bytes
    assert eco.loc[eco["ecosystem"] == "dpkg", "packages"].iloc[0] == 2


def test_layer_package_diffs(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    t1, t3 = dpkg_image.truths[1], dpkg_image.truths[3]
    d1 = layer_package_diff(final, 1).set_index("name")
    assert d1["change"].to_dict() == {"hello": "added", DEMO: "added"}
    assert d1.at["hello", "bytes_b"] == t1.bytes["hello"] and d1.at["hello", "files_b"] == t1.files["hello"]
    assert d1.at[DEMO, "version_b"] == "1.0~rc1-1"
    d2 = layer_package_diff(final, 2).set_index("name")
    assert d2["change"].to_dict() == {DEMO: "upgraded"}
    assert d2.at[DEMO, "size_delta"] == t3.bytes[DEMO] - t1.bytes[DEMO]
    d3 = layer_package_diff(final, 3).set_index("name")
    assert d3["change"].to_dict() == {"hello": "removed"}
    assert d3.at["hello", "size_delta"] == -t1.bytes["hello"]
    d0 = layer_package_diff(final, 0)
    assert (d0["change"] == "added").all() and len(d0) == len(dpkg_image.truths[0].packages)
    at1 = packages_at(final, 1).set_index("name")
    assert at1["bytes"].to_dict() == t1.bytes and at1["files"].to_dict() == t1.files


def test_image_package_diff(final: ocilens.Image, installed: ocilens.Image, dpkg_image: DpkgImage) -> None:
    t1, t3 = dpkg_image.truths[1], dpkg_image.truths[3]
    d = installed.diff(final).packages.set_index("name")
    assert d["change"].to_dict() == {"hello": "removed", DEMO: "upgraded"}
    assert (d.at[DEMO, "version_a"], d.at[DEMO, "version_b"]) == ("1.0~rc1-1", "1.0-1")
    assert d.at[DEMO, "size_delta"] == t3.bytes[DEMO] - t1.bytes[DEMO]
    assert d.at["hello", "bytes_a"] == t1.bytes["hello"]
    back = final.diff(installed).packages.set_index("name")
    assert back["change"].to_dict() == {"hello": "added", DEMO: "downgraded"}
    same = final.diff(final).packages
    assert same.empty
    lines = diff_lines(installed.diff(final).packages)
    assert lines[0] == (f"packages: 0 added, 1 removed, 1 upgraded, 0 downgraded; "
                        f"{signed(t3.bytes[DEMO] - t1.bytes[DEMO] - t1.bytes['hello'])} in packages")
    assert any("dpkg:ocilens-demo 1.0~rc1-1 -> 1.0-1" in line for line in lines[1:])


def test_report_and_chart(final: ocilens.Image, installed: ocilens.Image, tmp_path: Path) -> None:
    html = final.report(compare=installed).html
    assert "<h2>Packages</h2>" in html and "ocilens-demo" in html and "hello" in html
    assert "Package changes" in html
    ax = final.plot.packages(Figure().subplots())  # not pyplot: no figure left open
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any("ocilens-demo" in label for label in labels) and any("hello" in label for label in labels)


def test_deleting_the_database_does_not_uninstall(final: ocilens.Image, dpkg_image: DpkgImage) -> None:
    slim = dpkg_image.load("slim")
    truth = dpkg_image.truths[3]
    pk = slim.packages
    present = pk[pk["fate"] == "present"]
    assert set(present["name"]) == set(truth.packages)
    assert (present["database_removed_layer"] == 4).all()
    assert pk["database_removed_layer"].isna().sum() == (pk["fate"] != "present").sum()
    assert present.set_index("name")["bytes"].to_dict() == truth.bytes
    # every file that is still there keeps the owner it had
    before = final.files.set_index("path")["package"]
    after = slim.files.set_index("path")["package"]
    common = after.index.intersection(before.index)
    assert (before[common].fillna("-") == after[common].fillna("-")).all()
    assert "/var/lib/dpkg/status" not in after.index
    assert layer_package_diff(slim, 4).empty
    assert slim.diff(final).packages.empty
