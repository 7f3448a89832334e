"""Every change to an audited row is in the trail, whichever way it is made, with who made it.

django-auditlog sees `save()` and `delete()` of instances; PostgreSQL captures the rest
(compliance.capture) with the actor, request id and support session that the audit context
carries into the writing statement's transaction.
"""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from accounts.models import Location
from compliance import audit
from compliance.context import audit_context
from compliance.models import ChangeEntry
from core.tenancy import cross_tenant, tenant_context
from tests.factories import LocationFactory, PracticeFactory, UserFactory

CREATE, UPDATE, DELETE = (
    ChangeEntry.Action.CREATE,
    ChangeEntry.Action.UPDATE,
    ChangeEntry.Action.DELETE,
)


def entries(pk, model=Location):
    ct = ContentType.objects.get_for_model(model)
    with cross_tenant("test: read the change entries"):
        return list(ChangeEntry.objects.filter(content_type=ct, object_pk=str(pk)).order_by("id"))


def captured(entry) -> bool:
    return (entry.additional_data or {}).get("captured_by") == "database"


@pytest.fixture
def acting():
    user = UserFactory()
    values = {
        "request_id": "req-capture-0001",
        "actor_user_id": user.pk,
        "actor_label": user.username,
        "impersonation_session_id": 4242,
        "ip": "203.0.113.7",
        "via": "web",
    }
    with audit_context(**values):
        yield values


def assert_attributed(entry, acting, action):
    assert entry.action == action
    assert entry.cid == acting["request_id"]
    assert entry.actor_id == acting["actor_user_id"]
    assert entry.actor_email == acting["actor_label"]
    assert entry.impersonation_session_id == acting["impersonation_session_id"]
    assert str(entry.remote_addr) == acting["ip"]


@pytest.mark.django_db
def test_changes_the_orm_signals_miss_are_captured_by_the_database_and_attributed(acting):
    practice = PracticeFactory()
    with tenant_context(practice):
        first = LocationFactory(practice=practice, name="Main St")
        second = LocationFactory(practice=practice, name="Harbor")
        third = LocationFactory(practice=practice, name="Hills")
        audit.seal_now()
        before = {pk: len(entries(pk)) for pk in (first.pk, second.pk, third.pk)}

        Location.objects.filter(pk=first.pk).update(name="Main Street")  # QuerySet.update()
        (bulk,) = Location.objects.bulk_create(
            [Location(practice=practice, key="bulk-made", name="Bulk")]
        )
        second.name = "Harbour"
        Location.objects.bulk_update([second], ["name"])
        with connection.cursor() as cur:  # raw SQL from the application
            cur.execute("UPDATE portal_location SET name = %s WHERE id = %s", ["Hilltop", third.pk])
        Location.objects.filter(pk=bulk.pk).delete()  # a queryset's delete()
        audit.seal_now()

    (update,) = entries(first.pk)[before[first.pk] :]
    assert captured(update)
    assert_attributed(update, acting, UPDATE)
    assert update.changes == {"name": ["Main St", "Main Street"]}
    assert update.practice_id == practice.pk
    assert update.additional_data["via"] == "web"

    # The database writes its entries at COMMIT: after auditlog's of the same transaction.
    by_action = {e.action: e for e in entries(bulk.pk)}
    assert sorted(by_action) == [CREATE, DELETE]
    made, gone = by_action[CREATE], by_action[DELETE]
    assert captured(made) and made.changes["name"] == [None, "Bulk"]
    assert_attributed(made, acting, CREATE)
    assert_attributed(gone, acting, DELETE)  # written by auditlog or the database: once

    (bulk_updated,) = entries(second.pk)[before[second.pk] :]
    assert captured(bulk_updated) and bulk_updated.changes == {"name": ["Harbor", "Harbour"]}
    assert_attributed(bulk_updated, acting, UPDATE)

    (raw,) = entries(third.pk)[before[third.pk] :]
    assert captured(raw) and raw.changes == {"name": ["Hills", "Hilltop"]}
    assert_attributed(raw, acting, UPDATE)
    with cross_tenant("test: verify"):
        assert audit.verify_chain(f"practice:{practice.pk}").ok


