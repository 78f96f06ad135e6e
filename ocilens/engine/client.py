"""A local engine's HTTP API (Docker's, which Podman serves too) over httpx: inspect, export, list.

Paths carry the API version the engine names in ``GET /_ping``'s ``API-Version`` header (Docker 20.10 and
Podman 4.3's compat API: 1.41), as the docker CLI negotiates: unversioned paths are deprecated, and an
engine may refuse versions older than its minimum (Docker 29 refuses those below 1.44). The fields read here
(``Id``, ``RepoTags``, ``RepoDigests``, ``RootFS.Layers``, ``Os``, ``Architecture``, ``Variant``, ``Size``)
mean the same in every version since 1.24.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import stat
from typing import Any, Callable, Mapping
from urllib.parse import quote

import httpx

from ..errors import EngineAPIError, EngineEndpointError, EngineError, InvalidReference
from .endpoint import Endpoint, Engine, find_endpoint
from .failures import api_failure, broken_answer, connect_failure
from .stream import ExportStream
from .unixget import unix_get

__all__ = ["EngineClient", "has_image", "USER_AGENT"]

USER_AGENT = "ocilens/0.1 (+https://github.com/ocilens/ocilens)"
_MAX_ERROR_BODY = 64 * 1024
_CONNECT = (httpx.ConnectError, httpx.ConnectTimeout)


def _ssl_context(ep: Endpoint) -> ssl.SSLContext | bool:
    """The TLS settings of a tcp endpoint (False: plain HTTP)."""
    tls = ep.tls
    if tls is None:
        return False
    try:
        if tls.verify:
            ctx = ssl.create_default_context(cafile=tls.ca)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if tls.cert and tls.key:
            ctx.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise EngineEndpointError(f"cannot load the TLS files for {ep.describe()} ({ep.origin}): {exc}",
                                  engine=ep.engine, endpoint=ep.describe(),
                                  hint="check ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (or the context's "
                                       "TLS directory)") from exc
    return ctx


def image_path(name: str) -> str:
    """``name`` as one path segment group: slashes, ``:`` and ``@`` stay (both engines route ``{name:.*}``),
    anything else a URL cannot carry is percent-encoded."""
    return quote(name, safe="/:@")


class EngineClient:
    """One engine's API at ``endpoint``: ``inspect``, ``export``, ``images``; a context manager.

    ``timeout`` bounds ordinary requests, ``connect_timeout`` the connection, ``export_timeout`` the silence
    allowed inside an export (Docker 20.10 writes nothing until it has staged the whole image: seconds for
    a large one)."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = 60.0, connect_timeout: float = 5.0,
                 export_timeout: float | None = 600.0, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.export_timeout = export_timeout
        # an export over a unix socket is read off the socket directly (``unixget``); a transport given by the
        # caller (a test's MockTransport) serves every request
        self._direct_export = transport is None and endpoint.socket is not None
        if transport is None:
            if endpoint.socket is not None:
                transport = httpx.HTTPTransport(uds=endpoint.socket)
            else:
                transport = httpx.HTTPTransport(verify=_ssl_context(endpoint))
        # proxies from the environment are for tcp engines only, as for the docker CLI
        self._client = httpx.Client(transport=transport, base_url=endpoint.base_url,
                                    timeout=httpx.Timeout(timeout, connect=connect_timeout),
                                    headers={"User-Agent": USER_AGENT}, trust_env=endpoint.socket is None)
        self._prefix: str | None = None
        self.api_version: str | None = None  # learned from the first answer of /_ping
        self.server: str | None = None       # its Server header: "Docker/20.10.24 (linux)", "Libpod/4.3.1 (linux)"

    @classmethod
    def for_engine(cls, engine: Engine, env: Mapping[str, str] | None = None, **kwargs: Any) -> "EngineClient":
        """A client for ``"docker"`` or ``"podman"`` at the endpoint that engine's own rules find."""
        return cls(find_endpoint(engine, env), **kwargs)

    def __enter__(self) -> "EngineClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __repr__(self) -> str:
        return f"EngineClient({self.endpoint.engine}, {self.endpoint.describe()})"

    # -- requests

    def _send(self, request: httpx.Request, *, stream: bool = False, reference: str | None = None) -> httpx.Response:
        """Send one request; connection failures become EngineNotRunning / EnginePermissionDenied."""
        try:
            return self._client.send(request, stream=stream)
        except _CONNECT as exc:
            raise connect_failure(self.endpoint, exc, reference) from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise broken_answer(self.endpoint, request.method, request.url.path, exc, reference) from exc

    def _body(self, response: httpx.Response, reference: str | None) -> bytes:
        """The body of a streamed answer, read to the end (errors: typed)."""
        try:
            return response.read()
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise broken_answer(self.endpoint, response.request.method, response.request.url.path, exc,
                                reference) from exc
        finally:
            response.close()

    @staticmethod
    def _error_body(response: httpx.Response) -> bytes:
        """Up to 64 KiB of an error answer (a body that breaks off only loses detail)."""
        chunks, seen = [], 0
        try:
            for chunk in response.iter_raw():
                chunks.append(chunk)
                seen += len(chunk)
                if seen >= _MAX_ERROR_BODY:
                    break
        except (httpx.TransportError, httpx.StreamError):
            pass
        finally:
            response.close()
        return b"".join(chunks)[:_MAX_ERROR_BODY]

    def ping(self, *, reference: str | None = None) -> str | None:
        """``GET /_ping``: check that an engine answers, and learn its API version (None: it names none).
        ``reference`` is what errors name (the image a first request was for)."""
        response = self._send(self._client.build_request("GET", "/_ping"), reference=reference)
        body = self._body(response, reference)
        if response.status_code != 200:
            raise api_failure(self.endpoint, "GET", "/_ping", response.status_code, body, reference=reference,
                              hint=f"is {self.endpoint.describe()} really a Docker or Podman API? (`/_ping` answers "
                                   "200 there)")
        self.server = response.headers.get("Server")
        version = response.headers.get("API-Version")
        if not version:
            version = self._version_from_version_endpoint()
        self.api_version = version
        self._prefix = f"/v{version}" if version else ""
        return version

    def _version_from_version_endpoint(self) -> str | None:
        """``ApiVersion`` of ``GET /version``, for an engine whose ``/_ping`` names no version."""
        response = self._send(self._client.build_request("GET", "/version"))
        body = self._body(response, None)
        if response.status_code != 200:
            return None
        try:
            version = json.loads(body).get("ApiVersion")
        except (ValueError, AttributeError):
            return None
        return version if isinstance(version, str) and version else None

    def _path(self, path: str, reference: str | None = None) -> str:
        """``path`` under the negotiated API version (pinging first if needed)."""
        if self._prefix is None:
            self.ping(reference=reference)
        return f"{self._prefix}{path}"

    def _get_json(self, path: str, *, params: Mapping[str, str] | None = None, reference: str | None = None,
                  image: str | None = None) -> Any:
        """GET a JSON document; non-2xx answers become typed errors."""
        request = self._client.build_request("GET", self._path(path, reference), params=params)
        response = self._send(request, stream=True, reference=reference)
        if response.status_code != 200:
            raise api_failure(self.endpoint, "GET", path, response.status_code, self._error_body(response),
                              reference=reference, image=image)
        body = self._body(response, reference)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise EngineAPIError(f"the {self.endpoint.engine} engine ({self.endpoint.describe()}) answered GET "
                                 f"{path} with something that is not JSON", reference=reference,
                                 engine=self.endpoint.engine, endpoint=self.endpoint.describe(),
                                 status=response.status_code,
                                 hint="is this socket really a Docker or Podman API?") from exc

    # -- the API

    def inspect(self, name: str, *, reference: str | None = None) -> dict[str, Any]:
        """``GET /images/{name}/json``: the image's ``Id`` (its config digest), ``RepoTags``, ``RepoDigests``,
        ``RootFS.Layers`` (the diff_ids, bottom first), ``Os``, ``Architecture``, ``Variant``, ``Size``...

        ``name`` is ``NAME[:TAG]``, ``NAME@sha256:...``, an image ID or a short ID; ``reference`` is what
        errors name (default: ``name``)."""
        _check_name(name)
        ref = reference if reference is not None else name
        data = self._get_json(f"/images/{image_path(name)}/json", reference=ref, image=name)
        if not isinstance(data, dict) or not isinstance(data.get("Id"), str):
            raise EngineAPIError(f"the {self.endpoint.engine} engine ({self.endpoint.describe()}) answered the "
                                 f"inspection of {name!r} without an image Id", reference=ref,
                                 engine=self.endpoint.engine, endpoint=self.endpoint.describe(), status=200,
                                 hint="is this socket really a Docker or Podman API?")
        return data

    def export(self, name: str, *, reference: str | None = None,
               sent: Callable[[], None] | None = None) -> ExportStream:
        """``GET /images/{name}/get``: the image as a docker-archive tar stream, read once (see ExportStream).

        Errors before the first byte (no such image, no engine) are raised here; the stream raises
        EngineExportInterrupted if the export breaks off. Pass an image ID to export exactly what was
        inspected (a tag can move in between). ``sent()`` is called once the request is out, while the engine
        stages the export."""
        _check_name(name)
        ref = reference if reference is not None else name
        path = f"/images/{image_path(name)}/get"
        if self._direct_export:
            return self._export_direct(name, path, ref, sent)
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout, read=self.export_timeout)
        request = self._client.build_request("GET", self._path(path, ref), timeout=timeout,
                                             headers={"Accept-Encoding": "identity"})
        if sent is not None:
            sent()  # httpx sends and waits in one call: before it, then
        response = self._send(request, stream=True, reference=ref)
        if response.status_code != 200:
            raise api_failure(self.endpoint, "GET", path, response.status_code, self._error_body(response),
                              reference=ref, image=name)
        return ExportStream(response.iter_raw(), response.close, self.endpoint, name, reference=ref)

    def _export_direct(self, name: str, path: str, ref: str, sent: Callable[[], None] | None) -> ExportStream:
        """The export over the unix socket, in HTTP/1.0 (see ``unixget``): same errors as through httpx."""
        target = self._path(path, ref)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        try:
            response = unix_get(self.endpoint.socket or "", target, headers, connect_timeout=self.connect_timeout,
                                read_timeout=self.export_timeout, sent=sent)
        except (http.client.HTTPException, TimeoutError) as exc:
            raise broken_answer(self.endpoint, "GET", path, exc, ref) from exc
        except OSError as exc:
            raise connect_failure(self.endpoint, exc, ref) from exc
        if response.status_code != 200:
            body = response.read_some(_MAX_ERROR_BODY)
            response.close()
            raise api_failure(self.endpoint, "GET", path, response.status_code, body, reference=ref, image=name)
        return ExportStream(response.iter_raw(), response.close, self.endpoint, name, reference=ref)

    def images(self, reference: str | None = None) -> list[dict[str, Any]]:
        """``GET /images/json``: the engine's images, only those matching ``reference`` (the engine's own
        ``reference`` filter: ``NAME`` or ``NAME:TAG``, globs allowed) when given."""
        params = {"filters": json.dumps({"reference": [reference]})} if reference else None
        data = self._get_json("/images/json", params=params, reference=reference)
        if not isinstance(data, list):
            raise EngineAPIError(f"the {self.endpoint.engine} engine ({self.endpoint.describe()}) answered GET "
                                 "/images/json with something that is not a list", engine=self.endpoint.engine,
                                 endpoint=self.endpoint.describe(), status=200)
        return [image for image in data if isinstance(image, dict)]

    def has_image(self, name: str) -> bool:
        """Whether the engine has an image of that name (any tag when ``name`` has none)."""
        return bool(self.images(_familiar(name, self.endpoint.engine)))


