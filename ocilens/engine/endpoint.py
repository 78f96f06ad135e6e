"""Where a local engine's API is: the rules the docker CLI and podman follow, without importing httpx.

Docker: ``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` for ``tcp://``), else the docker
context named by ``DOCKER_CONTEXT`` or ``currentContext`` in ``$DOCKER_CONFIG/config.json`` (its
``contexts/meta/<sha256 of the name>/meta.json`` and TLS files under ``contexts/tls/<sha256>/docker/``),
else the first socket that exists of ``$XDG_RUNTIME_DIR/docker.sock`` (rootless),
``~/.docker/run/docker.sock`` (Docker Desktop) and ``/var/run/docker.sock``.

Podman: ``CONTAINER_HOST``, else ``$XDG_RUNTIME_DIR/podman/podman.sock``, else ``/run/podman/podman.sock``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping
from urllib.parse import SplitResult, urlsplit

from ..errors import EngineEndpointError

__all__ = ["Engine", "Endpoint", "TLSConfig", "find_endpoint", "docker_endpoint", "podman_endpoint",
           "docker_config_dir"]

Engine = Literal["docker", "podman"]
DOCKER_DEFAULT_SOCKET = "/var/run/docker.sock"
PODMAN_ROOT_SOCKET = "/run/podman/podman.sock"
# docker's own defaults for tcp:// without a port (opts.ParseHost)
_DOCKER_PORT, _DOCKER_TLS_PORT = 2375, 2376


@dataclass(frozen=True)
class TLSConfig:
    """TLS for a ``tcp://`` engine: ``verify`` the server (against ``ca``, else the system CAs); present
    ``cert``/``key`` as the client certificate when both are given."""

    verify: bool = True
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One engine's API address: ``url`` as the user would write it (``unix:///run/docker.sock``,
    ``tcp://host:2376``), ``socket`` the unix socket path (None for tcp), ``tls`` for tcp with TLS, and
    ``origin`` which rule chose it (``DOCKER_HOST``, ``docker context "x"``, ``default socket``)."""

    engine: Engine
    url: str
    socket: str | None = None
    tls: TLSConfig | None = None
    origin: str = ""

    def describe(self) -> str:
        """The address for messages: ``unix:///run/docker.sock``."""
        return self.url

    @property
    def base_url(self) -> str:
        """The HTTP base URL: a fixed host name over a unix socket, else the tcp host with its scheme."""
        if self.socket is not None:
            return f"http://{self.engine}"
        parts = urlsplit(self.url)
        return f"{'https' if self.tls else 'http'}://{parts.netloc}"


def find_endpoint(engine: Engine, env: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint of ``engine`` (``"docker"`` or ``"podman"``) by that engine's own rules."""
    if engine == "docker":
        return docker_endpoint(env)
    if engine == "podman":
        return podman_endpoint(env)
    raise ValueError(f"unknown engine {engine!r}: use 'docker' or 'podman'")


# ---------------------------------------------------------------------------------------------- docker


def _home(env: Mapping[str, str]) -> Path:
    """``$HOME`` from ``env`` (what the docker CLI uses), else the password database's."""
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def docker_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG``, else ``~/.docker``: where ``config.json``, contexts and default certs live."""
    env = os.environ if env is None else env
    return Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else _home(env) / ".docker"


def docker_endpoint(env: Mapping[str, str] | None = None) -> Endpoint:
    """Docker's endpoint: ``DOCKER_HOST``, else the docker context, else the first default socket that exists."""
    env = os.environ if env is None else env
    host = env.get("DOCKER_HOST", "")
    if host:
        return _parse_host("docker", host, "DOCKER_HOST", _env_tls(env))
    context = env.get("DOCKER_CONTEXT") or _current_context(env)
    if context and context != "default":
        return _context_endpoint(context, env, "DOCKER_CONTEXT" if env.get("DOCKER_CONTEXT") else "currentContext")
    candidates = []
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(env["XDG_RUNTIME_DIR"], "docker.sock"))
    candidates += [str(_home(env) / ".docker" / "run" / "docker.sock"), DOCKER_DEFAULT_SOCKET]
    return _first_socket("docker", candidates, DOCKER_DEFAULT_SOCKET)


def _env_tls(env: Mapping[str, str]) -> TLSConfig | None:
    """TLS as the docker CLI and SDK read it from the environment, or None for plain HTTP.

    ``DOCKER_TLS_VERIFY`` (any non-empty value) means TLS with server verification; ``DOCKER_TLS`` or a
    ``DOCKER_CERT_PATH`` alone means TLS without it (the SDK's ``FromEnv``). The files are ``ca.pem``,
    ``cert.pem`` and ``key.pem`` in ``DOCKER_CERT_PATH`` (default: the docker config dir); those missing are
    left out, as the CLI does."""
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    if not (verify or env.get("DOCKER_TLS") or env.get("DOCKER_CERT_PATH")):
        return None
    certs = Path(env["DOCKER_CERT_PATH"]) if env.get("DOCKER_CERT_PATH") else docker_config_dir(env)
    return _tls_files(certs, verify)


def _tls_files(directory: Path, verify: bool) -> TLSConfig:
    """``ca.pem``, ``cert.pem`` and ``key.pem`` of ``directory``, each only if it exists."""
    def existing(name: str) -> str | None:
        path = directory / name
        return str(path) if path.is_file() else None

    return TLSConfig(verify=verify, ca=existing("ca.pem"), cert=existing("cert.pem"), key=existing("key.pem"))


