"""The directory tree both explorers show: the notebook widget (``ocilens.explore``) and the report's
``<details>`` trees.

A *view* is a flat frame of changed paths, one row per path, sorted by path: how the path changed
(``kind``), its sizes, and how many of its bytes are wasted. Directories are never materialized: the
children of one directory, with their aggregate sizes, come from the slice of sorted paths under its
prefix (found by binary search) and a pandas groupby on the next path component. Expanding a directory
of a 100,000-file layer costs one slice and one groupby, never an object per file.

Kinds (``KINDS``) are the diff's words (``ocilens.diff``), the same for a layer and for two images:
``added``; ``modified`` (new content or a new type); ``metadata_only`` (modified, but only in mode, owner,
mtime or a hardlink's target: a regular file listed again ships its bytes again, so it counts even when
only its mtime is new); ``removed``; ``unchanged`` (a directory, link or device listed again with only a
new mtime: no change, hidden unless asked for, and never counted). The events' words (``overwritten``,
``whited_out``) are accepted as filters for ``modified`` and ``removed``. ``bytes`` is what a change
weighs: the regular file it writes, or, for a removal, the regular file it removes (directories, links
and hardlinks weigh nothing, so a directory's total is the sum of its files, each counted once).

Each kind has a mark (``MARKS``: ``+ ~ m - =``, for readers who do not tell the colours apart) and a
colour (``ocilens.html.CHANGE_COLOURS``, shared with the report and the explorer).
"""

from __future__ import annotations

import math
import stat
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from .diff import change_counts, counts_text
from .errors import AnalysisError, UsageError
from .html import CHANGE_COLOURS, change_badge_css, command_html, esc, human, printable

if TYPE_CHECKING:
    from .diff import ImageDiff
    from .image import Image

__all__ = ["KINDS", "DEFAULT_KINDS", "SORTS", "LABELS", "LAYER_LABELS", "DIFF_LABELS", "MARKS", "KIND_ALIASES",
           "Row", "Tree", "LayerViews", "layer_entries", "diff_entries", "empty_view", "printable", "tree_html",
           "layers_html", "TREE_CSS", "kind_counts", "mode_text", "owner_text", "change_text", "diff_table_html",
           "normalize_kinds"]

KINDS = ("added", "modified", "metadata_only", "removed", "unchanged")
DEFAULT_KINDS = ("added", "modified", "metadata_only", "removed")
SORTS = ("size", "name")
_KIND_DTYPE = pd.CategoricalDtype(KINDS)
# The events' words, accepted as filters: an overwritten path is modified, a whited-out one removed.
KIND_ALIASES = {"overwritten": "modified", "whited_out": "removed"}
# What each kind is called: the same words for a layer and for a diff of two images (``ocilens.diff``).
LABELS = {"added": "added", "modified": "modified", "metadata_only": "metadata only", "removed": "removed",
          "unchanged": "unchanged"}
LAYER_LABELS = DIFF_LABELS = LABELS  # kept for callers: one vocabulary now
# One-character marks, shown beside the colours (for readers who do not tell them apart).
MARKS = {"added": "+", "modified": "~", "metadata_only": "m", "removed": "-", "unchanged": "="}
assert set(CHANGE_COLOURS) == set(KINDS)

COLUMNS = ("path", "kind", "type", "size", "prev_size", "bytes", "delta", "wasted", "waste_cause", "waste_by",
           "layer", "linkname", "prev_type", "prev_linkname", "mode", "prev_mode", "uid", "gid", "prev_uid",
           "prev_gid", "changed")
# The attributes a modified row can change, in the order ``change_text`` names them.
_FLAGS = ("type", "content", "linkname", "mode", "owner", "mtime")


