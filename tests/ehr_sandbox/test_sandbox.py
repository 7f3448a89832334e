"""The EHR sandbox checked against the NexHealth guides, over real HTTP to a real process.

No Django here: the sandbox is its own program. Waits are on conditions with deadlines (health,
webhook arrival, insertion status), never fixed sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from ehr_sandbox.testing import (
    ReceivedWebhook,
    SandboxServer,
    WebhookReceiver,
    wait_until,
)

API_KEY = "test-api-key"
SUB = "happy-smiles"
LA = ZoneInfo("America/Los_Angeles")
EMPTY = "Next available slot not found. Please confirm that the provider has active availabilities."


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    extra = ["--insertion-delay-ms", "30", "--time-scale", "0.001"]
    with SandboxServer(api_keys=[API_KEY, "other-key"], extra_args=extra) as running:
        yield running


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxServer:
    server.reset()
    return server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


class Api:
    """Plain HTTP as the portal's client will speak it: bearer token, subdomain, envelope."""

    def __init__(self, server: SandboxServer, api_key: str = API_KEY) -> None:
        self.server = server
        self.http = server.client(api_key)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        params.setdefault("subdomain", SUB)
        params = {k: v for k, v in params.items() if v is not None}
        return self.http.request(method, path, params=params, json=body)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **params: Any) -> Any:
        response = self.call(method, path, body, **params)
        assert response.status_code == status, response.text
        payload = response.json()
        assert set(payload) == {"code", "description", "error", "data", "count"}
        assert payload["code"] is True and payload["error"] is None
        return payload["data"]


@dataclass
class Practice:
    location: int
    patel: int
    op1: int
    op2: int
    cleaning: int
    exam: int
    patient: int


def build_practice(api: Api, *, bind_types: bool = True) -> Practice:
    """Happy Smiles Dental, configuration 2: Dr. Patel in Operatory 1 (9-12 Cleaning, 13-17
    Exam) on Mondays, Wednesdays and Thursdays (2026-05-07 is a Thursday)."""
    loc = api.ok(
        "POST",
        "/locations",
        {"location": {"name": "Main Office", "tz": "America/Los_Angeles"}},
        status=201,
    )["id"]
    patel = api.ok(
        "POST",
        "/providers",
        {"provider": {"first_name": "Raj", "last_name": "Patel"}},
        status=201,
        location_id=loc,
    )["id"]
    op1 = api.ok(
        "POST", "/operatories", {"operatory": {"name": "Operatory 1"}}, 201, location_id=loc
    )
    op2 = api.ok(
        "POST", "/operatories", {"operatory": {"name": "Operatory 2"}}, 201, location_id=loc
    )
    cleaning = api.ok(
        "POST",
        "/appointment_types",
        {
            "appointment_type": {"name": "Cleaning", "minutes": 30, "parent_type": "Location"},
            "location_id": loc,
        },
        status=201,
    )["id"]
    exam = api.ok(
        "POST",
        "/appointment_types",
        {"appointment_type": {"name": "Exam", "minutes": 15}, "location_id": loc},
        status=201,
    )["id"]
    days = ["Monday", "Wednesday", "Thursday"]
    for begin, end, type_id in (("09:00", "12:00", cleaning), ("13:00", "17:00", exam)):
        record = api.ok(
            "POST",
            "/working_hours",
            {
                "working_hour": {
                    "active": True,
                    "provider_id": patel,
                    "operatory_id": op1["id"],
                    "begin_time": begin,
                    "end_time": end,
                    "days": days,
                    "appointment_type_ids": [type_id] if bind_types else [],
                }
            },
            status=201,
            location_id=loc,
        )
        assert record[0]["source"] == "manual" and record[0]["label"] is None
    patient = api.ok(
        "POST",
        "/patients",
        {
            "provider": {"provider_id": patel},
            "patient": {
                "first_name": "Ana",
                "last_name": "Lopez",
                "email": "ana@example.test",
                "bio": {"date_of_birth": "1980-02-03", "phone_number": "(555) 010-2030"},
            },
        },
        status=201,
        location_id=loc,
    )["user"]["id"]
    return Practice(loc, patel, op1["id"], op2["id"], cleaning, exam, patient)


@pytest.fixture
def api(sandbox: SandboxServer) -> Api:
    return Api(sandbox)


@pytest.fixture
def practice(api: Api) -> Practice:
    """This module's practice is the sandbox's (`build_practice`), not a portal row."""
    return build_practice(api)


def next_thursday() -> date:
    """A Thursday at least a week ahead (the sandbox refuses appointments in the past)."""
    today = datetime.now(LA).date()
    return today + timedelta(days=(3 - today.weekday()) % 7 + 7)


def at(day: date, hhmm: str) -> str:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=LA).isoformat()


