"""From numbers to fixes: what to change in the build, and the file bytes and download each change saves.

``img.bloat().advice`` has one row per fix, largest download saving first. Every file version the image ships
is a *unit* (its size, and its download cost: its share of its layer's blob, ``compressed_bytes``). Each unit
goes to the first kind below that matches it, so no byte is in two rows; the kinds for bytes nobody sees (the
waste causes of ``Bloat.causes``) come before the kinds for visible bytes:

==========================  ===========================================================================
kind                        the units
==========================  ===========================================================================
``delete_in_same_layer``    versions a later layer deletes (cause ``deleted_later``)
``metadata_only_copy``      versions re-shipped unchanged by a ``chmod``/``chown``/``touch`` layer
``overwritten``             versions a later layer replaced by other content
``unappliable``             entries no runtime can apply (a parent is a file, a symlink loop)
``package_lists``           apt lists, the apk index, dnf/yum metadata in the final tree
``package_cache``           ``.deb``/``.apk``/``.rpm`` caches; pip, npm, yarn, go, poetry and uv caches
``build_toolchain``         files of compilers, binutils, make, ``-dev`` packages and the packages only they
                            depend on (``build_toolchain_packages``, from the databases' dependency fields)
``temp_files``              ``/tmp``, ``/var/tmp``
``logs``                    ``/var/log`` files
``python_bytecode``         ``__pycache__/*.pyc``: beside their sources (recompiled on import) or orphaned
``documentation``           ``/usr/share/{doc,man,info}`` (the ``copyright`` files are kept)
``duplicate_content``       the same content at several final paths, not hardlinked: all copies but one
                            (one a system package owns is kept; copies two packages ship are left alone)
``layer_compression``       a layer blob stored uncompressed, or much worse than ``gzip -6`` would do, for
                            the download its remaining bytes cost (measured on a sample of the layer)
==========================  ===========================================================================

A row's ``download_bytes_saved`` is the sum of its units' download costs (``compressed_bytes``: each file's share
of its layer's blob, measured by the scan). ``layer_compression`` saves on what the other rows leave of the layer, so no download is counted twice. It is
not proposed for docker-archives and engine images, whose layers are uncompressed by format; its measurement
reads a bounded sample of the blob (``SAMPLE_BYTES``, ``PREFIX_BYTES``) through the image's source, once per
layer digest in a process. ``Bloat.advice_files`` lists the units of each row.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import OcilensError
from .units import short_words

if TYPE_CHECKING:
    from .bloat import Bloat
    from .image import Image
    from .manifest import Descriptor
    from .scan import LayerScan

__all__ = ["advise", "KINDS", "ADVICE_COLUMNS", "FILE_COLUMNS", "PATH_RULES", "TOOLCHAIN_NAMES",
           "build_toolchain_packages", "short_instruction", "layer_name", "compression_ratio",
           "UNCOMPRESSED_TRANSPORTS"]

KINDS = ("delete_in_same_layer", "metadata_only_copy", "overwritten", "unappliable", "package_lists",
         "package_cache", "build_toolchain", "temp_files", "logs", "python_bytecode", "documentation",
         "duplicate_content", "layer_compression")
ADVICE_COLUMNS = ("kind", "layer", "by_layer", "created_by", "files", "example", "bytes_saved",
                  "download_bytes_saved", "fix")
FILE_COLUMNS = ("fix", "kind", "layer", "path", "size", "compressed_bytes", "keep")
_WASTE_KIND = {"deleted_later": "delete_in_same_layer", "metadata_only": "metadata_only_copy",
               "overwritten": "overwritten", "unappliable": "unappliable"}
#: Transports whose layers are uncompressed by format (``docker save``, engines' exports).
UNCOMPRESSED_TRANSPORTS = ("docker-archive", "docker-daemon", "podman")

_HOME = r"/(?:root|home/[^/]+)"
#: (kind, what, pattern on the absolute path), in the order kinds claim: a path goes to the first match.
PATH_RULES: tuple[tuple[str, str, str], ...] = (
    ("package_lists", "apt", r"/var/lib/apt/lists/.+"),
    ("package_lists", "apk", r"/var/cache/apk/(?!.*\.apk$).+"),
    ("package_lists", "dnf", r"/var/cache/(?:dnf|yum)/(?!.*\.rpm$).+"),
    ("package_cache", "apt", r"/var/cache/apt/(?:archives/.+\.deb|[^/]+\.bin)"),
    ("package_cache", "apk", r"/var/cache/apk/.+\.apk"),
    ("package_cache", "dnf", r"/var/cache/(?:dnf|yum)/.+\.rpm"),
    ("package_cache", "pip", rf"{_HOME}/\.cache/pip/.+"),
    ("package_cache", "npm", rf"{_HOME}/\.npm/_cacache/.+"),
    ("package_cache", "yarn", rf"(?:{_HOME}/\.cache/yarn|/usr/local/share/\.cache/yarn)/.+"),
    ("package_cache", "go", rf"{_HOME}/\.cache/go-build/.+|(?:/go|{_HOME}/go)/pkg/mod/cache/download/.+"),
    ("package_cache", "poetry", rf"{_HOME}/\.cache/pypoetry/.+"),
    ("package_cache", "uv", rf"{_HOME}/\.cache/uv/.+"),
    ("temp_files", "", r"/(?:tmp|var/tmp)/.+"),
    ("logs", "", r"/var/log/.+"),
    ("python_bytecode", "", r".*/__pycache__/[^/]+\.py[co]"),
    ("documentation", "", r"/usr/(?:local/)?share/(?:doc/(?![^/]+/copyright$)|man/|info/).+"),
)
_PATHS = re.compile("|".join(f"(?P<r{i}>{rx})" for i, (_, _, rx) in enumerate(PATH_RULES)) + "$")
#: Where every path ``PATH_RULES`` can match starts (or ``/__pycache__/`` in it): a cheap test first.
_RULE_PREFIXES = ("/var/", "/tmp/", "/root/", "/home/", "/go/", "/usr/share/doc/", "/usr/share/man/",
                  "/usr/share/info/", "/usr/local/share/")
_PYC = re.compile(r"^(?P<dir>.*)/__pycache__/(?P<mod>[^/.]+)\.[^/]*\.py[co]$")
#: Package names (dpkg, apk, rpm) that only building needs: compilers, binutils, build tools, headers and
#: ``-dev``/``-devel`` packages. ``gcc-12-base`` and the like are runtime packages (``libgcc-s1`` needs them).
TOOLCHAIN_NAMES = re.compile(
    r"^(?!.*-base$)(?:(?:gcc|g\+\+|cpp|gfortran|gccgo|gnat|clang|llvm|lld|rustc|cargo|golang|binutils)(?:-[\w.+-]*)?"
    r"|go|make|cmake(?:-data)?|ninja-build|meson|autoconf|automake(?:-[\d.]+)?|autotools-dev|libtool(?:-bin)?"
    r"|pkg-config|pkgconf(?:-bin)?|build-essential|build-base|alpine-sdk|dpkg-dev|bison|flex|musl-dev"
    r"|linux-libc-dev|kernel-headers|.+-(?:dev|devel|headers|static))$")

#: How much of a layer blob ``layer_compression`` compresses to measure the gain: windows spread through an
#: uncompressed blob (the absolute ratio varies along a layer), and the start of a compressed one (compared with
#: what the same tar bytes cost in the blob, a ratio of two compressors that varies little).
SAMPLE_BYTES = 4 << 20
PREFIX_BYTES = 512 << 10
_WINDOWS = 16
#: A layer is worth recompressing when gzip -6 saves at least this share of its blob, and this many bytes.
MIN_GAIN_RATIO = 0.10
MIN_GAIN_BYTES = 16 << 10
#: Compressed blobs smaller than this are not sampled (what they could save is below notice).
MIN_SAMPLED_BLOB = 512 << 10


# ------------------------------------------------------------------------------------------ naming


def short_instruction(created_by: Any, limit: int = 70) -> str | None:
    """A history ``created_by`` as the Dockerfile line it came from, on one line and at most ``limit`` long:
    ``/bin/sh -c #(nop) COPY ...`` -> ``COPY ...``, ``/bin/sh -c apt-get ...`` -> ``RUN apt-get ...`` (cut at
    a space, never inside a word or path), buildkit's ``RUN |2 A=1 B=2 /bin/sh -c ...`` and ``# buildkit`` suffix dropped. None when there is none."""
    if created_by is None or created_by is pd.NA or not isinstance(created_by, str) or not created_by.strip():
        return None
    s = " ".join(created_by.split())
    s = re.sub(r"\s*# buildkit$", "", s)
    s = re.sub(r"^(RUN )?\|\d+ (?:\S+=\S* )*", r"\1", s)
    s = re.sub(r"^/bin/(?:ba)?sh -c #\(nop\)\s*", "", s)
    s = re.sub(r"^(?:RUN )?/bin/(?:ba)?sh -c ", "RUN ", s)
    return short_words(s, limit)


