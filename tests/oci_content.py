"""Test helpers: OCI content written by hand into a layout (indexes, artifacts, attestations) and pushed,
byte for byte, to a real registry through the distribution API (``skopeo copy --all`` refuses an index
inside an index, so nested indexes are pushed this way).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def write_blob(layout: Path, blob: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    """Store ``blob`` under ``blobs/sha256``; its descriptor (``extra``: platform, annotations, artifactType, data)."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / sha(blob).split(":")[1]).write_bytes(blob)
    return {"mediaType": media_type, "digest": sha(blob), "size": len(blob), **extra}


def read_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def write_index(layout: Path, entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An image index blob over ``entries``; its descriptor."""
    return write_blob(layout, dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}), OCI_INDEX,
                      **extra)


def index_json(layout: Path) -> dict[str, Any]:
    return json.loads((layout / "index.json").read_text())


def tagged(layout: Path, tag: str) -> dict[str, Any]:
    """The index.json entry named ``tag``."""
    return next(m for m in index_json(layout)["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag)


def tag(layout: Path, desc: dict[str, Any], name: str | None) -> None:
    """Add ``desc`` to index.json, named ``name`` (untagged when None)."""
    index = index_json(layout)
    entry = {k: v for k, v in desc.items() if k != "annotations"}
    if name is not None:
        entry["annotations"] = {REF_NAME: name}
    index["manifests"].append(entry)
    (layout / "index.json").write_text(json.dumps(index))


# --- the registry API ------------------------------------------------------------------------------------

def push_blob(client: httpx.Client, repo: str, data: bytes) -> None:
    """A monolithic upload: POST for a session, PUT with the digest."""
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    done = client.put(f"{location}{'&' if '?' in location else '?'}digest={sha(data)}", content=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text


def put_manifest(client: httpx.Client, repo: str, ref: str, raw: bytes, media_type: str) -> httpx.Response:
    """PUT a manifest or index as these bytes (the registry answers 201, or says why not)."""
    return client.put(f"/v2/{repo}/manifests/{ref}", content=raw, headers={"Content-Type": media_type})


def push_tree(client: httpx.Client, layout: Path, repo: str, desc: dict[str, Any]) -> httpx.Response:
    """Push what ``desc`` names in ``layout`` (children first: blobs, manifests, nested indexes) by digest."""
    raw = read_blob(layout, desc["digest"])
    obj = json.loads(raw)
    media_type = obj.get("mediaType") or desc["mediaType"]
    if media_type in INDEX_TYPES:
        for child in obj["manifests"]:
            answer = push_tree(client, layout, repo, child)
            assert answer.status_code == 201, answer.text
    else:
        for blob in [obj["config"], *obj["layers"]]:
            push_blob(client, repo, read_blob(layout, blob["digest"]))
    return put_manifest(client, repo, desc["digest"], raw, media_type)


def push_tag(host: str, layout: Path, name: str, repo: str, ref: str) -> httpx.Response:
    """Push the layout's tag ``name`` as ``repo:ref``, every byte as the layout holds it."""
    desc = tagged(layout, name)
    with httpx.Client(base_url=f"http://{host}", timeout=30) as client:
        answer = push_tree(client, layout, repo, desc)
        if answer.status_code != 201:
            return answer
        raw = read_blob(layout, desc["digest"])
        return put_manifest(client, repo, ref, raw, json.loads(raw).get("mediaType") or desc["mediaType"])
