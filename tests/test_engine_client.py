"""ocilens.engine: finding a Docker or Podman engine as their CLIs do, and talking to real ones.

Endpoint rules are checked with real files (config.json, context meta written by the real docker CLI) and
real unix sockets under short directories. The client is checked against the suite's own dockerd 20.10 and
podman 4.3 service (tests/engines.py): inspect against the engines' CLIs, the export against ``docker save``
/ ``podman save`` byte for byte, and every typed error for real: a socket that is missing, stale or not a
socket, a socket this user may not open (a forked child as ``nobody``), an image the engine lacks, a name
it refuses, and the engine killed in the middle of an export.
"""

from __future__ import annotations

import grp
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from engines import APP_TAG, BASE_TAG, EngineImage, EngineProcess, short_dir
from ocilens.engine import Endpoint, EngineClient, TLSConfig, docker_endpoint, find_endpoint, has_image, \
    podman_endpoint
from ocilens.errors import (EngineAPIError, EngineEndpointError, EngineError, EngineExportInterrupted,
                            EngineImageNotFound, EngineNotRunning, EnginePermissionDenied, ImageNotFound,
                            InvalidReference, SourceError)

KINDS = ("docker", "podman")


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for unix sockets (paths may not exceed 107 bytes), removed afterwards."""
    path = short_dir()
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=True)


def bind_socket(path: Path, listen: bool = True) -> socket.socket:
    """A real unix socket bound at ``path`` (listening, or bound only: what a dead daemon leaves behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    if listen:
        s.listen(1)
    return s


def base_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no engine settings: HOME and DOCKER_CONFIG in ``tmp_path``, no XDG_RUNTIME_DIR."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "")}


def write_context(config_dir: Path, name: str, host: str, *, skip_verify: bool = False,
                  tls_files: tuple[str, ...] = ()) -> Path:
    """A docker context as the docker CLI stores it: ``contexts/meta/<sha256(name)>/meta.json`` plus TLS
    files under ``contexts/tls/<sha256(name)>/docker/``; returns the TLS directory."""
    key = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / key / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": name, "Metadata": {},
                                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}}}))
    tls = config_dir / "contexts" / "tls" / key / "docker"
    for f in tls_files:
        tls.mkdir(parents=True, exist_ok=True)
        (tls / f).write_text(f"{f}\n")
    return tls


def engine_of(kind: str, request: pytest.FixtureRequest) -> EngineProcess:
    return request.getfixturevalue(f"{kind}_engine")


def image_of(kind: str, request: pytest.FixtureRequest) -> EngineImage:
    return request.getfixturevalue(f"{kind}_image")