def subscribe(api: Api, url: str, *events: str) -> tuple[int, str]:
    endpoint = api.ok("POST", "/webhook_endpoints", {"target_url": url}, status=201, subdomain=None)
    assert endpoint["active"] is True and endpoint["secret_key"]
    resources = {
        "appointment_insertion": "Appointment",
        "appointment_created": "Appointment",
        "appointment_updated": "Appointment",
        "patient_created": "Patient",
        "document_insertion": "Document",
        "working_hours_updated": "WorkingHour",
    }
    for event in events:
        api.ok(
            "POST",
            f"/webhook_endpoints/{endpoint['id']}/webhook_subscriptions",
            {"resource_type": resources[event], "event": event},
            status=201,
        )
    return endpoint["id"], endpoint["secret_key"]


def assert_signed(message: ReceivedWebhook, secret: str) -> dict[str, Any]:
    """The documented scheme, recomputed here independently of the sandbox's code."""
    timestamp = message.headers["x-timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + message.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(message.headers["x-signature"], expected)
    assert abs(time.time() - int(timestamp)) < 60
    body: dict[str, Any] = message.json
    assert body["delivery_id"] == message.headers["x-delivery-id"]
    return body


def slots(api: Api, practice: Practice, day: str, **params: Any) -> dict[str, Any]:
    response = api.call(
        "GET",
        "/available_slots",
        start_date=day,
        days=params.pop("days", 1),
        **{"lids[]": practice.location, "pids[]": practice.patel},
        **params,
    )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def book(api: Api, practice: Practice, start: str, operatory: int | None = None) -> dict[str, Any]:
    appt = {
        "patient_id": practice.patient,
        "provider_id": practice.patel,
        "operatory_id": operatory or practice.op1,
        "start_time": start,
        "appointment_type_id": practice.cleaning,
    }
    data = api.ok(
        "POST", "/appointments", {"appt": appt}, status=201, location_id=practice.location
    )
    return dict(data["appt"])


def staff_appointment(
    sandbox: SandboxServer, practice: Any, appt: dict[str, Any]
) -> httpx.Response:
    """An appointment (or block) made in the EHR itself, at the practice's location."""
    return sandbox.admin(
        "POST", "/_admin/ehr/appointments", {"location_id": practice.location, "appt": appt}
    )


def insertion_status(api: Api, appt_id: int) -> str | None:
    status = api.ok("GET", f"/appointments/{appt_id}")["insertion_status"]
    return None if status == "pending" else str(status)


# ---------------------------------------------------------------------------------------------
# Slot derivation (scheduling guide, Level 2D and its gotchas)


def test_level_2d_example_returns_11_00_and_11_30(
    sandbox: SandboxServer, api: Api, practice: Practice
) -> None:
    # Dr. Patel: an 8-9 appointment and a 9-11 calendar block, both made in the EHR.
    staff_appointment(
        sandbox,
        practice,
        {
            "patient_id": practice.patient,
            "provider_id": practice.patel,
            "operatory_id": practice.op1,
            "start_time": "2026-05-07T08:00:00",
            "end_time": "2026-05-07T09:00:00",
        },
    )
    staff_appointment(
        sandbox,
        practice,
        {
            "provider_id": practice.patel,
            "operatory_id": practice.op1,
            "start_time": "2026-05-07T09:00:00-07:00",
            "minutes": 120,
            "unavailable": True,
        },
    )
    payload = slots(
        api,
        practice,
        "2026-05-07",
        appointment_type_id=practice.cleaning,
        operatory_id=practice.op1,
    )
    assert payload["code"] is True and payload["description"] is None
    assert payload["count"] == 1
    [group] = payload["data"]
    assert (group["lid"], group["pid"]) == (practice.location, practice.patel)
    assert group["next_available_date"] == "2026-05-07"
    assert group["slots"] == [
        {
            "time": "2026-05-07T11:00:00.000-07:00",
            "end_time": "2026-05-07T11:30:00.000-07:00",
            "operatory_id": practice.op1,
            "provider_id": practice.patel,
            "working_hour_label_id": None,
        },
        {
            "time": "2026-05-07T11:30:00.000-07:00",
            "end_time": "2026-05-07T12:00:00.000-07:00",
            "operatory_id": practice.op1,
            "provider_id": practice.patel,
            "working_hour_label_id": None,
        },
    ]
    # The afternoon (bound to Exam) never enters a Cleaning search; an Exam search sees it.
    exam = slots(api, practice, "2026-05-07", appointment_type_id=practice.exam)
    exam_times = [s["time"][11:16] for s in exam["data"][0]["slots"]]
    assert exam_times[0] == "13:00" and exam_times[-1] == "16:45" and len(exam_times) == 16
    # The block reads back from /appointments as unavailable with no patient (Level 2B).
    listed = api.ok(
        "GET",
        "/appointments",
        location_id=practice.location,
        start="2026-05-07T00:00:00-07:00",
        end="2026-05-08T00:00:00-07:00",
    )
    assert [(a["unavailable"], a["patient_id"] is None) for a in listed] == [
        (False, False),
        (True, True),
    ]
    assert listed[1]["start_time"] == "2026-05-07T16:00:00.000Z"


def test_empty_result_has_the_documented_description(sandbox: SandboxServer) -> None:
    api = Api(sandbox)
    practice = build_practice(api, bind_types=False)
    # Working hours exist but none is bound to Cleaning: the documented "no slots" answer.
    payload = slots(api, practice, "2026-05-07", appointment_type_id=practice.cleaning)
    assert payload == {
        "code": True,
        "description": EMPTY,
        "error": None,
        "data": [
            {
                "lid": practice.location,
                "pid": practice.patel,
                "operatory_id": None,
                "slots": [],
                "next_available_date": None,
            }
        ],
        "count": 1,
    }
    # Without a type, slot_length/slot_interval cut the working hours (Level 1's request).
    level1 = slots(api, practice, "2026-05-07", slot_length=60, slot_interval=45)
    times = [s["time"][11:16] for s in level1["data"][0]["slots"]]
    assert times == ["09:00", "09:45", "10:30", "13:00", "13:45", "14:30", "15:15", "16:00"]
    # A Friday has no working hours: empty, but next_available_date points to Monday.
    friday = slots(api, practice, "2026-05-08", days=1)
    assert friday["description"] == EMPTY
    assert friday["data"][0]["next_available_date"] == "2026-05-11"


def test_without_operatory_id_only_the_first_operatory_is_returned(
    sandbox: SandboxServer, api: Api, practice: Practice
) -> None:
    api.ok(
        "POST",
        "/working_hours",
        {
            "working_hour": {
                "provider_id": practice.patel,
                "operatory_id": practice.op2,
                "begin_time": "09:00",
                "end_time": "12:00",
                "days": ["Thursday"],
                "appointment_type_ids": [practice.cleaning],
            }
        },
        status=201,
        location_id=practice.location,
    )
    both = slots(api, practice, "2026-05-07", appointment_type_id=practice.cleaning)
    group = both["data"][0]
    assert {s["operatory_id"] for s in group["slots"]} == {practice.op1}
    assert len(group["slots"]) == 6
    op2 = slots(
        api,
        practice,
        "2026-05-07",
        appointment_type_id=practice.cleaning,
        operatory_id=practice.op2,
    )
    assert {s["operatory_id"] for s in op2["data"][0]["slots"]} == {practice.op2}
    # Asking for both operatories explicitly returns both.
    listed = slots(
        api,
        practice,
        "2026-05-07",
        appointment_type_id=practice.cleaning,
        **{"operatory_ids[]": [practice.op1, practice.op2]},
    )
    assert len(listed["data"][0]["slots"]) == 12


# ---------------------------------------------------------------------------------------------
# Auth, envelope, rate limits, faults


def test_token_expiry_gives_401_and_reauthentication_works(sandbox: SandboxServer) -> None:
    bad = httpx.post(f"{sandbox.base_url}/authenticates", headers={"Authorization": "nope"})
    assert bad.status_code == 401 and bad.json()["code"] is False
    api = Api(sandbox)
    build_practice(api)
    token = api.http.headers["Authorization"].split()[1]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert 3500 < claims["exp"] - time.time() <= 3600
    assert api.call("GET", "/providers").status_code == 200
    assert httpx.get(f"{sandbox.base_url}/providers", params={"subdomain": SUB}).status_code == 401

    sandbox.admin("POST", "/_admin/tokens/expire")
    expired = api.call("GET", "/providers")
    assert expired.status_code == 401
    assert expired.json()["code"] is False
    assert expired.json()["error"] == ["Bearer token expired"]
    api.http.headers["Authorization"] = f"Bearer {sandbox.token()}"
    assert api.call("GET", "/providers").status_code == 200

    # A short lifetime set at run time: the token lapses by itself.
    sandbox.admin("PATCH", "/_admin/config", {"token_ttl_seconds": 0.3})
    api.http.headers["Authorization"] = f"Bearer {sandbox.token()}"
    wait_until(
        lambda: api.call("GET", "/providers").status_code == 401,
        timeout=5,
        message="token expiry",
    )
    sandbox.admin("PATCH", "/_admin/config", {"token_ttl_seconds": 3600})
    api.http.headers["Authorization"] = f"Bearer {sandbox.token()}"
    assert api.call("GET", "/providers").status_code == 200


def test_requests_past_the_rate_get_429_with_retry_after(
    sandbox: SandboxServer, api: Api, practice: Practice
) -> None:
    # A practice limited to 5 requests per minute overall, and 2 GET /appointments per minute.
    sandbox.admin(
        "PUT",
        "/_admin/rate_limits",
        {
            "api_key": "other-key",
            "limits": {
                "overall": {"limit": 5, "window_seconds": 60},
                "appointments_get": {"limit": 2, "window_seconds": 60},
            },
        },
    )
    slow = Api(sandbox, "other-key")  # /authenticates was request 1
    window = {
        "location_id": practice.location,
        "start": "2026-05-07T00:00:00Z",
        "end": "2026-05-08T00:00:00Z",
    }
    assert slow.call("GET", "/appointments", **window).status_code == 200
    assert slow.call("GET", "/appointments", **window).status_code == 200
    limited = slow.call("GET", "/appointments", **window)
    assert limited.status_code == 429
    assert limited.json()["code"] is False
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert slow.call("GET", "/providers").status_code == 200  # other buckets still open
    statuses = [slow.call("GET", "/providers").status_code for _ in range(3)]
    assert statuses == [200, 429, 429]  # the fifth request in the minute, then refusals
    # The default key is unaffected.
    assert api.call("GET", "/providers").status_code == 200

    stats = sandbox.admin("GET", "/_admin/stats").json()
    observed = stats["rate_limits"]["observed"]["other-key"]
    assert observed["overall"]["limit"] == 5
    assert observed["overall"]["accepted"] == 5
    assert observed["overall"]["max_observed"] == 8 > observed["overall"]["limit"]
    assert observed["appointments_get"] == {
        "limit": 2,
        "window_seconds": 60.0,
        "max_observed": 3,
        "accepted": 2,
        "rejected": 1,
    }
    assert stats["responses"]["429"] == 3
    # NexHealth's published defaults for everyone else.
    defaults = stats["rate_limits"]["defaults"]
    assert defaults["overall"] == {"limit": 100, "window_seconds": 1.0}
    assert defaults["slots"] == {"limit": 10, "window_seconds": 1.0}
    assert defaults["patients_appointments"] == {"limit": 1000, "window_seconds": 60.0}
    assert stats["rate_limits"]["observed"][API_KEY]["overall"]["max_observed"] <= 100


def test_injected_5xx_latency_and_timeouts(
    sandbox: SandboxServer, api: Api, practice: Practice
) -> None:
    sandbox.admin(
        "PATCH", "/_admin/faults", {"error_share": 1.0, "only_endpoints": ["GET /providers"]}
    )
    failing = api.call("GET", "/providers")
    assert failing.status_code == 500 and failing.json()["code"] is False
    assert api.call("GET", "/operatories").status_code == 200
    sandbox.admin("DELETE", "/_admin/faults")

    sandbox.admin(
        "PATCH", "/_admin/faults", {"latency_ms": 250, "only_endpoints": ["GET /operatories"]}
    )
    started = time.monotonic()
    assert api.call("GET", "/operatories").status_code == 200
    assert time.monotonic() - started >= 0.25
    sandbox.admin("DELETE", "/_admin/faults")

    sandbox.admin(
        "PATCH",
        "/_admin/faults",
        {"timeout_share": 1.0, "timeout_seconds": 3, "only_endpoints": ["GET /providers"]},
    )
    with pytest.raises(httpx.ReadTimeout):
        api.http.get("/providers", params={"subdomain": SUB}, timeout=0.3)
    assert api.call("GET", "/operatories").status_code == 200  # a hang blocks nobody else

    # timeout_mode "after": the write lands, the caller never hears back (retry needs care).
    sandbox.admin(
        "PATCH",
        "/_admin/faults",
        {
            "timeout_share": 1.0,
            "timeout_seconds": 3,
            "timeout_mode": "after",
            "only_endpoints": ["POST /operatories"],
        },
    )
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(
            "/operatories",
            params={"subdomain": SUB, "location_id": practice.location},
            json={"operatory": {"name": "Operatory 3"}},
            timeout=0.3,
        )
    sandbox.admin("DELETE", "/_admin/faults")
    names = [o["name"] for o in api.ok("GET", "/operatories", location_id=practice.location)]
    assert names == ["Operatory 1", "Operatory 2", "Operatory 3"]
    stats = sandbox.admin("GET", "/_admin/stats").json()
    assert stats["faults_injected"] == {"error_5xx": 1, "latency": 1, "timeout": 2}


# ---------------------------------------------------------------------------------------------
# Appointments: asynchronous insertion, signed webhooks, conflicts, cancellation


def test_asynchronous_insertion_is_reported_by_a_signed_webhook(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    _, secret = subscribe(api, receiver.url, "appointment_insertion")
    day = next_thursday()
    accepted = book(api, practice, at(day, "11:00"))
    assert accepted["insertion_status"] == "pending" and accepted["foreign_id"] is None

    [message] = receiver.wait_for()
    body = assert_signed(message, secret)
    assert body["event"] == "appointment_insertion"
    assert body["event_name"] == "appointment_insertion.complete"
    assert body["resource_type"] == "Appointment"
    assert body["subdomain"] == SUB and body["location_id"] == practice.location
    assert body["data"]["status"] == "complete"
    written = body["data"]["appointment"]
    assert written["id"] == accepted["id"] and written["foreign_id"]
    assert message.headers["x-event"] == "appointment_insertion"

    stored = api.ok("GET", f"/appointments/{accepted['id']}")
    assert stored["insertion_status"] == "complete"
    assert stored["end_time"] == accepted["end_time"]  # 30 minutes from the Cleaning type
    # A booked slot disappears from the search.
    times = [s["time"][11:16] for s in slots(api, practice, day.isoformat())["data"][0]["slots"]]
    assert "10:30" in times and "11:00" not in times
    stats = sandbox.admin("GET", "/_admin/stats").json()
    assert stats["appointments"] == {"accepted": 1, "inserted": 1}


def test_insertion_fails_when_the_slot_was_taken_in_the_ehr(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    _, secret = subscribe(api, receiver.url, "appointment_insertion", "appointment_created")
    day = next_thursday()
    # Between the portal's hold and its booking, the front desk books 10:00 in the EHR.
    staff = staff_appointment(
        sandbox,
        practice,
        {
            "provider_id": practice.patel,
            "operatory_id": practice.op2,
            "start_time": at(day, "10:00"),
            "minutes": 60,
        },
    ).json()
    created = receiver.wait_for(lambda m: m.json["event"] == "appointment_created")
    assert assert_signed(created[0], secret)["data"]["appointment"]["id"] == staff["id"]

    accepted = book(api, practice, at(day, "10:30"))  # accepted: the POST itself succeeds
    [failed] = receiver.wait_for(lambda m: m.json["event"] == "appointment_insertion")
    body = assert_signed(failed, secret)
    assert body["event_name"] == "appointment_insertion.failed"
    assert body["data"]["appointment"]["id"] == accepted["id"]
    assert api.ok("GET", f"/appointments/{accepted['id']}")["insertion_status"] == "failed"

    # The insertion-failure fault fails a write that had a free slot.
    sandbox.admin("PATCH", "/_admin/faults", {"insertion_failure_share": 1.0})
    doomed = book(api, practice, at(day, "09:00"))
    wait_until(lambda: insertion_status(api, doomed["id"]), message="insertion result")
    assert insertion_status(api, doomed["id"]) == "failed"
    sandbox.admin("DELETE", "/_admin/faults")
    fine = book(api, practice, at(day, "09:00"))
    assert wait_until(lambda: insertion_status(api, fine["id"])) == "complete"

    # Booking the same patient, provider and time twice is counted as a duplicate.
    book(api, practice, at(day, "09:00"))
    stats = sandbox.admin("GET", "/_admin/stats").json()
    assert stats["duplicates_detected"]["appointments"] == 1
    # Past start times are refused, as NexHealth only inserts future appointments.
    past = api.call(
        "POST",
        "/appointments",
        {
            "appt": {
                "patient_id": practice.patient,
                "provider_id": practice.patel,
                "operatory_id": practice.op1,
                "start_time": "2020-01-02T10:00:00Z",
                "appointment_type_id": practice.cleaning,
            }
        },
        location_id=practice.location,
    )
    assert past.status_code == 400 and past.json()["code"] is False


def test_cancel_via_patch_emits_update_and_frees_the_slot(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    _, secret = subscribe(api, receiver.url, "appointment_insertion", "appointment_updated")
    day = next_thursday()
    appt = book(api, practice, at(day, "09:30"))
    receiver.wait_for(lambda m: m.json["event"] == "appointment_insertion")
    before = [s["time"][11:16] for s in slots(api, practice, day.isoformat())["data"][0]["slots"]]
    assert "09:30" not in before

    data = api.ok("PATCH", f"/appointments/{appt['id']}", {"appt": {"cancelled": True}})
    assert data["appt"]["cancelled"] is True
    [update] = receiver.wait_for(lambda m: m.json["event"] == "appointment_updated")
    body = assert_signed(update, secret)
    assert body["data"]["appointment"]["cancelled"] is True
    assert body["data"]["changes"] == ["cancelled"]
    after = [s["time"][11:16] for s in slots(api, practice, day.isoformat())["data"][0]["slots"]]
    assert "09:30" in after
    listed = api.ok(
        "GET",
        "/appointments",
        location_id=practice.location,
        start=at(day, "00:00"),
        end=at(day, "23:59"),
        cancelled="false",
    )
    assert listed == []


# ---------------------------------------------------------------------------------------------
# Webhook faults and retries


def test_duplicated_and_dropped_webhooks(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    _, secret = subscribe(api, receiver.url, "appointment_created")

    def staff_books(hhmm: str) -> int:
        return int(
            staff_appointment(
                sandbox,
                practice,
                {
                    "provider_id": practice.patel,
                    "operatory_id": practice.op1,
                    "start_time": f"2026-05-07T{hhmm}:00",
                    "minutes": 15,
                },
            ).json()["id"]
        )

    sandbox.admin("PATCH", "/_admin/faults", {"webhook_duplicate_share": 1.0})
    first = staff_books("09:00")
    twins = receiver.wait_for(count=2)
    assert [assert_signed(m, secret)["data"]["appointment"]["id"] for m in twins] == [first] * 2
    assert twins[0].json["delivery_id"] == twins[1].json["delivery_id"]
    assert twins[0].body == twins[1].body

    sandbox.admin(
        "PATCH", "/_admin/faults", {"webhook_duplicate_share": 0, "webhook_drop_share": 1}
    )
    lost = staff_books("10:00")
    log = sandbox.admin("GET", "/_admin/webhooks").json()["deliveries"]
    assert log[-1]["status"] == "dropped"
    sandbox.admin("DELETE", "/_admin/faults")
    kept = staff_books("11:00")
    receiver.wait_for(lambda m: m.json["data"]["appointment"]["id"] == kept)
    wait_until(lambda: sandbox.admin("GET", "/_admin/webhooks").json()["pending"] == 0)
    ids = [m.json["data"]["appointment"]["id"] for m in receiver.received]
    assert ids == [first, first, kept] and lost not in ids
    stats = sandbox.admin("GET", "/_admin/stats").json()["webhooks"]
    assert stats["duplicated"] == 1 and stats["dropped"] == 1


def test_reordered_webhooks(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    subscribe(api, receiver.url, "appointment_created", "appointment_updated")
    sandbox.admin("PATCH", "/_admin/faults", {"webhook_reorder_window_ms": 1000})
    appt = staff_appointment(
        sandbox,
        practice,
        {
            "provider_id": practice.patel,
            "operatory_id": practice.op1,
            "start_time": "2026-05-07T09:00:00",
            "minutes": 30,
        },
    ).json()
    sandbox.admin("PATCH", f"/_admin/ehr/appointments/{appt['id']}", {"appt": {"cancelled": True}})
    receiver.wait_for(count=2)
    assert receiver.events() == ["appointment_updated", "appointment_created"]


def test_failed_deliveries_retry_then_deactivate_the_endpoint(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    endpoint_id, secret = subscribe(api, receiver.url, "patient_created")
    # Compress NexHealth's 30 s ... 48 h schedule to about 1.7 s in total.
    sandbox.admin("PATCH", "/_admin/config", {"time_scale": 0.00001})
    receiver.status = 500
    sandbox.admin(
        "POST",
        "/_admin/ehr/patients",
        {"location_id": practice.location, "patient": {"first_name": "Bo", "last_name": "Ray"}},
    )
    attempts = receiver.wait_for(count=11, timeout=15)  # the first try and ten retries
    assert len({m.json["delivery_id"] for m in attempts}) == 1
    assert [m.headers["x-delivery-attempt"] for m in attempts] == [str(i) for i in range(1, 12)]
    for message in attempts:
        assert_signed(message, secret)
    wait_until(
        lambda: not api.ok("GET", f"/webhook_endpoints/{endpoint_id}", subdomain=None)["active"],
        message="endpoint deactivation",
    )
    # Nothing goes to an inactive endpoint; PATCH active=true brings it back.
    receiver.status = 200
    api.ok("PATCH", f"/webhook_endpoints/{endpoint_id}", {"active": True}, subdomain=None)
    sandbox.admin(
        "POST",
        "/_admin/ehr/patients",
        {"location_id": practice.location, "patient": {"first_name": "Cy", "last_name": "Day"}},
    )
    [latest] = receiver.wait_for(lambda m: m.json["data"]["patient"]["first_name"] == "Cy")
    assert latest.headers["x-delivery-attempt"] == "1"


# ---------------------------------------------------------------------------------------------
# Synced working hours, patients, descriptors, documents, persistence


def test_synced_working_hours_are_replaced_with_new_ids(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    _, secret = subscribe(api, receiver.url, "working_hours_updated")

    def replace(items: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(
            sandbox.admin(
                "PUT",
                "/_admin/ehr/working_hours",
                {
                    "location_id": practice.location,
                    "provider_id": practice.patel,
                    "working_hours": items,
                },
            ).json()
        )

    first = replace(
        [
            {
                "operatory_id": practice.op2,
                "begin_time": "08:00",
                "end_time": "17:00",
                "specific_date": "2026-05-11",
            },
            {
                "operatory_id": practice.op2,
                "begin_time": "09:00",
                "end_time": "11:00",
                "specific_date": "2026-05-11",
                "label": "Exam",
            },
        ]
    )
    synced = api.ok("GET", "/working_hours", location_id=practice.location, source="synced")
    assert [r["id"] for r in synced] == [r["id"] for r in first["working_hours"]]
    base, blockout = synced
    assert base["source"] == "synced" and base["label"] is None
    assert base["days"] == ["Monday"] and base["specific_date"] == "2026-05-11"
    assert base["tz_offset"] == "-0700"
    assert blockout["label"]["name"] == "Exam" and blockout["label"]["location_id"] is None

    second = replace(
        [
            {
                "operatory_id": practice.op2,
                "begin_time": "10:00",
                "end_time": "12:00",
                "specific_date": "2026-05-11",
                "label": {"name": "Exam"},
            }
        ]
    )
    assert second["deleted_ids"] == [base["id"], blockout["id"]]
    [fresh] = second["working_hours"]
    assert fresh["id"] not in (base["id"], blockout["id"])
    assert fresh["label"]["id"] == blockout["label"]["id"]  # the EHR's label keeps its id
    for old in (base["id"], blockout["id"]):
        assert api.call("GET", f"/working_hours/{old}").status_code == 404
    remaining = api.ok("GET", "/working_hours", location_id=practice.location)
    assert [r["source"] for r in remaining] == ["manual", "manual", "synced"]
    # Synced records belong to the EHR: no edits beyond the type binding, no deletes.
    assert api.call("DELETE", f"/working_hours/{fresh['id']}").status_code == 400

    messages = receiver.wait_for(count=2)
    bodies = [assert_signed(m, secret) for m in messages]
    assert [b["event"] for b in bodies] == ["working_hours_updated"] * 2
    assert bodies[1]["data"]["deleted_ids"] == second["deleted_ids"]
    assert bodies[1]["data"]["working_hours"][0]["id"] == fresh["id"]
    # The synced record yields slots on its specific date (labelled, in Operatory 2).
    found = slots(api, practice, "2026-05-11", slot_length=60, operatory_id=practice.op2)
    assert [(s["time"][11:16], s["working_hour_label_id"]) for s in found["data"][0]["slots"]] == [
        ("10:00", fresh["label"]["id"]),
        ("11:00", fresh["label"]["id"]),
    ]


def test_patients_search_create_and_paginate(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    subscribe(api, receiver.url, "patient_created")
    for first, last, dob in (("Ben", "Ortiz", "1990-01-01"), ("Ana", "Ortiz", "2001-07-04")):
        api.ok(
            "POST",
            "/patients",
            {"patient": {"first_name": first, "last_name": last, "bio": {"date_of_birth": dob}}},
            status=201,
            location_id=practice.location,
        )
    receiver.wait_for(count=2)

    def search(**params: Any) -> tuple[list[str], int]:
        response = api.call("GET", "/patients", location_id=practice.location, **params)
        payload = response.json()
        assert response.status_code == 200 and set(payload["data"]) == {"patients"}
        return [p["name"] for p in payload["data"]["patients"]], payload["count"]

    assert search(name="ortiz") == (["Ben Ortiz", "Ana Ortiz"], 2)
    assert search(name="ana lopez") == (["Ana Lopez"], 1)
    assert search(date_of_birth="2001-07-04") == (["Ana Ortiz"], 1)
    assert search(phone_number="+1 555-010-2030") == (["Ana Lopez"], 1)
    assert search(email="ANA@example.test") == (["Ana Lopez"], 1)
    assert search(per_page=2, page=2) == (["Ana Ortiz"], 3)
    assert search(name="nobody") == ([], 0)

    api.ok(
        "POST",
        "/patients",
        {
            "patient": {
                "first_name": "ana",
                "last_name": "LOPEZ",
                "bio": {"date_of_birth": "1980-02-03"},
            }
        },
        status=201,
        location_id=practice.location,
    )
    stats = sandbox.admin("GET", "/_admin/stats").json()
    assert stats["duplicates_detected"]["patients"] == 1
    missing = api.call("POST", "/patients", {"patient": {}}, location_id=practice.location)
    assert missing.status_code == 400
    assert "patient.first_name is required" in missing.json()["error"]


def test_descriptors_map_to_types_and_land_on_appointments(
    sandbox: SandboxServer, api: Api, practice: Practice
) -> None:
    path = f"/locations/{practice.location}/appointment_descriptors"
    d1110 = api.ok(
        "POST",
        path,
        {"appointment_descriptor": {"code": "D1110", "name": "Prophylaxis Adult"}},
        status=201,
    )
    api.ok(
        "POST",
        path,
        {"appointment_descriptor": {"code": "D0150", "name": "Comprehensive Oral Evaluation"}},
        status=201,
    )
    assert [d["code"] for d in api.ok("GET", path)] == ["D1110", "D0150"]
    patched = api.ok(
        "PATCH",
        f"/appointment_types/{practice.cleaning}",
        {
            "appointment_type": {"emr_appt_descriptor_ids": [d1110["id"]]},
            "location_id": practice.location,
        },
    )
    assert patched["emr_appt_descriptor_ids"] == [d1110["id"]]
    assert patched["emr_appt_descriptors"][0]["code"] == "D1110"
    appt = book(api, practice, at(next_thursday(), "09:00"))
    assert [d["code"] for d in appt["descriptors"]] == ["D1110"]
    unknown = api.call(
        "PATCH",
        f"/appointment_types/{practice.cleaning}",
        {"appointment_type": {"emr_appt_descriptor_ids": [1]}},
    )
    assert unknown.status_code == 404


def test_encounter_note_document_is_confirmed_by_webhook(
    sandbox: SandboxServer, receiver: WebhookReceiver, api: Api, practice: Practice
) -> None:
    _, secret = subscribe(api, receiver.url, "document_insertion")
    note = "Caller: Ana Lopez. Reason: cleaning. Booked Thursday 09:00."
    doc = api.ok(
        "POST",
        f"/patients/{practice.patient}/documents",
        {"document": {"title": "AI call summary", "content": note}},
        status=201,
        location_id=practice.location,
    )
    assert doc["insertion_status"] == "pending"
    [message] = receiver.wait_for()
    body = assert_signed(message, secret)
    assert body["event_name"] == "document_insertion.complete"
    assert body["data"]["document"]["id"] == doc["id"]
    stored = api.ok("GET", f"/patients/{practice.patient}/documents/{doc['id']}")
    assert base64.b64decode(stored["content_base64"]).decode() == note
    # NexHealth's own form is a multipart upload; that works too.
    upload = api.http.post(
        f"/patients/{practice.patient}/documents",
        params={"subdomain": SUB, "location_id": practice.location},
        files={"file": ("note.txt", b"multipart note", "text/plain")},
        data={"title": "Uploaded"},
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["data"]["title"] == "Uploaded"


def test_envelope_errors_and_scoping(sandbox: SandboxServer, api: Api, practice: Practice) -> None:
    missing = api.call("GET", "/providers", subdomain=None)
    assert missing.status_code == 400 and missing.json()["error"] == ["subdomain is required"]
    unknown = api.call("GET", "/providers", subdomain="elsewhere")
    assert unknown.status_code == 404 and unknown.json()["code"] is False
    assert api.call("GET", f"/providers/{practice.op1}").status_code == 404  # wrong kind of id
    assert api.call("GET", "/no_such_thing").json()["code"] is False
    ops = api.call("GET", "/operatories", location_id=practice.location, per_page=1, page=2).json()
    assert ops["count"] == 2 and [o["name"] for o in ops["data"]] == ["Operatory 2"]
    bad_hours = api.call(
        "POST",
        "/working_hours",
        {
            "working_hour": {
                "provider_id": practice.patel,
                "begin_time": "17:00",
                "end_time": "09:00",
                "days": ["Monday"],
            }
        },
        location_id=practice.location,
    )
    assert bad_hours.status_code == 400
    assert bad_hours.json()["error"] == ["end_time must be after begin_time"]
    # The booking guide's /availabilities are the manual working hours under their older name.
    availability = api.ok(
        "POST",
        "/availabilities",
        {
            "availability": {
                "days": ["Friday"],
                "appointment_type_ids": [practice.exam],
                "active": True,
                "provider_id": practice.patel,
                "operatory_id": practice.op1,
                "begin_time": "09:00",
                "end_time": "10:00",
            }
        },
        status=201,
        location_id=practice.location,
    )
    friday = api.call(
        "GET",
        "/appointment_slots",
        start_date="2026-05-08",
        days=1,
        appointment_type_id=practice.exam,
        **{"lids[]": practice.location, "pids[]": practice.patel},
    ).json()
    assert len(friday["data"][0]["slots"]) == 4
    assert friday["data"][0]["slots"][0]["working_hour_label_id"] is None
    api.ok("DELETE", f"/availabilities/{availability['id']}")


def test_state_survives_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    with SandboxServer(data_dir=tmp_path, extra_args=["--insertion-delay-ms", "20"]) as server:
        api = Api(server)
        practice = build_practice(api)
        appt = book(api, practice, at(next_thursday(), "11:30"))
        wait_until(lambda: insertion_status(api, appt["id"]), message="insertion")
        old_pid = server.admin("GET", "/_admin/health").json()["pid"]
        server.restart()
        assert server.admin("GET", "/_admin/health").json()["pid"] != old_pid
        # The same bearer token still works: tokens are part of the saved state.
        again = api.ok("GET", f"/appointments/{appt['id']}")
        assert again["insertion_status"] == "complete"
        assert api.ok("GET", f"/patients/{practice.patient}")["name"] == "Ana Lopez"
        assert len(api.ok("GET", "/working_hours", location_id=practice.location)) == 2
        # New ids continue after the old ones.
        newer = api.ok(
            "POST",
            "/operatories",
            {"operatory": {"name": "Op 3"}},
            201,
            location_id=practice.location,
        )
        assert newer["id"] > practice.op2
    assert (tmp_path / "sandbox-state.json").exists()
