"""HTTP to one registry: scheme choice, retries with backoff, redirects that never leak credentials, auth.

Every request goes through :meth:`RegistrySession.request`: 401 -> authenticate and retry once; 429 and
5xx -> bounded retries honouring ``Retry-After``; broken connections -> bounded retries; other 4xx ->
a typed error at once. Redirects are followed by hand so that ``Authorization`` is dropped whenever the
target's origin differs from the request's (blob downloads are redirected to CDNs).
"""

from __future__ import annotations

import ssl
import threading
from typing import Any, Callable, Mapping, Sequence

import httpx

from ..errors import AuthenticationError, RegistryError, RegistryUnavailable
from .auth import Authenticator
from .credentials import Credentials, find_credentials
from .hosts import allows_insecure, api_host
from .responses import error_details, flatten, one_line, read_error_body, registry_error
from .retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

__all__ = ["RegistrySession", "BROKEN_CONNECTION", "USER_AGENT", "API_VERSION_HEADER"]

USER_AGENT = "ocilens/0.1 (+https://github.com/ocilens/ocilens)"
MAX_REDIRECTS = 10
#: Errors after which a request (or a blob body, with Range) is worth retrying.
BROKEN_CONNECTION = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: distribution (and most registries) send it on every answer; a web server that is not a registry does not.
API_VERSION_HEADER = "Docker-Distribution-API-Version"
_NOT_A_REGISTRY_HINT = ("check the host name and port: something answers HTTP there, but not the registry API "
                        "(a registry answers GET /v2/ with 200 or 401 and a Docker-Distribution-API-Version header)")

# The scheme found for each (host, insecure) pair, shared by every session in the process; one lock per
# pair, so that a slow probe of one registry never holds up another.
_SCHEMES: dict[tuple[str, bool], str] = {}
_SCHEME_LOCKS: dict[tuple[str, bool], threading.Lock] = {}
_SCHEMES_LOCK = threading.Lock()

CredentialsArg = Credentials | tuple[str, str] | None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _failed_url(exc: httpx.TransportError, fallback: str) -> str:
    """The URL a transport error happened on (a redirect target, a token realm), else ``fallback``."""
    try:
        return str(exc.request.url)
    except RuntimeError:
        return fallback


