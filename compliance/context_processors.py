from typing import Any

from django.http import HttpRequest


def impersonation(request: HttpRequest) -> dict[str, Any]:
    """The live support session, for the banner every page shows while it lasts, and whether
    it is read-only (the practice's pages then show their forms as read-only; support's own
    pages, such as starting or ending a session, stay usable)."""
    session = getattr(request, "impersonation", None)
    return {
        "impersonation": session,
        "support_read_only": session is not None
        and not session.write_allowed
        and getattr(request, "practice", None) is not None,
    }
