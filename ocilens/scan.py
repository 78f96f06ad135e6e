"""Layer blob -> entry table: one pass over the (decompressed) tar, content hashed, markers split out.

A scan depends only on the layer's digest, so it is cached and shared by every image holding the layer.
Paths are normalized here (``./usr//bin/`` -> ``/usr/bin``); names are decoded as UTF-8 with
``surrogateescape``, so a non-UTF-8 byte ``\\xff`` appears as the lone surrogate ``\\udcff`` and
``os.fsencode(path)`` gives the original bytes back.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, NoReturn

from .codec import TAR, decompressed_chunks, prefetched
from .digest import HashAside
from .errors import IntegrityError, LayerDecodeError
from .manifest import Descriptor
from .packages.capture import PATTERN as _CAPTURE_PATTERN
from .packages.capture import PREFIXES as _CAPTURE_PREFIXES
from .packages.capture import SUFFIXES as _CAPTURE_SUFFIXES
from .paths import normalize_path, normalize_paths
from .sources.base import Source
from .tarstream import TarHeader, TarReader

if TYPE_CHECKING:  # numpy loads with tarbatch, on the first run a reader hands out
    from .tarbatch import PlainRun

__all__ = ["LayerScan", "scan_layer", "scan_blob", "download_shares", "normalize_path", "EMPTY_SHA256", "TYPE_NAMES"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: A sparse file's content digest covers its holes as zeros, hashed at about 2 GB/s. A layer's sparse files
#: may have this many bytes of holes hashed in all (a tiny layer can claim exabytes, in one file or many);
#: a file past it gets no digest, and an anomaly says why.
SPARSE_HASH_LIMIT = 16 << 30
OPAQUE = ".wh..wh..opq"
WH_PREFIX = ".wh."
META_PREFIX = ".wh..wh."

# tar typeflag byte -> our one-letter type code
_LINK_TYPES = frozenset(b"12")  # hardlink, symlink typeflags
_TYPE_CODES = {0x30: "f", 0x00: "f", 0x37: "f", 0x31: "h", 0x32: "l", 0x33: "c", 0x34: "b", 0x35: "d",
               0x36: "p"}
TYPE_NAMES = {"f": "file", "d": "dir", "l": "symlink", "h": "hardlink", "c": "char", "b": "block",
              "p": "fifo"}


# Package-manager databases and manifests (``packages.capture``: each ecosystem's own patterns) are kept whole
# by the scan, up to this size, so packages can be read per layer without re-reading the blob.
CAPTURE_MAX = 256 << 20


@dataclass
class LayerScan:
    """What one layer blob holds, in tar order. Entry lists are parallel columns."""

    digest: str
    format: str = "tar"
    compressed_size: int = 0
    uncompressed_size: int = 0
    members: int = 0  # every tar member, markers included
    diff_id: str | None = None  # sha256 of the uncompressed tar
    paths: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    modes: list[int] = field(default_factory=list)
    uids: list[int] = field(default_factory=list)
    gids: list[int] = field(default_factory=list)
    mtimes: list[int] = field(default_factory=list)
    linknames: list[str | None] = field(default_factory=list)
    digests: list[str | None] = field(default_factory=list)
    ordinals: list[int] | range = field(default_factory=list)  # member number in the tar, for extraction
    devices: dict[int, tuple[int, int]] = field(default_factory=dict)  # entry index -> (major, minor)
    xattrs: dict[int, dict[str, bytes]] = field(default_factory=dict)  # entry index -> xattrs
    mtime_ns: dict[int, int] = field(default_factory=dict)  # entry index -> nanoseconds past mtime (PAX times)
    whiteouts: list[tuple[str, int]] = field(default_factory=list)  # (removed path, ordinal)
    opaques: list[tuple[str, int]] = field(default_factory=list)  # (directory, ordinal)
    # (path, ordinal) of AUFS metadata (.wh..wh.aufs, .wh..wh.orph/, ...): runtimes ignore them, dive counts
    # them as whiteouts of paths that are not there (see dive.py)
    aufs: list[tuple[str, int]] = field(default_factory=list)
    anomalies: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, detail)
    captured: dict[int, bytes] = field(default_factory=dict)  # entry index -> content of package databases
    # entry index -> its share of the compressed blob (the download cost of its bytes): see ``download_shares``
    compressed: "array[int]" = field(default_factory=lambda: array("q"))
    # entry index -> where its data starts in the uncompressed stream (dropped once the shares are taken)
    data_starts: "array[int]" = field(default_factory=lambda: array("q"), repr=False)
    stored: dict[int, int] = field(default_factory=dict, repr=False)  # sparse entry -> bytes stored in the tar

    def __len__(self) -> int:
        return len(self.paths)


def scan_layer(source: Source, desc: Descriptor, index: int,
               on_bytes: Callable[[int], None] | None = None) -> LayerScan:
    """Read one layer blob to the end (verifying it) and tabulate its entries (``scan_blob``)."""
    with source.open_blob(desc) as raw:
        return scan_blob(raw, desc.digest, desc.size, index, on_bytes)


def scan_blob(raw: BinaryIO, digest: str, size: int, index: int, on_bytes: Callable[[int], None] | None = None,
              *, what: str | None = None) -> LayerScan:
    """Read a layer blob from ``raw`` to its end and tabulate its entries; ``digest`` and ``size`` are the blob's
    (a stream read once may give ``""`` for a digest it learns only at the end).

    The uncompressed stream is hashed too (``scan.diff_id``), so the caller can check it against the config's
    ``rootfs.diff_ids`` as runtimes do; where the decompressor's input stood as each chunk came out gives every
    entry its share of the blob (``scan.compressed``).
    """
    what = what or f"layer {index} ({digest})"
    scan = LayerScan(digest=digest, compressed_size=size)
    marks: list[tuple[int, int]] = []
    fmt, chunks = decompressed_chunks(raw, what=what, digest=digest or None, layer=index, on_read=on_bytes,
                                      marks=marks)
    scan.format = fmt
    hasher = hashlib.sha256() if fmt != TAR else None  # a plain tar's diff_id is its own digest
    # stages, each in a thread of its own: reading, verifying and inflating the blob; hashing the tar stream for
    # the diff_id; walking the tar and hashing the files (hashlib and inflating release the GIL). The diff_id
    # gets its own thread only while fewer layers are in flight than there are cores: else it is hashed
    # beside the inflating, and the cores are already spent on other layers.
    with _in_flight() as spare_core:
        if hasher is not None and not spare_core:
            chunks = _hashing(chunks, hasher)
        counted = _Counted(prefetched(chunks))
        stream = hashed_aside(counted, hasher) if hasher is not None and spare_core else counted
        if isinstance(stream, hashed_aside) and hasattr(raw, "hash_aside"):
            raw.hash_aside(stream.aside)  # the blob's digest too: the inflating thread then only reads and inflates
        _read_all(stream, raw, scan, digest, index, what)
    scan.uncompressed_size = counted.total
    scan.diff_id = f"sha256:{hasher.hexdigest()}" if hasher else digest
    if fmt == TAR:
        size = size or counted.total
        scan.compressed_size = size
    download_shares(scan, marks if fmt != TAR else None)
    return scan


_FLIGHT = {"scans": 0}
_FLIGHT_LOCK = threading.Lock()


@contextmanager
def _in_flight() -> Iterator[bool]:
    """Count this scan as in flight; yields whether a core is left over for an extra stage of it."""
    from .cpus import usable_cpus

    with _FLIGHT_LOCK:
        _FLIGHT["scans"] += 1
        spare = _FLIGHT["scans"] < usable_cpus()
    try:
        yield spare
    finally:
        with _FLIGHT_LOCK:
            _FLIGHT["scans"] -= 1


def _hashing(chunks: Iterator[bytes], hasher: "hashlib._Hash") -> Iterator[bytes]:
    """``chunks``, hashed as they pass (in the thread that makes them)."""
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


def _read_all(stream: "_Counted | hashed_aside", raw: BinaryIO, scan: LayerScan, digest: str, index: int, what: str) -> None:
    """Tabulate the tar ``stream`` into ``scan`` and read it to its end; a decode error is blamed on what is at
    fault (``raise_blamed``). Every stage is stopped when this returns or raises."""
    try:
        _read_entries(TarReader(iter(stream)), scan)
        for _ in stream:  # the rest (end-of-archive padding): decompress and verify to the end
            pass
    except LayerDecodeError as exc:
        stream.close()
        raise_blamed(raw, exc, digest, index, what)
    finally:
        stream.close()


def download_shares(scan: LayerScan, marks: list[tuple[int, int]] | None) -> None:
    """Give each entry its share of the compressed blob: the compressed bytes the decompressor consumed while
    the entry's data came out (interpolated between the ``marks``, ``(uncompressed, compressed)`` positions
    taken as chunks came out; a plain tar is its own positions), with tar headers, padding and markers spread
    pro rata, so the shares add up to the blob's size exactly."""
    import numpy as np

    n = len(scan.paths)
    total = scan.compressed_size
    if n == 0:
        scan.compressed = array("q")
        return
    starts = np.frombuffer(scan.data_starts, dtype=np.int64) if len(scan.data_starts) == n else np.zeros(n, np.int64)
    lengths = np.asarray(scan.sizes, dtype=np.int64) * (np.asarray(scan.types) == "f")
    for i, stored in scan.stored.items():
        lengths[i] = stored
    ends = starts + lengths
    if marks is None:
        raw = (ends - starts).astype(np.float64)
    else:
        u = np.array([0] + [m[0] for m in marks] + [scan.uncompressed_size], dtype=np.float64)
        c = np.array([0] + [m[1] for m in marks] + [total], dtype=np.float64)
        raw = np.interp(ends, u, c) - np.interp(starts, u, c)
    raw = np.maximum(raw, 0.0)
    weight = raw.sum()
    scaled = raw * (total / weight) if weight > 0 else np.full(n, total / n)
    shares = np.floor(scaled).astype(np.int64)
    short = int(total - shares.sum())
    if short > 0:  # the remainder to the largest fractions (largest remainder method): exact in integers
        shares[np.argsort(shares - scaled, kind="stable")[:short]] += 1
    scan.compressed = array("q", shares.tobytes())
    scan.data_starts = array("q")
    scan.stored = {}


