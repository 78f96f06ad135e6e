"""Progress: one small interface the pipeline reports to, and the front ends that show it.

The pipeline calls ``progress(event, **info)`` with these events (from any thread):
``resolve`` (reference), ``manifest`` (layers=[(digest, size)]), ``layer_start`` (index, digest, size),
``layer_bytes`` (index, digest, done, total), ``layer_done`` (index, digest, size, entries, cached),
``download`` (digest, done, total: bytes received, ``total=None`` when nobody knows the size yet, as for
standard input or an engine's export), ``assemble``, ``done``, ``error`` (error, reference). A plain
callable works as a front end.

Front ends: an ipywidgets panel in a notebook, a text bar on a terminal, silence otherwise (CI, pipes).
``load(progress="auto" | "widget" | "text" | False | callable)``; ``OCILENS_PROGRESS`` (widget, text, off)
overrides "auto", and ``TQDM_DISABLE=1`` or ``CI`` silence it, as for tqdm.

Both front ends follow tqdm's conventions: ``42%|bar| 12.3 MB/29.1 MB [00:01<00:02, 8.4 MB/s]`` (done/total
in bytes, elapsed<remaining, rate), and for a stream of unknown size ``12.3 MB [00:01, 8.4 MB/s]`` (bytes
and rate, no percentage). In the panel the total's bar is as long as each layer's.
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

__all__ = ["Reporter", "TextProgress", "WidgetProgress", "make_progress", "in_notebook", "short_digest",
           "tqdm_stats"]

Callback = Callable[..., None]


def short_digest(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest[:12]


def _clock(seconds: float | None) -> str:
    """tqdm's time: ``00:07``, ``1:02:03``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(max(seconds, 0)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _tqdm_parts(done: int, total: int | None, elapsed: float) -> tuple[str, str]:
    """tqdm's percentage (empty with no known total) and the rest: ``12.3 MB/29.1 MB [00:01<00:02, 8.4 MB/s]``."""
    rate = done / elapsed if elapsed > 0 and done else None
    speed = f"{human_bytes(rate)}/s" if rate else "? B/s"
    if total is None:
        return "", f"{human_bytes(done)} [{_clock(elapsed)}, {speed}]"
    pct = min(done / total, 1.0) if total else 1.0
    left = (total - done) / rate if rate else (0.0 if done >= total else None)
    return f"{pct:4.0%}", f"{human_bytes(done)}/{human_bytes(total)} [{_clock(elapsed)}<{_clock(left)}, {speed}]"


def tqdm_stats(done: int, total: int | None, elapsed: float) -> str:
    """A bar's numbers as tqdm writes them: `` 42% 12.3 MB/29.1 MB [00:01<00:02, 8.4 MB/s]``; with no known
    total, ``12.3 MB [00:01, 8.4 MB/s]`` (no percentage, no remaining time)."""
    pct, rest = _tqdm_parts(done, total, elapsed)
    return f"{pct} {rest}" if pct else rest


