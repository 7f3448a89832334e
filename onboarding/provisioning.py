"""Create a practice's configuration inside the running EHR sandbox, then sync it back.

`provision_sandbox(practice, config)` takes a practice configuration document
(docs/practice-config.md) and, over HTTP like any client, makes the sandbox hold the same
practice: locations, providers, operatories, descriptors, appointment types (PATCHed with their
`emr_appt_descriptor_ids`), working hours (manual records with `appointment_type_ids`; for a
location in synced mode, the EHR-side synced schedule), blocks and appointments (written "in the
EHR" through the sandbox's admin routes so they exist at once; patients through
`POST /patients`). Then it connects each location (`services.connect_location`: credentials,
webhook endpoint and subscriptions) and runs a full sync, so the portal's mirror comes from the
EHR exactly as in production.

Idempotent: everything is matched first (by the EHR id our rows already hold, then by name,
code, foreign keys and times), so a second run creates nothing in the sandbox and the sync
reports no changes; a location, provider, operatory or type renamed in the file is renamed in
the EHR (same id), never created again. Rows the config importer already
made locally are linked to their EHR ids by their keys (and keyless blocks/appointments/manual
working hours by content) before the sync, so they are adopted rather than duplicated.

Settings: EHR_SANDBOX_URL, EHR_SANDBOX_API_KEY, EHR_SANDBOX_ADMIN_TOKEN (admin routes),
PORTAL_PUBLIC_URL (where the sandbox posts webhooks).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction

from accounts.models import Location, Practice
from core.tenancy import tenant_context
from ehr.errors import EHRError, EHRNotFound
from ehr.models import AppointmentTypeLink, ConnectionKind, EHRConnection
from ehr.nexhealth import normalize as norm
from ehr.nexhealth.client import ConnectionConfig, NexHealthClient, client_for
from ehr.services import connect_location, sync_connection
from ehr.sync import SyncReport
from onboarding.schema import PracticeConfig, WorkingHourSpec, parse_config
from scheduling.models import Appointment, AppointmentType, Block, Operatory, Provider

log = logging.getLogger("onboarding.provisioning")

# Names for the usual codes, so the sandbox's descriptors read like an EHR's catalogue.
DESCRIPTOR_NAMES = {
    "D0120": "Periodic Oral Evaluation",
    "D0140": "Limited Oral Evaluation",
    "D0150": "Comprehensive Oral Evaluation",
    "D0210": "Intraoral Complete Series of Radiographic Images",
    "D0274": "Bitewings Four Radiographic Images",
    "D1110": "Prophylaxis Adult",
    "D1120": "Prophylaxis Child",
    "D2740": "Crown Porcelain/Ceramic",
    "D3310": "Endodontic Therapy, Anterior Tooth",
    "D7140": "Extraction, Erupted Tooth",
    "99203": "New Patient Office Visit, Low Complexity",
    "99213": "Established Patient Office Visit, Low Complexity",
}


@dataclass
class ProvisionReport:
    """What the run created in the sandbox (zero on a second run) and what the sync changed."""

    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    deleted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    connections: list[int] = field(default_factory=list)
    sync_changes: dict[str, int] = field(default_factory=dict)
    # kind -> [created, updated, deleted] by the sync that mirrored the EHR back
    sync_counts: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ehr_changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def add_sync(self, result: SyncReport) -> None:
        """Count what one connection's sync changed in the mirror."""
        for kind, n in result.changes_by_kind().items():
            self.sync_changes[kind] = self.sync_changes.get(kind, 0) + n
        for kind, c in result.counts.items():
            if c.total:
                got = self.sync_counts.setdefault(kind, [0, 0, 0])
                got[0], got[1], got[2] = (
                    got[0] + c.created,
                    got[1] + c.updated,
                    got[2] + c.deleted,
                )

    def summary(self) -> list[str]:
        lines = [f"sandbox: {self.ehr_changes} change(s)"]
        for label, counts in (
            ("created", self.created),
            ("updated", self.updated),
            ("deleted", self.deleted),
        ):
            lines += [f"  {kind}: {n} {label}" for kind, n in sorted(counts.items()) if n]
        synced = ", ".join(f"{kind} {n}" for kind, n in sorted(self.sync_changes.items()) if n)
        lines.append(f"mirror sync: {synced or 'nothing changed'}")
        return lines

    def written(self) -> str:
        """What was written in the EHR, for people: "providers 2 created, blocks 1 created"."""
        parts = [
            f"{kind.replace('_', ' ')} {n} {label}"
            for label, counts in (
                ("created", self.created),
                ("updated", self.updated),
                ("deleted", self.deleted),
            )
            for kind, n in sorted(counts.items())
            if n
        ]
        return ", ".join(parts)


