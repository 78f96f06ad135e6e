"""Fleet audit against real registries: a fleet of images built with umoci and pushed with skopeo.

The fleet: 22 images in 6 repositories of an anonymous registry (the real CNCF ``docker-registry``, its
access log on, so that every blob download can be counted from the registry's side), sharing five base
layers in different combinations and orders, two tags of one repository naming the same manifest, and
one image whose unique layer is corrupted in the registry's storage after the push; plus one image in a
second registry behind htpasswd auth, and a tag that does not exist.

What is checked: every distinct layer digest of the manifests is scanned once and downloaded once (the
registry's log says so), a second audit scans nothing but the broken layer, every image's numbers and
events equal a single-image ``ocilens.load`` of it, each failure is its image's error and nothing else's,
the catalog and tag lists are followed page by page, and the CLI, report and charts come out of it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pandas as pd
import pytest

import ocilens
from ocilens.errors import AuthenticationError, DigestMismatch, LayerDecodeError, RegistryNotFound
from ocilens.fleet import RUN_COLUMNS, FleetAudit, audit, classify, expand
from ocilens.registry.client import RegistryClient

try:
    from . import registry_server as rs
except ImportError:
    import registry_server as rs

# --- the fleet -------------------------------------------------------------------------------------------

def base_layers(nonce: bytes) -> dict[str, bytes]:
    """Five base layers whose waste depends on the order they are stacked in."""
    rnd = __import__("random").Random(7)
    libc = bytes(rnd.getrandbits(8) for _ in range(24_000))
    return {
        "os": rs.layer_tar({"etc/os-release": b"ID=fleet\n" + nonce, "bin/sh": b"#!sh\n" * 400, "lib/libc.so": libc,
                      "var/cache/apt/archives/tool.deb": bytes(rnd.getrandbits(8) for _ in range(9_000))}),
        "py": rs.layer_tar({"usr/bin/python3": bytes(rnd.getrandbits(8) for _ in range(30_000)) + nonce,
                      "usr/lib/python3/site.py": b"import os\n" * 300,
                      "lib/libc.so": bytes(rnd.getrandbits(8) for _ in range(24_000))}),  # overwrites os's
        "tools": rs.layer_tar({"usr/bin/gcc": bytes(rnd.getrandbits(8) for _ in range(40_000)) + nonce,
                         "tmp/build.log": b"compiling\n" * 500}),
        "clean": rs.layer_tar({"etc/cleaned": nonce}, whiteouts=("usr/bin/gcc", "var/cache/apt/archives/tool.deb")),
        "node": rs.layer_tar({"usr/lib/node/npm.js": b"module.exports = 1;\n" * 800 + nonce,
                        "bin/sh": (b"#!sh\n" * 400, 0o755)}),  # only the mode changes: metadata-only waste
    }


#: repository -> tag -> base layers (bottom first); every image gets an app layer of its own on top.
FLEET: dict[str, dict[str, list[str]]] = {
    "base/os": {"1": ["os"], "2": ["os", "clean"]},
    "team/api": {"1": ["os", "py"], "2": ["os", "py"], "3": ["os", "py", "tools"],
                 "4": ["os", "py", "tools", "clean"], "5": ["py", "os"]},
    "team/web": {"1": ["os", "node"], "2": ["os", "node"], "3": ["os", "node", "py"], "4": ["node"],
                 "5": ["os", "py", "node"]},
    "team/worker": {"1": ["os", "py", "tools"], "2": ["os", "tools", "clean"], "3": ["os", "tools", "py"],
                    "4": ["tools"]},
    "tools/builder": {"1": ["os", "tools"], "2": ["os", "tools", "node"], "3": ["os", "py", "tools", "node"],
                      "latest": ["os", "tools", "clean", "py"]},
}
ALIAS = ("team/api", "6", "5")  # team/api:6 is the same manifest as team/api:5
BROKEN = "team/broken:1"
SECURE = "secure/app:1"
CREDS = ("bob", "s3cret")


class LoggingRegistry(rs.RegistryServer):
    """The test registry with its access log on: the registry's own record of every request."""

    def config(self) -> str:
        return super().config().replace("    disabled: true", "    disabled: false")

    def sync_log(self, timeout: float = 30.0) -> int:
        """Bring the access log up to now: send a request with a marker of its own (``GET /v2/?sentinel=``)
        and wait until the marker's line is in the log. The registry writes each request's line as it
        answers it, so the lines of every request answered before the sentinel are in the log before the
        sentinel's. Returns the offset just past the sentinel's line."""
        marker = f"ocilens-sentinel={uuid.uuid4().hex}".encode()
        httpx.get(f"{self.url}/v2/?{marker.decode()}", timeout=10, trust_env=False).raise_for_status()
        log = self.directory / "registry.log"
        deadline = time.monotonic() + timeout
        while (at := (data := log.read_bytes()).find(marker)) < 0 or data.find(b"\n", at) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"the registry did not log the sentinel request within {timeout}s")
            time.sleep(0.01)  # polled: the condition, not the time, ends the wait
        return data.find(b"\n", at) + 1

    def blob_gets(self, since: int = 0) -> dict[str, int]:
        """How many times each blob was fetched (``GET .../blobs/<digest>`` answered 200) from offset
        ``since`` (a ``sync_log()`` return value) up to now."""
        until = self.sync_log()
        text = (self.directory / "registry.log").read_bytes()[since:until].decode(errors="replace")
        counts: dict[str, int] = {}
        for m in re.finditer(r'"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" 200 ', text):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return counts

    def log_size(self) -> int:
        """The log's offset after every request answered so far (see ``sync_log``)."""
        return self.sync_log()


