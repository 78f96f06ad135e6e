"""pandas (a quarter of a second of byte code), imported in a thread of its own while ocilens waits on I/O.

``load()`` starts it beside the reading of an image: a registry's answers, the inflating and hashing of layers
and a stream's bytes leave the interpreter free. An engine source starts it itself, once its export request is
sent: the engine stages the whole image before its first byte (seconds), and an import running beside the
requests before it would delay them. One import at a time: two threads importing one package at once can see
it half-initialized, so whoever needs pandas next calls ``join()`` first.
"""

from __future__ import annotations

import sys
import threading

__all__ = ["start", "join"]

_LOCK = threading.Lock()
_THREAD: list[threading.Thread] = []  # the import in flight, if any


def _run() -> None:
    try:
        from . import frames  # noqa: F401 - pandas and numpy with it
    except BaseException:  # noqa: BLE001 - the import that needs it raises it again, in its own thread
        pass


def start() -> None:
    """Start importing the frame builders and pandas in the background, unless done or under way."""
    if "pandas" in sys.modules and "ocilens.frames" in sys.modules:
        return
    with _LOCK:
        if _THREAD and _THREAD[0].is_alive():
            return
        thread = threading.Thread(target=_run, name="ocilens-import", daemon=True)
        _THREAD[:] = [thread]
        thread.start()


def join() -> None:
    """Wait for an import in flight (none: return at once)."""
    with _LOCK:
        thread = _THREAD[0] if _THREAD else None
    if thread is not None and thread is not threading.current_thread():
        thread.join()
