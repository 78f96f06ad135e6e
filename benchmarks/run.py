#!/usr/bin/env python3
"""ocilens benchmark: ours beside the decompression floors and the peers, as ratios measured in one run.

    python benchmarks/run.py [--quick] [--runs N] [--only NAME[,NAME...]] [--out FILE]

Builds its inputs first (cached under ``benchmarks/.work/``, see ``inputs.py``), starts a loopback
``docker-registry`` of its own (and, for the ``engine-*`` cases, a ``dockerd`` holding the large image), then
runs every case ``--runs`` times (default 3), round-robin so that a noisy neighbour hits all cases alike, each
in a fresh process whose wall time and peak RSS (``wait4`` rusage: the process and the children it waited for)
are recorded. Prints a Markdown table of medians and
the issue's target ratios with PASS/MISS, and writes it to ``benchmarks/results.md`` (a full run) or
``benchmarks/.work/results-*.md`` (``--quick`` or ``--only``).

``--only`` takes case keys or their prefixes (``cold``, ``dive``, ``many``, ``one``, ``engine``...); ``--list``
shows them. Ratios whose cases were not run show ``-``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import inputs

WORK = inputs.WORK
TMP = WORK / "tmp"
PY = sys.executable
OURS = str(HERE / "_ours.py")
FLOOR = str(HERE / "_floor.py")
CORES = os.cpu_count() or 1
REPO_NAME = "bench/large"
FLEET_KEYS = ["fleet10", "fleet40", "fleet2x"]  # the registry repositories, and the case keys
FLEET_WORKERS = 2  # fixed, so that the fleet rows (4 vs 8 layers in 2-process waves) mean the same anywhere
CODE_ENV: dict[str, str] = {}  # PYTHONPATH to the ocilens snapshot the run measures (see snapshot_code)
HAVE_TIME = os.access("/usr/bin/time", os.X_OK)
DOCKERD = shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/dockerd"
# Debian's 20.10 client drives the engine (a newer /usr/local/bin/docker may be there too); the cases use none
DOCKER_CLI = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else (shutil.which("docker") or "docker")
ENGINE_TAG = "bench/large:gzip"  # the name the large docker-archive carries (inputs.build_large), loaded as is


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- the loopback registry -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<free port>, no auth, storage kept under ``.work``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cfg = self.root / "config.yml"
        cfg.write_text("\n".join([
            "version: 0.1",
            "log:", "  level: error", "  accesslog:", "    disabled: true",
            "storage:", "  filesystem:", f"    rootdirectory: {self.root / 'storage'}",
            "  delete:", "    enabled: true",
            "http:", f"  addr: {self.host}", f"  secret: {uuid.uuid4().hex}",
        ]) + "\n")
        self.log = open(self.root / "registry.log", "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited ({self.proc.returncode}); see {self.root}/registry.log")
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not answer on {self.host}") from None
                time.sleep(0.05)

    def layer_digests(self, repo: str, tag: str) -> list[str] | None:
        req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{tag}", headers={"Accept": ", ".join([
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json"])})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return [d["digest"] for d in json.loads(r.read())["layers"]]
        except urllib.error.HTTPError:
            return None

    def manifest_digest(self, repo: str, tag: str) -> str | None:
        req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{tag}",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return "sha256:" + hashlib.sha256(r.read()).hexdigest()
        except urllib.error.HTTPError:
            return None

    def tags(self, repo: str) -> list[str]:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/{repo}/tags/list?n=1000", timeout=10) as r:
                return json.loads(r.read()).get("tags") or []
        except urllib.error.HTTPError:
            return []

    def ensure_fleet(self, fleet: inputs.Fleet) -> None:
        """Push every fleet image whose manifest the registry does not hold (``skopeo copy``, a few at a time
        once a repository has its blobs), and delete tags the recipe no longer has, so that "every tag of
        the repository" is exactly the fleet."""
        index = json.loads((fleet.layout / "index.json").read_text())["manifests"]
        want = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index}

        def push(key: str, repo: str, tag: str) -> None:
            inputs.run("skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                       f"oci:{fleet.layout}:{fleet.layout_tag(key, tag)}", f"docker://{self.host}/{repo}:{tag}")
            if self.manifest_digest(repo, tag) != want[fleet.layout_tag(key, tag)]:
                raise RuntimeError(f"{self.host}/{repo}:{tag}: the registry does not hold the manifest skopeo "
                                   "pushed (converted?)")

        for key, tags in fleet.repos.items():
            repo = fleet.repository(key)
            todo = [t for t in tags if self.manifest_digest(repo, t) != want[fleet.layout_tag(key, t)]]
            if todo:
                log(f"pushing {len(todo)} fleet images to {self.host}/{repo}")
                push(key, repo, todo[0])  # the blobs, once
                with ThreadPoolExecutor(4) as ex:
                    list(ex.map(push, [key] * len(todo[1:]), [repo] * len(todo[1:]), todo[1:]))
            extra = sorted(set(self.tags(repo)) - set(tags))
            for tag in extra:
                digest = self.manifest_digest(repo, tag)
                if digest is None or digest in want.values():
                    raise RuntimeError(f"{self.host}/{repo}:{tag}: a tag the fleet does not have; "
                                       "rm -rf benchmarks/.work/registry")
                req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{digest}", method="DELETE")
                urllib.request.urlopen(req, timeout=10).close()
            if extra:
                log(f"deleted stale tags of {repo}: {' '.join(extra)}")
            if sorted(self.tags(repo)) != sorted(tags):
                raise RuntimeError(f"{self.host}/{repo}: tags {self.tags(repo)}, expected {tags}")

    def ensure(self, layout: Path, tag: str, repo: str) -> None:
        """Push ``layout:tag`` as ``repo:tag`` unless the registry already holds those layers."""
        want = [d["digest"] for d in inputs.layout_manifest(layout, tag)["layers"]]
        if self.layer_digests(repo, tag) != want:
            log(f"pushing {layout}:{tag} to {self.host}/{repo}:{tag}")
            inputs.run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{tag}",
                       f"docker://{self.host}/{repo}:{tag}")
            if self.layer_digests(repo, tag) != want:
                raise RuntimeError("the registry does not hold the layers skopeo pushed (recompressed?)")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# --- the Docker engine ---------------------------------------------------------------------------------

