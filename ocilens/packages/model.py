"""The per-layer package state of an image and who owns each path.

How it is computed, from the scans and the assembly only (never from the frames, which use it):

1. *Timeline.* The scan keeps package databases whole (``LayerScan.captured``). Walking the assembly's
   events bottom-up gives, after each layer, the set of database files present (path -> the layer and
   entry of the version in place): a whiteout or a replacement removes one, a captured entry adds it.
2. *States.* After each layer that changed a database, every ecosystem reader parses what is present
   (parses are memoized by content digest, so a ``status`` rewritten unchanged costs nothing).
3. *Records.* Following each package (``Package.key``: ecosystem, name, architecture, location) from state
   to state gives one record per version installed: the layer that installed it, and the layer that
   removed, upgraded or downgraded it.
4. *Ownership.* At each state, the paths the databases list (resolved through the final tree's symlinks,
   so dpkg's ``/bin/sh`` is ``/usr/bin/sh`` on a merged-/usr image) and the directories they own whole map
   to a record. Only non-directories are owned (directories are shared). When two ecosystems list one
   path, the system package manager wins (``base.ECOSYSTEMS`` order).

A file version is owned by the package that owns its path at the layer that shipped it; a final-tree
path by the package owning it in the final state; a whiteout event by the owner of the version removed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np
import pandas as pd

from . import apk, dpkg, rpm
from .base import ECOSYSTEMS, DbFiles, Package, join
from .capture import READERS

if TYPE_CHECKING:
    from ..assemble import Assembly
    from ..image import Image
    from ..scan import LayerScan

__all__ = ["PackageModel", "Record", "model_of", "compare_versions", "READERS", "FATES", "ECOSYSTEM_DTYPE",
           "FATE_DTYPE"]

FATES = ("present", "removed", "upgraded", "downgraded", "replaced")
ECOSYSTEM_DTYPE = pd.CategoricalDtype(list(READERS))
FATE_DTYPE = pd.CategoricalDtype(FATES)
_RANK = {eco: i for i, eco in enumerate(ECOSYSTEMS)}
_CLASSIFY: tuple[tuple[str, Callable[[str], bool]], ...] = tuple((eco, r.is_database) for eco, r in READERS.items())


# The file whose presence says a system package database exists (its loss is not an uninstall).
_SYSTEM_DB: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("dpkg", lambda p: p == dpkg.STATUS or (p.startswith(dpkg.STATUS_D) and not p.endswith(".md5sums"))),
    ("apk", apk.is_database), ("rpm", rpm.is_database))


def compare_versions(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1: ``a`` older than, as new as, or newer than ``b`` in ``ecosystem``'s own order
    (dpkg's algorithm, apk's, ``rpmvercmp``, PEP 440, semver)."""
    return READERS[ecosystem].compare(a, b)


@dataclass
class Record:
    """One version of one package, from the layer that installed it to the one that removed it (if any)."""

    id: int
    package: Package
    layer: int
    removed_layer: int | None = None
    fate: str = "present"
    next_version: str | None = None
    database_removed_layer: int | None = None  # the layer that deleted its database, not its files


class Resolver:
    """Database paths -> final-tree paths: symlinks in the parent directories are followed inside the
    image root (as the runtime and the assembly do); the last component is kept."""

    def __init__(self, tree: dict) -> None:
        self.tree = tree
        self.dirs: dict[str, str] = {"/": "/"}

    def directory(self, d: str, depth: int = 0) -> str:
        hit = self.dirs.get(d)
        if hit is not None:
            return hit
        parent, _, base = d.rpartition("/")
        rp = self.directory(parent or "/", depth)
        cand = (rp if rp != "/" else "") + "/" + base
        node = self.tree.get(cand)
        if node is not None and node.type == "l" and node.linkname and depth < 40:
            out = self.directory(join(rp, node.linkname), depth + 1)
        else:
            out = cand
        self.dirs[d] = out
        return out

    def path(self, p: str) -> str:
        parent, _, base = p.rpartition("/")
        if not base or not parent:
            return p
        node = self.tree.get(parent)
        if node is not None and node.type == "d":
            return p  # the parent is a real directory: the path is already canonical
        rp = self.directory(parent)
        return (rp if rp != "/" else "") + "/" + base


