"""Benchmark inputs, built once and cached under ``benchmarks/.work/`` (git-ignored).

``large`` (or ``large-quick`` with ``--quick``): a 7-layer image made of real Debian bookworm package files
(``apt-get download`` + ``dpkg-deb --fsys-tarfile``, no maintainer scripts run), arranged as a merged-/usr
system, with the waste real images carry. Each layer tar is written with ``tarfile`` and appended with
``umoci raw add-layer`` (umoci gzips it); then ``skopeo`` makes the variants:

=====================  ======================================================================================
``large/oci-gzip``     the OCI layout umoci wrote, tag ``gzip`` (gzip layers)
``large/oci-zstd``     ``skopeo copy --dest-compress --dest-compress-format zstd`` into a fresh layout, tag
                       ``zstd`` (checked: every layer blob starts with the zstd magic)
``large/gzip.oci.tar`` ``oci-archive`` of the gzip layout (the layer blobs are the same gzip bytes)
``large/docker.tar``   ``docker-archive`` (skopeo writes the layers uncompressed)
``large/zstd.oci.tar`` ``oci-archive`` of the zstd layout, for dive (``build_zstd_archive``; checked: every
                       layer blob in it starts with the zstd magic)
=====================  ======================================================================================

Layers (full size; ``--quick`` uses smaller package sets with the same kinds of steps):

====  ==================================================================  ====================================
row   created_by                                                          what it holds
====  ==================================================================  ====================================
L0    ``ADD rootfs.tar /``                                                skeleton (``/bin -> usr/bin``...),
                                                                          libc6, libc-l10n, tzdata, locales,
                                                                          python3.11 (minimal + stdlib),
                                                                          perl-modules
L1    ``RUN apt-get install -y gcc-12 ...``                               gcc, cpp, libgcc/libstdc++/libc
                                                                          headers; two ``.deb`` files left in
                                                                          ``/var/cache/apt/archives`` (waste)
L2    ``RUN apt-get install -y libllvm15``                                one 117 MB shared library
L3    ``RUN apt-get install -y libboost1.74-dev``                         15,500 header files
L4    ``RUN apt-get install -y --reinstall tzdata && sed -i ...           tzdata re-shipped with the same
      /etc/locale.gen``                                                   bytes; ``/etc/locale.gen``
                                                                          overwritten with new content
L5    ``RUN chmod -R go-w,o-rx /usr/share/perl/5.36.0 ...``               metadata-only re-ship (same bytes,
                                                                          new modes)
L6    ``RUN rm -rf /var/cache/apt/archives/*.deb /usr/share/doc ...       whiteouts (files and directories),
      && localepurge``                                                    an opaque marker on
                                                                          ``/usr/share/locale`` (``de``
                                                                          re-added)
====  ==================================================================  ====================================

``one`` (``one-quick``): the one-dominant-layer image, a single gzip layer written the same way (``tarfile``
from ``dpkg-deb --fsys-tarfile``, ``umoci raw add-layer``): the merged-/usr skeleton, libc6 and the packages of
the large image's largest layer (L1: gcc-12, cpp-12, the libgcc/libstdc++/libc headers, two ``.deb`` files in
the apt cache), 184 MB of tar, 74 MB gzip; as ``one/oci-gzip`` (tag ``gzip``), ``one/gzip.oci.tar`` and
``one/docker.tar`` (uncompressed, ``bench/one:gzip``). ``--quick``: libc6, linux-libc-dev and
libpython3.11-stdlib (32 MB of tar).

``many-<N>``: N tiny regular files (plus their directories) over 4 layers, tar bytes written by hand (a
512-byte ustar header per entry), appended with ``umoci raw add-layer``: the many-files image (1,000,000
entries; 100,000 for the linearity check; 100,000 and 10,000 with ``--quick``).

``fleet`` (``fleet-quick``): one OCI layout holding the images of three registry repositories, for the fleet
audit rows. Eight layer tars of real Debian package files: set A (4 layers: base system, Python, toolchain
parts) and set B, the same package groups built again (a later build: one extra marker file each, different
tar and blob bytes, the same sizes within a few hundred bytes). Each image has 4 layers and its own config
(labels name the repository and a version), so every tag is a distinct manifest:

=============  ==========================================================================================
``fleet10``    10 tags, all on the 4 layers of set A
``fleet40``    40 tags, all on the 4 layers of set A (4x the images, the same distinct layers)
``fleet2x``    10 tags: 5 on set A, 5 on set B (the images of fleet10, twice the distinct layers)
=============  ==========================================================================================

(With ``--quick``, smaller package groups, pushed as ``quick/fleet10``... so that both fleets stay pushed.)

Layers are gzipped here (``gzip`` module, level 6, no name or time in the header) and the layout is written
directly (no umoci: 60 images); ``run.py`` pushes each tag with ``skopeo copy`` (the blobs are shared, so
after the first tag of a repository a push is a manifest and a config).

Everything is keyed by a build version (``BUILD``) and the package versions: a changed recipe rebuilds.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
BUILD = 5  # bump when the recipe changes: cached inputs are rebuilt
EPOCH = 1_700_000_000  # fixed times for entries the recipe synthesizes
DAY = 86400
MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def log(msg: str) -> None:
    print(f"[inputs] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr[-4000:]}")
    return proc.stdout


def rfc3339(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the recipe ----------------------------------------------------------------------------------------

@dataclass
class Recipe:
    name: str
    base: list[str]                    # L0
    toolchain: list[str]               # L1
    toolchain_cached_debs: list[str]   # L1: .deb files left in /var/cache/apt/archives
    big: list[list[str]]               # L2, L3: one layer each
    extra: list[str]                   # L4 (with the tzdata reinstall and locale.gen edit)
    chmod_dirs: list[str]              # L5
    removed_dirs: list[str]            # L6 (directory whiteouts)
    created_by: list[str] = field(default_factory=list)

    @property
    def packages(self) -> list[str]:
        pkgs = [*self.base, *self.toolchain, *self.toolchain_cached_debs, *self.extra]
        for group in self.big:
            pkgs += group
        return sorted(set(pkgs))


FULL = Recipe(
    name="large",
    base=["libc6", "libc-l10n", "tzdata", "locales", "libpython3.11-minimal", "python3.11-minimal",
          "libpython3.11-stdlib", "perl-modules-5.36"],
    toolchain=["gcc-12", "cpp-12", "libgcc-12-dev", "libc6-dev", "linux-libc-dev", "libstdc++-12-dev"],
    toolchain_cached_debs=["cpp-12", "libgcc-12-dev"],
    big=[["libllvm15"], ["libboost1.74-dev"]],
    extra=[],
    chmod_dirs=["/usr/share/perl/5.36.0", "/usr/share/i18n/locales"],
    removed_dirs=["/usr/share/doc", "/usr/share/i18n/charmaps", "/usr/include/boost/geometry"],
    created_by=[
        "ADD rootfs.tar / # libc6 libc-l10n tzdata locales python3.11 perl-modules",
        "RUN apt-get install -y gcc-12 cpp-12 libgcc-12-dev libc6-dev linux-libc-dev libstdc++-12-dev",
        "RUN apt-get install -y libllvm15",
        "RUN apt-get install -y libboost1.74-dev",
        "RUN apt-get install -y --reinstall tzdata && sed -i 's/^# en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen",
        "RUN chmod -R go-w,o-rx /usr/share/perl/5.36.0 /usr/share/i18n/locales",
        ("RUN rm -rf /var/cache/apt/archives/*.deb /usr/share/doc /usr/share/i18n/charmaps "
         "/usr/include/boost/geometry && localepurge"),
    ],
)

QUICK = Recipe(
    name="large-quick",
    base=["libc6", "libc-l10n", "tzdata", "locales"],
    toolchain=["linux-libc-dev"],
    toolchain_cached_debs=["linux-libc-dev"],
    big=[["libpython3.11-minimal"], ["libpython3.11-stdlib"]],
    extra=[],
    chmod_dirs=["/usr/share/i18n/locales"],
    removed_dirs=["/usr/share/doc", "/usr/share/i18n/charmaps"],
    created_by=[
        "ADD rootfs.tar / # libc6 libc-l10n tzdata locales",
        "RUN apt-get install -y linux-libc-dev",
        "RUN apt-get install -y libpython3.11-minimal",
        "RUN apt-get install -y libpython3.11-stdlib",
        "RUN apt-get install -y --reinstall tzdata && sed -i 's/^# en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen",
        "RUN chmod -R go-w,o-rx /usr/share/i18n/locales",
        "RUN rm -rf /var/cache/apt/archives/*.deb /usr/share/doc /usr/share/i18n/charmaps && localepurge",
    ],
)


# --- Debian packages -----------------------------------------------------------------------------------

def download_debs(packages: Iterable[str]) -> dict[str, Path]:
    """``apt-get download`` into ``.work/debs`` (kept); return {package: newest .deb}."""
    dest = WORK / "debs"
    dest.mkdir(parents=True, exist_ok=True)
    packages = list(packages)
    missing = [p for p in packages if not list(dest.glob(f"{p}_*.deb"))]
    if missing:
        log(f"apt-get download {' '.join(missing)}")
        try:
            run("apt-get", "download", "-o", "APT::Sandbox::User=root", *missing, cwd=dest)
        except RuntimeError:
            log("apt-get download failed; running apt-get update once and retrying")
            run("apt-get", "update")
            run("apt-get", "download", "-o", "APT::Sandbox::User=root", *missing, cwd=dest)
    out = {}
    for p in packages:
        found = sorted(dest.glob(f"{p}_*.deb"))
        if not found:
            raise RuntimeError(f"apt-get download {p}: no .deb appeared in {dest}")
        out[p] = found[-1]
    return out


def map_name(name: str) -> str:
    """A deb member name -> a layer path without ``./``; ``/bin``, ``/lib``... go under ``/usr``."""
    name = name[2:] if name.startswith("./") else name.lstrip("/")
    name = name.rstrip("/")
    if not name or name == ".":
        return ""
    first = name.split("/", 1)[0]
    if first in MERGED:
        name = "usr/" + name
    return name


def deb_members(deb: Path) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """The data members of a .deb, names mapped to merged-/usr; data read for regular files."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for m in tf:
                name = map_name(m.name)
                if not name:
                    continue
                m.name = name
                if m.islnk():
                    m.linkname = map_name(m.linkname)
                data = tf.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
                yield m, data
    finally:
        proc.stdout.close()
        if proc.wait() != 0:
            raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb} failed")


