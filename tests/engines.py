"""Real Docker and Podman engines for the tests, started by the suite and stopped by PID; images put into them.

Registered as a pytest plugin (``pytest_plugins`` in ``conftest.py``), so its fixtures serve every module:

- ``docker_engine`` / ``podman_engine`` (session): a running engine (:class:`EngineProcess`) of its own,
  isolated from any engine of the machine: Debian's ``dockerd`` 20.10 (vfs storage, no iptables, no bridge,
  its own containerd in its own namespace) and ``podman system service`` 4.3 (vfs storage, cgroupfs),
  each on a unix socket in a short directory of its own. Nothing listens on TCP.
- ``engine_base_archive`` (session): a docker-archive of a small base image built with umoci from real
  Debian files of this machine (dash, coreutils, their libraries), enough for ``RUN`` steps.
- ``docker_image`` / ``podman_image`` (session): :class:`EngineImage`, the base loaded into the engine and
  a ``build --network none`` on top whose RUN steps delete a file, chmod one and make a hardlink.
- ``engine_factory`` (function): starts extra engines (``engine_factory("docker")``) for tests that kill
  them; each is stopped at the end of the test.

No test skips for want of an engine: a daemon that does not come up fails the fixture with its log.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

import pytest

from imagebuild import Layer, Op, to_archive, umoci_image

__all__ = ["EngineProcess", "EngineImage", "start_dockerd", "start_podman", "start_engine", "load_archive", "build",
           "base_archive", "short_dir", "BASE_TAG", "APP_TAG", "APP_DOCKERFILE", "DOCKER_CLI", "DOCKERD", "PODMAN"]

Kind = Literal["docker", "podman"]
# /usr/local/bin/docker may be a newer client (it would use buildx); Debian's 20.10 client is the one to drive.
DOCKER_CLI = "/usr/bin/docker"
DOCKERD = shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/dockerd"
PODMAN = shutil.which("podman", path="/usr/bin:/bin") or "/usr/bin/podman"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
BASE_TAG = "localhost/ocilens-test/base:1"
APP_TAG = "localhost/ocilens-test/app:1"
# Environment a test's engine must not inherit: it would point the CLIs somewhere else.
_FOREIGN_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS",
                "DOCKER_API_VERSION", "CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINERS_CONF",
                "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF", "BUILDAH_ISOLATION")

#: The build on top of the base: one RUN per kind of change (a whiteout, a metadata-only re-ship, a hardlink),
#: with config-only steps between and after them (empty_layer history rows; each step costs docker ~0.8 s).
APP_DOCKERFILE = f"""\
FROM {BASE_TAG}
RUN rm /etc/motd
ENV OCILENS_TEST=1
RUN chmod 0700 /usr/bin/ls
RUN ln /usr/bin/cat /usr/bin/cat-hardlink
CMD ["/bin/sh"]
"""


def _short_parent() -> str:
    """/tmp, unless other users may not pass through it (some sandboxes make it 0700): then /var/tmp, so
    that a test acting as another user meets the socket's own permissions, not its parent's."""
    for parent in ("/tmp", "/var/tmp"):
        try:
            if os.stat(parent).st_mode & stat.S_IXOTH:
                return parent
        except OSError:
            continue
    return "/tmp"


def short_dir() -> Path:
    """A new directory right under /tmp (or /var/tmp): unix socket paths may not exceed 107 bytes."""
    return Path(tempfile.mkdtemp(prefix="ol", dir=_short_parent()))


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points an engine CLI elsewhere, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(extra)
    return env


def _start_time(pid: int) -> int | None:
    """The start time (clock ticks after boot) of a process, to tell it from a later one with its PID."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


