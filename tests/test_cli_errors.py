"""The command line's error contract (README: exit 0 pass, 1 a gate failed, 2 an error): files it cannot
read or write, option values it cannot use. Each case runs the real ``ocilens`` in a subprocess and
checks the exit code, that the message names the thing at fault, and that no traceback is printed.

Cases from the error-handling review: A1 (``check``'s files), A4 (``cache prune``), B2 (output files of
``analyze``, ``diff``, ``audit``), B4 (``audit --executor``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ocilens
from ocilens.errors import UsageError

SAMPLE = f"oci:{Path(ocilens.__file__).parent / '_sample'}:sample"
MISSING = "oci:/nonexistent/layout:t"  # loading this would fail: an output error must come first
# thresholds the sample passes, so only a write failure can make `check` exit non-zero
PASSING = ["--lowest-efficiency", "0", "--highest-user-wasted-percent", "disabled"]


def ocilens_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocilens", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=180, env={**os.environ, **(env or {})})


def assert_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one ``ocilens: error:`` message holding every needle, no traceback."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "ocilens: error:" in proc.stderr, out
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


# --------------------------------------------------------------------- A1: check's .dive-ci and --json


@pytest.mark.parametrize("setup,args,needles", [
    (None, ["--ci-config", "nonexistent.yml"], ["cannot read nonexistent.yml", "no such file"]),
    (None, ["--ci-config", "."], ["cannot read .", "it is a directory"]),
    ("dir", [], ["cannot read .dive-ci", "it is a directory"]),
    ("latin1", [], [".dive-ci:2", "not UTF-8"]),
    ("dangling", [], ["cannot read .dive-ci", "no such file"]),
])
def test_check_dive_ci_problems_exit_2(tmp_path: Path, setup: str | None, args: list[str],
                                       needles: list[str]) -> None:
    """These were tracebacks with exit 1, which CI reads as 'the gate failed'; they fail before the load."""
    ci = tmp_path / ".dive-ci"
    if setup == "dir":
        ci.mkdir()
    elif setup == "latin1":
        ci.write_bytes("rules:\n  lowestEfficiency: 0.9  # d\u00e9j\u00e0\n".encode("latin-1"))
    elif setup == "dangling":
        ci.symlink_to(tmp_path / "gone.yml")
    assert_error(ocilens_cli("check", MISSING, *args, cwd=tmp_path), *needles)


def test_check_json_unwritable_exit_2_before_the_load(tmp_path: Path) -> None:
    proc = ocilens_cli("check", MISSING, "--json", "/nonexistent/dir/out.json", cwd=tmp_path)
    assert_error(proc, "cannot write /nonexistent/dir/out.json", "no such directory /nonexistent/dir")


def test_check_json_write_failure_is_exit_2_not_pass(tmp_path: Path) -> None:
    """A passing image whose --json cannot be written printed PASS, then exit 1 with a traceback."""
    proc = ocilens_cli("check", SAMPLE, *PASSING, "--json", "/dev/full", cwd=tmp_path)
    assert "PASS" in proc.stdout
    assert_error(proc, "cannot write /dev/full", "No space left on device")


# --------------------------------------------------------------- B2: analyze, diff and audit outputs

OUTPUTS = [
    ["analyze", "{ref}", "--json", "{out}"],
    ["analyze", "{ref}", "--html", "{out}"],
    ["diff", "{ref}", "{ref}", "--json", "{out}"],
    ["diff", "{ref}", "{ref}", "--csv", "{out}"],
    ["audit", "{ref}", "--executor", "thread", "--json", "{out}"],
    ["audit", "{ref}", "--executor", "thread", "--html", "{out}"],
    ["check", "{ref}", *PASSING, "--json", "{out}"],
]


def fill(template: list[str], ref: str, out: str) -> list[str]:
    return [a.format(ref=ref, out=out) for a in template]


@pytest.mark.parametrize("template", OUTPUTS, ids=lambda t: f"{t[0]}{t[-2]}")
@pytest.mark.parametrize("where,needle", [
    ("missing/out.x", "no such directory missing"),
    ("afile/out.x", "afile is not a directory"),
    ("adir", "it is a directory"),
])
def test_unwritable_output_is_refused_before_the_load(tmp_path: Path, template: list[str], where: str,
                                                      needle: str) -> None:
    """The output location is checked first: the (missing) image is never loaded, so the message is
    about the output, at once."""
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    proc = ocilens_cli(*fill(template, MISSING, where), cwd=tmp_path)
    assert_error(proc, f"cannot write {where}", needle)


@pytest.mark.parametrize("template", OUTPUTS, ids=lambda t: f"{t[0]}{t[-2]}")
def test_write_failure_after_the_load_exit_2(tmp_path: Path, template: list[str]) -> None:
    """A location that looks writable but fails while written (here a full disk) is an error, not a
    traceback with exit 1."""
    proc = ocilens_cli(*fill(template, SAMPLE, "/dev/full"), cwd=tmp_path)
    assert_error(proc, "cannot write /dev/full: No space left on device")


def test_audit_csv_directory_problems_exit_2(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    proc = ocilens_cli("audit", MISSING, "--executor", "thread", "--csv", "afile/sub", cwd=tmp_path)
    assert_error(proc, "cannot write afile/sub", "afile is not a directory")
    (tmp_path / "out" / "images.csv").mkdir(parents=True)  # passes the check, fails when written
    proc = ocilens_cli("audit", SAMPLE, "--executor", "thread", "--csv", "out", cwd=tmp_path)
    assert_error(proc, "cannot write", "images.csv", "Is a directory")


def test_outputs_still_written(tmp_path: Path) -> None:
    """The checks refuse only what cannot be written: a new file, a new --csv directory are fine."""
    proc = ocilens_cli("audit", SAMPLE, "--executor", "thread", "--json", "a.json", "--csv", "new/csv",
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "a.json").stat().st_size and (tmp_path / "new" / "csv" / "images.csv").exists()
    proc = ocilens_cli("analyze", SAMPLE, "--json", "s.json", "--html", "s.html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "s.json").exists() and (tmp_path / "s.html").exists()


# ------------------------------------------------------------------------------- B4: audit --executor


@pytest.mark.parametrize("executor", ["threads", "proces", "dask", "tcp://127.0.0.1"])
def test_audit_executor_typo_is_usage_error(tmp_path: Path, executor: str) -> None:
    """A typo reached Dask as an address: ValueError 'missing port number', exit 1."""
    proc = ocilens_cli("audit", SAMPLE, "--executor", executor, cwd=tmp_path)
    assert_error(proc, repr(executor), "process, thread", "tcp://host:8786")
    with pytest.raises(UsageError, match="tcp://host:8786"):
        ocilens.audit(SAMPLE, executor=executor, progress=False)


# ------------------------------------------------------------------------------------ A4: cache prune


@pytest.mark.parametrize("args", [["--all", "--keep", "5GB"], ["--all", "--older-than", "30d"],
                                  ["--all", "--older-than", "1d", "--keep", "1GB", "--dry-run"]])
def test_cache_prune_all_conflicts(tmp_path: Path, args: list[str]) -> None:
    """``--all`` with a selector was silently ignored (the selector won, nothing was removed)."""
    assert_error(ocilens_cli("cache", "prune", *args, cwd=tmp_path), "--all", "would be ignored")


@pytest.mark.parametrize("args,needle", [
    (["--older-than", "garbage"], "cannot read 'garbage' as an age"),
    (["--older-than=-5d"], "cannot read '-5d' as an age"),
    (["--keep", "lots"], "not a size: 'lots'"),
    (["--keep=-5GB"], "not a size: '-5GB'"),
])
def test_cache_prune_values_checked_on_an_empty_cache(tmp_path: Path, args: list[str], needle: str) -> None:
    """Values were parsed only per entry, so an empty cache accepted anything."""
    env = {"OCILENS_CACHE_DIR": str(tmp_path / "empty-cache")}
    assert_error(ocilens_cli("cache", "prune", *args, cwd=tmp_path, env=env), needle)


def test_insecure_is_not_a_warning_for_local_references(sample_layout: Path) -> None:
    """--insecure means "for the registries": a layout analysed with it gets no warning about it (the API,
    given insecure= for a local source directly, still warns)."""
    proc = subprocess.run([sys.executable, "-m", "ocilens", "analyze", f"oci:{sample_layout}:sample", "--insecure",
                           "--no-cache"], capture_output=True, text=True)
    assert proc.returncode == 0 and "Warning" not in proc.stderr and "insecure" not in proc.stderr
    with pytest.warns(UserWarning, match="insecure"):
        ocilens.load(f"oci:{sample_layout}:sample", insecure=True, progress=False).close()


def test_warnings_are_one_line(tmp_path: Path, sample_layout: Path) -> None:
    """A warning (here an unknown .dive-ci rule) prints as "ocilens: warning: ...", without Python's source line."""
    (tmp_path / ".dive-ci").write_text("rules:\n  noSuchRule: 3\n")
    proc = subprocess.run([sys.executable, "-m", "ocilens", "check", f"oci:{sample_layout}:sample", "--no-cache"],
                          capture_output=True, text=True, cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if "noSuchRule" in line]
    assert len(lines) == 1 and lines[0].startswith("ocilens: warning: "), proc.stderr
    assert ".py:" not in proc.stderr


def test_an_existing_writable_file_in_a_read_only_directory_is_an_output(sample_layout: Path) -> None:
    """``--json /dev/null`` (a writable file in a directory only root may write) is fine: the file is opened,
    not created. Run without root's capabilities (or as the user the tests run as), where it used to fail."""
    drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    proc = subprocess.run([*drop, sys.executable, "-m", "ocilens", "analyze", f"oci:{sample_layout}:sample",
                           "--no-cache", "--json", "/dev/null"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