def _current_context(env: Mapping[str, str]) -> str | None:
    """``currentContext`` of the docker ``config.json`` (None when there is no file or no such key)."""
    path = docker_config_dir(env) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EngineEndpointError(f"cannot read the docker config {path}: {exc}", engine="docker",
                                  hint="fix or remove the file, or set DOCKER_HOST") from exc
    value = data.get("currentContext") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def _context_endpoint(name: str, env: Mapping[str, str], origin: str) -> Endpoint:
    """The docker endpoint of context ``name``: its ``meta.json`` host, TLS files and ``SkipTLSVerify``."""
    key = hashlib.sha256(name.encode()).hexdigest()
    contexts = docker_config_dir(env) / "contexts"
    meta_path = contexts / "meta" / key / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineEndpointError(f'docker context "{name}" (from {origin}) does not exist: no {meta_path}',
                                  engine="docker", hint="`docker context ls` lists the contexts; "
                                  "`docker context use default` or DOCKER_HOST picks another engine") from None
    except (OSError, ValueError) as exc:
        raise EngineEndpointError(f'cannot read docker context "{name}": {meta_path}: {exc}', engine="docker",
                                  hint="`docker context inspect` shows it; recreate it or set DOCKER_HOST") from exc
    docker = (meta.get("Endpoints") or {}).get("docker") if isinstance(meta, dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None
    if not isinstance(host, str) or not host:
        raise EngineEndpointError(f'docker context "{name}" names no docker endpoint ({meta_path})',
                                  engine="docker", hint="`docker context inspect` shows it; set DOCKER_HOST instead")
    skip_verify = bool(docker.get("SkipTLSVerify"))
    tls_dir = contexts / "tls" / key / "docker"
    # as the CLI does: TLS when the context stores TLS material, or when it says to skip verification
    tls = _tls_files(tls_dir, not skip_verify) if tls_dir.is_dir() or skip_verify else None
    return _parse_host("docker", host, f'docker context "{name}"', tls)


# ---------------------------------------------------------------------------------------------- podman


def podman_endpoint(env: Mapping[str, str] | None = None) -> Endpoint:
    """Podman's endpoint: ``CONTAINER_HOST``, else the rootless socket, else the root one."""
    env = os.environ if env is None else env
    host = env.get("CONTAINER_HOST", "")
    if host:
        return _parse_host("podman", host, "CONTAINER_HOST", None)
    candidates = []
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(env["XDG_RUNTIME_DIR"], "podman", "podman.sock"))
    candidates.append(PODMAN_ROOT_SOCKET)
    # none there: name the one podman itself would use, so the "not running" error points at it
    preferred = candidates[0] if os.geteuid() != 0 else PODMAN_ROOT_SOCKET
    return _first_socket("podman", candidates, preferred)


# ---------------------------------------------------------------------------------------------- shared


def _first_socket(engine: Engine, candidates: list[str], fallback: str) -> Endpoint:
    """The first candidate path that exists (as a socket or anything else), else ``fallback``."""
    for path in candidates:
        if os.path.exists(path):
            return Endpoint(engine, f"unix://{path}", socket=path, origin="default socket")
    return Endpoint(engine, f"unix://{fallback}", socket=fallback, origin="default socket")


def _ssh_hint(engine: Engine, parts: SplitResult) -> str:
    """How to reach an ssh:// engine anyway: forward its socket to a local one (``-p`` for a port)."""
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or "HOST"
    try:
        port = f" -p {parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    if engine == "docker":
        remote, local, var = DOCKER_DEFAULT_SOCKET, "/tmp/docker.sock", "DOCKER_HOST"
    else:  # podman's ssh:// URLs carry the remote socket's path
        remote, local, var = parts.path or PODMAN_ROOT_SOCKET, "/tmp/podman.sock", "CONTAINER_HOST"
    return (f"forward the engine's socket over ssh and point ocilens at the local end: "
            f"`ssh -nNT{port} -L {local}:{remote} {user}{host}` (keep it running), then {var}=unix://{local}")


def _parse_host(engine: Engine, host: str, origin: str, tls: TLSConfig | None) -> Endpoint:
    """An ``unix://PATH`` or ``tcp://HOST[:PORT]`` host string as an endpoint; other schemes are refused."""
    if "://" not in host:  # docker reads a bare HOST:PORT as tcp://HOST:PORT
        host = f"tcp://{host}"
    parts = urlsplit(host)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = host.split("://", 1)[1]  # verbatim: a relative path stays relative, as for docker
        if not path:
            raise EngineEndpointError(f"{origin}={host} names no socket path", engine=engine, endpoint=host,
                                      hint="write it as unix:///path/to/engine.sock")
        return Endpoint(engine, f"unix://{path}", socket=path, origin=origin)
    if scheme in ("tcp", "http", "https"):
        if not parts.hostname:
            raise EngineEndpointError(f"{origin}={host} names no host", engine=engine, endpoint=host,
                                      hint="write it as tcp://HOST:PORT")
        if scheme == "https" and tls is None:
            tls = TLSConfig(verify=True)
        try:
            port = parts.port or (_DOCKER_TLS_PORT if tls else _DOCKER_PORT)
        except ValueError:
            raise EngineEndpointError(f"{origin}={host} has a bad port", engine=engine, endpoint=host,
                                      hint="write it as tcp://HOST:PORT") from None
        hostname = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return Endpoint(engine, f"tcp://{hostname}:{port}", socket=None, tls=tls, origin=origin)
    if scheme == "ssh":
        raise EngineEndpointError(f"{origin}={host}: ocilens does not speak ssh:// to engines", engine=engine,
                                  endpoint=host, hint=_ssh_hint(engine, parts))
    raise EngineEndpointError(f"{origin}={host}: unsupported scheme {parts.scheme or '(none)'!r}", engine=engine,
                              endpoint=host, hint="use unix:///path/to/socket or tcp://HOST:PORT")
