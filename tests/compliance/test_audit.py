"""The audit trail: access events and change entries, append-only, hash-chained, verifiable."""

from __future__ import annotations

import io
import threading

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.db.utils import ProgrammingError
from django.test.utils import CaptureQueriesContext
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Location, Membership, Role
from compliance import audit
from compliance.context import audit_context
from compliance.models import (
    AccessEvent,
    AuditAction,
    AuditAppendOnly,
    AuditSeal,
    ChangeEntry,
)
from core.tenancy import cross_tenant, tenant_context
from tests.conftest import current_totp
from tests.factories import (
    PASSWORD,
    LocationFactory,
    PracticeFactory,
    UserFactory,
)
from tests.superuser import superuser_connection

AUDIT_TABLES = ("compliance_accessevent", "compliance_changeentry", "compliance_auditseal")


def all_events(**filters):
    with cross_tenant("test: read the audit trail"):
        return list(AccessEvent.objects.filter(**filters).order_by("id"))


def verify(chain):
    with cross_tenant("test: verify"):
        return audit.verify_chain(chain)


# --- writing, context, tenancy ---------------------------------------------------------------


@pytest.mark.django_db
def test_record_takes_actor_and_request_from_the_context_and_seals_into_the_practice_chain():
    practice = PracticeFactory()
    user = UserFactory()
    with audit_context(
        request_id="req-0001abcd",
        actor_user_id=user.pk,
        actor_label=user.username,
        ip="203.0.113.9",
        user_agent="pytest",
    ):
        event = audit.record(
            AuditAction.PHI_READ,
            practice=practice,
            object_type="calls.transcript",
            object_ids=[17, 18],
            reason="patient called back",
        )
    audit.seal_now()
    with tenant_context(practice):
        stored = AccessEvent.objects.get(pk=event.pk)

    assert (stored.actor_user_id, stored.actor_label) == (user.pk, user.username)
    assert (stored.request_id, stored.ip, stored.user_agent) == (
        "req-0001abcd",
        "203.0.113.9",
        "pytest",
    )
    assert stored.object_ids == ["17", "18"] and stored.practice_id == practice.pk
    seal = AuditSeal.objects.get(entry_table="compliance_accessevent", entry_id=event.pk)
    previous = AuditSeal.objects.get(chain=seal.chain, seq=seal.seq - 1)  # the practice's set-up
    assert seal.chain == f"practice:{practice.pk}"
    assert bytes(seal.prev_hash) == bytes(previous.hash)
    report = verify(f"practice:{practice.pk}")
    assert report.ok and report.entries == seal.seq and report.head_hash == bytes(seal.hash)


@pytest.mark.django_db
def test_rows_are_readable_only_in_their_practice_or_cross_tenant_but_anyone_appends():
    alpha, beta = PracticeFactory(), PracticeFactory()
    audit.record(AuditAction.PHI_READ, practice=alpha, object_type="x")  # no tenant scope needed
    audit.record(AuditAction.PHI_READ, practice=beta, object_type="x")
    audit.record(AuditAction.LOGIN, practice=None)
    assert AccessEvent.objects.count() == 0
    with tenant_context(alpha):
        assert list(AccessEvent.objects.values_list("practice_id", flat=True)) == [alpha.pk]
    with tenant_context(beta):  # and nobody's global rows
        assert list(AccessEvent.objects.values_list("practice_id", flat=True)) == [beta.pk]
    assert len(all_events()) == 3


