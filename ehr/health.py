"""Live health counters per connection, in Redis (cheap on the hot path, shared by all workers).

Every EHR call adds to a Redis hash (`calls`, `err:<kind>`, `rl_waits`, `rl_wait_ms`, `429`,
`retries`, `webhooks`) and pushes its latency onto a capped list (the rolling window the
percentiles are computed from); webhook lag (now - the event's `created_at`) likewise.
`services.flush_health` moves the counters into `ConnectionHealth` for the dashboard. A Redis
hiccup never fails an EHR call: recording is best effort and logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from core.redis import get_redis
from ehr.ratelimit import redis_prefix

log = logging.getLogger("ehr.health")

WINDOW = 1000  # latency / lag samples kept per connection


def _key(health_key: str, suffix: str) -> str:
    return f"{redis_prefix()}:health:{health_key}:{suffix}"


class HealthRecorder:
    def __init__(self, health_key: str) -> None:
        self.health_key = health_key

    def _run(self, fn: Any) -> None:
        try:
            fn(get_redis().pipeline(transaction=False)).execute()
        except Exception:
            log.warning("could not record EHR health for %s", self.health_key, exc_info=True)

    def call(self, latency_seconds: float, *, error_kind: str | None = None) -> None:
        def ops(p: Any) -> Any:
            p.hincrby(_key(self.health_key, "counters"), "calls", 1)
            if error_kind:
                p.hincrby(_key(self.health_key, "counters"), f"err:{error_kind}", 1)
            p.lpush(_key(self.health_key, "latency"), round(latency_seconds * 1000, 3))
            p.ltrim(_key(self.health_key, "latency"), 0, WINDOW - 1)
            return p

        self._run(ops)

    def incr(self, name: str, amount: float = 1) -> None:
        def ops(p: Any) -> Any:
            if isinstance(amount, float) and not amount.is_integer():
                return p.hincrbyfloat(_key(self.health_key, "counters"), name, amount)
            return p.hincrby(_key(self.health_key, "counters"), name, int(amount))

        self._run(ops)

    def rate_wait(self, seconds: float) -> None:
        def ops(p: Any) -> Any:
            p.hincrby(_key(self.health_key, "counters"), "rl_waits", 1)
            p.hincrbyfloat(_key(self.health_key, "counters"), "rl_wait_s", seconds)
            return p

        self._run(ops)

    def webhook(self, lag_seconds: float | None) -> None:
        def ops(p: Any) -> Any:
            p.hincrby(_key(self.health_key, "counters"), "webhooks", 1)
            if lag_seconds is not None:
                p.lpush(_key(self.health_key, "lag"), round(max(0.0, lag_seconds) * 1000, 3))
                p.ltrim(_key(self.health_key, "lag"), 0, WINDOW - 1)
            return p

        self._run(ops)


def take_counters(health_key: str) -> dict[str, float]:
    """Read and reset the counters atomically (the deltas since the last flush)."""
    client = get_redis()
    key = _key(health_key, "counters")
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(key)
    pipe.delete(key)
    raw, _ = pipe.execute()
    return {_text(k): float(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def samples(health_key: str, kind: str) -> list[float]:
    """The rolling window of latency ("latency") or webhook lag ("lag") samples, in ms."""
    return [float(v) for v in get_redis().lrange(_key(health_key, kind), 0, WINDOW - 1)]


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def live(health_key: str) -> dict[str, Any]:
    """Counters not yet flushed plus current percentiles (for the dashboard between flushes)."""
    client = get_redis()
    counters = {_text(k): float(v) for k, v in client.hgetall(_key(health_key, "counters")).items()}
    latency = samples(health_key, "latency")
    lag = samples(health_key, "lag")
    return {
        "counters": counters,
        "latency_p50_ms": percentile(latency, 50),
        "latency_p95_ms": percentile(latency, 95),
        "latency_samples": len(latency),
        "webhook_lag_p50_ms": percentile(lag, 50),
        "webhook_lag_p95_ms": percentile(lag, 95),
    }
