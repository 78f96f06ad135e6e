"""Registry errors that name what is at fault and say what to do: a token service that is down, a web server
that is not a registry, references docker reads differently than meant, rejected credentials and where they
came from, 404 hints, the image reference on every error.

The registry is Debian's docker-registry (tests/registry_server.py); a tiny http.server stands in for the
things a real registry cannot be (a web server that is not a registry).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from ocilens.errors import (AuthenticationError, RegistryError, RegistryNotFound, RegistryUnavailable,
                            UsageError)
from ocilens.manifest import Descriptor
from ocilens.platform import Platform
from ocilens.registry import find_credentials
from ocilens.registry.responses import one_line
from ocilens.sources.registry import RegistrySource

try:
    from . import registry_server as rs
except ImportError:
    import registry_server as rs

HTML_404 = b"""<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <h1>Error response</h1>
        <p>Error code: 404</p>
        <p>Message: File not found.</p>
    </body>
</html>
"""


Registry = rs.Registry


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh cache per test, and a docker config that is empty unless the test writes one."""
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("OCILENS_INSECURE_REGISTRIES", raising=False)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout with one small amd64 image tagged ``app``."""
    path = tmp_path_factory.mktemp("errors-images") / "layout"
    rs.umoci_image(path, "app", [rs.layer_tar({"etc/nonce": os.urandom(16).hex().encode()})])
    return path


@pytest.fixture(scope="module")
def anon(tmp_path_factory: pytest.TempPathFactory, layout: Path) -> Iterator[Registry]:
    """An anonymous registry holding team/app:1."""
    with rs.RegistryServer(tmp_path_factory.mktemp("errors-anon")) as server:
        rs.skopeo_copy(f"oci:{layout}:app", f"docker://{server.host}/team/app:1")
        yield Registry(server)


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with htpasswd basic auth (bob / s3cret); empty: every request stops at the 401."""
    with rs.RegistryServer(tmp_path_factory.mktemp("errors-basic"), htpasswd={"bob": "s3cret"}) as server:
        yield Registry(server)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with ``auth: token`` and its token service running (alice / wonderland)."""
    tok = rs.TokenServer(tmp_path_factory.mktemp("errors-token-service")).start()
    try:
        with rs.RegistryServer(tmp_path_factory.mktemp("errors-token"), token=tok) as server:
            yield Registry(server, tok)
    finally:
        tok.stop()


@pytest.fixture(scope="module")
def token_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with ``auth: token`` whose token service (its realm) is not running."""
    tok = rs.TokenServer(tmp_path_factory.mktemp("errors-token-down-service"))  # never started
    with rs.RegistryServer(tmp_path_factory.mktemp("errors-token-down"), token=tok) as server:
        yield Registry(server, tok)