@pytest.mark.django_db
def test_configuration_changes_become_change_entries_with_tenant_actor_and_request_id():
    practice = PracticeFactory()
    user = UserFactory()
    with audit_context(request_id="req-cfg-0001", actor_user_id=user.pk, actor_label=user.username):
        with tenant_context(practice):
            location = Location.objects.create(practice=practice, key="main", name="Main")
            location.name = "Main Office"
            location.save()
        Membership.objects.create(user=user, practice=practice, role=Role.FRONT_DESK)
    with tenant_context(practice):
        entries = list(ChangeEntry.objects.order_by("id"))
    labels = [(e.content_type.model, e.action) for e in entries]
    assert ("location", ChangeEntry.Action.CREATE) in labels
    assert ("location", ChangeEntry.Action.UPDATE) in labels
    assert ("membership", ChangeEntry.Action.CREATE) in labels
    update = next(e for e in entries if e.action == ChangeEntry.Action.UPDATE)
    assert update.changes["name"] == ["Main", "Main Office"]
    assert {e.practice_id for e in entries} == {practice.pk}
    ours = [e for e in entries if e.content_type.model in ("location", "membership")]
    assert {e.cid for e in ours} == {"req-cfg-0001"}
    assert update.actor_id == user.pk
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db
def test_encrypted_fields_are_redacted_in_change_entries(phi_model):
    audit.register_model(phi_model)
    practice = PracticeFactory()
    patient = phi_model.objects.create(practice_id=practice.pk, first_name="Anabelle")
    patient.first_name = "Annabel"
    patient.save()
    with cross_tenant("test"):
        entries = list(ChangeEntry.objects.filter(object_pk=str(patient.pk)).order_by("id"))
    assert entries and entries[-1].changes["first_name"] == ["[encrypted]", "[encrypted]"]
    for entry in entries:
        assert "Anabelle" not in str(entry.changes) and "Annabel" not in str(entry.changes)
        assert "phone_index" not in entry.changes


def location_updates(practice):
    with tenant_context(practice):
        return list(
            ChangeEntry.objects.filter(
                content_type__model="location", action=ChangeEntry.Action.UPDATE
            ).order_by("id")
        )


@pytest.mark.django_db
def test_a_loaded_row_is_diffed_against_its_loaded_state_without_reading_it_again():
    practice = PracticeFactory()
    LocationFactory(practice=practice, key="main", name="Main")
    with tenant_context(practice), transaction.atomic():
        location = Location.objects.get(practice=practice, key="main")
        location.name = "Main Office"
        location.timezone = "America/Denver"
        with CaptureQueriesContext(connection) as queries:
            location.save()
        audit.seal_now()
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert reads == []
    [entry] = location_updates(practice)
    assert entry.changes == {
        "name": ["Main", "Main Office"],
        "timezone": ["", "America/Denver"],
    }
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db
def test_an_audit_row_saved_through_the_model_is_one_insert_and_still_signals_listeners():
    practice = PracticeFactory()
    heard = []

    def listener(sender, instance, created, **kwargs):
        heard.append((instance.pk, created))

    with tenant_context(practice), transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            quiet = AccessEvent(practice_id=practice.pk, action=AuditAction.PHI_READ)
            quiet.save()
        post_save.connect(listener, sender=AccessEvent, dispatch_uid="test-listener")
        try:
            heard_one = AccessEvent(practice_id=practice.pk, action=AuditAction.PHI_READ)
            heard_one.save()
        finally:
            post_save.disconnect(sender=AccessEvent, dispatch_uid="test-listener")
        audit.seal_now()
        assert not quiet._state.adding and quiet._state.db == "default"
        assert AccessEvent.objects.filter(pk__in=[quiet.pk, heard_one.pk]).count() == 2
    assert len(queries.captured_queries) == 1  # its INSERT (an id block drawn is not logged)
    assert heard == [(heard_one.pk, True)]
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db
def test_saving_again_is_diffed_against_what_the_last_save_wrote_without_reading_the_row():
    practice = PracticeFactory()
    with tenant_context(practice), transaction.atomic():
        location = Location.objects.create(practice=practice, key="main", name="Main")
        with CaptureQueriesContext(connection) as queries:
            location.name = "Main Office"
            location.save()
            location.timezone = "America/Denver"
            location.save(update_fields=["timezone"])
            location.name = "Front"
            location.save()
        audit.seal_now()
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if sql.startswith("SELECT")]
    # each save: its change entry (one statement, which held) and the UPDATE
    assert len(statements) == 6
    assert [entry.changes for entry in location_updates(practice)] == [
        {"name": ["Main", "Main Office"]},
        {"timezone": ["", "America/Denver"]},
        {"name": ["Main Office", "Front"]},
    ]
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db
def test_saving_a_loaded_row_unchanged_records_nothing():
    practice = PracticeFactory()
    LocationFactory(practice=practice, key="main", name="Main")
    with tenant_context(practice), transaction.atomic():
        location = Location.objects.get(practice=practice, key="main")
        with CaptureQueriesContext(connection) as queries:
            location.save()
    assert location_updates(practice) == []
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert reads == [reads[0]] and reads[0].startswith("SELECT EXISTS")  # one probe, no ORM read


