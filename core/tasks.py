"""The retry policy every Celery task shares: when to try again after a failure.

* A failure that says how long to wait (an exception with a `retry_after` attribute in seconds,
  as a rate limiter's refusal has) is retried after that wait plus up to a second of jitter, so
  the refused tasks of one bucket do not all come back at the same instant.
* Any other transient failure: exponential backoff with full jitter (a uniform wait between 0
  and min(`BACKOFF_CAP`, 2 ** (attempt + 1)) seconds), which spreads a burst of failures out
  instead of retrying them in lockstep.

Which failures are transient is the caller's to say (the EHR's are listed in ehr.tasks).
"""

from __future__ import annotations

import random

from celery import Task

__all__ = ["BACKOFF_CAP", "backoff", "full_jitter", "retry", "retry_countdown"]

BACKOFF_CAP = 300.0  # seconds


def full_jitter(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2 ** attempt)). Also
    the wait between an HTTP client's own tries of one request (seconds, not minutes)."""
    return random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - not a secret


def backoff(attempt: int) -> float:
    """Seconds before a task's retry number `attempt + 1`."""
    return full_jitter(attempt, base=2.0, cap=BACKOFF_CAP)


def retry_countdown(task: Task, exc: Exception, attempt: int | None = None) -> float:
    """Seconds until the next try: the wait the failure asks for, else `backoff` (`attempt`:
    the retries that count for the backoff, default all of the task's)."""
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        return float(retry_after) + random.uniform(0, 1)  # noqa: S311
    return backoff(task.request.retries if attempt is None else attempt)


def retry(
    task: Task, exc: Exception, attempt: int | None = None, countdown: float | None = None
) -> Exception:
    """Re-queue the task after `retry_countdown` (or the `countdown` given); raise the result."""
    if countdown is None:
        countdown = retry_countdown(task, exc, attempt)
    return task.retry(exc=exc, countdown=countdown)
