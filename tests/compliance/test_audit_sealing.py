"""Cheap on the request path: writers only append; one sealer seals after commit, in order.

Costs are counted in statements (round trips), which do not depend on the machine's hour.
"""

from __future__ import annotations

import io
import threading

import pytest
from auditlog.context import disable_auditlog
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test.utils import CaptureQueriesContext

from accounts.models import Location
from compliance import audit, sealer
from compliance.models import AccessEvent, AuditAction, AuditSeal, SealQueue
from compliance.tasks import seal_audit
from core.tenancy import cross_tenant, tenant_context
from ehr_sandbox.testing import wait_until
from tests.factories import LocationFactory, PracticeFactory


def advisory_locks_held() -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        return cur.fetchone()[0]


def seals(chain: str) -> int:
    return AuditSeal.objects.filter(chain=chain).count()


@pytest.mark.django_db
def test_an_audited_phi_read_is_one_statement_with_no_lock_and_no_seal():
    practice = PracticeFactory()
    chain = audit.chain_name(practice.pk)
    with tenant_context(practice), transaction.atomic():
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[0])  # warm up
        audit.seal_now()
    with tenant_context(practice), transaction.atomic():
        before, locks = seals(chain), advisory_locks_held()  # the test's seal_now() holds one
        with CaptureQueriesContext(connection) as queries:
            event = audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])
        assert len(queries) == 1
        assert advisory_locks_held() == locks  # no chain lock taken
        assert seals(chain) == before
        assert SealQueue.objects.filter(entry_id=event.pk).exists()
    assert seals(chain) == before  # committed: queued, not sealed
    assert audit.seal_now() >= 1
    assert seals(chain) == before + 1


def statements(action) -> int:
    with CaptureQueriesContext(connection) as queries:
        action()
    return len(queries)


@pytest.mark.django_db
def test_an_audited_write_adds_at_most_two_statements():
    practice = PracticeFactory()
    with tenant_context(practice), transaction.atomic():
        a = LocationFactory(practice=practice, name="A")
        b = LocationFactory(practice=practice, name="B")
        fresh_a = Location.objects.get(pk=a.pk)
        fresh_b = Location.objects.get(pk=b.pk)

        def rename(location, name):
            def run():
                location.name = name
                location.save()

            return run

        with disable_auditlog():
            plain = statements(rename(fresh_a, "A2"))
            plain_create = statements(
                lambda: Location.objects.create(practice=practice, key="p", name="P")
            )
        audited = statements(rename(fresh_b, "B2"))
        audited_create = statements(
            lambda: Location.objects.create(practice=practice, key="q", name="Q")
        )
        audited_update = statements(
            lambda: Location.objects.filter(pk=a.pk).update(name="A3")  # captured by PostgreSQL
        )
    assert audited - plain <= 2
    assert audited_create - plain_create <= 2
    assert audited_update == 1


@pytest.mark.django_db
def test_unsealed_entries_are_append_only_too():
    practice = PracticeFactory()
    event = audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])
    assert SealQueue.objects.filter(entry_id=event.pk).exists()
    for statement in (
        "UPDATE compliance_accessevent SET reason = 'changed' WHERE id = %s",
        "DELETE FROM compliance_accessevent WHERE id = %s",
    ):
        with (
            pytest.raises(ProgrammingError, match=r"append-only|permission denied"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(statement, [event.pk])


@pytest.mark.django_db
def test_the_sealer_seals_in_the_order_entries_were_written():
    practice = PracticeFactory()
    ids = [
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[i]).pk for i in range(6)
    ]
    audit.seal_now()
    order = list(
        AuditSeal.objects.filter(entry_table="compliance_accessevent", entry_id__in=ids)
        .order_by("seq")
        .values_list("entry_id", flat=True)
    )
    assert order == ids


@pytest.mark.django_db(transaction=True)
def test_only_one_sealer_runs_at_a_time():
    practice = PracticeFactory()
    audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first_sealer() -> None:
        try:
            with transaction.atomic():
                assert sealer.seal_batch(wait=False) >= 1
                holding.set()  # the lock is held until this transaction ends
                release.wait(timeout=60)
        except BaseException as exc:
            errors.append(exc)
            holding.set()
        finally:
            connection.close()

    thread = threading.Thread(target=first_sealer)
    thread.start()
    assert holding.wait(timeout=60)
    try:
        assert sealer.seal_batch(wait=False) is None  # the other one is at work
        assert seal_audit() == 0  # the beat task returns at once too
    finally:
        release.set()
        thread.join(timeout=60)
    assert not errors, errors
    audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[2])
    assert seal_audit() == 1


@pytest.mark.django_db(transaction=True)
def test_verify_audit_reports_how_many_entries_await_sealing():
    practice = PracticeFactory()
    for i in range(3):
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[i])
    waiting = sealer.awaiting()  # these, and the practice's own creation and keys
    assert waiting >= 3
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert f"{waiting} entries await sealing" in out.getvalue()
    assert "chain(s) intact" in out.getvalue()
    assert sealer.awaiting() == 0


@pytest.mark.django_db(transaction=True)
def test_the_following_sealer_seals_committed_entries_when_notified():
    practice = PracticeFactory()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sealer.follow(stop=stop.is_set, idle_seconds=30)  # woken by NOTIFY, not the timer
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        event = audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])

        def sealed() -> bool:
            with cross_tenant("test: seal state"):
                return AuditSeal.objects.filter(
                    entry_table="compliance_accessevent", entry_id=event.pk
                ).exists()

        wait_until(sealed, timeout=20, interval=0.02, message="the entry to be sealed")
    finally:
        stop.set()
        # wake it for the stop: one more committed entry notifies it
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[2])
        thread.join(timeout=60)
    assert not thread.is_alive() and not errors, errors
    with cross_tenant("test"):
        assert AccessEvent.objects.filter(practice_id=practice.pk).count() == 2


@pytest.mark.django_db
def test_the_seal_audit_command_seals_what_is_queued():
    practice = PracticeFactory()
    audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])
    queued = sealer.awaiting()
    out = io.StringIO()
    call_command("seal_audit", stdout=out)
    assert out.getvalue().strip() == f"sealed {queued} entries; 0 await sealing"
