"""The Nextech sandbox behaves like the Select API where our adapter depends on it."""

from __future__ import annotations

from datetime import timedelta

import httpx

from ehr_sandbox.nextech.fhirjson import SD

from .conftest import PASSWORD, USERNAME, NextechWorld, local, next_weekday


def slot_params(start: str, end: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("start", f"ge{start}"), ("start", f"lt{end}"), ("_count", "50"), *extra]


def appointment_body(start: str, end: str, *, patient: str | None = None) -> dict:
    body: dict = {
        "resourceType": "Appointment",
        "status": "proposed",
        "start": start,
        "end": end,
        "extension": [
            {
                "url": f"{SD}/appointment-type",
                "valueReference": {"reference": "appointment-type/32"},
            },
            {"url": f"{SD}/appointment-schedule", "valueString": "book"},
        ],
        "participant": [
            {"actor": {"reference": "location/1"}, "status": "accepted"},
            {"actor": {"reference": "practitioner/9323"}, "status": "accepted"},
        ],
    }
    if patient:
        body["participant"].append(
            {"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}
        )
    else:
        body["contained"] = [
            {
                "resourceType": "Patient",
                "name": [{"family": "Smith", "given": ["Jane"]}],
                "telecom": [
                    {"system": "phone", "use": "mobile", "value": "346-555-3682"},
                    {"system": "email", "value": "jane@example.com"},
                ],
                "birthDate": "1968-02-04",
            }
        ]
    return body


def test_requests_need_a_token_and_the_practice_header(nextech: NextechWorld) -> None:
    assert httpx.get(f"{nextech.server.api_url}/Location").status_code == 401
    with nextech.api() as api:
        assert api.get("/Location").status_code == 200
        assert api.get("/Location", headers={"nx-practice-id": ""}).status_code == 400
        assert api.get("/Location", headers={"nx-practice-id": "999"}).status_code == 403


def test_password_must_be_reset_is_its_own_error(nextech: NextechWorld) -> None:
    nextech.admin("POST", f"/_admin/users/{USERNAME}/require_reset")
    response = httpx.post(
        nextech.server.token_url,
        data={
            "grant_type": "password",
            "client_id": nextech.server.client_id,
            "client_secret": nextech.server.client_secret,
            "username": USERNAME,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [50055]


def test_slots_come_from_templates_minus_appointments_and_blocks(nextech: NextechWorld) -> None:
    tuesday = next_weekday(1)
    params = slot_params(
        tuesday.isoformat(),
        (tuesday + timedelta(days=1)).isoformat(),
        ("schedule.actor", "location/1"),
        ("schedule.actor", "practitioner/9323"),
        ("appointment-type", "appointment-type/32"),
    )
    with nextech.api() as api:
        before = [e["resource"]["start"] for e in api.get("/Slot", params=params).json()["entry"]]
        # 08:00-16:00 in 30-minute steps, 30-minute visits: 16 starts.
        assert len(before) == 16
        nine = local(tuesday, "09:00")
        nextech.admin(
            "POST",
            f"/_admin/practices/{nextech.practice_id}/appointments",
            {"practitioner": "9323", "location": "1", "start": nine.isoformat(), "minutes": 30},
        )
        nextech.admin(
            "POST",
            f"/_admin/practices/{nextech.practice_id}/blocks",
            {
                "location": "1",
                "start": local(tuesday, "12:00").isoformat(),
                "end": local(tuesday, "13:00").isoformat(),
            },
        )
        after = [e["resource"]["start"] for e in api.get("/Slot", params=params).json()["entry"]]
    assert len(after) == 13
    assert nine.isoformat() not in after


def test_slot_window_is_at_most_sixty_days(nextech: NextechWorld) -> None:
    start = next_weekday(0)
    with nextech.api() as api:
        response = api.get(
            "/Slot",
            params=slot_params(
                start.isoformat(),
                (start + timedelta(days=61)).isoformat(),
                ("schedule.actor", "location/1"),
            ),
        )
    assert response.status_code == 400


def test_taken_time_is_a_409_appointment_response(nextech: NextechWorld) -> None:
    day = next_weekday(2)
    start, end = local(day, "10:00").isoformat(), local(day, "10:30").isoformat()
    with nextech.api() as api:
        first = api.post("/Appointment", json=appointment_body(start, end))
        second = api.post("/Appointment", json=appointment_body(start, end))
    assert first.status_code == 201
    assert first.json()["status"] == "booked"
    assert second.status_code == 409
    assert second.json()["resourceType"] == "AppointmentResponse"
    # The failed POST made no second prospect.
    assert len([p for p in nextech.patients() if p["name"][0]["family"] == "Smith"]) == 1


def test_invalid_fhir_is_refused(nextech: NextechWorld) -> None:
    day = next_weekday(2)
    body = appointment_body(local(day, "10:00").isoformat(), local(day, "10:30").isoformat())
    del body["participant"][0]["status"]  # required in STU3
    with nextech.api() as api:
        assert api.post("/Appointment", json=body).status_code == 400


def test_rate_limit_is_per_endpoint_with_retry_after(nextech: NextechWorld) -> None:
    # 20 per 30 s rather than per second: the same rule, and no race with a slow machine.
    nextech.admin("POST", "/_admin/rate_limits", {"limit": 20, "window_seconds": 30})
    with nextech.api() as api:
        codes = [api.get("/Location").status_code for _ in range(25)]
        other = api.get("/Practitioner")
        refused = api.get("/Location")
    assert codes.count(200) == 20
    assert codes.count(429) == 5
    assert other.status_code == 200
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def test_last_updated_finds_staff_changes(nextech: NextechWorld) -> None:
    day = next_weekday(3)
    with nextech.api() as api:
        booked = api.post(
            "/Appointment",
            json=appointment_body(local(day, "11:00").isoformat(), local(day, "11:30").isoformat()),
        ).json()
        cursor = booked["meta"]["lastUpdated"]
        quiet = api.get("/Appointment", params={"_lastUpdated": f"gt{cursor}", "location.id": "1"})
        assert quiet.json()["total"] == 0
        nextech.admin(
            "POST", f"/_admin/practices/{nextech.practice_id}/appointments/{booked['id']}/cancel"
        )
        changed = api.get(
            "/Appointment", params={"_lastUpdated": f"gt{cursor}", "location.id": "1"}
        )
    assert [e["resource"]["status"] for e in changed.json()["entry"]] == ["cancelled"]


def test_lost_answer_fault_lands_the_write(nextech: NextechWorld) -> None:
    day = next_weekday(4)
    nextech.faults(
        timeout_share=1.0,
        timeout_mode="after",
        timeout_seconds=0.2,
        only_endpoints=["POST /Appointment"],
    )
    with nextech.api() as api:
        response = api.post(
            "/Appointment",
            json=appointment_body(local(day, "09:00").isoformat(), local(day, "09:30").isoformat()),
        )
    assert response.status_code == 504
    assert len(nextech.appointments()) == 1


def test_cancel_is_a_request_staff_act_on(nextech: NextechWorld) -> None:
    day = next_weekday(1)
    with nextech.api() as api:
        appt = api.post(
            "/Appointment",
            json=appointment_body(local(day, "14:00").isoformat(), local(day, "14:30").isoformat()),
        ).json()
        plain = api.put(
            f"/Appointment/{appt['id']}",
            json={"resourceType": "Appointment", "status": "cancelled"},
        )
        assert plain.status_code == 400
        requested = api.put(
            f"/Appointment/{appt['id']}",
            json={
                "resourceType": "Appointment",
                "status": "cancelled",
                "extension": [{"url": f"{SD}/request-type", "valueString": "queue"}],
            },
        ).json()
        assert requested["status"] == "booked"
        assert {"url": f"{SD}/request-type", "valueString": "queue"} in requested["extension"]
        nextech.admin("POST", f"/_admin/practices/{nextech.practice_id}/cancel_requests/process")
        assert api.get(f"/Appointment/{appt['id']}").json()["status"] == "cancelled"
