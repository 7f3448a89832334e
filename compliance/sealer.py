"""The audit sealer: one per database, after commit, in the order entries were written.

Writers only append (an entry's INSERT queues its payload, migration 0011); this seals. Each
run takes the database's sealer lock (a transaction-scoped advisory lock inside
`compliance_seal_pending`), so two sealers never interleave and a chain cannot fork; a run that
finds the lock taken returns at once (the other one is sealing). Who runs it:
- `manage.py seal_audit --follow`: a loop woken by `NOTIFY compliance_audit_seal` (sent by the
  entries' triggers at commit), sealing within milliseconds; the benchmarks run it.
- the Celery beat task `compliance.seal_audit` every `AUDIT_SEAL_SECONDS` (`make run`, and
  any deployment's beat): bounded lag even with no loop running.
- `seal_now()` (tests, the verifier): synchronously, waiting for the lock.
Every sealed batch ends with a signed checkpoint in the same transaction (`checkpoints`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import connection, transaction

log = logging.getLogger("compliance.sealer")

BATCH = 2000
CHANNEL = "compliance_audit_seal"


def seal_batch(*, wait: bool, batch: int = BATCH) -> int | None:
    """Seal up to `batch` queued entries in one transaction and record the checkpoint; returns
    how many were sealed, or None when another sealer holds the lock (and `wait` is false)."""
    from compliance import checkpoints

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT sealed, chains FROM compliance_seal_pending(%s, %s)", [batch, wait])
        sealed, chains = cur.fetchone()
        if sealed > 0:
            checkpoints.record(list(chains), int(sealed))
    return None if sealed < 0 else int(sealed)


def seal_pending(*, wait: bool = False, batch: int = BATCH) -> int:
    """Every entry queued now, in batches (each its own transaction unless called inside one);
    0 if another sealer is at work and `wait` is false."""
    total = 0
    while True:
        sealed = seal_batch(wait=wait, batch=batch)
        if sealed is None:
            return total
        total += sealed
        if sealed < batch:
            return total


def awaiting() -> int:
    """How many entries are written but not sealed yet."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM compliance_sealqueue")
        return int(cur.fetchone()[0])


def follow(stop: Callable[[], bool] = lambda: False, idle_seconds: float = 1.0) -> None:
    """Seal whenever entries are committed (LISTEN), and at least every `idle_seconds`, until
    `stop()` says so. Safe to run beside the beat task: the lock picks one of them."""
    if connection.in_atomic_block:
        raise RuntimeError("the sealer loop runs outside transactions (LISTEN needs autocommit)")
    connection.ensure_connection()
    raw = connection.connection
    raw.execute(f"LISTEN {CHANNEL}")
    try:
        while not stop():
            try:
                seal_pending(wait=False)
            except Exception:
                log.exception("audit sealing failed; retrying")
                time.sleep(idle_seconds)
            # Wait for the next commit's notification (one already received while sealing is
            # returned at once); then drain the others: one run seals what they announced.
            if list(raw.notifies(timeout=idle_seconds, stop_after=1)):
                for _ in raw.notifies(timeout=0):
                    pass
    finally:
        raw.execute(f"UNLISTEN {CHANNEL}")
