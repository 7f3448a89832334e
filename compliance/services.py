"""Writes for compliance: the lifecycle of business associate agreements and their import."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Practice
from compliance.models import SIGNED_STATUSES, BAAStatus, BusinessAssociateAgreement
from compliance.scoping import practice_scope
from compliance.support_policy import SupportForbidden, refused_in_support_session


class BAAError(ValueError):
    """A BAA operation or configuration that cannot be carried out; the message says why."""


def _next_version(practice: Practice) -> int:
    latest = BusinessAssociateAgreement.objects.filter(practice=practice).aggregate(
        v=Max("version")
    )["v"]
    return (latest or 0) + 1


@refused_in_support_session(SupportForbidden.BAA)
def create_draft(practice: Practice, **terms: Any) -> BusinessAssociateAgreement:
    """A new version in draft (the first agreement, or an amendment being prepared)."""
    with practice_scope(practice.pk), transaction.atomic():
        return BusinessAssociateAgreement.objects.create(
            practice=practice, version=_next_version(practice), status=BAAStatus.DRAFT, **terms
        )


@refused_in_support_session(SupportForbidden.BAA)
def mark_sent(agreement: BusinessAssociateAgreement) -> BusinessAssociateAgreement:
    if agreement.status != BAAStatus.DRAFT:
        raise BAAError(f"{agreement} is {agreement.status}; only a draft can be sent")
    agreement.status = BAAStatus.SENT
    with practice_scope(agreement.practice_id):
        agreement.save(update_fields=["status", "updated_at"])
    return agreement


@refused_in_support_session(SupportForbidden.BAA)
def execute(
    agreement: BusinessAssociateAgreement,
    *,
    signed_pdf: bytes,
    executed_on: date,
    effective_on: date,
    expires_on: date | None = None,
    practice_signer_name: str,
    practice_signer_title: str = "",
    practice_signer_email: str = "",
    hello_signer_name: str,
    hello_signer_title: str = "",
) -> BusinessAssociateAgreement:
    """Record the signature: the signed PDF (kept in the database with its SHA-256) and the
    terms. From here on the row is immutable."""
    if agreement.is_signed:
        raise BAAError(f"{agreement} is already {agreement.status}")
    if not signed_pdf.startswith(b"%PDF-"):
        raise BAAError("the signed agreement must be a PDF")
    if not practice_signer_name.strip() or not hello_signer_name.strip():
        raise BAAError("both signatories are required: the practice's and Hello's")
    if expires_on is not None and expires_on < effective_on:
        raise BAAError("expires_on is before effective_on")
    agreement.status = BAAStatus.EXECUTED
    agreement.signed_pdf = signed_pdf
    agreement.signed_pdf_sha256 = hashlib.sha256(signed_pdf).hexdigest()
    agreement.executed_on = executed_on
    agreement.effective_on = effective_on
    agreement.expires_on = expires_on
    agreement.practice_signer_name = practice_signer_name.strip()
    agreement.practice_signer_title = practice_signer_title.strip()
    agreement.practice_signer_email = practice_signer_email.strip()
    agreement.hello_signer_name = hello_signer_name.strip()
    agreement.hello_signer_title = hello_signer_title.strip()
    with practice_scope(agreement.practice_id):
        agreement.save()
    return agreement


@refused_in_support_session(SupportForbidden.BAA)
def terminate(
    agreement: BusinessAssociateAgreement, *, reason: str, at: datetime | None = None
) -> BusinessAssociateAgreement:
    """End an executed agreement at `at` (default now): PHI stops being allowed from then."""
    if agreement.status != BAAStatus.EXECUTED:
        raise BAAError(f"{agreement} is {agreement.status}; only an executed one can terminate")
    if not reason.strip():
        raise BAAError("a termination needs a reason")
    agreement.status = BAAStatus.TERMINATED
    agreement.terminated_at = at or timezone.now()
    agreement.termination_reason = reason.strip()
    with practice_scope(agreement.practice_id):
        agreement.save(
            update_fields=["status", "terminated_at", "termination_reason", "updated_at"]
        )
    return agreement


@refused_in_support_session(SupportForbidden.BAA)
def attach_signed_pdf(
    agreement: BusinessAssociateAgreement, signed_pdf: bytes
) -> BusinessAssociateAgreement:
    """Keep the countersigned PDF (with its SHA-256) on an agreement not yet executed, so
    `execute` can record the signature later. A signed agreement's PDF never changes."""
    if agreement.is_signed:
        raise BAAError(f"{agreement} is {agreement.status}; amend it with a new version instead")
    if not signed_pdf.startswith(b"%PDF-"):
        raise BAAError("the signed agreement must be a PDF")
    agreement.signed_pdf = signed_pdf
    agreement.signed_pdf_sha256 = hashlib.sha256(signed_pdf).hexdigest()
    with practice_scope(agreement.practice_id):
        agreement.save(update_fields=["signed_pdf", "signed_pdf_sha256", "updated_at"])
    return agreement


@refused_in_support_session(SupportForbidden.BAA)
def amend(agreement: BusinessAssociateAgreement) -> BusinessAssociateAgreement:
    """Start an amendment of a signed agreement: a new draft version carrying its signatories
    (the signed one stays as it is, and in force until the amendment is executed)."""
    if not agreement.is_signed:
        raise BAAError(f"{agreement} is {agreement.status}; edit the draft instead of amending")
    return create_draft(
        agreement.practice,
        practice_signer_name=agreement.practice_signer_name,
        practice_signer_title=agreement.practice_signer_title,
        practice_signer_email=agreement.practice_signer_email,
        hello_signer_name=agreement.hello_signer_name,
        hello_signer_title=agreement.hello_signer_title,
        notes=f"Amendment of version {agreement.version}.",
    )


