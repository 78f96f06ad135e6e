"""Python distributions: ``NAME-VERSION.dist-info`` (``METADATA`` for the name and version, ``RECORD``
for the files, relative to the directory holding it) and ``*.egg-info`` (``PKG-INFO``, and the files in
``installed-files.txt``, relative to the egg-info directory; without it, the modules ``top_level.txt``
names). A distribution is known by its PEP 503 name and the directory it is installed in.

Versions compare by PEP 440 (``packaging`` when it is installed, else a built-in reading of PEP 440).
"""

from __future__ import annotations

import csv
import io
import re

from .base import Capture, DbFiles, Package, generic_compare, join

__all__ = ["CAPTURE", "read", "compare", "is_database", "canonical_name"]

#: A dist-info's RECORD and METADATA; an egg-info directory's PKG-INFO and file lists, or a single-file egg-info.
CAPTURE = Capture(r".*/[^/]+\.dist-info/(RECORD|METADATA)"
                  r"|.*/[^/]+\.egg-info(/(PKG-INFO|installed-files\.txt|SOURCES\.txt|top_level\.txt))?",
                  suffixes=("/RECORD", "/METADATA", "/PKG-INFO", "/installed-files.txt", "/SOURCES.txt",
                            "/top_level.txt", ".egg-info"))
_META_DIR = re.compile(r"^(?P<site>.*)/(?P<dir>[^/]+\.(?:dist-info|egg-info))(?:/(?P<file>[^/]+))?$")


def is_database(path: str) -> bool:
    return ".dist-info/" in path or ".egg-info" in path


def canonical_name(name: str) -> str:
    """PEP 503: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _headers(data: bytes) -> tuple[str | None, str | None]:
    """Name and Version from METADATA / PKG-INFO (RFC 822 headers, up to the first blank line)."""
    name = version = None
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "name" and name is None:
            name = value.strip()
        elif key == "version" and version is None:
            version = value.strip()
    return name, version


def _record(data: bytes) -> tuple[str, ...]:
    rows = csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape")))
    return tuple(row[0] for row in rows if row and row[0])


def _lines(data: bytes) -> tuple[str, ...]:
    return tuple(s for s in (line.strip() for line in data.decode("utf-8", "surrogateescape").splitlines()) if s)


def _from_dirname(dirname: str) -> tuple[str, str]:
    stem = dirname.rsplit(".", 1)[0]
    name, _, rest = stem.partition("-")
    return name, rest.split("-")[0]


def read(db: DbFiles) -> list[Package]:
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for path in db.files:
        m = _META_DIR.match(path)
        if m is None:
            continue
        groups.setdefault((m["site"] or "/", m["dir"]), {})[m["file"] or ""] = path
    out: list[Package] = []
    for (site, dirname), files in sorted(groups.items()):
        meta_dir = join(site, dirname)
        head = files.get("METADATA") or files.get("PKG-INFO") or files.get("")  # "": a single-file egg-info
        name: str | None
        version: str | None
        name, version = db.cached("py-headers", head, _headers) if head else (None, None)
        fallback_name, fallback_version = _from_dirname(dirname)
        name, version = name or fallback_name, version or fallback_version
        paths: list[str] = []
        trees: list[str] = []
        if "" in files:  # the egg-info is one file: it owns itself, nothing else is known
            paths.append(meta_dir)
        else:
            trees.append(meta_dir)
        if "RECORD" in files:
            paths += [join(site, p) for p in db.cached("py-record", files["RECORD"], _record)]
        elif "installed-files.txt" in files:
            paths += [join(meta_dir, p) for p in db.cached("py-lines", files["installed-files.txt"], _lines)]
        elif "top_level.txt" in files:
            for module in db.cached("py-lines", files["top_level.txt"], _lines):
                trees.append(join(site, module))
                paths.append(join(site, module + ".py"))
        out.append(Package("python", name, version or "", None, site, tuple(paths), tuple(trees),
                           key_name=canonical_name(name)))
    return out


# ------------------------------------------------------------------------------------------- versions

_PEP440 = re.compile(r"""^\s*v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>a|alpha|b|beta|c|rc|pre|preview)[-_.]?(?P<pre_n>\d*))?
    (?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d*))?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d*))?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$""", re.X | re.I)
_PRE = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
_INF = float("inf")


def _pep440_key(v: str) -> tuple | None:
    """PEP 440's order as a tuple (the same order ``packaging.version.Version`` gives)."""
    m = _PEP440.match(v)
    if m is None:
        return None
    release = [int(x) for x in m["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre = (_PRE[m["pre_l"].lower()], int(m["pre_n"] or 0)) if m["pre_l"] else None
    post_n = m["post_n1"] or m["post_n2"]
    post = int(post_n or 0) if (m["post_n1"] or m["post_l"]) else None
    dev = int(m["dev_n"] or 0) if m["dev_l"] else None
    # a dev release of a final version sorts before its pre-releases; no pre sorts after all of them
    pre_key = (-_INF, 0) if pre is None and post is None and dev is not None else (_INF, 0) if pre is None else pre
    post_key = -_INF if post is None else post
    dev_key = _INF if dev is None else dev
    local = tuple((1, int(p), "") if p.isdigit() else (0, 0, p.lower())
                  for p in re.split(r"[-_.]", m["local"])) if m["local"] else ()
    return int(m["epoch"] or 0), tuple(release), pre_key, post_key, dev_key, local


def _packaging() -> tuple[type, type[Exception]] | None:
    """``packaging``'s ``Version`` and ``InvalidVersion`` (the reference implementation), when it is installed;
    imported on the first comparison, not when the scan imports this module for ``CAPTURE``."""
    global _PACKAGING
    if _PACKAGING is None:
        try:
            from packaging.version import InvalidVersion, Version
        except ImportError:  # pragma: no cover - exercised only without packaging
            _PACKAGING = False
        else:
            _PACKAGING = (Version, InvalidVersion)
    return _PACKAGING or None


_PACKAGING: tuple[type, type[Exception]] | bool | None = None


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 in PEP 440 order; versions PEP 440 does not parse fall back to a generic order."""
    reference = _packaging()
    if reference is not None:
        version, invalid = reference
        try:
            va, vb = version(a), version(b)
            return (va > vb) - (va < vb)
        except invalid:
            return generic_compare(a, b)
    ka, kb = _pep440_key(a), _pep440_key(b)
    if ka is None or kb is None:
        return generic_compare(a, b)
    return (ka > kb) - (ka < kb)
