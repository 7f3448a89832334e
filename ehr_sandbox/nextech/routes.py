"""The Select API (FHIR STU3) routes: what a partner sees below ``/api``.

Handlers are plain synchronous functions run under the state lock; the edge (``app.py``) has
already counted the request, applied the rate limit and faults, checked the bearer token and
resolved ``nx-practice-id`` to a practice the user may act for.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.STU3.appointment import Appointment as StuAppointment
from fhir.resources.STU3.composition import Composition as StuComposition
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from . import fhirjson as fj
from .fhirjson import SD, ApiError
from .store import (
    DEFAULT_SLOT_DAYS,
    MAX_SLOT_DAYS,
    Appointment,
    Practice,
    State,
    User,
    digits,
    utc_now,
)

DEFAULT_COUNT = 10
MAX_COUNT = 50


@dataclass
class Ctx:
    state: State
    request: Request
    user: User
    practice: Practice
    raw_body: bytes

    @property
    def query(self) -> Any:
        return self.request.query_params

    @property
    def base(self) -> str:
        return str(self.request.base_url).rstrip("/") + "/api"

    def param(self, name: str) -> str | None:
        value = self.query.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    def values(self, name: str) -> list[str]:
        """Repeated and comma-separated values (Nextech ORs the commas)."""
        out: list[str] = []
        for raw in self.query.getlist(name):
            out += [v.strip() for v in raw.split(",") if v.strip()]
        return out

    def json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.raw_body or b"{}")
        except ValueError as exc:
            raise ApiError(400, "the body must be JSON", code="structure") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object", code="structure")
        return body

    def page(self, resources: list[dict[str, Any]]) -> Response:
        try:
            page = int(self.param("page") or 1)
            count = min(MAX_COUNT, int(self.param("_count") or DEFAULT_COUNT))
        except ValueError as exc:
            raise ApiError(400, "page and _count must be integers", code="invalid") from exc
        if page < 1 or count < 1:
            raise ApiError(400, "page and _count must be positive", code="invalid")
        body = fj.bundle(
            resources,
            base=self.base,
            path=self.request.url.path.removeprefix("/api"),
            query=list(self.query.multi_items()),
            page=page,
            count=count,
        )
        return fj.fhir_response(body)

    def when(self, name: str) -> list[tuple[str, datetime, datetime]]:
        return [fj.parse_when(v, self.practice.tz) for v in self.query.getlist(name)]


Handler = Callable[..., Response]


def _one(found: dict[str, Any] | None, kind: str, ident: str) -> Response:
    if found is None:
        raise ApiError(404, f"{kind} {ident} not found", code="not-found")
    return fj.fhir_response(found)


# -- practice set-up ------------------------------------------------------------------------------


def list_practitioners(ctx: Ctx) -> Response:
    rows = list(ctx.practice.linked_practitioners().values())
    wanted = ctx.values("identifier") + ctx.values("_id")
    if wanted:
        rows = [r for r in rows if r["id"] in wanted]
    return ctx.page([fj.practitioner(r) for r in sorted(rows, key=lambda r: r["id"])])


def get_practitioner(ctx: Ctx, id: str) -> Response:
    found = ctx.practice.linked_practitioners().get(id)
    return _one(fj.practitioner(found) if found else None, "Practitioner", id)


def list_locations(ctx: Ctx) -> Response:
    rows = sorted(ctx.practice.locations.values(), key=lambda r: r["id"])
    return ctx.page([fj.location(r) for r in rows])


def get_location(ctx: Ctx, id: str) -> Response:
    found = ctx.practice.locations.get(id)
    return _one(fj.location(found) if found else None, "Location", id)


def list_appointment_types(ctx: Ctx) -> Response:
    rows = sorted(ctx.practice.appointment_types.values(), key=lambda r: r["id"])
    return ctx.page([fj.named_extension_resource("appointment-type", r) for r in rows])


def list_appointment_purposes(ctx: Ctx) -> Response:
    rows = sorted(ctx.practice.purposes.values(), key=lambda r: r["id"])
    return ctx.page([fj.named_extension_resource("appointment-purpose", r) for r in rows])


def list_schedules(ctx: Ctx) -> Response:
    linked = ctx.practice.linked_practitioners()
    pairs = sorted(
        {(t.practitioner, t.location) for t in ctx.practice.templates if t.practitioner in linked}
    )
    locations = [
        fj.ref_id(v, "location") for v in ctx.values("actor") if v.lower().startswith("location")
    ]
    if locations:
        pairs = [p for p in pairs if p[1] in locations]
    return ctx.page([fj.schedule(ctx.practice, prac, loc) for prac, loc in pairs])


# -- patients -------------------------------------------------------------------------------------


def search_patients(ctx: Ctx) -> Response:
    keys = ("family", "given", "birthdate", "birthDate", "phone", "email", "identifier")
    query = {k: v for k in keys if (v := ctx.param(k))}
    rows = ctx.state.search_patients(ctx.practice, query)
    return ctx.page([fj.patient(p) for p in sorted(rows, key=lambda p: p.chart)])


def get_patient(ctx: Ctx, id: str) -> Response:
    found = ctx.practice.patients.get(id)
    if found is None:  # a chart number works too
        found = next((p for p in ctx.practice.patients.values() if p.chart == id), None)
    return _one(fj.patient(found) if found else None, "Patient", id)


# -- appointments ---------------------------------------------------------------------------------


def search_appointments(ctx: Ctx) -> Response:
    rows = list(ctx.practice.appointments.values())
    if wanted := ctx.values("identifier") + ctx.values("_id"):
        rows = [a for a in rows if a.id in wanted]
    if patients := ctx.values("patient"):
        ids = {fj.ref_id(p, "patient") for p in patients}
        charts = {p.id for p in ctx.practice.patients.values() if p.chart in ids}
        rows = [a for a in rows if a.patient in ids | charts]
    if locs := ctx.values("location.id"):
        rows = [a for a in rows if a.location in locs]
    if pracs := ctx.values("practitioner.id"):
        rows = [a for a in rows if a.practitioner in pracs]
    if statuses := ctx.values("status"):
        rows = [a for a in rows if a.status in statuses]
    if date_conds := ctx.when("date"):
        rows = [a for a in rows if fj.matches_when(a.start, date_conds)]
    if updated := ctx.when("_lastUpdated"):
        rows = [a for a in rows if fj.matches_when(a.last_updated, updated)]
        rows.sort(key=lambda a: (a.last_updated, int(a.id)))
    else:
        rows.sort(key=lambda a: (a.start, int(a.id)))
    return ctx.page([fj.appointment(ctx.practice, a) for a in rows])


def get_appointment(ctx: Ctx, id: str) -> Response:
    found = ctx.practice.appointments.get(id)
    return _one(fj.appointment(ctx.practice, found) if found else None, "Appointment", id)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def _extensions(body: dict[str, Any]) -> tuple[str | None, list[str], str | None, str | None]:
    """(appointment type, purposes, appointment-schedule, request-type) from the extensions."""
    type_id: str | None = None
    purposes: list[str] = []
    mode: str | None = None
    request_type: str | None = None
    for ext in body.get("extension") or []:
        url = str(ext.get("url", ""))
        ref = (ext.get("valueReference") or {}).get("reference")
        if url == f"{SD}/appointment-type" and ref:
            type_id = fj.ref_id(ref, "appointment-type")
        elif url == f"{SD}/appointment-purpose" and ref:
            purposes.append(fj.ref_id(ref, "appointment-purpose"))
        elif url == f"{SD}/appointment-schedule":
            mode = str(ext.get("valueString") or "").lower() or None
        elif url == f"{SD}/request-type":
            request_type = str(ext.get("valueString") or "").lower() or None
    return type_id, purposes, mode, request_type


def _contained_patient(body: dict[str, Any]) -> dict[str, Any] | None:
    """The prospect's demographics, checked as Nextech requires (name, a phone, an email)."""
    contained = [c for c in body.get("contained") or [] if c.get("resourceType") == "Patient"]
    if not contained:
        return None
    res = contained[0]
    name = (res.get("name") or [{}])[0]
    given = [g for g in name.get("given") or [] if g]
    if not name.get("family") or not given:
        raise ApiError(
            400, "the contained Patient needs a given and a family name", code="required"
        )
    telecom = res.get("telecom") or []
    phones = [
        {"use": str(t.get("use") or "home"), "value": str(t["value"])}
        for t in telecom
        if t.get("system") == "phone" and t.get("value")
    ]
    emails = [t["value"] for t in telecom if t.get("system") == "email" and t.get("value")]
    if not phones:
        raise ApiError(400, "the contained Patient needs a phone number", code="required")
    if not emails:
        raise ApiError(400, "the contained Patient needs an email address", code="required")
    postal = next(
        (a.get("postalCode") for a in res.get("address") or [] if a.get("postalCode")), None
    )
    return {
        "family": name["family"],
        "given": given,
        "birth_date": res.get("birthDate"),
        "phones": phones,
        "email": emails[0],
        "postal_code": postal,
    }