def layer_name(layers: pd.DataFrame, layer: int) -> str:
    """How a fix names a layer: its instruction (``RUN apt-get ...``, layer 2), or without a history its number
    and short digest (layer 2, 3f2a9c81d0e4)."""
    ins = short_instruction(layers["created_by"].iloc[layer])
    if ins is not None:
        return f"`{ins}` (layer {layer})"
    digest = str(layers["digest"].iloc[layer])
    return f"layer {layer} ({digest.partition(':')[2][:12] or digest})"


def _what(paths: Sequence[str], example: str) -> str:
    """The files of a row in a few words: the path itself, or how many under which directory."""
    if len(paths) == 1:
        return paths[0]
    common = os.path.commonpath(paths) if paths else "/"
    if common in paths:
        common = os.path.dirname(common)
    where = f"under {common}/" if common not in ("/", "") else f"(the largest {example})"
    return f"{len(paths):,} files {where}"


# ------------------------------------------------------------------------------------------ toolchain


def build_toolchain_packages(image: "Image") -> dict[int, str]:
    """The system packages of the final image only a build needs: ``package_id`` -> ``"toolchain"`` (its name
    says so: ``TOOLCHAIN_NAMES``) or ``"only needed by the toolchain"`` (every installed package that depends
    on it is one of these, read from the databases' dependency fields; essential packages never are)."""
    from .packages.model import model_of

    model = model_of(image)
    if model.empty:
        return {}
    present = [r for r in model.records if r.fate == "present" and r.package.ecosystem in ("dpkg", "apk", "rpm")]
    by_id = {r.id: r.package for r in present}
    providers: dict[tuple[str, str], set[int]] = {}
    owners: dict[tuple[str, str], set[int]] | None = None
    for rid, pkg in by_id.items():
        for name in (pkg.name, *pkg.provides):
            providers.setdefault((pkg.ecosystem, name), set()).add(rid)

    def satisfied_by(eco: str, name: str) -> set[int]:
        nonlocal owners
        hit = providers.get((eco, name))
        if hit is None and name.startswith("/"):  # rpm's and apk's file requirements: the package listing it
            if owners is None:
                owners = {}
                for rid, pkg in by_id.items():
                    for p in pkg.paths:
                        owners.setdefault((pkg.ecosystem, p), set()).add(rid)
            hit = owners.get((eco, name))
        return hit or set()

    rdeps: dict[int, set[int]] = {rid: set() for rid in by_id}
    deps: dict[int, set[int]] = {rid: set() for rid in by_id}
    for rid, pkg in by_id.items():
        for requirement in pkg.depends:
            for alt in requirement.split("|"):
                for other in satisfied_by(pkg.ecosystem, alt):
                    if other != rid:
                        rdeps[other].add(rid)
                        deps[rid].add(other)
    out = {rid: "toolchain" for rid, pkg in by_id.items() if TOOLCHAIN_NAMES.match(pkg.name)}
    queue = list(out)
    while queue:
        rid = queue.pop()
        for dep in deps[rid]:
            if dep in out or by_id[dep].essential:
                continue
            if rdeps[dep] and rdeps[dep] <= out.keys():
                out[dep] = "only needed by the toolchain"
                queue.append(dep)
    return out


