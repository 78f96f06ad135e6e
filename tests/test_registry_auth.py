"""Client logic against scripted registries (httpx.MockTransport): auth challenges and tokens, redirects,
TLS and plain HTTP, docker credentials, retries. The network itself is tested in test_registry*.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from ocilens.digest import digest_bytes
from ocilens.errors import AuthenticationError, RegistryError, RegistryNotFound, RegistryUnavailable
from ocilens.manifest import OCI_MANIFEST
from ocilens.registry import Credentials, RetryPolicy, find_credentials, parse_www_authenticate
from ocilens.registry.challenge import Challenge
from ocilens.registry.hosts import allows_insecure, api_host, is_loopback, split_host_port
from ocilens.registry.retry import parse_retry_after
from ocilens.sources.registry import RegistrySource

LAYER = b"layer bytes " * 1000
LAYER_D = digest_bytes(LAYER)
CONFIG = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
CONFIG_D = digest_bytes(CONFIG)
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_D, "size": len(CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": LAYER_D, "size": len(LAYER)}],
}).encode()
MANIFEST_D = digest_bytes(MANIFEST)
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("OCILENS_INSECURE_REGISTRIES", raising=False)


def content(request: httpx.Request, repo: str = "app") -> httpx.Response:
    """What an open registry serves for ``repo``: the manifest (tag ``1`` or digest), config and layer."""
    path = request.url.path
    if path in (f"/v2/{repo}/manifests/1", f"/v2/{repo}/manifests/{MANIFEST_D}"):
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST,
                                                              "Docker-Content-Digest": MANIFEST_D})
    if path == f"/v2/{repo}/blobs/{CONFIG_D}":
        return httpx.Response(200, content=CONFIG)
    if path == f"/v2/{repo}/blobs/{LAYER_D}":
        return httpx.Response(200, content=LAYER)
    return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]})


def source(ref: str, handler: Handler, **kw: object) -> RegistrySource:
    kw.setdefault("retry", RetryPolicy(sleep=lambda s: None))
    return RegistrySource(ref, transport=httpx.MockTransport(handler), **kw)  # type: ignore[arg-type]


def pull(src: RegistrySource) -> None:
    manifest = src.resolve()
    for desc in (manifest.config, *manifest.layers):
        src.read_blob(desc)


# --- WWW-Authenticate ----------------------------------------------------------------------------------

@pytest.mark.parametrize("header,expected", [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
     [Challenge("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                           "scope": "repository:library/alpine:pull"})]),
    ('Bearer realm="https://a.example/t", scope="repository:x:pull,push repository:y:pull", service="s"',
     [Challenge("bearer", {"realm": "https://a.example/t", "scope": "repository:x:pull,push repository:y:pull",
                           "service": "s"})]),
    ('Basic realm="Registry Realm, with a comma"',
     [Challenge("basic", {"realm": "Registry Realm, with a comma"})]),
    ('Basic realm="a", Bearer realm="https://t.example/token",service="r"',
     [Challenge("basic", {"realm": "a"}), Challenge("bearer", {"realm": "https://t.example/token", "service": "r"})]),
    ('Bearer realm="q\\"uote\\\\d",error="insufficient_scope"',
     [Challenge("bearer", {"realm": 'q"uote\\d', "error": "insufficient_scope"})]),
    ('BEARER Realm=https://unquoted.example/token , Service = reg',
     [Challenge("bearer", {"realm": "https://unquoted.example/token", "service": "reg"})]),
    ('Bearer realm="unterminated', [Challenge("bearer", {"realm": "unterminated"})]),
    ('', []),
])
def test_parse_www_authenticate(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_several_scopes_accumulate() -> None:
    [c] = parse_www_authenticate('Bearer realm="r",scope="repository:a:pull",scope="repository:b:pull push"')
    assert c.scopes == ("repository:a:pull", "repository:b:pull", "push")
    [c] = parse_www_authenticate('Bearer realm="r",scope="repository:x:pull,push repository:y:pull"')
    assert c.scopes == ("repository:x:pull,push", "repository:y:pull")


# --- bearer tokens -------------------------------------------------------------------------------------

class TokenRegistry:
    """registry.test behind bearer auth; tokens from auth.test, numbered T1, T2...; revocable."""

    def __init__(self, *, field: str = "token", expires_in: int | None = 300, challenge_scope: str | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.field = field
        self.expires_in = expires_in
        self.challenge_scope = challenge_scope
        self.users = users
        self.issued = 0
        self.valid: set[str] = set()
        self.token_requests: list[httpx.Request] = []
        self.registry_requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            self.token_requests.append(request)
            assert request.url.path == "/token"
            if self.users is not None:
                auth = request.headers.get("authorization", "")
                decoded = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth else ""
                user, _, pw = decoded.partition(":")
                if self.users.get(user) != pw:
                    return httpx.Response(401, json={"details": "bad credentials"})
            self.issued += 1
            token = f"T{self.issued}"
            self.valid.add(token)
            body: dict[str, object] = {self.field: token}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body)
        assert request.url.host == "registry.test"
        self.registry_requests.append(request)
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid:
            scope = self.challenge_scope or "repository:app:pull"
            return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="https://auth.test/token",'
                                                                    f'service="registry.test",scope="{scope}"'},
                                  json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
        return content(request)


def test_bearer_flow_with_several_scopes_and_access_token() -> None:
    reg = TokenRegistry(field="access_token", challenge_scope="repository:app:pull repository:base:pull")
    with source("registry.test/app:1", reg) as src:
        pull(src)
    [tok] = reg.token_requests
    query = parse_qs(tok.url.query.decode())
    assert query == {"service": ["registry.test"], "scope": ["repository:app:pull", "repository:base:pull"]}
    assert "authorization" not in tok.headers  # anonymous: nothing to send
    assert tok.url.scheme == "https"
    sent = [r.headers.get("authorization") for r in reg.registry_requests]
    assert sent == [None, "Bearer T1", "Bearer T1", "Bearer T1"]


def test_token_expiry_refresh_and_revocation() -> None:
    reg = TokenRegistry(expires_in=60)
    now = [1000.0]
    with source("registry.test/app:1", reg) as src:
        src.client.session.auth._clock = lambda: now[0]
        manifest = src.resolve()
        now[0] += 100  # past expires_in: refreshed before the next request, not after a 401
        src.read_blob(manifest.config)
        assert reg.issued == 2 and reg.registry_requests[-1].headers["authorization"] == "Bearer T2"
        assert sum(1 for r in reg.registry_requests if "authorization" not in r.headers) == 1
        reg.valid.clear()  # the registry revokes every token: one 401, a new token, one retry
        src.read_blob(manifest.layers[0])
        assert reg.issued == 3 and reg.registry_requests[-1].headers["authorization"] == "Bearer T3"


def test_token_without_expires_in_lasts_60_seconds() -> None:
    reg = TokenRegistry(expires_in=None)
    now = [0.0]
    with source("registry.test/app:1", reg) as src:
        src.client.session.auth._clock = lambda: now[0]
        manifest = src.resolve()
        now[0] += 30
        src.read_blob(manifest.config)
        assert reg.issued == 1
        now[0] += 40
        src.read_blob(manifest.layers[0])
        assert reg.issued == 2


def test_token_with_credentials() -> None:
    reg = TokenRegistry(users={"ann": "pw, with comma"})
    with source("registry.test/app:1", reg, auth=("ann", "pw, with comma")) as src:
        pull(src)
    assert reg.token_requests[0].headers["authorization"] == "Basic " + base64.b64encode(b"ann:pw, with comma").decode()
    with source("registry.test/app:1", reg, auth=("ann", "wrong")) as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert "rejected" in str(info.value) and "bad credentials" in str(info.value)
    assert "from the auth= argument" in str(info.value) and info.value.reference == "registry.test/app:1"
    with source("registry.test/app:1", reg) as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert "needs credentials" in str(info.value)


def test_identity_token_uses_oauth_post() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            seen.append(request)
            return httpx.Response(200, json={"access_token": "OAUTH", "expires_in": 300})
        if request.headers.get("authorization") != "Bearer OAUTH":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.test/token",service="s"'})
        return content(request)

    with source("registry.test/app:1", handler, auth=Credentials(identity_token="refresh-me")) as src:
        pull(src)
    [req] = seen
    assert req.method == "POST"
    form = parse_qs(req.content.decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["refresh-me"]
    assert form["scope"] == ["repository:app:pull"] and form["service"] == ["s"]


def test_hub_style_401_for_a_missing_repository() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.docker.io":
            return httpx.Response(200, json={"token": "anon"})
        assert request.url.host == "registry-1.docker.io"
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.docker.io/token",'
                                            'service="registry.docker.io",scope="repository:nobody/nothing:pull",'
                                            'error="insufficient_scope"'},
                              json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})

    with source("nobody/nothing", handler) as src, pytest.raises(RegistryNotFound) as info:
        src.resolve()
    err = info.value
    assert "not found or needs authentication" in str(err)
    assert err.reference == "docker.io/nobody/nothing:latest" and "docker.io/nobody/nothing:latest" in str(err)
    assert err.url == "https://registry-1.docker.io/v2/nobody/nothing/manifests/latest" and "UNAUTHORIZED" in str(err)


def test_403_is_denied() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"errors": [{"code": "DENIED", "message": "requested access is denied"}]})

    with source("registry.test/app:1", handler) as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert info.value.status == 403 and info.value.codes == ("DENIED",) and "denied" in str(info.value)


def test_basic_challenge() -> None:
    expected = "Basic " + base64.b64encode(b"u:p").decode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'})
        return content(request)

    with source("registry.test/app:1", handler, auth=("u", "p")) as src:
        pull(src)
    with source("registry.test/app:1", handler) as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert "needs credentials" in str(info.value)


# --- redirects -----------------------------------------------------------------------------------------

def test_redirects_never_carry_authorization_to_another_host() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "registry.test":
            if request.headers.get("authorization") != "Basic dTpw":
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            if request.url.path == f"/v2/app/blobs/{LAYER_D}":
                return httpx.Response(302, headers={"Location": f"/storage/{LAYER_D}"})  # same origin
            if request.url.path == f"/storage/{LAYER_D}":
                return httpx.Response(307, headers={"Location": f"https://cdn.test/b/{LAYER_D}?sig=abc"})
            return content(request)
        assert request.url.host == "cdn.test"
        assert "authorization" not in request.headers, "credentials leaked to the CDN"
        assert request.headers.get("range") is None
        return httpx.Response(200, content=LAYER)

    with source("registry.test/app:1", handler, auth=("u", "p")) as src:
        pull(src)
    hops = [(r.url.host, r.url.path, "authorization" in r.headers) for r in seen if "blobs" in r.url.path
            or "storage" in r.url.path or r.url.host == "cdn.test"]
    assert (("registry.test", f"/storage/{LAYER_D}", True) in hops
            and ("cdn.test", f"/b/{LAYER_D}", False) in hops)
    assert dict(seen[-1].url.params) == {"sig": "abc"}


def test_redirect_loop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "/v2/app/manifests/1"})

    with source("registry.test/app:1", handler) as src, pytest.raises(RegistryError) as info:
        src.resolve()
    assert "redirects" in str(info.value)


# --- TLS, plain HTTP, retries, limits --------------------------------------------------------------------

def plain_http_only(request: httpx.Request) -> httpx.Response:
    if request.url.scheme == "https":
        raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", request=request)
    return content(request)


def test_tls_failure_names_the_way_out() -> None:
    with source("myreg.internal:5000/app:1", plain_http_only) as src, pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    text = str(info.value)
    assert "TLS" in text and "insecure=True" in text and "OCILENS_INSECURE_REGISTRIES" in text
    assert info.value.url == "https://myreg.internal:5000/v2/app/manifests/1"


def test_insecure_env_allows_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCILENS_INSECURE_REGISTRIES", "other.example, insecure-env.internal:5000")
    with source("insecure-env.internal:5000/app:1", plain_http_only) as src:
        pull(src)
        assert src.client.session.base_url() == "http://insecure-env.internal:5000"


def test_insecure_argument_allows_plain_http() -> None:
    with source("insecure-arg.internal/app:1", plain_http_only, insecure=True) as src:
        pull(src)


def test_read_error_on_manifest_is_retried() -> None:
    calls = [0]
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            raise httpx.ReadError("connection reset by peer", request=request)
        return content(request)

    with source("registry.test/app:1", handler, retry=RetryPolicy(sleep=waits.append)) as src:
        assert src.resolve().digest == MANIFEST_D
    assert waits == [0.5]


def test_manifest_without_docker_content_digest() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        resp = content(request)
        resp.headers.pop("Docker-Content-Digest", None)
        return resp

    with source("registry.test/app:1", handler) as src:
        assert src.resolve().digest == MANIFEST_D


def test_manifest_size_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b" " * (5 * 1024 * 1024), headers={"Content-Type": OCI_MANIFEST})

    with source("registry.test/app:1", handler) as src, pytest.raises(RegistryError) as info:
        src.resolve()
    assert "larger than" in str(info.value)


def test_connection_refused_is_not_retried() -> None:
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with source("registry.test/app:1", handler, retry=RetryPolicy(sleep=waits.append)) as src, \
            pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    assert "cannot connect" in str(info.value) and waits == []


# --- docker credentials --------------------------------------------------------------------------------

def write_config(tmp_path: Path, obj: object) -> Path:
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_docker_config_auths(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
        "https://ghcr.io": {"auth": b64("gh:tok:en")},
        "quay.io": {"identitytoken": "idtok"},
        "localhost:5000": {"username": "lu", "password": "lp"},
    }})
    hub = find_credentials("docker.io")
    assert hub is not None and hub.basic == ("hubuser", "hubpass") and "auths" in hub.source
    assert find_credentials("ghcr.io") == Credentials("gh", "tok:en", None, hub.source)
    quay = find_credentials("quay.io")
    assert quay is not None and quay.identity_token == "idtok" and quay.basic is None
    assert find_credentials("localhost:5000") == Credentials("lu", "lp", None, hub.source)
    assert find_credentials("elsewhere.example") is None
    assert "hubpass" not in repr(hub)


def test_docker_config_helper_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, answer in [("one", '{"Username": "helper-user", "Secret": "helper-secret"}'),
                         ("store", '{"Username": "<token>", "Secret": "identity"}')]:
        script = bindir / f"docker-credential-{name}"
        script.write_text(f"#!/bin/sh\nread server\necho '{answer}'\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    write_config(tmp_path, {"auths": {"reg.example": {"auth": b64("file:user")}},
                            "credHelpers": {"reg.example": "one"}, "credsStore": "store"})
    assert find_credentials("reg.example") == Credentials("helper-user", "helper-secret", None, "docker-credential-one")
    other = find_credentials("other.example")
    assert other is not None and other.identity_token == "identity"


def test_docker_config_problems(tmp_path: Path) -> None:
    write_config(tmp_path, "{not json")
    with pytest.warns(UserWarning, match="not valid JSON"):
        assert find_credentials("reg.example") is None
    write_config(tmp_path, {"auths": {"reg.example": {"auth": b64("no-colon")}}})
    with pytest.raises(AuthenticationError, match="no ':'"):
        find_credentials("reg.example")
    write_config(tmp_path, {"credsStore": "ocilens-missing-helper"})
    with pytest.raises(AuthenticationError, match="docker-credential-ocilens-missing-helper"):
        find_credentials("reg.example")


# --- small pieces --------------------------------------------------------------------------------------

@pytest.mark.parametrize("registry,loopback", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.3.2.1", True),
    ("[::1]:5000", True), ("[::1]", True), ("10.0.0.1:5000", False), ("example.com", False),
    ("localhost.example.com", False), ("[2001:db8::1]:5000", False),
])
def test_loopback(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback
    assert allows_insecure(registry, None) is loopback
    assert allows_insecure(registry, False) is False and allows_insecure(registry, True) is True


def test_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert api_host("docker.io") == "registry-1.docker.io" and api_host("ghcr.io") == "ghcr.io"
    assert split_host_port("[::1]:5000") == ("::1", 5000) and split_host_port("h") == ("h", None)
    monkeypatch.setenv("OCILENS_INSECURE_REGISTRIES", "a.example,b.example:5000")
    assert allows_insecure("a.example:443", None) and allows_insecure("b.example:5000", None)
    assert not allows_insecure("b.example:6000", None) and not allows_insecure("c.example", None)


def test_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    policy = RetryPolicy(backoff=0.5, max_backoff=3.0)
    assert [policy.delay(i) for i in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay(0, 9.0) == 9.0
