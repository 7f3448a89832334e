"""Row-level tenancy: the application filter and PostgreSQL row-level security as a second wall.

Every tenant-owned table carries `practice_id` and a policy that shows a row only when it belongs to
the practice named in the session setting `app.practice_id`. Requests set it from the URL's
practice (see `portal.middleware.TenantMiddleware`), tasks from the ids they are given. Work that
legitimately spans practices says so with `cross_tenant(reason)`, which is logged; with neither,
a connection sees no tenant rows at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connection, models
from django.db.migrations.operations.base import Operation

if TYPE_CHECKING:
    from portal.models import Practice

log = logging.getLogger("portal.tenancy")

PRACTICE_SETTING = "app.practice_id"
CROSS_TENANT_SETTING = "app.cross_tenant"
POLICY_NAME = "tenant_isolation"


def _get(name: str) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(current_setting(%s, true), '')", [name])
        return str(cur.fetchone()[0])


def _swap(values: dict[str, str]) -> dict[str, str]:
    """Set session settings and return their previous values, in one round trip: this runs
    twice per request and per task."""
    names = list(values)
    reads = ", ".join(f"coalesce(current_setting(%s, true), '') AS p{i}" for i in range(len(names)))
    writes = ", ".join("set_config(%s, %s, false)" for _ in names)
    params: list[str] = [*names]
    for name in names:
        params += [name, values[name]]
    with connection.cursor() as cur:
        # The materialised CTE reads the old values before the outer query overwrites them.
        cur.execute(
            f"WITH prev AS MATERIALIZED (SELECT {reads}) SELECT prev.*, {writes} FROM prev",  # noqa: S608 - placeholders only
            params,
        )
        row = cur.fetchone()
    return dict(zip(names, (str(v) for v in row[: len(names)]), strict=True))


@contextmanager
def _settings(values: dict[str, str]) -> Iterator[None]:
    previous = _swap(values)
    try:
        yield
    finally:
        try:
            _swap(previous)
        except DatabaseError:
            # An aborted transaction cannot run set_config; a fresh connection starts clean.
            connection.close()


def current_practice_id() -> int | None:
    value = _get(PRACTICE_SETTING)
    return int(value) if value else None


@contextmanager
def tenant_context(practice: Practice | int) -> Iterator[None]:
    """Scope this connection to one practice (a request or a task working for it)."""
    practice_id = practice if isinstance(practice, int) else practice.pk
    with _settings({PRACTICE_SETTING: str(practice_id), CROSS_TENANT_SETTING: ""}):
        yield


@contextmanager
def cross_tenant(reason: str) -> Iterator[None]:
    """Opt in, visibly, to work across practices (vendor exports, migrations, sweeps)."""
    if not reason.strip():
        raise ValueError("cross-tenant access needs a reason")
    log.info("cross-tenant access: %s", reason)
    with _settings({CROSS_TENANT_SETTING: "on"}):
        yield


class TenantQuerySet(models.QuerySet):
    def for_practice(self, practice: Practice | int) -> TenantQuerySet:
        practice_id = practice if isinstance(practice, int) else practice.pk
        return self.filter(practice_id=practice_id)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    pass


class TenantModel(models.Model):
    """A row owned by one practice. Read it through `objects.for_practice(practice)`."""

    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True


def rls_sql(table: str) -> list[str]:
    condition = (
        f"practice_id = NULLIF(current_setting('{PRACTICE_SETTING}', true), '')::bigint "
        f"OR current_setting('{CROSS_TENANT_SETTING}', true) = 'on'"
    )
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"',
        f'CREATE POLICY {POLICY_NAME} ON "{table}" USING ({condition}) WITH CHECK ({condition})',
    ]


class EnableRowLevelSecurity(Operation):
    """Migration operation: put a tenant model's table behind the isolation policy."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        for sql in rls_sql(model._meta.db_table):
            schema_editor.execute(sql)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        table = model._meta.db_table
        schema_editor.execute(f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"')
        schema_editor.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        schema_editor.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')

    def describe(self) -> str:
        return f"Enable row-level security on {self.model_name}"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.model_name], {})
