"""Celery tasks: thin, take ids, idempotent. The work is in services / sync / the adapter's
webhook receiver (`registry.process_webhook`).

Queues (settings.CELERY_TASK_ROUTES, INTEGRATIONS_QUEUES): booking insertion results on
`bookings`, everything else (mirror webhooks, syncs, reconcile) on `sync`, so bookings never wait
behind a practice's full sync. A rate-limited call raises `EHRRateLimited`; the task re-queues
itself with the bucket's `retry_after` instead of sleeping in the worker, so a throttled practice
holds no worker that another practice needs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import redis
from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from compliance.gate import phi_task
from core.tasks import retry as _retry
from core.tenancy import cross_tenant
from ehr import registry, services
from ehr.errors import EHRTransientError
from ehr.models import (
    ConnectionKind,
    ConnectionStatus,
    DeliveryStatus,
    EHRConnection,
    WebhookDelivery,
)

log = logging.getLogger("ehr.tasks")


# The shared task policy for EHR work a person may wait on (bookings, encounter notes): the
# countdown and retry are core.tasks' (a refusal's `retry_after`, else full-jitter backoff).
# Re-queues behind the rate limit before giving up: waiting in line is not a fault.
MAX_THROTTLED = 1000

# EHR faults (5xx, timeouts, 429) and our own infrastructure failing mid-task (Redis for the
# limiter and token, PostgreSQL): transient alike, retried with backoff instead of lost.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    EHRTransientError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OperationalError,
    InterfaceError,
)


def queue_for(kind: str) -> str:
    queues = getattr(settings, "INTEGRATIONS_QUEUES", {})
    return str(queues.get(kind, kind))


def enqueue_webhook(delivery: WebhookDelivery) -> None:
    """Insertion results go to the bookings queue (a caller may be waiting); the rest to sync."""
    kind = "bookings" if registry.webhook_is_urgent(delivery.event) else "sync"
    process_webhook.apply_async(args=(delivery.pk, delivery.practice_id), queue=queue_for(kind))


@shared_task(name="integrations.process_webhook", bind=True, max_retries=12, acks_late=True)
@phi_task
def process_webhook(self: Task, delivery_id: int, practice_id: int) -> str:
    """Database errors that pass (a deadlock or serialization failure, a dropped connection)
    are retried like EHR faults: the delivery stays pending until processed (the task is
    idempotent), instead of waiting for the polling fallback."""
    try:
        return registry.process_webhook(delivery_id, practice_id)
    except (EHRTransientError, OperationalError, InterfaceError) as exc:
        raise _retry(self, exc) from exc


@shared_task(name="integrations.sync_connection", bind=True, max_retries=8, acks_late=True)
@phi_task
def sync_connection(self: Task, connection_id: int, practice_id: int) -> dict[str, Any]:
    conn = services.get_connection(connection_id, practice_id)
    try:
        return services.sync_connection(conn).as_dict()
    except EHRTransientError as exc:
        raise _retry(self, exc) from exc


@shared_task(name="integrations.reconcile_connection", bind=True, max_retries=8, acks_late=True)
@phi_task
def reconcile_connection(self: Task, connection_id: int, practice_id: int) -> dict[str, Any]:
    conn = services.get_connection(connection_id, practice_id)
    try:
        return services.sync_connection(conn, reconcile=True).as_dict()
    except EHRTransientError as exc:
        raise _retry(self, exc) from exc


@shared_task(name="integrations.reconcile_near_connection", bind=True, acks_late=True)
@phi_task
def reconcile_near_connection(self: Task, connection_id: int, practice_id: int) -> dict[str, Any]:
    """A periodic repair, not a promise: an empty rate bucket or a failing EHR skips this run
    (the next period's run comes soon), so it never queues up behind booking traffic."""
    conn = services.get_connection(connection_id, practice_id)
    try:
        return services.reconcile_near_days(conn).as_dict()
    except EHRTransientError as exc:
        log.info("near reconcile of connection %s skipped: %s", connection_id, type(exc).__name__)
        return {"skipped": type(exc).__name__}


def _active_connections(
    *, kinds: tuple[str, ...] | None = None, exclude_kinds: tuple[str, ...] = ()
) -> list[tuple[int, int]]:
    with cross_tenant("integrations beat: list EHR connections"):
        rows = EHRConnection.objects.exclude(status=ConnectionStatus.DISABLED).exclude(
            status=ConnectionStatus.NEW
        )
        if kinds is not None:
            rows = rows.filter(kind__in=kinds)
        if exclude_kinds:
            rows = rows.exclude(kind__in=exclude_kinds)
        return list(rows.values_list("pk", "practice_id"))


# The full and near-days reconciles read a NexHealth-shaped calendar (working hours, blocks,
# operatories); a Nextech connection is kept fresh by its change poll instead.
_POLLED_KINDS = (ConnectionKind.NEXTECH,)


@shared_task(name="integrations.reconcile_all")
def reconcile_all() -> int:
    """Beat: a reconcile per connection, each its own task (one practice's trouble stays
    its own)."""
    pairs = _active_connections(exclude_kinds=_POLLED_KINDS)
    for connection_id, practice_id in pairs:
        reconcile_connection.apply_async(args=(connection_id, practice_id), queue=queue_for("sync"))
    return len(pairs)


@shared_task(name="integrations.reconcile_near_all")
def reconcile_near_all() -> int:
    """Beat (every EHR_NEAR_RECONCILE_SECONDS): the near days' reconcile per connection."""
    pairs = _active_connections(exclude_kinds=_POLLED_KINDS)
    for connection_id, practice_id in pairs:
        reconcile_near_connection.apply_async(
            args=(connection_id, practice_id), queue=queue_for("sync")
        )
    return len(pairs)


@shared_task(name="integrations.poll_nextech_connection", bind=True, acks_late=True)
@phi_task
def poll_nextech_connection(self: Task, connection_id: int, practice_id: int) -> dict[str, Any]:
    """One change poll of a Nextech connection (no webhooks there). Like the near reconcile,
    a periodic read, not a promise: an empty bucket or a failing EHR skips this run."""
    from ehr.nextech.poller import poll_changes
    from ehr.nextech.port import NextechPort
    from ehr.registry import port_for

    conn = services.get_connection(connection_id, practice_id)
    port = port_for(conn)
    assert isinstance(port, NextechPort)
    try:
        report = poll_changes(conn, port)
    except EHRTransientError as exc:
        log.info("poll of connection %s skipped: %s", connection_id, type(exc).__name__)
        return {"skipped": type(exc).__name__}
    return {
        "changed": report.changed,
        "outcomes": dict(report.outcomes),
        "busy": report.skipped,
        "slots": report.slots,
    }


@shared_task(name="integrations.refresh_native_slots", bind=True, acks_late=True)
@phi_task
def refresh_native_slots(self: Task, connection_id: int, practice_id: int) -> dict[str, Any]:
    """Re-read the near days of the EHR's own free slots (after our own booking or cancel
    landed). A periodic read's kin: a failing EHR skips it, the next poll reads them anyway."""
    from ehr.native_slots import NEAR_DAYS
    from ehr.native_slots import refresh_native_slots as refresh

    conn = services.get_connection(connection_id, practice_id)
    try:
        report = refresh(conn, days=NEAR_DAYS)
    except EHRTransientError as exc:
        log.info("slot refresh of connection %s skipped: %s", connection_id, type(exc).__name__)
        return {"skipped": type(exc).__name__}
    return {"requests": report.requests, "stored": report.stored}


@shared_task(name="integrations.poll_nextech_all")
def poll_nextech_all() -> int:
    """Beat (every NEXTECH_POLL_SECONDS): a change poll per Nextech connection. Each expires
    after a few periods, so a stalled queue never piles them up."""
    pairs = _active_connections(kinds=_POLLED_KINDS)
    period = float(getattr(settings, "NEXTECH_POLL_SECONDS", 2.0))
    for connection_id, practice_id in pairs:
        poll_nextech_connection.apply_async(
            args=(connection_id, practice_id), queue=queue_for("sync"), expires=period * 5
        )
    return len(pairs)


@shared_task(name="integrations.flush_health")
def flush_health() -> int:
    """Beat: persist the live health counters of every connection for the dashboard."""
    pairs = _active_connections()
    for connection_id, practice_id in pairs:
        try:
            services.flush_health(services.get_connection(connection_id, practice_id))
        except Exception:
            log.exception("could not flush health of connection %s", connection_id)
    return len(pairs)


@shared_task(name="integrations.requeue_stale_webhooks")
def requeue_stale_webhooks(older_than_seconds: int = 120, give_up_after_hours: int = 48) -> int:
    """Beat: deliveries still pending long after receipt (a lost task) are queued again; after
    two days they are marked failed (the reconcile repairs the mirror anyway)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    with cross_tenant("integrations beat: find stale webhook deliveries"):
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            received_at__lt=now - timedelta(hours=give_up_after_hours),
        ).update(status=DeliveryStatus.FAILED, outcome="gave up: never processed")
        stale = list(
            WebhookDelivery.objects.filter(
                status=DeliveryStatus.PENDING, received_at__lt=cutoff
            ).only("pk", "practice_id", "event")[:500]
        )
    for delivery in stale:
        enqueue_webhook(delivery)
    return len(stale)
