"""Rules that several modules need, each defined once: path normalization (``ocilens.paths``), the package
files the scan keeps (``ocilens.packages.capture``, from each ecosystem's ``CAPTURE``), the registry host
grammar and docker's short names (``ocilens.reference``), the registry options (``ocilens.sources``)."""

from __future__ import annotations

import ast
import inspect
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ocilens
from ocilens.packages import apk, dpkg, npm, python, rpm
from ocilens.packages.base import join
from ocilens.packages.capture import CAPTURES, PATTERN, PREFIXES, SUFFIXES, captures
from ocilens.packages.model import READERS
from ocilens.paths import normalize_path, normalize_paths, split_path
from ocilens.reference import familiar_name, is_registry_host, split_host_port
from ocilens.registry.hosts import is_loopback

PACKAGE = Path(ocilens.__file__).parent


# ------------------------------------------------------------------------------------------------ paths

def _names(n: int, seed: int = 0) -> list[str]:
    pieces = ["a", "b", ".", "..", "/", "//", "./", ".wh.", "x/", "\udcff", "é"]
    rnd = random.Random(seed)
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 9))) for _ in range(n)]


def test_the_quick_case_is_the_rule() -> None:
    """``normalize_paths`` answers most names without ``split_path``; its answer is always the rule's."""
    names = _names(50_000)
    paths, odd = normalize_paths(names)
    for k, name in enumerate(names):
        parts, climbed = split_path(name[2:] if name.startswith("./") else name)
        assert paths[k] == "/" + "/".join(parts), name
        assert odd.get(k, False) == climbed, name
        assert (k in odd) == (climbed or name.startswith("/")), name
        assert normalize_path(name) == (paths[k], climbed)
        assert normalize_path(name.encode("utf-8", "surrogateescape")) == (paths[k], climbed)


@pytest.mark.parametrize("name,path,escaped", [
    ("usr/bin/", "/usr/bin", False), ("./usr//bin/./x", "/usr/bin/x", False), ("/abs/x", "/abs/x", False),
    ("a/../../etc", "/etc", True), ("", "/", False), ("./", "/", False), ("..", "/", True), ("/", "/", False),
])
def test_normalize_path(name: str, path: str, escaped: bool) -> None:
    assert normalize_path(name) == (path, escaped)


def test_join_is_the_same_rule() -> None:
    rnd = random.Random(1)
    for rel in _names(20_000, seed=2):
        site = "/" + "/".join(rnd.choice(["usr", "lib", "python3", "a.b"]) for _ in range(rnd.randrange(0, 4)))
        expected = normalize_path(rel if rel.startswith("/") else site + "/" + rel)[0]
        assert join(site, rel) == expected, (site, rel)


# ---------------------------------------------------------------------------------------------- captures

CAPTURED = [
    "/var/lib/dpkg/status", "/var/lib/dpkg/status.d/base-files", "/var/lib/dpkg/info/libc6:amd64.list",
    "/lib/apk/db/installed", "/usr/lib/apk/db/installed",
    "/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite-wal",
    "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD",
    "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
    "/usr/lib/python3/dist-packages/x.egg-info", "/usr/lib/python3/dist-packages/x.egg-info/PKG-INFO",
    "/usr/lib/python3/dist-packages/x.egg-info/installed-files.txt",
    "/usr/lib/python3/dist-packages/x.egg-info/SOURCES.txt", "/usr/lib/python3/dist-packages/x.egg-info/top_level.txt",
    "/app/node_modules/left-pad/package.json", "/app/node_modules/@scope/name/package.json",
    "/app/node_modules/a/node_modules/b/package.json",
]
NOT_CAPTURED = [
    "/var/lib/dpkg/info/libc6.md5sums", "/var/lib/dpkg/info/sub/x.list", "/var/lib/dpkg/status-old",
    "/var/lib/dpkg/status.d/a/b", "/etc/status", "/lib/apk/db/installed.bak", "/opt/lib/apk/db/installed",
    "/var/lib/rpm/Packages", "/usr/share/rpmdb.sqlite", "/x.dist-info/LICENSE",
    "/usr/lib/python3/x.dist-info/INSTALLER", "/usr/lib/python3/x.egg-info/requires.txt", "/app/package.json",
    "/app/node_modules/package.json", "/app/node_modules/@scope/package.json/x", "/usr/share/doc/a.list.gz",
]