def normalize_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """``kinds`` in ``KINDS`` order, the events' words mapped to the diff's; ``UsageError`` for others."""
    wanted = {KIND_ALIASES.get(k, k) for k in kinds}
    bad = sorted(wanted - set(KINDS))
    if bad:
        raise UsageError(f"unknown change kinds {bad}", hint=f"choose among {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in wanted)

# ------------------------------------------------------------------------------------------- views


def _kinds_of(df: pd.DataFrame) -> np.ndarray:
    """The kind of each row of a ``layer_diff`` / ``ImageDiff.files`` frame."""
    from .diff import metadata_only

    change = df["change"].astype(object).to_numpy()
    meta = metadata_only(df).to_numpy(dtype=bool)
    return np.select([change == "added", change == "removed", meta, change == "modified"],
                     ["added", "removed", "metadata_only", "modified"], "unchanged")


def _column(df: pd.DataFrame, name: str, dtype: str) -> Any:
    """``df[name]`` as ``dtype`` (all missing when the frame has no such column)."""
    if name in df:
        return df[name].astype(object).where(df[name].notna(), None).astype(dtype).array
    return pd.array([None] * len(df), dtype=dtype)


def _changed(df: pd.DataFrame) -> Any:
    """For each modified row, the attributes that changed (``content,mode``); NA for the others."""
    if not len(df):
        return pd.array([], dtype="string")
    parts = []
    for a in _FLAGS:
        col = f"{a}_changed"
        flag = df[col].fillna(False).to_numpy(dtype=bool) if col in df else np.zeros(len(df), dtype=bool)
        parts.append(np.where(flag, a + ",", ""))
    text = parts[0].astype(object)
    for part in parts[1:]:
        text = text + part.astype(object)
    text = np.array([t[:-1] for t in text], dtype=object)
    modified = (df["change"].astype(object) == "modified").to_numpy(dtype=bool)
    return pd.array(np.where(modified, text, None), dtype="string")


def _view(df: pd.DataFrame, layer: int | None, waste: pd.DataFrame | None) -> pd.DataFrame:
    """The canonical view frame (``COLUMNS``, sorted by path) of a ``layer_diff``-shaped frame."""
    kind = _kinds_of(df)
    removed = kind == "removed"
    new_type = df["type"].astype(object).to_numpy()
    prev_type = df["prev_type"].astype(object).to_numpy()
    typ = np.where(removed, prev_type, new_type)
    size = df["size"].astype("Int64")
    prev_size = df["prev_size"].astype("Int64")
    weight = np.where(removed, prev_size.fillna(0).to_numpy(dtype="int64"), size.fillna(0).to_numpy(dtype="int64"))
    weight = np.where(typ == "file", weight, 0)
    paths = df["path"].astype(object).to_numpy()
    delta = df["size_delta"].astype("Int64").fillna(0).to_numpy(dtype="int64") if "size_delta" in df else \
        np.zeros(len(df), dtype="int64")
    out = pd.DataFrame({
        "path": paths,
        "kind": pd.Categorical(kind, dtype=_KIND_DTYPE),
        "type": pd.array([None if t is None or t is pd.NA or t != t else t for t in typ], dtype="string"),
        "size": size.array,
        "prev_size": prev_size.array,
        "bytes": weight.astype("int64"),
        "delta": delta,
        "wasted": np.zeros(len(df), dtype="int64"),
        "waste_cause": pd.array([None] * len(df), dtype="string"),
        "waste_by": pd.array([None] * len(df), dtype="Int16"),
        "layer": pd.array([layer] * len(df), dtype="Int16"),
        "linkname": _column(df, "linkname", "string"),
        "prev_type": _column(df, "prev_type", "string"),
        "prev_linkname": _column(df, "prev_linkname", "string"),
        "mode": _column(df, "mode", "Int64"),
        "prev_mode": _column(df, "prev_mode", "Int64"),
        "uid": _column(df, "uid", "Int64"),
        "gid": _column(df, "gid", "Int64"),
        "prev_uid": _column(df, "prev_uid", "Int64"),
        "prev_gid": _column(df, "prev_gid", "Int64"),
        "changed": _changed(df),
    })
    if waste is not None and len(waste) and len(out):
        # A path's version in this layer is wasted when the audit lists it (a path ships one version per layer).
        w = waste.groupby("path", sort=False).agg(size=("size", "sum"), cause=("cause", "first"),
                                                  by_layer=("by_layer", "first"))
        hit = out["path"].map(w["size"])
        out["wasted"] = hit.fillna(0).astype("int64").to_numpy()
        out["waste_cause"] = out["path"].map(w["cause"].astype(object)).astype("string").array
        out["waste_by"] = out["path"].map(w["by_layer"].astype(object)).astype("Int16").array
    return _sorted(out)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in Python's string order of ``path`` (the order ``Tree``'s binary search relies on)."""
    order = np.argsort(df["path"].to_numpy(dtype=object), kind="stable")
    return df.iloc[order].reset_index(drop=True)


def empty_view() -> pd.DataFrame:
    """A view with no rows (``COLUMNS``, their dtypes)."""
    return _view(pd.DataFrame({"path": pd.array([], dtype="string"), "change": pd.array([], dtype="string"),
                               "content_changed": pd.array([], dtype="boolean"),
                               "type_changed": pd.array([], dtype="boolean"), "type": [], "prev_type": [],
                               "size": pd.array([], dtype="Int64"), "prev_size": pd.array([], dtype="Int64"),
                               "linkname": pd.array([], dtype="string")}), None, None)


class LayerViews:
    """The views of one image's layers, each computed once: ``layer(i)`` is what layer ``i`` changed
    (``layer_diff`` with unchanged rows kept, as kind ``unchanged``); ``aggregated(i)`` is the stack of
    layers ``0..i`` as dive's aggregated mode shows it."""

    def __init__(self, image: "Image") -> None:
        self.image = image
        self._layers: dict[int, pd.DataFrame] = {}
        self._aggregated: dict[int, pd.DataFrame] = {}
        self._waste: dict[int, pd.DataFrame] | None = None

    def __len__(self) -> int:
        return len(self.image.scans)

    def resolve(self, index: int) -> int:
        """The layer number ``index`` names (negative ones count from the top), or ``AnalysisError``."""
        n = len(self)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not -n <= index < n:
            raise AnalysisError(f"{self.image.reference}: no layer {index!r}; the image has {n} layers (0..{n - 1})",
                                reference=self.image.reference)
        return int(index) % n

    def waste(self, index: int) -> pd.DataFrame:
        """The audit's wasted versions that layer ``index`` shipped (``Bloat.causes`` rows)."""
        if self._waste is None:
            causes = self.image.bloat().causes
            self._waste = {int(k): g for k, g in causes.groupby("layer", sort=False)} if len(causes) else {}
        return self._waste.get(self.resolve(index), self.image.bloat().causes.iloc[:0])

    def layer(self, index: int) -> pd.DataFrame:
        """Every path layer ``index`` lists, with how it changed the stack below."""
        i = self.resolve(index)
        if i not in self._layers:
            diff = self.image.layer_diff(i, include_unchanged=True)
            self._layers[i] = _view(diff, i, self.waste(i))
        return self._layers[i]

    def aggregated(self, index: int) -> pd.DataFrame:
        """The tree after layers ``0..index``: each present path with its last event (``layer`` says which
        layer wrote it, ``kind`` how: a path listed again with only a new mtime is ``unchanged``), plus what
        layer ``index`` itself whited out. Paths removed by an earlier layer are gone, as from a container."""
        i = self.resolve(index)
        if i not in self._aggregated:
            parts = [self.layer(j) for j in range(i + 1)]
            cat = pd.concat(parts, ignore_index=True)
            last = cat.drop_duplicates("path", keep="last")
            last = last[(last["kind"] != "removed") | (last["layer"] == i)]
            self._aggregated[i] = _sorted(last)
        return self._aggregated[i]

    def view(self, index: int, aggregated: bool = False) -> pd.DataFrame:
        return self.aggregated(index) if aggregated else self.layer(index)

    def counts(self, index: int) -> dict[str, int]:
        """What layer ``index`` changed, in ``layer_diff``'s counts (``ocilens.diff.change_counts``)."""
        return kind_counts(self.layer(index))


