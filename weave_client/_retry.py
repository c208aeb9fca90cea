"""The retry core shared by the API client and the background sender (no I/O).

Which failures a retry can fix (:func:`is_transient`), what a ``Retry-After``
header asks for (:func:`parse_retry_after`), and how long to wait before each
retry (:class:`RetryPolicy`). Callers do their own waiting with the
``async_sleep``/``sleep`` pair of :mod:`weave_client._synchronization`.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import APIConnectionError, APIStatusError

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_MAX_RETRY_DELAY",
    "DEFAULT_RETRY_DELAY",
    "RETRYABLE_STATUS_CODES",
    "RetryPolicy",
    "is_transient",
    "parse_retry_after",
    "should_retry_status",
]

DEFAULT_MAX_RETRIES = 3
#: Base of the exponential backoff, and its cap, in seconds.
DEFAULT_RETRY_DELAY = 0.5
DEFAULT_MAX_RETRY_DELAY = 8.0
#: The longest wait a server's ``Retry-After`` can impose before the next attempt.
DEFAULT_MAX_RETRY_AFTER = 60.0

#: 408 Request Timeout, 429 Too Many Requests; every 5xx is retried too.
RETRYABLE_STATUS_CODES = frozenset({408, 429})


def should_retry_status(status_code: int) -> bool:
    """True for the statuses a retry can fix: 408, 429 and every 5xx."""
    return status_code in RETRYABLE_STATUS_CODES or status_code >= 500


def is_transient(error: BaseException) -> bool:
    """True when trying the same request again may succeed.

    Connection errors and timeouts (``APIConnectionError`` and its subclass
    ``APITimeoutError``) and the statuses of :func:`should_retry_status` are
    transient; any other status (a 4xx the request itself caused) and any other
    exception are not.
    """
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, APIStatusError):
        return should_retry_status(error.status_code)
    return False


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` is either a number of seconds or an HTTP date (RFC 9110 §10.2.3).
    Returns None when there is no usable header; a date in the past gives 0.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "assume UTC"
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait in between.

    Backoff is exponential with full jitter (a uniform draw in
    ``[0, min(max_delay, delay * 2**retry)]``), so many clients failing at once do
    not retry in lock-step. A server's ``Retry-After`` replaces the draw, capped
    at ``max_retry_after``. With ``jitter=False`` the wait is the ceiling itself
    (the background sender's schedule, whose retries come on top of the API
    client's jittered ones).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    delay: float = DEFAULT_RETRY_DELAY
    max_delay: float = DEFAULT_MAX_RETRY_DELAY
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ValueError(f"max_retries must be an int, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries!r}")
        for name in ("delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")

    def ceiling(self, retry: int) -> float:
        """The longest backoff before retry number ``retry`` (0 for the first retry)."""
        return min(self.max_delay, self.delay * (2.0 ** min(retry, 62)))

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = self.ceiling(retry)
        return random.uniform(0.0, ceiling) if self.jitter else ceiling

    def next_delay(self, retry: int, retry_after: float | None = None) -> float | None:
        """The backoff before retry number ``retry``, or None when retries are used up."""
        if retry >= self.max_retries:
            return None
        return self.backoff(retry, retry_after)
