from typing import Any

from django.http import HttpRequest


def impersonation(request: HttpRequest) -> dict[str, Any]:
    """The live support session, for the banner every page shows while it lasts, and whether
    it is read-only (pages then show their forms as read-only)."""
    session = getattr(request, "impersonation", None)
    return {
        "impersonation": session,
        "support_read_only": session is not None and not session.write_allowed,
    }
