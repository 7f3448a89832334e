"""Inbound webhooks: real signed deliveries from the sandbox, replayed to the receiver (signature,
freshness, duplicates, reordering, synced working-hour replacement), and one end to end through a
live portal and a real Celery worker."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from core.tenancy import cross_tenant, scope_raw_connection, tenant_context
from ehr import services, tasks
from ehr.models import DeliveryStatus, EHRConnection, WebhookDelivery
from ehr.nexhealth import webhooks
from ehr_sandbox.testing import ReceivedWebhook, WebhookReceiver, wait_until
from scheduling.models import Appointment, WorkingHour
from scheduling.selectors import available_slots
from tests.ehr.conftest import World, build_world, resign

LA = ZoneInfo("America/Los_Angeles")


def url(world: World) -> str:
    return f"/integrations/webhooks/nexhealth/{world.conn.pk}"


def replay(client, world: World, message: ReceivedWebhook, **overrides):
    """POST a captured delivery to our receiver exactly as the sandbox sent it."""
    headers = {
        "HTTP_X_SIGNATURE": message.headers["x-signature"],
        "HTTP_X_TIMESTAMP": message.headers["x-timestamp"],
        "HTTP_X_DELIVERY_ID": message.headers["x-delivery-id"],
        **overrides,
    }
    return client.post(url(world), data=message.body, content_type="application/json", **headers)


@pytest.fixture
def hooked(ehr, db, receiver: WebhookReceiver) -> World:
    """A connected practice whose EHR webhooks are captured (not yet delivered to the portal)."""
    world = build_world(ehr, public_url=receiver.url.removesuffix("/hooks"), register_webhooks=True)
    services.sync_connection(world.conn)
    return world


def day_ahead(days: int) -> date:
    return timezone.now().astimezone(LA).date() + timedelta(days=days)


def staff_book(world: World, start: datetime, minutes: int = 30, **extra) -> dict:
    return world.ehr_appointment(
        {
            "provider_id": world.provider_id,
            "operatory_id": world.operatory_id,
            "start_time": start.isoformat(),
            "minutes": minutes,
            **extra,
        }
    )


def of(event: str, ehr_id: int | None = None):
    def match(message: ReceivedWebhook) -> bool:
        body = message.json
        if body["event"] != event:
            return False
        return ehr_id is None or body["data"].get("appointment", {}).get("id") == ehr_id

    return match


def mirror_appointment(world: World, ehr_id: int) -> Appointment | None:
    with tenant_context(world.practice):
        return Appointment.objects.filter(ehr_id=ehr_id).first()


def deliveries(world: World) -> list[WebhookDelivery]:
    with tenant_context(world.practice):
        return list(WebhookDelivery.objects.filter(connection=world.conn).order_by("id"))


def test_registration_gives_the_connection_an_encrypted_secret(hooked):
    conn = hooked.reload()
    endpoint = hooked.ok("GET", f"/webhook_endpoints/{conn.webhook_endpoint_id}")
    assert conn.webhook_secret == endpoint["secret_key"]
    assert endpoint["target_url"].endswith(f"/integrations/webhooks/nexhealth/{conn.pk}")
    with cross_tenant("test: read the raw column"):
        raw = EHRConnection.objects.filter(pk=conn.pk).values_list("webhook_secret", "api_key")[0]
    assert endpoint["secret_key"].encode() not in bytes(raw[0])
    assert b"test-api-key" not in bytes(raw[1])
    # Connecting again keeps the endpoint (no second one) and its secret.
    services.register_webhook_endpoint(conn, public_url=conn.webhook_target_url.split("/int")[0])
    assert len(hooked.ok("GET", "/webhook_endpoints")) == 1


def test_a_signed_delivery_is_stored_once_and_applied(hooked, receiver, client, eager_celery):
    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    response = replay(client, hooked, message)
    assert response.status_code == 200 and response.json() == {"ok": True, "duplicate": False}
    row = mirror_appointment(hooked, appt["id"])
    assert row is not None and not row.cancelled
    again = replay(client, hooked, message)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    [delivery] = deliveries(hooked)
    assert delivery.status == DeliveryStatus.PROCESSED and delivery.attempts == 1
    assert delivery.payload["data"]["appointment"]["id"] == appt["id"]  # decrypts
    with cross_tenant("test: the stored payload is ciphertext"):
        raw = WebhookDelivery.objects.filter(pk=delivery.pk).values_list("payload", flat=True)[0]
    assert b"appointment_created" not in bytes(raw)
    # A second run of the task (a redelivered Celery message) changes nothing.
    assert webhooks.process_delivery(delivery.pk, hooked.practice.pk) == "processed"
    assert deliveries(hooked)[0].attempts == 1


def test_a_bad_signature_is_refused_and_changes_nothing(hooked, receiver, client, eager_celery):
    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    tampered = ReceivedWebhook(
        message.path,
        message.headers,
        message.body.replace(b'"cancelled":false', b'"cancelled":true'),
    )
    assert tampered.body != message.body
    assert replay(client, hooked, tampered).status_code == 401
    forged = resign(message.body, "not-the-secret", int(time.time()))
    assert replay(client, hooked, message, **forged).status_code == 401
    missing = client.post(url(hooked), data=message.body, content_type="application/json")
    assert missing.status_code == 401
    assert deliveries(hooked) == [] and mirror_appointment(hooked, appt["id"]) is None


def test_an_unknown_connection_is_answered_as_a_bad_signature(hooked, receiver, client):
    """A prober must not learn which connection ids exist: same status, same body."""
    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    forged = resign(message.body, "not-the-secret", int(time.time()))
    known = replay(client, hooked, message, **forged)
    headers = {k: v for k, v in message.headers.items() if k.startswith("x-")}
    unknown = client.post(
        f"/integrations/webhooks/nexhealth/{hooked.conn.pk + 999_999}",
        data=message.body,
        content_type="application/json",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
    )
    unsigned = client.post(
        f"/integrations/webhooks/nexhealth/{hooked.conn.pk + 999_999}",
        data=message.body,
        content_type="application/json",
    )
    assert known.status_code == unknown.status_code == unsigned.status_code == 401
    assert known.content == unknown.content == unsigned.content
    assert deliveries(hooked) == []


def test_a_signed_body_without_a_delivery_id_is_refused(hooked, receiver, client, eager_celery):
    """Without an id inside the signed body a delivery cannot be deduplicated: 400, nothing
    stored, however the unsigned header is set."""
    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    secret = hooked.reload().webhook_secret
    for value in (None, "", 12345):
        payload = dict(message.json)
        if value is None:
            del payload["delivery_id"]
        else:
            payload["delivery_id"] = value
        body = json.dumps(payload).encode()
        for header in ("fresh-header-1", "fresh-header-2"):
            response = client.post(
                url(hooked),
                data=body,
                content_type="application/json",
                HTTP_X_DELIVERY_ID=header,
                **resign(body, secret, int(time.time())),
            )
            assert response.status_code == 400, (value, response.content)
    assert deliveries(hooked) == [] and mirror_appointment(hooked, appt["id"]) is None


def test_stale_or_future_timestamps_are_refused(hooked, receiver, client, eager_celery):
    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    secret = hooked.reload().webhook_secret
    stale = resign(message.body, secret, int(time.time()) - 301)
    assert replay(client, hooked, message, **stale).status_code == 401
    future = resign(message.body, secret, int(time.time()) + 400)
    assert replay(client, hooked, message, **future).status_code == 401
    fresh = resign(message.body, secret, int(time.time()) - 250)  # within five minutes
    assert replay(client, hooked, message, **fresh).status_code == 200
    assert mirror_appointment(hooked, appt["id"]) is not None


def test_duplicated_deliveries_are_processed_once(hooked, receiver, client, eager_celery):
    hooked.admin("PATCH", "/_admin/faults", {"webhook_duplicate_share": 1.0})
    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    first, second = receiver.wait_for(of("appointment_created", appt["id"]), count=2)
    assert first.body == second.body  # same delivery id: a duplicate, not a new event
    assert [replay(client, hooked, m).json()["duplicate"] for m in (first, second)] == [False, True]
    [delivery] = deliveries(hooked)
    assert delivery.attempts == 1
    with tenant_context(hooked.practice):
        assert Appointment.objects.filter(ehr_id=appt["id"]).count() == 1


def test_reordered_deliveries_converge_on_the_latest_state(hooked, receiver, client, eager_celery):
    """The sandbox sends newest first (reorder fault); a late "created" must not resurrect a
    cancelled appointment, and a late earlier move must not undo a later one."""
    hooked.admin("PATCH", "/_admin/faults", {"webhook_reorder_window_ms": 2000})
    day = day_ahead(5)
    cancelled = staff_book(hooked, datetime.combine(day, clock(9), LA))
    hooked.admin(
        "PATCH", f"/_admin/ehr/appointments/{cancelled['id']}", {"appt": {"cancelled": True}}
    )
    moved = staff_book(hooked, datetime.combine(day, clock(13), LA))
    for hour in (14, 15):
        start = datetime.combine(day, clock(hour), LA)
        hooked.admin(
            "PATCH",
            f"/_admin/ehr/appointments/{moved['id']}",
            {
                "appt": {
                    "start_time": start.isoformat(),
                    "end_time": (start + timedelta(minutes=30)).isoformat(),
                }
            },
        )
    messages = receiver.wait_for(lambda m: m.json["event"].startswith("appointment_"), count=5)
    order = [(m.json["event"], m.json["data"]["appointment"]["id"]) for m in messages]
    assert order.index(("appointment_updated", cancelled["id"])) < order.index(
        ("appointment_created", cancelled["id"])
    ), "the sandbox did not reorder"
    for message in messages:
        assert replay(client, hooked, message).status_code == 200
    gone = mirror_appointment(hooked, cancelled["id"])
    assert gone is None or gone.cancelled
    latest = mirror_appointment(hooked, moved["id"])
    assert latest is not None and latest.start == datetime.combine(day, clock(15), LA)
    outcomes = sorted(d.outcome for d in deliveries(hooked))
    assert "stale" in outcomes


def test_synced_working_hours_are_replaced_not_merged(ehr, db, receiver, client, eager_celery):
    world = build_world(
        ehr, mode="synced", public_url=receiver.url.removesuffix("/hooks"), register_webhooks=True
    )
    first = world.ehr_working_hours(
        [
            {
                "operatory_id": world.operatory_id,
                "begin_time": "09:00",
                "end_time": "12:00",
                "days": ["Monday"],
            },
            {
                "operatory_id": world.operatory_id,
                "begin_time": "13:00",
                "end_time": "17:00",
                "days": ["Monday"],
                "label": "Exam",
            },
        ]
    )
    services.sync_connection(world.conn)
    old_ids = {w["id"] for w in first}
    with tenant_context(world.practice):
        assert set(WorkingHour.objects.values_list("ehr_id", flat=True)) == old_ids
    receiver.wait_for(of("working_hours_updated"))
    receiver.received.clear()
    special = day_ahead(9)
    replaced = world.admin(
        "PUT",
        "/_admin/ehr/working_hours",
        {
            "location_id": world.lid,
            "provider_id": world.provider_id,
            "working_hours": [
                {
                    "operatory_id": world.operatory2_id,
                    "begin_time": "08:00",
                    "end_time": "11:00",
                    "specific_date": special.isoformat(),
                    "label": "Hygiene",
                    "appointment_type_ids": [world.type_id],
                }
            ],
        },
    )
    assert set(replaced["deleted_ids"]) == old_ids
    [message] = receiver.wait_for(of("working_hours_updated"))
    assert replay(client, world, message).status_code == 200
    with tenant_context(world.practice):
        [row] = WorkingHour.objects.all()
        assert row.ehr_id == replaced["working_hours"][0]["id"] and row.ehr_id not in old_ids
        assert (row.source, row.label, row.specific_date) == ("synced", "Hygiene", special)
        assert row.operatory.ehr_id == world.operatory2_id
        assert list(row.appointment_types.values_list("ehr_id", flat=True)) == [world.type_id]


def test_an_insertion_result_goes_through_the_booking_hook(hooked, receiver, client, eager_celery):
    from ehr.nexhealth.client import client_for

    api = client_for(hooked.reload())
    patient = api.create_patient(first_name="Ana", last_name="Lopez")
    accepted = api.create_appointment(
        patient_id=patient.id,
        provider_id=hooked.provider_id,
        operatory_id=hooked.operatory_id,
        start=datetime.combine(day_ahead(6), clock(10), LA),
        appointment_type_id=hooked.type_id,
    )
    [message] = receiver.wait_for(of("appointment_insertion", accepted.id))
    assert message.json["event_name"] == "appointment_insertion.complete"
    assert replay(client, hooked, message).status_code == 200
    row = mirror_appointment(hooked, accepted.id)
    assert row is not None and not row.cancelled
    assert tasks.queue_for("bookings") == "bookings"


# --- end to end: the EHR -> a live portal -> a real worker -> availability ---------------------


def _other_sessions() -> set[int]:
    """Sessions on the test database besides this thread's (the portal role sees its own)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return {int(row[0]) for row in cur.fetchall()}