def as_nobody(fn: Callable[[], object], groups: tuple[int, ...] = ()) -> tuple[str, str]:
    """Run ``fn`` in a forked child as uid/gid 65534 (nobody) with only ``groups``; returns the name of
    the exception it raised (or ``"ok"``) and its message. Real permission checks: root would pass them."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_fd)
            os.setgroups(list(groups))
            os.setgid(65534)
            os.setuid(65534)
            try:
                result = ["ok", repr(fn())]
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                result = [type(exc).__name__, str(exc)]
            os.write(write_fd, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    name, message = json.loads(data)
    return name, message


# ---------------------------------------------------------------------------------------------- docker endpoints


def test_docker_host_unix_socket(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "DOCKER_HOST": "unix:///run/user/1000/docker.sock"}
    ep = docker_endpoint(env)
    assert ep == Endpoint("docker", "unix:///run/user/1000/docker.sock", socket="/run/user/1000/docker.sock",
                          tls=None, origin="DOCKER_HOST")
    assert ep.describe() == "unix:///run/user/1000/docker.sock"
    assert ep.base_url == "http://docker"


@pytest.mark.parametrize("host, tls_verify, url", [
    ("tcp://build.example:2375", "", "tcp://build.example:2375"),
    ("tcp://build.example", "", "tcp://build.example:2375"),        # docker's default plain port
    ("tcp://build.example", "1", "tcp://build.example:2376"),       # ... and TLS port
    ("build.example:4243", "", "tcp://build.example:4243"),         # no scheme: tcp, as docker reads it
    ("tcp://[fd00::1]:2375", "", "tcp://[fd00::1]:2375"),
])
def test_docker_host_tcp(tmp_path: Path, host: str, tls_verify: str, url: str) -> None:
    env = {**base_env(tmp_path), "DOCKER_HOST": host, "DOCKER_TLS_VERIFY": tls_verify}
    ep = docker_endpoint(env)
    assert (ep.url, ep.socket) == (url, None)
    assert (ep.tls is not None) == bool(tls_verify)
    assert ep.base_url == ("https://" if tls_verify else "http://") + url.removeprefix("tcp://")


def test_docker_tls_files_from_cert_path(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (certs / name).write_text(name)
    env = {**base_env(tmp_path), "DOCKER_HOST": "tcp://10.0.0.5:2376", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(certs)}
    assert docker_endpoint(env).tls == TLSConfig(verify=True, ca=str(certs / "ca.pem"),
                                                 cert=str(certs / "cert.pem"), key=str(certs / "key.pem"))
    # DOCKER_CERT_PATH alone: TLS without verification (the SDK's FromEnv, which dive uses)
    del env["DOCKER_TLS_VERIFY"]
    assert docker_endpoint(env).tls == TLSConfig(verify=False, ca=str(certs / "ca.pem"),
                                                 cert=str(certs / "cert.pem"), key=str(certs / "key.pem"))
    # DOCKER_TLS_VERIFY alone: the files of the docker config dir, those that exist (here: none)
    env = {**base_env(tmp_path), "DOCKER_HOST": "tcp://10.0.0.5", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CONFIG": str(tmp_path / "cfg")}
    assert docker_endpoint(env).tls == TLSConfig(verify=True)


def test_unreadable_tls_files_are_an_endpoint_error(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_text("not a certificate")
    env = {**base_env(tmp_path), "DOCKER_HOST": "tcp://127.0.0.1:9", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(certs)}
    with pytest.raises(EngineEndpointError, match="TLS files") as info:
        EngineClient(docker_endpoint(env))
    assert "ca.pem" in info.value.hint


@pytest.mark.parametrize("kind, host, forward", [
    ("docker", "ssh://me@build.example", "ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock me@build.example"),
    ("docker", "ssh://build.example:2222", "ssh -nNT -p 2222 -L /tmp/docker.sock:/var/run/docker.sock build.example"),
    ("podman", "ssh://core@vm:22/run/user/1000/podman/podman.sock",
     "ssh -nNT -p 22 -L /tmp/podman.sock:/run/user/1000/podman/podman.sock core@vm"),
])
def test_ssh_hosts_get_a_forwarding_hint(tmp_path: Path, kind: str, host: str, forward: str) -> None:
    var = "DOCKER_HOST" if kind == "docker" else "CONTAINER_HOST"
    with pytest.raises(EngineEndpointError) as info:
        find_endpoint(kind, {**base_env(tmp_path), var: host})  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, SourceError) and err.engine == kind and err.endpoint == host
    assert "ssh://" in err.message and forward in err.hint
    assert f"{var}=unix:///tmp/{kind}.sock" in err.hint


def test_unknown_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineEndpointError, match="unsupported scheme 'npipe'"):
        docker_endpoint({**base_env(tmp_path), "DOCKER_HOST": "npipe:////./pipe/docker_engine"})


def test_current_context_from_docker_config(tmp_path: Path) -> None:
    cfg = tmp_path / "dockercfg"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"auths": {}, "currentContext": "remote"}))
    tls = write_context(cfg, "remote", "tcp://192.0.2.7:2376", tls_files=("ca.pem", "cert.pem", "key.pem"))
    write_context(cfg, "other", "unix:///srv/other.sock")
    env = {**base_env(tmp_path), "DOCKER_CONFIG": str(cfg)}
    ep = docker_endpoint(env)
    assert (ep.url, ep.origin) == ("tcp://192.0.2.7:2376", 'docker context "remote"')
    assert ep.tls == TLSConfig(verify=True, ca=str(tls / "ca.pem"), cert=str(tls / "cert.pem"),
                               key=str(tls / "key.pem"))
    # DOCKER_CONTEXT beats currentContext; DOCKER_HOST beats both
    assert docker_endpoint({**env, "DOCKER_CONTEXT": "other"}).socket == "/srv/other.sock"
    assert docker_endpoint({**env, "DOCKER_CONTEXT": "other", "DOCKER_HOST": "unix:///x.sock"}).socket == "/x.sock"


def test_context_in_home_docker_dir_and_skip_verify(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    cfg = Path(env["HOME"]) / ".docker"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"currentContext": "lab"}))
    write_context(cfg, "lab", "tcp://lab.example:2376", skip_verify=True)
    ep = docker_endpoint(env)
    assert ep.url == "tcp://lab.example:2376" and ep.tls == TLSConfig(verify=False)
    # without TLS material and without SkipTLSVerify: plain HTTP, as the CLI does
    write_context(cfg, "plain", "tcp://lab.example:2375")
    assert docker_endpoint({**env, "DOCKER_CONTEXT": "plain"}).tls is None


def test_missing_context_is_an_endpoint_error(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "DOCKER_CONTEXT": "gone"}
    with pytest.raises(EngineEndpointError, match='docker context "gone" .*does not exist') as info:
        docker_endpoint(env)
    assert "docker context ls" in info.value.hint


def test_default_context_means_the_default_sockets(tmp_path: Path, sockdir: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"currentContext": "default"}))
    env = {**base_env(tmp_path), "DOCKER_CONFIG": str(cfg), "XDG_RUNTIME_DIR": str(sockdir)}
    with bind_socket(sockdir / "docker.sock"):
        assert docker_endpoint(env).socket == str(sockdir / "docker.sock")
        assert docker_endpoint({**env, "DOCKER_CONTEXT": "default"}).socket == str(sockdir / "docker.sock")


def test_default_docker_sockets_in_order(tmp_path: Path, sockdir: Path) -> None:
    home = sockdir / "h"
    xdg = sockdir / "x"
    xdg.mkdir()
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(xdg)}
    desktop = home / ".docker" / "run" / "docker.sock"
    with bind_socket(desktop):
        ep = docker_endpoint(env)  # no rootless socket: Docker Desktop's
        assert (ep.socket, ep.url, ep.origin) == (str(desktop), f"unix://{desktop}", "default socket")
        with bind_socket(xdg / "docker.sock"):  # the rootless socket comes first
            assert docker_endpoint(env).socket == str(xdg / "docker.sock")
    os.unlink(desktop)
    os.unlink(xdg / "docker.sock")
    if not os.path.exists("/var/run/docker.sock"):
        assert docker_endpoint(env).socket == "/var/run/docker.sock"  # none there: docker's own default
    assert docker_endpoint({"HOME": str(home)}).socket == "/var/run/docker.sock"


# ---------------------------------------------------------------------------------------------- podman endpoints


def test_podman_endpoint_rules(tmp_path: Path, sockdir: Path) -> None:
    env = base_env(tmp_path)
    assert podman_endpoint({**env, "CONTAINER_HOST": "unix:///run/user/7/podman/podman.sock"}).socket == \
        "/run/user/7/podman/podman.sock"
    tcp = podman_endpoint({**env, "CONTAINER_HOST": "tcp://127.0.0.1:8888"})
    assert (tcp.url, tcp.socket, tcp.tls, tcp.origin) == ("tcp://127.0.0.1:8888", None, None, "CONTAINER_HOST")
    rootless = sockdir / "podman" / "podman.sock"
    with bind_socket(rootless):
        ep = podman_endpoint({**env, "XDG_RUNTIME_DIR": str(sockdir)})
        assert (ep.engine, ep.socket, ep.url) == ("podman", str(rootless), f"unix://{rootless}")
    os.unlink(rootless)
    if not os.path.exists("/run/podman/podman.sock"):
        # nothing there: as root, the socket root's podman would use
        assert podman_endpoint({**env, "XDG_RUNTIME_DIR": str(sockdir)}).socket == "/run/podman/podman.sock"
    assert podman_endpoint(env).socket == "/run/podman/podman.sock"


def test_import_ocilens_engine_does_not_load_httpx() -> None:
    code = "import sys, ocilens.engine as e; e.find_endpoint('docker'); print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------------- real engines


@pytest.mark.parametrize("kind", KINDS)
def test_ping_negotiates_the_api_version(kind: str, request: pytest.FixtureRequest) -> None:
    engine = engine_of(kind, request)
    with EngineClient(engine.endpoint) as client:
        assert client.ping() == "1.41"  # Docker 20.10, and Podman 4.3's compat API
        assert client.server.startswith("Docker/" if kind == "docker" else "Libpod/")
    if kind == "docker":
        assert engine.cli("version", "--format", "{{.Server.APIVersion}}").strip() == "1.41"


def test_endpoint_from_env_and_a_real_docker_context(docker_image: EngineImage, tmp_path: Path) -> None:
    """DOCKER_HOST, and a context made by the real docker CLI, both lead to the suite's dockerd."""
    docker_engine = docker_image.engine
    env = {**base_env(tmp_path), "DOCKER_HOST": docker_engine.host}
    with EngineClient.for_engine("docker", env) as client:
        assert client.ping() == "1.41" and client.endpoint.socket == str(docker_engine.socket)
    cfg = tmp_path / "cfg"
    cli_env = {**docker_engine.cli_env, "DOCKER_CONFIG": str(cfg)}
    for args in (["context", "create", "suite", "--docker", f"host={docker_engine.host}"], ["context", "use", "suite"]):
        subprocess.run(["/usr/bin/docker", *args], env=cli_env, check=True, capture_output=True)
    ep = docker_endpoint({**base_env(tmp_path), "DOCKER_CONFIG": str(cfg)})
    assert (ep.socket, ep.origin) == (str(docker_engine.socket), 'docker context "suite"')
    with EngineClient(ep) as client:
        assert client.inspect(APP_TAG)["Id"] == docker_image.id


