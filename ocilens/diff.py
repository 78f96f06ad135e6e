"""Diffs: what one layer did to the stack below it, and how two images' final trees, layers, config and
history differ (container-diff's file, metadata and history views, with sizes).

The words are container-diff's: a path is ``added``, ``modified`` or ``removed`` (``change``; ``unchanged`` rows are
kept only when asked for). The ``*_changed`` flags say which attributes of a modified path changed. In a layer,
a directory listed again with nothing new but its mtime is ``unchanged``: no change at all (a build re-lists
the parents of every path it writes). A regular file listed again ships its bytes again, so it is
``modified`` even when nothing but its mtime is new: a metadata-only change (``mtime_changed``, no
``content_changed`` or ``type_changed``), as the bloat audit counts its ``metadata_only`` waste. Between two
images the mtime is not compared (two builds of the same files differ in every mtime).
``change_counts`` gives the numbers every surface shows: added, modified (of which metadata only), removed.
Missing values are ``<NA>`` everywhere: every column has a nullable dtype (``string``, ``Int64``,
``boolean``; ``change`` is a category that is never missing).

``size`` and ``prev_size`` are the sizes of the two versions of a path, as ``events`` and ``files`` report
them (a hardlink shows the size of the file it names). ``size_delta`` counts content bytes, as the bloat
audit counts *visible* bytes, each inode once: a hardlink adds no bytes (it is still listed, with its
target in ``linkname``), and removing a name whose bytes live on under another name frees none. So the
``size_delta`` of a diff adds up to the change in visible bytes: for two images,
``b.bloat().visible_bytes - a.bloat().visible_bytes``; for a layer, what that layer did to the visible
bytes of the stack below it.
"""

from __future__ import annotations

import difflib
import json
import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import AnalysisError

if TYPE_CHECKING:
    from .explore import DiffExplorer
    from .image import Image

__all__ = ["layer_diff", "image_diff", "ImageDiff", "LayerDiff", "CHANGES", "CONFIG_FIELDS", "change_counts",
           "metadata_only"]

CHANGES = ("added", "modified", "removed", "unchanged")
_CHANGE_DTYPE = pd.CategoricalDtype(CHANGES)
_ATTRS = ("content", "type", "mode", "owner", "linkname")
# container-diff's metadata view: the config fields that change how a container runs.
CONFIG_FIELDS = ("User", "Env", "Entrypoint", "Cmd", "WorkingDir", "Labels", "ExposedPorts", "Volumes",
                 "StopSignal", "Healthcheck", "Shell", "OnBuild")


