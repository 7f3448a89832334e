"""Seal the audit entries written since the last run (compliance.sealer)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compliance import sealer


class Command(BaseCommand):
    help = (
        "Seal queued audit entries into their chains and record a signed checkpoint. With "
        "--follow, keep sealing as entries are committed (LISTEN) until stopped: one such "
        "loop per database is enough, and a second one (or the beat task) simply waits its turn."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--follow", action="store_true", help="keep sealing until stopped")
        parser.add_argument(
            "--idle-seconds",
            type=float,
            default=1.0,
            help="with --follow: seal at least this often even without a notification",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["follow"]:
            try:
                sealer.follow(idle_seconds=options["idle_seconds"])
            except KeyboardInterrupt:
                return
            return
        sealed = sealer.seal_pending(wait=True)
        self.stdout.write(f"sealed {sealed} entries; {sealer.awaiting()} await sealing")