@pytest.mark.django_db
def test_a_row_changed_since_it_was_loaded_records_the_value_that_was_in_the_row():
    practice = PracticeFactory()
    LocationFactory(practice=practice, key="main", name="Main")
    with tenant_context(practice), transaction.atomic():
        location = Location.objects.get(practice=practice, key="main")
        Location.objects.filter(pk=location.pk).update(name="Renamed elsewhere")
        location.name = "Main Office"
        location.save()
        # In memory nothing changed from the loaded state, but the row did: still recorded.
        again = Location.objects.get(pk=location.pk)
        Location.objects.filter(pk=location.pk).update(name="Renamed again")
        again.save()
    names = [entry.changes["name"] for entry in location_updates(practice)]
    assert names == [["Renamed elsewhere", "Main Office"], ["Renamed again", "Main Office"]]
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db(transaction=True)
def test_a_row_committed_by_another_transaction_since_it_was_loaded_is_diffed_from_the_row():
    practice = PracticeFactory()
    LocationFactory(practice=practice, key="main", name="Main")

    def rename_elsewhere() -> None:
        try:
            with tenant_context(practice), transaction.atomic():
                Location.objects.filter(practice=practice, key="main").update(name="Theirs")
        finally:
            connection.close()

    with tenant_context(practice), transaction.atomic():
        location = Location.objects.get(practice=practice, key="main")
        other = threading.Thread(target=rename_elsewhere)
        other.start()
        other.join()
        location.name = "Ours"
        location.save()
    by_orm = [e for e in location_updates(practice) if not e.additional_data]
    by_database = [e for e in location_updates(practice) if e.additional_data]
    [ours] = by_orm
    assert ours.changes["name"] == ["Theirs", "Ours"]
    [theirs] = by_database  # the queryset update, captured by PostgreSQL
    assert theirs.changes["name"] == ["Main", "Theirs"]
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db
def test_deferred_fields_and_update_fields_still_record_true_changes():
    practice = PracticeFactory()
    LocationFactory(practice=practice, key="main", name="Main", timezone="")
    with tenant_context(practice), transaction.atomic():
        partial = Location.objects.only("id", "practice_id", "name").get(practice=practice)
        partial.name = "Partial"
        partial.save(update_fields=["name"])
        location = Location.objects.get(practice=practice, key="main")
        location.name = "Named"
        location.timezone = "America/Denver"
        location.save(update_fields=["name"])  # the time zone is not written, nor recorded
    changes = [entry.changes for entry in location_updates(practice)]
    assert changes == [{"name": ["Main", "Partial"]}, {"name": ["Partial", "Named"]}]


@pytest.mark.django_db
def test_entries_wait_in_the_queue_until_sealed_and_a_non_utc_session_seals_the_same_hashes():
    practice = PracticeFactory()
    with connection.cursor() as cur:
        cur.execute("SET TIME ZONE 'America/New_York'")
    try:
        with transaction.atomic():
            audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])
            audit.record(AuditAction.LOGIN, practice=None)
            audit.seal_now()
            with connection.cursor() as cur:
                cur.execute("SELECT current_setting('TimeZone')")
                assert cur.fetchone()[0] == "America/New_York"
            audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[2])
    finally:
        with connection.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM compliance_sealqueue")
        assert cur.fetchone()[0] == 1  # written after the last seal_now(): awaits the sealer
    assert verify(f"practice:{practice.pk}").ok
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM compliance_sealqueue")
        assert cur.fetchone()[0] == 0
    assert verify(audit.GLOBAL_CHAIN).ok
    sealed = AuditSeal.objects.filter(
        chain=f"practice:{practice.pk}", entry_table="compliance_accessevent"
    )
    assert sealed.count() == 2


# --- sign-in events through the real views ---------------------------------------------------


def allow_another_try(device: TOTPDevice) -> None:
    """Undo the throttling and replay protection a failed try leaves, so the test goes on."""
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.last_t = -1
    device.save()


