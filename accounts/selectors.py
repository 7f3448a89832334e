"""Reads for tenancy: whose practices, which roles, what the dashboard counts."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.models import Location, Membership, Practice, Role, User


def practices_for(user: User) -> QuerySet[Practice]:
    return Practice.objects.filter(memberships__user=user).distinct().order_by("name")


def membership_roles(user: User, practice: Practice) -> frozenset[str]:
    return frozenset(
        Membership.objects.filter(user=user, practice=practice).values_list("role", flat=True)
    )


def practice_for_member(user: User, slug: str) -> tuple[Practice, frozenset[str]] | None:
    """The practice behind a URL slug, if this person belongs to it; otherwise None (a 404)."""
    rows = list(
        Membership.objects.filter(user=user, practice__slug=slug).select_related("practice")
    )
    if not rows:
        return None
    return rows[0].practice, frozenset(r.role for r in rows)


def locations(practice: Practice) -> QuerySet[Location]:
    return Location.objects.for_practice(practice).order_by("name")


def members_with_roles(practice: Practice) -> list[tuple[User, list[str]]]:
    """Each member of the practice once, with the labels of the roles they hold (two queries)."""
    roles: dict[int, list[str]] = {}
    for user_id, role in Membership.objects.filter(practice=practice).values_list(
        "user_id", "role"
    ):
        roles.setdefault(user_id, []).append(Role(role).label)
    users = User.objects.filter(pk__in=roles).order_by("last_name", "first_name", "username")
    return [(u, sorted(roles[u.pk])) for u in users]


def dashboard_counts(practice: Practice) -> dict[str, int]:
    """Real counts for the practice's dashboard, each one indexed query."""
    from scheduling.models import Appointment, AppointmentType, Provider

    return {
        "locations": Location.objects.for_practice(practice).count(),
        "members": Membership.objects.filter(practice=practice).aggregate(
            n=Count("user", distinct=True)
        )["n"],
        "providers": Provider.objects.for_practice(practice).filter(active=True).count(),
        "appointment_types": AppointmentType.objects.for_practice(practice).count(),
        "upcoming_appointments": Appointment.objects.for_practice(practice)
        .filter(start__gte=timezone.now(), cancelled=False)
        .count(),
    }
