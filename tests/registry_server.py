"""Test helpers: a real CNCF distribution registry on loopback, a token service, images built with umoci.

``RegistryServer`` writes its own config for ``docker-registry serve`` (never the system one, which binds
``:5000``): ``127.0.0.1:<free port>``, filesystem storage in a temporary directory, and optionally
``auth: htpasswd`` (bcrypt entries from ``htpasswd -Bbn``) or ``auth: token`` trusting a ``TokenServer``
that the tests run: a small ``http.server`` issuing RS256 JWTs whose ``x5c`` certificate is the registry's
``rootcertbundle``. ``build_layout`` makes real OCI images with ``umoci``; ``skopeo_copy`` pushes them.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs, urlparse

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, *, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers any HTTP status (or fail, with the server's log if it died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


# --- token service -------------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _LoopbackHTTP:
    """A ThreadingHTTPServer on 127.0.0.1:``self.port`` serving ``self._handler()`` in a daemon thread."""

    _httpd: ThreadingHTTPServer | None = None

    def _handler(self) -> type:
        raise NotImplementedError

    def start(self):  # noqa: ANN201 - returns the subclass
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())  # type: ignore[attr-defined]
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


@dataclass
class TokenServer(_LoopbackHTTP):
    """A distribution token service: Basic-authenticated users get what they ask for, anonymous users
    get ``pull`` on ``public_prefix`` repositories and an empty grant elsewhere (as Docker Hub does).

    ``token_field`` chooses the JSON answer's field (``token``, ``access_token`` or ``both``);
    ``expires_in`` its lifetime. ``requests`` records ``(user, scopes)`` of every token request.
    """

    directory: Path
    users: dict[str, str] = field(default_factory=lambda: {"alice": "wonderland"})
    service: str = "ocilens-test-registry"
    issuer: str = "ocilens-test-issuer"
    public_prefix: str = "public/"
    token_field: str = "token"
    expires_in: int = 300
    requests: list[tuple[str | None, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocilens test token signer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, key_cert_sign=True, crl_sign=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = self.directory / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._httpd: ThreadingHTTPServer | None = None

    def sign(self, subject: str, access: list[dict[str, Any]], *, lifetime: int | None = None) -> str:
        """A JWT the registry accepts: RS256 over header.claims, the signer's cert in ``x5c``."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + (lifetime or self.expires_in),
                  "nbf": now - 5, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def grant(self, user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The access claims for ``user`` asking for ``scopes`` (``repository:name:actions``)."""
        access = []
        for scope in scopes:
            typ, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if typ != "repository" or not name:
                continue
            if user is None:
                wanted = [a for a in wanted if a == "pull"] if name.startswith(self.public_prefix) else []
            if wanted:
                access.append({"type": "repository", "name": name, "actions": wanted})
        return access

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, obj: dict[str, Any]) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/token":
                    return self._answer(404, {"details": "no such endpoint"})
                query = parse_qs(url.query)
                scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
                user: str | None = None
                header = self.headers.get("Authorization", "")
                if header:
                    if not header.startswith("Basic "):
                        return self._answer(401, {"details": "Basic credentials expected"})
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        return self._answer(401, {"details": "invalid username or password"})
                    user = name
                server.requests.append((user, scopes))
                token = server.sign(user or "", server.grant(user, scopes))
                obj: dict[str, Any] = {"expires_in": server.expires_in,
                                       "issued_at": dt.datetime.now(dt.timezone.utc).isoformat()}
                if server.token_field in ("token", "both"):
                    obj["token"] = token
                if server.token_field in ("access_token", "both"):
                    obj["access_token"] = token
                return self._answer(200, obj)

        return Handler



# --- the registry --------------------------------------------------------------------------------------

def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry, as distribution requires (``htpasswd -Bbn``)."""
    out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True)
    return out.stdout.strip()


@dataclass
class RegistryServer:
    """``docker-registry serve`` with a config of our own; use as a context manager or start()/stop()."""

    directory: Path
    htpasswd: dict[str, str] | None = None
    token: TokenServer | None = None
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.directory / 'storage'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
            f"  secret: {uuid.uuid4().hex}",
        ]
        if self.htpasswd is not None:
            path = self.directory / "htpasswd"
            path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.htpasswd.items()))
            lines += ["auth:", "  htpasswd:", "    realm: ocilens-test", f"    path: {path}"]
        elif self.token is not None:
            lines += ["auth:", "  token:", f"    realm: {self.token.realm}", f"    service: {self.token.service}",
                      f"    issuer: {self.token.issuer}", f"    rootcertbundle: {self.token.cert_path}"]
        return "\n".join(lines) + "\n"

    def start(self) -> "RegistryServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        cfg = self.directory / "config.yml"
        cfg.write_text(self.config())
        self.log = open(self.directory / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{self.url}/v2/", proc=self.proc)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{(self.directory / 'registry.log').read_text(errors='replace')}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None) is not None:
            self.log.close()

    def __enter__(self) -> "RegistryServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- images --------------------------------------------------------------------------------------------

@dataclass
class Registry:
    """A running registry for a test module: its server, and the token service it trusts (if any)."""

    server: RegistryServer
    token: TokenServer | None = None

    @property
    def host(self) -> str:
        return self.server.host


def layer_tar(files: dict[str, bytes | tuple[bytes, int]], *, whiteouts: Iterable[str] = ()) -> bytes:
    """An uncompressed layer tar with ``files`` (content, or (content, mode); parents created) and ``.wh.``
    markers for ``whiteouts``."""
    buf = io.BytesIO()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(path: str) -> None:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d and d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d + "/")
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1700000000
                    tar.addfile(info)
        for path, spec in files.items():
            data, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
            add_dir(path)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))
        for path in whiteouts:
            add_dir(path)
            parent, _, name = path.rpartition("/")
            info = tarfile.TarInfo(f"{parent}/.wh.{name}" if parent else f".wh.{name}")
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


