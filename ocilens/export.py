"""Plain JSON out of DataFrames and images: NA as null, times as ISO 8601, names kept exact.

A non-UTF-8 byte in a path is a lone surrogate in Python; JSON carries it as the escape ``\\udcXX``
(``json.loads`` returns the same string, and ``os.fsencode`` of it the original bytes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .image import Image

__all__ = ["frame_records", "image_summary", "write_json"]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``df`` as JSON-ready dicts."""
    cols = list(df.columns)
    return [{c: _plain(v) for c, v in zip(cols, row)} for row in df.itertuples(index=False, name=None)]


def image_summary(img: "Image") -> dict[str, Any]:
    """Identity and headline numbers of an image."""
    layers = img.layers
    return {
        "reference": img.reference,
        "transport": img.source.transport,
        "platform": str(img.platform) if img.platform else None,
        "manifest_digest": img.manifest_digest,
        "image_id": img.image_id,
        "media_type": img.manifest.media_type,
        "layers": len(img.scans),
        "compressed_bytes": int(layers["compressed_size"].sum()),
        "uncompressed_bytes": int(layers["uncompressed_size"].sum()),
        "wasted_bytes": int(layers["wasted_bytes"].sum()),
        "wasted_download_bytes": int(layers["wasted_compressed_bytes"].sum()),
        "files": int(len(img.files)),
        "events": {k: int(v) for k, v in img.events["event"].value_counts().sort_index().items()},
        "anomalies": int(len(img.anomalies)),
    }


def write_json(img: "Image", path: str | Path) -> Path:
    """Write the image summary, the fixes (``advice``, largest download saving first) and its layers, events,
    files, packages and anomalies tables to ``path``."""
    doc = {
        "image": image_summary(img),
        "advice": frame_records(img.bloat().advice),
        "layers": frame_records(img.layers),
        "history": frame_records(img.history),
        "events": frame_records(img.events),
        "files": frame_records(img.files),
        "packages": frame_records(img.packages.reset_index()),
        "anomalies": frame_records(img.anomalies),
    }
    out = Path(path)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, indent=1)
        f.write("\n")
    return out
