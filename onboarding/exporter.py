"""Export a practice's scheduling set-up in the configuration format the importer reads.

Exactly what the importer manages is written (see `importer`): manual working hours, and the
blocks and appointments without an EHR id; rows that sync owns are not; the live version of each
escalation protocol (drafts await approval, withdrawn protocols are off) and the on-call rota.
The `baa` (the signed agreement is the record) and appointment patients are omitted. Optional
fields are written only when they differ from their default, so `export(import(file)) == file`
for the supported sections. Instants are local to the practice's time zone, without an offset
unless the local time is ambiguous (the repeated hour when clocks fall back).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from accounts.models import Location, Practice
from core.tenancy import tenant_context
from onboarding.schema import format_clock, format_moment
from scheduling.intents import lay_terms_of
from scheduling.models import (
    Appointment,
    AppointmentType,
    Block,
    BookingMode,
    CallerPhrase,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
    WorkingHoursMode,
)


def _ordered_links(
    through: Any, owner: str, target: str, owner_ids: list[int]
) -> dict[int, list[int]]:
    """Targets per owner in the order they were linked (the through rows' ids)."""
    out: dict[int, list[int]] = defaultdict(list)
    rows = (
        through.objects.filter(**{f"{owner}__in": owner_ids})
        .order_by("id")
        .values_list(owner, target)
    )
    for owner_id, target_id in rows:
        out[owner_id].append(target_id)
    return out


def export_config(practice: Practice) -> dict[str, Any]:
    """The practice's configuration document (a plain dict, ready for JSON or YAML)."""
    tz = practice.tz
    with tenant_context(practice):
        locations = list(Location.objects.for_practice(practice).order_by("id"))
        operatories = list(Operatory.objects.for_practice(practice).order_by("id"))
        providers = list(Provider.objects.for_practice(practice).order_by("id"))
        types = list(AppointmentType.objects.for_practice(practice).order_by("id"))
        phrases: dict[int, list[str]] = defaultdict(list)
        for type_id, text in (
            CallerPhrase.objects.for_practice(practice)
            .order_by("id")
            .values_list("appointment_type_id", "text")
        ):
            phrases[type_id].append(text)
        type_ids = [t.pk for t in types]
        type_providers = _ordered_links(
            AppointmentType.providers.through, "appointmenttype_id", "provider_id", type_ids
        )
        type_codes: dict[int, list[str]] = defaultdict(list)
        for type_id, code in (
            AppointmentType.descriptors.through.objects.filter(appointmenttype_id__in=type_ids)
            .order_by("id")
            .values_list("appointmenttype_id", "appointmentdescriptor__code")
        ):
            if code not in type_codes[type_id]:
                type_codes[type_id].append(code)
        hours = list(
            WorkingHour.objects.for_practice(practice)
            .filter(source=WorkingHoursMode.MANUAL)
            .order_by("id")
        )
        hour_types = _ordered_links(
            WorkingHour.appointment_types.through,
            "workinghour_id",
            "appointmenttype_id",
            [h.pk for h in hours],
        )
        blocks = list(
            Block.objects.for_practice(practice).filter(ehr_id__isnull=True).order_by("id")
        )
        appointments = list(
            Appointment.objects.for_practice(practice).filter(ehr_id__isnull=True).order_by("id")
        )
        rules = list(ProviderRule.objects.for_practice(practice).order_by("id"))
        rule_types = _ordered_links(
            ProviderRule.appointment_types.through,
            "providerrule_id",
            "appointmenttype_id",
            [r.pk for r in rules],
        )

    location_key = {loc.pk: loc.key for loc in locations}
    operatory_key = {op.pk: op.key for op in operatories}
    provider_key = {p.pk: p.key for p in providers}
    type_key = {t.pk: t.key for t in types}
    modes = Counter(loc.working_hours_mode for loc in locations)
    mode = modes.most_common(1)[0][0] if modes else WorkingHoursMode.MANUAL

    def location(loc: Location) -> dict[str, Any]:
        out: dict[str, Any] = {"key": loc.key, "name": loc.name}
        if loc.timezone:
            out["timezone"] = loc.timezone
        if loc.working_hours_mode != mode:
            out["working_hours"] = loc.working_hours_mode
        if loc.ehr_id is not None:
            out["ehr_id"] = loc.ehr_id
        return out

    def operatory(op: Operatory) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": op.key,
            "name": op.name,
            "location": location_key[op.location_id],
            "capabilities": list(op.capabilities),
        }
        if not op.active:
            out["active"] = False
        if op.ehr_id is not None:
            out["ehr_id"] = op.ehr_id
        return out

    def provider(p: Provider) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": p.key,
            "name": p.name,
            "accepts_new_patients": p.accepts_new_patients,
            "on_call_phone": p.on_call_phone or None,
        }
        if not p.active:
            out["active"] = False
        if p.ehr_id is not None:
            out["ehr_id"] = p.ehr_id
        return out

    def appointment_type(t: AppointmentType) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": t.key,
            "name": t.name,
            "minutes": t.minutes,
            "new_patients": t.new_patients,
            "existing_patients": t.existing_patients,
            "providers": [provider_key[pk] for pk in type_providers[t.pk]],
            "requires_capabilities": list(t.required_capabilities),
            "lead_time_hours": t.lead_time_hours,
            "horizon_days": t.horizon_days,
            "phrases": phrases[t.pk],
            "descriptors": type_codes[t.pk],
            "instructions": t.instructions,
        }
        if not t.bookable:
            out["bookable"] = False
        if t.booking_mode != BookingMode.BOOK:
            out["booking_mode"] = t.booking_mode
        if t.ehr_id is not None:
            out["ehr_id"] = t.ehr_id
        return out

    def working_hour(h: WorkingHour) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": provider_key[h.provider_id],
            "operatory": operatory_key[h.operatory_id],
            "days": list(h.days),
            "begin": format_clock(h.begin),
            "end": format_clock(h.end),
            "appointment_types": [type_key[pk] for pk in hour_types[h.pk]],
        }
        if h.specific_date is not None:
            out["specific_date"] = h.specific_date.isoformat()
        if h.label:
            out["label"] = h.label
        if not h.active:
            out["active"] = False
        return out

    def block(b: Block) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": provider_key.get(b.provider_id) if b.provider_id else None,
            "operatory": operatory_key.get(b.operatory_id) if b.operatory_id else None,
            "start": format_moment(b.start, tz),
            "end": format_moment(b.end, tz),
            "reason": b.reason,
        }
        if b.operatory_id is None:
            out["location"] = location_key[b.location_id]
        return out

    def appointment(a: Appointment) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": provider_key[a.provider_id],
            "operatory": operatory_key[a.operatory_id] if a.operatory_id else None,
            "start": format_moment(a.start, tz),
            "minutes": round((a.end - a.start).total_seconds() / 60),
            "appointment_type": type_key[a.appointment_type_id] if a.appointment_type_id else None,
        }
        if a.operatory_id is None:
            out["location"] = location_key[a.location_id]
        if a.cancelled:
            out["cancelled"] = True
        return out

    def rule(r: ProviderRule) -> dict[str, Any]:
        return {
            "provider": provider_key[r.provider_id],
            "appointment_types": [type_key[pk] for pk in rule_types[r.pk]],
            "patient_status": r.patient_status,
            "days": list(r.days),
            "begin": format_clock(r.begin),
            "end": format_clock(r.end),
        }

    protocols, on_call = _escalation(practice, provider_key, type_key)
    return {
        "practice": {"slug": practice.slug, "name": practice.name, "timezone": practice.timezone},
        "ehr": {"kind": _ehr_kind(practice), "working_hours": mode},
        "locations": [location(loc) for loc in locations],
        "operatories": [operatory(op) for op in operatories],
        "providers": [provider(p) for p in providers],
        "appointment_types": [appointment_type(t) for t in types],
        "working_hours": [working_hour(h) for h in hours],
        "blocks": [block(b) for b in blocks],
        "appointments": [appointment(a) for a in appointments],
        "provider_rules": [rule(r) for r in rules],
        "escalation_protocols": protocols,
        "on_call": on_call,
        "lay_terms": [
            {"terms": list(terms), **({"broader": list(broader)} if broader else {})}
            for terms, broader in lay_terms_of(practice.lay_terms)
        ],
    }


