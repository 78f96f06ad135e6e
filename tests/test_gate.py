"""The CI gate (issue 4, part 4): ``ocilens check REF`` exit codes (0 pass, 1 a rule failed, 2 could not
analyse or bad configuration), thresholds from the command line and from dive's ``.dive-ci``, human sizes,
the ``--json`` document (schema ``ocilens.check/v1``), and ``--numbers dive|ocilens``.

The small images' numbers are worked out here from their construction (docs/layer-rules.md "dive's
numbers" and "Waste"), and the exit codes are also compared with the real ``dive`` in CI mode on the same images.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ocilens
from imagebuild import Entry, layout_from_tars, tar_layer, to_archive
from ocilens.gate import SCHEMA, check, parse_size, read_dive_ci

RULES = ["lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent", "highestDownloadSavings"]


def F(name: str, n: int, seed: str = "") -> Entry:
    unit = (seed or name).encode() + b"."
    return Entry.file(name, (unit * (n // len(unit) + 1))[:n])


# name -> (layers, dive's numbers, ocilens's numbers), each (efficiency, wasted bytes, user wasted percent)
IMAGES: dict[str, tuple[list[list[Entry]], tuple[float, int, float], tuple[float, int, float]]] = {
    # dive: /big 1000, /f 100 + 150 -> 1100 / 1250; waste 250 (both copies of /f); user bytes 150
    # ours: shipped 1250, visible 1150, waste 100
    "overwrite": ([[F("big", 1000), F("f", 100, "a")], [F("f", 150, "b")]],
                  (1100 / 1250, 250, 250 / 150), (1150 / 1250, 100, 100 / 150)),
    # dive's blind spot: rm -rf /data is not waste. ours: 3000 bytes deleted; user bytes 50
    "deleted_dir": ([[Entry.dir("data"), F("data/a", 1000), F("data/b", 2000), F("x", 100)],
                     [Entry.whiteout("data"), F("y", 50)]],
                    (1.0, 0, 0.0), (150 / 3150, 3000, 3000 / 50)),
    # one layer: no user bytes, no waste: user wasted percent is NaN (0/0)
    "one_layer": ([[F("a", 100)]], (1.0, 0, math.nan), (1.0, 0, math.nan)),
    # layer 1 only removes a file: dive counts /f 100 + 0; user bytes 0 with waste 100: +Inf in dive
    "deleted_file_only": ([[F("big", 10000), F("f", 100)], [Entry.whiteout("f")]],
                          (10000 / 10100, 100, math.inf), (10000 / 10100, 100, math.inf)),
}


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    out = {}
    for name, (layers, _, _) in IMAGES.items():
        layout = layout_from_tars(tmp_path_factory.mktemp(name), [tar_layer(layer) for layer in layers])
        out[name] = (f"oci:{layout}:t", layout)
    return out


def ocilens_check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocilens", "check", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def strict_json(path: Path) -> dict[str, Any]:
    """Parse as strict JSON: NaN and Infinity are not JSON."""
    def bad(token: str) -> None:
        raise AssertionError(f"{path} holds {token}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=bad)


def same(a: float | str | None, b: float) -> bool:
    """``a`` (from JSON) is ``b``: NaN is written as null; +Inf, which JSON cannot hold either, as null or
    a string."""
    if math.isinf(b):
        return a is None or isinstance(a, str) or a == b
    if a is None:
        return math.isnan(b)
    return abs(a - b) <= 1e-12 * max(1.0, abs(b))


# ----------------------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize("name,code", [("overwrite", 1), ("deleted_dir", 0), ("one_layer", 0)])
def test_default_rules(refs, tmp_path: Path, name: str, code: int) -> None:
    """dive's defaults: lowestEfficiency 0.9, highestUserWastedPercent 0.1, highestWastedBytes off; ocilens's
    highestDownloadSavings off."""
    proc = ocilens_check(refs[name][0], "--json", str(tmp_path / "r.json"), cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    doc = strict_json(tmp_path / "r.json")
    assert [(r["name"], r["threshold"], r["source"]) for r in doc["rules"]] == [
        ("lowestEfficiency", 0.9, "default"), ("highestWastedBytes", None, "default"),
        ("highestUserWastedPercent", 0.1, "default"), ("highestDownloadSavings", None, "default")]
    assert doc["rules"][1]["status"] == doc["rules"][3]["status"] == "skip"
    assert doc["passed"] is (code == 0)


def test_one_layer_image_passes_user_wasted_rule(refs, tmp_path: Path) -> None:
    """NaN (no bytes above the base layer) fails no rule, as in dive."""
    proc = ocilens_check(refs["one_layer"][0], "--highest-user-wasted-percent", "0", "--json",
                         str(tmp_path / "r.json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rule = strict_json(tmp_path / "r.json")["rules"][2]
    assert (rule["name"], rule["value"], rule["status"]) == ("highestUserWastedPercent", None, "pass")


@pytest.mark.parametrize("args,numbers,code", [
    # dive: efficiency 0.88, user waste 5/3; ours: efficiency 0.92, user waste 2/3
    (["--lowest-efficiency", "0.88", "--highest-user-wasted-percent", "1"], "dive", 1),
    (["--lowest-efficiency", "0.88", "--highest-user-wasted-percent", "1"], "ocilens", 0),
    (["--lowest-efficiency", "0.89", "--highest-user-wasted-percent", "disabled"], "dive", 1),
    (["--lowest-efficiency", "0.88", "--highest-user-wasted-percent", "disabled"], "dive", 0),  # equal passes
    (["--lowest-efficiency", "0.92", "--highest-user-wasted-percent", "0.66"], "ocilens", 1),
    (["--lowest-efficiency", "0.92", "--highest-user-wasted-percent", "0.67"], "ocilens", 0),
    (["--lowest-efficiency", "0", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "249"], "dive", 1),
    (["--lowest-efficiency", "0", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "250"], "dive", 0),
    (["--lowest-efficiency", "0", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "99B"], "ocilens", 1),
    (["--lowest-efficiency", "0", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "0.1KB"], "ocilens", 0),
])
def test_thresholds(refs, tmp_path: Path, args: list[str], numbers: str, code: int) -> None:
    proc = ocilens_check(refs["overwrite"][0], *args, "--numbers", numbers, cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert ("PASS" if code == 0 else "FAIL") in proc.stdout


@pytest.mark.parametrize("size,code", [("3KB", 0), ("2.9KiB", 1), ("0.003MB", 0), ("2999", 1)])
def test_highest_wasted_bytes_human_sizes(refs, tmp_path: Path, size: str, code: int) -> None:
    """Our numbers on the deleted-directory image: exactly 3000 bytes wasted."""
    proc = ocilens_check(refs["deleted_dir"][0], "--numbers", "ocilens", "--lowest-efficiency", "0",
                         "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", size, cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr


@pytest.mark.parametrize("text,value", [
    ("20MB", 20_000_000), ("20mb", 20_000_000), ("20 MB", 20_000_000), ("20M", 20_000_000),
    ("1.5KiB", 1536), ("1.5 kib", 1536), ("512KiB", 524288), ("1GiB", 1 << 30), ("1.5GB", 1_500_000_000),
    ("1234", 1234), ("1234B", 1234), ("2TB", 2 * 10**12), ("1Ti", 1 << 40), (4096, 4096),
])
def test_parse_size(text: str | int, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "MB", "20 parsecs", "-5MB", "1e3", "twenty"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ocilens.OcilensError):
        parse_size(text)


@pytest.mark.parametrize("text,value", [("1,000", 1000), ("1,500KB", 1_500_000), ("1PB", 10**15)])
def test_parse_size_accepts_what_dive_accepts(text: str, value: int) -> None:
    """dive reads highestWastedBytes with go-humanize's ParseBytes: thousands separators and P/E units."""
    assert parse_size(text) == value


