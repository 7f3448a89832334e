"""Injected faults, rate limiting and the counters that let a test prove what a client did.

Why here and not in the client's tests: the portal's client must be exercised against real
misbehaviour over real HTTP (429 storms, 5xx, hangs, lost or doubled webhooks). Every knob is
switchable at run time through ``/_admin/faults`` and ``/_admin/rate_limits``.

Rate limiting is a strict sliding window per scope and bucket (NexHealth's: API key and bucket;
Nextech's: user and endpoint): a request is refused with 429 and ``Retry-After`` when the bucket
already accepted ``limit`` requests in the last ``window`` seconds. Independently of limiting,
every attempt is recorded so ``max_observed`` (the most attempts seen in any window) shows
whether a client ever went over the rate, refused or not.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# ---------------------------------------------------------------------------------------------
# Faults


@dataclass
class FaultSettings:
    """Switchable misbehaviour. Shares are probabilities in [0, 1]."""

    latency_ms: int = 0
    latency_jitter_ms: int = 0
    error_share: float = 0.0
    error_status: int = 500
    timeout_share: float = 0.0
    timeout_seconds: float = 30.0
    # "before": hang, then 504, nothing done. "after": the request is processed (a write lands)
    # and then the response hangs and becomes a 504: the ambiguous failure clients must survive.
    timeout_mode: str = "before"
    # The next `stall_count` requests hang `stall_seconds`, then are answered normally (a stuck
    # call that eventually completes): exact, where a share is only likely.
    stall_count: int = 0
    stall_seconds: float = 20.0
    # Restrict latency/5xx/timeouts/stalls to these endpoints ("POST /appointments"); empty = all.
    only_endpoints: list[str] = field(default_factory=list)
    insertion_failure_share: float = 0.0
    document_failure_share: float = 0.0
    webhook_drop_share: float = 0.0
    webhook_duplicate_share: float = 0.0
    webhook_delay_ms: int = 0
    # Deliveries emitted within this window are held and released in reverse order.
    webhook_reorder_window_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def applies_to(self, endpoint: str) -> bool:
        return not self.only_endpoints or endpoint in self.only_endpoints

    @staticmethod
    def validated(changes: dict[str, Any]) -> dict[str, Any]:
        """Check a partial update completely before anything is applied."""
        known = {f.name for f in fields(FaultSettings)}
        defaults = FaultSettings()
        out: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}")
            if key.endswith("_share"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{key} must be a number between 0 and 1")
                if not 0 <= value <= 1:
                    raise ValueError(f"{key} must be between 0 and 1")
                out[key] = float(value)
            elif key == "timeout_mode":
                if value not in ("before", "after"):
                    raise ValueError("timeout_mode must be 'before' or 'after'")
                out[key] = value
            elif key == "only_endpoints":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("only_endpoints must be a list of 'METHOD /path' strings")
                out[key] = list(value)
            elif key == "error_status":
                if not isinstance(value, int) or not 500 <= value <= 599:
                    raise ValueError("error_status must be a 5xx status code")
                out[key] = value
            else:
                current = getattr(defaults, key)
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number")
                out[key] = type(current)(value)
        return out


class Faults:
    """The live fault settings plus the dice. Reads are lock-free snapshots."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._stalls_left = 0
        self._rng = random.Random(seed)  # noqa: S311 - fault dice, not secrets

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        validated = FaultSettings.validated(changes)
        with self._lock:
            merged = {**self.settings.as_dict(), **validated}
            self.settings = FaultSettings(**merged)
            if "stall_count" in validated:
                self._stalls_left = self.settings.stall_count
            return self.settings

    def reset(self) -> None:
        with self._lock:
            self.settings = FaultSettings()
            self._stalls_left = 0

    def take_stall(self) -> bool:
        """True for each of the next `stall_count` requests that ask."""
        with self._lock:
            if self._stalls_left <= 0:
                return False
            self._stalls_left -= 1
            return True

    def roll(self, share: float) -> bool:
        if share <= 0:
            return False
        if share >= 1:
            return True
        with self._lock:
            return self._rng.random() < share

    def jitter(self, upto_ms: int) -> int:
        if upto_ms <= 0:
            return 0
        with self._lock:
            return self._rng.randint(0, upto_ms)

    async def inject(self, endpoint: str, stats: Stats) -> Injection:
        """Throw the dice for one request to ``endpoint`` (both surfaces, in the same order):
        a stall, latency, then a timeout or else a 5xx. Sleeps what it decides to sleep before
        handling; the caller answers ``status`` instead of handling, or loses the answer."""
        faults = self.settings
        if not faults.applies_to(endpoint):
            return NO_INJECTION
        if self.take_stall():
            stats.add("faults_injected", "stall")
            await asyncio.sleep(faults.stall_seconds)
            stats.add("faults_injected", "stall_released")
        delay_ms = faults.latency_ms + self.jitter(faults.latency_jitter_ms)
        if delay_ms:
            stats.add("faults_injected", "latency")
            await asyncio.sleep(delay_ms / 1000.0)
        if self.roll(faults.timeout_share):
            stats.add("faults_injected", "timeout")
            if faults.timeout_mode == "before":
                await asyncio.sleep(faults.timeout_seconds)
                return Injection(status=504)
            return Injection(lose_answer_after=faults.timeout_seconds)
        if self.roll(faults.error_share):
            stats.add("faults_injected", "error_5xx")
            return Injection(status=faults.error_status)
        return NO_INJECTION