def _compare(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Attribute-wise comparison of aligned rows (same index). A hardlink compares as the file it names
    (same bytes: no content change), but becoming or ceasing to be a hardlink, or naming another file,
    changes its ``linkname``."""
    raw_new, raw_old = new["type"].astype("string"), old["type"].astype("string")
    nt, ot = raw_new.replace({"hardlink": "file"}), raw_old.replace({"hardlink": "file"})
    link_differs = (new["linkname"] != old["linkname"]).fillna(True)  # NA on one side only: differs
    hard = ((raw_new == "hardlink") | (raw_old == "hardlink")).fillna(False)

    out = pd.DataFrame(index=new.index)
    out["type_changed"] = (nt != ot).fillna(True).astype("boolean")
    out["content_changed"] = (out["type_changed"]
                              | ((nt == "file") & (new["digest"] != old["digest"]).fillna(True))
                              | ((nt == "symlink") & link_differs)
                              ).astype("boolean")
    out["mode_changed"] = (new["mode"] != old["mode"]).fillna(True).astype("boolean")
    out["owner_changed"] = ((new["uid"] != old["uid"]) | (new["gid"] != old["gid"])).fillna(True).astype("boolean")
    out["linkname_changed"] = (((nt == "symlink") | hard) & link_differs).fillna(False).astype("boolean")
    if "mtime" in new and "mtime" in old:
        out["mtime_changed"] = (new["mtime"] != old["mtime"]).fillna(True).astype("boolean")
    return out


def metadata_only(df: pd.DataFrame) -> pd.Series:
    """Which rows of a ``layer_diff`` / ``ImageDiff.files`` frame are modified in their metadata only (mode,
    owner, mtime, a hardlink's target), not in their content or type."""
    content = (df["content_changed"].fillna(False) | df["type_changed"].fillna(False)).astype(bool)
    return (df["change"] == "modified").astype(bool) & ~content


def change_counts(df: pd.DataFrame) -> dict[str, int]:
    """The counts every surface shows for a diff frame: ``added``, ``modified`` (``metadata_only`` of
    them), ``removed``. ``unchanged`` rows (when the frame keeps them) are no change and not counted."""
    change = df["change"].astype(object)
    return {"added": int((change == "added").sum()), "modified": int((change == "modified").sum()),
            "metadata_only": int(metadata_only(df).sum()), "removed": int((change == "removed").sum())}


def counts_text(counts: dict[str, int]) -> str:
    """``85 added, 3 modified (3 metadata only), 0 removed``."""
    meta = counts.get("metadata_only", 0)
    return (f"{counts.get('added', 0):,} added, {counts.get('modified', 0):,} modified"
            + (f" ({meta:,} metadata only)" if meta else "") + f", {counts.get('removed', 0):,} removed")


def _content(size: pd.Series, type_: pd.Series) -> pd.Series:
    """Content bytes: a hardlink's size is its target's, and it adds none of its own."""
    return size.where((type_.astype("string") != "hardlink").fillna(True), 0).astype("Int64")


def _delta(size: pd.Series, prev_size: pd.Series) -> pd.Series:
    return (size.fillna(0) - prev_size.fillna(0)).astype("Int64")


def _label(change: pd.Series, delta: pd.Series) -> pd.Series:
    """A row whose attributes all compare equal but whose content bytes change is ``modified``, never
    ``unchanged`` (so never dropped): a name that stops sharing an inode (a hardlinked file re-listed on
    its own) keeps its bytes, and they are now a second copy."""
    moved = (change == "unchanged").to_numpy(dtype=bool) & (delta.fillna(0) != 0).to_numpy(dtype=bool)
    return change.mask(moved, "modified")


def _layer_content_sizes(image: "Image", index: int, positions: Any, size: pd.Series,
                         prev_size: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """The content bytes each of layer ``index``'s rows adds and removes, when the stack up to it holds
    hardlinks: an inode's bytes count once, on the row that makes it visible (its regular-file entry, or
    the one name of it left when that entry is gone within the layer), and come off on the row that
    removes its last name. A name whose inode lives on under another name, or appears under one, counts 0.

    ``positions`` are the rows' numbers in ``image.events``; None when the assembly does not line up
    with the events (then the caller counts each hardlink row as 0, which is exact unless a hardlinked
    file's first name goes while another name stays)."""
    asm = image.assembly
    log = asm.events
    if len(log) != len(image.events):
        return None
    nodes, kinds, rest = log.node, log.event, log.rest
    origin, fates = asm.inode_origin.nodes, asm.fates
    births: dict[int, int] = {}  # inode -> the row that makes it visible
    deaths: dict[int, int] = {}  # inode -> the row that removes its last name
    afters: list[Any] = []
    befores: list[Any] = []
    for k, pos in enumerate(positions):
        node = nodes[pos]
        extra = rest.get(pos)
        before = extra[0] if extra else None
        after = None if kinds[pos] == "whited_out" else node
        afters.append(after)
        befores.append(before)
        if after is not None and after.inode:
            inode = after.inode
            first = origin[inode]
            fate = fates.get(inode)
            if first is not None and first.layer == index and (fate is None or fate[0] != index):
                if inode not in births or after is first:
                    births[inode] = k
        if before is not None and before.inode:
            inode = before.inode
            fate = fates.get(inode)
            if fate is not None and fate[0] == index:
                if inode not in deaths or before is origin[inode]:
                    deaths[inode] = k
    new_size = size.copy()
    new_prev = prev_size.copy()
    for k, (after, before) in enumerate(zip(afters, befores)):
        if after is not None and after.inode:
            new_size.iat[k] = after.size if births.get(after.inode) == k else 0
        if before is not None and before.inode:
            new_prev.iat[k] = before.size if deaths.get(before.inode) == k else 0
    return new_size, new_prev


class LayerDiff(pd.DataFrame):
    """A ``layer_diff`` frame: a plain DataFrame (operations on it give plain DataFrames) that a notebook
    shows as a table of the changes, the largest first, with a line of counts."""

    _metadata = ["ocilens_title"]
    ocilens_title: str

    def _repr_html_(self) -> str | None:  # type: ignore[override]
        """The counts, then the changes as a table (largest size change first)."""
        from .tree import diff_table_html

        try:
            return diff_table_html(self, getattr(self, "ocilens_title", "") or "layer diff")
        except (KeyError, ValueError, TypeError):  # columns removed in place: pandas' own table
            return super()._repr_html_()


def _strings(s: pd.Series) -> pd.Series:
    """A text column with ``<NA>`` for missing values (a category's missing values show as ``NaN``)."""
    return s.astype(object).where(s.notna(), None).astype("string")


# The columns of a path's previous version that ``layer_diff`` compares and reports (its ``prev_*``).
_VERSION_COLUMNS = ("type", "mode", "uid", "gid", "mtime", "linkname", "digest")
# Per image: the events frame the index was built from, and the index (see ``_versions``).
_VERSIONS: "weakref.WeakKeyDictionary[Image, tuple[pd.DataFrame, pd.DataFrame]]" = weakref.WeakKeyDictionary()


def _build_versions(events: pd.DataFrame) -> pd.DataFrame:
    """Every version a layer wrote (whiteouts excluded), indexed by ``(layer, path)``: the versions a layer replaces."""
    cols = [c for c in _VERSION_COLUMNS if c in events.columns]
    return events.loc[events["event"] != "whited_out", ["layer", "path", *cols]].set_index(["layer", "path"])


def _versions(image: "Image") -> pd.DataFrame:
    """The ``(layer, path)`` index of ``image``'s versions, built once per image (and per events frame)."""
    events = image.events
    hit = _VERSIONS.get(image)
    if hit is not None and hit[0] is events:
        return hit[1]
    versions = _build_versions(events)
    _VERSIONS[image] = (events, versions)
    return versions


def layer_diff(image: "Image", index: int, *, include_unchanged: bool = False) -> LayerDiff:
    """What layer ``index`` did to the stack below: one row per path it added, modified or removed, with
    which attributes changed and their values before (``prev_*``) and after. ``unchanged`` rows (a
    directory, link or device listed again with only a new mtime) are dropped unless asked."""
    n = len(image.scans)
    if not -n <= index < n:
        raise AnalysisError(f"{image.reference}: no layer {index}; the image has {n} layers (0..{n - 1})",
                            reference=image.reference)
    index %= n
    ev = image.events
    here = (ev["layer"] == index).to_numpy(dtype=bool, na_value=False)
    positions = np.flatnonzero(here)  # the rows' numbers in the events (and in the assembly's event log)
    mine = ev[here].reset_index(drop=True)
    versions = _versions(image)
    keys = list(zip(mine["prev_layer"].fillna(-1).astype(int), mine["path"]))
    prev = versions.reindex(pd.MultiIndex.from_tuples(keys, names=["layer", "path"]) if keys else
                            pd.MultiIndex.from_arrays([[], []], names=["layer", "path"])).reset_index(drop=True)
    is_removed = (mine["event"] == "whited_out").to_numpy(dtype=bool)
    is_added = (mine["event"] == "added").to_numpy(dtype=bool)
    flags = _compare(mine, prev)
    for col in flags:
        flags.loc[is_added | is_removed, col] = pd.NA
    changed = flags[[f"{a}_changed" for a in _ATTRS]].fillna(False).any(axis=1).to_numpy(dtype=bool)
    # A regular file listed again ships its bytes again: a (metadata-only) change even with only a new mtime.
    reshipped = ((_strings(mine["type"]) == "file") & (_strings(prev["type"]) == "file")).fillna(False).to_numpy(bool)
    change = np.full(len(mine), "unchanged", dtype=object)
    change[changed | reshipped] = "modified"
    change[is_added] = "added"
    change[is_removed] = "removed"
    keep = ~is_removed
    before = ~is_added  # the version replaced (for a removed row: the version removed)
    df = pd.DataFrame({
        "path": mine["path"].astype("string"),
        "change": pd.Categorical(change, dtype=_CHANGE_DTYPE),
        "type": _strings(mine["type"]).where(keep, None),
        "size": mine["size"].astype("Int64").where(keep, None),
        "prev_type": _strings(prev["type"]).where(before, None),
        "prev_size": mine["prev_size"].astype("Int64"),
        **{c: flags[c].astype("boolean") for c in flags},
        "cause": _strings(mine["cause"]),
        "mode": mine["mode"].astype("Int64").where(keep, None),
        "prev_mode": prev["mode"].astype("Int64").where(before, None),
        "uid": mine["uid"].astype("Int64").where(keep, None),
        "gid": mine["gid"].astype("Int64").where(keep, None),
        "prev_uid": prev["uid"].astype("Int64").where(before, None),
        "prev_gid": prev["gid"].astype("Int64").where(before, None),
        "linkname": mine["linkname"].astype("string").where(keep, None),
        "prev_linkname": prev["linkname"].astype("string").where(before, None),
    })
    # A removed row's own columns describe the removed version: they are its prev_*.
    df.loc[is_removed, "prev_type"] = _strings(mine["type"])[is_removed]
    df.loc[is_removed, "prev_size"] = mine["size"].astype("Int64")[is_removed]
    # size_delta counts content bytes (see the module's doc): a hardlink adds none. When the stack up to
    # this layer holds hardlinks, the assembly's inodes say which row makes each file's bytes appear or go.
    content = None
    if ((ev["type"] == "hardlink") & (ev["layer"] <= index)).any():
        content = _layer_content_sizes(image, index, positions, df["size"], df["prev_size"])
    if content is None:
        content = _content(df["size"], df["type"]), _content(df["prev_size"], df["prev_type"])
    df["size_delta"] = _delta(*content)
    df["change"] = pd.Categorical(_label(df["change"].astype(object), df["size_delta"]), dtype=_CHANGE_DTYPE)
    if not include_unchanged:
        df = df[df["change"] != "unchanged"].reset_index(drop=True)
    out = LayerDiff(df)
    created_by = image.layers["created_by"].iloc[index] if len(image.layers) > index else None
    out.ocilens_title = (f"layer {index} of {image.reference}"
                         + (f": {created_by}" if isinstance(created_by, str) and created_by else ""))
    return out


def _files_diff(a: pd.DataFrame, b: pd.DataFrame, include_unchanged: bool) -> pd.DataFrame:
    cols = ["path", "type", "size", "mode", "uid", "gid", "linkname", "digest"]
    left = a[cols].set_index("path")
    right = b[cols].set_index("path")
    paths = left.index.union(right.index)
    old = left.reindex(paths)
    new = right.reindex(paths)
    in_old = paths.isin(left.index)
    in_new = paths.isin(right.index)
    flags = _compare(new, old)
    both = in_old & in_new
    for col in flags:
        flags.loc[~both, col] = pd.NA
    changed = flags[[f"{x}_changed" for x in _ATTRS]].fillna(False).any(axis=1)
    change = pd.Series("unchanged", index=paths, dtype="object")
    change[both & changed.to_numpy()] = "modified"
    change[in_new & ~in_old] = "added"
    change[in_old & ~in_new] = "removed"
    df = pd.DataFrame({
        "path": pd.array(paths, dtype="string"),
        "change": pd.Categorical(change.to_numpy(), dtype=_CHANGE_DTYPE),
        "type": _strings(new["type"]).array,
        "size": new["size"].astype("Int64").array,
        "prev_type": _strings(old["type"]).array,
        "prev_size": old["size"].astype("Int64").array,
        **{c: flags[c].astype("boolean").array for c in flags},
        "mode": new["mode"].astype("Int64").array, "prev_mode": old["mode"].astype("Int64").array,
        "uid": new["uid"].astype("Int64").array, "gid": new["gid"].astype("Int64").array,
        "prev_uid": old["uid"].astype("Int64").array, "prev_gid": old["gid"].astype("Int64").array,
        "linkname": new["linkname"].astype("string").array, "prev_linkname": old["linkname"].astype("string").array,
    })
    # Content bytes: each final tree has one "file" row per inode, which carries its bytes; its other
    # names are "hardlink" rows, which carry none.
    df["size_delta"] = _delta(_content(new["size"], new["type"]), _content(old["size"], old["type"])).array
    df["change"] = pd.Categorical(_label(df["change"].astype(object), df["size_delta"]), dtype=_CHANGE_DTYPE)
    if not include_unchanged:
        df = df[df["change"] != "unchanged"]
    return df.reset_index(drop=True)


def _config_diff(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    ca, cb = a.get("config") or {}, b.get("config") or {}
    rows = []
    for key in CONFIG_FIELDS:
        va, vb = ca.get(key), cb.get(key)
        if va != vb:
            rows.append((key, json.dumps(va, sort_keys=True), json.dumps(vb, sort_keys=True)))
    for key in ("os", "architecture", "variant", "author"):
        if a.get(key) != b.get(key):
            rows.append((key, json.dumps(a.get(key)), json.dumps(b.get(key))))
    return pd.DataFrame({"field": pd.array([r[0] for r in rows], dtype="string"),
                         "a": pd.array([r[1] for r in rows], dtype="string"),
                         "b": pd.array([r[2] for r in rows], dtype="string")})


def _history_diff(a: list[str], b: list[str]) -> pd.DataFrame:
    rows = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            left = a[i1 + k] if i1 + k < i2 else None
            right = b[j1 + k] if j1 + k < j2 else None
            # A replacement pairs steps while both sides have one; the rest were removed or added.
            rows.append(("changed" if left is not None and right is not None else
                         "removed" if right is None else "added", left, right))
    return pd.DataFrame({"change": pd.array([r[0] for r in rows], dtype="string"),
                         "a": pd.array([r[1] for r in rows], dtype="string"),
                         "b": pd.array([r[2] for r in rows], dtype="string")})


@dataclass
class ImageDiff:
    """Two images compared: final-tree ``files``, ``shared_layers`` by digest (the same download),
    ``shared_content_layers`` by ``diff_id`` (the same content, however each image ships it: a gzip and a zstd
    copy, an engine's uncompressed layer and a registry's gzip one), ``config`` and ``history``."""

    a: "Image"
    b: "Image"
    files: pd.DataFrame
    shared_layers: pd.DataFrame
    config: pd.DataFrame
    history: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.files.empty and self.config.empty and self.history.empty

    @cached_property
    def packages(self) -> pd.DataFrame:
        """Packages (dpkg, apk, rpm, Python, npm) added, removed, upgraded or downgraded from ``a`` to
        ``b``, with versions, files, bytes and ``size_delta`` (see ``ocilens.packages.diff_packages``)."""
        from .packages import package_diff

        return package_diff(self.a, self.b)

    @cached_property
    def shared_content_layers(self) -> pd.DataFrame:
        """The layers of ``a`` whose content ``b`` has too, by ``diff_id`` (the digest of the uncompressed tar,
        from each config): ``diff_id``, ``layer_a``, ``layer_b`` (its first position in ``b``), ``digest_a``,
        ``digest_b`` (the blobs, equal only when both images ship the same bytes), ``uncompressed_size``."""
        return shared_content(self.a.layers, self.b.layers)

    def summary(self) -> dict[str, int]:
        f = self.files
        counts = f["change"].value_counts()
        return {
            "added": int(counts.get("added", 0)),
            "modified": int(counts.get("modified", 0)),
            "removed": int(counts.get("removed", 0)),
            "size_delta": int(f["size_delta"].sum()) if len(f) else 0,
            "shared_layers": int(len(self.shared_layers)),
            "shared_content_layers": int(len(self.shared_content_layers)),
            "config_changes": int(len(self.config)),
            "history_changes": int(len(self.history)),
        }

    def header(self) -> dict[str, Any]:
        """The diff's headline, as every surface shows it (CLI, report, notebook): ``changes`` (the counts,
        ``change_counts``), ``weight`` (the bytes the changes write or remove: what the diff's tree adds up),
        ``net`` (the size change, signed), ``net_bytes`` and ``shared`` (layers shared by digest and by content)."""
        from .html import human, signed
        from .tree import Tree, diff_entries

        net = int(self.files["size_delta"].sum()) if len(self.files) else 0
        s = self.summary()
        shared, by_content = s["shared_layers"], s["shared_content_layers"]
        return {"changes": counts_text(change_counts(self.files)), "weight": human(Tree(diff_entries(self)).total_bytes),
                "net": signed(net), "net_bytes": net,
                "shared": (f"{shared} layer{'s' if shared != 1 else ''} shared by digest (the same download), "
                           f"{by_content} by content (diff_id)")}

    def headline(self) -> str:
        """The header as one line: ``3 added, 1 modified, 0 removed: 130.8 kB of files written or removed, a
        net size change of -122.0 kB; 4 layers shared by digest ...``."""
        h = self.header()
        return (f"{h['changes']}: {h['weight']} of files written or removed, a net size change of {h['net']}; "
                f"{h['shared']}")

    def _repr_html_(self) -> str:
        from .html import CSS, esc, human, signed, svg_of, table
        from .packages.show import package_diff_html
        from .plots import diff_sizes

        s = self.summary()
        f = self.files.reindex(self.files["size_delta"].abs().sort_values(ascending=False).index)
        return (f"<style>{CSS}</style><div class=\"ocilens\"><b>{esc(self.a.reference)} → {esc(self.b.reference)}</b>"
                f"<p>{esc(self.headline())}; {s['config_changes']} config and {s['history_changes']} history "
                "changes</p>"
                + svg_of(lambda ax: diff_sizes(self, ax), size=(8, 3))
                + table(f, ["change", "path", "prev_size", "size", "size_delta"], formats={"prev_size": human,
                        "size": human, "size_delta": signed}, numeric=["prev_size", "size", "size_delta"],
                        mono=["path"], limit=15)
                + (package_diff_html(self.packages, 15) if len(self.packages) else "")
                + "</div>")

    @property
    def plot(self) -> "Any":
        """``diff.plot()`` draws the largest size changes (``ax=`` in, Axes out)."""
        from .plots import diff_sizes

        return lambda ax=None, top=15: diff_sizes(self, ax, top)

    def explore(self, **options: Any) -> "DiffExplorer":
        """A notebook widget to browse the changes as one directory tree with sizes (the explorer's tree,
        over the two final trees). Options: ``kinds``, ``search``, ``sort``, ``rows``."""
        from .explore import DiffExplorer

        return DiffExplorer(self, **options)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"<ocilens.ImageDiff {self.a.reference} -> {self.b.reference}: {s['added']} added, "
                f"{s['modified']} modified, {s['removed']} removed, {s['size_delta']:+,} B; "
                f"{s['shared_layers']} shared layers>")


def shared_content(la: pd.DataFrame, lb: pd.DataFrame) -> pd.DataFrame:
    """The rows of the ``layers`` frame ``la`` whose ``diff_id`` ``lb`` has too (see
    ``ImageDiff.shared_content_layers``)."""
    pos_b: dict[str, int] = {}
    for i, d in enumerate(lb["diff_id"]):
        if isinstance(d, str) and d:
            pos_b.setdefault(d, i)
    rows = [(d, i, pos_b[d]) for i, d in enumerate(la["diff_id"]) if isinstance(d, str) and d in pos_b]
    return pd.DataFrame({
        "diff_id": pd.array([r[0] for r in rows], dtype="string"),
        "layer_a": pd.array([r[1] for r in rows], dtype="Int16"),
        "layer_b": pd.array([r[2] for r in rows], dtype="Int16"),
        "digest_a": pd.array([str(la["digest"].iloc[r[1]]) for r in rows], dtype="string"),
        "digest_b": pd.array([str(lb["digest"].iloc[r[2]]) for r in rows], dtype="string"),
        "uncompressed_size": pd.array([la["uncompressed_size"].iloc[r[1]] for r in rows], dtype="Int64"),
    })


def image_diff(a: "Image", b: "Image", *, include_unchanged: bool = False) -> ImageDiff:
    """Compare two images: ``a`` is the old one, ``b`` the new one."""
    la, lb = a.layers, b.layers
    pos_b: dict[str, int] = {}
    for i, d in enumerate(lb["digest"]):
        pos_b.setdefault(d, i)
    shared = [(d, i, pos_b[d], int(la["compressed_size"].iloc[i])) for i, d in enumerate(la["digest"]) if d in pos_b]
    shared_df = pd.DataFrame({"digest": pd.array([s[0] for s in shared], dtype="string"),
                              "layer_a": pd.array([s[1] for s in shared], dtype="Int16"),
                              "layer_b": pd.array([s[2] for s in shared], dtype="Int16"),
                              "compressed_size": pd.array([s[3] for s in shared], dtype="Int64")})
    hist_a = [str(x) for x in a.history["created_by"].fillna("")]
    hist_b = [str(x) for x in b.history["created_by"].fillna("")]
    return ImageDiff(a=a, b=b, files=_files_diff(a.files, b.files, include_unchanged), shared_layers=shared_df,
                     config=_config_diff(a.config, b.config), history=_history_diff(hist_a, hist_b))
