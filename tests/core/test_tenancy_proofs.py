"""Row-level security trusts a tenant setting only with its proof (core.tenancy).

Everything here runs as the application's role, with statements any SQL it sends could carry:
`set_config` of every `app.*` setting, replayed proofs, a new registration, reads of the key
tables. None of them may show another practice's PHI rows."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from compliance.protection import tenancy_weaknesses
from core.tenancy import (
    CROSS_TENANT_SETTING,
    PRACTICE_SETTING,
    PROOF_SETTINGS,
    cross_tenant,
    scope_raw_connection,
    tenant_context,
)
from tests.calls.factories import TURNS, desk_for
from tests.factories import PracticeFactory

pytestmark = pytest.mark.django_db

# The PHI a practice holds: patients, bookings (reason, demographics), calls (transcripts),
# encounter notes and the wrapped data keys that decrypt all of it.
PHI_TABLES = (
    "scheduling_patient",
    "scheduling_booking",
    "calls_call",
    "compliance_practicedatakey",
)
APP_SETTINGS = (PRACTICE_SETTING, CROSS_TENANT_SETTING, *PROOF_SETTINGS.values())


@pytest.fixture
def two_practices():
    """Practice `a` (ours) and `b`, each with a patient, a booking and a call with a
    transcript (which creates its data keys)."""
    practices = []
    for _ in range(2):
        desk = desk_for(PracticeFactory())
        patient = desk.patient()
        booking = desk.booking(patient=patient)
        desk.call(turns=TURNS, booking=booking)
        practices.append(desk.practice)
    return practices


def visible(cur, practice_id: int) -> dict[str, int]:
    counts = {}
    for table in PHI_TABLES:
        cur.execute(f"SELECT count(*) FROM {table} WHERE practice_id = %s", [practice_id])
        counts[table] = cur.fetchone()[0]
    return counts


NOTHING = dict.fromkeys(PHI_TABLES, 0)


def everything(counts: dict[str, int]) -> bool:
    return set(counts) == set(PHI_TABLES) and all(counts.values())


def current(cur, name: str) -> str:
    cur.execute("SELECT coalesce(current_setting(%s, true), '')", [name])
    return cur.fetchone()[0]


def set_all(cur, values: dict[str, str]) -> None:
    for name, value in values.items():
        cur.execute("SELECT set_config(%s, %s, false)", [name, value])


def forged_settings(cur, a: int, b: int) -> Iterator[tuple[str, dict[str, str]]]:
    """What a statement in a's request could set, given what it can read there."""
    own_practice_proof = current(cur, PROOF_SETTINGS[PRACTICE_SETTING])
    yield "cross-tenant on", {CROSS_TENANT_SETTING: "on"}
    yield "the other practice's id", {PRACTICE_SETTING: str(b)}
    yield "its id with our proof", {PRACTICE_SETTING: str(b)}
    yield (
        "cross-tenant with our practice proof",
        {CROSS_TENANT_SETTING: "on", PROOF_SETTINGS[CROSS_TENANT_SETTING]: own_practice_proof},
    )
    yield (
        "every app setting, random proofs",
        {
            PRACTICE_SETTING: str(b),
            CROSS_TENANT_SETTING: "on",
            PROOF_SETTINGS[PRACTICE_SETTING]: secrets.token_hex(32),
            PROOF_SETTINGS[CROSS_TENANT_SETTING]: secrets.token_hex(32),
        },
    )
    yield (
        "every app setting, empty proofs",
        dict.fromkeys(APP_SETTINGS, "")
        | {
            PRACTICE_SETTING: str(b),
            CROSS_TENANT_SETTING: "on",
        },
    )
    yield "the practice id padded", {PRACTICE_SETTING: f" {b}"}
    yield "a different spelling of on", {CROSS_TENANT_SETTING: "ON"}


def test_no_setting_a_statement_can_make_shows_another_practices_phi(two_practices):
    a, b = two_practices
    with tenant_context(a), connection.cursor() as cur:
        assert everything(visible(cur, a.pk))
        assert visible(cur, b.pk) == NOTHING
        for label, values in list(forged_settings(cur, a.pk, b.pk)):
            with transaction.atomic():
                set_all(cur, values)
                assert visible(cur, b.pk) == NOTHING, label
                transaction.set_rollback(True)  # back to a's own settings


def test_registering_again_gives_nothing_to_compute_a_proof_with(two_practices):
    """The nonce a registration answers is no key: whatever a statement derives from it in SQL
    proves nothing (and this session's own proofs stop verifying)."""
    a, b = two_practices
    with tenant_context(a), connection.cursor() as cur, transaction.atomic():
        cur.execute("SELECT portal_tenancy_register()")
        nonce = bytes(cur.fetchone()[0])
        cur.execute(
            "SELECT encode(hmac_like, 'hex') FROM (SELECT sha256(%s || convert_to(%s, 'UTF8'))"
            " AS hmac_like) x",
            [nonce, "app.cross_tenant=on"],
        )
        guess = cur.fetchone()[0]
        set_all(cur, {CROSS_TENANT_SETTING: "on", PROOF_SETTINGS[CROSS_TENANT_SETTING]: guess})
        assert visible(cur, b.pk) == NOTHING
        assert visible(cur, a.pk) == NOTHING  # our proofs were for the replaced key
        transaction.set_rollback(True)
    with tenant_context(a), connection.cursor() as cur:
        assert everything(visible(cur, a.pk))