@dataclass(frozen=True)
class Injection:
    """What the fault dice decided for one request."""

    status: int | None = None  # answer this (504: timed out before; else the injected 5xx)
    lose_answer_after: float = 0.0  # > 0: handle it, then hang this long and answer 504


NO_INJECTION = Injection()


# ---------------------------------------------------------------------------------------------
# Rate limiting


@dataclass(frozen=True)
class BucketRule:
    limit: int
    window_seconds: float


# As NexHealth publishes them: 100 requests/s per key overall; 10/s for GET /appointments and for
# the slot endpoints; 1,000/min for patient and appointment endpoints; 2,000/min for the others.
DEFAULT_RULES: dict[str, BucketRule] = {
    "overall": BucketRule(100, 1.0),
    "appointments_get": BucketRule(10, 1.0),
    "slots": BucketRule(10, 1.0),
    "patients_appointments": BucketRule(1000, 60.0),
    "other": BucketRule(2000, 60.0),
}


def buckets_for(method: str, path: str) -> list[str]:
    """The buckets one request counts against (``path`` is the route template)."""
    names = ["overall"]
    if path.startswith(("/patients", "/appointments")):
        names.append("patients_appointments")
    else:
        names.append("other")
    if method == "GET" and path == "/appointments":
        names.append("appointments_get")
    if method == "GET" and path in ("/available_slots", "/appointment_slots"):
        names.append("slots")
    return names


@dataclass
class _Window:
    accepted: deque[float] = field(default_factory=deque)
    attempts: deque[float] = field(default_factory=deque)
    max_observed: int = 0
    accepted_total: int = 0
    rejected_total: int = 0