@pytest.mark.django_db
def test_sign_in_and_second_factor_events_are_recorded_with_request_metadata(client):
    user = UserFactory()
    headers = {"HTTP_X_REQUEST_ID": "login-req-000001", "HTTP_USER_AGENT": "Firefox/999"}
    client.post("/accounts/login/", {"username": user.username, "password": "wrong"}, **headers)
    client.post("/accounts/login/", {"username": "nobody@example.test", "password": "x"}, **headers)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}, **headers)
    client.get("/accounts/2fa/setup/", **headers)
    device = TOTPDevice.objects.get(user=user)
    client.post("/accounts/2fa/setup/", {"token": "000000"}, **headers)
    allow_another_try(device)
    client.post("/accounts/2fa/setup/", {"token": current_totp(device)}, **headers)
    client.post("/accounts/logout/", **headers)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}, **headers)
    client.post("/accounts/2fa/verify/", {"token": "000000"}, **headers)
    allow_another_try(device)
    client.post("/accounts/2fa/verify/", {"token": current_totp(device)}, **headers)

    events = all_events()
    assert [e.action for e in events] == [
        "login_failed",
        "login_failed",
        "login",
        "2fa.failed",
        "2fa.enrolled",
        "logout",
        "login",
        "2fa.failed",
        "2fa.verified",
    ]
    assert events[0].actor_label == user.username and events[0].details == {
        "username": user.username
    }
    assert events[1].details == {"username": "nobody@example.test"}
    assert events[2].actor_user_id == user.pk
    assert events[3].details == {"stage": "enrolment"} and events[7].details == {
        "stage": "verification"
    }
    assert {e.request_id for e in events} == {"login-req-000001"}
    assert {e.user_agent for e in events} == {"Firefox/999"}
    assert {e.ip for e in events} == {"127.0.0.1"}
    assert {e.practice_id for e in events} == {None}
    assert verify(audit.GLOBAL_CHAIN).ok


@pytest.mark.django_db
def test_a_throttled_sign_in_records_the_refusal(client, settings):
    settings.SIGN_IN_FREE_FAILURES = 2
    user = UserFactory()
    for _ in range(2):
        client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    events = all_events(action="login_failed")
    assert len(events) == 3
    assert events[-1].reason == "sign-in throttled" and events[-1].actor_user_id == user.pk