def _children(pid: int) -> list[tuple[int, int]]:
    """The direct children of ``pid`` as (pid, start time) pairs (dockerd's containerd, conmon...)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append((int(entry), int(fields[19])))
    return found


def _alive(pid: int, started: int | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (not a zombie, not a PID reused)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and (started is None or _start_time(pid) == started)


def _terminate(pid: int, started: int | None, wait: Callable[[float], bool]) -> None:
    """SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL: only the process that is still the one we mean."""
    for sig, patience in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
        if not _alive(pid, started):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait(patience):
            return


def _wait_gone(pid: int, started: int | None) -> Callable[[float], bool]:
    """A waiter for a process that is not our child: poll /proc until it is gone."""
    def wait(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid, started):
                return True
            time.sleep(0.05)
        return not _alive(pid, started)
    return wait


def _unmount_under(top: Path) -> None:
    """Lazily unmount whatever is still mounted under ``top`` (dockerd bind-mounts its data root)."""
    prefix = str(top).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix) or point == str(top):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _rmtree(top: Path) -> None:
    """Remove a tree that may hold read-only files and directories (vfs layers keep the images' modes):
    on a failure, make the path and its parent writable and retry, never touching anything outside ``top``."""
    if not top.exists():
        return
    inside = str(top).rstrip("/") + "/"

    def retry(func: Callable[..., object], path: str | os.PathLike[str], _exc: object) -> None:
        path = os.fspath(path)
        if not path.startswith(inside):
            return  # top itself: never chmod what holds it (that is /tmp)
        parent = os.path.dirname(path)
        try:
            if parent.startswith(inside) or parent == str(top):
                os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
            func(path)
        except OSError:
            pass
    shutil.rmtree(top, onerror=retry)
    if top.exists():
        shutil.rmtree(top, ignore_errors=True)


def _ping(sock: Path, timeout: float = 1.0) -> bool:
    """True when an engine answers ``GET /_ping`` with 200 on the unix socket ``sock``."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]


@dataclass(eq=False)
class EngineProcess:
    """One engine the tests started: its socket, process, log, and a CLI pointed at it."""

    kind: Kind
    dir: Path
    socket: Path
    process: subprocess.Popen[bytes]
    log: Path
    cli_env: dict[str, str]
    started_in: float = 0.0  # seconds from launch to the first answered /_ping
    _known_children: dict[int, int | None] = field(default_factory=dict)
    _stopped: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def host(self) -> str:
        """``unix:///tmp/olXXXX/docker.sock``: DOCKER_HOST / CONTAINER_HOST for this engine."""
        return f"unix://{self.socket}"

    @property
    def endpoint(self):  # -> ocilens.engine.Endpoint
        """This engine as an ocilens endpoint."""
        from ocilens.engine import Endpoint

        return Endpoint(self.kind, self.host, socket=str(self.socket), origin="test engine")

    def cli_args(self, *args: str) -> list[str]:
        """The command line of ``docker -H SOCK ARGS`` / ``podman --url SOCK ARGS``."""
        if self.kind == "docker":
            return [DOCKER_CLI, "-H", self.host, *args]
        return [PODMAN, "--url", self.host, *args]

    def cli(self, *args: str | os.PathLike[str], input: bytes | None = None, timeout: float = 300.0) -> str:
        """Run the engine's CLI against this engine; its stdout, or RuntimeError with its stderr."""
        cmd = self.cli_args(*map(os.fspath, args))
        proc = subprocess.run(cmd, input=input, capture_output=True, env=self.cli_env, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')}"
                               f"\n--- engine log (tail) ---\n{self.log_tail()}")
        return proc.stdout.decode(errors="surrogateescape")

    def cli_bytes(self, *args: str | os.PathLike[str], timeout: float = 300.0) -> bytes:
        """Run the CLI and return its stdout as bytes (``save`` writes the archive there)."""
        cmd = self.cli_args(*map(os.fspath, args))
        proc = subprocess.run(cmd, capture_output=True, env=self.cli_env, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the daemon's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def pids(self) -> list[int]:
        """The daemon and the children it has now (containerd for dockerd), still running."""
        self._remember_children()
        return [p for p in [self.pid, *self._known_children] if _alive(p, self._known_children.get(p))]

    def _remember_children(self) -> None:
        if self.process.poll() is None:
            for pid, started in _children(self.pid):
                self._known_children.setdefault(pid, started)

    def kill(self) -> None:
        """SIGKILL the daemon alone, as a crash would (its children are stopped later by ``stop``)."""
        self._remember_children()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the daemon by PID (SIGTERM, then SIGKILL), then any child it left, unmount, remove its dir.
        Stopping again does nothing."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self._stopped:
            return
        self._stopped = True
        self._remember_children()
        if self.process.poll() is None:
            def wait(timeout: float) -> bool:
                try:
                    self.process.wait(timeout)
                    return True
                except subprocess.TimeoutExpired:
                    return False
            _terminate(self.pid, None, wait)
        for pid, started in self._known_children.items():
            _terminate(pid, started, _wait_gone(pid, started))
        _unmount_under(self.dir)
        _rmtree(self.dir)


_RUNNING: list[EngineProcess] = []


@atexit.register
def _stop_leftovers() -> None:
    """A safety net: engines whose fixture never finalized (an interrupted run) are stopped at exit."""
    for engine in list(_RUNNING):
        engine.stop()


def _wait_for_api(engine: EngineProcess, launched: float) -> EngineProcess:
    """Poll ``/_ping`` until it answers; on timeout or exit, stop the daemon and fail with its log."""
    deadline = launched + START_TIMEOUT
    while time.monotonic() < deadline:
        if engine.process.poll() is not None:
            break
        if engine.socket.exists() and _ping(engine.socket):
            engine.started_in = time.monotonic() - launched
            _RUNNING.append(engine)
            return engine
        time.sleep(0.02)
    code = engine.process.poll()
    log = engine.log_tail(80)
    engine.stop()
    state = f"exited with {code}" if code is not None else f"did not answer /_ping within {START_TIMEOUT:.0f} s"
    raise RuntimeError(f"the test {engine.kind} engine ({' '.join(map(str, engine.process.args))}) {state}; "
                       f"its log:\n{log}")


def start_dockerd() -> EngineProcess:
    """Start Debian's dockerd as root, isolated: vfs, no iptables/bridge/proxy, its own dirs and containerd."""
    if os.geteuid() != 0:
        raise RuntimeError("the engine tests start dockerd and must run as root")
    top = short_dir()
    os.chmod(top, 0o711)  # others may reach the socket (which keeps dockerd's own root:docker 0660)
    sock = top / "docker.sock"
    (top / "daemon.json").write_text("{}\n")  # never the machine's /etc/docker/daemon.json
    (top / "cli").mkdir()
    ns = "ocilens-" + hashlib.sha256(str(top).encode()).hexdigest()[:12]  # containerd: [A-Za-z0-9]+ words only
    cmd = [DOCKERD, f"--config-file={top / 'daemon.json'}", "--storage-driver=vfs", "--iptables=false",
           "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
           f"--data-root={top / 'data'}", f"--exec-root={top / 'exec'}", f"--pidfile={top / 'docker.pid'}",
           # if a system containerd runs, dockerd uses it: keep this daemon's objects apart from any other's
           f"--containerd-namespace={ns}", f"--containerd-plugins-namespace={ns}-plugins",
           "-H", f"unix://{sock}"]
    log = top / "dockerd.log"
    launched = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=_clean_env(), start_new_session=True)
    # DOCKER_CONFIG: a config of its own, so the user's (contexts, credential helpers) plays no part
    cli_env = _clean_env(DOCKER_CONFIG=str(top / "cli"), DOCKER_BUILDKIT="0")
    return _wait_for_api(EngineProcess("docker", top, sock, proc, log, cli_env), launched)


def start_podman() -> EngineProcess:
    """Start ``podman system service`` with its storage (vfs), runtime dirs and events under its own dir."""
    top = short_dir()
    os.chmod(top, 0o711)
    sock = top / "podman.sock"
    for d in ("graph", "run", "tmp", "networks", "cli"):
        (top / d).mkdir()
    (top / "storage.conf").write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{top / "graph"}"\n'
        f'runroot = "{top / "run"}"\n')
    (top / "containers.conf").write_text(
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{top / "events.log"}"\n'
        f'tmp_dir = "{top / "tmp"}"\n'
        "[network]\n"
        'network_backend = "netavark"\n'
        f'network_config_dir = "{top / "networks"}"\n'
        "[containers]\n"
        'netns = "none"\n')
    env = _clean_env(CONTAINERS_STORAGE_CONF=str(top / "storage.conf"),
                     CONTAINERS_CONF=str(top / "containers.conf"),
                     XDG_CONFIG_HOME=str(top / "cli"))
    log = top / "podman.log"
    launched = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([PODMAN, "system", "service", "--time=0", f"unix://{sock}"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    return _wait_for_api(EngineProcess("podman", top, sock, proc, log, env), launched)


def start_engine(kind: Kind) -> EngineProcess:
    """Start a test engine of ``kind``."""
    return start_dockerd() if kind == "docker" else start_podman()


# ---------------------------------------------------------------------------------------------- images


def load_archive(engine: EngineProcess, path: Path) -> str:
    """``docker load -i PATH`` (or podman's) into the engine; returns the CLI's output."""
    return engine.cli("load", "-i", path)


def build(engine: EngineProcess, tag: str, context_dir: Path, dockerfile_text: str) -> str:
    """``build --network none -t TAG`` of ``dockerfile_text`` in ``context_dir``; returns the image ID.

    Docker's legacy builder (Debian's client has no buildx) and podman's buildah run each RUN offline; the
    FROM image must already be in the engine (podman: ``--pull=never`` so that it never asks a registry).
    The ID is ``sha256:<hex>`` for both engines."""
    context_dir.mkdir(parents=True, exist_ok=True)
    dockerfile = context_dir / "Dockerfile"
    dockerfile.write_text(dockerfile_text)
    extra = ["--pull=never"] if engine.kind == "podman" else []
    engine.cli("build", "--network", "none", *extra, "-t", tag, "-f", dockerfile, context_dir)
    image_id = engine.cli("image", "inspect", "--format", "{{.Id}}", tag).strip()
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"  # podman's CLI omits it


def _library_paths(binaries: list[str]) -> list[str]:
    """The shared libraries (and the dynamic loader) these binaries load, as ``ldd`` prints their paths."""
    out = subprocess.run(["ldd", *binaries], capture_output=True, text=True, check=True).stdout
    paths = set()
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[parts.index("=>") + 1].startswith("/"):
            paths.add(parts[parts.index("=>") + 1])
        elif len(parts) == 2 and parts[0].startswith("/") and parts[1].startswith("(0x"):
            paths.add(parts[0])  # the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
    return sorted(paths)


BASE_BINARIES = ("dash", "cat", "chmod", "cp", "ln", "ls", "mkdir", "mv", "rm", "touch", "true")
BASE_FILES = ("/etc/motd", "/etc/issue", "/etc/debian_version", "/usr/share/doc/dash/copyright")


def _usr_path(path: str) -> str:
    """Where a host path lives in the merged-/usr base (``/lib/x`` -> ``/usr/lib/x``; ``/bin`` likewise)."""
    for top in ("/lib64/", "/lib/", "/bin/", "/sbin/"):
        if path.startswith(top):
            return "/usr" + path
    return path


def _copy_op(host: str, image_path: str) -> Op:
    """Write the host file's bytes at ``image_path`` with its mode (owner root)."""
    real = os.path.realpath(host)
    mode = stat.S_IMODE(os.stat(real).st_mode)
    return Op.write(_usr_path(image_path), Path(real).read_bytes(), mode=mode)


def base_archive(tmp_dir: Path) -> Path:
    """A docker-archive (tag ``BASE_TAG``) of a merged-/usr base made by umoci from this machine's Debian
    files: ``dash`` as ``/bin/sh``, a few coreutils, every library they load, and some /etc files to change."""
    binaries = [shutil.which(b, path="/usr/bin:/bin") or f"/usr/bin/{b}" for b in BASE_BINARIES]
    ops: list = [Op.symlink(d, f"usr/{d[1:]}") for d in ("/bin", "/lib", "/lib64", "/sbin")]
    ops += [Op.mkdir("/usr/sbin"), Op.mkdir("/tmp", mode=0o1777), Op.mkdir("/root", mode=0o700)]
    ops += [_copy_op(b, f"/usr/bin/{os.path.basename(b)}") for b in binaries]
    ops.append(Op.symlink("/usr/bin/sh", "dash"))
    ops += [_copy_op(lib, lib) for lib in _library_paths(binaries)]
    ops += [_copy_op(f, f) for f in BASE_FILES]
    ops += [Op.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            Op.write("/etc/group", "root:x:0:\n")]
    layout = umoci_image(tmp_dir, [Layer("ADD rootfs / # dash, coreutils and their libraries from Debian", ops)],
                         tag="base")
    return to_archive(layout, "base", tmp_dir / "base.docker.tar", "docker-archive", dest_ref=BASE_TAG)


@dataclass(frozen=True)
class EngineImage:
    """An image built in a test engine: ``tag`` (as given to build), its ``id`` (``sha256:...``), and the
    time the build took."""

    engine: EngineProcess
    tag: str
    id: str
    build_seconds: float

    def inspect_cli(self) -> dict:
        """``image inspect`` by the engine's own CLI (the truth for the client's inspect)."""
        return json.loads(self.engine.cli("image", "inspect", self.tag))[0]


def _engine_fixture(kind: Kind) -> Iterator[EngineProcess]:
    engine = start_engine(kind)
    try:
        yield engine
    finally:
        engine.stop()


def _image(engine: EngineProcess, archive: Path, tmp: Path) -> EngineImage:
    load_archive(engine, archive)
    started = time.monotonic()
    image_id = build(engine, APP_TAG, tmp / f"ctx-{engine.kind}", APP_DOCKERFILE)
    return EngineImage(engine, APP_TAG, image_id, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[EngineProcess]:
    """A dockerd of the suite's own (session): ``.socket``, ``.host``, ``.cli(...)``, ``.endpoint``."""
    yield from _engine_fixture("docker")


@pytest.fixture(scope="session")
def podman_engine() -> Iterator[EngineProcess]:
    """A ``podman system service`` of the suite's own (session): same interface as ``docker_engine``."""
    yield from _engine_fixture("podman")


@pytest.fixture(scope="session")
def engine_base_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docker-archive of the base image (tag ``BASE_TAG``), built once per session."""
    return base_archive(tmp_path_factory.mktemp("engine-base"))


@pytest.fixture(scope="session")
def docker_image(docker_engine: EngineProcess, engine_base_archive: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> EngineImage:
    """``APP_TAG`` built by docker on the base: RUN rm, RUN chmod, RUN ln (hardlink), plus config steps."""
    return _image(docker_engine, engine_base_archive, tmp_path_factory.mktemp("docker-build"))


@pytest.fixture(scope="session")
def podman_image(podman_engine: EngineProcess, engine_base_archive: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> EngineImage:
    """``APP_TAG`` built by podman (buildah) from the same Dockerfile."""
    return _image(podman_engine, engine_base_archive, tmp_path_factory.mktemp("podman-build"))


@pytest.fixture
def engine_factory() -> Iterator[Callable[[Kind], EngineProcess]]:
    """Start throwaway engines (``engine_factory("podman")``) that a test may kill; all stopped afterwards."""
    started: list[EngineProcess] = []

    def start(kind: Kind) -> EngineProcess:
        engine = start_engine(kind)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()


def archive_digest(data: bytes) -> str:
    """sha256 of an archive's bytes (to compare exports without holding two copies in a message)."""
    return hashlib.sha256(data).hexdigest()
