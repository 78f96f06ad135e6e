"""What every ecosystem reader shares: the parsed ``Package``, the view of the databases one layer state
leaves (``DbFiles``), and small parsing helpers (RFC 822 stanzas, a generic version order)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from ..paths import normalize_path

__all__ = ["Package", "DbFiles", "Capture", "stanzas", "generic_compare", "ECOSYSTEMS", "OS_ECOSYSTEMS", "join",
           "relation_names"]

# The ecosystems in the order their claims are applied: a later one wins a path two of them list (the
# system package manager installed the Python or npm package it ships, so it is the owner a user acts on).
ECOSYSTEMS = ("npm", "python", "rpm", "apk", "dpkg")
OS_ECOSYSTEMS = ("dpkg", "apk", "rpm")


@dataclass(frozen=True)
class Capture:
    """The files of one ecosystem's database that the scan keeps whole (``LayerScan.captured``): the paths
    ``pattern`` matches entirely. A path that ends with none of ``suffixes`` and starts with none of
    ``prefixes`` never matches: the scan tests those first, cheaply, on every file of a layer."""

    pattern: str
    suffixes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Package:
    """One package as a database describes it at one layer state.

    ``paths``: the image-absolute paths its database lists (as written: ``/bin/sh`` on a merged-/usr
    system is resolved later, through the image's symlinks). ``trees``: directories it owns whole (an npm
    package directory, a Python metadata directory), except children named ``exclude`` (npm's nested
    ``node_modules``). ``key`` identifies the package across layers and images, whatever its version.
    """

    ecosystem: str
    name: str
    version: str
    architecture: str | None
    location: str
    paths: tuple[str, ...] = ()
    trees: tuple[str, ...] = ()
    exclude: str | None = None
    installed_size: int | None = None
    source: str | None = None
    key_name: str = ""  # the name as compared (PEP 503-normalized for Python); defaults to name
    #: What it needs installed, from the database's dependency fields (dpkg ``Pre-Depends``/``Depends``, apk
    #: ``D:``, rpm requires): one item per requirement, names only (versions dropped), alternatives joined
    #: by ``|`` (``debconf|debconf-2.0``). Empty for ecosystems whose databases do not say.
    depends: tuple[str, ...] = ()
    #: The other names it satisfies requirements for (dpkg ``Provides``, apk ``p:``, rpm provides).
    provides: tuple[str, ...] = ()
    #: The package manager refuses to remove it (dpkg ``Essential: yes``).
    essential: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.ecosystem, self.key_name or self.name, self.architecture or "", self.location)


@dataclass
class DbFiles:
    """The package-database files present at one layer state, for one ecosystem: path -> (layer, entry),
    with the bytes and digest of each from the layer scans, and a memo shared by every state of an image
    (parsed content is keyed by digest, so a database rewritten unchanged is parsed once)."""

    files: Mapping[str, tuple[int, int]]
    content_of: Callable[[int, int], bytes]
    digest_of: Callable[[int, int], str]
    memo: dict = field(default_factory=dict)

    def __contains__(self, path: str) -> bool:
        return path in self.files

    def content(self, path: str) -> bytes:
        return self.content_of(*self.files[path])

    def digest(self, path: str) -> str:
        return self.digest_of(*self.files[path])

    def cached(self, kind: str, path: str, parse: Callable[[bytes], Any]) -> Any:
        """``parse(content of path)``, memoized by (kind, digest)."""
        key = (kind, self.digest(path))
        hit = self.memo.get(key)
        if hit is None:
            hit = parse(self.content(path))
            self.memo[key] = hit
        return hit


def read_records(db: DbFiles, ecosystem: str, paths: tuple[str, ...],
                 parse: Callable[[bytes], Any]) -> list["Package"]:
    """Packages from single-file databases whose ``parse`` yields ``(name, version, arch, installed size,
    source, files, depends, provides)`` records (apk's ``installed``, rpm's sqlite)."""
    out: list[Package] = []
    for path in paths:
        if path in db:
            for name, version, arch, size, source, files, depends, provides in db.cached(ecosystem, path, parse):
                out.append(Package(ecosystem, name, version, arch, path, files, installed_size=size,
                                   source=source, depends=depends, provides=provides))
    return out


_VERSION_TAIL = re.compile(r"\s*(\(.*?\)|\[.*?\]|<.*?>)")


def relation_names(field: str | None) -> tuple[str, ...]:
    """A Debian relationship field (``Depends``, ``Pre-Depends``, ``Provides``) as names: ``a (>= 1), b:any
    | c [amd64]`` -> ``("a", "b|c")``. Versions, architecture qualifiers and build profiles are dropped."""
    if not field:
        return ()
    out: list[str] = []
    for item in field.replace("\n", " ").split(","):
        alternatives = []
        for alt in item.split("|"):
            name = _VERSION_TAIL.sub("", alt).strip().split(":")[0].strip()
            if name:
                alternatives.append(name)
        if alternatives:
            out.append("|".join(alternatives))
    return tuple(out)


def join(directory: str, rel: str) -> str:
    """``rel`` under ``directory`` (an absolute ``rel`` on its own), normalized as every image path is
    (``paths.normalize_path``: ``..`` resolved lexically, clamped at the root)."""
    full = rel if rel.startswith("/") else directory.rstrip("/") + "/" + rel
    return normalize_path(full.lstrip("/"))[0]  # the same path, relative: normalize_path's quick case


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """Paragraphs of ``Field: value`` lines separated by blank lines (dpkg's status, Debian control files).
    Continuation lines (starting with a space or tab) are appended to the field, newline-separated."""
    record: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if record:
                yield record
            record, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                record[last] += "\n" + line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        last = name.strip()
        record[last] = value.strip()
    if record:
        yield record


_GENERIC = re.compile(r"\d+|[A-Za-z]+|~")


def generic_compare(a: str, b: str) -> int:
    """A forgiving order for versions no scheme parses: numeric runs compare as numbers, letter runs as
    text, ``~`` sorts before anything (a pre-release), and a longer version wins a common prefix."""
    ta, tb = _GENERIC.findall(a), _GENERIC.findall(b)
    for x, y in zip(ta, tb):
        if x == y:
            continue
        if x == "~" or y == "~":
            return -1 if x == "~" else 1
        if x.isdigit() and y.isdigit():
            return (int(x) > int(y)) - (int(x) < int(y))
        if x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1  # 1.0.1 > 1.0a
        return (x > y) - (x < y)
    if len(ta) == len(tb):
        return (a > b) - (a < b)
    longer, sign = (ta, 1) if len(ta) > len(tb) else (tb, -1)
    return -sign if longer[min(len(ta), len(tb))] == "~" else sign


def compare_evr(a: str, b: str, compare_part: Callable[[str, str], int]) -> int:
    """-1, 0 or 1 for two ``[epoch:]version[-release]`` strings (dpkg's and rpm's shape): epochs as numbers,
    then version and release each with ``compare_part`` (the ecosystem's segment ordering)."""
    ea, va, ra = _split_evr(a)
    eb, vb, rb = _split_evr(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return compare_part(va, vb) or compare_part(ra, rb)


def _split_evr(v: str) -> tuple[int, str, str]:
    v = v.strip()
    epoch = 0
    head, sep, rest = v.partition(":")
    if sep and head.isdigit():
        epoch, v = int(head), rest
    version, sep, release = v.rpartition("-")
    if not sep:
        version, release = v, ""
    return epoch, version, release
