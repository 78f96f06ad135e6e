"""Image sources behind one interface, chosen by skopeo's transport names."""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import Any, Callable

from ..codec import TAR, sniff
from ..errors import ImageReferenceError, InvalidReference, OcilensError, SourceError, SourceNotFound, UsageError
from ..paths import normalize_path
from ..reference import RULE_FORMAT, Reference
from .base import Source
from .docker_archive import DockerArchiveSource
from .layout import LayoutSource
from .storage import TarStorage, is_stream, open_stream

__all__ = ["Source", "open_source", "split_path_selector", "LayoutSource", "DockerArchiveSource",
           "REGISTRY_OPTIONS", "CLIENT_OPTIONS", "is_local_reference", "options_for"]

LOCAL_TRANSPORTS = ("oci", "oci-archive", "docker-archive")
#: skopeo's name for the Docker engine's images, and podman's: read through the engine's API
ENGINE_TRANSPORTS = ("docker-daemon", "podman")
#: The keyword options the registry client takes (``RegistryClient.__init__``'s but ``max_connections``, which a
#: source derives from ``max_workers``; kept in step by a test): what a fleet lists repositories with.
CLIENT_OPTIONS = ("auth", "insecure", "retry", "transport", "timeout")
#: The keyword options a registry source takes (``RegistrySource.__init__``, kept in step by a test): the
#: client's and its own. Local sources accept them too.
REGISTRY_OPTIONS = CLIENT_OPTIONS + ("cache", "progress", "max_workers")
#: Of those, the ones that only mean something for a registry: a local source warns that it ignores them.
REGISTRY_ONLY = ("auth", "insecure")
_PATH_PREFIXES = ("/", "./", "../", "~")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst")
#: What ``_sniff_local`` says of a FIFO, a pipe or a character device: an archive that can be read only once,
#: so its kind is learnt by reading it (``_stream_source``), never by peeking into it.
STREAM = "stream"


def split_path_selector(rest: str) -> tuple[str, str | None]:
    """``PATH[:TAG]`` or ``PATH@sha256:...`` -> (path, selector); a path that exists is taken whole."""
    if os.path.exists(os.path.expanduser(rest)):
        return rest, None
    at = rest.find("@sha256:")
    if at < 0:
        at = rest.find("@sha512:")
    if at > 0:
        return rest[:at], rest[at:]
    if ":@" in rest:  # docker-archive:FILE:@N
        path, _, n = rest.rpartition(":@")
        return path, "@" + n
    # The tag is after the first ':' that follows an existing path prefix (paths may hold ':').
    idx = rest.find(":")
    while idx > 0:
        if os.path.exists(os.path.expanduser(rest[:idx])):
            return rest[:idx], rest[idx + 1:] or None
        idx = rest.find(":", idx + 1)
    path, sep, tag = rest.partition(":")
    return path, (tag or None) if sep else None


def _sniff_local(path: str) -> str | None:
    """The transport for a bare path: a layout directory, an archive by what it holds, or ``STREAM`` for a FIFO
    or pipe (not opened here: a stream cannot be peeked at)."""
    p = Path(os.path.expanduser(path))
    if p.is_dir():
        return "oci" if (p / "index.json").exists() else None
    if is_stream(p):
        return STREAM
    if p.is_file():
        import tarfile
        try:
            with tarfile.open(p, "r:") as tf:
                names = {normalize_path(m.name)[0][1:] for m in tf}
        except (tarfile.TarError, OSError):
            return None
        return _archive_kind(names.__contains__)
    return None


def _archive_kind(has: Callable[[str], bool]) -> str | None:
    """The transport of an archive by the index it holds (``has(name)``: is that member there).

    ``manifest.json`` first: docker save (Docker 25+'s archive is an OCI layout too, and docker-archive: reads
    it as docker load does); then ``index.json`` (an OCI layout); then docker < 1.10's ``repositories``, the
    only index of its archives (README.md, "Archives can come from ...": the layouts docker-archive: reads).
    """
    if has("manifest.json"):
        return "docker-archive"
    if has("index.json"):
        return "oci-archive"
    if has("repositories"):
        return "docker-archive"
    return None


def _looks_like_path(ref: str) -> bool:
    """True for what is a path, never a registry reference: ``/x``, ``./x``, ``~/x``, ``image.tar``."""
    return ref.startswith(_PATH_PREFIXES) or ref.lower().endswith(_TAR_SUFFIXES)


