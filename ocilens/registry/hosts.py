"""Which host a registry name means, and whether plain HTTP or unverified TLS may be used to reach it.

As docker does: registries on loopback addresses (``localhost``, ``127.0.0.0/8``, ``::1``) are reached over
plain HTTP when they do not speak TLS; any other registry needs an explicit opt-in: ``insecure=True``,
the CLI's ``--insecure``, or ``$OCILENS_INSECURE_REGISTRIES`` (a comma-separated list of ``host[:port]``).
"""

from __future__ import annotations

import ipaddress
import os

from ..reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, split_host_port

__all__ = ["api_host", "split_host_port", "is_loopback", "insecure_from_env", "allows_insecure",
           "INSECURE_ENV"]

INSECURE_ENV = "OCILENS_INSECURE_REGISTRIES"
DOCKER_HUB_API = "registry-1.docker.io"


def api_host(registry: str) -> str:
    """The host to send API requests to: Docker Hub's ``docker.io`` is served by ``registry-1.docker.io``."""
    return DOCKER_HUB_API if registry in (DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN) else registry


def is_loopback(registry: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (with or without a port)."""
    host, _ = split_host_port(registry)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_from_env() -> frozenset[str]:
    """The registries listed in ``$OCILENS_INSECURE_REGISTRIES``."""
    raw = os.environ.get(INSECURE_ENV, "")
    return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())


def allows_insecure(registry: str, insecure: bool | None) -> bool:
    """Whether ``registry`` may be reached over plain HTTP or unverified TLS.

    ``insecure=True`` allows it, ``False`` forbids it (even on loopback), ``None`` decides by address and
    by ``$OCILENS_INSECURE_REGISTRIES`` (which may name ``host`` or ``host:port``).
    """
    if insecure is not None:
        return insecure
    if is_loopback(registry):
        return True
    listed = insecure_from_env()
    host, _ = split_host_port(registry)
    return registry.lower() in listed or host.lower() in listed