def test_docker_inspect_equals_the_cli(docker_image: EngineImage) -> None:
    truth = docker_image.inspect_cli()
    with EngineClient(docker_image.engine.endpoint) as client:
        info = client.inspect(APP_TAG)
        assert info == truth  # the same API version as the CLI's request: the same document
        assert info["Id"] == docker_image.id and info["RepoTags"] == [APP_TAG]
        assert len(info["RootFS"]["Layers"]) == 4  # the base, then rm, chmod, ln (config steps add none)
        assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
        hexid = docker_image.id.removeprefix("sha256:")
        for name in (docker_image.id, hexid, hexid[:12]):  # an image ID, bare or short, works too
            assert client.inspect(name) == truth


def test_podman_inspect_matches_the_cli(podman_image: EngineImage) -> None:
    truth = podman_image.inspect_cli()  # podman's own (libpod) document: the same facts, another shape
    with EngineClient(podman_image.engine.endpoint) as client:
        info = client.inspect(APP_TAG)
        assert info["Id"] == podman_image.id == "sha256:" + truth["Id"]  # libpod's Id has no "sha256:"
        for key in ("RepoTags", "RepoDigests", "RootFS", "Os", "Architecture", "Size"):
            assert info[key] == truth[key], key
        assert info.get("Variant") in (None, "")
        assert len(info["RootFS"]["Layers"]) == 4
        # by ID, short ID, and by the digest podman recorded for the tag
        hexid = info["Id"].removeprefix("sha256:")
        for name in (info["Id"], hexid, hexid[:12], info["RepoDigests"][0]):
            assert client.inspect(name)["Id"] == info["Id"], name