def kind_counts(view: pd.DataFrame) -> dict[str, int]:
    """A view's changes counted as ``ocilens.diff.change_counts`` counts a diff: ``added``, ``modified``
    (``metadata_only`` of them), ``removed``; ``unchanged`` rows are no change."""
    k = view["kind"].value_counts()
    meta = int(k.get("metadata_only", 0))
    return {"added": int(k.get("added", 0)), "modified": int(k.get("modified", 0)) + meta, "metadata_only": meta,
            "removed": int(k.get("removed", 0))}


def layer_entries(image: "Image", index: int, *, aggregated: bool = False) -> pd.DataFrame:
    """The view of one layer (or, ``aggregated``, of the stack up to it): one row per path, ``COLUMNS``."""
    return LayerViews(image).view(index, aggregated)


def diff_entries(diff: "ImageDiff") -> pd.DataFrame:
    """The view of a diff of two images: the final trees compared, one row per changed path."""
    return _view(diff.files, None, None)


# -------------------------------------------------------------------------------------------- tree


class Row(NamedTuple):
    """One visible line of the tree: a child of an expanded directory, or a "more" line (``more`` > 0:
    that many children of ``path`` not shown)."""

    path: str
    name: str
    depth: int
    is_dir: bool
    expandable: bool
    expanded: bool
    kind: str | None
    type: str | None
    bytes: int
    wasted: int
    changes: int
    size: int | None
    prev_size: int | None
    layer: int | None
    linkname: str | None
    waste_cause: str | None
    waste_by: int | None
    more: int = 0
    delta: int = 0
    prev_type: str | None = None
    prev_linkname: str | None = None
    mode: int | None = None
    prev_mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    prev_uid: int | None = None
    prev_gid: int | None = None
    changed: str | None = None  # a modified path's changed attributes: "content,mode"