@dataclass
class Fleet:
    main: LoggingRegistry
    locked: rs.RegistryServer
    layout: Path
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # reference -> manifest (the truth)
    broken_digest: str = ""

    @property
    def refs(self) -> list[str]:
        """What the tests audit: the whole main registry, the image behind auth, a tag that does not exist."""
        return [self.main.host, f"{self.locked.host}/{SECURE}", f"{self.main.host}/team/api:missing"]

    def ref(self, name: str) -> str:
        return f"{self.main.host}/{name}"

    @property
    def main_refs(self) -> list[str]:
        return [r for r in self.manifests if r.startswith(self.main.host + "/")]

    def layer_digests(self, refs: list[str]) -> set[str]:
        return {x["digest"] for r in refs for x in self.manifests[r]["layers"]}

    def stop(self) -> None:
        self.main.stop()
        self.locked.stop()


def _manifest(layout: Path, tag: str) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_text())
    desc = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)
    return json.loads((layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes())


def _push(src: str, dest: str, creds: str | None) -> None:
    """``skopeo copy``, tried again when it fails: a busy machine (other suites pushing at the same time)
    is not what this file tests. The last failure is raised with skopeo's own words."""
    for attempt in range(3):
        try:
            rs.skopeo_copy(src, dest, creds=creds)
            return
        except RuntimeError:
            if attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))