class LayerWriter:
    """One layer tar; a path is written once (the first one wins), parents are made as needed."""

    def __init__(self, path: Path, stamp: int) -> None:
        self.path = path
        self.stamp = stamp
        self.tf = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
        self.seen: set[str] = set()
        self.entries = 0
        self.bytes = 0

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.seen:
                self.dir(d)

    def dir(self, name: str, mode: int = 0o755, mtime: int | None = None) -> None:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.uname, ti.gname = tarfile.DIRTYPE, mode, mtime or self.stamp, "root", "root"
        self.add(ti)

    def add(self, ti: tarfile.TarInfo, data: bytes | None = None) -> None:
        if ti.name in self.seen:
            return
        self._parents(ti.name)
        self.seen.add(ti.name)
        if ti.isreg():
            data = data or b""
            ti.size = len(data)
            self.tf.addfile(ti, io.BytesIO(data))
            self.bytes += len(data)
        else:
            ti.size = 0
            self.tf.addfile(ti)
        self.entries += 1

    def file(self, name: str, data: bytes, mode: int = 0o644, mtime: int | None = None) -> None:
        ti = tarfile.TarInfo(name)
        ti.mode, ti.mtime, ti.uname, ti.gname = mode, mtime or self.stamp, "root", "root"
        self.add(ti, data)

    def symlink(self, name: str, target: str) -> None:
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, target, 0o777, self.stamp
        ti.uname = ti.gname = "root"
        self.add(ti)

    def close(self) -> None:
        self.tf.close()


