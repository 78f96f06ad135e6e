"""Progress: one small interface the pipeline reports to, and the front ends that show it.

The pipeline calls ``progress(event, **info)`` with these events (from any thread):
``resolve`` (reference), ``manifest`` (layers=[(digest, size)]), ``layer_start`` (index, digest, size),
``layer_bytes`` (index, digest, done, total), ``layer_done`` (index, digest, size, entries, cached),
``assemble``, ``done``, ``error`` (error). A plain callable works as a front end.

Front ends: an ipywidgets panel in a notebook, a text bar on a terminal, silence otherwise (CI, pipes).
``load(progress="auto" | "widget" | "text" | False | callable)``; ``OCILENS_PROGRESS`` (widget, text, off)
overrides "auto", and ``TQDM_DISABLE=1`` or ``CI`` silence it, as for tqdm.
"""

from __future__ import annotations

import html
import os
import sys
import threading
import time
import warnings
from typing import Any, Callable, TextIO

from .units import human_bytes

__all__ = ["Reporter", "TextProgress", "WidgetProgress", "make_progress", "in_notebook", "short_digest"]

Callback = Callable[..., None]


def short_digest(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest[:12]


class Reporter:
    """State shared by the front ends: what each layer is doing, and the totals."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reference = ""
        self.layers: list[dict[str, Any]] = []
        self.by_digest: dict[str, int] = {}
        self.state = "resolving"
        self.started = time.monotonic()
        self.error: BaseException | None = None

    def __call__(self, event: str, **info: Any) -> None:
        with self.lock:
            self._update(event, info)
        self.render(event)

    def _update(self, event: str, info: dict[str, Any]) -> None:
        if event == "resolve":
            self.reference = str(info.get("reference", ""))
            self.state = "resolving"
        elif event == "manifest":
            self.layers = [{"digest": d, "size": s, "done": 0, "state": "waiting", "entries": 0}
                           for d, s in info.get("layers", [])]
            self.by_digest = {d: i for i, (d, _) in enumerate(info.get("layers", []))}
            self.state = "scanning"
        elif event in ("layer_start", "layer_bytes", "layer_done", "download"):
            i = info.get("index")
            if i is None:
                i = self.by_digest.get(str(info.get("digest")))
            if i is None or i >= len(self.layers):
                return
            row = self.layers[i]
            if event == "layer_start":
                row["state"] = "reading"
            elif event in ("layer_bytes", "download"):
                row["done"] = int(info.get("done", row["done"]))
            else:
                row["state"] = "cached" if info.get("cached") else "done"
                row["done"] = row["size"]
                row["entries"] = int(info.get("entries", 0))
        elif event == "assemble":
            self.state = "assembling"
        elif event == "done":
            self.state = "done"
        elif event == "error":
            self.state = "failed"
            self.error = info.get("error")

    @property
    def total(self) -> int:
        return sum(r["size"] for r in self.layers)

    @property
    def done_bytes(self) -> int:
        return sum(min(r["done"], r["size"]) for r in self.layers)

    def summary(self) -> str:
        """One line that says what happened (kept in a saved notebook)."""
        elapsed = time.monotonic() - self.started
        cached = sum(1 for r in self.layers if r["state"] == "cached")
        entries = sum(r["entries"] for r in self.layers)
        if self.state == "failed":
            return f"ocilens: {self.reference}: failed after {elapsed:.1f}s: {self.error}"
        return (f"ocilens: {self.reference}: {len(self.layers)} layers ({cached} cached), {human_bytes(self.total)}, "
                f"{entries:,} entries in {elapsed:.1f}s")

    def render(self, event: str) -> None:
        """Show the current state (front ends override)."""


class TextProgress(Reporter):
    """A one-line text bar on a terminal (stderr), redrawn at most ten times a second."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.width = width
        self._last = 0.0

    def render(self, event: str) -> None:
        now = time.monotonic()
        final = event in ("done", "error")
        if not final and event not in ("manifest", "layer_done") and now - self._last < 0.1:
            return
        self._last = now
        with self.lock:
            if final:
                line = self.summary()
            else:
                total = self.total or 1
                frac = self.done_bytes / total
                fill = int(frac * self.width)
                finished = sum(1 for r in self.layers if r["state"] in ("done", "cached"))
                line = (f"ocilens: {self.state} [{'#' * fill}{'.' * (self.width - fill)}] {frac:4.0%} "
                        f"{finished}/{len(self.layers)} layers, {human_bytes(self.done_bytes)}/{human_bytes(self.total)}")
        # Progress lines are cut to a terminal's width; the final summary is written whole.
        self.stream.write("\r" + (line.ljust(100) + "\n" if final else line.ljust(100)[:100]))
        self.stream.flush()


class WidgetProgress(Reporter):
    """An ipywidgets panel: an overall bar and one row per layer (short digest, size, bar, state).

    When the load ends the panel is replaced by its one-line summary, so a notebook saved without
    widget state still says what happened. ``repr()`` is the text summary too.
    """

    def __init__(self) -> None:
        super().__init__()
        import ipywidgets as w
        from IPython.display import display

        self._w = w
        self.title = w.HTML("<b>ocilens</b>: resolving…")
        self.overall = w.IntProgress(value=0, min=0, max=1, description="total", bar_style="info")
        self.rows = w.VBox([])
        self.panel = w.VBox([self.title, self.overall, self.rows])
        self.bars: list[Any] = []
        self.states: list[Any] = []
        self._last = 0.0
        self.handle = display(self.panel, display_id=True)

    def _build_rows(self) -> None:
        w = self._w
        rows = []
        self.bars, self.states = [], []
        for i, r in enumerate(self.layers):
            bar = w.IntProgress(value=0, min=0, max=max(r["size"], 1), layout=w.Layout(width="40%"))
            state = w.Label(r["state"])
            label = w.Label(f"{i:>2} {short_digest(r['digest'])}  {human_bytes(r['size'])}", layout=w.Layout(width="30%"))
            self.bars.append(bar)
            self.states.append(state)
            rows.append(w.HBox([label, bar, state]))
        self.rows.children = tuple(rows)
        self.overall.max = max(self.total, 1)

    def render(self, event: str) -> None:
        if event == "manifest":
            with self.lock:
                self._build_rows()
        now = time.monotonic()
        final = event in ("done", "error")
        if not final and event not in ("manifest", "layer_done", "assemble") and now - self._last < 0.1:
            return
        self._last = now
        with self.lock:
            for bar, state, r in zip(self.bars, self.states, self.layers):
                bar.value = min(r["done"], r["size"])
                state.value = r["state"]
                if r["state"] in ("done", "cached"):
                    bar.bar_style = "success"
            self.overall.value = self.done_bytes
            self.title.value = f"<b>ocilens</b>: {html.escape(self.reference)} — {html.escape(self.state)}"
            if final:
                self.overall.bar_style = "danger" if self.state == "failed" else "success"
                summary = self.summary()
        if final and self.handle is not None:
            from IPython.display import Pretty

            self.handle.update(Pretty(summary))
            self.panel.close()

    def __repr__(self) -> str:
        return self.summary()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain IPython terminal)."""
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def make_progress(progress: Any) -> Callback | None:
    """Turn ``load``'s ``progress=`` argument into a callback (or None for silence)."""
    if callable(progress):
        return progress
    if progress is False or progress is None:
        return None
    if progress not in ("auto", "widget", "text", True):
        raise ValueError(f"progress must be 'auto', 'widget', 'text', False or a callable, not {progress!r}")
    mode = "auto" if progress is True else progress
    if mode == "auto":
        forced = os.environ.get("OCILENS_PROGRESS", "").strip().lower()
        if forced in ("off", "0", "false", "none", "silent"):
            return None
        if forced in ("widget", "text"):
            mode = forced
        elif os.environ.get("TQDM_DISABLE") == "1" or os.environ.get("CI"):
            return None
        elif in_notebook():
            mode = "widget"
        elif sys.stderr.isatty():
            mode = "text"
        else:
            return None
    if mode == "widget":
        try:
            return WidgetProgress()
        except ImportError:
            warnings.warn("ipywidgets is not installed: showing text progress instead "
                          "(pip install ipywidgets)", stacklevel=3)
            return TextProgress()
    return TextProgress()
