"""Keep the scheduling mirror equal to the EHR: full sync, per-record upserts for webhooks.

The mirror (scheduling.models: providers, operatories, descriptors, appointment types, working
hours, blocks, appointments) is matched to the EHR by `ehr_id`, never by position, so running a
sync twice changes nothing the second time (every write compares first). Rows the portal created
before it knew the EHR id (the config importer's) are adopted by a natural key (provider and
type by name, operatory by name at the location, descriptor by code at the location, a manual
working hour by its whole content) instead of duplicated.

Network first, then one short transaction: `full_sync` reads everything from the EHR, then writes
the whole mirror of the location inside `tenant_context(practice)`; a failure while reading
writes nothing.

Ownership rules (deliberate):
* providers, operatories, descriptors, appointment types: upserted; an operatory gone upstream is
  deactivated, a type gone upstream loses its EHR link; descriptors are never deleted (the
  importer owns codes too); types created here are not bookable by the voice agent until staff
  map them.
* working hours: the EHR's records, manual and synced, are mirrored with `source`, `label`,
  `specific_date`; one gone upstream is deleted here (synced replacement semantics: a provider's
  schedule change in Eaglesoft deletes records and makes new ones, with new ids).
* appointments and blocks (appointments with `unavailable: true`) in the window
  today-1 .. today+EHR_SYNC_HORIZON_DAYS: upserted in EHR order (see `apply_appointment`); one
  gone upstream is cancelled (appointment) or deleted (block), and only when the EHR, asked for
  it by id, says so: missing from the location's listing is not enough.

Ordering: `apply_appointment` keeps the newest `updated_at` per EHR appointment in `EHRVersion`
and ignores anything older, so a late webhook (or a sync read that raced one) never overwrites
newer state, and a late "created" after "cancelled" never resurrects it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Location
from core.outcome import Outcome
from core.tenancy import tenant_context
from ehr.errors import EHRNotFound
from ehr.models import AppointmentTypeLink, EHRConnection, EHRVersion
from ehr.port import Capability, EHRPort
from ehr.registry import port_for
from ehr.types import (
    EHRAppointment,
    EHRAppointmentType,
    EHRDescriptor,
    EHROperatory,
    EHRProvider,
    EHRWorkingHour,
)
from scheduling.models import (
    Appointment,
    AppointmentDescriptor,
    AppointmentType,
    Block,
    Operatory,
    Provider,
    WorkingHour,
)

log = logging.getLogger("ehr.sync")

KINDS = (
    "providers",
    "operatories",
    "descriptors",
    "appointment_types",
    "working_hours",
    "blocks",
    "appointments",
)


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass
class SyncReport:
    """What a sync changed, per kind. On a healthy mirror a reconcile reports zero."""

    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    problems: list[str] = field(default_factory=list)
    fetched: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, what: str, n: int = 1) -> None:
        counts = self.counts.setdefault(kind, Counts())
        setattr(counts, what, getattr(counts, what) + n)

    @property
    def changes(self) -> int:
        return sum(c.total for c in self.counts.values())

    def changes_by_kind(self) -> dict[str, int]:
        return {k: c.total for k, c in self.counts.items() if c.total}

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": {k: vars(c) for k, c in self.counts.items()},
            "changes": self.changes,
            "problems": self.problems[:50],
            "fetched": self.fetched,
        }


M = TypeVar("M", Provider, Operatory)


def _assign(obj: models.Model, values: dict[str, Any]) -> bool:
    """Set the values that differ and save only those; True if anything changed."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save(update_fields=changed)
    return bool(changed)


def sync_window(location: Location, now: datetime | None = None) -> tuple[datetime, datetime]:
    """Yesterday 00:00 (location time) to the sync horizon: what the mirror holds of the EHR."""
    now = now or timezone.now()
    today = now.astimezone(location.tz).date()
    start = datetime.combine(today - timedelta(days=1), datetime.min.time(), location.tz)
    horizon = int(getattr(settings, "EHR_SYNC_HORIZON_DAYS", 90))
    return start, start + timedelta(days=horizon + 2)


# --- the mirror writer -----------------------------------------------------------------------


