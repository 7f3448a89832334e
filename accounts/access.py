"""Who may open which tenant page: roles checked once, in a decorator, never in templates."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

View = Callable[..., HttpResponse]


def has_any_role(request: HttpRequest, *roles: str) -> bool:
    """Whether the signed-in person holds any of `roles` in the URL's practice (no practice,
    no roles: outside `/p/<practice_slug>/`)."""
    return not set(roles).isdisjoint(getattr(request, "roles", ()))


def roles_required(*roles: str) -> Callable[[View], View]:
    """Allow members holding any of `roles`; other members get 403 (they may know the page)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_any_role(request, *roles):
                raise PermissionDenied("Your role in this practice does not include this page.")
            return view(request, *args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped

    return decorator
