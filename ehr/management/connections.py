"""What the EHR commands share: the practice named on the command line and its connections."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts.models import Practice
from core.tenancy import tenant_context
from ehr import selectors
from ehr.models import EHRConnection


def practice_connections(slug: str) -> list[EHRConnection]:
    """Every EHR connection of the practice `slug`; a CommandError when there is none."""
    practice = Practice.objects.filter(slug=slug).first()
    if practice is None:
        raise CommandError(f"no practice {slug!r}")
    with tenant_context(practice):
        connections = selectors.connections_for_practice(practice)
    if not connections:
        raise CommandError(f"{slug} has no EHR connection")
    return connections
