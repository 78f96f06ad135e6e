"""Safe rootfs extraction: write the assembled final tree, re-reading only the layer entries that survive.

Nothing is written from a tar name directly: every path comes from the assembled tree, where names are
normalized and clamped inside the image root and every parent is a directory this extraction created
itself in an empty target. So no entry can escape through ``..``, an absolute name, a symlink planted by an
earlier entry or layer, or a hardlink pointing out. The result matches ``umoci unpack``: content, types,
permission bits, symlink targets, hardlinks as real hardlinks, owners when run as root, mtimes.
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
from .errors import ExtractionError, UnsafeEntryError
from .tarstream import TarReader

if TYPE_CHECKING:
    from .image import Image

__all__ = ["extract", "ExtractResult", "UNSAFE_KINDS"]

UNSAFE_KINDS = ("unsafe_path", "unsafe_link", "link_escapes_root")


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
    root = str(_prepare_target(target, image.reference))
    is_root = os.geteuid() == 0
    make_devices = is_root if devices is None else devices
    result = ExtractResult(Path(root))
    tree = asm.tree

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

    dirs = sorted((p for p, n in tree.items() if n.type == "d" and p != "/"))
    for p in dirs:
        os.mkdir(_host(root, p), 0o700)
        result.dirs += 1

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
                    path = "/" + os.path.relpath(host, root)
                    raise ExtractionError(f"{image.reference}: layer {layer}: cannot write {path} "
                                          f"({_h.size:,} bytes): {exc.strerror or exc}", path=path,
                                          reference=image.reference,
                                          hint=f"the file system under {root} refused it; nothing was written "
                                               "outside that directory") from None
                left -= 1
                if not left:
                    break

    layers = sorted(wanted)
    if len(layers) > 1:
        with ThreadPoolExecutor(max_workers=min(len(layers), os.cpu_count() or 2)) as pool:
            list(pool.map(write_layer, layers))
    else:
        for layer in layers:
            write_layer(layer)

    links: list[tuple[str, str]] = []
    for path, node in sorted(tree.items()):
        if path == "/":
            continue
        host = _host(root, path)
        t = node.type
        if secondary(path, node):
            links.append((_host(root, primary[node.inode or node.link_group]), host))
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
    for source, host in links:
        if os.path.lexists(source):  # a skipped device has no name to link to
            os.link(source, host, follow_symlinks=False)
            result.hardlinks += 1

    # Metadata last: owners, then modes (chown clears setuid), xattrs, then times; directories deepest first.
    entries = sorted(tree.items(), key=lambda kv: kv[0].count("/"), reverse=True)
    for path, node in entries:
        if secondary(path, node):
            continue  # hardlinks share their inode's metadata, as umoci leaves it
        if path == "/":
            if node.entry < 0:
                continue  # no layer set the root's attributes: leave the target directory as it is
            host = root
        else:
            host = _host(root, path)
        if not os.path.lexists(host):
            continue  # a skipped device node
        if is_root:
            os.lchown(host, node.uid, node.gid)
        if node.type != "l":
            os.chmod(host, node.mode & 0o7777)
        if node.layer >= 0 and node.entry >= 0:
            xattrs = image.scans[node.layer].xattrs.get(node.entry)
            if xattrs and is_root:
                for name, value in xattrs.items():
                    try:
                        os.setxattr(host, name, value, follow_symlinks=False)
                    except OSError as exc:
                        if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
                            raise
                        result.skipped.append((path, f"xattr {name}: {exc.strerror}"))
        if node.implicit:
            continue  # a parent no entry described: umoci leaves it as created (mtime: now)
        try:
            os.utime(host, ns=(node.mtime * 10**9, node.mtime * 10**9), follow_symlinks=False)
        except OSError:
            pass
    return result
