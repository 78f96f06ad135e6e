"""RegistrySource against a real registry (CNCF distribution): anonymous, htpasswd basic auth, token auth.

Images are built with umoci, pushed with skopeo (gzip, zstd, Docker v2s2, a two-platform index, and the
bundled sample); what ocilens pulls is checked against what skopeo and the layout say.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import zstandard

from ocilens.cache import BlobStore
import ocilens
from ocilens.errors import (AuthenticationError, DigestMismatch, ImageNotFound, RegistryNotFound,
                            RegistryUnavailable)
from ocilens.manifest import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor
from ocilens.platform import Platform, host_platform
from ocilens.sources.registry import RegistrySource

try:
    from . import registry_server as rs
except ImportError:
    import registry_server as rs

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "ocilens" / "_sample"


@dataclass
class Images:
    layout: Path
    tars: dict[str, list[bytes]]  # uncompressed layer tars by tag, as written


Registry = rs.Registry


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    """A layout with ``app`` (amd64, 3 layers, one 1.5 MB), ``arm`` (arm64), ``zimg`` and index ``multi``.

    Every blob carries a fresh nonce so skopeo's blob cache never substitutes an old one.
    """
    root = tmp_path_factory.mktemp("registry-images")
    layout = root / "layout"
    nonce = os.urandom(16).hex().encode()
    tars = {
        "app": [rs.layer_tar({"etc/os-release": b"ID=ocilens-test\n", "etc/nonce": nonce,
                              "usr/bin/tool": b"#!/bin/sh\necho hi\n" * 200}),
                rs.layer_tar({"opt/big.bin": os.urandom(1_500_000)}),
                rs.layer_tar({"etc/motd": b"hello\n" + nonce}, whiteouts=["usr/bin/tool"])],
        "arm": [rs.layer_tar({"etc/arch": b"arm64\n" + nonce})],
        "zimg": [rs.layer_tar({"opt/z.bin": os.urandom(200_000) + nonce, "etc/z": b"zstd" * 5000})],
    }
    rs.umoci_image(layout, "app", tars["app"], arch="amd64")
    rs.umoci_image(layout, "arm", tars["arm"], arch="arm64")
    rs.umoci_image(layout, "zimg", tars["zimg"], arch=host_platform().architecture)
    rs.add_index(layout, "multi", ["app", "arm"])
    return Images(layout, tars)


@pytest.fixture(scope="session")
def anon(tmp_path_factory: pytest.TempPathFactory, images: Images) -> Iterator[Registry]:
    """An anonymous registry holding team/zimg:1 (zstd), team/app:1, team/app-docker:1 (v2s2),
    team/multi:1 (two platforms) and library/sample:1 (the bundled sample)."""
    with rs.RegistryServer(tmp_path_factory.mktemp("anon")) as server:
        L = images.layout
        rs.skopeo_copy(f"oci:{L}:zimg", f"docker://{server.host}/team/zimg:1", compress="zstd")  # zstd first
        rs.skopeo_copy(f"oci:{L}:app", f"docker://{server.host}/team/app:1")
        rs.skopeo_copy(f"oci:{L}:app", f"docker://{server.host}/team/app-docker:1", fmt="v2s2")
        rs.skopeo_copy(f"oci:{L}:multi", f"docker://{server.host}/team/multi:1", all_images=True)
        rs.skopeo_copy(f"oci:{SAMPLE}:sample", f"docker://{server.host}/library/sample:1")
        yield Registry(server)


@pytest.fixture(scope="session")
def basic(tmp_path_factory: pytest.TempPathFactory, images: Images) -> Iterator[Registry]:
    """A registry with htpasswd basic auth (bob / s3cret) holding team/app:1."""
    with rs.RegistryServer(tmp_path_factory.mktemp("basic"), htpasswd={"bob": "s3cret"}) as server:
        rs.skopeo_copy(f"oci:{images.layout}:app", f"docker://{server.host}/team/app:1", creds="bob:s3cret")
        yield Registry(server)


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory, images: Images) -> Iterator[Registry]:
    """A registry with ``auth: token`` trusting our token service; private/app:1 and public/app:1."""
    tok = rs.TokenServer(tmp_path_factory.mktemp("token-service")).start()
    try:
        with rs.RegistryServer(tmp_path_factory.mktemp("token"), token=tok) as server:
            for repo in ("private/app:1", "public/app:1"):
                rs.skopeo_copy(f"oci:{images.layout}:app", f"docker://{server.host}/{repo}", creds="alice:wonderland")
            yield Registry(server, tok)
    finally:
        tok.stop()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BlobStore:
    """A fresh cache per test, and a docker config that is empty unless the test writes one."""
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("OCILENS_INSECURE_REGISTRIES", raising=False)
    return BlobStore()


def skopeo_raw(ref: str, creds: str | None = None) -> bytes:
    """The manifest bytes skopeo sees (the independent truth for digests)."""
    cmd = ["skopeo", "inspect", "--raw", "--tls-verify=false"] + (["--creds", creds] if creds else []) + [f"docker://{ref}"]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def layout_manifest(layout: Path, tag: str) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_text())
    name = "org.opencontainers.image.ref.name"
    desc = next(m for m in index["manifests"] if m.get("annotations", {}).get(name) == tag)
    return json.loads((layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes())


def layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def read_all(src: RegistrySource, desc: Descriptor) -> bytes:
    with src.open_blob(desc) as stream:
        return stream.read()


def partials(store: BlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.name.endswith(".partial")] if store.root.exists() else []


# --- anonymous -----------------------------------------------------------------------------------------

def test_pull_gzip_image(anon: Registry, images: Images, isolated: BlobStore) -> None:
    with RegistrySource(f"{anon.host}/team/app:1") as src:
        manifest = src.resolve()
        raw = skopeo_raw(f"{anon.host}/team/app:1")
        assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest() == src.digest
        assert manifest.raw == raw
        truth = layout_manifest(images.layout, "app")
        assert [x.digest for x in manifest.layers] == [x["digest"] for x in truth["layers"]]
        assert manifest.media_type == OCI_MANIFEST
        for layer in manifest.layers:
            assert read_all(src, layer) == layout_blob(images.layout, layer.digest)
            assert isolated.has(layer.digest)
        config = json.loads(src.read_blob(manifest.config))
        assert (config["os"], config["architecture"]) == ("linux", "amd64")
        assert src.platforms() == [Platform("linux", "amd64")]
    assert partials(isolated) == []
    assert sorted(d for d, _ in isolated.entries()) == sorted(
        {manifest.digest, manifest.config.digest, *(x.digest for x in manifest.layers)})


def test_progress_and_cache_hits(anon: Registry) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    with RegistrySource(f"{anon.host}/team/app:1", progress=lambda e, **kw: events.append((e, kw))) as src:
        big = max(src.resolve().layers, key=lambda d: d.size)
        read_all(src, big)
        done = [kw["done"] for e, kw in events if e == "download" and kw["digest"] == big.digest]
        assert done == sorted(done) and done[-1] == big.size and len(done) > 1
        assert all(kw["total"] == big.size for e, kw in events if e == "download")
        events.clear()
        assert read_all(src, big) and events == [("cached", {"digest": big.digest, "total": big.size})]


def test_docker_v2s2_manifest(anon: Registry, images: Images) -> None:
    with RegistrySource(f"docker://{anon.host}/team/app-docker:1") as src:
        manifest = src.resolve()
        assert manifest.media_type == DOCKER_MANIFEST
        assert all(x.media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip" for x in manifest.layers)
        assert manifest.digest == "sha256:" + hashlib.sha256(skopeo_raw(f"{anon.host}/team/app-docker:1")).hexdigest()
        for layer in manifest.layers:
            assert read_all(src, layer) == layout_blob(images.layout, layer.digest)


def test_zstd_layers(anon: Registry, images: Images) -> None:
    with RegistrySource(f"{anon.host}/team/zimg:1") as src:
        manifest = src.resolve()
        assert [x.media_type for x in manifest.layers] == ["application/vnd.oci.image.layer.v1.tar+zstd"]
        blob = read_all(src, manifest.layers[0])
        assert blob[:4] == b"\x28\xb5\x2f\xfd"
        out = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
        assert out == images.tars["zimg"][0]


def test_index_platforms(anon: Registry, images: Images) -> None:
    ref = f"{anon.host}/team/multi:1"
    assert ocilens.platforms(ref) == [Platform("linux", "amd64"), Platform("linux", "arm64")]
    with RegistrySource(ref) as src:
        arm = src.resolve("linux/arm64")
        assert [x.digest for x in arm.layers] == [x["digest"] for x in layout_manifest(images.layout, "arm")["layers"]]
        amd = src.resolve(Platform.parse("linux/amd64"))
        assert [x.digest for x in amd.layers] == [x["digest"] for x in layout_manifest(images.layout, "app")["layers"]]
        if host_platform().architecture in ("amd64", "arm64"):
            assert src.resolve().digest == (amd if host_platform().architecture == "amd64" else arm).digest
        with pytest.raises(ImageNotFound) as info:
            src.resolve("linux/s390x")
        assert "linux/amd64" in str(info.value) and "linux/arm64" in str(info.value)


def test_pull_by_digest_then_offline(anon: Registry, isolated: BlobStore) -> None:
    with RegistrySource(f"{anon.host}/team/multi:1") as src:
        index_digest = src._top_manifest()[2]
    ref = f"{anon.host}/team/multi@{index_digest}"
    with RegistrySource(ref) as src:
        manifest = src.resolve("linux/arm64")
        src.prefetch([manifest.config, *manifest.layers])
    # The same image by digest from a registry that is not there: everything comes from the cache.
    dead = f"127.0.0.1:{rs.free_port()}/team/multi@{index_digest}"
    with RegistrySource(dead) as offline:
        again = offline.resolve("linux/arm64")
        assert again.digest == manifest.digest
        assert [read_all(offline, x) for x in again.layers]
        assert offline._client is None  # no connection was even attempted
    with RegistrySource(f"127.0.0.1:{rs.free_port()}/team/multi:1") as by_tag, pytest.raises(RegistryUnavailable):
        by_tag.resolve()  # a tag can move: it always asks the registry


def _corrupt(path: Path) -> None:
    """Flip bytes in the middle of a cached blob, keeping its size (as a torn write or a disk fault would)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def test_a_corrupt_cached_blob_is_fetched_again(anon: Registry, images: Images, isolated: BlobStore) -> None:
    """A layer whose cached copy went bad is removed from the cache and read again from the registry: the
    analysis succeeds and the cache holds the registry's bytes again."""
    ref = f"{anon.host}/team/app:1"
    first = ocilens.load(ref, progress=False, cache=False)
    big = max(first.manifest.layers, key=lambda d: d.size)
    config = first.manifest.config
    _corrupt(isolated.path(big.digest))
    _corrupt(isolated.path(config.digest))
    again = ocilens.load(ref, progress=False, cache=False)  # no scan cache: the layer blobs are read
    assert again.files.equals(first.files) and again.config == first.config
    for d in (big, config):
        assert isolated.path(d.digest).read_bytes() == layout_blob(images.layout, d.digest)


