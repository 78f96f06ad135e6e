"""dive's efficiency numbers, computed exactly as dive 0.13 computes them, so CI thresholds carry over.

dive builds one tree per layer from the tar (whiteout entries are nodes named ``.wh.NAME``; opaque markers
are dropped; parents missing from the tar are nodes without metadata), then for every **leaf** of every
layer tree adds a size to that path's cumulative sum and keeps the smallest size seen:
a regular file counts its tar size; directories, links and devices 0; a whiteout counts the whole subtree
of the removed path in the stack of the layers below if that was a directory, else 0.
``efficiency = Σ min / Σ cumulative`` and ``wasted = Σ cumulative`` over paths seen in two or more layers.
Its known blind spots follow from this: a directory removed later is not waste, opaque directories are
ignored, and a symlink that changes target looks unchanged. AUFS metadata (``.wh..wh.aufs``, the
``.wh..wh.orph`` and ``.wh..wh.plnk`` directories of old aufs-built layers), which runtimes ignore, are
whiteouts of paths that are not there to dive, so the walk of their layer stops there.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from .scan import LayerScan

__all__ = ["DiveNumbers", "dive_numbers", "go_ratio"]

_WH = ".wh."


@dataclass(frozen=True)
class DiveNumbers:
    """What ``dive --json`` reports as ``efficiencyScore``, ``inefficientBytes``, and the CI's user waste."""

    efficiency: float
    wasted_bytes: int
    image_bytes: int
    user_bytes: int
    user_wasted_percent: float
    inefficient_paths: pd.DataFrame  # path, count, cumulative_bytes (dive's "fileReference")


class _Tree:
    """A dive file tree: names -> nodes with (is_dir, size); intermediate nodes carry no metadata."""

    __slots__ = ("info", "kids")

    def __init__(self) -> None:
        self.info: dict[str, tuple[bool, int]] = {}
        self.kids: dict[str, dict[str, None]] = {"/": {}}

    def add(self, path: str, info: tuple[bool, int]) -> None:
        """``AddPath``: create missing parents without metadata, set the payload of the last node."""
        if path in self.info:
            self.info[path] = info
            return
        parent = path.rpartition("/")[0] or "/"
        if parent != "/" and parent not in self.info:
            self.add(parent, (False, 0))
        self.info[path] = info
        self.kids.setdefault(parent, {})[path] = None
        self.kids.setdefault(path, {})

    def remove(self, path: str) -> bool:
        if path not in self.info:
            return False
        for child in list(self.kids.get(path, ())):
            self.remove(child)
        self.kids.pop(path, None)
        del self.info[path]
        parent = path.rpartition("/")[0] or "/"
        self.kids.get(parent, {}).pop(path, None)
        return True

    def subtree_size(self, path: str) -> int:
        total = self.info[path][1]
        for child in self.kids.get(path, ()):
            total += self.subtree_size(child)
        return total

    def post_order(self) -> list[str]:
        """Children before parents, siblings in byte order of their names (Go's ``sort.Strings``)."""
        out: list[str] = []

        def visit(p: str) -> None:
            for c in sorted(self.kids.get(p, ()), key=os.fsencode):
                visit(c)
            if p != "/":
                out.append(p)

        visit("/")
        return out

    def copy(self) -> "_Tree":
        t = _Tree()
        t.info = dict(self.info)
        t.kids = {k: dict(v) for k, v in self.kids.items()}
        return t


def _trim(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/{name[len(_WH):]}" if name.startswith(_WH) else path


def _is_whiteout(path: str) -> bool:
    return path.rpartition("/")[2].startswith(_WH)


def _layer_tree(scan: LayerScan) -> _Tree:
    """One layer's tree in tar order, whiteouts as ``.wh.`` nodes, opaque markers dropped."""
    items: list[tuple[int, str, tuple[bool, int]]] = []
    for i, path in enumerate(scan.paths):
        if path == "/":
            continue  # dive skips the "." entry
        t = scan.types[i]
        items.append((scan.ordinals[i], path, (t == "d", scan.sizes[i] if t == "f" else 0)))
    for target, ordinal in scan.whiteouts:
        parent, _, name = target.rpartition("/")
        items.append((ordinal, f"{parent}/{_WH}{name}", (False, 0)))
    for path, ordinal in scan.aufs:  # ".wh..wh.aufs" is a whiteout of "/.wh.aufs" to dive, as any ".wh." name
        items.append((ordinal, path, (False, 0)))
    for directory, ordinal in scan.opaques:
        if directory != "/":
            items.append((ordinal, directory, None))  # type: ignore[arg-type]  # parent is created, no payload
    items.sort(key=lambda x: x[0])
    tree = _Tree()
    for _, path, info in items:
        if info is None:
            if path not in tree.info:
                tree.add(path, (False, 0))
        else:
            tree.add(path, info)
    return tree


def _stack(lower: _Tree, upper: _Tree) -> None:
    """dive's ``Stack``: visit the upper tree children first; whiteouts remove, the rest ``AddPath``."""
    for path in upper.post_order():
        if _is_whiteout(path):
            lower.remove(_trim(path))
        else:
            lower.add(path, upper.info[path])


def dive_numbers(scans: Sequence[LayerScan]) -> DiveNumbers:
    """Compute dive's efficiency, wasted bytes and user wasted percent from the layer scans."""
    trees = [_layer_tree(s) for s in scans]
    cumulative: dict[str, int] = {}
    minimum: dict[str, int] = {}
    count: dict[str, int] = {}
    stacked = trees[0].copy() if trees else _Tree()
    for idx, tree in enumerate(trees):
        below = trees[0] if idx == 0 else stacked
        for path in tree.post_order():
            if tree.kids.get(path):
                continue  # leaves only
            if _is_whiteout(path):
                key = _trim(path)
                if key not in below.info:
                    # dive creates the path's record (minimum -1) before its lookup fails, then abandons
                    # the rest of this layer.
                    if key not in cumulative:
                        cumulative[key], minimum[key], count[key] = 0, -1, 0
                    break
                size = below.subtree_size(key) if below.info[key][0] else 0
            else:
                key = path
                size = tree.info[path][1]
            cumulative[key] = cumulative.get(key, 0) + size
            if key not in minimum or size < minimum[key]:
                minimum[key] = size
            count[key] = count.get(key, 0) + 1
        _stack(stacked, tree)  # StackTreeRange(0, idx) for the next layer: copy(tree 0), then trees 0..idx
    total_min = sum(minimum.values())
    total_cum = sum(cumulative.values())
    efficiency = 1.0 if total_cum == 0 else total_min / total_cum
    repeated = [(p, count[p], cumulative[p]) for p in cumulative if count[p] >= 2]
    repeated.sort(key=lambda r: (-r[2], r[0]))
    wasted = sum(r[2] for r in repeated)
    layer_bytes = [sum(s.sizes) for s in scans]
    user = sum(layer_bytes[1:])
    frame = pd.DataFrame({
        "path": pd.array([r[0] for r in repeated], dtype="string"),
        "count": pd.array([r[1] for r in repeated], dtype="Int64"),
        "cumulative_bytes": pd.array([r[2] for r in repeated], dtype="Int64"),
    })
    return DiveNumbers(efficiency=efficiency, wasted_bytes=wasted, image_bytes=sum(layer_bytes), user_bytes=user,
                       user_wasted_percent=go_ratio(wasted, user), inefficient_paths=frame)


def go_ratio(a: int, b: int) -> float:
    """a / b as Go's float division: +Inf for x/0 with x > 0, NaN for 0/0."""
    if b:
        return a / b
    return math.inf if a > 0 else math.nan
