"""Build real images for the tests: with umoci and skopeo from real files, or byte by byte for hostile layers.

Three ways in, from most to least realistic:

- ``umoci_image(tmp_path, [Layer("RUN ...", [Op.write(...), Op.chmod(...)]), ...])``: each layer is a set of
  changes to an unpacked rootfs, turned into a layer by ``umoci repack`` (umoci decides what goes in the
  tar, whiteouts included). ``EmptyLayer`` rows become ``empty_layer: true`` history via ``umoci config``.
- ``add_raw_layer(layout, tag, tar_layer([...]))``: a tar written by hand, appended by ``umoci raw add-layer``
  (opaque markers, which umoci never writes itself).
- ``layout_from_tars(tmp_path, [tar_layer([...]), ...])``: the whole OCI layout in pure Python, for layers no
  tool would accept (``../x``, zstd, multi-member gzip, lying media types, broken digests).

The truth to compare ocilens against is ``tree_of(umoci_unpack(layout, tag, dest))``.
Paths in ``Op`` and in ``tree_of`` keys are image-absolute (``/usr/bin/x``); names that are not UTF-8 appear
as ``os.fsdecode`` strings (surrogate escapes), exactly as ``os.listdir`` gives them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, Union

import zstandard

__all__ = [
    "EPOCH", "Op", "Layer", "EmptyLayer", "LayerSpec", "umoci_image", "Entry", "tar_layer",
    "gzip_members", "zstd_frames", "compress", "layout_from_tars", "add_raw_layer", "to_archive",
    "umoci_unpack", "tree_of", "manifest_of", "config_of", "blob_path", "layer_blob_paths", "run",
]

EPOCH = 1_700_000_000  # 2023-11-14: the mtime of everything a build step touches, plus a day per step
DAY = 86400
REF_NAME = "org.opencontainers.image.ref.name"

Mutation = Callable[[Path], None]
Compression = Literal["gzip", "zstd", "none", "gzip-multi", "zstd-multi"]


def run(*cmd: str | os.PathLike[str]) -> str:
    """Run a tool; on failure raise with its stderr in the message (so a test failure says why)."""
    args = [os.fspath(c) for c in cmd]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc.stdout


def _rfc3339(t: int) -> str:
    """A UTC timestamp in the form OCI configs and umoci's ``--history.created`` use."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------- umoci


def _inside(rootfs: Path, path: str | bytes) -> Path:
    """``path`` (image-absolute) under ``rootfs``, refusing to follow a parent symlink out of it."""
    rel = os.fsdecode(path).lstrip("/")
    target = rootfs / rel
    parent = Path(os.path.realpath(target.parent))
    root = Path(os.path.realpath(rootfs))
    if parent != root and root not in parent.parents:
        raise ValueError(f"{os.fsdecode(path)!r} resolves outside the rootfs (through a symlink)")
    return target


@dataclass(frozen=True)
class _Op:
    """One change to a rootfs; the repr names it so a failing test shows what was built."""

    what: str
    fn: Mutation = field(repr=False)

    def __call__(self, rootfs: Path) -> None:
        self.fn(rootfs)


