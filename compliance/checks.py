"""Deploy check: the application's role must not be able to take the audit trail's walls down."""

from typing import Any

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connection

from compliance.protection import audit_objects_owned_by


@register(Tags.database, deploy=True)
def check_audit_tables_protected(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT current_user")
            owned = audit_objects_owned_by(cur, cur.fetchone()[0])
    except DatabaseError:  # no database yet, or not migrated: nothing to protect
        return []
    if not owned:
        return []
    return [
        Warning(
            "The database role can act as the owner of the audit trail's "
            f"{', '.join(owned)}: it could disable the append-only triggers or drop the tables.",
            hint="After migrating, run `manage.py protect_audit_tables` with a superuser URL.",
            id="compliance.W001",
        )
    ]
