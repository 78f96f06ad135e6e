"""Faults a real registry cannot make on demand, injected by a loopback proxy in front of a real one.

Each test asserts the outcome: resumed and verified, retried, or a clean typed error with nothing cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from ocilens.cache import BlobStore
from ocilens.errors import DigestMismatch, RateLimited, RegistryUnavailable
from ocilens.manifest import Descriptor, ImageManifest
from ocilens.registry import RetryPolicy
from ocilens.sources.registry import RegistrySource

try:
    from . import registry_server as rs
except ImportError:
    import registry_server as rs

REPO = Path(__file__).resolve().parent.parent
BIG = 2_000_000


@dataclass
class Upstream:
    server: rs.RegistryServer
    layout: Path
    ref_path: str = "team/app:1"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A real anonymous registry holding team/app:1: a small layer and a 2 MB incompressible one."""
    root = tmp_path_factory.mktemp("faults")
    layout = root / "layout"
    rs.umoci_image(layout, "app", [rs.layer_tar({"etc/hello": b"hello " + os.urandom(8).hex().encode()}),
                                   rs.layer_tar({"opt/big.bin": os.urandom(BIG)})])
    with rs.RegistryServer(root / "registry") as server:
        rs.skopeo_copy(f"oci:{layout}:app", f"docker://{server.host}/team/app:1")
        yield Upstream(server, layout)


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[rs.FaultProxy]:
    with rs.FaultProxy(upstream.server.url) as p:
        yield p


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BlobStore:
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return BlobStore()


