"""The audit tables belong to a role the application cannot act as (compliance.protection).

The test database is protected by the suite's `django_db_setup` (tests/conftest.py), the way
`make run` and a deployment protect theirs, so these tests probe the application role's real
privileges with raw SQL."""

from __future__ import annotations

import io
import threading
import uuid

import psycopg
import psycopg.sql
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from compliance import audit
from compliance.checks import check_audit_tables_protected
from compliance.models import AuditAction
from compliance.protection import (
    AUDIT_TABLES,
    SEALING_FUNCTIONS,
    audit_objects_owned_by,
    protect_audit_tables,
    protect_connected_database,
    sealing_weaknesses,
)
from core.tenancy import tenant_context
from tests.factories import LocationFactory, PracticeFactory
from tests.superuser import superuser_connection
from tests.workers import test_database_url as app_database_url

SEAL_FUNCTION = "compliance_accessevent_enqueue()"


def app_role() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT current_user")
        return cur.fetchone()[0]


def table_privileges(role: str) -> dict[str, set[str]]:
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    with superuser_connection() as su:
        return {
            table: {
                kind
                for kind in kinds
                if su.execute(
                    "SELECT has_table_privilege(%s, %s, %s)", [role, table, kind]
                ).fetchone()[0]
            }
            for table in AUDIT_TABLES
        }


def protect_as_the_suite_does() -> None:
    protect_connected_database(settings.DATABASE_SUPERUSER_URL, test_truncate=True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE compliance_accessevent DISABLE TRIGGER compliance_append_only",
        "ALTER TABLE compliance_changeentry DISABLE TRIGGER USER",
        "ALTER TABLE compliance_auditseal DROP CONSTRAINT IF EXISTS nothing",
        "DROP TABLE compliance_auditseal",
        "DROP TABLE compliance_sealqueue",
        "ALTER FUNCTION compliance_seal_pending(integer, boolean) RENAME TO seal_off",
        "CREATE OR REPLACE FUNCTION compliance_audit_append_only() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        "CREATE TRIGGER sneak AFTER INSERT ON compliance_accessevent"
        " FOR EACH ROW EXECUTE FUNCTION compliance_audit_append_only()",
        "ALTER SCHEMA public OWNER TO CURRENT_USER",
        "SET ROLE portal_audit_owner",
        "SELECT setval(pg_get_serial_sequence('compliance_accessevent', 'id'), 1)",
    ],
)
def test_the_application_role_cannot_take_the_audit_walls_down(statement):
    """What a table's or schema's owner could do to get past the append-only triggers."""
    with (
        pytest.raises(ProgrammingError, match=r"must be owner|permission denied"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(statement.replace("portal_audit_owner", settings.AUDIT_OWNER_ROLE))


@pytest.mark.django_db
def test_the_application_role_keeps_only_reading_and_appending():
    assert table_privileges(app_role()) == {
        "compliance_accessevent": {"SELECT", "INSERT", "TRUNCATE"},
        "compliance_changeentry": {"SELECT", "INSERT", "TRUNCATE"},
        # written by the owner's sealing functions only
        "compliance_auditseal": {"SELECT", "TRUNCATE"},
        "compliance_sealqueue": {"SELECT", "TRUNCATE"},
        # signed by the application's key, kept by the owner
        "compliance_auditcheckpoint": {"SELECT", "INSERT", "TRUNCATE"},
        "compliance_auditsigningkey": {"SELECT", "INSERT", "TRUNCATE"},
    }  # TRUNCATE: only because this is a test database (the flush between tests)


FORGED_SEAL = (
    "INSERT INTO compliance_auditseal"
    " (chain, seq, entry_table, entry_id, prev_hash, hash, version, sealed_at)"
    " VALUES ('practice:1', 999999, 'compliance_accessevent', 999999,"
    " sha256('x'), sha256('y'), 'v1', now())"
)
FORGED_QUEUE_ROW = (
    "INSERT INTO compliance_sealqueue (chain, entry_table, entry_id, version, payload)"
    " VALUES ('practice:1', 'compliance_accessevent', 999999, 'v1', '{}')"
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        FORGED_SEAL,
        "UPDATE compliance_auditseal SET hash = sha256('forged')",
        "DELETE FROM compliance_auditseal",
        FORGED_QUEUE_ROW,
        "UPDATE compliance_sealqueue SET payload = '{}'",
        "DELETE FROM compliance_sealqueue",
    ],
    ids=[
        "insert-seal",
        "update-seal",
        "delete-seal",
        "insert-queue",
        "update-queue",
        "delete-queue",
    ],
)
def test_the_application_role_cannot_write_seals_or_the_seal_queue(statement):
    """A seal the application wrote itself could name any entry with any hash (one forged seal
    made verification report an entry deleted that had never existed)."""
    audit.record(AuditAction.PHI_READ, practice=PracticeFactory(), object_ids=[1])
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(statement)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "function", ["compliance_changeentry_enqueue", "compliance_accessevent_enqueue"]
)
def test_the_sealing_functions_cannot_be_attached_to_a_table_of_the_applications(function):
    """The owner's sealing would seal whatever such a table were fed, hashes of one's choosing
    included (a temporary table of the queue's name and shape, say)."""
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute("CREATE TEMP TABLE compliance_sealqueue (LIKE public.compliance_sealqueue)")
        cur.execute(
            "CREATE CONSTRAINT TRIGGER forge AFTER INSERT ON pg_temp.compliance_sealqueue"
            f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}()"
        )


