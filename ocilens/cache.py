"""The on-disk cache: verified blobs and layer scans, both addressed by digest.

Layout under ``cache_dir()``: ``blobs/sha256/<hex>`` (content-addressed, written atomically after
verification), ``scans/v<N>/sha256/<hex>.pickle`` (a layer's scan depends only on its digest) and
``frames/v1/sha256/<key>.pickle`` (an image's finished DataFrames, keyed by config, layers and code).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .digest import VerifiedReader, parse_digest

__all__ = ["cache_dir", "BlobStore", "ScanCache", "FrameCache", "AtomicBlobWriter", "frames_key"]

SCAN_FORMAT = 8  # bumped whenever a scan of the same bytes would come out differently (8: sparse files, sub-second mtimes)


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

    def commit(self) -> Path:
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

    def open(self, digest: str, size: int | None = None) -> VerifiedReader:
        """A cached blob, re-verified as it is read (the cache is trusted no more than the network)."""
        return VerifiedReader(open(self.path(digest), "rb"), digest, size, what="cached blob")

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


class PickleCache:
    """Pickled objects by digest under one folder; a corrupt or stale entry is ignored and rebuilt."""

    folder = "objects"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_dir()) / self.folder

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
    """Layer scans by layer digest: a scan depends only on the layer's bytes."""

    folder = f"scans/v{SCAN_FORMAT}"


class FrameCache(PickleCache):
    """An image's finished DataFrames by ``frames_key``: re-analysing an image is a file read."""

    folder = "frames/v1"


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


def frames_key(config_digest: str, layer_digests: list[str]) -> str:
    """What an image's frames depend on: its config, its layers, and the code that made them."""
    h = hashlib.sha256()
    h.update(f"{code_fingerprint()}\0{SCAN_FORMAT}\0{config_digest}\0".encode())
    h.update("\0".join(layer_digests).encode())
    return f"sha256:{h.hexdigest()}"