@pytest.mark.django_db
def test_a_data_migration_through_historical_models_is_captured():
    practice = PracticeFactory()
    with tenant_context(practice):
        location = LocationFactory(practice=practice, name="Old name")
        audit.seal_now()
        before = len(entries(location.pk))
        historical = MigrationExecutor(connection).loader.project_state().apps
        HistoricalLocation = historical.get_model("portal", "Location")  # no auditlog receivers
        with audit_context(via="command:migrate", actor_label="deploy@hello.test"):
            row = HistoricalLocation.objects.get(pk=location.pk)
            row.name = "Migrated name"
            row.save()
        audit.seal_now()
    (entry,) = entries(location.pk)[before:]
    assert captured(entry) and entry.action == UPDATE
    assert entry.changes == {"name": ["Old name", "Migrated name"]}
    assert entry.actor_email == "deploy@hello.test"
    assert entry.additional_data["via"] == "command:migrate"


@pytest.mark.django_db
def test_a_migration_that_changes_audited_rows_then_alters_their_table_goes_through():
    """PostgreSQL refuses ALTER TABLE on a table with deferred trigger events pending: the
    capture's events fire before the schema change, and the change is still recorded."""
    practice = PracticeFactory()
    with tenant_context(practice):
        location = LocationFactory(practice=practice, name="Before")
        audit.seal_now()
        before = len(entries(location.pk))
        table = Location._meta.db_table
        with transaction.atomic(), audit_context(via="command:migrate"):
            Location.objects.filter(pk=location.pk).update(name="After")
            with connection.schema_editor(atomic=False) as editor:
                editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "name" SET DEFAULT \'\'')
                editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "name" DROP DEFAULT')
        audit.seal_now()
    (entry,) = entries(location.pk)[before:]
    assert captured(entry) and entry.changes == {"name": ["Before", "After"]}


@pytest.mark.django_db
def test_orm_saves_and_deletes_are_logged_once_by_auditlog_not_again_by_the_database(acting):
    practice = PracticeFactory()
    with tenant_context(practice):
        location = LocationFactory(practice=practice, name="Once")
        location.name = "Twice"
        location.save()
        location.name = "Thrice"
        location.save(update_fields=["name"])
        pk = location.pk
        location.delete()
        audit.seal_now()
    logged = entries(pk)
    assert [e.action for e in logged] == [CREATE, UPDATE, UPDATE, DELETE]
    assert not any(captured(e) for e in logged)
    assert all(e.cid == acting["request_id"] for e in logged)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_change_is_recorded_once_at_its_commit(acting):
    """Autocommit: the ORM's save runs in a transaction of its own (its entry and the row commit
    together); a QuerySet.update() carries the context in its own round trip."""
    practice = PracticeFactory()
    with tenant_context(practice):
        location = LocationFactory(practice=practice, name="Autocommit")
        assert not connection.in_atomic_block
        location.name = "Saved"
        location.save()
        with CaptureQueriesContext(connection) as queries:
            Location.objects.filter(pk=location.pk).update(name="Updated")
        assert len(queries) == 1  # the context rides in the UPDATE's round trip
    logged = entries(location.pk)
    assert [(e.action, captured(e)) for e in logged] == [
        (CREATE, False),
        (UPDATE, False),
        (UPDATE, True),
    ]
    assert logged[-1].changes == {"name": ["Saved", "Updated"]}
    assert_attributed(logged[-1], acting, UPDATE)


@pytest.mark.django_db
def test_a_change_with_no_audit_context_names_the_database_role():
    practice = PracticeFactory()
    with tenant_context(practice):
        location = LocationFactory(practice=practice)
        with transaction.atomic():
            Location.objects.filter(pk=location.pk).update(name="Anonymous")
        audit.seal_now()
    entry = entries(location.pk)[-1]
    assert captured(entry) and entry.actor_id is None and entry.cid is None
    assert entry.additional_data["via"] == "sql"
    with connection.cursor() as cur:
        cur.execute("SELECT session_user")
        assert entry.additional_data["db_role"] == cur.fetchone()[0]


@pytest.mark.django_db
def test_every_audited_table_carries_the_capture_trigger():
    from compliance.capture import TRIGGER, audited_tables

    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s",
            [TRIGGER],
        )
        with_trigger = {row[0] for row in cur.fetchall()}
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(audited_tables())]
        )
        present = {row[0] for row in cur.fetchall()}  # a test's throwaway model has no table
    assert present <= with_trigger and "portal_location" in present
    assert "scheduling_hold" not in with_trigger  # operational, not audited


# --- Celery: the worker's changes name the request and the client that queued them -----------


def post_booking(portal_url: str, d, key: str, request_id: str) -> int:
    """The voice agent books the desk's next hold through `portal_url`, as request `request_id`."""
    import httpx

    from tests.booking.test_bookings import booking_body

    accepted = httpx.post(
        f"{portal_url}/api/v1/bookings",
        json=booking_body(d.hold()),
        headers={
            "Authorization": f"Bearer {d.token}",
            "Idempotency-Key": key,
            "X-Request-ID": request_id,
        },
        timeout=30,
    )
    assert accepted.status_code == 202, accepted.text
    return int(accepted.json()["id"])


