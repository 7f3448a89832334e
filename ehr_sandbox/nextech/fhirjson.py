"""FHIR STU3 JSON as Nextech's Select API renders it: resources, search bundles, errors as
OperationOutcome, and the search-parameter prefixes (``ge2026-12-01``, ``gt2026-12-01T10:00Z``).

Rendering is plain dicts (the sandbox is the far side; it answers what Nextech answers), but
what clients send is validated against the STU3 models in ``fhir.resources``, so a client that
builds an invalid resource is told so with a 400, as a strict server would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from .store import Appointment, Block, Patient, Practice

SD = "https://select.nextech-api.com/api/structuredefinition"
FHIR_JSON = "application/fhir+json"


class ApiError(Exception):
    """An error answer: an OperationOutcome (or ``body`` as given, e.g. an AppointmentResponse)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        code: str = "processing",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body
        self.headers = headers or {}
        self.code = code

    def response(self) -> JSONResponse:
        body = self.body or operation_outcome(self.message, code=self.code)
        return JSONResponse(
            body, status_code=self.status, headers=self.headers, media_type=FHIR_JSON
        )


def operation_outcome(message: str, *, code: str = "processing") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }


def fhir_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def instant(value: datetime, tz: tzinfo | None = None) -> str:
    return value.astimezone(tz or UTC).isoformat(timespec="seconds")


def precise(value: datetime) -> str:
    """``meta.lastUpdated``: UTC with microseconds, so a change-poll cursor never ties."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# -- search parameters --------------------------------------------------------------------------

PREFIXES = ("ge", "gt", "le", "lt", "eq", "ne", "sa", "eb", "ap")


def parse_when(raw: str, tz: tzinfo) -> tuple[str, datetime, datetime]:
    """``ge2026-12-01`` -> ("ge", start of the span, end of the span).

    A date is a whole local day; a date-time is an instant. A ``+`` sent unencoded arrives as a
    space (Nextech asks for ``%2B``); it is put back.
    """
    text = raw.strip().replace(" ", "+")
    prefix = "eq"
    if text[:2] in PREFIXES:
        prefix, text = text[:2], text[2:]
    if prefix not in ("ge", "gt", "le", "lt", "eq"):
        raise ApiError(400, f"search prefix {prefix!r} is not supported", code="not-supported")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            lo = datetime.combine(day, time(0), tzinfo=tz)
            return prefix, lo, lo + timedelta(days=1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(400, f"cannot parse date {raw!r}", code="invalid") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return prefix, moment, moment


def matches_when(value: datetime, conditions: Sequence[tuple[str, datetime, datetime]]) -> bool:
    """All conditions hold (a date is a span [lo, hi); a date-time is the instant lo == hi)."""
    for prefix, lo, hi in conditions:
        span = hi > lo
        ok = {
            "eq": (lo <= value < hi) if span else value == lo,
            "ge": value >= lo,
            "gt": value >= hi if span else value > lo,
            "le": value < hi if span else value <= lo,
            "lt": value < lo,
        }[prefix]
        if not ok:
            return False
    return True


def bounds(
    conditions: Sequence[tuple[str, datetime, datetime]],
) -> tuple[datetime | None, datetime | None]:
    """The [start, end) a set of conditions selects (for ``/Slot``'s window)."""
    lo: datetime | None = None
    hi: datetime | None = None
    for prefix, a, b in conditions:
        if prefix == "eq":
            lo, hi = a, (b if b > a else a + timedelta(microseconds=1))
        elif prefix == "ge":
            lo = a
        elif prefix == "gt":
            lo = b if b > a else a + timedelta(microseconds=1)
        elif prefix == "lt":
            hi = a
        elif prefix == "le":
            hi = b if b > a else a + timedelta(microseconds=1)
    return lo, hi


def ref_id(value: str, kind: str) -> str:
    """``practitioner/9323`` or ``Practitioner/9323`` -> ``9323`` (the kind checked)."""
    text = value.strip()
    if "/" in text:
        head, _, tail = text.partition("/")
        if head.lower() != kind.lower():
            raise ApiError(400, f"expected a {kind} reference, got {value!r}", code="invalid")
        return tail
    return text


# -- bundles ------------------------------------------------------------------------------------


def bundle(
    resources: list[dict[str, Any]],
    *,
    base: str,
    path: str,
    query: list[tuple[str, str]],
    page: int,
    count: int,
) -> dict[str, Any]:
    """A searchset page with ``self``/``next`` links (``page`` from 1)."""
    total = len(resources)
    chunk = resources[(page - 1) * count : page * count]
    kept = [(k, v) for k, v in query if k != "page"]

    def url(p: int) -> str:
        from urllib.parse import urlencode

        return f"{base}{path}?{urlencode([*kept, ('page', str(p))])}"

    links = [{"relation": "self", "url": url(page)}]
    if page * count < total:
        links.append({"relation": "next", "url": url(page + 1)})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in chunk
        ],
    }