@pytest.mark.parametrize("args,rule", [
    (["--lowest-efficiency", "1.5"], "owest"),
    (["--lowest-efficiency", "nan"], "owest"),
    (["--highest-user-wasted-percent=-0.1"], "ighest"),
    (["--highest-user-wasted-percent", "2"], "ighest"),
])
def test_thresholds_outside_0_1_exit_2(refs, tmp_path: Path, args: list[str], rule: str) -> None:
    proc = ocilens_check(refs["overwrite"][0], *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "between 0 and 1" in proc.stderr and rule in proc.stderr
    assert proc.stdout == ""


def test_threshold_error_names_the_option_given(refs, tmp_path: Path) -> None:
    """The message names the option as the user typed it (``--lowest-efficiency``), not a spelling that
    ``ocilens check`` does not accept (``--lowestEfficiency`` is dive's flag)."""
    proc = ocilens_check(refs["overwrite"][0], "--lowest-efficiency", "1.5", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--lowest-efficiency" in proc.stderr, proc.stderr


def test_bad_size_exit_2(refs, tmp_path: Path) -> None:
    proc = ocilens_check(refs["overwrite"][0], "--highest-wasted-bytes", "20 parsecs", cwd=tmp_path)
    assert proc.returncode == 2
    assert "20 parsecs" in proc.stderr


def test_unreadable_image_exit_2(tmp_path: Path) -> None:
    proc = ocilens_check(f"oci:{tmp_path}/missing:t", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ocilens: error:")


# ------------------------------------------------------------------------------------------- .dive-ci

DIVE_CI_OK = """\
# carried over from dive
rules:
  # If the efficiency is measured below X%, mark as failed.
  lowestEfficiency: 0.88
  highestWastedBytes: 250B   # dive's sizes
  highestUserWastedPercent: disabled
"""


def test_dive_ci_in_cwd_is_read(refs, tmp_path: Path) -> None:
    (tmp_path / ".dive-ci").write_text(DIVE_CI_OK)
    proc = ocilens_check(refs["overwrite"][0], "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = strict_json(tmp_path / "r.json")
    assert [(r["name"], r["threshold"], r["status"], r["source"]) for r in doc["rules"]] == [
        ("lowestEfficiency", 0.88, "pass", ".dive-ci"), ("highestWastedBytes", 250, "pass", ".dive-ci"),
        ("highestUserWastedPercent", None, "skip", ".dive-ci"), ("highestDownloadSavings", None, "skip", "default")]
    # the command line wins over the file
    proc = ocilens_check(refs["overwrite"][0], "--lowest-efficiency", "0.95", "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 1
    rule = strict_json(tmp_path / "r.json")["rules"][0]
    assert (rule["threshold"], rule["status"], rule["source"]) == (0.95, "fail", "cli")


def test_ci_config_option(refs, tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "dive.yaml"
    cfg.parent.mkdir()
    cfg.write_text("rules:\n  lowestEfficiency: 0.89\n  highestUserWastedPercent: disabled\n")
    work = tmp_path / "w"
    work.mkdir()
    assert ocilens_check(refs["overwrite"][0], "--ci-config", str(cfg), cwd=work).returncode == 1
    assert read_dive_ci(cfg) == {"lowestEfficiency": 0.89, "highestUserWastedPercent": None}


@pytest.mark.parametrize("content,line", [
    ("rules:\n  lowestEfficiency: 0.9\n  highestWastedBytes 20MB\n", 3),
    ("rules:\n  lowestEfficiency: abc\n", 2),
    ("rules:\n  lowestEfficiency: 1.5\n", 2),
    ("# c\nrules:\n  highestUserWastedPercent: 0.1\n  highestWastedBytes: 20 parsecs\n", 4),
])
def test_malformed_dive_ci_names_the_line(refs, tmp_path: Path, content: str, line: int) -> None:
    (tmp_path / ".dive-ci").write_text(content)
    proc = ocilens_check(refs["overwrite"][0], cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f".dive-ci:{line}" in proc.stderr, proc.stderr
    with pytest.raises(ocilens.OcilensError) as exc:
        read_dive_ci(tmp_path / ".dive-ci")
    assert f".dive-ci:{line}" in str(exc.value)


def test_dive_ci_with_document_start_marker(refs, tmp_path: Path) -> None:
    """``---`` opens many YAML files (yamllint asks for it); dive reads such a .dive-ci."""
    (tmp_path / ".dive-ci").write_text("---\n" + DIVE_CI_OK)
    proc = ocilens_check(refs["overwrite"][0], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dive_ci_flow_mapping_is_not_silently_ignored(refs, tmp_path: Path) -> None:
    """``rules: {...}`` is YAML dive applies; reading it as 'no rules' would gate on the defaults."""
    (tmp_path / ".dive-ci").write_text("rules: {lowestEfficiency: 0.5, highestUserWastedPercent: disabled}\n")
    proc = ocilens_check(refs["overwrite"][0], "--json", "r.json", cwd=tmp_path)
    if proc.returncode == 2:  # refusing it, naming the line, is acceptable too
        assert ".dive-ci:1" in proc.stderr
        return
    doc = strict_json(tmp_path / "r.json")
    assert [(r["threshold"], r["source"]) for r in doc["rules"]][0] == (0.5, ".dive-ci"), doc["rules"]
    assert proc.returncode == 0


@pytest.mark.parametrize("content", [
    "{rules: {lowestEfficiency: 0.99, highestUserWastedPercent: disabled}}\n",
    '{"rules": {"lowestEfficiency": 0.99, "highestUserWastedPercent": "disabled"}}\n',  # JSON is YAML too
    "---\n{rules: {  # thresholds\n    lowestEfficiency: 0.99,\n    highestUserWastedPercent: disabled,\n}}\n",
    "rules: {lowestEfficiency: 0.99,\n        highestUserWastedPercent: disabled}\n",
    "\ufeffrules:\n  lowestEfficiency: 0.99\n  highestUserWastedPercent: disabled\n",  # a byte order mark
])
def test_dive_ci_top_level_flow_mapping_is_read(refs, tmp_path: Path, content: str) -> None:
    """``{rules: {...}}`` (the review's A2) was read as the key ``{rules`` and skipped: the defaults gated."""
    (tmp_path / ".dive-ci").write_text(content, encoding="utf-8")
    assert read_dive_ci(tmp_path / ".dive-ci") == {"lowestEfficiency": 0.99, "highestUserWastedPercent": None}
    proc = ocilens_check(refs["overwrite"][0], "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 0.88 < 0.99; the default 0.9 would fail too...
    rule = strict_json(tmp_path / "r.json")["rules"][0]
    assert (rule["threshold"], rule["source"]) == (0.99, ".dive-ci")  # ...but this is the file's 0.99


@pytest.mark.parametrize("content,threshold", [
    ('rules:\n  highestWastedBytes: "250B"  # 1#0 is not a comment inside quotes\n', 250),
    ("rules:\n  highestWastedBytes: '2#0B' # a comment\n", None),
    ("rules:\n  highestWastedBytes: 250B#not-a-comment\n", None),  # YAML: '#' needs a blank before it
    ("rules: {highestWastedBytes: \"1#0MB\"}\n", None),
    ("rules:\n  highestWastedBytes: 300B # it's fine: ' in a comment\n", 300),
])
def test_dive_ci_hash_inside_quotes_is_not_a_comment(tmp_path: Path, content: str, threshold: int | None) -> None:
    """``"1#0MB"`` used to become the 1-byte threshold ``"1``; it is a value, and not a size."""
    f = tmp_path / ".dive-ci"
    f.write_text(content)
    if threshold is not None:
        assert read_dive_ci(f) == {"highestWastedBytes": threshold}
        return
    with pytest.raises(ocilens.errors.UsageError, match=r"\.dive-ci:[12]: highestWastedBytes: not a size"):
        read_dive_ci(f)


@pytest.mark.parametrize("content,line", [
    ("{rules: {lowestEfficiency: 0.99}\n", 1),               # never closed
    ("# c\n{rules: {lowestEfficiency: 0.99}} trailing\n", 2),
    ("rules:\n  lowestEfficiency:0.9\n", 2),                  # YAML reads one scalar, not key: value
    ("rules: 0.9\n", 1),
    ("[rules, lowestEfficiency]\n", 1),
    ("rules: {lowestEfficiency: {min: 0.9}}\n", 1),
    ("rules:\n  lowestEfficiency: [0.9]\n", 2),
    ("rules:\n  lowestEfficiency: \"0.9\n", 2),                # a quote never closed
    ("{rules\n", 1),
    ("rules:\n  - lowestEfficiency: 0.9\n", 2),
])
def test_dive_ci_lines_it_cannot_read_are_errors(refs, tmp_path: Path, content: str, line: int) -> None:
    """What is not YAML, or not a mapping of rules to thresholds, is refused with file:line, before the load."""
    (tmp_path / ".dive-ci").write_text(content)
    with pytest.raises(ocilens.OcilensError, match=rf"\.dive-ci:{line}"):
        read_dive_ci(tmp_path / ".dive-ci")
    proc = ocilens_check(f"oci:{tmp_path}/no-such-layout:t", cwd=tmp_path)  # the file fails before the load
    assert proc.returncode == 2 and f".dive-ci:{line}" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("make,reason", [
    (lambda d: None, "no such file"),
    (lambda d: (d / ".dive-ci").mkdir(), "it is a directory"),
    (lambda d: (d / ".dive-ci").write_bytes(b"rules:\n  lowestEfficiency: 0.9 \xff\xfe\n"), "2: not UTF-8"),
])
def test_dive_ci_file_problems_are_usage_errors(tmp_path: Path, make: Any, reason: str) -> None:
    make(tmp_path)
    with pytest.raises(ocilens.errors.UsageError, match=reason) as exc:
        read_dive_ci(tmp_path / ".dive-ci")
    assert ".dive-ci" in str(exc.value)


def test_unknown_rule_is_warned_once(refs, tmp_path: Path) -> None:
    """The CLI reads the file once (before the load); the warning used to be printed twice."""
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.5\n  lowestEfficency: 0.9\n")
    proc = ocilens_check(refs["overwrite"][0], "--highest-user-wasted-percent", "disabled", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("unknown rule 'lowestEfficency'") == 1, proc.stderr
    img = ocilens.load(refs["overwrite"][0])
    with pytest.warns(UserWarning, match="unknown rule") as caught:
        check(img, dive_ci=tmp_path / ".dive-ci")
    assert len(caught) == 1


# ---------------------------------------------------------------------------------------- JSON output


@pytest.mark.parametrize("name", list(IMAGES))
@pytest.mark.parametrize("numbers", ["dive", "ocilens"])
def test_json_document(refs, tmp_path: Path, name: str, numbers: str) -> None:
    ref = refs[name][0]
    proc = ocilens_check(ref, "--numbers", numbers, "--json", str(tmp_path / "r.json"), cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    doc = strict_json(tmp_path / "r.json")
    assert set(doc) == {"schema", "reference", "numbers", "passed", "metrics", "rules"}
    assert (doc["schema"], doc["reference"], doc["numbers"]) == (SCHEMA, ref, numbers)
    assert SCHEMA == "ocilens.check/v1"
    assert doc["passed"] is (proc.returncode == 0)
    assert [r["name"] for r in doc["rules"]] == RULES
    for r in doc["rules"]:
        assert set(r) == {"name", "threshold", "value", "status", "source"}
        assert r["status"] in ("pass", "fail", "skip")
    assert doc["passed"] is all(r["status"] != "fail" for r in doc["rules"])
    dive, ours = IMAGES[name][1], IMAGES[name][2]
    m = doc["metrics"]
    assert same(m["dive_efficiency"], dive[0]) and m["dive_wasted_bytes"] == dive[1]
    assert same(m["dive_user_wasted_percent"], dive[2]), (m["dive_user_wasted_percent"], dive[2])
    assert same(m["efficiency"], ours[0]) and m["wasted_bytes"] == ours[1]
    assert same(m["user_wasted_percent"], ours[2]), (m["user_wasted_percent"], ours[2])
    used = dive if numbers == "dive" else ours
    values = [r["value"] for r in doc["rules"]]
    assert same(values[0], used[0]) and values[1] == used[1] and same(values[2], used[2])
    # the default highestUserWastedPercent 0.1: NaN passes (as in dive), +Inf fails (as in dive)
    want = "pass" if math.isnan(used[2]) or used[2] <= 0.1 else "fail"
    assert doc["rules"][2]["status"] == want, (used[2], doc["rules"][2])


def test_numbers_choice_changes_the_verdict(refs, tmp_path: Path) -> None:
    """On rm -rf dir, dive sees no waste (blind spot); ocilens's own numbers fail the same thresholds."""
    assert ocilens_check(refs["deleted_dir"][0], cwd=tmp_path).returncode == 0
    assert ocilens_check(refs["deleted_dir"][0], "--numbers", "ocilens", cwd=tmp_path).returncode == 1


# -------------------------------------------------------------------------------------- the Python API


def test_check_api(refs) -> None:
    img = ocilens.load(refs["overwrite"][0], cache=False)
    r = check(img, {"lowestEfficiency": 0.9, "highestUserWastedPercent": None}, numbers="ocilens")
    assert r.passed and [x.status for x in r.rules] == ["pass", "skip", "skip", "skip"]
    r = check(img, {"highestWastedBytes": "200B", "highestUserWastedPercent": None})
    assert not r.passed and [x.status for x in r.rules] == ["fail", "fail", "skip", "skip"]
    assert r.to_dict()["rules"][1]["threshold"] == 200
    with pytest.raises(ocilens.OcilensError):
        check(img, numbers="docker")
    with pytest.raises(ocilens.OcilensError):
        check(img, {"lowestEfficency": 0.5})
    with pytest.raises(ocilens.OcilensError):
        check(img, {"lowestEfficiency": 90})


# ------------------------------------------------------------------------------ highestDownloadSavings


def test_highest_download_savings(refs, tmp_path: Path) -> None:
    """The download the fixes would save: /f's first version (100 bytes of a repeated text, overwritten) is
    the one fix of the "overwritten" image; its download is its share of the first layer's blob."""
    img = ocilens.load(refs["overwrite"][0], cache=False)
    advice = img.bloat().advice
    assert list(advice["kind"]) == ["overwritten"] and int(advice["bytes_saved"].iloc[0]) == 100
    saving = int(advice["download_bytes_saved"].iloc[0])
    assert 0 < saving <= int(img.layers["compressed_size"].iloc[0])
    r = check(img, {"highestDownloadSavings": saving, "lowestEfficiency": 0, "highestUserWastedPercent": None})
    assert r.passed and (r.rules[3].value, r.rules[3].status, r.rules[3].source) == (saving, "pass", "cli")
    assert r.metrics["download_savings"] == saving
    r = check(img, {"highestDownloadSavings": f"{saving - 1}B", "lowestEfficiency": 0,
                    "highestUserWastedPercent": None})
    assert not r.passed and r.rules[3].status == "fail"
    base = ["--lowest-efficiency", "0", "--highest-user-wasted-percent", "disabled"]
    assert ocilens_check(refs["overwrite"][0], *base, "--highest-download-savings", str(saving),
                         cwd=tmp_path).returncode == 0
    proc = ocilens_check(refs["overwrite"][0], *base, "--highest-download-savings", str(saving - 1), cwd=tmp_path)
    assert proc.returncode == 1 and "FAIL  highestDownloadSavings" in proc.stdout and advice["fix"].iloc[0] in proc.stdout
    proc = ocilens_check(refs["overwrite"][0], "--highest-download-savings", "lots", cwd=tmp_path)
    assert proc.returncode == 2 and "--highest-download-savings" in proc.stderr, proc.stderr


def test_highest_download_savings_in_dive_ci(refs, archives, tmp_path: Path) -> None:
    """The same rule in ``.dive-ci``, under the same name (any case, as dive reads keys): ocilens applies it;
    the real dive skips a rule it does not know, so one file serves both."""
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0\n  highestUserWastedPercent: disabled\n"
                                       "  HighestDownloadSavings: 1B\n")
    assert read_dive_ci(tmp_path / ".dive-ci")["highestDownloadSavings"] == 1
    ours = ocilens_check(refs["overwrite"][0], cwd=tmp_path)
    assert ours.returncode == 1 and "highestDownloadSavings" in ours.stdout and "(.dive-ci)" in ours.stdout
    dive = subprocess.run(["dive", "--source", "docker-archive", str(archives["overwrite"])], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "CI": "true"}, timeout=120)
    assert dive.returncode == 0, dive.stdout + dive.stderr


# ------------------------------------------------------------------------------- against dive's own CI

DIVE_CONFIGS = {
    "defaults": None,
    "loose": "rules:\n  lowestEfficiency: 0.5\n  highestWastedBytes: 1KB\n  highestUserWastedPercent: 0.99\n",
    "bytes_only": "rules:\n  lowestEfficiency: 0\n  highestWastedBytes: 249\n  highestUserWastedPercent: disabled\n",
    # the whole document in YAML's flow style, over several lines, with comments and quoted values
    "flow": "# flow style\n{rules: {lowestEfficiency: \"0.95\",  # quoted\n  highestWastedBytes: 'disabled',\n"
            "  highestUserWastedPercent: disabled}}\n",
    # YAML as dive (viper) reads it: keys in any case, other top-level keys of any spelling, indentation
    "any_case": "Rules:\n  LowestEfficiency: 0.5\n  highestuserwastedpercent: disabled\n",
    "other_keys": "org.opencontainers.image/source: x\n$schema: 'y'\nnamé: z\nrules:\n  lowestEfficiency: 0.5\n"
                  "  highestUserWastedPercent: disabled\n",
    "indented": "  rules:\n    lowestEfficiency: 0.5\n    highestUserWastedPercent: disabled\n",
}


@pytest.fixture(scope="module")
def archives(refs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("archives")
    return {name: to_archive(layout, "t", work / f"{name}.tar", kind="docker-archive")
            for name, (_, layout) in refs.items()}


@pytest.mark.parametrize("config", list(DIVE_CONFIGS))
@pytest.mark.parametrize("name", list(IMAGES))
def test_exit_code_matches_dive_ci(refs, archives, tmp_path: Path, name: str, config: str) -> None:
    """Same image, same .dive-ci: ``ocilens check`` (dive numbers) passes or fails as ``dive`` in CI mode."""
    if DIVE_CONFIGS[config] is not None:
        (tmp_path / ".dive-ci").write_text(DIVE_CONFIGS[config])
    dive = subprocess.run(["dive", "--source", "docker-archive", str(archives[name])], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "CI": "true"}, timeout=120)
    assert dive.returncode in (0, 1), dive.stdout + dive.stderr
    ours = ocilens_check(refs[name][0], cwd=tmp_path)
    assert ours.returncode == dive.returncode, (
        f"dive exit {dive.returncode}, ocilens exit {ours.returncode}\n--- dive:\n{dive.stdout[-800:]}\n"
        f"--- ocilens:\n{ours.stdout}{ours.stderr}")


def test_a_key_without_a_value_is_an_unknown_rule(tmp_path: Path) -> None:
    """``{lowestEfficiency 0.9}`` is YAML for the key "lowestEfficiency 0.9" with no value: no rule of dive's,
    so it is ignored with a warning, as dive ignores it."""
    (tmp_path / ".dive-ci").write_text("{rules: {lowestEfficiency 0.9}}\n")
    with pytest.warns(UserWarning, match="unknown rule 'lowestEfficiency 0.9'"):
        assert read_dive_ci(tmp_path / ".dive-ci") == {}
