"""``/_admin``: set-up, faults and the practice's own staff, for tests and the demo.

Staff actions (book, confirm, cancel, block, act on cancellation requests) change the schedule
the way a receptionist in Nextech would, so tests can check that we notice without webhooks.
Every route needs the ``X-Admin-Token`` header.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import fhirjson as fj
from .fhirjson import ApiError
from .store import Appointment, Block, Practice, User, utc_now

if TYPE_CHECKING:
    from .app import NextechSandbox

AdminHandler = Callable[["NextechSandbox", Request, dict[str, Any]], Any]


def _when(practice: Practice, value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be an ISO date-time")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an ISO date-time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=practice.tz)


def _appointment(sb: NextechSandbox, request: Request) -> tuple[Practice, Appointment]:
    practice = sb.state.practice(request.path_params["pid"])
    appt = practice.appointments.get(request.path_params["aid"])
    if appt is None:
        raise ApiError(404, "appointment not found")
    return practice, appt


# -- handlers (return JSON-able data) -------------------------------------------------------------


def health(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    return {"status": "ok", "pid": os.getpid(), "surface": "nextech"}


def reset(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    sb.reset()
    return {"reset": True}


def get_faults(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    return sb.faults.settings.as_dict()


def set_faults(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    try:
        return sb.faults.update(body).as_dict()
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc


def clear_faults(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    sb.faults.reset()
    return sb.faults.settings.as_dict()


def get_limits(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    return sb.limiter.snapshot()


def set_limits(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    try:
        sb.limiter.configure(
            limit=body.get("limit"),
            window_seconds=body.get("window_seconds"),
            enabled=body.get("enabled"),
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc
    return sb.limiter.snapshot()


def stats(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    return sb.stats.snapshot()


def settings(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    if "token_ttl" in body:
        sb.state.token_ttl = float(body["token_ttl"])
    return {"token_ttl": sb.state.token_ttl}


def seed_practice(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice = sb.state.load_practice(body)
    return {"id": practice.id}


def configure_practice(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    """Create the practice, or change its set-up and keep its calendar and charts."""
    practice = sb.state.load_practice(
        {**body, "id": request.path_params["pid"]}, keep_calendar=True
    )
    return describe_practice(sb, request, {}) | {"id": practice.id}


def describe_practice(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    """The practice's set-up as seeded (what tests and the demo check against)."""
    practice = sb.state.practice(request.path_params["pid"])
    return {
        "id": practice.id,
        "name": practice.name,
        "timezone": str(practice.tz),
        "locations": list(practice.locations.values()),
        "practitioners": list(practice.practitioners.values()),
        "appointment_types": list(practice.appointment_types.values()),
        "appointment_purposes": list(practice.purposes.values()),
        "templates": [
            {
                "practitioner": t.practitioner,
                "location": t.location,
                "weekdays": t.weekdays,
                "start": t.start.strftime("%H:%M"),
                "end": t.end.strftime("%H:%M"),
                "interval": t.interval,
                "appointment_types": t.appointment_types,
            }
            for t in practice.templates
        ],
    }


