"""The Nextech sandbox's in-memory state: practices, their schedules and charts, service users
and their tokens. Handlers run under one lock (``State.lock``), so every method here assumes it
is held and may read and write freely.

Availability is derived, never stored, the way Nextech derives it: a practitioner's template
(weekdays and hours at a location, in steps of ``interval`` minutes) minus the practitioner's
appointments that still hold time and minus blocks (one practitioner's, or a whole location's).
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .fhirjson import ApiError

# Statuses that no longer hold the practitioner's time.
FREE_STATUSES = frozenset({"cancelled", "noshow", "entered-in-error"})
MAX_SLOT_DAYS = 60
DEFAULT_SLOT_DAYS = 45


def utc_now() -> datetime:
    return datetime.now(UTC)


def digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


@dataclass
class Template:
    id: str
    practitioner: str
    location: str
    weekdays: list[int]  # 0 = Monday
    start: time
    end: time
    interval: int  # minutes between candidate starts
    appointment_types: list[str]  # empty: any type


@dataclass
class Block:
    id: str
    location: str
    practitioner: str | None  # None: the whole location
    start: datetime
    end: datetime
    reason: str


@dataclass
class Patient:
    id: str
    chart: str
    family: str
    given: list[str]
    birth_date: date | None
    phones: list[dict[str, str]]  # {"use": "home"|"mobile"|"work", "value": "..."}
    email: str | None
    postal_code: str | None
    prospect: bool
    last_updated: datetime


@dataclass
class Appointment:
    id: str
    patient: str | None
    practitioner: str
    location: str
    appointment_type: str | None
    purposes: list[str]
    start: datetime
    end: datetime
    status: str  # FHIR: proposed (held), booked, pending, arrived, fulfilled, cancelled, noshow
    schedule_mode: str  # "book" | "hold"
    comment: str | None
    source: str  # "api" | "staff"
    created: datetime
    last_updated: datetime
    cancel_requested: bool = False


@dataclass
class Practice:
    id: str
    name: str
    tz: ZoneInfo
    booking_preference: str  # the office's default when a POST names no appointment-schedule
    default_slot_minutes: int
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    practitioners: dict[str, dict[str, Any]] = field(default_factory=dict)
    appointment_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    purposes: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: list[Template] = field(default_factory=list)
    blocks: dict[str, Block] = field(default_factory=dict)
    patients: dict[str, Patient] = field(default_factory=dict)
    appointments: dict[str, Appointment] = field(default_factory=dict)
    compositions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def linked_practitioners(self) -> dict[str, dict[str, Any]]:
        """Nextech lists a provider as a Practitioner only when a user is linked to it."""
        return {k: v for k, v in self.practitioners.items() if v.get("linked_user", True)}


@dataclass
class User:
    username: str
    password: str
    practices: list[str]
    must_reset: bool = False


@dataclass
class Token:
    value: str
    username: str
    expires_at: datetime
    kind: str  # "access" | "refresh"


class State:
    """Everything the sandbox knows. ``lock`` guards all of it."""

    def __init__(self, *, token_ttl: float = 3600.0, refresh_ttl: float = 14 * 86400.0) -> None:
        self.lock = threading.RLock()
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl
        self.practices: dict[str, Practice] = {}
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self._next_id = 1000

    def reset(self) -> None:
        self.practices.clear()
        self.users.clear()
        self.tokens.clear()
        self._next_id = 1000

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    # -- practices ------------------------------------------------------------------------------

    def practice(self, practice_id: str) -> Practice:
        found = self.practices.get(practice_id)
        if found is None:
            raise ApiError(404, f"practice {practice_id} not found")
        return found

    def load_practice(self, spec: dict[str, Any], *, keep_calendar: bool = False) -> Practice:
        """Create or replace a practice from an admin seed (see ``admin.seed_practice``). With
        ``keep_calendar`` an existing practice keeps its appointments, blocks, patients and
        notes: only its set-up (locations, practitioners, types, purposes, templates) changes,
        the way an office edits its templates without losing its schedule."""
        try:
            practice = Practice(
                id=str(spec["id"]),
                name=str(spec.get("name") or f"Practice {spec['id']}"),
                tz=ZoneInfo(str(spec.get("timezone") or "America/New_York")),
                booking_preference=str(spec.get("booking_preference") or "book"),
                default_slot_minutes=int(spec.get("default_slot_minutes") or 15),
            )
            for loc in spec.get("locations", []):
                practice.locations[str(loc["id"])] = {**loc, "id": str(loc["id"])}
            for prac in spec.get("practitioners", []):
                practice.practitioners[str(prac["id"])] = {**prac, "id": str(prac["id"])}
            for at in spec.get("appointment_types", []):
                practice.appointment_types[str(at["id"])] = {
                    **at,
                    "id": str(at["id"]),
                    "duration": int(at.get("duration") or practice.default_slot_minutes),
                }
            for purpose in spec.get("appointment_purposes", []):
                practice.purposes[str(purpose["id"])] = {**purpose, "id": str(purpose["id"])}
            for tpl in spec.get("templates", []):
                practice.templates.append(self._template(tpl))
            for patient in spec.get("patients", []):
                self.add_patient(practice, patient, prospect=False)
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(400, f"bad practice seed: {exc!r}") from exc
        if practice.booking_preference not in ("book", "hold"):
            raise ApiError(400, "booking_preference must be book or hold")
        old = self.practices.get(practice.id)
        if keep_calendar and old is not None:
            practice.blocks, practice.appointments = old.blocks, old.appointments
            practice.compositions, practice.documents = old.compositions, old.documents
            practice.patients = {**old.patients, **practice.patients}
        self.practices[practice.id] = practice
        return practice

    def _template(self, tpl: dict[str, Any]) -> Template:
        return Template(
            id=str(tpl.get("id") or self.new_id()),
            practitioner=str(tpl["practitioner"]),
            location=str(tpl["location"]),
            weekdays=[int(d) for d in tpl.get("weekdays", [0, 1, 2, 3, 4])],
            start=time.fromisoformat(tpl.get("start", "08:00")),
            end=time.fromisoformat(tpl.get("end", "17:00")),
            interval=int(tpl.get("interval", 15)),
            appointment_types=[str(t) for t in tpl.get("appointment_types", [])],
        )

    # -- users and tokens -----------------------------------------------------------------------

    def issue(self, user: User) -> dict[str, Any]:
        now = utc_now()
        access = Token(secrets.token_urlsafe(24), user.username, now, "access")
        access.expires_at = now + timedelta(seconds=self.token_ttl)
        refresh = Token(secrets.token_urlsafe(24), user.username, now, "refresh")
        refresh.expires_at = now + timedelta(seconds=self.refresh_ttl)
        self.tokens[access.value] = access
        self.tokens[refresh.value] = refresh
        # Azure AD's v1 token endpoint gives the numbers as strings.
        return {
            "token_type": "Bearer",
            "scope": "user_impersonation",
            "expires_in": str(int(self.token_ttl)),
            "expires_on": str(int(access.expires_at.timestamp())),
            "resource": "select-api",
            "access_token": access.value,
            "refresh_token": refresh.value,
        }

    def user_for_access_token(self, value: str | None) -> tuple[User | None, str]:
        """(user, "ok") or (None, why: "missing", "invalid", "expired")."""
        if not value:
            return None, "missing"
        token = self.tokens.get(value)
        if token is None or token.kind != "access":
            return None, "invalid"
        user = self.users.get(token.username)
        if user is None:
            return None, "invalid"
        if token.expires_at <= utc_now():
            return None, "expired"
        return user, "ok"

    def revoke(self, username: str, *, kinds: tuple[str, ...] = ("access", "refresh")) -> int:
        doomed = [k for k, t in self.tokens.items() if t.username == username and t.kind in kinds]
        for key in doomed:
            del self.tokens[key]
        return len(doomed)

    def expire_access(self, username: str) -> int:
        """Credential expiry as a fault: every access token of the user stops working now."""
        now = utc_now() - timedelta(seconds=1)
        count = 0
        for token in self.tokens.values():
            if token.username == username and token.kind == "access":
                token.expires_at = now
                count += 1
        return count

    # -- patients -------------------------------------------------------------------------------

    def add_patient(self, practice: Practice, spec: dict[str, Any], *, prospect: bool) -> Patient:
        given = spec.get("given") or []
        if isinstance(given, str):
            given = [given]
        birth = spec.get("birth_date")
        phones = spec.get("phones") or []
        if isinstance(spec.get("phone"), str):
            phones = [*phones, {"use": "home", "value": spec["phone"]}]
        patient = Patient(
            id=str(spec.get("id") or str(uuid.uuid4()).upper()),
            chart=str(spec.get("chart") or self.new_id()),
            family=str(spec["family"]),
            given=[str(g) for g in given],
            birth_date=date.fromisoformat(birth) if isinstance(birth, str) else birth,
            phones=[{"use": str(p.get("use") or "home"), "value": str(p["value"])} for p in phones],
            email=spec.get("email"),
            postal_code=spec.get("postal_code"),
            prospect=prospect,
            last_updated=utc_now(),
        )
        practice.patients[patient.id] = patient
        return patient

    def search_patients(self, practice: Practice, query: dict[str, str]) -> list[Patient]:
        rows = list(practice.patients.values())

        def starts(value: str, wanted: str) -> bool:
            return value.lower().startswith(wanted.strip().lower())

        if query.get("family"):
            rows = [p for p in rows if starts(p.family, query["family"])]
        if query.get("given"):
            rows = [p for p in rows if any(starts(g, query["given"]) for g in p.given)]
        birth = query.get("birthdate") or query.get("birthDate")
        if birth:
            text = birth[2:] if birth[:2] in ("eq",) else birth
            try:
                wanted = date.fromisoformat(text[:10])
            except ValueError as exc:
                raise ApiError(400, "birthdate must be YYYY-MM-DD") from exc
            rows = [p for p in rows if p.birth_date == wanted]
        if query.get("phone"):
            want = digits(query["phone"])[-10:]
            rows = [p for p in rows if any(digits(ph["value"])[-10:] == want for ph in p.phones)]
        if query.get("email"):
            rows = [p for p in rows if (p.email or "").lower() == query["email"].strip().lower()]
        if query.get("identifier"):
            ident = query["identifier"]
            rows = [p for p in rows if ident in (p.id, p.chart)]
        return rows

    # -- availability ---------------------------------------------------------------------------

    def busy(
        self, practice: Practice, practitioner: str, location: str
    ) -> list[tuple[datetime, datetime]]:
        """Intervals in which the practitioner cannot be booked at the location."""
        out = [
            (a.start, a.end)
            for a in practice.appointments.values()
            if a.practitioner == practitioner and a.status not in FREE_STATUSES
        ]
        out += [
            (b.start, b.end)
            for b in practice.blocks.values()
            if b.location == location and b.practitioner in (None, practitioner)
        ]
        return out

    def free_slots(
        self,
        practice: Practice,
        *,
        locations: list[str],
        practitioners: list[str] | None,
        start: datetime,
        end: datetime,
        minutes: int,
        appointment_type: str | None,
    ) -> list[tuple[str, str, datetime, datetime]]:
        """Free (practitioner, location, start, end) in [start, end), now or later, sorted."""
        now = utc_now()
        linked = practice.linked_practitioners()
        length = timedelta(minutes=minutes)
        found: set[tuple[str, str, datetime, datetime]] = set()
        busy_cache: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
        first_day = start.astimezone(practice.tz).date() - timedelta(days=1)
        last_day = end.astimezone(practice.tz).date() + timedelta(days=1)
        for tpl in practice.templates:
            if tpl.location not in locations or tpl.practitioner not in linked:
                continue
            if practitioners is not None and tpl.practitioner not in practitioners:
                continue
            if (
                appointment_type
                and tpl.appointment_types
                and (appointment_type not in tpl.appointment_types)
            ):
                continue
            key = (tpl.practitioner, tpl.location)
            if key not in busy_cache:
                busy_cache[key] = self.busy(practice, *key)
            busy = busy_cache[key]
            day = first_day
            while day <= last_day:
                if day.weekday() in tpl.weekdays:
                    t = datetime.combine(day, tpl.start, tzinfo=practice.tz)
                    close = datetime.combine(day, tpl.end, tzinfo=practice.tz)
                    while t + length <= close:
                        t_end = t + length
                        if (
                            t >= start
                            and t < end
                            and t >= now
                            and not any(b0 < t_end and t < b1 for b0, b1 in busy)
                        ):
                            found.add((tpl.practitioner, tpl.location, t, t_end))
                        t += timedelta(minutes=tpl.interval)
                day += timedelta(days=1)
        return sorted(found, key=lambda s: (s[2], s[0], s[1]))

    def conflict(
        self, practice: Practice, practitioner: str, location: str, start: datetime, end: datetime
    ) -> str | None:
        """Why the time cannot be booked through the API, or None when it can."""
        if end <= start:
            return "The appointment end must be after its start"
        if start < utc_now():
            return "The requested time is in the past"
        inside = False
        for tpl in practice.templates:
            if tpl.practitioner != practitioner or tpl.location != location:
                continue
            local_start = start.astimezone(practice.tz)
            local_end = end.astimezone(practice.tz)
            if (
                local_start.weekday() in tpl.weekdays
                and local_start.date() == local_end.date()
                and tpl.start <= local_start.time()
                and local_end.time() <= tpl.end
            ):
                inside = True
                break
        if not inside:
            return "The requested time is outside the practitioner's template"
        for b0, b1 in self.busy(practice, practitioner, location):
            if b0 < end and start < b1:
                return "The requested time slot is no longer available"
        return None