# --- append-only ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_application_role_cannot_update_delete_or_truncate_audit_rows():
    practice = PracticeFactory()  # each write commits (and is sealed) on its own
    event = audit.record(AuditAction.PHI_READ, practice=practice)
    LocationFactory(practice=practice)
    with connection.cursor() as cur, cross_tenant("test: try to tamper"):
        for table in AUDIT_TABLES:
            # Refused by privilege first (compliance.protection; the test database is protected
            # as production is) ...
            for sql in (
                f"UPDATE {table} SET id = id",
                f"DELETE FROM {table}",
                f"DELETE FROM {table} WHERE false",  # refused even when it would touch nothing
            ):
                with (
                    pytest.raises(ProgrammingError, match="permission denied"),
                    transaction.atomic(),
                ):
                    cur.execute(sql)
            # ... and by the append-only trigger: TRUNCATE is granted here only for the flush
            # between tests, and a session without the test flag is still refused.
            with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
                cur.execute("SET LOCAL compliance.test_truncate = 'off'")
                cur.execute(f"TRUNCATE {table}")
    with pytest.raises(AuditAppendOnly):
        event.save()
    with pytest.raises(AuditAppendOnly):
        event.delete()
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db(transaction=True)
def test_the_append_only_triggers_refuse_even_a_role_with_every_privilege():
    """The second wall, for a misgrant: a superuser (triggers on, as any session has them) is
    refused UPDATE, DELETE and TRUNCATE all the same."""
    practice = PracticeFactory()
    audit.record(AuditAction.PHI_READ, practice=practice)
    LocationFactory(practice=practice)
    with superuser_connection() as su:
        for table in AUDIT_TABLES:
            for sql in (
                f"UPDATE {table} SET id = id",
                f"DELETE FROM {table} WHERE false",
                f"TRUNCATE {table}",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                    su.execute(sql)
    assert verify(f"practice:{practice.pk}").ok


@pytest.mark.django_db
def test_every_column_of_the_audit_tables_is_sealed():
    with connection.cursor() as cur:
        for model in audit.ENTRY_MODELS:
            table = model._meta.db_table
            cur.execute(
                "SELECT encode(tgargs, 'escape') FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND tgname = %s",
                [table, f"{table}_seal"],
            )
            version, columns, _ = cur.fetchone()[0].split("\\000")
            assert version == "v1"
            assert tuple(columns.split(",")) == audit.SEALED_COLUMNS["v1"][table]
            assert set(columns.split(",")) == {f.column for f in model._meta.concrete_fields}


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_32_concurrent_writers_do_not_fork_the_chains():
    alpha, beta = PracticeFactory(), PracticeFactory()
    writers, per_writer = 32, 12
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            for i in range(per_writer):
                target = (alpha, beta, None)[(n + i) % 3]
                with transaction.atomic():
                    audit.record(AuditAction.PHI_READ, practice=target, object_ids=[n, i])
                    if i % 4 == 0 and target is not None:
                        with tenant_context(target):
                            Location.objects.create(practice=target, key=f"w{n}-{i}", name="x")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [t for t in threads if t.is_alive()]
    assert not errors, errors[:3]

    total = 0
    for chain in (f"practice:{alpha.pk}", f"practice:{beta.pk}", audit.GLOBAL_CHAIN):
        report = verify(chain)
        assert report.ok, report.first_break
        total += report.entries
    with cross_tenant("test"):
        rows = AccessEvent.objects.count() + ChangeEntry.objects.count()
    assert total == rows >= writers * per_writer
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "chain(s) intact" in out.getvalue()


# --- tampering outside the application --------------------------------------------------------


def verify_audit_output(*args: str) -> str:
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit", *args, stdout=out)
    return out.getvalue() + str(failed.value)


def seq_of(entry_id: int) -> int:
    return AuditSeal.objects.get(entry_table="compliance_accessevent", entry_id=entry_id).seq


def seeded_practice(slug: str, events: int = 5):
    practice = PracticeFactory(slug=slug)
    ids = [
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[i], reason=f"r{i}").pk
        for i in range(events)
    ]
    audit.seal_now()  # as the sealer would have by then
    return practice, ids


@pytest.mark.django_db(transaction=True)
def test_verify_audit_reports_the_first_broken_link_after_superuser_tampering():
    clean, _ = seeded_practice("clean")
    altered, altered_ids = seeded_practice("altered")
    _deleted, deleted_ids = seeded_practice("deleted")
    cut, _ = seeded_practice("cut")
    forged, _ = seeded_practice("forged")
    call_command("verify_audit", stdout=io.StringIO())  # all intact before anyone tampers
    seq, digest = audit.chain_head(cut.pk)  # as an earlier export's manifest recorded it
    anchor = f"practice:{cut.pk}={seq}:{digest.hex()}"

    with superuser_connection(triggers=False) as su:
        su.execute(
            "UPDATE compliance_accessevent SET reason = 'nothing to see' WHERE id = %s",
            [altered_ids[2]],
        )
        su.execute("DELETE FROM compliance_accessevent WHERE id = %s", [deleted_ids[3]])
        su.execute(
            "DELETE FROM compliance_auditseal WHERE chain = %s AND seq > 3", [f"practice:{cut.pk}"]
        )
        su.execute(  # an entry slipped in with the sealing trigger off
            "INSERT INTO compliance_accessevent (occurred_at, practice_id, action, actor_label, "
            "api_client_id, object_type, object_ids, request_id, user_agent, reason, details) "
            "VALUES (now(), %s, 'phi.read', 'ghost', '', '', '{}', '', '', '', '{}')",
            [forged.pk],
        )

    out = verify_audit_output("--anchor", anchor)
    assert f"practice:{clean.pk}: {seq_of(altered_ids[-1])} entries, intact" in out
    assert (
        f"practice:{altered.pk}: BROKEN: chain practice:{altered.pk}: first broken link at seq "
        f"{seq_of(altered_ids[2])} (compliance_accessevent #{altered_ids[2]}): content does not "
        "match its hash" in out
    )
    assert (
        f"seq {seq_of(deleted_ids[3])} (compliance_accessevent #{deleted_ids[3]}): the sealed "
        "entry is missing" in out
    )
    assert f"practice:{cut.pk}: BROKEN" in out and f"anchored head seq {seq} is gone" in out
    assert f"practice:{forged.pk}: BROKEN" in out and "was never sealed" in out
    one = verify_audit_output("--practice", "altered")
    assert f"#{altered_ids[2]}" in one and "clean" not in one


