"""Safe rootfs extraction: write the assembled final tree, re-reading only the layer entries that survive.

Nothing is written from a tar name directly: every path comes from the assembled tree, where names are
normalized and clamped inside the image root and every parent is a directory this extraction created
itself in an empty target. So no entry can escape through ``..``, an absolute name, a symlink planted by an
earlier entry or layer, or a hardlink pointing out. The result matches ``umoci unpack``: content, types,
permission bits, symlink targets, hardlinks as real hardlinks, owners when run as root, mtimes to the
nanosecond, xattrs (but the host-specific and overlayfs ones umoci refuses too).

Every layer a surviving file comes from is read to its end, so its digest is checked again: bytes changed
since ``load()`` fail the extraction. A failed extraction (that, a file system refusing a path, Ctrl-C) removes what it wrote.
"""

from __future__ import annotations

import errno
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .codec import decompressed_chunks
from .errors import ExtractionError, LayerDecodeError, UnsafeEntryError
from .scan import raise_blamed
from .tarstream import TarReader

if TYPE_CHECKING:
    from .image import Image

__all__ = ["extract", "ExtractResult", "UNSAFE_KINDS"]

UNSAFE_KINDS = ("unsafe_path", "unsafe_link", "link_escapes_root", "root_not_directory")


@dataclass
class ExtractResult:
    """What an extraction wrote, and what it could not."""

    target: Path
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    devices: int = 0
    fifos: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def __repr__(self) -> str:
        return (f"<ExtractResult {self.target}: {self.files} files, {self.dirs} dirs, {self.symlinks} symlinks, "
                f"{self.hardlinks} hardlinks, {self.devices} devices, {self.fifos} fifos, "
                f"{len(self.skipped)} skipped>")


def _prepare_target(target: Path, reference: str) -> Path:
    if target.is_symlink():
        raise ExtractionError(f"extraction target {target} is a symlink", path=str(target), reference=reference,
                              hint="name a real directory")
    if target.exists():
        if not target.is_dir():
            raise ExtractionError(f"extraction target {target} is not a directory", path=str(target),
                                  reference=reference)
        if any(target.iterdir()):
            raise ExtractionError(f"extraction target {target} is not empty", path=str(target),
                                  reference=reference, hint="extract into a new or empty directory")
    else:
        try:
            target.mkdir(parents=True)
        except OSError as exc:
            raise ExtractionError(f"cannot create extraction target {target}: {exc.strerror}", path=str(target),
                                  reference=reference) from None
    return Path(os.path.realpath(target))


def _host(root: str, path: str) -> str:
    """The host path for an image path; image paths are normalized, so a '..' here is a bug."""
    rel = path.lstrip("/")
    if not rel or ".." in rel.split("/"):
        raise UnsafeEntryError(f"refusing to write {path!r}", path=path)
    return os.path.join(root, rel)


def extract(image: "Image", target: Path, *, strict: bool = False, devices: bool | None = None) -> ExtractResult:
    """Write ``image``'s final tree under ``target``. ``strict`` refuses images with unsafe entries
    (before writing anything); ``devices`` (default: when root) creates device nodes."""
    asm = image.assembly
    if strict:
        bad = [a for a in asm.anomalies if a[2] in UNSAFE_KINDS]
        if bad:
            layer, path, kind, detail = bad[0]
            raise UnsafeEntryError(f"{image.reference}: layer {layer} entry {path}: {detail} "
                                   f"({len(bad)} unsafe entries in all)", path=path, layer=layer,
                                   reference=image.reference,
                                   hint="see image.anomalies; extract without strict=True to contain them")
    made = _missing_ancestors(Path(target))  # the target and the parents mkdir -p will create
    root = str(_prepare_target(target, image.reference))
    before = os.stat(root)  # an existing target gets its mode and owner back after a failure
    try:
        return _write(image, root, is_root=os.geteuid() == 0,
                      make_devices=os.geteuid() == 0 if devices is None else devices)
    except BaseException:
        _clear(root, made, before)  # a failed extraction leaves no partial tree (as umoci)
        raise


