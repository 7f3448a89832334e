"""A process of the 429 storm test: several threads calling through one shared practice bucket.

Spawned (not forked) by `test_client.py`, so it is a fresh interpreter like another worker
machine: it shares nothing with the test process but Redis and the sandbox.
"""

from __future__ import annotations

import threading

from ehr.nexhealth.client import ConnectionConfig, NexHealthClient


def hammer(config: ConnectionConfig, threads: int, calls: int) -> tuple[int, list[str]]:
    """Each thread makes `calls` GET /providers; returns (successes, errors)."""
    client = NexHealthClient(config, rate_wait=60.0, max_attempts=8)
    ok = 0
    errors: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        nonlocal ok
        for _ in range(calls):
            try:
                client.providers()
            except Exception as exc:
                with lock:
                    errors.append(repr(exc))
            else:
                with lock:
                    ok += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    client.close()
    return ok, errors