class WebServer:
    """A plain web server on loopback: ``routes[path]`` is (status, content type, body, headers), else ``default``."""

    def __init__(self, default: tuple[int, str, bytes], routes: dict[str, tuple[int, str, bytes, dict[str, str]]]
                 | None = None) -> None:
        self.default = default
        self.routes = routes or {}
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.paths.append(self.path)
                status, ctype, body, *extra = server.routes.get(self.path.split("?")[0], (*server.default, {}))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra[0] if extra else {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "WebServer":
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_docker_config(obj: object) -> Path:
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, answer: str | None) -> str:
    """A ``docker-credential-<name>`` on PATH answering ``answer`` (None: not installed); its program name."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    if answer is not None:
        script = bindir / f"docker-credential-{name}"
        script.write_text(f"#!/bin/sh\nread server\necho '{answer}'\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return f"docker-credential-{name}"


def single_line_message(err: BaseException) -> str:
    """The message without its hint, checked to be one line."""
    text = str(err)
    message = text.split("\n  hint: ", 1)[0]
    assert "\n" not in message, text
    assert text.count("hint:") <= 1, text
    return message


# --- C1: the token service is down -------------------------------------------------------------------------

def test_unreachable_token_service_is_named(token_down: Registry) -> None:
    assert token_down.token is not None
    ref = f"{token_down.host}/team/app:1"
    tok_host = f"127.0.0.1:{token_down.token.port}"
    with RegistrySource(ref) as src, pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    err = info.value
    message = single_line_message(err)
    assert f"the registry {token_down.host} is up, but its token service {tok_host} is not reachable" in message
    assert f"cannot connect to {token_down.host}" not in message and "Connection refused" in message
    assert err.reference == ref and message.startswith(f"{ref}: ")
    assert err.url is not None and err.url.startswith(token_down.token.realm)
    assert err.hint is not None and token_down.token.realm in err.hint and "token service" in err.hint
    assert "is the registry running" not in err.hint


def test_unreachable_registry_carries_the_reference() -> None:
    ref = f"127.0.0.1:{rs.free_port()}/team/app:1"
    with RegistrySource(ref) as src, pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    err = info.value
    assert err.reference == ref and ref in single_line_message(err) and "cannot connect to registry" in str(err)
    assert err.hint and "is the registry running" in err.hint


# --- C2: a web server that is not a registry ----------------------------------------------------------------

@pytest.mark.parametrize("default", [
    (404, "text/html;charset=utf-8", HTML_404),
    (200, "text/html", HTML_404.replace(b"Error response", b"Welcome to nginx!")),
    (200, "application/json", b'{"status": "ok", "service": "something else"}'),
], ids=["404-html", "200-html", "200-json"])
def test_a_web_server_is_not_a_registry(default: tuple[int, str, bytes]) -> None:
    with WebServer(default) as web:
        ref = f"{web.host}/team/app:1"
        for call in (lambda s: s.resolve(), lambda s: s.platforms()):
            with RegistrySource(ref) as src, pytest.raises(RegistryError) as info:
                call(src)
            err = info.value
            message = single_line_message(err)
            assert f"{web.host} does not look like an OCI registry (" in message, message
            assert f"GET http://{web.host}/v2/ answered HTTP {default[0]}" in message
            assert "without a Docker-Distribution-API-Version header" in message
            assert "<!DOCTYPE" not in str(err) and "<html" not in str(err)
            assert "not valid JSON" not in message and "media type ''" not in message
            assert err.reference == ref and err.hint is not None and "host name and port" in err.hint
        assert "/v2/" in web.paths


def test_html_error_bodies_are_one_short_line() -> None:
    """A server that does answer /v2/ as a registry, but whose manifest path gives an HTML 404 page
    (a reverse proxy routing it elsewhere): a plain 404, with the page as one short line."""
    api = (200, "application/json", b"{}", {"Docker-Distribution-API-Version": "registry/2.0"})
    with WebServer((404, "text/html", HTML_404), {"/v2/": api}) as web:
        with RegistrySource(f"{web.host}/team/app:1") as src, pytest.raises(RegistryNotFound) as info:
            src.resolve()
    message = single_line_message(info.value)
    assert "HTML page: Error response" in message and "<" not in message
    assert one_line(HTML_404.decode()) == "HTML page: Error response"
    assert one_line("<html><body><p>no\n title</p>\n</body></html>") == "HTML page: no title"
    assert one_line("x" * 500).endswith("...") and len(one_line("x" * 500)) == 160
    assert one_line("line one\n\n   line two\t") == "line one line two"


def test_a_real_registry_is_still_a_registry(anon: Registry) -> None:
    """A real 404 from a real registry is not mistaken for a web server."""
    with RegistrySource(f"{anon.host}/team/app:nope") as src, pytest.raises(RegistryNotFound) as info:
        src.resolve()
    assert "does not look like" not in str(info.value) and "MANIFEST_UNKNOWN" in info.value.codes


# --- C3: references docker reads differently than meant ----------------------------------------------------

@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every HTTPS connection goes through a proxy that is not there: Docker Hub fails at once, offline."""
    dead = f"http://127.0.0.1:{rs.free_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("text,reference,hint", [
    ("127.0.0.1:5000", "docker.io/library/127.0.0.1:5000",
     "did you mean 127.0.0.1:5000/REPO[:TAG]? '127.0.0.1:5000' has no repository, so docker's grammar reads it as "
     "the Docker Hub image library/127.0.0.1 with tag 5000"),
    ("localhost:5000", "docker.io/library/localhost:5000", "did you mean localhost:5000/REPO[:TAG]?"),
    ("docker://localhost:5000", "docker.io/library/localhost:5000", "did you mean localhost:5000/REPO[:TAG]?"),
    ("UPPER/case", "UPPER/case:latest",
     "an uppercase first component is read as a registry host name: 'UPPER' is taken as the registry"),
])
def test_ambiguous_references_get_a_hint(no_internet: None, text: str, reference: str, hint: str) -> None:
    with RegistrySource(text) as src, pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    err = info.value
    assert err.reference == reference and err.hint is not None and err.hint.startswith(hint), err.hint
    assert str(err).count("hint:") == 1 and hint in str(err)
    with RegistrySource(text) as src, pytest.raises(RegistryUnavailable) as info:
        src.platforms()
    assert info.value.hint is not None and info.value.hint.startswith(hint)


def test_plain_references_get_no_extra_hint(no_internet: None) -> None:
    with RegistrySource("team/app:1") as src, pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    assert "did you mean" not in str(info.value) and "uppercase" not in str(info.value)


# --- C6: credentials ---------------------------------------------------------------------------------------

