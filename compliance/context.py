"""Who is acting, for every audit row written while it is: set per request, task or command.

The middleware fills it from the request (request id, user, IP, user agent); the receptionist
API adds its client with `bind(api_client_id=...)`; Celery tasks inherit the originating request
id, actor, API client and support session through message headers (compliance.signals), and
work queued for later (the booking outbox) keeps `carried()` with it and publishes inside
`acting_for(...)`, so it names the request that queued it, not the relay that sent it;
impersonation adds its session id here. Writes to audited tables carry it into PostgreSQL for
the changes the database captures (compliance.capture). `compliance.audit.record` and auditlog
change entries read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class AuditContext:
    request_id: str = ""
    actor_user_id: int | None = None
    actor_label: str = ""
    api_client_id: str = ""
    ip: str | None = None
    user_agent: str = ""
    impersonation_session_id: int | None = None
    via: str = ""  # web, api, task:<name>, command:<name>
    request: Any = None  # the HttpRequest, for its practice once the tenant middleware set it


NOBODY = AuditContext()  # frozen: safe to share as the default
_current: ContextVar[AuditContext] = ContextVar("compliance_audit_context", default=NOBODY)


def current() -> AuditContext:
    return _current.get()


@contextmanager
def audit_context(**values: Any) -> Iterator[AuditContext]:
    """Act with these values for the block (a task, a command, a test), then restore."""
    token = _current.set(replace(_current.get(), **values))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def bind(**values: Any) -> None:
    """Add to the current context for the rest of the enclosing `audit_context` (for example
    the API client once DRF has authenticated it)."""
    _current.set(replace(_current.get(), **values))


# What a task acts for: who queued it, never where it runs (the IP, user agent and request
# object stay with the request).
CARRIED = (
    "request_id",
    "actor_user_id",
    "actor_label",
    "api_client_id",
    "impersonation_session_id",
    "via",
)


def carried() -> dict[str, Any]:
    """The current context's carried fields that are set, JSON-safe, to store with queued work."""
    ctx = _current.get()
    values = {name: getattr(ctx, name) for name in CARRIED}
    return {name: value for name, value in values.items() if value not in (None, "")}


@contextmanager
def acting_for(values: dict[str, Any] | None) -> Iterator[AuditContext]:
    """Act, for the block, as the stored `carried()` context alone: the relay that publishes a
    request's work lends it none of its own (a missing field stays empty, not the relay's)."""
    fields = {name: value for name, value in (values or {}).items() if name in CARRIED}
    token = _current.set(AuditContext(**fields))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_request_id() -> str | None:
    """auditlog's AUDITLOG_CID_GETTER: change entries carry the request id as their `cid`."""
    return _current.get().request_id or None


def context_practice_id() -> int | None:
    request = _current.get().request
    practice = getattr(request, "practice", None) if request is not None else None
    return getattr(practice, "pk", None)
