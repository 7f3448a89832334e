"""`manage.py sync_practice SLUG [--reconcile]`: full sync of a practice's EHR locations now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ehr import services
from ehr.management.connections import practice_connections


class Command(BaseCommand):
    help = "Sync the scheduling mirror of a practice from its EHR (every connected location)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--reconcile", action="store_true", help="record the changes as repaired drift"
        )

    def handle(self, *args: Any, slug: str, reconcile: bool, **options: Any) -> None:
        for conn in practice_connections(slug):
            report = services.sync_connection(conn, reconcile=reconcile)
            changes = report.changes_by_kind() or "no changes"
            self.stdout.write(f"{conn.location.name}: {changes}")
            for problem in report.problems[:10]:
                self.stdout.write(f"  problem: {problem}")
