"""Receivers: key provisioning for new practices, sign-in and 2FA events into the audit trail,
and the originating request id and actor carried into Celery tasks."""

from __future__ import annotations

import contextlib
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver
from oauth2_provider.models import get_access_token_model

from accounts import signals as portal_signals
from accounts.models import Practice
from compliance import audit, crypto
from compliance.context import AuditContext, _current
from compliance.models import AuditAction

# --- keys ------------------------------------------------------------------------------------


@receiver(post_save, sender=Practice, dispatch_uid="compliance.provision_practice_keys")
def provision_practice_keys(
    sender: type[Practice], instance: Practice, created: bool, **kwargs: Any
) -> None:
    """A new practice gets its data and blind-index keys in the same transaction, so no key
    outlives a rolled-back practice and the first PHI write finds its keys ready."""
    if created:
        crypto.provision_keys(instance.pk)


# --- sign-in and the second factor (vendor-level events: the global chain) -------------------


@receiver(user_logged_in, dispatch_uid="compliance.audit_login")
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record(AuditAction.LOGIN, actor=user, practice=None)


@receiver(user_login_failed, dispatch_uid="compliance.audit_login_failed")
def audit_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:254]
    audit.record(
        AuditAction.LOGIN_FAILED,
        practice=None,
        actor_label=username,
        reason="wrong username or password",
        details={"username": username},
    )


@receiver(user_logged_out, dispatch_uid="compliance.audit_logout")
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record(AuditAction.LOGOUT, actor=user, practice=None)


@receiver(portal_signals.sign_in_refused, dispatch_uid="compliance.audit_sign_in_refused")
def audit_sign_in_refused(sender: Any, request: Any, user: Any, reason: str, **kwargs: Any) -> None:
    username = user.get_username() if user is not None else str(kwargs.get("username", ""))[:254]
    audit.record(
        AuditAction.LOGIN_FAILED,
        actor=user,
        practice=None,
        actor_label=username,
        reason=f"sign-in {reason}",
        details={"username": username},
    )


@receiver(portal_signals.second_factor_enrolled, dispatch_uid="compliance.audit_2fa_enrolled")
def audit_2fa_enrolled(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record(AuditAction.TWO_FACTOR_ENROLLED, actor=user, practice=None)


@receiver(portal_signals.second_factor_verified, dispatch_uid="compliance.audit_2fa_verified")
def audit_2fa_verified(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record(AuditAction.TWO_FACTOR_VERIFIED, actor=user, practice=None)


@receiver(portal_signals.second_factor_failed, dispatch_uid="compliance.audit_2fa_failed")
def audit_2fa_failed(sender: Any, request: Any, user: Any, stage: str, **kwargs: Any) -> None:
    audit.record(AuditAction.TWO_FACTOR_FAILED, actor=user, practice=None, details={"stage": stage})


# --- API tokens --------------------------------------------------------------------------------


def _client_practice_id(application: Any) -> int | None:
    from django.core.exceptions import ObjectDoesNotExist

    from core.tenancy import cross_tenant

    with cross_tenant("audit: the practice of an API client"):
        try:
            return application.api_client.practice_id
        except (ObjectDoesNotExist, AttributeError):
            return None


@receiver(post_save, sender=get_access_token_model(), dispatch_uid="compliance.audit_token")
def audit_token_issued(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Every access token issued, on the practice's chain of the client it was issued to (the
    token itself is never recorded, only its row id, scopes and expiry)."""
    if not created:
        return
    application = instance.application
    practice_id = _client_practice_id(application) if application is not None else None
    audit.record(
        AuditAction.API_TOKEN_ISSUED,
        practice=practice_id,
        api_client_id=getattr(application, "client_id", "") or "",
        object_type="oauth2_provider.accesstoken",
        object_ids=[instance.pk],
        details={
            "scopes": sorted((instance.scope or "").split()),
            "expires": instance.expires.isoformat() if instance.expires else None,
        },
    )


# --- Celery: a task's audit rows carry the request, and the person, that queued it ------------

REQUEST_ID_HEADER = "audit_request_id"
# Who queued the task, as message headers: the task's change entries and the rows the database
# captures for it name them (a booking confirmed by the worker is the voice agent's booking).
CONTEXT_HEADERS = {
    "audit_actor_user_id": "actor_user_id",
    "audit_actor_label": "actor_label",
    "audit_api_client_id": "api_client_id",
    "audit_impersonation_session_id": "impersonation_session_id",
}
_task_tokens: dict[str, Any] = {}


@before_task_publish.connect(weak=False, dispatch_uid="compliance.carry_request_id")
def carry_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is None:
        return
    ctx = _current.get()
    if ctx.request_id:
        headers.setdefault(REQUEST_ID_HEADER, ctx.request_id)
    for header, attr in CONTEXT_HEADERS.items():
        value = getattr(ctx, attr)
        if value not in (None, ""):
            headers.setdefault(header, value)


def _header(task: Any, name: str) -> Any:
    return getattr(getattr(task, "request", None), name, None)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@task_prerun.connect(weak=False, dispatch_uid="compliance.enter_task_context")
def enter_task_context(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    request_id = _header(task, REQUEST_ID_HEADER) or ""
    _task_tokens[task_id] = _current.set(
        AuditContext(
            request_id=str(request_id)[:64],
            actor_user_id=_int_or_none(_header(task, "audit_actor_user_id")),
            actor_label=str(_header(task, "audit_actor_label") or "")[:254],
            api_client_id=str(_header(task, "audit_api_client_id") or "")[:100],
            impersonation_session_id=_int_or_none(_header(task, "audit_impersonation_session_id")),
            via=f"task:{getattr(task, 'name', '')}",
        )
    )


@task_postrun.connect(weak=False, dispatch_uid="compliance.leave_task_context")
def leave_task_context(task_id: str = "", **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context (eager tasks)
            _current.reset(token)
