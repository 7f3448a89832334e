from typing import Any

from django.http import HttpRequest


def impersonation(request: HttpRequest) -> dict[str, Any]:
    """The live support session, for the banner every page shows while it lasts."""
    return {"impersonation": getattr(request, "impersonation", None)}
