"""What a support session may never do, whatever the practice allowed: ONE declared policy.

A support session (compliance.impersonation) acts inside a practice, but some acts are the
practice's own and stay so even when the practice let support make changes:

- `SupportForbidden` names them. Views are marked with `@forbidden_in_support_session(action)`
  (403 in a live support session, any method), services with `@refused_in_support_session(
  action)` (`SupportActionForbidden`, a `PermissionDenied`, when the audit context carries a
  support session): both decide through `refuse()`, here, and nowhere else.
- Every PHI read in a support session states its own reason: `compliance.audit.record` calls
  `require_reason()` for PHI reads, so a read without one is refused rather than recorded
  under someone else's wording. Views that reveal PHI on a reason given in a POST body mark
  themselves `@read_with_reason`, so a read-only session may still send the reason.
- Anything credential-like that is nevertheless made during a session carries the session's id
  (`current_session_id()`) and is revoked when the session ends (`compliance.impersonation`).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from compliance.context import current

F = TypeVar("F", bound=Callable[..., Any])

VIEW_ATTR = "support_forbidden"  # the SupportForbidden member a marked view refuses
VIEW_METHODS_ATTR = "support_forbidden_methods"  # None: every method
READ_WITH_REASON_ATTR = "support_read_with_reason"


class SupportForbidden(enum.StrEnum):
    """Acts a support session never performs, with why they are the practice's own."""

    CREDENTIALS = "credentials"  # API clients and their secrets, EHR connection credentials
    BAA = "baa"  # Hello is the other party to the agreement: it cannot sign for the practice
    CLINICAL_APPROVAL = "clinical_approval"  # making escalation protocols live or withdrawing
    RETENTION = "retention"  # how long transcripts and notes are kept
    MEMBERSHIP = "membership"  # who belongs to the practice, with which role
    SECURITY_SETTINGS = "security_settings"  # e.g. whether support may write at all
    EXPORT = "export"  # the audit log and the configuration file leave the portal
    CONFIG_IMPORT = "config_import"  # a file carrying BAA, protocols and EHR credentials at once

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    SupportForbidden.CREDENTIALS: "issue, rotate or revoke credentials",
    SupportForbidden.BAA: "act on business associate agreements",
    SupportForbidden.CLINICAL_APPROVAL: "approve or withdraw clinical content",
    SupportForbidden.RETENTION: "change retention",
    SupportForbidden.MEMBERSHIP: "change the practice's membership",
    SupportForbidden.SECURITY_SETTINGS: "change security settings",
    SupportForbidden.EXPORT: "export the practice's data",
    SupportForbidden.CONFIG_IMPORT: "upload a configuration file",
}


class SupportActionForbidden(PermissionDenied):
    """A support session tried one of the practice's own acts."""

    def __init__(self, action: SupportForbidden) -> None:
        self.action = action
        super().__init__(f"A support session cannot {action.label}; the practice does this.")


class SupportReasonRequired(PermissionDenied):
    """A PHI read in a support session without a reason of its own."""

    def __init__(self) -> None:
        super().__init__("In a support session, state why before reading patient information.")


def current_session_id() -> int | None:
    """The live support session the current request or task acts in, if any."""
    return current().impersonation_session_id


def in_support_session(request: HttpRequest | None = None) -> bool:
    if request is not None and getattr(request, "impersonation", None) is not None:
        return True
    return current_session_id() is not None


def refuse(action: SupportForbidden, request: HttpRequest | None = None) -> None:
    """The one decision: raise if a support session attempts `action`."""
    if in_support_session(request):
        raise SupportActionForbidden(action)


def require_reason(reason: str) -> None:
    """PHI reads in a support session carry the reason the support user gave for this read."""
    if current_session_id() is not None and not reason.strip():
        raise SupportReasonRequired()


def forbidden_in_support_session(
    action: SupportForbidden, methods: tuple[str, ...] | None = None
) -> Callable[[F], F]:
    """Mark a view as one of the practice's own acts: 403 in a support session, for any
    method, or only `methods` when the page also shows something support may read."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if methods is None or request.method in methods:
                refuse(action, request)
            return view(request, *args, **kwargs)

        setattr(wrapped, VIEW_ATTR, action)
        setattr(wrapped, VIEW_METHODS_ATTR, methods)
        return wrapped  # type: ignore[return-value]

    return decorator


def refused_in_support_session(action: SupportForbidden) -> Callable[[F], F]:
    """Mark a service as one of the practice's own acts (whoever calls it)."""

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            refuse(action)
            return func(*args, **kwargs)

        setattr(wrapped, VIEW_ATTR, action)
        return wrapped  # type: ignore[return-value]

    return decorator


def read_with_reason(view: F) -> F:
    """A view that reveals PHI on a reason sent by POST: a read, even in a read-only session."""
    setattr(view, READ_WITH_REASON_ATTR, True)
    return view


def forbidden_action(view: Any) -> SupportForbidden | None:
    """The act a view callback refuses to support sessions (for tests walking the URL conf)."""
    return getattr(view, VIEW_ATTR, None)


def forbidden_methods(view: Any) -> tuple[str, ...] | None:
    return getattr(view, VIEW_METHODS_ATTR, None)


def is_read_with_reason(view: Any) -> bool:
    return bool(getattr(view, READ_WITH_REASON_ATTR, False))