def _build(root: Path) -> Fleet:
    nonce = os.urandom(8).hex().encode()  # fresh blobs: skopeo's blob cache never substitutes old ones
    bases = base_layers(nonce)
    layout = root / "layout"
    pushes: list[tuple[str, str, str | None]] = []  # (layout tag, destination, creds)
    main = LoggingRegistry(root / "main").start()
    locked = rs.RegistryServer(root / "locked", htpasswd={CREDS[0]: CREDS[1]}).start()
    fleet = Fleet(main, locked, layout)
    try:
        for repo, tags in FLEET.items():
            for tag, names in tags.items():
                app = rs.layer_tar({f"app/{repo}/{tag}.txt": f"{repo}:{tag}\n".encode() + nonce,
                              "etc/os-release": b"ID=app\n"})  # overwrites the base's: waste in the os layer
                lt = f"{repo.replace('/', '-')}-{tag}"
                rs.umoci_image(layout, lt, [bases[n] for n in names] + [app])
                pushes.append((lt, f"{main.host}/{repo}:{tag}", None))
        pushes.append((f"{ALIAS[0].replace('/', '-')}-{ALIAS[2]}", f"{main.host}/{ALIAS[0]}:{ALIAS[1]}", None))
        broken_app = rs.layer_tar({"app/broken.bin": os.urandom(30_000)})
        rs.umoci_image(layout, "broken", [bases["os"], broken_app])
        pushes.append(("broken", f"{main.host}/{BROKEN}", None))
        rs.umoci_image(layout, "secure", [bases["os"], bases["py"], rs.layer_tar({"app/secret.txt": nonce})])
        pushes.append(("secure", f"{locked.host}/{SECURE}", ":".join(CREDS)))
        # One repository's tags one after another (the registry answers 500 to concurrent first pushes into
        # a new repository), repositories side by side.
        by_repo: dict[str, list[tuple[str, str, str | None]]] = {}
        for push in pushes:
            by_repo.setdefault(push[1].rsplit(":", 1)[0], []).append(push)

        def push_all(group: list[tuple[str, str, str | None]]) -> None:
            for lt, dest, creds in group:
                _push(f"oci:{layout}:{lt}", f"docker://{dest}", creds)

        with ThreadPoolExecutor(3) as ex:
            list(ex.map(push_all, by_repo.values()))
        for lt, dest, _ in pushes:
            fleet.manifests[dest] = _manifest(layout, lt)
        # Corrupt the broken image's own layer where the registry keeps it (same size, other bytes).
        digest = fleet.manifests[f"{main.host}/{BROKEN}"]["layers"][-1]["digest"]
        hexpart = digest.split(":")[1]
        data = root / "main" / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"
        size = data.stat().st_size
        data.write_bytes(os.urandom(size))
        fleet.broken_digest = digest
    except BaseException:
        fleet.stop()
        raise
    return fleet


@dataclass
class Baseline:
    """The default audit of the fleet (local process pool) on a fresh cache of its own, and what it left:
    the progress events it sent, its cache directory, the registry's count of blob downloads, its time."""

    audit: FleetAudit
    events: list[tuple[str, dict[str, Any]]]
    cache: Path
    blob_gets: dict[str, int]
    elapsed: float


_FLEET: Fleet | None = None
_BASELINE: Baseline | None = None


def fleet_once(factory: pytest.TempPathFactory) -> Fleet:
    """The fleet, built once per test session (shared with test_fleet_dask)."""
    global _FLEET
    if _FLEET is None:
        _FLEET = _build(factory.mktemp("fleet"))
    return _FLEET


def baseline_once(fleet: Fleet, factory: pytest.TempPathFactory) -> Baseline:
    """The default audit, run once per session by whichever test asks first (so no test depends on
    another having run): an empty cache, no docker credentials, no insecure registries configured."""
    global _BASELINE
    if _BASELINE is None:
        root = factory.mktemp("fleet-baseline")
        events: list[tuple[str, dict[str, Any]]] = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("OCILENS_CACHE_DIR", str(root / "cache"))
            mp.setenv("DOCKER_CONFIG", str(root / "docker"))
            mp.delenv("OCILENS_INSECURE_REGISTRIES", raising=False)
            since = fleet.main.log_size()
            t = time.perf_counter()
            a = audit(fleet.refs, progress=lambda e, **kw: events.append((e, kw)), page_size=3)
            elapsed = time.perf_counter() - t
            gets = fleet.main.blob_gets(since)
        _BASELINE = Baseline(a, events, root / "cache", gets, elapsed)
    return _BASELINE


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = fleet_once(tmp_path_factory)
    yield f
    f.stop()


@pytest.fixture(scope="session")
def baseline(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    return baseline_once(fleet, tmp_path_factory)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache per test, and a docker config without credentials unless the test writes one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(cache))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("OCILENS_INSECURE_REGISTRIES", raising=False)
    return cache


def comparable(a: FleetAudit) -> dict[str, pd.DataFrame]:
    """The frames without the columns that say where and when the work ran."""
    return {"images": a.images, "layers": a.layers.drop(columns=list(RUN_COLUMNS)), "events": a.events,
            "errors": a.errors}


def assert_same_audit(a: FleetAudit, b: FleetAudit) -> None:
    for name, frame in comparable(a).items():
        pd.testing.assert_frame_equal(frame, comparable(b)[name], obj=name)


