"""Sizes and texts for people: parsing ``20MB``/``1.5GiB``, printing SI units (kB = 1000 B, as dive and docker), and
shortening a line at a word boundary."""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import UsageError

__all__ = ["parse_size", "human_bytes", "short_words"]

# go-humanize's ParseBytes units (what dive accepts): SI and IEC, with or without the "B".
_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtpe", 1):
    _UNITS.update({_p: 1000**_i, f"{_p}b": 1000**_i, f"{_p}i": 1024**_i, f"{_p}ib": 1024**_i})
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")


def parse_size(value: int | float | str) -> int:
    """``20MB`` -> 20000000, ``1.5GiB`` -> 1610612736, ``1234`` -> 1234 (SI and IEC units)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    m = _SIZE.fullmatch(str(value).replace(",", ""))  # "1,500KB", as go-humanize reads it
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"not a size: {value!r}", hint="write bytes as 1234, 20MB, 512KiB or 1.5GB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def human_bytes(n: Any) -> str:
    """``1234567`` -> ``1.2 MB``; empty for None/NA/NaN."""
    if n is None or n is getattr(__import__("pandas"), "NA", object()) or (isinstance(n, float) and math.isnan(n)):
        return ""
    v = float(n)
    sign = "-" if v < 0 else ""
    v = abs(v)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if v < 1000 or unit == "TB":
            return f"{sign}{v:.0f} {unit}" if unit == "B" else f"{sign}{v:.1f} {unit}"
        v /= 1000
    return f"{sign}{v:.1f} TB"


def short_words(text: object, limit: int = 40) -> str:
    """``text`` on one line, at most ``limit`` characters when it can be: cut at a space and ended with
    ``…``, never inside a word (a first word longer than ``limit`` is kept whole)."""
    line = " ".join(str(text).split())
    if len(line) <= limit:
        return line
    cut = line.rfind(" ", 0, limit - 1)
    if cut <= 0:
        cut = line.find(" ")
        return line if cut < 0 else line[:cut] + " …"
    return line[:cut] + " …"