def _prefix(directory: str) -> str:
    d = directory.rstrip("/")
    return d + "/"


def _na(v: Any) -> Any:
    """None for a missing value (None, NA, NaN), else the value."""
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v


class Tree:
    """A view filtered and sorted: what the explorers show. ``children(dir)`` is computed on demand.

    ``kinds``: the kinds shown; ``waste_only``: only versions the audit counts as wasted; ``search``: a
    case-insensitive substring of the path; ``sort``: ``"size"`` (largest first) or ``"name"``.
    Directories holding a match are shown whatever their own kind.
    """

    def __init__(self, entries: pd.DataFrame, *, kinds: Iterable[str] = DEFAULT_KINDS, waste_only: bool = False,
                 search: str = "", sort: str = "size") -> None:
        kinds = normalize_kinds(kinds)
        if sort not in SORTS:
            raise UsageError(f"cannot sort by {sort!r}", hint="sort by 'size' or 'name'")
        self.kinds, self.waste_only, self.search, self.sort = kinds, bool(waste_only), str(search or ""), sort
        mask = entries["kind"].isin(kinds).to_numpy(dtype=bool) & (entries["path"].to_numpy(dtype=object) != "/")
        if self.waste_only:
            mask &= entries["wasted"].to_numpy() > 0
        if self.search:
            needle = self.search.casefold()
            mask &= np.fromiter((needle in p.casefold() for p in entries["path"].to_numpy(dtype=object)),
                                dtype=bool, count=len(entries))
        self.entries = entries[mask].reset_index(drop=True)
        self._paths = self.entries["path"].to_numpy(dtype=object)
        self._bytes = self.entries["bytes"].to_numpy(dtype="int64")
        self._wasted = self.entries["wasted"].to_numpy(dtype="int64")
        self._cum_bytes = np.concatenate(([0], np.cumsum(self._bytes)))
        self._cum_wasted = np.concatenate(([0], np.cumsum(self._wasted)))
        self._delta = self.entries["delta"].to_numpy(dtype="int64")
        self._cum_delta = np.concatenate(([0], np.cumsum(self._delta)))
        not_dir = (self.entries["type"] != "dir").fillna(True).to_numpy(dtype=bool)
        self._cum_files = np.concatenate(([0], np.cumsum(not_dir)))
        self._children: dict[str, pd.DataFrame] = {}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def total_bytes(self) -> int:
        return int(self._cum_bytes[-1])

    @property
    def total_wasted(self) -> int:
        return int(self._cum_wasted[-1])

    @property
    def total_delta(self) -> int:
        """The net change in content bytes of the shown changes (``size_delta`` summed)."""
        return int(self._cum_delta[-1])

    def _range(self, directory: str) -> tuple[int, int]:
        """Rows of the paths under ``directory`` (a contiguous run of the sorted paths)."""
        prefix = _prefix(directory)
        # Every string that starts with "P/" sorts at or after "P/" and before "P0" ("0" follows "/").
        lo = int(np.searchsorted(self._paths, prefix, side="left"))
        hi = int(np.searchsorted(self._paths, prefix[:-1] + "0", side="left"))
        return lo, hi

    def summary(self, directory: str = "/") -> dict[str, int]:
        """Totals of the matching changes under ``directory``: ``bytes``, ``wasted``, ``changes``,
        ``files`` (the changes that are not directories) and ``delta`` (net content bytes)."""
        lo, hi = self._range(directory)
        return {"bytes": int(self._cum_bytes[hi] - self._cum_bytes[lo]),
                "wasted": int(self._cum_wasted[hi] - self._cum_wasted[lo]), "changes": hi - lo,
                "files": int(self._cum_files[hi] - self._cum_files[lo]),
                "delta": int(self._cum_delta[hi] - self._cum_delta[lo])}

    def children(self, directory: str = "/") -> pd.DataFrame:
        """The children of ``directory`` that hold a match, one row each, sorted: ``name``, ``path``,
        ``is_dir``, ``expandable`` (has matches below), the child's own change (``kind``, ``type``,
        ``size``, ``prev_size``, ``layer``, ``linkname``, ``waste_cause``, ``waste_by``; NA when only its
        descendants changed) and aggregates over it and everything below: ``bytes``, ``wasted``, ``changes``."""
        key = _prefix(directory)
        cached = self._children.get(key)
        if cached is not None:
            return cached
        lo, hi = self._range(directory)
        n = len(key)
        names: list[str] = []
        deep: list[bool] = []
        for p in self._paths[lo:hi]:
            head, sep, _ = p[n:].partition("/")
            names.append(head)
            deep.append(bool(sep))
        sub = pd.DataFrame({"name": names, "deep": deep, "bytes": self._bytes[lo:hi],
                            "wasted": self._wasted[lo:hi], "delta": self._delta[lo:hi]})
        agg = sub.groupby("name", sort=False).agg(bytes=("bytes", "sum"), wasted=("wasted", "sum"),
                                                 delta=("delta", "sum"), changes=("bytes", "size"),
                                                 expandable=("deep", "any"))
        own_rows = np.flatnonzero(~np.asarray(deep, dtype=bool)) + lo
        own = self.entries.iloc[own_rows].drop(columns=["bytes", "wasted", "delta", "path"])
        own.index = pd.Index([names[k - lo] for k in own_rows], name="name")
        out = agg.join(own, how="left")
        out = out.reset_index()
        out.insert(1, "path", [key + nm for nm in out["name"]])
        out["is_dir"] = out["expandable"].to_numpy(dtype=bool) | (out["type"] == "dir").fillna(False).to_numpy(dtype=bool)
        if self.sort == "size":
            out = out.sort_values(["bytes", "name"], ascending=[False, True], kind="stable")
        else:
            out = out.sort_values("name", kind="stable")
        out = out.reset_index(drop=True)
        self._children[key] = out
        return out

    def _level(self, directory: str, depth: int, expanded: Collection[str], limit: int,
               limits: Mapping[str, int]) -> Iterator[Row]:
        ch = self.children(directory)
        shown = max(int(limits.get(directory, limit)), 1)
        cols = ["path", "name", "is_dir", "expandable", "kind", "type", "bytes", "wasted", "changes", "size",
                "prev_size", "layer", "linkname", "waste_cause", "waste_by", "delta", "prev_type", "prev_linkname",
                "mode", "prev_mode", "uid", "gid", "prev_uid", "prev_gid", "changed"]
        for (path, name, is_dir, expandable, kind, typ, nbytes, wasted, changes, size, prev_size, layer, link,
             cause, by, delta, *rest) in ch[cols].head(shown).itertuples(index=False, name=None):
            yield Row(path, name, depth, bool(is_dir), bool(expandable), bool(expandable) and path in expanded,
                      _na(kind), _na(typ), int(nbytes), int(wasted), int(changes), _na(size), _na(prev_size),
                      _na(layer), _na(link), _na(cause), _na(by), 0, int(delta), *(_na(v) for v in rest))
        if len(ch) > shown:
            yield Row(directory, "", depth, False, False, False, None, None, 0, 0, 0, None, None, None, None, None,
                      None, more=len(ch) - shown)

    def rows(self, expanded: Collection[str] = (), *, limit: int = 200, limits: Mapping[str, int] | None = None,
             max_rows: int = 5000) -> list[Row]:
        """The visible lines, depth first: the root's children, and the children of each ``expanded``
        directory under them. At most ``limit`` children per directory (``limits[dir]`` overrides; a
        "more" row counts the rest) and ``max_rows`` lines in all."""
        limits = limits or {}
        out: list[Row] = []
        stack = [self._level("/", 0, expanded, limit, limits)]
        while stack and len(out) < max_rows:
            row = next(stack[-1], None)
            if row is None:
                stack.pop()
                continue
            out.append(row)
            if row.expanded:
                stack.append(self._level(row.path, row.depth + 1, expanded, limit, limits))
        return out

    def directories(self) -> set[str]:
        """Every directory that holds a match (the ancestors of the matching paths)."""
        out: set[str] = set()
        for p in self._paths:
            i = p.rfind("/")
            while i > 0:
                d = p[:i]
                if d in out:
                    break
                out.add(d)
                i = p.rfind("/", 0, i)
        return out