class Reporter:
    """State shared by the front ends: what each layer is doing, the streams of unknown size, the totals."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reference = ""
        self.layers: list[dict[str, Any]] = []
        self.by_digest: dict[str, int] = {}
        self.streams: dict[str, dict[str, Any]] = {}  # downloads that are no layer of the manifest (yet)
        self.state = "resolving"
        self.started = time.monotonic()
        self.error: BaseException | None = None

    def __call__(self, event: str, **info: Any) -> None:
        with self.lock:
            self._update(event, info)
        self.render(event)

    def _update(self, event: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if event == "resolve":
            self.reference = str(info.get("reference", ""))
            self.state = "resolving"
        elif event == "manifest":
            self.layers = [{"digest": d, "size": s, "done": 0, "state": "waiting", "entries": 0, "started": None}
                           for d, s in info.get("layers", [])]
            self.by_digest = {d: i for i, (d, _) in enumerate(info.get("layers", []))}
            self.state = "scanning"
            if info.get("reference") and not self.reference:
                self.reference = str(info["reference"])
        elif event in ("layer_start", "layer_bytes", "layer_done", "download"):
            i = info.get("index")
            if i is None:
                i = self.by_digest.get(str(info.get("digest")))
            if i is None or i >= len(self.layers):
                if event == "download":  # a stream of its own: an archive read once, an engine's export
                    row = self.streams.setdefault(str(info.get("digest")), {"done": 0, "total": None, "started": now})
                    row["done"] = int(info.get("done") or 0)
                    row["total"] = info.get("total")
                    if self.state == "resolving":
                        self.state = "reading"
                return
            row = self.layers[i]
            if row["started"] is None:
                row["started"] = now
            if event == "layer_start":
                row["state"] = "reading"
            elif event in ("layer_bytes", "download"):
                row["done"] = max(int(info.get("done", row["done"]) or 0), row["done"])
                if row["state"] == "waiting":
                    row["state"] = "reading"
            else:
                row["state"] = "cached" if info.get("cached") else "done"
                row["done"] = row["size"]
                row["entries"] = int(info.get("entries", 0))
                row["finished"] = now
        elif event == "assemble":
            self.state = "assembling"
        elif event == "done":
            self.state = "done"
        elif event == "error":
            self.state = "failed"
            self.error = info.get("error")
            if not self.reference:  # the error came before "resolve": the reference is in the event or the error
                ref = info.get("reference") or getattr(self.error, "reference", None)
                self.reference = str(ref) if ref else ""

    @property
    def total(self) -> int:
        return sum(r["size"] for r in self.layers)

    @property
    def done_bytes(self) -> int:
        return sum(min(r["done"], r["size"]) for r in self.layers)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def layer_stats(self, i: int) -> str:
        """Layer ``i``'s numbers, tqdm-style (its own clock starts at its first byte)."""
        r = self.layers[i]
        if r["started"] is None:
            return tqdm_stats(0, r["size"], 0.0)
        end = r.get("finished") or time.monotonic()
        return tqdm_stats(min(r["done"], r["size"]), r["size"], end - r["started"])

    def total_stats(self) -> str:
        """All the layers' numbers together, tqdm-style; a stream of unknown size before the layers are known."""
        if not self.layers and self.streams:
            done = sum(s["done"] for s in self.streams.values())
            totals = [s["total"] for s in self.streams.values()]
            total = None if any(t is None for t in totals) else sum(totals)
            return tqdm_stats(done, total, self.elapsed)
        return tqdm_stats(self.done_bytes, self.total, self.elapsed)

    def _label(self) -> str:
        return f"ocilens: {self.reference}" if self.reference else "ocilens"

    def summary(self) -> str:
        """One line that says what happened (kept in a saved notebook)."""
        elapsed = self.elapsed
        cached = sum(1 for r in self.layers if r["state"] == "cached")
        entries = sum(r["entries"] for r in self.layers)
        if self.state == "failed":
            return f"{self._label()}: failed after {elapsed:.1f}s: {self.error}"
        return (f"{self._label()}: {len(self.layers)} layers ({cached} cached), {human_bytes(self.total)}, "
                f"{entries:,} entries in {elapsed:.1f}s")

    def render(self, event: str) -> None:
        """Show the current state (front ends override)."""