def _write(image: "Image", root: str, *, is_root: bool, make_devices: bool) -> ExtractResult:
    asm = image.assembly
    result = ExtractResult(Path(root))
    tree = asm.tree
    where: list[tuple[str, int | None]] = [("/", None)]  # the image path (and layer) being written, for errors

    # Hardlink groups: one content write per inode, at its original path if it survives; other names link.
    primary = asm.link_primaries()
    wanted: dict[int, dict[int, str]] = {}  # layer -> {entry index: host path to write}
    for inode, first in primary.items():
        origin = asm.inode_origin.get(inode)
        if origin is not None:
            wanted.setdefault(origin[0], {})[origin[1]] = _host(root, first)

    def secondary(path: str, node) -> bool:
        key = node.inode or node.link_group
        return bool(key) and primary.get(key, path) != path

    def write_layer(layer: int) -> None:
        scan = image.scans[layer]
        by_ordinal = {scan.ordinals[i]: host for i, host in wanted[layer].items()}
        desc = image.manifest.layers[layer]
        with image.source.open_blob(desc) as raw:
            _, chunks = decompressed_chunks(raw, what=f"layer {layer} ({desc.digest})", digest=desc.digest,
                                            layer=layer)
            reader = TarReader(chunks)
            ordinal = -1
            left = len(by_ordinal)
            try:
                for _h in reader:
                    ordinal += 1
                    host = by_ordinal.get(ordinal)
                    if host is None:
                        continue
                    try:
                        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                        with open(fd, "wb") as f:
                            if _h.sparse:  # holes stay holes: seek over them, and end the file at its real size
                                reader.read_data(f.write, hole=lambda n: f.seek(n, os.SEEK_CUR))
                                f.truncate(_h.size)
                            else:
                                reader.read_data(f.write)
                    except OSError as exc:  # a full disk, a size the file system cannot hold, ...
                        raise _refused(image, root, host, layer, exc, f"({_h.size:,} bytes)") from None
                    left -= 1
                    if not left:
                        break
            except LayerDecodeError as exc:  # bytes changed since load(): the digest says so, if it can
                raise_blamed(raw, exc, desc.digest, layer, f"layer {layer} ({desc.digest})")
            # The rest of the blob is read too, unparsed: its digest is checked at its end, so bytes changed
            # since load() fail the extraction instead of landing in the tree.
            while raw.read(1 << 20):
                pass

    try:
        for p in sorted(p for p, n in tree.items() if n.type == "d" and p != "/"):
            where[0] = (p, tree[p].layer)
            os.mkdir(_host(root, p), 0o700)
            result.dirs += 1

        layers = sorted(wanted)
        if len(layers) > 1:
            with ThreadPoolExecutor(max_workers=min(len(layers), os.cpu_count() or 2)) as pool:
                list(pool.map(write_layer, layers))
        else:
            for layer in layers:
                write_layer(layer)

        links: list[tuple[str, str, str, int]] = []
        for path, node in sorted(tree.items()):
            if path == "/":
                continue
            where[0] = (path, node.layer)
            host = _host(root, path)
            t = node.type
            if secondary(path, node):
                links.append((_host(root, primary[node.inode or node.link_group]), host, path, node.layer))
            elif t in ("f", "h"):
                result.files += 1
            elif t == "l":
                os.symlink(os.fsencode(node.linkname or ""), os.fsencode(host))
                result.symlinks += 1
            elif t == "p":
                os.mkfifo(host, 0o600)
                result.fifos += 1
            elif t in ("c", "b"):
                src_layer, src_entry = asm.device_alias.get((node.layer, node.entry), (node.layer, node.entry))
                major, minor = image.scans[src_layer].devices.get(src_entry, (0, 0))
                if not make_devices:
                    result.skipped.append((path, "device node (not root; pass devices=True to try)"))
                    continue
                try:
                    kind = stat.S_IFCHR if t == "c" else stat.S_IFBLK
                    os.mknod(host, kind | 0o600, os.makedev(major, minor))
                    result.devices += 1
                except PermissionError:
                    result.skipped.append((path, "device node: not permitted here"))
                    continue
        for source, host, path, layer in links:
            where[0] = (path, layer)
            if os.path.lexists(source):  # a skipped device has no name to link to
                os.link(source, host, follow_symlinks=False)
                result.hardlinks += 1

        # Metadata last: owners, then modes (chown clears setuid), xattrs, then times; directories deepest
        # first. The root gets its owner and mode too: a layer's "./" entry's, else umoci's 0755 and 0:0.
        # ("/" counts one slash like "/a", so the root is put last by hand: its mode may forbid the rest)
        entries = sorted(tree.items(), key=lambda kv: (kv[0] != "/", kv[0].count("/")), reverse=True)
        for path, node in entries:
            if secondary(path, node):
                continue  # hardlinks share their inode's metadata, as umoci leaves it
            where[0] = (path, node.layer if node.layer >= 0 else None)
            host = root if path == "/" else _host(root, path)
            if not os.path.lexists(host):
                continue  # a skipped device node
            if is_root:
                os.lchown(host, node.uid, node.gid)
            if node.type != "l":
                os.chmod(host, node.mode & 0o7777)
            # a file's xattrs and sub-second mtime are its inode's, from the entry that made it (a hardlink
            # that outlives its original name carries them from there, as umoci leaves them)
            origin = asm.inode_origin.get(node.inode) if node.inode else None
            src_layer, src_entry = (origin[0], origin[1]) if origin is not None else (node.layer, node.entry)
            if src_layer >= 0 and src_entry >= 0:
                xattrs = image.scans[src_layer].xattrs.get(src_entry)
                if xattrs:
                    _set_xattrs(host, path, xattrs, is_root, result)
            if node.implicit:
                continue  # a parent (or root) no entry described: umoci leaves its mtime as created (now)
            mtime_ns = node.mtime * 10**9
            if src_layer >= 0:
                mtime_ns += image.scans[src_layer].mtime_ns.get(src_entry, 0)
            try:
                os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
            except OSError:
                pass  # a time the file system cannot hold
    except OSError as exc:
        path, layer = where[0]
        raise _refused(image, root, _host(root, path) if path != "/" else root, layer, exc) from None
    return result