@pytest.mark.parametrize("kind", KINDS)
def test_export_equals_save_byte_for_byte(kind: str, request: pytest.FixtureRequest) -> None:
    image = image_of(kind, request)
    saved = image.engine.cli_bytes("save", APP_TAG)
    with EngineClient(image.engine.endpoint) as client:
        with client.export(APP_TAG) as stream:
            assert stream.readable() and not stream.seekable()
            head = stream.read(1000)   # exact sizes until the end
            one = stream.read1(10**9)  # what has arrived, at most one chunk
            into = bytearray(4096)
            n = stream.readinto(into)
            rest = stream.read()
            assert stream.read(10) == b"" and stream.read1(10) == b""
            assert stream.received == len(saved)
        with pytest.raises(ValueError):
            stream.read(1)
        exported = head + one + bytes(into[:n]) + rest
        assert len(head) == 1000 and 0 < len(one) and n == 4096
        assert exported == saved  # deterministic per engine: the CLI's save is the same stream
        # and it is the image that was inspected: its config and diff_ids, layers bottom first
        info = client.inspect(APP_TAG)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == [APP_TAG]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        assert "sha256:" + hashlib.sha256(config).hexdigest() == info["Id"]
        diff_ids = ["sha256:" + hashlib.sha256(tar.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]
                    for m in manifest[0]["Layers"]]
        assert diff_ids == info["RootFS"]["Layers"] == json.loads(config)["rootfs"]["diff_ids"]


