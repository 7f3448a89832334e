"""Support impersonation: Hello support staff act inside one practice, under audit.

- Only vendor support accounts (`User.vendor_role == "support"`) that passed 2FA, and that hold
  no practice membership at all: a practice member can never impersonate.
- A stated reason and a ticket reference; at most 60 minutes (database constraint); ended by
  the user, or found expired on the next request.
- Read-only (GET/HEAD/OPTIONS) unless the practice allowed writes for support (`SupportAccess`)
  when the session started; a reveal that POSTs its reason is a read. Whatever was allowed,
  the practice's own acts stay its own (`compliance.support_policy`), and API clients made in
  the session are revoked when it ends (by support, on expiry, or by the minute sweep).
- While it lasts every request is scoped to that practice with every role, a banner shows on
  every page, and every audit row carries the real support user and the session id.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Practice, Role, User, VendorRole
from compliance import audit
from compliance.models import (
    IMPERSONATION_MAX_MINUTES,
    AuditAction,
    ImpersonationSession,
    SupportAccess,
)
from compliance.scoping import practice_scope
from compliance.support_policy import (
    SupportForbidden,
    is_read_with_reason,
    refused_in_support_session,
)
from core.tenancy import cross_tenant

SESSION_KEY = "compliance_impersonation"  # {"id": ..., "practice_id": ...} in the Django session
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ImpersonationRefused(PermissionDenied):
    """Not allowed to start (or continue) a support session; the message says why."""


def may_impersonate(user: User) -> str:
    """Why this user may not impersonate, or "" if they may."""
    if not user.is_authenticated or user.vendor_role != VendorRole.SUPPORT:
        return "Only Hello support staff can open a support session."
    if not user.is_verified():  # type: ignore[attr-defined]
        return "Verify your second factor first."
    if user.memberships.exists():
        return "Accounts that belong to a practice cannot impersonate."
    return ""


def start(
    request: HttpRequest,
    practice: Practice,
    *,
    reason: str,
    ticket: str,
    minutes: int = IMPERSONATION_MAX_MINUTES,
) -> ImpersonationSession:
    user = request.user
    problem = may_impersonate(user)  # type: ignore[arg-type]
    if problem:
        raise ImpersonationRefused(problem)
    if not reason.strip() or not ticket.strip():
        raise ImpersonationRefused("A reason and a ticket reference are required.")
    minutes = max(1, min(minutes, IMPERSONATION_MAX_MINUTES))
    end(request, why="replaced")
    now = timezone.now()
    with practice_scope(practice.pk), transaction.atomic():
        access = SupportAccess.objects.filter(practice=practice).first()
        session = ImpersonationSession.objects.create(
            practice=practice,
            support_user=user,
            reason=reason.strip(),
            ticket=ticket.strip(),
            write_allowed=bool(access and access.allow_write),
            started_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
        audit.record(
            AuditAction.IMPERSONATION_START,
            practice=practice,
            actor=user,  # type: ignore[arg-type]
            object_type="compliance.impersonationsession",
            object_ids=[session.pk],
            reason=session.reason,
            details={
                "ticket": session.ticket,
                "expires_at": session.expires_at.isoformat(),
                "write_allowed": session.write_allowed,
            },
        )
    request.session[SESSION_KEY] = {"id": session.pk, "practice_id": practice.pk}
    return session


def _load(request: HttpRequest) -> ImpersonationSession | None:
    ref = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if not ref:
        return None
    with practice_scope(int(ref["practice_id"])):
        return (
            ImpersonationSession.objects.select_related("practice")
            .filter(pk=ref["id"], support_user_id=request.user.pk)
            .first()
        )


def _close(session: ImpersonationSession, why: str, at: datetime) -> None:
    with practice_scope(session.practice_id), transaction.atomic():
        updated = ImpersonationSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=min(at, session.expires_at), end_reason=why
        )
        if updated:
            audit.record(
                AuditAction.IMPERSONATION_END,
                practice=session.practice_id,
                actor_label=None,
                object_type="compliance.impersonationsession",
                object_ids=[session.pk],
                reason=why,
                details={"support_user_id": session.support_user_id},
            )
            revoke_credentials_of(session)


def revoke_credentials_of(session: ImpersonationSession) -> list[int]:
    """Revoke every API client made during `session` (their tokens die with them): what
    support made does not outlive the session. Returns the revoked clients' ids."""
    from scheduling import services as scheduling_services
    from scheduling.models import ApiClient

    revoked = []
    with practice_scope(session.practice_id), transaction.atomic():
        clients = ApiClient.objects.filter(
            practice_id=session.practice_id, support_session_id=session.pk, revoked_at__isnull=True
        ).select_related("application")
        for client in clients:
            scheduling_services.revoke_api_client(client)
            audit.record(
                AuditAction.API_CLIENT_REVOKED,
                practice=session.practice_id,
                actor_label=None,
                object_type="scheduling.ApiClient",
                object_ids=[client.pk],
                reason="support session ended",
                details={
                    "name": client.name,
                    "client_id": client.application.client_id,
                    "support_session_id": session.pk,
                },
            )
            revoked.append(client.pk)
    return revoked


