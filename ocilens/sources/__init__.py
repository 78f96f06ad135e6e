"""Image sources behind one interface, chosen by skopeo's transport names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ImageReferenceError, SourceNotFound
from .base import Source
from .docker_archive import DockerArchiveSource
from .layout import LayoutSource

__all__ = ["Source", "open_source", "split_path_selector", "LayoutSource", "DockerArchiveSource"]

LOCAL_TRANSPORTS = ("oci", "oci-archive", "docker-archive")


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
    """The transport for a bare path: a layout directory, or an archive by what it holds."""
    p = Path(os.path.expanduser(path))
    if p.is_dir():
        return "oci" if (p / "index.json").exists() else None
    if p.is_file():
        import tarfile
        try:
            with tarfile.open(p, "r:") as tf:
                names = {m.name.lstrip("./") for m in tf if m.name.count("/") <= 1}
        except (tarfile.TarError, OSError):
            return None
        if "manifest.json" in names:
            return "docker-archive"
        if "index.json" in names:
            return "oci-archive"
    return None


def open_source(ref: str, **registry_options: Any) -> Source:
    """The source for a reference: ``oci:``, ``oci-archive:``, ``docker-archive:``, ``docker://``, a bare
    registry reference (``host/repo:tag``), or a bare path to a layout or archive."""
    transport, sep, rest = ref.partition(":")
    if sep and transport in LOCAL_TRANSPORTS:
        if not rest:
            raise ImageReferenceError(f"{ref!r}: the {transport}: transport needs a path", reference=ref)
        path, selector = split_path_selector(rest)
        if transport == "docker-archive":
            return DockerArchiveSource(ref, path, selector)
        return LayoutSource(ref, path, selector, archive=transport == "oci-archive")
    if ref.startswith("docker://"):
        return _registry(ref[len("docker://"):], registry_options)
    if sep and transport in ("docker-daemon", "containers-storage", "dir", "sif", "ostree"):
        raise ImageReferenceError(f"{ref!r}: the {transport}: transport is not supported", reference=ref,
                                  hint="export the image first, e.g. skopeo copy ... oci-archive:image.tar")
    local = _sniff_local(ref)
    if local is not None:
        return open_source(f"{local}:{ref}", **registry_options)
    if ref.startswith(("/", "./", "../", "~")):
        raise SourceNotFound(f"{ref!r} is not an image layout or archive", reference=ref, path=ref,
                             hint="prefix it with oci:, oci-archive: or docker-archive:")
    return _registry(ref, registry_options)


def _registry(ref: str, options: dict[str, Any]) -> Source:
    try:
        from .registry import RegistrySource  # type: ignore[attr-defined]
    except ImportError:
        raise ImageReferenceError(f"{ref!r}: registry references are not supported by this build",
                                  reference=ref) from None
    return RegistrySource(ref, **options)