# ------------------------------------------------------------------------------------------ compression


_RATIOS: "OrderedDict[str, float | None]" = OrderedDict()
_RATIOS_LOCK = threading.Lock()
_RATIOS_KEPT = 4096


def _gzip6(parts: Iterable[bytes]) -> tuple[int, int]:
    """(bytes in, bytes out) of ``gzip -6`` over each part on its own."""
    n_in = n_out = 0
    for part in parts:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        n_out += len(c.compress(part)) + len(c.flush())
        n_in += len(part)
    return n_in, n_out


def _plain_sample(raw: BinaryIO, size: int) -> list[bytes]:
    """Windows spread evenly through an uncompressed blob (the whole blob when it is small); the stream is
    left as soon as the last window is read."""
    if size <= SAMPLE_BYTES:
        return [raw.read(size)]
    width = SAMPLE_BYTES // _WINDOWS
    starts = [round(k * (size - width) / (_WINDOWS - 1)) for k in range(_WINDOWS)]
    out: list[bytes] = []
    pos = 0
    for start in starts:
        while pos < start:
            skipped = len(raw.read(min(1 << 20, start - pos)))
            if not skipped:
                return out
            pos += skipped
        window = raw.read(width)
        pos += len(window)
        if window:
            out.append(window)
    return out


