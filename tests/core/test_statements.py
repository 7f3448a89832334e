"""Statements prepared on the server once per session (core.statements)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from compliance import audit
from compliance.models import AccessEvent, AuditAction
from core.statements import execute_prepared
from core.tenancy import tenant_context
from tests.factories import PracticeFactory


def prepared_here() -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM pg_prepared_statements")
        return {row[0] for row in cur.fetchall()}


@pytest.mark.django_db
def test_a_statement_is_prepared_once_per_session_outside_the_query_log():
    sql = "SELECT %s::int + %s::int WHERE 'x%%' LIKE 'x%%'"  # a text no other test prepares
    before = prepared_here()
    with CaptureQueriesContext(connection) as first:
        assert execute_prepared(sql, [1, 2]) == 1
    [name] = prepared_here() - before
    with CaptureQueriesContext(connection) as second:
        assert execute_prepared(sql, [3, 4]) == 1
    assert prepared_here() - before == {name}
    assert [q["sql"] for q in first.captured_queries] == [f"EXECUTE {name}(1, 2)"]
    assert [q["sql"] for q in second.captured_queries] == [f"EXECUTE {name}(3, 4)"]


@pytest.mark.django_db
def test_audit_inserts_stay_prepared_across_rollbacks():
    """psycopg's own preparation would DEALLOCATE ALL after a ROLLBACK (a savepoint's too):
    ours outlives both, and the writes after them still land."""
    practice = PracticeFactory()
    with tenant_context(practice), transaction.atomic():
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])
        names = prepared_here()
        with pytest.raises(RuntimeError), transaction.atomic():
            audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[2])
            raise RuntimeError("rolled back to the savepoint")
        assert prepared_here() >= names
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[3])
        audit.seal_now()
        ids = sorted(
            AccessEvent.objects.filter(practice_id=practice.pk).values_list("object_ids", flat=True)
        )
    assert ids == [["1"], ["3"]]
    with tenant_context(practice):
        report = audit.verify_chain(audit.chain_name(practice.pk))
    assert report.ok and report.first_break is None


@pytest.mark.django_db
def test_a_prepare_in_a_broken_transaction_fails_as_any_statement_would():
    with transaction.atomic():
        before = prepared_here()
        connection.needs_rollback = True  # as after an error inside atomic(savepoint=False)
        try:
            with pytest.raises(TransactionManagementError):
                execute_prepared("SELECT %s::int /* broken-transaction test */", [1])
        finally:
            connection.needs_rollback = False
        assert prepared_here() == before  # nothing was sent


@pytest.mark.django_db
def test_audit_id_blocks_are_drawn_out_of_the_query_log():
    """A list page records one access event; whether that request also draws a block of ids
    must not change its query count (pages assert constant counts)."""
    practice = PracticeFactory()
    counts = []
    with tenant_context(practice):
        for n in range(2 * audit.ID_BLOCK + 1):  # crosses at least two block boundaries
            with CaptureQueriesContext(connection) as queries:
                audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[n])
            counts.append(len(queries.captured_queries))
        ids = list(AccessEvent.objects.filter(practice_id=practice.pk).values_list("pk", flat=True))
    assert set(counts) == {1}
    assert len(set(ids)) == len(ids) == 2 * audit.ID_BLOCK + 1
