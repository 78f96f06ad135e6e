"""The bloat audit: shipped, visible and wasted bytes, the cause of every wasted file version, the savings
still visible (duplicate content, well-known junk), and the fixes (``advice``: what to change in the build, and
the bytes and download each change saves). dive's numbers ride along for comparison.

Definitions (docs/layer-rules.md "Waste"): *shipped* is every regular file version in every layer (a hardlink ships no
bytes); *visible* is the final tree's regular files, each inode once; *wasted* = shipped - visible, each
lost version attributed to the layer that shipped it, with the cause and the layer that made it waste. Each is
given in file bytes and in download bytes (``compressed_bytes``: a file's share of its layer's blob).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import pandas as pd

from .dive import DiveNumbers, dive_numbers

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .image import Image
    from .scan import LayerScan

__all__ = ["Bloat", "bloat", "download_share", "WASTE_CAUSES", "JUNK_RULES"]

#: ``unappliable``: a file entry no runtime can apply (a parent is a file, a symlink loop, the root replaced by a
#: file): the assembly skips it, so it ships and is never visible.
WASTE_CAUSES = ("deleted_later", "overwritten", "metadata_only", "unappliable")
_CAUSE_DTYPE = pd.CategoricalDtype(WASTE_CAUSES)

# (kind, pattern on the absolute path): visible files a cleanup step usually removes.
JUNK_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((k, re.compile(p)) for k, p in (
    ("apt_cache", r"^/var/cache/apt/(archives/[^/]+\.deb|[^/]+\.bin)$"),
    ("apt_lists", r"^/var/lib/apt/lists/[^/]+_(Packages|Sources|Release|InRelease|Translation-[^/]+)(\.[a-z0-9]+)?$"),
    ("apk_cache", r"^/var/cache/apk/[^/]+$"),
    ("dnf_yum_cache", r"^/var/cache/(dnf|yum)/.+"),
    ("pip_cache", r"^/(root|home/[^/]+)/\.cache/pip/.+"),
    ("npm_cache", r"^/(root|home/[^/]+)/\.npm/_cacache/.+"),
    ("go_build_cache", r"^/(root|home/[^/]+)/\.cache/go-build/.+"),
    ("tmp", r"^/(tmp|var/tmp)/.+"),
    ("logs", r"^/var/log/.+\.(log|gz|[0-9])$"),
))
_JUNK = re.compile("|".join(f"(?P<{kind}>{rx.pattern})" for kind, rx in JUNK_RULES))
_PYC = re.compile(r"^(?P<dir>.*)/__pycache__/(?P<mod>[^/.]+)\.[^/]*\.pyc$")


@dataclass
class Bloat:
    """The audit of one image. Frames are computed on first use."""

    image: "Image" = field(repr=False)
    #: The audit of an image with the same layers, whose file-only results (dive's numbers, duplicates,
    #: junk) this one shares: a fleet's tags of one stack differ only in their config.
    same_files_as: "Bloat | None" = field(default=None, repr=False)

    @cached_property
    def _same_waste(self) -> "Bloat | None":
        """``same_files_as`` when its image also has the same layer history (each layer's ``created_by``): then
        its waste, causes and advice are this image's too (tags of one build); else None."""
        twin = self.same_files_as
        if twin is None:
            return None
        cols = ["digest", "created_by"]
        return twin if self.image.layers[cols].equals(twin.image.layers[cols]) else None

    @cached_property
    def causes(self) -> pd.DataFrame:
        """One row per wasted file version: where it was, who shipped it, why it is waste, who made it so, and
        its download cost (``compressed_bytes``, its share of its layer's blob). The sizes add up to
        ``wasted_bytes`` and the download costs to ``wasted_download_bytes``."""
        if self._same_waste is not None:
            return self._same_waste.causes
        img = self.image
        asm = img.assembly
        layers = img.layers
        created_by = {int(r.layer): r.created_by for r in layers.itertuples(index=False)}
        rows: list[tuple] = []
        for inode, (by_layer, cause) in asm.fates.items():
            layer, entry, path = asm.inode_origin[inode]
            scan = img.scans[layer]
            rows.append((path, layer, scan.sizes[entry], scan.digests[entry], cause, by_layer,
                         download_share(scan, entry)))
        rows.extend(self._unappliable())
        rows.sort(key=lambda r: (-r[2], r[0]))
        df = pd.DataFrame({
            "path": pd.array([r[0] for r in rows], dtype="string"),
            "layer": pd.array([r[1] for r in rows], dtype="Int16"),
            "size": pd.array([r[2] for r in rows], dtype="Int64"),
            "digest": pd.array([r[3] for r in rows], dtype="string"),
            "cause": pd.Categorical([r[4] for r in rows], dtype=_CAUSE_DTYPE),
            "by_layer": pd.array([r[5] for r in rows], dtype="Int16"),
        })
        df["created_by"] = pd.array([created_by.get(r[1]) for r in rows], dtype="string")
        df["by_created_by"] = pd.array([created_by.get(r[5]) for r in rows], dtype="string")
        df["compressed_bytes"] = pd.array([r[6] for r in rows], dtype="Int64")
        return df

    def _unappliable(self) -> list[tuple]:
        """The file entries the assembly skipped (``parent_not_directory``, ``symlink_loop``,
        ``root_not_directory``): shipped, never visible. Every applied file entry made an inode, and inodes are
        counted per layer, so only a layer with more file entries than inodes is searched."""
        img = self.image
        nodes = img.assembly.inode_origin.nodes
        made = Counter(n.layer for n in nodes if n is not None)
        rows: list[tuple] = []
        for layer, scan in enumerate(img.scans):
            if scan.types.count("f") == made.get(layer, 0):
                continue
            applied = {n.entry for n in nodes if n is not None and n.layer == layer}
            for entry, t in enumerate(scan.types):
                if t == "f" and entry not in applied:
                    rows.append((scan.paths[entry], layer, scan.sizes[entry], scan.digests[entry], "unappliable",
                                 layer, download_share(scan, entry)))
        return rows

    @property
    def shipped_bytes(self) -> int:
        return int(self.image.layers["shipped_bytes"].sum())

    @property
    def visible_bytes(self) -> int:
        return int(self.image.layers["visible_bytes"].sum())

    @property
    def wasted_bytes(self) -> int:
        return self.shipped_bytes - self.visible_bytes

    @property
    def shipped_download_bytes(self) -> int:
        """The download cost of every file version shipped (``layers.shipped_compressed_bytes``)."""
        return int(self.image.layers["shipped_compressed_bytes"].sum())

    @property
    def visible_download_bytes(self) -> int:
        """The download cost of the final tree's files (``layers.visible_compressed_bytes``)."""
        return int(self.image.layers["visible_compressed_bytes"].sum())

    @property
    def wasted_download_bytes(self) -> int:
        """The download cost of the waste (``layers.wasted_compressed_bytes``): what pulling it costs."""
        return int(self.image.layers["wasted_compressed_bytes"].sum())

    @property
    def efficiency(self) -> float:
        """visible / shipped (1.0 for an image that ships no bytes)."""
        shipped = self.shipped_bytes
        return 1.0 if shipped == 0 else self.visible_bytes / shipped

    @cached_property
    def per_layer(self) -> pd.DataFrame:
        """Per layer: shipped, visible and wasted bytes (and their download cost), wasted bytes by cause, the
        waste this layer's instruction made of lower layers' files, and ``created_by``."""
        if self._same_waste is not None:
            return self._same_waste.per_layer
        layers = self.image.layers
        df = layers[["layer", "digest", "shipped_bytes", "visible_bytes", "wasted_bytes", "shipped_compressed_bytes",
                     "visible_compressed_bytes", "wasted_compressed_bytes", "created_by"]].copy()
        by = self.causes.groupby(["layer", "cause"], observed=False)["size"].sum().unstack(fill_value=0)
        for cause in WASTE_CAUSES:
            col = by[cause] if cause in by.columns else pd.Series(dtype="Int64")
            df[f"wasted_{cause}"] = pd.array([int(col.get(i, 0)) for i in range(len(df))], dtype="Int64")
        made = self.causes.groupby("by_layer")["size"].sum()
        df["waste_made"] = pd.array([int(made.get(i, 0)) for i in range(len(df))], dtype="Int64")
        return df

    @cached_property
    def by_cause(self) -> pd.DataFrame:
        """Wasted bytes and versions per cause and per instruction that made the waste."""
        if self._same_waste is not None:
            return self._same_waste.by_cause
        c = self.causes
        if c.empty:
            return pd.DataFrame({"cause": pd.Categorical([], dtype=_CAUSE_DTYPE), "by_layer": pd.array([], "Int16"),
                                 "by_created_by": pd.array([], "string"), "files": pd.array([], "Int64"),
                                 "bytes": pd.array([], "Int64")})
        g = c.groupby(["cause", "by_layer", "by_created_by"], observed=True, dropna=False)
        out = g["size"].agg(files="count", bytes="sum").reset_index()
        return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)

    @cached_property
    def by_package(self) -> pd.DataFrame:
        """Wasted bytes by the package that shipped each wasted version (its owner at that layer): one row
        per package version, and one with ``name`` NA for the waste no package database claims; bytes
        per cause, the package's layers and fate. See ``ocilens.packages``."""
        from .packages import waste_by_package

        return waste_by_package(self.image)

    @cached_property
    def duplicates(self) -> pd.DataFrame:
        """The same bytes at several final paths, not hardlinked: ``savable_bytes`` = size x (copies - 1)."""
        if self.same_files_as is not None:
            return self.same_files_as.duplicates
        files = self.image.files
        regular = files[(files["type"] == "file") & (files["size"] > 0)]
        copies = regular["digest"].value_counts()
        repeated = regular[regular["digest"].isin(copies.index[copies > 1])]  # usually a handful of rows
        rows = []
        for digest, g in repeated.groupby("digest", sort=False):
            size = int(g["size"].iloc[0])
            rows.append((digest, size, len(g), size * (len(g) - 1), sorted(g["path"].tolist())))
        rows.sort(key=lambda r: (-r[3], r[0]))
        return pd.DataFrame({
            "digest": pd.array([r[0] for r in rows], dtype="string"),
            "size": pd.array([r[1] for r in rows], dtype="Int64"),
            "copies": pd.array([r[2] for r in rows], dtype="Int64"),
            "savable_bytes": pd.array([r[3] for r in rows], dtype="Int64"),
            "paths": [r[4] for r in rows],
        })

    @cached_property
    def junk(self) -> pd.DataFrame:
        """Well-known junk still visible: package-manager caches and lists, temp files, logs, bytecode of
        removed sources."""
        if self.same_files_as is not None:
            return self.same_files_as.junk
        files = self.image.files
        regular = files[files["type"] == "file"]  # one name per inode: hardlinked content counts once
        paths = regular["path"].tolist()
        present: set[str] | None = None
        match = _JUNK.match
        kinds: list[str | None] = []
        for p in paths:
            m = match(p)  # one pass for every rule: the first rule that matches names the kind
            kind = m.lastgroup if m else None
            if kind is None and "/__pycache__/" in p:
                pyc = _PYC.match(p)
                if pyc:
                    if present is None:
                        present = set(files["path"].tolist())
                    if f"{pyc['dir']}/{pyc['mod']}.py" not in present:
                        kind = "orphan_bytecode"
            kinds.append(kind)
        mask = [k is not None for k in kinds]
        out = regular.loc[mask, ["path", "size", "layer"]].copy()
        out.insert(1, "kind", pd.array([k for k in kinds if k is not None], dtype="string"))
        return out.sort_values("size", ascending=False, kind="stable").reset_index(drop=True)

    @cached_property
    def _advised(self) -> "tuple[pd.DataFrame, pd.DataFrame]":
        if self._same_waste is not None:
            return self._same_waste._advised
        from .advice import advise

        return advise(self)

    @property
    def advice(self) -> pd.DataFrame:
        """The fixes, one row each, largest download saving first: ``kind``, ``layer`` (where the bytes ship),
        ``by_layer`` (whose instruction made them waste), ``created_by``, ``files``, ``example`` (the largest
        path), ``bytes_saved``, ``download_bytes_saved`` and ``fix`` (the Dockerfile change, naming the
        instruction). No byte is in two rows (see ``ocilens.advice``)."""
        return self._advised[0]

    @property
    def advice_files(self) -> pd.DataFrame:
        """The file versions behind each row of ``advice``: ``fix`` (its row), ``kind``, ``layer``, ``path``,
        ``size``, ``compressed_bytes``, and for ``duplicate_content`` the copy to ``keep``."""
        return self._advised[1]

    @property
    def plot(self) -> "Callable[..., Axes]":
        """``bloat.plot(ax=None, top=10)`` draws the waste by cause (``ax=`` in, Axes out)."""
        from .plots import waste_by_cause

        return lambda ax=None, top=10: waste_by_cause(self.image, ax, top)

    @cached_property
    def dive(self) -> DiveNumbers:
        """dive's own efficiency, wasted bytes and user wasted percent (see ``ocilens.dive``)."""
        if self.same_files_as is not None:
            return self.same_files_as.dive
        return dive_numbers(self.image.scans)

    def summary(self) -> dict[str, float | int]:
        """The headline numbers, ours (in file bytes and download bytes) and dive's."""
        d = self.dive
        return {
            "shipped_bytes": self.shipped_bytes,
            "visible_bytes": self.visible_bytes,
            "wasted_bytes": self.wasted_bytes,
            "efficiency": self.efficiency,
            "shipped_download_bytes": self.shipped_download_bytes,
            "visible_download_bytes": self.visible_download_bytes,
            "wasted_download_bytes": self.wasted_download_bytes,
            "duplicate_bytes": int(self.duplicates["savable_bytes"].sum()) if len(self.duplicates) else 0,
            "junk_bytes": int(self.junk["size"].sum()) if len(self.junk) else 0,
            "dive_efficiency": d.efficiency,
            "dive_wasted_bytes": d.wasted_bytes,
            "dive_user_wasted_percent": d.user_wasted_percent,
        }

    def _repr_html_(self) -> str:
        """The notebook view: the top fixes first, then the numbers, the waste by cause and its largest files
        (causes as words). Text is left-aligned and breaks only at spaces or after a ``/``."""
        from .report import bloat_html

        return bloat_html(self.image)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"<ocilens.Bloat {self.image.reference}: efficiency {s['efficiency']:.1%}, "
                f"wasted {s['wasted_bytes']:,} B of {s['shipped_bytes']:,} B shipped "
                f"({s['wasted_download_bytes']:,} B of download); "
                f"dive: efficiency {s['dive_efficiency']:.1%}, wasted {s['dive_wasted_bytes']:,} B>")


def download_share(scan: "LayerScan", entry: int) -> int:
    """An entry's share of its layer's blob (``LayerScan.compressed``), the download its bytes cost; a scan
    without shares (none recorded) gives the layer's ratio of blob to tar bytes times the entry's size."""
    shares = scan.compressed
    if len(shares) == len(scan.types):
        return int(shares[entry])
    ratio = scan.compressed_size / scan.uncompressed_size if scan.uncompressed_size else 1.0
    return round(scan.sizes[entry] * ratio)


def bloat(image: "Image") -> Bloat:
    """Audit ``image`` for bloat."""
    return Bloat(image)
