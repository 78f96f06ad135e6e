"""The package DataFrames: ``img.packages``, the ``package`` columns of ``files`` and ``events``, waste by
package, the packages present after any layer, and package diffs (two images, or two layers)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..bloat import WASTE_CAUSES
from .model import ECOSYSTEM_DTYPE, FATE_DTYPE, PackageModel, compare_versions, model_of
from .python import canonical_name

if TYPE_CHECKING:
    from ..image import Image

__all__ = ["add_package_columns", "packages_frame", "packages_at", "package_causes", "waste_by_package",
           "waste_by_ecosystem", "diff_packages", "package_diff", "layer_package_diff", "PACKAGE_COLUMNS",
           "CHANGES"]

PACKAGE_COLUMNS = ("package", "ecosystem", "package_id")
CHANGES = ("added", "removed", "upgraded", "downgraded", "changed", "unchanged")
_CHANGE_DTYPE = pd.CategoricalDtype(CHANGES)
_ECO_CODE = {e: i for i, e in enumerate(ECOSYSTEM_DTYPE.categories)}
_CAUSES = WASTE_CAUSES
# Documentation a package installs that images rarely need (dpkg's path-exclude, apk's -doc split, rpm's
# --excludedocs drop it): docs, man and info pages, translations.
DOC_PATHS = r"^/usr/(?:local/)?share/(?:doc|man|info|locale|gtk-doc|help)/"
# A development package (headers, static libraries, pkg-config files): usually needed only to build.
DEV_NAMES = re.compile(r"-(?:dev|devel|headers)$|^linux-libc-dev$")


def _owner_columns(model: PackageModel, ids: np.ndarray) -> dict[str, object]:
    """The three owner columns for rows whose owner record ids are ``ids`` (-1: unowned)."""
    recs = model.records
    names = np.array([r.package.name for r in recs] + [None], dtype=object)
    codes = np.array([_ECO_CODE[r.package.ecosystem] for r in recs] + [-1], dtype=np.int8)
    missing = ids < 0
    return {
        "package": pd.array(names[ids], dtype="string"),
        "ecosystem": pd.Categorical.from_codes(codes[ids], dtype=ECOSYSTEM_DTYPE),
        "package_id": pd.arrays.IntegerArray(np.where(missing, 0, ids).astype(np.int32), missing),
    }


def _assign(df: pd.DataFrame, cols: dict[str, object]) -> pd.DataFrame:
    for name, col in cols.items():
        df[name] = col
    return df


def add_package_columns(image: "Image", df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Add ``package`` (the owner's name; NA = no database claims the path), ``ecosystem`` and
    ``package_id`` (its row in ``img.packages``) to ``image.files`` (``kind="files"``: the final owner) or
    ``image.events`` (``kind="events"``: the owner at that layer; for a whiteout, of the version removed).
    Directories are never owned (packages share them). Modifies ``df`` in place and returns it."""
    model = model_of(image)
    n = len(df)
    if model.empty or not n:
        return _assign(df, _owner_columns(model, np.full(n, -1, dtype=np.int64)))
    paths = df["path"].to_numpy(dtype=object)
    skip = (df["type"] == "dir").to_numpy(dtype=bool)
    if kind == "files":
        layers = np.full(n, model.n_layers - 1, dtype=np.int64)
    elif kind == "events":
        layer = df["layer"].to_numpy(dtype=np.int64)
        prev = df["prev_layer"].fillna(-1).to_numpy(dtype=np.int64)
        layers = np.where((df["event"] == "whited_out").to_numpy(dtype=bool), prev, layer)
    else:
        raise ValueError(f"kind must be 'files' or 'events', not {kind!r}")
    return _assign(df, _owner_columns(model, model.owner_ids(paths, layers, skip)))


def package_causes(image: "Image") -> pd.DataFrame:
    """``bloat().causes`` with the owner of each wasted version at the layer that shipped it:
    ``package``, ``ecosystem``, ``package_id`` (NA: no database claimed it)."""
    causes = image.bloat().causes.copy()
    model = model_of(image)
    ids = model.owner_ids(causes["path"].to_numpy(dtype=object), causes["layer"].to_numpy(dtype=np.int64),
                          np.zeros(len(causes), dtype=bool)) if len(causes) else np.zeros(0, dtype=np.int64)
    return _assign(causes, _owner_columns(model, ids))


