"""`manage.py test_connection SLUG`: authenticate and reach each EHR location of a practice.

Each line says the connection's state in the connection page's words (connected, credentials
need a reset, credentials rejected, unreachable, rate limited: `ehr.models.ConnectionState`).
"""

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
            self.stdout.write(result.line(conn.location.name))
            failed += not result.ok
        if failed:
            raise CommandError(f"{failed} connection(s) failed")
