"""A per-practice rate limiter in Redis, shared by every worker and web process.

Why Redis and not Celery's `rate_limit`: Celery limits per worker, so ten workers would send ten
times the rate. Here every process asks the same Redis, atomically (one Lua script per attempt),
so the practice as a whole never goes over its EHR rate.

Why a sliding window and not a classic token bucket: NexHealth (and the sandbox) count requests
in strict sliding windows ("at most 10 in any second"). A token bucket with capacity N and refill
N/window lets a full burst follow a full refill, which is up to 2N inside one window: a 429. The
bucket here is the strict variant: a log of admitted attempts per bucket (a sorted set scored by
Redis's own clock) and an attempt is admitted only if every bucket it counts against has fewer
than `limit` admissions in the last `window` (plus a safety margin for network jitter between
our admission and the EHR's count). Memory is bounded by the limit.

Admission time is not arrival time: on a busy machine a request admitted first can reach the
EHR after one admitted later, and then more than `limit` arrive within one of the EHR's windows
(the fault storm showed 429s). So the client admits an attempt as *in flight* (it counts from
admission until its answer is back, bounded by the client's timeouts) and `complete`s it when
the answer arrives; from then on it counts a full window more. Every attempt the EHR may have
counted within a window of another is therefore still in our log when that other is admitted.

Separate practices have separate keys (the connection's `rate_limit_key`), so a throttled practice
never delays another; and when a bucket is empty the caller waits only up to a bound, then gets
`EHRRateLimited(retry_after=...)` so a Celery task re-queues itself instead of holding a worker.

Each adapter names its own buckets and limits (``ehr.nexhealth.ratelimit`` NexHealth's published
ones, ``ehr.nextech.governor`` one bucket per Nextech endpoint).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from core.redis import get_redis
from ehr.errors import EHRRateLimited


@dataclass(frozen=True)
class Limit:
    limit: int
    window_seconds: float


# --- Redis ---------------------------------------------------------------------------------------

# The client is core.redis.get_redis (one pool per process, shared with sign-in throttling).


def redis_prefix() -> str:
    return str(getattr(settings, "INTEGRATIONS_REDIS_PREFIX", "hpp:integrations"))


# KEYS: one sorted set per bucket. ARGV: limit_1, window_us_1, ..., limit_n, window_us_n, member,
# in_flight_us. Returns 0 when admitted (and records the attempt in every bucket), else
# microseconds to wait. An admitted attempt is scored `now + in_flight_us` (it counts as long as
# it may still be travelling) until `complete` re-scores it with the time its answer came back.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local wait = 0
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local edge = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local at = tonumber(edge[2])
    if at > now then at = now end  -- still in flight: frees a window after it completes
    local w = at + window - now
    if w < 1 then w = 1 end
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
local member = ARGV[2 * n + 1]
local in_flight = tonumber(ARGV[2 * n + 2])
for i = 1, n do
  redis.call('ZADD', KEYS[i], now + in_flight, member)
  redis.call('PEXPIRE', KEYS[i], math.floor((tonumber(ARGV[2 * i]) + in_flight) / 1000) + 1000)
end
return 0
"""

# KEYS: the buckets of an admitted attempt. ARGV: member. Re-scores it "now" (if still there).
_COMPLETE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now, ARGV[1])
end
return 0
"""


class RateLimiter:
    """The buckets of one rate-limit scope (one practice's API key at one EHR)."""

    def __init__(
        self,
        scope: str,
        limits: Mapping[str, Limit],
        *,
        client: redis.Redis | None = None,
        safety_ratio: float | None = None,
        safety_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scope = scope
        self.limits = dict(limits)
        self.redis = client or get_redis()
        ratio, seconds = getattr(settings, "EHR_RATE_LIMIT_SAFETY", (0.02, 0.1))
        self.safety_ratio = ratio if safety_ratio is None else safety_ratio
        self.safety_seconds = seconds if safety_seconds is None else safety_seconds
        self._script = self.redis.register_script(_SCRIPT)
        self._complete = self.redis.register_script(_COMPLETE)
        self._sleep = sleep

    def key(self, bucket: str) -> str:
        return f"{redis_prefix()}:rl:{self.scope}:{bucket}"

    def effective_window(self, bucket: str) -> float:
        """The window we enforce: the EHR's plus a margin, so jitter cannot push us over."""
        window = self.limits[bucket].window_seconds
        return window * (1 + self.safety_ratio) + self.safety_seconds

    def try_acquire(
        self, buckets: Iterable[str], *, member: str | None = None, in_flight: float = 0.0
    ) -> float:
        """Admit one attempt now (returns 0.0) or say how many seconds until one would be.

        `in_flight` > 0 (with the `member` to `complete` later): the attempt counts from now
        until `complete` is called, at most `in_flight` seconds, and a full window after that.
        """
        names = [b for b in dict.fromkeys(buckets) if b in self.limits]
        if not names:
            return 0.0
        args: list[Any] = []
        for bucket in names:
            args += [self.limits[bucket].limit, int(self.effective_window(bucket) * 1_000_000)]
        args += [member or uuid.uuid4().hex, int(max(0.0, in_flight) * 1_000_000)]
        wait_us = int(self._script(keys=[self.key(b) for b in names], args=args))
        return wait_us / 1_000_000

    def acquire(
        self,
        buckets: Iterable[str],
        *,
        max_wait: float,
        member: str | None = None,
        in_flight: float = 0.0,
    ) -> float:
        """Block until admitted, at most `max_wait` seconds in total; returns the time waited.

        Raises `EHRRateLimited` with the remaining wait as `retry_after` when admission would
        take longer than the bound: a task should re-queue itself with that countdown rather
        than sleep in the worker.
        """
        names = list(buckets)
        waited = 0.0
        while True:
            wait = self.try_acquire(names, member=member, in_flight=in_flight)
            if wait <= 0:
                return waited
            if waited + wait > max_wait:
                refused = EHRRateLimited(
                    f"rate limit for {self.scope} reached ({', '.join(names)})",
                    retry_after=wait,
                )
                refused.waited = waited  # counted as a wait even though it ends in a refusal
                raise refused
            # A little jitter so the waiters of one bucket do not all wake at the same instant.
            pause = wait + random.uniform(0, min(0.05, wait))  # noqa: S311 - not a secret
            self._sleep(pause)
            waited += pause

    def complete(self, buckets: Iterable[str], member: str) -> None:
        """The admitted attempt `member` got its answer (or failed) now: from here it counts a
        window, like any attempt, instead of for as long as it might have been travelling."""
        names = [b for b in dict.fromkeys(buckets) if b in self.limits]
        if names:
            self._complete(keys=[self.key(b) for b in names], args=[member])

    def reset(self) -> None:
        """Forget every admission of this scope (tests, or after changing the limits)."""
        if self.limits:
            self.redis.delete(*[self.key(b) for b in self.limits])
