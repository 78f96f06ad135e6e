"""The cache CLI's functions: listing what the registry source cached, pruning by age and by size."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ocilens.cache import BlobStore
from ocilens.cache_cli import list_cache, parse_age, parse_size, prune_cache
from ocilens.errors import UsageError as CacheArgumentError
from ocilens.digest import digest_bytes


def put(store: BlobStore, data: bytes, age: float = 0.0) -> str:
    digest = digest_bytes(data)
    writer = store.writer(digest)
    writer.write(data)
    path = writer.commit()
    then = time.time() - age
    os.utime(path, (then, then))
    return digest


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BlobStore:
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    return BlobStore()


def test_list_and_prune(store: BlobStore, tmp_path: Path) -> None:
    old = put(store, b"\x1f\x8b" + b"old" * 1000, age=40 * 86400)
    mid = put(store, b'{"schemaVersion": 2}', age=5 * 86400)
    new = put(store, b"\x28\xb5\x2f\xfd" + b"new" * 2000)
    stale = store.root / "sha256" / ".abc.partial"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = store.root / "sha256" / ".def.partial"
    fresh.write_bytes(b"downloading")

    rows = {r["digest"] or r["path"]: r for r in list_cache()}
    assert rows[old]["content"] == "gzip" and rows[mid]["content"] == "json" and rows[new]["content"] == "zstd"
    assert rows[str(stale)]["kind"] == "partial" and rows[old]["size"] == 3002

    removed = prune_cache(older_than="30d", dry_run=True)
    assert {r["digest"] for r in removed} == {old, None} and store.has(old)
    removed = prune_cache(older_than=timedelta(days=30))
    assert {r["digest"] for r in removed} == {old, None}
    assert not store.has(old) and not stale.exists() and fresh.exists() and store.has(mid)

    removed = prune_cache(keep="6010B")  # least recently used first until <= 6010 bytes
    assert [r["digest"] for r in removed] == [mid] and store.has(new)
    assert {r["digest"] for r in prune_cache()} == {new} and fresh.exists()


def test_parse_arguments() -> None:
    assert parse_size("2GiB") == 2 * 1024**3 and parse_size("500MB") == 500_000_000 and parse_size(7) == 7
    assert parse_age("12h") == 43200 and parse_age("2w") == 14 * 86400 and parse_age(5) == 5.0
    with pytest.raises(CacheArgumentError):
        parse_size("lots")
    with pytest.raises(CacheArgumentError):
        parse_age("yesterday")


@pytest.mark.parametrize("kwargs,needle", [
    ({"older_than": -5}, "older_than must be 0 or more"),
    ({"older_than": timedelta(days=-1)}, "older_than must be 0 or more"),
    ({"older_than": float("nan")}, "older_than must be 0 or more"),
    ({"older_than": [1]}, "older_than must be a timedelta"),
    ({"older_than": True}, "older_than must be a timedelta"),
    ({"older_than": "-5d"}, "as an age"),
    ({"keep": -1}, "keep must be 0 or more"),
    ({"keep": float("-inf")}, "keep must be a finite number"),
    ({"keep": [1]}, "keep must be a number of bytes"),
    ({"keep": "-5GB"}, "not a size"),
    ({"older_than": "30d", "keep": -1}, "keep must be 0 or more"),
])
def test_prune_refuses_bad_values_before_removing(store: BlobStore, kwargs: dict, needle: str) -> None:
    """A negative age or size selected every entry, and a list was a raw TypeError; now nothing is removed."""
    digests = [put(store, b"a" * 100, age=40 * 86400), put(store, b"b" * 100)]
    with pytest.raises(CacheArgumentError, match=needle):
        prune_cache(**kwargs)
    assert all(store.has(d) for d in digests)
    assert {r["digest"] for r in prune_cache(older_than=0, keep=0, dry_run=True)} == set(digests)


def test_prune_checks_values_on_an_empty_cache(store: BlobStore) -> None:
    """The age was parsed per entry, so an empty cache accepted any value."""
    assert list_cache() == []
    with pytest.raises(CacheArgumentError, match="as an age"):
        prune_cache(older_than="garbage")
    with pytest.raises(CacheArgumentError, match="not a size"):
        prune_cache(keep="lots")
