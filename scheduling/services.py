"""Scheduling writes: holds (claim, release, expire), the receptionist API's clients, and the
EHR's own free slots at native-mode locations.

Holds are airline-seat claims on a slot. The guarantee against double booking is the database's
(GiST exclusion constraints on `Hold` per provider and per operatory); the advisory locks taken
here only make contention orderly: without them PostgreSQL aborts a share of concurrent inserts
with "deadlock detected" after a one-second wait. A claim tries the locks
without waiting; one that finds them taken waits for the claim in flight on a shared lock (every
waiter is woken together, none holds the lock for the others), leaves with "slot unavailable" if
that claim took the slot, and otherwise queues for the locks like any claim.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg.errors
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Application, RefreshToken

from accounts.models import Location, Practice, User
from compliance import audit
from compliance.models import AuditAction, ImpersonationSession
from compliance.scoping import practice_scope
from compliance.support_policy import current_session_id
from core import locks
from core.statements import CompiledQuery, compiled_query, insert_sql, made_statement, run_batch
from core.tenancy import tenant_context
from scheduling import selectors
from scheduling.models import ApiClient, ApiScope, Hold, HoldStatus, NativeSlot

log = logging.getLogger("scheduling.holds")

# Advisory lock namespaces (core.locks): one lock per provider and one per operatory a hold
# claims, always taken in sorted key order.
LOCK_NAMESPACE_PROVIDER = 0x484F4C50  # "HOLP"
LOCK_NAMESPACE_OPERATORY = 0x484F4C4F  # "HOLO"
LOCK_NAMESPACE_NATIVE_SLOTS = 0x4E534C54  # "NSLT": one refresh of a location's free slots
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
_ATTEMPTS = 3


class SlotUnavailableError(Exception):
    """The slot is taken, held by someone else, or not one the engine offers."""


class HoldBookedError(Exception):
    """A booked hold is released by cancelling its booking, not directly."""


def _lock_keys(provider_id: int, operatory_id: int) -> tuple[tuple[int, int], ...]:
    return ((LOCK_NAMESPACE_PROVIDER, provider_id), (LOCK_NAMESPACE_OPERATORY, operatory_id))


_TYPE_CHECKS = ("provider_ok", "operatory_ok")


def _type_and_lock_statement() -> CompiledQuery:
    """`selectors.type_statement` for a provider and an operatory, plus the try-locks in the
    same statement: tried only when the type exists and both ids are this practice's (so a
    foreign id never touches another practice's claims), NULL when not tried. The second key
    is tried only once the first is held (a held lower key while the higher one is refused
    keeps the fixed order)."""

    def make() -> CompiledQuery:
        inner = selectors.type_statement(_TYPE_CHECKS)
        try_locks = locks.TRY_XACT_LOCKS_SQL
        sql = (
            f"SELECT t.*, CASE WHEN t.provider_ok AND t.operatory_ok THEN {try_locks} END"  # noqa: S608 - fixed text
            f" FROM ({inner.sql}) t"
        )
        keys = tuple((True, name) for name in ("a", "b", "c", "d"))
        return CompiledQuery(sql, keys + inner.params).prepare()

    return made_statement(("hold-type-and-lock",), make)


def _type_and_try_lock(
    practice: Practice, appointment_type_id: int, provider_id: int, operatory_id: int
) -> tuple[tuple[selectors.TypeSpec, bool], bool]:
    """One round trip: the type (and that the ids are this practice's: DoesNotExist if not,
    before any lock) and whether both advisory locks were taken without waiting."""
    a, b, c, d = locks.ordered(*_lock_keys(provider_id, operatory_id))
    given = {"provider_ok": provider_id, "location_ok": None, "operatory_ok": operatory_id}
    rows = _type_and_lock_statement().rows(
        {"practice": practice.pk, "type": appointment_type_id, **given}
        | {"a": a, "b": b, "c": c, "d": d}
    )
    loaded = selectors.type_from_rows(rows, appointment_type_id, given)
    return loaded, bool(rows[0][-1])


def _lock_slot(provider_id: int, operatory_id: int) -> None:
    """Both locks, waiting, in one round trip and key order."""
    locks.xact_locks(*_lock_keys(provider_id, operatory_id))


def _wait_statement() -> CompiledQuery:
    names = ("a", "b", "c", "d") * 2
    params = tuple((True, n) for n in names)
    return made_statement(
        ("hold-wait-for-claimers",),
        lambda: CompiledQuery(locks.WAIT_FOR_HOLDERS_SQL, params).prepare(),
    )


def _wait_then_taken(
    practice: Practice,
    provider_id: int,
    operatory_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
) -> bool:
    """Wait until the claims now holding these locks have finished, then say whether a live
    hold of this provider or operatory overlaps [start, end): one round trip, two statements
    in one message, each with its own snapshot (the check sees what it waited for).

    The wait does not queue behind the other waiters: shared locks are granted to every waiter
    together when the claimer commits (an exclusive wait would hand the lock to one waiter at
    a time, each holding it for its own check). Session-level shared locks taken in key order
    and given back in the same statement, so none outlives it (a failure there ends the
    session or cannot happen: waits follow the fixed key order, so they cannot form a
    cycle)."""
    a, b, c, d = locks.ordered(*_lock_keys(provider_id, operatory_id))
    values: dict[str, Any] = {"practice": practice.pk, "provider": provider_id}
    values |= {"operatory": operatory_id, "start": start, "end": end, "now": now}
    _, taken = run_batch(
        [(_wait_statement(), {"a": a, "b": b, "c": c, "d": d}), (_taken_statement(), values)]
    )
    return bool(taken)


def _taken_statement() -> CompiledQuery:
    def build(v: Mapping[str, Any]) -> Any:
        return (
            Hold.objects.for_practice(v["practice"])
            .filter(Q(provider_id=v["provider"]) | Q(operatory_id=v["operatory"]))
            .filter(
                Q(status=HoldStatus.ACTIVE, expires_at__gt=v["now"]) | Q(status=HoldStatus.BOOKED)
            )
            .filter(start__lt=v["end"], end__gt=v["start"])
            .values_list("pk")[:1]
        )

    names = {
        "practice": int,
        "provider": int,
        "operatory": int,
        "start": datetime,
        "end": datetime,
        "now": datetime,
    }
    return compiled_query(("hold-taken",), names, build, prepare=True)


def _in_the_way_statement() -> CompiledQuery:
    def build(v: Mapping[str, Any]) -> Any:
        return (
            Hold.objects.for_practice(v["practice"])
            .filter(
                Q(provider_id=v["provider"]) | Q(operatory_id=v["operatory"]),
                status__in=[HoldStatus.ACTIVE, HoldStatus.BOOKED],
                start__lt=v["end"],
                end__gt=v["start"],
            )
            .order_by("pk")
            .select_for_update()
            .values_list("pk", "status", "expires_at")
        )

    names = {"practice": int, "provider": int, "operatory": int, "start": datetime, "end": datetime}
    return compiled_query(("hold-in-the-way",), names, build, prepare=True)


def _release_expired_in_the_way(rows: list[tuple[Any, ...]], now: datetime) -> None:
    """The precise re-check, under the advisory locks, on `_in_the_way_statement`'s rows: a
    live hold of this provider or this operatory overlapping the slot means it is taken.
    Expired holds still count for the exclusion constraint until released: release those (the
    statement locked them, in id order, so claimers never wait in a cycle)."""
    expired = []
    for pk, status, expires_at in rows:
        if status == HoldStatus.BOOKED or expires_at > now:
            raise SlotUnavailableError("held or booked by someone else")
        expired.append(pk)
    if expired:
        Hold.objects.filter(pk__in=expired).update(status=HoldStatus.RELEASED)


_HOLD_COLUMNS = (
    "practice_id",
    "appointment_type_id",
    "provider_id",
    "operatory_id",
    "location_id",
    "start",
    "end",
    "expires_at",
    "status",
    "created_at",
)


_HOLD_FIELDS = {f.attname: f for f in Hold._meta.concrete_fields}


def _insert_statement() -> CompiledQuery:
    def make() -> CompiledQuery:
        fields = [_HOLD_FIELDS[name] for name in _HOLD_COLUMNS]
        pk = connection.ops.quote_name(_HOLD_FIELDS["id"].column)
        sql = f"{insert_sql(Hold, fields, connection)} RETURNING {pk}"
        return CompiledQuery(sql, tuple((True, n) for n in _HOLD_COLUMNS)).prepare()

    return made_statement(("hold-insert",), make)


def _insert_hold(practice: Practice, appointment_type_id: int, slot: Any, now: datetime) -> Hold:
    """The new hold, by one statement built once from the model: `Hold` has no save() logic
    and no signal receivers (it is not audited: scheduling.apps.OPERATIONAL_MODELS),
    and the ORM's save path cost more than the statement."""
    hold = Hold(
        practice=practice,
        appointment_type_id=appointment_type_id,
        provider_id=slot.provider_id,
        operatory_id=slot.operatory_id,
        location_id=slot.location_id,
        start=slot.start,
        end=slot.end,
        expires_at=now + timedelta(minutes=settings.HOLD_MINUTES),
        status=HoldStatus.ACTIVE,
        created_at=timezone.now(),
    )
    values = {
        name: _HOLD_FIELDS[name].get_db_prep_save(getattr(hold, name), connection)
        for name in _HOLD_COLUMNS
    }
    ((hold.pk,),) = _insert_statement().rows(values)
    hold._state.adding = False
    hold._state.db = connection.alias
    return hold


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
    """One short transaction (local reads and writes only, never an EHR call), in four round
    trips when uncontended: type and try-locks; the re-check and the engine's inputs; insert;
    commit (and BEGIN, which psycopg sends on its own)."""
    with transaction.atomic():
        # The type first: unknown or foreign ids are a 404 and no lock is taken.
        loaded, locked = _type_and_try_lock(
            practice, appointment_type_id, provider_id, operatory_id
        )
        spec, bookable = loaded
        lo, hi = selectors.offered_slot_window(start, spec)
        if not locked:
            # Another claim on this provider or operatory is in flight, most likely for this
            # very slot: wait for it to finish, and if it took the slot leave at once (the
            # 29 losers of a 30-way race check together, not one after another).
            if _wait_then_taken(practice, provider_id, operatory_id, lo, hi, now):
                raise SlotUnavailableError("held or booked by someone else")
            _lock_slot(provider_id, operatory_id)
        if not bookable:  # a type the agent may not book has no slots for it
            raise SlotUnavailableError("not a slot the schedule offers")
        in_the_way: dict[str, Any] = {"practice": practice.pk, "provider": provider_id}
        in_the_way |= {"operatory": operatory_id, "start": lo, "end": hi}
        inputs = selectors.load_engine_inputs(
            practice,
            appointment_type_id,
            lo,
            hi,
            now=now,
            patient_status=patient_status,
            provider_id=provider_id,
            operatory_id=operatory_id,
            loaded=loaded,
            along=[(_in_the_way_statement(), in_the_way)],
        )
        _release_expired_in_the_way(inputs.along_rows[0], now)
        slot = selectors.slot_at(
            inputs, provider_id, operatory_id, start, now=now, patient_status=patient_status
        )
        if slot is None:
            raise SlotUnavailableError("not a slot the schedule offers")
        return _insert_hold(practice, appointment_type_id, slot, now)


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

    In one transaction: the type (and that the ids are this practice's) and, in the same
    statement, advisory locks on the provider and the operatory (fixed order), tried without
    waiting; if another claim holds them, a shared wait for it to finish and, in the same round
    trip, one query whether it took this slot (so the 29 losers of a 30-way race leave together
    right after the winner commits, without reading the schedule), then the locks; under the
    locks, in one round trip: holds overlapping the slot (a live one is a refusal; expired ones
    are released) and the engine's inputs for this exact slot (working hours, rules, and
    blocks, appointments and holds: three narrow queries), then the engine's check (lead time
    and horizon included), insert. The exclusion constraints stay the guarantee: a violation is
    a clean SlotUnavailableError, and a deadlock or serialisation failure is retried, never
    surfaced.

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
            support_session_id=current_session_id(),
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


