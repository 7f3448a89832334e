"""The rate governor: Nextech's 20 requests per second per user per endpoint, for every process.

Built on ``ehr.ratelimit.RateLimiter`` (the strict sliding window in Redis, with
attempts counted while in flight): here each endpoint (``GET /Slot``, ``POST /Appointment``,
``GET /Patient/{id}``, ...) is its own bucket, and the scope is the service user, because that is
what Nextech counts. A caller over the rate queues: it waits for admission up to a bound and only
then gets ``EHRRateLimited(retry_after)``, so a task can re-queue instead of holding a worker.

A 429 from Nextech (our count and theirs disagree, or another client shares the user) puts the
endpoint in a shared cool-down for its ``Retry-After``: every process waits it out, rather than
each discovering the 429 for itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from core.redis import get_redis
from ehr.errors import EHRRateLimited
from ehr.ratelimit import Limit, RateLimiter, redis_prefix

from .config import NextechConfig

_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9A-Fa-f-]{16,})$")


def endpoint_key(method: str, path: str) -> str:
    """``GET /Patient/4AAE.../Composition`` -> ``GET /Patient/{id}/Composition``."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts and parts[0] == "api":
        parts = parts[1:]
    shaped = ["{id}" if _ID_SEGMENT.match(p) else p for p in parts]
    return f"{method.upper()} /" + "/".join(shaped)


class RateGovernor:
    def __init__(
        self,
        config: NextechConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = Limit(config.limit, config.window_seconds)
        # No buckets yet: each endpoint adds its own on first use.
        self.limiter = RateLimiter(config.user_scope, {}, sleep=sleep)
        self.redis = get_redis()
        self.scope = config.user_scope
        self._sleep = sleep

    def _cooldown_key(self, bucket: str) -> str:
        return f"{redis_prefix()}:nextech:cooldown:{self.scope}:{bucket}"

    def acquire(self, bucket: str, *, member: str, in_flight: float, max_wait: float) -> float:
        """Block until the endpoint admits one more attempt; returns the seconds waited."""
        self.limiter.limits.setdefault(bucket, self.limit)
        waited = 0.0
        cooling = self.redis.pttl(self._cooldown_key(bucket))
        if cooling and cooling > 0:
            pause = cooling / 1000.0
            if pause > max_wait:
                raise EHRRateLimited(f"Nextech asked us to wait ({bucket})", retry_after=pause)
            self._sleep(pause)
            waited += pause
        try:
            return waited + self.limiter.acquire(
                [bucket], max_wait=max(0.0, max_wait - waited), member=member, in_flight=in_flight
            )
        except EHRRateLimited as refused:
            refused.waited += waited  # the cool-down waited out before the bucket refused
            raise

    def complete(self, bucket: str, member: str) -> None:
        self.limiter.complete([bucket], member)

    def cool_down(self, bucket: str, seconds: float) -> None:
        """Nextech said 429 with this Retry-After: everyone waits it out."""
        key = self._cooldown_key(bucket)
        ms = max(1, int(seconds * 1000))
        current = self.redis.pttl(key)
        if not current or current < ms:
            self.redis.set(key, "1", px=ms)

    def reset(self, buckets: list[str]) -> None:
        keys = [self.limiter.key(b) for b in buckets] + [self._cooldown_key(b) for b in buckets]
        if keys:
            self.redis.delete(*keys)
