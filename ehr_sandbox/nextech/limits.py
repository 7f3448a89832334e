"""Nextech's published limit: 20 requests per second per user per endpoint.

A strict sliding window per (user, endpoint): a request is refused with 429 and ``Retry-After``
when that pair already had ``limit`` accepted requests in the last ``window`` seconds. Every
attempt is also recorded, so ``max_observed`` (the most attempts in any window) shows whether a
client ever went over the rate at all, refused or not.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Window:
    accepted: deque[float] = field(default_factory=deque)
    attempts: deque[float] = field(default_factory=deque)
    max_observed: int = 0
    accepted_total: int = 0
    rejected_total: int = 0


class EndpointLimiter:
    def __init__(self, limit: int = 20, window_seconds: float = 1.0) -> None:
        self._lock = threading.Lock()
        self.enabled = True
        self.limit = limit
        self.window = window_seconds
        self._windows: dict[tuple[str, str], _Window] = defaultdict(_Window)

    def configure(
        self,
        *,
        limit: int | None = None,
        window_seconds: float | None = None,
        enabled: bool | None = None,
    ) -> None:
        with self._lock:
            if limit is not None:
                if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                    raise ValueError("limit must be a positive integer")
                self.limit = limit
            if window_seconds is not None:
                if not isinstance(window_seconds, int | float) or window_seconds <= 0:
                    raise ValueError("window_seconds must be positive")
                self.window = float(window_seconds)
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
            win = self._windows[(user, endpoint)]
            horizon = now - self.window
            while win.attempts and win.attempts[0] <= horizon:
                win.attempts.popleft()
            while win.accepted and win.accepted[0] <= horizon:
                win.accepted.popleft()
            win.attempts.append(now)
            win.max_observed = max(win.max_observed, len(win.attempts))
            if self.enabled and len(win.accepted) >= self.limit:
                win.rejected_total += 1
                return win.accepted[0] + self.window - now
            win.accepted.append(now)
            win.accepted_total += 1
            return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            observed: dict[str, dict[str, Any]] = {}
            for (user, endpoint), win in self._windows.items():
                observed.setdefault(user, {})[endpoint] = {
                    "max_observed": win.max_observed,
                    "accepted": win.accepted_total,
                    "rejected": win.rejected_total,
                }
            return {
                "enabled": self.enabled,
                "limit": self.limit,
                "window_seconds": self.window,
                "observed": observed,
            }