class Op:
    """Constructors of rootfs changes for ``Layer``; each takes image-absolute paths."""

    @staticmethod
    def write(path: str | bytes, content: bytes | str = b"", mode: int = 0o644, uid: int = 0,
              gid: int = 0, mtime: int | None = None) -> _Op:
        """Create or replace a regular file (parents made 0755), then set mode, owner and maybe mtime."""
        def fn(root: Path) -> None:
            p = _inside(root, path)
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.is_symlink() or p.exists() and not p.is_file():
                Op.remove(path)(root)
            p.write_bytes(content.encode() if isinstance(content, str) else content)
            os.chown(p, uid, gid)
            os.chmod(p, mode)
            if mtime is not None:
                os.utime(p, (mtime, mtime))
        return _Op(f"write {path!r} mode={mode:o}", fn)

    @staticmethod
    def mkdir(path: str | bytes, mode: int = 0o755, uid: int = 0, gid: int = 0) -> _Op:
        """Create a directory (and its parents); set its mode and owner."""
        def fn(root: Path) -> None:
            p = _inside(root, path)
            p.mkdir(parents=True, exist_ok=True)
            os.chown(p, uid, gid)
            os.chmod(p, mode)
        return _Op(f"mkdir {path!r} mode={mode:o}", fn)

    @staticmethod
    def chmod(path: str | bytes, mode: int) -> _Op:
        """Change permission bits only (setuid, setgid, sticky included): a metadata-only change."""
        return _Op(f"chmod {mode:o} {path!r}", lambda root: os.chmod(_inside(root, path), mode))

    @staticmethod
    def chown(path: str | bytes, uid: int, gid: int) -> _Op:
        """Change the owner only (not following a symlink)."""
        return _Op(f"chown {uid}:{gid} {path!r}",
                   lambda root: os.chown(_inside(root, path), uid, gid, follow_symlinks=False))

    @staticmethod
    def touch(path: str | bytes, mtime: int) -> _Op:
        """Change the mtime only."""
        return _Op(f"touch {path!r} @{mtime}",
                   lambda root: os.utime(_inside(root, path), (mtime, mtime), follow_symlinks=False))

    @staticmethod
    def remove(path: str | bytes) -> _Op:
        """Delete a file, link, device or a whole directory tree (umoci then writes a whiteout)."""
        def fn(root: Path) -> None:
            p = _inside(root, path)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        return _Op(f"remove {path!r}", fn)

    @staticmethod
    def symlink(path: str | bytes, target: str | bytes) -> _Op:
        """Create a symlink ``path -> target`` (the target is stored verbatim, absolute or relative)."""
        def fn(root: Path) -> None:
            p = _inside(root, path)
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, p)
        return _Op(f"symlink {path!r} -> {target!r}", fn)

    @staticmethod
    def hardlink(path: str | bytes, target: str | bytes) -> _Op:
        """Create ``path`` as another name of the existing file ``target`` (both image-absolute)."""
        def fn(root: Path) -> None:
            p = _inside(root, path)
            p.parent.mkdir(parents=True, exist_ok=True)
            os.link(_inside(root, target), p, follow_symlinks=False)
        return _Op(f"hardlink {path!r} => {target!r}", fn)

    @staticmethod
    def mknod(path: str | bytes, kind: Literal["char", "block", "fifo"], major: int = 0, minor: int = 0,
              mode: int = 0o644) -> _Op:
        """Create a device node (needs root) or a fifo."""
        bits = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "fifo": stat.S_IFIFO}[kind]
        def fn(root: Path) -> None:
            p = _inside(root, path)
            p.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(p, bits | mode, os.makedev(major, minor))
            os.chmod(p, mode)
        return _Op(f"mknod {kind} {path!r} {major}:{minor}", fn)


@dataclass(frozen=True)
class Layer:
    """One ``umoci repack``: apply ``ops`` (in order) to the rootfs, record ``created_by`` in the history."""

    created_by: str
    ops: Sequence[Mutation] = ()


@dataclass(frozen=True)
class EmptyLayer:
    """A config-only step (``umoci config``): an ``empty_layer: true`` history row, no blob.

    ``flags`` are extra ``umoci config`` options, e.g. ``("--config.env", "A=1")``.
    """

    created_by: str
    flags: Sequence[str] = ()


LayerSpec = Union[Layer, EmptyLayer, Mutation]