# -- resources ----------------------------------------------------------------------------------


def location(loc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Location",
        "id": loc["id"],
        "identifier": [{"use": "official", "value": loc["id"]}],
        "name": loc.get("name", f"Location {loc['id']}"),
        "status": "active",
    }
    if loc.get("phone"):
        out["telecom"] = [{"system": "phone", "value": loc["phone"]}]
    return out


def practitioner(prac: dict[str, Any]) -> dict[str, Any]:
    given = prac.get("given") or ""
    family = prac.get("family") or ""
    return {
        "resourceType": "Practitioner",
        "id": prac["id"],
        "identifier": [{"use": "official", "value": prac["id"]}],
        "active": True,
        "name": [
            {
                "text": prac.get("text") or f"{family}, {given}",
                "family": family,
                "given": [given, ""],
            }
        ],
    }


def named_extension_resource(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """Nextech's own ``appointment-type`` / ``appointment-purpose`` shape (not FHIR core)."""
    ext = [{"url": f"{SD}/{kind}#name", "valueString": item["name"]}]
    if kind == "appointment-type":
        ext.append({"url": f"{SD}/{kind}#duration", "valueInteger": int(item["duration"])})
    return {"resourceType": kind, "id": item["id"], "extension": ext}


def patient(p: Patient) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Patient",
        "id": p.id,
        "meta": {"lastUpdated": precise(p.last_updated)},
        "identifier": [{"use": "official", "value": p.id}, {"use": "usual", "value": p.chart}],
        "active": True,
        "name": [{"text": " ".join([*p.given, p.family]), "family": p.family, "given": p.given}],
        "telecom": [{"system": "phone", "use": ph["use"], "value": ph["value"]} for ph in p.phones]
        + ([{"system": "email", "value": p.email}] if p.email else []),
    }
    if p.birth_date:
        out["birthDate"] = p.birth_date.isoformat()
    if p.postal_code:
        out["address"] = [{"use": "home", "postalCode": p.postal_code}]
    if p.prospect:
        out["extension"] = [{"url": f"{SD}/patient-type", "valueString": "prospect"}]
    return out


SELECT_STATUS = {
    "proposed": ("2", "Held"),
    "booked": ("1", "Confirmed"),
    "pending": ("0", "Pending"),
    "arrived": ("3", "In"),
    "fulfilled": ("4", "Out"),
    "cancelled": ("5", "Cancelled"),
    "noshow": ("6", "No Show"),
}


