#!/usr/bin/env python3
"""Build ``ocilens/_sample``: a small real OCI image layout whose layers show every event kind.

Run as root on Debian (needs ``apt-get``, ``dpkg-deb``, ``umoci``)::

    python scripts/build_sample.py [--out ocilens/_sample] [--keep-debs DIR]

The files are real Debian bookworm package contents (``apt-get download`` + ``dpkg-deb -x``, no
maintainer scripts run) of ``netbase hello busybox less sed``, arranged as a merged-/usr system. The
image is tagged ``sample`` (``oci:ocilens/_sample:sample``); layers are gzip, made by ``umoci repack``
except L4. History (``created_by``) reads like the Dockerfile that would have built it:

====  ======================================================  ==============================================
row   created_by                                              what it is there to show
====  ======================================================  ==============================================
L0    ``ADD rootfs.tar /`` (netbase, hello, busybox)          added: files, dirs, symlinks (``/bin ->
                                                              usr/bin``, ``/usr/bin/sh -> busybox``), a
                                                              hardlink pair (``/usr/bin/busybox`` and
                                                              ``/usr/bin/ash``, one inode), special modes
                                                              (``/tmp`` 1777, ``/root`` 0700, ``/var/local``
                                                              2775 root:staff, ``.../apt/archives/partial``
                                                              0700 owned by ``_apt`` uid 42)
-     ``LABEL ...``                                           empty_layer history row (no blob)
L1    ``RUN apt-get install -y less sed && cp ...``           added: less and sed; **overwritten with new
                                                              content**: ``/etc/services`` (a line appended);
                                                              waste to find: the downloaded ``less_*.deb`` in
                                                              ``/var/cache/apt/archives`` (deleted in L3), a
                                                              visible apt list in ``/var/lib/apt/lists``
                                                              (junk still visible), and ``/usr/local/bin/sed``,
                                                              a copy (not a hardlink) of ``/usr/bin/sed``
                                                              (duplicate content)
-     ``ENV PAGER=less``                                      empty_layer history row
L2    ``RUN chmod 0700 /usr/bin/less ...``                    **metadata-only re-add**: the same bytes of
                                                              ``less``, ``lessecho``, ``lesskey`` shipped
                                                              again with a new mode (content unchanged)
L3    ``RUN rm -f /var/cache/apt/archives/*.deb && rm -rf     **whiteouts** written by umoci: a file
      /usr/share/info``                                       (``.wh.less_*.deb``) and a whole directory
                                                              (``/usr/share/.wh.info``: hello's and sed's
                                                              info pages, a removed subtree)
L4    ``RUN localepurge  # keep de``                          **opaque marker** written with ``tarfile``
                                                              (umoci cannot): ``usr/share/locale/
                                                              .wh..wh..opq`` hides every locale from L0/L1
                                                              while the same layer re-adds
                                                              ``de/LC_MESSAGES/{hello,sed}.mo`` (identical
                                                              bytes and metadata), added with
                                                              ``umoci raw add-layer``
-     ``CMD ["/usr/bin/hello"]``                              empty_layer history row, last
====  ======================================================  ==============================================

Reproducibility: every path this script creates or changes gets a fixed mtime (``SOURCE_DATE_EPOCH``, by
default the newest mtime among the package files, plus one day per layer); untouched package files keep
their ``.deb`` mtimes; history and config ``created`` are fixed too. The bytes still depend on the
package versions the mirror serves (recorded in the LABEL). The target directory is rebuilt from scratch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

PACKAGES = ("netbase", "hello", "busybox", "less", "sed")
TAG = "sample"
DAY = 86400
REPO = Path(__file__).resolve().parent.parent


def run(*cmd: str | Path, cwd: Path | None = None) -> str:
    """Run a command, fail loudly with its stderr; return stdout."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr}")
    return proc.stdout


def rfc3339(t: int) -> str:
    """A UTC timestamp as umoci's ``--history.created`` wants it."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def download_debs(dest: Path) -> dict[str, Path]:
    """``apt-get download`` the packages into ``dest``; return {package: .deb path}."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(dest.glob(f"{p}_*.deb"))]
    if missing:
        # -o APT::Sandbox::User=root: the _apt user cannot write into a root-owned temp dir.
        run("apt-get", "download", "-o", "APT::Sandbox::User=root", *missing, cwd=dest)
    return {p: sorted(dest.glob(f"{p}_*.deb"))[-1] for p in PACKAGES}


def extract_debs(debs: dict[str, Path], dest: Path) -> dict[str, Path]:
    """``dpkg-deb -x`` each package into its own directory (data only, no maintainer scripts)."""
    out = {}
    for name, deb in debs.items():
        out[name] = dest / name
        out[name].mkdir(parents=True)
        run("dpkg-deb", "-x", deb, out[name])
    return out


