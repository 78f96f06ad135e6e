"""The notebooks in ``notebooks/`` run top to bottom under nbclient (no network, the bundled sample only),
show what they promise, and export to HTML with ``jupyter nbconvert --to html --execute``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

# For each notebook: what its executed cells must show (cell id -> a pattern in that cell's outputs), and
# text its HTML export must hold.
EXPECT: dict[str, dict[str, object]] = {
    "01-bloat-audit.ipynb": {
        "cells": {
            # the kernel runs on a cache of its own, empty (test_notebook_runs_top_to_bottom): a cold load
            "load": r"ocilens: oci:.*_sample:sample: 5 layers \(0 cached\), 1\.5 MB, [\d,]+ entries in ",
            "display": r"efficiency",
            "bloat": r"Bloat audit of oci:",
            "by-cause": r"localepurge",
            "duplicates": r"/usr/local/bin/sed",
            "junk": r"apt_lists",
            "dive": r"efficiency\s+\d+\.\d%\s+\d+\.\d%",
            "plot-layers": r"image/png",
            "plot-waste": r"image/png",
            "report": r"wrote .*sample-report\.html",
        },
        "html": ["Bloat audit of an image", "efficiency", "dive efficiency", "Waste by cause", "localepurge"],
    },
    "02-diff-layers-and-images.ipynb": {
        "cells": {
            "layer-diffs": r"modified",
            "chmod": r"layer 2: RUN /bin/sh -c chmod 0700",
            "build": r"<ocilens\.Image oci:.*layout:v2 .*layers=6",
            "diff": r"2 added, 0 modified, 1 removed",
            "files": r"/app/settings\.json",
            "plot": r"image/png",
            "shared": r"sha256:",
            "config": r"LANG=de_DE\.UTF-8",
            "history": r"COPY settings\.json",
            "report": r"wrote .*diff-report\.html",
        },
        "html": ["Diffs: what each layer did", "/app/settings.json", "Largest size changes", "shared by digest"],
    },
    "03-fix-the-bloat.ipynb": {
        "cells": {
            "build": r"<ocilens\.Image oci:.*layout:bloated .*layers=6",
            "advice": r"layer_compression.*download_bytes_saved|download_bytes_saved.*layer_compression",
            "apply": r"applied 7 fixes: logs, temp_files, .*layer_compression\n<ocilens\.Image oci:.*layout:fixed ",
            "savings": r"predicted\s+real\s+download bytes saved\s+\d+\s+\d+\s+file bytes saved",
            "plot": r"image/png",
            "diff": r"/var/log/build\.log\s+removed",
            "left": r"duplicate_content",
        },
        "html": ["Fix the bloat", "download_bytes_saved", "Predicted next to real", "/var/log/build.log",
                 "to download"],
    },
}


def notebook_ids() -> list[str]:
    return sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_is_tested() -> None:
    assert notebook_ids() == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_notebook_is_stored_clean(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "outputs are stored in the file"
    assert len(nb.cells) < 40 and sum(len(c.source.splitlines()) for c in code) < 120, "keep it small"
    assert set(EXPECT[name]["cells"]) <= {c.id for c in code}  # type: ignore[operator]


def outputs_text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell showed, as text: streams, plain and HTML reprs, and the mime types of the rest."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts.extend(out.data)
            parts.extend(str(v) for k, v in out.data.items() if k.startswith("text/"))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "\n".join(parts)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_notebook_runs_top_to_bottom(name: str, kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: an empty cache of its own, so what the notebook shows about
    # the cache is what a first run shows, whatever ran before in this session.
    monkeypatch.setenv("OCILENS_CACHE_DIR", str(tmp_path / "cache"))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel, timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [(c.id, o.ename, o.evalue) for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    stderr = [(c.id, o.text) for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == [], "a notebook for users should not print warnings"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    shown = {c.id: outputs_text(c) for c in code}
    for cell_id, pattern in EXPECT[name]["cells"].items():  # type: ignore[union-attr]
        assert re.search(pattern, shown[cell_id], re.S), (
            f"cell {cell_id!r} did not show {pattern!r}:\n{shown[cell_id][:2000]}")


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_notebook_exports_to_html(name: str, kernel: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
                           "--ExecutePreprocessor.kernel_name=" + kernel, "--ExecutePreprocessor.timeout=120",
                           "--output-dir", str(tmp_path), str(NOTEBOOKS / name)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / name.replace(".ipynb", ".html")
    assert out.is_file() and out.stat().st_size > 10_000
    text = out.read_text(encoding="utf-8")
    missing = [t for t in EXPECT[name]["html"] if t not in text]  # type: ignore[union-attr]
    assert missing == [], f"{out.name} lacks {missing}"
    assert "Traceback" not in text and 'class="ansi-red-fg"' not in text
    assert "data:image/png;base64," in text and "<svg" in text  # matplotlib figures and ocilens's inline charts
