"""`manage.py import_practice FILE`: create or update a practice from its configuration file."""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

from onboarding.services import ConfigError, checked_config, import_document, load_file


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
        except ConfigError as exc:
            self._refuse(file, exc.errors)
        if check:
            _config, errors = checked_config(data)
            if errors:
                self._refuse(file, errors)
            self.stdout.write(self.style.SUCCESS(f"{file}: valid"))
            return
        outcome = import_document(data)
        if outcome.errors:
            self._refuse(file, outcome.errors)
        assert outcome.result is not None
        lines = outcome.result.summary()
        self.stdout.write(self.style.SUCCESS(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)
        if outcome.warnings:
            for warning in outcome.warnings:
                self.stderr.write(f"  {warning}")
            raise CommandError(f"{file}: imported, but the EHR set-up failed")

    def _refuse(self, file: str, errors: list[str]) -> NoReturn:
        for error in errors:
            self.stderr.write(f"  {error}")
        raise CommandError(f"{file}: {len(errors)} error(s); nothing was imported")
