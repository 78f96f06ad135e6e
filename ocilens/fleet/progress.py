"""Progress of a fleet audit, through the same protocol and front ends as a single load.

The audit reports the single-load events, so the text bar and the notebook panel show it as they show
one image (its distinct layers are the rows): ``resolve`` (reference: "fleet of N images"), ``manifest``
(every distinct layer), ``layer_bytes`` (thread backend only), ``layer_done`` (cached or scanned),
``done``. Beside them come the fleet's own events, which a callable receives too:

- ``fleet_start``: images, layers (distinct), todo (to scan), cached, bytes (compressed, to scan)
- ``fleet_layer_done``: digest, size, status (scanned, cached, failed), error, done, total (layers)
- ``fleet_image_done``: reference, error (None when it was audited), done, total (images)
- ``fleet_done``: images, failed, scanned, cached, seconds

The built-in front ends ignore events they do not know; ``FleetFrontEnd`` also writes the image count
into their state line ("12/20 images") as images complete.
"""

from __future__ import annotations

from typing import Any, Callable

from ..progress import Reporter, make_progress

__all__ = ["FleetFrontEnd", "fleet_progress", "FLEET_EVENTS"]

FLEET_EVENTS = ("fleet_start", "fleet_layer_done", "fleet_image_done", "fleet_done")


class FleetFrontEnd:
    """Wraps a ``Reporter`` front end: forwards every event, and keeps its state line on the image count."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.images = 0
        self.done = 0
        self.failed = 0

    def __call__(self, event: str, **info: Any) -> None:
        inner = self.inner
        if event == "fleet_start":
            self.images = int(info.get("images", 0))
        elif event == "fleet_image_done":
            self.done = int(info.get("done", self.done + 1))
            if info.get("error"):
                self.failed += 1
        if event in FLEET_EVENTS and event != "fleet_done":
            with inner.lock:
                inner.state = self.state_line()
            inner.render("layer_done")  # a redraw that is never rate-limited away
            return
        if event == "fleet_done":
            return
        if event == "done" and self.failed:
            with inner.lock:
                inner.reference = f"{inner.reference} ({self.failed} of {self.images} failed)"
        inner(event, **info)
        if event in ("layer_done", "layer_bytes") and self.images:
            with inner.lock:
                inner.state = self.state_line()

    def state_line(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.images} images{failed}"

    def __repr__(self) -> str:
        return repr(self.inner)


def fleet_progress(progress: Any) -> Callable[..., None] | None:
    """``audit(progress=...)`` as a callback: a callable is used as is; "auto", "text" and "widget" get the
    single-load front end, wrapped to count images."""
    callback = make_progress(progress)
    if isinstance(callback, Reporter):
        return FleetFrontEnd(callback)
    return callback
