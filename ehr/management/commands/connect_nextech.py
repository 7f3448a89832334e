"""`manage.py connect_nextech SLUG LOCATION_KEY --practice-id P --location-id L --client-id C
--username U [--api-url URL] [--token-url URL]`: connect a location to Nextech.

The client secret and the service user's password are read from NEXTECH_CLIENT_SECRET and
NEXTECH_PASSWORD, or asked for without echo: never on the command line, where the process list
and shell history would keep them. The result of the connection test is printed; a service user
whose password must be changed reads "credentials need a reset".
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Location, Practice
from core.tenancy import tenant_context
from ehr.nextech.config import SELECT_API_URL, TOKEN_URL
from ehr.nextech.connect import connect_location


class Command(BaseCommand):
    help = "Connect a location to Nextech (secrets from the environment or a prompt)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("location_key")
        parser.add_argument("--practice-id", required=True, help="Nextech's nx-practice-id")
        parser.add_argument("--location-id", type=int, required=True, help="Nextech location id")
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--username", required=True, help="the practice's service user")
        parser.add_argument("--api-url", default=SELECT_API_URL)
        parser.add_argument("--token-url", default=TOKEN_URL)

    def _secret(self, env: str, prompt: str) -> str:
        value = os.environ.get(env) or getpass.getpass(prompt)
        if not value:
            raise CommandError(f"{env} is empty")
        return value

    def handle(self, *args: Any, **options: Any) -> None:
        practice = Practice.objects.filter(slug=options["slug"]).first()
        if practice is None:
            raise CommandError(f"no practice {options['slug']!r}")
        with tenant_context(practice):
            location = Location.objects.filter(key=options["location_key"]).first()
        if location is None:
            raise CommandError(f"{options['slug']} has no location {options['location_key']!r}")
        conn, result = connect_location(
            location,
            practice_id=options["practice_id"],
            ehr_location_id=options["location_id"],
            client_id=options["client_id"],
            client_secret=self._secret("NEXTECH_CLIENT_SECRET", "Client secret: "),
            username=options["username"],
            password=self._secret("NEXTECH_PASSWORD", "Service user's password: "),
            api_base_url=options["api_url"],
            token_url=options["token_url"],
        )
        self.stdout.write(f"Nextech connection {conn.pk}: {result.line(location.name)}")
        if not result.ok:
            raise CommandError(result.detail)
