"""`manage.py export_practice SLUG`: write a practice's configuration file (JSON or YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Practice
from onboarding.services import ConfigError, dump_text, export_config, format_of


class Command(BaseCommand):
    help = "Export a practice's scheduling configuration in the format import_practice reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the practice's slug")
        parser.add_argument(
            "--format",
            choices=["json", "yaml"],
            default=None,
            help="output format (default: from the -o file's extension, else json)",
        )
        parser.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")

    def handle(
        self, *args: Any, slug: str, format: str | None, output: str | None, **options: Any
    ) -> None:
        practice = Practice.objects.filter(slug=slug).first()
        if practice is None:
            raise CommandError(f"no practice with slug {slug!r}")
        if format is None:
            try:
                format = format_of(output) if output else "json"
            except ConfigError as exc:
                raise CommandError(exc.errors[0]) from exc
        text = dump_text(export_config(practice), format)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {practice.slug} to {output}")
        else:
            self.stdout.write(text, ending="")