def add_user(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    try:
        user = User(
            username=str(body["username"]),
            password=str(body["password"]),
            practices=[str(p) for p in body.get("practices", [])],
            must_reset=bool(body.get("must_reset", False)),
        )
    except KeyError as exc:
        raise ApiError(400, f"missing {exc}") from exc
    sb.state.users[user.username] = user
    return {"username": user.username, "must_reset": user.must_reset}


def _user(sb: NextechSandbox, request: Request) -> User:
    user = sb.state.users.get(request.path_params["username"])
    if user is None:
        raise ApiError(404, "user not found")
    return user


def expire_tokens(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    """Credential expiry: every access token of the user stops working (refresh still works)."""
    return {"expired": sb.state.expire_access(_user(sb, request).username)}


def revoke_tokens(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    return {"revoked": sb.state.revoke(_user(sb, request).username)}


def require_reset(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    """The service user's password must be changed: tokens go, sign-ins fail with AADSTS50055."""
    user = _user(sb, request)
    user.must_reset = True
    return {"revoked": sb.state.revoke(user.username)}


def complete_reset(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    user = _user(sb, request)
    user.must_reset = False
    if body.get("password"):
        user.password = str(body["password"])
    return {"username": user.username, "must_reset": False}


def list_appointments(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice = sb.state.practice(request.path_params["pid"])
    return [
        fj.appointment(practice, a)
        for a in sorted(practice.appointments.values(), key=lambda a: int(a.id))
    ]


def staff_book(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    """A receptionist books in Nextech (an existing patient, or a new one by name)."""
    practice = sb.state.practice(request.path_params["pid"])
    try:
        practitioner, location = str(body["practitioner"]), str(body["location"])
    except KeyError as exc:
        raise ApiError(400, f"missing {exc}") from exc
    start = _when(practice, body.get("start"), "start")
    type_id = str(body["appointment_type"]) if body.get("appointment_type") else None
    minutes = int(
        body.get("minutes") or (practice.appointment_types[type_id]["duration"] if type_id else 15)
    )
    end = (
        _when(practice, body["end"], "end")
        if body.get("end")
        else start + timedelta(minutes=minutes)
    )
    if not body.get("force"):
        why = sb.state.conflict(practice, practitioner, location, start, end)
        if why is not None:
            raise ApiError(409, why)
    patient_id = body.get("patient_id")
    if patient_id is None and isinstance(body.get("patient"), dict):
        patient_id = sb.state.add_patient(practice, body["patient"], prospect=False).id
    now = utc_now()
    appt = Appointment(
        id=sb.state.new_id(),
        patient=patient_id,
        practitioner=practitioner,
        location=location,
        appointment_type=type_id,
        purposes=[str(p) for p in body.get("purposes", [])],
        start=start,
        end=end,
        status=str(body.get("status") or "booked"),
        schedule_mode="book",
        comment=body.get("comment"),
        source="staff",
        created=now,
        last_updated=now,
    )
    practice.appointments[appt.id] = appt
    return fj.appointment(practice, appt)


def staff_cancel(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice, appt = _appointment(sb, request)
    appt.status = "cancelled"
    appt.cancel_requested = False
    appt.last_updated = utc_now()
    return fj.appointment(practice, appt)


def staff_confirm(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    """Staff confirm a held appointment from the follow-up list."""
    practice, appt = _appointment(sb, request)
    if appt.status == "cancelled":
        raise ApiError(409, "cancelled")
    appt.status = "booked"
    appt.last_updated = utc_now()
    return fj.appointment(practice, appt)


def process_cancel_requests(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    """Staff work the queue of cancellation requests: each becomes a cancellation."""
    practice = sb.state.practice(request.path_params["pid"])
    done = []
    for appt in practice.appointments.values():
        if appt.cancel_requested and appt.status != "cancelled":
            appt.status = "cancelled"
            appt.cancel_requested = False
            appt.last_updated = utc_now()
            done.append(appt.id)
    return {"cancelled": done}


def add_block(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice = sb.state.practice(request.path_params["pid"])
    if "location" not in body:
        raise ApiError(400, "location is required")
    blk = Block(
        id=sb.state.new_id(),
        location=str(body["location"]),
        practitioner=str(body["practitioner"]) if body.get("practitioner") else None,
        start=_when(practice, body.get("start"), "start"),
        end=_when(practice, body.get("end"), "end"),
        reason=str(body.get("reason") or "Block"),
    )
    practice.blocks[blk.id] = blk
    return fj.block(blk)


def delete_block(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice = sb.state.practice(request.path_params["pid"])
    if practice.blocks.pop(request.path_params["bid"], None) is None:
        raise ApiError(404, "block not found")
    return {"deleted": True}


def add_patient(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice = sb.state.practice(request.path_params["pid"])
    try:
        patient = sb.state.add_patient(practice, body, prospect=bool(body.get("prospect", False)))
    except (KeyError, ValueError) as exc:
        raise ApiError(400, f"bad patient: {exc!r}") from exc
    return fj.patient(patient)


def list_patients(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice = sb.state.practice(request.path_params["pid"])
    return [fj.patient(p) for p in practice.patients.values()]


def list_notes(sb: NextechSandbox, request: Request, body: dict[str, Any]) -> Any:
    practice = sb.state.practice(request.path_params["pid"])
    return {"compositions": practice.compositions, "documents": practice.documents}


ADMIN: list[tuple[str, str, AdminHandler]] = [
    ("GET", "/_admin/health", health),
    ("POST", "/_admin/reset", reset),
    ("GET", "/_admin/faults", get_faults),
    ("POST", "/_admin/faults", set_faults),
    ("DELETE", "/_admin/faults", clear_faults),
    ("GET", "/_admin/rate_limits", get_limits),
    ("POST", "/_admin/rate_limits", set_limits),
    ("GET", "/_admin/stats", stats),
    ("POST", "/_admin/settings", settings),
    ("POST", "/_admin/practices", seed_practice),
    ("GET", "/_admin/practices/{pid}", describe_practice),
    ("PUT", "/_admin/practices/{pid}", configure_practice),
    ("POST", "/_admin/users", add_user),
    ("POST", "/_admin/users/{username}/expire_tokens", expire_tokens),
    ("POST", "/_admin/users/{username}/revoke_tokens", revoke_tokens),
    ("POST", "/_admin/users/{username}/require_reset", require_reset),
    ("POST", "/_admin/users/{username}/complete_reset", complete_reset),
    ("GET", "/_admin/practices/{pid}/appointments", list_appointments),
    ("POST", "/_admin/practices/{pid}/appointments", staff_book),
    ("POST", "/_admin/practices/{pid}/appointments/{aid}/cancel", staff_cancel),
    ("POST", "/_admin/practices/{pid}/appointments/{aid}/confirm", staff_confirm),
    ("POST", "/_admin/practices/{pid}/cancel_requests/process", process_cancel_requests),
    ("POST", "/_admin/practices/{pid}/blocks", add_block),
    ("DELETE", "/_admin/practices/{pid}/blocks/{bid}", delete_block),
    ("GET", "/_admin/practices/{pid}/patients", list_patients),
    ("POST", "/_admin/practices/{pid}/patients", add_patient),
    ("GET", "/_admin/practices/{pid}/notes", list_notes),
]


def routes(sb: NextechSandbox) -> list[Route]:
    def make(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if handler is not health and request.headers.get("x-admin-token") != sb.admin_token:
                return JSONResponse({"error": "admin token required"}, status_code=401)
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return JSONResponse({"error": "body must be JSON"}, status_code=400)
            try:
                with sb.state.lock:
                    data = handler(sb, request, body if isinstance(body, dict) else {})
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)
            return JSONResponse(data)

        return endpoint

    return [Route(path, make(h), methods=[m]) for m, path, h in ADMIN]