def create_appointment(ctx: Ctx) -> Response:
    body = ctx.json()
    try:
        parsed = StuAppointment.model_validate(body)
    except ValidationError as exc:
        raise ApiError(
            400, f"invalid Appointment: {_validation_message(exc)}", code="invalid"
        ) from exc
    if parsed.status != "proposed":
        raise ApiError(400, "a new appointment must have status proposed", code="business-rule")
    if parsed.start is None or parsed.end is None:
        raise ApiError(400, "start and end are required", code="required")
    practice = ctx.practice
    refs: dict[str, str] = {}
    for part in body.get("participant") or []:
        ref = str((part.get("actor") or {}).get("reference") or "")
        kind, _, ident = ref.partition("/")
        if kind and ident:
            refs[kind.lower()] = ident
    location, practitioner = refs.get("location"), refs.get("practitioner")
    if not location or location not in practice.locations:
        raise ApiError(400, "a known location participant is required", code="required")
    if not practitioner or practitioner not in practice.linked_practitioners():
        raise ApiError(400, "a known practitioner participant is required", code="required")
    type_id, purposes, mode, _ = _extensions(body)
    if type_id is not None and type_id not in practice.appointment_types:
        raise ApiError(400, f"unknown appointment-type/{type_id}", code="invalid")
    for purpose in purposes:
        if purpose not in practice.purposes:
            raise ApiError(400, f"unknown appointment-purpose/{purpose}", code="invalid")
    if mode not in (None, "book", "hold"):
        raise ApiError(400, "appointment-schedule must be book or hold", code="invalid")
    patient_id = refs.get("patient")
    prospect = _contained_patient(body)
    if patient_id is None and prospect is None:
        raise ApiError(
            400, "a patient participant or a contained Patient is required", code="required"
        )
    if patient_id is not None and patient_id not in practice.patients:
        raise ApiError(400, f"Patient {patient_id} not found", code="not-found")
    start, end = parsed.start, parsed.end
    why = ctx.state.conflict(practice, practitioner, location, start, end)
    if why is not None:
        raise ApiError(409, why, body=fj.appointment_response(why, start, end))
    if prospect is not None and patient_id is None:
        patient_id = ctx.state.add_patient(practice, prospect, prospect=True).id
    mode = mode or practice.booking_preference
    now = utc_now()
    appt = Appointment(
        id=ctx.state.new_id(),
        patient=patient_id,
        practitioner=practitioner,
        location=location,
        appointment_type=type_id,
        purposes=purposes,
        start=start,
        end=end,
        status="booked" if mode == "book" else "proposed",
        schedule_mode=mode,
        comment=parsed.comment,
        source="api",
        created=now,
        last_updated=now,
    )
    practice.appointments[appt.id] = appt
    rendered = fj.appointment(practice, appt)
    return fj.fhir_response(
        rendered, 201, headers={"Location": f"{ctx.base}/Appointment/{appt.id}"}
    )


