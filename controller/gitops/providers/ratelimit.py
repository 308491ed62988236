"""Rate limits of git hosts: wait as the host asks, a bounded number of times, for a bounded time.

GitHub answers a rate-limited call with 403 or 429 and `Retry-After` (secondary limits) or
`X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` (an epoch second); GitLab with 429 and
`Retry-After` or `RateLimit-Reset`; Bitbucket with 429. A build that would have to wait longer
than `MAX_WAIT_SECONDS` fails instead: the next build posts the plan again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests

MAX_ATTEMPTS = 4
MAX_WAIT_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 1.0
"""A 429 that does not say how long to wait."""
TIMEOUT_SECONDS = 30


class RateLimited(requests.RequestException):
    """Still rate limited after `MAX_ATTEMPTS`, or asked to wait longer than the bound."""


def wait_seconds(status: int, headers: Mapping[str, str], now: float) -> float | None:
    """How long the host asks us to wait before trying again, or None if this is not a rate
    limit (a 403 is a missing permission unless the headers say otherwise)."""
    if status not in (403, 429):
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    wait: float | None = None
    if (after := lower.get("retry-after")) is not None:
        wait = _retry_after(after, now)
    elif lower.get("x-ratelimit-remaining") == "0" or lower.get("ratelimit-remaining") == "0":
        reset = lower.get("x-ratelimit-reset") or lower.get("ratelimit-reset")
        wait = float(reset) - now if reset and reset.isdigit() else None
    if wait is None and status == 429:
        wait = DEFAULT_WAIT_SECONDS
    return None if wait is None else max(0.0, wait)


def _retry_after(value: str, now: float) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError):
        return None


class RetryingSession(requests.Session):
    """A `requests` session that retries rate-limited calls (a refused call did nothing, so a
    POST is as safe to repeat as a GET) and gives every call a timeout. It never hands a rate
    limit back: a client library that retries them itself would wait without a bound."""

    def __init__(
        self,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._sleep = sleep
        self._clock = clock

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        attempt = 0
        while True:
            attempt += 1
            response = super().request(method, url, *args, **kwargs)
            wait = wait_seconds(response.status_code, response.headers, self._clock())
            if wait is None:
                return response
            response.close()
            if attempt == MAX_ATTEMPTS or wait > MAX_WAIT_SECONDS:
                raise RateLimited(
                    f"rate limited ({response.status_code}) after {attempt} attempt(s); "
                    f"the host asks to wait {wait:.0f} s (at most {MAX_WAIT_SECONDS:.0f} s here)"
                )
            self._sleep(wait)
