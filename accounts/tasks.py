"""Tenancy tasks. Tasks take ids, set the tenant themselves and are safe to run twice."""

from celery import shared_task

from accounts.models import Location
from core.tenancy import tenant_context


@shared_task(name="portal.count_locations")
def count_locations(practice_id: int) -> int:
    """How many locations the practice has, counted under its row-level-security scope.

    Deliberately unfiltered: the tenant setting alone must keep other practices out.
    """
    with tenant_context(practice_id):
        return Location.objects.count()
