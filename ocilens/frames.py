"""The DataFrame schemas: events, files, layers, history and anomalies, built from the assembly.

Paths are ``string`` columns holding Python ``str``; a non-UTF-8 byte in a name appears as a lone
surrogate (``\\udcff`` for ``\\xff``), and ``os.fsencode(path)`` returns the original bytes.
"""

from __future__ import annotations

from itertools import compress, repeat
from operator import attrgetter, is_
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .assemble import Assembly, Node
from .manifest import Descriptor
from .scan import TYPE_NAMES, LayerScan

__all__ = ["events_frame", "files_frame", "layers_frame", "history_frame", "anomalies_frame",
           "EVENT_KINDS", "TYPES", "CAUSES"]

EVENT_KINDS = ("added", "overwritten", "whited_out")
TYPES = ("file", "dir", "symlink", "hardlink", "char", "block", "fifo")
CAUSES = ("whiteout", "opaque", "replaced")
_EVENT_DTYPE = pd.CategoricalDtype(EVENT_KINDS)
_EVENT_INDEX = {k: i for i, k in enumerate(EVENT_KINDS)}
_TYPE_DTYPE = pd.CategoricalDtype(TYPES)
_CAUSE_DTYPE = pd.CategoricalDtype(CAUSES)


def _times(seconds: Sequence[int]) -> pd.Series:
    arr = np.asarray(seconds, dtype="int64").astype("datetime64[s]")
    return pd.Series(arr).dt.tz_localize("UTC")


_TYPE_CODE_INDEX = {code: TYPES.index(name) for code, name in TYPE_NAMES.items()}


def _types(codes: Sequence[str]) -> pd.Categorical:
    """One-letter type codes -> the ``type`` category, built from integer codes (no per-row strings)."""
    index = _TYPE_CODE_INDEX
    return pd.Categorical.from_codes(np.fromiter(map(index.__getitem__, codes), dtype=np.int8, count=len(codes)),
                                     dtype=_TYPE_DTYPE)


def _ints(values: Sequence[int], dtype: str) -> pd.api.extensions.ExtensionArray:
    """A nullable integer column from a list with no None in it (fast: through numpy)."""
    return pd.array(np.asarray(values, dtype="int64"), dtype=dtype)


def _column(items: Sequence[Any], name: str) -> np.ndarray:
    """The integer attribute ``name`` of every item, as an int64 array (no list of a million ints on the way)."""
    return np.fromiter(map(attrgetter(name), items), dtype=np.int64, count=len(items))


def _optional_ints(items: Sequence[Any], name: str, dtype: str) -> pd.api.extensions.ExtensionArray:
    """The integer attribute ``name`` of each item, NA where the item is None, as a nullable ``dtype`` column."""
    missing = np.fromiter(map(is_, items, repeat(None)), dtype=bool, count=len(items))
    values = np.zeros(len(items), dtype=np.int64)
    present = [x for x in items if x is not None]
    values[~missing] = _column(present, name)
    return pd.arrays.IntegerArray(values.astype(pd.api.types.pandas_dtype(dtype).numpy_dtype), missing)