def test_credential_helper_problem_does_not_nest_a_hint(basic: Registry, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    program = helper(tmp_path, monkeypatch, "ocilens-not-installed", None)
    path = write_docker_config({"credsStore": "ocilens-not-installed"})
    with RegistrySource(f"{basic.host}/team/app:1") as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    err = info.value
    assert str(err).count("hint:") == 1, str(err)
    assert err.hint is not None and err.hint.startswith("log in (docker login) or pass auth=(user, password); ")
    assert f"credential helper {program} (configured in {path}) is not installed; install {program}" in err.hint
    assert "\n" not in err.hint and "(credential helper" not in err.hint


def test_basic_rejection_names_the_auth_argument(basic: Registry) -> None:
    ref = f"{basic.host}/team/app:1"
    with RegistrySource(ref, auth=("bob", "wrong")) as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    err = info.value
    assert f"{basic.host} rejected the credentials for user 'bob' from the auth= argument" in str(err)
    assert err.hint == "check the user name and password passed as auth=(user, password)"
    assert err.reference == ref and err.status == 401 and "UNAUTHORIZED" in err.codes


def test_basic_rejection_names_the_docker_config_entry(basic: Registry) -> None:
    path = write_docker_config({"auths": {basic.host: {"auth": base64.b64encode(b"bob:wrong").decode()}}})
    with RegistrySource(f"{basic.host}/team/app:1") as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    err = info.value
    assert f"rejected the credentials for user 'bob' from the auths entry in {path}" in str(err)
    assert err.hint is not None and f"docker login {basic.host}" in err.hint and str(path) in err.hint


def test_basic_rejection_names_the_credential_helper(basic: Registry, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    program = helper(tmp_path, monkeypatch, "ocilens-wrong", '{"Username": "bob", "Secret": "wrong"}')
    write_docker_config({"credHelpers": {basic.host: "ocilens-wrong"}})
    with RegistrySource(f"{basic.host}/team/app:1") as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    err = info.value
    assert f"rejected the credentials for user 'bob' from credential helper {program}" in str(err)
    assert err.hint is not None and f"check what {program} stores for {basic.host}" in err.hint


def test_docker_config_that_is_not_an_object_warns() -> None:
    path = write_docker_config("[1, 2]")
    with pytest.warns(UserWarning, match=r"is a JSON list, not an object; continuing without its credentials") as seen:
        assert find_credentials("reg.example") is None
    assert str(path) in str(seen[0].message)


# --- C7: an invalid platform -----------------------------------------------------------------------------

def test_invalid_platform_is_a_usage_error_naming_the_image() -> None:
    ref = f"127.0.0.1:{rs.free_port()}/team/app:1"
    with RegistrySource(ref) as src, pytest.raises(UsageError) as info:
        src.resolve("linux")  # refused before any request
    err = info.value
    assert err.reference == ref and f"invalid platform 'linux' for {ref}" in str(err)
    assert err.hint is not None and "os/architecture[/variant]" in err.hint and f"ocilens platforms {ref}" in err.hint
    with pytest.raises(UsageError) as info:
        Platform.parse("linux/amd64/v1/extra")
    assert info.value.reference is None and "'linux/amd64/v1/extra'" in str(info.value)


# --- C9: the reference on every error, hints for 404s --------------------------------------------------------

def test_token_errors_carry_the_reference(token: Registry) -> None:
    ref = f"{token.host}/private/app:1"
    with RegistrySource(ref, auth=("alice", "nope")) as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    err = info.value
    assert err.reference == ref and str(err).startswith(f"{ref}: the token service")
    assert "rejected the credentials for user 'alice' from the auth= argument" in str(err)
    assert "invalid username or password" in str(err)


def test_not_found_hints(anon: Registry) -> None:
    with RegistrySource(f"{anon.host}/team/app:nope") as src, pytest.raises(RegistryNotFound) as info:
        src.resolve()
    err = info.value
    assert err.reference == f"{anon.host}/team/app:nope" and err.hint is not None
    assert err.hint.startswith("check the repository name and the tag or digest: ")
    assert f"`skopeo list-tags docker://{anon.host}/team/app` lists the tags" in err.hint
    assert f"`ocilens platforms {anon.host}/team/app:TAG`" in err.hint
    with RegistrySource(f"{anon.host}/team/ghost:1") as src, pytest.raises(RegistryNotFound) as info:
        src.resolve()
    # distribution answers MANIFEST_UNKNOWN or NAME_UNKNOWN for a repository that does not exist
    assert info.value.hint is not None and info.value.hint.startswith("check the repository name")
    with RegistrySource(f"{anon.host}/team/app:1") as src, pytest.raises(RegistryNotFound) as info:
        src.open_blob(Descriptor("application/octet-stream", "sha256:" + "0" * 64, 10))
    assert "BLOB_UNKNOWN" in info.value.codes and info.value.reference == f"{anon.host}/team/app:1"
    assert info.value.hint is not None and "push the image again" in info.value.hint


def test_a_registry_without_the_docker_header_is_still_a_registry() -> None:
    """The OCI spec does not require Docker-Distribution-API-Version: a server whose /v2/ answers 200 ``{}``
    and whose missing tag is a bare 404 is a registry without that tag, not "not a registry"."""
    with WebServer((404, "", b""), {"/v2/": (200, "application/json", b"{}", {})}) as web:
        with RegistrySource(f"{web.host}/team/app:nope") as src, pytest.raises(RegistryNotFound) as info:
            src.resolve()
        assert "does not look like" not in str(info.value)
