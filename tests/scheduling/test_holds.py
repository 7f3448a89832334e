"""Holds: claiming a slot for a caller, releasing it, expiry, and contention through real
connections (a live server, 30 HTTP clients released together by a barrier)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta

import httpx
import pytest
from django.utils import timezone

from core.tenancy import cross_tenant, tenant_context
from scheduling.models import Hold, HoldStatus
from scheduling.services import SlotUnavailableError, release_expired_holds
from tests.receptionist_api.factories import (
    api_client,
    bearer,
    level_2d,
    local,
    schedule,
    token_for,
)

pytestmark = pytest.mark.usefixtures("fast_secret_hashing")


@pytest.fixture
def alpha(db):
    return level_2d(schedule("alpha", "Alpha Dental"))


@pytest.fixture
def auth(alpha):
    client, _ = api_client(alpha.s.practice)
    raw, _ = token_for(client)
    return bearer(raw)


def hold_body(world, hour=11, minute=0, **overrides):
    return {
        "appointment_type_id": world.cleaning.pk,
        "provider_id": world.patel.pk,
        "operatory_id": world.op1.pk,
        "start": local(world.day, hour, minute).isoformat(),
        **overrides,
    }


def post_hold(client, auth, body):
    return client.post("/api/v1/holds", body, content_type="application/json", **auth)


def slot_starts(client, auth, world):
    response = client.get(
        "/api/v1/availability",
        {"appointment_type_id": world.cleaning.pk, "start_date": world.day, "days": 1},
        **auth,
    )
    return [s["start"][11:16] for s in response.json()["slots"]]


def assert_slot_unavailable(response):
    assert response.status_code == 409, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "slot_unavailable"


# --- one caller at a time ---------------------------------------------------------------------


def test_a_hold_answers_201_in_the_locations_zone_and_expires_in_five_minutes(client, alpha, auth):
    before = timezone.now()
    response = post_hold(client, auth, hold_body(alpha))
    assert response.status_code == 201, response.content
    body = response.json()
    d = alpha.day.isoformat()
    assert body["start"] == f"{d}T11:00:00-07:00"
    assert body["end"] == f"{d}T11:30:00-07:00"
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert expires.utcoffset() in (timedelta(hours=-7), timedelta(hours=-8))
    assert before + timedelta(minutes=5) <= expires <= timezone.now() + timedelta(minutes=5)
    with cross_tenant("test: inspect"):
        hold = Hold.objects.get(pk=body["id"])
    assert (hold.status, hold.location_id) == (HoldStatus.ACTIVE, alpha.s.location.pk)


def test_the_same_time_given_in_utc_is_the_same_slot(client, alpha, auth):
    start = local(alpha.day, 11).astimezone(UTC).isoformat()
    response = post_hold(client, auth, hold_body(alpha, start=start))
    assert response.status_code == 201, response.content
    assert response.json()["start"].endswith("T11:00:00-07:00")


def test_hold_minutes_is_a_setting(client, alpha, auth, settings):
    settings.HOLD_MINUTES = 2
    response = post_hold(client, auth, hold_body(alpha))
    expires = timezone.datetime.fromisoformat(response.json()["expires_at"])
    assert expires <= timezone.now() + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("hour", "minute", "why"),
    [
        (9, 0, "inside the calendar block"),
        (8, 0, "over the booked appointment, outside working hours"),
        (11, 15, "off the 30-minute grid"),
        (13, 0, "working hours bound to Exam, not Cleaning"),
        (12, 0, "after the working hours"),
    ],
)
def test_a_time_the_schedule_does_not_offer_is_409(client, alpha, auth, hour, minute, why):
    assert_slot_unavailable(post_hold(client, auth, hold_body(alpha, hour, minute)))


def test_lead_time_applies_to_holds(client, alpha, auth):
    with cross_tenant("test data setup"):
        type(alpha.cleaning).objects.filter(pk=alpha.cleaning.pk).update(lead_time_hours=24 * 400)
    assert_slot_unavailable(post_hold(client, auth, hold_body(alpha)))


def test_a_naive_or_garbled_start_is_400(client, alpha, auth):
    for start in ("2026-05-07T11:00:00", "tomorrow at eleven"):
        response = post_hold(client, auth, hold_body(alpha, start=start))
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["start"]
    response = post_hold(client, auth, {})
    assert set(response.json()["errors"]) == {
        "appointment_type_id",
        "provider_id",
        "operatory_id",
        "start",
    }


def test_a_held_slot_cannot_be_held_again_until_released(client, alpha, auth):
    first = post_hold(client, auth, hold_body(alpha))
    assert first.status_code == 201
    assert_slot_unavailable(post_hold(client, auth, hold_body(alpha)))
    assert slot_starts(client, auth, alpha) == ["11:30"]

    assert client.delete(f"/api/v1/holds/{first.json()['id']}", **auth).status_code == 204
    assert slot_starts(client, auth, alpha) == ["11:00", "11:30"]
    assert client.delete(f"/api/v1/holds/{first.json()['id']}", **auth).status_code == 204
    assert post_hold(client, auth, hold_body(alpha)).status_code == 201


def test_an_unknown_hold_is_404_and_a_booked_one_is_not_released(client, alpha, auth):
    response = client.delete("/api/v1/holds/987654321", **auth)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"

    held = post_hold(client, auth, hold_body(alpha)).json()
    with cross_tenant("test: the booking flow marks it booked"):
        Hold.objects.filter(pk=held["id"]).update(status=HoldStatus.BOOKED)
    response = client.delete(f"/api/v1/holds/{held['id']}", **auth)
    assert response.status_code == 409
    assert response.json()["type"] == "hold_booked"
    assert slot_starts(client, auth, alpha) == ["11:30"]  # booked still claims the slot


def test_an_expired_hold_frees_the_slot(client, alpha, auth):
    held = post_hold(client, auth, hold_body(alpha)).json()
    assert slot_starts(client, auth, alpha) == ["11:30"]
    with cross_tenant("test: let the hold run out"):
        Hold.objects.filter(pk=held["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert slot_starts(client, auth, alpha) == ["11:00", "11:30"]
    again = post_hold(client, auth, hold_body(alpha))
    assert again.status_code == 201, again.content
    with cross_tenant("test: inspect"):
        statuses = dict(Hold.objects.values_list("pk", "status"))
    # the claim released the expired hold in its way; the exclusion constraint allowed the new
    assert statuses == {held["id"]: HoldStatus.RELEASED, again.json()["id"]: HoldStatus.ACTIVE}


def test_release_expired_holds_sweeps_only_expired_ones(alpha):
    practice = alpha.s.practice
    now = timezone.now()
    with tenant_context(practice):
        old = alpha.cleaning_hold(11)
        live = alpha.cleaning_hold(11, 30)
        Hold.objects.filter(pk=old.pk).update(expires_at=now - timedelta(minutes=1))
    assert release_expired_holds(practice) == 1
    with tenant_context(practice):
        assert dict(Hold.objects.values_list("pk", "status")) == {
            old.pk: HoldStatus.RELEASED,
            live.pk: HoldStatus.ACTIVE,
        }


def test_the_service_refuses_what_the_engine_does_not_offer(alpha):
    practice = alpha.s.practice
    with tenant_context(practice), pytest.raises(SlotUnavailableError):
        alpha.cleaning_hold(10)


def test_offered_slot_is_the_engines_answer_for_one_start(alpha):
    from scheduling.selectors import offered_slot

    practice = alpha.s.practice
    ids = {"provider_id": alpha.patel.pk, "operatory_id": alpha.op1.pk}
    with tenant_context(practice):
        slot = offered_slot(
            practice, appointment_type_id=alpha.cleaning.pk, start=local(alpha.day, 11), **ids
        )
        assert slot is not None and slot.end == local(alpha.day, 11, 30)
        blocked = local(alpha.day, 9)  # inside the calendar block
        assert (
            offered_slot(practice, appointment_type_id=alpha.cleaning.pk, start=blocked, **ids)
            is None
        )


def test_a_foreign_provider_or_operatory_is_404_and_takes_no_lock(alpha):
    """The type, the ids and the try-locks are one statement: the locks are tried only for
    this practice's own provider and operatory, so another practice's claims are never
    touched."""
    from django.db import connection, transaction

    from scheduling import services

    beta = level_2d(schedule("beta", "Beta Dental"))
    practice = alpha.s.practice

    def locks_held_after(provider_id: int, operatory_id: int) -> int:
        with tenant_context(practice), transaction.atomic(), connection.cursor() as cur:
            try:
                services._type_and_try_lock(practice, alpha.cleaning.pk, provider_id, operatory_id)
            except (type(alpha.patel).DoesNotExist, type(alpha.op1).DoesNotExist):
                pass
            cur.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid()"
            )
            return cur.fetchone()[0]

    # (the test's transaction keeps what each call took: the foreign ids go first)
    assert locks_held_after(beta.patel.pk, alpha.op1.pk) == 0
    assert locks_held_after(alpha.patel.pk, beta.op1.pk) == 0
    assert locks_held_after(alpha.patel.pk, alpha.op1.pk) == 2  # ours: both locks, held


def test_prepared_statements_survive_errors_and_new_connections(transactional_db):
    """Hot statements are prepared once per database session; a failing execution or a
    rolled-back transaction does not confuse the record, and a new connection prepares
    again."""
    from django.db import DataError, connection, transaction

    from scheduling import selectors

    statement = selectors.CompiledQuery("SELECT 10 / %s", ((True, "d"),)).prepare()
    assert statement.rows({"d": 5}) == [(2,)]
    with pytest.raises(DataError), transaction.atomic():
        statement.rows({"d": 0})
    assert statement.rows({"d": 2}) == [(5,)]
    connection.close()
    assert statement.rows({"d": 10}) == [(1,)]
    (other,) = selectors.run_batch([(statement, {"d": 1})])
    assert other == [(10,)]


def test_holds_still_work_on_a_fresh_connection(transactional_db):
    from django.db import connection

    world = level_2d(schedule("alpha", "Alpha Dental"))
    practice = world.s.practice
    for minute in (0, 30):
        with tenant_context(practice):
            hold = world.cleaning_hold(11, minute)
        assert hold.pk and hold.end - hold.start == timedelta(minutes=30)
        connection.close()
    with cross_tenant("test: inspect"):
        assert Hold.objects.filter(status=HoldStatus.ACTIVE).count() == 2


# --- contention through real connections ------------------------------------------------------


def fire_together(url: str, token: str, bodies: list[dict]) -> list[httpx.Response]:
    """POST every body at once: one thread and one HTTP connection each, released together."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict) -> httpx.Response:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http:
            http.get("/api/v1/appointment-types")  # connect and warm up before the barrier
            barrier.wait()
            return http.post("/api/v1/holds", json=body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def tally(responses: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in responses:
        counts[r.status_code] = counts.get(r.status_code, 0) + 1
        if r.status_code == 409:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"] == "slot_unavailable"
    return counts


@pytest.fixture
def live_world(transactional_db, live_server):
    world = level_2d(schedule("alpha", "Alpha Dental"))
    client, _ = api_client(world.s.practice)
    raw, _ = token_for(client)
    return world, raw, live_server.url


def test_mixed_contention_on_a_provider_and_on_an_operatory(live_world):
    """Dr. Patel works in two rooms at once and Dr. Lee shares them: holds for (Patel, op1),
    (Patel, op2), (Lee, op1) and (Lee, op2) at 11:00 collide on the provider or on the room.
    Whatever the interleaving, the winners share neither, and every loser collides with a
    winner (nobody is refused for nothing)."""
    from datetime import time

    world, token, url = live_world
    s = world.s
    op2 = s.operatory(name="Operatory 2")
    lee = s.provider("Dr. Lee")
    s.hours(world.patel, op2, time(11), time(12), [world.cleaning], days=["Thursday"])
    s.hours(lee, world.op1, time(11), time(12), [world.cleaning], days=["Thursday"])
    s.hours(lee, op2, time(11), time(12), [world.cleaning], days=["Thursday"])
    pairs = [(p.pk, o.pk) for p in (world.patel, lee) for o in (world.op1, op2)]
    bodies = [hold_body(world, provider_id=p, operatory_id=o) for p, o in pairs] * 8
    responses = fire_together(url, token, bodies[:30])
    counts = tally(responses)
    assert set(counts) <= {201, 409} and sum(counts.values()) == 30
    winners = [
        (b["provider_id"], b["operatory_id"])
        for b, r in zip(bodies, responses, strict=False)
        if r.status_code == 201
    ]
    assert 1 <= len(winners) <= 2
    assert len({p for p, _ in winners}) == len({o for _, o in winners}) == len(winners)
    for body, response in zip(bodies, responses, strict=False):
        if response.status_code == 409:
            assert any(body["provider_id"] == p or body["operatory_id"] == o for p, o in winners), (
                body
            )
    with cross_tenant("test: inspect"):
        held = set(
            Hold.objects.filter(status=HoldStatus.ACTIVE).values_list("provider_id", "operatory_id")
        )
    assert held == set(winners)


def test_a_claim_waiting_behind_another_gets_its_own_slot_and_is_refused_the_same_one(
    transactional_db,
):
    """A claim finding the provider's locks taken waits for that claim to finish, then leaves
    at once if it took this slot, and otherwise claims normally: nobody is refused for nothing.
    The in-flight claim is played by a transaction holding the locks and an uncommitted hold
    for 11:00; claims for 11:00 and for 11:30 (same provider and room) wait behind it."""
    from django.db import connection, connections, transaction
    from django.test.utils import CaptureQueriesContext

    from scheduling import services

    world = level_2d(schedule("alpha", "Alpha Dental"))
    practice = world.s.practice
    release = threading.Event()
    inserted = threading.Event()

    def in_flight_claim() -> None:
        try:
            with tenant_context(practice), transaction.atomic():
                services._lock_slot(world.patel.pk, world.op1.pk)
                Hold.objects.create(
                    practice=practice,
                    appointment_type=world.cleaning,
                    provider=world.patel,
                    operatory=world.op1,
                    location=world.s.location,
                    start=local(world.day, 11),
                    end=local(world.day, 11, 30),
                    expires_at=timezone.now() + timedelta(minutes=5),
                )
                inserted.set()
                assert release.wait(timeout=60)
        finally:
            connections.close_all()

    statements: dict[tuple[int, int], list[str]] = {}

    def claim(hour: int, minute: int) -> str:
        try:
            with tenant_context(practice), CaptureQueriesContext(connection) as captured:
                try:
                    world.cleaning_hold(hour, minute)
                    return "held"
                except SlotUnavailableError:
                    return "refused"
                finally:
                    statements[hour, minute] = [q["sql"] for q in captured.captured_queries]
        finally:
            connections.close_all()

    def shared_waiters() -> int:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND mode = 'ShareLock'"
            )
            return cur.fetchone()[0]

    with ThreadPoolExecutor(max_workers=3) as pool:
        blocker = pool.submit(in_flight_claim)
        try:
            assert inserted.wait(timeout=30)
            same = pool.submit(claim, 11, 0)
            other = pool.submit(claim, 11, 30)
            deadline = timezone.now() + timedelta(seconds=30)
            while shared_waiters() < 2:  # both wait, neither has answered
                assert timezone.now() < deadline, "the claims never waited for the locks"
                assert not same.done() and not other.done()
        finally:
            release.set()
        blocker.result(timeout=60)
        assert same.result(timeout=60) == "refused"
        assert other.result(timeout=60) == "held"
    # The refused claim left right after its wait, in the same round trip, without queueing
    # for the exclusive locks or reading the schedule; the other one queued, then claimed.
    exclusive = "pg_advisory_xact_lock("
    assert not any(exclusive in sql for sql in statements[11, 0])
    # BEGIN, type and try-locks, wait and check, ROLLBACK (and, on this new connection, the
    # PREPAREs of the statements it uses, once)
    assert len([sql for sql in statements[11, 0] if not sql.startswith("PREPARE ")]) == 4
    assert any(exclusive in sql for sql in statements[11, 30])
    with cross_tenant("test: inspect"):
        held = Hold.objects.filter(status=HoldStatus.ACTIVE).order_by("start")
        assert [h.start.astimezone(UTC) for h in held] == [
            local(world.day, 11).astimezone(UTC),
            local(world.day, 11, 30).astimezone(UTC),
        ]