def appointment(practice: Practice, a: Appointment) -> dict[str, Any]:
    loc = practice.locations.get(a.location, {"id": a.location, "name": a.location})
    prac = practice.practitioners.get(a.practitioner, {"id": a.practitioner})
    code, label = SELECT_STATUS.get(a.status, ("0", "Pending"))
    ext: list[dict[str, Any]] = [
        {
            "url": f"{SD}/appointment-status",
            "valueReference": {"reference": f"appointment-status/{code}", "display": label},
        }
    ]
    if a.appointment_type:
        at = practice.appointment_types.get(a.appointment_type, {"name": ""})
        ext.append(
            {
                "url": f"{SD}/appointment-type",
                "valueReference": {
                    "reference": f"appointment-type/{a.appointment_type}",
                    "display": at.get("name", ""),
                },
            }
        )
    for purpose in a.purposes:
        ext.append(
            {
                "url": f"{SD}/appointment-purpose",
                "valueReference": {
                    "reference": f"appointment-purpose/{purpose}",
                    "display": practice.purposes.get(purpose, {}).get("name", ""),
                },
            }
        )
    ext.append({"url": f"{SD}/appointment-schedule", "valueString": a.schedule_mode})
    if a.cancel_requested and a.status != "cancelled":
        ext.append({"url": f"{SD}/request-type", "valueString": "queue"})
    participants: list[dict[str, Any]] = []
    if a.patient:
        p = practice.patients.get(a.patient)
        participants.append(
            {
                "actor": {
                    "reference": f"Patient/{a.patient}",
                    "display": f"{p.family}, {' '.join(p.given)}" if p else "",
                },
                "status": "accepted",
            }
        )
    participants.append(
        {
            "actor": {"reference": f"Location/{a.location}", "display": loc.get("name", "")},
            "status": "accepted",
        }
    )
    prac_res = (
        practitioner(prac)
        if prac.get("family")
        else {"resourceType": "Practitioner", "id": a.practitioner}
    )
    participants.append(
        {
            "actor": {
                "reference": f"Practitioner/{a.practitioner}",
                "display": prac_res.get("name", [{}])[0].get("text", ""),
            },
            "status": "accepted",
        }
    )
    out: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": a.id,
        "meta": {"lastUpdated": precise(a.last_updated)},
        "contained": [location(loc), prac_res],
        "extension": ext,
        "identifier": [{"use": "official", "value": a.id}],
        "status": a.status,
        "description": practice.appointment_types.get(a.appointment_type or "", {}).get("name", ""),
        "start": instant(a.start, practice.tz),
        "end": instant(a.end, practice.tz),
        "minutesDuration": int((a.end - a.start).total_seconds() // 60),
        "created": precise(a.created),
        "participant": participants,
    }
    if a.comment:
        out["comment"] = a.comment
    return out


def slot(
    practice: Practice, prac: str, loc: str, start: datetime, end: datetime, type_id: str | None
) -> dict[str, Any]:
    ext = []
    if type_id:
        at = practice.appointment_types.get(type_id, {"name": ""})
        ext.append(
            {
                "url": f"{SD}/appointment-type",
                "valueReference": {
                    "reference": f"appointment-type/{type_id}",
                    "display": at.get("name", ""),
                },
            }
        )
    return {
        "resourceType": "Slot",
        "id": f"{loc}-{prac}-{int(start.timestamp())}",
        "contained": [
            location(practice.locations[loc]),
            practitioner(practice.practitioners[prac]),
        ],
        "extension": ext,
        "schedule": {"reference": f"Schedule/location_{loc}_practitioner_{prac}"},
        "status": "free",
        "start": instant(start, practice.tz),
        "end": instant(end, practice.tz),
    }


def schedule(practice: Practice, prac: str, loc: str) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": f"location_{loc}_practitioner_{prac}",
        "active": True,
        "actor": [{"reference": f"Location/{loc}"}, {"reference": f"Practitioner/{prac}"}],
    }


def block(b: Block) -> dict[str, Any]:
    return {
        "id": b.id,
        "location": b.location,
        "practitioner": b.practitioner,
        "start": b.start.isoformat(),
        "end": b.end.isoformat(),
        "reason": b.reason,
    }


def appointment_response(
    comment: str, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "AppointmentResponse",
        "appointment": {"display": "requested appointment"},
        "participantStatus": "declined",
        "comment": comment,
    }
    if start is not None and end is not None:
        out["start"] = instant(start)
        out["end"] = instant(end)
    return out
