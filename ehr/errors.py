"""Our own exception types for everything that can go wrong talking to an EHR.

Callers (tasks, the booking flow, views) catch these, never httpx's: the client maps transport
failures and HTTP statuses onto them once, at the edge. The split that matters is *transient*
(retry later, with backoff: `EHRTransientError` and its subclasses) versus *permanent* (a human or
a code fix is needed: validation, auth, not found).

    EHRError
    ├── EHRTransientError          connect errors, timeouts, 5xx: safe to try again later
    │   ├── EHRRateLimited         429 or our own bucket is empty; carries retry_after seconds
    │   ├── EHRUnavailable         retries exhausted: the EHR is down or keeps failing
    │   └── EHRWriteUncertain      a non-idempotent write timed out: it MAY have landed
    ├── EHRAuthError               API key refused (401 after one refresh, 403)
    ├── EHRValidationError         400/422: the request is wrong; never retried
    └── EHRNotFound                404: unknown id, subdomain or route
"""

from __future__ import annotations

from collections.abc import Sequence


class EHRError(Exception):
    """Base class. `kind` names the error in health counters ("timeout", "5xx", ...)."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        messages: Sequence[str] = (),
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.messages = list(messages)
        self.method = method
        self.path = path

    def __str__(self) -> str:
        base = super().__str__()
        where = f" ({self.method} {self.path})" if self.method else ""
        status = f" [HTTP {self.status}]" if self.status else ""
        return f"{base}{status}{where}"

    def summary(self) -> str:
        """What a log line may say about this error: its class, status and route, never its
        text (the EHR's messages echo what it refused, patient fields included)."""
        where = f" ({self.method} {self.path})" if self.method else ""
        status = f" [HTTP {self.status}]" if self.status else ""
        return f"{type(self).__name__}{status}{where}"

    def __repr__(self) -> str:
        # Celery logs a retried or failed task's exception by its repr.
        return f"<{self.summary()}>"


class EHRTransientError(EHRError):
    """Worth retrying later (connect error, timeout, 5xx)."""

    kind = "transient"


class EHRRateLimited(EHRTransientError):
    """The EHR answered 429, or the practice's shared bucket is empty: try after `retry_after`."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = max(0.0, float(retry_after))
        self.waited = 0.0  # how long we had already waited for admission before giving up


class EHRUnavailable(EHRTransientError):
    """Retries are exhausted: the EHR is down or failing. A task should re-queue with backoff."""

    kind = "unavailable"


class EHRWriteUncertain(EHRTransientError):
    """A non-idempotent write (POST) got no answer (read timeout, 5xx): it may or may not have
    landed. Never blindly retried; look the record up first (see `NexHealthClient.request`'s
    `lookup` and `services.post_appointment`)."""

    kind = "write_uncertain"


class EHRAuthError(EHRError):
    """The API key is refused, or a fresh token is refused again: the connection needs a human."""

    kind = "auth"


RESET_REQUIRED = "credentials need a reset"


class EHRCredentialsNeedReset(EHRAuthError):
    """The EHR's service user must set a new password before the EHR lets it in: nothing we
    retry fixes it. `advice` says what the practice does (the connection page shows it)."""

    kind = "credentials_reset"
    advice = "the EHR's service user must set a new password, then enter the new one here"


class EHRSlotTaken(EHRError):
    """The EHR refused the time as no longer free (a conflict answer). Permanent for this
    booking; the slot is no longer offered."""

    kind = "slot_taken"


class EHRValidationError(EHRError):
    """The EHR refused the request as invalid (400/422). Permanent: never retried."""

    kind = "validation"


class EHRNotFound(EHRError):
    """Unknown id, subdomain or route (404)."""

    kind = "not_found"