def expire_due(now: datetime | None = None) -> int:
    """Mark executed agreements whose last day has passed as expired (informational: the gate
    reads the dates). Returns how many changed. Runs across practices, as a periodic sweep."""
    from core.tenancy import cross_tenant

    now = now or timezone.now()
    changed = 0
    with cross_tenant("BAA expiry sweep"):
        due = BusinessAssociateAgreement.objects.filter(
            status=BAAStatus.EXECUTED, expires_on__isnull=False
        ).select_related("practice")
        for agreement in due:
            if timezone.localtime(now, agreement.practice.tz).date() > agreement.expires_on:
                agreement.status = BAAStatus.EXPIRED
                agreement.save(update_fields=["status", "updated_at"])
                changed += 1
    return changed


# --- configuration import --------------------------------------------------------------------

CONFIG_STATUSES = {s.value for s in BAAStatus}


def _date(data: Mapping[str, Any], key: str, *, required: bool = False) -> date | None:
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise BAAError(f"baa.{key} is required for this status")
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise BAAError(f"baa.{key}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _signer(value: Any) -> tuple[str, str]:
    """'Dana Reyes, Practice Owner' -> ('Dana Reyes', 'Practice Owner')."""
    name, _, title = str(value or "").partition(",")
    return name.strip(), title.strip()


def _same_terms(agreement: BusinessAssociateAgreement, terms: Mapping[str, Any]) -> bool:
    return all(getattr(agreement, key) == value for key, value in terms.items())


@refused_in_support_session(SupportForbidden.BAA)
def upsert_baa_from_config(
    practice: Practice, data: Mapping[str, Any]
) -> BusinessAssociateAgreement:
    """Apply a practice configuration's `baa` section; idempotent (importing twice changes nothing).

    `data`: {"status": draft|sent|executed|terminated|expired, "signed_by": "Name, Title",
    "executed_on", "effective_on", "expires_on": "YYYY-MM-DD" or null; optional "signer_email",
    "hello_signed_by", "terminated_on", "termination_reason", "notes"}.

    - draft/sent: updates the newest unsigned version, or starts a new one (an amendment in
      preparation; a signed agreement in force stays in force).
    - executed: returns the signed version with the same terms if there is one; otherwise signs
      the newest unsigned version with them, or adds a new version (an amendment). Signed rows
      are never edited.
    - terminated/expired: records the end of the matching executed version (or imports it as
      ended if it was never recorded).
    Raises `BAAError` with the offending field for invalid input.
    """
    status = str(data.get("status") or "").strip().lower()
    if status not in CONFIG_STATUSES:
        raise BAAError(f"baa.status must be one of {sorted(CONFIG_STATUSES)}, not {status!r}")
    signed = status in SIGNED_STATUSES
    name, title = _signer(data.get("signed_by"))
    hello_name, hello_title = _signer(data.get("hello_signed_by"))
    if signed and not name:
        raise BAAError("baa.signed_by is required for a signed agreement")
    terms: dict[str, Any] = {
        "practice_signer_name": name,
        "practice_signer_title": title,
        "executed_on": _date(data, "executed_on", required=signed),
        "effective_on": _date(data, "effective_on", required=signed),
        "expires_on": _date(data, "expires_on"),
    }
    if (
        terms["expires_on"]
        and terms["effective_on"]
        and terms["expires_on"] < terms["effective_on"]
    ):
        raise BAAError("baa.expires_on is before baa.effective_on")
    extra = {
        "practice_signer_email": str(data.get("signer_email") or "").strip(),
        "hello_signer_name": hello_name,
        "hello_signer_title": hello_title,
        "notes": str(data.get("notes") or ""),
        "source": "config",
    }

    with practice_scope(practice.pk), transaction.atomic():
        rows = list(
            BusinessAssociateAgreement.objects.select_for_update()
            .filter(practice=practice)
            .defer("signed_pdf")
            .order_by("-version")
        )
        newest_unsigned = rows[0] if rows and not rows[0].is_signed else None

        if not signed:
            target = newest_unsigned or BusinessAssociateAgreement(
                practice=practice, version=_next_version(practice)
            )
            changes = {**terms, **extra, "status": status}
            if target.pk and _same_terms(target, changes):
                return target
            for key, value in changes.items():
                setattr(target, key, value)
            target.save()
            return target

        match = next((r for r in rows if r.is_signed and _same_terms(r, terms)), None)
        if match is None:
            match = newest_unsigned or BusinessAssociateAgreement(
                practice=practice, version=_next_version(practice)
            )
            for key, value in {**terms, **extra}.items():
                setattr(match, key, value)
            match.status = BAAStatus.EXECUTED
            if status == BAAStatus.TERMINATED:  # imported already ended: one insert
                match.status = status
                match.terminated_at = _termination_time(practice, data)
                match.termination_reason = str(data.get("termination_reason") or "")
            elif status == BAAStatus.EXPIRED:
                match.status = status
            match.save()
            return match
        if match.status == status:
            return match
        if match.status != BAAStatus.EXECUTED:
            raise BAAError(f"{match} is {match.status}; the configuration says {status}")
        if status == BAAStatus.TERMINATED:
            match.status = BAAStatus.TERMINATED
            match.terminated_at = _termination_time(practice, data)
            match.termination_reason = str(data.get("termination_reason") or "configuration")
            match.save(
                update_fields=["status", "terminated_at", "termination_reason", "updated_at"]
            )
        else:
            match.status = BAAStatus.EXPIRED
            match.save(update_fields=["status", "updated_at"])
        return match


def _termination_time(practice: Practice, data: Mapping[str, Any]) -> datetime:
    day = _date(data, "terminated_on")
    if day is None:
        return timezone.now()
    return datetime.combine(day, time.min, tzinfo=practice.tz)
