"""`manage.py test_connection SLUG`: authenticate and reach each EHR location of a practice."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Practice
from ehr import selectors, services


class Command(BaseCommand):
    help = "Test the EHR connection of every location of a practice (status is recorded)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, slug: str, **options: Any) -> None:
        practice = Practice.objects.filter(slug=slug).first()
        if practice is None:
            raise CommandError(f"no practice {slug!r}")
        from core.tenancy import tenant_context

        with tenant_context(practice):
            connections = selectors.connections_for_practice(practice)
        if not connections:
            raise CommandError(f"{slug} has no EHR connection")
        failed = 0
        for conn in connections:
            result = services.check_connection(conn)
            mark = "ok" if result.ok else "FAILED"
            self.stdout.write(
                f"{conn.location.name}: {mark} ({result.latency_ms:.0f} ms) {result.detail}"
            )
            failed += not result.ok
        if failed:
            raise CommandError(f"{failed} connection(s) failed")
