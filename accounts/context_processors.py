from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts import selectors
from accounts.models import Role

# Navigation, grouped by the work it serves: (group, [(label, url name, roles that see it)]).
# An empty roles tuple means every member of the practice.
_M, _C, _F, _O = Role.PRACTICE_MANAGER, Role.CLINICIAN, Role.FRONT_DESK, Role.COMPLIANCE_OFFICER
NAV: list[tuple[str, list[tuple[str, str, tuple[str, ...]]]]] = [
    (
        "Practice",
        [
            ("Dashboard", "dashboard", ()),
            ("Go-live", "golive", (_M, _O)),
            ("Locations", "location_list", ()),
            ("Team", "team", (_M, _O)),
        ],
    ),
    (
        "Front desk",
        [
            ("Bookings", "frontdesk_bookings", (_F, _M)),
            ("Requests", "frontdesk_requests", (_F, _M)),
            ("Needs attention", "frontdesk_needs_attention", (_F, _M)),
            ("Calls", "calls_list", (_F, _M)),
        ],
    ),
    (
        "Scheduling",
        [
            ("Appointment types", "scheduling_types", (_M, _C)),
            ("Providers", "scheduling_providers", (_M, _C)),
            ("Rooms", "scheduling_rooms", (_M, _C)),
            ("Schedule", "scheduling_schedule", (_M, _C)),
        ],
    ),
    (
        "Clinical",
        [
            ("Protocols", "escalation_protocols", (_C, _M)),
            ("On call", "oncall_rota", (_C, _M)),
        ],
    ),
    (
        "Set-up",
        [
            ("EHR", "ehr_connections", (_M,)),
            ("API clients", "setup_api_clients", (_M,)),
            ("Configuration", "setup_config", (_M,)),
        ],
    ),
    (
        "Compliance",
        [
            ("BAA", "compliance_baa_list", (_O, _M)),
            ("Audit log", "compliance_audit", (_O,)),
            ("Support access", "compliance_support_access", (_M, _O)),
        ],
    ),
]


def shell(request: HttpRequest) -> dict[str, Any]:
    """What the base template needs: the practice switcher and the role's navigation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified():
        return {}
    roles = set(getattr(request, "roles", ()))
    nav = [
        (group, links)
        for group, entries in NAV
        if (
            links := [
                (label, name)
                for label, name, allowed in entries
                if not allowed or roles & set(allowed)
            ]
        )
    ]
    return {
        "my_practices": selectors.practices_for(user),
        "current_practice": getattr(request, "practice", None),
        "nav": nav,
        "role_labels": sorted(Role(r).label for r in roles),
        "idle_seconds": settings.IDLE_TIMEOUT_SECONDS,
        "idle_warning_seconds": min(settings.IDLE_WARNING_SECONDS, settings.IDLE_TIMEOUT_SECONDS),
    }
