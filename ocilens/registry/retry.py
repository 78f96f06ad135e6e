"""The retry budget for 429 and 5xx answers and broken connections: bounded, with backoff and ``Retry-After``."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

__all__ = ["RetryPolicy", "parse_retry_after", "RETRY_STATUSES"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.fromtimestamp(now if now is not None else time.time(), tz=timezone.utc)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` per request, exponential ``backoff`` capped at ``max_backoff``.

    A ``Retry-After`` is honoured when it is at most ``max_retry_after`` seconds; a longer one ends the
    retries at once (waiting an hour inside a library call helps nobody). ``resumes`` bounds the Range
    resumptions of one blob download. ``sleep`` is injectable so tests need not wait.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    resumes: int = 5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based): ``Retry-After`` if given, else backoff."""
        if retry_after is not None:
            return retry_after
        return min(self.max_backoff, self.backoff * (2 ** retry))
