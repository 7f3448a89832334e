"""The request of a page under `/p/<practice_slug>/`, typed.

The tenant middleware (portal.middleware) resolves the practice in the URL for a member, or for
vendor support inside a live support session, and sets `request.practice` and `request.roles`
before any such view runs; a view outside that prefix has neither. The accessors say so to the
type checker once, here, instead of an ignore at every use.

Here and not in core: the practice is an accounts model, and core imports nothing above it.
"""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest

from accounts.models import Practice

__all__ = ["PracticeRequest", "request_practice", "request_roles", "set_practice"]


class PracticeRequest(HttpRequest):
    """For annotations only: requests are never built as this class."""

    practice: Practice
    roles: frozenset[str]


def request_practice(request: HttpRequest) -> Practice:
    """The practice the URL names (AttributeError outside `/p/<practice_slug>/`)."""
    return cast(PracticeRequest, request).practice


def request_roles(request: HttpRequest) -> frozenset[str]:
    """The signed-in person's roles in that practice (every role in a support session)."""
    return cast(PracticeRequest, request).roles


def set_practice(request: HttpRequest, practice: Practice, roles: frozenset[str]) -> None:
    """For the tenant middleware only."""
    typed = cast(PracticeRequest, request)
    typed.practice, typed.roles = practice, roles
