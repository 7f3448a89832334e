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
    audit_objects_owned_by,
    protect_audit_tables,
    protect_connected_database,
)
from portal.tenancy import tenant_context
from tests.factories import LocationFactory, PracticeFactory
from tests.superuser import superuser_connection
from tests.workers import test_database_url as app_database_url

SEAL_FUNCTION = "compliance_audit_seal_entry()"


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
        "ALTER FUNCTION compliance_audit_seal_entry() RENAME TO seal_off",
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
        "compliance_auditseal": {"SELECT", "INSERT", "TRUNCATE"},
        # its rows are deleted by the sealing trigger as soon as they are written
        "compliance_sealqueue": {"SELECT", "INSERT", "DELETE", "TRUNCATE"},
    }  # TRUNCATE: only because this is a test database (the flush between tests)


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
