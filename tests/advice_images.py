"""Pairs of images for the advice tests, built from real Debian package files, real apt lists and logs of this
machine, and real wheels from PyPI.

For each kind of fix, ``pairs(kit)`` gives two stacks of layers over one shared base: the *problem* and the
*fixed* image, the same layers otherwise, every layer compressed by the same tool at the same level (zlib's
``gzip -6``; the ``layer_compression`` pair's problem layer is stored uncompressed and its fix is gzip -6 of
the same tar). The truth is the difference between the two: the layer blob sizes (download) and the file bytes
the fix removes (what this module put in). ``combined(kit)`` stacks every problem at once.

Downloads (``apt-get download``, ``pip download``) happen once per session (``Kit.fetch``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import py_compile
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Literal, Sequence

__all__ = ["Kit", "Pair", "Item", "LayerSpec", "pairs", "combined", "base_layer", "write_image", "blob_sizes",
           "gzip6", "is_doc", "BASE_PACKAGES", "TOOLCHAIN_PACKAGES"]

EPOCH = 1_700_000_000
REF_NAME = "org.opencontainers.image.ref.name"
SITE = "/usr/local/lib/python3.11/site-packages"
VENV_SITE = "/opt/venv/lib/python3.11/site-packages"

#: The base every image shares: a C runtime registered in dpkg's database, without documentation (slim).
BASE_PACKAGES = ("libc6", "libgcc-s1", "gcc-12-base", "zlib1g", "libzstd1", "liblz4-1", "liblzma5", "zstd")
#: Build tools with one library only they need (libpkgconf3), installed and registered by one layer.
TOOLCHAIN_PACKAGES = ("make", "pkgconf", "pkgconf-bin", "libpkgconf3", "linux-libc-dev")
#: Packages whose files other pairs use (each package's content appears in one pair only).
OTHER_PACKAGES = ("libjansson4", "libisl23", "libtinfo6", "diffutils", "libreadline8", "xz-utils", "less", "libsnappy1v5", "hello",
                  "tzdata", "netbase", "sed", "libjq1", "libmagic-mgc")
WHEELS = ("pip==23.3.2", "setuptools==69.0.3", "Pygments==2.17.2", "docutils==0.20.1")
DOC = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/")


def gzip6(data: bytes) -> bytes:
    """``gzip -6`` of ``data`` (zlib, no name, mtime 0): the one compressor of every test layer."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def run(*cmd: str | os.PathLike[str], cwd: Path | None = None) -> str:
    proc = subprocess.run([os.fspath(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stderr}")
    return proc.stdout


# ------------------------------------------------------------------------------------------ content


@dataclass(frozen=True)
class Item:
    """One tar member: a file (``data``), a directory, a symlink or hardlink (``link``), or a whiteout."""

    path: str  # image-absolute
    data: bytes = b""
    kind: Literal["file", "dir", "symlink", "hardlink", "whiteout"] = "file"
    mode: int = 0o644
    link: str = ""


def _tar(items: Sequence[Item]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for it in items:
            name = it.path.lstrip("/")
            if it.kind == "whiteout":
                head, _, base = name.rpartition("/")
                name = f"{head}/.wh.{base}" if head else f".wh.{base}"
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uname, info.gname = EPOCH, it.mode, "root", "root"
            if it.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif it.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, it.link
            elif it.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, it.link.lstrip("/")
            else:
                info.size = len(it.data)
            tar.addfile(info, io.BytesIO(it.data) if info.isreg() else None)
    return buf.getvalue()


@dataclass(frozen=True)
class LayerSpec:
    """One layer: its history line, its members, and how its blob is stored."""

    created_by: str
    items: tuple[Item, ...]
    compression: Literal["gzip", "none", "gzip-0"] = "gzip"  # gzip-0: gzip's format, stored uncompressed

    @property
    def file_bytes(self) -> int:
        return sum(len(i.data) for i in self.items if i.kind == "file")


_BLOBS: dict[tuple[str, str], bytes] = {}


def _blob(spec: LayerSpec) -> tuple[bytes, bytes]:
    """(tar, blob) of a layer; blobs are memoized (the base and shared layers are compressed once)."""
    tar = _tar(spec.items)
    key = (hashlib.sha256(tar).hexdigest(), spec.compression)
    if key not in _BLOBS:
        _BLOBS[key] = (gzip6(tar) if spec.compression == "gzip" else
                       gzip.compress(tar, compresslevel=0, mtime=0) if spec.compression == "gzip-0" else tar)
    return tar, _BLOBS[key]


def write_image(dest: Path, layers: Sequence[LayerSpec], tag: str = "t") -> Path:
    """An OCI layout at ``dest`` (new) with one layer per spec, history from ``created_by``; returns ``dest``."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    descs, diff_ids = [], []
    for spec in layers:
        tar, blob = _blob(spec)
        media = "application/vnd.oci.image.layer.v1.tar" + ("" if spec.compression == "none" else "+gzip")
        descs.append(put(blob, media))
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    config = {"created": "2023-11-14T22:13:20Z", "architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": "2023-11-14T22:13:20Z", "created_by": s.created_by} for s in layers]}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": put(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
                "layers": descs}
    top = put(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    top["annotations"] = {REF_NAME: tag}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return dest


def blob_sizes(layout: Path) -> int:
    """The sum of an image's layer blob sizes: what pulling it downloads (its configs aside)."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    return sum(d["size"] for d in manifest["layers"])


# ------------------------------------------------------------------------------------------ downloads


@dataclass
class Kit:
    """The real files the images are made of: extracted .debs, wheels, apt lists and logs of this machine."""

    root: Path
    debs: dict[str, Path] = field(default_factory=dict)
    trees: dict[str, Path] = field(default_factory=dict)
    wheels: list[Path] = field(default_factory=list)

    @classmethod
    def fetch(cls, root: Path) -> "Kit":
        """Download (``apt-get download``, ``pip download``) and extract (``dpkg-deb -x``) everything once."""
        kit = cls(root)
        debs = root / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        names = (*BASE_PACKAGES, *TOOLCHAIN_PACKAGES, *OTHER_PACKAGES)
        # -o APT::Sandbox::User=root: the _apt user may not write into a root-owned temporary directory
        run("apt-get", "download", "-o", "APT::Sandbox::User=root", *names, cwd=debs)
        for name in names:
            found = sorted(debs.glob(f"{name}_*.deb"))
            assert found, f"apt-get download {name} gave no .deb"
            kit.debs[name] = found[-1]
            tree = root / "trees" / name
            tree.mkdir(parents=True)
            run("dpkg-deb", "-x", found[-1], tree)
            kit.trees[name] = tree
        wheels = root / "wheels"
        run("pip", "download", "--no-deps", "--quiet", "--dest", wheels, *WHEELS)
        kit.wheels = sorted(wheels.glob("*.whl"))
        assert len(kit.wheels) == len(WHEELS), kit.wheels
        return kit

    def control(self, name: str) -> str:
        """The package's control stanza as dpkg's status file holds it."""
        text = run("dpkg-deb", "-f", self.debs[name]).rstrip("\n")
        first, _, rest = text.partition("\n")
        return f"{first}\nStatus: install ok installed\n{rest}\n"

    def files(self, name: str, *, prefix: str = "", docs: bool = True, mode: int | None = None) -> list[Item]:
        """A package's members as ``dpkg-deb -x`` unpacks them (under ``prefix``), directories first in
        walk order; ``docs=False`` leaves out /usr/share/{doc,man,info} but the copyright files."""
        root = self.trees[name]
        out: list[Item] = []
        inodes: dict[int, str] = {}  # a package's hardlinked files (bzip2, bunzip2, bzcat) stay hardlinks
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for entry in [*sorted(dirnames), *sorted(filenames)]:
                full = Path(dirpath) / entry
                path = prefix + "/" + full.relative_to(root).as_posix()
                if not docs and is_doc(path):
                    continue
                if full.is_symlink():
                    out.append(Item(path, kind="symlink", link=os.readlink(full), mode=0o777))
                elif full.is_dir():
                    out.append(Item(path, kind="dir", mode=0o755))
                else:
                    st = full.stat()
                    if st.st_nlink > 1 and st.st_ino in inodes:
                        out.append(Item(path, kind="hardlink", link=inodes[st.st_ino]))
                        continue
                    inodes[st.st_ino] = path
                    out.append(Item(path, full.read_bytes(), mode=mode if mode is not None else st.st_mode & 0o7777))
        return out

    def lists(self) -> list[Item]:
        """apt's lists as ``apt-get update`` leaves them on this machine (``*.lz4`` Packages lists decompressed,
        as apt keeps them without the docker gzip/lz4 index setting); the main archive's big list left out."""
        out = []
        for f in sorted(Path("/var/lib/apt/lists").iterdir()):
            if not f.is_file() or f.name == "lock" or "bookworm_main" in f.name:
                continue
            data = f.read_bytes()
            name = f.name
            if name.endswith(".lz4"):
                data = subprocess.run(["lz4", "-dc", str(f)], capture_output=True, check=True).stdout
                name = name[:-4]
            out.append(Item(f"/var/lib/apt/lists/{name}", data))
        assert out, "no apt lists on this machine: run apt-get update"
        return out

    def logs(self, limit: int = 1_000_000) -> list[Item]:
        """Logs of this machine's package manager (the first ``limit`` bytes of each), as an install leaves
        them; a machine without them gets a package's changelog in their place."""
        out = []
        for name in ("dpkg.log", "apt/term.log", "apt/history.log", "alternatives.log"):
            try:
                data = Path("/var/log", name).read_bytes()[:limit]
            except OSError:
                continue
            if data:
                out.append(Item(f"/var/log/{name}", data))
        if not out:
            log = gzip.decompress((self.trees["sed"] / "usr/share/doc/sed/changelog.Debian.gz").read_bytes())
            out.append(Item("/var/log/dpkg.log", log[:limit]))
        return out


def is_doc(path: str) -> bool:
    """What a dpkg ``path-exclude`` of documentation drops: doc, man and info pages, but the copyright files."""
    return path.startswith(DOC) and not (path.startswith("/usr/share/doc/") and path.endswith("/copyright"))


def dpkg_database(kit: Kit, names: Sequence[str], items_of: dict[str, list[Item]]) -> list[Item]:
    """``/var/lib/dpkg/status`` listing ``names`` and the ``info/<name>.list`` (the paths it shipped) of each
    package in ``items_of``, as the layer that installs those leaves the database."""
    status = "\n".join(kit.control(n) for n in names).encode()
    out = [Item("/var/lib/dpkg/status", status)]
    for n in items_of:
        listed = "/.\n" + "".join(f"{i.path}\n" for i in items_of[n])
        out.append(Item(f"/var/lib/dpkg/info/{n}.list", listed.encode()))
    return out


def base_layer(kit: Kit) -> LayerSpec:
    items = {n: kit.files(n, docs=False) for n in BASE_PACKAGES}
    return LayerSpec("ADD rootfs.tar / # a slim Debian base",
                     (*[i for n in BASE_PACKAGES for i in items[n]], *dpkg_database(kit, BASE_PACKAGES, items)))


def _regular(items: Iterable[Item]) -> int:
    return sum(len(i.data) for i in items if i.kind == "file")


def _wheel_files(wheel: Path, site: str) -> list[Item]:
    with zipfile.ZipFile(wheel) as z:
        return [Item(f"{site}/{n}", z.read(n)) for n in sorted(z.namelist()) if not n.endswith("/")]


def _compiled(items: Sequence[Item], work: Path) -> list[Item]:
    """The real CPython bytecode of each ``.py`` (``__pycache__/<mod>.cpython-311.pyc``), as pip's install
    compiles it (hash-based, so the bytes do not depend on when it ran)."""
    out = []
    for it in items:
        if not it.path.endswith(".py"):
            continue
        src = work / it.path.lstrip("/")
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(it.data)
        head, _, base = it.path.rpartition("/")
        target = f"{head}/__pycache__/{base[:-3]}.cpython-311.pyc"
        dest = work / "pyc" / target.lstrip("/")
        py_compile.compile(str(src), cfile=str(dest), dfile=it.path, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        out.append(Item(target, dest.read_bytes()))
    return out


# ------------------------------------------------------------------------------------------ the pairs


@dataclass(frozen=True)
class Pair:
    """One kind's problem and its fix, as layers above the base; ``bytes_saved``: the file bytes the fix
    removes (0 for recompression)."""

    kind: str
    problem: tuple[LayerSpec, ...]
    fixed: tuple[LayerSpec, ...]
    bytes_saved: int


def pairs(kit: Kit, work: Path) -> dict[str, Pair]:
    """One pair per kind (see the module docstring); each pair's content is used by no other pair."""
    out: dict[str, Pair] = {}

    # files a later layer deletes: the .debs apt downloaded, removed by the next RUN
    debs = [Item(f"/var/cache/apt/archives/{kit.debs[n].name}", kit.debs[n].read_bytes()) for n in ("libisl23", "libtinfo6")]
    lib = kit.files("libjansson4", docs=False)
    out["delete_in_same_layer"] = Pair(
        "delete_in_same_layer",
        (LayerSpec("RUN /bin/sh -c apt-get install -y libjansson4 # buildkit", (*lib, *debs)),
         LayerSpec("RUN /bin/sh -c rm -f /var/cache/apt/archives/*.deb # buildkit",
                   tuple(Item(d.path, kind="whiteout") for d in debs))),
        (LayerSpec("RUN /bin/sh -c apt-get install -y libjansson4 # buildkit", tuple(lib)),),
        _regular(debs))

    # files re-shipped by a chmod: diffutils' programs and readline's libraries, copied, then made executable
    progs = [it for n in ("diffutils", "libreadline8") for it in kit.files(n, prefix="/opt/tools", docs=False, mode=0o644)
             if it.kind == "file" and ("/bin/" in it.path or ".so" in it.path)]
    out["metadata_only_copy"] = Pair(
        "metadata_only_copy",
        (LayerSpec("COPY tools/ /opt/tools/ # buildkit", tuple(progs)),
         LayerSpec("RUN /bin/sh -c chmod -R 0755 /opt/tools # buildkit",
                   tuple(replace(it, mode=0o755) for it in progs))),
        (LayerSpec("COPY tools/ /opt/tools/ # buildkit", tuple(replace(it, mode=0o755) for it in progs)),),
        _regular(progs))

    # a file set replaced later by other content: xz-utils' programs written over with less's
    old = [it for it in kit.files("xz-utils", docs=False) if it.kind == "file" and "/bin/" in it.path][:4]
    new_src = [it for it in kit.files("less", docs=False) if it.kind == "file" and "/bin/" in it.path]
    new = [Item(f"/opt/app/bin/{o.path.rpartition('/')[2]}", n.data, mode=0o755) for o, n in zip(old, new_src)]
    old = [Item(n.path, o.data, mode=0o755) for o, n in zip(old, new)]
    out["overwritten"] = Pair(
        "overwritten",
        (LayerSpec("COPY app-1.0/ /opt/app/ # buildkit", tuple(old)),
         LayerSpec("COPY app-2.0/ /opt/app/ # buildkit", tuple(new))),
        (LayerSpec("COPY app-2.0/ /opt/app/ # buildkit", tuple(new)),),
        _regular(old))

    # apt lists left by apt-get update
    lists = kit.lists()
    snappy = kit.files("libsnappy1v5", docs=False)
    out["package_lists"] = Pair(
        "package_lists",
        (LayerSpec("RUN /bin/sh -c apt-get update && apt-get install -y libsnappy1v5 # buildkit", (*snappy, *lists)),),
        (LayerSpec("RUN /bin/sh -c apt-get update && apt-get install -y libsnappy1v5 # buildkit", tuple(snappy)),),
        _regular(lists))

    # pip's cache of the wheels it fetched (pip and setuptools vendor each other's packages: not installed here,
    # so that their copies add no duplicates)
    installed = [it for w in kit.wheels if w.name.startswith("docutils-") for it in _wheel_files(w, SITE)]
    cache = []
    for w in kit.wheels:
        h = hashlib.sha224(w.name.encode()).hexdigest()
        cache.append(Item(f"/root/.cache/pip/http-v2/{h[0]}/{h[1]}/{h[2]}/{h[3]}/{h[4]}/{h}.body", w.read_bytes()))
    out["package_cache"] = Pair(
        "package_cache",
        (LayerSpec("RUN /bin/sh -c pip install docutils # buildkit", (*installed, *cache)),),
        (LayerSpec("RUN /bin/sh -c pip install docutils # buildkit", tuple(installed)),),
        _regular(cache))

    # compilers and headers in the final image, registered in dpkg's database
    tc_items = {n: kit.files(n) for n in TOOLCHAIN_PACKAGES}
    db = dpkg_database(kit, (*BASE_PACKAGES, *TOOLCHAIN_PACKAGES), tc_items)
    app = (Item("/usr/local/bin/app", (kit.trees["hello"] / "usr/bin/hello").read_bytes(), mode=0o755),)
    out["build_toolchain"] = Pair(
        "build_toolchain",
        (LayerSpec("RUN /bin/sh -c apt-get install -y make pkgconf linux-libc-dev && make install # buildkit",
                   (*[i for n in TOOLCHAIN_PACKAGES for i in tc_items[n]], *db, *app)),),
        (LayerSpec("COPY --from=build /usr/local/bin/app /usr/local/bin/app # buildkit", app),),
        sum(_regular(tc_items[n]) for n in TOOLCHAIN_PACKAGES))

    # a build's scratch files left in /tmp: part of an unpacked tree
    zones = tuple(f"/tmp/build/usr/share/zoneinfo/{z}/" for z in ("right", "America", "Asia", "Europe"))
    scratch = [it for it in kit.files("tzdata", prefix="/tmp/build", docs=False) if it.path.startswith(zones)]
    keep = (Item("/usr/local/share/zoneinfo-version", b"2024a\n"),)
    out["temp_files"] = Pair(
        "temp_files",
        (LayerSpec("RUN /bin/sh -c ./configure && make && make install # buildkit", (*keep, *scratch)),),
        (LayerSpec("RUN /bin/sh -c ./configure && make && make install # buildkit", keep),),
        _regular(scratch))

    # the package manager's logs of an install
    logs = kit.logs()
    netbase = kit.files("netbase", docs=False)
    out["logs"] = Pair(
        "logs",
        (LayerSpec("RUN /bin/sh -c apt-get install -y netbase # buildkit", (*netbase, *logs)),),
        (LayerSpec("RUN /bin/sh -c apt-get install -y netbase # buildkit", tuple(netbase)),),
        _regular(logs))

    # bytecode beside its sources
    pygments = _wheel_files(next(w for w in kit.wheels if w.name.startswith("pygments")), VENV_SITE)
    pyc = _compiled(pygments, work / "pyc")
    out["python_bytecode"] = Pair(
        "python_bytecode",
        (LayerSpec("RUN /bin/sh -c /opt/venv/bin/pip install pygments # buildkit", (*pygments, *pyc)),),
        (LayerSpec("RUN /bin/sh -c /opt/venv/bin/pip install pygments # buildkit", tuple(pygments)),),
        _regular(pyc))

    # documentation of the packages a layer installs
    docs = kit.files("sed")
    out["documentation"] = Pair(
        "documentation",
        (LayerSpec("RUN /bin/sh -c apt-get install -y sed # buildkit", tuple(docs)),),
        (LayerSpec("RUN /bin/sh -c apt-get install -y sed # buildkit",
                   tuple(it for it in docs if not (it.kind == "file" and is_doc(it.path)))),),
        _regular(it for it in docs if is_doc(it.path)))

    # the same files vendored twice; the fix hardlinks the second copy
    libs = [it for it in kit.files("libjq1", prefix="/srv/app/lib", docs=False) if it.kind == "file"
            and ".so" in it.path]
    copies = [Item(it.path.replace("/srv/app/lib/", "/srv/app/vendor/"), it.data) for it in libs]
    links = [Item(c.path, kind="hardlink", link=it.path) for c, it in zip(copies, libs)]
    out["duplicate_content"] = Pair(
        "duplicate_content",
        (LayerSpec("COPY . /srv/app # buildkit", (*libs, *copies)),),
        (LayerSpec("COPY . /srv/app # buildkit", (*libs, *links)),),
        _regular(copies))

    # a layer stored uncompressed; the fix is gzip -6 of the same tar
    data = kit.files("libmagic-mgc", prefix="/srv/data", docs=False)
    out["layer_compression"] = Pair(
        "layer_compression",
        (LayerSpec("COPY data/ /srv/data/ # buildkit", tuple(data), "none"),),
        (LayerSpec("COPY data/ /srv/data/ # buildkit", tuple(data), "gzip"),),
        0)
    return out


def combined(pairs: dict[str, Pair]) -> list[LayerSpec]:
    """Every problem at once, above the base: each pair's problem layers, in turn."""
    return [spec for pair in pairs.values() for spec in pair.problem]