def _proc_start(pid: int) -> int | None:
    """A process's start time (clock ticks after boot), to tell it from a later one with its PID."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _proc_alive(pid: int, started: int | None) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and (started is None or _proc_start(pid) == started)


def _proc_children(pid: int) -> dict[int, int | None]:
    found: dict[int, int | None] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found[int(entry)] = int(fields[19])
    return found


class Engine:
    """Debian's ``dockerd`` 20.10 as root, isolated as ``tests/engines.py`` starts it: vfs storage, no
    iptables, bridge or userland proxy, a config file and containerd namespace of its own. Its data root is
    kept under ``.work/engine/NAME`` so that the loaded image survives between runs (``ensure_image`` loads it
    again only when its ID differs); the exec root and the socket live in a short directory under /tmp (unix
    socket paths may not exceed 107 bytes). Stopped by PID (SIGTERM, then SIGKILL), with the children it
    started (containerd)."""

    def __init__(self, name: str) -> None:
        self.root = WORK / "engine"
        self.data_root = self.root / name
        self.pidfile = self.root / f"{name}.pid"  # dockerd refuses to start while the pid it names still runs
        self.name = name
        self.top: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.children: dict[int, int | None] = {}

    @property
    def sock(self) -> Path:
        assert self.top is not None
        return self.top / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        """What the cases and the CLI need: this engine, and a client config of its own (no contexts)."""
        assert self.top is not None
        return {"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.top / "cli")}

    def _ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1.0)
                s.connect(str(self.sock))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
        except OSError:
            return False
        return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]

    def start(self) -> Engine:
        if os.geteuid() != 0:
            raise RuntimeError("the engine cases start dockerd, and must run as root")
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.top = Path(tempfile.mkdtemp(prefix="ob", dir="/tmp"))
        os.chmod(self.top, 0o711)
        (self.top / "cli").mkdir()
        (self.top / "daemon.json").write_text("{}\n")  # never the machine's /etc/docker/daemon.json
        ns = "ocilens-bench-" + hashlib.sha256(str(self.data_root).encode()).hexdigest()[:10]
        cmd = [DOCKERD, f"--config-file={self.top / 'daemon.json'}", "--storage-driver=vfs", "--iptables=false",
               "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
               f"--data-root={self.data_root}", f"--exec-root={self.top / 'exec'}", f"--pidfile={self.pidfile}",
               f"--containerd-namespace={ns}", f"--containerd-plugins-namespace={ns}-plugins", "-H", self.host]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "CONTAINER"))}
        self.log_path = self.root / f"{self.name}.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.sock.exists() and self._ping():
                self.children.update(_proc_children(self.proc.pid))
                return self
            time.sleep(0.05)
        code = self.proc.poll()
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        self.stop()
        raise RuntimeError(f"dockerd {'exited ' + str(code) if code is not None else 'did not answer /_ping'}; "
                           f"its log ({self.log_path}) ends:\n" + "\n".join(tail))

    def cli(self, *args: str, stdout: int | None = subprocess.PIPE) -> str:
        proc = subprocess.run([DOCKER_CLI, *args], env={**os.environ, **self.env}, stdout=stdout,
                              stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return proc.stdout or ""

    def image_id(self, tag: str) -> str | None:
        try:
            return self.cli("image", "inspect", "--format", "{{.Id}}", tag).strip()
        except RuntimeError:
            return None

    def ensure_image(self, archive: Path, tag: str) -> str:
        """``docker load`` the docker-archive (untimed) unless the engine holds ``tag`` with the archive's
        image ID (the digest of its config) already; returns the ID."""
        with tarfile.open(archive) as tf:
            manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
            config = tf.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        want = "sha256:" + hashlib.sha256(config).hexdigest()
        if self.image_id(tag) != want:
            log(f"docker load -i {archive} (engine {self.name}; untimed, kept for later runs)")
            t0 = time.monotonic()
            self.cli("load", "-i", str(archive))
            self.cli("image", "prune", "--force")  # what the tag pointed at before (an older build), if any
            log(f"  loaded in {time.monotonic() - t0:.0f} s")
            got = self.image_id(tag)
            if got != want:
                raise RuntimeError(f"docker load of {archive}: the engine has {tag} as {got}, not {want}")
        return want

    def stop(self) -> None:
        """Stop dockerd by PID (SIGTERM, then SIGKILL), then any child it left, unmount, remove the short
        directory (the data root stays, with the image)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.children.update(_proc_children(self.proc.pid))
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            for pid, started in self.children.items():
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    if not _proc_alive(pid, started):
                        break
                    os.kill(pid, sig)
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline and _proc_alive(pid, started):
                        time.sleep(0.05)
            self.proc = None
        if self.top is not None:
            points = []
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if any(point == str(d) or point.startswith(str(d) + "/") for d in (self.top, self.data_root)):
                    points.append(point)
            for point in sorted(points, key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True)
            shutil.rmtree(self.top, ignore_errors=True)
            self.top = None


# --- measuring -----------------------------------------------------------------------------------------

@dataclass
class Sample:
    seconds: float
    rss_mb: float
    info: dict
    cpu: float = 0.0  # user + sys seconds of the process and the children it waited for


@dataclass
class Case:
    key: str
    label: str
    cmd: Callable[[], list[str]]
    prepare: Callable[[], None] | None = None     # before each run, untimed
    cleanup: Callable[[], None] | None = None     # after each run, untimed
    env: dict[str, str] = field(default_factory=dict)
    ours: bool = False                            # prints a JSON line (see _ours.py)
    reports: bool = False                         # prints a JSON line, not ocilens (see _floor.py)
    ok: tuple[int, ...] = (0,)
    check: Callable[[], str | None] | None = None  # after a run: an error message, or None
    na_prefix: str = ""                           # how a failure is shown
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(s.seconds for s in self.samples) if self.samples else None

    @property
    def cpu(self) -> float | None:
        return statistics.median(s.cpu for s in self.samples) if self.samples else None

    @property
    def rss(self) -> float | None:
        return max(s.rss_mb for s in self.samples) if self.samples else None

    def info(self, name: str) -> float | None:
        vals = [s.info[name] for s in self.samples if name in s.info]
        return statistics.median(vals) if vals else None


TIME = "/usr/bin/time"  # GNU time (Debian package ``time``): the peak RSS of the measured process alone