class Mirror:
    """Writes one connection's EHR records into the scheduling mirror. Call inside
    `tenant_context(connection.practice_id)` and a transaction."""

    def __init__(
        self, connection: EHRConnection, report: SyncReport | None = None, *, fetch: bool = True
    ) -> None:
        self.conn = connection
        self.practice_id = connection.practice_id
        self.location = connection.location
        self.report = report or SyncReport()
        self.fetch = fetch  # may look up a missing provider/operatory in the EHR
        self._ehr: EHRPort | None = None
        self._providers: dict[int, Provider] | None = None
        self._operatories: dict[int, Operatory] | None = None
        self._type_links: dict[int, int] | None = None

    @property
    def ehr(self) -> EHRPort:
        if self._ehr is None:
            self._ehr = port_for(self.conn)
        return self._ehr

    # lookups

    def providers(self) -> dict[int, Provider]:
        if self._providers is None:
            rows = Provider.objects.filter(practice_id=self.practice_id, ehr_id__isnull=False)
            self._providers = {p.ehr_id: p for p in rows if p.ehr_id is not None}
        return self._providers

    def operatories(self) -> dict[int, Operatory]:
        if self._operatories is None:
            rows = Operatory.objects.filter(practice_id=self.practice_id, ehr_id__isnull=False)
            self._operatories = {o.ehr_id: o for o in rows if o.ehr_id is not None}
        return self._operatories

    def type_links(self) -> dict[int, int]:
        """EHR appointment type id -> our AppointmentType id, at this connection."""
        if self._type_links is None:
            self._type_links = dict(
                AppointmentTypeLink.objects.filter(connection=self.conn).values_list(
                    "ehr_id", "appointment_type_id"
                )
            )
        return self._type_links

    def provider_for(self, ehr_id: int | None) -> Provider | None:
        if ehr_id is None:
            return None
        found = self.providers().get(ehr_id)
        if found is None and self.fetch:
            try:
                found = self.upsert_provider(self.ehr.provider(ehr_id))
            except EHRNotFound:
                return None
        return found

    def unique_key(self, model: type[models.Model], name: str, ehr_id: int) -> str:
        base = slugify(name)[:48] or f"ehr-{ehr_id}"
        key = base
        if model._default_manager.filter(practice_id=self.practice_id, key=key).exists():
            key = f"{base[:40]}-{ehr_id}"[:64]
        return key

    # providers, operatories, descriptors, types

    def upsert_named(
        self,
        section: str,
        model: type[M],
        cache: dict[int, M],
        ehr_id: int,
        name: str,
        values: dict[str, Any],
        adoptable: models.QuerySet[M],
    ) -> M:
        """Match an EHR record by id; else adopt a row of the same name that has no EHR id yet
        (one the config importer made), else create one. Counts what it did in the report."""
        row = cache.get(ehr_id)
        if row is None:
            row = adoptable.filter(ehr_id__isnull=True, name__iexact=name).order_by("id").first()
            if row is not None:
                _assign(row, {**values, "ehr_id": ehr_id})
                self.report.add(section, "updated")
        if row is None:
            row = model._default_manager.create(
                practice_id=self.practice_id,
                key=self.unique_key(model, name, ehr_id),
                ehr_id=ehr_id,
                **values,
            )
            self.report.add(section, "created")
        elif _assign(row, values):
            self.report.add(section, "updated")
        cache[ehr_id] = row
        return row

    def upsert_provider(self, p: EHRProvider) -> Provider:
        return self.upsert_named(
            "providers",
            Provider,
            self.providers(),
            p.id,
            p.name,
            {"name": p.name[:200], "active": not p.inactive},
            Provider.objects.filter(practice_id=self.practice_id),
        )

    def upsert_operatory(self, o: EHROperatory) -> Operatory:
        return self.upsert_named(
            "operatories",
            Operatory,
            self.operatories(),
            o.id,
            o.name,
            {"name": o.name[:200], "active": o.active, "location_id": self.location.pk},
            Operatory.objects.filter(practice_id=self.practice_id, location=self.location),
        )

    def upsert_descriptor(self, d: EHRDescriptor) -> AppointmentDescriptor:
        row = (
            AppointmentDescriptor.objects.filter(location=self.location, ehr_id=d.id).first()
            or AppointmentDescriptor.objects.filter(location=self.location, code=d.code).first()
        )
        values = {"code": d.code[:32], "description": d.name[:200], "kind": d.kind, "ehr_id": d.id}
        if row is None:
            row = AppointmentDescriptor.objects.create(
                practice_id=self.practice_id, location=self.location, **values
            )
            self.report.add("descriptors", "created")
        elif _assign(row, values):
            self.report.add("descriptors", "updated")
        return row

    def upsert_type(
        self,
        t: EHRAppointmentType,
        descriptors_by_ehr: dict[int, AppointmentDescriptor],
        *,
        ehr_maps_descriptors: bool = True,
    ) -> AppointmentType:
        links = self.type_links()
        type_id = links.get(t.id)
        row = AppointmentType.objects.filter(pk=type_id).first() if type_id else None
        changed = False
        if row is None:
            row = AppointmentType.objects.filter(practice_id=self.practice_id, ehr_id=t.id).first()
        if row is None:
            linked_here = set(links.values())
            candidates = AppointmentType.objects.filter(
                practice_id=self.practice_id, name__iexact=t.name
            ).order_by("id")
            row = next((c for c in candidates if c.pk not in linked_here), None)
        if row is None:
            # New in the EHR: mirrored, but the voice agent may not book it until staff map it.
            row = AppointmentType.objects.create(
                practice_id=self.practice_id,
                key=self.unique_key(AppointmentType, t.name, t.id),
                name=t.name[:200],
                minutes=t.minutes,
                bookable=False,
                ehr_id=t.id,
            )
            self.report.add("appointment_types", "created")
        else:
            values: dict[str, Any] = {"name": t.name[:200], "minutes": t.minutes}
            if row.ehr_id is None:
                values["ehr_id"] = t.id
            changed = _assign(row, values)
        if links.get(t.id) != row.pk:
            AppointmentTypeLink.objects.filter(connection=self.conn, ehr_id=t.id).delete()
            AppointmentTypeLink.objects.filter(connection=self.conn, appointment_type=row).delete()
            AppointmentTypeLink.objects.create(
                practice_id=self.practice_id,
                connection=self.conn,
                appointment_type=row,
                ehr_id=t.id,
            )
            for ehr_id, pk in list(links.items()):
                if pk == row.pk:
                    del links[ehr_id]
            links[t.id] = row.pk
            changed = True
        # The type's descriptors at this location are the EHR's mapping (other locations kept),
        # when the EHR maps types to descriptors at all; otherwise they are the practice's own.
        wanted = {descriptors_by_ehr[i].pk for i in t.descriptor_ids if i in descriptors_by_ehr}
        current = set(row.descriptors.filter(location=self.location).values_list("pk", flat=True))
        if ehr_maps_descriptors and wanted != current:
            if current - wanted:
                row.descriptors.remove(*(current - wanted))
            if wanted - current:
                row.descriptors.add(*(wanted - current))
            changed = True
        if changed:
            self.report.add("appointment_types", "updated")
        return row

    # working hours

    def upsert_working_hour(self, w: EHRWorkingHour) -> WorkingHour | None:
        provider = self.provider_for(w.provider_id)
        operatory = self.operatories().get(w.operatory_id) if w.operatory_id else None
        if provider is None or operatory is None:
            self.report.problems.append(
                f"working hour {w.id}: unknown provider {w.provider_id} or operatory "
                f"{w.operatory_id} (the mirror needs both)"
            )
            return None
        values: dict[str, Any] = {
            "provider_id": provider.pk,
            "operatory_id": operatory.pk,
            "days": list(w.days),
            "specific_date": w.specific_date,
            "begin": w.begin,
            "end": w.end,
            "label": w.label[:100],
            "source": w.source,
            "active": w.active,
        }
        row = WorkingHour.objects.filter(practice_id=self.practice_id, ehr_id=w.id).first()
        if row is None and w.source == "manual":
            # The importer's copy of a record we posted: adopt it by content.
            for candidate in WorkingHour.objects.filter(
                practice_id=self.practice_id,
                ehr_id__isnull=True,
                source="manual",
                provider=provider,
                operatory=operatory,
                begin=w.begin,
                end=w.end,
                specific_date=w.specific_date,
            ).order_by("id"):
                if sorted(candidate.days) == sorted(w.days):
                    row = candidate
                    break
        created = row is None
        if row is None:
            row = WorkingHour.objects.create(practice_id=self.practice_id, ehr_id=w.id, **values)
            changed = True
        else:
            changed = _assign(row, {**values, "ehr_id": w.id})
        links = self.type_links()
        wanted = {links[i] for i in w.appointment_type_ids if i in links}
        current = set(row.appointment_types.values_list("pk", flat=True))
        if wanted != current:
            row.appointment_types.set(wanted)
            changed = True
        if created:
            self.report.add("working_hours", "created")
        elif changed:
            self.report.add("working_hours", "updated")
        return row

    def replace_working_hours(
        self, records: Iterable[EHRWorkingHour], *, provider_ehr_id: int | None = None
    ) -> None:
        """Upsert `records` and delete this location's EHR-linked working hours (of one provider,
        if given) that are no longer among them: synced replacement semantics."""
        seen: set[int] = set()
        for record in records:
            if self.upsert_working_hour(record) is not None:
                seen.add(record.id)
        stale = WorkingHour.objects.filter(
            practice_id=self.practice_id,
            operatory__location=self.location,
            ehr_id__isnull=False,
        ).exclude(ehr_id__in=seen)
        if provider_ehr_id is not None:
            stale = stale.filter(provider__ehr_id=provider_ehr_id)
        n = stale.count()
        if n:
            stale.delete()
            self.report.add("working_hours", "deleted", n)

    # appointments and blocks

    def apply_appointment(self, a: EHRAppointment) -> Outcome:
        """Mirror one EHR appointment (or block), unless we already hold newer state.

        Returns what happened: STALE, SKIPPED, UNCHANGED, CREATED, UPDATED or DELETED.
        Ordering: `updated_at` against the newest seen (`EHRVersion`); at equal times a
        cancellation wins, so duplicates and reorders converge on the EHR's latest state.
        """
        if a.location_id is not None and self.location.ehr_id not in (None, a.location_id):
            return Outcome.SKIPPED  # another location's (subscriptions are per subdomain)
        gone = a.gone
        version = self._locked_version(a.id)
        if version.updated_at is not None and a.updated_at is not None:
            if a.updated_at < version.updated_at:
                return Outcome.STALE
            if a.updated_at == version.updated_at and version.gone and not gone:
                return Outcome.STALE
        outcome = self._write_block(a, gone) if a.unavailable else self._write_appointment(a, gone)
        if outcome is not Outcome.SKIPPED:
            _assign(version, {"updated_at": a.updated_at or version.updated_at, "gone": gone})
        return outcome

    def _locked_version(self, ehr_id: int) -> EHRVersion:
        """The record's version row, locked until commit: concurrent writers of one EHR record
        (two webhook tasks, a sync) take turns, so the ordering check cannot race."""
        EHRVersion.objects.bulk_create(
            [
                EHRVersion(
                    practice_id=self.practice_id,
                    connection=self.conn,
                    resource="appointment",
                    ehr_id=ehr_id,
                )
            ],
            ignore_conflicts=True,
        )
        return EHRVersion.objects.select_for_update().get(
            connection=self.conn, resource="appointment", ehr_id=ehr_id
        )

    def _write_block(self, a: EHRAppointment, gone: bool) -> Outcome:
        # It may have been an ordinary appointment before (an EHR-side change of kind).
        Appointment.objects.filter(practice_id=self.practice_id, ehr_id=a.id).delete()
        row = Block.objects.filter(practice_id=self.practice_id, ehr_id=a.id).first()
        if gone:
            if row is None:
                return Outcome.UNCHANGED
            row.delete()
            self.report.add("blocks", "deleted")
            return Outcome.DELETED
        provider = self.provider_for(a.provider_id) if a.provider_id else None
        operatory = self.operatories().get(a.operatory_id) if a.operatory_id else None
        if a.start >= a.end:
            self.report.problems.append(f"block {a.id}: ends before it starts")
            return Outcome.SKIPPED
        values: dict[str, Any] = {
            "location_id": self.location.pk,
            "provider_id": provider.pk if provider else None,
            "operatory_id": operatory.pk if operatory else None,
            "start": a.start,
            "end": a.end,
            "reason": a.note[:200],
        }
        if row is None:
            Block.objects.create(practice_id=self.practice_id, ehr_id=a.id, **values)
            self.report.add("blocks", "created")
            return Outcome.CREATED
        if _assign(row, values):
            self.report.add("blocks", "updated")
            return Outcome.UPDATED
        return Outcome.UNCHANGED

    def _write_appointment(self, a: EHRAppointment, gone: bool) -> Outcome:
        Block.objects.filter(practice_id=self.practice_id, ehr_id=a.id).delete()
        row = Appointment.objects.filter(practice_id=self.practice_id, ehr_id=a.id).first()
        if gone and row is None:
            return Outcome.UNCHANGED  # never mirrored, nothing to free
        provider = self.provider_for(a.provider_id)
        if provider is None:
            self.report.problems.append(f"appointment {a.id}: no provider in the mirror")
            return Outcome.SKIPPED
        operatory = self.operatories().get(a.operatory_id) if a.operatory_id else None
        type_id = self.type_links().get(a.appointment_type_id) if a.appointment_type_id else None
        values: dict[str, Any] = {
            "location_id": self.location.pk,
            "provider_id": provider.pk,
            "operatory_id": operatory.pk if operatory else None,
            "appointment_type_id": type_id,
            "start": a.start,
            "end": a.end,
            "cancelled": gone,
            "patient_ehr_id": a.patient_id,
            "ehr_updated_at": a.updated_at,
        }
        if row is None:
            Appointment.objects.create(practice_id=self.practice_id, ehr_id=a.id, **values)
            self.report.add("appointments", "created")
            return Outcome.CREATED
        if row.ehr_updated_at is not None and values["ehr_updated_at"] is None:
            values["ehr_updated_at"] = row.ehr_updated_at
        if _assign(row, values):
            self.report.add("appointments", "updated")
            return Outcome.UPDATED
        return Outcome.UNCHANGED

    def retire_missing_appointments(
        self,
        seen: set[int],
        window: tuple[datetime, datetime],
        read_at: datetime,
        gone: set[int],
    ) -> None:
        """Appointments/blocks of this location in the window that the EHR no longer lists and,
        asked one by one, says are gone (`gone`: deleted, cancelled, or an insertion that
        failed): cancel / delete them. Not being listed is not enough: a location whose key or
        EHR id changed lists nothing of its old calendar, which is still live in the EHR. Only
        rows whose newest known state predates the read, so a webhook that raced it is kept."""
        lo, hi = window
        newer = set(
            EHRVersion.objects.filter(
                connection=self.conn, resource="appointment", updated_at__gte=read_at
            ).values_list("ehr_id", flat=True)
        )
        appts = (
            Appointment.objects.filter(
                practice_id=self.practice_id,
                location=self.location,
                ehr_id__isnull=False,
                cancelled=False,
                start__lt=hi,
                end__gt=lo,
            )
            .exclude(ehr_id__in=seen)
            .exclude(ehr_id__in=newer)
        )
        appts = appts.filter(ehr_id__in=gone)
        for row in appts:
            row.cancelled = True
            row.save(update_fields=["cancelled"])
            self._mark_gone(row.ehr_id)
            self.report.add("appointments", "deleted")
        blocks = (
            Block.objects.filter(
                practice_id=self.practice_id,
                location=self.location,
                ehr_id__isnull=False,
                start__lt=hi,
                end__gt=lo,
            )
            .exclude(ehr_id__in=seen)
            .exclude(ehr_id__in=newer)
        )
        blocks = blocks.filter(ehr_id__in=gone)
        for block in blocks:
            self._mark_gone(block.ehr_id)
            block.delete()
            self.report.add("blocks", "deleted")

    def _mark_gone(self, ehr_id: int | None) -> None:
        if ehr_id is None:
            return
        EHRVersion.objects.update_or_create(
            connection=self.conn,
            resource="appointment",
            ehr_id=ehr_id,
            defaults={"gone": True, "practice_id": self.practice_id},
        )


