"""`manage.py config_schema`: print the configuration file's JSON Schema (caps included)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from onboarding.document_schema import document_schema


class Command(BaseCommand):
    help = "Print the JSON Schema that practice configuration files are validated against."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(document_schema(), indent=2))
