"""The on-call groups migration keeps existing data working: every practice's existing shifts
land in its default group, which protocols naming no group route to."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.tenancy import cross_tenant

BEFORE = [("calls", "0004_note_rejections")]
AFTER = [("calls", "0006_on_call_shift_group_required")]


def _tenancy_guard(state: str) -> None:
    """Unapplying drops a tenant table, which the protected database's DDL guard refuses to the
    application's role: as a deployment would, a superuser switches the guard off around it."""
    conninfo = psycopg.conninfo.make_conninfo(
        settings.DATABASE_SUPERUSER_URL, dbname=connection.settings_dict["NAME"]
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"ALTER EVENT TRIGGER portal_tenancy_guard {state}")


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    _tenancy_guard("DISABLE")
    try:
        executor.migrate(targets)
    finally:
        _tenancy_guard("ENABLE")
    # The models as the database now has them: calls at the target, every other app at its
    # latest migration (only calls was unapplied).
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "calls"]
    return executor.loader.project_state([*targets, *others]).apps


@pytest.fixture
def back_to_the_latest_migrations():
    """The tests after this one expect every app at its latest migration, as before it."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    _migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_migrations")
def test_existing_shifts_join_the_default_group():
    old = _migrate(BEFORE)
    try:
        with cross_tenant("test: data before the migration"):
            Practice = old.get_model("portal", "Practice")
            Provider = old.get_model("scheduling", "Provider")
            Shift = old.get_model("calls", "OnCallShift")
            practice = Practice.objects.create(slug="old", name="Old", timezone="UTC")
            provider = Provider.objects.create(
                practice=practice, key="m", name="Dr. M", on_call_phone="+15555550100"
            )
            start = datetime(2026, 12, 1, tzinfo=UTC)
            Shift.objects.create(
                practice=practice, provider=provider, start=start, end=start.replace(day=2)
            )
    finally:
        new = _migrate(AFTER)
    with cross_tenant("test: data after the migration"):
        shift = new.get_model("calls", "OnCallShift").objects.get(practice_id=practice.pk)
        group = new.get_model("calls", "OnCallGroup").objects.get(pk=shift.group_id)
    assert (group.practice_id, group.key, group.name) == (practice.pk, "on-call", "On call")