# --- full sync -------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """Everything read from the EHR for one location, before any write."""

    providers: list[EHRProvider]
    operatories: list[EHROperatory]
    descriptors: list[EHRDescriptor]
    types: list[EHRAppointmentType]
    working_hours: list[EHRWorkingHour]
    appointments: list[EHRAppointment]
    window: tuple[datetime, datetime]
    read_at: datetime
    problems: list[str]
    # Mirrored appointments/blocks not listed, that the EHR confirmed gone when asked by id.
    gone: set[int] = field(default_factory=set)
    # Whether the EHR's types name their descriptors (Capability.TYPE_DESCRIPTORS).
    ehr_maps_descriptors: bool = True


def read_snapshot(connection: EHRConnection, ehr: EHRPort | None = None) -> Snapshot:
    """All the reads of a full sync (rate-limited, retried), and nothing else."""
    client = ehr or port_for(connection)
    read_at = timezone.now()
    with tenant_context(connection.practice_id):
        location = connection.location  # loaded (and cached) inside its tenant
    window = sync_window(location, read_at)
    providers = client.providers()
    operatories = client.operatories()
    descriptors = client.descriptors()
    types = client.appointment_types()
    hours = client.working_hours()
    appointments, problems = client.appointments_listed(*window)
    # Providers that work or are booked here but are not listed for the location.
    known = {p.id for p in providers}
    referenced = {w.provider_id for w in hours} | {
        a.provider_id for a in appointments if a.provider_id is not None
    }
    for provider_id in sorted(referenced - known):
        try:
            providers.append(client.provider(provider_id))
        except EHRNotFound:
            problems.append(f"provider {provider_id} is referenced but unknown to the EHR")
    gone = confirmed_gone(client, connection, location, window, {a.id for a in appointments})
    return Snapshot(
        providers=providers,
        operatories=operatories,
        descriptors=descriptors,
        types=types,
        working_hours=hours,
        appointments=appointments,
        window=window,
        read_at=read_at,
        problems=problems,
        gone=gone,
        ehr_maps_descriptors=Capability.TYPE_DESCRIPTORS in client.capabilities,
    )


