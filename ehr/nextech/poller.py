"""Freshness without webhooks: what staff changed in Nextech, found by asking.

Nextech documents no webhooks and points partners to ``_lastUpdated`` search. One poll of a
connection is one ``GET /Appointment?_lastUpdated=ge<cursor>&location.id=<id>`` (plus its pages):
every change since the cursor is mirrored and announced on ``ehr.events``, exactly as a webhook
would be, and the cursor moves on. Each change's poll lag (its ``lastUpdated`` to the poll that
saw it) is the connection's freshness lag, as webhook lag is a NexHealth connection's. At a
location in native mode the same poll then re-reads Nextech's free slots (``GET /Slot``, one
request per mapped type): the days of the changed appointments first, then the near days, and
the rest of the horizon every few minutes (``ehr.native_slots.refresh_for_poll``). Run every
couple of seconds per connection, that is a small share of each endpoint's 20 requests a second
(the governor queues rather than fails), leaving the rest for bookings.

The cursor (newest ``lastUpdated`` seen, and the ids seen at that instant) lives in Redis, so any
worker can run the next poll; a lock keeps two polls of one connection from overlapping.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.redis import get_redis
from core.tenancy import tenant_context
from ehr.events import announce_appointment
from ehr.health import Figure, HealthRecorder
from ehr.models import EHRConnection
from ehr.native_slots import is_native, refresh_for_poll
from ehr.ratelimit import redis_prefix
from ehr.sync import Mirror

from .port import NextechPort

LOCK_SECONDS = 60


@dataclass
class PollReport:
    changed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    cursor: datetime | None = None
    skipped: bool = False  # another poll of this connection was running
    slots: int = 0  # free slots written by this poll's slot re-reads (native mode only)


def _key(conn: EHRConnection) -> str:
    return f"{redis_prefix()}:nextech:poll:{conn.pk}"


def poll_changes(conn: EHRConnection, port: NextechPort) -> PollReport:
    """Mirror and announce every appointment of the connection's location changed since the
    last poll. The first poll starts a few minutes back (the adapter's initial look-back)."""
    redis = get_redis()
    key = _key(conn)
    if not redis.set(f"{key}:lock", "1", nx=True, ex=LOCK_SECONDS):
        return PollReport(skipped=True)
    try:
        raw = redis.get(key)
        state = json.loads(raw) if raw else {}
        cursor = datetime.fromisoformat(state["cursor"]) if state.get("cursor") else None
        seen = frozenset(state.get("seen") or [])
        location = str(conn.ehr_location_id) if conn.ehr_location_id is not None else None
        batch = port.nextech.changes_since(
            location_ids=[location] if location else [], cursor=cursor, seen_at_cursor=seen
        )
        report = PollReport(changed=len(batch.appointments), cursor=batch.cursor)
        recorder = HealthRecorder(conn.health_key)
        seen_at = timezone.now()
        for nx in batch.appointments:
            # Poll lag: from staff's change in Nextech to this poll seeing it (not for the
            # first poll's look-back, which finds changes older than the poller).
            if raw and nx.last_updated is not None:
                lag = (seen_at - nx.last_updated).total_seconds()
                recorder.record(Figure.FRESHNESS, lag, "polled_changes")
            appointment = port.as_ehr(nx)
            with tenant_context(conn.practice_id), transaction.atomic():
                # fetch=False: the mirror must not reach for the NexHealth client.
                report.outcomes[Mirror(conn, fetch=False).apply_appointment(appointment)] += 1
                announce_appointment(conn, appointment)
        if batch.cursor is not None or not raw:  # the state also says a poll has run
            moved = batch.cursor.isoformat() if batch.cursor is not None else None
            redis.set(key, json.dumps({"cursor": moved, "seen": sorted(batch.seen_at_cursor)}))
        if is_native(conn):
            changed = [nx.start for nx in batch.appointments]
            report.slots = sum(r.stored for r in refresh_for_poll(conn, changed))
        return report
    finally:
        redis.delete(f"{key}:lock")


def forget_cursor(conn: EHRConnection) -> None:
    get_redis().delete(_key(conn))