def _check_name(name: str) -> None:
    """Refuse a name that would address another API path: empty, or with ``.``/``..`` segments."""
    if not name.strip() or any(part in (".", "..") for part in name.split("/")):
        raise InvalidReference(f"{name!r} is not an image name, digest or ID", reference=name,
                               rule="engine image name", hint="write NAME[:TAG], NAME@sha256:DIGEST or an image ID")


def _familiar(name: str, engine: Engine) -> str:
    """Docker filters on the short form it shows (``alpine``, ``user/app``): drop ``docker.io/[library/]``.
    Podman matches the full name, so it gets the name as written."""
    if engine != "docker":
        return name
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def has_image(engine: Engine, name: str, *, env: Mapping[str, str] | None = None, timeout: float = 0.5) -> bool:
    """Whether the local ``engine`` has an image ``name``; False, quickly, when there is no engine to ask
    or it cannot answer (for hints: "the local engine has it, use docker-daemon:NAME"). Never raises."""
    try:
        endpoint = find_endpoint(engine, env)
    except EngineError:
        return False
    if endpoint.socket is not None:
        try:
            if not stat.S_ISSOCK(os.stat(endpoint.socket).st_mode):
                return False
        except OSError:
            return False
    try:
        with EngineClient(endpoint, timeout=max(timeout, 2.0), connect_timeout=timeout) as client:
            return client.has_image(name)
    except (EngineError, InvalidReference):
        return False