def under(path: str, dirs: Iterable[str]) -> bool:
    return any(path == d.strip("/") or path.startswith(d.strip("/") + "/") for d in dirs)


def skeleton(w: LayerWriter, name: str) -> None:
    """The merged-/usr directories and links a base layer starts with, and an os-release naming the image."""
    for d, mode in [("etc", 0o755), ("root", 0o700), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755),
                    ("usr/sbin", 0o755), ("usr/lib", 0o755), ("usr/lib64", 0o755), ("var", 0o755),
                    ("var/cache", 0o755), ("var/cache/apt", 0o755), ("var/cache/apt/archives", 0o755),
                    ("var/lib", 0o755), ("home", 0o755)]:
        w.dir(d, mode)
    for link in MERGED[:4]:
        w.symlink(link, f"usr/{link}")
    w.file("etc/os-release", f'PRETTY_NAME="{name} (Debian GNU/Linux 12 files)"\n'.encode())


def write_layers(recipe: Recipe, debs: dict[str, Path], out: Path) -> list[Path]:
    """The seven layer tars of ``recipe``, in order."""
    out.mkdir(parents=True, exist_ok=True)
    tars: list[Path] = []
    step = [0]

    def layer(fill: Callable[[LayerWriter], None]) -> None:
        path = out / f"layer{len(tars)}.tar"
        w = LayerWriter(path, EPOCH + step[0] * DAY)
        step[0] += 1
        fill(w)
        w.close()
        log(f"  {path.name}: {w.entries:,} entries, {w.bytes / 1e6:.1f} MB of file data")
        tars.append(path)

    def packages(w: LayerWriter, pkgs: Iterable[str], keep: Callable[[str], bool] = lambda n: True,
                 change: Callable[[tarfile.TarInfo], None] | None = None) -> None:
        for p in pkgs:
            for ti, data in deb_members(debs[p]):
                if keep(ti.name):
                    if change:
                        change(ti)
                    w.add(ti, data)

    def l0(w: LayerWriter) -> None:
        skeleton(w, "ocilens benchmark")
        packages(w, recipe.base)

    def l1(w: LayerWriter) -> None:
        packages(w, recipe.toolchain)
        for p in recipe.toolchain_cached_debs:
            w.file(f"var/cache/apt/archives/{debs[p].name}", debs[p].read_bytes())

    def big(pkgs: list[str]) -> Callable[[LayerWriter], None]:
        return lambda w: packages(w, pkgs)

    def l4(w: LayerWriter) -> None:
        packages(w, recipe.extra)
        packages(w, ["tzdata"])  # --reinstall: the same bytes again
        for ti, data in deb_members(debs["locales"]):
            if ti.name == "etc/locale.gen":
                assert data is not None
                new = data.replace(b"# en_US.UTF-8 UTF-8", b"en_US.UTF-8 UTF-8")
                w.file(ti.name, new + b"de_DE.UTF-8 UTF-8\n", ti.mode)

    def l5(w: LayerWriter) -> None:
        def change(ti: tarfile.TarInfo) -> None:
            ti.mode &= ~0o027  # dirs 0755 -> 0750, files 0644 -> 0640
        owners = [p for p in recipe.packages if p in {*recipe.base, *recipe.toolchain, *recipe.extra}]
        packages(w, owners, keep=lambda n: under(n, recipe.chmod_dirs), change=change)

    def l6(w: LayerWriter) -> None:
        for p in recipe.toolchain_cached_debs:
            w.file(f"var/cache/apt/archives/.wh.{debs[p].name}", b"")
        for d in recipe.removed_dirs:
            parent, _, base = d.strip("/").rpartition("/")
            w.file(f"{parent}/.wh.{base}", b"")
        w.dir("usr/share/locale")
        w.file("usr/share/locale/.wh..wh..opq", b"")
        # localepurge keeps de: re-add what the lower layers had under /usr/share/locale/de
        for p in [*recipe.base, *recipe.toolchain, *recipe.extra]:
            for ti, data in deb_members(debs[p]):
                if under(ti.name, ["/usr/share/locale/de"]):
                    w.add(ti, data)

    layer(l0)
    layer(l1)
    for group in recipe.big:
        layer(big(group))
    layer(l4)
    layer(l5)
    layer(l6)
    return tars