# -------------------------------------------------------------------------------------- HTML trees


TREE_CSS = """
.ocilens details.layer{border:1px solid #d0d7de;border-radius:6px;margin:.35em 0;padding:.25em .6em;max-width:100%}
.ocilens details.layer>summary{cursor:pointer;overflow-wrap:break-word}
.ocilens details.layer[open]>summary{margin-bottom:.3em}
.ocilens ul.tree{list-style:none;margin:0;padding-left:1.4em;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
line-height:1.5}.ocilens details.layer>ul.tree{padding-left:.2em;font-size:.82em;overflow-x:auto}
.ocilens ul.tree summary{cursor:pointer}.ocilens ul.tree li{white-space:normal}
.ocilens ul.tree li>span.nm,.ocilens ul.tree summary>span.nm{white-space:nowrap;word-break:normal;overflow-wrap:normal}
.ocilens .sz{display:inline-block;min-width:6.5em;text-align:right;margin-right:.6em;font-variant-numeric:tabular-nums}
.ocilens .k{display:inline-block;min-width:7.5em;margin-right:.5em;border-radius:3px;text-align:center;font-size:.9em;
white-space:nowrap}
.ocilens .waste{color:#a40e26}
""" + change_badge_css(".ocilens") + "\n"

# ------------------------------------------------------------------------------- attributes as text