def confirmed_gone(
    client: EHRPort,
    connection: EHRConnection,
    location: Location,
    window: tuple[datetime, datetime],
    listed: set[int],
) -> set[int]:
    """The mirrored appointments and blocks the listing left out that the EHR, asked by id,
    says are gone (deleted, cancelled, or an insertion that failed)."""
    gone: set[int] = set()
    for ehr_id in _unlisted_mirror_ids(connection, location, window, listed):
        try:
            found = client.appointment(ehr_id)
        except EHRNotFound:
            gone.add(ehr_id)
            continue
        if found.gone:
            gone.add(ehr_id)
    return gone


def _unlisted_mirror_ids(
    connection: EHRConnection,
    location: Location,
    window: tuple[datetime, datetime],
    listed: set[int],
) -> list[int]:
    """EHR ids of the location's live mirrored appointments and blocks in the window that the
    EHR's listing left out: each is asked about by id before the mirror retires it."""
    lo, hi = window
    with tenant_context(connection.practice_id):
        ids = set(
            Appointment.objects.filter(
                practice_id=connection.practice_id,
                location=location,
                ehr_id__isnull=False,
                cancelled=False,
                start__lt=hi,
                end__gt=lo,
            ).values_list("ehr_id", flat=True)
        ) | set(
            Block.objects.filter(
                practice_id=connection.practice_id,
                location=location,
                ehr_id__isnull=False,
                start__lt=hi,
                end__gt=lo,
            ).values_list("ehr_id", flat=True)
        )
    return sorted(i for i in ids - listed if i is not None)