# --- images --------------------------------------------------------------------------------------------

def _stamp_ok(d: Path, key: dict) -> bool:
    """Was ``d`` built by this recipe (``key``)? ``.built.json`` is written last, after a complete build."""
    f = d / ".built.json"
    try:
        return json.loads(f.read_text()).get("key") == key
    except (OSError, ValueError, AttributeError):
        return False


def _stamp(d: Path, key: dict, **facts: object) -> None:
    (d / ".built.json").write_text(json.dumps({"key": key, **facts}, sort_keys=True))


def umoci_image(layout: Path, tag: str, tars: list[Path], created_by: list[str], cmd: str | None = None) -> None:
    image = f"{layout}:{tag}"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", image)
    run("umoci", "config", "--image", image, "--no-history", "--created", rfc3339(EPOCH),
        "--author", "ocilens benchmarks/inputs.py", "--os", "linux", "--architecture", "amd64")
    for i, (tar, by) in enumerate(zip(tars, created_by)):
        run("umoci", "raw", "add-layer", "--image", image, "--history.created_by", by,
            "--history.created", rfc3339(EPOCH + i * DAY), "--history.author", "ocilens", tar)
    if cmd:
        run("umoci", "config", "--image", image, "--config.cmd", cmd, "--created", rfc3339(EPOCH + 9 * DAY),
            "--history.created_by", f'CMD ["{cmd}"]', "--history.created", rfc3339(EPOCH + 9 * DAY))
    run("umoci", "gc", "--layout", layout)


def layout_manifest(layout: Path, tag: str | None = None) -> dict:
    index = json.loads((layout / "index.json").read_text())
    for m in index["manifests"]:
        if tag is None or m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return json.loads(blob_path(layout, m["digest"]).read_bytes())
    raise KeyError(f"{layout}: no tag {tag}")


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexpart = digest.partition(":")
    return layout / "blobs" / algo / hexpart