def _spec(config: dict[str, Any]) -> PracticeConfig:
    """Validate with the importer's own parser (the `ehr` block is what routed us here)."""
    data = dict(config)
    data["ehr"] = {**dict(config.get("ehr") or {}), "kind": "none"}
    return parse_config(data)


class _Admin:
    """The sandbox's admin routes (the "EHR side": what staff do inside their own system)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"X-Admin-Token": token},
            timeout=httpx.Timeout(10.0, connect=3.0),
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            raise EHRError(
                f"sandbox admin {method} {path}: {response.text[:300]}",
                status=response.status_code,
            )
        return response.json()

    def close(self) -> None:
        self.http.close()


def _hhmm(value: Any) -> str:
    return value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)[:5]


class _Provisioner:
    def __init__(
        self,
        practice: Practice,
        spec: PracticeConfig,
        raw: dict[str, Any],
        *,
        base_url: str,
        api_key: str,
        admin_token: str,
        public_url: str | None,
        register_webhooks: bool,
    ) -> None:
        self.practice = practice
        self.spec = spec
        self.raw = raw
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.public_url = public_url
        self.register_webhooks = register_webhooks
        self.subdomain = practice.slug
        self.report = ProvisionReport()
        self.admin = _Admin(self.base_url, admin_token)
        self.setup = NexHealthClient(
            ConnectionConfig(
                base_url=self.base_url,
                subdomain=self.subdomain,
                api_key=api_key,
                rate_limit_key=f"provision-{practice.pk}-{practice.slug}",
                health_key=f"provision-{practice.pk}",
            )
        )
        self.locations: dict[str, Location] = {}
        self.conns: dict[str, EHRConnection] = {}
        self.clients: dict[str, NexHealthClient] = {}
        self.lids: dict[str, int] = {}
        self.providers: dict[str, int] = {}
        self.operatories: dict[str, int] = {}
        self.op_location: dict[str, str] = {o.key: o.location for o in spec.operatories}
        self.descriptors: dict[tuple[str, str], int] = {}
        self.types: dict[tuple[str, str], int] = {}

    def close(self) -> None:
        self.admin.close()
        self.setup.close()

    # -- steps ------------------------------------------------------------------------------

    def run(self) -> ProvisionReport:
        self.ensure_local_locations()
        self.ensure_ehr_locations()
        for key, location in self.locations.items():
            conn = connect_location(
                location,
                kind=ConnectionKind.SANDBOX,
                base_url=self.base_url,
                subdomain=self.subdomain,
                api_key=self.api_key,
                ehr_location_id=self.lids[key],
                public_url=self.public_url,
                register_webhooks=self.register_webhooks,
            )
            self.conns[key] = conn
            self.clients[key] = client_for(conn)
            self.report.connections.append(conn.pk)
        self.ensure_providers()
        self.ensure_operatories()
        self.ensure_descriptors()
        self.ensure_types()
        self.ensure_working_hours()
        blocks = self.ensure_blocks()
        appointments = self.ensure_appointments()
        self.link_local(blocks, appointments)
        for conn in self.conns.values():
            self.report.add_sync(sync_connection(conn))
        return self.report

    def ensure_local_locations(self) -> None:
        """The importer normally made them; create any it did not (by key)."""
        with tenant_context(self.practice), transaction.atomic():
            for spec in self.spec.locations:
                row = Location.objects.filter(practice=self.practice, key=spec.key).first()
                if row is None:
                    row = Location.objects.create(
                        practice=self.practice,
                        key=spec.key,
                        name=spec.name,
                        timezone=spec.timezone,
                        working_hours_mode=spec.working_hours_mode,
                    )
                self.locations[spec.key] = row

    def ensure_ehr_locations(self) -> None:
        try:
            existing = self.setup.locations()
        except EHRNotFound:
            existing = []  # the subdomain comes into being with its first location
        by_name = {norm.clean_name(r.get("name")).lower(): r for r in existing}
        by_id = {int(r["id"]): r for r in existing}
        for key, location in self.locations.items():
            # The stored id first: a location renamed in the file is renamed in the EHR, not
            # created again (a new one would take the connection away from its calendar).
            found = by_id.get(location.ehr_id) if location.ehr_id is not None else None
            if found is not None and norm.clean_name(found.get("name")) != location.name:
                self.admin.call(
                    "PATCH", f"/_admin/ehr/locations/{found['id']}", {"name": location.name}
                )
                self.report.updated["locations"] += 1
            if found is None:
                found = by_name.get(location.name.lower())
            if found is None:
                found = self.setup.request(
                    "POST",
                    "/locations",
                    json={"location": {"name": location.name, "tz": location.tz.key}},
                    idempotent=False,
                ).data
                self.report.created["locations"] += 1
            self.lids[key] = int(found["id"])

    def _stored_ids(self, model: Any) -> dict[str, int]:
        """Our rows' EHR ids by key (the importer matched re-keyed rows by EHR id already)."""
        with tenant_context(self.practice):
            return dict(
                model.objects.filter(practice=self.practice, ehr_id__isnull=False).values_list(
                    "key", "ehr_id"
                )
            )

    def _stored_type_ids(self, conn: EHRConnection) -> dict[str, int]:
        """Appointment types' EHR ids at this connection (types are per EHR location)."""
        with tenant_context(self.practice):
            linked = dict(
                AppointmentTypeLink.objects.filter(connection=conn).values_list(
                    "appointment_type__key", "ehr_id"
                )
            )
        return {**self._stored_ids(AppointmentType), **linked}

    def _first_client(self) -> NexHealthClient:
        return next(iter(self.clients.values()))

    def ensure_providers(self) -> None:
        client = self._first_client()
        listed = [norm.provider(r) for r in client.iterate("/providers")]
        existing = {p.name.lower(): p for p in listed}
        by_id = {p.id: p for p in listed}
        stored = self._stored_ids(Provider)
        all_lids = sorted(self.lids.values())
        for spec in self.spec.providers:
            found = by_id.get(stored.get(spec.key, 0))
            if found is not None and found.name.lower() != norm.clean_name(spec.name).lower():
                first, last = norm.split_name(spec.name)
                self.admin.call(
                    "PATCH",
                    f"/_admin/ehr/providers/{found.id}",
                    {"name": norm.clean_name(spec.name), "first_name": first, "last_name": last},
                )
                self.report.updated["providers"] += 1
            if found is None:
                found = existing.get(norm.clean_name(spec.name).lower())
            if found is None:
                first, last = norm.split_name(spec.name)
                data = client.request(
                    "POST",
                    "/providers",
                    json={
                        "provider": {
                            "first_name": first,
                            "last_name": last,
                            "name": norm.clean_name(spec.name),
                            "location_ids": all_lids,
                        }
                    },
                    idempotent=False,
                ).data
                found = norm.provider(data)
                self.report.created["providers"] += 1
            self.providers[spec.key] = found.id
        with tenant_context(self.practice), transaction.atomic():
            for spec in self.spec.providers:
                _link_keyed(Provider, self.practice, spec.key, self.providers[spec.key], spec.name)

    def ensure_operatories(self) -> None:
        stored = self._stored_ids(Operatory)
        for key, client in self.clients.items():
            listed = client.operatories()
            existing = {o.name.lower(): o for o in listed}
            by_id = {o.id: o for o in listed}
            for spec in self.spec.operatories:
                if spec.location != key:
                    continue
                found = by_id.get(stored.get(spec.key, 0))
                if found is not None and found.name.lower() != norm.clean_name(spec.name).lower():
                    self.admin.call(
                        "PATCH", f"/_admin/ehr/operatories/{found.id}", {"name": spec.name}
                    )
                    self.report.updated["operatories"] += 1
                if found is None:
                    found = existing.get(norm.clean_name(spec.name).lower())
                if found is None:
                    data = client.request(
                        "POST",
                        "/operatories",
                        params={"location_id": self.lids[key]},
                        json={"operatory": {"name": spec.name, "location_id": self.lids[key]}},
                        idempotent=False,
                    ).data
                    found = norm.operatory(data)
                    self.report.created["operatories"] += 1
                self.operatories[spec.key] = found.id
        with tenant_context(self.practice), transaction.atomic():
            for spec in self.spec.operatories:
                _link_keyed(
                    Operatory,
                    self.practice,
                    spec.key,
                    self.operatories[spec.key],
                    spec.name,
                    location=self.locations[spec.location],
                )

    def ensure_descriptors(self) -> None:
        codes = list(dict.fromkeys(c for t in self.spec.appointment_types for c in t.descriptors))
        for key, client in self.clients.items():
            existing = {d.code: d for d in client.descriptors()}
            for code in codes:
                found = existing.get(code)
                if found is None:
                    data = client.request(
                        "POST",
                        f"/locations/{self.lids[key]}/appointment_descriptors",
                        json={
                            "appointment_descriptor": {
                                "code": code,
                                "name": DESCRIPTOR_NAMES.get(code, code),
                                "descriptor_type": "Procedure Code",
                            }
                        },
                        idempotent=False,
                    ).data
                    found = norm.descriptor(data)
                    self.report.created["descriptors"] += 1
                self.descriptors[(key, code)] = found.id

    def ensure_types(self) -> None:
        for key, client in self.clients.items():
            lid = self.lids[key]
            listed = [t for t in client.appointment_types() if t.location_id == lid]
            existing = {t.name.lower(): t for t in listed}
            by_id = {t.id: t for t in listed}
            stored = self._stored_type_ids(self.conns[key])
            for spec in self.spec.appointment_types:
                wanted = sorted(self.descriptors[(key, code)] for code in spec.descriptors)
                found = by_id.get(stored.get(spec.key, 0))
                renamed = found is not None and found.name.lower() != spec.name.lower()
                if found is None:
                    found = existing.get(norm.clean_name(spec.name).lower())
                if found is None:
                    data = client.request(
                        "POST",
                        "/appointment_types",
                        json={
                            "appointment_type": {
                                "name": spec.name,
                                "minutes": spec.minutes,
                                "parent_type": "Location",
                                "parent_id": lid,
                                "bookable_online": spec.bookable,
                            },
                            "location_id": lid,
                        },
                        idempotent=False,
                    ).data
                    found = norm.appointment_type(data)
                    self.report.created["appointment_types"] += 1
                changes: dict[str, Any] = {"name": spec.name} if renamed else {}
                if sorted(found.descriptor_ids) != wanted:
                    changes["emr_appt_descriptor_ids"] = wanted
                if found.minutes != spec.minutes:
                    changes["minutes"] = spec.minutes
                if changes:
                    client.request(
                        "PATCH",
                        f"/appointment_types/{found.id}",
                        json={"appointment_type": changes, "location_id": lid},
                    )
                    self.report.updated["appointment_types"] += 1
                self.types[(key, spec.key)] = found.id
        with tenant_context(self.practice), transaction.atomic():
            for (key, type_key), ehr_id in self.types.items():
                row = AppointmentType.objects.filter(practice=self.practice, key=type_key).first()
                if row is None:
                    continue  # the importer owns our types; the sync will mirror this one
                conn = self.conns[key]
                AppointmentTypeLink.objects.filter(connection=conn, ehr_id=ehr_id).exclude(
                    appointment_type=row
                ).delete()
                AppointmentTypeLink.objects.update_or_create(
                    connection=conn,
                    appointment_type=row,
                    defaults={"ehr_id": ehr_id, "practice": self.practice},
                )
                if row.ehr_id is None:
                    row.ehr_id = ehr_id
                    row.save(update_fields=["ehr_id"])

    def _hour_body(self, key: str, spec: WorkingHourSpec) -> dict[str, Any]:
        body: dict[str, Any] = {
            "provider_id": self.providers[spec.provider],
            "operatory_id": self.operatories[spec.operatory],
            "begin_time": _hhmm(spec.begin),
            "end_time": _hhmm(spec.end),
            "appointment_type_ids": sorted(self.types[(key, t)] for t in spec.appointment_types),
            "active": spec.active,
        }
        if spec.specific_date is not None:
            body["specific_date"] = spec.specific_date.isoformat()
        else:
            body["days"] = list(spec.days)
        return body

    @staticmethod
    def _hour_identity(body: dict[str, Any]) -> tuple[Any, ...]:
        days = tuple(sorted(body.get("days") or ())) if not body.get("specific_date") else ()
        return (
            body["provider_id"],
            body["operatory_id"],
            days,
            body.get("specific_date"),
            body["begin_time"],
            body["end_time"],
        )

    def ensure_working_hours(self) -> None:
        for key, client in self.clients.items():
            location = self.locations[key]
            specs = [w for w in self.spec.working_hours if self.op_location[w.operatory] == key]
            if location.working_hours_mode == "synced":
                self._synced_hours(key, client, specs)
            else:
                self._manual_hours(key, client, specs)

    def _manual_hours(
        self, key: str, client: NexHealthClient, specs: list[WorkingHourSpec]
    ) -> None:
        existing: dict[tuple[Any, ...], list[norm.EHRWorkingHour]] = defaultdict(list)
        for w in client.working_hours(source="manual"):
            ident = (
                w.provider_id,
                w.operatory_id,
                tuple(sorted(w.days)) if w.specific_date is None else (),
                w.specific_date.isoformat() if w.specific_date else None,
                _hhmm(w.begin),
                _hhmm(w.end),
            )
            existing[ident].append(w)
        for spec in specs:
            body = self._hour_body(key, spec)
            matches = existing.get(self._hour_identity(body))
            if matches:
                found = matches.pop(0)
                if (
                    sorted(found.appointment_type_ids) != body["appointment_type_ids"]
                    or found.active != body["active"]
                ):
                    client.request(
                        "PATCH",
                        f"/working_hours/{found.id}",
                        json={
                            "working_hour": {
                                "appointment_type_ids": body["appointment_type_ids"],
                                "active": body["active"],
                            }
                        },
                    )
                    self.report.updated["working_hours"] += 1
                continue
            client.request(
                "POST",
                "/working_hours",
                params={"location_id": self.lids[key]},
                json={"working_hour": body},
                idempotent=False,
            )
            self.report.created["working_hours"] += 1
        # The file owns the manual schedule: records it no longer has are removed.
        for leftovers in existing.values():
            for w in leftovers:
                client.request("DELETE", f"/working_hours/{w.id}")
                self.report.deleted["working_hours"] += 1

    def _synced_hours(
        self, key: str, client: NexHealthClient, specs: list[WorkingHourSpec]
    ) -> None:
        """Synced mode: the schedule lives in the EHR; write it there as staff would (the admin
        route replaces a provider's synced records), only when it differs."""
        current: dict[int, set[tuple[Any, ...]]] = defaultdict(set)
        for w in client.working_hours(source="synced"):
            record: dict[str, Any] = {
                "provider_id": w.provider_id,
                "operatory_id": w.operatory_id,
                "days": list(w.days),
                "specific_date": w.specific_date.isoformat() if w.specific_date else None,
                "begin_time": _hhmm(w.begin),
                "end_time": _hhmm(w.end),
            }
            ident = (*self._hour_identity(record), w.label, tuple(sorted(w.appointment_type_ids)))
            current[w.provider_id].add(ident)
        wanted: dict[int, list[dict[str, Any]]] = defaultdict(list)
        wanted_ids: dict[int, set[tuple[Any, ...]]] = defaultdict(set)
        for spec in specs:
            body = self._hour_body(key, spec)
            if spec.label:
                body["label"] = spec.label
            provider_id = self.providers[spec.provider]
            wanted[provider_id].append(body)
            wanted_ids[provider_id].add(
                (*self._hour_identity(body), spec.label, tuple(body["appointment_type_ids"]))
            )
        for provider_id in sorted(set(wanted) | set(current)):
            if wanted_ids.get(provider_id, set()) == current.get(provider_id, set()):
                continue
            self.admin.call(
                "PUT",
                "/_admin/ehr/working_hours",
                {
                    "location_id": self.lids[key],
                    "provider_id": provider_id,
                    "working_hours": wanted.get(provider_id, []),
                },
            )
            self.report.updated["working_hours"] += 1

    def _existing_appointments(
        self, client: NexHealthClient, start: datetime, end: datetime, **filters: Any
    ) -> list[norm.EHRAppointment]:
        return [
            a
            for a in client.appointments(
                start - timedelta(minutes=1), end + timedelta(minutes=1), **filters
            )
            if not a.cancelled
        ]

    def ensure_blocks(self) -> list[tuple[str, Any, int]]:
        done: list[tuple[str, Any, int]] = []
        for spec in self.spec.blocks:
            client = self.clients[spec.location]
            provider_id = self.providers[spec.provider] if spec.provider else None
            operatory_id = self.operatories[spec.operatory] if spec.operatory else None
            found = next(
                (
                    a
                    for a in self._existing_appointments(
                        client, spec.start, spec.end, unavailable=True
                    )
                    if a.provider_id == provider_id
                    and a.operatory_id == operatory_id
                    and a.start == spec.start
                    and a.end == spec.end
                ),
                None,
            )
            if found is None:
                data = self.admin.call(
                    "POST",
                    "/_admin/ehr/appointments",
                    {
                        "location_id": self.lids[spec.location],
                        "appt": {
                            "provider_id": provider_id,
                            "operatory_id": operatory_id,
                            "start_time": spec.start.isoformat(),
                            "end_time": spec.end.isoformat(),
                            "unavailable": True,
                            "note": spec.reason or None,
                        },
                    },
                )
                found = norm.appointment(data)
                self.report.created["blocks"] += 1
            done.append((spec.location, spec, found.id))
        return done

    def _patient_id(self, key: str, raw: dict[str, Any], provider_id: int) -> int | None:
        if not isinstance(raw, dict) or not raw.get("first_name") or not raw.get("last_name"):
            return None
        client = self.clients[key]
        dob = norm.to_date(raw.get("date_of_birth"), "date_of_birth")
        first, last = norm.clean_name(raw["first_name"]), norm.clean_name(raw["last_name"])
        for patient in client.search_patients(name=f"{first} {last}", date_of_birth=dob):
            same_first = patient.first_name.lower() == first.lower()
            if same_first and patient.last_name.lower() == last.lower():
                return patient.id
        created = client.create_patient(
            first_name=first,
            last_name=last,
            date_of_birth=dob,
            phone_number=raw.get("phone") or raw.get("phone_number"),
            email=raw.get("email"),
            provider_id=provider_id,
        )
        self.report.created["patients"] += 1
        return created.id

    def ensure_appointments(self) -> list[tuple[str, Any, int]]:
        done: list[tuple[str, Any, int]] = []
        raw_list = self.raw.get("appointments") or []
        for index, spec in enumerate(self.spec.appointments):
            client = self.clients[spec.location]
            provider_id = self.providers[spec.provider]
            raw = raw_list[index] if index < len(raw_list) else {}
            patient_id = self._patient_id(spec.location, raw.get("patient") or {}, provider_id)
            filters: dict[str, Any] = {"provider_id": provider_id}
            if patient_id is not None:
                filters["patient_id"] = patient_id
            found = next(
                (
                    a
                    for a in self._existing_appointments(client, spec.start, spec.end, **filters)
                    if a.start == spec.start and not a.unavailable
                ),
                None,
            )
            if found is None and not spec.cancelled:
                appt: dict[str, Any] = {
                    "provider_id": provider_id,
                    "operatory_id": self.operatories[spec.operatory] if spec.operatory else None,
                    "patient_id": patient_id,
                    "start_time": spec.start.isoformat(),
                    "end_time": spec.end.isoformat(),
                }
                if spec.appointment_type:
                    appt["appointment_type_id"] = self.types[(spec.location, spec.appointment_type)]
                data = self.admin.call(
                    "POST",
                    "/_admin/ehr/appointments",
                    {"location_id": self.lids[spec.location], "appt": appt},
                )
                found = norm.appointment(data)
                self.report.created["appointments"] += 1
            elif found is not None and spec.cancelled:
                self.admin.call(
                    "PATCH", f"/_admin/ehr/appointments/{found.id}", {"appt": {"cancelled": True}}
                )
                self.report.updated["appointments"] += 1
            if found is not None:
                done.append((spec.location, spec, found.id))
        return done

    def link_local(
        self, blocks: list[tuple[str, Any, int]], appointments: list[tuple[str, Any, int]]
    ) -> None:
        """The importer's keyless copies of what we just wrote: give them their EHR ids (or drop
        them where a mirrored row already carries the id), so the sync updates, not duplicates."""
        with tenant_context(self.practice), transaction.atomic():
            providers = dict(
                Provider.objects.filter(practice=self.practice).values_list("key", "pk")
            )
            operatories = dict(
                Operatory.objects.filter(practice=self.practice).values_list("key", "pk")
            )
            for key, spec, ehr_id in blocks:
                candidates = Block.objects.filter(
                    practice=self.practice,
                    ehr_id__isnull=True,
                    location=self.locations[key],
                    provider_id=providers.get(spec.provider) if spec.provider else None,
                    operatory_id=operatories.get(spec.operatory) if spec.operatory else None,
                    start=spec.start,
                    end=spec.end,
                )
                _adopt(Block, self.practice, candidates, ehr_id)
            for key, spec, ehr_id in appointments:
                candidates_a = Appointment.objects.filter(
                    practice=self.practice,
                    ehr_id__isnull=True,
                    location=self.locations[key],
                    provider_id=providers.get(spec.provider),
                    start=spec.start,
                    end=spec.end,
                )
                _adopt(Appointment, self.practice, candidates_a, ehr_id)


