"""The one rule for turning a name inside an image (a tar member, a link target, a path a package database
lists, a file of a layout or archive) into a clean path: ``.`` and empty components are dropped, ``..``
is resolved lexically and clamped at the root, as runtimes do. A leaf module (no imports), so the scan,
the sources and the package readers share it without import cycles.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["normalize_path", "normalize_paths", "split_path"]


def split_path(path: str) -> tuple[list[str], bool]:
    """The components of ``path`` resolved lexically, and whether a ``..`` climbed above the start (clamped:
    ``a/../../b`` is ``["b"]``, climbed)."""
    parts: list[str] = []
    climbed = False
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            else:
                climbed = True
            continue
        parts.append(comp)
    return parts, climbed


def normalize_paths(names: Iterable[bytes | str]) -> tuple[list[str], dict[int, bool]]:
    """The absolute normalized path of each name (``./usr//bin/`` -> ``/usr/bin``), and the names that are
    not plain relative ones: ``{position: escaped}`` for each name that is absolute (``escaped`` False) or
    tries to climb above the root (``escaped`` True; it is clamped there). Bytes are decoded as UTF-8 with
    ``surrogateescape``.

    A batch, so that a layer of a million names pays the common case's few string tests per name and no
    call: this loop is the scan's hottest Python.
    """
    paths: list[str] = []
    odd: dict[int, bool] = {}
    append = paths.append
    for name in names:
        s = name if name.__class__ is str else name.decode("utf-8", "surrogateescape")
        if s.startswith("./"):
            s = s[2:]
        if "/." not in s and "//" not in s and not s.startswith(("/", ".")):
            # The common case: "usr/bin/x" or "usr/bin/" (no dot segments, no doubled slashes).
            append("/" + (s[:-1] if s.endswith("/") else s))
            continue
        parts, escaped = split_path(s)
        if escaped or name[:1] in ("/", b"/"):
            odd[len(paths)] = escaped
        append("/" + "/".join(parts))
    return paths, odd


def normalize_path(name: bytes | str) -> tuple[str, bool]:
    """``(absolute normalized path, escaped)`` of one name (see ``normalize_paths``): ``escaped`` says the
    name tried to climb above the root."""
    paths, odd = normalize_paths((name,))
    return paths[0], odd.get(0, False)