@pytest.mark.django_db
def test_the_sealing_functions_run_as_the_owner_with_a_fixed_search_path():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig, r.rolname FROM pg_proc p"
            " JOIN pg_roles r ON r.oid = p.proowner"
            " WHERE p.oid = ANY(SELECT to_regprocedure(f) FROM unnest(%s::text[]) AS f)"
            " ORDER BY 1",
            [list(SEALING_FUNCTIONS)],
        )
        rows = cur.fetchall()
        assert sealing_weaknesses(cur, app_role()) == []
    assert rows == [
        (name, True, ["search_path=pg_catalog, public, pg_temp"], settings.AUDIT_OWNER_ROLE)
        for name in sorted(SEALING_FUNCTIONS)
    ]


@pytest.mark.django_db(transaction=True)
def test_sealing_under_the_owner_still_chains_every_entry_and_verifies():
    """Entries of two practices, in one transaction and in several: each sealed into its chain
    after commit by the owner's sealer, nothing left queued, and verify_audit passes."""
    a, b = PracticeFactory(), PracticeFactory()
    with transaction.atomic():
        audit.record(AuditAction.PHI_READ, practice=a, object_ids=[1])
        audit.record(AuditAction.PHI_READ, practice=b, object_ids=[2])
        audit.record(AuditAction.PHI_READ, practice=a, object_ids=[3])
    audit.record(AuditAction.PHI_READ, practice=b, object_ids=[4])
    assert audit.seal_now() >= 4  # the sealer, as the application calls it
    chains = [audit.chain_name(a.pk), audit.chain_name(b.pk)]
    with superuser_connection() as su:
        sealed = dict(
            su.execute(
                "SELECT chain, count(*) FROM compliance_auditseal WHERE chain = ANY(%s)"
                " GROUP BY chain",
                [chains],
            ).fetchall()
        )
        entries = dict(
            su.execute(
                "SELECT 'practice:' || practice_id, count(*) FROM (SELECT practice_id"
                " FROM compliance_accessevent UNION ALL SELECT practice_id"
                " FROM compliance_changeentry) e WHERE practice_id = ANY(%s) GROUP BY 1",
                [[a.pk, b.pk]],
            ).fetchall()
        )
        queued = su.execute("SELECT count(*) FROM compliance_sealqueue").fetchone()[0]
    assert sealed == entries and sealed[chains[0]] >= 2 and queued == 0
    out = io.StringIO()
    call_command("verify_audit", stdout=out)  # raises on a broken chain
    for chain in chains:
        assert f"{chain}: {sealed[chain]} entries, intact" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_protected_trail_is_still_written_sealed_and_verified():
    practice = PracticeFactory()
    audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[1])
    location = LocationFactory(practice=practice)
    with tenant_context(practice):
        location.name = "Renamed"
        location.save()
        report = audit.verify_chain(audit.chain_name(practice.pk))
    assert report.ok and report.entries >= 3


@pytest.mark.django_db
def test_nothing_of_the_trail_is_the_application_roles_and_all_of_it_the_owners():
    with connection.cursor() as cur:
        assert audit_objects_owned_by(cur, app_role()) == []
        owned = audit_objects_owned_by(cur, settings.AUDIT_OWNER_ROLE)
    assert {f"table {t}" for t in AUDIT_TABLES} < set(owned)
    assert f"function {SEAL_FUNCTION}" in owned
    assert "function compliance_audit_append_only()" in owned
    assert "schema public" in owned
    assert check_audit_tables_protected() == []


@pytest.mark.django_db
def test_a_superuser_counts_as_owning_everything():
    """What the deploy check reports for a role that could take the walls down."""
    with superuser_connection() as su:
        name = su.execute("SELECT current_user").fetchone()[0]
        owned = audit_objects_owned_by(su.cursor(), name)
    assert {f"table {t}" for t in AUDIT_TABLES} < set(owned)


@pytest.mark.django_db(transaction=True)
def test_the_command_protects_and_running_it_again_changes_nothing():
    before = table_privileges(app_role())
    out = io.StringIO()
    try:
        call_command("protect_audit_tables", stdout=out)
        call_command("protect_audit_tables", stdout=out)
        # Outside tests nothing may TRUNCATE: the command grants no such thing.
        assert table_privileges(app_role()) == {
            table: privileges - {"TRUNCATE"} for table, privileges in before.items()
        }
    finally:
        protect_as_the_suite_does()  # the suite's flush needs TRUNCATE back
    assert f"owned by {settings.AUDIT_OWNER_ROLE}" in out.getvalue()
    assert table_privileges(app_role()) == before


@pytest.mark.django_db(transaction=True)
def test_two_databases_protected_at_once_both_create_the_owner_role():
    """Roles are the cluster's: two runs protecting at the same moment (parallel test runs,
    say) may both find the role missing; neither may fail for it."""
    role = f"portal_audit_race_{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def protect() -> None:
        try:
            barrier.wait(10)
            protect_audit_tables(
                settings.DATABASE_SUPERUSER_URL,
                database=connection.settings_dict["NAME"],
                app_role=app_role(),
                owner_role=role,
                test_truncate=True,
            )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=protect) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with connection.cursor() as cur:
            assert {f"table {t}" for t in AUDIT_TABLES} < set(audit_objects_owned_by(cur, role))
    finally:
        protect_as_the_suite_does()
        with superuser_connection() as su:
            su.execute(
                psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(role))
            )


@pytest.mark.django_db
def test_the_command_needs_a_superuser():
    with pytest.raises(CommandError, match="superuser URL is needed"):
        call_command("protect_audit_tables", superuser_url="")
    with pytest.raises(CommandError, match="needs a superuser"):
        call_command("protect_audit_tables", superuser_url=app_database_url())


@pytest.mark.django_db
def test_the_owner_must_be_another_role():
    with pytest.raises(ValueError, match="other than"):
        protect_audit_tables(
            settings.DATABASE_SUPERUSER_URL,
            database=connection.settings_dict["NAME"],
            app_role=app_role(),
            owner_role=app_role(),
        )