@pytest.mark.parametrize("kind", KINDS)
def test_export_by_image_id(kind: str, request: pytest.FixtureRequest) -> None:
    image = image_of(kind, request)
    with EngineClient(image.engine.endpoint) as client, client.export(image.id) as stream:
        data = stream.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["Config"].removesuffix(".json") == image.id.removeprefix("sha256:")


@pytest.mark.parametrize("kind", KINDS)
def test_images_and_has_image(kind: str, request: pytest.FixtureRequest) -> None:
    image = image_of(kind, request)
    engine = image.engine
    with EngineClient(engine.endpoint) as client:
        listed = client.images(APP_TAG)
        assert [i["Id"] for i in listed] == [image.id]
        assert {i["Id"] for i in client.images()} >= {image.id}
        assert client.has_image(APP_TAG) and client.has_image("localhost/ocilens-test/app")
        assert not client.has_image("localhost/ocilens-test/nosuch")
        # a registry-style name: Docker lists it as "name", Podman as "docker.io/library/name"
        engine.cli("tag", BASE_TAG, "docker.io/library/ocilens-hint:t")
        assert client.has_image("docker.io/library/ocilens-hint:t") and client.has_image("ocilens-hint:t")
    var = "DOCKER_HOST" if kind == "docker" else "CONTAINER_HOST"
    assert has_image(kind, APP_TAG, env={"HOME": "/nonexistent", var: engine.host})  # type: ignore[arg-type]
    env = {"HOME": "/nonexistent", var: engine.host}
    assert not has_image(kind, "localhost/nosuch:1", env=env)  # type: ignore[arg-type]


def test_has_image_is_quick_and_false_without_an_engine(sockdir: Path) -> None:
    started = time.monotonic()
    assert not has_image("docker", "alpine", env={"DOCKER_HOST": f"unix://{sockdir}/none.sock"})
    assert not has_image("podman", "alpine", env={"CONTAINER_HOST": "ssh://host/run/podman/podman.sock"})
    with bind_socket(sockdir / "stale.sock", listen=False):
        assert not has_image("docker", "alpine", env={"DOCKER_HOST": f"unix://{sockdir}/stale.sock"})
    assert not has_image("docker", "alpine", env={"DOCKER_HOST": "tcp://127.0.0.1:9"})  # discard: refused
    assert time.monotonic() - started < 2.0


# ---------------------------------------------------------------------------------------------- typed errors


@pytest.mark.parametrize("kind", KINDS)
def test_not_running_names_the_socket(kind: str, sockdir: Path) -> None:
    missing = sockdir / f"{kind}.sock"
    ep = Endpoint(kind, f"unix://{missing}", socket=str(missing), origin="default socket")  # type: ignore[arg-type]
    with EngineClient(ep) as client, pytest.raises(EngineNotRunning) as info:
        client.inspect("app:1")
    err = info.value
    assert f"no socket at {missing}" in err.message and err.endpoint == f"unix://{missing}"
    assert err.engine == kind and err.reference == "app:1"
    if kind == "docker":
        assert "is the Docker daemon running?" in err.hint and "systemctl start docker" in err.hint
        assert "DOCKER_HOST" in err.hint
    else:
        assert "podman system service" in err.hint and "CONTAINER_HOST" in err.hint
    # a socket a dead daemon left behind: connection refused
    with bind_socket(missing, listen=False), EngineClient(ep) as client, pytest.raises(EngineNotRunning) as info:
        client.export("app:1")
    assert "connection refused" in info.value.message and str(missing) in info.value.message
    # not a socket at all
    missing.unlink()
    missing.write_text("")
    with EngineClient(ep) as client, pytest.raises(EngineNotRunning, match="is not a socket"):
        client.ping()