def _not_an_image(ref: str) -> SourceError:
    """The error for a bare path that exists but is not a layout or archive: what it is instead."""
    p = Path(os.path.expanduser(ref))
    registry_hint = f"; to pull {ref!r} from a registry, write docker://{ref}" if not _looks_like_path(ref) else ""
    if not p.exists():
        return SourceNotFound(f"{ref!r} is a symbolic link to {os.readlink(p)!r}, which does not exist",
                              reference=ref, path=str(p), hint="fix the link, or name the layout or archive itself")
    if p.is_dir():
        return SourceError(f"{ref!r} is a directory, but not an OCI image layout (it has no index.json)",
                           reference=ref, hint="name the layout directory itself (the one holding index.json and "
                                               f"blobs/), e.g. oci:DIR:TAG{registry_hint}")
    try:
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        return SourceError(f"{ref!r} exists but cannot be read: {exc.strerror}", reference=ref,
                           hint="check its permissions")
    if sniff(head) != TAR:
        return SourceError(f"{ref!r} is a compressed file; image archives are read uncompressed", reference=ref,
                           hint=f"decompress it first (gzip -dc / zstd -dc {ref} > image.tar), then load "
                                "oci-archive:image.tar or docker-archive:image.tar")
    if len(head) == 512 and head[257:262] == b"ustar":
        try:
            damage = TarStorage(p, ref).damage
        except SourceError as exc:  # truncated inside a member, unreadable
            return exc
        if damage:
            return SourceNotFound(f"{ref!r} is a tar archive without index.json or manifest.json; {damage}",
                                  reference=ref, path=str(p),
                                  hint="the copy or download was cut short; copy or save the image again")
        return _no_index(ref, registry_hint)
    return SourceError(f"{ref!r} exists, but is neither an OCI image layout nor an image archive", reference=ref,
                       hint="give an OCI layout directory, an oci-archive tar or a docker save tar"
                            f"{registry_hint}")


def _no_index(ref: str, registry_hint: str = "") -> SourceError:
    """The error for a tar archive (a file or a stream) that holds none of the indexes ``_archive_kind`` knows."""
    return SourceError(f"{ref!r} is a tar archive, but neither an OCI layout (no index.json) nor a docker save "
                       "archive (no manifest.json, nor the repositories file of docker < 1.10)", reference=ref,
                       hint=f"archives come from skopeo copy ... oci-archive:FILE or docker save{registry_hint}")


def _missing_path(ref: str) -> OcilensError:
    """The error for a bare path that does not exist; a hint when it is an existing ``PATH:TAG``."""
    path, selector = split_path_selector(ref)
    if selector and path != ref and os.path.exists(os.path.expanduser(path)):
        kind = _sniff_local(path)
        sep = "" if selector.startswith("@sha") else ":"
        if kind == STREAM:
            return ImageReferenceError(
                f"{ref!r}: no such file or directory; {path} is a FIFO or pipe and {selector!r} would select an "
                "image in the archive that comes through it", reference=ref,
                hint=f"name the transport to select an image: docker-archive:{path}{sep}{selector} or "
                     f"oci-archive:{path}{sep}{selector}")
        if kind is not None:
            return ImageReferenceError(
                f"{ref!r}: no such file or directory; {path} is an image {'layout' if kind == 'oci' else 'archive'}"
                f" and {selector!r} would select an image in it", reference=ref,
                hint=f"name the transport to select an image: {kind}:{path}{sep}{selector}")
    return SourceNotFound(f"{ref!r}: no such file or directory", reference=ref, path=ref,
                          hint="check the path; an image reference for a registry is host/repository:tag "
                               "(or docker://host/repository:tag)")


def _check_names(ref: str, options: dict[str, Any]) -> None:
    """An option name no source takes is a ``UsageError`` that suggests the likely one."""
    unknown = sorted(set(options) - set(REGISTRY_OPTIONS))
    if unknown:
        import difflib

        from ..image import load  # for the options load() takes itself, which a typo may have meant

        load_options = [name for name, p in inspect.signature(load).parameters.items()
                        if p.kind is p.KEYWORD_ONLY or name == "platform"]
        known = sorted(set(load_options) | set(REGISTRY_OPTIONS))
        guess = difflib.get_close_matches(unknown[0], known, n=1)
        names = ", ".join(f"{name}=" for name in unknown)
        raise UsageError(f"unknown option{'s' if len(unknown) > 1 else ''} {names} for {ref!r}", reference=ref,
                         hint=(f"did you mean {guess[0]}=? " if guess else "")
                         + f"the options are: {', '.join(known)}")