def measure(case: Case) -> None:
    if case.error:
        return
    if case.prepare:
        case.prepare()
    os.sync()  # no case pays for the previous one's dirty pages
    out, err, rss_file = TMP / f"{case.key}.out", TMP / f"{case.key}.err", TMP / f"{case.key}.rss"
    env = {**os.environ, **CODE_ENV, **case.env}
    cmd = case.cmd()
    if HAVE_TIME:
        # time's own exit status is the command's; %M is the command's max RSS in KB
        cmd = [TIME, "-q", "-f", "%M", "-o", str(rss_file), *cmd]
    with open(out, "wb") as so, open(err, "wb") as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env, cwd=TMP)
        _, status, ru = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if HAVE_TIME:
        try:
            rss_kb = int(rss_file.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            rss_kb = ru.ru_maxrss
    else:
        rss_kb = ru.ru_maxrss  # includes the pre-exec copy of this process: an upper bound
    if case.cleanup:
        case.cleanup()
    problem = None
    if proc.returncode not in case.ok:
        tail = err.read_text(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        problem = f"exit {proc.returncode}: {tail[0][:200]}"
    elif case.check:
        problem = case.check()
    info: dict = {}
    if problem is None and (case.ours or case.reports):
        try:
            info = json.loads(out.read_text().strip().splitlines()[-1])
        except (ValueError, IndexError):
            problem = "no JSON result line"
        want = CODE_ENV.get("OCILENS_BENCH_CODE")
        if not problem and case.ours and want and not str(info.get("module", "")).startswith(want):
            problem = f"imported {info.get('module')}, not the snapshot under {want}"
    if problem:
        case.error = f"{case.na_prefix}{problem}"
        log(f"  {case.label}: FAILED {case.error}")
        return
    cpu = ru.ru_utime + ru.ru_stime
    case.samples.append(Sample(seconds, rss_kb / 1024, info, cpu))
    log(f"  {case.label}: {seconds:.2f} s, cpu {cpu:.2f} s, {rss_kb / 1024:.0f} MB")


def fresh(path: Path) -> Callable[[], None]:
    def f() -> None:
        shutil.rmtree(path, ignore_errors=True)
    return f


def fresh_dir(path: Path) -> Callable[[], None]:
    def f() -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    return f


def warm_page_cache(paths: list[Path]) -> None:
    """Read the inputs once, untimed, so that no case pays for the first read from disk."""
    for p in paths:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        for f in files:
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


# --- the cases -----------------------------------------------------------------------------------------

def build_cases(large: inputs.Large | None, many_big: inputs.Many | None, many_small: inputs.Many | None,
                registry: Registry | None, scratch: Path, fleet: inputs.Fleet | None = None,
                one: inputs.One | None = None, engine: Engine | None = None) -> list[Case]:
    cases: list[Case] = []
    cache_root = scratch / "cache"
    empty_cache = {"OCILENS_CACHE_DIR": str(cache_root / "unused")}
    dive_json = TMP / "dive.json"

    def ours(key: str, label: str, *args: str, env: dict | None = None, **kw) -> Case:
        return Case(key, label, lambda: [PY, OURS, *args], env=env or empty_cache, ours=True, **kw)

    def dive_checker(layers: int) -> Callable[[], str | None]:
        def dive_check() -> str | None:
            try:
                d = json.loads(dive_json.read_text())
                dive_json.unlink()
                return None if len(d["layer"]) == layers else f"dive saw {len(d['layer'])} layers, not {layers}"
            except (OSError, ValueError, KeyError) as exc:
                return f"no dive JSON: {exc}"
        return dive_check

    def entries_checker(key: str, entries: int) -> Callable[[], str | None]:
        def check() -> str | None:
            try:
                got = json.loads((TMP / f"{key}.out").read_text().strip().splitlines()[-1]).get("entries")
            except (OSError, ValueError, IndexError):
                return None  # measure() says so
            return None if got == entries else f"{got} tar entries read, not {entries}"
        return check

    if large is not None:
        gz, zs = [str(b) for b in large.blobs("gzip")], [str(b) for b in large.blobs("zstd")]
        dive_check = dive_checker(len(gz))

        cases += [
            Case("gzip", "gzip -dc (layer blobs)", lambda: ["gzip", "-dc", *gz]),
            Case("zstd", "zstd -dc (layer blobs)", lambda: ["zstd", "-dc", "-q", *zs]),
            Case("dive-oci", "dive (oci-archive, gzip)",
                 lambda: ["dive", "--source", "docker-archive", str(large.oci_archive), "--json", str(dive_json)],
                 env={"CI": "true"}, ok=(0, 1), check=dive_check),
            Case("dive-docker", "dive (docker-archive)",
                 lambda: ["dive", "--source", "docker-archive", str(large.docker_archive), "--json",
                          str(dive_json)], env={"CI": "true"}, ok=(0, 1), check=dive_check),
            # dive 0.13 reads zstd layers: the zstd image as an oci-archive (built by inputs.build_zstd_archive)
            Case("dive-zstd", "dive (oci-archive, zstd)",
                 lambda: ["dive", "--source", "docker-archive", str(large.oci_archive_zstd), "--json",
                          str(dive_json)], env={"CI": "true"}, ok=(0, 1), check=dive_check),
        ]
        # the floor: the C work a verified analysis cannot skip (see _floor.py), one thread, no parsing
        cases += [
            Case("floor-gzip", "floor: read + sha256 blob + inflate + sha256 tar + sha256 contents, gzip (1 thread)",
                 lambda: [PY, FLOOR, "gzip", *gz], reports=True),
            Case("floor-zstd", "floor: the same, zstd (1 thread)", lambda: [PY, FLOOR, "zstd", *zs], reports=True),
            Case("floor-tar", "floor: read + sha256 layer tar + sha256 contents, docker-archive (1 thread)",
                 lambda: [PY, FLOOR, "tar", str(large.docker_archive)], reports=True),
        ]
        tar_root = scratch / "tar-root"
        cases.append(Case("tar", "tar -xzf (layers in order)",
                          lambda: ["sh", "-c", f'for b; do tar -xzf "$b" -C {tar_root} || exit 1; done', "sh", *gz],
                          prepare=fresh_dir(tar_root), cleanup=fresh(tar_root)))
        if registry is not None:
            skopeo_dir = scratch / "skopeo-oci"
            cases.append(Case("skopeo", "skopeo copy (registry -> oci:)",
                              lambda: ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                       f"docker://{registry.host}/{REPO_NAME}:gzip", f"oci:{skopeo_dir}:gzip"],
                              prepare=fresh(skopeo_dir), cleanup=fresh(skopeo_dir)))
        bundle = scratch / "umoci-bundle"
        cases.append(Case("umoci", "umoci unpack (same gzip layers)",
                          lambda: ["umoci", "unpack", "--image", f"{large.layout_gzip}:gzip", str(bundle)],
                          prepare=fresh(bundle), cleanup=fresh(bundle)))
        cases += [
            ours("cold-gzip", "ocilens cold (oci layout, gzip)", "analyse", large.ref_gzip, "nocache"),
            ours("cold-zstd", "ocilens cold (oci layout, zstd)", "analyse", large.ref_zstd, "nocache"),
            ours("cold-ociarchive", "ocilens cold (oci-archive, gzip)", "analyse", large.ref_oci_archive,
                 "nocache"),
            ours("cold-docker", "ocilens cold (docker-archive)", "analyse", large.ref_docker_archive, "nocache"),
        ]
        warm_cache = cache_root / "warm"
        cases.append(ours("warm", "ocilens warm (oci layout, gzip, scans cached)", "analyse", large.ref_gzip,
                          "cache", env={"OCILENS_CACHE_DIR": str(warm_cache)}))
        # the same two in a notebook session, which has imported pandas already: re-analysis as users see it
        cases.append(ours("cold-nb", "ocilens cold, pandas imported first (a notebook session)", "analyse",
                          large.ref_gzip, "nocache", "notebook"))
        cases.append(ours("warm-nb", "ocilens warm, pandas imported first (a notebook session)", "analyse",
                          large.ref_gzip, "cache", "notebook", env={"OCILENS_CACHE_DIR": str(warm_cache)}))
        if registry is not None:
            pull_cache = cache_root / "pull"
            cases.append(ours("pull", "ocilens pull + analyse (loopback registry, gzip)", "analyse",
                              f"{registry.host}/{REPO_NAME}:gzip", "cache",
                              env={"OCILENS_CACHE_DIR": str(pull_cache)},
                              prepare=fresh(pull_cache), cleanup=fresh(pull_cache),
                              na_prefix="n/a (registry source unavailable: "))
        ext_root = scratch / "ocilens-root"
        cases.append(ours("extract", "ocilens extract (oci layout, gzip)", "extract", large.ref_gzip,
                          str(ext_root), prepare=fresh(ext_root), cleanup=fresh(ext_root)))
        if engine is not None:
            # the large image in a Docker engine (docker load of its docker-archive, before the runs): both read
            # it through the engine's API (its export), whole processes; ocilens with an empty cache each run
            engine_cache = cache_root / "engine"
            cases.append(Case("engine-dive", f"dive --source docker {ENGINE_TAG} (docker engine)",
                              lambda: ["dive", "--source", "docker", ENGINE_TAG, "--json", str(dive_json)],
                              env={"CI": "true", **engine.env}, ok=(0, 1), check=dive_check))
            cases.append(ours("engine-cold", f"ocilens cold (docker-daemon:{ENGINE_TAG}, the engine's export)",
                              "analyse", f"docker-daemon:{ENGINE_TAG}", "nocache",
                              env={"OCILENS_CACHE_DIR": str(engine_cache), **engine.env},
                              prepare=fresh(engine_cache), cleanup=fresh(engine_cache),
                              check=entries_checker("engine-cold", large.entries)))
    if one is not None:
        ob = [str(b) for b in one.blobs()]
        cases += [
            Case("one-gzip", "one-layer image: gzip -dc (its layer blob)", lambda: ["gzip", "-dc", *ob]),
            Case("one-dive", "one-layer image: dive (oci-archive, gzip)",
                 lambda: ["dive", "--source", "docker-archive", str(one.oci_archive), "--json", str(dive_json)],
                 env={"CI": "true"}, ok=(0, 1), check=dive_checker(len(ob))),
            ours("one-cold", "one-layer image: ocilens cold (oci layout, gzip)", "analyse", one.ref_gzip, "nocache",
                 check=entries_checker("one-cold", one.entries)),
            ours("one-docker", "one-layer image: ocilens cold (docker-archive)", "analyse", one.ref_docker_archive,
                 "nocache", check=entries_checker("one-docker", one.entries)),
            Case("one-floor-gzip", "one-layer image, floor: read + sha256 blob + inflate + sha256 tar + sha256 "
                 "contents, gzip (1 thread)", lambda: [PY, FLOOR, "gzip", *ob], reports=True),
            Case("one-floor-tar", "one-layer image, floor: read + sha256 layer tar + sha256 contents, "
                 "docker-archive (1 thread)", lambda: [PY, FLOOR, "tar", str(one.docker_archive)], reports=True),
        ]
    if many_big is not None:
        cases.append(ours("many-big", f"ocilens cold, many-files ({many_big.entries:,} entries)", "analyse",
                          many_big.ref, "nocache"))
    if many_small is not None:
        cases.append(ours("many-small", f"ocilens cold, many-files ({many_small.entries:,} entries)", "analyse",
                          many_small.ref, "nocache"))
    if fleet is not None and registry is not None:
        for repo in FLEET_KEYS:
            fleet_cache = cache_root / repo
            n, distinct = fleet.images(repo), fleet.distinct[repo]

            def fleet_check(repo: str = repo, n: int = n, distinct: int = distinct) -> str | None:
                try:
                    i = json.loads((TMP / f"{repo}.out").read_text().strip().splitlines()[-1])
                except (OSError, ValueError, IndexError):
                    return None  # measure() says so
                got = (i.get("images"), i.get("audited"), i.get("scanned_layers"), i.get("cached_layers"))
                if got != (n, n, distinct, 0):
                    return (f"images/audited/scanned/cached {got}, expected ({n}, {n}, {distinct}, 0): "
                            "not a cold audit of the fleet")
                return None

            cases.append(ours(repo, f"ocilens audit {repo} ({n} tags, {distinct} distinct layers, cold)",
                              "audit", f"{registry.host}/{fleet.repository(repo)}", str(FLEET_WORKERS),
                              env={"OCILENS_CACHE_DIR": str(fleet_cache)}, prepare=fresh(fleet_cache),
                              cleanup=fresh(fleet_cache), check=fleet_check))
    cases += [
        Case("pandas", "python -c 'import pandas' (the frames need it)", lambda: [PY, "-c", "import pandas"]),
        ours("import", "python -c 'import ocilens'", "import"),
        Case("python", "python -c pass (interpreter alone)", lambda: [PY, "-c", "pass"]),
    ]
    return cases


ENGINE_KEYS = ["engine-dive", "engine-cold"]  # the large image in a Docker engine started for the run
LARGE_KEYS = ["gzip", "zstd", "dive-oci", "dive-docker", "dive-zstd", "floor-gzip", "floor-zstd", "floor-tar", "tar",
              "skopeo", "umoci", "cold-gzip", "cold-zstd", "cold-ociarchive", "cold-docker", "warm", "cold-nb",
              "warm-nb", "pull", "extract", *ENGINE_KEYS]  # the cases on the large image
ONE_KEYS = ["one-gzip", "one-dive", "one-cold", "one-docker", "one-floor-gzip", "one-floor-tar"]  # one-layer image
ALL_KEYS = [*LARGE_KEYS, *ONE_KEYS, "many-big", "many-small", *FLEET_KEYS, "pandas", "import", "python"]


def selected(only: list[str] | None, key: str) -> bool:
    return not only or any(key == o or key.startswith(o) for o in only)


# --- the report ----------------------------------------------------------------------------------------

def fmt_s(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def machine_line() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    distro = ""
    try:
        distro = [ln.split("=", 1)[1].strip('"') for ln in Path("/etc/os-release").read_text().splitlines()
                  if ln.startswith("PRETTY_NAME=")][0] + ", "
    except (OSError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}; {distro}Linux {platform.release()}; "
            f"Python {platform.python_version()}; {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def tree_hash(root: Path) -> str:
    """A short content hash of the ``.py`` files under ``root`` (names and bytes)."""
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:10]


def snapshot_code(rev: str | None) -> str:
    """Copy the ocilens package (the working tree, or ``git archive REV``) under ``.work/tmp/code`` and point
    every measured process at it, byte-compiled as an installed package is: the whole run measures one
    version even if someone edits ocilens meanwhile. Returns a description of that version."""
    dest = TMP / "code"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    head = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if rev:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "ocilens"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        what = f"{_first_line(['git', '-C', str(REPO), 'rev-parse', '--short', rev])} (git archive)"
    else:
        shutil.copytree(REPO / "ocilens", dest / "ocilens", ignore=shutil.ignore_patterns("__pycache__"))
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "ocilens"],
                               capture_output=True, text=True).stdout.strip()
        what = f"{head} + uncommitted changes" if dirty else head
    subprocess.run([PY, "-m", "compileall", "-q", str(dest / "ocilens")], check=True)
    CODE_ENV["PYTHONPATH"] = os.pathsep.join([str(dest), *filter(None, [os.environ.get("PYTHONPATH")])])
    CODE_ENV["OCILENS_BENCH_CODE"] = str(dest / "ocilens")
    return f"{what}, snapshot {tree_hash(dest / 'ocilens')}"