def revoke_clients_of_support_session(session: ImpersonationSession) -> list[int]:
    """Revoke every API client made during a support session (their tokens die with them),
    each revocation on the practice's audit chain: what support made does not outlive the
    session. Returns the revoked clients' ids."""
    revoked = []
    with practice_scope(session.practice_id), transaction.atomic():
        clients = ApiClient.objects.filter(
            practice_id=session.practice_id, support_session_id=session.pk, revoked_at__isnull=True
        ).select_related("application")
        for client in clients:
            revoke_api_client(client)
            audit.record(
                AuditAction.API_CLIENT_REVOKED,
                practice=session.practice_id,
                actor_label=None,
                object_type="scheduling.ApiClient",
                object_ids=[client.pk],
                reason="support session ended",
                details={
                    "name": client.name,
                    "client_id": client.application.client_id,
                    "support_session_id": session.pk,
                },
            )
            revoked.append(client.pk)
    return revoked


# --- the EHR's own free slots (native-mode locations) -----------------------------------------


def replace_native_slots(
    location_id: int,
    start: datetime,
    end: datetime,
    slots: Iterable[tuple[int, int, datetime, datetime]],
    *,
    fetched_at: datetime | None = None,
) -> int:
    """Make the EHR's free slots at a location starting in [start, end) exactly `slots`
    ((appointment type id, provider id, start, end), ours), in one transaction: a reader sees
    the window before or after the refresh, never half of it. Returns how many are stored.
    Runs in the location's tenant context."""
    fetched_at = fetched_at or timezone.now()
    practice_id = Location.objects.values_list("practice_id", flat=True).get(pk=location_id)
    rows = {
        (type_id, provider_id, slot_start): slot_end
        for type_id, provider_id, slot_start, slot_end in slots
        if start <= slot_start < end and slot_start < slot_end
    }
    with transaction.atomic():
        # One refresh of a location at a time (the poll, a sync, the refresh after a booking):
        # two interleaved would each delete before the other's rows are committed.
        locks.xact_locks((LOCK_NAMESPACE_NATIVE_SLOTS, location_id))
        NativeSlot.objects.filter(location_id=location_id, start__gte=start, start__lt=end).delete()
        NativeSlot.objects.bulk_create(
            NativeSlot(
                practice_id=practice_id,
                location_id=location_id,
                appointment_type_id=type_id,
                provider_id=provider_id,
                start=slot_start,
                end=slot_end,
                fetched_at=fetched_at,
            )
            for (type_id, provider_id, slot_start), slot_end in rows.items()
        )
    return len(rows)


def drop_native_slots(location_id: int, provider_id: int, start: datetime, end: datetime) -> int:
    """The EHR refused [start, end) with this provider as taken: stop offering every free slot
    of theirs there that overlaps it, until the next refresh says otherwise."""
    deleted, _ = NativeSlot.objects.filter(
        location_id=location_id, provider_id=provider_id, start__lt=end, end__gt=start
    ).delete()
    return deleted