# --- the audit -------------------------------------------------------------------------------------------

def test_process_pool_audit(fleet: Fleet, baseline: Baseline) -> None:
    """The default executor: every distinct layer scanned once, downloaded once; failures are rows."""
    a, events, elapsed = baseline.audit, baseline.events, baseline.elapsed
    assert a.executor == "process"

    main_refs = fleet.main_refs
    truth = fleet.layer_digests(main_refs)
    assert len(main_refs) == 22  # 21 good (one an alias of another) and the broken one
    assert list(a.images["reference"]) == sorted(main_refs, key=lambda r: (r.split("/", 1)[1].rsplit(":", 1)[0],
                                                                           r.rsplit(":", 1)[1])) + fleet.refs[1:]
    # Each distinct layer digest of the manifests: scanned exactly once (ours) and fetched exactly once (theirs).
    assert set(a.layers["digest"]) == truth and len(a.layers) == len(truth)
    assert a.scanned_layers == len(truth) and a.cached_layers == 0 and a.failed_layers == 1
    assert a.layers["status"].value_counts().to_dict() == {"scanned": len(truth) - 1, "failed": 1}
    gets = baseline.blob_gets
    assert {d: n for d, n in gets.items() if d in truth} == {d: 1 for d in truth}
    # Sharing, as the manifests say.
    users = {d: sum(any(x["digest"] == d for x in fleet.manifests[r]["layers"]) for r in main_refs) for d in truth}
    assert dict(zip(a.layers["digest"], a.layers["images"])) == users
    assert a.layers["images"].max() == 20  # the os layer (in every image but team/web:4 and team/worker:4)
    assert (cache_scans := list((baseline.cache / "scans").rglob("*.pickle"))) and len(cache_scans) == len(truth) - 1

    # Failures: one row each, on the image that has them and nowhere else.
    errors = a.errors.set_index("reference")
    assert sorted(errors.index) == sorted([fleet.ref(BROKEN), fleet.refs[1], fleet.refs[2]])
    broken = errors.loc[fleet.ref(BROKEN)]
    assert broken["stage"] == "scan" and broken["digest"] == fleet.broken_digest and broken["layer"] == 1
    # A blob whose bytes are not its digest's: the layer cannot be read (as ocilens.load says, checked below).
    assert broken["error_type"] in ("DigestMismatch", "LayerDecodeError") and fleet.broken_digest in broken["message"]
    assert (errors.loc[fleet.refs[1], "stage"], errors.loc[fleet.refs[1], "error_type"]) == ("resolve",
                                                                                          "AuthenticationError")
    assert (errors.loc[fleet.refs[2], "stage"], errors.loc[fleet.refs[2], "error_type"]) == ("resolve",
                                                                                          "RegistryNotFound")
    images = a.images.set_index("reference")
    assert images["error"].notna().sum() == 3
    assert images.loc[fleet.ref(BROKEN), "digest"] is not pd.NA  # resolved, then its layer failed
    ok = images[images["error"].isna()]
    assert len(ok) == 21 and (ok["wasted_bytes"] > 0).sum() == 19  # web:4 and worker:4 stack nothing wasteful
    assert set(a.events["image"].cat.categories) == set(ok.index)
    assert images.loc[fleet.ref("team/api:5"), "digest"] == images.loc[fleet.ref("team/api:6"), "digest"]
    # The causes the bases were built to make, as the top cause of the images that stack them so.
    assert images.loc[fleet.ref("team/api:4"), "top_cause"] == "deleted_later"
    assert images.loc[fleet.ref("team/web:1"), "top_cause"] in ("overwritten", "metadata_only")
    assert (a.layers.set_index("digest")["wasted_bytes"] >= 0).all()
    assert a.layers["wasted_bytes"].sum() == ok["wasted_bytes"].sum()  # every lost byte is some layer's

    # Progress: the fleet events, and the single-load events the front ends draw.
    kinds = [e for e, _ in events]
    assert kinds[0] == "resolve" and kinds[-2:] == ["done", "fleet_done"]
    assert kinds.count("fleet_layer_done") == kinds.count("layer_done") == len(truth)
    image_done = [kw for e, kw in events if e == "fleet_image_done"]
    assert len(image_done) == len(a.images) and image_done[-1]["done"] == len(a.images)
    assert sum(1 for kw in image_done if kw["error"]) == 3
    start = next(kw for e, kw in events if e == "fleet_start")
    assert start == {"images": len(a.images), "layers": len(truth), "todo": len(truth), "cached": 0,
                     "bytes": int(a.layers["compressed_size"].sum())}
    assert elapsed < 30


