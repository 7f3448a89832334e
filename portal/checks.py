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