def apply_snapshot(connection: EHRConnection, snapshot: Snapshot) -> SyncReport:
    """Write a snapshot into the mirror, in one transaction, idempotently."""
    report = SyncReport(problems=list(snapshot.problems))
    report.fetched = {
        "providers": len(snapshot.providers),
        "operatories": len(snapshot.operatories),
        "descriptors": len(snapshot.descriptors),
        "appointment_types": len(snapshot.types),
        "working_hours": len(snapshot.working_hours),
        "appointments": len(snapshot.appointments),
    }
    with tenant_context(connection.practice_id), transaction.atomic():
        mirror = Mirror(connection, report, fetch=False)
        for p in snapshot.providers:
            mirror.upsert_provider(p)
        seen_ops = set()
        for o in snapshot.operatories:
            mirror.upsert_operatory(o)
            seen_ops.add(o.id)
        gone_ops = Operatory.objects.filter(
            practice_id=connection.practice_id,
            location=connection.location,
            ehr_id__isnull=False,
            active=True,
        ).exclude(ehr_id__in=seen_ops)
        n = gone_ops.update(active=False)
        if n:
            report.add("operatories", "deleted", n)
            mirror._operatories = None
        descriptors_by_ehr = {d.id: mirror.upsert_descriptor(d) for d in snapshot.descriptors}
        seen_types = set()
        for t in snapshot.types:
            mirror.upsert_type(
                t, descriptors_by_ehr, ehr_maps_descriptors=snapshot.ehr_maps_descriptors
            )
            seen_types.add(t.id)
        stale_links = AppointmentTypeLink.objects.filter(connection=connection).exclude(
            ehr_id__in=seen_types
        )
        stale_ids = list(stale_links.values_list("ehr_id", flat=True))
        if stale_ids:
            stale_links.delete()
            AppointmentType.objects.filter(
                practice_id=connection.practice_id, ehr_id__in=stale_ids
            ).update(ehr_id=None)
            report.add("appointment_types", "deleted", len(stale_ids))
            mirror._type_links = None
        mirror.replace_working_hours(snapshot.working_hours)
        seen: set[int] = set()
        for a in snapshot.appointments:
            mirror.apply_appointment(a)
            seen.add(a.id)
        mirror.retire_missing_appointments(seen, snapshot.window, snapshot.read_at, snapshot.gone)
    return report