def compression_ratio(image: "Image", layer: int) -> float | None:
    """How ``gzip -6`` compares with the layer blob as stored: its size over the blob's, estimated on a sample
    (None: no estimate). An uncompressed blob is sampled in windows spread through it (``SAMPLE_BYTES``); a
    compressed one over its first ``PREFIX_BYTES`` of tar, against the compressed bytes those took. Kept per
    layer digest."""
    from .codec import TAR, decompressed_chunks

    desc: Descriptor = image.manifest.layers[layer]
    scan: LayerScan = image.scans[layer]
    with _RATIOS_LOCK:
        if desc.digest in _RATIOS:
            _RATIOS.move_to_end(desc.digest)
            return _RATIOS[desc.digest]
    ratio: float | None = None
    try:
        with image.source.open_blob(desc) as raw:
            if scan.format == TAR:
                n_in, n_out = _gzip6(_plain_sample(raw, desc.size))
                ratio = n_out / n_in if n_in else None
            else:
                marks: list[tuple[int, int]] = []
                _, chunks = decompressed_chunks(raw, what=f"layer {layer} ({desc.digest})", digest=desc.digest,
                                                layer=layer, marks=marks)
                got: list[bytes] = []
                total = 0
                for chunk in chunks:
                    got.append(chunk)
                    total += len(chunk)
                    if total >= PREFIX_BYTES:
                        break
                else:
                    marks.append((total, desc.size))  # the whole blob: its own size is exact
                chunks.close()  # type: ignore[attr-defined]
                if total and marks:
                    # the compressed bytes those tar bytes took: where the decompressor's input stood
                    taken = float(np.interp(total, [0] + [m[0] for m in marks], [0] + [m[1] for m in marks]))
                    _, n_out = _gzip6([b"".join(got)])
                    ratio = n_out / taken if taken > 0 else None
    except (OcilensError, OSError):
        ratio = None  # a blob that cannot be read again (gone since the scan): no estimate, no fix proposed
    with _RATIOS_LOCK:
        _RATIOS[desc.digest] = ratio
        while len(_RATIOS) > _RATIOS_KEPT:
            _RATIOS.popitem(last=False)
    return ratio


# ------------------------------------------------------------------------------------------ advice


@dataclass
class _Row:
    kind: str
    layer: int
    by_layer: int | None
    sub: str = ""
    paths: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    downloads: list[int] = field(default_factory=list)
    keep: list[str | None] = field(default_factory=list)
    packages: dict[str, int] = field(default_factory=dict)
    ecosystems: set[str] = field(default_factory=set)  # the package managers that installed the files
    orphans: int = 0
    saved_download: int | None = None  # set directly for layer_compression
    note: str = ""

    def add(self, path: str, size: int, download: int, keep: str | None = None) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        self.downloads.append(download)
        self.keep.append(keep)

    @property
    def example(self) -> str | None:
        if not self.paths:
            return None
        return self.paths[int(np.argmax(self.sizes))]