class TextProgress(Reporter):
    """A one-line text bar on a terminal (stderr), tqdm-style, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.width = width
        self._last = 0.0

    def line(self) -> str:
        """The live line (call with the lock held)."""
        if not self.layers:
            if self.streams:  # a stream of unknown size: bytes and rate, no percentage
                return f"{self._label()}: {self.state} {self.total_stats()}"
            return f"{self._label()}: {self.state}…"
        done, total = self.done_bytes, self.total
        frac = min(done / total, 1.0) if total else 1.0
        cells = frac * self.width
        full = int(cells)
        part = " ▏▎▍▌▋▊▉"[int((cells - full) * 8)] if full < self.width else ""
        bar = ("█" * full + part).ljust(self.width)
        finished = sum(1 for r in self.layers if r["state"] in ("done", "cached"))
        pct, rest = _tqdm_parts(done, total, self.elapsed)
        return f"ocilens: {self.state} {pct}|{bar}| {rest} {finished}/{len(self.layers)} layers"

    def render(self, event: str) -> None:
        now = time.monotonic()
        final = event in ("done", "error")
        if not final and event not in ("manifest", "layer_done") and now - self._last < 0.1:
            return
        self._last = now
        with self.lock:
            line = self.summary() if final else self.line()
        # Progress lines are cut to a terminal's width; the final summary is written whole.
        self.stream.write("\r" + (line.ljust(100) + "\n" if final else line.ljust(100)[:100]))
        self.stream.flush()


class WidgetProgress(Reporter):
    """An ipywidgets panel: a total row and one row per layer, all alike (label, bar of the same length,
    tqdm-style numbers, state).

    A stream of unknown size (standard input, an engine's export) gets a row with bytes and rate and no
    bar. When the load ends the panel is replaced by its one-line summary, so a notebook saved without
    widget state still says what happened. ``repr()`` is the text summary too.
    """

    LABEL_WIDTH = "15em"
    BAR_WIDTH = "34%"

    def __init__(self) -> None:
        super().__init__()
        import ipywidgets as w
        from IPython.display import display

        self._w = w
        self.title = w.HTML("<b>ocilens</b>: resolving…")
        self.overall, self.overall_stats, self.overall_row = self._row("total")
        self.overall.max = 1
        self.overall.bar_style = "info"
        self.rows = w.VBox([])
        self.stream_rows = w.VBox([])
        self.panel = w.VBox([self.title, self.stream_rows, self.overall_row, self.rows])
        self.panel.add_class("ocilens-progress")
        self.bars: list[Any] = []
        self.states: list[Any] = []
        self.stats: list[Any] = []
        self._streams: dict[str, Any] = {}
        self._last = 0.0
        self.handle = display(self.panel, display_id=True)

    def _row(self, name: str, state: Any = None) -> tuple[Any, Any, Any]:
        """One row: label, bar, numbers (and a state): the same widths for the total and every layer."""
        w = self._w
        bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width=self.BAR_WIDTH))
        numbers = w.Label("", layout=w.Layout(width="auto"))
        label = w.Label(name, layout=w.Layout(width=self.LABEL_WIDTH))
        row = w.HBox([label, bar, numbers] + ([state] if state is not None else []))
        row.add_class("ocilens-progress-row")
        return bar, numbers, row

    def _build_rows(self) -> None:
        w = self._w
        rows = []
        self.bars, self.states, self.stats = [], [], []
        for i, r in enumerate(self.layers):
            state = w.Label(r["state"])
            bar, numbers, row = self._row(f"{i:>2} {short_digest(r['digest'])}", state)
            bar.max = max(r["size"], 1)
            self.bars.append(bar)
            self.states.append(state)
            self.stats.append(numbers)
            rows.append(row)
        self.rows.children = tuple(rows)
        self.overall.max = max(self.total, 1)

    def _stream_row(self, digest: str) -> Any:
        if digest not in self._streams:
            w = self._w
            numbers = w.Label("")
            label = w.Label(f"reading {short_digest(digest)}", layout=w.Layout(width=self.LABEL_WIDTH))
            self._streams[digest] = numbers
            self.stream_rows.children = self.stream_rows.children + (w.HBox([label, numbers]),)
        return self._streams[digest]

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
            for i, (bar, state, numbers, r) in enumerate(zip(self.bars, self.states, self.stats, self.layers)):
                bar.value = min(r["done"], r["size"])
                state.value = r["state"]
                numbers.value = self.layer_stats(i)
                if r["state"] in ("done", "cached"):
                    bar.bar_style = "success"
            for digest, s in self.streams.items():
                self._stream_row(digest).value = tqdm_stats(s["done"], s["total"], now - s["started"])
            self.overall.value = self.done_bytes
            self.overall_stats.value = self.total_stats() if self.layers else ""
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
