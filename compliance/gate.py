"""The PHI gate: no PHI is processed for a practice without an executed BAA in force.

One decision, `phi_allowed(practice, at)`, used everywhere PHI is touched:

- API views: `compliance.api.PHIGatedMixin` -> 403 `baa_required`;
- portal views (function views under `/p/<slug>/`): `@phi_gated` -> 403;
- Celery tasks: `@phi_task` under `@shared_task`, with a `practice_id` argument;
- anything else (imports, the EHR connection test, transcript storage):
  `require_phi_allowed(practice)` before the first PHI byte is read or written.

`is_phi_gated(view_or_task)` tells a test whether a route or task went through one of these.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from compliance.scoping import practice_scope

if TYPE_CHECKING:
    from accounts.models import Practice
    from compliance.models import BusinessAssociateAgreement

F = TypeVar("F", bound=Callable[..., Any])

GATED_ATTR = "phi_gated"
BAA_REQUIRED_CODE = "baa_required"


class BAARequired(PermissionDenied):
    """PHI was about to be processed for a practice without an executed BAA in force.

    A `PermissionDenied`, so a plain Django view answers 403; API views answer 403 problem+json
    `baa_required` (`compliance.api.BAARequiredAPIException`). Tasks must not retry it.
    """

    code = BAA_REQUIRED_CODE

    def __init__(self, practice_id: int | None, at: datetime | None = None) -> None:
        self.practice_id = practice_id
        self.at = at
        super().__init__(
            "No executed business associate agreement is in force for this practice, so no "
            "PHI can be processed for it."
        )


def _practice_id(practice: Practice | int) -> int:
    return practice if isinstance(practice, int) else int(practice.pk)


def agreement_in_force(
    practice: Practice | int, at: datetime | None = None
) -> BusinessAssociateAgreement | None:
    """The signed agreement that covers instant `at` (default now), newest version first.

    In force from max(executed_on, effective_on) through expires_on (inclusive; days in the
    practice's time zone), and until `terminated_at`. Dates decide, not the status sweep: an
    `executed` row past its expiry is not in force, an `expired` row covers its own past.
    """
    from compliance.models import SIGNED_STATUSES, BusinessAssociateAgreement

    at = at or timezone.now()
    practice_id = _practice_id(practice)
    with practice_scope(practice_id):
        candidates = list(
            BusinessAssociateAgreement.objects.filter(
                practice_id=practice_id, status__in=SIGNED_STATUSES
            )
            .select_related("practice")
            .defer("signed_pdf")
            .order_by("-version")
        )
    for agreement in candidates:
        day = timezone.localtime(at, agreement.practice.tz).date()
        assert agreement.effective_on is not None and agreement.executed_on is not None
        starts = max(agreement.effective_on, agreement.executed_on)
        if day < starts:
            continue
        if agreement.expires_on is not None and day > agreement.expires_on:
            continue
        if agreement.terminated_at is not None and at >= agreement.terminated_at:
            continue
        return agreement
    return None


def phi_allowed(practice: Practice | int, at: datetime | None = None) -> bool:
    """May PHI be processed for this practice at `at` (default: now)?"""
    return agreement_in_force(practice, at) is not None


def require_phi_allowed(
    practice: Practice | int, at: datetime | None = None
) -> BusinessAssociateAgreement:
    """The agreement in force, or `BAARequired`. Call before touching PHI."""
    agreement = agreement_in_force(practice, at)
    if agreement is None:
        raise BAARequired(_practice_id(practice), at)
    return agreement


def is_phi_gated(obj: Any) -> bool:
    """Whether a view callback, view class or Celery task passes through the PHI gate."""
    for candidate in (
        obj,
        getattr(obj, "view_class", None),  # as_view() callbacks
        getattr(obj, "run", None),  # Celery tasks
    ):
        if candidate is not None and getattr(candidate, GATED_ATTR, False):
            return True
    return False


def _request_practice(request: Any, view: Any = None) -> Practice | int:
    getter = getattr(view, "get_phi_practice", None)
    practice = getter(request) if getter else None
    practice = practice or getattr(view, "practice", None) or getattr(request, "practice", None)
    if practice is None:
        inner = getattr(request, "_request", None)  # DRF Request wraps the HttpRequest
        practice = getattr(inner, "practice", None)
    if practice is None:
        # Fail closed: a gated view that cannot say whose PHI it handles handles none.
        raise BAARequired(None)
    return practice


def phi_gated(view: F) -> F:
    """Gate a function view (the portal's pages under `/p/<slug>/`): 403 via `BAARequired`.

    The practice is `request.practice`, set by the tenant middleware. API views (DRF classes)
    use `compliance.api.PHIGatedMixin` instead, which answers 403 problem+json `baa_required`.
    """
    if inspect.isclass(view):
        raise TypeError(f"@phi_gated gates function views; give {view.__name__} PHIGatedMixin")

    @functools.wraps(view)
    def gated(request: Any, *args: Any, **kwargs: Any) -> Any:
        require_phi_allowed(_request_practice(request))
        return view(request, *args, **kwargs)

    setattr(gated, GATED_ATTR, True)
    return gated  # type: ignore[return-value]


def phi_task(func: F) -> F:
    """Gate a Celery task body on its `practice_id` argument (keyword, or first positional).

    Place it under `@shared_task`::

        @shared_task(name="calls.store_transcript")
        @phi_task
        def store_transcript(practice_id: int, call_id: int) -> None: ...

    A refused run raises `BAARequired` before the body runs (list it in `dont_autoretry_for` /
    do not retry it: retrying cannot sign a BAA).
    """
    signature = inspect.signature(func)
    if "practice_id" not in signature.parameters:
        raise TypeError(f"@phi_task {func.__qualname__} needs a practice_id parameter")

    @functools.wraps(func)
    def gated(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(*args, **kwargs)
        practice_id = bound.arguments.get("practice_id")
        if practice_id is None:
            raise BAARequired(None)
        require_phi_allowed(int(practice_id))
        return func(*args, **kwargs)

    setattr(gated, GATED_ATTR, True)
    return gated  # type: ignore[return-value]