def advise(bloat: "Bloat") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(advice, advice_files)`` of an image's bloat audit (see the module docstring)."""
    img = bloat.image
    layers = img.layers
    rows: dict[tuple, _Row] = {}

    def row(kind: str, layer: int, by_layer: int | None = None, sub: str = "") -> _Row:
        key = (kind, layer, by_layer, sub)
        r = rows.get(key)
        if r is None:
            r = rows[key] = _Row(kind, layer, by_layer, sub)
        return r

    # waste: every lost version, by cause, layer and the layer that made it waste
    c = bloat.causes
    for path, layer, size, cause, by_layer, download in zip(
            c["path"].tolist(), c["layer"].tolist(), c["size"].tolist(), c["cause"].astype(str).tolist(),
            c["by_layer"].tolist(), c["compressed_bytes"].tolist()):
        row(_WASTE_KIND[cause], int(layer), int(by_layer)).add(path, int(size), int(download))

    # visible: the final tree's regular files, each inode once
    files = img.files
    regular = files[files["type"] == "file"]
    paths = regular["path"].tolist()
    sizes = regular["size"].fillna(0).astype("int64").tolist()
    flayers = regular["layer"].astype("int64").tolist()
    downloads = regular["compressed_bytes"].fillna(0).astype("int64").tolist()
    pids = regular["package_id"].fillna(-1).astype("int64").tolist()
    ecos = regular["ecosystem"].astype(object).tolist()
    digests = regular["digest"].tolist()
    names = regular["package"].astype(object).tolist()
    claimed = [False] * len(paths)
    present: set[str] | None = None

    # path rules before the toolchain only for lists and caches (the table's order); the rest after it
    toolchain = build_toolchain_packages(img)
    first_rules = sum(1 for k, _, _ in PATH_RULES if k in ("package_lists", "package_cache"))
    matches: list[int | None] = [None] * len(paths)
    match = _PATHS.match
    for k, p in enumerate(paths):
        if p.startswith(_RULE_PREFIXES) or "/__pycache__/" in p:
            m = match(p)
            if m:
                matches[k] = int(m.lastgroup[1:])  # type: ignore[index]

    def claim_rules(lo: int, hi: int) -> None:
        nonlocal present
        for k, rule in enumerate(matches):
            if rule is None or claimed[k] or not lo <= rule < hi:
                continue
            kind, sub, _ = PATH_RULES[rule]
            r = row(kind, flayers[k], None, sub)
            if kind == "python_bytecode":
                pyc = _PYC.match(paths[k])
                if pyc:
                    if present is None:
                        present = set(files["path"].tolist())
                    if f"{pyc['dir']}/{pyc['mod']}.py" not in present:
                        r.orphans += 1
            if isinstance(ecos[k], str):
                r.ecosystems.add(ecos[k])
            r.add(paths[k], sizes[k], downloads[k])
            claimed[k] = True

    claim_rules(0, first_rules)
    if toolchain:
        for k, pid in enumerate(pids):
            if not claimed[k] and pid in toolchain:
                r = row("build_toolchain", flayers[k])
                r.add(paths[k], sizes[k], downloads[k])
                if toolchain[pid] == "toolchain":
                    r.packages[names[k]] = r.packages.get(names[k], 0) + sizes[k]
                claimed[k] = True
    claim_rules(first_rules, len(PATH_RULES))

    # duplicates among what is left: keep one copy (a system package's if any), link the others
    groups: dict[str, list[int]] = {}
    repeated = regular["digest"].duplicated(keep=False).to_numpy(dtype=bool)  # a handful of rows, usually
    for k in np.flatnonzero(repeated).tolist():
        d = digests[k]
        if not claimed[k] and sizes[k] > 0 and isinstance(d, str):
            groups.setdefault(d, []).append(k)
    for members in groups.values():
        if len(members) < 2:
            continue
        owned = [k for k in members if ecos[k] in ("dpkg", "apk", "rpm")]
        members.sort(key=lambda k: (ecos[k] not in ("dpkg", "apk", "rpm"), flayers[k], len(paths[k]), paths[k]))
        keep = members[0]
        for k in members[1:]:
            if k in owned:
                continue  # two packages ship it: no Dockerfile line to change
            row("duplicate_content", flayers[k]).add(paths[k], sizes[k], downloads[k], keep=paths[keep])
            claimed[k] = True

    # compression: the download the layer's remaining bytes cost, against gzip -6 of them
    if img.source.transport not in UNCOMPRESSED_TRANSPORTS:
        spoken: dict[int, int] = {}
        for r in rows.values():
            spoken[r.layer] = spoken.get(r.layer, 0) + sum(r.downloads)
        for layer, scan in enumerate(img.scans):
            blob = int(img.manifest.layers[layer].size)
            if scan.format != "tar" and blob < MIN_SAMPLED_BLOB:
                continue
            if blob < MIN_GAIN_BYTES:
                continue
            ratio = compression_ratio(img, layer)
            if ratio is None or ratio > 1 - MIN_GAIN_RATIO:
                continue
            remaining = max(blob - spoken.get(layer, 0), 0)
            gain = round(remaining * (1 - ratio))
            if gain < MIN_GAIN_BYTES:
                continue
            r = row("layer_compression", layer)
            r.saved_download = gain
            r.note = "uncompressed" if scan.format == "tar" else f"{scan.format}, {1 / ratio:.1f}x the size gzip -6 gives"
            entries = [i for i, t in enumerate(scan.types) if t == "f"]
            r.paths = [scan.paths[i] for i in entries]
            r.sizes = [scan.sizes[i] for i in entries]
            r.downloads = [0] * len(entries)
            r.keep = [None] * len(entries)

    return _frames(img, layers, rows.values())