def test_a_corrupt_cached_blob_with_the_registry_gone(anon: Registry, isolated: BlobStore) -> None:
    """Offline, the corrupt copy is still removed, and the error says the registry could not be reached,
    with the digest mismatch that sent it there as its context."""
    with RegistrySource(f"{anon.host}/team/multi:1") as src:
        index_digest = src._top_manifest()[2]
    ref = f"{anon.host}/team/multi@{index_digest}"
    first = ocilens.load(ref, platform="linux/arm64", progress=False, cache=False)
    big = max(first.manifest.layers, key=lambda d: d.size)
    _corrupt(isolated.path(big.digest))
    dead = f"127.0.0.1:{rs.free_port()}/team/multi@{index_digest}"
    with pytest.raises(RegistryUnavailable) as info:
        ocilens.load(dead, platform="linux/arm64", progress=False, cache=False)
    assert isinstance(info.value.__context__, DigestMismatch)
    assert info.value.__context__.evicted and big.digest in str(info.value.__context__)
    assert not isolated.has(big.digest)


def test_bundled_sample(anon: Registry) -> None:
    truth = layout_manifest(SAMPLE, "sample")
    with RegistrySource(f"{anon.host}/library/sample:1") as src:
        manifest = src.resolve()
        assert [x.digest for x in manifest.layers] == [x["digest"] for x in truth["layers"]]
        src.prefetch(manifest.layers)
        for layer in manifest.layers:
            assert read_all(src, layer) == layout_blob(SAMPLE, layer.digest)


