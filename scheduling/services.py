"""Scheduling writes: holds (claim, release, expire) and the receptionist API's clients.

Holds are airline-seat claims on a slot. The guarantee against double booking is the database's
(GiST exclusion constraints on `Hold` per provider and per operatory); the advisory locks taken
here only make contention orderly: without them PostgreSQL aborts a share of concurrent inserts
with "deadlock detected" after a one-second wait (measured in issue 3), with them the losers queue
for a few milliseconds and get a clean "slot unavailable".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import psycopg.errors
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Application, RefreshToken

from portal.models import Practice, User
from portal.tenancy import tenant_context
from scheduling import selectors
from scheduling.models import ApiClient, ApiScope, Hold, HoldStatus

log = logging.getLogger("scheduling.holds")

# Advisory lock keys are (namespace, id) pairs in the two-int form, namespaced so they cannot
# collide with other users of advisory locks. Always taken in sorted key order: with one fixed
# order two claimers can never wait on each other in a cycle.
LOCK_NAMESPACE_PROVIDER = 0x484F4C50  # "HOLP"
LOCK_NAMESPACE_OPERATORY = 0x484F4C4F  # "HOLO"
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
_ATTEMPTS = 3


class SlotUnavailableError(Exception):
    """The slot is taken, held by someone else, or not one the engine offers."""


class HoldBookedError(Exception):
    """A booked hold is released by cancelling its booking, not directly."""


def _int4(value: int) -> int:
    """An id folded into a signed 32-bit lock key (a collision only serialises more)."""
    folded = value % (1 << 32)
    return folded - (1 << 32) if folded >= 1 << 31 else folded


def _lock_slot(provider_id: int, operatory_id: int) -> None:
    """Both locks in one round trip, in key order (a SELECT list is evaluated left to right)."""
    (a, b), (c, d) = sorted(
        [
            (LOCK_NAMESPACE_PROVIDER, _int4(provider_id)),
            (LOCK_NAMESPACE_OPERATORY, _int4(operatory_id)),
        ]
    )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_advisory_xact_lock(%s, %s), pg_advisory_xact_lock(%s, %s)", [a, b, c, d]
        )


def _live_hold_covers(
    practice: Practice, provider_id: int, operatory_id: int, start: datetime, now: datetime
) -> bool:
    """Does a live hold of this provider or operatory cover the instant `start`? One query that
    answers the usual loser (someone holds this very slot) before any schedule is read."""
    return (
        Hold.objects.for_practice(practice)
        .filter(Q(provider_id=provider_id) | Q(operatory_id=operatory_id))
        .filter(Q(status=HoldStatus.ACTIVE, expires_at__gt=now) | Q(status=HoldStatus.BOOKED))
        .filter(start__lte=start, end__gt=start)
        .exists()
    )


def _release_expired_in_the_way(practice: Practice, slot: selectors.Slot, now: datetime) -> None:
    """Expired holds still count for the exclusion constraint until released: release those
    overlapping the slot (row locks taken in id order, so claimers never wait in a cycle)."""
    overlapping = (
        Hold.objects.for_practice(practice)
        .filter(
            Q(provider_id=slot.provider_id) | Q(operatory_id=slot.operatory_id),
            status__in=[HoldStatus.ACTIVE, HoldStatus.BOOKED],
            start__lt=slot.end,
            end__gt=slot.start,
        )
        .order_by("pk")
        .select_for_update()
        .values_list("pk", "status", "expires_at")
    )
    expired = []
    for pk, status, expires_at in overlapping:
        if status == HoldStatus.BOOKED or expires_at > now:
            raise SlotUnavailableError("held or booked by someone else")
        expired.append(pk)
    if expired:
        Hold.objects.filter(pk__in=expired).update(status=HoldStatus.RELEASED)


def _claim(
    practice: Practice,
    *,
    appointment_type_id: int,
    provider_id: int,
    operatory_id: int,
    start: datetime,
    patient_status: str,
    now: datetime,
) -> Hold:
    """One short transaction (local reads and writes only, never an EHR call)."""
    with transaction.atomic():
        _lock_slot(provider_id, operatory_id)
        if _live_hold_covers(practice, provider_id, operatory_id, start, now):
            raise SlotUnavailableError("held or booked by someone else")
        slot = selectors.offered_slot(
            practice,
            appointment_type_id=appointment_type_id,
            provider_id=provider_id,
            operatory_id=operatory_id,
            start=start,
            patient_status=patient_status,
            now=now,
        )
        if slot is None:
            raise SlotUnavailableError("not a slot the schedule offers")
        _release_expired_in_the_way(practice, slot, now)
        hold = Hold.objects.create(
            practice=practice,
            appointment_type_id=appointment_type_id,
            provider_id=slot.provider_id,
            operatory_id=slot.operatory_id,
            location_id=slot.location_id,
            start=slot.start,
            end=slot.end,
            expires_at=now + timedelta(minutes=settings.HOLD_MINUTES),
        )
    return hold


def place_hold(
    practice: Practice,
    *,
    appointment_type_id: int,
    provider_id: int,
    operatory_id: int,
    start: datetime,
    patient_status: str = "existing",
    now: datetime | None = None,
) -> Hold:
    """Claim a slot the engine offers for `settings.HOLD_MINUTES`. Call inside the practice's
    tenant context.

    In one transaction: advisory locks on the provider and the operatory (fixed order), a
    one-query refusal if a live hold already covers the start (so the 29 losers of a 30-way race
    wait briefly and leave, instead of each reading the schedule), the engine's check that this
    exact slot is offered (working hours, blocks, appointments, live holds, rules, lead time,
    horizon), release of expired holds in the way, insert. The exclusion constraints stay the
    guarantee: a violation is a clean SlotUnavailableError, and a deadlock or serialisation
    failure is retried, never surfaced.

    Raises the DoesNotExist of a foreign or unknown id, or SlotUnavailableError. The returned
    hold's start/end are in its location's zone (as the engine's slot was).
    """
    now = now or timezone.now()
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return _claim(
                practice,
                appointment_type_id=appointment_type_id,
                provider_id=provider_id,
                operatory_id=operatory_id,
                start=start,
                patient_status=patient_status,
                now=now,
            )
        except IntegrityError as exc:
            if isinstance(exc.__cause__, psycopg.errors.ExclusionViolation):
                raise SlotUnavailableError("claimed concurrently") from exc
            raise
        except OperationalError as exc:
            if not isinstance(exc.__cause__, _RETRYABLE):
                raise
            log.warning("hold claim attempt %d: %s", attempt, type(exc.__cause__).__name__)
    raise SlotUnavailableError("contention did not settle")


def release_hold(practice: Practice, hold_id: int) -> Hold:
    """Give a held slot back. Releasing a released or expired hold is a no-op (idempotent
    DELETE); a booked one raises HoldBookedError. A foreign id raises Hold.DoesNotExist."""
    with transaction.atomic():
        hold = Hold.objects.for_practice(practice).select_for_update().get(pk=hold_id)
        if hold.status == HoldStatus.BOOKED:
            raise HoldBookedError(hold_id)
        if hold.status == HoldStatus.ACTIVE:
            hold.status = HoldStatus.RELEASED
            hold.save(update_fields=["status"])
    return hold


def release_expired_holds(practice: Practice, now: datetime | None = None) -> int:
    """Mark expired active holds released (housekeeping: expired holds already stop counting
    for availability and are released by the next claim in their way). Returns how many.

    Rows are locked in id order and rows a claim is busy with are skipped, so a sweep never
    deadlocks with, nor waits for, a caller holding a slot.
    """
    now = now or timezone.now()
    with tenant_context(practice), transaction.atomic():
        expired = list(
            Hold.objects.for_practice(practice)
            .filter(status=HoldStatus.ACTIVE, expires_at__lte=now)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        return Hold.objects.filter(pk__in=expired).update(status=HoldStatus.RELEASED)


# --- API clients ------------------------------------------------------------------------------


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(scopes))
    unknown = [s for s in wanted if s not in ApiScope.values]
    if unknown or not wanted:
        raise ValueError(f"scopes must be a non-empty subset of {ApiScope.values}; got {wanted}")
    return wanted


def create_api_client(
    practice: Practice, name: str, scopes: Iterable[str], created_by: User | None = None
) -> tuple[ApiClient, str]:
    """A new client-credentials client for one practice, and its secret in plain text.

    The plain secret exists only in the return value: DOT stores a hash of it.
    """
    scopes = _clean_scopes(scopes)
    secret = generate_client_secret()
    with tenant_context(practice), transaction.atomic():
        application = Application.objects.create(
            name=f"{practice.slug}: {name}"[:255],
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
            hash_client_secret=True,
            skip_authorization=True,
        )
        client = ApiClient.objects.create(
            practice=practice,
            application=application,
            name=name,
            scopes=scopes,
            created_by=created_by,
        )
    return client, secret


def _drop_tokens(application_id: int) -> None:
    RefreshToken.objects.filter(application_id=application_id).delete()
    AccessToken.objects.filter(application_id=application_id).delete()


def rotate_api_client_secret(client: ApiClient, *, drop_tokens: bool = True) -> str:
    """A new secret (returned in plain text once). Outstanding tokens die with the old secret
    unless `drop_tokens` is False (a planned rotation may let them run out instead)."""
    secret = generate_client_secret()
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=client.application_id)
        application.client_secret = secret
        application.save(update_fields=["client_secret", "updated"])
        if drop_tokens:
            _drop_tokens(application.pk)
    return secret


def revoke_api_client(client: ApiClient, now: datetime | None = None) -> None:
    """Stop a client for good: its tokens stop working at once and no new ones are issued.

    The row stays (who had access, until when); the secret is replaced by an unknown one so the
    old secret is useless even to code that ignores `revoked_at`.
    """
    revoked_at = now or timezone.now()
    with tenant_context(client.practice_id), transaction.atomic():
        ApiClient.objects.filter(pk=client.pk).update(revoked_at=revoked_at)
        application = Application.objects.select_for_update().get(pk=client.application_id)
        application.client_secret = generate_client_secret()
        application.save(update_fields=["client_secret", "updated"])
        _drop_tokens(application.pk)
    client.revoked_at = revoked_at