def layer_blobs(layout: Path, tag: str | None = None) -> list[Path]:
    return [blob_path(layout, d["digest"]) for d in layout_manifest(layout, tag)["layers"]]


def skopeo(*args: str) -> None:
    run("skopeo", "copy", "--quiet", *args)


@dataclass
class Image:
    """An image the benchmark builds: its gzip OCI layout (tag ``gzip``) and its docker-archive."""
    dir: Path
    layout_gzip: Path

    @property
    def ref_gzip(self) -> str:
        return f"oci:{self.layout_gzip}:gzip"

    @property
    def ref_docker_archive(self) -> str:
        return f"docker-archive:{self.docker_archive}"  # type: ignore[attr-defined]


@dataclass
class Large(Image):
    layout_zstd: Path
    oci_archive: Path
    docker_archive: Path
    entries: int
    uncompressed: int

    @property
    def ref_zstd(self) -> str:
        return f"oci:{self.layout_zstd}:zstd"

    @property
    def ref_oci_archive(self) -> str:
        return f"oci-archive:{self.oci_archive}:gzip"

    @property
    def oci_archive_zstd(self) -> Path:
        """The oci-archive of the zstd layout (made by ``build_zstd_archive``, for dive)."""
        return self.dir / "zstd.oci.tar"

    def blobs(self, kind: str) -> list[Path]:
        return layer_blobs(self.layout_gzip, "gzip") if kind == "gzip" else layer_blobs(self.layout_zstd, "zstd")


def build_large(quick: bool) -> Large:
    recipe = QUICK if quick else FULL
    debs = download_debs(recipe.packages)
    d = WORK / recipe.name
    key = {"build": BUILD, "debs": sorted(p.name for p in debs.values())}
    large = Large(d, d / "oci-gzip", d / "oci-zstd", d / "gzip.oci.tar", d / "docker.tar", 0, 0)
    if not _stamp_ok(d, key):
        log(f"building {recipe.name} (cached in {d})")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        tars = write_layers(recipe, debs, d / "tars")
        entries = 0
        for t in tars:
            with tarfile.open(t) as tf:
                entries += sum(1 for _ in tf)
        size = sum(t.stat().st_size for t in tars)
        umoci_image(large.layout_gzip, "gzip", tars, recipe.created_by, cmd="/usr/bin/bash")
        shutil.rmtree(d / "tars")
        log("skopeo: zstd layout, oci-archive, docker-archive")
        skopeo("--dest-compress", "--dest-compress-format", "zstd", f"oci:{large.layout_gzip}:gzip",
               f"oci:{large.layout_zstd}:zstd")
        for b in large.blobs("zstd"):
            with open(b, "rb") as f:
                if f.read(4) != b"\x28\xb5\x2f\xfd":
                    raise RuntimeError(f"{b}: skopeo did not write a zstd blob (it reused a gzip one?)")
        skopeo(f"oci:{large.layout_gzip}:gzip", f"oci-archive:{large.oci_archive}:gzip")
        skopeo(f"oci:{large.layout_gzip}:gzip", f"docker-archive:{large.docker_archive}:bench/large:gzip")
        _stamp(d, key, entries=entries, tar_bytes=size)
    info = json.loads((d / ".built.json").read_text())
    large.entries, large.uncompressed = info["entries"], info["tar_bytes"]
    return large


def _oci_archive_layers(archive: Path) -> list[bytes]:
    """The first 4 bytes of each layer blob that an oci-archive's (first) manifest names."""
    with tarfile.open(archive) as tf:
        def member(digest: str, n: int = -1) -> bytes:
            f = tf.extractfile("blobs/" + digest.replace(":", "/"))
            assert f is not None
            return f.read(n)
        index = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(member(index["manifests"][0]["digest"]))
        return [member(d["digest"], 4) for d in manifest["layers"]]


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def build_zstd_archive(large: Large) -> Path:
    """``large/zstd.oci.tar``: the oci-archive of the zstd layout (``skopeo copy``, blobs as they are; each
    layer checked for the zstd magic), for dive on the zstd image. Rebuilt with the large image."""
    out = large.oci_archive_zstd
    stamp = large.dir / ".zstd-archive.json"
    key = {"build": BUILD, "large": json.loads((large.dir / ".built.json").read_text())["key"],
           "zstd": [b.name for b in large.blobs("zstd")]}
    try:
        ok = json.loads(stamp.read_text()) == key and out.is_file()
    except (OSError, ValueError):
        ok = False
    if not ok:
        log(f"skopeo: zstd oci-archive of {large.dir.name}")
        out.unlink(missing_ok=True)
        skopeo(f"oci:{large.layout_zstd}:zstd", f"oci-archive:{out}:zstd")
        heads = _oci_archive_layers(out)
        if len(heads) != len(large.blobs("zstd")) or any(h != ZSTD_MAGIC for h in heads):
            out.unlink()
            raise RuntimeError(f"{out}: skopeo did not keep the zstd layers ({heads})")
        stamp.write_text(json.dumps(key))
    return out