@pytest.mark.worker
def test_a_booking_confirmed_by_the_worker_is_attributed_to_the_request_and_client_that_made_it(
    transactional_db, live_server, settings
):
    from scheduling.models import Booking
    from tests.booking.test_bookings import desk

    with desk(live_server, settings) as d:
        booking_id = post_booking(d.portal_url, d, "capture-1", "req-booking-capture-1")
        d.wait_status(booking_id, "confirmed")
        with cross_tenant("test: the booking's client"):
            client_id = str(Booking.objects.get(pk=booking_id).api_client_id)
    logged = entries(booking_id, Booking)
    created = [e for e in logged if e.action == CREATE]
    # The worker's own changes: it records why the booking still waits with a QuerySet.update()
    # (captured by the database, in the task's transaction).
    by_worker = [e for e in logged if captured(e) and e.additional_data["via"].startswith("task:")]
    assert created and by_worker, [(e.cid, e.changes, e.additional_data) for e in logged]
    assert "pending_reason" in by_worker[0].changes
    # Made by the request, then by the worker for it (the EHR's webhooks that confirm it are
    # requests of their own).
    for entry in [*created, *by_worker]:
        assert entry.cid == "req-booking-capture-1"
        assert entry.api_client_id == client_id


def test_a_task_message_carries_who_queued_it_and_the_task_acts_for_them():
    from types import SimpleNamespace

    from compliance import context as audit_ctx
    from compliance.signals import carry_request_id, enter_task_context, leave_task_context

    headers: dict = {}
    with audit_context(
        request_id="req-task-7",
        actor_user_id=12,
        actor_label="dana@alpha.test",
        api_client_id="",
        impersonation_session_id=99,
    ):
        carry_request_id(headers=headers)
    task = SimpleNamespace(name="scheduling.process_booking", request=SimpleNamespace(**headers))
    enter_task_context(task_id="t-1", task=task)
    try:
        ctx = audit_ctx.current()
        assert (ctx.request_id, ctx.actor_user_id, ctx.actor_label) == (
            "req-task-7",
            12,
            "dana@alpha.test",
        )
        assert ctx.impersonation_session_id == 99 and ctx.via == "task:scheduling.process_booking"
    finally:
        leave_task_context(task_id="t-1")
    assert audit_ctx.current().request_id == ""


@pytest.mark.worker
def test_a_booking_sent_later_by_the_relay_is_attributed_to_the_request_that_made_it(
    transactional_db, live_server, settings
):
    """The API request's own on-commit send fails (the portal's broker is down), so the relay,
    run by the worker as beat runs it, sends the booking later: the worker's changes still name
    the voice agent's request and client, not the relay's run."""
    import httpx

    from booking import tasks
    from ehr_sandbox.testing import wait_until
    from scheduling.models import Booking, OutboxMessage
    from tests.booking.test_bookings import desk
    from tests.workers import free_port, portal_server

    down = f"redis://127.0.0.1:{free_port()}/0"
    with (
        desk(live_server, settings) as d,
        portal_server({"CELERY_BROKER_URL": down, "CELERY_RESULT_BACKEND": down}) as portal,
    ):
        health = httpx.get(f"{portal}/healthz", timeout=10).json()
        assert (health["database"], health["broker"]) == ("ok", "error: OperationalError")
        booking_id = post_booking(portal, d, "relay-capture-1", "req-booking-relayed-1")
        with cross_tenant("test: the booking's outbox row"):
            wait_until(
                lambda: OutboxMessage.objects.filter(booking_id=booking_id, attempts=1).exists(),
                timeout=20,
                message="the on-commit send to fail",
            )
            [message] = OutboxMessage.objects.filter(booking_id=booking_id)
            assert message.dispatched_at is None
            client_id = str(Booking.objects.get(pk=booking_id).api_client_id)
        with audit_context(request_id="req-beat-tick", via="beat"):
            tasks.relay_outbox.apply_async(queue=d.queue)
        d.wait_status(booking_id, "confirmed")
    logged = entries(booking_id, Booking)
    by_worker = [e for e in logged if captured(e) and e.additional_data["via"].startswith("task:")]
    assert by_worker, [(e.cid, e.changes, e.additional_data) for e in logged]
    assert "task:scheduling.process_booking" in {e.additional_data["via"] for e in by_worker}
    for entry in by_worker:
        assert (entry.cid, entry.api_client_id) == ("req-booking-relayed-1", client_id)