def _clamp_times(rootfs: Path, since: float, stamp: int) -> None:
    """Give every path this step touched (mtime >= ``since``) the fixed mtime ``stamp``: stable digests."""
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for name in [*dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            if os.lstat(p).st_mtime >= since:
                os.utime(p, (stamp, stamp), follow_symlinks=False)
    if os.lstat(rootfs).st_mtime >= since:
        os.utime(rootfs, (stamp, stamp))


def umoci_image(tmp_path: Path, layers: Sequence[LayerSpec], tag: str = "t", *,
                rootless: bool = False) -> Path:
    """A new OCI layout built by umoci, one layer (or empty-layer history row) per spec; returns its dir.

    A plain callable spec is a layer with ``created_by`` ``"layer N"``. Everything a step touches gets a
    fixed mtime (``EPOCH`` + N days) unless an op set one, so the same specs give the same digests.
    The image is ``oci:<returned dir>:<tag>``.
    """
    layout = Path(tempfile.mkdtemp(prefix="umoci-", dir=tmp_path)) / "layout"
    image = f"{layout}:{tag}"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", image)
    run("umoci", "config", "--image", image, "--no-history", "--created", _rfc3339(EPOCH))
    for n, spec in enumerate(layers, start=1):
        stamp = EPOCH + n * DAY
        history = ("--history.created", _rfc3339(stamp), "--history.author", "ocilens-tests")
        if isinstance(spec, EmptyLayer):
            run("umoci", "config", "--image", image, *spec.flags, "--created", _rfc3339(stamp),
                "--history.created_by", spec.created_by, *history)
            continue
        created_by, ops = (spec.created_by, spec.ops) if isinstance(spec, Layer) else (f"layer {n}", [spec])
        bundle = layout.parent / f"bundle{n}"
        run("umoci", "unpack", *(["--rootless"] if rootless else []), "--image", image, bundle)
        since = time.time() - 1
        for op in ops:
            op(bundle / "rootfs")
        _clamp_times(bundle / "rootfs", since, stamp)
        run("umoci", "repack", "--image", image, "--history.created_by", created_by, *history, bundle)
        shutil.rmtree(bundle)
    run("umoci", "gc", "--layout", layout)
    return layout


def add_raw_layer(layout: Path, tag: str, tar_bytes: bytes, created_by: str | None = "raw layer") -> None:
    """Append an uncompressed tar verbatim as a new layer (umoci gzips it); ``created_by=None``: no history."""
    with tempfile.NamedTemporaryFile(suffix=".tar", dir=layout.parent) as f:
        f.write(tar_bytes)
        f.flush()
        hist = ["--no-history"] if created_by is None else ["--history.created_by", created_by]
        run("umoci", "raw", "add-layer", "--image", f"{layout}:{tag}", *hist, f.name)


def umoci_unpack(layout: Path, tag: str, dest: Path, rootless: bool = False) -> Path:
    """``umoci unpack`` the image into the bundle ``dest`` (must not exist); returns ``dest / "rootfs"``.

    This is the reference extraction. With ``rootless`` every owner becomes the caller (umoci records the
    image's in a ``user.rootlesscontainers`` xattr) and device nodes become empty regular files.
    """
    run("umoci", "unpack", *(["--rootless"] if rootless else []), "--image", f"{layout}:{tag}", dest)
    return dest / "rootfs"


def to_archive(layout: Path, tag: str, dest: Path,
               kind: Literal["oci-archive", "docker-archive"] = "oci-archive",
               dest_ref: str | None = None) -> Path:
    """``skopeo copy oci:LAYOUT:TAG KIND:DEST[:DEST_REF]``; returns ``dest`` (replaced if it exists).

    ``dest_ref`` defaults to ``tag`` for an oci-archive (its index gets that ref.name) and to none for a
    docker-archive (``RepoTags`` empty); pass e.g. ``"example.com/app:1"`` to name a docker-archive image.
    """
    if dest.exists():
        dest.unlink()
    ref = dest_ref if dest_ref is not None else (tag if kind == "oci-archive" else None)
    run("skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"{kind}:{dest}" + (f":{ref}" if ref else ""))
    return dest


# ------------------------------------------------------------------------------------------ raw tars


EntryType = Literal["file", "dir", "symlink", "hardlink", "char", "block", "fifo"]
_TAR_TYPES: dict[str, bytes] = {
    "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
}


@dataclass(frozen=True)
class Entry:
    """One tar member, written exactly as given: the name is not normalized (``../x``, ``/abs`` and bytes
    that are not UTF-8 all go in verbatim). Build with the classmethods; ``dataclasses.replace`` to tweak.
    """

    name: str | bytes
    type: EntryType = "file"
    content: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = EPOCH
    linkname: str | bytes = ""
    devmajor: int = 0
    devminor: int = 0
    uname: str = "root"
    gname: str = "root"
    pax: Mapping[str, str] = field(default_factory=dict)  # extra PAX records, e.g. SCHILY.xattr.*
    size: int | None = None  # header size when it must lie about the content (None: len(content))

    @classmethod
    def file(cls, name: str | bytes, content: bytes | str = b"", mode: int = 0o644, **kw: Any) -> "Entry":
        """A regular file."""
        return cls(name, "file", content.encode() if isinstance(content, str) else content, mode, **kw)

    @classmethod
    def dir(cls, name: str | bytes, mode: int = 0o755, **kw: Any) -> "Entry":
        """A directory."""
        return cls(name, "dir", mode=mode, **kw)

    @classmethod
    def symlink(cls, name: str | bytes, target: str | bytes, **kw: Any) -> "Entry":
        """A symlink ``name -> target``."""
        return cls(name, "symlink", mode=0o777, linkname=target, **kw)

    @classmethod
    def hardlink(cls, name: str | bytes, target: str | bytes, **kw: Any) -> "Entry":
        """A hardlink to ``target`` (a path in this or a lower layer, as written in the tar)."""
        return cls(name, "hardlink", linkname=target, **kw)

    @classmethod
    def char(cls, name: str | bytes, major: int = 1, minor: int = 3, mode: int = 0o666, **kw: Any) -> "Entry":
        """A character device (default: ``/dev/null``'s 1:3)."""
        return cls(name, "char", mode=mode, devmajor=major, devminor=minor, **kw)

    @classmethod
    def block(cls, name: str | bytes, major: int = 7, minor: int = 0, mode: int = 0o660, **kw: Any) -> "Entry":
        """A block device (default: ``/dev/loop0``'s 7:0)."""
        return cls(name, "block", mode=mode, devmajor=major, devminor=minor, **kw)

    @classmethod
    def fifo(cls, name: str | bytes, mode: int = 0o644, **kw: Any) -> "Entry":
        """A named pipe."""
        return cls(name, "fifo", mode=mode, **kw)

    @classmethod
    def whiteout(cls, path: str, **kw: Any) -> "Entry":
        """``dir/.wh.name``: removes ``dir/name`` of the lower layers."""
        head, _, base = path.rstrip("/").rpartition("/")
        return cls.file(f"{head}/.wh.{base}" if head else f".wh.{base}", **kw)

    @classmethod
    def opaque(cls, directory: str, **kw: Any) -> "Entry":
        """``dir/.wh..wh..opq``: hides every lower-layer child of ``dir``."""
        return cls.file(f"{directory.rstrip('/')}/.wh..wh..opq", **kw)


def _tarinfo(e: Entry) -> tarfile.TarInfo:
    """The TarInfo for an entry; bytes names become surrogate-escaped str, written back as the same bytes."""
    info = tarfile.TarInfo(os.fsdecode(e.name))
    info.type = _TAR_TYPES[e.type]
    info.size = len(e.content) if e.size is None else e.size
    if e.type != "file":
        info.size = 0 if e.size is None else e.size
    info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
    info.linkname = os.fsdecode(e.linkname)
    info.devmajor, info.devminor = e.devmajor, e.devminor
    info.uname, info.gname = e.uname, e.gname
    info.pax_headers = dict(e.pax)
    return info


def tar_layer(entries: Sequence[Entry], *, format: Literal["pax", "gnu", "ustar"] = "pax",
              eof: bool = True) -> bytes:
    """An uncompressed tar of ``entries``, in order, with Python's tarfile.

    ``format="pax"`` puts long and non-ASCII names in PAX records (``hdrcharset=BINARY`` for non-UTF-8
    bytes); ``"gnu"`` uses ``././@LongLink`` headers and raw name bytes. ``eof=False`` leaves out the two
    zero end-of-archive blocks and the record padding (as ``umoci insert`` does).
    """
    fmt = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}[format]
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape")
    for e in entries:
        info = _tarinfo(e)
        # Directory names get a trailing "/" from tarfile itself; other names go in as given.
        tar.addfile(info, io.BytesIO(e.content) if info.isreg() else None)
    end = tar.offset
    tar.close()  # writes the two zero blocks and pads to a 10 KiB record
    return buf.getvalue() if eof else buf.getvalue()[:end]


# ----------------------------------------------------------------------------------- pure-Python layouts


def gzip_members(data: bytes, parts: int = 3) -> bytes:
    """``data`` as ``parts`` concatenated gzip members (what ``pigz --independent``-style tools write)."""
    step = max(1, -(-len(data) // parts))
    chunks = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
    return b"".join(gzip.compress(c, mtime=0) for c in chunks)


def zstd_frames(data: bytes, parts: int = 3) -> bytes:
    """``data`` as ``parts`` concatenated zstd frames (each frame alone decodes only its share)."""
    step = max(1, -(-len(data) // parts))
    chunks = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
    cctx = zstandard.ZstdCompressor(level=3, write_content_size=True)
    return b"".join(cctx.compress(c) for c in chunks)


_LAYER_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "gzip-multi": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "zstd-multi": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


def compress(data: bytes, compression: Compression) -> bytes:
    """A layer blob: ``data`` compressed one of the ways layers come."""
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "gzip-multi":
        return gzip_members(data)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "zstd-multi":
        return zstd_frames(data)
    if compression == "none":
        return data
    raise ValueError(f"unknown compression {compression!r}")


def _write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    """Store a blob under ``blobs/sha256``; return its descriptor's digest and size."""
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def layout_from_tars(tmp_path: Path, tars: Sequence[bytes],
                     compression: Compression | Sequence[Compression] = "gzip", *,
                     history: Sequence[str | Mapping[str, Any]] | None = None, tag: str = "t",
                     media_types: Sequence[str | None] | None = None,
                     config: Mapping[str, Any] | None = None) -> Path:
    """An OCI image layout written directly (no tool checks anything): one layer per tar; returns its dir.

    ``compression``: one for all layers or one per layer. ``history``: rows as ``created_by`` strings or
    whole dicts (use ``{"created_by": "ENV A=1", "empty_layer": True}`` for rows without a blob);
    default one ``"layer N"`` row per layer. ``media_types`` overrides layer media types (``None`` items
    keep the honest one) to test that the bytes, not the names, are trusted. ``config`` is merged into
    the image config (``diff_ids`` are always the true uncompressed digests).
    """
    layout = Path(tempfile.mkdtemp(prefix="layout-", dir=tmp_path))
    comps = [compression] * len(tars) if isinstance(compression, str) else list(compression)
    if len(comps) != len(tars):
        raise ValueError("one compression per layer")
    layers, diff_ids = [], []
    for i, (tar, comp) in enumerate(zip(tars, comps)):
        desc = _write_blob(layout, compress(tar, comp))
        mt = (media_types[i] if media_types and media_types[i] else None) or _LAYER_TYPES[comp]
        layers.append({"mediaType": mt, **desc})
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    rows = [{"created_by": f"layer {i}"} for i in range(len(tars))] if history is None else [
        {"created_by": h} if isinstance(h, str) else dict(h) for h in history]
    for i, row in enumerate(rows):
        row.setdefault("created", _rfc3339(EPOCH + i * DAY))
    cfg: dict[str, Any] = {
        "created": _rfc3339(EPOCH), "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": rows,
    }
    cfg.update(config or {})
    cfg_desc = _write_blob(layout, json.dumps(cfg, indent=None, separators=(",", ":")).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg_desc},
                "layers": layers}
    man_desc = _write_blob(layout, json.dumps(manifest, separators=(",", ":")).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **man_desc,
         "annotations": {REF_NAME: tag}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return layout


def blob_path(layout: Path, digest: str) -> Path:
    """Where a blob of a layout lives (for tests that corrupt or inspect it)."""
    algo, _, hexpart = digest.partition(":")
    return layout / "blobs" / algo / hexpart


def manifest_of(layout: Path, tag: str) -> dict[str, Any]:
    """The manifest tagged ``tag`` in a layout's top-level ``index.json``."""
    index = json.loads((layout / "index.json").read_text())
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get(REF_NAME) == tag:
            return json.loads(blob_path(layout, desc["digest"]).read_bytes())
    raise KeyError(f"no tag {tag!r} in {layout}")


def config_of(layout: Path, tag: str) -> dict[str, Any]:
    """The image config of the manifest tagged ``tag``."""
    return json.loads(blob_path(layout, manifest_of(layout, tag)["config"]["digest"]).read_bytes())


def layer_blob_paths(layout: Path, tag: str) -> list[Path]:
    """The files of the layer blobs, bottom first."""
    return [blob_path(layout, layer["digest"]) for layer in manifest_of(layout, tag)["layers"]]


# ----------------------------------------------------------------------------------------- the truth


_KINDS = [(stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "char"),
          (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")]


def _sha256(path: str) -> str:
    """The hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_of(rootfs: Path) -> dict[str, dict[str, Any]]:
    """Every path under ``rootfs`` (root excluded) as ``/a/b`` -> its node, never following symlinks.

    A node: ``type`` (file, dir, symlink, char, block, fifo, socket), ``size`` (regular files; 0
    otherwise), ``mode`` (``stat.S_IMODE``: permission, setuid, setgid, sticky bits), ``uid``, ``gid``,
    ``mtime`` (int seconds), ``linkname`` (symlink target, else None), ``sha256`` (regular files, else
    None), ``rdev`` ((major, minor) of devices, else None), ``nlink``, ``inode`` and ``link_group`` (for a
    regular file with other names in this tree: the first of those names in sorted order, the same for
    all of them, so hardlink groups compare across extractions; else None).
    """
    tree: dict[str, dict[str, Any]] = {}
    root = os.fspath(rootfs)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            kind = next(k for test, k in _KINDS if test(st.st_mode))
            is_dev = kind in ("char", "block")
            tree["/" + os.path.relpath(full, root)] = {
                "type": kind, "size": st.st_size if kind == "file" else 0, "mode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid, "gid": st.st_gid, "mtime": int(st.st_mtime),
                "linkname": os.readlink(full) if kind == "symlink" else None,
                "sha256": _sha256(full) if kind == "file" else None,
                "rdev": (os.major(st.st_rdev), os.minor(st.st_rdev)) if is_dev else None,
                "nlink": st.st_nlink, "inode": (st.st_dev, st.st_ino), "link_group": None,
            }
    groups: dict[tuple[int, int], list[str]] = {}
    for path, node in tree.items():
        if node["type"] == "file" and node["nlink"] > 1:
            groups.setdefault(node["inode"], []).append(path)
    for paths in groups.values():
        if len(paths) > 1:
            first = min(paths)
            for p in paths:
                tree[p]["link_group"] = first
    return tree


def assert_tree(img: Any, truth: dict[str, dict[str, Any]]) -> None:
    """An image's final tree (``img.files``) equals ``truth`` (``tree_of`` an unpack): paths, kinds, sizes,
    modes, owners, link targets, content."""
    files = img.files.set_index("path")
    assert sorted(files.index) == sorted(truth)
    for path, node in truth.items():
        row = files.loc[path]
        kind = "file" if row["type"] == "hardlink" else str(row["type"])
        assert (kind, int(row["mode"]) & 0o7777, int(row["uid"]), int(row["gid"])) == \
            (node["type"], node["mode"], node["uid"], node["gid"]), path
        if kind == "file":
            assert (int(row["size"]), row["digest"]) == (node["size"], node["sha256"]), path
        if kind == "symlink":
            assert row["linkname"] == node["linkname"], path
