"""Routes for booking (booking guide): patients and their documents, slots, appointments."""

from __future__ import annotations

import base64
import binascii
from datetime import date
from email import policy
from email.parser import BytesParser

from starlette.responses import Response

from .api import Call, envelope, nested
from .errors import bad_request, not_found
from .runtime import ACTIVE_INSERTION, Sandbox, digits
from .slots import EMPTY_DESCRIPTION
from .store import Record, public
from .timeutil import parse_date, parse_datetime, zone

MAX_SLOT_DAYS = 366


# ---------------------------------------------------------------------------------------------
# Patients and documents


def _patient_view(sandbox: Sandbox, record: Record, with_upcoming: bool) -> Record:
    view = public(record)
    if with_upcoming:
        view["upcoming_appts"] = sandbox.upcoming_appointments(record["id"])
    return view


def list_patients(call: Call) -> Response:
    """Search by name, date_of_birth, phone_number, email. ``data`` is ``{"patients": [...]}``."""
    subdomain = call.subdomain()
    location = call.location(subdomain)
    name = (call.q_str("name") or "").lower().split()
    dob = call.q_str("date_of_birth")
    if dob is not None:
        try:
            dob = parse_date(dob).isoformat()
        except ValueError as exc:
            raise bad_request(f"date_of_birth {exc}") from exc
    phone = digits(call.q_str("phone_number"))[-10:]
    email = (call.q_str("email") or "").lower()
    strict = call.q_bool("location_strict") or False
    new_patient = call.q_bool("new_patient")
    sandbox = call.sandbox
    with_appts = {
        a["patient_id"]
        for a in sandbox.store.rows(
            "appointments",
            lambda r: r["patient_id"] is not None and r["insertion_status"] in ACTIVE_INSERTION,
        )
    }

    def matches(r: Record) -> bool:
        if r["_subdomain"] != subdomain or r["inactive"]:
            return False
        if strict and location["id"] not in r["location_ids"]:
            return False
        full = " ".join(filter(None, [r["first_name"], r.get("middle_name"), r["last_name"]]))
        if name and not all(part in full.lower() for part in name):
            return False
        if dob is not None and r["bio"].get("date_of_birth") != dob:
            return False
        bio = r["bio"]
        numbers = [bio.get(k) for k in ("phone_number", "cell_phone_number", "home_phone_number")]
        if phone and not any(digits(n)[-10:] == phone for n in numbers if n):
            return False
        if email and (r.get("email") or "").lower() != email:
            return False
        return new_patient is not True or r["id"] not in with_appts

    rows = sandbox.store.rows("patients", matches)
    with_upcoming = call.q_bool("include_upcoming_appts") or False
    patients = [_patient_view(sandbox, r, with_upcoming) for r in call.page_of(rows)]
    return envelope({"patients": patients}, count=len(rows))


def get_patient(call: Call) -> Response:
    record = call.sandbox.scoped("patients", call.subdomain(), call.path_int("id"), "Patient")
    return envelope(
        _patient_view(call.sandbox, record, bool(call.q_bool("include_upcoming_appts")))
    )


def create_patient(call: Call) -> Response:
    """``{"provider": {"provider_id"}, "patient": {...}}``; answers ``data: {"user": {...}}``."""
    subdomain = call.subdomain()
    location = call.location(subdomain)
    patient = call.sandbox.create_patient(subdomain, location, call.json(), via="api")
    return envelope({"user": patient}, status=201, description="Patient created")


