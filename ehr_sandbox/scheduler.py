"""A tiny timer thread: runs callables a moment later (the EHR's asynchronous insertions).

Why not asyncio tasks on the server's loop: insertions must not depend on request handling (a
hanging timeout fault must not delay them) and must run the same way however the app is served.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("ehr_sandbox.scheduler")


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Scheduler:
    def __init__(self, name: str = "sandbox-scheduler") -> None:
        self._cond = threading.Condition()
        self._jobs: list[_Job] = []
        self._seq = itertools.count()
        self._running = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)

    def call_later(self, delay_seconds: float, action: Callable[[], None]) -> None:
        with self._cond:
            due = time.monotonic() + max(0.0, delay_seconds)
            heapq.heappush(self._jobs, _Job(due, next(self._seq), action))
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs) + self._running

    def clear(self) -> None:
        with self._cond:
            self._jobs.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                now = time.monotonic()
                if not self._jobs or self._jobs[0].due > now:
                    wait = self._jobs[0].due - now if self._jobs else 1.0
                    self._cond.wait(timeout=wait)
                    continue
                job = heapq.heappop(self._jobs)
                self._running += 1
            try:
                job.action()
            except Exception:  # one bad job must not stop the EHR
                log.exception("scheduled job failed")
            finally:
                with self._cond:
                    self._running -= 1