def packages_frame(image: "Image") -> pd.DataFrame:
    """One row per version of a package that any layer installed (index: ``package_id``)."""
    model = model_of(image)
    recs = model.records
    n = len(recs)
    files = image.files
    pid = files["package_id"]
    owned = pid.notna().to_numpy(dtype=bool)
    nondir = (files["type"] != "dir").to_numpy(dtype=bool)
    regular = (files["type"] == "file").to_numpy(dtype=bool)
    ids = pid.fillna(-1).to_numpy(dtype=np.int64)
    sizes = files["size"].fillna(0).to_numpy(dtype=np.int64)
    nfiles = np.bincount(ids[owned & nondir], minlength=n)[:n] if n else np.zeros(0, dtype=np.int64)
    nbytes = (np.bincount(ids[owned & regular], weights=sizes[owned & regular], minlength=n)[:n]
              if n else np.zeros(0))
    docs = owned & regular & files["path"].str.match(DOC_PATHS).fillna(False).to_numpy(dtype=bool)
    doc_bytes = np.bincount(ids[docs], weights=sizes[docs], minlength=n)[:n] if n else np.zeros(0)
    wasted_files = np.zeros(n, dtype=np.int64)
    wasted_bytes = np.zeros(n, dtype=np.int64)
    if n:
        causes = package_causes(image)
        c_ids = causes["package_id"].fillna(-1).to_numpy(dtype=np.int64)
        c_sizes = causes["size"].fillna(0).to_numpy(dtype=np.int64)
        keep = c_ids >= 0
        wasted_files = np.bincount(c_ids[keep], minlength=n)[:n]
        wasted_bytes = np.bincount(c_ids[keep], weights=c_sizes[keep], minlength=n)[:n].astype(np.int64)
    pk = [r.package for r in recs]
    df = pd.DataFrame({
        "ecosystem": pd.Categorical([p.ecosystem for p in pk], dtype=ECOSYSTEM_DTYPE),
        "name": pd.array([p.name for p in pk], dtype="string"),
        "version": pd.array([p.version for p in pk], dtype="string"),
        "architecture": pd.array([p.architecture for p in pk], dtype="string"),
        "location": pd.array([p.location for p in pk], dtype="string"),
        "layer": pd.array([r.layer for r in recs], dtype="Int16"),
        "removed_layer": pd.array([r.removed_layer for r in recs], dtype="Int16"),
        "fate": pd.Categorical([r.fate for r in recs], dtype=FATE_DTYPE),
        "next_version": pd.array([r.next_version for r in recs], dtype="string"),
        "database_removed_layer": pd.array([r.database_removed_layer for r in recs], dtype="Int16"),
        "files": pd.array(np.asarray(nfiles, dtype=np.int64), dtype="Int64"),
        "bytes": pd.array(np.asarray(nbytes, dtype=np.int64), dtype="Int64"),
        "wasted_files": pd.array(np.asarray(wasted_files, dtype=np.int64), dtype="Int64"),
        "wasted_bytes": pd.array(np.asarray(wasted_bytes, dtype=np.int64), dtype="Int64"),
        "doc_bytes": pd.array(np.asarray(doc_bytes, dtype=np.int64), dtype="Int64"),
        "dev": np.fromiter((bool(DEV_NAMES.search(p.name)) and p.ecosystem in ("dpkg", "apk", "rpm") for p in pk),
                           dtype=bool, count=n),
        "installed_size": pd.array([p.installed_size for p in pk], dtype="Int64"),
        "source": pd.array([p.source for p in pk], dtype="string"),
    })
    df.index = pd.RangeIndex(n, name="package_id")
    return df


def _tree_at(image: "Image", layer: int) -> dict:
    """path -> node after ``layer``, replayed from the events."""
    state: dict = {}
    for ev in image.assembly.events:
        if ev[0] > layer:
            break
        if ev[2] == "whited_out":
            state.pop(ev[1], None)
        else:
            state[ev[1]] = ev[3]
    return state


_AT_COLUMNS = ["ecosystem", "name", "version", "architecture", "location", "layer", "files", "bytes",
               "installed_size", "source"]