def tool_versions(code: str) -> str:
    first = _first_line
    return "; ".join([
        f"ocilens {code}",
        first(["dive", "--version"]), first(["skopeo", "--version"]), first(["umoci", "--version"]),
        first(["gzip", "--version"]), first(["zstd", "--version"]).split(",")[0], first(["tar", "--version"]),
    ])


@dataclass
class Target:
    label: str
    value: Callable[[], float | None]
    target: float | None      # None: context only
    better: str = "le"        # "le": value <= target passes; "ge": >=; "within": |value - 1| <= target
    unit: str = "x"


def ratio(num: Callable[[], float | None], *dens: Callable[[], float | None]) -> Callable[[], float | None]:
    def f() -> float | None:
        n = num()
        ds = [d() for d in dens]
        if n is None or any(d is None for d in ds) or not sum(ds):  # type: ignore[arg-type]
            return None
        return n / sum(ds)  # type: ignore[arg-type]
    return f


def render(cases: dict[str, Case], args: argparse.Namespace, large: inputs.Large | None,
           many: list[inputs.Many], elapsed: float, code: str, fleet: inputs.Fleet | None = None,
           one: inputs.One | None = None, engine: bool = False) -> str:
    def med(key: str) -> Callable[[], float | None]:
        return lambda: cases[key].median if key in cases else None

    def rss(*keys: str) -> Callable[[], float | None]:
        def f() -> float | None:
            vals = [cases[k].rss for k in keys if k in cases and cases[k].rss is not None]
            return max(vals) if vals else None  # type: ignore[type-var]
        return f

    def in_process(key: str) -> float | None:
        c = cases.get(key)
        if c is None or not c.samples:
            return None
        return statistics.median(s.info["load"] + s.info.get("frames", 0) + s.info.get("extract", 0)
                                 for s in c.samples)

    def inproc(key: str) -> Callable[[], float | None]:
        return lambda: in_process(key)

    def best(floor: str) -> Callable[[], float | None]:
        """The least wall time of a verified cold analysis on this machine: start-up, plus the floor's CPU
        and pandas' import spread over every core, with no parsing, tables or idle core at all."""
        def f() -> float | None:
            c, py, pd_ = cases.get(floor), med("python")(), med("pandas")()
            work = c.info("cpu") if c is not None else None
            if work is None or py is None or pd_ is None:
                return None
            return py + (work + max(pd_ - py, 0.0)) / CORES
        return f

    def entries_per_s() -> float | None:
        c = cases.get("many-big")
        if c is None or c.median is None:
            return None
        return c.info("entries") / c.median  # type: ignore[operator]

    def audit_s(key: str) -> float | None:
        c = cases.get(key)
        if c is None or not c.samples:
            return None
        return statistics.median(s.info["audit"] for s in c.samples)

    def per_image_ms() -> float | None:
        """What each image beyond fleet10's costs when the layers are the same (in-process, ms)."""
        a, b = audit_s("fleet40"), audit_s("fleet10")
        if a is None or b is None or fleet is None:
            return None
        return (a - b) / (fleet.images("fleet40") - fleet.images("fleet10")) * 1000

    def per_entry_ratio() -> float | None:
        """Whole-process time per entry, less the fixed start-up (the interpreter and pandas' import, timed
        in the same run), 1M entries over 100k."""
        big, small, fixed = med("many-big")(), med("many-small")(), med("pandas")()
        if big is None or small is None or fixed is None:
            return None
        return ((big - fixed) / cases["many-big"].info("entries")) / (  # type: ignore[operator]
            (small - fixed) / cases["many-small"].info("entries"))

    targets = [
        Target("cold gzip / gzip -dc", ratio(med("cold-gzip"), med("gzip")), 0.4),
        Target("cold gzip / dive(oci-archive)", ratio(med("cold-gzip"), med("dive-oci")), 0.4),
        Target("cold gzip, both on the oci-archive: ocilens / dive", ratio(med("cold-ociarchive"), med("dive-oci")),
               0.4),
        Target("cold zstd / zstd -dc", ratio(med("cold-zstd"), med("zstd")), 0.8),
        Target("docker-archive: ocilens / dive", ratio(med("cold-docker"), med("dive-docker")), 0.6),
        Target("warm / cold (gzip)", ratio(med("warm"), med("cold-gzip")), 0.05),
        Target("pull+analyse / (skopeo copy + gzip -dc)", ratio(med("pull"), med("skopeo"), med("gzip")), 0.5),
        Target("extract / tar -xzf", ratio(med("extract"), med("tar")), 1.0),
        Target("extract / (skopeo copy + umoci unpack)", ratio(med("extract"), med("skopeo"), med("umoci")), 0.5),
        Target("many-files: entries/s end to end", entries_per_s, 100_000, "ge", ""),
        Target("many-files: peak RSS MB", rss("many-big"), 1024, "le", " MB"),
        Target("many-files: per-entry cost, big / small (less start-up and import pandas)", per_entry_ratio, 0.2,
               "within"),
        Target("large image: peak RSS MB (max of ours)",
               rss("cold-gzip", "cold-zstd", "cold-ociarchive", "cold-docker", "warm", "pull", "extract",
                   "engine-cold"),
               200, "le", " MB"),
        Target("python start-up + import ocilens, s", med("import"), 0.5, "le", " s"),
        Target("fleet: 40 tags / 10 tags, same 4 layers (time follows distinct layers, not images)",
               ratio(med("fleet40"), med("fleet10")), 1.3),
        # issue 18: one dominant layer, zstd ahead of dive, uncompressed archives near their floor, warm in a notebook
        Target("one-dominant-layer image, gzip: cold / dive(oci-archive)", ratio(med("one-cold"), med("one-dive")),
               0.7),
        Target("one-dominant-layer image, gzip: cold / gzip -dc", ratio(med("one-cold"), med("one-gzip")), 0.8),
        Target("cold zstd / dive(oci-archive, zstd)", ratio(med("cold-zstd"), med("dive-zstd")), 1.0),
        Target("docker-archive (large, uncompressed): ocilens / its best possible",
               ratio(med("cold-docker"), best("floor-tar")), 1.3),
        Target("docker-archive (one-layer, uncompressed): ocilens / its best possible",
               ratio(med("one-docker"), best("one-floor-tar")), 1.3),
        Target("warm re-analysis in a notebook session (pandas imported; events, files, layers read), in-process: "
               "warm-nb / cold-nb", ratio(inproc("warm-nb"), inproc("cold-nb")), 0.05),
        # issue 15: the image in the local engine, read through its API
        Target(f"engine: ocilens analyze docker-daemon:{ENGINE_TAG} / dive --source docker {ENGINE_TAG}",
               ratio(med("engine-cold"), med("engine-dive")), 1.0),
        Target(f"floor: best possible cold gzip / gzip -dc ({CORES} cores; see the floor rows)",
               ratio(best("floor-gzip"), med("gzip")), None),
        Target("floor: best possible cold gzip / dive(oci-archive)", ratio(best("floor-gzip"), med("dive-oci")), None),
        Target("floor: best possible cold zstd / zstd -dc", ratio(best("floor-zstd"), med("zstd")), None),
        Target("floor: best possible docker-archive / dive", ratio(best("floor-tar"), med("dive-docker")), None),
        Target("floor: best possible warm / cold gzip (start-up + import pandas)", ratio(med("pandas"),
                                                                                       med("cold-gzip")), None),
        Target("floor: cold gzip / its best possible (1.0 = nothing left but the floor)",
               ratio(med("cold-gzip"), best("floor-gzip")), None),
        Target("floor: cold zstd / its best possible", ratio(med("cold-zstd"), best("floor-zstd")), None),
        Target("floor: best possible cold zstd / dive(oci-archive, zstd)", ratio(best("floor-zstd"), med("dive-zstd")),
               None),
        Target("floor: best possible one-layer gzip / gzip -dc", ratio(best("one-floor-gzip"), med("one-gzip")), None),
        Target("floor: best possible one-layer gzip / dive(oci-archive)",
               ratio(best("one-floor-gzip"), med("one-dive")), None),
        Target("floor: one-layer gzip / its best possible", ratio(med("one-cold"), best("one-floor-gzip")), None),
        Target("context: dive(oci-archive) / gzip -dc", ratio(med("dive-oci"), med("gzip")), None),
        Target("context: zstd -dc / gzip -dc", ratio(med("zstd"), med("gzip")), None),
        Target("context: cold oci-archive / cold layout (gzip)", ratio(med("cold-ociarchive"), med("cold-gzip")),
               None),
        Target("context: pull+analyse / cold (gzip)", ratio(med("pull"), med("cold-gzip")), None),
        Target("context, in-process (no start-up): cold gzip / gzip -dc",
               ratio(inproc("cold-gzip"), med("gzip")), None),
        Target("context, in-process: cold gzip / dive(oci-archive)", ratio(inproc("cold-gzip"), med("dive-oci")),
               None),
        Target("context, in-process: cold zstd / zstd -dc", ratio(inproc("cold-zstd"), med("zstd")), None),
        Target("context, in-process: docker-archive / dive", ratio(inproc("cold-docker"), med("dive-docker")),
               None),
        Target("context, in-process: warm / cold (gzip)", ratio(inproc("warm"), inproc("cold-gzip")), None),
        Target("context, in a notebook session (pandas imported), whole processes: warm-nb / cold-nb",
               ratio(med("warm-nb"), med("cold-nb")), None),
        Target("context, in-process: one-layer gzip / dive(oci-archive)", ratio(inproc("one-cold"), med("one-dive")),
               None),
        Target("context, in-process: one-layer gzip / gzip -dc", ratio(inproc("one-cold"), med("one-gzip")), None),
        Target("context: one-layer gzip, dive / gzip -dc", ratio(med("one-dive"), med("one-gzip")), None),
        Target("context: dive(zstd oci-archive) / dive(gzip oci-archive)", ratio(med("dive-zstd"), med("dive-oci")),
               None),
        Target("context, in-process: engine / dive --source docker", ratio(inproc("engine-cold"), med("engine-dive")),
               None),
        Target("context: engine / cold docker-archive (the same image, through the engine's export)",
               ratio(med("engine-cold"), med("cold-docker")), None),
        Target("context, in-process: pull+analyse / (skopeo copy + gzip -dc)",
               ratio(inproc("pull"), med("skopeo"), med("gzip")), None),
        Target("context, in-process: extract / tar -xzf", ratio(inproc("extract"), med("tar")), None),
        Target("context: fleet, 2x distinct layers / fleet10 (10 tags each; 2x if the scans set the time)",
               ratio(med("fleet2x"), med("fleet10")), None),
        Target("context, in-process: fleet40 / fleet10", ratio(lambda: audit_s("fleet40"), lambda: audit_s("fleet10")),
               None),
        Target("context, in-process: fleet 2x distinct layers / fleet10",
               ratio(lambda: audit_s("fleet2x"), lambda: audit_s("fleet10")), None),
        Target("context, in-process: cost of one more image on the same layers, ms", per_image_ms, None, unit=" ms"),
    ]

    lines = ["# ocilens benchmark" + (" (--quick)" if args.quick else ""), ""]
    lines.append(f"Machine: {machine_line()}.  ")
    lines.append(f"Tools: {tool_versions(code)}.  ")
    if large is not None:
        gz = sum(p.stat().st_size for p in large.blobs("gzip"))
        zs = sum(p.stat().st_size for p in large.blobs("zstd"))
        lines.append(f"Large image: {len(large.blobs('gzip'))} layers, {large.entries:,} tar entries, "
                     f"{large.uncompressed / 1e6:,.0f} MB of layer tars, {gz / 1e6:,.0f} MB gzip, "
                     f"{zs / 1e6:,.0f} MB zstd (real Debian package files).  ")
    if one is not None:
        lines.append(f"One-layer image: 1 gzip layer, {one.entries:,} tar entries, {one.uncompressed / 1e6:,.0f} MB of "
                     f"layer tar, {sum(p.stat().st_size for p in one.blobs()) / 1e6:,.0f} MB gzip (real Debian "
                     f"package files: {' '.join(inputs.ONE_PACKAGES[args.quick][0])}).  ")
    if engine:
        lines.append(f"Engine: {_first_line([DOCKERD, '--version'])}, vfs storage, the large image `docker load`ed "
                     f"from its docker-archive as `{ENGINE_TAG}` (before the runs); ocilens and dive reach it through "
                     f"`DOCKER_HOST=unix://...`.  ")
    if many:
        lines.append("Many-files images: " + ", ".join(f"{m.entries:,} entries" for m in many)
                     + " in 4 gzip layers.  ")
    if fleet is not None:
        lines.append(f"Fleet: images of 4 gzip layers (real Debian package files, {fleet.set_bytes() / 1e6:,.0f} MB "
                     f"gzip, {fleet.set_bytes('uncompressed') / 1e6:,.0f} MB of layer tars); fleet10 and fleet40 "
                     f"tag 10 and 40 distinct manifests on the same 4 layers, fleet2x 10 on 8 layers (4 + the same "
                     f"packages built again); `ocilens.audit(\"HOST/REPO\")` (every tag), "
                     f"{FLEET_WORKERS} worker processes, empty scan cache each run.  ")
    lines.append(f"Medians of {args.runs} runs (round-robin), each case a fresh process; `cpu s` is the median "
                 f"user + sys time (less sensitive to a busy machine than wall time); peak RSS is the max over "
                 f"runs; the whole benchmark took {elapsed / 60:.1f} min.")
    if args.scratch:
        lines.append(f"Extractions, pulls and caches written under {args.scratch} (`--scratch`).  ")
    lines += ["", "| case | median s | runs s | cpu s | peak RSS MB | notes |", "|---|---:|---|---:|---:|---|"]
    for c in cases.values():
        if c.error and not c.samples:
            lines.append(f"| {c.label} | {c.error}{')' if c.na_prefix else ''} | | | | |")
            continue
        runs = " ".join(fmt_s(s.seconds) for s in c.samples)
        notes = []
        if c.ours and c.samples:
            i = c.samples[len(c.samples) // 2].info
            if "audit" in i:
                notes.append(f"in-process: audit {i['audit']:.2f} (resolve {i.get('t_resolve', 0):.2f}, scan "
                             f"{i.get('t_scan', 0):.2f}, assemble {i.get('t_assemble', 0):.2f}), import "
                             f"{i['import']:.2f}; {i['images']} images, {i['scanned_layers']} layers scanned")
            elif "load" in i:
                notes.append(f"in-process: load {i['load']:.2f}"
                             + (f" + frames {i['frames']:.2f}" if "frames" in i else "")
                             + (f" + extract {i['extract']:.2f}" if "extract" in i else "")
                             + f", import {i['import']:.2f}")
            if "files" in i:
                notes.append(f"{i.get('entries', 0):,} entries, {i['files']:,} files"
                             + (f", {i['events']:,} events" if "events" in i else ""))
            elif "import" in i and "audit" not in i:
                notes.append(f"import alone {i['import']:.3f} s")
        if c.reports and c.samples and c.info("cpu") is not None:
            notes.append(f"the work itself: {c.info('cpu'):.2f} s of CPU (median; imports excluded), "
                         f"{c.info('cpu') / CORES:.2f} s spread over {CORES} cores")
        if c.error:
            notes.append(f"a later run failed: {c.error}")
        lines.append(f"| {c.label} | {fmt_s(c.median)} | {runs} | {fmt_s(c.cpu)} | {c.rss:.0f} | {'; '.join(notes)} |")
    lines += ["", "| ratio | measured | target | result |", "|---|---:|---:|---|"]
    for t in targets:
        v = t.value()
        if t.target is None:
            if v is not None:
                lines.append(f"| {t.label} | {v:.0f}{t.unit} | | context |" if t.unit == " ms"
                             else f"| {t.label} | {v:.2f}x | | context |")
            continue
        if v is None:
            if not args.only:
                lines.append(f"| {t.label} | - | {_target_text(t)} | not measured |")
            continue
        ok = (v <= t.target if t.better == "le" else v >= t.target if t.better == "ge"
              else abs(v - 1) <= t.target)
        shown = (f"{v:,.0f}" if t.unit == "" else f"{v:.0f}{t.unit}" if t.unit == " MB"
                 else f"{v:.2f}{t.unit}")
        lines.append(f"| {t.label} | {shown} | {_target_text(t)} | {'PASS' if ok else 'MISS'} |")
    lines += ["", ("Notes: ratios are medians over medians of the same run; `(a + b)` sums two medians. "
                   "\"in-process\" times exclude interpreter start-up and `import ocilens`, but not the import of "
                   "pandas and numpy, which ocilens does lazily, beside the reading of the layers; the context rows "
                   "marked so use them, every other ocilens figure is the wall time of the whole process (the "
                   "per-entry cost subtracts the `import pandas` row from both). The floor rows: the C work a "
                   "verified analysis cannot skip, spread over every core, plus start-up and `import pandas`. "
                   f"Rerun: `python benchmarks/run.py{' --quick' if args.quick else ''}`.")]
    return "\n".join(lines) + "\n"


def _target_text(t: Target) -> str:
    if t.better == "le":
        return f"<= {t.target:,g}{t.unit}"
    if t.better == "ge":
        return f">= {t.target:,.0f}"
    return f"1 +/- {t.target:g}"


# --- main ----------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small inputs (~80 MB image, 100k entries): a smoke test")
    ap.add_argument("--runs", type=int, help="runs per case (default 3, 1 with --quick); medians are reported")
    ap.add_argument("--scratch", type=Path, help="where extractions and pulls write (default benchmarks/.work/tmp;"
                    " a tmpfs such as /dev/shm takes the disk out of the extraction figures)")
    ap.add_argument("--only", help="comma-separated case keys or prefixes (see --list)")
    ap.add_argument("--list", action="store_true", help="list the case keys and exit")
    ap.add_argument("--rev", help="measure ocilens as of this git revision (default: the working tree, copied "
                    "at the start)")
    ap.add_argument("--out", type=Path, help="where to write the Markdown (default: see above)")
    args = ap.parse_args()
    if args.list:
        print("\n".join(ALL_KEYS))
        return 0
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    only = [o.strip() for o in args.only.split(",")] if args.only else None
    if only and not any(selected(only, k) for k in ALL_KEYS):
        ap.error(f"--only {args.only}: no such case (see --list)")
    start = time.monotonic()
    for tool in ("umoci", "skopeo", "docker-registry", "gzip", "zstd", "tar", "dive", "dpkg-deb", "apt-get"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH (see benchmarks/README.md)")
    if not HAVE_TIME:
        log("/usr/bin/time is missing (apt-get install time): peak RSS falls back to wait4's, an upper bound")
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(TMP, ignore_errors=True)
    TMP.mkdir(parents=True)
    code = snapshot_code(args.rev)
    log(f"measuring ocilens {code}")
    scratch = (args.scratch / f"ocilens-bench-{os.getpid()}") if args.scratch else TMP
    scratch.mkdir(parents=True, exist_ok=True)

    need_large = any(selected(only, k) for k in LARGE_KEYS)
    large = inputs.build_large(args.quick) if need_large else None
    if large is not None and selected(only, "dive-zstd"):
        inputs.build_zstd_archive(large)
    one = inputs.build_one(args.quick) if any(selected(only, k) for k in ONE_KEYS) else None
    big_n, small_n = (100_000, 10_000) if args.quick else (1_000_000, 100_000)
    many_big = inputs.build_many(big_n) if selected(only, "many-big") else None
    many_small = inputs.build_many(small_n) if selected(only, "many-small") else None
    fleet = inputs.build_fleet(args.quick) if any(selected(only, k) for k in FLEET_KEYS) else None

    registry = None
    engine = None
    try:
        if large is not None and any(selected(only, k) for k in ENGINE_KEYS):
            if shutil.which(DOCKERD) is None:
                sys.exit("dockerd is not installed (apt-get install docker.io; see benchmarks/README.md)")
            engine = Engine(large.dir.name).start()
            log(f"docker engine on {engine.host} (pid {engine.proc.pid}, data root {engine.data_root})")
            engine.ensure_image(large.docker_archive, ENGINE_TAG)
        large_pushed = large is not None and (selected(only, "skopeo") or selected(only, "pull"))
        if large_pushed or fleet is not None:
            registry = Registry(WORK / "registry").start()
            log(f"registry on {registry.host}")
            if large_pushed:
                registry.ensure(large.layout_gzip, "gzip", REPO_NAME)
            if fleet is not None:
                registry.ensure_fleet(fleet)
        cases = {c.key: c for c in build_cases(large, many_big, many_small, registry, scratch, fleet, one, engine)
                 if selected(only, c.key)}

        filler = cases.get("warm") or cases.get("warm-nb")  # the two warm cases share one cache
        if filler is not None:
            log("filling the scan cache for the warm cases (untimed)")
            fresh(scratch / "cache" / "warm")()
            measure(filler)
            filler.samples.clear()
        warm = [p for p in ([large.layout_gzip, large.layout_zstd, large.oci_archive, large.docker_archive]
                            if large else [])]
        if large is not None and "dive-zstd" in cases:
            warm.append(large.oci_archive_zstd)
        if one is not None:
            warm += [one.layout_gzip, one.oci_archive, one.docker_archive]
        warm += [m.layout for m in (many_big, many_small) if m]
        if registry is not None:
            warm.append(WORK / "registry" / "storage")
        log("reading the inputs once (page cache)")
        warm_page_cache(warm)
        if engine is not None:
            engine.cli("save", ENGINE_TAG, stdout=subprocess.DEVNULL)  # the engine reads its layers once too

        for r in range(args.runs):
            log(f"round {r + 1}/{args.runs}")
            for c in cases.values():
                measure(c)
    finally:
        if registry is not None:
            registry.stop()
        if engine is not None:
            engine.stop()
        if scratch != TMP:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - start
    md = render(cases, args, large, [m for m in (many_big, many_small) if m], elapsed, code, fleet, one,
                engine is not None)
    print(md)
    out = args.out or (HERE / "results.md" if not (args.quick or only) else
                       WORK / f"results-{'quick' if args.quick else 'only'}.md")
    out.write_text(md)
    log(f"written to {out}; total {elapsed / 60:.1f} min")
    shutil.rmtree(TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