class Waits(list[float]):
    """A RetryPolicy.sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def source(proxy: rs.FaultProxy, waits: Waits | None = None, **policy: int) -> RegistrySource:
    retry = RetryPolicy(sleep=waits if waits is not None else Waits(), **policy)  # type: ignore[arg-type]
    return RegistrySource(f"{proxy.host}/team/app:1", retry=retry)


def big_layer(manifest: ImageManifest) -> Descriptor:
    return max(manifest.layers, key=lambda d: d.size)


def truth(upstream: Upstream, digest: str) -> bytes:
    return (upstream.layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def read_all(src: RegistrySource, desc: Descriptor) -> bytes:
    with src.open_blob(desc) as stream:
        return stream.read()


def nothing_cached(store: BlobStore, digest: str) -> bool:
    leftovers = [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []
    return not store.has(digest) and not [p for p in leftovers if p.name.endswith(".partial")]


def test_cut_mid_blob_is_resumed_with_range(proxy: rs.FaultProxy, upstream: Upstream, store: BlobStore) -> None:
    with source(proxy) as src:
        layer = big_layer(src.resolve())
        proxy.plan[f"/blobs/{layer.digest}"] = ["cut:300000", "cut:500000"]
        assert read_all(src, layer) == truth(upstream, layer.digest)
    ranges = [h.get("Range") for m, p, h in proxy.requests if p.endswith(f"/blobs/{layer.digest}")]
    assert len(ranges) == 3 and ranges[0] is None
    # each resume starts at the first byte not received (all that arrived before the cut is kept)
    first, second = (int(r.removeprefix("bytes=").removesuffix("-")) for r in ranges[1:])
    assert 0 < first <= 300_000 and first < second <= first + 500_000
    assert store.has(layer.digest)
    assert hashlib.sha256(store.path(layer.digest).read_bytes()).hexdigest() == layer.digest.split(":")[1]


def test_short_body_is_resumed(proxy: rs.FaultProxy, upstream: Upstream, store: BlobStore) -> None:
    with source(proxy) as src:
        layer = big_layer(src.resolve())
        proxy.plan[f"/blobs/{layer.digest}"] = ["short:123456"]
        assert read_all(src, layer) == truth(upstream, layer.digest)
    assert store.has(layer.digest)


def test_cut_every_time_fails_cleanly(proxy: rs.FaultProxy, store: BlobStore) -> None:
    waits = Waits()
    with source(proxy, waits, resumes=2) as src:
        layer = big_layer(src.resolve())
        proxy.plan[f"/blobs/{layer.digest}"] = ["cut:1000"] * 10
        with pytest.raises(RegistryUnavailable) as info:
            read_all(src, layer)
    assert "broke 3 times" in str(info.value) and "3000 of" in str(info.value)
    assert len(waits) == 2
    assert nothing_cached(store, layer.digest)


def test_429_with_retry_after_is_retried(proxy: rs.FaultProxy) -> None:
    waits = Waits()
    proxy.plan["/manifests/1"] = ["status:429:1"]
    with source(proxy, waits) as src:
        assert src.resolve().layers
    assert waits == [1.0]


def test_429_beyond_budget(proxy: rs.FaultProxy) -> None:
    waits = Waits()
    proxy.plan["/manifests/1"] = ["status:429:0"] * 5
    with source(proxy, waits, attempts=3) as src, pytest.raises(RateLimited) as info:
        src.resolve()
    err = info.value
    assert err.status == 429 and err.codes == ("TOOMANYREQUESTS",) and "TOOMANYREQUESTS" in str(err)
    assert err.url == f"http://{proxy.host}/v2/team/app/manifests/1" and err.url in str(err)
    assert f"{proxy.host}/team/app:1" in str(err)
    assert waits == [0.0, 0.0]


def test_retry_after_beyond_limit_is_not_waited_for(proxy: rs.FaultProxy) -> None:
    waits = Waits()
    proxy.plan["/manifests/1"] = ["status:429:3600"]
    with source(proxy, waits) as src, pytest.raises(RateLimited):
        src.resolve()
    assert waits == []


def test_503_burst_is_retried_with_backoff(proxy: rs.FaultProxy, upstream: Upstream) -> None:
    waits = Waits()
    with source(proxy, waits) as src:
        layer = big_layer(src.resolve())
        proxy.plan[f"/blobs/{layer.digest}"] = ["status:503", "status:502", "status:503"]
        assert read_all(src, layer) == truth(upstream, layer.digest)
    assert waits == [0.5, 1.0, 2.0]


def test_503_beyond_budget(proxy: rs.FaultProxy, store: BlobStore) -> None:
    waits = Waits()
    with source(proxy, waits, attempts=4) as src:
        layer = big_layer(src.resolve())
        proxy.plan[f"/blobs/{layer.digest}"] = ["status:503"] * 10
        with pytest.raises(RegistryUnavailable) as info:
            read_all(src, layer)
    assert info.value.status == 503 and "UNAVAILABLE" in str(info.value) and layer.digest in str(info.value)
    assert waits == [0.5, 1.0, 2.0]
    assert nothing_cached(store, layer.digest)


def test_flipped_byte_raises_and_caches_nothing(proxy: rs.FaultProxy, upstream: Upstream, store: BlobStore) -> None:
    with source(proxy) as src:
        layer = big_layer(src.resolve())
        proxy.plan[f"/blobs/{layer.digest}"] = ["flip:777777"]
        with pytest.raises(DigestMismatch) as info:
            read_all(src, layer)
        assert info.value.digest == layer.digest and info.value.actual != layer.digest
        assert info.value.reference == f"{proxy.host}/team/app:1"
        assert nothing_cached(store, layer.digest)
        assert read_all(src, layer) == truth(upstream, layer.digest)  # the next try is clean
    assert store.has(layer.digest)


def test_manifest_whose_digest_lies(proxy: rs.FaultProxy, store: BlobStore) -> None:
    proxy.plan["/manifests/1"] = ["edit"]
    with source(proxy) as src, pytest.raises(DigestMismatch) as info:
        src.resolve()
    assert "Docker-Content-Digest" in str(info.value)
    assert f"http://{proxy.host}/v2/team/app/manifests/1" in str(info.value)
    with source(proxy) as src:
        digest = src.resolve().digest
    assert digest is not None
    store.path(digest).unlink()
    proxy.plan[f"/manifests/{digest}"] = ["edit"]
    with RegistrySource(f"{proxy.host}/team/app@{digest}") as src, pytest.raises(DigestMismatch) as info:
        src.resolve()
    assert "asked for by" in str(info.value)
    assert not store.has(digest)


def test_corrupt_cache_entry_is_evicted(proxy: rs.FaultProxy, upstream: Upstream, store: BlobStore) -> None:
    with source(proxy) as src:
        layer = big_layer(src.resolve())
        src.prefetch([layer])
        path = store.path(layer.digest)
        data = bytearray(path.read_bytes())
        data[1000] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(DigestMismatch):
            read_all(src, layer)
        assert not path.exists()
        assert read_all(src, layer) == truth(upstream, layer.digest)


PULL = """
import sys
from ocilens.sources.registry import RegistrySource
with RegistrySource(sys.argv[1]) as src:
    m = src.resolve()
    src.prefetch([m.config, *m.layers])
print("pulled")
"""


def test_two_processes_pull_the_same_blob(proxy: rs.FaultProxy, upstream: Upstream, store: BlobStore,
                                          tmp_path: Path) -> None:
    with source(proxy) as src:
        manifest = src.resolve()
    layer = big_layer(manifest)
    store.path(layer.digest).unlink(missing_ok=True)
    # both downloads of the big blob are held until both have asked: they really overlap
    proxy.plan[f"/blobs/{layer.digest}"] = ["hold:2", "hold:2"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", PULL, f"{proxy.host}/team/app:1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    blob_gets = [p for m, p, h in proxy.requests if p.endswith(f"/blobs/{layer.digest}")]
    assert len(blob_gets) == 2
    files = sorted(p for p in store.root.rglob("*") if p.is_file())
    assert [p.name for p in files if p.name.startswith(".")] == []  # no temp files left behind
    entries = dict(store.entries())
    expected = {manifest.digest, manifest.config.digest, *(x.digest for x in manifest.layers)}
    assert set(entries) == expected
    for digest in expected:
        assert "sha256:" + hashlib.sha256(store.path(digest).read_bytes()).hexdigest() == digest
    assert store.path(layer.digest).read_bytes() == truth(upstream, layer.digest)
    assert json.loads(store.path(manifest.digest).read_bytes())["layers"]