def _is_tls_failure(exc: BaseException) -> bool:
    """True when a connection error is a TLS handshake or certificate failure."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "SSL" in text or "TLS" in text or "certificate" in text


class RegistrySession:
    """The HTTP side of one registry (``host[:port]`` as written in references; ``docker.io`` for the Hub)."""

    def __init__(self, registry: str, *, auth: CredentialsArg = None, insecure: bool | None = None,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 timeout: float | httpx.Timeout | None = None, max_connections: int = 16) -> None:
        self.registry = registry
        self.host = api_host(registry)
        self.insecure = allows_insecure(registry, insecure)
        self.retry = retry or RetryPolicy()
        self._transport = transport
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout or 60.0,
                                                                                           connect=15.0)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._clients: dict[bool, httpx.Client] = {}
        self._lock = threading.Lock()
        self._base: str | None = None
        self.credentials_problem: str | None = None
        self.auth = Authenticator(registry, self._credentials_for(auth))
        self.auth.session = self

    # --- setup ---------------------------------------------------------------------------------------

    def _credentials_for(self, auth: CredentialsArg) -> Callable[[], Credentials | None]:
        """A lazy credentials lookup: the caller's, else docker's config (read only when a 401 asks)."""
        if isinstance(auth, Credentials):
            return lambda: auth
        if auth is not None:
            user, password = auth
            creds = Credentials(str(user), str(password), None, "caller")
            return lambda: creds

        def from_docker_config() -> Credentials | None:
            try:
                return find_credentials(self.registry)
            except AuthenticationError as exc:
                # docker would fail here; a public image should still pull, so remember why and go on
                self.credentials_problem = flatten(exc)
                return None
        return from_docker_config

    def _client(self, verify: bool) -> httpx.Client:
        """The httpx client for verified (or, for an insecure registry, unverified) TLS."""
        with self._lock:
            client = self._clients.get(verify)
            if client is None:
                client = httpx.Client(verify=verify, transport=self._transport, timeout=self._timeout,
                                      limits=self._limits, follow_redirects=False,
                                      headers={"User-Agent": USER_AGENT})
                self._clients[verify] = client
            return client

    def _client_for(self, url: httpx.URL) -> httpx.Client:
        """Unverified TLS only towards the registry itself, and only when it is insecure."""
        registry = httpx.URL(f"https://{self.host}/")
        same = url.host == registry.host and url.port == registry.port
        return self._client(verify=not (self.insecure and same))

    def base_url(self, *, what: str = "request", reference: str | None = None) -> str:
        """``https://host``, or ``http://host`` for an insecure registry that does not speak TLS.

        ``what`` and ``reference`` name the request in the error when the registry cannot be reached."""
        if self._base is not None:
            return self._base
        key = (self.host, self.insecure)
        with _SCHEMES_LOCK:
            lock = _SCHEME_LOCKS.setdefault(key, threading.Lock())
        with lock:
            scheme = _SCHEMES.get(key)
            if scheme is None:
                scheme = self._probe_scheme(what, reference) if self.insecure else "https"
                _SCHEMES[key] = scheme
        self._base = f"{scheme}://{self.host}"
        return self._base

    def _probe_scheme(self, what: str, reference: str | None) -> str:
        """Try TLS first, as docker does for insecure registries, then plain HTTP."""
        errors: list[str] = []
        for scheme in ("https", "http"):
            url = httpx.URL(f"{scheme}://{self.host}/v2/")
            try:
                resp = self._client_for(url).get(url)
                resp.close()
                return scheme
            except BROKEN_CONNECTION as exc:
                errors.append(f"{scheme}: {exc}")
        subject = f"{what} of {reference}: " if reference else ""
        raise RegistryUnavailable(f"{subject}cannot connect to registry {self.registry} ({'; '.join(errors)})",
                                  reference=reference, url=f"https://{self.host}/v2/",
                                  hint="is the registry running, and is the host name and port right?")

    def close(self) -> None:
        """Close the connection pools."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # --- requests ------------------------------------------------------------------------------------

    def url(self, path_or_url: str, *, what: str = "request", reference: str | None = None) -> str:
        """An absolute URL: API paths (``/v2/...``) are joined to the registry's base URL."""
        if path_or_url.startswith("/"):
            return self.base_url(what=what, reference=reference) + path_or_url
        return path_or_url

    def is_registry_url(self, url: str | httpx.URL) -> bool:
        """True when ``url`` points at this registry (not at its token service or a CDN)."""
        target = httpx.URL(str(url))
        here = httpx.URL(f"https://{self.host}/")
        return target.host == here.host and (target.port == here.port or here.port is None)

    def not_a_registry(self, *, what: str, reference: str | None, answer: str) -> RegistryError | None:
        """After an answer no registry gives (``answer`` says what it was), ask GET /v2/: the error saying
        that the host does not look like an OCI registry, or None when /v2/ answers as a registry does."""
        url = httpx.URL(self.base_url(what=what, reference=reference) + "/v2/")
        try:
            with self._client_for(url).stream("GET", url) as resp:
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) >= 4096:
                        break
        except httpx.HTTPError:
            return None
        if resp.headers.get(API_VERSION_HEADER):
            return None
        if resp.status_code == 401 and resp.headers.get("www-authenticate"):
            return None  # a registry that hides even /v2/ behind authentication, without the header
        ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip()
        if resp.status_code == 200 and body.strip() in (b"", b"{}"):
            return None  # the OCI spec's /v2/ answer, 200 and nothing (the header is docker's, not required)
        shown = one_line(body.decode("utf-8", "replace"), 60)
        subject = f"{what} of {reference}" if reference else what
        return RegistryError(
            f"{subject}: {self.registry} does not look like an OCI registry ({answer}; GET {url} answered "
            f"HTTP {resp.status_code}{' ' + ctype if ctype else ''} without a {API_VERSION_HEADER} header"
            f"{': ' + shown if shown else ''})", reference=reference, url=str(url), status=resp.status_code,
            hint=_NOT_A_REGISTRY_HINT)

    def _unreachable(self, exc: httpx.TransportError, url: str, what: str,
                     reference: str | None) -> RegistryUnavailable:
        """The error for a connection that could not be made, with the insecure hint for TLS failures."""
        subject = f"{what} of {reference}" if reference else what
        url = _failed_url(exc, url)
        if not self.is_registry_url(url):
            target = httpx.URL(url)
            host = target.netloc.decode("ascii", "replace")
            endpoint = str(target.copy_with(query=None))
            failure = f"TLS with {host} failed" if _is_tls_failure(exc) else f"cannot connect to {host}"
            if what == "token request":
                return RegistryUnavailable(
                    f"{reference + ': ' if reference else ''}the registry {self.registry} is up, but its token "
                    f"service {host} is not reachable ({failure}: {exc}) at {endpoint}",
                    reference=reference, url=url,
                    hint=f"{self.registry} sends clients to {endpoint} for tokens (the realm of its WWW-Authenticate "
                         "challenge): start that token service, or fix the registry's token realm "
                         "(auth.token.realm) so that it names an address reachable from here")
            return RegistryUnavailable(f"{subject}: {failure}, where {self.registry} redirected the request ({exc}) "
                                       f"at {endpoint}", reference=reference, url=url,
                                       hint=f"{host} (storage or CDN of {self.registry}) is not reachable from here")
        if _is_tls_failure(exc):
            hint = None if self.insecure else (
                f"if {self.registry} speaks plain HTTP or has a self-signed certificate, pass insecure=True "
                f"(CLI: --insecure) or add it to $OCILENS_INSECURE_REGISTRIES")
            return RegistryUnavailable(f"{subject}: TLS with {self.registry} failed ({exc}) at {url}",
                                       reference=reference, url=url, hint=hint)
        return RegistryUnavailable(f"{subject}: cannot connect to {self.registry} ({exc}) at {url}",
                                   reference=reference, url=url,
                                   hint="is the registry running, and is the host name and port right?")

    def _send(self, method: str, url: str, headers: Mapping[str, str], params: Any, data: Any) -> httpx.Response:
        """One request, following redirects by hand; ``Authorization`` never crosses to another origin."""
        hdrs = dict(headers)
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            client = self._client_for(target)
            request = client.build_request(method, target, headers=hdrs, params=params, data=data)
            resp = client.send(request, stream=True)
            location = resp.headers.get("location")
            if resp.status_code not in _REDIRECTS or not location:
                return resp
            resp.close()
            nxt = request.url.join(location)
            if _origin(nxt) != _origin(request.url):
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            if resp.status_code == 303 and method not in ("GET", "HEAD"):
                method, data = "GET", None
            target, params = nxt, None
        raise RegistryError(f"more than {MAX_REDIRECTS} redirects from {url}", url=url)

    def request(self, method: str, path_or_url: str, *, headers: Mapping[str, str] | None = None,
                params: Sequence[tuple[str, str]] | None = None, data: Mapping[str, str] | None = None,
                scopes: tuple[str, ...] | None = None, what: str = "request", reference: str | None = None,
                accept: frozenset[int] = frozenset()) -> httpx.Response:
        """Send with auth (when ``scopes`` is given), retries and redirects; return the streamed response.

        A status >= 400 that is not in ``accept`` raises its typed error (see ``responses.registry_error``).
        """
        url = self.url(path_or_url, what=what, reference=reference)
        retries = 0
        authenticated = False
        while True:
            hdrs = dict(headers or {})
            sent = self.auth.header(scopes, reference=reference) if scopes is not None else None
            if sent:
                hdrs["Authorization"] = sent
            try:
                resp = self._send(method, url, hdrs, params, data)
            except httpx.ConnectError as exc:
                raise self._unreachable(exc, url, what, reference) from exc
            except BROKEN_CONNECTION as exc:
                if retries + 1 >= self.retry.attempts:
                    raise RegistryUnavailable(f"{what} of {reference or url}: connection failed "
                                              f"{retries + 1} times ({exc!r})", reference=reference, url=url) from exc
                self.retry.sleep(self.retry.delay(retries))
                retries += 1
                continue
            status = resp.status_code
            if status in accept:
                return resp
            if status == 401 and scopes is not None and not authenticated:
                authenticated = True
                if self.auth.authenticate(resp, scopes, sent, reference=reference):
                    resp.close()
                    continue
            if status in RETRY_STATUSES:
                wait = self.retry.delay(retries, parse_retry_after(resp.headers.get("retry-after")))
                if retries + 1 < self.retry.attempts and wait <= self.retry.max_retry_after:
                    resp.close()
                    self.retry.sleep(wait)
                    retries += 1
                    continue
            if status >= 400:
                body = read_error_body(resp)
                if (status < 500 and status not in (401, 403, 429) and not error_details(body)[0]
                        and not resp.headers.get(API_VERSION_HEADER) and self.is_registry_url(resp.request.url)):
                    ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip()
                    answer = f"the {what} request got HTTP {status}{' ' + ctype if ctype else ''}"
                    odd = self.not_a_registry(what=what, reference=reference, answer=answer)
                    if odd is not None:
                        raise odd
                state = self.auth.state(scopes) if scopes is not None else "none"
                creds = self.auth.credentials() if state == "basic" else None
                raise registry_error(resp, body, what=what, reference=reference, auth_state=state,
                                     note=self.credentials_problem, credentials=creds, registry=self.registry)
            return resp

    def fetch(self, method: str, path_or_url: str, *, limit: int, headers: Mapping[str, str] | None = None,
              params: Sequence[tuple[str, str]] | None = None, data: Mapping[str, str] | None = None,
              scopes: tuple[str, ...] | None = None, what: str = "request", reference: str | None = None,
              accept: frozenset[int] = frozenset()) -> tuple[httpx.Response, bytes]:
        """A small response read whole (manifest, token), retried as a unit if its body is cut off."""
        for attempt in range(self.retry.attempts):
            resp = self.request(method, path_or_url, headers=headers, params=params, data=data, scopes=scopes,
                                what=what, reference=reference, accept=accept)
            try:
                chunks: list[bytes] = []
                seen = 0
                for chunk in resp.iter_bytes():
                    seen += len(chunk)
                    if seen > limit:
                        raise RegistryError(f"{what} of {reference or resp.request.url}: larger than {limit} bytes",
                                            reference=reference, url=str(resp.request.url),
                                            hint="a registry document this large is not a manifest or token")
                    chunks.append(chunk)
                return resp, b"".join(chunks)
            except BROKEN_CONNECTION as exc:
                if attempt + 1 >= self.retry.attempts:
                    raise RegistryUnavailable(f"{what} of {reference or path_or_url}: the connection broke "
                                              f"{attempt + 1} times while reading ({exc!r})",
                                              reference=reference, url=str(resp.request.url)) from exc
                self.retry.sleep(self.retry.delay(attempt))
            finally:
                resp.close()
        raise AssertionError("unreachable: the loop returns or raises")
