"""core.tasks: the wait before a task's next try."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from core.tasks import BACKOFF_CAP, backoff, full_jitter, retry_countdown
from ehr.errors import EHRRateLimited, EHRUnavailable


def _task(retries: int) -> Any:
    return SimpleNamespace(request=SimpleNamespace(retries=retries))


def test_backoff_is_full_jitter_up_to_a_cap() -> None:
    for attempt, bound in ((0, 2), (1, 4), (3, 16), (20, BACKOFF_CAP)):
        waits = [backoff(attempt) for _ in range(200)]
        assert all(0 <= w <= bound for w in waits)
        assert max(waits) > bound / 2  # spread over the range, not a fixed delay


def test_a_refusal_that_says_how_long_is_honoured() -> None:
    exc = EHRRateLimited("bucket empty", retry_after=12.5)
    waits = [retry_countdown(_task(50), exc) for _ in range(100)]
    assert all(12.5 <= w <= 13.5 for w in waits)


def test_other_failures_back_off_by_the_attempts_that_count() -> None:
    exc = EHRUnavailable("503")
    assert all(0 <= retry_countdown(_task(0), exc) <= 2 for _ in range(100))
    # the task's retries include rate-limit deferrals; `attempt` counts the faults only
    assert all(0 <= retry_countdown(_task(40), exc, attempt=1) <= 4 for _ in range(100))


def test_full_jitter_scales_with_base_and_cap() -> None:
    waits = [full_jitter(3, base=0.25, cap=8.0) for _ in range(200)]
    assert all(0 <= w <= 2.0 for w in waits) and max(waits) > 1.0
    assert all(0 <= full_jitter(10, base=0.25, cap=8.0) <= 8.0 for _ in range(100))