def test_not_running_on_tcp() -> None:
    ep = Endpoint("docker", "tcp://127.0.0.1:9", origin="DOCKER_HOST")
    with EngineClient(ep) as client, pytest.raises(EngineNotRunning) as info:
        client.inspect("x")
    assert "tcp://127.0.0.1:9" in info.value.message and "Connection refused" in info.value.message
    assert "address came from DOCKER_HOST" in info.value.hint


def test_a_socket_that_is_not_an_engine(sockdir: Path) -> None:
    """Something answers HTTP on the socket, but not the engine API: a typed error that says so."""
    server = bind_socket(sockdir / "web.sock")

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
                         b"Connection: close\r\n\r\nnot here\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    ep = Endpoint("docker", f"unix://{sockdir}/web.sock", socket=f"{sockdir}/web.sock")
    with server, EngineClient(ep) as client, pytest.raises(EngineAPIError) as info:
        client.inspect("app:1")
    thread.join(5)
    err = info.value
    assert (err.status, err.api_message, err.reference) == (404, "not here", "app:1")
    assert "really a Docker or Podman API" in err.hint


@pytest.mark.parametrize("name", ["", " ", "..", "../containers/json", "app/../../containers"])
def test_names_that_would_leave_the_images_api_are_refused(name: str) -> None:
    ep = Endpoint("docker", "unix:///nonexistent/x.sock", socket="/nonexistent/x.sock")
    with EngineClient(ep) as client:
        for call in (client.inspect, client.export):
            with pytest.raises(InvalidReference, match="is not an image name"):
                call(name)


def _warm_up_client() -> None:
    """Load every module the client's connect and error paths need before a fork drops root's access to them."""
    ep = Endpoint("docker", "unix:///nonexistent/ocilens.sock", socket="/nonexistent/ocilens.sock")
    with EngineClient(ep) as client, pytest.raises(EngineNotRunning):
        client.inspect("x")


def test_permission_denied_on_the_docker_socket(docker_image: EngineImage) -> None:
    engine = docker_image.engine
    st = os.stat(engine.socket)
    docker_gid = grp.getgrnam("docker").gr_gid
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o660", 0, docker_gid)  # as dockerd made it
    _warm_up_client()

    def inspect() -> object:
        with EngineClient(engine.endpoint) as client:
            return client.inspect(APP_TAG)["Id"]

    name, message = as_nobody(inspect)  # not in the docker group
    assert name == EnginePermissionDenied.__name__, message
    assert f"permission denied on the docker socket {engine.socket}" in message
    assert "owned by root:docker, mode 0660" in message and "not in its group" in message
    assert "sudo usermod -aG docker $USER" in message and "log in again" in message
    assert "DOCKER_HOST=unix://$XDG_RUNTIME_DIR/docker.sock" in message
    # what the hint says works: the same user in the docker group gets through
    assert as_nobody(inspect, groups=(docker_gid,)) == ("ok", repr(docker_image.id))
    # a socket with mode 000: nobody gets through, group or not
    os.chmod(engine.socket, 0)
    try:
        name, message = as_nobody(inspect, groups=(docker_gid,))
    finally:
        os.chmod(engine.socket, 0o660)
    assert name == EnginePermissionDenied.__name__ and "mode 0000" in message


def test_permission_denied_on_the_podman_socket(podman_image: EngineImage) -> None:
    engine = podman_image.engine
    assert oct(os.stat(engine.socket).st_mode & 0o777) == "0o600"  # root's podman: root only
    _warm_up_client()

    def inspect() -> object:
        with EngineClient(engine.endpoint) as client:
            return client.inspect(APP_TAG)["Id"]

    name, message = as_nobody(inspect)
    assert name == EnginePermissionDenied.__name__, message
    assert f"permission denied on the podman socket {engine.socket}" in message
    assert "run as root" in message and "systemctl --user start podman.socket" in message