def test_each_image_equals_load(fleet: Fleet, baseline: Baseline) -> None:
    """Every audited image's row and events are what ``ocilens.load`` of that image alone gives."""
    a = baseline.audit
    rows = a.images.set_index("reference")
    for ref in fleet.main_refs:
        if ref == fleet.ref(BROKEN):
            with pytest.raises((DigestMismatch, LayerDecodeError)) as failed:
                ocilens.load(ref, cache=False, progress=False)
            assert type(failed.value).__name__ == rows.loc[ref, "error_type"]
            continue
        img = ocilens.load(ref, cache=False, progress=False)
        row = rows.loc[ref]
        s = img.bloat().summary()
        for k, v in s.items():
            assert row[k] == pytest.approx(v), (ref, k)
        assert row["digest"] == img.manifest_digest and row["image_id"] == img.image_id
        assert row["platform"] == str(img.platform) and row["layers"] == len(img.scans)
        assert row["compressed_size"] == img.layers["compressed_size"].sum()
        assert row["uncompressed_size"] == img.layers["uncompressed_size"].sum()
        by = img.bloat().by_cause
        if by.empty:
            assert row[["top_cause", "top_cause_layer", "top_cause_bytes"]].isna().all()
        else:
            top = by.iloc[0]
            assert (row["top_cause"], row["top_cause_layer"], row["top_cause_bytes"]) == (
                top["cause"], top["by_layer"], top["bytes"])
        advice = img.bloat().advice  # the fixes: the first, and the download they would all save
        assert row["advice_download_bytes"] == int(advice["download_bytes_saved"].sum())
        if advice.empty:
            assert row[["top_fix_kind", "top_fix", "top_fix_download_bytes"]].isna().all()
        else:
            assert (row["top_fix_kind"], row["top_fix"], row["top_fix_download_bytes"]) == (
                advice["kind"].iloc[0], advice["fix"].iloc[0], advice["download_bytes_saved"].iloc[0])
        mine = a.events[a.events["image"] == ref].drop(columns="image").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, img.events, obj=ref)
        img.close()
    with pytest.raises(AuthenticationError):
        ocilens.load(fleet.refs[1], progress=False)
    with pytest.raises(RegistryNotFound):
        ocilens.load(fleet.refs[2], progress=False)


def test_second_audit_scans_nothing_new(fleet: Fleet, baseline: Baseline, isolated: Path) -> None:
    """With the scan cache filled, only the broken layer (never cached) is tried again."""
    assert not isolated.exists()  # this test's own cache: empty, so the first audit fills it
    first = audit(fleet.refs, executor="thread", progress=False)
    assert first.cached_layers == 0
    since = fleet.main.log_size()
    again = audit(fleet.refs, progress=False)
    assert again.scanned_layers == 1 and again.failed_layers == 1
    assert again.cached_layers == len(again.layers) - 1
    # No blob but the broken one was fetched again: the registry's log, complete up to a sentinel request
    # sent after the audit, says so.
    assert set(fleet.main.blob_gets(since)) <= {fleet.broken_digest}
    assert_same_audit(first, again)
    assert_same_audit(first, baseline.audit)  # threads and processes agree


