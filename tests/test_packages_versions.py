"""Version orders, each checked against its ecosystem's own implementation: ``dpkg --compare-versions``,
rpm's ``rpm.vercmp`` (rpmvercmp on epoch:version-release), npm's own ``semver`` package, ``packaging``
(PEP 440; also the built-in fallback used without it). apk has no tool on Debian: the cases are apk's
documented rules (pre-release suffixes before the release, post-release ones after, then ``-rN``)."""

from __future__ import annotations

import json
import os
import subprocess
from itertools import combinations

import pytest
from packaging.version import Version

from imagebuild import run
from ocilens.packages import compare_versions
from ocilens.packages.base import generic_compare
from ocilens.packages.python import _pep440_key

DPKG = ["1.0", "1.0~rc1", "1.0~~", "1.0~", "1.0-1", "1:0.9", "0:1.0", "1.0-1+b1", "1.0+dfsg", "1.0a", "1.0.0",
        "2.36-9+deb12u1", "2.36-9", "1.2.3", "1.10", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+b1", "10", "9", "1.001",
        "1.0-rc1", "2.0-1ubuntu1", "9.2-1", "9.10-1", "1.0~rc1-1", "1.0-0", "a", "b", "1.0+", "1.0.", "1.0-1~bpo1"]
RPM = ["1.0", "2.0", "2.0.1", "1.0~rc1", "1.0^git1", "1.0.1", "1.0a", "5.5p1", "5.5p10", "10xyz", "10.1xyz",
       "xyz10", "xyz10.1", "1.0010", "1.9", "1.05", "1.5", "1", "2_0", "a", "1.0-1", "1.0-2", "1:1.0-1", "2.0-1",
       "2.0~beta1-1", "2:2.0~beta1-1", "1.0~rc1~git1", "1.0~~", "1.0~", "1.0^", "1.0^^", "1.0.0.0", "0:1.0-1"]
SEMVER = ["1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
          "1.0.0-rc.1", "1.0.0+build.5", "2.0.0", "1.10.0", "1.9.0", "0.0.1", "1.0.0-0", "1.0.0-alpha.10",
          "10.0.0", "1.0.1-rc.1"]
PEP440 = ["1.0", "1.0.0", "1.0a1", "1.0b2", "1.0rc1", "1.0.post1", "1.0.dev1", "1.0a1.dev1", "1!0.5", "1.0+local.1",
          "1.0+local.a", "1.0+2", "2.0", "1.10", "1.9", "0.9.post2.dev3", "1.0c1", "1.0-1", "1.0.post1.dev1",
          "3.7", "3.6", "1.0rc1.post1"]


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def test_dpkg_order_is_dpkgs() -> None:
    for a, b in combinations(DPKG, 2):
        want = next(c for op, c in (("lt", -1), ("eq", 0), ("gt", 1))
                    if subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0)
        assert compare_versions("dpkg", a, b) == want, (a, b)


def test_rpm_order_is_rpms() -> None:
    pairs = list(combinations(RPM, 2))
    lua = ("for _, p in ipairs({" + ",".join(f'{{"{a}","{b}"}}' for a, b in pairs)
           + "}) do print(rpm.vercmp(p[1], p[2]) .. ' ') end")
    out = run("rpm", "--eval", f"%{{lua: {lua}}}").split()  # rpm's lua print() adds no newline
    assert len(out) == len(pairs)
    for (a, b), want in zip(pairs, out):
        assert compare_versions("rpm", a, b) == sign(int(want)), (a, b)


def test_npm_order_is_semvers() -> None:
    pairs = list(combinations(SEMVER, 2))
    script = ("const s = require('semver');"
              f"console.log(JSON.stringify({json.dumps(pairs)}.map(([a, b]) => s.compare(a, b))))")
    # npm's own copy of semver: beside npm (nodesource's and npm's layout), or Debian's /usr/share/nodejs
    npm_root = run("npm", "root", "-g").strip()
    node_path = ":".join([f"{npm_root}/npm/node_modules", "/usr/lib/node_modules/npm/node_modules",
                          "/usr/share/nodejs"])
    proc = subprocess.run(["node", "-e", script], capture_output=True, text=True,
                          env={**os.environ, "NODE_PATH": node_path})
    assert proc.returncode == 0, proc.stderr
    want = json.loads(proc.stdout)
    for (a, b), w in zip(pairs, want):
        assert compare_versions("npm", a, b) == w, (a, b)


def test_python_order_is_pep440() -> None:
    for a, b in combinations(PEP440, 2):
        va, vb = Version(a), Version(b)
        want = (va > vb) - (va < vb)
        assert compare_versions("python", a, b) == want, (a, b)
        ka, kb = _pep440_key(a), _pep440_key(b)  # the fallback without packaging agrees
        assert (ka > kb) - (ka < kb) == want, (a, b)


@pytest.mark.parametrize("a, b", [
    ("1.0_alpha1", "1.0"), ("1.0_alpha1", "1.0_beta1"), ("1.0_beta2", "1.0_rc1"), ("1.0_pre1", "1.0_rc1"),
    ("1.0", "1.0_p1"), ("1.0", "1.0_git20230101"), ("1.0_cvs1", "1.0_p1"), ("1.0", "1.0-r1"), ("1.0-r1", "1.0-r2"),
    ("1.0-r9", "1.0-r10"), ("1.0", "1.0a"), ("1.0a", "1.0b"), ("1.2.9", "1.2.10"), ("1.2", "1.2.1"),
    ("1.3.1-r0", "1.3.1-r1"), ("1.2.4-r5", "1.2.4_git20230717-r4"), ("1.0_rc1-r3", "1.0-r0"),
])
def test_apk_order(a: str, b: str) -> None:
    assert compare_versions("apk", a, b) == -1
    assert compare_versions("apk", b, a) == 1
    assert compare_versions("apk", a, a) == 0


def test_generic_order_for_unparsable_versions() -> None:
    assert compare_versions("npm", "latest", "next") == -1  # neither is semver: text order
    assert compare_versions("npm", "1.2", "1.10") == -1  # not semver, numbers still compare as numbers
    assert generic_compare("1.0~rc1", "1.0") == -1
    assert generic_compare("1.0.1", "1.0a") == 1
    assert generic_compare("1.0", "1.0.0") == -1
