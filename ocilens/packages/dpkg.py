"""dpkg: ``/var/lib/dpkg/status`` (the installed packages) with ``info/<name>[:<arch>].list`` (their
files), and distroless's ``/var/lib/dpkg/status.d/<name>`` stanzas with ``<name>.md5sums``.

Versions compare with dpkg's own algorithm (``[epoch:]upstream[-revision]``, ``~`` before everything).
"""

from __future__ import annotations

from .base import Capture, DbFiles, Package, compare_evr, relation_names, stanzas

__all__ = ["STATUS", "CAPTURE", "read", "compare", "is_database"]

STATUS = "/var/lib/dpkg/status"
INFO = "/var/lib/dpkg/info/"
STATUS_D = "/var/lib/dpkg/status.d/"
#: What the scan keeps: the status file, distroless's one status file per package, the file lists.
CAPTURE = Capture(r"/var/lib/dpkg/status|/var/lib/dpkg/status\.d/[^/]+|/var/lib/dpkg/info/[^/]+\.list",
                  suffixes=("/status", ".list"), prefixes=(STATUS_D,))
# Status's third word for a package whose files are on disk (config-files and not-installed are gone).
_PRESENT = {"installed", "half-installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending"}


def is_database(path: str) -> bool:
    return path == STATUS or path.startswith(STATUS_D) or (path.startswith(INFO) and path.endswith(".list"))


_Status = tuple[str, str, str, "str | None", "str | None", tuple[str, ...], tuple[str, ...], bool]


def _status(data: bytes) -> tuple[_Status, ...]:
    """(name, version, arch, installed size, source, depends, provides, essential) of each package whose
    files are present; depends are ``Pre-Depends`` then ``Depends``, as names (``base.relation_names``)."""
    out = []
    for st in stanzas(data.decode("utf-8", "replace")):
        name = st.get("Package")
        if not name:
            continue
        words = st.get("Status", "").split()
        if words and words[-1] not in _PRESENT:
            continue
        source = st.get("Source")
        out.append((name, st.get("Version", ""), st.get("Architecture", ""), st.get("Installed-Size"),
                    source.split()[0] if source else None,
                    relation_names(st.get("Pre-Depends")) + relation_names(st.get("Depends")),
                    relation_names(st.get("Provides")), st.get("Essential", "").strip().lower() == "yes"))
    return tuple(out)


def _list(data: bytes) -> tuple[str, ...]:
    return tuple(line for line in data.decode("utf-8", "surrogateescape").splitlines()
                 if line.startswith("/") and line != "/.")


def _md5sums(data: bytes) -> tuple[str, ...]:
    out = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        _, sep, path = line.partition("  ")
        if sep and path:
            out.append("/" + path.lstrip("/"))
    return tuple(out)


def _size(kib: str | None) -> int | None:
    try:
        return int(kib) * 1024 if kib else None
    except ValueError:
        return None


def read(db: DbFiles) -> list[Package]:
    """The packages the dpkg database of one layer state lists as installed."""
    out: list[Package] = []
    if STATUS in db:
        for name, version, arch, size, source, depends, provides, essential in db.cached("dpkg-status", STATUS,
                                                                                          _status):
            paths: tuple[str, ...] = ()
            for candidate in (f"{INFO}{name}:{arch}.list", f"{INFO}{name}.list"):
                if candidate in db:
                    paths = db.cached("dpkg-list", candidate, _list)
                    break
            out.append(Package("dpkg", name, version, arch or None, "/var/lib/dpkg", paths,
                               installed_size=_size(size), source=source or name, depends=depends,
                               provides=provides, essential=essential))
    # distroless: one status stanza per file, the file list in <name>.md5sums beside it
    for path in sorted(p for p in db.files if p.startswith(STATUS_D) and not p.endswith(".md5sums")):
        for name, version, arch, size, source, depends, provides, essential in db.cached("dpkg-status", path,
                                                                                          _status):
            md5 = path + ".md5sums"
            paths = db.cached("dpkg-md5sums", md5, _md5sums) if md5 in db else ()
            out.append(Package("dpkg", name, version, arch or None, "/var/lib/dpkg", paths,
                               installed_size=_size(size), source=source or name, depends=depends,
                               provides=provides, essential=essential))
    return out


# ------------------------------------------------------------------------------------------- versions


def _order(c: str) -> int:
    if "0" <= c <= "9":
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's ``verrevcmp``: alternate non-digit runs (by ``_order``) and digit runs (numerically)."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not "0" <= a[i] <= "9") or (j < lb and not "0" <= b[j] <= "9"):
            ac = _order(a[i]) if i < la else 0
            bc = _order(b[j]) if j < lb else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and "0" <= a[i] <= "9" and j < lb and "0" <= b[j] <= "9":
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and "0" <= a[i] <= "9":
            return 1
        if j < lb and "0" <= b[j] <= "9":
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg orders the versions ``a`` and ``b`` (``dpkg --compare-versions``)."""
    return compare_evr(a, b, _verrevcmp)
