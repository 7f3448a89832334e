"""`manage.py create_api_client PRACTICE_SLUG --scopes availability:read bookings:write`

Creates a receptionist-API client for one practice and prints its credentials as JSON (for
set-up scripts). The secret is shown this once; only its hash is stored.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Practice, User
from scheduling.models import ApiScope
from scheduling.services import create_api_client


class Command(BaseCommand):
    help = "Create an OAuth2 client-credentials client of the receptionist API for a practice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("practice_slug")
        parser.add_argument(
            "--scopes", nargs="+", required=True, choices=ApiScope.values, metavar="SCOPE"
        )
        parser.add_argument("--name", default="Voice agent")
        parser.add_argument("--created-by", help="email of the person creating it (audit)")

    def handle(self, *args: Any, **options: Any) -> None:
        practice = Practice.objects.filter(slug=options["practice_slug"]).first()
        if practice is None:
            raise CommandError(f"no practice with slug {options['practice_slug']!r}")
        created_by = None
        if options["created_by"]:
            created_by = User.objects.filter(email__iexact=options["created_by"]).first()
            if created_by is None:
                raise CommandError(f"no user with email {options['created_by']!r}")
        client, secret = create_api_client(
            practice, options["name"], options["scopes"], created_by=created_by
        )
        self.stdout.write(
            json.dumps(
                {
                    "client_id": client.application.client_id,
                    "client_secret": secret,
                    "practice": practice.slug,
                    "name": client.name,
                    "scopes": client.scopes,
                }
            )
        )