def packages_at(image: "Image", layer: int | None = None) -> pd.DataFrame:
    """The packages present after ``layer`` (default: the last, i.e. the final image), with the files and
    bytes they own at that point (index: ``package_id``). ``layer=-1``: before the first layer (none)."""
    n_layers = len(image.scans)
    if layer is None or layer >= n_layers - 1:
        df = image.packages
        return df.loc[df["fate"] == "present", _AT_COLUMNS]
    base = image.packages
    model = model_of(image)
    present = model.present(layer)
    out = base.loc[present, _AT_COLUMNS].copy()
    if not present:
        return out
    tree = _tree_at(image, layer)
    owners = model.owners(model.state_index(layer))
    assert owners is not None  # a package is present, so a state holds
    nfiles: dict[int, int] = {}
    nbytes: dict[int, int] = {}
    for path, node in tree.items():
        if node.type == "d":
            continue
        rid = owners(path)
        if rid < 0:
            continue
        nfiles[rid] = nfiles.get(rid, 0) + 1
        if node.type == "f":
            nbytes[rid] = nbytes.get(rid, 0) + node.size
    out["files"] = pd.array([nfiles.get(r, 0) for r in out.index], dtype="Int64")
    out["bytes"] = pd.array([nbytes.get(r, 0) for r in out.index], dtype="Int64")
    return out


def _match_key(eco: str, name: str) -> str:
    return canonical_name(name) if eco == "python" else name


def diff_packages(a: pd.DataFrame, b: pd.DataFrame, *, include_unchanged: bool = False) -> pd.DataFrame:
    """Compare two package lists (``packages_at`` frames; ``a`` old, ``b`` new): one row per package
    added, removed, upgraded, downgraded or ``changed`` (a different version string of equal order),
    with versions, files, bytes and ``size_delta``. A package is matched by ecosystem, name and
    architecture (at the same location first: npm installs one name in many places)."""
    def groups(df: pd.DataFrame) -> dict[tuple, list[Any]]:
        out: dict[tuple, list[Any]] = {}
        for r in df.itertuples(index=False):
            arch = "" if pd.isna(r.architecture) else r.architecture
            out.setdefault((str(r.ecosystem), _match_key(str(r.ecosystem), r.name), arch), []).append(r)
        for rows in out.values():
            rows.sort(key=lambda r: r.location)
        return out

    ga, gb = groups(a), groups(b)
    rows: list[tuple] = []
    for key in sorted(set(ga) | set(gb)):
        olds, news = list(ga.get(key, [])), list(gb.get(key, []))
        pairs: list[tuple[Any, Any]] = []
        for o in list(olds):  # same location first
            same = next((x for x in news if x.location == o.location), None)
            if same is not None:
                pairs.append((o, same))
                olds.remove(o)
                news.remove(same)
        pairs += list(zip(olds, news))
        pairs += [(o, None) for o in olds[len(news):]] + [(None, x) for x in news[len(olds):]]
        for o, x in pairs:
            if o is None:
                change = "added"
            elif x is None:
                change = "removed"
            elif o.version == x.version:
                change = "unchanged"
            else:
                cmp = compare_versions(key[0], x.version, o.version)
                change = "upgraded" if cmp > 0 else "downgraded" if cmp < 0 else "changed"
            ref = x if x is not None else o
            rows.append((key[0], ref.name, key[2] or None, change,
                         None if o is None else o.version, None if x is None else x.version,
                         None if o is None else o.location, None if x is None else x.location,
                         0 if o is None else int(o.files), 0 if x is None else int(x.files),
                         0 if o is None else int(o.bytes), 0 if x is None else int(x.bytes)))
    cols = ["ecosystem", "name", "architecture", "change", "version_a", "version_b", "location_a", "location_b",
            "files_a", "files_b", "bytes_a", "bytes_b"]
    data: list[Any] = list(zip(*rows)) if rows else [[] for _ in cols]
    df = pd.DataFrame({
        "ecosystem": pd.Categorical(data[0], dtype=ECOSYSTEM_DTYPE),
        **{c: pd.array(data[k], dtype="string") for k, c in enumerate(cols) if c in (
            "name", "architecture", "version_a", "version_b", "location_a", "location_b")},
        "change": pd.Categorical(data[3], dtype=_CHANGE_DTYPE),
        **{c: pd.array(data[k], dtype="Int64") for k, c in enumerate(cols) if c in (
            "files_a", "files_b", "bytes_a", "bytes_b")},
    })[cols]
    df["size_delta"] = (df["bytes_b"] - df["bytes_a"]).astype("Int64")
    if not include_unchanged:
        df = df[df["change"] != "unchanged"]
    order = df["size_delta"].abs().to_numpy(dtype=np.int64)
    df = df.iloc[np.lexsort((df["name"].to_numpy(dtype=object), -order, df["change"].cat.codes.to_numpy()))]
    return df.reset_index(drop=True)