def _check_values(ref: str, options: dict[str, Any]) -> None:
    """Malformed ``auth=`` / ``insecure=`` values are ``UsageError``s (whatever the source)."""
    auth = options.get("auth")
    if auth is not None and not _is_credentials(auth):
        what = (f"a {len(auth)}-item {type(auth).__name__}" if isinstance(auth, (tuple, list))
                else f"a {type(auth).__name__}")  # never the value: it holds a secret
        hint = "pass auth=(user, password)"
        if isinstance(auth, str) and ":" in auth:
            hint = "split 'user:password' into auth=(user, password)"
        raise UsageError(f"auth= for {ref!r} is {what}; it must be a (user, password) pair of strings",
                         reference=ref, hint=f"{hint}, or leave auth= out to use docker's config (docker login)")
    insecure = options.get("insecure")
    if insecure is not None and not isinstance(insecure, bool):
        raise UsageError(f"insecure= for {ref!r} is a {type(insecure).__name__}; it must be True, False or None",
                         reference=ref, hint="insecure=True allows plain HTTP and unverified TLS for this registry")


def _is_credentials(auth: Any) -> bool:
    """A ``(user, password)`` pair of strings, or a ``Credentials``."""
    if isinstance(auth, (tuple, list)):
        return len(auth) == 2 and all(isinstance(part, str) for part in auth)
    from ..registry.credentials import Credentials

    return isinstance(auth, Credentials)