def run(*cmd: str) -> str:
    """Run a tool, failing with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc.stdout


def umoci_image(layout: Path, tag: str, layers: list[bytes], *, arch: str = "amd64", os_: str = "linux") -> None:
    """Build ``layout:tag`` from uncompressed layer tars with ``umoci`` (gzip layers, one history row each)."""
    if not (layout / "index.json").exists():
        run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", f"{layout}:{tag}")
    for i, data in enumerate(layers):
        tar = layout.parent / f".{tag}-{i}.tar"
        tar.write_bytes(data)
        run("umoci", "raw", "add-layer", "--image", f"{layout}:{tag}",
            "--history.created_by", f"layer {i} of {tag}", str(tar))
        tar.unlink()
    run("umoci", "config", "--image", f"{layout}:{tag}", "--os", os_, "--architecture", arch)


def add_index(layout: Path, tag: str, members: list[str]) -> str:
    """Add a multi-platform index named ``tag`` over the images ``members`` of ``layout``; its digest."""
    import hashlib

    index = json.loads((layout / "index.json").read_text())
    by_name = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]
               if "annotations" in m}
    entries = []
    for name in members:
        desc = by_name[name]
        manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes())
        config = json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
        entries.append({"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"],
                        "platform": {"os": config["os"], "architecture": config["architecture"]}})
    raw = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": entries}).encode()
    digest = hashlib.sha256(raw).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(raw)
    index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{digest}",
                               "size": len(raw), "annotations": {"org.opencontainers.image.ref.name": tag}})
    (layout / "index.json").write_text(json.dumps(index))
    return f"sha256:{digest}"


def skopeo_copy(src: str, dest: str, *, creds: str | None = None, compress: str | None = None,
                all_images: bool = False, fmt: str | None = None) -> None:
    """``skopeo copy`` to a plain-HTTP test registry (``fmt``: ``oci`` or ``v2s2``)."""
    cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    if fmt:
        cmd += ["--format", fmt]
    if creds:
        cmd += ["--dest-creds", creds]
    if compress:
        cmd += ["--dest-compress-format", compress]
    if all_images:
        cmd += ["--all"]
    run(*cmd, src, dest)


# --- a proxy that misbehaves on demand -----------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host",
               "proxy-connection", "te", "trailer", "upgrade"}
_ERROR_CODES = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "UNAVAILABLE"}


@dataclass
class FaultProxy(_LoopbackHTTP):
    """A loopback HTTP proxy in front of a registry that injects faults a real registry cannot make.

    ``plan[path_fragment]`` is a list of actions consumed one per matching request (then ``ok``):
    ``ok``; ``cut:N`` (send N body bytes of a full-length response, then drop the connection);
    ``short:N`` (a clean response of only N bytes); ``flip:N`` (byte N inverted); ``status:CODE[:RETRY_AFTER]``
    (an error answer with a registry error body); ``edit`` (a manifest body changed, headers kept);
    ``hold:K`` (wait until K requests hold here, then serve: requests that really overlap).
    ``requests`` records ``(method, path, headers)``.
    """

    upstream: str
    plan: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._barriers: dict[tuple[str, int], threading.Barrier] = {}
        self._client = httpx.Client(base_url=self.upstream, timeout=30)
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _action(self, path: str) -> tuple[str, str | None]:
        with self._lock:
            for fragment, actions in self.plan.items():
                if fragment in path and actions:
                    return actions.pop(0), fragment
        return "ok", None

    def _barrier(self, key: str, parties: int) -> threading.Barrier:
        with self._lock:
            return self._barriers.setdefault((key, parties), threading.Barrier(parties, timeout=30))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _error(self, status: int, retry_after: str | None) -> None:
                code = _ERROR_CODES.get(status, "UNKNOWN")
                body = json.dumps({"errors": [{"code": code, "message": f"injected {status}"}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(body)

            def _forward(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                with proxy._lock:
                    proxy.requests.append((self.command, self.path, dict(headers)))
                action, fragment = proxy._action(self.path)
                kind, _, arg = action.partition(":")
                if kind == "status":
                    status, _, retry_after = arg.partition(":")
                    return self._error(int(status), retry_after or None)
                if kind == "hold":
                    proxy._barrier(fragment or self.path, int(arg)).wait()
                resp = proxy._client.request(self.command, self.path, headers=headers)
                body = resp.content
                length = len(body)
                if kind == "flip":
                    n = int(arg) % max(1, len(body))
                    body = body[:n] + bytes([body[n] ^ 0xFF]) + body[n + 1:]
                elif kind == "edit":
                    body = body + b"\n"
                    length = len(body)
                elif kind == "short":
                    body = body[: int(arg)]
                    length = len(body)
                self.send_response(resp.status_code)
                for k, v in resp.headers.multi_items():
                    if k.lower() not in _HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                if kind == "cut":
                    self.wfile.write(body[: int(arg)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            do_GET = do_HEAD = _forward

        return Handler

    def stop(self) -> None:
        super().stop()
        self._client.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