def _parse_multipart(content_type: str, raw: bytes) -> tuple[str, bytes, str, int | None]:
    """NexHealth's own form: a multipart upload with a file part (parsed by the stdlib)."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    fields: dict[str, str] = {}
    file_bytes: bytes | None = None
    file_type, file_name = "application/octet-stream", None
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None or name in ("file", "document[file]"):
            file_bytes, file_type, file_name = data, part.get_content_type(), part.get_filename()
        elif isinstance(name, str):
            fields[name.removeprefix("document[").removesuffix("]")] = data.decode()
    if file_bytes is None:
        raise bad_request("a file part is required")
    title = fields.get("title") or fields.get("name") or file_name or "document"
    appointment = fields.get("appointment_id", "")
    if appointment and not appointment.isdigit():
        raise bad_request("appointment_id must be an integer")
    return title, file_bytes, file_type, int(appointment) if appointment else None


def _parse_document(call: Call) -> tuple[str, bytes, str, int | None]:
    """JSON ``{"document": {...}}`` (content or content_base64) or a multipart upload."""
    content_type = call.request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return _parse_multipart(content_type, call.raw_body)
    body = nested(call.json(), "document")
    title = body.get("title") or body.get("name")
    if not isinstance(title, str) or not title.strip():
        raise bad_request("document.title is required")
    if isinstance(body.get("content_base64"), str):
        try:
            content = base64.b64decode(body["content_base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request("document.content_base64 is not valid base64") from exc
    elif isinstance(body.get("content"), str):
        content = body["content"].encode()
    else:
        raise bad_request("document.content (text) or document.content_base64 is required")
    mime = body.get("content_type") or "text/plain"
    appointment_id = body.get("appointment_id")
    if appointment_id is not None and not isinstance(appointment_id, int):
        raise bad_request("document.appointment_id must be an integer")
    return title.strip(), content, str(mime), appointment_id


def create_document(call: Call) -> Response:
    subdomain = call.subdomain()
    patient = call.sandbox.scoped("patients", subdomain, call.path_int("id"), "Patient")
    location = call.location(subdomain, required=False)
    location_id = location["id"] if location else patient["location_ids"][0]
    title, content, content_type, appointment_id = _parse_document(call)
    doc = call.sandbox.accept_document(
        subdomain,
        patient,
        location_id,
        title=title,
        content=content,
        content_type=content_type,
        appointment_id=appointment_id,
    )
    return envelope(doc, status=201, description="Document accepted")


def list_documents(call: Call) -> Response:
    subdomain = call.subdomain()
    patient = call.sandbox.scoped("patients", subdomain, call.path_int("id"), "Patient")
    rows = call.sandbox.store.rows("documents", lambda r: r["patient_id"] == patient["id"])
    return call.paginate([public(r) for r in rows])


def get_document(call: Call) -> Response:
    """Sandbox extension: includes ``content_base64`` so a test can read the note back."""
    subdomain = call.subdomain()
    patient = call.sandbox.scoped("patients", subdomain, call.path_int("id"), "Patient")
    doc = call.sandbox.scoped("documents", subdomain, call.path_int("doc_id"), "Document")
    if doc["patient_id"] != patient["id"]:
        raise not_found("Document", doc["id"])
    return envelope({**public(doc), "content_base64": doc["_content"]})


# ---------------------------------------------------------------------------------------------
# Slots


def _slots(call: Call) -> Response:
    """GET /available_slots and its older name /appointment_slots answer the same shape."""
    subdomain = call.subdomain()
    start_raw = call.q_str("start_date")
    if start_raw is None:
        raise bad_request("start_date is required")
    try:
        start_date: date = parse_date(start_raw)
    except ValueError as exc:
        raise bad_request(f"start_date {exc}") from exc
    days = call.q_int("days") or 1
    if days > MAX_SLOT_DAYS:
        raise bad_request(f"days must be at most {MAX_SLOT_DAYS}")
    lids = call.q_ints("lids")
    if not lids:
        raise bad_request("lids[] is required")
    pids = call.q_ints("pids")
    sandbox = call.sandbox
    if not pids:
        pids = [
            p["id"]
            for p in sandbox.store.rows(
                "providers",
                lambda r: (
                    r["_subdomain"] == subdomain
                    and not r["inactive"]
                    and any(lid in r["location_ids"] for lid in lids)
                ),
            )
        ]
    operatory_ids = call.q_ints("operatory_ids") + call.q_ints("operatory_id")
    overlapping = call.q_bool("overlapping_operatory_slots")
    groups, empty = sandbox.find_slots(
        subdomain,
        start_date=start_date,
        days=days,
        location_ids=lids,
        provider_ids=pids,
        operatory_ids=operatory_ids,
        appointment_type_id=call.q_int("appointment_type_id"),
        slot_length=call.q_int("slot_length"),
        slot_interval=call.q_int("slot_interval"),
        overlapping_operatory_slots=True if overlapping is None else overlapping,
    )
    return envelope(groups, count=len(groups), description=EMPTY_DESCRIPTION if empty else None)


def available_slots(call: Call) -> Response:
    return _slots(call)


def appointment_slots(call: Call) -> Response:
    return _slots(call)


# ---------------------------------------------------------------------------------------------
# Appointments


def list_appointments(call: Call) -> Response:
    """By location and time range (``start``/``end``), with blocks (``unavailable: true``)."""
    subdomain = call.subdomain()
    location = call.location(subdomain)
    tz = zone(location.get("tz"))
    try:
        start = parse_datetime(call.q_str("start"), tz).timestamp()
        end = parse_datetime(call.q_str("end"), tz).timestamp()
    except ValueError as exc:
        raise bad_request(f"start and end are required ISO 8601 date-times ({exc})") from exc
    providers = call.q_ints("provider_ids") + call.q_ints("provider_id")
    operatories = call.q_ints("operatory_ids") + call.q_ints("operatory_id")
    patient_id = call.q_int("patient_id")
    cancelled = call.q_bool("cancelled")
    unavailable = call.q_bool("unavailable")
    updated_since = call.q_str("updated_since")
    since = None
    if updated_since is not None:
        try:
            since = parse_datetime(updated_since, tz)
        except ValueError as exc:
            raise bad_request(f"updated_since {exc}") from exc

    def matches(r: Record) -> bool:
        return (
            r["location_id"] == location["id"]
            and r["insertion_status"] in (*ACTIVE_INSERTION, "cancelled")
            and r["_start"] < end
            and r["_end"] > start
            and (not providers or r["provider_id"] in providers)
            and (not operatories or r["operatory_id"] in operatories)
            and (patient_id is None or r["patient_id"] == patient_id)
            and (cancelled is None or r["cancelled"] == cancelled)
            and (unavailable is None or r["unavailable"] == unavailable)
            and (since is None or parse_datetime(r["updated_at"], tz) >= since)
        )

    rows = sorted(call.sandbox.store.rows("appointments", matches), key=lambda r: r["_start"])
    return call.paginate([public(r) for r in rows])


def get_appointment(call: Call) -> Response:
    record = call.sandbox.scoped(
        "appointments", call.subdomain(), call.path_int("id"), "Appointment"
    )
    return envelope(public(record))


def create_appointment(call: Call) -> Response:
    """Asynchronous: 201 means accepted; ``appointment_insertion`` says whether it was written."""
    subdomain = call.subdomain()
    location = call.location(subdomain)
    body = call.json()
    view = call.sandbox.accept_appointment(subdomain, location, body.get("appt"))
    return envelope({"appt": view}, status=201, description="Appointment accepted")


def update_appointment(call: Call) -> Response:
    """``{"appt": {"cancelled": true}}`` cancels; confirmed, patient_missed, note also allowed."""
    subdomain = call.subdomain()
    body = call.json()
    view = call.sandbox.update_appointment(
        subdomain, call.path_int("id"), body.get("appt"), via="api"
    )
    return envelope({"appt": view})