def newest_mtime(root: Path) -> int:
    """The newest mtime of a regular file under ``root``: the default SOURCE_DATE_EPOCH."""
    return max(int(p.lstat().st_mtime) for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def copy_tree(src: Path, dst: Path, *, merged_usr: bool = True) -> None:
    """Copy a package tree into the rootfs, keeping modes and mtimes; ``/bin`` etc. go to ``/usr/...``."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if merged_usr and rel.parts[0] in ("bin", "sbin", "lib"):
            rel = Path("usr", *rel.parts)
        target = dst / rel
        if path.is_dir() and not path.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(path))
            os.utime(target, ns=(path.lstat().st_mtime_ns,) * 2, follow_symlinks=False)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def clamp_times(rootfs: Path, since: float, stamp: int) -> None:
    """Give every path changed by this build step (mtime >= ``since``) the fixed time ``stamp``."""
    for path in [rootfs, *rootfs.rglob("*")]:
        if path.lstat().st_mtime >= since:
            os.utime(path, (stamp, stamp), follow_symlinks=False)


class Builder:
    """Drives umoci on one image layout: each ``layer`` unpacks the tag, mutates, repacks."""

    def __init__(self, layout: Path, work: Path, epoch: int) -> None:
        self.layout, self.work, self.epoch = layout, work, epoch
        self.image = f"{layout}:{TAG}"
        self.step = 0

    def stamp(self) -> int:
        """The fixed time of the current step: one day after the previous one."""
        return self.epoch + self.step * DAY

    def new(self) -> None:
        run("umoci", "init", "--layout", self.layout)
        run("umoci", "new", "--image", self.image)
        run("umoci", "config", "--image", self.image, "--no-history", "--created", rfc3339(self.epoch),
            "--author", "ocilens scripts/build_sample.py")

    def layer(self, created_by: str, mutate: Callable[[Path], None]) -> None:
        """Unpack the current image, let ``mutate(rootfs)`` change it, repack the diff as one layer."""
        self.step += 1
        bundle = self.work / f"bundle{self.step}"
        run("umoci", "unpack", "--image", self.image, bundle)
        since = dt.datetime.now().timestamp() - 2
        mutate(bundle / "rootfs")
        clamp_times(bundle / "rootfs", since, self.stamp())
        run("umoci", "repack", "--image", self.image, "--history.created_by", created_by,
            "--history.created", rfc3339(self.stamp()), "--history.author", "ocilens", bundle)
        shutil.rmtree(bundle)

    def raw_layer(self, created_by: str, make_tar: Callable[[int], bytes]) -> None:
        """Append a layer written by hand, ``make_tar(stamp)`` (umoci cannot write opaque markers)."""
        self.step += 1
        tar = self.work / f"layer{self.step}.tar"
        tar.write_bytes(make_tar(self.stamp()))
        run("umoci", "raw", "add-layer", "--image", self.image, "--history.created_by", created_by,
            "--history.created", rfc3339(self.stamp()), "--history.author", "ocilens", tar)

    def config(self, created_by: str, *flags: str) -> None:
        """A config-only step: an ``empty_layer: true`` history row."""
        self.step += 1
        run("umoci", "config", "--image", self.image, *flags, "--created", rfc3339(self.stamp()),
            "--history.created_by", created_by, "--history.created", rfc3339(self.stamp()),
            "--history.author", "ocilens")


def base_layer(pkgs: dict[str, Path]) -> Callable[[Path], None]:
    """L0: netbase, hello and busybox on a merged-/usr skeleton; symlinks, a hardlink pair, odd modes."""
    def mutate(root: Path) -> None:
        for d, mode in [("etc", 0o755), ("root", 0o700), ("tmp", 0o1777), ("usr/bin", 0o755),
                        ("usr/sbin", 0o755), ("usr/lib", 0o755), ("var/local", 0o2775),
                        ("var/cache/apt/archives/partial", 0o700), ("var/lib/apt/lists", 0o755)]:
            (root / d).mkdir(parents=True, exist_ok=True)
            os.chmod(root / d, mode)
        os.chown(root / "var/local", 0, 50)                       # root:staff, as base-files has it
        os.chown(root / "var/cache/apt/archives/partial", 42, 0)  # _apt:root, as apt has it
        for name in ("bin", "sbin", "lib"):
            (root / name).symlink_to(f"usr/{name}")
        for name in ("netbase", "hello", "busybox"):
            copy_tree(pkgs[name], root)
        os.link(root / "usr/bin/busybox", root / "usr/bin/ash")  # busybox-style hardlinked applet
        (root / "usr/bin/sh").symlink_to("busybox")
    return mutate


def install_layer(pkgs: dict[str, Path], debs: dict[str, Path], control: str) -> Callable[[Path], None]:
    """L1: less and sed; /etc/services gets new content; apt leftovers and a duplicate copy."""
    def mutate(root: Path) -> None:
        for name in ("less", "sed"):
            copy_tree(pkgs[name], root)
        shutil.copy(debs["less"], root / "var/cache/apt/archives" / debs["less"].name)  # a fresh download
        lists = root / "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
        lists.write_text(control)
        with open(root / "etc/services", "a") as f:
            f.write("ocilens\t\t9999/tcp\t\t\t# added by the sample image\n")
        (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "usr/bin/sed", root / "usr/local/bin/sed")
    return mutate


def chmod_layer(root: Path) -> None:
    """L2: a chmod only: the same bytes, a new mode."""
    for name in ("less", "lessecho", "lesskey"):
        os.chmod(root / "usr/bin" / name, 0o700)


def delete_layer(root: Path) -> None:
    """L3: delete a file and a whole directory (umoci writes the whiteouts)."""
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    shutil.rmtree(root / "usr/share/info")


def opaque_tar(pkgs: dict[str, Path], stamp: int) -> bytes:
    """L4 as a raw tar: ``usr/share/locale/.wh..wh..opq`` and the German catalogues re-added after it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, stamp
            info.uname = info.gname = "root"
            tar.addfile(info)
        add_dir("usr/share/locale")
        marker = tarfile.TarInfo("usr/share/locale/.wh..wh..opq")
        marker.mode, marker.mtime, marker.uname, marker.gname = 0o644, stamp, "root", "root"
        tar.addfile(marker)
        add_dir("usr/share/locale/de")
        add_dir("usr/share/locale/de/LC_MESSAGES")
        for pkg in ("hello", "sed"):
            src = pkgs[pkg] / "usr/share/locale/de/LC_MESSAGES" / f"{pkg}.mo"
            info = tar.gettarinfo(str(src), f"usr/share/locale/de/LC_MESSAGES/{pkg}.mo")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(src, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()  # closing the TarFile wrote the two zero end-of-archive blocks


def control_fields(debs: dict[str, Path]) -> str:
    """A Packages-style list built from the real control fields of the downloaded packages."""
    return "\n".join(run("dpkg-deb", "-f", deb) for deb in debs.values())


def build(out: Path, deb_dir: Path | None) -> None:
    """Rebuild the sample layout at ``out`` from scratch."""
    with tempfile.TemporaryDirectory(prefix="ocilens-sample-") as tmp_name:
        tmp = Path(tmp_name)
        debs = download_debs(deb_dir or tmp / "debs")
        pkgs = extract_debs(debs, tmp / "pkgs")
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or newest_mtime(tmp / "pkgs"))
        versions = " ".join(deb.name.split("_")[0] + "=" + deb.name.split("_")[1].replace("%3a", ":")
                            for deb in debs.values())
        if out.exists():
            shutil.rmtree(out)
        layout = tmp / "layout"
        b = Builder(layout, tmp, epoch)
        b.new()
        b.layer("ADD rootfs.tar / # netbase hello busybox, Debian bookworm", base_layer(pkgs))
        b.config("LABEL org.opencontainers.image.description=ocilens sample",
                 "--config.label", "org.opencontainers.image.description=ocilens sample",
                 "--config.label", f"io.ocilens.sample.packages={versions}")
        b.layer("RUN /bin/sh -c apt-get install -y less sed && cp /usr/bin/sed /usr/local/bin/sed "
                "&& echo 'ocilens 9999/tcp' >> /etc/services  # buildkit",
                install_layer(pkgs, debs, control_fields(debs)))
        b.config("ENV PAGER=less", "--config.env", "PAGER=less")
        b.layer("RUN /bin/sh -c chmod 0700 /usr/bin/less /usr/bin/lessecho /usr/bin/lesskey  # buildkit",
                chmod_layer)
        b.layer("RUN /bin/sh -c rm -f /var/cache/apt/archives/*.deb && rm -rf /usr/share/info  # buildkit",
                delete_layer)
        b.raw_layer("RUN /bin/sh -c localepurge  # keep de; buildkit", lambda t: opaque_tar(pkgs, t))
        b.config('CMD ["/usr/bin/hello"]', "--config.cmd", "/usr/bin/hello")
        run("umoci", "gc", "--layout", layout)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(layout, out)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB), tag {TAG!r}")
    if total > 3_000_000:
        sys.exit("the sample must stay under 3 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "ocilens" / "_sample")
    parser.add_argument("--keep-debs", type=Path, default=None,
                        help="download the .debs into (or reuse them from) this directory")
    args = parser.parse_args()
    build(args.out.resolve(), args.keep_debs)


if __name__ == "__main__":
    main()