# --- the one-dominant-layer image ----------------------------------------------------------------------

#: The one layer's packages: the large image's largest layer (L1, the toolchain, with its two cached .debs)
#: plus libc6, on the same merged-/usr skeleton: a single-layer image as a builder that flattens writes it.
ONE_BUILD = 1  # bump when the one-layer recipe changes
ONE_PACKAGES = {
    False: (["libc6", *FULL.toolchain], FULL.toolchain_cached_debs),
    True: (["libc6", "linux-libc-dev", "libpython3.11-stdlib"], ["linux-libc-dev"]),
}
ONE_CREATED_BY = ("RUN apt-get install -y {pkgs} # one layer (flattened): "
                  "the large image's largest layer plus libc6")


@dataclass
class One(Image):
    """The one-dominant-layer image: one gzip layer, as an OCI layout (``oci-gzip``, tag ``gzip``), its
    oci-archive (``gzip.oci.tar``) and its docker-archive (``docker.tar``, uncompressed, ``bench/one:gzip``)."""
    oci_archive: Path
    docker_archive: Path
    entries: int
    uncompressed: int

    def blobs(self) -> list[Path]:
        return layer_blobs(self.layout_gzip, "gzip")


def build_one(quick: bool) -> One:
    """The one-dominant-layer image (``one`` or ``one-quick``), built once; see ``ONE_PACKAGES``."""
    pkgs, cached_debs = ONE_PACKAGES[quick]
    debs = download_debs(sorted({*pkgs, *cached_debs}))
    d = WORK / ("one-quick" if quick else "one")
    key = {"build": BUILD, "one": ONE_BUILD, "packages": pkgs, "cached": cached_debs,
           "debs": sorted(p.name for p in debs.values())}
    one = One(d, d / "oci-gzip", d / "gzip.oci.tar", d / "docker.tar", 0, 0)
    if not _stamp_ok(d, key):
        log(f"building the one-layer image (cached in {d})")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        tar = d / "layer0.tar"
        w = LayerWriter(tar, EPOCH)
        skeleton(w, "ocilens benchmark, one layer")
        for p in pkgs:
            for ti, data in deb_members(debs[p]):
                w.add(ti, data)
        for p in cached_debs:
            w.file(f"var/cache/apt/archives/{debs[p].name}", debs[p].read_bytes())
        w.close()
        with tarfile.open(tar) as tf:
            entries = sum(1 for _ in tf)
        size = tar.stat().st_size
        log(f"  {tar.name}: {entries:,} entries, {size / 1e6:.1f} MB of tar")
        umoci_image(one.layout_gzip, "gzip", [tar], [ONE_CREATED_BY.format(pkgs=" ".join(pkgs))],
                    cmd="/usr/bin/bash")
        tar.unlink()
        log("skopeo: oci-archive, docker-archive of the one-layer image")
        skopeo(f"oci:{one.layout_gzip}:gzip", f"oci-archive:{one.oci_archive}:gzip")
        skopeo(f"oci:{one.layout_gzip}:gzip", f"docker-archive:{one.docker_archive}:bench/one:gzip")
        _stamp(d, key, entries=entries, tar_bytes=size)
    info = json.loads((d / ".built.json").read_text())
    one.entries, one.uncompressed = info["entries"], info["tar_bytes"]
    return one


# --- the many-files image ------------------------------------------------------------------------------

def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


_PAD = b"\0" * 512