def _escalation(
    practice: Practice, provider_key: dict[int, str], type_key: dict[int, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Live protocol versions (by protocol) and the rota (by start), in the file's shape."""
    from calls.models import DEFAULT_GROUP_KEY, OnCallShift, ProtocolVersion, VersionStatus

    tz = practice.tz
    with tenant_context(practice):
        versions = list(
            ProtocolVersion.objects.for_practice(practice)
            .filter(status=VersionStatus.LIVE)
            .select_related("protocol", "on_call_group")
            .order_by("protocol_id")
        )
        version_types = _ordered_links(
            ProtocolVersion.appointment_types.through,
            "protocolversion_id",
            "appointmenttype_id",
            [v.pk for v in versions],
        )
        shifts = list(
            OnCallShift.objects.for_practice(practice)
            .select_related("group")
            .order_by("start", "id")
        )

    def route(v: ProtocolVersion) -> Any:
        if v.route_provider_id is not None:
            return {"provider": provider_key[v.route_provider_id]}
        if v.on_call_group is not None and v.on_call_group.key != DEFAULT_GROUP_KEY:
            return {"on_call_group": v.on_call_group.key}
        return v.route

    def shift(s: OnCallShift) -> dict[str, Any]:
        row = {
            "provider": provider_key[s.provider_id],
            "start": format_moment(s.start, tz),
            "end": format_moment(s.end, tz),
        }
        if s.group.key != DEFAULT_GROUP_KEY:
            row["group"] = s.group.key
        return row

    protocols = [
        {
            "key": v.protocol.key,
            "name": v.name,
            "appointment_types": [type_key[pk] for pk in version_types[v.pk]],
            "within_days_of_procedure": v.within_days_of_procedure,
            "triggers": list(v.triggers),
            "severity": v.severity,
            "route": route(v),
            "instructions": v.instructions,
        }
        for v in versions
    ]
    on_call = [shift(s) for s in shifts]
    return protocols, on_call


def _ehr_kind(practice: Practice) -> str:
    """The EHR the practice's locations are connected to: "nextech" or "sandbox" once one is,
    else "none" (a NexHealth connection is made by command, not by the file)."""
    from ehr.models import EHRConnection

    kinds = set(EHRConnection.objects.for_practice(practice).values_list("kind", flat=True))
    for kind in ("nextech", "sandbox"):
        if kind in kinds:
            return kind
    return "none"
