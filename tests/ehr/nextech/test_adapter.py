"""The Nextech adapter against the Nextech sandbox as a real process: auth and its failures,
the rate limit, slot reads, bookings (409, lost answers), patients, notes and change polling."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest

from ehr.errors import EHRAuthError, EHRTransientError
from ehr.nextech.adapter import NextechAdapter
from ehr.nextech.client import NextechClient
from ehr.nextech.errors import NextechCredentialsNeedReset, NextechSlotTaken
from ehr.nextech.resources import BookingRequest, NewPatient, NextechInvalidResource
from ehr_sandbox.testing import wait_until

from .conftest import NextechWorld, local, make_config, next_weekday

JANE = NewPatient(
    family="Smith",
    given="Jane",
    phone="346-555-3682",
    email="jane.smith@example.com",
    birth_date=date(1968, 2, 4),
)


@pytest.fixture
def client(nextech: NextechWorld) -> Iterator[NextechClient]:
    with NextechClient(make_config(nextech)) as running:
        yield running


@pytest.fixture
def adapter(client: NextechClient) -> NextechAdapter:
    return NextechAdapter(client)


def glaucoma_check(day: date, hhmm: str, **kwargs: object) -> BookingRequest:
    start = local(day, hhmm)
    fields: dict = {
        "location_id": "1",
        "practitioner_id": "9323",
        "start": start,
        "end": start + timedelta(minutes=30),
        "appointment_type_id": "32",
        "purpose_ids": ("202",),
        "new_patient": JANE,
    }
    fields.update(kwargs)
    return BookingRequest(**fields)  # type: ignore[arg-type]


def counter(world: NextechWorld, group: str, name: str) -> int:
    return int(world.stats().get(group, {}).get(name, 0))


# -- reads --------------------------------------------------------------------------------------


def test_reads_practice_setup(adapter: NextechAdapter) -> None:
    practitioners = {p.id: p for p in adapter.practitioners()}
    # Reyes has no linked user in Nextech, so the API does not list her.
    assert set(practitioners) == {"9323", "9324", "9325"}
    assert practitioners["9323"].family == "Walters"
    assert {loc.id for loc in adapter.locations()} == {"1", "2"}
    types = {t.name: t.duration_minutes for t in adapter.appointment_types()}
    assert types["Cataract Evaluation"] == 90
    assert types["Mohs Surgery"] == 240
    assert "Full-body skin check" in {p.name for p in adapter.appointment_purposes()}


def test_slots_beyond_sixty_days_are_asked_in_windows(
    adapter: NextechAdapter, nextech: NextechWorld
) -> None:
    start = local(next_weekday(0), "00:00")
    slots = adapter.slots(
        location_id="2", start=start, end=start + timedelta(days=84), appointment_type_id="33"
    )
    # Mohs: Okafor at the procedure suite, Tuesdays and Thursdays, two half-days each.
    assert len(slots) == 12 * 2 * 2
    assert {s.practitioner_id for s in slots} == {"9324"}
    assert all(s.end - s.start == timedelta(minutes=240) for s in slots)
    assert counter(nextech, "handled", "GET /Slot 200") == 2
    assert counter(nextech, "responses", "400") == 0


# -- auth ---------------------------------------------------------------------------------------


def test_token_is_shared_by_every_client(nextech: NextechWorld) -> None:
    config = make_config(nextech)
    with NextechClient(config) as first, NextechClient(config) as second:
        NextechAdapter(first).locations()
        NextechAdapter(second).locations()
    assert counter(nextech, "tokens", "password") == 1


def test_token_is_refreshed_before_it_expires(nextech: NextechWorld) -> None:
    # A 6-second token is refreshed 5 seconds early: within a second or so of the first call.
    nextech.admin("POST", "/_admin/settings", {"token_ttl": 6})
    with NextechClient(make_config(nextech)) as client:
        adapter = NextechAdapter(client)
        adapter.locations()

        def refreshed() -> bool:
            adapter.locations()
            return counter(nextech, "tokens", "refresh") >= 1

        wait_until(refreshed, timeout=10, interval=0.2, message="a refresh grant")
    assert counter(nextech, "tokens", "password") == 1
    assert counter(nextech, "auth", "rejected_expired") == 0


def test_a_401_gets_one_fresh_token(adapter: NextechAdapter, nextech: NextechWorld) -> None:
    adapter.locations()
    nextech.admin("POST", f"/_admin/users/{nextech.username}/expire_tokens")
    assert {loc.id for loc in adapter.locations()} == {"1", "2"}
    assert counter(nextech, "auth", "rejected_expired") == 1
    assert counter(nextech, "tokens", "refresh") == 1


def test_password_reset_required_is_its_own_error(nextech: NextechWorld) -> None:
    nextech.admin("POST", f"/_admin/users/{nextech.username}/require_reset")
    config = make_config(nextech)
    with NextechClient(config) as first, NextechClient(config) as second:
        with pytest.raises(NextechCredentialsNeedReset, match="credentials need a reset"):
            NextechAdapter(first).locations()
        # Another worker is told the same without signing in again (lockout counts sign-ins).
        with pytest.raises(NextechCredentialsNeedReset):
            NextechAdapter(second).locations()
    assert counter(nextech, "tokens", "reset_required") == 1
    assert counter(nextech, "requests", "GET /Location") == 0


def test_new_credentials_after_a_reset_work_at_once(nextech: NextechWorld) -> None:
    nextech.admin("POST", f"/_admin/users/{nextech.username}/require_reset")
    with NextechClient(make_config(nextech)) as client, pytest.raises(NextechCredentialsNeedReset):
        NextechAdapter(client).locations()
    nextech.admin(
        "POST", f"/_admin/users/{nextech.username}/complete_reset", {"password": "second-password"}
    )
    with NextechClient(make_config(nextech, password="second-password")) as client:
        assert len(NextechAdapter(client).locations()) == 2


# -- the rate limit -----------------------------------------------------------------------------


def test_governor_keeps_every_thread_under_twenty_per_second(
    nextech: NextechWorld, client: NextechClient
) -> None:
    adapter = NextechAdapter(client)
    adapter.locations()  # sign in once before the burst
    errors: list[BaseException] = []

    def burst() -> None:
        try:
            for _ in range(10):
                adapter.locations()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=burst) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    observed = nextech.admin("GET", "/_admin/rate_limits")["observed"][nextech.username]
    assert observed["GET /Location"]["accepted"] == 61
    assert observed["GET /Location"]["rejected"] == 0
    assert observed["GET /Location"]["max_observed"] <= 20


def test_429_is_honoured_not_hammered(nextech: NextechWorld, client: NextechClient) -> None:
    # Nextech's count is stricter than ours here (3 a second): its 429s must be waited out.
    nextech.admin("POST", "/_admin/rate_limits", {"limit": 3, "window_seconds": 1})
    adapter = NextechAdapter(client)
    for _ in range(9):
        assert len(adapter.locations()) == 2
    observed = nextech.admin("GET", "/_admin/rate_limits")["observed"][nextech.username]
    assert observed["GET /Location"]["accepted"] == 9
    # Each 429 puts the endpoint in a cool-down for its Retry-After: one refusal per window at
    # most, never a burst of retries into the limit.
    assert 1 <= observed["GET /Location"]["rejected"] <= 3


# -- booking ------------------------------------------------------------------------------------


def test_books_a_new_caller_as_a_prospect(adapter: NextechAdapter, nextech: NextechWorld) -> None:
    request = glaucoma_check(next_weekday(1), "09:00")
    assert adapter.slot_is_free(request)
    appt, patient_id = adapter.create_appointment(request)
    assert appt.status == "booked"
    assert appt.schedule_mode == "book"
    assert appt.appointment_type_id == "32"
    assert appt.purpose_ids == ("202",)
    assert adapter.patient(patient_id).prospect
    assert not adapter.slot_is_free(request)


def test_hold_mode_puts_it_on_the_follow_up_list(adapter: NextechAdapter) -> None:
    appt, _ = adapter.create_appointment(glaucoma_check(next_weekday(1), "10:00", mode="hold"))
    assert appt.held
    assert adapter.confirm(appt.id).status == "booked"


def test_taken_time_raises_slot_taken(adapter: NextechAdapter, nextech: NextechWorld) -> None:
    day = next_weekday(2)
    nextech.admin(
        "POST",
        f"/_admin/practices/{nextech.practice_id}/appointments",
        {"practitioner": "9323", "location": "1", "start": local(day, "11:00").isoformat()},
    )
    with pytest.raises(NextechSlotTaken) as caught:
        adapter.create_appointment(glaucoma_check(day, "11:00"))
    assert "no longer available" in caught.value.reason
    assert [p for p in nextech.patients() if p["name"][0]["family"] == "Smith"] == []


def test_patient_is_found_not_created_twice(adapter: NextechAdapter, nextech: NextechWorld) -> None:
    day = next_weekday(3)
    _, first_patient = adapter.create_appointment(glaucoma_check(day, "09:00"))
    _, second_patient = adapter.create_appointment(glaucoma_check(day, "10:00"))
    assert first_patient == second_patient
    assert len([p for p in nextech.patients() if p["name"][0]["family"] == "Smith"]) == 1
    # A charted patient is found by name, birth date and phone, whatever the phone's format.
    brimley = adapter.find_patient(
        family="brimley", given="Henry", birth_date=date(1951, 3, 14), phone="(312) 555 0142"
    )
    assert brimley is not None and not brimley.prospect
    assert (
        adapter.find_patient(
            family="Brimley", given="Henry", birth_date=date(1951, 3, 15), phone="312-555-0142"
        )
        is None
    )


@pytest.mark.parametrize("lost", ["504", "read_timeout"])
def test_lost_answer_is_looked_up_not_duplicated(nextech: NextechWorld, lost: str) -> None:
    """The POST lands but its answer is lost: the adapter finds what it made, posts nothing
    more, and returns that appointment."""
    if lost == "504":
        nextech.faults(
            timeout_share=1.0,
            timeout_mode="after",
            timeout_seconds=0.2,
            only_endpoints=["POST /Appointment"],
        )
        timeout = None
    else:
        nextech.faults(
            timeout_share=1.0,
            timeout_mode="after",
            timeout_seconds=5,
            only_endpoints=["POST /Appointment"],
        )
        timeout = httpx.Timeout(1.0)
    with NextechClient(make_config(nextech), timeout=timeout) as client:
        appt, patient_id = NextechAdapter(client).create_appointment(
            glaucoma_check(next_weekday(4), "09:00")
        )
    made = nextech.appointments()
    assert [a["id"] for a in made] == [appt.id]
    assert counter(nextech, "requests", "POST /Appointment") == 1
    assert len([p for p in nextech.patients() if p["name"][0]["family"] == "Smith"]) == 1
    assert made[0]["participant"][0]["actor"]["reference"] == f"Patient/{patient_id}"


def test_lost_answer_with_nothing_made_is_posted_again(nextech: NextechWorld) -> None:
    # 5xx before anything is written: each time the lookup finds nothing and the POST is sent
    # again, until Nextech recovers (many quick attempts, so recovery comes before giving up).
    nextech.faults(error_share=1.0, only_endpoints=["POST /Appointment"])
    config = make_config(nextech)
    with NextechClient(config, backoff_base=0.05, backoff_cap=0.2, max_attempts=100) as client:
        adapter = NextechAdapter(client)
        done: list[object] = []

        def book() -> None:
            done.append(adapter.create_appointment(glaucoma_check(next_weekday(4), "10:00")))

        thread = threading.Thread(target=book)
        thread.start()
        wait_until(
            lambda: counter(nextech, "requests", "POST /Appointment") >= 2,
            timeout=10,
            message="two refused POSTs",
        )
        nextech.admin("DELETE", "/_admin/faults")
        thread.join(timeout=30)
    assert len(done) == 1
    assert len(nextech.appointments()) == 1
    assert counter(nextech, "handled", "POST /Appointment 201") == 1


def test_cancel_is_requested_then_done_by_staff(
    adapter: NextechAdapter, nextech: NextechWorld
) -> None:
    appt, _ = adapter.create_appointment(glaucoma_check(next_weekday(1), "13:00"))
    requested = adapter.request_cancel(appt.id)
    assert requested.cancel_requested and not requested.cancelled
    nextech.admin("POST", f"/_admin/practices/{nextech.practice_id}/cancel_requests/process")
    assert adapter.appointment(appt.id).cancelled


# -- notes --------------------------------------------------------------------------------------


def test_note_is_written_once(adapter: NextechAdapter, nextech: NextechWorld) -> None:
    _, patient_id = adapter.create_appointment(glaucoma_check(next_weekday(2), "14:00"))
    nextech.faults(
        timeout_share=1.0,
        timeout_mode="after",
        timeout_seconds=0.2,
        only_endpoints=["POST /Patient/{id}/Composition"],
    )
    first = adapter.write_note(
        patient_id=patient_id, key="call-1", title="Call summary", text="Booked a glaucoma check."
    )
    nextech.admin("DELETE", "/_admin/faults")
    again = adapter.write_note(
        patient_id=patient_id, key="call-1", title="Call summary", text="Booked a glaucoma check."
    )
    notes = nextech.admin("GET", f"/_admin/practices/{nextech.practice_id}/notes")["compositions"]
    assert len(notes[patient_id]) == 1
    assert first["id"] == again["id"] == notes[patient_id][0]["id"]


# -- change detection ---------------------------------------------------------------------------


def test_staff_changes_are_found_by_polling(adapter: NextechAdapter, nextech: NextechWorld) -> None:
    appt, _ = adapter.create_appointment(glaucoma_check(next_weekday(3), "15:00"))
    batch = adapter.changes_since(location_ids=["1"], cursor=None)
    assert [a.id for a in batch.appointments] == [appt.id]
    quiet = adapter.changes_since(
        location_ids=["1"], cursor=batch.cursor, seen_at_cursor=batch.seen_at_cursor
    )
    assert quiet.appointments == []
    assert quiet.cursor == batch.cursor
    nextech.admin("POST", f"/_admin/practices/{nextech.practice_id}/appointments/{appt.id}/cancel")
    staff = nextech.admin(
        "POST",
        f"/_admin/practices/{nextech.practice_id}/appointments",
        {
            "practitioner": "9325",
            "location": "1",
            "start": local(next_weekday(3), "09:00").isoformat(),
        },
    )
    changed = adapter.changes_since(
        location_ids=["1"], cursor=quiet.cursor, seen_at_cursor=quiet.seen_at_cursor
    )
    assert {(a.id, a.status) for a in changed.appointments} == {
        (appt.id, "cancelled"),
        (staff["id"], "booked"),
    }
    assert adapter.changes_since(location_ids=["2"], cursor=quiet.cursor).appointments == []


def test_thirty_callers_for_one_time_get_one_booking(nextech: NextechWorld) -> None:
    day = next_weekday(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def caller(n: int) -> None:
        caller_patient = NewPatient(
            family=f"Caller{n}", given="Pat", phone=f"312-555-{1000 + n}", email=f"c{n}@example.com"
        )
        with NextechClient(make_config(nextech)) as client:
            try:
                NextechAdapter(client).create_appointment(
                    glaucoma_check(day, "15:30", new_patient=caller_patient)
                )
                result = "booked"
            except NextechSlotTaken:
                result = "taken"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["booked"] + ["taken"] * 29
    assert len(nextech.appointments()) == 1
    # A caller who did not get the time left no prospect behind.
    assert len([p for p in nextech.patients() if p["name"][0]["family"].startswith("Caller")]) == 1


def test_fault_storm_loses_nothing_and_duplicates_nothing(nextech: NextechWorld) -> None:
    """30% 5xx, 20% lost answers (the write lands, the answer is a 504) and Nextech counting 5 a
    second: each booking is called until it returns, as a task would retry it; at the end every
    booking exists exactly once."""
    nextech.faults(error_share=0.3, timeout_share=0.2, timeout_mode="after", timeout_seconds=0.1)
    nextech.admin("POST", "/_admin/rate_limits", {"limit": 5, "window_seconds": 1})
    day = next_weekday(1)
    booked: dict[str, str] = {}
    with NextechClient(make_config(nextech), backoff_base=0.05, backoff_cap=0.5) as client:
        adapter = NextechAdapter(client)
        for n, hhmm in enumerate(["08:00", "09:00", "10:00", "11:00", "13:00", "14:00"]):
            person = NewPatient(
                family=f"Storm{n}",
                given="Sam",
                phone=f"312-555-{2000 + n}",
                email=f"s{n}@example.com",
            )
            request = glaucoma_check(day, hhmm, new_patient=person)

            def attempt(request: BookingRequest = request) -> str | None:
                try:
                    appt, _ = adapter.create_appointment(request)
                except (EHRTransientError, NextechInvalidResource):
                    return None
                return appt.id

            booked[hhmm] = wait_until(attempt, timeout=60, interval=0.05, message=f"booking {hhmm}")
    nextech.admin("DELETE", "/_admin/faults")
    made = [a for a in nextech.appointments() if a["status"] != "cancelled"]
    assert sorted(a["id"] for a in made) == sorted(booked.values())
    storm_patients = [p for p in nextech.patients() if p["name"][0]["family"].startswith("Storm")]
    assert len(storm_patients) == 6
    stats = nextech.stats()
    injected = stats["faults_injected"]  # the storm happened (each kind is drawn at random)
    assert injected.get("error_5xx", 0) + injected.get("timeout", 0) > 0


def test_revoked_refresh_token_falls_back_to_the_password(
    adapter: NextechAdapter, nextech: NextechWorld
) -> None:
    adapter.locations()
    nextech.admin("POST", f"/_admin/users/{nextech.username}/revoke_tokens")
    assert len(adapter.locations()) == 2
    assert counter(nextech, "tokens", "bad_refresh") == 1
    assert counter(nextech, "tokens", "password") == 2


def test_a_token_refused_twice_is_an_auth_error(nextech: NextechWorld) -> None:
    # Tokens that are dead on arrival: one fresh token is tried, then a human is needed.
    nextech.admin("POST", "/_admin/settings", {"token_ttl": 0})
    with NextechClient(make_config(nextech)) as client, pytest.raises(EHRAuthError):
        NextechAdapter(client).locations()
    assert counter(nextech, "requests", "GET /Location") == 2