@pytest.mark.parametrize("kind", KINDS)
def test_image_not_in_the_engine(kind: str, request: pytest.FixtureRequest) -> None:
    engine = engine_of(kind, request)
    with EngineClient(engine.endpoint) as client:
        for call in (client.inspect, client.export):
            with pytest.raises(EngineImageNotFound) as info:
                call("localhost/ocilens-test/nosuch:9")
            err = info.value
            assert isinstance(err, ImageNotFound) and isinstance(err, EngineError)
            assert "has no image 'localhost/ocilens-test/nosuch:9'" in err.message
            assert engine.host in err.message and err.endpoint == engine.host
            assert f"`{kind} pull localhost/ocilens-test/nosuch:9`" in err.hint and f"`{kind} images`" in err.hint


@pytest.mark.parametrize("kind", KINDS)
def test_api_error_carries_the_engine_message(kind: str, request: pytest.FixtureRequest) -> None:
    engine = engine_of(kind, request)
    with EngineClient(engine.endpoint) as client, pytest.raises(EngineAPIError) as info:
        client.inspect("Not/A Valid:Name")  # the space goes out percent-encoded; the engine refuses the name
    err = info.value
    assert err.status == (400 if kind == "docker" else 500)
    assert err.api_message and "invalid reference format" in err.api_message
    assert err.api_message in err.message and engine.host in err.message
    assert "names are lowercase" in err.hint


@pytest.mark.parametrize("route", ["socket", "httpx"])
@pytest.mark.parametrize("kind", KINDS)
def test_engine_killed_mid_export(kind: str, route: str, engine_factory: Callable[[str], EngineProcess],
                                  engine_base_archive: Path) -> None:
    """A throwaway engine dies (SIGKILL) after the export's first bytes: the stream raises, it never ends.
    Both ways an export is read: off the unix socket in HTTP/1.0, where the connection's close looks like an
    end and the missing tar end marker gives it away, and through httpx (chunked HTTP/1.1, as over TCP), where
    the missing last chunk does."""
    engine = engine_factory(kind)
    engine.cli("load", "-i", engine_base_archive)
    size = engine_base_archive.stat().st_size
    transport = httpx.HTTPTransport(uds=engine.endpoint.socket) if route == "httpx" else None
    with EngineClient(engine.endpoint, transport=transport) as client:
        stream = client.export(BASE_TAG)
        assert len(stream.read(16384)) == 16384
        engine.kill()
        with pytest.raises(EngineExportInterrupted) as info:
            while stream.read(65536):
                pass
        stream.close()
    err = info.value
    assert 16384 <= err.received < size
    assert f"broke off after {err.received:,} bytes" in err.message and engine.host in err.message
    if route == "httpx":
        assert "connection broke before the archive's end" in err.message
        assert isinstance(err.__cause__, httpx.RemoteProtocolError)
    else:
        assert "the stream ended before the archive's end marker" in err.message
    with EngineClient(engine.endpoint) as client, pytest.raises(EngineNotRunning):
        client.ping()  # and the engine is really gone


def test_stopping_an_engine_removes_its_dir_and_nothing_else(engine_factory: Callable[[str], EngineProcess]) -> None:
    engine = engine_factory("podman")
    parent = engine.dir.parent
    before = os.stat(parent).st_mode
    pids = engine.pids()
    engine.stop()
    engine.stop()  # again (the factory and the exit handler may both try): nothing happens
    assert not engine.dir.exists() and os.stat(parent).st_mode == before
    assert not any(os.path.exists(f"/proc/{pid}") and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"podman")
                   for pid in pids)


