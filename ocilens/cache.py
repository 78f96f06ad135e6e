"""The on-disk cache: verified blobs and layer scans, both addressed by digest.

Layout under ``cache_dir()``: ``blobs/sha256/<hex>`` (content-addressed, written atomically after
verification), ``scans/<format>/sha256/<hex>.pickle`` (a layer's scan depends only on its digest, and on
the code that scans: ``scan_format()``) and ``frames/<code>/sha256/<key>.pickle`` (an image's finished
DataFrames, keyed by config and layers, in the folder of the code that made them: ``frames_format()``).
Folders of other formats are never read; ``ocilens cache prune`` removes them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator

from .digest import VerifiedReader, parse_digest
from .errors import IntegrityError

if TYPE_CHECKING:
    from .manifest import Descriptor

__all__ = ["cache_dir", "BlobStore", "CachedBlobReader", "ScanCache", "FrameCache", "AtomicBlobWriter", "frames_key",
           "scan_format", "frames_format", "source_format", "code_fingerprint", "SCAN_SOURCES"]

#: The modules whose source decides what a ``LayerScan`` of given bytes holds (reading, decompressing,
#: verifying, tabulating, normalizing paths); with the package readers' capture patterns they make the
#: scan cache's format, so a change to any of them starts a new cache folder and no release bumps it.
SCAN_SOURCES = ("scan.py", "tarstream.py", "tarbatch.py", "codec.py", "digest.py", "paths.py")


def cache_dir() -> Path:
    """``$OCILENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ocilens``, else ``~/.cache/ocilens``."""
    explicit = os.environ.get("OCILENS_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ocilens"


def _digest_path(root: Path, digest: str, suffix: str = "") -> Path:
    algo, hexpart = parse_digest(digest)
    return root / algo / f"{hexpart}{suffix}"


class AtomicBlobWriter:
    """Writes a blob to a temporary file beside its final place; ``commit`` renames it in.

    Nothing becomes visible under the final name unless ``commit`` ran after the content was verified,
    so a crash or an error mid-download never leaves a half-written cache entry. Several processes may
    race to commit the same blob: the rename is atomic and both contents are identical.
    """

    def __init__(self, final: Path, *, durable: bool = True) -> None:
        self.final = final
        # durable=False skips the fsync, for content verified on every read (blobs, by digest): the torn
        # file a power loss might leave behind is then caught and removed, never used (a registry image's
        # scan then fetches the blob again)
        self.durable = durable
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
        self.tmp = Path(tmp)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self, final: Path | None = None) -> Path:
        """Move the written bytes under their final name (``final``: one learnt while writing, in the same
        folder, as a stream's digest is)."""
        if final is not None:
            self.final = final
        if self.durable:
            self.file.flush()
            os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)