def _warn_registry_only(ref: str, transport: str, options: dict[str, Any]) -> None:
    """Say that ``auth=`` / ``insecure=`` are ignored by a local source.

    A warning, not an error: the CLI's --insecure and audit()'s options are applied to every reference, so a
    list mixing registries and local paths passes them to local sources legitimately, and raising would
    break it; silence, though, would hide credentials meant for a registry reference that turned out to be a
    path. Python shows a warning once per call site, and callers can filter it (category UserWarning).
    """
    given = [name for name in REGISTRY_ONLY if options.get(name) not in (None, False)]
    if given:
        names = " and ".join(f"{name}=" for name in given)
        verb, them = ("apply", "them") if len(given) > 1 else ("applies", "it")
        warnings.warn(f"ocilens: {names} only {verb} to registries; {ref!r} is a local {transport}: source, "
                      f"which ignores {them}", UserWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside ocilens (the caller's line)."""
    package = str(Path(__file__).resolve().parent.parent) + os.sep
    frame, level = inspect.currentframe(), 0
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return max(level, 1)


def is_local_reference(ref: Any) -> bool:
    """True when ``ref`` names a layout or archive on this machine (what ``open_source`` opens locally)."""
    if isinstance(ref, os.PathLike):
        return True
    if not isinstance(ref, str) or not ref or ref.startswith("docker://"):
        return False
    transport, sep, _ = ref.partition(":")
    if sep and (transport in LOCAL_TRANSPORTS or transport in ENGINE_TRANSPORTS):
        return True
    return _sniff_local(ref) is not None or _looks_like_path(ref)


def options_for(ref: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without ``auth=``/``insecure=`` for a local ``ref``: options given for every registry of a
    list (the CLI's ``--insecure``, ``audit()``'s) are not a mistake for the paths in it."""
    if any(k in options for k in REGISTRY_ONLY) and is_local_reference(ref):  # (the cheap test first)
        return {k: v for k, v in options.items() if k not in REGISTRY_ONLY}
    return options


def open_source(ref: str, **registry_options: Any) -> Source:
    """The source for a reference: ``oci:``, ``oci-archive:``, ``docker-archive:``, ``docker://``, a bare
    registry reference (``host/repo:tag``), or a bare path to a layout or archive.

    ``registry_options`` are ``RegistrySource``'s (``auth=``, ``insecure=``, ...); an unknown name is a
    ``UsageError`` for every kind of source, and a local source warns that it ignores ``auth=``/``insecure=``.
    """
    if isinstance(ref, Reference):
        return _registry(ref, registry_options)
    path_given = isinstance(ref, os.PathLike)
    if path_given:
        ref = os.fspath(ref)
    if not isinstance(ref, str):
        raise InvalidReference(f"a reference is a string, not {type(ref).__name__}", rule=RULE_FORMAT,
                               hint="e.g. 'oci:DIR:TAG', 'oci-archive:FILE', 'docker-archive:FILE' or "
                                    "'registry.example.com/repo:tag'")
    _check_values(ref, registry_options)
    if not ref:  # not the current directory: parse_reference says what an empty reference is
        return _registry(ref, registry_options)
    transport, sep, rest = ref.partition(":")
    if sep and transport in LOCAL_TRANSPORTS and not path_given:
        if not rest:
            raise ImageReferenceError(f"{ref!r}: the {transport}: transport needs a path", reference=ref,
                                      hint=f"write {transport}:PATH")
        return _local(ref, transport, rest, registry_options)
    if ref.startswith("docker://") and not path_given:
        return _registry(ref[len("docker://"):], registry_options)
    if sep and transport in ENGINE_TRANSPORTS and not path_given:
        return _engine(ref, transport, rest, registry_options)
    if sep and transport in ("containers-storage", "dir", "sif", "ostree") and not path_given:
        raise ImageReferenceError(f"{ref!r}: the {transport}: transport is not supported", reference=ref,
                                  hint="export the image first, e.g. skopeo copy ... oci-archive:image.tar")
    # A bare path. An existing file, or anything spelled as a path (/x, ./x, ~/x, x.tar), is local and never a
    # Docker Hub name; an existing directory with a bare name (alpine/) is not taken for one: docker reads
    # such a reference as a registry's, and so does ocilens.
    local = _sniff_local(ref)
    if local == STREAM:
        return _stream_source(ref, registry_options)
    if local is not None:
        return _local(f"{local}:{ref}", local, ref, registry_options)
    expanded = os.path.expanduser(ref)
    if os.path.lexists(expanded) and (path_given or _looks_like_path(ref) or not os.path.isdir(expanded)):
        raise _not_an_image(ref)
    if path_given or _looks_like_path(ref):
        raise _missing_path(ref)
    return _registry(ref, registry_options)


def _local(ref: str, transport: str, rest: str, options: dict[str, Any]) -> Source:
    """A layout or archive source for ``transport:rest``."""
    _check_names(ref, options)
    _warn_registry_only(ref, transport, options)
    path, selector = split_path_selector(rest)
    if transport == "docker-archive":
        return DockerArchiveSource(ref, path, selector)
    return LayoutSource(ref, path, selector, archive=transport == "oci-archive")


def _stream_source(path: str, options: dict[str, Any]) -> Source:
    """A bare path to a FIFO or pipe: the archive coming through it is read once (as ``docker-archive:PATH``
    and ``oci-archive:PATH`` read it), then served by the source of the index found in it (``_archive_kind``)."""
    _check_names(path, options)
    storage = open_stream(path, path, what="the stream")
    kind = _archive_kind(storage.exists)
    if kind is None:
        storage.close()
        if storage.damage:
            raise storage.missing("manifest.json", "an index (index.json, manifest.json or repositories)")
        raise _no_index(path)
    ref = f"{kind}:{path}"
    storage.reference = ref  # its later errors (a member missing) name the source it now is
    _warn_registry_only(ref, kind, options)
    if kind == "docker-archive":
        return DockerArchiveSource(ref, path, None, storage=storage)
    return LayoutSource(ref, path, None, archive=True, storage=storage)


def _engine(ref: str, transport: str, name: str, options: dict[str, Any]) -> Source:
    """An image of the local Docker (``docker-daemon:``) or Podman (``podman:``) engine."""
    from ..cache import BlobStore
    from .engine import EngineSource

    _check_names(ref, options)
    _warn_registry_only(ref, transport, options)
    cache = options.get("cache")
    return EngineSource(ref, transport, name, cache=cache if isinstance(cache, BlobStore) else None,
                        progress=options.get("progress"))


def _registry(ref: str | Reference, options: dict[str, Any]) -> Source:
    try:
        from .registry import RegistrySource  # type: ignore[attr-defined]
    except ImportError:
        raise ImageReferenceError(f"{ref!r}: registry references are not supported by this build",
                                  reference=str(ref)) from None
    _check_names(str(ref), options)
    return RegistrySource(ref, **options)
