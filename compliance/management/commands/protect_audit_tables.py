"""Hand the audit tables to a role the application cannot act as (see compliance.protection)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.protection import protect_connected_database


class Command(BaseCommand):
    help = (
        "As a superuser, after migrating: give the audit tables, their sequences and trigger "
        "functions, and the schema to AUDIT_OWNER_ROLE (created if missing), and leave the "
        "application's role only SELECT and INSERT on the entries and SELECT on the seals, so it "
        "cannot disable the append-only triggers, rewrite or drop audit rows or forge seals; "
        "likewise the tenancy proofs' secret, session keys and functions, and a guard against "
        "DDL that weakens a tenant table's row-level security. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--superuser-url",
            default=settings.DATABASE_SUPERUSER_URL,
            help="a superuser's PostgreSQL URL (default: DATABASE_SUPERUSER_URL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["superuser_url"]
        if not url:
            raise CommandError(
                "a superuser URL is needed: --superuser-url or DATABASE_SUPERUSER_URL"
            )
        try:
            done = protect_connected_database(url)
        except (PermissionError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"audit tables of {done.database} protected: owned by {done.owner_role}; "
            f"{done.app_role} may read and append ({len(done.tables)} tables, "
            f"{len(done.sequences)} sequences, {len(done.functions)} trigger functions)"
        )
