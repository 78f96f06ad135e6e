"""npm: every ``node_modules/[@scope/]NAME/package.json`` is an installed package (name and version
from the file); it owns everything under its directory except nested ``node_modules`` (the packages
installed for it, each its own package). npm's lock files are not needed: the tree is the truth.

Versions compare by semver 2.0 (build metadata ignored); versions semver does not parse fall back to a
generic order.
"""

from __future__ import annotations

import json
import re

from .base import Capture, DbFiles, Package, generic_compare

__all__ = ["CAPTURE", "read", "compare", "is_database"]

CAPTURE = Capture(r".*/node_modules/(@[^/]+/)?[^/]+/package\.json", suffixes=("/package.json",))
_PACKAGE_JSON = re.compile(r"^(?P<dir>.*/node_modules/(?:@[^/]+/)?[^/]+)/package\.json$")


def is_database(path: str) -> bool:
    return path.endswith("/package.json") and "/node_modules/" in path


def _manifest(data: bytes) -> tuple[str | None, str | None]:
    try:
        doc = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    name, version = doc.get("name"), doc.get("version")
    return (name if isinstance(name, str) else None), (version if isinstance(version, str) else None)


def read(db: DbFiles) -> list[Package]:
    out: list[Package] = []
    for path in sorted(db.files):
        m = _PACKAGE_JSON.match(path)
        if m is None:
            continue
        directory = m["dir"]
        name: str | None
        version: str | None
        name, version = db.cached("npm", path, _manifest)
        if name is None:  # not a package manifest (a fixture, a partial install): the directory names it
            name = directory.split("/node_modules/")[-1]
        out.append(Package("npm", name, version or "", None, directory, (), (directory,), exclude="node_modules"))
    return out


# ------------------------------------------------------------------------------------------- versions

_SEMVER = re.compile(r"^\s*[v=]?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\s*$")


def _key(v: str) -> tuple | None:
    m = _SEMVER.match(v)
    if m is None:
        return None
    pre = m[4]
    if pre is None:
        pre_key: tuple = (1,)
    else:  # numeric identifiers sort numerically and before alphanumeric ones; a longer list wins ties
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return int(m[1]), int(m[2]), int(m[3]), pre_key


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 in semver order."""
    ka, kb = _key(a), _key(b)
    if ka is None or kb is None:
        return generic_compare(a, b)
    return (ka > kb) - (ka < kb)
