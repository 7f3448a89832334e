from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal import selectors
from portal.models import Role

# Navigation by role: (label, url name, roles that see it; empty = every member).
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("Dashboard", "dashboard", ()),
    ("Locations", "location_list", ()),
    ("Team", "team", (Role.PRACTICE_MANAGER, Role.COMPLIANCE_OFFICER)),
    ("EHR", "ehr_connections", (Role.PRACTICE_MANAGER,)),
    ("Audit log", "compliance_audit", (Role.COMPLIANCE_OFFICER,)),
    (
        "Support access",
        "compliance_support_access",
        (Role.PRACTICE_MANAGER, Role.COMPLIANCE_OFFICER),
    ),
]


def shell(request: HttpRequest) -> dict[str, Any]:
    """What the base template needs: the practice switcher and the role's navigation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified():
        return {}
    roles = set(getattr(request, "roles", ()))
    nav = [(label, name) for label, name, allowed in NAV if not allowed or roles & set(allowed)]
    return {
        "my_practices": selectors.practices_for(user),
        "current_practice": getattr(request, "practice", None),
        "nav": nav,
        "role_labels": sorted(Role(r).label for r in roles),
    }