class SlidingWindows:
    """The strict sliding windows of every (scope, bucket): the counting both sandboxes' limiters
    share (NexHealth's per API key and bucket, Nextech's per user and endpoint). Not locked: the
    limiter that owns it holds its own lock around every call."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], _Window] = defaultdict(_Window)

    def check(
        self, scope: str, rules: dict[str, BucketRule], now: float, *, enforce: bool
    ) -> float | None:
        """Record an attempt against every bucket in ``rules``; ``None`` if accepted by all (or
        not enforced), else the seconds until it would be."""
        wait = 0.0
        windows = []
        for bucket, rule in rules.items():
            win = self._windows[(scope, bucket)]
            horizon = now - rule.window_seconds
            while win.attempts and win.attempts[0] <= horizon:
                win.attempts.popleft()
            while win.accepted and win.accepted[0] <= horizon:
                win.accepted.popleft()
            win.attempts.append(now)
            win.max_observed = max(win.max_observed, len(win.attempts))
            if enforce and len(win.accepted) >= rule.limit:
                wait = max(wait, win.accepted[0] + rule.window_seconds - now)
            windows.append(win)
        if wait > 0:
            for win in windows:
                win.rejected_total += 1
            return wait
        for win in windows:
            win.accepted.append(now)
            win.accepted_total += 1
        return None

    def observed(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{scope: {bucket: {max_observed, accepted, rejected}}}``."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (scope, bucket), win in self._windows.items():
            out.setdefault(scope, {})[bucket] = {
                "max_observed": win.max_observed,
                "accepted": win.accepted_total,
                "rejected": win.rejected_total,
            }
        return out

    def clear(self) -> None:
        self._windows.clear()


def _positive_limit(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _positive_window(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number")
    return float(value)


class RateLimiter:
    """Sliding-window limits per API key and bucket, with per-key overrides."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = True
        self.defaults: dict[str, BucketRule] = dict(DEFAULT_RULES)
        self.per_key: dict[str, dict[str, BucketRule]] = {}
        self._windows = SlidingWindows()

    def rule(self, api_key: str, bucket: str) -> BucketRule:
        return self.per_key.get(api_key, {}).get(bucket) or self.defaults[bucket]

    def configure(
        self,
        rules: dict[str, Any],
        api_key: str | None = None,
        enabled: bool | None = None,
    ) -> None:
        """Set limits (``{"overall": {"limit": 100, "window_seconds": 60}}``) for one key or all."""
        parsed: dict[str, BucketRule] = {}
        for bucket, spec in rules.items():
            if bucket not in DEFAULT_RULES:
                raise ValueError(f"unknown bucket {bucket!r} (known: {', '.join(DEFAULT_RULES)})")
            if not isinstance(spec, dict):
                raise ValueError(f"{bucket} must be an object with limit and window_seconds")
            parsed[bucket] = BucketRule(
                _positive_limit(f"{bucket}.limit", spec.get("limit")),
                _positive_window(f"{bucket}.window_seconds", spec.get("window_seconds", 1.0)),
            )
        with self._lock:
            if enabled is not None:
                self.enabled = enabled
            if api_key is None:
                self.defaults.update(parsed)
            else:
                self.per_key.setdefault(api_key, {}).update(parsed)

    def reset(self, api_key: str | None = None) -> None:
        """Back to NexHealth's published limits (for one key, or everything incl. counters)."""
        with self._lock:
            if api_key is not None:
                self.per_key.pop(api_key, None)
                return
            self.enabled = True
            self.defaults = dict(DEFAULT_RULES)
            self.per_key = {}
            self._windows.clear()

    def clear_counters(self) -> None:
        with self._lock:
            self._windows.clear()

    def check(self, api_key: str, buckets: list[str], now: float | None = None) -> float | None:
        """Record an attempt; ``None`` if allowed, else the seconds until it would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            rules = {bucket: self.rule(api_key, bucket) for bucket in buckets}
            return self._windows.check(api_key, rules, now, enforce=self.enabled)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            observed = self._windows.observed()
            for api_key, buckets in observed.items():
                for bucket, counts in buckets.items():
                    rule = self.rule(api_key, bucket)
                    buckets[bucket] = {
                        "limit": rule.limit,
                        "window_seconds": rule.window_seconds,
                        **counts,
                    }
            return {
                "enabled": self.enabled,
                "defaults": {b: asdict(r) for b, r in self.defaults.items()},
                "per_key": {
                    k: {b: asdict(r) for b, r in rules.items()} for k, rules in self.per_key.items()
                },
                "observed": observed,
            }


class EndpointLimiter:
    """Nextech's published limit: ``limit`` requests per ``window`` seconds per user and
    endpoint (20 per second unless configured), one rule for every endpoint."""

    def __init__(self, limit: int = 20, window_seconds: float = 1.0) -> None:
        self._lock = threading.Lock()
        self.enabled = True
        self.limit = limit
        self.window = window_seconds
        self._windows = SlidingWindows()

    def configure(
        self,
        *,
        limit: int | None = None,
        window_seconds: float | None = None,
        enabled: bool | None = None,
    ) -> None:
        with self._lock:
            if limit is not None:
                self.limit = _positive_limit("limit", limit)
            if window_seconds is not None:
                self.window = _positive_window("window_seconds", window_seconds)
            if enabled is not None:
                self.enabled = bool(enabled)

    def reset(self) -> None:
        with self._lock:
            self.enabled, self.limit, self.window = True, 20, 1.0
            self._windows.clear()

    def check(self, user: str, endpoint: str, now: float | None = None) -> float | None:
        """Record an attempt; None if accepted, else seconds until one would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            rule = BucketRule(self.limit, self.window)
            return self._windows.check(user, {endpoint: rule}, now, enforce=self.enabled)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": self.enabled,
                "limit": self.limit,
                "window_seconds": self.window,
                "observed": self._windows.observed(),
            }


def retry_after_header(seconds: float) -> str:
    """HTTP wants whole seconds; never 0, or a polite client would retry at once."""
    return str(max(1, math.ceil(seconds)))


# ---------------------------------------------------------------------------------------------
# Counters


class Stats:
    """Thread-safe nested counters (``stats.add("appointments", "accepted")``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.time()
        self._counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, group: str, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[group][name] += amount

    def get(self, group: str, name: str) -> int:
        with self._lock:
            return self._counters.get(group, {}).get(name, 0)

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()
            self._started = time.time()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data: dict[str, Any] = {g: dict(c) for g, c in self._counters.items()}
            data["since"] = self._started
        return data