@pytest.mark.django_db(transaction=True)
def test_a_relinked_chain_is_caught_too():
    practice, ids = seeded_practice("relinked", events=4)
    chain = f"practice:{practice.pk}"
    gone = seq_of(ids[1])
    with superuser_connection(
        triggers=False
    ) as su:  # cut out an entry and renumber the rest: no gap left
        su.execute("DELETE FROM compliance_auditseal WHERE chain = %s AND seq = %s", [chain, gone])
        su.execute("DELETE FROM compliance_accessevent WHERE id = %s", [ids[1]])
        su.execute(
            "UPDATE compliance_auditseal SET seq = -seq WHERE chain = %s AND seq > %s",
            [chain, gone],
        )
        su.execute(
            "UPDATE compliance_auditseal SET seq = -seq - 1 WHERE chain = %s AND seq < 0", [chain]
        )
    report = verify(chain)
    assert not report.ok
    assert report.first_break.seq == gone and report.first_break.entry_id == ids[2]
    assert "prev_hash" in report.first_break.problem


# --- Celery: the originating request id travels with the task --------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_queued_by_a_request_writes_change_entries_with_that_request_id():
    from compliance.models import BusinessAssociateAgreement
    from compliance.services import upsert_baa_from_config
    from compliance.tasks import expire_agreements
    from tests.workers import celery_worker

    practice = PracticeFactory()
    agreement = upsert_baa_from_config(
        practice,
        {
            "status": "executed",
            "signed_by": "Dana Reyes",
            "executed_on": "2020-01-01",
            "effective_on": "2020-01-01",
            "expires_on": "2021-01-01",
        },
    )
    with celery_worker() as (_proc, queue):
        with audit_context(request_id="req-queued-0042", actor_user_id=None):
            result = expire_agreements.apply_async(queue=queue)
        assert result.get(timeout=60) == 1
    with tenant_context(practice):
        assert BusinessAssociateAgreement.objects.get(pk=agreement.pk).status == "expired"
        entry = ChangeEntry.objects.filter(
            object_pk=str(agreement.pk), action=ChangeEntry.Action.UPDATE
        ).get()
    assert entry.cid == "req-queued-0042"
    assert entry.actor_id is None  # the system acted, for that request
    assert entry.changes["status"] == ["executed", "expired"]
    assert verify(f"practice:{practice.pk}").ok


# --- API tokens --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_issuing_an_api_token_is_recorded_on_the_clients_practice_chain(client, settings):
    from tests.receptionist_api.factories import api_client

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    practice = PracticeFactory()
    api, secret = api_client(practice)
    response = client.post(
        "/api/v1/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": api.application.client_id,
            "client_secret": secret,
        },
        HTTP_X_REQUEST_ID="token-req-0001",
    )
    assert response.status_code == 200, response.content
    raw = response.json()["access_token"]
    (event,) = all_events(action="api_token.issued")
    assert event.practice_id == practice.pk
    assert event.api_client_id == api.application.client_id
    assert event.request_id == "token-req-0001"
    assert event.object_type == "oauth2_provider.accesstoken" and len(event.object_ids) == 1
    assert raw not in str(event.details) and raw not in event.object_ids


@pytest.mark.django_db
def test_an_action_without_a_label_is_refused_and_every_action_has_one():
    """The audit browser labels and filters by AuditAction: an unlabelled action would show raw
    and could not be filtered for."""
    practice = PracticeFactory()
    with tenant_context(practice), pytest.raises(ValueError, match="unknown audit action"):
        audit.record("made.up", practice=practice)  # type: ignore[arg-type]
    assert all(label and label != value for value, label in AuditAction.choices)
    with tenant_context(practice):
        assert AccessEvent.objects.filter(action="made.up").count() == 0
