"""The shared Redis rate limiter: strict sliding windows, atomic across threads, per scope."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from ehr.errors import EHRRateLimited
from ehr.nexhealth.ratelimit import DEFAULT_LIMITS, buckets_for, parse_limits
from ehr.ratelimit import Limit, RateLimiter


def limiter(limit: int, window: float, **kwargs) -> RateLimiter:
    return RateLimiter(
        f"test-{uuid.uuid4().hex}",
        {**DEFAULT_LIMITS, "overall": Limit(limit, window)},
        safety_ratio=0.0,
        safety_seconds=0.02,
        **kwargs,
    )


def test_buckets_mirror_nexhealths_limits():
    assert buckets_for("GET", "/appointments") == [
        "overall",
        "patients_appointments",
        "appointments_get",
    ]
    assert buckets_for("POST", "/appointments") == ["overall", "patients_appointments"]
    assert buckets_for("GET", "/appointments/12") == ["overall", "patients_appointments"]
    assert buckets_for("GET", "/patients") == ["overall", "patients_appointments"]
    assert buckets_for("GET", "/available_slots") == ["overall", "other", "slots"]
    assert buckets_for("GET", "/appointment_slots") == ["overall", "other", "slots"]
    assert buckets_for("POST", "/authenticates") == ["overall", "other"]
    assert DEFAULT_LIMITS["overall"] == Limit(100, 1.0)
    assert DEFAULT_LIMITS["patients_appointments"] == Limit(1000, 60.0)


def test_overrides_are_validated():
    limits = parse_limits({"overall": {"limit": 100, "window_seconds": 60}})
    assert limits["overall"] == Limit(100, 60.0)
    assert limits["slots"] == DEFAULT_LIMITS["slots"]
    with pytest.raises(ValueError, match="unknown"):
        parse_limits({"everything": [1, 1]})
    with pytest.raises(ValueError, match="positive"):
        parse_limits({"overall": {"limit": 0}})


def test_a_full_window_refuses_with_the_time_until_a_slot_frees():
    rl = limiter(5, 1.0)
    assert all(rl.try_acquire(["overall"]) == 0 for _ in range(5))
    wait = rl.try_acquire(["overall"])
    assert 0.5 < wait <= 1.05
    with pytest.raises(EHRRateLimited) as refused:
        rl.acquire(["overall"], max_wait=0)
    assert refused.value.retry_after > 0.5


def test_acquire_waits_when_the_wait_is_within_the_bound():
    slept: list[float] = []
    rl = limiter(2, 0.3, sleep=lambda s: (slept.append(s), time.sleep(s)))
    for _ in range(2):
        assert rl.acquire(["overall"], max_wait=5) == 0
    waited = rl.acquire(["overall"], max_wait=5)
    assert waited > 0.2 and slept


def test_every_bucket_of_a_call_must_have_room_and_a_refusal_consumes_nothing():
    scope = f"test-{uuid.uuid4().hex}"
    limits = {**DEFAULT_LIMITS, "overall": Limit(3, 1.0), "appointments_get": Limit(1, 1.0)}
    rl = RateLimiter(scope, limits, safety_ratio=0, safety_seconds=0)
    assert rl.try_acquire(buckets_for("GET", "/appointments")) == 0
    assert rl.try_acquire(buckets_for("GET", "/appointments")) > 0  # its own bucket is full
    # ...but that refusal took nothing from `overall`: two other calls still fit.
    assert rl.try_acquire(buckets_for("GET", "/providers")) == 0
    assert rl.try_acquire(buckets_for("GET", "/providers")) == 0
    assert rl.try_acquire(buckets_for("GET", "/providers")) > 0


def test_scopes_are_independent():
    a, b = limiter(1, 5.0), limiter(1, 5.0)
    assert a.try_acquire(["overall"]) == 0
    assert a.try_acquire(["overall"]) > 0
    assert b.try_acquire(["overall"]) == 0


def test_threads_sharing_a_scope_never_exceed_the_window():
    """Twelve threads race for 20 admissions per second; no second ever holds more.

    Admission times are read from Redis itself (an observer bucket that never refuses records
    each admission in the same atomic script), so a thread descheduled between its admission and
    any local clock reading cannot make the check pass or fail by accident."""
    scope = f"test-{uuid.uuid4().hex}"
    limits = {**DEFAULT_LIMITS, "overall": Limit(20, 1.0), "observer": Limit(100_000, 600.0)}

    def worker() -> None:
        rl = RateLimiter(scope, limits, safety_ratio=0, safety_seconds=0.1)
        for _ in range(6):
            rl.acquire(["overall", "observer"], max_wait=10)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    observer = RateLimiter(scope, limits)
    admitted = sorted(
        score / 1_000_000
        for _, score in observer.redis.zrange(observer.key("observer"), 0, -1, withscores=True)
    )
    observer.redis.delete(observer.key("observer"))
    assert len(admitted) == 72
    for i, start in enumerate(admitted):
        assert len([t for t in admitted[i:] if t < start + 1.0]) <= 20


def test_a_wait_that_ends_in_a_refusal_still_says_how_long_it_waited():
    """The window is still full after our first wait (the sleep returns at once, so the slot
    has not freed): the second wait would pass the bound and we are refused, with the time
    already waited on the refusal (the connection's health counts it as a rate-limit wait)."""
    pauses: list[float] = []

    def sleep_that_returns_at_once(seconds: float) -> None:
        pauses.append(seconds)

    rl = limiter(1, 1.0, sleep=sleep_that_returns_at_once)
    assert rl.try_acquire(["overall"]) == 0
    with pytest.raises(EHRRateLimited) as refused:
        rl.acquire(["overall"], max_wait=1.5)
    assert len(pauses) == 1 and refused.value.waited == pytest.approx(pauses[0])
    assert refused.value.waited > 0.5
