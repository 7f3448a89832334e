"""Deploy check: the application's role must not be able to take the audit trail's walls down."""

from typing import Any

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connection

from compliance.protection import audit_objects_owned_by, sealing_weaknesses


@register(Tags.database, deploy=True)
def check_audit_tables_protected(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT current_user")
            role = cur.fetchone()[0]
            owned = audit_objects_owned_by(cur, role)
            weak = sealing_weaknesses(cur, role) if not owned else []
    except DatabaseError:  # no database yet, or not migrated: nothing to protect
        return []
    if not owned and not weak:
        return []
    if not owned:
        return [
            Warning(
                f"The database role could forge audit seals: {', '.join(weak)}.",
                hint="Run `manage.py protect_audit_tables` with a superuser URL.",
                id="compliance.W001",
            )
        ]
    return [
        Warning(
            "The database role can act as the owner of the audit trail's "
            f"{', '.join(owned)}: it could disable the append-only triggers or drop the tables.",
            hint="After migrating, run `manage.py protect_audit_tables` with a superuser URL.",
            id="compliance.W001",
        )
    ]


@register(deploy=True)
def check_audit_signing_key(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Without its key the sealer cannot sign checkpoints (it seals nothing then: the batch and
    its checkpoint are one transaction)."""
    from django.core.exceptions import ImproperlyConfigured

    from compliance import checkpoints

    try:
        checkpoints.signing_key()
    except (ImproperlyConfigured, ValueError) as exc:
        return [
            Warning(
                f"The audit checkpoints' signing key is unusable: {exc}",
                hint="Set AUDIT_SIGNING_KEY to 64 hex digits (32 random bytes) in every process.",
                id="compliance.W002",
            )
        ]
    return []