def test_credentials_and_cross_registry_sharing(fleet: Fleet) -> None:
    """With credentials the image behind auth is audited too; the base layers it shares with the other
    registry's images are still scanned once."""
    refs = [fleet.ref("team/api:1"), fleet.ref("team/api:3"), fleet.refs[1]]
    a = audit(refs, executor="thread", progress=False, auth=CREDS)
    assert a.errors.empty and a.images["error"].isna().all()
    truth = fleet.layer_digests(refs)
    assert len(truth) == 6 and a.scanned_layers == 6 and set(a.layers["digest"]) == truth
    by = a.layers.set_index("digest")
    os_layer = fleet.manifests[refs[2]]["layers"][0]["digest"]
    assert by.loc[os_layer, "images"] == 3 and by.loc[os_layer, "repositories"] == 2
    img = ocilens.load(refs[2], cache=False, progress=False, auth=CREDS)
    mine = a.events[a.events["image"] == refs[2]].drop(columns="image").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, img.events)


def test_credentials_from_docker_config_reach_the_workers(fleet: Fleet, tmp_path: Path) -> None:
    """Worker processes find the credentials where docker keeps them, as a single load does."""
    auth = base64.b64encode(":".join(CREDS).encode()).decode()
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {fleet.locked.host: {"auth": auth}}}))
    a = audit([fleet.refs[1], fleet.ref("base/os:1")], executor="process", workers=2, progress=False)
    assert a.errors.empty and a.scanned_layers == len(fleet.layer_digests([fleet.refs[1], fleet.ref("base/os:1")]))
    assert a.executor == "process"


# --- enumeration ------------------------------------------------------------------------------------------

def test_catalog_and_tags_are_paginated(fleet: Fleet) -> None:
    repos = sorted({r.split("/", 1)[1].rsplit(":", 1)[0] for r in fleet.main_refs})
    with RegistryClient(fleet.main.host) as client:
        assert client.catalog() == repos
        assert client.catalog(page_size=1) == repos  # one page per repository, by Link headers
        # distribution 2.8 answers tags/list whole (n is ignored, no Link); the pages follow the catalog's path
        assert sorted(client.tags("team/api", page_size=2)) == ["1", "2", "3", "4", "5", "6"]
        with pytest.raises(RegistryNotFound):
            client.tags("no/such", page_size=2)
    with RegistryClient(fleet.locked.host, auth=CREDS) as client:
        assert client.catalog(page_size=1) == ["secure/app"]
        assert client.tags("secure/app") == ["1"]
    assert sorted(expand(fleet.main.host, page_size=2).references) == sorted(fleet.main_refs)
    got = expand([fleet.ref("team/web"), fleet.ref("team/web:2"), f"{fleet.locked.host}/"])
    assert got.references == [fleet.ref(f"team/web:{t}") for t in "12345"]
    assert len(got.errors) == 1 and got.errors[0][:2] == (f"{fleet.locked.host}/", "AuthenticationError")


def test_classify() -> None:
    assert classify("127.0.0.1:5000").kind == "registry"
    assert classify("registry.example.com").kind == "registry"
    assert classify("localhost:5000").kind == "registry"
    assert classify("myregistry:5000/").kind == "registry"
    assert classify("127.0.0.1:5000/team/api").kind == "repository"
    assert classify("docker://127.0.0.1:5000/team/api").repository == "team/api"
    assert classify("127.0.0.1:5000/team/api:1").kind == "image"
    assert classify("127.0.0.1:5000/team/api@sha256:" + "a" * 64).kind == "image"
    assert classify("alpine").kind == "image" and classify("alpine:3.19").kind == "image"
    assert classify("oci:/some/layout").kind == "layout" and classify("oci:/some/layout:tag").kind == "image"


def test_layout_targets_expand_to_every_tag(fleet: Fleet) -> None:
    got = expand(f"oci:{fleet.layout}")
    assert len(got.references) == 22 and all(r.startswith(f"oci:{fleet.layout}:") for r in got.references)
    a = audit([f"oci:{fleet.layout}:team-api-1", f"oci:{fleet.layout}:team-api-2", fleet.ref("team/api:1")],
              executor="thread", progress=False)
    # A layer is a layer wherever it comes from: the layout and the registry share every scan.
    assert a.errors.empty and a.scanned_layers == len(fleet.layer_digests([fleet.ref("team/api:1"),
                                                                           fleet.ref("team/api:2")]))
    assert set(a.layers["repositories"]) <= {1, 2}


# --- reports -----------------------------------------------------------------------------------------------