def _shares(scans: Sequence[LayerScan], node_layers: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """The share of its layer's blob of each node (``scans[layer].compressed[entry]``); 0 for a directory no
    entry made, or a scan without shares."""
    out = np.zeros(len(entries), dtype=np.int64)
    for layer, scan in enumerate(scans):
        if len(scan.compressed):
            pick = (node_layers == layer) & (entries >= 0)
            out[pick] = np.frombuffer(scan.compressed, dtype=np.int64)[entries[pick]]
    return out


def _node_columns(nodes: Sequence[Node]) -> tuple[np.ndarray, np.ndarray]:
    """The layer and entry number of each node, as arrays."""
    return _column(nodes, "layer"), _column(nodes, "entry")


def _whole_blobs(values: np.ndarray, layers: np.ndarray, blob_sizes: Sequence[int]) -> np.ndarray:
    """``values`` with each layer's remainder (the blob bytes of entries that left no row: a path added and
    removed in one layer, a duplicate) spread over that layer's rows pro rata, so each layer's rows add up to
    its blob's size exactly; a layer of rows with no bytes (only whiteouts) spreads it evenly."""
    out = values.copy()
    for layer, size in enumerate(blob_sizes):
        rows = np.flatnonzero(layers == layer)
        if not len(rows):
            continue
        have = int(out[rows].sum())
        short = int(size) - have
        if short == 0:
            continue
        base = out[rows].astype(np.float64)
        scaled = base * (size / have) if have > 0 else np.full(len(rows), size / len(rows))
        fixed = np.floor(scaled).astype(np.int64)
        rest = int(size - fixed.sum())
        if rest > 0:
            fixed[np.argsort(fixed - scaled, kind="stable")[:rest]] += 1
        out[rows] = fixed
    return out


def compressed_bytes(asm: Assembly, scans: Sequence[LayerScan]) -> np.ndarray:
    """The ``compressed_bytes`` of each event row: its share of its layer's blob (the download its bytes cost),
    each layer's rows adding up to the blob's size. A row whose layer did not write its node (a removal) has
    only what is spread over it."""
    ev = asm.events
    layers = np.asarray(ev.layer, dtype=np.int64)
    node_layers, entries = _node_columns(ev.node)
    own = np.where(node_layers == layers, _shares(scans, node_layers, entries), 0)
    return _whole_blobs(own, layers, [s.compressed_size for s in scans])


def events_frame(asm: Assembly, scans: Sequence[LayerScan] = ()) -> pd.DataFrame:
    """One row per path per layer that touched it (columns: docs/architecture.md "The tables").

    Columns are built one at a time from the event tuples and the nodes they hold, so only one temporary
    list of a million values is alive at once.
    """
    ev = asm.events
    n = len(ev)
    nodes, befores = ev.node, ev.before
    df = pd.DataFrame({
        "layer": _ints(ev.layer, "Int16"),
        "path": pd.array(ev.path, dtype="string"),
        "event": pd.Categorical.from_codes(np.fromiter(map(_EVENT_INDEX.__getitem__, ev.event), dtype=np.int8,
                                                       count=n), dtype=_EVENT_DTYPE),
        "type": _types(list(map(attrgetter("type"), nodes))),
        "size": _ints(_column(nodes, "size"), "Int64"),
        "mode": _ints(_column(nodes, "mode"), "Int64"),
        "uid": _ints(_column(nodes, "uid"), "Int64"),
        "gid": _ints(_column(nodes, "gid"), "Int64"),
        "mtime": _times(_column(nodes, "mtime")),
        "linkname": pd.array(list(map(attrgetter("linkname"), nodes)), dtype="string"),
        "digest": pd.array(list(map(attrgetter("digest"), nodes)), dtype="string"),
        "prev_layer": _optional_ints(befores, "layer", "Int16"),
        "prev_size": _optional_ints(befores, "size", "Int64"),
        "content_changed": pd.array(ev.content_changed, dtype="boolean"),
        "cause": pd.Categorical(ev.cause, dtype=_CAUSE_DTYPE),
        "implicit": _column(nodes, "entry") < 0,  # made by no entry
        "compressed_bytes": pd.array(compressed_bytes(asm, scans) if scans else np.zeros(n, np.int64),
                                     dtype="Int64"),
    }, copy=False)  # the columns are new: no second copy of a million rows each
    return df


def files_frame(asm: Assembly, scans: Sequence[LayerScan] = ()) -> pd.DataFrame:
    """The final tree, sorted by path (the root itself excluded)."""
    tree = asm.tree
    paths = sorted(tree)
    paths.remove("/")
    nodes = list(map(tree.__getitem__, paths))
    types = [n.type for n in nodes]
    links = [n.linkname for n in nodes]
    primary = asm.link_primaries(shared_only=True)
    origin = asm.inode_origin.nodes
    for k in np.flatnonzero(_column(nodes, "inode")).tolist():  # symlinks, devices and fifos keep their type
        n = nodes[k]
        if n.inode:
            if origin[n.inode] is n:
                continue  # a file where its entry put it: type "f", no link (the rows as built)
            # One name of each inode is its "file"; the others are "hardlink" rows naming it, as on disk.
            first = primary[n.inode]
            path = paths[k]
            types[k], links[k] = ("f", None) if first == path else ("h", first)
    node_layers, entries = _node_columns(nodes)
    df = pd.DataFrame({
        "path": pd.array(paths, dtype="string"),
        "type": _types(types),
        "size": _ints(_column(nodes, "size"), "Int64"),
        "mode": _ints(_column(nodes, "mode"), "Int64"),
        "uid": _ints(_column(nodes, "uid"), "Int64"),
        "gid": _ints(_column(nodes, "gid"), "Int64"),
        "mtime": _times(_column(nodes, "mtime")),
        "linkname": pd.array(links, dtype="string"),
        "digest": pd.array(list(map(attrgetter("digest"), nodes)), dtype="string"),
        "layer": _ints(node_layers, "Int16"),
        "implicit": entries < 0,  # made by no entry
        "compressed_bytes": pd.array(_shares(scans, node_layers, entries) if scans
                                     else np.zeros(len(nodes), np.int64), dtype="Int64"),
    }, copy=False)
    return df


def align_history(history: Sequence[dict[str, Any]], n_layers: int) -> list[int | None]:
    """For each history row, the layer it made (None for ``empty_layer`` rows, or rows past the layers)."""
    out: list[int | None] = []
    layer = 0
    for row in history:
        if row.get("empty_layer"):
            out.append(None)
        elif layer < n_layers:
            out.append(layer)
            layer += 1
        else:
            out.append(None)
    return out


def history_frame(config: dict[str, Any], n_layers: int) -> pd.DataFrame:
    """The config's history, each row with the layer it made (NA for empty-layer rows)."""
    history = list(config.get("history") or [])
    aligned = align_history(history, n_layers)
    return pd.DataFrame({
        "created": pd.to_datetime([h.get("created") for h in history], utc=True, errors="coerce", format="ISO8601"),
        "created_by": pd.array([h.get("created_by") for h in history], dtype="string"),
        "comment": pd.array([h.get("comment") for h in history], dtype="string"),
        "author": pd.array([h.get("author") for h in history], dtype="string"),
        "empty_layer": pd.array([bool(h.get("empty_layer")) for h in history], dtype="bool"),
        "layer": pd.array(aligned, dtype="Int16"),
    })


def layers_frame(asm: Assembly, scans: Sequence[LayerScan], descriptors: Sequence[Descriptor],
                 config: dict[str, Any], events: pd.DataFrame, *, same_stack: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """One row per layer: blob identity and sizes, event counts and bytes, waste, and its history row.

    ``same_stack``: the layers frame of an image with the same layer stack (tags of one build), whose content
    columns this one shares; only the columns of the image's own manifest and config are made anew."""
    if same_stack is not None:
        df = same_stack.copy()
        _image_columns(df, descriptors, config)
        return df
    n = len(scans)
    shipped, shipped_c = [0] * n, [0] * n
    for i, scan in enumerate(scans):
        regular = np.asarray(scan.types) == "f"
        shipped[i] = int(np.asarray(scan.sizes, dtype=np.int64)[regular].sum()) if len(regular) else 0
        if len(scan.compressed) == len(regular):
            shipped_c[i] = int(np.frombuffer(scan.compressed, dtype=np.int64)[regular].sum()) if len(regular) else 0
    # each visible file version once, for the layer that shipped it: a file where its entry put it counts
    # there; the other names of an inode count only when that original name is gone (no set of a million)
    origin, origin_paths, tree = asm.inode_origin.nodes, asm.inode_origin.paths, asm.tree
    nodes = list(tree.values())
    inodes = _column(nodes, "inode")
    where = np.flatnonzero(inodes).tolist()
    named = list(map(nodes.__getitem__, where))  # the nodes of files (hardlinked names too)
    named_inodes = inodes[where].tolist()
    own = list(map(is_, map(origin.__getitem__, named_inodes), named))  # at the name their entry made
    seen: list[Node] = list(compress(named, own))
    other_names = [inode for inode, o in zip(named_inodes, own) if not o]  # seen under another name only
    for inode in dict.fromkeys(other_names):
        if tree.get(origin_paths[inode]) is not origin[inode]:  # type: ignore[arg-type]
            seen.append(origin[inode])  # type: ignore[arg-type]
    node_layers, entries = _node_columns(seen)
    sizes = _column(seen, "size")
    visible = np.bincount(node_layers, weights=sizes, minlength=n).astype(np.int64).tolist()
    visible_c = np.bincount(node_layers, weights=_shares(scans, node_layers, entries),
                            minlength=n).astype(np.int64).tolist()
    counts = events.groupby(["layer", "event"], observed=False).size().unstack(fill_value=0)
    # three columns of the regular-file rows, not a copy of the whole events table (a million rows)
    regular = events.loc[events["type"] == "file", ["layer", "event", "size"]]
    nbytes = regular.groupby(["layer", "event"], observed=False)["size"].sum().unstack(fill_value=0)
    del regular
    df = pd.DataFrame({
        "layer": pd.array(range(n), dtype="Int16"),
        "digest": None, "diff_id": None, "media_type": None,  # the image's own (``_image_columns``)
        "compression": pd.array([s.format for s in scans], dtype="string"),
        "compressed_size": None,
        "uncompressed_size": pd.array([s.uncompressed_size for s in scans], dtype="Int64"),
        "entries": pd.array([s.members for s in scans], dtype="Int64"),
    })
    for kind in EVENT_KINDS:
        df[kind] = pd.array([int(counts.at[i, kind]) if i in counts.index else 0 for i in range(n)], dtype="Int64")
    for kind in EVENT_KINDS:
        df[f"{kind}_bytes"] = pd.array([int(nbytes.at[i, kind]) if i in nbytes.index else 0 for i in range(n)],
                                       dtype="Int64")
    df["shipped_bytes"] = pd.array(shipped, dtype="Int64")
    df["visible_bytes"] = pd.array(visible, dtype="Int64")
    df["wasted_bytes"] = df["shipped_bytes"] - df["visible_bytes"]
    df["shipped_compressed_bytes"] = pd.array(shipped_c, dtype="Int64")
    df["visible_compressed_bytes"] = pd.array(visible_c, dtype="Int64")
    df["wasted_compressed_bytes"] = df["shipped_compressed_bytes"] - df["visible_compressed_bytes"]
    _image_columns(df, descriptors, config)
    return df


def _image_columns(df: pd.DataFrame, descriptors: Sequence[Descriptor], config: dict[str, Any]) -> None:
    """The layers frame's columns that come from the image's manifest and config, not from the layers' content:
    blob identity and history (set in place; two tags of one build differ only here)."""
    n = len(df)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    history = list(config.get("history") or [])
    aligned = align_history(history, n)
    by_layer = {layer: history[k] for k, layer in enumerate(aligned) if layer is not None}
    df["digest"] = pd.array([d.digest for d in descriptors], dtype="string")
    df["diff_id"] = pd.array([diff_ids[i] if i < len(diff_ids) else None for i in range(n)], dtype="string")
    df["media_type"] = pd.array([d.media_type for d in descriptors], dtype="string")
    df["compressed_size"] = pd.array([d.size for d in descriptors], dtype="Int64")
    df["created_by"] = pd.array([by_layer.get(i, {}).get("created_by") for i in range(n)], dtype="string")
    df["created"] = pd.to_datetime([by_layer.get(i, {}).get("created") for i in range(n)], utc=True,
                                   errors="coerce", format="ISO8601")
    df["comment"] = pd.array([by_layer.get(i, {}).get("comment") for i in range(n)], dtype="string")


def anomalies_frame(asm: Assembly) -> pd.DataFrame:
    """Entries a runtime would handle specially or refuse: unsafe names, bad links, duplicates..."""
    rows = asm.anomalies
    return pd.DataFrame({
        "layer": pd.array([r[0] for r in rows], dtype="Int16"),
        "path": pd.array([r[1] for r in rows], dtype="string"),
        "kind": pd.array([r[2] for r in rows], dtype="string"),
        "detail": pd.array([r[3] for r in rows], dtype="string"),
    })
