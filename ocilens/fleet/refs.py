"""What a fleet is made of: references, repositories (every tag) and registries (every repository).

``expand(targets)`` turns each target into image references:

- ``host:port`` or ``host.name`` (no ``/``; a trailing ``/`` forces it): the registry's catalog
  (``/v2/_catalog``), then every tag of every repository (``/v2/<name>/tags/list``), pages followed,
  repositories and tags in lexical order (registries list them in any order);
- ``host/repo`` with neither tag nor digest: every tag of that repository;
- ``oci:DIR`` / ``oci-archive:FILE`` without a tag: every tagged image of the layout;
- anything else (``host/repo:tag``, ``...@sha256:...``, ``docker-archive:FILE``): that one image.

A registry or repository that cannot be listed is an error row, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import OcilensError
from ..reference import is_registry_host
from ..registry.client import RegistryClient
from ..sources import CLIENT_OPTIONS

__all__ = ["expand", "Expanded", "Target", "classify", "CLIENT_OPTIONS"]


@dataclass(frozen=True)
class Target:
    """One thing the caller named: ``kind`` is ``image``, ``repository``, ``registry`` or ``layout``."""

    text: str
    kind: str
    registry: str | None = None
    repository: str | None = None


@dataclass
class Expanded:
    """The image references found (in order, without repeats) and the targets that could not be listed:
    ``errors`` rows are ``(target, error type, message)``."""

    references: list[str]
    errors: list[tuple[str, str, str]]


def classify(text: str) -> Target:
    """Which kind of target ``text`` is (see the module docstring)."""
    ref = text[len("docker://"):] if text.startswith("docker://") else text
    transport, sep, rest = ref.partition(":")
    if sep and transport in ("oci", "oci-archive"):
        from ..sources import split_path_selector

        _, selector = split_path_selector(rest)
        return Target(text, "image" if selector else "layout")
    if sep and transport == "docker-archive" or ref.startswith(("/", "./", "../", "~")):
        return Target(text, "image")
    bare = ref.rstrip("/")
    if "/" not in bare and (ref.endswith("/") or is_registry_host(bare)):
        return Target(text, "registry", registry=bare)
    last = bare.rsplit("/", 1)[-1]
    if "/" in bare and "@" not in bare and ":" not in last:
        from ..reference import parse_reference

        try:
            parsed = parse_reference(bare)
        except OcilensError:
            return Target(text, "image")  # let loading it say what is wrong with it
        return Target(text, "repository", registry=parsed.registry, repository=parsed.repository)
    return Target(text, "image")


def _client(registry: str, options: dict[str, Any]) -> RegistryClient:
    return RegistryClient(registry, **{k: v for k, v in options.items() if k in CLIENT_OPTIONS})


def expand(targets: str | Iterable[str], *, page_size: int | None = None, **registry_options: Any) -> Expanded:
    """The image references of ``targets`` (a string or a list; see the module docstring)."""
    items = [targets] if isinstance(targets, str) else list(targets)
    refs: list[str] = []
    errors: list[tuple[str, str, str]] = []
    clients: dict[str, RegistryClient] = {}

    def client(registry: str) -> RegistryClient:
        if registry not in clients:
            clients[registry] = _client(registry, registry_options)
        return clients[registry]

    def tags_of(target: str, registry: str, repository: str) -> None:
        try:
            tags = client(registry).tags(repository, page_size=page_size)
        except OcilensError as exc:
            errors.append((target, type(exc).__name__, str(exc)))
            return
        refs.extend(f"{registry}/{repository}:{tag}" for tag in sorted(tags))  # registries list in any order

    try:
        for item in items:
            if not isinstance(item, str):
                raise TypeError(f"a fleet reference is a string, not {type(item).__name__}: {item!r}")
            target = classify(item)
            if target.kind == "registry":
                assert target.registry is not None
                try:
                    repos = client(target.registry).catalog(page_size=page_size)
                except OcilensError as exc:
                    errors.append((item, type(exc).__name__, str(exc)))
                    continue
                for repo in sorted(repos):
                    tags_of(f"{target.registry}/{repo}", target.registry, repo)
            elif target.kind == "repository":
                assert target.registry is not None and target.repository is not None
                tags_of(item, target.registry, target.repository)
            elif target.kind == "layout":
                from ..sources import open_source

                try:
                    with open_source(item) as src:
                        tags = src.tags()  # type: ignore[attr-defined]
                except OcilensError as exc:
                    errors.append((item, type(exc).__name__, str(exc)))
                    continue
                refs.extend(f"{item}:{tag}" for tag in tags) if tags else refs.append(item)
            else:
                refs.append(item)
    finally:
        for c in clients.values():
            c.close()
    return Expanded(list(dict.fromkeys(refs)), errors)
