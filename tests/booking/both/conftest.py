"""One practice, two EHRs: the same behavioural tests run against the NexHealth adapter and the
Nextech adapter (``ehr_kind``), each against its sandbox as a real HTTP process.

The practice is written once, as a configuration document (``practice_doc``), and imported
through the one import path with ``ehr.kind`` set to the kind under test: for NexHealth it is
provisioned into the NexHealth sandbox (providers, operatories, types, manual working hours) and
registered for webhooks to the live portal; for Nextech it is written into the Nextech sandbox as
the office would configure Nextech (schedule templates equal to the file's working hours, so
Nextech's own /Slot agrees with the hours availability is computed from), connected with a
service user of its own, and synced. The voice agent's side is the real HTTP API (``Agent``), the
EHR's side the sandbox's admin routes (``NexHealthSide`` / ``NextechSide``: what the practice's
staff do in their EHR, and what the EHR holds). Faults are switched on in the sandbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.utils import timezone

from accounts.models import Location, Practice
from booking import services as bookings
from core.tenancy import tenant_context
from ehr.models import EHRConnection
from ehr_sandbox.nextech.testing import NextechServer
from ehr_sandbox.testing import SandboxServer, wait_until
from onboarding.nextech_provisioning import (
    connect_sandbox_locations,
    ensure_sandbox_user,
)
from onboarding.services import import_config, parse_config
from scheduling.models import AppointmentType, Booking, Operatory, Provider
from tests.ehr import conftest as integration
from tests.receptionist_api.factories import CALLER, api_client, token_for, weekdays_ahead
from tests.workers import celery_worker

# The sandbox processes of the integration tests (one per test process), reset per test.
ehr_server = integration.ehr_server
nextech_server = integration.nextech_server
_fresh_process_state = integration._fresh_process_state

LA = ZoneInfo("America/Los_Angeles")
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
LEAD_TIME_HOURS = 24
HORIZON_DAYS = 21
TERMINAL = {"confirmed", "failed"}
SETTLED = {*TERMINAL, "cancelled"}


@pytest.fixture(autouse=True)
def _cheap_secret_hashing(fast_secret_hashing: None) -> None:
    pass


@pytest.fixture(params=["nexhealth", "nextech"])
def ehr_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- the practice, as a configuration file -------------------------------------------------------


def practice_doc(slug: str, ehr_kind: str, *, begin: str = "09:00", end: str = "12:00") -> dict:
    """Dr. Patel (cleaning and exam) in Operatory 1, Dr. Kim (exam only) in Operatory 2, both
    weekdays `begin`-`end`. Cleaning: 30 minutes, Dr. Patel only, a day's lead time, three weeks'
    horizon. Both doctors' hours take both types: eligibility is the type's, not the hours'."""
    types = ["cleaning", "exam"]
    return {
        "practice": {"slug": slug, "name": f"Practice {slug}", "timezone": "America/Los_Angeles"},
        "baa": {
            "status": "executed",
            "signed_by": "Dr. Ana Patel, Owner",
            "executed_on": "2026-01-01",
            "effective_on": "2026-01-01",
            "expires_on": None,
        },
        "ehr": {
            "kind": "sandbox" if ehr_kind == "nexhealth" else "nextech",
            "working_hours": "manual",
        },
        "locations": [{"key": "main", "name": "Main Office"}],
        "operatories": [
            {"key": "op1", "name": "Operatory 1", "location": "main", "capabilities": []},
            {"key": "op2", "name": "Operatory 2", "location": "main", "capabilities": []},
        ],
        "providers": [
            {"key": "patel", "name": "Dr. Ana Patel", "accepts_new_patients": True},
            {"key": "kim", "name": "Dr. Jun Kim", "accepts_new_patients": True},
        ],
        "appointment_types": [
            {
                "key": "cleaning",
                "name": "Cleaning",
                "minutes": 30,
                "new_patients": True,
                "existing_patients": True,
                "providers": ["patel"],
                "requires_capabilities": [],
                "lead_time_hours": LEAD_TIME_HOURS,
                "horizon_days": HORIZON_DAYS,
                "phrases": ["cleaning"],
                "descriptors": ["D1110"],
            },
            {
                "key": "exam",
                "name": "Exam",
                "minutes": 60,
                "new_patients": True,
                "existing_patients": True,
                "providers": ["patel", "kim"],
                "requires_capabilities": [],
                "lead_time_hours": 0,
                "horizon_days": 60,
                "phrases": ["exam"],
                "descriptors": ["D0150"],
            },
        ],
        "working_hours": [
            {
                "provider": "patel",
                "operatory": "op1",
                "days": WEEKDAYS,
                "begin": begin,
                "end": end,
                "appointment_types": types,
            },
            {
                "provider": "kim",
                "operatory": "op2",
                "days": WEEKDAYS,
                "begin": begin,
                "end": end,
                "appointment_types": types,
            },
        ],
        "blocks": [],
        "appointments": [],
        "provider_rules": [],
        "escalation_protocols": [],
        "on_call": [],
        "lay_terms": [],
    }


