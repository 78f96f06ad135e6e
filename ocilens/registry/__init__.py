"""The registry client: auth, manifests and blobs over httpx (synchronous; threads for parallelism)."""

from __future__ import annotations

from .challenge import Challenge, parse_www_authenticate
from .client import FetchedManifest, RegistryClient
from .credentials import Credentials, find_credentials
from .hosts import INSECURE_ENV, allows_insecure, is_loopback
from .retry import RetryPolicy

__all__ = [
    "RegistryClient", "FetchedManifest", "RetryPolicy", "Credentials", "find_credentials",
    "Challenge", "parse_www_authenticate", "allows_insecure", "is_loopback", "INSECURE_ENV",
]
