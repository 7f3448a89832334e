"""Live health counters per connection, in Redis (cheap on the hot path, shared by all workers).

Every figure of every adapter is recorded through one function, `HealthRecorder.record`, where
the thing happens: each HTTP attempt (`ehr.http`: its latency and error kind), each call as the
caller made it (first-try success, or its failure's reason), each wait for the rate limit or
after a 429 (`ehr.http`, around `ehr.ratelimit` and the Nextech governor), and each change's
freshness lag (the NexHealth webhook receiver: now - the event's `created_at`; the Nextech
poller: now - the appointment's `lastUpdated`). Counters go to a Redis hash (`calls`,
`err:<kind>`, `requests`, `first_try_ok`, `fail:<reason>`, `rl_waits`, `rl_wait_s`, ...),
latency and lag samples to capped lists (the rolling windows the percentiles come from).
`services.flush_health` moves the counters into `ConnectionHealth` for the dashboard. A Redis
hiccup never fails an EHR call: recording is best effort and logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from core.redis import get_redis
from ehr.ratelimit import redis_prefix

log = logging.getLogger("ehr.health")

WINDOW = 1000  # latency / lag samples kept per connection


class Figure(StrEnum):
    """What one `record` call counts (its `value` and `reason` in brackets)."""

    ATTEMPT = "attempt"  # one HTTP attempt (its seconds; its error kind, "" when answered)
    CALL = "call"  # one call's outcome (attempts it took; "" on success, else the failure kind)
    RATE_WAIT = "rate_wait"  # a wait for the rate limit or after a 429 (its seconds)
    FRESHNESS = "freshness"  # a change seen (seconds since the EHR made it; the source)
    COUNT = "count"  # any other counter (the amount; the counter's name)


def _key(health_key: str, suffix: str) -> str:
    return f"{redis_prefix()}:health:{health_key}:{suffix}"


def _sample(p: Any, key: str, ms: float) -> None:
    p.lpush(key, round(ms, 3))
    p.ltrim(key, 0, WINDOW - 1)


class HealthRecorder:
    def __init__(self, health_key: str) -> None:
        self.health_key = health_key

    def record(self, figure: Figure, value: float = 1.0, reason: str = "") -> None:
        """Count one figure of this connection (see `Figure`); never raises."""
        counters = _key(self.health_key, "counters")
        try:
            p = get_redis().pipeline(transaction=False)
            if figure is Figure.ATTEMPT:
                p.hincrby(counters, "calls", 1)
                if reason:
                    p.hincrby(counters, f"err:{reason}", 1)
                _sample(p, _key(self.health_key, "latency"), value * 1000)
            elif figure is Figure.CALL:
                p.hincrby(counters, "requests", 1)
                if reason:
                    p.hincrby(counters, f"fail:{reason}", 1)
                elif value <= 1:
                    p.hincrby(counters, "first_try_ok", 1)
            elif figure is Figure.RATE_WAIT:
                p.hincrby(counters, "rl_waits", 1)
                p.hincrbyfloat(counters, "rl_wait_s", value)
            elif figure is Figure.FRESHNESS:
                if reason:
                    p.hincrby(counters, reason, 1)
                _sample(p, _key(self.health_key, "lag"), max(0.0, value) * 1000)
            elif float(value).is_integer():
                p.hincrby(counters, reason, int(value))
            else:
                p.hincrbyfloat(counters, reason, value)
            p.execute()
        except Exception:
            log.warning("could not record EHR health for %s", self.health_key, exc_info=True)


def take_counters(health_key: str) -> dict[str, float]:
    """Read and reset the counters atomically (the deltas since the last flush)."""
    client = get_redis()
    key = _key(health_key, "counters")
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(key)
    pipe.delete(key)
    raw, _ = pipe.execute()
    return {_text(k): float(v) for k, v in raw.items()}


def add_counts(
    stored: dict[str, Any] | None, counters: dict[str, float], prefix: str
) -> dict[str, int]:
    """`stored` counts per kind plus the live `counters` named `<prefix><kind>`."""
    out = {str(k): int(v) for k, v in (stored or {}).items()}
    for name, value in counters.items():
        if name.startswith(prefix):
            kind = name[len(prefix) :]
            out[kind] = out.get(kind, 0) + int(value)
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def samples(health_key: str, kind: str) -> list[float]:
    """The rolling window of latency ("latency") or freshness lag ("lag") samples, in ms."""
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
    p = get_redis().pipeline(transaction=False)
    p.hgetall(_key(health_key, "counters"))
    p.lrange(_key(health_key, "latency"), 0, WINDOW - 1)
    p.lrange(_key(health_key, "lag"), 0, WINDOW - 1)
    raw, latency_raw, lag_raw = p.execute()  # one round trip
    counters = {_text(k): float(v) for k, v in raw.items()}
    latency = [float(v) for v in latency_raw]
    lag = [float(v) for v in lag_raw]
    return {
        "counters": counters,
        "latency_p50_ms": percentile(latency, 50),
        "latency_p95_ms": percentile(latency, 95),
        "latency_samples": len(latency),
        "freshness_lag_p50_ms": percentile(lag, 50),
        "freshness_lag_p95_ms": percentile(lag, 95),
    }