@pytest.mark.parametrize("path", CAPTURED)
def test_captured(path: str) -> None:
    assert captures(path)
    assert path.endswith(SUFFIXES) or path.startswith(PREFIXES), "the cheap test must pass what the pattern takes"


@pytest.mark.parametrize("path", NOT_CAPTURED)
def test_not_captured(path: str) -> None:
    assert not captures(path)


def test_each_reader_owns_its_pattern() -> None:
    assert CAPTURES == {"dpkg": dpkg.CAPTURE, "apk": apk.CAPTURE, "rpm": rpm.CAPTURE, "python": python.CAPTURE,
                        "npm": npm.CAPTURE}
    for eco, capture in CAPTURES.items():
        own = re.compile(capture.pattern)
        for path in CAPTURED:
            if own.fullmatch(path):  # each ecosystem's cheap test passes what its own pattern takes
                assert path.endswith(capture.suffixes) or path.startswith(capture.prefixes), (eco, path)
            if READERS[eco].is_database(path):  # what the reader reads, the scan keeps
                assert own.fullmatch(path), (eco, path)
    assert all(PATTERN.fullmatch(p) for p in CAPTURED)


def test_the_scan_imports_no_pandas_for_its_patterns() -> None:
    code = ("import sys, ocilens.scan; "
            "print(sorted(m for m in ('pandas', 'numpy', 'sqlite3', 'ocilens.packages.model') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_packages_namespace_still_offers_everything() -> None:
    import ocilens.packages as packages

    for name in packages.__all__:
        assert getattr(packages, name) is not None, name
    assert set(packages.__all__) <= set(dir(packages))


# ------------------------------------------------------------------------------------------ references

@pytest.mark.parametrize("text,expected", [
    ("host:5000", ("host", 5000)), ("[::1]:5000", ("::1", 5000)), ("[::1]", ("::1", None)), ("h", ("h", None)),
    ("ghcr.io", ("ghcr.io", None)), ("127.0.0.1:5000", ("127.0.0.1", 5000)), ("localhost", ("localhost", None)),
])
def test_split_host_port(text: str, expected: tuple) -> None:
    assert split_host_port(text) == expected


def test_loopback_uses_the_grammar() -> None:
    assert is_loopback("[::1]:5000") and is_loopback("localhost:5000") and is_loopback("127.0.0.2")
    assert not is_loopback("ghcr.io") and not is_loopback("[::2]:5000")


@pytest.mark.parametrize("text,registry", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("[::1]:5000", True),
    ("registry.example.com", True), ("my-registry.example:443", True),
    ("alpine", False), ("alpine:3.19", False), ("myhost:5000", False), ("a.b:tag", False), ("-bad.com", False),
])
def test_is_registry_host(text: str, registry: bool) -> None:
    assert is_registry_host(text) is registry


@pytest.mark.parametrize("spellings,short", [
    (("alpine", "alpine:latest", "library/alpine", "docker.io/library/alpine:latest",
      "index.docker.io/library/alpine"), "alpine:latest"),
    (("user/app:1", "docker.io/user/app:1", "index.docker.io/user/app:1"), "user/app:1"),
    (("example.com/extra:2",), "example.com/extra:2"),
    (("localhost:5000/a/b:c",), "localhost:5000/a/b:c"),
])
def test_familiar_name(spellings: tuple[str, ...], short: str) -> None:
    assert {familiar_name(s) for s in spellings} == {short}


def test_familiar_name_of_no_reference_is_the_text() -> None:
    assert familiar_name("Not A Reference") == "Not A Reference"


# ------------------------------------------------------------------------------------------ options

def test_client_options_are_the_clients_keywords() -> None:
    from ocilens.fleet import refs
    from ocilens.registry.client import RegistryClient
    from ocilens.sources import CLIENT_OPTIONS, REGISTRY_OPTIONS

    params = inspect.signature(RegistryClient.__init__).parameters
    assert set(CLIENT_OPTIONS) == {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - {"max_connections"}
    assert set(CLIENT_OPTIONS) <= set(REGISTRY_OPTIONS)
    assert refs.CLIENT_OPTIONS is CLIENT_OPTIONS


# ------------------------------------------------------------------------------------------ modules

def test_no_module_imports_a_private_name_of_another() -> None:
    found = []
    for f in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                found += [f"{f.relative_to(PACKAGE)}: from {'.' * node.level}{node.module or ''} import {a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "make them public in their home module:\n" + "\n".join(found)
