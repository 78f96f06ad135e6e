"""apk (Alpine, Wolfi): ``/lib/apk/db/installed``, one paragraph per package of ``X:value`` lines:
``P`` name, ``V`` version, ``A`` architecture, ``I`` installed size, ``o`` origin, ``F`` a directory
(relative to the root) and the ``R`` files in it that follow, ``D`` dependencies and ``p`` provides
(``so:``, ``cmd:``, ``pc:`` names too), ``Z``/``a``/``M`` checksums and modes.

Versions compare as apk does: numbers, an optional letter, ``_alpha`` ... ``_p`` suffixes, ``-rN``.
"""

from __future__ import annotations

import re

from .base import Capture, DbFiles, Package, read_records

__all__ = ["INSTALLED", "CAPTURE", "read", "compare", "is_database", "parse"]

INSTALLED = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
CAPTURE = Capture(r"(/usr)?/lib/apk/db/installed", suffixes=("/installed",))


def is_database(path: str) -> bool:
    return path in INSTALLED


_Record = tuple[str, str, "str | None", "int | None", "str | None", tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_CONSTRAINT = re.compile(r"[<>=~].*$")


def _names(value: str) -> tuple[str, ...]:
    """apk's space-separated dependency or provides words as names: ``so:libc.musl-x86_64.so.1``,
    ``busybox>1.0`` -> ``busybox``, ``cmd:sh=1.36`` -> ``cmd:sh``; ``!name`` (a conflict) is dropped."""
    out = []
    for word in value.split():
        if word.startswith("!"):
            continue
        name = _CONSTRAINT.sub("", word)
        if name:
            out.append(name)
    return tuple(out)


def parse(data: bytes) -> tuple[_Record, ...]:
    """(name, version, arch, installed size, origin, files, depends, provides) per package paragraph."""
    out: list[_Record] = []
    name: str | None = None
    version: str | None = None
    arch: str | None = None
    origin: str | None = None
    size: int | None = None
    files: list[str] = []
    directory = ""
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def flush() -> None:
        if name:  # o: is the source
            out.append((name, version or "", arch, size, origin or name, tuple(files), depends, provides))

    for line in data.decode("utf-8", "surrogateescape").splitlines():
        if not line.strip():
            flush()
            name = version = arch = origin = None
            size, files, directory = None, [], ""
            depends = provides = ()
            continue
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key == "P":
            name = value
        elif key == "V":
            version = value
        elif key == "A":
            arch = value or None
        elif key == "I":
            size = int(value) if value.isdigit() else None
        elif key == "o":
            origin = value or None
        elif key == "F":
            directory = value.strip("/")
        elif key == "R":
            files.append(f"/{directory}/{value}" if directory else f"/{value}")
        elif key == "D":
            depends = _names(value)
        elif key == "p":
            provides = _names(value)
    flush()
    return tuple(out)


def read(db: DbFiles) -> list[Package]:
    return read_records(db, "apk", INSTALLED, parse)


# ------------------------------------------------------------------------------------------- versions

_SUFFIXES = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_END = (4, 0)  # no more suffixes: after the pre-releases, before the post-release ones
_VERSION = re.compile(r"^(?P<nums>\d+(?:\.\d+)*)(?P<letter>[a-z]?)(?P<suffixes>(?:_[a-z]+\d*)*)"
                      r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<rev>\d+))?$")
_SUFFIX = re.compile(r"_([a-z]+)(\d*)")


def _key(v: str) -> tuple | None:
    m = _VERSION.match(v.strip())
    if m is None:
        return None
    suffixes = []
    for word, num in _SUFFIX.findall(m["suffixes"]):
        if word not in _SUFFIXES:
            return None
        suffixes.append((_SUFFIXES[word], int(num or 0)))
    suffixes.append(_END)
    return ([int(n) for n in m["nums"].split(".")], m["letter"], suffixes, m["hash"] or "", int(m["rev"] or 0))


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as apk orders the versions (``apk version -t``), for well-formed versions."""
    ka, kb = _key(a), _key(b)
    if ka is None or kb is None:
        from .base import generic_compare

        return generic_compare(a, b)
    return (ka > kb) - (ka < kb)