@pytest.mark.worker
def test_end_to_end_a_cancellation_in_the_ehr_frees_the_slot(
    transactional_db, live_server, settings
):
    """The sandbox posts real webhooks to a live portal; a real worker applies them; the slot
    shows in availability again as soon as the cancellation is processed.

    The test runs its own sandbox and stops it at the end: its webhook client keeps HTTP
    connections alive, and with them live-server threads holding database sessions."""
    from ehr_sandbox.testing import SandboxServer
    from tests.ehr.conftest import API_KEY
    from tests.workers import celery_worker

    before = _other_sessions()  # sessions earlier tests left are not this test's to wait for
    extra = ["--insertion-delay-ms", "30", "--time-scale", "0.001"]
    with SandboxServer(api_keys=[API_KEY], extra_args=extra) as ehr, celery_worker() as (_, queue):
        settings.INTEGRATIONS_QUEUES = {"bookings": queue, "sync": queue}
        world = build_world(ehr, public_url=live_server.url, register_webhooks=True)
        day = day_ahead(8)
        world.working_hours([day.strftime("%A")])
        cleaning = world.bookable_type()
        ten = datetime.combine(day, clock(10), LA)

        def ten_is_free() -> bool:
            with tenant_context(world.practice):
                slots = available_slots(
                    world.practice, appointment_type_id=cleaning.pk, start_date=day, days=1
                )
            return any(s.start == ten for s in slots)

        assert ten_is_free()
        patient = world.ehr_patient({"first_name": "Ana", "last_name": "Lopez"})
        booked = staff_book(world, ten, patient_id=patient["id"], appointment_type_id=world.type_id)
        wait_until(lambda: not ten_is_free(), timeout=30, message="the booking to take the slot")
        world.admin(
            "PATCH", f"/_admin/ehr/appointments/{booked['id']}", {"appt": {"cancelled": True}}
        )
        wait_until(ten_is_free, timeout=30, message="the cancellation to free the slot")
        row = mirror_appointment(world, booked["id"])
        assert row is not None and row.cancelled
        delivered = world.admin("GET", "/_admin/webhooks")["deliveries"]
        assert {d["status"] for d in delivered} == {"delivered"}
        assert all(d["last_status_code"] == 200 for d in delivered)
        stored = [json.dumps(d.event) for d in deliveries(world)]
        assert len(stored) == len(delivered)
        world.api.close()
    wait_until(
        lambda: not (_other_sessions() - before),
        timeout=20,
        message="this test's live-server sessions to close",
    )


