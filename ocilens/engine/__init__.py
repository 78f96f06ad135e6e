"""Local container engines (Docker, Podman) over their HTTP API: where they listen, and what they hold.

``find_endpoint("docker")`` follows the docker CLI's rules (``DOCKER_HOST``, contexts, default sockets),
``find_endpoint("podman")`` podman's; ``EngineClient(endpoint)`` inspects and exports images. The client
module (and httpx with it) loads on first use, so finding an endpoint stays cheap.
"""

from __future__ import annotations

from typing import Any

from .endpoint import Endpoint, Engine, TLSConfig, docker_config_dir, docker_endpoint, find_endpoint, podman_endpoint

__all__ = ["Engine", "Endpoint", "TLSConfig", "find_endpoint", "docker_endpoint", "podman_endpoint",
           "docker_config_dir", "EngineClient", "ExportStream", "has_image"]

_LAZY = {"EngineClient": "client", "has_image": "client", "ExportStream": "stream"}


def __getattr__(name: str) -> Any:
    """Import the client side (httpx) on first use."""
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'ocilens.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