# --- the EHR's side: what it holds, what its staff do, its fault controls ------------------------


@dataclass(frozen=True)
class EHRAppt:
    """An appointment as the EHR holds it, in both adapters' terms."""

    id: int
    patient_id: int | None
    provider_id: int | None
    start: datetime
    written: bool  # the EHR says it is on the schedule (NexHealth: inserted; Nextech: booked)
    cancelled: bool


@dataclass(frozen=True)
class EHRPerson:
    first_name: str
    last_name: str
    date_of_birth: str


class EHRSide(Protocol):
    kind: str
    write_endpoint: str  # the appointment POST, as the sandbox names it in `only_endpoints`
    note_endpoints: list[str]

    def appointments(self) -> list[EHRAppt]: ...
    def patients(self) -> list[EHRPerson]: ...
    def notes(self, patient_id: int) -> list[dict[str, Any]]: ...
    def staff_add_patient(self, **person: str) -> None: ...
    def staff_book(self, provider_ehr_id: int, start: datetime, minutes: int) -> int: ...
    def staff_cancel(self, appointment_id: int) -> None: ...
    def staff_work_cancel_requests(self) -> None: ...
    def see_changes(self) -> None: ...
    def faults(self, **changes: Any) -> None: ...
    def clear_faults(self) -> None: ...
    def throttle(self, limit: int, window_seconds: float) -> None: ...
    def unthrottle(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class NexHealthSide:
    kind = "nexhealth"
    write_endpoint = "POST /appointments"
    note_endpoints = ["POST /patients/{id}/documents", "GET /patients/{id}/documents"]

    def __init__(self, server: SandboxServer, conn: EHRConnection) -> None:
        self.server = server
        self.conn = conn
        self.api = server.client(integration.API_KEY)

    def _get(self, path: str, **params: Any) -> Any:
        params.setdefault("subdomain", self.conn.subdomain)
        response = self.api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def appointments(self) -> list[EHRAppt]:
        return [
            EHRAppt(
                id=int(a["id"]),
                patient_id=a.get("patient_id"),
                provider_id=a.get("provider_id"),
                start=datetime.fromisoformat(a["start_time"]),
                written=a.get("insertion_status") == "complete",
                cancelled=bool(a["cancelled"]) or a.get("insertion_status") == "failed",
            )
            for a in self.server.admin("GET", "/_admin/state").json()["appointments"]
            if not a.get("unavailable") and a.get("location_id") == self.conn.ehr_location_id
        ]

    def patients(self) -> list[EHRPerson]:
        return [
            EHRPerson(p["first_name"], p["last_name"], p["bio"].get("date_of_birth"))
            for p in self.server.admin("GET", "/_admin/state").json()["patients"]
        ]

    def notes(self, patient_id: int) -> list[dict[str, Any]]:
        return list(self._get(f"/patients/{patient_id}/documents"))

    def staff_add_patient(self, **person: str) -> None:
        patient = {
            "first_name": person["first_name"],
            "last_name": person["last_name"],
            "email": person.get("email"),
            "bio": {"date_of_birth": person["date_of_birth"], "phone_number": person["phone"]},
        }
        body = {"location_id": self.conn.ehr_location_id, "patient": patient}
        self.server.admin("POST", "/_admin/ehr/patients", body)

    def staff_book(self, provider_ehr_id: int, start: datetime, minutes: int) -> int:
        someone = self.server.admin(
            "POST",
            "/_admin/ehr/patients",
            {
                "location_id": self.conn.ehr_location_id,
                "patient": {"first_name": "Bo", "last_name": "Diaz"},
            },
        ).json()
        appt = {
            "provider_id": provider_ehr_id,
            "patient_id": someone["id"],
            "start_time": start.isoformat(),
            "minutes": minutes,
        }
        body = {"location_id": self.conn.ehr_location_id, "appt": appt}
        return int(self.server.admin("POST", "/_admin/ehr/appointments", body).json()["id"])

    def staff_cancel(self, appointment_id: int) -> None:
        self.server.admin(
            "PATCH", f"/_admin/ehr/appointments/{appointment_id}", {"appt": {"cancelled": True}}
        )

    def staff_work_cancel_requests(self) -> None:
        """NexHealth cancels at once: there is no queue of requests."""

    def see_changes(self) -> None:
        """NexHealth tells us by webhook: nothing to drive."""

    def faults(self, **changes: Any) -> None:
        self.server.admin("PATCH", "/_admin/faults", changes)

    def clear_faults(self) -> None:
        self.server.admin("DELETE", "/_admin/faults")

    def throttle(self, limit: int, window_seconds: float) -> None:
        rule = {"limit": limit, "window_seconds": window_seconds}
        self.server.admin(
            "PUT",
            "/_admin/rate_limits",
            {"api_key": integration.API_KEY, "limits": {"patients_appointments": rule}},
        )

    def unthrottle(self) -> None:
        self.server.admin("DELETE", "/_admin/rate_limits")

    def stats(self) -> dict[str, Any]:
        stats = self.server.admin("GET", "/_admin/stats").json()
        return {"faults": stats.get("faults_injected", {}), "429": stats["rate_limited_total"]}

    def close(self) -> None:
        self.api.close()


class NextechSide:
    kind = "nextech"
    write_endpoint = "POST /Appointment"
    note_endpoints = ["POST /Patient/{id}/Composition", "GET /Patient/{id}/Composition"]

    def __init__(self, server: NextechServer, conn: EHRConnection) -> None:
        self.server = server
        self.conn = conn
        self.pid = conn.subdomain

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.server.admin(method, f"/_admin/practices/{self.pid}{path}", body).json()

    def appointments(self) -> list[EHRAppt]:
        out = []
        for a in self._admin("GET", "/appointments"):
            refs = [p.get("actor", {}).get("reference", "") for p in a.get("participant", [])]
            actor = dict(ref.split("/", 1) for ref in refs if "/" in ref)
            out.append(
                EHRAppt(
                    id=int(a["id"]),
                    patient_id=self._chart(actor.get("Patient")),
                    provider_id=int(actor["Practitioner"]) if "Practitioner" in actor else None,
                    start=datetime.fromisoformat(a["start"]),
                    written=a["status"] == "booked",
                    cancelled=a["status"] == "cancelled",
                )
            )
        return out

    def _chart(self, guid: str | None) -> int | None:
        for p in self._admin("GET", "/patients"):
            if p["id"] == guid:
                return next(int(i["value"]) for i in p["identifier"] if i["use"] == "usual")
        return None

    def patients(self) -> list[EHRPerson]:
        return [
            EHRPerson(p["name"][0]["given"][0], p["name"][0]["family"], p.get("birthDate"))
            for p in self._admin("GET", "/patients")
        ]

    def notes(self, patient_id: int) -> list[dict[str, Any]]:
        guid = next(
            p["id"]
            for p in self._admin("GET", "/patients")
            if any(i["use"] == "usual" and int(i["value"]) == patient_id for i in p["identifier"])
        )
        notes = self._admin("GET", "/notes")
        documents = [d for d in notes["documents"] if guid in str(d.get("subject"))]
        return list(notes["compositions"].get(guid, [])) + documents

    def staff_add_patient(self, **person: str) -> None:
        patient = {
            "given": person["first_name"],
            "family": person["last_name"],
            "birth_date": person["date_of_birth"],
            "phone": person["phone"],
            "email": person.get("email"),
        }
        self._admin("POST", "/patients", patient)

    def staff_book(self, provider_ehr_id: int, start: datetime, minutes: int) -> int:
        body = {
            "practitioner": str(provider_ehr_id),
            "location": str(self.conn.ehr_location_id),
            "start": start.isoformat(),
            "minutes": minutes,
            "patient": {"given": "Bo", "family": "Diaz", "birth_date": "1970-01-01"},
        }
        return int(self._admin("POST", "/appointments", body)["id"])

    def staff_cancel(self, appointment_id: int) -> None:
        self._admin("POST", f"/appointments/{appointment_id}/cancel")

    def staff_work_cancel_requests(self) -> None:
        self._admin("POST", "/cancel_requests/process")

    def see_changes(self) -> None:
        """One change poll of the connection (beat's job, every NEXTECH_POLL_SECONDS)."""
        from ehr.tasks import poll_nextech_connection

        poll_nextech_connection.apply(args=(self.conn.pk, self.conn.practice_id)).get()

    def faults(self, **changes: Any) -> None:
        self.server.admin("POST", "/_admin/faults", changes)

    def clear_faults(self) -> None:
        self.server.admin("DELETE", "/_admin/faults")

    def throttle(self, limit: int, window_seconds: float) -> None:
        body = {"limit": limit, "window_seconds": window_seconds}
        self.server.admin("POST", "/_admin/rate_limits", body)

    def unthrottle(self) -> None:
        self.server.admin("POST", "/_admin/rate_limits", {"limit": 20, "window_seconds": 1.0})

    def stats(self) -> dict[str, Any]:
        stats = self.server.stats()
        return {
            "faults": stats.get("faults_injected", {}),
            "429": stats.get("responses", {}).get("429", 0),
        }

    def close(self) -> None:
        pass


# --- the voice agent's side: the HTTP API --------------------------------------------------------


@dataclass
class Agent:
    """The voice agent, over HTTP, with its bearer token."""

    url: str
    token: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kwargs
        )

    def availability(self, type_id: int, start: date, days: int, **params: Any) -> list[dict]:
        query = {"appointment_type_id": type_id, "start_date": start.isoformat(), "days": days}
        response = self.call("GET", "/availability", params={**query, **params})
        assert response.status_code == 200, response.text
        return list(response.json()["slots"])

    def hold(self, slot: dict[str, Any], type_id: int) -> httpx.Response:
        body = {
            "appointment_type_id": type_id,
            "provider_id": slot["provider_id"],
            "operatory_id": slot["operatory_id"],
            "start": slot["start"],
        }
        return self.call("POST", "/holds", json=body)

    def book(self, hold_id: int, key: str, call_id: str = "", **patient: Any) -> httpx.Response:
        """Book the hold for the caller (`CALLER`, with an email: Nextech needs one to create a
        patient), or for `patient`'s details over the caller's."""
        body = {
            "hold_id": hold_id,
            "patient": {**CALLER, "email": "ana.lopez@example.com", **patient},
            "reason": "cleaning, a bit of bleeding when brushing",
            "call_id": call_id or f"call-{key}",
        }
        return self.call("POST", "/bookings", json=body, headers={"Idempotency-Key": key})

    def booking(self, booking_id: int) -> dict[str, Any]:
        response = self.call("GET", f"/bookings/{booking_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, booking_id: int, *wanted: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.booking(booking_id)
            if body["status"] in wanted:
                return body
            assert body["status"] not in SETTLED, (body["status"], body["failure_reason"])
            return None

        return wait_until(
            reached,
            timeout=timeout,
            interval=0.1,
            message=f"booking {booking_id} to be {'/'.join(wanted)}",
        )


# --- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    """A practice on the EHR under test, the voice agent's API, and the EHR's side."""

    kind: str
    practice: Practice
    location: Location
    conn: EHRConnection
    agent: Agent
    ehr: EHRSide
    queue: str
    cleaning: AppointmentType
    exam: AppointmentType
    patel: Provider
    kim: Provider
    op1: Operatory
    day: date  # a weekday a week ahead: inside lead time and horizon

    def at(self, hh: int, mm: int = 0, day: date | None = None) -> datetime:
        return datetime.combine(day or self.day, clock(hh, mm), LA)

    def slot(self, hh: int, mm: int = 0, provider: Provider | None = None) -> dict[str, Any]:
        """Dr. Patel's (or `provider`'s) cleaning at hh:mm on the day, as the API offers it."""
        provider = provider or self.patel
        wanted = self.at(hh, mm)
        for slot in self.agent.availability(self.cleaning.pk, self.day, 1):
            if datetime.fromisoformat(slot["start"]) == wanted and (
                slot["provider_id"] == provider.pk
            ):
                return slot
        raise AssertionError(f"no slot at {wanted} with {provider.name}")

    def held(self, hh: int, mm: int = 0) -> int:
        response = self.agent.hold(self.slot(hh, mm), self.cleaning.pk)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def book(self, hh: int, mm: int, key: str, **patient: Any) -> int:
        response = self.agent.book(self.held(hh, mm), key, **patient)
        assert response.status_code == 202, response.text
        return int(response.json()["id"])

    def offered(self, start: datetime) -> bool:
        slots = self.agent.availability(self.cleaning.pk, start.astimezone(LA).date(), 1)
        return any(datetime.fromisoformat(s["start"]) == start for s in slots)

    def row(self, booking_id: int) -> Booking:
        with tenant_context(self.practice):
            return Booking.objects.select_related("hold", "patient").get(pk=booking_id)

    def live_appointments(self) -> list[EHRAppt]:
        return [a for a in self.ehr.appointments() if not a.cancelled]

    def worker(self, concurrency: int = 1, **env: str) -> Any:
        """A real Celery worker on the world's queue (a context manager)."""
        extra = {"BOOKINGS_QUEUE": self.queue, "BOOKING_POLL_SECONDS": "1", **env}
        return celery_worker(queues=self.queue, concurrency=concurrency, extra_env=extra)


def _nexhealth_connected(server: SandboxServer, settings: Any, doc: dict) -> Practice:
    settings.EHR_SANDBOX_URL = server.base_url
    settings.EHR_SANDBOX_API_KEY = integration.API_KEY
    settings.EHR_SANDBOX_ADMIN_TOKEN = server.admin_token
    result = import_config(doc)
    return Practice.objects.get(pk=result.practice_id)


def _nextech_connected(server: NextechServer, settings: Any, doc: dict) -> Practice:
    settings.NEXTECH_SANDBOX_URL = server.base_url
    settings.NEXTECH_SANDBOX_ADMIN_TOKEN = server.admin_token
    settings.NEXTECH_SANDBOX_CLIENT_ID = server.client_id
    settings.NEXTECH_SANDBOX_CLIENT_SECRET = server.client_secret
    slug = doc["practice"]["slug"]
    ensure_sandbox_user(slug)
    result = import_config(doc)
    practice = Practice.objects.get(pk=result.practice_id)
    assert connect_sandbox_locations(practice, parse_config(doc)) == []
    return practice


def build(
    ehr_kind: str,
    server: SandboxServer,
    live_server: Any,
    settings: Any,
    **hours: str,
) -> World:
    """The practice of `practice_doc`, imported and connected to the kind's sandbox."""
    slug = f"both-{uuid.uuid4().hex[:8]}"
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.INTEGRATIONS_QUEUES = {"bookings": queue, "sync": queue}
    settings.PORTAL_PUBLIC_URL = live_server.url
    doc = practice_doc(slug, ehr_kind, **hours)
    if ehr_kind == "nexhealth":
        practice = _nexhealth_connected(server, settings, doc)
    else:
        assert isinstance(server, NextechServer)
        practice = _nextech_connected(server, settings, doc)
    with tenant_context(practice):
        conn = EHRConnection.objects.select_related("location__practice").get()
        types = {t.key: t for t in AppointmentType.objects.all()}
        providers = {p.key: p for p in Provider.objects.all()}
        op1 = Operatory.objects.get(key="op1")
    side: EHRSide = (
        NexHealthSide(server, conn) if ehr_kind == "nexhealth" else NextechSide(server, conn)  # type: ignore[arg-type]
    )
    client, _ = api_client(practice)
    raw, _ = token_for(client)
    day = weekdays_ahead(7, 1)[0]
    assert day <= timezone.now().astimezone(LA).date() + timedelta(days=HORIZON_DAYS - 3)
    return World(
        kind=ehr_kind,
        practice=practice,
        location=conn.location,
        conn=conn,
        agent=Agent(live_server.url, raw),
        ehr=side,
        queue=queue,
        cleaning=types["cleaning"],
        exam=types["exam"],
        patel=providers["patel"],
        kim=providers["kim"],
        op1=op1,
        day=day,
    )


@pytest.fixture
def sandbox(ehr_kind: str, request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """The kind's sandbox process, empty (only the kind under test is started)."""
    server = request.getfixturevalue("ehr_server" if ehr_kind == "nexhealth" else "nextech_server")
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def world(
    ehr_kind: str, sandbox: SandboxServer, transactional_db: None, live_server: Any, settings: Any
) -> Iterator[World]:
    built = build(ehr_kind, sandbox, live_server, settings)
    try:
        yield built
    finally:
        close = getattr(built.ehr, "close", None)
        if close is not None:
            close()
        if ehr_kind == "nextech":
            from ehr.nextech.port import reset_ports

            reset_ports()


def wait_settled(w: World, ids: list[int], timeout: float) -> dict[int, Booking]:
    """Every booking confirmed or failed (the outbox relay run as beat would meanwhile)."""

    def settled() -> dict[int, Booking] | None:
        bookings.relay_outbox()
        with tenant_context(w.practice):
            rows = {b.pk: b for b in Booking.objects.filter(pk__in=ids)}
        done = len(rows) == len(ids) and all(b.status in TERMINAL for b in rows.values())
        return rows if done else None

    return wait_until(settled, timeout=timeout, interval=0.25, message="every booking settles")