def package_diff(a: "Image", b: "Image", *, include_unchanged: bool = False) -> pd.DataFrame:
    """The packages of image ``a`` (old) against image ``b`` (new), final trees."""
    return diff_packages(packages_at(a), packages_at(b), include_unchanged=include_unchanged)


def layer_package_diff(image: "Image", layer: int, base: int | None = None, *,
                       include_unchanged: bool = False) -> pd.DataFrame:
    """What the layers after ``base`` up to ``layer`` did to the packages (default ``base``: the layer
    below, so the diff is what ``layer`` itself did)."""
    n = len(image.scans)
    if not -n <= layer < n:
        from ..errors import AnalysisError

        raise AnalysisError(f"{image.reference}: no layer {layer}; the image has {n} layers (0..{n - 1})",
                            reference=image.reference)
    layer %= n
    base = layer - 1 if base is None else base
    return diff_packages(packages_at(image, base), packages_at(image, layer), include_unchanged=include_unchanged)


def waste_by_package(image: "Image") -> pd.DataFrame:
    """Wasted bytes grouped by the package that shipped each wasted version (one row per package version,
    plus one row with ``name`` NA for the waste no package claims): files, bytes, bytes per cause, and the
    package's layers and fate. Largest first."""
    causes = package_causes(image)
    pk = image.packages
    key = causes["package_id"].fillna(-1).astype("int64")
    g = causes.assign(_k=key.to_numpy()).groupby("_k")
    out = pd.DataFrame({"files": g.size(), "bytes": g["size"].sum()})
    for cause in _CAUSES:
        out[cause] = causes["size"].where(causes["cause"] == cause, 0).groupby(key.to_numpy()).sum()
    out = out.sort_values(["bytes"], ascending=False, kind="stable")
    ids = out.index.to_numpy()
    info = pk.reindex(ids)
    df = pd.DataFrame({
        "ecosystem": pd.Categorical(info["ecosystem"].to_numpy(), dtype=ECOSYSTEM_DTYPE),
        "name": pd.array(info["name"].to_numpy(), dtype="string"),
        "version": pd.array(info["version"].to_numpy(), dtype="string"),
        "package_id": pd.array([None if i < 0 else int(i) for i in ids], dtype="Int32"),
        "layer": pd.array(info["layer"].to_numpy(), dtype="Int16"),
        "removed_layer": pd.array(info["removed_layer"].to_numpy(), dtype="Int16"),
        "fate": pd.Categorical(info["fate"].to_numpy(), dtype=FATE_DTYPE),
        "files": pd.array(out["files"].to_numpy(dtype=np.int64), dtype="Int64"),
        "bytes": pd.array(out["bytes"].to_numpy(dtype=np.int64), dtype="Int64"),
        **{c: pd.array(out[c].fillna(0).to_numpy(dtype=np.int64), dtype="Int64") for c in _CAUSES},
    })
    return df.reset_index(drop=True)


def waste_by_ecosystem(image: "Image") -> pd.DataFrame:
    """Wasted bytes per ecosystem (``ecosystem`` NA: versions no package claims), with the number of
    package versions carrying waste."""
    by = waste_by_package(image)
    g = by.groupby("ecosystem", observed=True, dropna=False)
    out = pd.DataFrame({"packages": g["package_id"].count(), "files": g["files"].sum(), "bytes": g["bytes"].sum()})
    out = out.reset_index().sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)
    out["packages"] = out["packages"].astype("Int64")
    return out