def update_appointment(ctx: Ctx, id: str) -> Response:
    appt = ctx.practice.appointments.get(id)
    if appt is None:
        raise ApiError(404, f"Appointment {id} not found", code="not-found")
    body = ctx.json()
    if body.get("resourceType") != "Appointment":
        raise ApiError(400, "the body must be an Appointment", code="structure")
    _, _, _, request_type = _extensions(body)
    status = body.get("status")
    if status == "cancelled":
        if request_type != "queue":
            raise ApiError(
                400,
                "a cancellation is a request: add the request-type extension queue",
                code="business-rule",
            )
        if appt.status != "cancelled":
            appt.cancel_requested = True
    elif status in ("booked", "arrived", "fulfilled", "pending"):
        if appt.status == "cancelled":
            raise ApiError(409, "the appointment is cancelled", code="conflict")
        appt.status = status
    elif status is not None:
        raise ApiError(
            400, f"status {status!r} cannot be set through the API", code="not-supported"
        )
    appt.last_updated = utc_now()
    return fj.fhir_response(fj.appointment(ctx.practice, appt))


# -- availability ---------------------------------------------------------------------------------


def search_slots(ctx: Ctx) -> Response:
    practice = ctx.practice
    conditions = ctx.when("start")
    lo, hi = fj.bounds(conditions)
    if lo is None:
        raise ApiError(400, "start=ge<date> is required", code="required")
    if hi is None:
        hi = lo + timedelta(days=DEFAULT_SLOT_DAYS)
    if hi - lo > timedelta(days=MAX_SLOT_DAYS):
        raise ApiError(400, f"the search cannot exceed {MAX_SLOT_DAYS} days", code="too-costly")
    locations: list[str] = []
    practitioners: list[str] = []
    for actor in ctx.values("schedule.actor"):
        kind = actor.split("/", 1)[0].lower()
        if kind == "location":
            locations.append(fj.ref_id(actor, "location"))
        elif kind == "practitioner":
            practitioners.append(fj.ref_id(actor, "practitioner"))
        else:
            raise ApiError(400, f"unknown schedule.actor {actor!r}", code="invalid")
    if not locations:
        raise ApiError(
            400, "at least one schedule.actor=location/<id> is required", code="required"
        )
    type_ref = ctx.param("appointment-type")
    type_id = fj.ref_id(type_ref, "appointment-type") if type_ref else None
    if type_id is not None and type_id not in practice.appointment_types:
        raise ApiError(400, f"unknown appointment-type/{type_id}", code="invalid")
    length = ctx.param("slot-length")
    if length is not None:
        if not length.isdigit() or int(length) < 1:
            raise ApiError(400, "slot-length must be minutes", code="invalid")
        minutes = int(length)
    elif type_id is not None:
        minutes = int(practice.appointment_types[type_id]["duration"])
    else:
        minutes = practice.default_slot_minutes
    found = ctx.state.free_slots(
        practice,
        locations=locations,
        practitioners=practitioners or None,
        start=lo,
        end=hi,
        minutes=minutes,
        appointment_type=type_id,
    )
    return ctx.page([fj.slot(practice, p, loc, s, e, type_id) for p, loc, s, e in found])