@pytest.mark.django_db(transaction=True)
def test_a_proof_from_another_session_does_not_verify_in_this_one(two_practices):
    """Another session's statements can be seen in pg_stat_activity; its proofs are its own."""
    a, b = two_practices
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        scope_raw_connection(other, b.pk)
        assert everything(visible(other.cursor(), b.pk))
        harvested = other.execute(
            "SELECT current_setting(%s)", [PROOF_SETTINGS[PRACTICE_SETTING]]
        ).fetchone()[0]
    with tenant_context(a), connection.cursor() as cur, transaction.atomic():
        set_all(cur, {PRACTICE_SETTING: str(b.pk), PROOF_SETTINGS[PRACTICE_SETTING]: harvested})
        assert visible(cur, b.pk) == NOTHING
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_a_session_that_never_registered_sees_nothing_whatever_it_sets(two_practices):
    _, b = two_practices
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as raw:
        cur = raw.cursor()
        scope_raw_connection(raw, b.pk)
        assert everything(visible(cur, b.pk))  # the rows are there for a registered session
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as raw:
        cur = raw.cursor()
        set_all(cur, {PRACTICE_SETTING: str(b.pk), CROSS_TENANT_SETTING: "on"})
        assert visible(cur, b.pk) == NOTHING


@pytest.mark.parametrize("table", ["portal_tenancy_secret", "portal_tenancy_session"])
def test_the_application_role_cannot_read_or_write_the_keys(table):
    for statement in (
        f"SELECT * FROM {table}",
        f"DELETE FROM {table}",
        f"UPDATE {table} SET inner_pad = inner_pad",
    ):
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(statement)


def test_leaving_a_block_does_not_launder_a_setting_a_statement_made(two_practices):
    """Settings are restored with the proofs they had, never re-proved: a practice id a
    statement set inside a's block stays unproven after a nested block ends."""
    a, b = two_practices
    with tenant_context(a), connection.cursor() as cur:
        set_all(cur, {PRACTICE_SETTING: str(b.pk)})
        with cross_tenant("test: a job nested in the request"):
            pass
        with tenant_context(a):
            pass
        assert current(cur, PRACTICE_SETTING) == str(b.pk)
        assert visible(cur, b.pk) == NOTHING


def test_the_legitimate_modes_still_see_what_they_should(two_practices):
    a, b = two_practices
    with connection.cursor() as cur:
        assert visible(cur, b.pk) == NOTHING
        with tenant_context(b):
            assert everything(visible(cur, b.pk))
            assert visible(cur, a.pk) == NOTHING
        with cross_tenant("test: a sweep"):
            assert everything(visible(cur, a.pk)) and everything(visible(cur, b.pk))
        assert visible(cur, a.pk) == NOTHING


def test_no_policy_trusts_the_bare_settings_and_the_keys_are_the_owners():
    with connection.cursor() as cur:
        cur.execute("SELECT current_user")
        assert tenancy_weaknesses(cur, cur.fetchone()[0]) == []


def test_the_proofs_are_checked_once_per_statement_not_per_row(two_practices):
    """Each policy function is an init plan of the statement (list pages scan many rows)."""
    a, _ = two_practices
    with tenant_context(a), connection.cursor() as cur:
        cur.execute("EXPLAIN (COSTS OFF) SELECT * FROM scheduling_patient")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert plan.count("InitPlan") == 2, plan
    assert "SubPlan" not in plan, plan


def test_the_deploy_check_passes_with_this_processs_secret_only(settings):
    from core.checks import check_tenancy_proofs
    from core.tenancy import _KEYS, register_session

    assert check_tenancy_proofs() == []
    raw = connection.connection
    saved = _KEYS[raw]  # the test's rollback restores the session's row to match it
    settings.SECRET_KEY = "another-deployments-secret-key-entirely-0123456789"
    try:
        register_session(raw)
        assert [w.id for w in check_tenancy_proofs()] == ["portal.W002"]
    finally:
        _KEYS[raw] = saved


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE scheduling_patient NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE scheduling_patient DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON scheduling_patient",
        "CREATE POLICY everything ON scheduling_patient USING (true)",
        "ALTER POLICY tenant_isolation ON scheduling_patient USING (true)",
        "ALTER POLICY tenant_isolation ON calls_call TO portal_audit_owner",
    ],
)
def test_the_owner_of_a_tenant_table_cannot_take_its_policy_down(statement):
    """The application's role owns the tenant tables (its migrations create them); what an
    owner could otherwise do to see every practice's rows."""
    with (
        pytest.raises(ProgrammingError, match=r"cannot be weakened|permission denied"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(statement.replace("portal_audit_owner", django_settings.AUDIT_OWNER_ROLE))


def test_migrations_of_tenant_tables_go_on_and_a_new_tenant_table_is_walled():
    from core.tenancy import rls_sql

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("ALTER TABLE scheduling_patient ADD COLUMN probe integer")
        cur.execute("CREATE TABLE probe_tenant (id bigint PRIMARY KEY, practice_id bigint)")
        for statement in rls_sql("probe_tenant"):
            cur.execute(statement)
        with pytest.raises(ProgrammingError, match="cannot be weakened"), transaction.atomic():
            cur.execute("ALTER TABLE probe_tenant NO FORCE ROW LEVEL SECURITY")
        transaction.set_rollback(True)