def test_localhost_name(anon: Registry) -> None:
    with RegistrySource(f"localhost:{anon.server.port}/team/app:1") as src:
        assert src.resolve().layers


def test_prefetch_parallel(anon: Registry, isolated: BlobStore) -> None:
    with RegistrySource(f"{anon.host}/team/app:1", max_workers=3) as src:
        manifest = src.resolve()
        descs = [manifest.config, *manifest.layers, *manifest.layers]
        paths = src.prefetch(descs)
        assert len(paths) == 4 and all(p.is_file() for p in paths)
        for desc, path in zip([manifest.config, *manifest.layers], paths, strict=True):
            assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == desc.digest


def test_not_found_errors(anon: Registry) -> None:
    with RegistrySource(f"{anon.host}/team/app:nope") as src, pytest.raises(RegistryNotFound) as info:
        src.resolve()
    err = info.value
    assert err.status == 404 and "MANIFEST_UNKNOWN" in err.codes
    assert "MANIFEST_UNKNOWN" in str(err) and f"{anon.host}/team/app:nope" in str(err)
    assert err.url == f"http://{anon.host}/v2/team/app/manifests/nope" and err.url in str(err)
    with RegistrySource(f"{anon.host}/team/ghost:1") as src, pytest.raises(RegistryNotFound) as info:
        src.resolve()
    assert "NAME_UNKNOWN" in info.value.codes or "MANIFEST_UNKNOWN" in info.value.codes
    with RegistrySource(f"{anon.host}/team/app:1") as src, pytest.raises(RegistryNotFound) as info:
        read_all(src, Descriptor("application/octet-stream", "sha256:" + "0" * 64, 10))
    assert "BLOB_UNKNOWN" in info.value.codes