#: xattrs never unpacked, as umoci refuses them: SELinux labels are host policy, NFSv4 ACLs host-specific,
#: and overlayfs's own attributes would turn the tree into something else when used as an overlay layer
#: (``trusted.overlay.opaque`` is a whiteout outside the spec's ``.wh.`` files).
REFUSED_XATTRS = ("security.selinux", "system.nfs4_acl")
REFUSED_XATTR_PREFIXES = ("trusted.overlay.",)


def _set_xattrs(host: str, path: str, xattrs: dict[str, bytes], is_root: bool, result: ExtractResult) -> None:
    """Set what the target allows; every xattr not set is listed in ``result.skipped`` with the reason."""
    for name, value in xattrs.items():
        if name in REFUSED_XATTRS or name.startswith(REFUSED_XATTR_PREFIXES):
            result.skipped.append((path, f"xattr {name}: never unpacked (as umoci)"))
            continue
        if not is_root and not name.startswith("user."):
            result.skipped.append((path, f"xattr {name}: needs root"))
            continue
        try:
            os.setxattr(host, name, value, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
                raise
            result.skipped.append((path, f"xattr {name}: {exc.strerror}"))


def _refused(image: "Image", root: str, host: str, layer: int | None, exc: OSError, what: str = "") -> ExtractionError:
    """The file system's refusal of one path, as an error that names it and its layer."""
    path = "/" + os.path.relpath(host, root) if host != root else "/"
    where = f"layer {layer}: " if layer is not None else ""
    return ExtractionError(f"{image.reference}: {where}cannot write {path}{' ' + what if what else ''}: "
                           f"{exc.strerror or exc}", path=path, layer=layer, reference=image.reference,
                           hint=f"the file system under {root} refused it (full, or a name or size it cannot "
                                "hold); the partial tree was removed, and nothing was written outside it")


def _missing_ancestors(target: Path) -> list[str]:
    """``target`` and the parents above it that do not exist yet (what ``mkdir -p`` creates), deepest first."""
    made: list[str] = []
    current = os.path.abspath(target)
    while not os.path.lexists(current) and os.path.dirname(current) != current:
        made.append(current)
        current = os.path.dirname(current)
    return made


def _clear(root: str, made: list[str], before: os.stat_result) -> None:
    """Remove what a failed extraction wrote under ``root``, best effort, never touching anything above it
    nor following a symlink: the directories it made (``made``) go too; a target that was there already
    stays, empty, with its mode and owner back as they were (``before``)."""
    dirs: list[str] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            os.chmod(directory, 0o700)  # the image may have made it 0555 or 0000; a real directory, never a link
            entries = list(os.scandir(directory))
        except OSError:
            continue
        dirs.append(directory)
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
    for directory in reversed(dirs[1:]):  # children before parents
        try:
            os.rmdir(directory)
        except OSError:
            pass
    if made:
        for directory in made:  # the target, then the parents made for it
            try:
                os.rmdir(directory)
            except OSError:
                break
    else:  # the target was there before: ``before`` is its stat
        try:
            if os.geteuid() == 0:
                os.chown(root, before.st_uid, before.st_gid)
            os.chmod(root, stat.S_IMODE(before.st_mode))
        except OSError:
            pass