def ustar_header(name: bytes, size: int, mode: int, mtime: int, typeflag: bytes) -> bytes:
    """A 512-byte ustar header (names < 100 bytes); the checksum is computed here."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[148:156] = b"        "
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[265:269] = b"root"
    h[297:301] = b"root"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def write_many_tar(path: Path, layer: int, start: int, count: int, per_dir: int = 1000) -> int:
    """``count`` small files (0-700 bytes, distinct content) under ``data/l<layer>/dNNNN/``; returns entries."""
    entries = 0
    with open(path, "wb", buffering=1 << 22) as f:
        top = b"data/l%d/" % layer
        f.write(ustar_header(b"data/", 0, 0o755, EPOCH, b"5"))
        f.write(ustar_header(top, 0, 0o755, EPOCH, b"5"))
        entries += 2
        for i in range(start, start + count):
            j = i - start
            if j % per_dir == 0:
                f.write(ustar_header(top + b"d%05d/" % (j // per_dir), 0, 0o755, EPOCH, b"5"))
                entries += 1
            size = (i * 7919) % 701
            body = (b"%d\n" % i) * (size // len(b"%d\n" % i) + 1)
            body = body[:size]
            f.write(ustar_header(top + b"d%05d/f%07d.txt" % (j // per_dir, i), size, 0o644, EPOCH, b"0"))
            if size:
                f.write(body)
                f.write(_PAD[: (-size) % 512])
            entries += 1
        f.write(_PAD * 2)
    return entries


@dataclass
class Many:
    layout: Path
    entries: int

    @property
    def ref(self) -> str:
        return f"oci:{self.layout}:many"


def build_many(files: int, layers: int = 4) -> Many:
    d = WORK / f"many-{files}"
    key = {"build": BUILD, "files": files, "layers": layers}
    if not _stamp_ok(d, key):
        log(f"building many-files image with {files:,} files in {layers} layers (cached in {d})")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        tars, entries = [], 0
        per = files // layers
        for n in range(layers):
            t = d / f"layer{n}.tar"
            count = per if n < layers - 1 else files - per * (layers - 1)
            entries += write_many_tar(t, n, n * per, count)
            tars.append(t)
        umoci_image(d / "oci", "many", tars, [f"COPY data/l{n} /data/l{n}" for n in range(layers)])
        for t in tars:
            t.unlink()
        _stamp(d, key, entries=entries)
    return Many(d / "oci", json.loads((d / ".built.json").read_text())["entries"])


# --- the fleet -----------------------------------------------------------------------------------------

FLEET_BUILD = 1  # bump when the fleet recipe changes
#: Package groups of the fleet's 4 layers (subsets of the large image's packages: no extra downloads).
FLEET_GROUPS = {
    False: [["libc6", "libc-l10n", "tzdata", "locales", "perl-modules-5.36"],
            ["libpython3.11-minimal", "python3.11-minimal", "libpython3.11-stdlib", "linux-libc-dev", "libc6-dev"],
            ["cpp-12", "libgcc-12-dev", "libstdc++-12-dev"],
            ["gcc-12"]],
    True: [["libc6", "libc-l10n", "tzdata"], ["locales"], ["libpython3.11-minimal", "libpython3.11-stdlib"],
           ["linux-libc-dev"]],
}
#: repository -> (tags, layer set of each tag)
FLEET_REPOS = {
    "fleet10": ["A"] * 10,
    "fleet40": ["A"] * 40,
    "fleet2x": ["A"] * 5 + ["B"] * 5,
}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class FleetLayer:
    digest: str
    diff_id: str
    size: int
    uncompressed: int
    entries: int
    created_by: str


@dataclass
class Fleet:
    layout: Path
    repos: dict[str, list[str]]      # repository -> tags (registry tags; the layout's tag is "<repo>-<tag>")
    distinct: dict[str, int]         # repository -> distinct layers of its images
    layers: dict[str, list[dict]]    # layer set -> [FleetLayer as dict]
    namespace: str = ""              # registry namespace: "quick/" for --quick, so the two fleets coexist

    def repository(self, repo: str) -> str:
        return self.namespace + repo

    @staticmethod
    def layout_tag(repo: str, tag: str) -> str:
        return f"{repo}-{tag}"

    def images(self, repo: str) -> int:
        return len(self.repos[repo])

    def set_bytes(self, kind: str = "size") -> int:
        return sum(layer[kind] for layer in self.layers["A"])


def _fleet_layer(out: Path, blobs: Path, debs: dict[str, Path], pkgs: list[str], variant: str, k: int,
                 stamp: int) -> FleetLayer:
    """One fleet layer: the files of ``pkgs`` (a marker file first, naming the build), gzipped into ``blobs``."""
    tar = out / f"fleet-{variant}{k}.tar"
    w = LayerWriter(tar, stamp)
    w.file(f"var/lib/ocilens-fleet/build-{variant}{k}", f"fleet layer {k}, build {variant}\n".encode())
    for p in pkgs:
        for ti, data in deb_members(debs[p]):
            w.add(ti, data)
    w.close()
    raw, packed = hashlib.sha256(), hashlib.sha256()
    tmp = blobs / f".tmp-{variant}{k}"

    class _Tee(io.RawIOBase):
        def __init__(self, f: io.BufferedWriter) -> None:
            self.f = f

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[override]
            packed.update(b)
            return self.f.write(b)

    with open(tar, "rb") as src, open(tmp, "wb") as dst, \
            gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=_Tee(dst), mtime=0) as gz:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            raw.update(chunk)
            gz.write(chunk)
    uncompressed = tar.stat().st_size
    tar.unlink()
    digest = "sha256:" + packed.hexdigest()
    tmp.rename(blobs / packed.hexdigest())
    log(f"  fleet layer {variant}{k}: {w.entries:,} entries, {uncompressed / 1e6:.1f} MB tar, "
        f"{(blobs / packed.hexdigest()).stat().st_size / 1e6:.1f} MB gzip")
    return FleetLayer(digest, "sha256:" + raw.hexdigest(), (blobs / packed.hexdigest()).stat().st_size,
                      uncompressed, w.entries, f"RUN apt-get install -y {' '.join(pkgs)}")


def _put_blob(blobs: Path, data: bytes) -> dict:
    h = hashlib.sha256(data).hexdigest()
    (blobs / h).write_bytes(data)
    return {"digest": f"sha256:{h}", "size": len(data)}


def build_fleet(quick: bool) -> Fleet:
    """The fleet's layout (see the module docstring), built once under ``.work/fleet[-quick]``."""
    groups = FLEET_GROUPS[quick]
    debs = download_debs(sorted({p for g in groups for p in g}))
    d = WORK / ("fleet-quick" if quick else "fleet")
    key = {"build": BUILD, "fleet": FLEET_BUILD, "groups": groups, "repos": FLEET_REPOS,
           "debs": sorted(p.name for p in debs.values())}
    layout = d / "oci"
    if not _stamp_ok(d, key):
        log(f"building the fleet images (cached in {d})")
        shutil.rmtree(d, ignore_errors=True)
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        sets: dict[str, list[FleetLayer]] = {}
        for n, variant in enumerate(sorted({v for vs in FLEET_REPOS.values() for v in vs})):
            # set B is the same groups built 30 days later: a different marker file and directory times
            sets[variant] = [_fleet_layer(d, blobs, debs, g, variant, k, EPOCH + (30 * n + k) * DAY)
                             for k, g in enumerate(groups)]
        manifests = []
        for repo, variants in FLEET_REPOS.items():
            for i, variant in enumerate(variants):
                tag = f"t{i:02d}"
                layers = sets[variant]
                created = EPOCH + (30 * (variant != "A") + 10 + i) * DAY
                config = {
                    "created": rfc3339(created), "author": "ocilens benchmarks/inputs.py",
                    "architecture": "amd64", "os": "linux",
                    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                               "Cmd": ["/usr/bin/bash"],
                               "Labels": {"org.opencontainers.image.title": repo,
                                          "org.opencontainers.image.version": f"1.{i}.0",
                                          "org.opencontainers.image.revision": f"{repo}-{variant}-{i}"}},
                    "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
                    "history": [{"created": rfc3339(EPOCH + (30 * (variant != "A") + k) * DAY),
                                 "created_by": layer.created_by} for k, layer in enumerate(layers)],
                }
                cfg = _put_blob(blobs, json.dumps(config, sort_keys=True).encode())
                manifest = {
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": layer.digest, "size": layer.size} for layer in layers],
                }
                m = _put_blob(blobs, json.dumps(manifest, sort_keys=True).encode())
                manifests.append({"mediaType": OCI_MANIFEST, **m,
                                  "annotations": {"org.opencontainers.image.ref.name": Fleet.layout_tag(repo, tag)}})
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
        _stamp(d, key, layers={v: [vars(layer) for layer in ls] for v, ls in sets.items()})
    info = json.loads((d / ".built.json").read_text())
    repos = {repo: [f"t{i:02d}" for i in range(len(vs))] for repo, vs in FLEET_REPOS.items()}
    distinct = {repo: len(groups) * len(set(vs)) for repo, vs in FLEET_REPOS.items()}
    return Fleet(layout, repos, distinct, info["layers"], "quick/" if quick else "")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    lg = build_large(quick)
    print(lg)
    print(build_zstd_archive(lg))
    print(build_one(quick))
    print(build_many(100_000 if quick else 1_000_000))
    print(build_many(10_000 if quick else 100_000))
    print(build_fleet(quick))
