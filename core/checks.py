"""Start-up checks: refuse to look healthy when row-level security could not bind us."""

from typing import Any

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connection


@register(Tags.database, deploy=True)
def check_database_role(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    try:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            bypass = cur.fetchone()[0]
    except DatabaseError:
        return []
    if bypass:
        return [
            Warning(
                "The database role bypasses row-level security (superuser or BYPASSRLS).",
                hint="Connect as a dedicated non-superuser role; tenant isolation relies on RLS.",
                id="portal.W001",
            )
        ]
    return []


@register(Tags.database, deploy=True)
def check_tenancy_proofs(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """The policies verify this process's proofs with a secret derived from its SECRET_KEY: a
    database installed under another key would show every tenant query no rows at all."""
    from core.tenancy import cross_tenant

    try:
        with cross_tenant("deploy check: the tenancy proofs verify"), connection.cursor() as cur:
            cur.execute("SELECT portal_tenant_cross()")
            verified = cur.fetchone()[0]
    except DatabaseError:  # no database yet, or not migrated
        return []
    if verified:
        return []
    return [
        Warning(
            "Row-level security does not accept this process's tenancy proofs: tenant queries "
            "will see no rows.",
            hint="The tenancy secret derives from SECRET_KEY: run `manage.py protect_audit_tables`"
            " (or migrate) with this deployment's SECRET_KEY.",
            id="portal.W002",
        )
    ]