# -- notes back to the chart ----------------------------------------------------------------------


def create_composition(ctx: Ctx, id: str) -> Response:
    if id not in ctx.practice.patients:
        raise ApiError(404, f"Patient {id} not found", code="not-found")
    body = ctx.json()
    try:
        StuComposition.model_validate(body)
    except ValidationError as exc:
        raise ApiError(
            400, f"invalid Composition: {_validation_message(exc)}", code="invalid"
        ) from exc
    subject = str((body.get("subject") or {}).get("reference") or f"Patient/{id}")
    if fj.ref_id(subject, "patient") != id:
        raise ApiError(400, "the Composition's subject is another patient", code="invalid")
    note = {**body, "id": ctx.state.new_id(), "meta": {"lastUpdated": fj.precise(utc_now())}}
    ctx.practice.compositions.setdefault(id, []).append(note)
    return fj.fhir_response(
        note, 201, headers={"Location": f"{ctx.base}/Patient/{id}/Composition/{note['id']}"}
    )


def list_compositions(ctx: Ctx, id: str) -> Response:
    if id not in ctx.practice.patients:
        raise ApiError(404, f"Patient {id} not found", code="not-found")
    return ctx.page(list(ctx.practice.compositions.get(id, [])))


def create_document_reference(ctx: Ctx) -> Response:
    """R4's write: a base64 document for the patient's History tab (checked, not validated
    against the R4 models: the sandbox's scheduling surface is STU3)."""
    body = ctx.json()
    if body.get("resourceType") != "DocumentReference":
        raise ApiError(400, "the body must be a DocumentReference", code="structure")
    subject = str((body.get("subject") or {}).get("reference") or "")
    patient_id = fj.ref_id(subject, "patient") if subject else ""
    if patient_id not in ctx.practice.patients:
        raise ApiError(400, "subject must be a known Patient", code="invalid")
    try:
        data = body["content"][0]["attachment"]["data"]
        base64.b64decode(data, validate=True)
    except (KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise ApiError(400, "content[0].attachment.data must be base64", code="invalid") from exc
    doc = {**body, "id": ctx.state.new_id(), "meta": {"lastUpdated": fj.precise(utc_now())}}
    ctx.practice.documents.append(doc)
    return fj.fhir_response(doc, 201)


def search_document_references(ctx: Ctx) -> Response:
    rows = ctx.practice.documents
    if patient := ctx.param("patient"):
        want = fj.ref_id(patient, "patient")
        rows = [d for d in rows if fj.ref_id(d["subject"]["reference"], "patient") == want]
    return ctx.page(list(rows))


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/Practitioner", list_practitioners),
    ("GET", "/Practitioner/{id}", get_practitioner),
    ("GET", "/Location", list_locations),
    ("GET", "/Location/{id}", get_location),
    ("GET", "/appointment-type", list_appointment_types),
    ("GET", "/appointment-purpose", list_appointment_purposes),
    ("GET", "/Schedule", list_schedules),
    ("GET", "/Patient", search_patients),
    ("GET", "/Patient/{id}", get_patient),
    ("GET", "/Patient/{id}/Composition", list_compositions),
    ("POST", "/Patient/{id}/Composition", create_composition),
    ("GET", "/Appointment", search_appointments),
    ("POST", "/Appointment", create_appointment),
    ("GET", "/Appointment/{id}", get_appointment),
    ("PUT", "/Appointment/{id}", update_appointment),
    ("GET", "/Slot", search_slots),
    ("GET", "/DocumentReference", search_document_references),
    ("POST", "/DocumentReference", create_document_reference),
]

__all__ = ["ROUTES", "Ctx", "digits"]
