"""The ecosystem readers, and the package-database files the scan keeps whole: the union of every
ecosystem's ``CAPTURE``.

Built once, at import, from the readers' own patterns (each ecosystem module says which of its files it
needs); importing it loads no pandas, numpy or sqlite3, so the scan imports it at no real cost.
"""

from __future__ import annotations

import re

from types import ModuleType

from . import apk, dpkg, npm, python, rpm
from .base import Capture

__all__ = ["READERS", "CAPTURES", "SUFFIXES", "PREFIXES", "PATTERN", "captures", "signature"]

#: ecosystem -> its reader module (``CAPTURE``, ``is_database``, ``read``, ``compare``)
READERS: dict[str, ModuleType] = {"dpkg": dpkg, "apk": apk, "rpm": rpm, "python": python, "npm": npm}
#: ecosystem -> what its reader needs the scan to keep
CAPTURES: dict[str, Capture] = {eco: reader.CAPTURE for eco, reader in READERS.items()}
#: The cheap tests: a captured path ends with one of these, or starts with one of those.
SUFFIXES: tuple[str, ...] = tuple(dict.fromkeys(s for c in CAPTURES.values() for s in c.suffixes))
PREFIXES: tuple[str, ...] = tuple(dict.fromkeys(p for c in CAPTURES.values() for p in c.prefixes))
#: The exact test, for the paths that pass the cheap one (``PATTERN.fullmatch(path)``).
PATTERN = re.compile("|".join(f"(?:{c.pattern})" for c in CAPTURES.values()))


def captures(path: str) -> bool:
    """Whether ``path`` is a package database or manifest file the scan keeps whole (whatever its size)."""
    return (path.endswith(SUFFIXES) or path.startswith(PREFIXES)) and PATTERN.fullmatch(path) is not None


def signature() -> str:
    """What decides which files are captured, as text (part of the scan cache's format)."""
    return repr([(eco, c.pattern, c.suffixes, c.prefixes) for eco, c in CAPTURES.items()])