def test_cli_audit(fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ocilens.cli import main

    html, js, csv = tmp_path / "fleet.html", tmp_path / "fleet.json", tmp_path / "csv"
    code = main(["audit", fleet.ref("team/api"), fleet.ref(BROKEN), "--executor", "thread", "--html", str(html),
                 "--json", str(js), "--csv", str(csv)])
    out = capsys.readouterr().out
    assert code == 0
    assert "6 of 7 images audited" in out
    assert f"{fleet.ref(BROKEN)}: scan: " in out
    doc = json.loads(js.read_text())
    assert doc["schema"] == "ocilens.audit/v1" and doc["summary"]["images"] == 7
    assert [r["reference"] for r in doc["images"]][:6] == [fleet.ref(f"team/api:{t}") for t in "123456"]
    assert {p.name for p in csv.iterdir()} == {"images.csv", "layers.csv", "events.csv", "errors.csv"}
    events = pd.read_csv(csv / "events.csv")
    assert set(events["image"]) == {fleet.ref(f"team/api:{t}") for t in "123456"}
    page = html.read_text()
    for title in ("Wasted bytes per image", "Most shared layers", "Layers carrying the most waste", "Errors"):
        assert f"<h2>{title}</h2>" in page
    assert page.count("<svg") == 3 and "<script" not in page
    capsys.readouterr()
    assert main(["audit", fleet.ref(BROKEN), "--executor", "thread", "--fail-on-error"]) == 2  # none audited
    out = capsys.readouterr().out
    assert "0 of 1 images audited" in out and "no waste figures" in out and "efficiency" not in out
    assert "the rest of the fleet" not in out
    assert main(["audit", fleet.ref("base/os:1"), fleet.ref(BROKEN), "--executor", "thread",
                 "--fail-on-error"]) == 1


def test_charts_and_report(fleet: Fleet, baseline: Baseline) -> None:
    from matplotlib.figure import Figure

    a = baseline.audit
    ax = a.plot.wasted_per_image(ax=Figure().subplots(), top=10)
    assert len(ax.patches) == 20  # visible and wasted, for ten images
    ax = a.plot.shared_layers(ax=Figure().subplots(), top=5)
    assert [int(p.get_width()) for p in ax.patches][-1] == a.layers["images"].max()
    ax = a.plot.layer_waste(ax=Figure().subplots(), top=3)
    assert [int(p.get_width()) for p in ax.patches][-1] == a.layers["wasted_bytes"].max()
    html = a.report().html
    assert html.startswith("<!DOCTYPE html>") and "team/api:4" in html and "<h2>Errors</h2>" in html
    assert "<svg" in a._repr_html_()
    s = a.summary()
    assert s["distinct_layers"] < s["layer_references"] and s["compressed_bytes"] > s["distinct_compressed_bytes"]
    assert "FleetAudit 24 images (3 failed)" in repr(a)
    img = a.image(fleet.ref("team/api:1"))
    assert img.bloat().wasted_bytes == a.images.set_index("reference").loc[fleet.ref("team/api:1"), "wasted_bytes"]


def test_text_progress(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    audit([fleet.ref("base/os:1"), fleet.ref(BROKEN)], executor="thread", progress="text")
    err = capsys.readouterr().err
    assert "images" in err and "ocilens: fleet of 2 images (1 of 2 failed):" in err


def test_bad_arguments(fleet: Fleet) -> None:
    with pytest.raises(ocilens.UsageError):
        audit([fleet.ref("base/os:1")], executor=42, progress=False)
    with pytest.raises(ocilens.UsageError):
        audit([fleet.ref("base/os:1")], workers=0, progress=False)
    with pytest.raises(ocilens.UsageError):  # an httpx transport cannot travel to worker processes
        import httpx
        audit([fleet.ref("base/os:1"), fleet.ref("base/os:2")], executor="process", progress=False,
              transport=httpx.HTTPTransport())
    with pytest.raises(TypeError):
        audit([fleet.ref("base/os:1"), 3], progress=False)  # type: ignore[list-item]
    empty = audit([], progress=False)
    assert empty.images.empty and empty.layers.empty and empty.events.empty and list(empty.events.columns)[0] == "image"