def test_without_a_baa_in_force_nothing_is_stored(hooked, receiver, client, eager_celery):
    from compliance import services as baa_services
    from compliance.gate import agreement_in_force

    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    agreement = agreement_in_force(hooked.practice)
    baa_services.terminate(agreement, reason="practice left", at=timezone.now())
    assert replay(client, hooked, message).status_code == 403
    assert deliveries(hooked) == [] and mirror_appointment(hooked, appt["id"]) is None


def test_a_delivery_whose_task_was_lost_is_queued_again(hooked, receiver, eager_celery):
    appt = staff_book(hooked, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    with tenant_context(hooked.practice):
        _, created = webhooks.record_delivery(
            hooked.reload(), message.json["delivery_id"], message.json
        )  # stored, but its task never ran
    assert created and mirror_appointment(hooked, appt["id"]) is None
    assert tasks.requeue_stale_webhooks.delay(older_than_seconds=0).get() == 1
    assert deliveries(hooked)[0].status == DeliveryStatus.PROCESSED
    assert mirror_appointment(hooked, appt["id"]) is not None
    assert tasks.requeue_stale_webhooks.delay(older_than_seconds=0).get() == 0


def test_processing_a_delivery_locks_the_delivery_row_only(
    ehr, transactional_db, receiver, eager_celery
):
    """A booking's COMMIT takes KEY SHARE on its connection's and location's rows (its deferred
    foreign keys) while a webhook is processed: processing must not need FOR UPDATE on those
    rows (it did, through the joined rows of its delivery lock, and the two deadlocked under
    the booking benchmark's burst)."""
    import psycopg
    from django.db import connection

    world = build_world(ehr, public_url=receiver.url.removesuffix("/hooks"), register_webhooks=True)
    services.sync_connection(world.conn)
    appt = staff_book(world, datetime.combine(day_ahead(4), clock(10), LA))
    [message] = receiver.wait_for(of("appointment_created", appt["id"]))
    conn = world.reload()
    with tenant_context(world.practice):
        delivery, _ = webhooks.record_delivery(conn, message.json["delivery_id"], message.json)
    with psycopg.connect(**connection.get_connection_params()) as booking:
        scope_raw_connection(booking, conn.practice_id)
        booking.execute(
            "SELECT 1 FROM portal_location WHERE id = %s FOR KEY SHARE", [conn.location_id]
        )
        booking.execute(
            "SELECT 1 FROM integrations_ehrconnection WHERE id = %s FOR KEY SHARE", [conn.pk]
        )  # held until the block ends: psycopg opened a transaction
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '5s'")  # a conflicting lock fails instead of hanging
        try:
            webhooks.process_delivery(delivery.pk, world.practice.pk)
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET lock_timeout")
    assert deliveries(world)[0].status == DeliveryStatus.PROCESSED
    assert mirror_appointment(world, appt["id"]) is not None