_TYPE_BITS = {"file": stat.S_IFREG, "hardlink": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK,
              "char": stat.S_IFCHR, "block": stat.S_IFBLK, "fifo": stat.S_IFIFO}


def mode_text(mode: Any, type_: Any = None) -> str:
    """A mode as ``ls -l`` and dive show it (``-rwxr-xr-x``, ``drwx------``); empty when unknown."""
    mode = _na(mode)
    if mode is None:
        return ""
    return stat.filemode(_TYPE_BITS.get(_na(type_) or "", stat.S_IFREG) | (int(mode) & 0o7777))


def owner_text(uid: Any, gid: Any) -> str:
    """``uid:gid`` (empty when unknown)."""
    uid, gid = _na(uid), _na(gid)
    return "" if uid is None and gid is None else f"{'' if uid is None else int(uid)}:{'' if gid is None else int(gid)}"


def change_text(e: Any) -> str:
    """What changed in a modified path (a ``Row`` or a view row), as text: ``mode 0755 → 0700``,
    ``owner 0:0 → 1000:1000``, ``content 12.8 kB → 12.9 kB``, ``type file → dir``, ``link a → b``;
    ``mtime only`` or ``shipped again`` for a file listed again with nothing else new. Empty for the
    other kinds."""
    if _na(e.kind) not in ("modified", "metadata_only"):
        return ""
    changed = set((_na(e.changed) or "").split(","))
    typ, prev_type = _na(e.type), _na(e.prev_type)
    bits = []
    if "type" in changed:
        bits.append(f"type {prev_type or '?'} → {typ or '?'}")
    elif "content" in changed and typ != "symlink":
        size, prev = _na(e.size), _na(e.prev_size)
        bits.append("content" + (f" {human(prev)} → {human(size)}" if size is not None and prev is not None
                                 and size != prev else ""))
    if "linkname" in changed or ("content" in changed and typ == "symlink" and "type" not in changed):
        bits.append(f"{'hardlink' if 'hardlink' in (typ, prev_type) else 'link'} "
                    f"{printable(_na(e.prev_linkname) or '-')} → {printable(_na(e.linkname) or '-')}")
    if "mode" in changed and _na(e.mode) is not None and _na(e.prev_mode) is not None:
        bits.append(f"mode {int(e.prev_mode) & 0o7777:04o} → {int(e.mode) & 0o7777:04o}")
    if "owner" in changed:
        bits.append(f"owner {owner_text(e.prev_uid, e.prev_gid)} → {owner_text(e.uid, e.gid)}")
    if not bits:
        bits.append("mtime only" if "mtime" in changed else "shipped again")
    return " · ".join(bits)


