"""Registry credentials: from the caller, or from docker's config (``auths``, ``credHelpers``, ``credsStore``).

Lookup follows docker's CLI: a ``credHelpers`` entry for the registry wins, else ``credsStore``, else the
base64 ``auth`` (or ``username``/``password``, ``identitytoken``) under ``auths``. Docker Hub's key is
``https://index.docker.io/v1/``. Helpers are the ``docker-credential-<name>`` programs, asked with ``get``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import AuthenticationError

__all__ = ["Credentials", "docker_config_path", "find_credentials", "credentials_from_helper",
           "DOCKER_HUB_AUTH_KEY"]

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token; ``source`` says where they came from."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    source: str = "caller"

    def __repr__(self) -> str:  # never print secrets in tracebacks or logs
        return f"Credentials(username={self.username!r}, source={self.source!r})"

    @property
    def origin(self) -> str:
        """Where the credentials came from, in words: the auth= argument, a helper, a docker config entry."""
        if self.source == "caller":
            return "the auth= argument"
        if self.source.startswith("docker-credential-"):
            return f"credential helper {self.source}"
        return self.source

    def fix(self, registry: str) -> str:
        """What to do when the registry refuses these credentials."""
        if self.source == "caller":
            return "check the user name and password passed as auth=(user, password)"
        if self.source.startswith("docker-credential-"):
            return f"check what {self.source} stores for {registry}, or run docker login {registry} again"
        return f"check the user name and password: run docker login {registry} again ({self.source})"

    @property
    def basic(self) -> tuple[str, str] | None:
        """``(user, password)`` for HTTP Basic, when there is a password."""
        if self.username is not None and self.password is not None:
            return self.username, self.password
        return None


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (docker's own rule)."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base).expanduser() if base else Path.home() / ".docker") / "config.json"


def _hostname(key: str) -> str:
    """docker's ``ConvertToHostname``: ``https://host:5000/v1/`` -> ``host:5000``."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    return key.split("/", 1)[0]


def _server_address(registry: str) -> str:
    """The key docker stores a registry's credentials under."""
    return DOCKER_HUB_AUTH_KEY if registry in _HUB_HOSTS else registry


def _same_registry(key: str, registry: str) -> bool:
    """True when a config key names ``registry`` (Docker Hub's several names are one registry)."""
    host = _hostname(key)
    if registry in _HUB_HOSTS:
        return host in _HUB_HOSTS
    return host == registry


def _load_config(path: Path) -> Mapping[str, Any]:
    """The docker config as a dict; a missing file is empty, a broken one is warned about and ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        warnings.warn(f"ocilens: cannot read docker config {path}: {exc}; continuing without its credentials",
                      stacklevel=3)
        return {}
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        warnings.warn(f"ocilens: docker config {path} is not valid JSON ({exc}); continuing without its credentials",
                      stacklevel=3)
        return {}
    if not isinstance(obj, dict):
        warnings.warn(f"ocilens: docker config {path} is a JSON {type(obj).__name__}, not an object; continuing "
                      "without its credentials", stacklevel=3)
        return {}
    return obj


def _from_auths(auths: Mapping[str, Any], registry: str, path: Path) -> Credentials | None:
    """The ``auths`` entry for ``registry``: exact key first, then any key with the same host name."""
    key = _server_address(registry)
    entry = auths.get(key)
    if entry is None:
        entry = next((v for k, v in auths.items() if _same_registry(k, registry)), None)
    if not isinstance(entry, dict):
        return None
    source = f"the auths entry in {path}"
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationError(f"the auth entry for {registry} in {path} is not base64 user:password",
                                      hint="run docker login again") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthenticationError(f"the auth entry for {registry} in {path} has no ':' between user and password",
                                      hint="run docker login again")
    token = entry.get("identitytoken") or None
    if not username and not token:
        return None
    return Credentials(username or None, password if username else None, token, source)


def credentials_from_helper(helper: str, registry: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` for ``registry``; None when it has nothing stored.

    A helper that is missing or fails raises AuthenticationError naming it.
    """
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run([program, "get"], input=_server_address(registry).encode(), capture_output=True,
                              timeout=_HELPER_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise AuthenticationError(f"credential helper {program} (configured in {docker_config_path()}) "
                                  "is not installed",
                                  hint=f"install {program}, or remove it from the docker config") from exc
    except subprocess.TimeoutExpired as exc:
        raise AuthenticationError(f"credential helper {program} did not answer within {_HELPER_TIMEOUT:.0f}s") from exc
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        if "credentials not found" in out.lower():
            return None
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise AuthenticationError(f"credential helper {program} failed for {registry}: {out or err or proc.returncode}")
    try:
        obj = json.loads(out)
    except json.JSONDecodeError as exc:
        raise AuthenticationError(f"credential helper {program} did not answer with JSON") from exc
    if not isinstance(obj, dict):
        raise AuthenticationError(f"credential helper {program} answered a JSON {type(obj).__name__}, not an object")
    username, secret = obj.get("Username") or "", obj.get("Secret") or ""
    if not username and not secret:
        return None
    if username == "<token>":
        return Credentials(None, None, secret, program)
    return Credentials(username, secret, None, program)


def find_credentials(registry: str, *, config: Path | None = None) -> Credentials | None:
    """The credentials docker would use for ``registry`` (``host[:port]``, ``docker.io`` for the Hub)."""
    path = config or docker_config_path()
    cfg = _load_config(path)
    helpers = cfg.get("credHelpers") or {}
    helper = helpers.get(_server_address(registry)) if isinstance(helpers, dict) else None
    if helper is None and isinstance(helpers, dict):
        helper = next((v for k, v in helpers.items() if _same_registry(k, registry)), None)
    if helper:
        return credentials_from_helper(str(helper), registry)
    store = cfg.get("credsStore")
    if store:
        return credentials_from_helper(str(store), registry)
    auths = cfg.get("auths") or {}
    return _from_auths(auths, registry, path) if isinstance(auths, dict) else None