class hashed_aside:  # noqa: N801 - used as an iterator, like a generator function
    """The chunks of ``chunks``, passed on unchanged while a thread of its own (``aside``, a ``HashAside``) feeds
    them to ``hasher`` in order, a few chunks behind at most; the blob's reader can hash there too
    (``VerifiedReader.hash_aside``). ``close`` waits for the hashes to be complete (or stops them)."""

    def __init__(self, chunks: Iterator[bytes], hasher: "hashlib._Hash") -> None:
        self._chunks = chunks
        self._hasher = hasher
        self.aside = HashAside()
        self._closed = False

    def __iter__(self) -> "hashed_aside":
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except BaseException:
            self.close()
            raise
        self.aside.update(self._hasher, chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()  # the reading thread stops first: its last updates are queued before the end
        self.aside.close()


def raise_blamed(raw: BinaryIO, exc: LayerDecodeError, digest: str, index: int, what: str) -> NoReturn:
    """Raise what a layer that failed to decode is at fault for: a digest or size mismatch if reading the blob
    to its end finds one (a corrupt blob, which a registry's cache then evicts), else the decode error naming
    the layer."""
    try:
        while raw.read(1 << 20):
            pass
    except IntegrityError as integrity:
        raise integrity from exc
    except (OSError, LayerDecodeError):
        pass
    if exc.digest is not None:
        raise exc
    raise LayerDecodeError(f"{what}: {exc}", digest=digest or None, layer=index,
                           hint="the layer is truncated or corrupt; re-pull it or rebuild the image") from None


class _Counted:
    """Counts the bytes that pass through an iterator of chunks."""

    def __init__(self, chunks) -> None:
        self._it = iter(chunks)
        self.total = 0

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        chunk = next(self._it)
        self.total += len(chunk)
        return chunk


def _read_entries(reader: TarReader, scan: LayerScan) -> None:
    """Tabulate every member: runs of plain members a buffer at a time, the others one by one."""
    ints: dict[int, int] = {}  # one int object per distinct mode, owner, mtime and size
    budget = [SPARSE_HASH_LIMIT]  # bytes of sparse holes this layer may still hash
    ordinal = -1
    while True:
        run = reader.take_plain(hash_data=True)
        if run is not None:
            ordinal = _add_run(scan, run, reader.buffer, ordinal, ints)
            continue
        h = reader.next()
        if h is None:
            break
        ordinal += 1
        _add_member(scan, reader, h, ordinal, ints, budget)
    scan.members = ordinal + 1
    if len(scan.paths) == scan.members:  # no markers: member numbers are the entry numbers, and a range holds them
        scan.ordinals = range(scan.members)


def _path_of(scan: LayerScan, name: bytes) -> str:
    """The member name as a normalized absolute path; a name that climbs out or is absolute is recorded."""
    path, escaped = normalize_path(name)
    if escaped or name.startswith(b"/"):
        _unsafe_path(scan, name, path, escaped)
    return path


def _unsafe_path(scan: LayerScan, name: bytes, path: str, escaped: bool) -> None:
    """Record a member name that climbs above the layer root or is absolute (``path``: where it lands)."""
    where = "climbs above" if escaped else "is absolute, outside"
    scan.anomalies.append((path, "unsafe_path", f"member name {name!r} {where} the layer root; placed at {path}"))


def _marker(scan: LayerScan, path: str, parent: str, base: str, ordinal: int) -> None:
    """A ``.wh.`` entry: an opaque marker, a whiteout, or an AUFS leftover that runtimes ignore."""
    parent = parent or "/"
    if base == OPAQUE:
        scan.opaques.append((parent, ordinal))
    elif base.startswith(META_PREFIX):
        scan.anomalies.append((path, "aufs_metadata", "AUFS metadata entry ignored, as runtimes do"))
        scan.aufs.append((path, ordinal))
    elif base in (WH_PREFIX, WH_PREFIX + ".", WH_PREFIX + ".."):
        scan.anomalies.append((path, "invalid_whiteout", f"{base} names no entry of its directory; ignored"))
    else:
        scan.whiteouts.append((parent.rstrip("/") + "/" + base[len(WH_PREFIX):], ordinal))


def _link(scan: LayerScan, code: str, path: str, linkname: bytes) -> str:
    """A symlink's target as written, or a hardlink's target as a normalized path; escapes are recorded."""
    if code == "l":
        target = linkname.decode("utf-8", "surrogateescape")
        if not target.startswith("/"):
            depth = path.count("/") - 1
            _, climbs = normalize_path("/".join(["x"] * depth) + "/" + target)
            if climbs:
                scan.anomalies.append((path, "link_escapes_root",
                                       f"symlink target {target!r} climbs above the image root"))
        return target
    target, esc = normalize_path(linkname)
    if esc or linkname.startswith(b"/"):
        scan.anomalies.append((path, "unsafe_link", f"hardlink target {linkname!r} points outside the layer "
                                                    f"root; resolved inside the image as {target}"))
    return target


def _captures(path: str, size: int) -> bool:
    """Whether ``path`` is a package database or manifest the scan keeps whole."""
    return (path.endswith(_CAPTURE_SUFFIXES) or path.startswith(_CAPTURE_PREFIXES)) and size <= CAPTURE_MAX \
        and _CAPTURE_PATTERN.fullmatch(path) is not None


def _add_run(scan: LayerScan, run: PlainRun, buf: bytes, ordinal: int, ints: dict[int, int]) -> int:
    """Append a ``tarbatch.PlainRun``'s members; returns the last member number.

    Paths need a Python step each; the other columns are extended a run at a time (``map`` over the run's
    values), which is what makes a layer of a million tiny files cheap."""
    paths = scan.paths
    first = len(paths)
    skipped: list[int] = []  # run positions of markers (whiteouts, opaques), which are not entries
    run_types = run.types
    links: dict[int, str] = {}  # entry position in the run -> link target, as the scan keeps it
    names = run.names
    normalized, odd = normalize_paths(names)
    for k, path in enumerate(normalized):
        if odd and k in odd:
            _unsafe_path(scan, names[k], path, odd[k])
        if ".wh." in path:
            parent, _, base = path.rpartition("/")
            if base.startswith(WH_PREFIX):
                _marker(scan, path, parent, base, ordinal + 1 + k)
                skipped.append(k)
                continue
        if run_types[k] in _LINK_TYPES:  # here, so that its anomalies come in tar order with the others
            links[len(paths) - first] = _link(scan, _TYPE_CODES[run_types[k]], path, run.linknames[k])
        paths.append(path)
    n = len(run.names)
    keep = range(n)
    if skipped:
        gone = set(skipped)
        keep = [k for k in range(n) if k not in gone]  # type: ignore[assignment]

    def column(values: list) -> list:
        return values if not skipped else [values[k] for k in keep]

    intern = ints.setdefault
    for target, values in ((scan.modes, run.modes), (scan.uids, run.uids), (scan.gids, run.gids),
                           (scan.mtimes, run.mtimes), (scan.sizes, run.sizes)):
        target.extend(map(intern, column(values), column(values)))
    types = [_TYPE_CODES[t] for t in column(run.types)]
    scan.types.extend(types)
    scan.data_starts.extend([offset + 512 for offset in column(run.offsets)])
    if isinstance(scan.ordinals, list):
        scan.ordinals.extend(ordinal + 1 + k for k in keep)
    scan.digests.extend([d or EMPTY_SHA256 if t == "f" else None for d, t in zip(column(run.digests), types)])
    linknames: list[str | None] = [None] * len(types)
    for j, link in links.items():
        linknames[j] = link
    scan.linknames.extend(linknames)
    for j, (code, size, start) in enumerate(zip(types, column(run.sizes), column(run.data_starts))):
        if code == "f":
            path = paths[first + j]
            # _captures' own cheap test first, inline: most files fail it, and a call per file shows at 1M
            if (path.endswith(_CAPTURE_SUFFIXES) or path.startswith(_CAPTURE_PREFIXES)) and _captures(path, size):
                scan.captured[first + j] = buf[start : start + size]
    return ordinal + n


def _add_member(scan: LayerScan, reader: TarReader, h: TarHeader, ordinal: int, ints: dict[int, int],
                budget: list[int]) -> None:
    """Append one member read by ``TarReader.next`` (long names, PAX, devices, large files...)."""
    path = _path_of(scan, h.name)
    parent, _, base = path.rpartition("/")
    if base.startswith(WH_PREFIX):
        _marker(scan, path, parent, base, ordinal)
        return
    code = _TYPE_CODES.get(h.type)
    if h.type == 0 and h.name.endswith(b"/"):
        code = "d"  # an old-style (V7) directory, as Go's archive/tar (so runtimes and umoci) and tarfile read it
    if code is None:
        scan.anomalies.append((path, "unknown_type", f"tar type {chr(h.type)!r} read as a regular file"))
        code = "f"
    intern = ints.setdefault
    i = len(scan.paths)
    scan.paths.append(path)
    scan.types.append(code)
    scan.modes.append(intern(h.mode, h.mode))
    scan.uids.append(intern(h.uid, h.uid))
    scan.gids.append(intern(h.gid, h.gid))
    scan.mtimes.append(intern(h.mtime, h.mtime))
    scan.ordinals.append(ordinal)  # type: ignore[union-attr]
    scan.data_starts.append(h.offset + 512)
    if code == "f":
        scan.sizes.append(intern(h.size, h.size))
        scan.linknames.append(None)
        holes = reader.holes if h.sparse else 0
        if holes:
            scan.stored[i] = h.size - holes
        if holes > budget[0]:
            scan.anomalies.append((path, "sparse_unhashed", f"a sparse file of {h.size:,} bytes, {holes:,} of them "
                                   "holes, past what a layer may have hashed: its content is not hashed (no digest)"))
            scan.digests.append(None)
        else:
            budget[0] -= holes
            if _captures(path, h.size):
                data = reader.read_bytes()
                scan.captured[i] = data
                scan.digests.append(hashlib.sha256(data).hexdigest())
            else:
                scan.digests.append(reader.data_digest() if h.size else EMPTY_SHA256)
    else:
        scan.sizes.append(0)
        scan.digests.append(None)
        scan.linknames.append(_link(scan, code, path, h.linkname) if code in "lh" else None)
        if code in "cb":
            scan.devices[i] = (h.devmajor, h.devminor)
    if h.xattrs:
        scan.xattrs[i] = h.xattrs
    if h.mtime_ns:
        scan.mtime_ns[i] = h.mtime_ns