class _Node:
    __slots__ = ("children", "entry", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.children: dict[str, _Node] = {}
        self.entry: Any = None


def _badge(kind: str | None, labels: Mapping[str, str]) -> str:
    if kind is None:  # a directory that only holds changes: an empty badge keeps the names aligned
        return '<span class="k"></span>'
    return f'<span class="k k-{esc(kind)}">{esc(MARKS.get(kind, ""))} {esc(labels.get(kind, kind))}</span>'


def _extra(e: Any, labels: Mapping[str, str]) -> str:
    bits = []
    typ, link = _na(e.type), _na(e.linkname)
    if typ == "symlink" and link is not None:
        bits.append(f"→ {esc(printable(link))}")
    elif typ == "hardlink" and link is not None:
        bits.append(f"hardlink to {esc(printable(link))}")
    what = change_text(e)
    if what:
        bits.append(esc(what))
    if e.wasted:
        by = _na(e.waste_by)
        bits.append(f'<span class="waste">wasted {esc(human(e.wasted))} ({esc(e.waste_cause)}'
                    + (f", by layer {int(by)}" if by is not None else "") + ")</span>")
    return (' <span class="muted">' + " · ".join(bits) + "</span>") if bits else ""


def tree_html(tree: Tree, top: int = 25, *, labels: Mapping[str, str] = LAYER_LABELS) -> str:
    """The ``top`` heaviest changes of ``tree`` as nested ``<ul>``/``<details>`` (no script): each under
    its directories, which show the totals of all the tree's changes below them. Chains of directories
    with one child each are joined (``usr/share/doc/``). Every name is escaped."""
    df = tree.entries
    if df.empty:
        return '<p class="muted">No changes to show.</p>'
    order = df.assign(_dir=(df["type"] == "dir").fillna(False)).sort_values(
        ["_dir", "bytes", "path"], ascending=[True, False, True], kind="stable")
    chosen = order.head(max(int(top), 1))
    root = _Node("/")
    for e in chosen.itertuples(index=False):
        node = root
        parts = e.path.strip("/").split("/")
        for k, part in enumerate(parts):
            node = node.children.setdefault(part, _Node("/" + "/".join(parts[: k + 1])))
        node.entry = e

    def label_of(name: str, node: _Node) -> tuple[str, _Node]:
        # Join a chain of directories that have one child and no change of their own to show, down to a
        # file when that file is the only one changed below (``ka/LC_MESSAGES/sed.mo``).
        names = [name]
        while node.entry is None and len(node.children) == 1:
            (child_name, child), = node.children.items()
            if not child.children and tree.summary(node.path)["files"] != 1:
                break
            names.append(child_name)
            node = child
        return "/".join(names), node

    def weight(node: _Node) -> int:
        return tree.summary(node.path)["bytes"] if node.children else int(node.entry.bytes)

    def render(node: _Node) -> str:
        items = sorted(node.children.items(), key=lambda kv: (-weight(kv[1]), kv[0]))
        out = ['<ul class="tree">']
        for name, child in items:
            label, child = label_of(name, child)
            if child.children:
                s = tree.summary(child.path)
                e = child.entry
                wasted = f', <span class="waste">{esc(human(s["wasted"]))} wasted</span>' if s["wasted"] else ""
                out.append(f'<li><details open><summary><span class="sz">{esc(human(s["bytes"]))}</span>'
                           f'{_badge(e.kind if e is not None else None, labels)}<span class="nm">'
                           f'{esc(printable(label))}/</span> <span class="muted">{_count(s["changes"], "change")}'
                           f'{wasted}</span></summary>{render(child)}</details></li>')
            else:
                e = child.entry
                slash = "/" if _na(e.type) == "dir" else ""
                out.append(f'<li><span class="sz">{esc(human(e.bytes))}</span>{_badge(e.kind, labels)}'
                           f'<span class="nm">{esc(printable(label))}{slash}</span>{_extra(e, labels)}</li>')
        out.append("</ul>")
        return "".join(out)

    shown = len(chosen)
    note = (f'<p class="muted">The {shown:,} largest of {len(df):,} changes; a directory shows the total '
            f'of all its changes.</p>' if len(df) > shown else "")
    return render(root) + note


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def _short(text: str, n: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def layers_html(image: "Image", top: int = 25, *, views: LayerViews | None = None) -> str:
    """One ``<details>`` per layer (closed): its summary line, then its ``top`` heaviest changes as a tree."""
    views = views or LayerViews(image)
    layers = image.layers
    out = ['<p class="muted">Each layer\'s largest changes as a tree: click a layer to open it, a directory to '
           'fold it. Sizes are the bytes a change writes, or removes for a removal; kinds: '
           + " ".join(_badge(k, LAYER_LABELS) for k in DEFAULT_KINDS) + "</p>"]
    for row in layers.itertuples(index=False):
        i = int(row.layer)
        tree = Tree(views.layer(i))
        created_by = "" if row.created_by is None or row.created_by is pd.NA else str(row.created_by)
        kinds = counts_text(views.counts(i))
        wasted = int(row.wasted_bytes)
        out.append(
            f'<details class="layer" id="layer-{i}"><summary><b>layer {i}</b>: {command_html(_short(created_by))}'
            f' <span class="muted">· {esc(human(row.compressed_size))} compressed · {esc(kinds or "no changes")}'
            + (f' · <span class="waste">{esc(human(wasted))} wasted</span>' if wasted else "")
            + "</span></summary>"
            + (f'<p class="muted">{command_html(created_by)}</p>' if len(created_by) > 110 else "")
            + tree_html(tree, top) + "</details>")
    return "".join(out)


# ---------------------------------------------------------------------------- diff frames in notebooks

_NB_CSS = """
.ocilens-nb{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--jp-ui-font-color1,#1f2328)}
.ocilens-nb table.ocd{border-collapse:collapse;font-size:12px;margin:.3em 0;table-layout:auto}
.ocilens-nb table.ocd th,.ocilens-nb table.ocd td{text-align:left;vertical-align:top;padding:2px 8px;
border:none;border-bottom:1px solid var(--jp-border-color2,#d0d7de);white-space:normal;word-break:normal;
overflow-wrap:normal;max-width:none}
.ocilens-nb table.ocd td.n,.ocilens-nb table.ocd th.n{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}
.ocilens-nb table.ocd td.p{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.ocilens-nb table.ocd td.t{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap}
.ocilens-nb .k{display:inline-block;padding:0 .4em;border-radius:3px;white-space:nowrap}
.ocilens-nb .muted{color:var(--jp-ui-font-color2,#656d76)}
""" + "".join(f".ocilens-nb .k-{k}{{background:var(--ocilens-{k.replace('_', '-')}-bg);"
              f"color:var(--ocilens-{k.replace('_', '-')}-fg)}}" for k in KINDS)


def breakable_path(path: Any) -> str:
    """A path as escaped HTML that breaks only after a ``/`` (``<wbr>``), never inside a name."""
    return "/<wbr>".join(esc(part) for part in printable(path).split("/"))


def nb_css() -> str:
    """The CSS of the notebook displays of diffs (change colours for light and dark pages)."""
    from .html import change_colour_vars

    return change_colour_vars(".ocilens-nb") + _NB_CSS


def diff_table_html(df: pd.DataFrame, title: str, limit: int = 25) -> str:
    """A ``layer_diff`` / ``ImageDiff.files`` frame for a notebook: its counts, then its largest changes
    (by size change) with mode, owner, size and what changed. Text is left-aligned and breaks only at
    spaces or after ``/``."""
    view = _view(df, None, None)
    counts = change_counts(df)
    delta = int(df["size_delta"].fillna(0).sum()) if "size_delta" in df and len(df) else 0
    order = view.assign(_abs=view["delta"].abs()).sort_values(["_abs", "path"], ascending=[False, True],
                                                              kind="stable").head(limit)
    head = ["change", "path", "type", "mode", "uid:gid", "size", "size change", "what changed"]
    out = [f"<style>{nb_css()}</style><div class=\"ocilens-nb\"><b>{esc(title)}</b><br>"
           f"<span>{esc(counts_text(counts))}; size change {delta:+,} B</span>",
           '<table class="ocd"><thead><tr>'
           + "".join(f'<th{" class=n" if h in ("size", "size change") else ""}>{esc(h)}</th>' for h in head)
           + "</tr></thead><tbody>"]
    for e in order.itertuples(index=False):
        gone = e.kind == "removed"
        typ = _na(e.prev_type) if gone else _na(e.type)
        mode = e.prev_mode if gone else e.mode
        size = _na(e.prev_size) if gone else _na(e.size)
        out.append(
            f'<tr class="r-{esc(e.kind)}"><td><span class="k k-{esc(e.kind)}">{esc(MARKS[e.kind])} '
            f'{esc(LABELS[e.kind])}</span></td><td class="p">{breakable_path(e.path)}</td><td>{esc(typ)}</td>'
            f'<td class="t">{esc(mode_text(mode, typ))}</td>'
            f'<td class="t">{esc(owner_text(e.prev_uid, e.prev_gid) if gone else owner_text(e.uid, e.gid))}</td>'
            f'<td class="n">{esc("" if size is None else human(size))}</td><td class="n">{int(e.delta):+,}</td>'
            f"<td>{esc(change_text(e))}</td></tr>")
    out.append("</tbody></table>")
    if len(view) > limit:
        out.append(f'<span class="muted">The {limit} largest size changes of {len(view):,} rows; the frame '
                   f"holds them all.</span>")
    out.append("</div>")
    return "".join(out)