class BlobStore:
    """Content-addressed, verified blobs on disk."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_dir()) / "blobs"

    def path(self, digest: str) -> Path:
        return _digest_path(self.root, digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def writer(self, digest: str) -> AtomicBlobWriter:
        return AtomicBlobWriter(self.path(digest), durable=False)  # re-verified by digest on every read

    def entries(self) -> Iterator[tuple[str, int]]:
        """``(digest, size)`` of every committed blob."""
        if not self.root.is_dir():
            return
        for algo_dir in sorted(self.root.iterdir()):
            for f in sorted(algo_dir.iterdir()):
                if f.is_file() and not f.name.startswith("."):
                    yield f"{algo_dir.name}:{f.name}", f.stat().st_size


class CachedBlobReader(VerifiedReader):
    """A blob of a ``BlobStore``, re-verified as it is read; a corrupt entry is removed from the store.

    The rule is the blob store's (docs/architecture.md, "Caches": re-verified on every read; a corrupt copy is
    removed and fetched again): the ``IntegrityError`` raised names ``reference``, has ``evicted`` set, and
    carries a note naming the entry removed and ``then``, what the source's next read of the blob does (fetch
    it from the registry, export the image again). Opening raises ``FileNotFoundError`` when the entry is gone
    (pruned or evicted since ``BlobStore.has``): the caller then fetches the blob as if it were not cached.
    """

    def __init__(self, store: BlobStore, desc: "Descriptor", reference: str, *, then: str,
                 what: str = "cached blob") -> None:
        """``desc``'s blob in ``store``, read for ``reference``; ``then`` ends the eviction's note."""
        from .cache_cli import touch  # (cache_cli imports this module)

        self._path = store.path(desc.digest)
        super().__init__(open(self._path, "rb"), desc.digest, desc.size, what=what)  # noqa: SIM115
        self._reference = reference
        self._then = then
        touch(self._path)  # least-recently-used pruning (ocilens cache prune --keep) goes by this

    def read(self, n: int = -1) -> bytes:
        """The next bytes; a mismatch evicts the entry (once: later reads raise the same error again)."""
        try:
            return super().read(n)
        except IntegrityError as exc:
            if not exc.evicted:
                self._path.unlink(missing_ok=True)
                exc.reference = self._reference
                exc.evicted = True
                exc.add_note(f"the corrupt cache entry {self._path} was removed; {self._then}")
            raise


class PickleCache:
    """Pickled objects by digest under one folder; a corrupt or stale entry is ignored and rebuilt."""

    kind = "objects"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_dir()) / self.kind / self.format()

    @staticmethod
    def format() -> str:
        """The folder of the code that writes and reads these objects (``kind/<format>/``)."""
        return "v1"

    def path(self, digest: str) -> Path:
        return _digest_path(self.root, digest, ".pickle")

    def get(self, digest: str) -> Any | None:
        try:
            with open(self.path(digest), "rb") as f:
                return pickle.load(f)
        except FileNotFoundError:
            return None
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
            return None

    def put(self, digest: str, value: Any) -> None:
        try:
            w = AtomicBlobWriter(self.path(digest))
        except OSError:
            return  # a read-only cache dir only costs speed
        try:
            pickle.dump(value, w.file, protocol=pickle.HIGHEST_PROTOCOL)
            w.commit()
        except BaseException:
            w.abort()
            raise


class ScanCache(PickleCache):
    """Layer scans by layer digest: a scan depends only on the layer's bytes (and the scanning code)."""

    kind = "scans"

    @staticmethod
    def format() -> str:
        return scan_format()


class FrameCache(PickleCache):
    """An image's finished DataFrames by ``frames_key``: re-analysing an image is a file read."""

    kind = "frames"

    @staticmethod
    def format() -> str:
        return frames_format()


def source_format(files: Iterable[Path], extra: str = "") -> str:
    """A short id of the contents of ``files`` (each one's name and bytes, in order, line endings as in git)
    and of ``extra``: equal for a fresh clone and an installed copy of the same code, whatever the mtimes.
    A file that cannot be read counts as missing."""
    h = hashlib.sha256()
    for f in files:
        try:
            data = f.read_bytes().replace(b"\r\n", b"\n")
        except OSError:
            data = b"\0missing"
        h.update(f"{f.name}\0{len(data)}\0".encode())
        h.update(data)
    h.update(extra.encode())
    return h.hexdigest()[:16]


_SCAN_FORMAT: str | None = None


def scan_format() -> str:
    """The scan cache's format: ``source_format`` of ``SCAN_SOURCES`` and the capture patterns, computed once
    per process (a few files read and hashed, about a millisecond)."""
    global _SCAN_FORMAT
    if _SCAN_FORMAT is None:
        from .packages.capture import signature

        package = Path(__file__).parent
        _SCAN_FORMAT = source_format([package / name for name in SCAN_SOURCES], signature())
    return _SCAN_FORMAT


_CODE_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """A hash of ocilens's own source files (names, sizes, mtimes): frames made by other code never match."""
    global _CODE_FINGERPRINT
    if _CODE_FINGERPRINT is None:
        h = hashlib.sha256()
        package = Path(__file__).parent
        for f in sorted(package.rglob("*.py")):
            st = f.stat()
            h.update(f"{f.relative_to(package)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        _CODE_FINGERPRINT = h.hexdigest()
    return _CODE_FINGERPRINT


def frames_format() -> str:
    """The frame cache's format: the code that made the frames (``code_fingerprint``)."""
    return code_fingerprint()[:16]


def frames_key(config_digest: str, layer_digests: list[str]) -> str:
    """What an image's frames depend on: its config, its layers, and the code that made them."""
    h = hashlib.sha256()
    h.update(f"{code_fingerprint()}\0{scan_format()}\0{config_digest}\0".encode())
    h.update("\0".join(layer_digests).encode())
    return f"sha256:{h.hexdigest()}"
