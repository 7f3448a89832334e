"""`manage.py import_practice FILE`: create or update a practice from its configuration file."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding.services import (
    ConfigError,
    ehr_gate_errors,
    import_config,
    load_file,
    parse_config,
    validate_config,
)


class Command(BaseCommand):
    help = (
        "Create or update the practice named in a configuration file (JSON or YAML, by "
        "extension). The file is validated as a whole first; an invalid file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="practice configuration (.json, .yaml or .yml)")
        parser.add_argument(
            "--check", action="store_true", help="only validate the file; write nothing"
        )

    def handle(self, *args: Any, file: str, check: bool, **options: Any) -> None:
        try:
            data = load_file(file)
            if check:
                errors = validate_config(data) or ehr_gate_errors(parse_config(data))
                if errors:
                    raise ConfigError(errors)
                self.stdout.write(self.style.SUCCESS(f"{file}: valid"))
                return
            result = import_config(data)
        except ConfigError as exc:
            for error in exc.errors:
                self.stderr.write(f"  {error}")
            raise CommandError(f"{file}: {len(exc.errors)} error(s); nothing was imported") from exc
        lines = result.summary()
        self.stdout.write(self.style.SUCCESS(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)