def _fix(r: _Row, layers: pd.DataFrame) -> str:
    """The one-sentence Dockerfile change for a row, naming the instruction to change."""
    here = layer_name(layers, r.layer)
    by = layer_name(layers, r.by_layer) if r.by_layer is not None else ""
    example = r.example or ""
    what = _what(r.paths, example) if r.paths else ""
    k = r.kind
    if k == "delete_in_same_layer":
        if r.by_layer == r.layer:
            return f"Do not create {what} in {here}: the same step removes them again."
        return (f"Delete {what} in the same step that creates them, {here}, not later in {by}; or make them "
                f"in a build stage that is not shipped.")
    if k == "metadata_only_copy":
        return (f"Set the mode and owner where {what} are added, in {here} (`COPY --chmod/--chown`, "
                f"`install -m`), and drop the re-ship in {by}.")
    if k == "overwritten":
        return f"Write {what} once, in its final form: {by} replaces what {here} wrote."
    if k == "unappliable":
        return (f"Remove {what} from {here}: a parent path is not a directory (or loops), so no runtime "
                f"applies it.")
    if k == "package_lists":
        return {"apt": f"End {here} with `rm -rf /var/lib/apt/lists/*`, in the same RUN as `apt-get update`.",
                "apk": f"Use `apk add --no-cache` in {here}, which keeps no index in /var/cache/apk.",
                }.get(r.sub, f"End {here} with `dnf clean all` (or `yum clean all`) in the same RUN.")
    if k == "package_cache":
        tool = {"apt": ("`apt-get clean` at its end", "/var/cache/apt"),
                "apk": ("`apk add --no-cache`", "/var/cache/apk"),
                "dnf": ("`dnf clean all` at its end", "/var/cache/dnf"),
                "pip": ("`pip install --no-cache-dir`", "/root/.cache/pip"),
                "npm": ("`npm cache clean --force` at its end", "/root/.npm"),
                "yarn": ("`yarn cache clean` at its end", "/usr/local/share/.cache/yarn"),
                "go": ("`go clean -cache -modcache` at its end", "/root/.cache/go-build"),
                "poetry": ("`poetry install --no-cache`", "/root/.cache/pypoetry"),
                "uv": ("`uv pip install --no-cache` (or `UV_NO_CACHE=1`)", "/root/.cache/uv")}[r.sub]
        return (f"Use {tool[0]} in {here}, or keep the cache out of the image with "
                f"`RUN --mount=type=cache,target={tool[1]}`.")
    if k == "build_toolchain":
        top = sorted(r.packages, key=lambda n: -r.packages[n])
        named = ", ".join(top[:3]) + (f" and {len(top) - 3} more" if len(top) > 3 else "")
        return (f"Build in a separate stage: {named or 'the build packages'} from {here} (and the libraries only "
                f"they use) are needed only to build; copy the build's output into a final stage without them.")
    if k == "temp_files":
        return (f"Remove {what} at the end of {here}, in the same RUN (or mount a tmpfs there: "
                f"`RUN --mount=type=tmpfs,target=/tmp`).")
    if k == "logs":
        return f"Delete or truncate {what} at the end of {here}, in the same RUN."
    if k == "python_bytecode":
        if r.orphans == len(r.paths):
            return f"Delete {what} in {here}: their sources are gone, so Python never loads them."
        return (f"Do not ship bytecode from {here}: set `ENV PYTHONDONTWRITEBYTECODE=1` before it, or use "
                f"`pip install --no-compile` (Python compiles on first import instead).")
    if k == "documentation":
        how = [text for eco, text in (
            ("dpkg", "`path-exclude` /usr/share/doc/*, /usr/share/man/* and /usr/share/info/* in "
                     "/etc/dpkg/dpkg.cfg.d/ before it (with `path-include` /usr/share/doc/*/copyright)"),
            ("rpm", "`dnf install --nodocs`"), ("apk", "no `-doc` packages")) if eco in r.ecosystems]
        how.append("delete them at the end of the same RUN (keep the copyright files)")
        return f"Leave the documentation ({what}) out of {here}: " + ", or ".join(how) + "."
    if k == "duplicate_content":
        if len(r.paths) == 1:
            return f"In {here}, link {r.paths[0]} to {r.keep[0]} (`ln`) instead of shipping a second copy."
        return (f"In {here}, link {what} to the copies already in the image (`ln`; the largest, {example}, to "
                f"{r.keep[int(np.argmax(r.sizes))]}) instead of shipping them again.")
    if k == "layer_compression":
        return (f"Push {here} gzip-compressed at level 6 or better (it is stored {r.note}): with buildx, "
                f"`--output type=image,compression=gzip,compression-level=6,force-compression=true`.")
    raise AssertionError(k)  # pragma: no cover - every kind has its sentence