class Owners:
    """path -> record id (or -1) at one layer state."""

    def __init__(self, entries: Iterable[tuple[int, Package]], records: list[Record], resolver: Resolver) -> None:
        explicit: dict[str, int] = {}
        trees: dict[str, tuple[int, str | None]] = {}
        order = sorted(entries, key=lambda e: (_RANK[e[1].ecosystem], records[e[0]].layer, e[0]))
        resolve = resolver.path
        mine: dict[str, int] = {}  # the claims of one ecosystem
        eco = None
        for rid, pkg in [*order, (-1, None)]:
            if pkg is None or pkg.ecosystem != eco:
                # A path two packages of one ecosystem list is shared, as a directory is (dpkg's /bin on a
                # merged-/usr image, which every package with a /bin file lists): nobody's, unless a
                # later ecosystem claims it alone.
                for p, r in mine.items():
                    if r >= 0 or p not in explicit:
                        explicit[p] = r
                mine = {}
                if pkg is None:
                    break
                eco = pkg.ecosystem
            for p in pkg.paths:
                rp = resolve(p)
                prev = mine.get(rp)
                mine[rp] = rid if prev is None or prev == rid else -1
            for t in pkg.trees:
                trees[resolve(t)] = (rid, pkg.exclude)
        self.explicit = explicit
        self.trees = trees
        self._nearest: dict[str, str | None] = {}

    def nearest(self, d: str) -> str | None:
        """The closest directory at or above ``d`` that a package owns whole."""
        memo = self._nearest
        hit = memo.get(d, "")
        if hit != "":
            return hit
        chain = []
        found: str | None = None
        cur = d
        while True:
            if cur in memo:
                found = memo[cur]
                break
            if cur in self.trees:
                found = cur
                break
            chain.append(cur)
            if cur == "/":
                break
            cur = cur.rpartition("/")[0] or "/"
        for c in chain:
            memo[c] = found
        return found

    def __call__(self, path: str) -> int:
        rid = self.explicit.get(path)
        if rid is not None:
            return rid
        if not self.trees:
            return -1
        top = self.nearest(path.rpartition("/")[0] or "/")
        if top is None:
            return -1
        rid, exclude = self.trees[top]
        if exclude is not None:
            rest = path[len(top) + 1:] if top != "/" else path[1:]
            if rest.partition("/")[0] == exclude:
                return -1
        return rid