def full_sync(connection: EHRConnection) -> SyncReport:
    """Read the location's whole schedule configuration and calendar, then mirror it."""
    report = apply_snapshot(connection, read_snapshot(connection))
    if report.problems:
        # The problems themselves stay in the report: they quote EHR records.
        log.warning("sync of connection %s: %d problem(s)", connection.pk, len(report.problems))
    return report


def resync_provider_working_hours(connection: EHRConnection, provider_ehr_id: int) -> SyncReport:
    """Re-read one provider's working hours at the location and replace the mirror's."""
    records = port_for(connection).working_hours(provider_id=provider_ehr_id)
    report = SyncReport()
    with tenant_context(connection.practice_id), transaction.atomic():
        mirror = Mirror(connection, report)
        mirror.replace_working_hours(records, provider_ehr_id=provider_ehr_id)
    return report


def near_window(
    location: Location, days: int, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """Yesterday 00:00 (location time) to the end of today + `days`: where a lost webhook hurts
    most (callers are offered these days first)."""
    start, _ = sync_window(location, now)
    return start, start + timedelta(days=days + 2)


def reconcile_near(connection: EHRConnection, days: int) -> SyncReport:
    """The calendar of the near days only (one paginated appointments read, no configuration):
    appointments and blocks upserted, ones gone upstream retired, as the full sync does in its
    window. Cheap enough to run every few minutes, so a dropped webhook leaves a taken slot on
    offer for minutes, not until the full reconcile."""
    client = port_for(connection)
    read_at = timezone.now()
    with tenant_context(connection.practice_id):
        location = connection.location
    window = near_window(location, days, read_at)
    appointments, problems = client.appointments_listed(*window)
    report = SyncReport(problems=problems)
    report.fetched = {"appointments": len(appointments)}
    listed = {a.id for a in appointments}
    gone = confirmed_gone(client, connection, location, window, listed)
    with tenant_context(connection.practice_id), transaction.atomic():
        mirror = Mirror(connection, report)
        for a in appointments:
            mirror.apply_appointment(a)
        mirror.retire_missing_appointments(listed, window, read_at, gone)
    return report


def counts_by_kind(report: SyncReport) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for kind, counts in report.counts.items():
        out[kind] += counts.total
    return dict(out)
