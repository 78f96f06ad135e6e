"""Packages in the HTML report and in text (for ``ocilens diff``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..html import esc, human, signed, svg_of, table

if TYPE_CHECKING:
    from ..image import Image

__all__ = ["packages_html", "package_diff_html", "diff_summary", "diff_lines"]


def packages_html(image: "Image", top: int = 25) -> str:
    """The report's packages section: per-ecosystem totals, a chart of the largest packages and the waste
    they carry, the largest packages, waste by package, and the packages later layers removed or replaced."""
    from ..plots import package_sizes

    pk = image.packages
    out = ["<h2>Packages</h2>"]
    if pk.empty:
        out.append("<p>No package database found (dpkg, apk, rpm, Python, npm): no file has a known owner.</p>")
        return "".join(out)
    files = image.files
    regular = files[files["type"] == "file"]
    present = pk[pk["fate"] == "present"]
    bits = []
    for eco, g in present.groupby("ecosystem", observed=True):
        bits.append(f"{len(g):,} {esc(eco)} ({esc(human(int(g['bytes'].sum())))})")
    unowned = regular[regular["package"].isna()]
    gone = pk[pk["fate"] != "present"]
    out.append(f"<p>{', '.join(bits) or 'no packages left'} in the final image; "
               f"{len(unowned):,} files ({esc(human(int(unowned['size'].sum())))}) belong to no package"
               + (f"; {len(gone):,} package versions were removed or replaced by later layers" if len(gone) else "")
               + ".</p>")
    docs = int(present["doc_bytes"].sum())
    dev = present[present["dev"]].sort_values("bytes", ascending=False, kind="stable")
    hints = []
    if docs:
        hints.append(f"{esc(human(docs))} of documentation, man pages and translations inside packages "
                     "(dpkg's <code>path-exclude</code>, rpm's <code>--excludedocs</code>, apk's <code>-doc</code> "
                     "packages leave them out)")
    if len(dev):
        names = ", ".join(esc(n) for n in dev["name"].head(8)) + (", ..." if len(dev) > 8 else "")
        hints.append(f"{len(dev):,} development packages ({names}: {esc(human(int(dev['bytes'].sum())))}), "
                     "usually needed only to build")
    if hints:
        out.append("<ul>" + "".join(f"<li>{h}</li>" for h in hints) + "</ul>")
    out.append('<div class="charts">' + svg_of(lambda ax: package_sizes(image, ax), size=(8, 4.5)) + "</div>")
    largest = present.sort_values(["bytes", "name"], ascending=[False, True], kind="stable")
    out.append("<h3>Largest packages</h3>" + table(
        largest, ["ecosystem", "name", "version", "architecture", "layer", "files", "bytes", "wasted_bytes"],
        formats={"bytes": human, "wasted_bytes": human}, numeric=["layer", "files", "bytes", "wasted_bytes"],
        mono=["name", "version"], limit=top, headers={"layer": "installed by layer", "wasted_bytes": "wasted"}))
    by = image.bloat().by_package
    if len(by):
        shown = by.assign(name=by["name"].fillna("(no package)"))
        out.append("<h3>Waste by package</h3><p class=\"muted\">Each wasted file version counts against the package "
                   "that owned it in the layer that shipped it.</p>" + table(
                       shown, ["ecosystem", "name", "version", "layer", "removed_layer", "fate", "files", "bytes",
                               "deleted_later", "overwritten", "metadata_only"],
                       formats={c: human for c in ("bytes", "deleted_later", "overwritten", "metadata_only")},
                       numeric=["layer", "removed_layer", "files", "bytes", "deleted_later", "overwritten",
                                "metadata_only"], mono=["name", "version"], limit=top,
                       headers={"layer": "installed by layer", "removed_layer": "removed by layer",
                                "bytes": "wasted"}))
    if len(gone):
        gone = gone.sort_values(["wasted_bytes", "name"], ascending=[False, True], kind="stable")
        out.append("<h3>Removed and replaced packages</h3>" + table(
            gone, ["ecosystem", "name", "version", "layer", "removed_layer", "fate", "next_version", "wasted_bytes"],
            formats={"wasted_bytes": human}, numeric=["layer", "removed_layer", "wasted_bytes"],
            mono=["name", "version", "next_version"], limit=top,
            headers={"layer": "installed by layer", "removed_layer": "removed by layer", "wasted_bytes": "wasted"}))
    return "".join(out)


def diff_summary(frame: pd.DataFrame) -> dict[str, int]:
    """Counts per kind of change and the total size delta of a package diff frame."""
    counts = frame["change"].value_counts()
    out = {k: int(counts.get(k, 0)) for k in ("added", "removed", "upgraded", "downgraded", "changed")}
    out["size_delta"] = int(frame["size_delta"].sum()) if len(frame) else 0
    return out


def package_diff_html(frame: pd.DataFrame, top: int = 25) -> str:
    """A package diff as the report shows it (an ``<h3>`` and a table)."""
    if frame.empty:
        return "<h3>Package changes</h3><p>No package added, removed, upgraded or downgraded.</p>"
    s = diff_summary(frame)
    return (f"<h3>Package changes</h3><p>{s['added']:,} added, {s['removed']:,} removed, {s['upgraded']:,} upgraded, "
            f"{s['downgraded']:,} downgraded; {esc(signed(s['size_delta']))} in packages.</p>"
            + table(frame, ["change", "ecosystem", "name", "version_a", "version_b", "bytes_a", "bytes_b",
                            "size_delta"], formats={"bytes_a": human, "bytes_b": human, "size_delta": signed},
                    numeric=["bytes_a", "bytes_b", "size_delta"], mono=["name", "version_a", "version_b"],
                    limit=top, headers={"version_a": "old version", "version_b": "new version",
                                        "bytes_a": "old bytes", "bytes_b": "new bytes"}))


def diff_lines(frame: pd.DataFrame, top: int = 20) -> list[str]:
    """A package diff as text lines (``ocilens diff``): a summary line, then the ``top`` changes."""
    s = diff_summary(frame)
    lines = [f"packages: {s['added']} added, {s['removed']} removed, {s['upgraded']} upgraded, "
             f"{s['downgraded']} downgraded; {signed(s['size_delta'])} in packages"]
    for r in frame.head(top).itertuples(index=False):
        va = "" if pd.isna(r.version_a) else r.version_a
        vb = "" if pd.isna(r.version_b) else r.version_b
        versions = f"{va} -> {vb}" if va and vb else va or vb
        lines.append(f"  {r.change:10} {signed(int(r.size_delta)):>10}  {r.ecosystem}:{r.name} {versions}")
    if len(frame) > top:
        lines.append(f"  ... {len(frame) - top} more package changes")
    return lines