def _adopt(model: Any, practice: Practice, candidates: Any, ehr_id: int) -> None:
    row = candidates.order_by("id").first()
    if row is None:
        return
    if model.objects.filter(practice=practice, ehr_id=ehr_id).exists():
        row.delete()  # the mirror already has it from the EHR
    else:
        row.ehr_id = ehr_id
        row.save(update_fields=["ehr_id"])


def _link_keyed(
    model: Any,
    practice: Practice,
    key: str,
    ehr_id: int,
    name: str,
    *,
    location: Location | None = None,
) -> None:
    """Give the importer's row (by key) its EHR id; create it if the importer did not."""
    row = model.objects.filter(practice=practice, key=key).first()
    holder = model.objects.filter(practice=practice, ehr_id=ehr_id).exclude(key=key).first()
    if holder is not None:
        holder.ehr_id = None  # a stray mirror row (made before the keys were linked)
        holder.save(update_fields=["ehr_id"])
    if row is None:
        extra = {"location": location} if location is not None else {}
        model.objects.create(practice=practice, key=key, name=name, ehr_id=ehr_id, **extra)
    elif row.ehr_id != ehr_id:
        row.ehr_id = ehr_id
        row.save(update_fields=["ehr_id"])


def provision_sandbox(
    practice: Practice,
    config: dict[str, Any],
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    admin_token: str | None = None,
    public_url: str | None = None,
    register_webhooks: bool = True,
) -> ProvisionReport:
    """Make the sandbox hold `config`'s practice, connect its locations, sync the mirror back.

    Call after the config importer has written the practice (it owns phrases, rules, BAA...);
    needs an executed BAA (the connection is set up with PHI-grade credentials). Idempotent.
    """
    spec = _spec(config)
    provisioner = _Provisioner(
        practice,
        spec,
        config,
        base_url=base_url or settings.EHR_SANDBOX_URL,
        api_key=api_key or settings.EHR_SANDBOX_API_KEY,
        admin_token=admin_token or settings.EHR_SANDBOX_ADMIN_TOKEN,
        public_url=public_url,
        register_webhooks=register_webhooks,
    )
    try:
        report = provisioner.run()
    finally:
        provisioner.close()
    log.info("provisioned %s into the sandbox: %s", practice.slug, report.summary())
    return report