def close_expired(now: datetime | None = None) -> int:
    """Close (and so revoke what was made in) every session past its end that nobody came back
    to: a periodic sweep, so expiry does not wait for the support user's next request."""
    now = now or timezone.now()
    with cross_tenant("support sessions: close the expired ones"):
        due = list(
            ImpersonationSession.objects.filter(ended_at__isnull=True, expires_at__lte=now).only(
                "pk", "practice_id", "expires_at", "support_user_id"
            )
        )
    for session in due:
        _close(session, "expired", now)
    return len(due)


def current(request: HttpRequest, now: datetime | None = None) -> ImpersonationSession | None:
    """The request's live support session; an expired one is closed (and recorded) here."""
    session = _load(request)
    if session is None:
        return None
    now = now or timezone.now()
    if session.ended_at is not None or not session.is_active(now):
        if session.ended_at is None:
            _close(session, "expired", now)
        request.session.pop(SESSION_KEY, None)
        return None
    return session


def open_sessions(user: User, now: datetime | None = None) -> list[ImpersonationSession]:
    """The support user's own sessions still running, whichever browser started them, so they
    can be seen and ended from any browser."""
    now = now or timezone.now()
    with cross_tenant("support: the signed-in support user's own open sessions"):
        return list(
            ImpersonationSession.objects.filter(
                support_user_id=user.pk, ended_at__isnull=True, expires_at__gt=now
            )
            .select_related("practice")
            .order_by("-started_at")
        )


def end_own(request: HttpRequest, session_id: int) -> bool:
    """End one of the signed-in support user's sessions by id (from any browser); another
    user's session is not theirs to end. True when it was open and is now closed."""
    with cross_tenant("support: end one of the user's own sessions"):
        session = (
            ImpersonationSession.objects.filter(
                pk=session_id, support_user_id=request.user.pk, ended_at__isnull=True
            )
            .only("pk", "practice_id", "expires_at", "support_user_id")
            .first()
        )
    if session is None:
        return False
    _close(session, "ended by support", timezone.now())
    ref = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if ref and int(ref["id"]) == session.pk:
        request.session.pop(SESSION_KEY, None)
    return True


def end(request: HttpRequest, why: str = "ended by support") -> None:
    session = _load(request)
    if session is not None and session.ended_at is None:
        _close(session, why, timezone.now())
    if hasattr(request, "session"):
        request.session.pop(SESSION_KEY, None)


def practice_for(request: HttpRequest, slug: str) -> tuple[Practice, frozenset[str]] | None:
    """For the tenant middleware: the impersonated practice behind a URL slug, with every role."""
    session = getattr(request, "impersonation", None)
    if session is None or session.practice.slug != slug:
        return None
    return session.practice, frozenset(Role.values)


@refused_in_support_session(SupportForbidden.SECURITY_SETTINGS)
def set_write_access(practice: Practice, allow: bool, by: User) -> SupportAccess:
    """A practice manager's choice; applies to support sessions started afterwards."""
    with practice_scope(practice.pk):
        access, _ = SupportAccess.objects.update_or_create(
            practice=practice, defaults={"allow_write": allow, "updated_by": by}
        )
    return access


def history(practice: Practice, limit: int = 100) -> list[ImpersonationSession]:
    with practice_scope(practice.pk):
        return list(
            ImpersonationSession.objects.for_practice(practice).select_related("support_user")[
                :limit
            ]
        )


def write_refused(request: HttpRequest, view_func: Any, view_kwargs: dict[str, Any]) -> bool:
    """A read-only session's change (a reveal that sends its reason by POST is a read)."""
    session = getattr(request, "impersonation", None)
    return bool(
        session is not None
        and "practice_slug" in view_kwargs
        and request.method not in SAFE_METHODS
        and not session.write_allowed
        and not is_read_with_reason(view_func)
    )
