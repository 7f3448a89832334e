"""`manage.py test_connection SLUG`: authenticate and reach each EHR location of a practice."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ehr import services
from ehr.management.connections import practice_connections


class Command(BaseCommand):
    help = "Test the EHR connection of every location of a practice (status is recorded)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, slug: str, **options: Any) -> None:
        connections = practice_connections(slug)
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