def test_registry_down() -> None:
    with RegistrySource(f"127.0.0.1:{rs.free_port()}/team/app:1") as src, pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    assert "cannot connect" in str(info.value) and "127.0.0.1" in str(info.value)


def test_tls_required_when_not_insecure(anon: Registry) -> None:
    with RegistrySource(f"{anon.host}/team/app:1", insecure=False) as src, pytest.raises(RegistryUnavailable) as info:
        src.resolve()
    assert "TLS" in str(info.value) and "insecure=True" in str(info.value)


# --- htpasswd basic auth -------------------------------------------------------------------------------

def test_basic_auth(basic: Registry, images: Images) -> None:
    with RegistrySource(f"{basic.host}/team/app:1", auth=("bob", "s3cret")) as src:
        manifest = src.resolve()
        big = max(manifest.layers, key=lambda d: d.size)
        assert read_all(src, big) == layout_blob(images.layout, big.digest)


def test_basic_auth_missing_or_wrong(basic: Registry) -> None:
    with RegistrySource(f"{basic.host}/team/app:1") as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert info.value.status == 401 and "needs credentials" in str(info.value)
    assert info.value.url and info.value.url in str(info.value)
    with RegistrySource(f"{basic.host}/team/app:1", auth=("bob", "wrong")) as src, \
            pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert "rejected" in str(info.value) and "UNAUTHORIZED" in info.value.codes


def write_docker_config(obj: dict[str, Any]) -> None:
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_basic_auth_from_docker_config(basic: Registry) -> None:
    write_docker_config({"auths": {f"http://{basic.host}/v2/": {"auth": base64.b64encode(b"bob:s3cret").decode()}}})
    with RegistrySource(f"{basic.host}/team/app:1") as src:
        assert src.resolve().layers


def test_basic_auth_from_credential_helper(basic: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-ocilenstest"
    helper.write_text(f"""#!/bin/sh
read server
if [ "$1" = get ] && [ "$server" = "{basic.host}" ]; then
  echo '{{"ServerURL": "{basic.host}", "Username": "bob", "Secret": "s3cret"}}'
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
""")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    write_docker_config({"auths": {basic.host: {"auth": base64.b64encode(b"bob:wrong").decode()}},
                         "credHelpers": {basic.host: "ocilenstest"}})
    with RegistrySource(f"{basic.host}/team/app:1") as src:
        assert src.resolve().layers  # the helper wins over auths, as in docker


def test_missing_creds_store_is_named(basic: Registry) -> None:
    write_docker_config({"credsStore": "ocilens-does-not-exist"})
    with RegistrySource(f"{basic.host}/team/app:1") as src, pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert "docker-credential-ocilens-does-not-exist" in str(info.value)


# --- token auth ----------------------------------------------------------------------------------------

def test_token_auth(token: Registry, images: Images) -> None:
    assert token.token is not None
    token.token.requests.clear()
    with RegistrySource(f"{token.host}/private/app:1", auth=("alice", "wonderland"), max_workers=3) as src:
        manifest = src.resolve()
        src.prefetch(manifest.layers)  # three threads, one token
        big = max(manifest.layers, key=lambda d: d.size)
        assert read_all(src, big) == layout_blob(images.layout, big.digest)
    assert token.token.requests == [("alice", ["repository:private/app:pull"])]


def test_token_anonymous(token: Registry) -> None:
    with RegistrySource(f"{token.host}/public/app:1") as src:
        assert src.resolve().layers
    with RegistrySource(f"{token.host}/private/app:1") as src, pytest.raises(RegistryNotFound) as info:
        src.resolve()
    assert "not found or needs authentication" in str(info.value) and info.value.status == 401


def test_token_wrong_password(token: Registry) -> None:
    with RegistrySource(f"{token.host}/private/app:1", auth=("alice", "nope")) as src, \
            pytest.raises(AuthenticationError) as info:
        src.resolve()
    assert "rejected" in str(info.value) and "invalid username or password" in str(info.value)


def test_token_access_token_field(token: Registry) -> None:
    assert token.token is not None
    token.token.token_field = "access_token"
    try:
        with RegistrySource(f"{token.host}/private/app:1", auth=("alice", "wonderland")) as src:
            assert src.resolve().layers
    finally:
        token.token.token_field = "token"