class PackageModel:
    """The package states of one image (see the module docstring)."""

    def __init__(self, scans: "list[LayerScan]", asm: "Assembly") -> None:
        self.scans = scans
        self.asm = asm
        self.n_layers = len(scans)
        self.resolver = Resolver(asm.tree)
        self.records: list[Record] = []
        self.change_layers: list[int] = []  # the layers after which the package state changed
        self.states: list[list[tuple[int, Package]]] = []  # the state after each change layer
        self._owners: dict[tuple, Owners] = {}
        self._memo: dict = {}
        self._build()

    # -- construction ---------------------------------------------------------------------------
    def _content(self, layer: int, entry: int) -> bytes:
        return self.scans[layer].captured[entry]

    def _digest(self, layer: int, entry: int) -> str:
        return self.scans[layer].digests[entry] or f"{layer}:{entry}"

    def _snapshots(self) -> Iterable[tuple[int, dict[str, tuple[int, int]]]]:
        """(layer, database files present after it) for each layer that changed a database file."""
        captured = [getattr(s, "captured", None) or {} for s in self.scans]
        if not any(captured):
            return
        present: dict[str, tuple[int, int]] = {}
        current, changed = -1, False
        for ev in self.asm.events:
            layer = ev[0]
            if layer != current:
                if changed:
                    yield current, dict(present)
                current, changed = layer, False
            path = ev[1]
            if ev[2] == "whited_out":
                if path in present:
                    del present[path]
                    changed = True
                continue
            node = ev[3]
            cap = captured[layer]
            if cap and node.type == "f" and node.entry in cap:
                present[path] = (layer, node.entry)
                changed = True
            elif path in present:
                del present[path]
                changed = True
        if changed:
            yield current, dict(present)

    def _read(self, files: dict[str, tuple[int, int]]) -> dict[tuple, Package]:
        split: dict[str, dict[str, tuple[int, int]]] = {}
        for path, where in files.items():
            for eco, test in _CLASSIFY:
                if test(path):
                    split.setdefault(eco, {})[path] = where
                    break
        state: dict[tuple, Package] = {}
        for eco in ("dpkg", "apk", "rpm", "python", "npm"):
            if eco in split:
                db = DbFiles(split[eco], self._content, self._digest, self._memo)
                for pkg in READERS[eco].read(db):
                    state[pkg.key] = pkg
        return state

    def _build(self) -> None:
        records = self.records
        current: dict[tuple, int] = {}  # key -> id of the record present
        had_db: set[str] = set()
        for layer, files in self._snapshots():
            state = self._read(files)
            has_db = {eco for eco, test in _SYSTEM_DB if any(test(p) for p in files)}
            for eco in had_db - has_db:
                # The database itself was deleted (an image "slimmed" of its package lists): the packages
                # were not uninstalled, their files are still there. Keep them, marked.
                for key, rid in current.items():
                    if key[0] == eco:
                        state[key] = records[rid].package
                        if records[rid].database_removed_layer is None:
                            records[rid].database_removed_layer = layer
                has_db.add(eco)
            had_db = has_db
            nxt: dict[tuple, int] = {}
            for key in sorted(state, key=lambda k: (k[0], k[1], k[3], k[2])):
                pkg = state[key]
                found = current.get(key)
                if found is not None and records[found].package.version == pkg.version:
                    rid = found
                    old_pkg = records[rid].package
                    if old_pkg.paths and not pkg.paths and not pkg.trees:  # its file list was deleted
                        pkg = state[key] = replace(pkg, paths=old_pkg.paths)
                        if records[rid].database_removed_layer is None:
                            records[rid].database_removed_layer = layer
                    records[rid].package = pkg  # same version: the newest listing of it
                    nxt[key] = rid
                    continue
                if found is not None:
                    old = records[found]
                    cmp = compare_versions(pkg.ecosystem, pkg.version, old.package.version)
                    old.removed_layer = layer
                    old.fate = "upgraded" if cmp > 0 else "downgraded" if cmp < 0 else "replaced"
                    old.next_version = pkg.version
                rid = len(records)
                records.append(Record(rid, pkg, layer))
                nxt[key] = rid
            for key, rid in current.items():
                if key not in nxt:
                    records[rid].removed_layer = layer
                    records[rid].fate = "removed"
            current = nxt
            self.change_layers.append(layer)
            self.states.append([(rid, state[key]) for key, rid in nxt.items()])

    # -- queries ----------------------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return not self.records

    def state_index(self, layer: int) -> int:
        """Which state holds after ``layer`` (-1: before any database)."""
        return bisect.bisect_right(self.change_layers, layer) - 1

    def owners(self, state: int) -> Owners | None:
        """The path -> owner map of a state. States whose listings are the same objects (a database
        rewritten unchanged) share one; only a few maps are kept (each can hold every path of the image)."""
        if state < 0:
            return None
        entries = self.states[state]
        sig = tuple((rid, id(pkg.paths), id(pkg.trees)) for rid, pkg in entries)
        hit = self._owners.get(sig)
        if hit is None:
            hit = Owners(entries, self.records, self.resolver)
            if len(self._owners) >= 3:
                del self._owners[next(iter(self._owners))]
            self._owners[sig] = hit
        return hit

    def present(self, layer: int) -> list[int]:
        """Ids of the records present after ``layer``."""
        s = self.state_index(layer)
        return [] if s < 0 else [rid for rid, _ in self.states[s]]

    def owner_ids(self, paths: np.ndarray, layers: np.ndarray, skip: np.ndarray) -> np.ndarray:
        """For each row, the id of the record owning ``paths[i]`` at the state after ``layers[i]``
        (-1: none; also for rows where ``skip`` is True, e.g. directories)."""
        out = np.full(len(paths), -1, dtype=np.int64)
        if self.empty or not len(paths):
            return out
        states = np.searchsorted(np.asarray(self.change_layers, dtype=np.int64), layers, side="right") - 1
        for s in np.unique(states):
            owners = self.owners(int(s))
            if owners is None:
                continue
            rows = np.flatnonzero((states == s) & ~skip)
            if owners.trees:
                out[rows] = [owners(p) for p in paths[rows]]
            else:
                get = owners.explicit.get
                out[rows] = [get(p, -1) for p in paths[rows]]
        return out


def model_of(image: "Image") -> PackageModel:
    """The image's package model (``Image.package_model``: built on first use, kept by the image)."""
    return image.package_model
