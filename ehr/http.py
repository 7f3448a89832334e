"""What every adapter's HTTP client shares: timeouts and the retry policy, from settings.

Each adapter keeps its own client (auth, headers, error mapping differ); the numbers that say how
long to wait and how often to try again are the deployment's, the same for every EHR.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from django.conf import settings


def default_timeouts(name: str = "EHR_TIMEOUTS") -> httpx.Timeout:
    t = getattr(settings, name, None) or getattr(settings, "EHR_TIMEOUTS", {})
    return httpx.Timeout(
        connect=float(t.get("connect", 3.0)),
        read=float(t.get("read", 15.0)),
        write=float(t.get("write", 10.0)),
        pool=float(t.get("pool", 5.0)),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Tries per call, the longest wait for the rate limiter, and the backoff between tries;
    a value given by the caller (tests, benchmarks) wins over the setting."""

    max_attempts: int
    rate_wait: float
    backoff_base: float
    backoff_cap: float

    @classmethod
    def from_settings(
        cls,
        *,
        max_attempts: int | None = None,
        rate_wait: float | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
    ) -> RetryPolicy:
        return cls(
            max_attempts=max_attempts or int(getattr(settings, "EHR_MAX_ATTEMPTS", 5)),
            rate_wait=(
                float(getattr(settings, "EHR_RATE_LIMIT_MAX_WAIT_SECONDS", 5.0))
                if rate_wait is None
                else rate_wait
            ),
            backoff_base=backoff_base or float(getattr(settings, "EHR_BACKOFF_BASE_SECONDS", 0.25)),
            backoff_cap=backoff_cap or float(getattr(settings, "EHR_BACKOFF_CAP_SECONDS", 8.0)),
        )