def test_engines_listen_on_no_tcp_port(docker_engine: EngineProcess, podman_engine: EngineProcess) -> None:
    """No socket of dockerd, its containerd or the podman service is a listening TCP socket."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                listening.add(fields[9])
    pids = docker_engine.pids() + podman_engine.pids()
    assert len(docker_engine.pids()) >= 2  # dockerd and the containerd it started
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                assert target[8:-1] not in listening, f"pid {pid} listens on TCP"


# ---------------------------------------------------------------------------------------------- stream endings


class _Body(httpx.SyncByteStream):
    """A response body: ``chunks``, then either a clean end or the error ``then`` (a connection lost)."""

    def __init__(self, chunks: list[bytes], then: Exception | None = None) -> None:
        self.chunks, self.then = chunks, then

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.then is not None:
            raise self.then


def _mock_client(body: _Body) -> EngineClient:
    """A client whose engine is a MockTransport: /_ping answers 1.41, the export sends ``body``."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_ping":
            return httpx.Response(200, headers={"API-Version": "1.41"}, content=b"OK")
        assert request.url.path == "/v1.41/images/app:1/get"
        return httpx.Response(200, stream=body)

    ep = Endpoint("docker", "unix:///tmp/ol-mock.sock", socket="/tmp/ol-mock.sock")
    return EngineClient(ep, transport=httpx.MockTransport(handler))


def test_stream_that_ends_early_is_interrupted() -> None:
    """A clean end of the HTTP body that is not the end of a tar archive is not taken for a whole export."""
    with _mock_client(_Body([b"x" * 5000])) as client, client.export("app:1") as stream:
        with pytest.raises(EngineExportInterrupted, match="ended before the archive's end marker") as info:
            stream.read()
    assert info.value.received == 5000


def test_stream_with_the_engines_error_inside() -> None:
    """Docker writes its error into the stream when an export fails after the first byte."""
    error = b'{"errorDetail":{"message":"write /var/lib/docker/tmp/x: no space left on device"},' \
            b'"error":"write /var/lib/docker/tmp/x: no space left on device"}'
    with _mock_client(_Body([bytes(3072), error])) as client, client.export("app:1") as stream:
        with pytest.raises(EngineExportInterrupted,
                           match="the engine reported: write /var/lib/docker/tmp/x: no space left on device"):
            stream.read()


def test_stream_complete_and_broken_in_unit() -> None:
    whole = b"member" * 100 + bytes(1024)
    with _mock_client(_Body([whole[:10], whole[10:]])) as client, client.export("app:1") as stream:
        assert stream.read() == whole
    with _mock_client(_Body([whole[:100]], httpx.ReadError("connection reset"))) as client, \
            client.export("app:1") as stream:
        assert stream.read(100) == whole[:100]
        with pytest.raises(EngineExportInterrupted, match="connection reset"):
            stream.read(1)


# ------------------------------------------------------------------ the export read straight off the socket


def _fake_engine(path: Path, export_answer: bytes | None, stop: threading.Event) -> threading.Thread:
    """A unix socket that answers ``/_ping`` as Docker does and every other request with ``export_answer``
    (None: reads the request and says nothing, as a hung engine), until ``stop``. Faults no real engine
    produces on demand."""
    server = bind_socket(path)
    server.listen(4)
    server.settimeout(0.1)

    def serve() -> None:
        conns = []
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            conns.append(conn)
            head = b""
            while b"\r\n\r\n" not in head:
                more = conn.recv(4096)
                if not more:
                    break
                head += more
            if b" /_ping " in head:
                conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK")
            elif export_answer is not None:
                conn.sendall(export_answer)
                conn.close()
        for c in conns:
            c.close()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("answer", [None, b"nonsense\r\n\r\n", b""])
def test_an_export_that_gets_no_proper_answer_is_a_typed_error(answer: bytes | None) -> None:
    """Silence past the export timeout, a status line that is no HTTP, or a connection closed at once: each is
    an EngineAPIError naming the engine and the request, raised within the timeout."""
    where = short_dir() / "fake.sock"
    stop = threading.Event()
    thread = _fake_engine(where, answer, stop)
    ep = Endpoint("docker", f"unix://{where}", socket=str(where))
    try:
        started = time.monotonic()
        with EngineClient(ep, export_timeout=0.5) as client, pytest.raises(EngineAPIError) as info:
            client.export("app:1")
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        thread.join(timeout=5)
        shutil.rmtree(where.parent, ignore_errors=True)
    err = info.value
    assert "did not answer GET /images/app:1/get" in err.message and str(where) in err.message
    assert err.reference == "app:1" and err.hint