def _frames(img: "Image", layers: pd.DataFrame, rows: Iterable[_Row]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The advice table, largest download saving first, and the file versions behind each row."""
    order = {k: i for i, k in enumerate(KINDS)}
    done = []
    for r in rows:
        download = r.saved_download if r.saved_download is not None else sum(r.downloads)
        saved = 0 if r.kind == "layer_compression" else sum(r.sizes)
        if download <= 0 and saved <= 0:
            continue
        done.append((r, saved, download))
    done.sort(key=lambda t: (-t[2], -t[1], order[t[0].kind], t[0].layer))
    created = layers["created_by"]
    advice = pd.DataFrame({
        "kind": pd.array([r.kind for r, _, _ in done], dtype="string"),
        "layer": pd.array([r.layer for r, _, _ in done], dtype="Int16"),
        "by_layer": pd.array([r.by_layer for r, _, _ in done], dtype="Int16"),
        "created_by": pd.array([created.iloc[r.layer] for r, _, _ in done], dtype="string"),
        "files": pd.array([len(r.paths) for r, _, _ in done], dtype="Int64"),
        "example": pd.array([r.example for r, _, _ in done], dtype="string"),
        "bytes_saved": pd.array([s for _, s, _ in done], dtype="Int64"),
        "download_bytes_saved": pd.array([d for _, _, d in done], dtype="Int64"),
        "fix": pd.array([_fix(r, layers) for r, _, _ in done], dtype="string"),
    })
    fix_of: list[int] = []
    kinds: list[str] = []
    flayers: list[int] = []
    fpaths: list[str] = []
    fsizes: list[int] = []
    fdown: list[int] = []
    fkeep: list[str | None] = []
    for i, (r, _, _) in enumerate(done):
        if r.kind == "layer_compression":
            continue  # no file goes: the layer is stored differently
        n = len(r.paths)
        fix_of += [i] * n
        kinds += [r.kind] * n
        flayers += [r.layer] * n
        fpaths += r.paths
        fsizes += r.sizes
        fdown += r.downloads
        fkeep += r.keep
    files = pd.DataFrame({
        "fix": pd.array(fix_of, dtype="Int64"), "kind": pd.array(kinds, dtype="string"),
        "layer": pd.array(flayers, dtype="Int16"), "path": pd.array(fpaths, dtype="string"),
        "size": pd.array(fsizes, dtype="Int64"), "compressed_bytes": pd.array(fdown, dtype="Int64"),
        "keep": pd.array(fkeep, dtype="string"),
    })
    return advice, files
